#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: package.sh SOURCE_DIR WORK_DIR
#
# The Debian packages of debian/, built and checked the way a Debian
# builder and user meet them:
#   version   debian/changelog's upstream version is meson.build's
#   build     dpkg-buildpackage -us -uc -b on a copy of the source under
#             WORK_DIR (the .debs land in WORK_DIR, nowhere else); its
#             dh_auto_test runs the unit, abi, release and install suites,
#             and the kvm and examples ones where this builder has a KVM
#   lintian   lintian on the .changes: no error and no warning
#   chroot    tests/release/chroot-test.sh: the .debs in a clean Debian 12
#             chroot, outside programs built with pkg-config against them
#             (kvmdbg and kvmdbg-gdb, shared and static)
# The contents of each package and lintian's whole output go to the log.
# Ends with `kvmdbg-result: package: N passed, N failed`; exit 77 where
# there is no dpkg-buildpackage, debhelper or lintian (not Debian).
set -u
top=${1:?source dir}
work=${2:?work dir}
here=$(cd "$(dirname "$0")" && pwd)
passed=0
failed=0
ok() { echo "package: $1: ok"; passed=$((passed + 1)); }
bad() { echo "package: $1: FAILED${2:+: $2}"; failed=$((failed + 1)); }
finish() {
	echo "kvmdbg-result: package: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
}

for t in dpkg-buildpackage dh lintian dpkg-parsechangelog; do
	command -v "$t" >/dev/null 2>&1 || { echo "package: SKIP: no $t (not a Debian system?)"; exit 77; }
done

upstream=$(meson introspect "$top/meson.build" --projectinfo |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
debver=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
if [ "${debver%-*}" = "$upstream" ]; then ok "version: debian/changelog $debver, meson.build $upstream"; else
	bad "version" "debian/changelog $debver, meson.build $upstream"; fi

# A copy of the source: git's files where this is a checkout, else the
# tree less build directories.
rm -rf "$work"
src=$work/libkvmdbg-$upstream
mkdir -p "$src"
if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$top" && git ls-files -z -c -o --exclude-standard | xargs -0 tar -cf - --no-recursion) |
		tar -C "$src" -xf -
else
	(cd "$top" && tar -cf - --exclude='./build*' --exclude=./.git --exclude=./tests/vm/cache .) |
		tar -C "$src" -xf -
fi

if (cd "$src" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1; then
	ok "build: dpkg-buildpackage -us -uc -b"
	grep -E '^libkvmdbg: KVM on this builder|^ *[0-9]+/[0-9]+ libkvmdbg:' "$work/build.log" | sed 's/^/  | /'
else
	tail -n 60 "$work/build.log"
	bad "build" "dpkg-buildpackage (log: $work/build.log)"
	finish
fi

changes=$(find "$work" -maxdepth 1 -name '*.changes' | head -n 1)
for deb in "$work"/*.deb; do
	echo "package: $(basename "$deb"):"
	dpkg-deb -c "$deb" | awk '{ print "  | " $6 ($7 ? " " $7 " " $8 : "") }'
done
lintian --display-info --show-overrides --tag-display-limit 0 "$changes" >"$work/lintian.log" 2>&1
lrc=$?
sed 's/^/  | lintian: /' "$work/lintian.log"
if [ "$lrc" -eq 0 ] && ! grep -q -E '^[EW]: ' "$work/lintian.log"; then
	ok "lintian: $(grep -c -E '^[IPXO]: ' "$work/lintian.log") info, pedantic or overridden tags, no error or warning"
else
	bad "lintian" "$(grep -c -E '^E: ' "$work/lintian.log") errors, $(grep -c -E '^W: ' "$work/lintian.log") warnings (exit $lrc)"
fi

"$here/chroot-test.sh" "$work" "$here/consumer.c" "$upstream" "$work" "$here/consumer-gdb.c"
rc=$?
case $rc in
0) ok "chroot: the .debs in a clean Debian 12, outside programs built with pkg-config (kvmdbg, kvmdbg-gdb)" ;;
77) echo "package: chroot: skipped" ;;
*) bad "chroot" ;;
esac
finish
