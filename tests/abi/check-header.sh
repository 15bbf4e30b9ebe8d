#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: check-header.sh INCLUDE_DIR...
# (the source include/ and the build's, which has the generated
# kvmdbg/kvmdbg-version.h)
# The public header on its own, as C99 with -pedantic -Werror, as C11 and
# C17, and as C++ (C++11, C++17, C++20; <stdint.h> and 1ULL need C++11) with -pedantic -Werror, using $CC
# (default cc) and $CXX (default g++, then clang++): self-contained, no GNU
# extensions, extern "C" linkage that a C++ program can call.
# TAP on stdout: one test per language mode and one for the C++ linkage.
set -u
inc=
for d in "$@"; do inc="$inc -I$d"; done
cc=${CC:-cc}
cxx=${CXX:-}
if [ -z "$cxx" ]; then
	for c in g++ clang++; do
		command -v "$c" >/dev/null 2>&1 && { cxx=$c; break; }
	done
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
failed=0

# TAP: result ok|not-ok DESCRIPTION
result() {
	n=$((n + 1))
	if [ "$1" = ok ]; then
		echo "ok $n - abi-header: $2"
	else
		echo "not ok $n - abi-header: $2"
		failed=$((failed + 1))
	fi
}

cat >"$tmp/use.c" <<'SRC'
#include <kvmdbg/kvmdbg.h>
#include <kvmdbg/kvmdbg.h> /* include guard */

int use(int fd);
int use(int fd)
{
	struct kvmdbg_caps caps;
	struct kvmdbg_vm_opts opts;
	struct kvmdbg_event ev;
	struct kvmdbg_vm *vm = 0;
	int r;

	caps.sz = sizeof(caps);
	opts.sz = sizeof(opts);
	opts.mem = 0;
	opts.mem_ctx = 0;
	opts.overlay = KVMDBG_OVERLAY_OFF;
	opts.features = KVMDBG_FEAT_STEP | KVMDBG_FEAT_VERIFIED;
	opts.allow_overcover = 0;
	ev.kind = KVMDBG_STOP_NONE;
	r = kvmdbg_probe(fd, &caps);
	if (!r)
		r = kvmdbg_vm_new(fd, &opts, &vm);
	if (!r)
		r = kvmdbg_vm_insert(vm, KVMDBG_BREAK_HW, 0x1000, 1);
	kvmdbg_vm_free(vm);
#if !KVMDBG_CHECK_VERSION(KVMDBG_VERSION_MAJOR, KVMDBG_VERSION_MINOR, KVMDBG_VERSION_MICRO) || \
	KVMDBG_CHECK_VERSION(KVMDBG_VERSION_MAJOR + 1, 0, 0)
#error KVMDBG_CHECK_VERSION
#endif
	return r + (KVMDBG_STOP_IS_REPORTABLE(ev.kind) ? 1 : 0) +
	       (kvmdbg_stop_name(ev.kind) != 0) + (kvmdbg_type_name(KVMDBG_WATCH_WRITE) != 0) +
	       (kvmdbg_version() != 0);
}
SRC
cp "$tmp/use.c" "$tmp/use.cc"

try() {
	what=$1
	shift
	# shellcheck disable=SC2086 # one -I per directory
	if "$@" $inc -c -o "$tmp/out.o" >"$tmp/log" 2>&1; then
		result ok "$what"
	else
		result not-ok "$what: $*"
		cat "$tmp/log" >&2
	fi
}

for std in c99 c11 c17; do
	try "$std" "$cc" -std="$std" -pedantic -Werror -Wall -Wextra -Wstrict-prototypes \
		-Wmissing-prototypes -Wundef "$tmp/use.c"
done
if [ -n "$cxx" ]; then
	for std in c++11 c++17 c++20; do
		try "$std" "$cxx" -std="$std" -pedantic -Werror -Wall -Wextra -Wundef "$tmp/use.cc"
	done
	# C++ linkage: the symbol must be the C one, not a mangled name.
	if nm "$tmp/out.o" | grep -q ' U kvmdbg_vm_insert$'; then
		result ok 'extern "C"'
	else
		result not-ok 'extern "C": C++ references a mangled kvmdbg_vm_insert'
	fi
else
	result not-ok "no C++ compiler (g++ or clang++): C++ not checked"
fi
echo "1..$n"
[ $failed -eq 0 ]
