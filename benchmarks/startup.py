"""How long the commands a user types first take to answer, and the modules behind them.

    python benchmarks/startup.py [--repeats 3] [--store runs-folder/mlflow.db]

Runs each command as a fresh process (the console script, as a user would) in an empty folder
and in one holding an MLflow store (empty, or a copy of ``--store``: reading finished tables),
and prints the median wall time; then, for the light commands, whether torch, Ray, Optuna or
MLflow were imported. Target (issue 25): under 2 s each
on an idle 2-core box.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSEMBLED = Path(sys.executable).with_name("assembled")
COMMANDS = [
    "--help",
    "tables",
    "plan 7",
    "report 7",
    "dashboard 7 --no-artifact",
    "ablation nonexist.yaml",
    "ablation 7 --rows NOPE",
    "plan 7 --profile nope",
    "search 7 --row NOPE --trials 3",
]
HEAVY = ("torch", "ray", "optuna", "mlflow")
IMPORTS = {
    "the CLI parser": "import assembled.cli as c; c.build_parser()",
    "the planner": "import assembled.ablation.plan",
    "dashboards and report": "import dashboards.build, dashboards.cli, assembled.ablation.report",
}


def _time(cmd: str, cwd: Path, repeats: int) -> tuple[float, int, str]:
    times, rc, last = [], 0, ""
    for _ in range(repeats):
        t = time.perf_counter()
        r = subprocess.run([str(ASSEMBLED), *cmd.split()], cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - t)
        rc, last = r.returncode, (r.stderr.strip() or r.stdout.strip()).splitlines()[-1:]
    return statistics.median(times), rc, (last[0] if last else "")[:70]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--store", type=Path, help="an mlflow.db with finished tables (e.g. Table 7's) to read, not an empty one"
    )
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs; median of {args.repeats} runs of each command")
    with tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as stored:
        if args.store:  # a copy: the commands never write it, but a dashboard writes its page beside it
            shutil.copyfile(args.store, Path(stored) / "mlflow.db")
        else:
            env = os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{stored}/mlflow.db"}
            code = "import mlflow; mlflow.MlflowClient().search_experiments()"
            subprocess.run([sys.executable, "-c", code], env=env, check=True)
        for label, folder in (("empty folder", Path(empty)), ("beside an MLflow store", Path(stored))):
            print(f"\n{label}:")
            for cmd in COMMANDS:
                seconds, rc, last = _time(cmd, folder, args.repeats)
                print(f"  {seconds:5.2f} s  rc {rc}  assembled {cmd:34s} {last}")
    print("\nimported by:")
    for label, code in IMPORTS.items():
        probe = f"import sys; {code}; print(','.join(m for m in {HEAVY!r} if m in sys.modules) or 'none')"
        out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
        print(f"  {label:24s} {out.stdout.strip()}")


if __name__ == "__main__":
    main()
