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

from ..redact import redact
from ..runner.driver import Driver, make_executor
from ..runner.interrupts import interruptible, run_recorded
from ..runner.progress import Tally
from ..runner.teachers import TeacherFailed
from ..runner.trial import TrialSpec
from ..tracking.health import check_writable
from ..tracking.store import tracking_uri
from .plan import ROOT, Decision, Plan, build_plan, decide
from .record import Recorder
from .report import terminal
from .summary import agreement

__all__ = ["ROOT", "AblationResult", "print_result", "run_ablation"]


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
    identical: dict[str, str] = field(default_factory=dict)  # units whose result is an earlier unit's run
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
    retime: bool = False,
) -> AblationResult:
    """``executor``: "ray" (a local Ray, or the cluster at ``address``) or "local" (the trials
    one after another in this process; see local_executor.py). ``retime``: time every row's
    inference again, finished or not."""
    plan = build_plan(spec, profile, data, rows, ablations_dir, repeats)
    return run_plan(plan, address, rerun, workdir, executor, retime)


def run_plan(
    plan: Plan,
    address: str | None = None,
    rerun: bool = False,
    workdir: Path | None = None,
    executor: str = "ray",
    retime: bool = False,
) -> AblationResult:
    """Run a plan already built (and so validated): the CLI builds it before importing this
    module, so bad input is one line in about a second, not after torch and Ray have loaded."""
    workdir = (workdir or Path.cwd() / "runs") / plan.experiment
    check_writable(workdir, "checkpoints and the summary")
    # a bad flag, or a profile this machine cannot serve, fails before any run exists
    ex = make_executor(executor, address, workdir, plan.experiment, plan.profile_name, plan.profile.resources)
    with interruptible():
        recorder = Recorder(plan, tracking_uri(), workdir)
        recorder.open()
        driver = Driver(ex, plan.trial_settings(), recorder.uri, recorder.runs.experiment_id)
        return _Run(plan, recorder, driver, workdir, rerun, retime).execute()


class _Run:
    """One invocation's state: each row's state, the run it logs into, the result so far."""

    def __init__(
        self, plan: Plan, recorder: Recorder, driver: Driver, workdir: Path, rerun: bool, retime: bool = False
    ) -> None:
        self.plan, self.recorder, self.driver, self.workdir, self.rerun = plan, recorder, driver, workdir, rerun
        self.retime = retime
        self.result = AblationResult(recorder.runs.parent_id, plan.experiment)
        self.state: dict[str, str] = {}
        self.run_of: dict[str, str] = {}
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
        self.driver.stop()
        self.result.summary = self.recorder.close(status, self.result.failed, reason)
        self.result.manifest = self.recorder.table
        self.result.experiment_id = self.recorder.runs.experiment_id
        self.result.summary_csv, self.result.tracking_uri = self.recorder.summary_csv, self.recorder.uri

    # -- steps -------------------------------------------------------------------------------
    def _decide(self) -> dict[str, Decision]:
        finished = self.recorder.finished()
        decisions = decide(self.plan, {rid: r.data.tags.get("eval_hash") for rid, r in finished.items()}, self.rerun)
        for rid, d in decisions.items():
            if d.action == "same":  # another unit's run is this one's: nothing of its own to do
                self.state[rid] = "same"
                self.result.identical[rid] = d.why
            elif d.action == "skip":
                self.state[rid], self.run_of[rid] = "finished", finished[rid].info.run_id
                self.result.skipped.append(rid)
                if rid in self.recorder.reused:
                    print(self.recorder.adopt(rid))
            else:
                self.state[rid] = "pending"
                self.tally.total += 1
        self._say_shared()
        again = sorted(rid for rid, d in decisions.items() if d.action == "re-evaluate")
        if again:
            print(f"{self.plan.path.name}: re-evaluating {', '.join(again)}: {decisions[again[0]].why}")
        return decisions

    def _say_shared(self) -> None:
        """Rows that train nothing of their own, said once per row."""
        rows = self.plan.rows
        name = self.plan.path.name
        if self.plan.paper_only:
            print(
                f"{name}: reference rows {', '.join(self.plan.paper_only)} show the paper's numbers only (profile "
                f"{self.plan.profile_name} does not train them; --rows does)"
            )
        same = {rows[k].id: rows[rows[k].same_as].id for k in self.result.identical}
        for row, other in same.items():
            print(f"{name}: {row} has the same config as {other} under profile {self.plan.profile_name}: "
                  f"{other}'s runs are its result (not trained twice)")  # fmt: skip
        evaluates = {
            u.id: rows[u.trained_by].id for k, u in rows.items() if u.trained_by and self.state.get(k) == "pending"
        }
        for row, other in evaluates.items():
            print(f"{name}: {row} evaluates {other}'s weights (the same training; only the evaluation crop differs)")

    def _start_executor(self) -> None:
        note = self.driver.start()
        if note:
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
            name = f"{self.plan.experiment}-{self.recorder.runs.parent_id[:8]}-{stage}"
            outcomes = self.driver.run_stage(specs, name, self.tally)
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
        """What it needs (KD teacher, backbone, the unit that trains its weights) is finished."""
        return all(self._state_of(u) == "finished" for u in self.plan.rows[rid].needs)

    def _state_of(self, unit: str) -> str | None:
        """A unit's state; a unit identical to another has that one's."""
        return self.state.get(self._owner(unit))

    def _owner(self, unit: str) -> str:
        """The unit whose run is ``unit``'s result: itself, or the one it is identical to."""
        return self.plan.rows[unit].same_as or unit

    def _block_students_of_failed_teachers(self) -> None:
        changed = True
        while changed:
            changed = False
            for rid, s in self.state.items():
                prow = self.plan.rows[rid]
                failed = [u for u in prow.needs if self._state_of(u) in ("failed", "blocked")]
                if s == "pending" and failed:
                    role = {prow.teacher: "teacher", prow.backbone: "backbone"}.get(failed[0], "training of")
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
            teacher_run = self.run_of[self._owner(prow.teacher)]
            try:
                computed = self.driver.teacher_logits(teacher_run, cfg)
            except TeacherFailed as e:
                why = str(e).strip().splitlines()[-1]
                self.recorder.end(teacher_run, "FAILED", why)
                self.state[prow.teacher], self.result.failed[prow.teacher] = "failed", why
                self.result.ran = [r for r in self.result.ran if r != prow.teacher]
                return None
            self.result.logits_computed += int(computed)
        run_id = self.recorder.child(rid, fresh=self.rerun and decision.action == "run")
        self.run_of[rid] = run_id
        return self.driver.spec(
            rid,
            run_id,
            cfg,
            self.workdir / f"{rid}-{prow.cfg.config_hash()}" / run_id,
            teacher_run=teacher_run,
            backbone_run=self.run_of.get(self._owner(prow.backbone)) if prow.backbone else None,
            trained_run=self.run_of.get(prow.trained_by) if prow.trained_by else None,
        )

    def _throughput(self) -> None:
        """Time every row that ran now, or whose timing is missing or of another protocol, once
        per run (a row identical to another shares its run), in a process of its own on a node."""
        if not self.plan.eval_cfg.throughput:
            return
        protocol = self.driver.protocol
        todo: dict[str, tuple[str, object]] = {}  # run id -> (unit, run)
        for rid, run in self.recorder.finished().items():
            current = run.data.tags.get("throughput_protocol") == protocol
            if self.plan.rows[rid].wanted and (rid in self.result.ran or not current or self.retime):
                todo.setdefault(run.info.run_id, (rid, run))
        if not todo:
            return
        jobs = {}
        for run_id, (rid, run) in todo.items():
            cfg = self.plan.rows[rid].cfg
            classes = int(run.data.tags.get("data.num_classes", cfg.data.num_classes))
            jobs[run_id] = (cfg.model, cfg.data.eval_crop, classes)
        if not self.driver.executor.connected:
            self._start_executor()
        figures = self.driver.time(jobs, {k: rid for k, (rid, _) in todo.items()})
        for run_id, metrics in figures.items():
            self.recorder.log_metrics(run_id, metrics, {"throughput_protocol": protocol})


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

    where = redact(result.tracking_uri)
    if where.startswith(("http://", "https://")):
        where = experiment_url(where, result.experiment_id)
    else:
        where = f"{where}; browse it with `make ui`: {experiment_url('http://127.0.0.1:5000', result.experiment_id)}"
    print(f"summary: {result.summary_csv}; MLflow: {where}")
