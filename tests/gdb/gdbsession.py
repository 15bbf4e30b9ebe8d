# SPDX-License-Identifier: MIT
"""What the gdb test scripts of tests/gdb share: skip (exit 77) without a
KVM, kvmdbg-run's verified probe, a stub started on a free loopback port,
gdb run in batch mode against it, and the closing `ok:`/`FAIL:` report.

Not a test itself (`gdbsession.py host-lacks WHAT` prints host_lacks(WHAT)
for the shell scripts and exits 0 when it lacks it). The scripts import it from their own directory (they
put it first on sys.path), so they run from any working directory: meson's,
or `vmbed run --host-test`'s, where KVMDBG_RUN is the wrapper into the bed.
"""
import json
import os
import re
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def skip(name, why):
    """Print `NAME: skipped: WHY` and exit 77 (meson's skip)."""
    print("%s: skipped: %s" % (name, why))
    sys.exit(77)


def kvm_present():
    """The host's KVM (tests/kvm-present), or a VM test bed's when run from
    `vmbed run --host-test` ($KVMDBG_BED: the KVMDBG_RUN given is the bed's):
    (present, why not)."""
    if os.environ.get("KVMDBG_BED"):
        return True, "a VM test bed"
    p = subprocess.run([sys.executable, os.path.join(HERE, "..", "kvm-present")],
                       stdout=subprocess.PIPE, text=True)
    return p.returncode == 0, p.stdout.strip()


# What the host's kvm_pvm (the software KVM of some development machines,
# never the reference) cannot run, seen there; the VM test beds run it all.
PVM_LACKS = {
    "guest_int3": "kvm_pvm ends the guest at its own INT3 at CPL0 "
                  "(KVM_EXIT_INTERNAL_ERROR, an emulation failure)",
    "legacy_modes": "kvm_pvm does not run the legacy-mode firmware guests faithfully "
                    "(seen: a step across the CR0.PE switch lost, a triple fault under "
                    "32-bit paging)",
}


def host_lacks(what):
    """Why the KVM these tests use cannot run WHAT (a key of PVM_LACKS), or
    None: only the host's kvm_pvm (/sys/module/kvm_pvm, not in a bed) lacks
    anything."""
    if os.environ.get("KVMDBG_BED") or not os.path.exists("/sys/module/kvm_pvm"):
        return None
    return PVM_LACKS[what]


def need_kvm(name):
    """Skip NAME unless kvm_present()."""
    present, why = kvm_present()
    if not present:
        skip(name, why)


def probe(run):
    """`kvmdbg-run --probe --json`, parsed."""
    return json.loads(subprocess.run([run, "--probe", "--json"], stdout=subprocess.PIPE,
                                     text=True, timeout=60).stdout)


def need_arch(name, run, arch):
    """Skip NAME unless kvmdbg-run RUN is for ARCH; its probe."""
    p = probe(run)
    if p.get("arch") != arch:
        skip(name, "kvmdbg-run is %s, not %s" % (p.get("arch"), arch))
    return p


def verified(p):
    """The names of a probe's verified capabilities."""
    return {k for k, v in p["capabilities"].items() if v.get("verified")}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(stub, port, seconds):
    """Wait until the stub listens on PORT (it does before its guest runs),
    it exits, or SECONDS pass."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and stub.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)


def start_stub(run, args, limit, wait=30):
    """`RUN ARGS... --gdb 127.0.0.1:PORT --timeout LIMIT` on a free port,
    waited for: (Popen, port); its output (stderr too) is piped."""
    port = free_port()
    stub = subprocess.Popen([run] + list(args) + ["--gdb", "127.0.0.1:%d" % port,
                                                  "--timeout", str(limit)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_port(stub, port, wait)
    return stub, port


def run_gdb(gdb, cmds, timeout, keep_partial=False):
    """`GDB -batch -nx -ex CMD...`: its output (stderr too). Past TIMEOUT
    seconds, `(NAME timed out)` in its place, or after what it printed so
    far with KEEP_PARTIAL."""
    args = [gdb, "-batch", "-nx"]
    for c in cmds:
        args += ["-ex", c]
    try:
        return subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout).stdout
    except subprocess.TimeoutExpired as e:
        out = ""
        if keep_partial:
            out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            out += "\n"
        return out + "(%s timed out)" % os.path.basename(gdb)


def finish_stub(stub, timeout):
    """The stub's output once it exits (killed after TIMEOUT seconds)."""
    try:
        sout, _ = stub.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stub.kill()
        sout, _ = stub.communicate()
    return sout


def session(run, stub_args, gdb, setup, cmds, limit=120, wait=30):
    """kvmdbg-run RUN --gdb (timeout LIMIT) with STUB_ARGS; gdb with the
    SETUP commands, `target remote` to it, then CMDS (time limit LIMIT); the
    stub's end awaited (60 s): (gdb's output, then the stub's under
    `### kvmdbg-run (exit N)`; the stub's output; its exit status)."""
    stub, port = start_stub(run, stub_args, limit, wait)
    out = run_gdb(gdb, list(setup) + ["target remote 127.0.0.1:%d" % port] + list(cmds), limit)
    sout = finish_stub(stub, 60)
    out += "\n### kvmdbg-run (exit %s)\n%s" % (stub.returncode, sout)
    return out, sout, stub.returncode


def regs_of(out, name):
    """Values of `info registers NAME` lines, in order."""
    return [int(v, 16) for v in re.findall(r"^%s\s+0x([0-9a-f]+)" % name, out, re.M)]


def report(name, checks, out, show=False):
    """Print each (check, ok) as `ok:`/`FAIL:`, OUT after a failure (or
    with SHOW), `NAME: N passed, N failed`; exit 0, or 1 on a failure."""
    failed = 0
    for check, ok in checks:
        print(("ok: " if ok else "FAIL: ") + check)
        failed += not ok
    if failed or show:
        print(out)
    print("%s: %d passed, %d failed" % (name, len(checks) - failed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "host-lacks":
        why = host_lacks(sys.argv[2])
        if why:
            print(why)
        sys.exit(0 if why else 1)
    print("usage: gdbsession.py host-lacks WHAT", file=sys.stderr)
    sys.exit(2)
