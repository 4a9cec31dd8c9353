"""Units of a table: one seed (repeat) of a row, its key and its seed. Torch-free, so
reports and dashboards can name units without importing the planner."""

from __future__ import annotations

REPEAT_SEED_STEP = 10_007  # repeat k trains with seed base + k * step (a prime: no epoch-seed overlap)


def unit_key(row: str, repeat: int) -> str:
    """Key of one seed of a row: ``E3`` for repeat 0 (runs made before repeats keep their
    identity), ``E3@1``, ``E3@2``, ... for the others."""
    return row if repeat == 0 else f"{row}@{repeat}"


def repeat_seed(base: int, repeat: int) -> int:
    return base + REPEAT_SEED_STEP * repeat
