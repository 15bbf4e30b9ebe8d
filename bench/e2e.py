#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End to end with a real client: gdb `stepi` and `continue`-to-breakpoint
round trips per second against a gdb remote stub, for QEMU's own gdbstub
(qemu-system-x86_64 -accel kvm -S -gdb ...) and for kvmdbg-run --gdb, on the
same flat guest (bench/flat-guest.S), in the same run.

usage: e2e.py --flat FLAT.bin [--kvmdbg-run PATH] [--n N] [--rounds R]
       e2e.py --bed --flat FLAT.bin [--vmbed PATH] [--bed-kernel SUITE]
              [--bed-workdir DIR] [--qemu-accel kvm|tcg] [--n N] [--rounds R]

Without --bed both stubs run on this host's KVM, which must be usable
(tests/kvm-present), else nothing is measured (a @note says why).

With --bed, kvmdbg-run runs inside the x86 VM test bed (KVM on nested SVM
under QEMU TCG) through `tests/vm/vmbed gdb --arch x86_64 --kernels SUITE
--port PORT [--workdir DIR] -- kvmdbg-run --flat FLAT.bin`, which builds
kvmdbg-run statically from vmbed's source tree, boots the bed, copies the
flat guest in, starts kvmdbg-run there with --gdb on a virtio port and
relays that to the host's 127.0.0.1:PORT; gdb runs on the host. QEMU's
gdbstub, the baseline, runs on the host with --qemu-accel (default: kvm where
tests/kvm-present finds one, else tcg). Unlike machines: those rows carry no
target and no verdict. A @where line says where each stub ran.

Prints @row / @note / @where lines (see bench/bench-common.h) and free text.
Exits 0 unless the bench itself fails (a stub that cannot run here is a @note).
"""
import argparse
import importlib.machinery
import importlib.util
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
GDB_SCRIPT = os.path.join(HERE, "e2e-gdb.py")
BP = 0xF0100  # linear address of the flat guest's loop (flat-guest.S)
SECTION = "6. end to end (gdb)"


def row(*cells):
    print("@row\t" + "\t".join(cells), flush=True)


def note(text):
    print("@note\t%s\t%s" % (SECTION, text), flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listen(port, proc, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                pass
            # That probe connection is gone; give the stub a moment to accept again.
            time.sleep(0.2)
            return True
        except OSError:
            time.sleep(0.05)
    return False


def kvm_present():
    """tests/kvm-present's test (a character device that opens read-write
    without O_CREAT and answers KVM_GET_API_VERSION 12): (ok, reason).
    $KVMDBG_KVM_PRESENT names the script when this file is an export."""
    path = os.environ.get("KVMDBG_KVM_PRESENT") or os.path.join(TOP, "tests", "kvm-present")
    sys.dont_write_bytecode = True   # no __pycache__ next to it in the source tree
    loader = importlib.machinery.SourceFileLoader("kvm_present", path)
    mod = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(mod)
    return mod.kvm_present("/dev/kvm")


def qemu_cmd(port, flat, accel="kvm"):
    return ["qemu-system-x86_64", "-accel", accel, "-S", "-gdb", "tcp:127.0.0.1:%d" % port,
            "-display", "none", "-nodefaults", "-no-user-config", "-m", "16",
            "-bios", flat]


def kvmdbg_run_cmd(path, port, flat):
    """THE HOOK for issue 6 (kvmdbg-run's gdb stub). Return the command that
    starts kvmdbg-run serving the gdb remote protocol on 127.0.0.1:port with
    the flat guest loaded like QEMU's -bios (64 KiB at 0xf0000, started in real mode,
    reset vector at 0xffff0), or None with the reason on stdout when it
    cannot. Adjust the option names here when the stub lands."""
    if not path or not os.access(path, os.X_OK):
        return None, "kvmdbg-run not built (-Dexamples)"
    try:
        help_text = subprocess.run([path, "--help"], capture_output=True, text=True,
                                   timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, "kvmdbg-run --help failed: %s" % e
    if "--gdb" not in help_text:
        return None, ("kvmdbg-run has no gdb remote stub yet (--gdb: issue 6); the QEMU "
                      "side is measured and waits for it")
    if "--flat" not in help_text:
        return None, "kvmdbg-run --gdb exists but cannot load a flat guest (--flat)"
    return [path, "--gdb", "127.0.0.1:%d" % port, "--flat", flat], None


def bed_cmd(vmbed, kernel, workdir, port, flat):
    """THE HOOK for kvmdbg-run inside the x86 VM test bed: the command that
    boots the bed and serves `kvmdbg-run --flat FLAT --gdb <virtio port>` on
    the host's 127.0.0.1:port (tests/vm/vmbed gdb), or None and the reason."""
    try:
        p = subprocess.run([sys.executable, vmbed, "gdb", "--help"], capture_output=True,
                           text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, "%s gdb --help failed: %s" % (vmbed, e)
    if p.returncode != 0 or "--port" not in p.stdout:
        return None, ("tests/vm/vmbed has no `gdb` subcommand yet (boot the bed, serve "
                      "kvmdbg-run --gdb on a host port)")
    return [sys.executable, vmbed, "gdb", "--arch", "x86_64", "--kernels", kernel,
            "--port", str(port)] + (["--workdir", workdir] if workdir else []) + [
            "--", "kvmdbg-run", "--flat", os.path.abspath(flat)], None


def bed_release(workdir, kernel):
    """" 6.1.0-50-amd64": the bed kernel's release, from the console log
    vmbed keeps in its work directory (uname, printed by its /init), or ""."""
    try:
        with open(os.path.join(workdir or "", "x86_64", "console-x86_64-%s.log" % kernel),
                  errors="replace") as f:
            m = re.search(r"kvmdbg-vm: uname (\S+)", f.read())
    except OSError:
        return ""
    return " " + m.group(1) if m else ""


def stop(proc):
    """End a stub we started, with everything it started (its own session)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def run_stub(name, cmd, port, n, rounds, listen_timeout=10.0, gdb_timeout=120, where=None):
    """Start a stub, drive gdb against it; returns {kind: [(n, secs, progress)]}
    or a string saying why not. where: a list to append the stub's own
    `vmbed: ...: kernel ...` lines to (the bed's kernel)."""
    log = tempfile.TemporaryFile(mode="w+")
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
    except OSError as e:
        log.close()
        return "%s does not start: %s" % (name, e)

    def output():
        log.seek(0)
        return log.read()
    try:
        if not wait_listen(port, proc, listen_timeout):
            err = output().strip().splitlines()
            if proc.poll() is not None:
                err = err[-1] if err else "exit %d" % proc.returncode
            else:
                err = "timeout after %.0f s" % listen_timeout
            return "%s did not open its gdb port: %s" % (name, err)
        env = dict(os.environ, E2E_TARGET="127.0.0.1:%d" % port, E2E_N=str(n),
                   E2E_ROUNDS=str(rounds), E2E_BP=hex(BP))
        try:
            g = subprocess.run(["gdb", "-nx", "-batch", "-x", GDB_SCRIPT], env=env,
                               capture_output=True, text=True, timeout=gdb_timeout)
        except subprocess.TimeoutExpired as e:
            # Keep the rounds gdb finished (E2E lines are flushed as they come).
            def text(x):
                return x.decode(errors="replace") if isinstance(x, bytes) else (x or "")
            g = subprocess.CompletedProcess(e.cmd, None, text(e.stdout), text(e.stderr) +
                                            "\nerror: gdb did not finish within %d s" %
                                            gdb_timeout)
            if "E2E " not in g.stdout:
                return "gdb against %s did not finish within %d s" % (name, gdb_timeout)
        if where is not None:
            where += re.findall(r"^vmbed: (?:\S+: QEMU emulator|error:|\S+: kernel ).*$",
                                output(), re.M)
        res = {"stepi": [], "continue": []}
        for line in g.stdout.splitlines():
            f = line.split()
            if len(f) == 5 and f[0] == "E2E":
                res[f[1]].append((int(f[2]), float(f[3]), int(f[4])))
        if not res["stepi"]:
            return "gdb got no stop from %s" % name
        for kind in ("stepi", "continue"):
            if not res[kind]:
                # What gdb said last, and the stub's own last line.
                err = [l for l in g.stderr.strip().splitlines() if "Error" in l or "error" in l]
                tail = output().strip().splitlines()
                why = "%s: %s not measured: gdb: %s; the stub: %s" % (
                    name, kind, err[-1] if err else "no stop", tail[-1] if tail else
                    "(no output)")
                print(why)
                note(why)
        return res
    finally:
        stop(proc)
        log.close()


def summarise(samples):
    """Median round trips/s and median loop iterations per round trip."""
    rates = [n / secs for n, secs, _ in samples]
    progress = [p / n for n, _, p in samples]
    return statistics.median(rates), statistics.median(progress)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flat", required=True)
    ap.add_argument("--kvmdbg-run")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--bed", action="store_true",
                    help="kvmdbg-run in the x86 VM test bed (tests/vm/vmbed gdb)")
    ap.add_argument("--vmbed", default=os.path.join(TOP, "tests", "vm", "vmbed"))
    ap.add_argument("--bed-kernel", default="bookworm", help="Debian suite of the bed's kernel")
    ap.add_argument("--bed-workdir", help="vmbed's --workdir (its static build, initramfs, logs)")
    ap.add_argument("--qemu-accel", choices=("kvm", "tcg"),
                    help="QEMU's accelerator with --bed (default: kvm if usable, else tcg)")
    a = ap.parse_args()

    if not os.path.exists(a.flat):
        print("e2e: error: no flat guest at %s" % a.flat, file=sys.stderr)
        return 1
    if not shutil.which("gdb"):
        note("not measured here: no gdb")
        return 0
    kvm_ok, kvm_why = kvm_present()
    if not a.bed and not kvm_ok:
        note("not measured here: no usable KVM (%s)" % kvm_why)
        return 0
    accel = "kvm"
    if a.bed:
        accel = a.qemu_accel or ("kvm" if kvm_ok else "tcg")

    results = {}
    if not shutil.which("qemu-system-x86_64"):
        results["QEMU"] = "qemu-system-x86_64 is not installed"
    elif accel == "kvm" and not kvm_ok:
        results["QEMU"] = "no usable KVM for -accel kvm (%s)" % kvm_why
    else:
        port = free_port()
        results["QEMU"] = run_stub("QEMU", qemu_cmd(port, a.flat, accel), port, a.n, a.rounds)
    port = free_port()
    kernel_lines = []
    if a.bed:
        cmd, why = bed_cmd(a.vmbed, a.bed_kernel, a.bed_workdir, port, a.flat)
        # Booting the bed under TCG takes a minute or more; so does each round.
        results["kvmdbg-run"] = why if cmd is None else run_stub(
            "kvmdbg-run in the VM test bed", cmd, port, a.n, a.rounds, listen_timeout=600,
            gdb_timeout=1200, where=kernel_lines)
        print("@where\tkvmdbg-run: x86 SVM bed, Debian %s%s; QEMU: host, -accel %s" %
              (a.bed_kernel, bed_release(a.bed_workdir, a.bed_kernel), accel), flush=True)
        for line in kernel_lines:
            print(line)
    else:
        cmd, why = kvmdbg_run_cmd(a.kvmdbg_run, port, a.flat)
        results["kvmdbg-run"] = why if cmd is None else run_stub("kvmdbg-run", cmd, port, a.n,
                                                                  a.rounds)

    summary = {}
    for name, res in results.items():
        if isinstance(res, str):
            print("%s: not measured: %s" % (name, res))
            note("%s not measured: %s" % (name, res))
            continue
        s = {k: summarise(v) for k, v in res.items() if v}
        summary[name] = s
        for kind, (rate, prog) in s.items():
            print("%s: %s %.0f round trips/s, %.2f loop iterations each (%d rounds of %d)" %
                  (name, kind, rate, prog, len(res[kind]), a.n))

    for kind, what in (("stepi", "gdb stepi round trips/s"),
                       ("continue", "gdb continue-to-hbreak round trips/s")):
        cells = []
        for name in ("kvmdbg-run", "QEMU"):
            s = summary.get(name, {}).get(kind)
            if not s:
                cells.append("not measured")
            elif kind == "continue" and s[1] < 0.5:
                # Each continue stopped again at the same breakpoint.
                cells.append("%.0f, but no progress (%.2f iterations each)" % s)
            else:
                cells.append("%.0f" % s[0])
        k, q = summary.get("kvmdbg-run", {}).get(kind), summary.get("QEMU", {}).get(kind)
        # In the bed the two stubs run on unlike machines: a ratio, no verdict.
        target = "-" if a.bed else ">= 1.5"
        if k and q and q[0] > 0 and (kind != "continue" or q[1] >= 0.5):
            ratio = k[0] / q[0]
            row(SECTION, "%s (kvmdbg-run / QEMU)" % what, cells[0], cells[1],
                "%.2f" % ratio, target, "-" if a.bed else "met" if ratio >= 1.5 else "missed")
        else:
            row(SECTION, "%s (kvmdbg-run / QEMU)" % what, cells[0], cells[1], "-", target,
                "not measured")
    return 0


if __name__ == "__main__":
    sys.exit(main())
