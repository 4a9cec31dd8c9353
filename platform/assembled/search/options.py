"""What a search asks for (``assembled search`` flags) and the row's plan, validated before
anything heavy loads: torch-free, so bad input is one line in about a second."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..ablation.plan import ROOT, Plan, build_plan
from ..config_io import ConfigError


@dataclass
class SearchOptions:
    table: str
    row: str
    trials: int
    profile: str = "cpu"
    data: str | None = None
    objective: str = "top1"
    study: str | None = None
    storage: str | None = None
    space: str | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int | None = None
    concurrency: int | None = None
    address: str | None = None
    executor: str = "ray"  # or "local": trials one after another in this process
    ablations_dir: Path | None = None
    workdir: Path | None = None


def search_plan(opts: SearchOptions) -> Plan:
    """The row's plan, validated (the CLI calls it before importing the driver)."""
    if opts.trials < 1:
        raise ConfigError(f"--trials {opts.trials}: ask for at least one trial")
    return build_plan(opts.table, opts.profile, opts.data, [opts.row], opts.ablations_dir or ROOT / "ablations")
