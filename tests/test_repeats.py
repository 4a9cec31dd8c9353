"""Repeats, reuse across tables, `assembled report` and `assembled plan`, end to end through the
console script on a real local Ray and a real SQLite MLflow store, as a user would type them."""

from __future__ import annotations

import pytest

from .conftest import children, cli


def _by_row(runs) -> dict[str, list]:
    out: dict[str, list] = {}
    for r in runs:
        out.setdefault(r.data.tags["row"], []).append(r)
    return out


@pytest.mark.slow
def test_repeats_report_reuse_and_plan(ablation_env):
    tmp, _, client = ablation_env
    first = cli("ablation", "6", "--profile", "smoke", "--repeats", "2", "--rows", "T0", "T1", cwd=tmp)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    out = first.stdout + first.stderr
    assert "4/4 trials ended (4 finished, 0 failed)" in out  # the overall progress line
    assert "[T0@1] evaluating mCE" in out  # an evaluation says how far it is
    for noise in ("Token authentication", "tensorboard", "Configuration for experiment", "Downloading artifacts"):
        assert noise not in out, noise
    rows = _by_row(children(client, "table06"))
    assert sorted(rows) == ["T0", "T1"]
    for runs in rows.values():
        assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
        assert {r.data.tags["repeat"] for r in runs} == {"0", "1"}
        assert len({r.data.params["seed"] for r in runs}) == 2
        assert all(r.data.tags["mlflow.note.content"].startswith("top-1 ") for r in runs)  # headline
    exp = client.get_experiment_by_name("table06")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"  # the runs table opens first

    # raising the repeats later runs only the missing seeds
    more = cli("ablation", "6", "--profile", "smoke", "--repeats", "3", "--rows", "T0", "T1", "--executor", "local",
               cwd=tmp)  # fmt: skip
    assert more.returncode == 0 and "ran 2, skipped (already finished) 4" in more.stdout, more.stdout[-2000:]
    assert sorted(len(v) for v in _by_row(children(client, "table06")).values()) == [3, 3]

    report = cli("report", "6", "--format", "md", cwd=tmp)
    assert report.returncode == 0, report.stderr
    md = report.stdout
    for row in ("T0", "T1"):
        line = next(ln for ln in md.splitlines() if ln.startswith(f"| {row} | FINISHED"))
        assert "3/3" in line and " ± " in line  # mean ± std over the three seeds
    gain = next(ln for ln in md.splitlines() if ln.startswith("| T1 | T0 |"))
    if "void (T0 near chance)" in gain:  # smoke's one epoch can leave T0 at chance: no gain is printed
        assert "helps" not in gain and "hurts" not in gain and "[" not in gain, gain
    else:
        assert any(v in gain for v in ("helps", "hurts", "cannot tell")) and "[" in gain, gain  # interval and verdict
    assert "Sign agreement with the paper" in md
    csv = cli("report", "6", "--format", "csv", cwd=tmp).stdout
    assert csv.splitlines()[0].startswith("row,title") and "top1_std" in csv and "top1_verdict" in csv

    # Table 7's E0 and E1 are Table 6's T0 and T1: every seed is reused, nothing trains
    plan = cli("plan", "7", "--profile", "smoke", "--rows", "E0", "E1", "--repeats", "3", cwd=tmp)
    assert plan.returncode == 0 and plan.stdout.count("reuses table 6 row T") == 6, plan.stdout[-2000:]
    assert client.get_experiment_by_name("table07") is None  # plan created nothing
    reuse = cli("ablation", "7", "--profile", "smoke", "--rows", "E0", "E1", "--repeats", "3", cwd=tmp)
    assert reuse.returncode == 0 and "ran 0, skipped (already finished) 6" in reuse.stdout, reuse.stdout[-2000:]
    assert "E0: reusing the finished run of table 6 row T0" in reuse.stdout
    assert children(client, "table07") == []  # no second training of the same experiment
    used = [r for r in children(client, "table06") if r.data.tags.get("used_by.table07")]
    assert len(used) == 6  # each reused run records the table that used it
    table07 = client.get_experiment_by_name("table07")
    parent = client.search_runs([table07.experiment_id], "tags.kind = 'ablation'")[0]
    assert parent.data.tags["nothing_ran"] == "true" and "nothing to run" in parent.info.run_name
    assert "**Table 7" in parent.data.tags["mlflow.note.content"]  # the report as its description
    again = cli("ablation", "7", "--profile", "smoke", "--rows", "E0", "E1", "--repeats", "3", cwd=tmp)
    assert again.returncode == 0
    parents = client.search_runs([table07.experiment_id], "tags.kind = 'ablation'", order_by=["start_time DESC"])
    assert parents[0].data.tags["resumed_from"] == parents[1].info.run_id
    report7 = cli("report", "7", cwd=tmp)
    assert report7.returncode == 0 and "table 6 T0" in report7.stdout  # where the reused numbers come from


def test_report_errors_are_one_line(tmp_path):
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    r = cli("report", "6", cwd=tmp_path, env=env)
    assert r.returncode == 2 and r.stderr.startswith("error: no MLflow store at") and r.stderr.count("\n") == 1
    assert not (tmp_path / "mlflow.db").exists()  # reading never creates a store
    from mlflow.tracking import MlflowClient

    MlflowClient(env["MLFLOW_TRACKING_URI"]).create_experiment("other")
    r = cli("report", "6", cwd=tmp_path, env=env)
    assert r.returncode == 2 and "no MLflow experiment 'table06'" in r.stderr and r.stderr.count("\n") == 1
