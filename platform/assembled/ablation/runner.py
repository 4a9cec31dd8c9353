"""``assembled ablation``: every row of a table as a trial of the shared trainer on Ray.

Three steps, each in its own module: the plan (plan.py: pure, everything validated and the
data source checked before anything runs), the executor (executor.py: Ray stages, retries,
interrupts) and the recorder (record.py: MLflow parent and children, statuses, summary). From
the moment the parent run exists, one try/finally makes its final status true: FINISHED,
FAILED with the error, or KILLED on Ctrl-C / SIGTERM, with every in-flight child KILLED too.

Order: rows whose KD teachers are finished run together in one stage, as many at once as the
cluster fits; students follow once their teacher's logits exist. Rows FINISHED with the same
config hash and evaluation identity are skipped (``rerun`` trains them afresh into new runs),
so an interrupted invocation resumes. Throughput is timed last, alone on a node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..config_io import ConfigError
from ..tracking.store import tracking_uri
from .executor import RayExecutor, join_uri
from .interrupts import interruptible, run_recorded
from .plan import ROOT, Decision, Plan, build_plan, decide, fit_resources, trial_threads
from .profiles import scaled_size
from .progress import Tally
from .record import Recorder
from .report import terminal
from .summary import agreement
from .teachers import TeacherFailed
from .trial import TrialSpec

__all__ = ["ROOT", "AblationResult", "print_result", "run_ablation"]
# a Tune trial that only drives a TorchTrainer: no CPU (Tune refuses an empty request: 256 MB memory)
DRIVER_ONLY = {"CPU": 0.0, "memory": float(2**28)}


@dataclass
class AblationResult:
    parent_run_id: str
    experiment: str
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    manifest: dict = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    not_run: dict[str, str] = field(default_factory=dict)
    logits_computed: int = 0
    notes: list[str] = field(default_factory=list)
    summary_csv: Path | None = None
    tracking_uri: str = ""
    experiment_id: str = ""


def run_ablation(
    spec: str,
    profile: str = "cpu",
    data: str | None = None,
    address: str | None = None,
    rerun: bool = False,
    ablations_dir: Path | None = None,
    workdir: Path | None = None,
    rows: list[str] | None = None,
    repeats: int | None = None,
    executor: str = "ray",
) -> AblationResult:
    """``executor``: "ray" (a local Ray, or the cluster at ``address``) or "local" (the trials
    one after another in this process; see local_executor.py)."""
    plan = build_plan(spec, profile, data, rows, ablations_dir, repeats)
    workdir = (workdir or Path.cwd() / "runs") / plan.experiment
    with interruptible():
        recorder = Recorder(plan, tracking_uri(), workdir)
        recorder.open()
        return _Run(
            plan, recorder, make_executor(executor, address, workdir, plan.experiment), workdir, rerun
        ).execute()


def make_executor(kind: str, address: str | None, workdir: Path, name: str):
    if kind == "local":
        if address:
            raise ConfigError("--executor local runs trials in this process: it takes no --address")
        from .local_executor import LocalExecutor

        return LocalExecutor(workdir)
    return RayExecutor(address, workdir / "ray", name)


class _Run:
    """One invocation's state: each row's state, the run it logs into, the result so far."""

    def __init__(self, plan: Plan, recorder: Recorder, executor: RayExecutor, workdir: Path, rerun: bool) -> None:
        self.plan, self.recorder, self.executor, self.workdir, self.rerun = plan, recorder, executor, workdir, rerun
        self.result = AblationResult(recorder.parent_id, plan.experiment)
        self.state: dict[str, str] = {}
        self.run_of: dict[str, str] = {}
        self.resources: dict[str, float] = {}
        self.tally = Tally(0)

    def execute(self) -> AblationResult:
        return run_recorded(self._body, self._end, "run the same command to resume")

    def _body(self) -> AblationResult:
        decisions = self._decide()
        if any(s == "pending" for s in self.state.values()):
            self._start_executor()
        self._stages(decisions)
        self._throughput()
        return self.result

    def _end(self, status: str, reason: str) -> None:
        self.executor.stop()
        self.result.summary = self.recorder.close(status, self.result.failed, reason)
        self.result.manifest = self.recorder.table
        self.result.experiment_id = self.recorder.experiment_id
        self.result.summary_csv, self.result.tracking_uri = self.recorder.summary_csv, self.recorder.uri

    # -- steps -------------------------------------------------------------------------------
    def _decide(self) -> dict[str, Decision]:
        finished = self.recorder.finished()
        decisions = decide(self.plan, {rid: r.data.tags.get("eval_hash") for rid, r in finished.items()}, self.rerun)
        for rid, d in decisions.items():
            if d.action == "skip":
                self.state[rid], self.run_of[rid] = "finished", finished[rid].info.run_id
                self.result.skipped.append(rid)
                if rid in self.recorder.reused:
                    print(self.recorder.adopt(rid))
            else:
                self.state[rid] = "pending"
                self.tally.total += 1
        again = sorted(rid for rid, d in decisions.items() if d.action == "re-evaluate")
        if again:
            print(f"{self.plan.path.name}: re-evaluating {', '.join(again)}: {decisions[again[0]].why}")
        return decisions

    @property
    def trial_resources(self) -> dict[str, float]:
        """What Tune reserves for a trial: its resources, or for a data-parallel trial only a
        driver's memory (its Ray Train workers reserve their own CPUs / GPUs)."""
        return DRIVER_ONLY if self.plan.profile.resources.workers > 1 else self.resources

    def _start_executor(self) -> None:
        self.executor.start()
        self.resources, note = fit_resources(
            self.plan.profile_name, self.plan.profile.resources, self.executor.nodes(), self.executor.local
        )
        if note:
            print(note)
            self.result.notes.append(note)

    def _stages(self, decisions: dict[str, Decision]) -> None:
        stage = 0
        while True:
            self._block_students_of_failed_teachers()
            ready = [rid for rid, s in self.state.items() if s == "pending" and self._teacher_done(rid)]
            specs = [s for s in (self._spec(rid, decisions[rid]) for rid in ready) if s is not None]
            if not ready:
                break
            if not specs:
                continue
            name = f"{self.plan.experiment}-{self.recorder.parent_id[:8]}-{stage}"
            outcomes = self.executor.run_stage(
                specs, self.trial_resources, self.plan.profile.max_failures, name, self.tally
            )
            for rid, out in outcomes.items():
                self.state[rid] = out.status
                if out.status == "finished":
                    self.result.ran.append(rid)
                    self.tally.done += 1
                else:
                    self.result.failed[rid] = out.reason
                    self.tally.failed += 1
            stage += 1
        for rid, s in self.state.items():
            if s == "pending":  # never dropped silently
                needs = ", ".join(self.plan.rows[rid].needs)
                self.result.not_run[rid] = f"what it needs ({needs}) did not finish"

    def _teacher_done(self, rid: str) -> bool:
        """Its KD teacher and its backbone (a transfer row) are finished."""
        return all(self.state.get(u) == "finished" for u in self.plan.rows[rid].needs)

    def _block_students_of_failed_teachers(self) -> None:
        changed = True
        while changed:
            changed = False
            for rid, s in self.state.items():
                prow = self.plan.rows[rid]
                failed = [u for u in prow.needs if self.state.get(u) in ("failed", "blocked")]
                if s == "pending" and failed:
                    role = "teacher" if failed[0] == prow.teacher else "backbone"
                    why = f"{role} {failed[0]} failed: {self.result.failed.get(failed[0], '?')}"
                    self.state[rid], self.result.failed[rid] = "blocked", why
                    self.tally.failed += 1
                    self.recorder.block(rid, why)
                    changed = True

    def _spec(self, rid: str, decision: Decision) -> TrialSpec | None:
        """The trial of a ready row (its teacher's logits fetched or computed first), or None
        when its teacher turned out to have failed."""
        prow = self.plan.rows[rid]
        cfg = prow.cfg
        teacher_run = None
        if prow.teacher:
            teacher_run = self.run_of[prow.teacher]
            try:
                computed = self.executor.teacher_logits(self.recorder.uri, teacher_run, cfg)
            except TeacherFailed as e:
                why = str(e).strip().splitlines()[-1]
                self.recorder.end(teacher_run, "FAILED", why)
                self.state[prow.teacher], self.result.failed[prow.teacher] = "failed", why
                self.result.ran = [r for r in self.result.ran if r != prow.teacher]
                return None
            self.result.logits_computed += int(computed)
        run_id = self.recorder.child(rid, fresh=self.rerun and decision.action == "run")
        self.run_of[rid] = run_id
        return TrialSpec(
            row=rid,
            run_id=run_id,
            experiment_id=self.recorder.experiment_id,
            uri=self.recorder.uri,
            cfg=cfg,
            eval_cfg=self.plan.eval_cfg,
            workdir=str((self.workdir / f"{rid}-{prow.cfg.config_hash()}" / run_id).resolve()),
            gpu="GPU" in self.resources,
            threads=trial_threads(self.plan.profile.resources, self.resources),
            teacher_run=teacher_run,
            backbone_run=self.run_of.get(prow.backbone) if prow.backbone else None,
            workers=self.plan.profile.resources.workers,
            worker_resources=self.resources,
            storage=join_uri(self.executor.storage, "train"),
        )

    def _throughput(self) -> None:
        """Time every row that ran now, or that finished without a throughput, alone on a node."""
        ev = self.plan.eval_cfg
        if not ev.throughput:
            return
        finished = self.recorder.finished()
        todo = {
            rid: run
            for rid, run in finished.items()
            if self.plan.rows[rid].wanted and (rid in self.result.ran or "throughput" not in run.data.metrics)
        }
        if not todo:
            return
        if not self.executor.connected:
            self._start_executor()
        prof = self.plan.profile
        reference, ref_size = {"name": "resnet50", **prof.resnet}, scaled_size(224, prof)
        jobs = {}
        for rid, run in todo.items():
            cfg = self.plan.rows[rid].cfg
            classes = int(run.data.tags.get("data.num_classes", cfg.data.num_classes))
            jobs[rid] = (cfg.model, cfg.data.eval_crop, classes)
        gpu = "GPU" in self.resources
        print(f"timing inference of {len(jobs)} row(s) alone on a node ({'GPU' if gpu else 'all CPUs'})")
        figures = self.executor.measure_throughput(
            jobs, reference, ref_size, ev.throughput_batch, ev.throughput_repeats, gpu
        )
        protocol = (
            f"batch {ev.throughput_batch}, FP32, median/min/max of {ev.throughput_repeats} after warm-up, timed "
            f"alone on a node after training, once per inference network (DropBlock off); ratio to ResNet-50 "
            f"{prof.resnet or ''} at {ref_size}px"
        )
        for rid, metrics in figures.items():
            self.recorder.log_metrics(todo[rid].info.run_id, metrics, {"throughput_protocol": protocol})


def print_result(result: AblationResult) -> None:
    print()
    print(terminal(result.manifest, result.summary, agreement(result.summary)))
    print()
    print(
        f"ran {len(result.ran)}, skipped (already finished) {len(result.skipped)}, failed {len(result.failed)}"
        + (f", not run {len(result.not_run)}" if result.not_run else "")
        + f"; MLflow experiment '{result.experiment}', parent run {result.parent_run_id}"
    )
    for row, reason in result.failed.items():
        print(f"  {row} failed: {reason}")
    for row, reason in result.not_run.items():
        print(f"  {row} did not run: {reason}")
    from ..tracking.ui import experiment_url

    where = result.tracking_uri
    if where.startswith(("http://", "https://")):
        where = experiment_url(where, result.experiment_id)
    else:
        where = f"{where}; browse it with `make ui`: {experiment_url('http://127.0.0.1:5000', result.experiment_id)}"
    print(f"summary: {result.summary_csv}; MLflow: {where}")
