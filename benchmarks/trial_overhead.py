"""What a trial costs on Ray beyond its own work: one worker process per trial vs workers reused.

    python benchmarks/trial_overhead.py [--rows E0 E1] [--repeats 3] [--rounds 2] [--profile cpu]

Runs ``assembled ablation 7 --rows ... --repeats N`` (a local Ray, a fresh MLflow store each
time) with ``ASSEMBLED_FRESH_TRIAL_PROCESS=1`` and without, alternating, and prints the wall
time of each invocation and of its trials (the store's trial_started .. end_time), the same run
in-process (``--executor local``) as the floor, and whether the top-1 values agree. Idle box,
nothing else running: the figures are the ratio of two measurements taken side by side.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ASSEMBLED = Path(sys.executable).with_name("assembled")
MODES = {
    "fresh process per trial": {"ASSEMBLED_FRESH_TRIAL_PROCESS": "1"},
    "workers reused (default)": {"ASSEMBLED_FRESH_TRIAL_PROCESS": "0"},
}


def _trials(db: Path) -> tuple[float, dict[str, float]]:
    """Seconds from the first trial's start to the last one's end, and top-1 per run name."""
    con = sqlite3.connect(db)
    rows = con.execute(
        "select r.name, cast(s.value as integer), r.end_time, m.value from runs r "
        "join tags s on s.run_uuid = r.run_uuid and s.key = 'trial_started' "
        "left join latest_metrics m on m.run_uuid = r.run_uuid and m.key = 'top1'"
    ).fetchall()
    con.close()
    if not rows:
        raise SystemExit(f"no trial runs in {db}")
    span = (max(r[2] for r in rows) - min(r[1] for r in rows)) / 1000
    return span, {r[0]: round(r[3], 2) for r in rows if r[3] is not None}


def _once(args: argparse.Namespace, env: dict[str, str], extra: list[str]) -> tuple[float, float, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [str(ASSEMBLED), "ablation", "7", "--profile", args.profile, "--repeats", str(args.repeats)]
        cmd += ["--rows", *args.rows, *extra]
        t = time.perf_counter()
        run_env = os.environ | env | {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db"}
        r = subprocess.run(cmd, cwd=tmp, env=run_env, capture_output=True, text=True)
        wall = time.perf_counter() - t
        if r.returncode:
            raise SystemExit(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.strip().splitlines()[-1:]}")
        span, top1 = _trials(Path(tmp) / "mlflow.db")
    return wall, span, top1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", nargs="+", default=["E0", "E1"])
    ap.add_argument("--repeats", type=int, default=3, help="seeds a row: trials = rows x repeats")
    ap.add_argument("--rounds", type=int, default=2, help="invocations of each mode, alternating")
    ap.add_argument("--profile", default="cpu")
    args = ap.parse_args()
    n = len(args.rows) * args.repeats
    rows = " ".join(args.rows)
    print(f"{os.cpu_count()} CPUs; table 7 rows {rows} x {args.repeats} seeds = {n} trials, profile {args.profile}")
    walls: dict[str, list[float]] = {m: [] for m in MODES}
    spans: dict[str, list[float]] = {m: [] for m in MODES}
    results: dict[str, dict[str, float]] = {}
    for _ in range(args.rounds):
        for mode, env in MODES.items():
            wall, span, top1 = _once(args, env, [])
            walls[mode].append(wall)
            spans[mode].append(span)
            results[mode] = top1
            print(f"  {mode:26s} command {wall:6.1f} s, trials {span:6.1f} s")
    wall, span, results["in-process"] = _once(args, {}, ["--executor", "local"])
    print(f"  {'in-process (--executor local)':26s} command {wall:6.1f} s, trials {span:6.1f} s")
    print("\nmedians:")
    for mode in MODES:
        s, w = statistics.median(spans[mode]), statistics.median(walls[mode])
        print(f"  {mode:26s} command {w:6.1f} s, trials {s:6.1f} s ({s / n:.2f} s per trial)")
    fresh, reused = (statistics.median(spans[m]) for m in MODES)
    print(f"  trials' span, fresh / reused: {fresh / reused:.2f}x")
    same = len({tuple(sorted(r.items())) for r in results.values()}) == 1
    print(f"  top-1 per run identical in every mode: {'yes' if same else 'NO'}")
    if not same:
        for mode, r in results.items():
            print(f"    {mode}: {r}")


if __name__ == "__main__":
    main()
