"""Faults on a real local Ray and a real SQLite MLflow store, driven through the console script
as a user would: kill -9, Ctrl-C and SIGTERM of the driver, switching and deleting stores,
--rerun, a teacher that fails. After each, MLflow must tell the truth and the same command must
finish the table with exactly one FINISHED run per row."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from .conftest import cli

EXE = Path(sys.executable).parent / "assembled"

# smoke scales epochs by 1/100: A trains 1 epoch, B and C 200 (long enough to interrupt)
INTERRUPTED = """
table: intr
title: interrupts
rows:
  - {id: A, model: resnet50, epochs: 1500, input_size: 224}  # 15 smoke epochs: RUNNING long enough to be seen
  - {id: B, model: resnet50d, epochs: 20000, input_size: 224}
  - {id: C, base: B, reg: {label_smoothing: 0.1}}
"""


def _wait(predicate, proc: subprocess.Popen, what: str) -> None:
    """Poll until ``predicate`` holds; fails only if the driver exits first (no time limit)."""
    while not predicate():
        assert proc.poll() is None, f"driver exited ({proc.returncode}) before {what}"
        time.sleep(0.5)


def _runs(client: MlflowClient, exp: str, kind: str) -> list:
    e = client.get_experiment_by_name(exp)
    return [] if e is None else client.search_runs([e.experiment_id], f"tags.kind = '{kind}'", max_results=1000)


def _start(table: Path, cwd: Path, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:  # a session of its own: a signal to its group is a terminal's Ctrl-C
        return subprocess.Popen(
            [str(EXE), "ablation", str(table), "--profile", "smoke"],
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _reap_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # Ray's helpers a kill -9 of the driver left behind
    except ProcessLookupError:
        pass


def _parent_of(proc_parent_count: int, client: MlflowClient):
    def newest() -> object | None:
        parents = sorted(_runs(client, "intr", "ablation"), key=lambda r: r.info.start_time)
        return parents[-1] if len(parents) == proc_parent_count else None

    return newest


@pytest.mark.slow
def test_kill9_ctrl_c_sigterm_then_resume(ablation_env):
    tmp, root, client = ablation_env
    table = root / "intr.yaml"
    table.write_text(INTERRUPTED)
    log = tmp / "driver.log"

    def running_under(parent_id: str, rows: set[str]) -> bool:
        got = {
            r.data.tags["row"]
            for r in _runs(client, "intr", "trial")
            if r.info.status == "RUNNING" and r.data.tags.get("mlflow.parentRunId") == parent_id
        }
        return rows <= got

    # 1. kill -9 of the driver while trials run: its runs stay RUNNING until the next invocation
    p1 = _start(table, tmp, log)
    _wait(lambda: (p := _parent_of(1, client)()) is not None and running_under(p.info.run_id, {"A"}), p1, "A ran")
    p1.send_signal(signal.SIGKILL)
    p1.wait()
    _reap_group(p1)
    first_parent = _parent_of(1, client)()
    assert first_parent.info.status == "RUNNING"

    # 2. the same command marks the orphans KILLED; Ctrl-C once A has finished
    p2 = _start(table, tmp, log)
    _wait(lambda: _parent_of(2, client)() is not None, p2, "a second parent")
    second = _parent_of(2, client)().info.run_id
    _wait(
        lambda: (
            any(r.data.tags["row"] == "A" and r.info.status == "FINISHED" for r in _runs(client, "intr", "trial"))
            and running_under(second, {"B", "C"})
        ),
        p2,
        "A finished and B, C ran",
    )
    os.killpg(p2.pid, signal.SIGINT)
    assert p2.wait() == 130, log.read_text()[-3000:]
    assert "interrupted" in log.read_text() and "run the same command to resume" in log.read_text()
    orphan = client.get_run(first_parent.info.run_id)
    assert orphan.info.status == "KILLED" and "is gone" in orphan.data.tags["failure_reason"]
    assert client.get_run(second).info.status == "KILLED"
    by_row = {r.data.tags["row"]: r for r in _runs(client, "intr", "trial")}
    assert by_row["A"].info.status == "FINISHED"
    for row in ("B", "C"):
        assert by_row[row].info.status == "KILLED", (row, by_row[row].info.status)
        assert "interrupted" in by_row[row].data.tags["failure_reason"]

    # 3. SIGTERM (a process manager stopping it): exit 143, in-flight rows KILLED again
    p3 = _start(table, tmp, log)
    _wait(lambda: _parent_of(3, client)() is not None, p3, "a third parent")
    third = _parent_of(3, client)().info.run_id
    _wait(lambda: running_under(third, {"B"}), p3, "B resumed")
    p3.send_signal(signal.SIGTERM)
    assert p3.wait() == 143, log.read_text()[-3000:]
    assert client.get_run(third).info.status == "KILLED"
    assert client.get_run(by_row["B"].info.run_id).info.status == "KILLED"

    # 4. the same command finishes the table: one FINISHED run per row, continued, not restarted
    done = cli("ablation", str(table), "--profile", "smoke", cwd=tmp)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    trials = _runs(client, "intr", "trial")
    assert sorted(r.data.tags["row"] for r in trials) == ["A", "B", "C"]
    for r in trials:
        assert r.info.status == "FINISHED" and "failure_reason" not in r.data.tags, r.data.tags
        steps = [m.step for m in client.get_metric_history(r.info.run_id, "loss")]
        assert len(steps) == len(set(steps)) and max(steps) == (15 if r.data.tags["row"] == "A" else 200)
        assert "throughput" in r.data.metrics


ONE_ROW = """
table: switch
title: one row
rows:
  - {id: A, model: resnet50, epochs: 120, input_size: 224}
"""


@pytest.mark.slow
def test_switching_and_deleting_stores_then_rerun(ablation_env, monkeypatch):
    tmp, root, _ = ablation_env
    table = root / "switch.yaml"
    table.write_text(ONE_ROW)
    store_a, store_b = f"sqlite:///{tmp / 'a.db'}", f"sqlite:///{tmp / 'b.db'}"
    for uri in (store_a, store_b):  # the same folder (runs/), two stores
        r = cli("ablation", str(table), "--profile", "smoke", cwd=tmp, env={"MLFLOW_TRACKING_URI": uri})
        assert r.returncode == 0 and "failed 0" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
        assert "ran 1" in r.stdout
    (tmp / "a.db").unlink()
    r = cli("ablation", str(table), "--profile", "smoke", cwd=tmp, env={"MLFLOW_TRACKING_URI": store_a})
    assert r.returncode == 0 and "ran 1" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
    # --rerun (in-process: the store decides, not the executor): a new run under a new parent;
    # the old run keeps its single epoch
    b = MlflowClient(store_b)
    (old,) = _runs(b, "switch", "trial")
    rerun = ["--rerun", "--executor", "local"]
    r = cli("ablation", str(table), "--profile", "smoke", *rerun, cwd=tmp, env={"MLFLOW_TRACKING_URI": store_b})
    assert r.returncode == 0 and "ran 1" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
    trials = _runs(b, "switch", "trial")
    assert len(trials) == 2
    new = next(t for t in trials if t.info.run_id != old.info.run_id)
    parents = sorted(_runs(b, "switch", "ablation"), key=lambda r: r.info.start_time)
    assert new.data.tags["mlflow.parentRunId"] == parents[-1].info.run_id != old.data.tags["mlflow.parentRunId"]
    assert [m.step for m in b.get_metric_history(old.info.run_id, "loss")] == [1]
    assert [m.step for m in b.get_metric_history(new.info.run_id, "loss")] == [1]
    assert b.get_run(old.info.run_id).info.status == new.info.status == "FINISHED"


FAILING_TEACHER = """
table: badteacher
title: a teacher that diverges blocks its students
rows:
  - {id: T, model: resnet50, optim: {base_lr: 1.0e+12}, epochs: 120, input_size: 224}
  - {id: S, model: resnet50d, kd: {row: T}, epochs: 120, input_size: 224}
  - {id: U, model: resnet50d, epochs: 120, input_size: 224}
"""


@pytest.mark.slow
def test_failed_teacher_blocks_students_and_is_not_retried(ablation_env):
    tmp, root, client = ablation_env
    table = root / "badteacher.yaml"
    table.write_text(FAILING_TEACHER)
    r = cli("ablation", str(table), "--profile", "smoke", cwd=tmp)
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    assert "S failed: teacher T failed: TrainingDiverged" in r.stdout
    assert r.stdout.count("[T] started") == 1  # a deterministic failure is not retried
    by_row = {x.data.tags["row"]: x for x in _runs(client, "badteacher", "trial")}
    assert by_row["T"].info.status == "FAILED" and "loss is" in by_row["T"].data.tags["failure_reason"]
    assert by_row["S"].info.status == "FAILED"
    assert by_row["S"].data.tags["failure_reason"].startswith("teacher T failed: TrainingDiverged")
    assert by_row["U"].info.status == "FINISHED"  # the others go on
    (parent,) = _runs(client, "badteacher", "ablation")
    assert parent.info.status == "FINISHED" and parent.data.tags["failed_rows"] == "S,T"
