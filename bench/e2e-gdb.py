# SPDX-License-Identifier: MIT
# Runs inside gdb (gdb -nx -batch -x bench/e2e-gdb.py), driven by bench/e2e.py
# through the environment:
#   E2E_TARGET  host:port of the gdb remote stub
#   E2E_N       round trips a round
#   E2E_ROUNDS  rounds of each kind
#   E2E_BP      linear address of the hardware breakpoint (the guest's loop)
# Prints "E2E key value ..." lines. stepi and continue are timed as a user of
# gdb sees them: one command, one stop, registers read back.
import os
import time

import gdb

target = os.environ["E2E_TARGET"]
n = int(os.environ.get("E2E_N", "200"))
rounds = int(os.environ.get("E2E_ROUNDS", "5"))
bp = int(os.environ["E2E_BP"], 0)


def reg(name):
    return int(gdb.parse_and_eval("$" + name)) & 0xFFFFFFFF


gdb.execute("set pagination off")
gdb.execute("set confirm off")
gdb.execute("target remote " + target, to_string=True)

# First run to the guest's loop (a hardware breakpoint there, removed again):
# the rounds measure the loop, not the firmware's switch to protected mode.
# Single-stepping through that switch (the emulated `mov %eax,%cr0`, then the
# far jump) loses KVM's single-step in the x86 SVM bed: from the far jump on
# the guest runs free and neither steps nor hardware breakpoints stop it
# (bench/flat-guest.S).
gdb.execute("hbreak *%#x" % bp, to_string=True)
gdb.execute("continue", to_string=True)
gdb.execute("delete")

# stepi: rounds of n, the guest's counter must move.
for r in range(rounds):
    before = reg("eax")
    t = time.perf_counter()
    for _ in range(n):
        gdb.execute("stepi", to_string=True)
    dt = time.perf_counter() - t
    print("E2E stepi %d %.6f %d" % (n, dt, reg("eax") - before), flush=True)

# continue to a hardware breakpoint on the loop: one iteration per continue
# when the stub resumes past the breakpoint correctly.
gdb.execute("hbreak *%#x" % bp, to_string=True)
gdb.execute("continue", to_string=True)
for r in range(rounds):
    before = reg("eax")
    t = time.perf_counter()
    for _ in range(n):
        gdb.execute("continue", to_string=True)
    dt = time.perf_counter() - t
    print("E2E continue %d %.6f %d" % (n, dt, reg("eax") - before), flush=True)

gdb.execute("delete")
try:
    gdb.execute("kill", to_string=True)
except gdb.error:
    pass
