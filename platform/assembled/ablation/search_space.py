"""A search space around a row: dotted TrainConfig keys, each a float (linear or log), an int or
a categorical. Validated once, before anything runs, against the row it searches around: an
error names the file, the row and the key (unknown key, a key the row does not use, low > high,
a log scale with a bound <= 0, an empty categorical).

YAML form (under a row's ``search:``, a profile's ``search:``, or a ``--space`` file)::

    optim.base_lr: {type: float, low: 0.05, high: 0.8, log: true}
    reg.label_smoothing: {type: float, low: 0.0, high: 0.2}
    optim.epochs: {type: int, low: 1, high: 3}
    reg.mixup_type: {type: categorical, choices: [1, 2]}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config_io import ConfigError, set_dotted
from ..training import TrainConfig
from ..training.config import flatten


class Dimension(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = Field(None, gt=0)
    choices: list[Any] | None = None


@dataclass(frozen=True)
class SearchSpace:
    dims: dict[str, Dimension]
    origin: str  # where it was written (file / row), for messages and the study's record

    def suggest(self, trial) -> dict[str, Any]:
        """Parameters for an Optuna trial (ask/tell)."""
        out: dict[str, Any] = {}
        for key, d in self.dims.items():
            if d.type == "float":
                out[key] = trial.suggest_float(key, d.low, d.high, log=d.log, step=d.step)
            elif d.type == "int":
                out[key] = trial.suggest_int(key, int(d.low), int(d.high), log=d.log, step=int(d.step or 1))
            else:
                out[key] = trial.suggest_categorical(key, d.choices)
        return out

    def distributions(self) -> dict:
        """The same dimensions as Optuna distributions (re-enqueueing and checks)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        out = {}
        for key, d in self.dims.items():
            if d.type == "float":
                out[key] = FloatDistribution(d.low, d.high, log=d.log, step=d.step)
            elif d.type == "int":
                out[key] = IntDistribution(int(d.low), int(d.high), log=d.log, step=int(d.step or 1))
            else:
                out[key] = CategoricalDistribution(d.choices)
        return out


def apply(cfg: TrainConfig, params: dict[str, Any]) -> TrainConfig:
    """The row's config with a trial's parameters set (validated as any config is)."""
    data = cfg.model_dump(mode="json")
    for key, value in params.items():
        set_dotted(data, key, value)
    return TrainConfig.model_validate(data)


def _uses(cfg: TrainConfig, key: str) -> str | None:
    """Why the row does not use ``key`` (None when it does)."""
    model = cfg.model
    if key == "reg.kd_temperature" and cfg.reg.kd_temperature <= 0:
        return "the row has no knowledge distillation (no kd: teacher)"
    if key in ("reg.dropblock_keep_prob", "model.dropblock_size") and not model.dropblock:
        return "the row's model has no DropBlock"
    if key == "reg.mixup_type" and cfg.reg.mixup_alpha <= 0:
        return "the row has no Mixup (reg.mixup_alpha is 0)"
    if key.startswith("data.autoaugment_policy") and not cfg.data.autoaugment:
        return "the row has no AutoAugment"
    if key in ("optim.milestones", "optim.gamma") and cfg.optim.schedule != "piecewise":
        return "the row's schedule is cosine"
    return None


def parse_space(raw: Any, cfg: TrainConfig, where: str, check_use: bool = True) -> SearchSpace:
    """``raw``: the YAML mapping; ``where``: "file: row R" for messages. ``check_use=False``:
    keys and dimensions only, not whether the row uses each technique (a profile's block serves
    rows with different techniques)."""
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{where}: key 'search': expected a mapping of dotted keys to dimensions")
    known = set(flatten(cfg.model_dump(mode="json"))) - {"model.name"}  # every switch, not what it is called
    dims: dict[str, Dimension] = {}
    for key, body in raw.items():
        at = f"{where}: key 'search.{key}'"
        key_at = f"{where}: key 'search.{key}"  # completed with a sub-key and the closing quote
        if key not in known:
            raise ConfigError(f"{at}: unknown key (a dotted TrainConfig key such as optim.base_lr)")
        why = _uses(cfg, key) if check_use else None
        if why:
            raise ConfigError(f"{at}: {why}")
        try:
            d = Dimension.model_validate(body)
        except ValidationError as e:
            first = e.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"{key_at}{'.' + loc if loc else ''}': {first['msg']}") from None
        _check(d, at)
        dims[key] = d
    return SearchSpace(dims, where)


def _check(d: Dimension, at: str) -> None:
    if d.type == "categorical":
        if not d.choices:
            raise ConfigError(f"{at}: an empty categorical (give choices: [...])")
        return
    if d.low is None or d.high is None:
        raise ConfigError(f"{at}: a {d.type} needs low and high")
    if d.low > d.high:
        raise ConfigError(f"{at}: low {d.low} > high {d.high}")
    if d.log and d.low <= 0:
        raise ConfigError(f"{at}: a log scale needs low > 0 (got {d.low})")
    if d.type == "int" and (d.low != int(d.low) or d.high != int(d.high)):
        raise ConfigError(f"{at}: an int needs whole bounds")


def default_space(cfg: TrainConfig) -> dict[str, dict]:
    """What a search around a row varies when nobody says: the learning rate and weight decay
    always, and the hyperparameters of each technique the row uses (LS eps, Mixup alpha,
    DropBlock final keep_prob and block size, KD temperature)."""
    lr = cfg.optim.base_lr
    space: dict[str, dict] = {
        "optim.base_lr": {"type": "float", "low": lr / 4, "high": lr * 4, "log": True},
        "optim.weight_decay": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
    }
    if cfg.reg.label_smoothing > 0:
        space["reg.label_smoothing"] = {"type": "float", "low": 0.0, "high": 0.3}
    if cfg.reg.mixup_alpha > 0:
        space["reg.mixup_alpha"] = {"type": "float", "low": 0.1, "high": 1.0}
    if cfg.model.dropblock:
        space["reg.dropblock_keep_prob"] = {"type": "float", "low": 0.7, "high": 0.98}
        space["model.dropblock_size"] = {"type": "categorical", "choices": [3, 5, 7]}
    if cfg.reg.kd_temperature > 0:
        space["reg.kd_temperature"] = {"type": "float", "low": 0.5, "high": 4.0}
    return space
