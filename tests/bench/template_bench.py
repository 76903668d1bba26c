#!/usr/bin/env python3
"""Whole-process benchmark: `berth template` vs `helm template` on the chart corpus.

For each chart (default values) both commands run RUNS times, alternating, after
one warm-up run each. Wall time is measured around posix_spawn and wait; peak
memory is the median of three more runs' maximum resident set size as GNU time
reports it. Prints a Markdown table: median wall time, median peak RSS, and
helm/berth ratios.

Usage (from the repository root):
    cargo build --release -p berth
    python3 tests/bench/template_bench.py [--runs 15] [--charts ../shared/charts]
        [--berth target/release/berth] [--helm ~/.cache/berth/tools/bin/helm]
        [--before OTHER_BERTH]

With --before OTHER_BERTH, another berth build (an earlier commit, say) runs
in the same alternation and gets its own columns: the machine's speed drifts
between runs, so compare builds within one run.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_once(argv):
    """Runs argv with stdout discarded; returns its wall time in seconds.

    posix_spawn (vfork) keeps the launcher's own cost small and equal for both
    commands; a forked Python would add ~1 ms of page-table copying to each run.
    """
    with tempfile.TemporaryFile() as err:
        actions = [
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_DUP2, err.fileno(), 2),
        ]
        start = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
        _, status = os.waitpid(pid, 0)
        elapsed = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            message = err.read().decode(errors="replace").strip()
            raise RuntimeError(f"{' '.join(argv)} failed ({code}): {message}")
    return elapsed


def peak_rss_kib(argv):
    """Peak resident set size of argv, from GNU time (whose own fork adds ~1 MiB).

    Not from this script's wait4: a child forked (or vforked) from Python
    inherits Python's high-water mark, which would hide berth's real figure.
    """
    out = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=True,
    )
    return int(out.stderr.decode().strip().splitlines()[-1])


def main():
    root = Path(__file__).resolve().parents[2]
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--charts", default=str(root.parent / "shared" / "charts"))
    ap.add_argument("--berth", default=str(root / "target" / "release" / "berth"))
    tools = Path(os.environ.get("BERTH_TOOLS_DIR", Path.home() / ".cache" / "berth" / "tools"))
    ap.add_argument("--helm", default=str(tools / "bin" / "helm"))
    ap.add_argument("--before", help="another berth build, timed in the same run")
    args = ap.parse_args()
    programs = {"berth": args.berth}
    if args.before:
        programs["before"] = args.before
    programs["helm"] = args.helm
    compared = [name for name in programs if name != "helm"]

    charts = sorted(p for p in Path(args.charts).iterdir() if (p / "Chart.yaml").is_file())
    print(f"runs per command: {args.runs} (after 1 warm-up); cpus: {os.cpu_count()}")
    print()
    head = ["chart"]
    head += [f"{name} median" for name in programs]
    head += [f"{name} speed-up" for name in compared]
    head += [f"{name} peak RSS" for name in programs]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    ratios = {name: [] for name in compared}
    for chart in charts:
        cmds = {name: [path, "template", str(chart)] for name, path in programs.items()}
        # A program that cannot render the chart is left out of its row.
        for name, argv in list(cmds.items()):
            try:
                run_once(argv)
            except RuntimeError as failure:
                print(f"<!-- {failure} -->", file=sys.stderr)
                del cmds[name]
        samples = {name: [] for name in cmds}
        for _ in range(args.runs):
            for name, argv in cmds.items():
                samples[name].append(run_once(argv))
        med = {n: statistics.median(samples[n]) for n in cmds}
        rss = {n: statistics.median(peak_rss_kib(argv) for _ in range(3)) for n, argv in cmds.items()}
        row = [chart.name]
        row += [f"{med[n] * 1000:.2f} ms" if n in med else "fails" for n in programs]
        for name in compared:
            if name in med and "helm" in med:
                ratio = med["helm"] / med[name]
                ratios[name].append(ratio)
                row.append(f"{ratio:.2f}×")
            else:
                row.append("–")
        row += [f"{rss[n] / 1024:.1f} MiB" if n in rss else "–" for n in programs]
        print("| " + " | ".join(row) + " |", flush=True)
    print()
    for name in compared:
        mean = statistics.geometric_mean(ratios[name])
        print(f"{name}: geometric mean speed-up over helm {mean:.1f}× ({len(ratios[name])} charts)")


if __name__ == "__main__":
    main()
