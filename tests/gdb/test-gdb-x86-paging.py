#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Test `gdb-x86-paging`: Debian's gdb against kvmdbg-run on a real x86 KVM
(this host's, or the x86 SVM bed's through `vmbed run --host-test`) with
flat-paging-guest.bin, a firmware image that pages without long mode: first
32-bit paging (4 KiB pages and 4 MiB PSE pages), then PAE (4 KiB and 2 MiB
pages). gdb reads memory through each mode's tables at its stops, sees what
is not mapped, and the same bytes with `monitor phys on`.

usage: test-gdb-x86-paging.py KVMDBG_RUN FLAT_PAGING_GUEST_BIN [GDB]
Exit 77 without gdb, without a KVM, or with a kvmdbg-run not for x86-64.
"""
import os
import re
import shutil
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gdbsession  # noqa: E402

run, guest = sys.argv[1], sys.argv[2]
gdb = sys.argv[3] if len(sys.argv) > 3 else shutil.which("gdb")
NAME = "test-gdb-x86-paging"
LOOP32, LOOP_PAE = 0xf0100, 0xf0300
MAGIC32, MAGICPAE = 0x32336267, 0x50414521
if not gdb:
    gdbsession.skip(NAME, "no gdb (apt-get install gdb)")
gdbsession.need_kvm(NAME)
probe = gdbsession.need_arch(NAME, run, "x86-64")
if "hw_break" not in gdbsession.verified(probe):
    gdbsession.skip(NAME, "the verified probe lacks hw_break")
if gdbsession.host_lacks("legacy_modes"):
    gdbsession.skip(NAME, gdbsession.host_lacks("legacy_modes"))

out, _, _ = gdbsession.session(run, ["--flat", guest], gdb, ["set architecture i386:x86-64"], [
    # 32-bit paging
    "hbreak *0x%x" % LOOP32, "continue", "continue",
    "x/2wx 0x80001000",     # a 4 KiB page onto 0x200000
    "x/2wx 0xc0200000",     # a 4 MiB PSE page onto 0
    "x/wx 0x80002000",      # the next PTE: not present
    "x/wx 0x40000000",      # PDE 256: not present
    # PAE
    "delete", "hbreak *0x%x" % LOOP_PAE, "continue", "continue",
    "info registers cr4",
    "x/2wx 0x80001000",     # a 4 KiB page onto 0x201000
    "x/2wx 0xc0401000",     # a 2 MiB page onto 0x200000, + 0x1000
    "x/2wx 0xc0400000",     # the same 2 MiB page: the 32-bit mode's data
    "x/wx 0x40000000",      # PDPTE 1: not present
    "x/wx 0xc0600000",      # PDE 3 of PDPTE 3: not present
    "monitor phys on", "x/2wx 0x201000", "monitor phys off",
    "delete", "kill"])


def words_at(addr):
    """Every `x/2wx ADDR` line's two words, in order."""
    return [(int(a, 16), int(b, 16)) for a, b in re.findall(
        r"^0x%x:\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)" % addr, out, re.M)]


def cannot(addr):
    return "Cannot access memory at address 0x%x" % addr in out


cr4 = gdbsession.regs_of(out, "cr4")
va = words_at(0x80001000)
checks = [
    ("32-bit paging: hbreak stops twice at 0x%x" % LOOP32,
     out.count("Breakpoint 1, 0x%016x" % LOOP32) == 2),
    ("32-bit paging, 4 KiB page: the counter 1 and MAGIC32", va[:1] == [(1, MAGIC32)]),
    ("32-bit paging, 4 MiB PSE page: the same bytes",
     words_at(0xc0200000) == [(1, MAGIC32)]),
    ("32-bit paging: unmapped PTE and PDE", cannot(0x80002000) and
     out.count("Cannot access memory at address 0x40000000") == 2),
    ("PAE: hbreak stops twice at 0x%x, CR4.PAE set" % LOOP_PAE,
     out.count("Breakpoint 2, 0x%016x" % LOOP_PAE) == 2 and cr4[:1] != [] and cr4[0] & 0x20),
    ("PAE, 4 KiB page: the counter 1 and MAGICPAE", va[1:2] == [(1, MAGICPAE)]),
    ("PAE, 2 MiB page: the same bytes at +0x1000, the 32-bit mode's (3) at +0",
     words_at(0xc0401000) == [(1, MAGICPAE)] and words_at(0xc0400000) == [(3, MAGIC32)]),
    ("PAE: unmapped PDPTE and PDE", cannot(0xc0600000)),
    ("monitor phys on: the 4 KiB page's bytes at 0x201000",
     words_at(0x201000) == [(1, MAGICPAE)] and "guest-physical addresses" in out),
]
gdbsession.report(NAME, checks, out)
