#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Meson test `gdb-engine`: libkvmdbg-gdb's protocol engine against an
abusive client, over gdbstub-fake (tests/gdb/fake-target.c, a fake aarch64
machine whose `continue` runs until Ctrl-C with --run-forever). No KVM, no
gdb: raw packets.

- A packet sent while the machine runs, then Ctrl-C (`$?#3f`, `\\x03`): the
  server must not spin (its state sampled from /proc) and must stop on the
  Ctrl-C, then answer the queued packet.
- A client that goes away while the machine runs, with or without a packet
  queued: the server notices and the session ends (`disconnected`).
- A peer that connects and sends nothing: dropped after --handshake MS, and
  the next client is served.
- Ctrl-C inside the packet that resumes, and before it (ignored while stopped).
- vCont;r range stepping (one reply for many steps).
- monitor commands (the built-in `info version`, the VMM's, an unknown one), qOffsets.

usage: test-gdb-engine.py GDBSTUB_FAKE
"""
import os
import re
import socket
import subprocess
import sys
import time

if os.environ.get("KVMDBG_NO_RUN"):
    # A cross build without an exe wrapper: the fake cannot run here.
    print("test-gdb-engine: skipped: " + os.environ["KVMDBG_NO_RUN"])
    sys.exit(77)
fake = sys.argv[1]
checks = []


def check(name, ok, detail=""):
    checks.append((name, ok))
    print(("ok: " if ok else "FAIL: ") + name + ("" if ok or not detail else ": " + detail))


def frame(payload):
    return b"$" + payload + b"#" + b"%02x" % (sum(payload) & 0xFF)


class Server:
    def __init__(self, *args):
        self.p = subprocess.Popen([fake] + list(args), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.port = int(self.p.stdout.readline())

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def runnable(self, seconds=1.0, samples=50):
        """The fraction of samples in which the server is runnable (state R):
        near 0 when it sleeps in poll(), near 1 when it spins, however
        loaded the machine is (CPU time would not tell on a busy one)."""
        n = 0
        for _ in range(samples):
            with open("/proc/%d/stat" % self.p.pid) as f:
                n += f.read().rsplit(")", 1)[1].split()[0] == "R"
            time.sleep(seconds / samples)
        return n / samples

    def finish(self, timeout=5):
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            return None, self.p.stderr.read().decode()
        return self.p.returncode, self.p.stderr.read().decode()


def read_packets(s, want, timeout=3.0):
    """Read until `want` whole packets ($...#xx) arrived; returns their payloads."""
    buf = b""
    out = []
    end = time.time() + timeout
    s.settimeout(0.2)
    while len(out) < want and time.time() < end:
        try:
            d = s.recv(4096)
        except socket.timeout:
            continue
        if not d:
            break
        buf += d
        while True:
            i = buf.find(b"$")
            j = buf.find(b"#", i + 1) if i >= 0 else -1
            if i < 0 or j < 0 or len(buf) < j + 3:
                break
            out.append(buf[i + 1:j])
            buf = buf[j + 3:]
    return out


def handshake(s):
    s.sendall(frame(b"QStartNoAckMode"))
    got = read_packets(s, 1)
    return got == [b"OK"]


# 1. `$?#3f` while running, then ^C: no spin, the ^C stops it, `?` answered after.
srv = Server("--run-forever")
s = srv.connect()
check("handshake (no-ack mode)", handshake(s))
s.sendall(frame(b"vCont;c"))
time.sleep(0.2)
s.sendall(b"$?#3f")
time.sleep(0.1)
s.sendall(b"\x03")
busy = srv.runnable()
check("no busy loop with a packet queued while running, then Ctrl-C", busy < 0.2,
      "runnable in %d%% of the samples" % (busy * 100))
got = read_packets(s, 2)
check("Ctrl-C behind a queued packet stops the machine",
      len(got) >= 1 and got[0].startswith(b"T02"), repr(got))
check("the queued packet is answered after the stop",
      len(got) == 2 and got[1].startswith(b"T05"), repr(got))
s.sendall(frame(b"D"))
got = read_packets(s, 1)
check("detach after that", got == [b"OK"], repr(got))
s.close()
rc, err = srv.finish()
check("session ends: detached", rc == 0 and "session: detached" in err, err)

# 2. The client goes away while running, with a packet queued.
for queued in (b"", b"$?#3f"):
    srv = Server("--run-forever")
    s = srv.connect()
    handshake(s)
    s.sendall(frame(b"vCont;c"))
    time.sleep(0.2)
    if queued:
        s.sendall(queued)
        time.sleep(0.1)
    s.close()
    rc, err = srv.finish(3)
    check("client gone while running%s is noticed" % (" with a packet queued" if queued else ""),
          rc == 0 and "session: disconnected" in err, "rc %r: %s" % (rc, err))

# 3. A silent peer is dropped after the handshake timeout; the next one is served.
srv = Server("--handshake", "300")
silent = srv.connect()
t0 = time.time()
silent.settimeout(3)
try:
    gone = silent.recv(1) == b""
except (socket.timeout, ConnectionResetError):
    gone = False
waited = time.time() - t0
check("a silent peer is dropped after the handshake timeout", gone and 0.2 < waited < 2.5,
      "closed %s after %.2f s" % (gone, waited))
silent.close()
s = srv.connect()
s.sendall(b"+" + frame(b"qSupported:swbreak+"))
got = read_packets(s, 1)
check("the next client is served", len(got) == 1 and b"PacketSize=" in got[0], repr(got))
s.sendall(frame(b"k"))
s.close()
rc, err = srv.finish()
check("sessions: silent, then killed",
      rc == 0 and "session: silent" in err and "session: killed" in err, err)

# 4. ^C sent together with the resuming packet; ^C while stopped is ignored.
srv = Server("--run-forever")
s = srv.connect()
handshake(s)
s.sendall(b"\x03")
s.sendall(frame(b"qC"))
got = read_packets(s, 1)
check("Ctrl-C while stopped is ignored", got == [b"QC1"], repr(got))
for cmd, want in [(b"info version", b"libkvmdbg-gdb "), (b"fake pc", b"pc 0x400000\n"),
                  (b"no such", b"unknown monitor command: no such")]:
    s.sendall(frame(b"qRcmd," + cmd.hex().encode()))
    got = read_packets(s, 1)
    text = bytes.fromhex(got[0].decode()) if got and got[0][:1] not in (b"E", b"") else b""
    check("monitor %s" % cmd.decode(), text.startswith(want), repr(got))
s.sendall(frame(b"vCont?"))
got = read_packets(s, 1)
check("vCont? offers r (range stepping)", got and b";r" in got[0], repr(got))
for rng, want in [(b"r400000,400010:1", 0x400010), (b"r400000,400010:1", 0x400014),
                  (b"r400000,400100:2;c", 0x400100)]:
    s.sendall(frame(b"vCont;" + rng))
    got = read_packets(s, 1)
    pc = re.search(rb";20:([0-9a-f]{16});", got[0]) if got else None
    pc = int.from_bytes(bytes.fromhex(pc.group(1).decode()), "little") if pc else None
    check("vCont;%s: one stop reply, at %#x" % (rng.decode(), want),
          len(got) == 1 and got[0].startswith(b"T05") and pc == want,
          "%r (pc %s)" % (got, pc and hex(pc)))
s.sendall(frame(b"vCont;r400000,400010"))
got = read_packets(s, 1)
check("vCont;r without a thread -> E", got and got[0].startswith(b"E"), repr(got))
# A point type the machine cannot deliver (the fake one has no watchpoints:
# -EOPNOTSUPP) is an error, never the empty reply ("unknown packet").
for z in (b"Z2,400000,8", b"Z3,400000,8", b"Z4,400000,8"):
    s.sendall(frame(z))
    got = read_packets(s, 1)
    check("%s on a machine without watchpoints -> E" % z.decode(),
          len(got) == 1 and got[0].startswith(b"E"), repr(got))
s.sendall(frame(b"qOffsets"))
got = read_packets(s, 1)
check("qOffsets: 0", got == [b"Text=0;Data=0;Bss=0"], repr(got))
s.sendall(frame(b"vCont;c") + b"\x03")
got = read_packets(s, 1)
check("Ctrl-C right behind vCont;c stops it", len(got) == 1 and got[0].startswith(b"T02"),
      repr(got))
s.sendall(frame(b"k"))
s.close()
rc, err = srv.finish()
check("session ends: killed", rc == 0 and "session: killed" in err, err)

failed = sum(not ok for _, ok in checks)
print("test-gdb-engine: %d passed, %d failed" % (len(checks) - failed, failed))
sys.exit(1 if failed else 0)
