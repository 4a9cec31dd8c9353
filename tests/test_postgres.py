"""PostgreSQL as the README documents it, against a real server the test starts: an MLflow
tracking server whose backend store is a plain ``postgresql://`` URL (handed over by
environment), an Optuna study stored in PostgreSQL, a table and a search logging through them,
and no password (the database's, or the tracking URL's ``http://user:password@host``) on any
line the platform prints or any tag or param it stores."""

from __future__ import annotations

import os
import signal

import pytest
from mlflow.tracking import MlflowClient

from . import postgres
from .conftest import cli
from .services import mlflow_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(postgres.missing() is not None, reason=f"no PostgreSQL server: {postgres.missing()}"),
]


def test_tracking_and_studies_on_postgresql(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ASSEMBLED_RAY_TMP", str(tmp_path / "ray"))
    with postgres.server() as url:
        backend = postgres.create_database(url, "mlflow")
        storage = postgres.create_database(url, "optuna")
        assert backend.startswith("postgresql://") and "+" not in backend.split("://")[0]
        server, uri = mlflow_server(backend, tmp_path / "artifacts", tmp_path)
        try:
            secret = "tr4ck1ng-pw"  # the server has no auth and ignores it: what matters is where it shows
            env = {"MLFLOW_TRACKING_URI": uri.replace("http://", f"http://user:{secret}@")}
            table = cli("ablation", "6", "--profile", "smoke", "--rows", "T0", "--executor", "local", env=env)
            assert table.returncode == 0, table.stdout[-2000:] + table.stderr[-2000:]
            report = cli("report", "6", "--profile", "smoke", env=env)
            assert report.returncode == 0 and "T0" in report.stdout, report.stderr[-2000:]

            search = ["search", "7", "--row", "E3", "--profile", "smoke", "--seed", "1", "--executor", "local"]
            first = cli(*search, "--trials", "1", "--storage", storage, env=env)
            assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
            more = cli(*search, "--trials", "2", "--storage", storage, env=env)
            assert more.returncode == 0, more.stdout[-2000:] + more.stderr[-2000:]
            assert "2 trials complete or pruned" in more.stdout
            for out in (table, report, first, more):
                assert postgres.PASSWORD not in out.stdout + out.stderr and secret not in out.stdout + out.stderr
            assert "user:***@127.0.0.1" in table.stdout

            import optuna

            (study,) = optuna.get_all_study_summaries(storage)
            assert study.n_trials == 2
            client = MlflowClient(uri)
            exp = client.get_experiment_by_name("search-table07")
            trials = client.search_runs([exp.experiment_id], "tags.kind = 'trial'")
            assert len(trials) == 2 and {t.info.status for t in trials} == {"FINISHED"}
            parents = client.search_runs([exp.experiment_id], "tags.kind != 'trial'")
            assert parents and all(postgres.PASSWORD not in p.data.tags.get("optuna.storage", "") for p in parents)
            assert any("postgresql://assembled:***@" in p.data.tags.get("optuna.storage", "") for p in parents)
            (row,) = [r for r in client.search_runs([client.get_experiment_by_name("table06").experiment_id])
                      if r.data.tags.get("row") == "T0"]  # fmt: skip
            assert row.info.status == "FINISHED" and row.data.metrics["top1"] >= 0
            for run in client.search_runs([e.experiment_id for e in client.search_experiments()]):
                stored = " ".join([*run.data.tags.values(), *run.data.params.values()])
                assert secret not in stored and postgres.PASSWORD not in stored, run.info.run_name
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
