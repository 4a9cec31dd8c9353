"""Dashboards drawn from a real SQLite MLflow store that a real smoke ablation (local Ray) filled,
checked as HTML and in headless Chromium; the MLflow UI served by `assembled ui`."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from assembled.ablation.stats import PAIRED, UNSURE
from assembled.tracking.ui import experiment_url, run_url
from dashboards.build import build
from dashboards.figures import labels, pareto_front, row_colours, training_curves
from dashboards.page import index_page, mixed_evaluation_warning, rows_table, table_page
from dashboards.source import experiment_name, load_table

from .browser import chromium, free_port, js_errors, screenshot_spread
from .conftest import ROOT, cli

# a reference model, three stacking rows and one that diverges (lr 1e6 -> NaN loss)
TABLE = """
table: dash
title: Dashboard fixture
baseline: A
kind: stacked
rows:
  - {id: Ref, model: efficientnet_b0, reference: true, epochs: 120, input_size: 224,
     paper: {top1: 77.3, mce: 70.7, throughput: 510}}
  - {id: A, model: resnet50, epochs: 120, input_size: 224, paper: {top1: 76.87, mce: 75.55, mfr: 56.55}}
  - {id: B, model: resnet50d, base: A, reg: {label_smoothing: 0.1},
     paper: {top1: 78.35, mce: 74.27, mfr: 54.75, throughput: 493}}
  - {id: C, base: B, model: {sk: doubled_3x3}, paper: {top1: 79.0, mce: 70.0, throughput: 400}}
  - {id: Broken, base: B, optim: {base_lr: 1.0e+6}, paper: {top1: 80.0}}
"""
FIGURES = (
    "fig-paper-vs-measured", "fig-gains", "fig-relative", "fig-pareto", "fig-corruptions", "fig-perturbations",
    "fig-curves",
)  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One smoke ablation of TABLE, as `assembled ablation` from a user's folder."""
    tmp = tmp_path_factory.mktemp("dash")
    shutil.copy(ROOT / "ablations" / "profiles.yaml", tmp / "profiles.yaml")
    (tmp / "dash.yaml").write_text(TABLE)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    ray_tmp = tempfile.mkdtemp(prefix="ad", dir="/tmp")
    env = {"MLFLOW_TRACKING_URI": uri, "ASSEMBLED_RAY_TMP": ray_tmp, "RAY_ADDRESS": ""}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        from assembled.ablation.runner import run_ablation

        result = run_ablation(
            str(tmp / "dash.yaml"), "smoke", ablations_dir=tmp, workdir=tmp / "runs", executor="local"
        )
    shutil.rmtree(ray_tmp, ignore_errors=True)
    assert set(result.failed) == {"Broken"}, result.failed
    return tmp, uri, result


def test_experiment_names_and_labels():
    assert experiment_name("7") == experiment_name("table07") == "table07"
    assert experiment_name("my_table") == "my_table"
    df = pd.DataFrame({"row": ["E0", "E1"], "status": ["FINISHED", "FAILED"]})
    assert labels(df) == ["E0", "E1 (failed)"]


def test_pareto_front_keeps_only_undominated_points():
    pts = [(100.0, 70.0, "a"), (50.0, 80.0, "b"), (40.0, 75.0, "dominated"), (200.0, 60.0, "c"), (90.0, 65.0, "d")]
    assert [p[2] for p in pareto_front(pts)] == ["b", "a", "c"]
    assert pareto_front([]) == []


def test_rows_evaluated_differently_are_flagged():
    df = pd.DataFrame({"row": ["E0", "E1", "E2"], "status": ["FINISHED"] * 3, "eval_hash": ["aaa", "aaa", "untagged"]})
    warning = mixed_evaluation_warning(df)
    assert "do not compare" in warning and "untagged: E2" in warning and "aaa: E0, E1" in warning
    df.loc[2, "status"] = "FAILED"  # only finished rows count
    assert mixed_evaluation_warning(df) == ""


def test_each_row_keeps_one_colour_in_every_curve():
    recs = [
        {"unit": u, "row": u.split("@")[0], "metric": m, "epoch": e, "value": 1.0}
        for u in ("A", "A@1", "B")
        for m in ("loss", "top1", "lr")
        for e in (1, 2, 3)
    ]
    fig = training_curves(pd.DataFrame(recs), row_colours(["A", "B"]))
    colours: dict[str, set] = {}
    for trace in fig.data:
        colours.setdefault(trace.name, set()).add(trace.line.color)
    assert len(fig.data) == 9 and all(len(c) == 1 for c in colours.values())  # 3 subplots x (2 seeds of A + B)
    assert colours["A"] != colours["B"]
    assert sum(t.showlegend is True for t in fig.data) == 2  # one legend entry per row
    short = pd.DataFrame([r for r in recs if r["epoch"] == 1])
    fig = training_curves(short, row_colours(["A", "B"]))
    assert "points, not curves" in fig.layout.title.text and len(fig.layout.annotations) == 2  # no empty lr plot
    # a retrieval table logs Recall@1 per epoch, not top-1: its plot says so (no empty top-1 plot)
    retrieval = pd.DataFrame([{**r, "metric": "recall_at_1"} if r["metric"] == "top1" else r for r in recs])
    titles = [a.text for a in training_curves(retrieval, row_colours(["A", "B"])).layout.annotations]
    assert titles == ["training loss", "validation Recall@1 (%)", "learning rate"]


def test_flags_and_index_without_dead_links():
    df = pd.DataFrame(
        [{"row": "A", "title": "", "reference": False, "status": "FINISHED", "n": 1, "seeds": 1,
          "flags": "constant predictions (1/1 seeds)"}]
    )  # fmt: skip
    assert "class='l flag'>constant predictions" in rows_table(df)
    index = index_page([{"experiment": "t7", "file": None, "title": "", "profile": "", "started": "", "counts": ""}])
    assert "href='#'" not in index and "make dashboard TABLE=t7" in index


@pytest.mark.slow
def test_table_page_from_real_store(store):
    tmp, uri, result = store
    client = MlflowClient(uri)
    data = load_table(client, "dash")
    status = dict(zip(data.rows["row"], data.rows["status"], strict=True))
    assert status == {"Ref": "FINISHED", "A": "FINISHED", "B": "FINISHED", "C": "FINISHED", "Broken": "FAILED"}
    assert data.rows.set_index("row").loc["A", "paper_top1"] == 76.87
    # the broken row failed alone, for good (no retry), with its reason on its run
    assert "TrainingDiverged" in data.rows.set_index("row").loc["Broken", "reason"]
    assert set(data.curves["metric"]) == {"loss", "top1", "lr"}

    t0 = time.perf_counter()
    written = build(client, ["dash"], tmp / "out")
    seconds = time.perf_counter() - t0
    page = written.pages["dash"].read_text()
    for div in FIGURES:
        assert f'id="{div}"' in page, div
    for row in ("Ref", "A", "B", "C", "Broken"):
        assert f">{row}" in page, row
    assert "Broken (failed)" in page and "not a reproduction" in page and ">smoke<" in page
    assert "mixed-eval" not in page  # one evaluation identity for the whole table
    assert "id='gains-table'" in page and "Not comparable in absolute terms" in page
    # one seed a row, or a compared row at chance (smoke's one epoch): no verdict claimed
    assert any(v in page for v in ("cannot tell (n=1)", "near chance)"))
    # measured numbers of the table reach the page: the top-1 of row A, as the rows table prints it
    top1_a = data.rows.set_index("row").loc["A", "top1"]
    assert f"<td>{top1_a:.2f}</td>" in page
    for corruption in ("gaussian_noise", "jpeg_compression"):
        assert corruption in page
    assert "id='mce-mean'>mCE: the mean over 15 standard corruptions" in page  # smoke: Hendrycks' 15
    index = written.index.read_text()
    assert "dash.html" in index and "4 finished, 1 failed" in index  # the page's own row statuses
    arts = [a.path for a in client.list_artifacts(result.parent_run_id, "dashboard")]
    assert arts == ["dashboard/dash.html"]
    assert seconds < 60, seconds
    # an open step judged seed by seed says on the page what a verdict would take
    assert "verdict on the open steps" not in page  # one seed a row: nothing paired is open
    rows = data.rows.copy()
    rows["top1_seeds_needed"] = float("nan")
    c = rows["row"] == "C"
    rows.loc[c, "top1_verdict"], rows.loc[c, "top1_test"], rows.loc[c, "top1_seeds_needed"] = UNSURE, PAIRED, 9
    assert "C ~9 (this run: 1)" in table_page(dataclasses.replace(data, rows=rows))


@pytest.mark.slow
def test_dashboard_cli_and_clear_error(store, tmp_path):
    tmp, uri, _ = store
    out = tmp_path / "pages"
    done = cli("dashboard", "--out", str(out), env={"MLFLOW_TRACKING_URI": uri})
    assert done.returncode == 0, done.stderr
    assert (out / "dash.html").exists() and (out / "index.html").exists()
    missing = cli("dashboard", "99", "--out", str(out), env={"MLFLOW_TRACKING_URI": uri})
    assert missing.returncode == 2 and "no MLflow experiment 'table99'" in missing.stderr


@pytest.mark.slow
def test_page_in_chromium(store):
    tmp, uri, _ = store
    written = build(MlflowClient(uri), ["dash"], tmp / "browser-out", log_artifact=False)
    driver = chromium()
    try:
        driver.get(written.pages["dash"].as_uri())
        time.sleep(2)
        assert js_errors(driver) == []
        for div in FIGURES:
            svgs = driver.find_elements("css selector", f"#{div} .main-svg")
            assert svgs, f"{div} was not drawn"
        assert screenshot_spread(driver) > 5
        driver.get(written.index.as_uri())
        assert "dash" in driver.find_element("id", "tables").text
    finally:
        driver.quit()


def wait_for(driver, xpath: str, seconds: float = 60):
    deadline = time.time() + seconds
    while True:
        found = driver.find_elements("xpath", xpath)
        if found:
            return found[0]
        assert time.time() < deadline, f"{xpath} not on the page after {seconds} s: {driver.page_source[:500]}"
        time.sleep(0.5)


@pytest.mark.slow
def test_mlflow_ui_lists_the_runs(store):
    tmp, uri, _ = store
    port = free_port()
    exe = Path(sys.executable).parent / "assembled"
    proc = subprocess.Popen(
        [str(exe), "ui", "--port", str(port)],
        cwd=tmp,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 120
        while True:
            try:
                if urllib.request.urlopen(f"{url}/health", timeout=2).status == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, proc.stdout.read()
            assert time.time() < deadline, "MLflow server did not answer /health in 120 s"
            time.sleep(1)
        # one uvicorn worker and no job runner (MLflow 3 would start 7 huey consumers beside it)
        ps = ["ps", "-ww", "-o", "args=", "--sid", str(proc.pid)]  # -ww: whole lines, not 80 columns
        tree = subprocess.run(ps, capture_output=True, text=True).stdout
        assert "huey" not in tree and "job" not in tree.lower(), tree
        assert uri not in tree and "--backend-store-uri" not in tree, tree  # the store goes by environment
        exp_id = MlflowClient(uri).get_experiment_by_name("dash").experiment_id
        driver = chromium()
        try:
            # the printed link opens the experiment on its runs table, not on MLflow 3's GenAI view
            banner = proc.stdout.readline() + proc.stdout.readline()
            link = next(w for w in banner.split() if w.startswith("http://"))
            assert link.endswith("?workflowType=machine_learning"), banner
            driver.get(experiment_url(url, exp_id))
            parent = wait_for(driver, "//*[contains(text(), 'dash (smoke)')]")
            assert "workflowType=genai" not in driver.current_url
            # child runs are grouped under the invocation's parent run: expand it
            parent.find_element("xpath", "./ancestor::*[contains(@class, 'ag-cell-value')][1]//button").click()
            for row in ("Ref", "A", "B", "C", "Broken"):
                wait_for(driver, f"//a//*[text() = '{row}']")
            # MLflow 3.17's own UI asks /users/current, which a server without auth answers 404
            errors = [e for e in js_errors(driver) if "users/current" not in e]
            assert errors == []
            assert screenshot_spread(driver) > 5
            # a run's headline numbers are its description, at the top of its page
            child = MlflowClient(uri).search_runs([exp_id], "tags.row = 'A'")[0]
            driver.get(run_url(url, exp_id, child.info.run_id))
            wait_for(driver, "//*[contains(text(), 'top-1 ') and contains(text(), 'mCE ')]")
        finally:
            driver.quit()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
