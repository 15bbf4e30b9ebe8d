#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""RSP packets and bytes per gdb `stepi` and per `continue` to a hardware
breakpoint, counted (not timed) from gdb's own `set debug remote 1` log, for
the same gdb script against libkvmdbg-gdb (kvmdbg-run --gdb) and against
QEMU's gdbstub (-accel tcg), on x86-64 and aarch64.

usage: gdb-packets.py [--arch x86_64|aarch64 ...] [--stepi N] [--continues N]
                      [--flat FLAT.bin] [--vmbed PATH] [--kernel SUITE]
                      [--workdir DIR] [--only ours|qemu] [--out FILE.md]

- QEMU: qemu-system-x86_64 -accel tcg -bios FLAT (bench/flat-guest.S; its
  loop at 0xf0100) and qemu-system-aarch64 -M virt -accel tcg -smp 2 with
  `add x0, x0, #1; b .-4` at 0x40000000 on both CPUs.
- Ours: kvmdbg-run in the VM test beds (`tests/vm/vmbed gdb`, KVM inside
  QEMU), --flat FLAT on x86-64; its built-in guest with 2 vCPUs on aarch64
  (the hbreak on bump()).

gdb (gdb-multiarch for aarch64) runs on this host: `target remote`, N
`stepi` one command each, then an `hbreak` and one `continue` (not
counted), then N `continue`s. Markers (`maint packet qKvmdbgMark:...`,
not counted) split the log. Prints a Markdown table per arch and the
per-packet breakdown.
"""
import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import e2e  # noqa: E402  (free_port, wait_listen, stop, bed_release)

X86_BP = 0xF0100
A64_LOOP = 0x40200000  # past the dtb at the start of RAM
A64_BUMP = 0x100020  # kvmdbg-run's arm64 built-in guest: bump()
A64_IMAGE = bytes.fromhex("00040091ffffff17")  # add x0, x0, #1; b .-4 (little-endian)

SENT = re.compile(r"Sending packet: \$(.*)#[0-9a-f]{2}")
RECV = re.compile(r"Packet received: (.*)$")
OMITTED = re.compile(r"\[(\d+) bytes omitted\]")


def kind(payload):
    """The packet's name: the q/Q/v names up to their separator, else the letter."""
    if payload[:1] in ("q", "Q", "v"):
        return re.split(r"[:;,]", payload, 1)[0]
    return payload[:1] or "(empty)"


def count(log):
    """{phase: (Counter of sent packet kinds, bytes both ways)} between markers."""
    phases = {}
    phase = None
    last_marker = False
    for line in log.splitlines():
        m = SENT.search(line)
        if m:
            p = m.group(1)
            last_marker = p.startswith("qKvmdbgMark:")
            if last_marker:
                phase = p.split(":", 1)[1]
                phases.setdefault(phase, [collections.Counter(), 0])
                continue
            if phase in phases:
                phases[phase][0][kind(p)] += 1
                phases[phase][1] += len(p) + 4
            continue
        m = RECV.search(line)
        if m and phase in phases and not last_marker:
            body = m.group(1)
            extra = sum(int(x) for x in OMITTED.findall(body))
            phases[phase][1] += len(OMITTED.sub("", body)) + extra + 4
        elif m:
            last_marker = False
    return phases


def gdb_session(gdb, port, arch, bp, nstep, ncont, timeout=900):
    cmds = ["set pagination off", "set confirm off", "set height 0"]
    if arch == "aarch64":
        cmds.append("set architecture aarch64")
    cmds.append("target remote 127.0.0.1:%d" % port)
    if arch == "x86_64":  # to the loop first (the firmware's mode switch is not stepped)
        cmds += ["hbreak *%#x" % bp, "continue", "delete"]
    cmds += ["set debug remote 1", "maint packet qKvmdbgMark:stepi"]
    cmds += ["stepi"] * nstep
    cmds += ["maint packet qKvmdbgMark:setup", "hbreak *%#x" % bp, "continue",
             "maint packet qKvmdbgMark:continue"]
    cmds += ["continue"] * ncont
    cmds += ["maint packet qKvmdbgMark:end", "set debug remote 0", "kill"]
    args = [gdb, "-nx", "-batch"]
    for c in cmds:
        args += ["-ex", c]
    g = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    return g.stdout + g.stderr


def run(name, cmd, port, arch, bp, nstep, ncont, gdb, listen_timeout, cwd=None):
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, cwd=cwd)
    try:
        if not e2e.wait_listen(port, proc, listen_timeout):
            log.seek(0)
            tail = log.read().strip().splitlines()[-3:]
            return None, "%s did not open its gdb port: %s" % (name, " / ".join(tail))
        if bp is None:
            log.seek(0)
            m = re.search(r"bump\(\) at (0x[0-9a-f]+)", log.read())
            # kvmdbg-run prints it, but the bed relays its output at the end:
            # CODE_GPA + demo_guest_bump - demo_guest_start (nm of the bed's build)
            bp = int(m.group(1), 16) if m else A64_BUMP
        out = gdb_session(gdb, port, arch, bp, nstep, ncont)
        log.seek(0)
        where = re.findall(r"^vmbed: \S+: kernel .*$", log.read(), re.M)
        return (count(out), out), (where[0] if where else "")
    finally:
        e2e.stop(proc)
        log.close()


def table(arch, results, nstep, ncont):
    lines = ["", "### %s: %d stepi, %d continue to an hbreak" % (arch, nstep, ncont), "",
             "| stub | packets/stepi | bytes/stepi | packets/continue | bytes/continue | "
             "per stepi | per continue |", "|---|---|---|---|---|---|---|"]
    for name, phases in results:
        s, sb = phases.get("stepi", (collections.Counter(), 0))
        c, cb = phases.get("continue", (collections.Counter(), 0))

        def per(counter, n):
            return ", ".join("%s %.2g" % (k, v / n) for k, v in counter.most_common())
        lines.append("| %s | %.2f | %.0f | %.2f | %.0f | %s | %s |" % (
            name, sum(s.values()) / nstep, sb / nstep, sum(c.values()) / ncont, cb / ncont,
            per(s, nstep), per(c, ncont)))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", action="append", choices=["x86_64", "aarch64"])
    ap.add_argument("--stepi", type=int, default=20)
    ap.add_argument("--continues", type=int, default=10)
    ap.add_argument("--flat", help="bench/flat-guest.bin (x86-64)")
    ap.add_argument("--vmbed", default=os.path.join(TOP, "tests", "vm", "vmbed"))
    ap.add_argument("--kernel", default="bookworm")
    ap.add_argument("--workdir")
    ap.add_argument("--only", choices=["ours", "qemu"])
    ap.add_argument("--out")
    ap.add_argument("--keep-logs", help="directory for gdb's remote logs")
    a = ap.parse_args()
    arches = a.arch or ["x86_64", "aarch64"]
    report = []
    for arch in arches:
        gdb = shutil.which("gdb" if arch == "x86_64" else "gdb-multiarch")
        if not gdb:
            report.append("\n%s: no gdb%s here" % (arch, "" if arch == "x86_64" else "-multiarch"))
            continue
        results = []
        tmp = tempfile.mkdtemp(prefix="gdb-packets.")
        if a.only != "ours":
            port = e2e.free_port()
            if arch == "x86_64":
                if not a.flat:
                    sys.exit("--flat bench/flat-guest.bin is needed for x86_64")
                cmd = ["qemu-system-x86_64", "-accel", "tcg", "-S", "-gdb",
                       "tcp:127.0.0.1:%d" % port, "-display", "none", "-nodefaults",
                       "-no-user-config", "-m", "16", "-bios", a.flat]
                bp = X86_BP
            else:
                img = os.path.join(tmp, "loop.bin")
                with open(img, "wb") as f:
                    f.write(A64_IMAGE)
                cmd = ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a57", "-smp", "2",
                       "-accel", "tcg", "-S", "-gdb", "tcp:127.0.0.1:%d" % port, "-display",
                       "none", "-nodefaults", "-no-user-config", "-m", "64",
                       "-device", "loader,file=%s,addr=%#x" % (img, A64_LOOP),
                       "-device", "loader,addr=%#x,cpu-num=0" % A64_LOOP,
                       "-device", "loader,addr=%#x,cpu-num=1" % A64_LOOP]
                bp = A64_LOOP
            qv = subprocess.run([cmd[0], "--version"], capture_output=True,
                                text=True).stdout.split("\n")[0]
            r, why = run("QEMU", cmd, port, arch, bp, a.stepi, a.continues, gdb, 30)
            if r is None:
                report.append("\n%s: QEMU: %s" % (arch, why))
            else:
                results.append(("QEMU gdbstub (%s, TCG)" % qv.replace("QEMU emulator ", ""),
                                r[0]))
                if a.keep_logs:
                    open(os.path.join(a.keep_logs, "qemu-%s.log" % arch), "w").write(r[1])
        if a.only != "qemu":
            port = e2e.free_port()
            bed = [sys.executable, a.vmbed, "gdb", "--arch", arch, "--kernels", a.kernel,
                   "--port", str(port)] + (["--workdir", a.workdir] if a.workdir else [])
            if arch == "x86_64":
                cmd = bed + ["--", "kvmdbg-run", "--flat", os.path.abspath(a.flat)]
                bp = X86_BP
            else:
                cmd = bed + ["--", "kvmdbg-run", "--vcpus", "2", "--loops", "100000000"]
                bp = None  # bump(), from kvmdbg-run's "guest: ... bump() at ADDR" line
            r, why = run("kvmdbg-run", cmd, port, arch, bp, a.stepi, a.continues, gdb, 1800)
            if r is None:
                report.append("\n%s: kvmdbg-run: %s" % (arch, why))
            else:
                results.append(("libkvmdbg-gdb (kvmdbg-run in the %s bed%s)" % (
                    arch, ", " + why.split("kernel ", 1)[1] if "kernel " in why else ""), r[0]))
                if a.keep_logs:
                    open(os.path.join(a.keep_logs, "ours-%s.log" % arch), "w").write(r[1])
        shutil.rmtree(tmp, ignore_errors=True)
        report.append(table(arch, results, a.stepi, a.continues))
    text = "\n".join(report) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
