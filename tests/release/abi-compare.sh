#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: abi-compare.sh SOURCE_DIR BUILD_DIR [LIB]
# abidiff (abigail-tools) of BUILD_DIR's LIB.so.0 against the committed
# baseline abi/LIB-<arch>.abi (scripts/abi-dump -l LIB); LIB is libkvmdbg
# (the default, lib/kvmdbg.sym) or libkvmdbg-gdb (gdb/kvmdbg-gdb.sym); through the
# public headers. Passes when nothing changed, or when the only changes are
# added functions or variables in a version node the baseline does not have
# (the .sym moved on: a compatible release). Anything else fails: a
# removed or changed function or variable, a changed public type, or an
# addition in a node the baseline already has. Then move the symbol version
# (and for an incompatible change the SONAME) and regenerate the baseline
# with scripts/abi-dump. Ends with `kvmdbg-result: abidiff: N passed, N failed`;
# exit 77 (skipped) where there is no baseline for this arch.
set -u
top=${1:?source dir}
build=${2:?build dir}
lib=${3:-libkvmdbg}
case $lib in
libkvmdbg) sub=lib sym=lib/kvmdbg.sym ;;
libkvmdbg-gdb) sub=gdb sym=gdb/kvmdbg-gdb.sym ;;
*) echo "abidiff: unknown library $lib (libkvmdbg or libkvmdbg-gdb)"; exit 2 ;;
esac
arch=$(uname -m)
base=$top/abi/$lib-$arch.abi
result() {
	echo "kvmdbg-result: abidiff: $1 passed, $2 failed"
	[ "$2" -eq 0 ]
	exit
}
if [ ! -f "$base" ]; then
	echo "abidiff: no ABI baseline for $arch ($base): not compared"
	exit 77
fi
so=$(find "$build/$sub" -maxdepth 1 -name "$lib.so.0.*" -type f | head -n 1)
[ -n "$so" ] || { echo "abidiff: no $lib.so.0.* in $build/$sub"; result 0 1; }
out=$(abidiff --no-show-locs --drop-private-types \
	--headers-dir2 "$top/include/kvmdbg" --header-file2 "$build/include/kvmdbg/kvmdbg-version.h" \
	"$base" "$so" 2>&1)
rc=$?
echo "abidiff: $(basename "$base") vs $so: exit $rc"
[ -z "$out" ] || echo "$out" | sed 's/^/  | /'
if [ "$rc" -eq 0 ]; then
	echo "abidiff: no ABI change"
	result 1 0
fi
if [ "$rc" -ne 4 ]; then
	# 1 error, 2 usage, 8 incompatible (a removed function or variable).
	echo "abidiff: incompatible change or abidiff error: move the SONAME and the symbol version, and regenerate the baseline (scripts/abi-dump -l $lib)"
	result 0 1
fi
# Exit 4: only additions, and only in version nodes the baseline lacks.
summary=$(echo "$out" | grep -E '^(Functions|Variables) changes summary:')
changed=$(echo "$summary" | grep -v -E ': 0 Removed(.*), 0 Changed(.*), [0-9]+ Added' || true)
known=$(sed -n "s/.*<elf-symbol name='[^']*' version='\([^']*\)'.*/\1/p" "$base" | sort -u)
stale=
for node in $(echo "$out" | sed -n 's/.*{[A-Za-z0-9_]*@@*\([A-Za-z0-9_.]*\)}.*/\1/p' | sort -u); do
	echo "$known" | grep -qx "$node" && stale="$stale $node"
done
if [ -z "$summary" ] || [ -n "$changed" ]; then
	echo "abidiff: changed or removed functions, variables or types: move the symbol version (and for an incompatible change the SONAME), and regenerate the baseline (scripts/abi-dump)"
	result 0 1
fi
if [ -n "$stale" ]; then
	echo "abidiff: additions in version nodes the baseline already has ($stale): add them in a new node of $sym"
	result 0 1
fi
echo "abidiff: only additions, in new version nodes: compatible (regenerate the baseline with the release)"
result 1 0
