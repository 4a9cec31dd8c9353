"""The console script as users call it."""

from __future__ import annotations

import json

from .conftest import cli


def test_models_lists_names():
    r = cli("models")
    assert r.returncode == 0
    assert "assemble_resnet50" in r.stdout and "efficientnet_b7" in r.stdout


def test_profile_json():
    r = cli("profile", "resnet50d", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["params"] == 25_576_264 and abs(out["macs"] / 1e9 - 4.33) < 0.02


def test_profile_unknown_model():
    r = cli("profile", "resnet51")
    assert r.returncode == 2 and "unknown model 'resnet51'" in r.stderr
