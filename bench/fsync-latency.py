#!/usr/bin/env python3
"""How long this disk takes to make a 4 KiB write durable (fsync), as the
relay must before it acknowledges or passes on a change.

    bench/fsync-latency.py [DIR] [--runs N]

Prints the median, p99 and maximum of N (default 500) fsyncs of a 4 KiB
write into a 1 MiB file in DIR (default: target/). The fanout scenario's
p99 is one slow change's latency (100 changes x 50 followers: the 50
worst samples), so the disk's fsync tail shows up in it directly.
"""
import argparse
import os
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", nargs="?", default="target")
    parser.add_argument("--runs", type=int, default=500)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    path = os.path.join(args.dir, ".fsync-latency")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"\0" * (1 << 20))
        os.fsync(fd)
        times = []
        for i in range(args.runs):
            os.pwrite(fd, os.urandom(4096), (i % 256) * 4096)
            start = time.perf_counter()
            os.fsync(fd)
            times.append((time.perf_counter() - start) * 1e3)
    finally:
        os.close(fd)
        os.unlink(path)
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(
        f"fsync of a 4 KiB write, {args.runs} runs: "
        f"median {statistics.median(times):.3f} ms, p99 {p99:.3f} ms, max {times[-1]:.3f} ms"
    )


if __name__ == "__main__":
    main()
