#!/bin/sh
# SPDX-License-Identifier: MIT
# Meson test `static-vmm` (suite release): a statically linked VMM. Install
# the build into a DESTDIR under WORK_DIR, build consumer.c with
#   cc -static ... $(pkg-config --static --cflags --libs kvmdbg)
# and consumer-gdb.c with
#   cc -static ... $(pkg-config --static --cflags --libs kvmdbg-gdb)
# against it and nothing else, check that the results have no dynamic
# section (libkvmdbg.a and libkvmdbg-gdb.a, not the .so), and run them
# (not with $KVMDBG_NO_RUN, its text the reason: a cross build that cannot
# run its binaries).
#
# usage: static-vmm.sh BUILD_DIR WORK_DIR VERSION CONSUMER.c CONSUMER-GDB.c [MESON COMMAND...]
# (the C compiler command from $CC)
set -eu
build=${1:?build dir}
work=${2:?work dir}/static-vmm
version=${3:?version}
consumer=${4:?consumer source}
consumer_gdb=${5:?consumer-gdb source}
shift 5
[ $# -gt 0 ] || set -- meson
CC=${CC:-cc}

fail() { echo "static-vmm: FAIL: $*"; exit 1; }
step() { echo "static-vmm: $*"; }
# run_vmm WHAT COMMAND...: run a built VMM and show its output, or say why
# not ($KVMDBG_NO_RUN).
run_vmm() {
	what=$1
	shift
	if [ -n "${KVMDBG_NO_RUN:-}" ]; then
		step "not run: $KVMDBG_NO_RUN"
		return
	fi
	out=$("$@") || { echo "$out"; fail "$what failed"; }
	echo "$out" | sed 's/^/  | /'
}

rm -rf "$work"
mkdir -p "$work"
dest=$work/dest
"$@" install -C "$build" --no-rebuild --quiet --destdir "$dest" >"$work/install.log" 2>&1 ||
	{ cat "$work/install.log"; fail "meson install --destdir"; }
pc=$(find "$dest" -name kvmdbg.pc)
[ -n "$pc" ] || fail "no kvmdbg.pc installed"
a=$(find "$dest" -name libkvmdbg.a)
[ -n "$a" ] || fail "no libkvmdbg.a installed (default_library=$(
	"$@" introspect "$build" --buildoptions | python3 -c \
	'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="default_library"][0])'))"
step "installed ${a#"$dest"}"

PKG_CONFIG_LIBDIR=$(dirname "$pc")
PKG_CONFIG_PATH=$PKG_CONFIG_LIBDIR
PKG_CONFIG_SYSROOT_DIR=$dest
export PKG_CONFIG_LIBDIR PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
libs=$(pkg-config --libs kvmdbg) || fail "pkg-config --libs kvmdbg"
slibs=$(pkg-config --static --libs kvmdbg) || fail "pkg-config --static --libs kvmdbg"
step "pkg-config --libs: $libs"
step "pkg-config --static --libs: $slibs"
# No thread library: libkvmdbg calls no pthread function (its lock is a
# futex of its own), so its .pc asks for none.
case " $slibs " in
*" -pthread "*) fail "kvmdbg.pc asks for -pthread, which libkvmdbg does not use" ;;
esac
u=$(nm -u "$a" | sed -n 's/^ *U \(pthread_[a-z_]*\)$/\1/p' | sort -u | tr "\n" " " | sed "s/ $//")
[ -z "$u" ] || fail "libkvmdbg.a calls $u: kvmdbg.pc must then ask for -pthread"

# shellcheck disable=SC2046,SC2086
$CC -static -std=c11 -Wall -Wextra -Werror -o "$work/vmm" "$consumer" \
	$(pkg-config --static --cflags kvmdbg) $slibs || fail "building the static VMM"
if LC_ALL=C readelf -d "$work/vmm" | grep -q 'There is no dynamic section'; then
	step "built $work/vmm: static, no dynamic section"
else
	LC_ALL=C readelf -d "$work/vmm"
	fail "the VMM is not static"
fi
nm "$work/vmm" | grep -q ' T kvmdbg_version$' || fail "kvmdbg_version is not linked into the VMM"

run_vmm "the static VMM" "$work/vmm" "$version"

# libkvmdbg-gdb the same way: its .a and .pc, Libs.private -pthread.
[ -n "$(find "$dest" -name libkvmdbg-gdb.a)" ] || fail "no libkvmdbg-gdb.a installed"
gslibs=$(pkg-config --static --libs kvmdbg-gdb) || fail "pkg-config --static --libs kvmdbg-gdb"
step "pkg-config --static --libs kvmdbg-gdb: $gslibs"
case " $gslibs " in
*" -pthread "*) ;;
*) fail "kvmdbg-gdb's Libs.private lacks -pthread" ;;
esac
# shellcheck disable=SC2046,SC2086
$CC -static -std=c11 -Wall -Wextra -Werror -o "$work/vmm-gdb" "$consumer_gdb" \
	$(pkg-config --static --cflags kvmdbg-gdb) $gslibs || fail "building the static gdb VMM"
LC_ALL=C readelf -d "$work/vmm-gdb" | grep -q 'There is no dynamic section' ||
	fail "the gdb VMM is not static"
nm "$work/vmm-gdb" | grep -q ' T kvmdbg_gdb_target_xml$' ||
	fail "kvmdbg_gdb_target_xml is not linked into the gdb VMM"
step "built $work/vmm-gdb: static, no dynamic section"
run_vmm "the static gdb VMM" "$work/vmm-gdb"
rm -rf "$dest"
step "ok"
