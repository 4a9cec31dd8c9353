"""Optuna searches around a row, on a real local Ray, a real SQLite Optuna storage and a real
SQLite MLflow store, through the console script; spaces checked before anything runs; the study
page in headless Chromium and optuna-dashboard serving the study."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from assembled.ablation.plan import build_plan
from assembled.ablation.search_space import apply, default_space, parse_space
from assembled.ablation.spec import load_table
from assembled.config_io import ConfigError
from assembled.search.runner import best_row

from .browser import chromium, free_port, js_errors
from .conftest import ROOT, cli


def _cfg(row: str):
    return build_plan("7", "smoke", rows=[row]).rows[row].cfg


@pytest.mark.parametrize(
    "space, message",
    [
        ({"optim.nope": {"type": "float", "low": 0.1, "high": 1}}, "key 'search.optim.nope': unknown key"),
        ({"reg.kd_temperature": {"type": "float", "low": 1, "high": 2}}, "no knowledge distillation"),
        ({"reg.dropblock_keep_prob": {"type": "float", "low": 0.8, "high": 0.9}}, "has no DropBlock"),
        ({"optim.base_lr": {"type": "float", "low": 1.0, "high": 0.1}}, "low 1.0 > high 0.1"),
        ({"optim.base_lr": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}, "log scale needs low > 0"),
        ({"reg.mixup_type": {"type": "categorical", "choices": []}}, "empty categorical"),
        ({"optim.base_lr": {"type": "uniform", "low": 0.1, "high": 1}}, "key 'search.optim.base_lr.type'"),
    ],
)
def test_bad_spaces_name_file_row_and_key(space, message):
    with pytest.raises(ConfigError) as e:
        parse_space(space, _cfg("E3"), "t.yaml: row E3")
    assert str(e.value).startswith("t.yaml: row E3: key 'search.") and message in str(e.value)


def test_a_tables_search_block_is_checked_by_plan(tmp_path):
    """A row's search: block is validated when the table is planned (one line naming file, row
    and key), not first when `assembled search` reads it."""
    table = yaml.safe_load((ROOT / "ablations" / "table04.yaml").read_text())
    table["rows"][0]["search"] = {"optim.bogus": {"type": "flot"}}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(table))
    r = cli("plan", str(tmp_path / "t.yaml"), "--profile", "smoke", cwd=tmp_path)
    row = table["rows"][0]["id"]
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert f"t.yaml: row {row}: key 'search.optim.bogus': unknown key" in r.stderr


def test_default_spaces_follow_the_row_techniques_and_apply():
    assert set(default_space(_cfg("E1"))) == {"optim.base_lr", "optim.weight_decay"}
    e3 = default_space(_cfg("E3"))
    assert {"reg.label_smoothing", "reg.mixup_alpha"} <= set(e3) and "reg.kd_temperature" not in e3
    e7 = default_space(_cfg("E7"))
    assert {"reg.kd_temperature", "reg.dropblock_keep_prob", "model.dropblock_size"} <= set(e7)
    cfg = apply(_cfg("E7"), {"reg.kd_temperature": 2.5, "model.dropblock_size": 5, "optim.base_lr": 0.3})
    assert cfg.reg.kd_temperature == 2.5 and cfg.model.dropblock_size == 5
    assert cfg.optim.base_lr == 0.3 and cfg.config_hash() != _cfg("E7").config_hash()


def test_best_row_pastes_into_a_table(tmp_path):
    row = best_row("E7", "s", 3, {"optim.base_lr": 0.3, "reg.kd_temperature": 2.0, "reg.label_smoothing": 0.05})
    table = yaml.safe_load((ROOT / "ablations" / "table07.yaml").read_text())
    table["rows"].append(row)
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(table))
    _, rows = load_table(tmp_path / "t.yaml")
    tuned = next(r for r in rows if r.id == "E7-t3")
    assert tuned.optim == {"base_lr": 0.3} and tuned.kd == next(r for r in rows if r.id == "E7").kd
    assert tuned.reg["kd_temperature"] == 2.0 and tuned.reg["label_smoothing"] == 0.05
    assert row["reg"] == {"kd_temperature": 2.0, "label_smoothing": 0.05} and "kd" not in row  # one name


def test_bad_space_file_fails_before_anything_runs(tmp_path):
    (tmp_path / "space.yaml").write_text("reg.kd_temperature: {type: float, low: 1, high: 2}\n")
    r = cli("search", "7", "--row", "E3", "--trials", "2", "--profile", "smoke", "--space", "space.yaml", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "space.yaml: key 'search.reg.kd_temperature'" in r.stderr
    bad = cli("search", "7", "--row", "E3", "--trials", "2", "--objective", "top1,speed", cwd=tmp_path)
    assert bad.returncode == 2 and "--objective 'top1,speed'" in bad.stderr
    kd = cli("search", "7", "--row", "E7", "--trials", "2", "--profile", "smoke", cwd=tmp_path)
    assert kd.returncode == 2 and "distils from E6, which has no finished run" in kd.stderr  # checked first
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "optuna.db").exists()


def _study(tmp: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp / 'optuna.db'}")


def _trial_runs(client: MlflowClient, study: str) -> list:
    exp = client.get_experiment_by_name("search-table07")
    return client.search_runs([exp.experiment_id], f"tags.`optuna.study` = '{study}' and tags.kind = 'trial'")


SEARCH = ["search", "7", "--row", "E3", "--profile", "smoke", "--seed", "3"]
STUDY = "table07-E3-smoke-top1"


@pytest.mark.slow
def test_search_continues_to_the_count_and_is_served(ablation_env):
    tmp, _, client = ablation_env
    first = cli(*SEARCH, "--trials", "4", cwd=tmp)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    study = _study(tmp, STUDY)
    states = [t.state for t in study.trials]
    assert len(states) == 4 and set(states) <= {TrialState.COMPLETE, TrialState.PRUNED}
    runs = _trial_runs(client, STUDY)
    assert sorted(int(r.data.tags["optuna.trial"]) for r in runs) == [0, 1, 2, 3]
    for r in runs:
        pruned = r.data.tags.get("optuna.state") == "PRUNED"
        assert r.info.status == ("KILLED" if pruned else "FINISHED")
        assert r.data.tags["search_row"] == "E3" and any(k.startswith("search.") for k in r.data.params)
        if not pruned:
            assert {"top1", "mce", "mfr", "macs", "params"} <= set(r.data.metrics)
    assert "best trial" in first.stdout and "best.yaml" in first.stdout

    more = cli(*SEARCH, "--trials", "6", "--executor", "local", cwd=tmp)  # the study is the executor's business
    assert more.returncode == 0, more.stdout[-3000:] + more.stderr[-3000:]
    assert len(_study(tmp, STUDY).trials) == 6 and len(_trial_runs(client, STUDY)) == 6  # exactly two more
    exp = client.get_experiment_by_name("search-table07")
    parents = client.search_runs([exp.experiment_id], "tags.kind = 'search'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"  # one parent run per study

    page = cli("dashboard", "--study", STUDY, "--out", str(tmp / "pages"), cwd=tmp)
    assert page.returncode == 0, page.stderr
    driver = chromium()
    try:
        driver.get((tmp / "pages" / f"study-{STUDY}.html").as_uri())
        time.sleep(2)
        assert js_errors(driver) == []
        for fig in ("fig-history-top1", "fig-importances", "fig-parallel", "fig-slice"):
            assert driver.find_elements("css selector", f"#{fig} .main-svg"), fig
    finally:
        driver.quit()

    port = free_port()
    exe = Path(sys.executable).parent / "optuna-dashboard"
    proc = subprocess.Popen([str(exe), f"sqlite:///{tmp / 'optuna.db'}", "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        deadline = time.time() + 60
        while True:
            try:
                req = urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/studies", headers={"Accept-Encoding": "gzip"}
                )
                with urllib.request.urlopen(req, timeout=2) as resp:
                    body = resp.read()
                break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, "optuna-dashboard did not answer"
                time.sleep(1)
        import gzip

        text = gzip.decompress(body).decode() if body[:2] == b"\x1f\x8b" else body.decode()
        assert STUDY in text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.mark.slow
def test_bad_region_fails_with_reasons_and_the_study_completes(ablation_env):
    tmp, _, client = ablation_env
    (tmp / "space.yaml").write_text("optim.base_lr: {type: categorical, choices: [0.2, 1.0e+6]}\n")
    r = cli(*SEARCH, "--trials", "2", "--space", "space.yaml", "--sampler", "random", "--study", "bad",
            "--executor", "local", cwd=tmp)  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    study = _study(tmp, "bad")
    done = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert len(done) == 2 and failed, [t.state for t in study.trials]
    assert all(t.params["optim.base_lr"] == 1e6 and "TrainingDiverged" in t.user_attrs["fail_reason"] for t in failed)
    runs = {int(r.data.tags["optuna.trial"]): r for r in _trial_runs(client, "bad")}
    for t in failed:
        assert (
            runs[t.number].info.status == "FAILED" and "TrainingDiverged" in runs[t.number].data.tags["failure_reason"]
        )
    assert "failed: TrainingDiverged" in r.stdout


@pytest.mark.slow
def test_killed_driver_then_the_same_command_finishes(ablation_env):
    tmp, _, client = ablation_env
    exe = Path(sys.executable).parent / "assembled"
    args = [str(exe), *SEARCH, "--trials", "3", "--study", "killed"]
    proc = subprocess.Popen(args, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 600
        while True:  # until a trial is training
            exp = client.get_experiment_by_name("search-table07")
            running = exp and client.search_runs(
                [exp.experiment_id], "attributes.status = 'RUNNING' and tags.kind = 'trial'"
            )
            if running:
                break
            assert proc.poll() is None and time.time() < deadline, "no trial started"
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its Ray, as a lost machine would
        proc.wait()
    assert [t.state for t in _study(tmp, "killed").trials if t.state == TrialState.RUNNING]
    r = cli(*SEARCH, "--trials", "3", "--study", "killed", cwd=tmp)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "left RUNNING by a killed driver" in r.stdout
    study = _study(tmp, "killed")
    assert not study.get_trials(states=(TrialState.RUNNING,))
    assert len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) == 3
    repaired = study.get_trials(states=(TrialState.FAIL,))
    assert repaired and all(t.user_attrs["fail_reason"] == "its driver process was killed" for t in repaired)
    retried = [t for t in study.trials if "retry_of" in t.user_attrs]
    assert {t.params["optim.base_lr"] for t in retried} >= {t.params["optim.base_lr"] for t in repaired if t.params}
    exp = client.get_experiment_by_name("search-table07")
    assert not client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'")


@pytest.mark.slow
def test_two_objectives_store_a_pareto_set(ablation_env):
    tmp, _, client = ablation_env
    r = cli(*SEARCH, "--trials", "2", "--objective", "top1,throughput", "--sampler", "nsga2", "--executor", "local",
            cwd=tmp)  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    study = _study(tmp, "table07-E3-smoke-top1+throughput")
    assert len(study.directions) == 2 and study.best_trials
    assert all(len(t.values) == 2 and t.values[1] > 0 for t in study.best_trials)
    exp = client.get_experiment_by_name("search-table07")
    parent = client.search_runs([exp.experiment_id], "tags.kind = 'search'")[0]
    assert parent.data.tags["pruner"] == "none"  # Optuna 5 cannot prune multi-objective studies
    assert (
        cli("dashboard", "--study", "table07-E3-smoke-top1+throughput", "--out", str(tmp / "p"), cwd=tmp).returncode
        == 0
    )
    driver = chromium()
    try:
        driver.get((tmp / "p" / "study-table07-E3-smoke-top1+throughput.html").as_uri())
        time.sleep(2)
        assert js_errors(driver) == [] and driver.find_elements("css selector", "#fig-pareto .main-svg")
    finally:
        driver.quit()
