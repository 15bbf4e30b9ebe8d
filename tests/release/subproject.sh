#!/bin/sh
# SPDX-License-Identifier: MIT
# Meson test `subproject` (suite release): an outside Meson project
# (tests/release/subproject/) that takes libkvmdbg as a subproject through a
# wrap with `[provide] kvmdbg = kvmdbg_dep`, so its plain
# dependency('kvmdbg') finds meson.override_dependency()'s answer. It is
# built twice, once with the subproject's default library (shared: the
# consumer must need libkvmdbg.so.0) and once with default_library=static
# (no libkvmdbg.so.0 needed), with --wrap-mode=forcefallback so that an
# installed kvmdbg.pc cannot stand in for the subproject; each consumer runs.
#
# usage: subproject.sh SOURCE_DIR WORK_DIR VERSION CONSUMER_PROJECT_DIR CONSUMER.c [MESON COMMAND...]
set -eu
src=${1:?source dir}
work=${2:?work dir}/subproject
version=${3:?version}
proj=${4:?consumer project dir}
consumer=${5:?consumer source}
consumer_gdb=${6:?consumer-gdb source}
shift 6
[ $# -gt 0 ] || set -- meson

fail() { echo "subproject: FAIL: $*"; exit 1; }
step() { echo "subproject: $*"; }

# The outside project: its meson.build, the consumer, and of this source
# tree what a subproject with tests, examples, docs and benchmarks disabled
# builds from (the top-level meson files, include/, lib/, gdb/, man/).
rm -rf "$work"
mkdir -p "$work/proj/subprojects/libkvmdbg"
cp "$proj/meson.build" "$proj/meson_options.txt" "$consumer" "$consumer_gdb" "$work/proj/"
cp "$proj/libkvmdbg.wrap" "$work/proj/subprojects/"
for f in meson.build meson_options.txt include lib gdb man; do
	cp -R "$src/$f" "$work/proj/subprojects/libkvmdbg/"
done
step "outside project in $work/proj, libkvmdbg $version as subprojects/libkvmdbg"

for lib in shared static; do
	b=$work/build-$lib
	"$@" setup "$b" "$work/proj" --wrap-mode=forcefallback -Dkvmdbg_library=$lib \
		>"$b.log" 2>&1 || { cat "$b.log"; fail "meson setup ($lib)"; }
	if ! grep -q "^Executing subproject libkvmdbg" "$b.log" ||
		! grep -q "^Dependency kvmdbg found: YES $version (overridden)" "$b.log" ||
		! grep -q "^Dependency kvmdbg-gdb found: YES $version (overridden)" "$b.log"; then
		cat "$b.log"
		fail "dependency('kvmdbg') or dependency('kvmdbg-gdb') did not come from the subproject ($lib)"
	fi
	"$@" compile -C "$b" >>"$b.log" 2>&1 || { tail -n 40 "$b.log"; fail "build ($lib)"; }
	needed=$(LC_ALL=C readelf -d "$b/consumer" | sed -n 's/.*(NEEDED).*\[\(.*\)\].*/\1/p' | tr '\n' ' ')
	case "$lib:$needed" in
	shared:*libkvmdbg.so.0*) ;;
	static:*libkvmdbg*) fail "default_library=static, yet the consumer needs: $needed" ;;
	static:*) ;;
	*) fail "default_library=$lib: the consumer needs: $needed" ;;
	esac
	step "$lib: built; NEEDED: $needed"
	out=$("$b/consumer" "$version") || { echo "$out"; fail "the consumer failed ($lib)"; }
	echo "$out" | sed 's/^/  | /'
	needed=$(LC_ALL=C readelf -d "$b/consumer-gdb" | sed -n 's/.*(NEEDED).*\[\(.*\)\].*/\1/p' | tr '\n' ' ')
	case "$lib:$needed" in
	shared:*libkvmdbg-gdb.so.0*) ;;
	static:*libkvmdbg*) fail "default_library=static, yet consumer-gdb needs: $needed" ;;
	static:*) ;;
	*) fail "default_library=$lib: consumer-gdb needs: $needed" ;;
	esac
	step "$lib: consumer-gdb built; NEEDED: $needed"
	out=$("$b/consumer-gdb") || { echo "$out"; fail "consumer-gdb failed ($lib)"; }
	echo "$out" | sed 's/^/  | /'
done
rm -rf "$work"
step "ok"
