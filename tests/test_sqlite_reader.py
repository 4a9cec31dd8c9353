"""The SQLite reader answers as MLflow's client does, on a real store: a finished ablation
plus runs made to be awkward (deleted, NaN and infinite metrics, a dotted tag, equal start
times, a deleted experiment); and the reading commands answer beside that store without
loading MLflow (its import took ~2 s of their ~3 s)."""

from __future__ import annotations

import math
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.entities import Metric, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from assembled.tracking.sqlite_reader import SqliteReader

from .conftest import ROOT, cli

QUERIES = [  # (filter, order_by, max_results): what the platform asks, and the natural order's spellings
    ("tags.row != ''", ["attributes.start_time DESC"], 5000),
    ("tags.kind = 'trial' and attributes.status = 'FINISHED'", ["attributes.start_time DESC"], 5000),
    ("tags.kind = 'trial' and attributes.status = 'FINISHED'", None, 5000),
    ("tags.kind = 'ablation'", ["attributes.start_time DESC"], 50),
    ("tags.kind = 'ablation' and tags.profile = 'cpu'", ["attributes.start_time DESC"], 50),
    ("tags.kind = 'ablation'", None, 1),
    ("tags.kind = 'search' and tags.`optuna.study` = 'st'", None, 1000),
    ("", ["start_time DESC"], 5000),
    ("tags.kind != 'trial'", None, 3),
    ("tags.kind = 'odd' AND attributes.status != 'FINISHED'", None, 1000),
    ("metrics.top1 > 1", None, 1000),  # beyond the reader: MLflow's client answers
    ("tags.row != ''", ["metrics.top1 DESC"], 1000),  # likewise
]


def _same_metrics(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)


def _same_run(mine, theirs) -> None:
    for attr in (
        "run_id",
        "experiment_id",
        "run_name",
        "status",
        "start_time",
        "end_time",
        "artifact_uri",
        "lifecycle_stage",
    ):
        assert getattr(mine.info, attr) == getattr(theirs.info, attr), attr
    assert mine.data.tags == theirs.data.tags
    assert mine.data.params == theirs.data.params
    assert _same_metrics(mine.data.metrics, theirs.data.metrics), (mine.data.metrics, theirs.data.metrics)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, str]:
    """An ablation's store (two seeds of the cpu profile's E0 and E1, in-process: rows that learn,
    so the report judges a gain), then awkward runs beside it."""
    tmp = tmp_path_factory.mktemp("reader")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    args = ["ablation", "7", "--profile", "cpu", "--rows", "E0", "E1", "--repeats", "2", "--executor", "local"]
    r = cli(*args, cwd=tmp, env={"MLFLOW_TRACKING_URI": uri})
    assert r.returncode == 0, r.stderr[-2000:]
    c = MlflowClient(uri)
    exp = c.create_experiment("search-x", tags={"k": "v"})
    c.create_experiment("SEARCH-upper")  # LIKE minds case in MLflow's SQLite sessions
    gone = c.create_experiment("deleted-one")
    c.delete_experiment(gone)
    for i, (status, tags) in enumerate(
        [
            ("FINISHED", {"kind": "search", "optuna.study": "st", "row": "S"}),
            ("FAILED", {"kind": "odd", "row": "S"}),
            ("KILLED", {"kind": "odd"}),
            ("FINISHED", {"kind": "trial", "row": "Z", "eval_hash": "e"}),
        ]
    ):
        run = c.create_run(exp, start_time=1_000 + (i // 2), tags=tags)  # pairs share a start time
        c.log_batch(
            run.info.run_id,
            metrics=[
                Metric("top1", [50.0, math.nan, math.inf, -math.inf][i], 5, 1),
                Metric("loss", 2.0 - i, 6, 0),
                Metric("loss", 1.0 - i, 7, 1),
            ],
            tags=[RunTag("note", "x" * 300)],
        )
        c.log_param(run.info.run_id, "lr", str(0.1 * i))
        c.set_terminated(run.info.run_id, status, end_time=2_000 + i)
    dead = c.create_run(exp, tags={"kind": "trial", "row": "Z"})
    c.delete_run(dead.info.run_id)
    return tmp, uri


def test_runs_and_experiments_read_as_mlflow_reads_them(store):
    _, uri = store
    theirs, mine = MlflowClient(uri), SqliteReader(uri)
    ids = [e.experiment_id for e in theirs.search_experiments()]
    assert [e.experiment_id for e in mine.search_experiments()] == ids
    for filt, order, most in QUERIES:
        a = mine.search_runs(ids, filt, order_by=order, max_results=most)
        b = theirs.search_runs(ids, filt, order_by=order, max_results=most)
        assert [r.info.run_id for r in a] == [r.info.run_id for r in b], filt
        assert a, filt  # every query finds something, or it checks nothing
        for x, y in zip(a, b, strict=True):
            _same_run(x, y)
    for name in ("table07", "search-x", "deleted-one", "nope"):
        a, b = mine.get_experiment_by_name(name), theirs.get_experiment_by_name(name)
        assert (a is None) == (b is None), name
        if b is not None:
            fields = ("experiment_id", "name", "lifecycle_stage", "tags", "artifact_location", "creation_time")
            assert [getattr(a, f) for f in fields] == [getattr(b, f) for f in fields], name
    for like in ("name LIKE 'search-%'", "name LIKE '%-%'"):
        assert [e.name for e in mine.search_experiments(filter_string=like)] == [
            e.name for e in theirs.search_experiments(filter_string=like)
        ]
    assert [e.name for e in mine.search_experiments(filter_string="name LIKE 'search-%'")] == ["search-x"]
    some = theirs.search_runs(ids, "", max_results=1000)
    for run in some:
        _same_run(mine.get_run(run.info.run_id), run)
        for key in run.data.metrics:
            a = [(m.step, m.timestamp, m.value) for m in mine.get_metric_history(run.info.run_id, key)]
            b = [(m.step, m.timestamp, m.value) for m in theirs.get_metric_history(run.info.run_id, key)]
            assert str(sorted(a)) == str(sorted(b)), key  # str: NaN equals NaN


def test_reports_read_the_same_and_the_store_is_untouched(store, tmp_path):
    tmp, uri = store
    from assembled.ablation.results import experiment_name, latest_parent, unit_runs
    from assembled.ablation.summary import build_summary, unit_frame

    before = (tmp / "mlflow.db").read_bytes()
    frames = []
    for client in (MlflowClient(uri), SqliteReader(uri)):
        parent, manifest = latest_parent(client, experiment_name("7"))
        exp_id = parent.info.experiment_id
        frames.append(build_summary(manifest, unit_frame(manifest, unit_runs(client, exp_id, manifest), exp_id)))
        got = client.download_artifacts(parent.info.run_id, "table.json", str(tmp_path / type(client).__name__))
        assert Path(got).read_text() == (tmp_path / "MlflowClient" / "table.json").read_text()
    assert frames[0].to_csv() == frames[1].to_csv()
    e1 = frames[1].set_index("row").loc["E1"]
    assert e1["d_top1_lo"] < e1["d_top1"] < e1["d_top1_hi"]  # a gain with its interval was compared
    assert (tmp / "mlflow.db").read_bytes() == before


def test_a_page_logged_as_an_artifact_is_what_mlflow_lists(store, tmp_path):
    _, uri = store
    theirs, mine = MlflowClient(uri), SqliteReader(uri)
    parent = mine.search_runs([mine.get_experiment_by_name("table07").experiment_id], "tags.kind = 'ablation'")[0]
    page = tmp_path / "table07.html"
    page.write_text("<html>page</html>")
    mine.log_artifact(parent.info.run_id, str(page), "dashboard")
    assert "dashboard/table07.html" in [a.path for a in theirs.list_artifacts(parent.info.run_id, "dashboard")]
    got = theirs.download_artifacts(parent.info.run_id, "dashboard/table07.html", str(tmp_path / "back"))
    assert Path(got).read_text() == "<html>page</html>"


def test_an_unknown_schema_revision_is_left_to_mlflow(store, tmp_path):
    tmp, _ = store
    copy = tmp_path / "other.db"
    copy.write_bytes((tmp / "mlflow.db").read_bytes())
    con = sqlite3.connect(copy)
    with con:
        con.execute("update alembic_version set version_num = 'ffffffffffff'")
    con.close()
    reader = SqliteReader(f"sqlite:///{copy}")
    assert reader._db is None  # left to MLflow's client, which says what is wrong with the store
    with pytest.raises(MlflowException, match="out-of-date database schema"):
        reader.get_experiment_by_name("table07")


READING = [["report", "7"], ["plan", "7", "--rows", "E0", "E1", "--repeats", "2"], ["dashboard", "7"]]


@pytest.mark.parametrize("command", READING)
def test_reading_commands_beside_a_store_load_no_mlflow(store, command):
    """They answered in 2.7-3.2 s beside a store, ~2.1 s of it MLflow's client (issue 25)."""
    tmp, uri = store
    probe = (
        "import sys\n"
        "from assembled.cli import main\n"
        f"sys.argv = ['assembled', *{command!r}]\n"
        "rc = main()\n"
        "print('RC', rc, sorted(m for m in ('mlflow', 'scipy.stats', 'torch', 'ray') if m in sys.modules))"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(ROOT / "platform") + os.pathsep + str(ROOT)}
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp, env=env)
    last = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-1500:]
    assert last == "RC 0 []", (last, r.stderr[-1500:])
