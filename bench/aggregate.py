#!/usr/bin/env python3
"""Aggregates `map-load --json` outputs from bench/compare.sh into one table.

Usage: aggregate.py [--markdown] FILE.json...

Each file is a JSON array of outcomes ({server, scenario, value, metric,
detail, cpu_s, peak_rss_mib, rss_mib}). Prints, per scenario, the medians over
rounds of each server's CPU time, peak RSS and client-side figure, the ratio
relay/JS, and the issue's targets with pass/fail. Stdlib only.
"""
import json
import re
import statistics
import sys
from collections import defaultdict

ORDER = ["converge", "fanout", "many-docs", "idle", "at-rest"]


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(v, p=2):
    return "-" if v is None else f"{v:.{p}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def main(argv):
    markdown = "--markdown" in argv
    files = [a for a in argv if a != "--markdown"]
    runs = defaultdict(list)  # (scenario, server) -> [outcome]
    metric = {}
    for f in files:
        with open(f) as fh:
            for o in json.load(fh):
                p99 = re.search(r"p99 ([0-9.]+) ms", o.get("detail", ""))
                o["p99_ms"] = float(p99.group(1)) if p99 else None
                runs[(o["scenario"], o["server"])].append(o)
                metric[o["scenario"]] = o["metric"]
    scenarios = sorted({s for s, _ in runs}, key=lambda s: ORDER.index(s) if s in ORDER else 99)
    m = {}  # (scenario, server, field) -> median
    for (s, srv), os_ in runs.items():
        for field in ("cpu_s", "peak_rss_mib", "value", "p99_ms"):
            m[(s, srv, field)] = med([o.get(field) for o in os_])
        m[(s, srv, "n")] = len(os_)

    head = ["scenario", "client figure", "relay", "JS", "relay/JS",
            "relay CPU s", "JS CPU s", "CPU ratio",
            "relay peak MiB", "JS peak MiB", "RSS ratio", "rounds"]
    rows = []
    for s in scenarios:
        g = lambda srv, f: m.get((s, srv, f))
        rows.append([
            s, metric[s],
            fmt(g("relay", "value")), fmt(g("js", "value")),
            fmt(ratio(g("relay", "value"), g("js", "value")), 3),
            fmt(g("relay", "cpu_s"), 3), fmt(g("js", "cpu_s"), 3),
            fmt(ratio(g("relay", "cpu_s"), g("js", "cpu_s")), 3),
            fmt(g("relay", "peak_rss_mib"), 1), fmt(g("js", "peak_rss_mib"), 1),
            fmt(ratio(g("relay", "peak_rss_mib"), g("js", "peak_rss_mib")), 3),
            f"{g('relay', 'n') or 0}/{g('js', 'n') or 0}",
        ])
        if s == "fanout":
            rows.append([
                "fanout", "p99 ms per change",
                fmt(g("relay", "p99_ms")), fmt(g("js", "p99_ms")),
                fmt(ratio(g("relay", "p99_ms"), g("js", "p99_ms")), 3),
                "", "", "", "", "", "", "",
            ])
    print_table(head, rows, markdown)

    # The targets.
    checks = []
    for s in scenarios:
        r = ratio(m.get((s, "relay", "cpu_s")), m.get((s, "js", "cpu_s")))
        checks.append((f"{s}: relay CPU <= 1/5 of JS", fmt(r, 3), r is not None and r <= 0.2))
    for s in scenarios:
        r = ratio(m.get((s, "relay", "peak_rss_mib")), m.get((s, "js", "peak_rss_mib")))
        checks.append((f"{s}: relay peak RSS <= 1/10 of JS", fmt(r, 3), r is not None and r <= 0.1))
    if "fanout" in scenarios:
        a, b = m.get(("fanout", "relay", "p99_ms")), m.get(("fanout", "js", "p99_ms"))
        checks.append(("fanout p99 no worse than JS", f"{fmt(a)} vs {fmt(b)} ms",
                       a is not None and b is not None and a <= b))
    if "idle" in scenarios:
        v = m.get(("idle", "relay", "value"))
        checks.append(("1,000 idle connections < 64 MB (relay RSS)", f"{fmt(v, 1)} MiB",
                       v is not None and v * 1.048576 < 64))
    if "at-rest" in scenarios:
        v = m.get(("at-rest", "relay", "value"))
        checks.append(("10,000 plans at rest < 100 MB (relay RSS)", f"{fmt(v, 1)} MiB",
                       v is not None and v * 1.048576 < 100))
    print()
    print_table(["target", "measured", "result"],
                [[c, v, "PASS" if ok else "FAIL"] for c, v, ok in checks], markdown)


def print_table(head, rows, markdown):
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join("---" for _ in head) + "|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
        return
    w = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    for r in [head] + rows:
        print("  ".join(str(x).rjust(w[i]) if i > 1 else str(x).ljust(w[i]) for i, x in enumerate(r)))


if __name__ == "__main__":
    main(sys.argv[1:])
