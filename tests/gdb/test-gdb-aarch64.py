#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Meson test `gdb-aarch64`: gdb-multiarch against gdbstub-fake (the stub of
examples/gdbstub.c over a fake aarch64 machine, fake-target.c): gdb must
accept the aarch64 target description and read and write x0-x30/sp/pc/cpsr,
memory, threads, hbreak/break stops and stepi through the protocol. No KVM
needed; the real arm64 harness is checked in the arm64 test bed by
vm-kvmdbg-run (scripted mode: the bed has no network for a gdb client).

usage: test-gdb-aarch64.py GDBSTUB_FAKE [GDB]. Exit 77 without gdb-multiarch.
"""
import re
import shutil
import subprocess
import sys

fake = sys.argv[1]
gdb = sys.argv[2] if len(sys.argv) > 2 else shutil.which("gdb-multiarch")
if not gdb:
    print("test-gdb-aarch64: skipped: no gdb-multiarch (apt-get install gdb-multiarch)")
    sys.exit(77)

stub = subprocess.Popen([fake], stdout=subprocess.PIPE, text=True)
port = int(stub.stdout.readline())
cmds = ["set architecture aarch64", "target remote 127.0.0.1:%d" % port,
        "info registers pc sp x0 cpsr", "stepi", "info registers pc",
        "hbreak *0x400100", "break *0x400200", "continue", "continue", "x/2i $pc",
        "set $x0 = 7", "info registers x0", "set {int}0x400300 = 0x11223344",
        "x/wx 0x400300", "info threads", "thread 2", "info registers pc sp x0",
        "delete", "continue"]
args = [gdb, "-batch", "-nx"]
for c in cmds:
    args += ["-ex", c]
try:
    out = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=60).stdout
except subprocess.TimeoutExpired:
    out = "(gdb-multiarch timed out)"
try:
    rc = stub.wait(timeout=10)
except subprocess.TimeoutExpired:
    stub.kill()
    rc = -1


def regs(name):
    return [int(v, 16) for v in re.findall(r"^%s\s+0x([0-9a-f]+)" % name, out, re.M)]


checks = [
    ("target description accepted, registers read (pc, sp, x0, cpsr)",
     regs("pc")[:1] == [0x400000] and regs("sp")[:1] == [0x410000] and
     regs("x0")[:1] == [0x1234] and regs("cpsr") == [0x3c5]),
    ("stepi: pc + 4", regs("pc")[1:2] == [0x400004]),
    ("hbreak stop", "hit Breakpoint 1, 0x0000000000400100" in out),
    ("break stop (swbreak)", "hit Breakpoint 2, 0x0000000000400200" in out),
    ("x/2i: A64 NOPs", re.search(r"=> 0x400200:\s+nop", out) is not None),
    ("register write (x0 = 7)", regs("x0")[1:2] == [7]),
    ("memory write and read", "0x400300:\t0x11223344" in out),
    ("two threads", re.search(r"2\s+Thread 2 \(vCPU 1\)", out) is not None),
    ("thread 2's registers", regs("pc")[2:] == [0x400010] and regs("sp")[1:] == [0x40f000]
     and regs("x0")[2:] == [0x1235]),
    ("continue to the end (W00)", "exited normally" in out and rc == 0),
]
failed = 0
for name, ok in checks:
    print(("ok: " if ok else "FAIL: ") + name)
    failed += not ok
if failed:
    print(out)
print("test-gdb-aarch64: %d passed, %d failed" % (len(checks) - failed, failed))
sys.exit(1 if failed else 0)
