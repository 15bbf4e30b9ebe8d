#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Test `gdb-mmu-aarch64`: gdb-multiarch against kvmdbg-run on a real arm64
KVM (the arm64 test bed's through `vmbed run --host-test`, or this host's)
with mmu-guest-arm64.elf, which turns its MMU on: TTBR0 with a 4 KiB granule
(a 1 GiB block mapping the code onto itself), TTBR1 with a 64 KiB granule (one
page at a kernel-style high address). gdb reads and writes memory through
both, sees what is not mapped, and the same bytes with `monitor phys on`.

usage: test-gdb-mmu-aarch64.py KVMDBG_RUN MMU_GUEST_ELF [GDB]
Exit 77 without gdb-multiarch, without a KVM, or with a kvmdbg-run not for arm64.
"""
import os
import re
import shutil
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gdbsession  # noqa: E402

run, guest = sys.argv[1], sys.argv[2]
gdb = sys.argv[3] if len(sys.argv) > 3 else shutil.which("gdb-multiarch")
NAME = "test-gdb-mmu-aarch64"
VA_HI, DATA_PA, MAGIC = 0xffffffc001230000, 0x340000, 0x6b766d6462676d6d
if not gdb:
    gdbsession.skip(NAME, "no gdb-multiarch (apt-get install gdb-multiarch)")
gdbsession.need_kvm(NAME)
gdbsession.need_arch(NAME, run, "arm64")

out, _, _ = gdbsession.session(run, [guest], gdb, ["file " + guest], [
    # MMU off at the entry: identity
    "x/wx _start",
    "hbreak mmu_loop", "continue", "continue",
    "info registers pc x3",
    "x/2gx 0x%x" % VA_HI,                 # through TTBR1, 64 KiB granule
    "x/i $pc",                            # through TTBR0, 4 KiB granule, a 1 GiB block
    "x/gx 0x%x" % (VA_HI + 0x10000),      # the next 64 KiB page: not mapped
    "x/gx 0x%x" % (VA_HI - 8),            # the one before: not mapped
    # TTBR0 beyond its 39 bits, as a raw packet: with the pauth feature
    # gdb takes bits 39-54 for a pointer signature and strips them
    "maint packet m%x,8" % (DATA_PA | 1 << 40),
    "set {long}0x%x = 41" % VA_HI,        # a write through TTBR1
    "continue",
    "monitor phys on",
    "x/2gx 0x%x" % DATA_PA,               # the same bytes, guest-physical
    "monitor phys off",
    "x/2gx 0x%x" % VA_HI,
    "delete", "kill"])


def words_at(addr):
    """Every `x/2gx ADDR` line's two words, in order."""
    return [(int(a, 16), int(b, 16)) for a, b in re.findall(
        r"^0x%x(?: <[^>]*>)?:\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)" % addr, out, re.M)]


hi, phys = words_at(VA_HI), words_at(DATA_PA)
mmu_loop = re.search(r"Hardware assisted breakpoint 1 at (0x[0-9a-f]+)", out)
checks = [
    ("MMU off at the entry: _start's first instruction read (identity)",
     re.search(r"<_start>:\s+0x58000481", out) is not None),
    ("hbreak mmu_loop: three continues stop there (pc through TTBR0)",
     out.count("Breakpoint 1, 0x%016x in mmu_loop ()" % int(mmu_loop.group(1), 16)) == 3
     if mmu_loop else False),
    ("TTBR1 (64K granule): the counter 1 and MAGIC at the second stop",
     hi[:1] == [(1, MAGIC)]),
    ("TTBR0 (4K granule, 1 GiB block): x/i $pc is the loop's load",
     re.search(r"=> 0x[0-9a-f]+ <mmu_loop>:\s+ldr\s+x4, \[x3\]", out) is not None),
    ("not mapped: the next and the previous 64 KiB page, beyond T0SZ",
     len(re.findall(r"Cannot access memory at address 0x(%x|%x)" % (
         VA_HI + 0x10000, VA_HI - 8), out)) == 2 and
     re.search(r'received: "E[0-9a-f]{2}"', out) is not None),
    ("write through TTBR1, then monitor phys: 41 + 1 at DATA_PA, MAGIC after it",
     phys[:1] == [(42, MAGIC)]),
    ("monitor phys off: the virtual view again", hi[1:2] == [(42, MAGIC)]),
    ("monitor phys on|off answered",
     "guest-physical addresses" in out and "guest-virtual" in out),
]
gdbsession.report(NAME, checks, out, show=not mmu_loop)
