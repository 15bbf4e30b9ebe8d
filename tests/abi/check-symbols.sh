#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: check-symbols.sh LIB_SO LIB_SYM [HEADER...]
# (libkvmdbg.so and lib/kvmdbg.sym with kvmdbg.h, or libkvmdbg-gdb.so and
# gdb/kvmdbg-gdb.sym with gdb.h and gdb-kvm.h)
# The dynamic symbols the library defines (nm -D --defined-only) must be
# exactly the global list of the version script: nothing leaks (an internal
# function without `static` or a test seam), nothing is missing (a function
# in the script that the build lost), every one carries the version node the
# script lists it in (a script may have several: a release that added
# functions), and every one is declared in one of the public headers.
set -eu
so=$1
sym=$2
shift 2
[ $# -gt 0 ] || set -- "$(dirname "$sym")/../include/kvmdbg/kvmdbg.h"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
	echo "not ok 1 - abi-symbols: $*"
	echo "1..1"
	exit 1
}

[ -f "$so" ] || fail "no $so"
# The version script's global: entries, one "name node" per line.
awk '/^[A-Za-z0-9_.]+[ \t]*\{/ { node = $1; next }
     /^[ \t]*global:/ { g = 1; next } /^[ \t]*local:/ || /^\}/ { g = 0; next }
     g && $1 ~ /^[A-Za-z_][A-Za-z0-9_]*;$/ { sub(/;$/, "", $1); print $1, node }' "$sym" |
	sort >"$tmp/want.v"
cut -d' ' -f1 "$tmp/want.v" >"$tmp/want"
node=$(sed -n 's/^\([A-Za-z0-9_.]*\)[[:space:]]*{.*/\1/p' "$sym" | tr '\n' ' ')
[ -n "$node" ] || fail "no version node in $sym"
[ -s "$tmp/want" ] || fail "no global symbols in $sym"

# Defined dynamic symbols, without the version node's own absolute symbol.
nm -D --defined-only --with-symbol-versions "$so" | awk '$2 != "A" { print $3 }' | sort >"$tmp/got.v"
sed 's/@.*//' "$tmp/got.v" | sort >"$tmp/got"

leaked=$(comm -13 "$tmp/want" "$tmp/got")
missing=$(comm -23 "$tmp/want" "$tmp/got")
[ -z "$leaked" ] || fail "exported but not in $sym: $(echo "$leaked" | tr "\n" " ")"
[ -z "$missing" ] || fail "in $sym but not exported: $(echo "$missing" | tr "\n" " ")"
unversioned=$(nm -D --defined-only --with-symbol-versions "$so" | awk '$2 != "A" { print $3 }' |
	sed 's/@@*/ /' | sort | comm -13 "$tmp/want.v" - || true)
[ -z "$unversioned" ] || fail "not in the version node $sym lists them in: $(echo "$unversioned" | tr "\n" " ")"
while read -r s; do
	grep -q "[^A-Za-z0-9_]$s(" "$@" || fail "$s is exported but not declared in $*"
done <"$tmp/want"
echo "ok 1 - abi-symbols: $(wc -l <"$tmp/want") symbols of $node exported, exactly $sym's list, each in its node, all declared in $(for h; do basename "$h"; done | tr '\n' ' ')"
echo "1..1"
