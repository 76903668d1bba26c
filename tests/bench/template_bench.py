#!/usr/bin/env python3
"""Whole-process benchmark: `berth template` vs `helm template` on the chart corpus.

For each chart (default values) both commands run RUNS times, alternating, after
one warm-up run each. Wall time is measured around fork/exec/wait; peak memory
is the child's maximum resident set size from wait4's rusage. Prints a Markdown
table: median wall time, median peak RSS, and helm/berth ratios.

Usage (from the repository root):
    cargo build --release -p berth
    python3 tests/bench/template_bench.py [--runs 15] [--charts ../shared/charts]
        [--berth target/release/berth] [--helm ~/.cache/berth/tools/bin/helm]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def run_once(argv):
    """Runs argv with stdout discarded; returns (seconds, peak RSS in KiB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}): {err.strip()}")
    return elapsed, usage.ru_maxrss


def main():
    root = Path(__file__).resolve().parents[2]
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--charts", default=str(root.parent / "shared" / "charts"))
    ap.add_argument("--berth", default=str(root / "target" / "release" / "berth"))
    tools = Path(os.environ.get("BERTH_TOOLS_DIR", Path.home() / ".cache" / "berth" / "tools"))
    ap.add_argument("--helm", default=str(tools / "bin" / "helm"))
    args = ap.parse_args()

    charts = sorted(p for p in Path(args.charts).iterdir() if (p / "Chart.yaml").is_file())
    print(f"runs per command: {args.runs} (after 1 warm-up); cpus: {os.cpu_count()}")
    print()
    print("| chart | berth median | helm median | speed-up | berth peak RSS | helm peak RSS | memory ratio |")
    print("|---|---|---|---|---|---|---|")
    ratios = []
    for chart in charts:
        cmds = {
            "berth": [args.berth, "template", str(chart)],
            "helm": [args.helm, "template", str(chart)],
        }
        samples = {name: [] for name in cmds}
        for name, argv in cmds.items():
            run_once(argv)
        for _ in range(args.runs):
            for name, argv in cmds.items():
                samples[name].append(run_once(argv))
        med = {n: statistics.median(s[0] for s in samples[n]) for n in cmds}
        rss = {n: statistics.median(s[1] for s in samples[n]) for n in cmds}
        ratio = med["helm"] / med["berth"]
        ratios.append(ratio)
        print(
            f"| {chart.name} | {med['berth'] * 1000:.1f} ms | {med['helm'] * 1000:.1f} ms | "
            f"{ratio:.1f}× | {rss['berth'] / 1024:.1f} MiB | {rss['helm'] / 1024:.1f} MiB | "
            f"{rss['helm'] / rss['berth']:.1f}× |"
        )
    print()
    print(f"geometric mean speed-up: {statistics.geometric_mean(ratios):.1f}×")


if __name__ == "__main__":
    main()
