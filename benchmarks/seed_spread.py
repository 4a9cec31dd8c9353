"""How much do a row's seeds spread under a profile, and would a recipe change narrow it?

    python benchmarks/seed_spread.py [--table 6] [--row T1 ...] [--profile cifar-cpu] [--seeds 5]
        [--set optim.base_lr=0.4 ...] [--parallel 2] [--data DIR]

Trains the given rows of a table with the profile's seeds (the same seeds `assembled ablation`
uses), each seed in a process of its own with one torch thread, no MLflow, and prints each
seed's per-epoch training loss and final top-1, then per row the mean and std over seeds and,
for consecutive rows, the paired step (mean of the per-seed differences, its std) and the
seeds a 95% verdict on it would take if it held. `--set` changes the training config of every
row (dotted keys, as `assembled train --set`): run it twice to compare recipes, e.g. the
`cifar-cpu` warm-up measured in the README.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))


def _train(cfg_json: str) -> dict:
    """One seed of one row, in a fresh process: (losses per epoch, final top-1, seconds)."""
    import torch

    from assembled.training.config import TrainConfig
    from assembled.training.trainer import Trainer

    torch.set_num_threads(1)
    cfg = TrainConfig.model_validate_json(cfg_json)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        result = Trainer(cfg, work, progress=False).fit()
    return {
        "losses": [round(h["loss"], 3) for h in result.history],
        "top1": result.metrics["top1"],
        "seconds": time.perf_counter() - t0,
    }


def _configs(args) -> dict[str, list[tuple[int, str]]]:
    """Per row, (seed, config as JSON) of each repeat, with the --set changes applied."""
    from assembled.ablation.plan import build_plan
    from assembled.config_io import apply_overrides, validate
    from assembled.training.config import TrainConfig

    plan = build_plan(args.table, args.profile, args.data, args.row, repeats=args.seeds)
    out: dict[str, list[tuple[int, str]]] = {}
    for row in args.row:
        for unit in plan.units_of(row):
            d = apply_overrides(unit.cfg.model_dump(mode="json"), args.set)
            cfg = validate(TrainConfig, d | {"threads": 1}, f"--set for row {row}")
            out.setdefault(row, []).append((cfg.seed, cfg.model_dump_json()))
    return out


def _paired_line(a: str, b: str, tops: dict[str, dict[int, float]]) -> str:
    from assembled.ablation.stats import paired, seeds_to_resolve

    g = paired(tops[b], tops[a], higher_is_better=True)
    if g.diff_std is None or g.delta is None:
        return f"  {b} vs {a}: fewer than two shared seeds"
    need = seeds_to_resolve(g.delta, g.diff_std)
    return (
        f"  {b} vs {a}: {g.delta:+.2f} [{g.lo:+.2f}, {g.hi:+.2f}] {g.verdict}; per-seed differences std "
        f"{g.diff_std:.2f}; a verdict would take {'over 1000' if need is None else f'~{need}'} seeds"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", default="6")
    ap.add_argument("--row", action="append", help="repeatable; default T1")
    ap.add_argument("--profile", default="cifar-cpu")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--parallel", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--data")
    args = ap.parse_args()
    args.row = args.row or ["T1"]
    from assembled.config_io import ConfigError

    try:
        configs = _configs(args)
    except ConfigError as e:
        sys.exit(f"seed_spread: {e}")
    jobs = [(row, seed, cfg) for row, units in configs.items() for seed, cfg in units]
    print(f"table {args.table}, profile {args.profile}, {args.seeds} seeds, set {args.set or 'nothing'}")
    tops: dict[str, dict[int, float]] = {}
    with ProcessPoolExecutor(args.parallel, mp_context=get_context("spawn")) as pool:
        futures = [(row, seed, pool.submit(_train, cfg)) for row, seed, cfg in jobs]
        for row, seed, fut in futures:
            r = fut.result()
            tops.setdefault(row, {})[seed] = r["top1"]
            print(f"  {row} seed {seed}: loss by epoch {r['losses']}, top-1 {r['top1']:.2f} ({r['seconds']:.0f} s)")
    from assembled.ablation.stats import spread  # the summary's own mean and std

    for row, by_seed in tops.items():
        sp = spread(list(by_seed.values()))
        sd = f"{sp.std:.2f}" if sp.std is not None else "-"
        print(f"  {row}: top-1 {sp.mean:.2f} ± {sd} over {sp.n} seeds")
    for a, b in zip(args.row, args.row[1:], strict=False):
        print(_paired_line(a, b, tops))
    print(json.dumps({"set": args.set, "top1": tops}))


if __name__ == "__main__":
    main()
