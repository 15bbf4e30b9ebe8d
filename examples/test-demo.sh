#!/bin/sh
# SPDX-License-Identifier: MIT
# Meson test `demo`: runs examples/kvmdbg-run on its built-in guest and checks
# the stops it reports. Exit 77 (skip) where /dev/kvm cannot be opened.
# shellcheck disable=SC2015 # `cond && ok ... || bad ...`: ok only echoes
set -u
run=${1:?usage: test-demo.sh path/to/kvmdbg-run}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fails=0

# KVM: the host's (tests/kvm-present), or a VM test bed's when run from
# `vmbed run --host-test` ($KVMDBG_BED: the KVM-RUN given is the bed's).
if [ -z "${KVMDBG_BED:-}" ] && ! why=$("$(dirname "$0")/../tests/kvm-present"); then
	echo "test-demo: skipped: $why"
	exit 77
fi

ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

# Bad arguments: one line on stderr, exit 2.
for args in "--bogus" "--step" "--step x" "--hbreak nosuch" "extra"; do
	# shellcheck disable=SC2086
	"$run" $args >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ $rc -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && [ ! -s "$tmp/out" ]; then
		ok "'$args' -> exit 2, one line"
	else
		bad "'$args' -> exit $rc, stderr: $(cat "$tmp/err")"
	fi
done

"$run" --help >"$tmp/out" 2>&1 && grep -q -- '--hbreak' "$tmp/out" && ok "--help" || bad "--help"

# --probe: a table with the verified column.
if "$run" --probe >"$tmp/out" 2>&1 && grep -q '^hw_break ' "$tmp/out"; then
	ok "--probe"
else
	bad "--probe: $(cat "$tmp/out")"
fi

# The default run, human readable.
if "$run" >"$tmp/out" 2>&1; then
	ok "default run exits 0"
else
	bad "default run: exit $?"
fi
n=$(grep -c '^stop [0-9]*: break hw-break  *pc=0x100020 <bump>' "$tmp/out")
[ "$n" -eq 3 ] && ok "default run: 3 breakpoint stops" || bad "default run: $n breakpoint stops"
n=$(grep -c '^stop [0-9]*: step ' "$tmp/out")
[ "$n" -eq 4 ] && ok "default run: 4 steps" || bad "default run: $n steps"
grep -q '^guest finished: counter = 10 (expected 10)' "$tmp/out" &&
	ok "default run: counter 10" || bad "default run: no 'counter = 10'"
sed 's/^/  | /' "$tmp/out"

# JSON: exact stops. A step at a breakpoint moves exactly one instruction.
if "$run" --json --max-stops 2 --step 3 --loops 5 >"$tmp/out" 2>"$tmp/err"; then
	ok "--json run exits 0"
else
	bad "--json run: exit $?: $(cat "$tmp/err")"
fi
cat >"$tmp/want" <<'WANT'
{"kind":"break","type":"hw-break","pc":"0x100020","addr":"0x100020","len":1,"data_addr":null,"vcpu":0,"hits":1,"symbol":"bump"}
{"kind":"break","type":"hw-break","pc":"0x100020","addr":"0x100020","len":1,"data_addr":null,"vcpu":0,"hits":1,"symbol":"bump"}
{"kind":"step","type":null,"pc":"0x100021","addr":null,"len":null,"data_addr":null,"vcpu":0,"hits":0,"symbol":"bump+1"}
{"kind":"step","type":null,"pc":"0x100024","addr":null,"len":null,"data_addr":null,"vcpu":0,"hits":0,"symbol":"bump+4"}
{"kind":"step","type":null,"pc":"0x100027","addr":null,"len":null,"data_addr":null,"vcpu":0,"hits":0,"symbol":"bump+7"}
{"kind":"exit","counter":5,"expected":5,"stops":5}
WANT
if diff -u "$tmp/want" "$tmp/out"; then
	ok "--json stops as expected"
else
	bad "--json stops differ (above)"
fi

# A breakpoint that is never reached: no stop, the guest still finishes.
if "$run" --json --hbreak done+5 --step 0 >"$tmp/out" 2>"$tmp/err" &&
	[ "$(cat "$tmp/out")" = '{"kind":"exit","counter":10,"expected":10,"stops":0}' ]; then
	ok "unreached breakpoint"
else
	bad "unreached breakpoint: $(cat "$tmp/out" "$tmp/err")"
fi

echo "test-demo: $fails failed"
[ "$fails" -eq 0 ]
