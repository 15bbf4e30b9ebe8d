#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: check-symbols.sh LIB_SO LIB_SYM [HEADER]
# (libkvmdbg.so and lib/kvmdbg.sym with kvmdbg.h, or libkvmdbg-gdb.so and
# gdb/kvmdbg-gdb.sym with gdb.h)
# The dynamic symbols the library defines (nm -D --defined-only) must be
# exactly the global list of the version script: nothing leaks (an internal
# function without `static` or a test seam), nothing is missing (a function
# in the script that the build lost), every one carries the script's version
# node, and every one is declared in the public header.
set -eu
so=$1
sym=$2
hdr=${3:-$(dirname "$sym")/../include/kvmdbg/kvmdbg.h}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
	echo "not ok 1 - abi-symbols: $*"
	echo "1..1"
	exit 1
}

[ -f "$so" ] || fail "no $so"
# The version script's nodes and their global: names, "name@@NODE" a line
# (a later node, `NODE { global: ...; } OLDER;`, adds names of its own).
awk '/^[A-Za-z0-9_.]+[[:space:]]*\{/ { node = $1; sub(/\{.*/, "", node); on = 0; next }
	/global:/ { on = 1; next }
	/local:|\}/ { on = 0; next }
	on { gsub(/[[:space:];]/, ""); if ($0 != "") print $0 "@@" node }' "$sym" | sort >"$tmp/want.v"
sed 's/@.*//' "$tmp/want.v" | sort >"$tmp/want"
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
unversioned=$(comm -13 "$tmp/want.v" "$tmp/got.v")
[ -z "$unversioned" ] || fail "not in their version node of $sym: $(echo "$unversioned" | tr "\n" " ")"
while read -r s; do
	grep -q "[^A-Za-z0-9_]$s(" "$hdr" || fail "$s is exported but not declared in $hdr"
done <"$tmp/want"
echo "ok 1 - abi-symbols: $(wc -l <"$tmp/want") symbols of ${node% } exported, exactly $sym's list, all declared in $(basename "$hdr")"
echo "1..1"
