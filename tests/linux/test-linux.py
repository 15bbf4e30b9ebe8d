#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The `linux` suite's host test: kvmdbg-run --kernel boots Debian's kernels
to our /init, and gdb debugs one of them.

Run by `vmbed run --host-test` (KVMDBG_RUN is then the wrapper that runs the
bed's static kvmdbg-run inside the x86 bed; the guest kernel boots nested
under the bed's KVM), or directly where /dev/kvm works.

    test-linux.py --kvmdbg-run RUN --initrd CPIO --vmbed VMBED [--arch x86_64|arm64]
                  [--kernels bookworm,trixie,trixie-backports] [--gdb-kernel bookworm]

For each kernel (image from `vmbed fetch-kernel`), two boots with `--append
"console=ttyS0 nokaslr quiet ..."`:
  1. no gdb, kvmdbg_syms=1 (the --gdb-kernel with --vcpus 2): /init prints its
     marker (with CLOCK_BOOTTIME and the CPUs online) and
     the addresses /proc/kallsyms gives start_kernel, jiffies, _stext and
     _etext (Debian's packages ship a placeholder System.map; the real one is
     in the ~1 GB -dbg package; with nokaslr the addresses hold for the next
     boot), powers off: exit 0;
  2. gdb on `--gdb`: hbreak start_kernel, continue: the time to it is
     boot-to-start_kernel; on the --gdb-kernel also 20 stepi (in the kernel's
     text, IF still clear), info registers (rip, cr3), x/8i $pc, a watchpoint
     on jiffies hit 3 times with the value growing as the timer ticks; then
     delete, detach: the guest runs on to /init and powers off: exit 0.
On the --gdb-kernel also two boots where /init resets (exit 3) and where it
exits, so that the kernel panics (exit 4).
Prints ok:/FAIL: lines and one `time:` line per kernel.
"""
import argparse
import gzip
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

APPEND = "console=ttyS0 nokaslr quiet"
MARKER = re.compile(r"kvmdbg-linux: /init at ([0-9.]+) s, (-?\d+) CPUs online")

passed = failed = 0
GDB_ARCH = {"x86_64": "i386:x86-64", "arm64": "aarch64"}


def ok(name):
    global passed
    passed += 1
    print("ok: " + name, flush=True)


def bad(name, out=""):
    global failed
    failed += 1
    print("FAIL: " + name, flush=True)
    for line in out.splitlines()[-60:]:
        print("  | " + line, flush=True)


def check(name, cond, out=""):
    (ok if cond else bad)(name, *(() if cond else (out,)))
    return cond


def kernel_image(vmbed, suite, arch="x86_64"):
    out = subprocess.run([sys.executable, vmbed, "fetch-kernel", "--arch", arch,
                          "--kernel", suite], check=True, stdout=subprocess.PIPE,
                         text=True).stdout
    info = dict(l.split("=", 1) for l in out.splitlines() if "=" in l)
    return info["image"], info.get("kernel", suite)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stub:
    """kvmdbg-run --kernel ... [--gdb 127.0.0.1:PORT], its output read as it comes."""

    def __init__(self, run, args, limit, gdb=True):
        self.port = free_port()
        self.t0 = time.monotonic()
        self.lines = []
        self.marker_at = None
        gdb_args = ["--gdb", "127.0.0.1:%d" % self.port] if gdb else []
        self.p = subprocess.Popen([run, "--timeout", str(limit)] + gdb_args + args,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, errors="replace")
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))
            if self.marker_at is None and MARKER.search(line):
                self.marker_at = time.monotonic() - self.t0

    def wait_listening(self, limit):
        end = time.monotonic() + limit
        while time.monotonic() < end and self.p.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                time.sleep(0.2)
        return False

    def finish(self, limit):
        try:
            self.p.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.reader.join(10)
        return self.p.returncode, "\n".join(self.lines)


def gdb_session(gdb, port, commands, limit, arch="x86_64"):
    args = [gdb, "-batch", "-nx", "-ex", "set pagination off", "-ex", "set confirm off",
            "-ex", "set architecture " + GDB_ARCH[arch],
            "-ex", "set remotetimeout %d" % limit,
            "-ex", "target remote 127.0.0.1:%d" % port]
    for c in commands:
        args += ["-ex", c]
    try:
        return subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=limit).stdout
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return out + "\n(gdb timed out)"


def timed(label, cmd):
    """gdb commands that run cmd and print how long it took."""
    return ["python import time; kvmdbg_t0 = time.monotonic()", cmd,
            'python print("%s: %%.3f s" %% (time.monotonic() - kvmdbg_t0))' % label]


def plain_boot(args, image, name, vcpus, need=("start_kernel", "jiffies", "_stext", "_etext")):
    """Boot 1: no gdb; the symbols from /proc/kallsyms, or None."""
    stub = Stub(args.kvmdbg_run, ["--kernel", image, "--initrd", args.initrd, "--append",
                                  APPEND + " kvmdbg_syms=1", "--mem", "256M", "--vcpus",
                                  str(vcpus)], args.timeout, gdb=False)
    rc, sout = stub.finish(args.timeout + 60)
    marker = MARKER.search(sout)
    check("%s: --vcpus %d: %d CPUs online at /init" % (name, vcpus, vcpus),
          marker is not None and int(marker.group(2)) == vcpus, sout)
    sym = {m.group(1): int(m.group(2), 16)
           for m in re.finditer(r"^kvmdbg-sym: (\S+) (0x[0-9a-f]+)$", sout, re.M)}
    check("%s: boots to /init and powers off (exit 0)" % name,
          rc == 0 and marker is not None and "guest powered off" in sout, sout)
    print("time: %s: /init at %s s of the kernel's clock, %s s after kvmdbg-run started "
          "(copying kernel and initramfs into the bed included)" % (
              name, marker.group(1) if marker else "?",
              "%.1f" % stub.marker_at if stub.marker_at else "?"), flush=True)
    if not check("%s: /proc/kallsyms gives %s" % (name, ", ".join(need)),
                 all(k in sym for k in need), sout):
        return None
    return sym


def ending_boot(args, image, name, how, rc_want, said):
    """No gdb, kvmdbg_end=HOW: /init resets the machine or lets the kernel panic."""
    stub = Stub(args.kvmdbg_run, ["--kernel", image, "--initrd", args.initrd, "--append",
                                  APPEND + " kvmdbg_end=" + how, "--mem", "256M"],
                args.timeout, gdb=False)
    rc, sout = stub.finish(args.timeout + 60)
    check("%s: kvmdbg_end=%s: kvmdbg-run exits %d (%s)" % (name, how, rc_want, said),
          rc == rc_want and MARKER.search(sout) is not None and ("guest " + said) in sout,
          sout + "\n(exit %s)" % rc)


def session(args, suite, full):
    image, kver = kernel_image(args.vmbed, suite)
    name = "%s (%s)" % (suite, kver)
    sym = plain_boot(args, image, name, 2 if full else 1)
    if not sym:
        return
    sk, jiffies = sym["start_kernel"], sym["jiffies"]
    if full:
        ending_boot(args, image, name, "reset", 3, "reset")
        ending_boot(args, image, name, "panic", 4, "panicked")
    cmds = ["hbreak *0x%x" % sk] + timed("kvmdbg-time start_kernel", "continue") + \
        ["print/x $pc"]
    if full:
        cmds += ["delete"]
        cmds += ["stepi"] * 20 + ["print/x $pc", "print/x $eflags",
                                  "info registers rip cr0 cr3 cr4 efer", "x/8i $pc"]
        cmds += ["watch *(unsigned long *)0x%x" % jiffies]
        for _ in range(3):
            cmds += ["continue", 'print "kvmdbg-jiffies"', "print/x *(unsigned long *)0x%x"
                     % jiffies]
    cmds += ["delete", "detach"]

    stub = Stub(args.kvmdbg_run, ["--kernel", image, "--initrd", args.initrd, "--append",
                                  APPEND, "--mem", "256M"], args.timeout)
    if not stub.wait_listening(args.timeout):
        rc, sout = stub.finish(10)
        bad("%s: kvmdbg-run --gdb listens" % name, sout)
        return
    out = gdb_session(args.gdb, stub.port, cmds, args.timeout)
    rc, sout = stub.finish(args.timeout)
    both = out + "\n--- kvmdbg-run (exit %s) ---\n" % rc + sout

    m = re.search(r"kvmdbg-time start_kernel: ([0-9.]+) s", out)
    pcs = [int(v, 16) for v in re.findall(r"^\$\d+ = (0x[0-9a-f]+)$", out, re.M)]
    check("%s: hbreak start_kernel (0x%x) stops there" % (name, sk),
          m is not None and pcs and pcs[0] == sk, both)
    if full:
        # after 20 stepi: moved on, in the kernel's text, IF still clear
        check("%s: 20 stepi, interrupts off" % name,
              len(pcs) > 2 and pcs[1] != sk and sym["_stext"] <= pcs[1] < sym["_etext"]
              and not pcs[2] & 0x200, both)
        cr3 = re.search(r"^cr3\s+(0x[0-9a-f]+)", out, re.M)
        rip = re.search(r"^rip\s+(0x[0-9a-f]+)", out, re.M)
        check("%s: info registers shows rip and cr3" % name,
              cr3 and rip and int(cr3.group(1), 16) != 0 and int(rip.group(1), 16) == pcs[1],
              both)
        check("%s: x/8i $pc disassembles 8 instructions" % name,
              len(re.findall(r"^(=> )?\s*0x[0-9a-f]+( <[^>]*>)?:\s+\S", out, re.M)) >= 8, both)
        hits = len(re.findall(r"Hardware watchpoint \d+: \*\(unsigned long \*\)0x[0-9a-f]+\s*\n"
                              r"\s*\nOld value = \d+\s*\nNew value = \d+", out))
        vals = [int(v, 16) for v in re.findall(r'"kvmdbg-jiffies"\n\$\d+ = (0x[0-9a-f]+)', out)]
        check("%s: watch jiffies hits 3 times as the timer ticks" % name,
              hits == 3 and len(vals) == 3 and vals[0] < vals[1] < vals[2], both)
    marker = MARKER.search(sout)
    check("%s: detach, the guest runs on to /init and powers off (exit 0)" % name,
          rc == 0 and marker is not None and "guest powered off" in sout, both)
    print("time: %s: boot to start_kernel %s s (gdb: continue from the 64-bit entry to the "
          "hbreak)" % (name, m.group(1) if m else "?"), flush=True)


def session_arm64(args, suite, full):
    """arm64: the same boots (the --gdb-kernel's reset boot from a gzip'ed copy
    of the Image, as zlib reads both); gdb: hbreak start_kernel and, on the
    --gdb-kernel, 20 stepi with interrupts masked (PSTATE.I), x/8i $pc (read
    through the kernel's page tables), and an access watchpoint on jiffies_64
    hit 3 times at its address with its value."""
    image, kver = kernel_image(args.vmbed, suite, "arm64")
    name = "%s arm64 (%s)" % (suite, kver)
    # arm64's kallsyms has no jiffies (a linker-script alias of jiffies_64),
    # and bookworm's none of the data symbols (no CONFIG_KALLSYMS_ALL)
    sym = plain_boot(args, image, name, 2 if full else 1,
                     ("start_kernel", "_stext", "_etext") + (("jiffies_64",) if full else ()))
    if full:
        with tempfile.TemporaryDirectory() as tmp:
            gz = os.path.join(tmp, "vmlinuz.gz")
            with open(image, "rb") as f, gzip.open(gz, "wb", compresslevel=1) as g:
                shutil.copyfileobj(f, g)
            ending_boot(args, gz, name + " gzip'ed Image", "reset", 3, "reset")
        ending_boot(args, image, name, "panic", 4, "panicked")
    if not sym:
        return
    sk = sym["start_kernel"]
    cmds = ["hbreak *0x%x" % sk] + timed("kvmdbg-time start_kernel", "continue") + \
        ["print/x $pc"]
    if full:
        cmds += ["delete"] + ["stepi"] * 20 + ["print/x $pc", "print/x $cpsr",
                                                "info registers pc cpsr", "x/8i $pc"]
        cmds += ["awatch *(unsigned long *)0x%x" % sym["jiffies_64"]]
        cmds += ["continue", 'print "kvmdbg-jiffies"', "print/x $pc"] * 3
    cmds += ["delete", "detach"]
    stub = Stub(args.kvmdbg_run, ["--kernel", image, "--initrd", args.initrd, "--append",
                                  APPEND, "--mem", "256M"], args.timeout)
    if not stub.wait_listening(args.timeout):
        rc, sout = stub.finish(10)
        bad("%s: kvmdbg-run --gdb listens" % name, sout)
        return
    out = gdb_session(args.gdb, stub.port, cmds, args.timeout, "arm64")
    rc, sout = stub.finish(args.timeout)
    both = out + "\n--- kvmdbg-run (exit %s) ---\n" % rc + sout
    m = re.search(r"kvmdbg-time start_kernel: ([0-9.]+) s", out)
    pcs = [int(v, 16) for v in re.findall(r"^\$\d+ = (0x[0-9a-f]+)$", out, re.M)]
    check("%s: hbreak start_kernel (0x%x) stops there" % (name, sk),
          m is not None and pcs and pcs[0] == sk, both)
    if full:
        # after 20 stepi: 20 stops, moved on, in the kernel's text or still in
        # start_kernel (.init.text, past _etext), IRQs still masked
        between = re.search(r"^\$1 = .*?^\$2 = ", out, re.M | re.S)
        steps = re.findall(r"^0x[0-9a-f]+ in \?\? \(\)$", between.group(0) if between else "",
                           re.M)
        check("%s: 20 stepi, interrupts masked" % name,
              len(steps) == 20 and len(pcs) > 2 and pcs[1] != sk and
              (sym["_stext"] <= pcs[1] < sym["_etext"] or sk < pcs[1] < sk + 0x1000)
              and pcs[2] & 0x80, both)
        reg = re.search(r"^pc\s+(0x[0-9a-f]+)", out, re.M)
        check("%s: info registers shows pc and cpsr" % name,
              reg is not None and int(reg.group(1), 16) == pcs[1] and
              re.search(r"^cpsr\s+0x", out, re.M) is not None, both)
        check("%s: x/8i $pc disassembles 8 instructions" % name,
              len(re.findall(r"^(=> )?\s*0x[0-9a-f]+( <[^>]*>)?:\s+\S", out, re.M)) >= 8 and
              "Cannot access memory" not in out, both)
    if full:
        # a hit: the watchpoint's line, then the value read (jiffies_64)
        hits = re.findall(r"^Hardware access \(read/write\) watchpoint \d+: "
                          r"\*\(unsigned long \*\)(0x[0-9a-f]+)\s*\n\s*\nValue = \d+\s*$", out, re.M)
        after = re.findall(r'"kvmdbg-jiffies"\n\$\d+ = (0x[0-9a-f]+)', out)
        check("%s: awatch jiffies_64 hits 3 times at its address, in the kernel, value "
              "read" % name,
              len(hits) == 3 and all(int(h, 16) == sym["jiffies_64"] for h in hits) and
              len(after) == 3 and all(int(p, 16) >= sym["_stext"] for p in after), both)
    marker = MARKER.search(sout)
    check("%s: detach, the guest runs on to /init and powers off (exit 0)" % name,
          rc == 0 and marker is not None and "guest powered off" in sout, both)
    print("time: %s: boot to start_kernel %s s (gdb: continue from the Image's entry to the "
          "hbreak)" % (name, m.group(1) if m else "?"), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kvmdbg-run", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--vmbed", required=True, help="tests/vm/vmbed (fetch-kernel)")
    ap.add_argument("--arch", default="x86_64", choices=sorted(GDB_ARCH))
    ap.add_argument("--gdb", help="default: gdb, on arm64 gdb-multiarch")
    ap.add_argument("--kernels", default="bookworm,trixie,trixie-backports")
    ap.add_argument("--gdb-kernel", default="bookworm")
    ap.add_argument("--timeout", type=int, default=int(os.environ.get("KVMDBG_LINUX_TIMEOUT",
                                                                       "600")))
    args = ap.parse_args()
    if not args.gdb:
        args.gdb = "gdb-multiarch" if args.arch == "arm64" else "gdb"
    t0 = time.monotonic()
    for suite in args.kernels.split(","):
        (session_arm64 if args.arch == "arm64" else session)(args, suite,
                                                             suite == args.gdb_kernel)
    print("time: the linux sessions: %.1f s" % (time.monotonic() - t0), flush=True)
    print("kvmdbg-result: linux: %d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
