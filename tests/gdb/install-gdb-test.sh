#!/bin/sh
# SPDX-License-Identifier: MIT
# Meson test `install-gdb`: libkvmdbg-gdb as an outside program gets it.
# Install into a temporary DESTDIR; check kvmdbg-gdb.pc, <kvmdbg/gdb.h> (C99
# -pedantic, C++), libkvmdbg-gdb.so.0 (SONAME, only kvmdbg_gdb_* exported)
# and libkvmdbg-gdb.a (where default_library builds them; skipped with
# static); build examples/gdb-minimal.c with nothing but
# `pkg-config --cflags --libs kvmdbg kvmdbg-gdb`; then serve gdb from it
# (stepi, hbreak, memory, a register write, detach; no software breakpoint:
# in the x86 bed an INT3 in real mode reached the guest, not KVM's exit):
# in a VM test bed where one drives this ($KVMDBG_BED: the x86-vm host test
# `install-gdb`, its --gdb port relayed here), or on this host's KVM.
# Without a KVM the build checks alone run (the session is skipped).
#
# usage: install-gdb-test.sh BUILD_DIR VERSION GDB_MINIMAL.c [MESON COMMAND...]
set -eu
build=${1:?build dir}
version=${2:?version}
example=${3:?examples/gdb-minimal.c}
shift 3
[ $# -gt 0 ] || set -- meson
CC=${CC:-cc}
here=$(cd "$(dirname "$0")" && pwd)

destdir=$(mktemp -d "${TMPDIR:-/tmp}/kvmdbg-gdb-install.XXXXXX")
pid=
cleanup() {
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	rm -rf "$destdir"
}
trap cleanup EXIT
passed=0
failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
die() { fail "$*"; echo "install-gdb: $passed passed, $failed failed"; exit 1; }

"$@" install -C "$build" --no-rebuild --quiet --destdir "$destdir" >"$destdir/log" 2>&1 ||
	{ cat "$destdir/log"; die "meson install --destdir"; }

# What default_library built: the .so (shared, both) and the .a (static,
# both). This test runs the shared one; a static-only build's libkvmdbg-gdb.a
# is the release suite's static-vmm test.
deflib=$("$@" introspect "$build" --buildoptions | python3 -c \
	'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="default_library"][0])')
if [ "$deflib" = static ]; then
	echo "install-gdb: default_library=static: no libkvmdbg-gdb.so.0 to serve from (static-vmm links libkvmdbg-gdb.a)"
	exit 77
fi
pc=$(find "$destdir" -name kvmdbg-gdb.pc)
[ -n "$pc" ] || die "kvmdbg-gdb.pc not installed"
find "$destdir" -path '*/include/kvmdbg/gdb.h' | grep -q . || die "kvmdbg/gdb.h not installed"
find "$destdir" -path '*/include/kvmdbg/gdb-kvm.h' | grep -q . || die "kvmdbg/gdb-kvm.h not installed"
so=$(find "$destdir" -name 'libkvmdbg-gdb.so.0.*' -type f)
[ -n "$so" ] || die "libkvmdbg-gdb.so.0.* not installed"
libdir=$(dirname "$so")
[ -L "$libdir/libkvmdbg-gdb.so.0" ] && [ -L "$libdir/libkvmdbg-gdb.so" ] ||
	die "the .so.0 and .so links"
if [ "$deflib" = both ]; then
	[ -f "$libdir/libkvmdbg-gdb.a" ] || die "no libkvmdbg-gdb.a (default_library=both)"
	a=", .a"
else
	a=
fi
ok "installed (default_library=$deflib): ${pc#"$destdir"}, include/kvmdbg/gdb.h, ${so#"$destdir"}$a"

soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
[ "$soname" = libkvmdbg-gdb.so.0 ] && ok "SONAME $soname" || fail "SONAME is '$soname'"
leaks=$(nm -D --defined-only "$so" | awk '{ print $3 }' |
	grep -v -E -e '^kvmdbg_gdb_.*@@KVMDBG_GDB_0\.[0-9]+$' -e '^KVMDBG_GDB_0\.[0-9]+$' || true)
[ -z "$leaks" ] && ok "only kvmdbg_gdb_* exported, versioned KVMDBG_GDB_0.x" ||
	fail "exported symbols outside the API: $leaks"

PKG_CONFIG_LIBDIR=$(dirname "$pc")
PKG_CONFIG_PATH=$PKG_CONFIG_LIBDIR
PKG_CONFIG_SYSROOT_DIR=$destdir
export PKG_CONFIG_LIBDIR PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
v=$(pkg-config --modversion kvmdbg-gdb) && [ "$v" = "$version" ] &&
	ok "pkg-config kvmdbg-gdb: version $v" || fail "pkg-config version '$v', expected '$version'"
flags=$(pkg-config --cflags --libs kvmdbg kvmdbg-gdb) || die "pkg-config --cflags --libs"

for h in gdb.h gdb-kvm.h; do
	printf '#include <kvmdbg/%s>\n' "$h" >"$destdir/h.c"
	# shellcheck disable=SC2046
	$CC -std=c99 -pedantic -Wall -Wextra -Werror -fsyntax-only $(pkg-config --cflags kvmdbg-gdb) \
		"$destdir/h.c" && ok "$h is clean C99" || fail "$h is not clean C99"
	if command -v c++ >/dev/null 2>&1; then
		# shellcheck disable=SC2046
		c++ -x c++ -Wall -Wextra -Werror -fsyntax-only $(pkg-config --cflags kvmdbg-gdb) \
			"$destdir/h.c" && ok "$h compiles as C++" || fail "$h does not compile as C++"
	fi
done

# shellcheck disable=SC2086
$CC -std=gnu11 -Wall -Wextra -Werror -o "$destdir/gdb-minimal" "$example" -pthread $flags ||
	die "building gdb-minimal against the installed .pc: $flags"
lines=$(grep -c '' "$example")
ok "built examples/gdb-minimal.c ($lines lines) with: $flags"

gdb=$(command -v gdb || true)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if [ -n "${KVMDBG_BED:-}" ]; then
	# the consumer and both installed libraries go into the bed (its
	# initramfs has this machine's loader and libc); --gdb is relayed here
	interp=$(readelf -l "$destdir/gdb-minimal" | sed -n 's/.*interpreter: \(.*\)\]/\1/p')
	python3 "$here/../vm/vmbed" exec --copy "$libdir/libkvmdbg-gdb.so.0" \
		--copy "$(find "$destdir" -name 'libkvmdbg.so.0' | head -1)" -- \
		"$interp" --library-path /xfer "$destdir/gdb-minimal" --gdb "127.0.0.1:$port" \
		>"$destdir/vmm.log" 2>&1 &
	pid=$!
	where="the VM test bed $KVMDBG_BED"
elif [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	LD_LIBRARY_PATH=$libdir "$destdir/gdb-minimal" "127.0.0.1:$port" >"$destdir/vmm.log" 2>&1 &
	pid=$!
	where="this host's KVM"
else
	echo "install-gdb: no KVM here (the x86-vm bed runs the session): no gdb session"
	where=
fi
if [ -n "$where" ] && [ -z "$gdb" ]; then
	echo "install-gdb: no gdb: no session"
elif [ -n "$where" ]; then
	sleep 2
	out=$(timeout 120 "$gdb" -nx -batch -ex 'set confirm off' \
		-ex "target remote 127.0.0.1:$port" \
		-ex 'p/x $pc' -ex stepi -ex 'p/x $pc' -ex stepi -ex 'p/x $pc' -ex 'p $rax' \
		-ex 'hbreak *0x1001' -ex continue -ex 'p $rax' -ex delete \
		-ex 'x/3xb 0x1000' -ex 'set var $rax = 100' -ex stepi -ex stepi -ex 'p $rax' \
		-ex detach 2>&1) || true
	echo "$out" | sed 's/^/  | /'
	pcs=$(echo "$out" | sed -n 's/^\$[0-9]* = \(0x[0-9a-f]*\)$/\1/p' | tr '\n' ' ')
	raxs=$(echo "$out" | sed -n 's/^\$[0-9]* = \([0-9][0-9]*\)$/\1/p' | tr '\n' ' ')
	[ "$pcs" = "0x1000 0x1001 0x1000 " ] && ok "stepi twice through inc/jmp ($where)" ||
		fail "pcs '$pcs', expected 0x1000 0x1001 0x1000"
	echo "$out" | grep -q 'Breakpoint 1, 0x0*1001' && ok "hbreak stop" || fail "hbreak stop"
	echo "$out" | grep -q '0x1000:[[:space:]]*0x40[[:space:]]*0xeb[[:space:]]*0xfd' &&
		ok "memory read" || fail "x/3xb 0x1000"
	case "$raxs" in
	"1 2 101 ") ok "registers: ax counts 1, 2, then written 100 and stepped to 101" ;;
	*) fail "rax values '$raxs', expected '1 2 101 '" ;;
	esac
	echo "$out" | grep -qE 'Detaching|detached\]' && ok "detach" || fail "detach"
	wait "$pid" && ok "the VMM ends after detach" || fail "the VMM exit status"
	pid=
	[ "$failed" -eq 0 ] || sed 's/^/  vmm| /' "$destdir/vmm.log"
fi
echo "install-gdb: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
