#!/usr/bin/env python3
"""How long a disk round trip takes: pwrite + fdatasync of a fixed size, back to back or with a
pause between rounds, reported once per second.

The server's commit waits for one fdatasync of the WAL, so this bounds how fast a write can be
answered on a given disk. On some VMs the round trip is fast only while the disk is kept busy,
and costs up to a millisecond after even a short idle spell (BENCHMARKS.md, "Against the
targets"); compare `--pause 0` with `--pause 0.0002`. With `--append` each round writes past the
end of the file, as a WAL does until it first wraps: the file's size and blocks change too.
`--grow-ahead KIB` adds what the server's VFS does about that (crates/store/sqlite/wal_writes.c):
a write that reaches the file's end is followed by zeros to KIB past it, so most rounds
overwrite blocks already written. Each second's line also gives the process's CPU per round.

Usage: crates/bench/fsync_probe.py [--kb 68] [--seconds 3] [--pause 0] [--append]
                                   [--grow-ahead KIB] [--dir target]
"""
import argparse
import os
import time

ZEROS = bytes(124 * 1024)


def cpu_seconds():
    t = os.times()
    return t.user + t.system


def grow_ahead(fd, end, target):
    """Zero-fill from `end` to `target`, in the VFS's pieces; the new end."""
    while end < target:
        n = min(len(ZEROS), target - end)
        os.pwrite(fd, ZEROS[:n], end)
        end += n
    return end


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", type=int, default=68, help="bytes written per round, in KiB")
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--pause", type=float, default=0.0, help="seconds slept between rounds")
    parser.add_argument("--append", action="store_true", help="grow the file instead of rewriting it")
    parser.add_argument(
        "--grow-ahead", type=int, default=0, metavar="KIB", help="with --append: zero-fill this far ahead"
    )
    parser.add_argument("--dir", default="target", help="where the 200 MiB probe file goes")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    path = os.path.join(args.dir, "fsync_probe.bin")
    size = 200 << 20
    data = os.urandom(args.kb * 1024)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, 0)
        if not args.append:
            # Rewriting: every block written once first, or the first pass over the 200 MiB
            # would allocate them as appending does (a sparse file has none).
            grow_ahead(fd, 0, size)
            os.fdatasync(fd)
        offset, second, times, written, end = 0, 0, [], 0, 0
        start, cpu = time.perf_counter(), cpu_seconds()
        while second < args.seconds:
            if time.perf_counter() - start >= second + 1:
                rounds = len(times)
                times = sorted(times) or [float("nan")]
                now = cpu_seconds()
                used, cpu = now - cpu, now
                print(
                    f"second {second}: {rounds:5d} rounds, {written / 1e6:6.1f} MB/s,"
                    f" median {times[len(times) // 2] * 1e6:5.0f} µs,"
                    f" p90 {times[int(len(times) * 0.9)] * 1e6:5.0f} µs,"
                    f" mean {sum(times) / len(times) * 1e6:5.0f} µs,"
                    f" CPU {used / max(rounds, 1) * 1e6:4.0f} µs per round",
                    flush=True,
                )
                second, times, written = second + 1, [], 0
                continue
            os.pwrite(fd, data, offset)
            offset += len(data)
            if args.append and args.grow_ahead and offset > end:
                end = grow_ahead(fd, offset, (offset + args.grow_ahead * 1024) // 4096 * 4096)
            if offset > size - len(data):
                # Appending: start the file again, so it stays under 200 MiB and still grows.
                if args.append:
                    os.ftruncate(fd, 0)
                offset, end = 0, 0
            written += len(data)
            t = time.perf_counter()
            os.fdatasync(fd)
            times.append(time.perf_counter() - t)
            if args.pause:
                time.sleep(args.pause)
    finally:
        os.close(fd)
        os.unlink(path)


if __name__ == "__main__":
    main()
