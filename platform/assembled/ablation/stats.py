"""Repeats into judgements: a metric over a row's seeds as mean, std and n, and the gain of one
row over another with a 95% interval and a verdict.

Rows trained with the same seeds are compared seed by seed (``paired``: the mean of the
per-seed differences, t with n - 1 degrees of freedom), the rest by a difference of means with
Welch's t.

Welch's t (unequal variances, Welch-Satterthwaite degrees of freedom) because rows differ in
how noisy they are (KD and Mixup rows vary less than the baseline on the toy profiles) and
seeds are few: with 2 seeds a side the interval is wide on purpose. A verdict needs at least
two seeds on each side; with one it is "cannot tell", never a guess from a single draw.
Deterministic measurements (GMACs, a throughput timed once per architecture) have zero spread
and are judged on their sign.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

HIGHER_IS_BETTER = {
    "recall_at_1": True,
    "top1": True,
    "top5": True,
    "mce": False,
    "mfr": False,
    "mt5d": False,
    "throughput": True,
}
HELPS, HURTS, UNSURE, SINGLE, MISSING = "helps", "hurts", "cannot tell", "cannot tell (n=1)", "-"
LEVEL = 0.95
PAIRED, WELCH = "paired by seed", "Welch"  # which interval a gain was judged with


@dataclass(frozen=True)
class Spread:
    mean: float | None
    std: float | None  # sample std (ddof 1); None below two values
    n: int


@dataclass(frozen=True)
class Gain:
    delta: float | None  # mean(new) - mean(old)
    lo: float | None  # 95% interval of delta (None when it cannot be formed)
    hi: float | None
    verdict: str
    diff_std: float | None = None  # paired: std of the per-seed differences, at least the step floor (see paired)


def finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def spread(values: Sequence[float | None]) -> Spread:
    xs = finite(values)
    if not xs:
        return Spread(None, None, 0)
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else None
    return Spread(mean, std, len(xs))


def _t_quantile(df: float) -> float:
    """Student's t quantile from scipy.special (the same function scipy.stats' ``t.ppf`` calls):
    importing scipy.stats took ~0.9 s of ``assembled report``'s start, scipy.special ~0.15 s."""
    from scipy.special import stdtrit

    return float(stdtrit(df, 0.5 + LEVEL / 2))


def welch(new: Sequence[float | None], old: Sequence[float | None], higher_is_better: bool) -> Gain:
    """Gain of ``new`` over ``old`` with its 95% Welch interval and verdict."""
    a, b = spread(new), spread(old)
    if a.mean is None or b.mean is None:
        return Gain(None, None, None, MISSING)
    delta = a.mean - b.mean
    if a.n < 2 or b.n < 2:
        return Gain(delta, None, None, SINGLE)
    va, vb = a.std**2 / a.n, b.std**2 / b.n
    se = math.sqrt(va + vb)
    if se == 0:
        lo = hi = delta
    else:
        dof = (va + vb) ** 2 / ((va**2 / (a.n - 1) if va else 0) + (vb**2 / (b.n - 1) if vb else 0))
        half = _t_quantile(dof) * se
        lo, hi = delta - half, delta + half
    return Gain(delta, lo, hi, verdict(lo, hi, higher_is_better))


def paired(
    new: dict[int, float | None], old: dict[int, float | None], higher_is_better: bool, step: float = 0.0
) -> Gain:
    """Gain of ``new`` over ``old`` measured on the same trainings (keys: the seed's repeat): the
    mean of the per-seed differences with a 95% t interval (n - 1 degrees of freedom). For rows
    that evaluate another row's weights (T4 is T3 at 256 px): the seed-to-seed spread of the
    training cancels, which is what pairing is for.

    ``step``: the metric's resolution (top-1 on N images moves in 100/N points). Each value is
    then known to half a step, so equal per-seed differences are a coincidence of that grid, not
    a spread of zero (seen: +5.80 on both seeds, a zero-width interval): the differences' std is
    taken as at least a difference's rounding error, step / sqrt(6) (two uniform errors)."""
    pairs = [finite([v, old.get(k)]) for k, v in new.items()]
    diffs = [a - b for a, b in (p for p in pairs if len(p) == 2)]
    if not diffs:
        return welch(list(new.values()), list(old.values()), higher_is_better)
    d = spread(diffs)
    assert d.mean is not None
    if d.n < 2 or d.std is None:
        return Gain(d.mean, None, None, SINGLE)
    sd = max(d.std, step / math.sqrt(6))
    half = _t_quantile(d.n - 1) * sd / math.sqrt(d.n) if sd > 0 else 0.0
    lo, hi = d.mean - half, d.mean + half
    return Gain(d.mean, lo, hi, verdict(lo, hi, higher_is_better), sd)


def seeds_to_resolve(delta: float, sd: float, most: int = 1000) -> int | None:
    """Seeds a paired gain of ``delta`` needs for its 95% interval to exclude 0, if the per-seed
    differences keep their std ``sd``: the smallest n with t(n-1) * sd / sqrt(n) < |delta|
    (None above ``most``: at this noise the step is not worth resolving by seeds alone)."""
    if sd <= 0:
        return 2 if delta else None
    if not delta:
        return None
    n = 2
    while _t_quantile(n - 1) * sd / math.sqrt(n) >= abs(delta):
        n += 1
        if n > most:
            return None
    return n


def verdict(lo: float, hi: float, higher_is_better: bool) -> str:
    if lo > 0:
        return HELPS if higher_is_better else HURTS
    if hi < 0:
        return HURTS if higher_is_better else HELPS
    return UNSURE


def resolved(v: str) -> bool:
    return v in (HELPS, HURTS)


@dataclass(frozen=True)
class Agreement:
    agree: int  # resolved steps whose sign matches the paper's
    resolved: int  # steps with a paper gain that the measurement resolves
    with_paper: int  # steps with a paper gain at all

    def __str__(self) -> str:
        if not self.with_paper:
            return "no step has a paper gain"
        return f"{self.agree}/{self.resolved} resolved steps agree in sign ({self.with_paper} with a paper gain)"


def sign_agreement(steps: Sequence[tuple[Gain, float | None]]) -> Agreement:
    """Of the steps the measurement resolves (helps/hurts) and the paper reports a non-zero
    gain for, how many agree in sign."""
    with_paper = [(g, p) for g, p in steps if p is not None and p != 0 and g.delta is not None]
    sure = [(g, p) for g, p in with_paper if resolved(g.verdict)]
    agree = sum(1 for g, p in sure if (g.delta > 0) == (p > 0))
    return Agreement(agree, len(sure), len(with_paper))
