"""`--executor local`: a table's trials one after another in the command's own process, with
the same tracking and resume, on a machine where Ray cannot even be imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import children

NO_RAY = """
import sys
sys.modules["ray"] = None  # any import of Ray fails
from assembled.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _run(tmp, *args):
    return subprocess.run([sys.executable, "-c", NO_RAY, *args], cwd=tmp, capture_output=True, text=True)


@pytest.mark.slow
def test_a_table_runs_and_resumes_without_ray(ablation_env):
    tmp, _, client = ablation_env
    r = _run(tmp, "ablation", "6", "--profile", "smoke", "--rows", "T0", "T1", "--executor", "local")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "[T1] finished: top1" in r.stdout and "2/2 trials ended (2 finished, 0 failed)" in r.stdout
    runs = children(client, "table06")
    assert sorted(x.data.tags["row"] for x in runs) == ["T0", "T1"]
    assert {x.info.status for x in runs} == {"FINISHED"}
    assert all({"top1", "mce", "mfr", "throughput"} <= set(x.data.metrics) for x in runs)
    # a CPU profile trains on the CPU and says so (on a GPU machine too: its config names the device)
    assert {(x.data.tags["device"], x.data.tags["compute"]) for x in runs} == {("cpu", "cpu/fp32")}
    again = _run(tmp, "ablation", "6", "--profile", "smoke", "--rows", "T0", "T1", "--executor", "local")
    assert again.returncode == 0 and "ran 0, skipped (already finished) 2" in again.stdout
    bad = _run(tmp, "ablation", "6", "--executor", "local", "--address", "127.0.0.1:6379")
    assert bad.returncode == 2 and "takes no --address" in bad.stderr


@pytest.mark.slow
def test_a_search_runs_without_ray_and_times_as_an_ablation_does(ablation_env):
    """Searches share the ablation's trial driver: `--executor local` needs no Ray, and a
    throughput objective is timed by the same protocol, tagged and headlined as a row is."""
    tmp, _, client = ablation_env
    args = ["search", "7", "--row", "E3", "--profile", "smoke", "--seed", "3", "--trials", "2"]
    r = _run(tmp, *args, "--objective", "top1,throughput", "--sampler", "nsga2", "--executor", "local")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "study table07-E3-smoke-top1+throughput: 2 trials complete or pruned" in r.stdout
    exp = client.get_experiment_by_name("search-table07")
    trials = client.search_runs([exp.experiment_id], "tags.kind = 'trial'")
    assert len(trials) == 2 and {t.info.status for t in trials} == {"FINISHED"}
    for t in trials:
        assert t.data.metrics["throughput"] > 0 and "ResNet-50" in t.data.tags["throughput_protocol"]
        assert "img/s" in t.data.tags["mlflow.note.content"]


@pytest.mark.slow
def test_a_second_invocation_of_a_running_table_refuses_and_trains_nothing(ablation_env):
    """One invocation per table and store: while one runs, the same command says who runs it
    (driver pid and host) in one line and starts nothing; no row is trained twice."""
    import socket
    import time

    tmp, _, client = ablation_env
    args = ["ablation", "6", "--profile", "smoke", "--rows", "T0", "--repeats", "3", "--executor", "local"]
    first = subprocess.Popen([sys.executable, "-c", NO_RAY, *args], cwd=tmp, stdout=subprocess.PIPE, text=True)
    try:
        running = []
        while not running:  # the first invocation's parent run exists and is RUNNING
            assert first.poll() is None, first.stdout.read()
            exp = client.get_experiment_by_name("table06")
            if exp is not None:
                running = client.search_runs(
                    [exp.experiment_id], "tags.kind = 'ablation' and attributes.status = 'RUNNING'"
                )
            time.sleep(0.5)
        second = _run(tmp, *args)
        assert second.returncode == 2 and second.stderr.count("\n") == 1, second.stderr
        assert f"table06 is being run now by pid {first.pid} on {socket.gethostname()}" in second.stderr
        assert "nothing was started" in second.stderr
    finally:
        first.wait(timeout=None)
    assert first.returncode == 0
    exp = client.get_experiment_by_name("table06")
    parents = client.search_runs([exp.experiment_id], "tags.kind = 'ablation'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(r.data.tags["row"] for r in children(client, "table06")) == ["T0", "T0", "T0"]  # 3 seeds, once each
    again = _run(tmp, *args)  # and the next invocation after it runs (and trains nothing new)
    assert again.returncode == 0 and "ran 0, skipped (already finished) 3" in again.stdout


def test_of_two_invocations_that_pass_the_check_together_the_later_yields(tmp_path, mlflow_uri):
    """A tracking server has no lock: two drivers can both find no RUNNING parent and both create
    one. Each checks again once its own exists; the later one deletes its parent and refuses in
    one line, naming the other. (The race is made here by a rival parent created between the
    check and this invocation's own parent; with the rival created after it, this one goes on.)"""
    import time

    from mlflow.tracking import MlflowClient

    from assembled.ablation.plan import build_plan
    from assembled.ablation.record import Recorder
    from assembled.config_io import ConfigError
    from assembled.tracking.drivers import driver_tags

    from .conftest import ROOT

    plan = build_plan(str(ROOT / "ablations" / "table06.yaml"), "smoke", rows=["T0"])
    client = MlflowClient(mlflow_uri)
    rival_tags = {"kind": "ablation", "profile": "smoke", **driver_tags(), "driver.pid": "4242"}

    class RacedBy(Recorder):
        first = True  # whether the rival's parent is created before this invocation's

        def _create_parent(self) -> str:
            if self.first:
                self.rival = client.create_run(self.runs.experiment_id, tags=rival_tags).info.run_id
                time.sleep(0.01)
            out = super()._create_parent()
            if not self.first:
                time.sleep(0.01)
                self.rival = client.create_run(self.runs.experiment_id, tags=rival_tags).info.run_id
            return out

    later = RacedBy(plan, mlflow_uri, tmp_path / "runs")
    with pytest.raises(ConfigError, match=r"table06 is being run now by pid 4242 .*nothing was started"):
        later.open()
    parents = client.search_runs([later.runs.experiment_id], "tags.kind = 'ablation'")
    assert [p.info.run_id for p in parents] == [later.rival]  # its own parent is gone, the rival's stays
    client.set_terminated(later.rival, "KILLED")

    RacedBy.first = False
    earlier = RacedBy(plan, mlflow_uri, tmp_path / "runs")
    assert earlier.open() == earlier.runs.parent_id != ""  # it started first: it goes on
    assert client.get_run(earlier.runs.parent_id).info.status == "RUNNING"
