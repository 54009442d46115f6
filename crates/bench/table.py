#!/usr/bin/env python3
"""Markdown table of oauthd-bench --json results, one row per run.

Usage: python3 crates/bench/table.py target/bench-results/oauthd-sqlite.json peer.json ...
"""
import json
import sys

STEPS = ["authorize", "token", "refresh", "introspect"]


def rows(path):
    with open(path) as f:
        doc = json.load(f)
    for run in doc["runs"]:
        steps = dict(run["steps"])
        cells = [
            run["label"],
            str(run["concurrency"]),
            f'{run["flows_per_s"]:.0f}',
        ]
        for step in STEPS:
            s = steps.get(step)
            cells.append(f'{s["p50"]:.2f} / {s["p99"]:.1f}' if s else "–")
        cpu = run.get("server_cpu_ms_per_flow")
        cells.append(f"{cpu:.3f}" if cpu is not None else "–")
        rss, hwm = run.get("server_rss_kib"), run.get("server_hwm_kib")
        cells.append(f"{rss / 1024:.0f} / {hwm / 1024:.0f}" if rss and hwm else "–")
        cells.append(f'{run["errors"]}')
        cells.append(f'{run.get("other_load_cores", 0):.2f}')
        yield "| " + " | ".join(cells) + " |"


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__.strip())
    print(
        "| server | c | flows/s | authorize p50 / p99 | token p50 / p99 | refresh p50 / p99 "
        "| introspect p50 / p99 | server CPU ms/flow | RSS / peak MiB | errors | other load |"
    )
    print("|" + "---|" * 11)
    for path in sys.argv[1:]:
        for row in rows(path):
            print(row)


if __name__ == "__main__":
    main()
