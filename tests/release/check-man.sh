#!/bin/sh
# SPDX-License-Identifier: MIT
# Meson test `man` (suite release): the man pages say what the code has.
#  - each library's page (libkvmdbg(3), libkvmdbg-gdb(3)) names every symbol
#    of its version script;
#  - kvmdbg-run(1) documents exactly the long options of `kvmdbg-run --help`
#    (an option added to the program fails this until the page has it);
#  - each generated page formats without a groff or man warning (what
#    lintian's groff-message check sees), where man(1) is installed.
#
# usage: check-man.sh [--lib SYM PAGE_SCD PAGE]... [--run PAGE_SCD PAGE KVMDBG_RUN]
# ($KVMDBG_NO_RUN, its text the reason: everything but running KVMDBG_RUN)
set -u
passed=0
failed=0
ok() { echo "man: $1: ok"; passed=$((passed + 1)); }
bad() { echo "man: $1: FAILED${2:+: $2}"; failed=$((failed + 1)); }

pages=
run=
while [ $# -gt 0 ]; do
	case $1 in
	--lib)
		sym=$2 scd=$3 page=$4
		shift 4
		pages="$pages $page"
		name=$(basename "$page" | sed 's/\.\([0-9]\)$/(\1)/')
		missing=
		syms=$(sed -n 's/^[[:space:]]*\(kvmdbg_[A-Za-z0-9_]*\);.*/\1/p' "$sym")
		for s in $syms; do
			grep -q "\*$s\*(" "$scd" || missing="$missing $s"
		done
		if [ -z "$missing" ] && [ -n "$syms" ]; then
			ok "$name names the $(echo "$syms" | wc -l) exported functions"
		else
			bad "$name names every exported function" "missing:$missing"
		fi
		;;
	--run)
		run_scd=$2 run_man=$3 run=$4
		shift 4
		;;
	*)
		echo "check-man: unknown argument $1" >&2
		exit 2
		;;
	esac
done

[ -z "$run" ] || pages="$pages $run_man"
if [ -n "$run" ] && [ -n "${KVMDBG_NO_RUN:-}" ]; then
	# A cross build without an exe wrapper: kvmdbg-run cannot say --help.
	echo "man: kvmdbg-run(1) against kvmdbg-run --help: skipped: $KVMDBG_NO_RUN"
elif [ -n "$run" ]; then
	"$run" --help | grep -o -- '--[a-z][a-z-]*' | sort -u >"$run_man.help-opts"
	sed -n 's/^\*\(-h\*, \*\)\{0,1\}\(--[a-z][a-z-]*\)\*.*/\2/p' "$run_scd" | sort -u >"$run_man.page-opts"
	d=$(diff "$run_man.help-opts" "$run_man.page-opts" | sed -n 's/^< /only in --help: /p; s/^> /only in the page: /p' | tr '\n' ' ')
	if [ -z "$d" ] && [ -s "$run_man.help-opts" ]; then
		ok "kvmdbg-run(1) documents the $(wc -l <"$run_man.help-opts") options of kvmdbg-run --help"
	else
		bad "kvmdbg-run(1) documents the options of kvmdbg-run --help" "$d"
	fi
	rm -f "$run_man.help-opts" "$run_man.page-opts"
fi

for page in $pages; do
	name=$(basename "$page")
	if ! command -v man >/dev/null 2>&1; then
		echo "man: $name: man(1) not installed: formatting not checked"
		continue
	fi
	w=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$page" 2>&1 >/dev/null)
	if [ -z "$w" ]; then ok "$name formats without warnings"; else bad "$name formats without warnings" "$w"; fi
done
echo "kvmdbg-result: man: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
