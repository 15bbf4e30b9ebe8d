#!/bin/sh
# SPDX-License-Identifier: MIT
# Meson test `install`: install into a temporary DESTDIR, then build an outside
# program with `pkg-config --cflags --libs kvmdbg` against the installed copy
# and run it: here, or in a VM test bed where one drives it ($KVMDBG_BED:
# the x86-vm host test `install`), so that its probe meets a real KVM. Also checks the SONAME and that only kvmdbg_* symbols are
# exported. With $KVMDBG_NO_RUN (its text the reason: a cross build that
# cannot run its binaries) everything but the run.
#
# usage: install-test.sh BUILD_DIR VERSION CONSUMER.c [MESON COMMAND...]
# (the C compiler command from $CC; meson from the arguments, else `meson`)
set -eu
build=${1:?build dir}
version=${2:?version}
consumer=${3:?consumer source}
shift 3
[ $# -gt 0 ] || set -- meson
CC=${CC:-cc}

destdir=$(mktemp -d "${TMPDIR:-/tmp}/kvmdbg-install.XXXXXX")
trap 'rm -rf "$destdir"' EXIT
fail() { echo "install-test: FAIL: $*"; exit 1; }
step() { echo "install-test: $*"; }

"$@" install -C "$build" --no-rebuild --quiet --destdir "$destdir" >"$destdir.log" 2>&1 ||
	{ cat "$destdir.log"; rm -f "$destdir.log"; fail "meson install --destdir"; }
rm -f "$destdir.log"
step "installed into $destdir"

pc=$(find "$destdir" -name kvmdbg.pc)
if [ -z "$pc" ] || [ "$(echo "$pc" | wc -l)" -ne 1 ]; then
	fail "expected one kvmdbg.pc, found: '$pc'"
fi
hdr=$(find "$destdir" -path '*/include/kvmdbg/kvmdbg.h')
[ -n "$hdr" ] || fail "kvmdbg/kvmdbg.h not installed"
so=$(find "$destdir" -name 'libkvmdbg.so.0.*' -type f)
[ -n "$so" ] || fail "libkvmdbg.so.0.* not installed"
libdir=$(dirname "$so")
[ -L "$libdir/libkvmdbg.so.0" ] || fail "no libkvmdbg.so.0 symlink"
[ -L "$libdir/libkvmdbg.so" ] || fail "no libkvmdbg.so development symlink"
step "found ${pc#"$destdir"}, ${hdr#"$destdir"}, ${so#"$destdir"}"

soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
[ "$soname" = libkvmdbg.so.0 ] || fail "SONAME is '$soname', expected libkvmdbg.so.0"
step "SONAME $soname"

# Exported symbols: only the kvmdbg_ API (and the version node).
leaks=$(nm -D --defined-only "$so" | awk '{ print $3 }' | grep -v -e '^kvmdbg_' -e '^KVMDBG_' || true)
[ -z "$leaks" ] || fail "exported symbols outside the API: $leaks"
step "$(nm -D --defined-only "$so" | grep -c ' T kvmdbg_') kvmdbg_* functions exported, nothing else"

# pkg-config against the DESTDIR only: the .pc holds absolute prefix paths,
# the sysroot maps them into the DESTDIR.
PKG_CONFIG_LIBDIR=$(dirname "$pc")
PKG_CONFIG_PATH=$PKG_CONFIG_LIBDIR
PKG_CONFIG_SYSROOT_DIR=$destdir
export PKG_CONFIG_LIBDIR PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
v=$(pkg-config --modversion kvmdbg) || fail "pkg-config --modversion kvmdbg"
[ "$v" = "$version" ] || fail "pkg-config version '$v', expected '$version'"
flags=$(pkg-config --cflags --libs kvmdbg) || fail "pkg-config --cflags --libs kvmdbg"
case "$flags" in
*"-I$destdir/"*) ;;
*) fail "pkg-config cflags do not point into the DESTDIR: $flags" ;;
esac
step "pkg-config: $flags"

# shellcheck disable=SC2086
$CC -std=c11 -Wall -Wextra -Werror -o "$destdir/consumer" "$consumer" $flags ||
	fail "building the consumer"
# The header alone, as C99 with -pedantic, and as C++ where there is a compiler.
printf '#include <kvmdbg/kvmdbg.h>\n' >"$destdir/h.c"
# shellcheck disable=SC2046,SC2086
$CC -std=c99 -pedantic -Wall -Wextra -Werror -fsyntax-only $(pkg-config --cflags kvmdbg) \
	"$destdir/h.c" || fail "kvmdbg.h is not clean C99"
if command -v c++ >/dev/null 2>&1; then
	# shellcheck disable=SC2046
	c++ -x c++ -Wall -Wextra -Werror -fsyntax-only $(pkg-config --cflags kvmdbg) \
		"$destdir/h.c" || fail "kvmdbg.h does not compile as C++"
fi
step "built the consumer"

if [ -n "${KVMDBG_NO_RUN:-}" ]; then
	# A cross build without an exe wrapper: built and checked, not run.
	step "not run: $KVMDBG_NO_RUN"
	step "ok"
	exit 0
fi
if [ -n "${KVMDBG_BED:-}" ]; then
	# A VM test bed's KVM (vmbed run --host-test): the consumer and the
	# installed library go into the VM, whose initramfs has this machine's
	# loader (the consumer's PT_INTERP) and libc; /xfer holds the copies.
	vmbed=$(cd "$(dirname "$0")" && pwd)/vm/vmbed
	interp=$(readelf -l "$destdir/consumer" | sed -n 's/.*interpreter: \(.*\)\]/\1/p')
	out=$(python3 "$vmbed" exec --copy "$libdir/libkvmdbg.so.0" -- \
		"$interp" --library-path /xfer "$destdir/consumer") ||
		{ echo "$out"; fail "consumer failed in the VM test bed"; }
	want=/xfer/
	echo "$out" | grep -q '^kvmdbg_probe(/dev/kvm): arch ' ||
		{ echo "$out"; fail "the consumer did not probe the bed's KVM"; }
	step "ran the consumer in the VM test bed"
else
	out=$(LD_LIBRARY_PATH=$libdir "$destdir/consumer") || { echo "$out"; fail "consumer failed"; }
	want=$destdir/
fi
echo "$out" | sed 's/^/  | /'
loaded=$(echo "$out" | sed -n 's/^library: //p')
case "$loaded" in
"$want"*) ;;
*) fail "the consumer loaded '$loaded', not the installed copy" ;;
esac
step "ok"
