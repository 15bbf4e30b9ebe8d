#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End to end with a real client: gdb `stepi` and `continue`-to-breakpoint
round trips per second against a gdb remote stub, for QEMU's own gdbstub
(qemu-system-x86_64 -accel kvm -S -gdb ...) and for kvmdbg-run --gdb, on the
same flat guest (bench/flat-guest.S), in the same run.

usage: e2e.py --flat FLAT.bin [--kvmdbg-run PATH] [--n N] [--rounds R]

Prints @row / @note lines (see bench/bench-common.h) and free text. Exits 0
unless the bench itself fails (a stub that cannot run here is a @note).
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
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


def qemu_cmd(port, flat):
    return ["qemu-system-x86_64", "-accel", "kvm", "-S", "-gdb", "tcp:127.0.0.1:%d" % port,
            "-display", "none", "-nodefaults", "-no-user-config", "-m", "16",
            "-bios", flat]


def kvmdbg_run_cmd(path, port, flat):
    """THE HOOK for issue 6 (kvmdbg-run's gdb stub). Return the command that
    starts kvmdbg-run serving the gdb remote protocol on 127.0.0.1:port with
    the flat guest loaded like QEMU's -bios (64 KiB at 0xf0000, real mode,
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


def run_stub(name, cmd, port, n, rounds):
    """Start a stub, drive gdb against it; returns {kind: [(n, secs, progress)]}
    or a string saying why not."""
    log = open(os.devnull, "w")
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.PIPE, text=True)
    except OSError as e:
        return "%s does not start: %s" % (name, e)
    try:
        if not wait_listen(port, proc):
            err = ""
            if proc.poll() is not None:
                err = proc.stderr.read().strip().splitlines()
                err = err[-1] if err else "exit %d" % proc.returncode
            return "%s did not open its gdb port: %s" % (name, err or "timeout")
        env = dict(os.environ, E2E_TARGET="127.0.0.1:%d" % port, E2E_N=str(n),
                   E2E_ROUNDS=str(rounds), E2E_BP=hex(BP))
        try:
            out = subprocess.run(["gdb", "-nx", "-batch", "-x", GDB_SCRIPT], env=env,
                                 capture_output=True, text=True, timeout=120).stdout
        except subprocess.TimeoutExpired:
            return "gdb against %s did not finish within 120 s" % name
        res = {"stepi": [], "continue": []}
        for line in out.splitlines():
            f = line.split()
            if len(f) == 5 and f[0] == "E2E":
                res[f[1]].append((int(f[2]), float(f[3]), int(f[4])))
        if not res["stepi"]:
            return "gdb got no stop from %s" % name
        return res
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
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
    a = ap.parse_args()

    if not os.path.exists(a.flat):
        print("e2e: error: no flat guest at %s" % a.flat, file=sys.stderr)
        return 1
    if not shutil.which("gdb"):
        note("not measured here: no gdb")
        return 0
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        note("not measured here: /dev/kvm cannot be opened")
        return 0

    results = {}
    if not shutil.which("qemu-system-x86_64"):
        results["QEMU"] = "qemu-system-x86_64 is not installed"
    else:
        port = free_port()
        results["QEMU"] = run_stub("QEMU", qemu_cmd(port, a.flat), port, a.n, a.rounds)
    port = free_port()
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
        if k and q and q[0] > 0 and (kind != "continue" or q[1] >= 0.5):
            ratio = k[0] / q[0]
            row(SECTION, "%s (kvmdbg-run / QEMU)" % what, cells[0], cells[1],
                "%.2f" % ratio, ">= 1.5", "met" if ratio >= 1.5 else "missed")
        else:
            row(SECTION, "%s (kvmdbg-run / QEMU)" % what, cells[0], cells[1], "-", ">= 1.5",
                "not measured")
    return 0


if __name__ == "__main__":
    sys.exit(main())
