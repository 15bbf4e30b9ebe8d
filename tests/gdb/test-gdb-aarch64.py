#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Meson test `gdb-aarch64`: gdb-multiarch against gdbstub-fake (the stub of
examples/gdbstub.c over a fake aarch64 machine, fake-target.c): gdb must
accept the aarch64 target description and read and write x0-x30/sp/pc/cpsr,
v0-v31/fpsr/fpcr, the system registers and the pointer-auth masks,
memory, threads, hbreak/break stops and stepi through the protocol. No KVM
needed.

With --kvmdbg-run, the same gdb against the real arm64 kvmdbg-run on its
built-in guest on a real arm64 KVM: the arm64 test bed's (tests/vm: `vmbed
run --host-test` gives the wrapper that runs it in the bed, and relays its
--gdb port here), or this host's.

usage: test-gdb-aarch64.py GDBSTUB_FAKE [GDB]
       test-gdb-aarch64.py --kvmdbg-run KVMDBG_RUN [GDB]
Exit 77 without gdb-multiarch (or, with --kvmdbg-run, without a KVM).
"""
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gdbsession  # noqa: E402
from gdbsession import regs_of  # noqa: E402

NAME = "test-gdb-aarch64"
if os.environ.get("KVMDBG_NO_RUN"):
    # A cross build without an exe wrapper: the fake cannot run here.
    gdbsession.skip(NAME, os.environ["KVMDBG_NO_RUN"])
real = sys.argv[1] == "--kvmdbg-run"
if real:
    del sys.argv[1]
fake = sys.argv[1]
gdb = sys.argv[2] if len(sys.argv) > 2 else shutil.which("gdb-multiarch")
if not gdb:
    gdbsession.skip(NAME, "no gdb-multiarch (apt-get install gdb-multiarch)")


def real_kvm():
    """gdb-multiarch against kvmdbg-run on a real arm64 KVM."""
    run = fake
    gdbsession.need_kvm(NAME)
    helptext = subprocess.run([run, "--help"], stdout=subprocess.PIPE, text=True).stdout
    sym = {m.group(1): int(m.group(2), 16)
           for m in re.finditer(r"^  (\w+)\s+0x([0-9a-f]+)\s", helptext, re.M)}
    verified = gdbsession.verified(gdbsession.need_arch(NAME, run, "arm64"))
    bump, counter = sym["bump"], sym["counter"]
    cmds = ["info registers pc sp x0 x1",
            "info registers fpsr fpcr sp_el0 sctlr_el1 ttbr0_el1 ttbr1_el1 tcr_el1",
            "p/x $pauth_dmask", "set $v2.d.u[0] = 0x1234", "p/x $v2.d.u[0]",
            "hbreak *0x%x" % bump, "continue", "continue",
            "info registers pc x30", "x/gx 0x%x" % counter, "stepi", "stepi", "stepi",
            "info registers pc sp", "x/2i $pc", "set $x2 = 41", "stepi", "stepi",
            "x/gx 0x%x" % counter]
    if "sw_break" in verified:
        cmds += ["delete", "break *0x%x" % (bump + 8), "continue", "info registers pc"]
    cmds += ["delete", "info threads", "detach"]
    out, sout, rc = gdbsession.session(run, [], gdb, ["set architecture aarch64"], cmds)
    pcs = regs_of(out, "pc")
    words = [int(v, 16) for v in re.findall(r"^0x%x:\s+0x([0-9a-f]+)" % counter, out, re.M)]
    checks = [
        ("target description accepted; entry registers (pc start, x0 = counter)",
         pcs[:1] == [sym["start"]] and regs_of(out, "x0")[:1] == [counter]),
        ("system registers (ONE_REG): sctlr_el1 with the MMU off, ttbr0/1, tcr, sp_el0, "
         "fpsr, fpcr, pauth_dmask 0 without translation",
         len(regs_of(out, "sctlr_el1")) == 1 and regs_of(out, "sctlr_el1")[0] & 1 == 0 and
         regs_of(out, "sctlr_el1")[0] != 0 and
         all(len(regs_of(out, r)) == 1 for r in
             ("fpsr", "fpcr", "sp_el0", "ttbr0_el1", "ttbr1_el1", "tcr_el1")) and
         re.search(r"^\$1 = 0x0$", out, re.M) is not None),
        ("FP/SIMD: v2 written (KVM_SET_ONE_REG, 128 bits) and read back",
         re.search(r"^\$2 = 0x1234$", out, re.M) is not None),
        ("hbreak: two continues stop at bump()",
         out.count("Breakpoint 1, 0x%016x in ?? ()" % bump) == 2),
        ("at the breakpoint: pc bump, x30 returns into the loop",
         pcs[1:2] == [bump] and regs_of(out, "x30")[:1] == [sym["loop"] + 4]),
        ("x/gx: the counter is 1 at the second stop", words[:1] == [1]),
        ("stepi x3 from the breakpoint: pc + 12", pcs[2:3] == [bump + 12]),
        ("x/2i: A64 code (add x2, x2, #0x1)", re.search(r"=> 0x%x:\s+add\s+x2, x2, #0x1"
                                                        % (bump + 12), out) is not None),
        ("register write: x2 = 41 is stored as 42", words[1:2] == [42]),
        ("info threads: one vCPU", re.search(r"\*\s+1\s+Thread 1 \(vCPU 0\)", out) is not None),
        ("detach: the guest runs on to its end", rc == 0 and
         "guest finished" in sout),
    ]
    if "sw_break" in verified:
        checks.append(("break (BRK): stops at bump+8", pcs[-1:] == [bump + 8]))
    else:
        print("skipped: software breakpoint (verified probe lacks sw_break)")
    gdbsession.report(NAME, checks, out)


if real:
    real_kvm()

stub = subprocess.Popen([fake], stdout=subprocess.PIPE, text=True)
port = int(stub.stdout.readline())
cmds = ["set architecture aarch64", "target remote 127.0.0.1:%d" % port,
        "info registers pc sp x0 cpsr", "p/x $v0.q.u", "info registers fpcr ttbr0_el1",
        "p/x $pauth_cmask", "set $v1.d.u[0] = 0x55", "p/x $v1.d.u", "stepi", "info registers pc",
        "hbreak *0x400100", "break *0x400200", "continue", "continue", "x/2i $pc",
        "set $x0 = 7", "info registers x0", "set {int}0x400300 = 0x11223344",
        "x/wx 0x400300", "info threads", "thread 2", "info registers pc sp x0",
        "watch *(long*)0x400300", "continue", "delete", "continue"]
out = gdbsession.run_gdb(gdb, cmds, 60)
try:
    rc = stub.wait(timeout=10)
except subprocess.TimeoutExpired:
    stub.kill()
    rc = -1


def regs(name):
    return regs_of(out, name)


checks = [
    ("target description accepted, registers read (pc, sp, x0, cpsr)",
     regs("pc")[:1] == [0x400000] and regs("sp")[:1] == [0x410000] and
     regs("x0")[:1] == [0x1234] and regs("cpsr") == [0x3c5]),
    ("FP/SIMD, system and pauth registers in the target description: v0 (q), fpcr, "
     "ttbr0_el1, pauth_cmask",
     re.search(r"^\$\d+ = \{0xf0e0d0c0b0a09080706050403020100\}$", out, re.M) is not None and
     regs("fpcr") == [0x3000000] and regs("ttbr0_el1") == [0] and
     re.search(r"^\$\d+ = 0x0$", out, re.M) is not None),
    ("v1 written through the g layout and read back",
     re.search(r"^\$\d+ = \{0x55, 0x0\}$", out, re.M) is not None),
    ("stepi: pc + 4", regs("pc")[1:2] == [0x400004]),
    ("hbreak stop", "hit Breakpoint 1, 0x0000000000400100" in out),
    ("break stop (swbreak)", "hit Breakpoint 2, 0x0000000000400200" in out),
    ("x/2i: A64 NOPs", re.search(r"=> 0x400200:\s+nop", out) is not None),
    ("register write (x0 = 7)", regs("x0")[1:2] == [7]),
    ("memory write and read", "0x400300:\t0x11223344" in out),
    ("two threads", re.search(r"2\s+Thread 2 \(vCPU 1\)", out) is not None),
    ("thread 2's registers", regs("pc")[2:] == [0x400010] and regs("sp")[1:] == [0x40f000]
     and regs("x0")[2:] == [0x1235]),
    ("a watchpoint the machine refuses: gdb says it cannot insert it, the session goes on",
     re.search(r"Could not insert hardware watchpoint \d+\.", out) is not None),
    ("continue to the end (W00)", "exited normally" in out and rc == 0),
]
gdbsession.report(NAME, checks, out)
