"""Run identity is a contract with every store that holds finished runs: a refactor of the
config schema (moving a field, marking identity on the schema instead of in ``config_hash``)
must leave the hash of every shipped row under every shipped profile as it was, or every
finished row would train again. ``tests/data/config_hashes.json`` holds them; after a change
that is meant to alter an identity, regenerate it (``python -m tests.test_config_identity``)
and say in the commit which rows retrain and why."""

from __future__ import annotations

import json

from assembled.ablation.profiles import load_profiles, train_config
from assembled.ablation.spec import load_table

from .conftest import ROOT

GOLDEN = ROOT / "tests" / "data" / "config_hashes.json"


def current_hashes() -> dict[str, str]:
    """``profile/table/row`` -> (config hash, training hash) for every shipped non-transfer row."""
    profiles = load_profiles(ROOT / "ablations" / "profiles.yaml")
    for profile in profiles.values():  # a data folder named relative to the checkout: not the checkout's place
        for data in (profile.data, *profile.datasets.values()):
            if "path" in data:
                data["path"] = "/data/" + data["path"].rstrip("/").rsplit("/", 1)[-1]
    out = {}
    for path in sorted((ROOT / "ablations").glob("table*.yaml")):
        table, rows = load_table(path)
        for name, profile in profiles.items():
            for row in rows:
                if row.is_transfer:
                    continue
                cfg = train_config(row, table, profile)
                out[f"{name}/{path.stem}/{row.id}"] = f"{cfg.config_hash()} {cfg.training_hash()}"
    return out


def test_every_shipped_row_keeps_its_identity():
    golden = json.loads(GOLDEN.read_text())
    now = current_hashes()
    changed = sorted(k for k in golden.keys() & now.keys() if golden[k] != now[k])
    assert not changed, f"{len(changed)} identities changed (their finished runs would retrain): {changed[:10]}"
    assert now.keys() == golden.keys(), sorted(now.keys() ^ golden.keys())[:10]


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(current_hashes(), indent=0, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
