#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: chroot-test.sh DEB_DIR CONSUMER.c VERSION WORK_DIR [CONSUMER-GDB.c]
#
# The .debs of DEB_DIR (dpkg-buildpackage's output: libkvmdbg0,
# libkvmdbg-gdb0, libkvmdbg-dev, kvmdbg-tools) installed with dpkg into a
# clean Debian 12 chroot, where an outside program (CONSUMER.c) is built
# with nothing but `pkg-config --cflags --libs kvmdbg`, and again statically
# with `pkg-config --static`, and run; so is CONSUMER-GDB.c (default: next
# to CONSUMER.c) with `pkg-config ... kvmdbg-gdb`; kvmdbg-run (which needs
# libkvmdbg0 and libkvmdbg-gdb0) and both man pages must be there. The chroot is debootstrap's bookworm minbase with gcc, libc6-dev
# and pkgconf, made once from debootstrap's default Debian mirror and kept as a tarball in the
# test cache ($KVMDBG_CACHE, default ~/.cache/kvmdbg); each run unpacks it
# afresh under WORK_DIR and removes it after. Needs root (chroot).
# Exit 77 with the reason where it cannot run: not root, no debootstrap,
# or the Debian mirror unreachable when there is no cached tarball yet.
set -u
debs=${1:?deb dir}
consumer=${2:?consumer source}
version=${3:?version}
work=${4:?work dir}/chroot
consumer_gdb=${5:-$(dirname "$consumer")/consumer-gdb.c}
cache=${KVMDBG_CACHE:-$HOME/.cache/kvmdbg}
tarball=$cache/debian12-chroot.tar.gz

fail() { echo "chroot-test: FAIL: $*"; exit 1; }
skip() { echo "chroot-test: SKIP: $*"; exit 77; }
step() { echo "chroot-test: $*"; }

[ "$(id -u)" -eq 0 ] || skip "chroot needs root"
set -- "$debs"/libkvmdbg0_*.deb "$debs"/libkvmdbg-gdb0_*.deb "$debs"/libkvmdbg-dev_*.deb \
	"$debs"/kvmdbg-tools_*.deb
for d in "$@"; do [ -f "$d" ] || fail "no $d"; done

if [ ! -f "$tarball" ]; then
	command -v debootstrap >/dev/null 2>&1 || skip "no debootstrap to make $tarball"
	step "making $tarball: debootstrap --variant=minbase bookworm"
	rm -rf "$work"
	mkdir -p "$work" "$cache"
	if ! debootstrap --variant=minbase --include=gcc,libc6-dev,pkgconf bookworm \
		"$work/bootstrap" >"$work/debootstrap.log" 2>&1; then
		tail -n 20 "$work/debootstrap.log"
		if grep -q -E 'Failed getting release file|Failure trying to run|Could not resolve|unable to resolve' \
			"$work/debootstrap.log" && ! grep -q 'Retrieving Release' "$work/debootstrap.log"; then
			rm -rf "$work"
			skip "the Debian mirror is unreachable: no Debian 12 chroot"
		fi
		rm -rf "$work"
		fail "debootstrap"
	fi
	tar -C "$work/bootstrap" --numeric-owner -czf "$tarball.tmp" . || fail "tar of the chroot"
	mv "$tarball.tmp" "$tarball"
	rm -rf "$work"
	step "cached $(du -h "$tarball" | cut -f1) $tarball"
fi

rm -rf "$work"
mkdir -p "$work/root"
trap 'rm -rf "$work"' EXIT
tar -C "$work/root" --numeric-owner -xzf "$tarball" || fail "unpacking $tarball"
step "clean chroot: Debian $(cat "$work/root/etc/debian_version") from $tarball"
mkdir -p "$work/root/tmp/kvmdbg"
cp "$@" "$work/root/tmp/kvmdbg/"
cp "$consumer" "$work/root/tmp/kvmdbg/consumer.c"
cp "$consumer_gdb" "$work/root/tmp/kvmdbg/consumer-gdb.c"

# shellcheck disable=SC2016 # expanded inside the chroot
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 V="$version" \
	chroot "$work/root" /bin/sh -c '
set -e
cd /tmp/kvmdbg
dpkg -i ./*.deb >dpkg.log 2>&1 || { cat dpkg.log; exit 1; }
dpkg-query -W -f "installed: \${Package} \${Version}\n" libkvmdbg0 libkvmdbg-gdb0 libkvmdbg-dev \
	kvmdbg-tools
echo "pkg-config --cflags --libs kvmdbg: $(pkg-config --cflags --libs kvmdbg)"
echo "pkg-config --static --libs kvmdbg: $(pkg-config --static --libs kvmdbg)"
cc -std=c11 -Wall -Wextra -Werror -o consumer consumer.c $(pkg-config --cflags --libs kvmdbg)
./consumer "$V"
cc -static -std=c11 -Wall -Wextra -Werror -o consumer-static consumer.c \
	$(pkg-config --static --cflags --libs kvmdbg)
./consumer-static "$V"
echo "pkg-config --cflags --libs kvmdbg-gdb: $(pkg-config --cflags --libs kvmdbg-gdb)"
echo "pkg-config --static --libs kvmdbg-gdb: $(pkg-config --static --libs kvmdbg-gdb)"
cc -std=c11 -Wall -Wextra -Werror -o consumer-gdb consumer-gdb.c $(pkg-config --cflags --libs kvmdbg-gdb)
readelf -d consumer-gdb | grep -q "NEEDED.*libkvmdbg-gdb.so.0"
./consumer-gdb
cc -static -std=c11 -Wall -Wextra -Werror -o consumer-gdb-static consumer-gdb.c \
	$(pkg-config --static --cflags --libs kvmdbg-gdb)
./consumer-gdb-static
echo "kvmdbg-run needs: $(readelf -d /usr/bin/kvmdbg-run | sed -n "s/.*(NEEDED).*\[\(.*\)\].*/\1/p" | tr "\n" " ")"
kvmdbg-run --help >/dev/null
echo "kvmdbg-run --help: ok"
for m in /usr/share/man/man1/kvmdbg-run.1.gz /usr/share/man/man3/libkvmdbg.3.gz; do
	test -s "$m"
	echo "man page: $m"
done
' >"$work/chroot.log" 2>&1
rc=$?
sed 's/^/  | /' "$work/chroot.log"
[ "$rc" -eq 0 ] || fail "in the chroot (exit $rc)"
step "ok"
