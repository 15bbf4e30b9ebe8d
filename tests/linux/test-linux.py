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
exits, so that the kernel panics (exit 4), and the overlay (--parts overlay):
boot 1 also runs /init's own perf and ptrace breakpoints with no host
debugger (kvmdbg_overlay), then two boots run them while gdb holds a
hardware breakpoint on getppid's syscall and a watchpoint on panic_timeout
(and, in each part's second phase, a third hardware breakpoint: every slot
but one), with and without kvmdbg-run --overlay: gdb's stops and /init's
counts per phase; and --vcpus 2 under gdb (--parts smp): both CPUs busy in
/init, info threads, all-stop at a breakpoint and at Ctrl-C (each vCPU's rip
unchanged 2 s later), thread 2 + stepi with scheduler-locking step, and a
software break, which the x86 SVM bed cannot deliver: refused.
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

# tests/gdb's session helpers (free_port, run_gdb), beside this script in the
# source tree.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gdb"))
from gdbsession import free_port, run_gdb  # noqa: E402

APPEND = "console=ttyS0 nokaslr quiet"
MARKER = re.compile(r"kvmdbg-linux: /init at ([0-9.]+) s, (-?\d+) CPUs online")

passed = failed = 0
# what /init prints with kvmdbg_syms=1 (kallsyms, and its own spin_stop)
SYMS = ("start_kernel", "jiffies", "_stext", "_etext", "__x64_sys_getppid", "panic_timeout",
        "spin_stop")
OVERLAY_N = 5  # /init's iterations per phase (init.c overlay_run)
GETPID_N = 5  # /init's getpid syscalls after main()'s (kvmdbg_getpid, arm64's gdb session)
# not anchored at the line's start: kvmdbg-run's notes on stderr come back
# through the bed on the same stream, and one may end just before
OVERLAY_LINE = re.compile(r"kvmdbg-overlay: (perf|ptrace) (exec|write) expected (\d+) (\d+) (\d+) "
                          r"saw (-?\d+) (-?\d+) (-?\d+)$", re.M)
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


class Stub:
    """kvmdbg-run --kernel ... [--gdb 127.0.0.1:PORT], its output read as it comes
    (finish: the guest's console, then kvmdbg-run's own lines)."""

    def __init__(self, run, args, limit, gdb=True):
        self.port = free_port()
        self.t0 = time.monotonic()
        self.lines = []
        self.marker_at = None
        gdb_args = ["--gdb", "127.0.0.1:%d" % self.port] if gdb else []
        self.err_lines = []
        # stderr apart: kvmdbg-run's notes would otherwise cut the guest's
        # console lines in the middle
        self.p = subprocess.Popen([run, "--timeout", str(limit)] + gdb_args + args,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, errors="replace")
        self.readers = [threading.Thread(target=self._read, daemon=True),
                        threading.Thread(target=self._read_err, daemon=True)]
        for r in self.readers:
            r.start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))
            if self.marker_at is None and MARKER.search(line):
                self.marker_at = time.monotonic() - self.t0

    def _read_err(self):
        for line in self.p.stderr:
            self.err_lines.append(line.rstrip("\n"))

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
        for r in self.readers:
            r.join(10)
        return self.p.returncode, "\n".join(self.lines + self.err_lines)


def gdb_session(gdb, port, commands, limit, arch="x86_64"):
    return run_gdb(gdb, ["set pagination off", "set confirm off",
                         "set architecture " + GDB_ARCH[arch], "set remotetimeout %d" % limit,
                         "target remote 127.0.0.1:%d" % port] + list(commands),
                   limit, keep_partial=True)


def timed(label, cmd):
    """gdb commands that run cmd and print how long it took."""
    return ["python import time; kvmdbg_t0 = time.monotonic()", cmd,
            'python print("%s: %%.3f s" %% (time.monotonic() - kvmdbg_t0))' % label]


def plain_boot(args, image, name, vcpus, overlay=False, need=SYMS):
    """Boot 1: no gdb; the symbols from /proc/kallsyms, or None. With overlay,
    /init also debugs itself with no host debugger (the baseline)."""
    append = APPEND + " kvmdbg_syms=1" + (" kvmdbg_overlay=%d" % OVERLAY_N if overlay else "")
    stub = Stub(args.kvmdbg_run, ["--kernel", image, "--initrd", args.initrd, "--append",
                                  append, "--mem", "256M", "--vcpus", str(vcpus)],
                args.timeout, gdb=False)
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
    if overlay:
        counts = overlay_counts(sout)
        print("overlay: %s: no host debugger: %s" % (name, format_counts(counts)), flush=True)
        check("%s: no host debugger: /init's own perf and ptrace breakpoints count exactly"
              % name, counts and all(v == exp for v, exp in counts.values()), sout)
    return sym


def overlay_counts(out):
    """/init's counters: {(part, kind): ([seen per phase], [expected per phase])}."""
    res = {}
    for m in OVERLAY_LINE.finditer(out):
        res[(m.group(1), m.group(2))] = ([int(m.group(i)) for i in (6, 7, 8)],
                                         [int(m.group(i)) for i in (3, 4, 5)])
    return res if len(res) == 4 else None


def format_counts(counts):
    if not counts:
        return "no counts"
    return ", ".join("%s %s %s/%s" % (part, kind, "+".join(map(str, seen)),
                                      "+".join(map(str, exp)))
                     for (part, kind), (seen, exp) in sorted(counts.items()))


# gdb's side of the overlay session (gdb Python, run with exec): a hardware
# breakpoint on getppid's syscall and, from its first hit on, a watchpoint on
# panic_timeout, both on the paths /init's loop takes once per iteration
# (init.c overlay_run); at the getppid() that
# starts each part's second phase a third hardware breakpoint (on
# start_kernel, never hit again), so that the host holds every slot but one,
# deleted at the getppid() that starts the third phase. Counts every stop;
# the last (the last iteration's sysctl write) comes after /init's last hit,
# so the detach that follows changes none of its counts.
OVERLAY_GDB = """
import gdb
N, GETPPID, PANIC = %d, %d, %d
EXTRA_BP, EXTRA_WP = %r, %r
stops = []
gdb.events.stop.connect(lambda ev: stops.append(ev))
gdb.execute("hbreak *0x%%x" %% GETPPID)
hb = gdb.breakpoints()[-1]
wp = None
extra = None
got = {"getppid": 0, "panic": 0, "other": 0}
while (got["getppid"] < 6 * N or got["panic"] < 6 * N) and got["other"] < 5:
    del stops[:]
    try:
        gdb.execute("continue", to_string=True)
    except gdb.error as e:
        print("kvmdbg-host: continue: %%s" %% e)
        break
    nums = [b.number for b in getattr(stops[-1], "breakpoints", [])] if stops else []
    if hb.number in nums:
        k = got["getppid"] %% (3 * N)
        got["getppid"] += 1
        if wp is None:
            # from /init's first getppid() on: the kernel's boot writes the
            # variable too
            gdb.execute("watch *(int *)0x%%x" %% PANIC)
            wp = gdb.breakpoints()[-1]
        if k == N:
            extra = []
            for a in EXTRA_BP:
                gdb.execute("hbreak *0x%%x" %% a)
                extra.append(gdb.breakpoints()[-1])
            for a in EXTRA_WP:
                gdb.execute("watch *(int *)0x%%x" %% a)
                extra.append(gdb.breakpoints()[-1])
            print("kvmdbg-host: holds %%d slots from getppid stop %%d" %% (2 + len(extra),
                                                                      got["getppid"]))
        elif k == 2 * N and extra is not None:
            for b in extra:
                b.delete()
            extra = None
            print("kvmdbg-host: holds 2 slots from getppid stop %%d" %% got["getppid"])
    elif wp is not None and wp.number in nums:
        got["panic"] += 1
    else:
        got["other"] += 1
        print("kvmdbg-host: other stop at 0x%%x" %% int(gdb.parse_and_eval("$pc")))
print("kvmdbg-host: getppid %%d panic %%d other %%d" %% (got["getppid"], got["panic"],
                                                       got["other"]))
gdb.execute("delete")
"""
HOST_LINE = re.compile(r"^kvmdbg-host: getppid (\d+) panic (\d+) other (\d+)$", re.M)


def overlay_session(args, image, name, sym, overlay):
    """gdb holds kernel points while /init debugs itself (kvmdbg_overlay).
    arm64: KVM masks the guest's MDSCR_EL1.SS while the host debugs the
    vCPU (kvm_arm_setup_debug, "this confuses guest debuggers which use
    single-step behind the scenes"), so the step Linux arms past its own
    breakpoint or watchpoint (and PTRACE_SINGLESTEP) never ran: before the
    library emulated it, /init's perf breakpoint and watchpoint were passed
    back once each, then TIF_SINGLESTEP stayed set, the next syscall's exit
    sent /init a pseudo-step SIGTRAP (report_syscall) and the kernel
    panicked. Now the library steps the instruction the guest returns to
    with its SS armed (the re-hit of the guest's slot merged there gives the
    exit) and injects the step exception; an execution slot on the
    instruction that exception returns to gives the exit at which the
    library re-reads the slots the guest re-armed (the ptrace child's
    watchpoint right after its breakpoint). Measured in the arm64 bed (6.1
    VHE, guest trixie 6.12): every count exact, phase 2 included, gdb 30/30
    stops, 120 guest exceptions passed back."""
    label = "%s: %s" % (name, "--overlay" if overlay else "without --overlay")
    if args.arch == "arm64":
        # every slot but one of each kind (the bed: 6 breakpoints, 4
        # watchpoints): 4 more breakpoints in start_kernel (.init.text,
        # unmapped once the kernel is up: never hit), 2 more watchpoints on
        # the kernel's text (read-only, never written at that address)
        getppid = sym["__arm64_sys_getppid"]
        extra_bp = [sym["start_kernel"] + 4 * i for i in range(4)]
        extra_wp = [sym["_stext"] + 8 * i for i in range(2)]
    else:
        # every slot but one of the 4 debug registers
        getppid = sym["__x64_sys_getppid"]
        extra_bp, extra_wp = [sym["start_kernel"]], []
    script = OVERLAY_GDB % (OVERLAY_N, getppid, sym["panic_timeout"], extra_bp, extra_wp)
    stub = Stub(args.kvmdbg_run, ["--kernel", image, "--initrd", args.initrd, "--append",
                                  APPEND + " kvmdbg_overlay=%d" % OVERLAY_N, "--mem", "256M"]
                + (["--overlay"] if overlay else []), args.timeout)
    if not stub.wait_listening(args.timeout):
        rc, sout = stub.finish(10)
        bad("%s: kvmdbg-run --gdb listens" % label, sout)
        return None, sout
    t0 = time.monotonic()
    out = gdb_session(args.gdb, stub.port, ["python exec(%r)" % script, "detach"],
                      args.timeout, args.arch)
    rc, sout = stub.finish(args.timeout)
    both = out + "\n--- kvmdbg-run (exit %s) ---\n" % rc + sout
    host = HOST_LINE.search(out)
    counts = overlay_counts(sout)
    print("overlay: %s: host getppid/panic/other stops %s; guest %s; %d guest exceptions "
          "passed back (%.1f s)" % (
              label, "/".join(host.groups()) if host else "?", format_counts(counts),
              sout.count("passed back to the guest"), time.monotonic() - t0), flush=True)
    check("%s: the host's hbreak and watch stop exactly %d times each" % (label, 6 * OVERLAY_N),
          host is not None and host.groups() == (str(6 * OVERLAY_N), str(6 * OVERLAY_N), "0"),
          both)
    check("%s: detach, the guest powers off (exit 0)" % label,
          rc == 0 and "guest powered off" in sout, both)
    return counts, both


def overlay_sessions(args, image, name, sym):
    """The headline: /init's own breakpoints with gdb on the host, with and
    without the overlay."""
    n = OVERLAY_N
    counts, out = overlay_session(args, image, name, sym, True)
    check("%s: --overlay, host holding 2 of %s slots: /init's perf and ptrace counts exact "
          "(phases 1 and 3)" % (name, "6+4" if args.arch == "arm64" else "4"),
          counts is not None and all(s[0] == n and s[2] == n for s, _ in counts.values()), out)
    if args.arch == "arm64":
        # phase 2: breakpoints and watchpoints are slots of their own kinds
        # (DBGBVR/DBGBCR, DBGWVR/DBGWCR): the host's 5 of 6 breakpoints
        # leave one for the guest's execute breakpoint, its 3 of 4
        # watchpoints one for the guest's write watchpoint: nothing suspended
        check("%s: --overlay, host holding all slots but one of each kind: /init's perf "
              "and ptrace counts exact (phase 2)" % name,
              counts is not None and all(s[1] == n for s, _ in counts.values()), out)
    else:
        overlay_phase2_x86(name, n, counts, out)
    overlay_without(args, image, name, sym)


def overlay_phase2_x86(name, n, counts, out):
    # phase 2: one slot left for the guest's two of each part: its DR0 (the
    # execute breakpoint: perf's first event, ptrace's DR0) runs, exact; its
    # DR1 (the write watchpoint) is suspended, the host wins: not one hit
    check("%s: --overlay, host holding 3 of 4 slots: /init's execute breakpoints exact, "
          "its write watchpoints suspended (0)" % name,
          counts is not None and all(
              counts[(part, "exec")][0][1] == n and counts[(part, "write")][0][1] == 0
              for part in ("perf", "ptrace")), out)


def overlay_without(args, image, name, sym):
    counts, out = overlay_session(args, image, name, sym, False)
    if os.environ.get("KVMDBG_TESTBED") == "x86-svm-tcg":
        # seen on this bed (kvm-amd of 6.1): while gdb holds points KVM runs
        # the host's debug registers in place of the guest's (the effective
        # set of KVM_GUESTDBG_USE_HW_BP), and drops the guest's own without
        # a word: not one of its hits in any phase
        check("%s: without --overlay: every one of /init's own breakpoints silently "
              "dropped while gdb holds points (0 hits)" % name,
              counts is not None and all(c == 0 for s, _ in counts.values() for c in s), out)
    elif os.environ.get("KVMDBG_TESTBED", "").startswith("arm64-"):
        # seen on this bed (6.1's KVM, VHE): while gdb holds points KVM runs
        # the host's set (KVM_GUESTDBG_USE_HW) and the guest's own never
        # fire (from 6.14 none of the guest's runs while the host debugs)
        check("%s: without --overlay: none of /init's own breakpoints fires while gdb "
              "holds points (0 hits)" % name,
              counts is not None and all(c == 0 for s, _ in counts.values() for c in s), out)
    else:
        check("%s: without --overlay: /init's counts recorded" % name, counts is not None, out)


def smp_session(args, image, name, sym):
    """--vcpus 2 under gdb: /init busy on both CPUs (kvmdbg_spin), gdb stops
    at its getppid(), sees both vCPUs as threads, both stopped (all-stop: a
    thread's rip stays put while time passes); a software break (which the
    x86 SVM bed cannot deliver) is refused; Ctrl-C stops both; thread 2 +
    stepi steps vCPU 1 alone (scheduler-locking step); then spin_stop is set
    in both processes and gdb detaches."""
    label = "%s: --vcpus 2" % name
    gp = sym["__arm64_sys_getppid" if args.arch == "arm64" else "__x64_sys_getppid"]
    stop = sym["spin_stop"]
    both_rips = ["thread 1", 'print "kvmdbg-rip-1"', "print/x $pc", "thread 2",
                 'print "kvmdbg-rip-2"', "print/x $pc"]
    cmds = ["hbreak *0x%x" % gp, "continue", "delete", "info threads"]
    cmds += ['print "kvmdbg-still"'] + both_rips + ["shell sleep 2"] + both_rips
    # x86 SVM bed: QEMU's SVM ignores the #BP intercept, the verified probe
    # lacks sw_break (the kvm suite asserts it); elsewhere a break here would
    # wait for a getppid() that /init does not make again
    no_sw = os.environ.get("KVMDBG_TESTBED") == "x86-svm-tcg"
    if no_sw:
        cmds += ["break *0x%x" % gp, 'print "kvmdbg-break"', "continue",
                 'print "kvmdbg-break-end"', "delete"]
    cmds += ["python import threading, os, signal; "
             "threading.Timer(3.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()",
             "continue", "info threads", 'print "kvmdbg-ctrlc"'] + both_rips + \
            ["shell sleep 2"] + both_rips
    cmds += ["set scheduler-locking step", "thread 2", 'print "kvmdbg-step"']
    for _ in range(3):
        cmds += ["stepi", "print/x $pc"]
    cmds += ["thread 1", 'print "kvmdbg-step-end"', "print/x $pc"]
    cmds += ["thread 1", "set var *(int *)0x%x = 1" % stop, "thread 2",
             "set var *(int *)0x%x = 1" % stop, "detach"]
    stub = Stub(args.kvmdbg_run, ["--kernel", image, "--initrd", args.initrd, "--append",
                                  APPEND + " kvmdbg_spin=120", "--mem", "256M", "--vcpus", "2"],
                args.timeout)
    if not stub.wait_listening(args.timeout):
        rc, sout = stub.finish(10)
        bad("%s: kvmdbg-run --gdb listens" % label, sout)
        return
    out = gdb_session(args.gdb, stub.port, cmds, args.timeout, args.arch)
    rc, sout = stub.finish(args.timeout)
    both = out + "\n--- kvmdbg-run (exit %s) ---\n" % rc + sout

    def section(tag, end=None):
        i = out.find('"%s"' % tag)
        j = out.find('"%s"' % end, i + 1) if end else -1
        return out[i:j if j > 0 else len(out)] if i >= 0 else ""

    def rips(text):
        return [int(v, 16) for v in re.findall(r'"kvmdbg-rip-[12]"\n\$\d+ = (0x[0-9a-f]+)', text)]

    check("%s: hbreak at /init's getppid stops one vCPU there" % label,
          re.search(r"Thread [12] hit Breakpoint 1, 0x0*%x" % gp, out) is not None, both)
    check("%s: info threads shows both vCPUs" % label,
          re.search(r"1\s+Thread 1 \(vCPU 0\)", out) is not None and
          re.search(r"2\s+Thread 2 \(vCPU 1\)", out) is not None, both)
    still = rips(section("kvmdbg-still", "kvmdbg-break" if no_sw else "kvmdbg-ctrlc"))
    check("%s: all-stop at a breakpoint: both vCPUs' rip unchanged 2 s later" % label,
          len(still) == 4 and still[:2] == still[2:], both)
    if no_sw:
        brk = section("kvmdbg-break", "kvmdbg-break-end")
        print("break: %s: gdb: %s; kvmdbg-run: %s" % (
            label, " / ".join(l.strip() for l in brk.splitlines()
                              if "insert" in l or "Command aborted" in l) or "?",
            " / ".join(l.strip() for l in sout.splitlines() if "sw-break" in l) or "?"),
            flush=True)
        check("%s: break (software) refused on a host without sw_break: gdb cannot insert "
              "it, kvmdbg-run says why" % label,
              "Cannot insert breakpoint" in brk and "verified probe lacks sw_break" in sout,
              both)
    else:
        print("skipped: %s: break where the host lacks sw_break (only the x86 SVM bed "
              "is known to)" % label, flush=True)
    ctrlc = section("kvmdbg-ctrlc", "kvmdbg-step")
    cr = rips(ctrlc)
    check("%s: Ctrl-C stops both vCPUs (rip unchanged 2 s later)" % label,
          "received signal SIGINT" in out and len(cr) == 4 and cr[:2] == cr[2:], both)
    steps = [int(v, 16) for v in re.findall(r"^\$\d+ = (0x[0-9a-f]+)$",
                                            section("kvmdbg-step", "kvmdbg-step-end"), re.M)]
    end = re.search(r'"kvmdbg-step-end"\n\$\d+ = (0x[0-9a-f]+)', out)
    check("%s: thread 2 + stepi steps vCPU 1, vCPU 0 stays" % label,
          len(cr) == 4 and len(steps) == 3 and steps[0] != cr[1] and end is not None and
          int(end.group(1), 16) == cr[0], both)
    check("%s: detach, both CPUs' spin ends, the guest powers off (exit 0)" % label,
          rc == 0 and "kvmdbg-spin: stopped by the debugger" in sout and
          "guest powered off" in sout, both)


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
    sym = plain_boot(args, image, name, 2 if full else 1, full and "overlay" in args.parts)
    if not sym:
        return
    if full and "overlay" in args.parts:
        overlay_sessions(args, image, name, sym)
    if full and "smp" in args.parts:
        smp_session(args, image, name, sym)
    if full and "ends" in args.parts:
        ending_boot(args, image, name, "reset", 3, "reset")
        ending_boot(args, image, name, "panic", 4, "panicked")
    if "gdb" not in args.parts:
        return
    sk, jiffies = sym["start_kernel"], sym["jiffies"]
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
    through the kernel's page tables), an access watchpoint on jiffies_64
    hit 3 times at its address with its value, and a software breakpoint
    (BRK) on the getpid syscall hit in /init, deleted, /init goes on to its
    kvmdbg_getpid calls and powers off (--parts rehit: see below). On the
    --gdb-kernel also /init's own perf and ptrace breakpoints with no host
    debugger (overlay-base), and with --parts overlay the overlay sessions
    (breakpoints and watchpoints apart: gdb holds every slot but one of
    each kind in phase 2; the library emulates the guest's own single-step,
    which KVM masks: overlay_session), or with --parts overlay-without the
    one without --overlay only;
    --vcpus 2 under gdb (smp_session) as on x86."""
    image, kver = kernel_image(args.vmbed, suite, "arm64")
    name = "%s arm64 (%s)" % (suite, kver)
    # arm64's kallsyms has no jiffies (a linker-script alias of jiffies_64),
    # and bookworm's none of the data symbols (no CONFIG_KALLSYMS_ALL)
    # overlay-base: /init's own breakpoints with no host debugger only
    base = full and any(p in args.parts for p in ("overlay", "overlay-base", "overlay-without"))
    sym = plain_boot(args, image, name, 2 if full else 1, base,
                     need=("start_kernel", "_stext", "_etext") +
                     (("jiffies_64", "__arm64_sys_getppid", "__arm64_sys_getpid", "panic_timeout",
                       "spin_stop") if full else ()))
    if sym and full and "overlay" in args.parts:
        overlay_sessions(args, image, name, sym)
    elif sym and full and "overlay-without" in args.parts:
        overlay_without(args, image, name, sym)
    if sym and full and "smp" in args.parts:
        smp_session(args, image, name, sym)
    if full and "ends" in args.parts:
        with tempfile.TemporaryDirectory() as tmp:
            gz = os.path.join(tmp, "vmlinuz.gz")
            with open(image, "rb") as f, gzip.open(gz, "wb", compresslevel=1) as g:
                shutil.copyfileobj(f, g)
            ending_boot(args, gz, name + " gzip'ed Image", "reset", 3, "reset")
        ending_boot(args, image, name, "panic", 4, "panicked")
    if not sym or "gdb" not in args.parts:
        return
    sk = sym["start_kernel"]
    cmds = ["hbreak *0x%x" % sk] + timed("kvmdbg-time start_kernel", "continue") + \
        ["print/x $pc"]
    if full:
        cmds += ["delete"] + ["stepi"] * 20 + ["print/x $pc", "print/x $cpsr",
                                                "info registers pc cpsr", "x/8i $pc"]
        cmds += ["awatch *(unsigned long *)0x%x" % sym["jiffies_64"]]
        cmds += ["continue", 'print "kvmdbg-jiffies"', "print/x $pc"] * 3
        # a software breakpoint (Z0: BRK in the kernel's text) on the getpid
        # syscall: main()'s getpid(); x0 the syscall's pt_regs (at the top of
        # /init's kernel stack, above sp), whose regs[8] is the number in x8
        # and pc the return address in /init. With --parts rehit a continue
        # with the breakpoint kept stops at the first of /init's GETPID_N
        # syscall()s (kvmdbg_getpid), not in the same call again: gdb's
        # step over its breakpoint runs with the interrupts masked.
        getpid = sym["__arm64_sys_getpid"]
        rehit = "rehit" in args.parts
        cmds += ["delete", "break *0x%x" % getpid]
        cmds += ["continue", 'print "kvmdbg-getpid"', "print/x $pc", "print/x $x0",
                 "print/x $sp", "print *(unsigned long *)($x0 + 8 * 8)",
                 "print/x *(unsigned long *)($x0 + 32 * 8)"] * (2 if rehit else 1)
        cmds += ["info breakpoints", 'print "kvmdbg-getpid-end"']
    cmds += ["delete", "detach"]
    stub = Stub(args.kvmdbg_run, ["--kernel", image, "--initrd", args.initrd, "--append",
                                  APPEND + (" kvmdbg_getpid=%d" % GETPID_N if full else ""),
                                  "--mem", "256M"], args.timeout)
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
    if full:
        hits = re.findall(r'"kvmdbg-getpid"\n\$\d+ = (0x[0-9a-f]+)\n\$\d+ = (0x[0-9a-f]+)\n'
                          r'\$\d+ = (0x[0-9a-f]+)\n\$\d+ = (\d+)\n\$\d+ = (0x[0-9a-f]+)\n', out)
        print("getpid: %s: break hits (pc, x0, sp, regs[8], user pc): %s" % (
            name, "; ".join(", ".join(h) for h in hits) or "none"), flush=True)
        # THREAD_SIZE 16 KiB: pt_regs within the stack sp is on; 172 = __NR_getpid
        check("%s: break (software) on __arm64_sys_getpid stops there with /init's "
              "pt_regs in x0 (x8 = 172, getpid)" % name,
              len(hits) == (2 if rehit else 1) and all(int(p, 16) == getpid and
                                     0 < int(x0, 16) - int(sp, 16) < 16384 and n == "172"
                                     for p, x0, sp, n, _ in hits), both)
        if rehit:
            # two different calls, not the first hit again: main()'s
            # getpid() and the loop's syscall() return to different places
            # in /init (seen: both hits return into __getpid, main()'s call)
            check("%s: continue with the break kept: the next hit is the next getpid call "
                  "(another user pc in pt_regs)" % name,
                  len(hits) == 2 and hits[0][4] != hits[1][4], both)
        info = out[out.find('"kvmdbg-getpid"'):out.find('"kvmdbg-getpid-end"')]
        check("%s: info breakpoints: the software breakpoint hit %s; deleted, detach: /init "
              "makes its %d getpid calls" % (name, "2 times" if rehit else "1 time", GETPID_N),
              re.search(r"^\d+\s+breakpoint\s+keep\s+y\s+0x0*%x" % getpid, info, re.M) and
              "breakpoint already hit %s" % ("2 times" if rehit else "1 time") in info and
              "kvmdbg-getpid: %d calls" % GETPID_N in sout, both)
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
    ap.add_argument("--parts", default="gdb,ends,overlay,smp",
                    help="gdb (hbreak start_kernel; on the --gdb-kernel also stepi, watch, and "
                    "on arm64 the software break on getpid), and on the --gdb-kernel: ends "
                    "(the reset and panic boots), overlay "
                    "(/init's own breakpoints with no host debugger and with gdb on the host), "
                    "overlay-base (only with no host debugger), overlay-without (arm64: "
                    "overlay-base and the session with gdb without --overlay), smp (--vcpus 2 "
                    "under gdb), rehit (arm64: continue from the software break on getpid "
                    "to the next call)")
    ap.add_argument("--timeout", type=int, default=int(os.environ.get("KVMDBG_LINUX_TIMEOUT",
                                                                       "600")))
    args = ap.parse_args()
    args.parts = args.parts.split(",")
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
