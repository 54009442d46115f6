#!/usr/bin/env python3
"""Where a flow's server CPU goes, in microseconds per flow, from a `perf record -g` of the
server (`perf script -F comm,tid,ip,sym,dso` output) and the number of flows in the same
window.

Usage: perf_breakdown.py PERF_SCRIPT_TXT FLOWS HZ [CPU_SECONDS]
  CPU_SECONDS: the server's CPU time over the same window (utime + stime from /proc). On a
  virtual machine a `cpu-clock` profile accounts for less than that (here about 0.7 of it);
  given it, every row is scaled so that the rows add up to it.

Each sample is charged to its thread and to one category, so the rows of a thread add up to
its total: the syscall it is in, named by its kernel entry point (the time the kernel spends
on that call, sleeping excluded), "kernel, other" outside any syscall, or "user".
The three VM markers are leaf symbols where a virtual machine's exits land: the virtio
notification (a write to the device's doorbell, one per block request the thread issues),
interrupts re-enabled after a lock (pending interrupts are delivered there) and the end of a
thread switch (interrupts re-enabled after the switch). They are counted by leaf over every
category, so they overlap the rows above them.
"""
import collections
import re
import sys

VM_MARKERS = [
    ("iowrite16", "virtio notify (iowrite16)"),
    ("_raw_spin_unlock_irqrestore", "irqs re-enabled (_raw_spin_unlock_irqrestore)"),
    ("finish_task_switch", "end of a thread switch (finish_task_switch)"),
]
FRAME = re.compile(r"\s*[0-9a-f]+ (.*) \((.*)\)$")
HEADER = re.compile(r"^(\S.*?)\s+(\d+)\s*$")


def samples(path):
    tid, stack = None, []
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                if tid is not None:
                    yield tid, stack
                tid, stack = None, []
            elif not line[0].isspace():
                m = HEADER.match(line.rstrip())
                tid, stack = (f"{m.group(1)} ({m.group(2)})" if m else line.strip()), []
            else:
                m = FRAME.match(line.rstrip())
                if m:
                    stack.append((m.group(1), m.group(2)))
    if tid is not None:
        yield tid, stack


def category(stack):
    """The syscall a sample is in (its entry point, just above `do_syscall_64`), else
    "kernel, other" (interrupts, page faults) or "user"."""
    frames = [frame for frame, _ in stack]
    if "do_syscall_64" in frames:
        i = frames.index("do_syscall_64")
        entry = frames[i - 1] if i > 0 else "?"
        if entry == "?":
            return "syscall entry"
        if entry == "x64_sys_call" and i > 1:
            entry = frames[i - 2]
        if entry == "exit_to_user_mode_loop":
            return "syscall exit (reschedule, signals)"
        return re.sub(r"^(__x64_sys_|__do_sys_|do_|ksys_)", "", entry)
    if stack and stack[0][1].startswith("[kernel"):
        return "kernel, other"
    return "user"


def main():
    path, flows, hz = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    us = 1e6 / hz / flows  # one sample, in µs per flow
    by_thread = collections.Counter()
    by_cat = collections.defaultdict(collections.Counter)
    by_vm = collections.defaultdict(collections.Counter)
    for tid, stack in samples(path):
        by_thread[tid] += 1
        by_cat[tid][category(stack)] += 1
        leaf = stack[0][0] if stack else ""
        for marker, name in VM_MARKERS:
            if marker in leaf:
                by_vm[tid][name] += 1
    total = sum(by_thread.values())
    print(f"{flows:.0f} flows; the samples ({total}) account for {total * us:.1f} µs per flow")
    if len(sys.argv) > 4:
        measured = float(sys.argv[4]) * 1e6 / flows
        print(f"measured: {measured:.1f} µs per flow; rows scaled by {measured / (total * us):.3f}")
        us = measured / total
    print()
    print("| thread | where | µs/flow |")
    print("|---|---|---|")
    for tid, n in by_thread.most_common():
        print(f"| {tid} | all | {n * us:.1f} |")
        for cat, m in by_cat[tid].most_common():
            if m * us >= 0.5:
                print(f"| | {cat} | {m * us:.1f} |")
    print()
    print("| thread | VM exit marker (leaf) | µs/flow |")
    print("|---|---|---|")
    for tid, _ in by_thread.most_common():
        for name, m in by_vm[tid].most_common():
            print(f"| {tid} | {name} | {m * us:.1f} |")


if __name__ == "__main__":
    main()
