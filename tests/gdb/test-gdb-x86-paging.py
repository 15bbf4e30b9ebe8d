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
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

run, guest = sys.argv[1], sys.argv[2]
gdb = sys.argv[3] if len(sys.argv) > 3 else shutil.which("gdb")
NAME = "test-gdb-x86-paging"
LOOP32, LOOP_PAE = 0xf0100, 0xf0300
MAGIC32, MAGICPAE = 0x32336267, 0x50414521
if not gdb:
    print(NAME + ": skipped: no gdb (apt-get install gdb)")
    sys.exit(77)
if not os.environ.get("KVMDBG_BED"):
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kvm-present")
    p = subprocess.run([sys.executable, path], stdout=subprocess.PIPE, text=True)
    if p.returncode:
        print(NAME + ": skipped: " + p.stdout.strip())
        sys.exit(77)
probe = json.loads(subprocess.run([run, "--probe", "--json"], stdout=subprocess.PIPE,
                                  text=True, timeout=60).stdout)
if probe.get("arch") != "x86-64":
    print(NAME + ": skipped: kvmdbg-run is %s, not x86-64" % probe.get("arch"))
    sys.exit(77)
if not probe["capabilities"].get("hw_break", {}).get("verified"):
    print(NAME + ": skipped: the verified probe lacks hw_break")
    sys.exit(77)

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
stub = subprocess.Popen([run, "--flat", guest, "--gdb", "127.0.0.1:%d" % port,
                         "--timeout", "120"],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
end = time.monotonic() + 30
while time.monotonic() < end and stub.poll() is None:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        break
    except OSError:
        time.sleep(0.05)

cmds = ["set architecture i386:x86-64", "target remote 127.0.0.1:%d" % port,
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
        "delete", "kill"]
args = [gdb, "-batch", "-nx"]
for c in cmds:
    args += ["-ex", c]
try:
    out = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=120).stdout
except subprocess.TimeoutExpired:
    out = "(gdb timed out)"
try:
    sout, _ = stub.communicate(timeout=60)
except subprocess.TimeoutExpired:
    stub.kill()
    sout, _ = stub.communicate()
out += "\n### kvmdbg-run (exit %s)\n%s" % (stub.returncode, sout)


def words_at(addr):
    """Every `x/2wx ADDR` line's two words, in order."""
    return [(int(a, 16), int(b, 16)) for a, b in re.findall(
        r"^0x%x:\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)" % addr, out, re.M)]


def cannot(addr):
    return "Cannot access memory at address 0x%x" % addr in out


cr4 = [int(v, 16) for v in re.findall(r"^cr4\s+0x([0-9a-f]+)", out, re.M)]
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
failed = 0
for name, ok in checks:
    print(("ok: " if ok else "FAIL: ") + name)
    failed += not ok
if failed:
    print(out)
print("%s: %d passed, %d failed" % (NAME, len(checks) - failed, failed))
sys.exit(1 if failed else 0)
