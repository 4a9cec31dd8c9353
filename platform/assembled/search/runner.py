"""``assembled search``: an Optuna study around one row of a table, its trials run as ablation
trials (the same plan, Ray executor, trainer, evaluation, throughput timing and tracking).

The driver asks Optuna for as many trials as the cluster runs at once, runs them as one stage
of the ablation executor, and tells Optuna each result: COMPLETE with the objective values,
PRUNED (the trial's worker stopped it on the pruner's word), or FAIL with the reason (a diverged
loss, a config the parameters make invalid). It stops when the study holds the requested number
of COMPLETE + PRUNED trials; the same command continues the study after an interrupt or a kill.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..ablation.plan import Plan
from ..ablation.search_space import SearchSpace, apply, default_space, parse_space
from ..ablation.summary import table_runs
from ..config_io import ConfigError, read_yaml
from ..redact import redact
from ..runner.driver import Driver, make_executor
from ..runner.interrupts import interruptible, run_recorded
from ..runner.progress import Tally
from ..runner.trial import TrialSpec
from ..tracking.health import check_writable
from ..tracking.store import tracking_uri
from .options import SearchOptions, search_plan
from .record import SearchRecorder
from .study import Objective, PruneLink, claim, counted, default_storage, make_pruner, make_sampler, open_study, repair


@dataclass
class SearchResult:
    study: str
    storage: str
    experiment: str
    parent_run_id: str
    counted: int
    ran: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    pruned: dict[int, str] = field(default_factory=dict)
    repaired: list[int] = field(default_factory=list)
    best: list[dict] = field(default_factory=list)  # trial number, values, params
    base: dict[str, float] = field(default_factory=dict)  # the row's own finished result
    best_yaml: Path | None = None


def choose_space(opts: SearchOptions, plan: Plan) -> SearchSpace:
    """``--space FILE``, else the row's ``search:``, else the profile's, else the default one."""
    prow = plan.rows[opts.row]
    cfg = prow.cfg
    if opts.space:
        return parse_space(read_yaml(opts.space), cfg, f"{opts.space}")
    if prow.row.search:
        return parse_space(prow.row.search, cfg, f"{plan.path}: row {opts.row}")
    if plan.profile.search:
        return parse_space(plan.profile.search, cfg, f"profiles.yaml: profile {plan.profile_name}")
    return parse_space(default_space(cfg), cfg, f"default space for row {opts.row}")


def finished_runs(plan: Plan, uri: str) -> dict:
    """The table's FINISHED unit runs in the store, read-only (no store yet: none)."""
    from ..tracking.store import read_only_client

    client = read_only_client(uri)
    if client is None:
        return {}
    exp = client.get_experiment_by_name(plan.experiment)
    runs = table_runs(client, exp.experiment_id if exp else "", plan.units, plan.eval_cfg.identity())
    return {k: r for k, r in runs.items() if r.info.status == "FINISHED"}


def dependency_run(plan: Plan, opts: SearchOptions, uri: str, role: str) -> str | None:
    """A KD row distils from its teacher row's finished run, a transfer row fine-tunes its
    backbone row's (a search trains neither): that run's id, checked before anything is created."""
    unit = plan.rows[opts.row].teacher if role == "teacher" else plan.rows[opts.row].backbone
    if not unit:
        return None
    run = finished_runs(plan, uri).get(unit)
    if run is None:
        verb = "distils from" if role == "teacher" else "fine-tunes the backbone"
        raise ConfigError(
            f"row {opts.row} {verb} {unit}, which has no finished run with this profile: run "
            f"`assembled ablation {opts.table} --rows {opts.row} --profile {opts.profile}` first "
            f"(it trains {unit} too)"
        )
    return run.info.run_id


def run_search(opts: SearchOptions, plan: Plan | None = None) -> SearchResult:
    plan = plan or search_plan(opts)
    objective = Objective.parse(opts.objective)
    space = choose_space(opts, plan)
    runs_root = opts.workdir or Path.cwd() / "runs"
    check_writable(runs_root, "the trials' checkpoints")  # before any store or study is touched
    uri = tracking_uri()
    teacher = dependency_run(plan, opts, uri, "teacher")
    backbone = dependency_run(plan, opts, uri, "backbone")
    url = opts.storage or default_storage(uri)
    name = opts.study or f"{plan.experiment}-{opts.row}-{opts.profile}-{'+'.join(objective.metrics)}"
    base_cfg = plan.rows[opts.row].cfg
    identity = {
        "table": plan.experiment,
        "row": opts.row,
        "profile": opts.profile,
        "config_hash": base_cfg.config_hash(),
        "objective": str(objective),
        "space": {k: d.model_dump(exclude_none=True) for k, d in space.dims.items()},
    }
    # pruning stops rank 0 alone, which would leave the other ranks of a data-parallel trial waiting
    prunable = objective.prunable and plan.profile.resources.workers == 1
    pruner = opts.pruner if prunable else "none"
    study = open_study(
        name, url, objective, make_sampler(opts.sampler, objective, opts.seed), make_pruner(pruner), identity
    )
    claim(study)
    workdir = runs_root / f"search-{plan.experiment}" / name
    tags = {
        "table": str(plan.table.table),
        "search_row": opts.row,
        "profile": opts.profile,
        "objective": str(objective),
        "sampler": opts.sampler,
        "pruner": pruner,
        "optuna.storage": redact(url),  # where the study is, without the password
        "space": space.origin,
    }
    executor = make_executor(
        opts.executor, opts.address, workdir, f"search-{plan.experiment}", plan.profile_name, plan.profile.resources
    )
    with interruptible():
        recorder = SearchRecorder(f"search-{plan.experiment}", name, uri, tags)
        recorder.open()
        driver = Driver(executor, plan.trial_settings(), recorder.uri, recorder.runs.experiment_id)
        search = _Search(opts, plan, objective, space, study, url, pruner, recorder, workdir, driver)
        search.teacher_run, search.backbone_run = teacher, backbone
        return search.execute()


class _Search:
    def __init__(self, opts, plan, objective, space, study, url, pruner, recorder, workdir, driver: Driver) -> None:
        self.opts, self.plan, self.objective, self.space = opts, plan, objective, space
        self.study, self.url, self.pruner, self.recorder, self.workdir = study, url, pruner, recorder, workdir
        self.driver = driver
        self.result = SearchResult(study.study_name, url, recorder.experiment, recorder.runs.parent_id, 0)
        self.teacher_run: str | None = None
        self.backbone_run: str | None = None

    def execute(self) -> SearchResult:
        return run_recorded(self._body, self._end, "run the same command to continue the study")

    def _body(self) -> SearchResult:
        self.result.repaired = repair(self.study)
        if self.result.repaired:
            print(f"study {self.study.study_name}: trials {self.result.repaired} were left RUNNING by a killed "
                  "driver: marked FAIL, their parameters queued again")  # fmt: skip
        self.result.base = self._base_result()
        # the study page marks the row's own result
        self.recorder.tag_parent({f"base.{k}": str(v) for k, v in self.result.base.items()})
        self._loop()
        return self.result

    def _end(self, status: str, reason: str) -> None:
        self.driver.stop()
        self.result.counted = counted(self.study)
        if status == "FINISHED":
            self._best()
        self.recorder.close(status, reason)

    # -- the loop ------------------------------------------------------------------------------
    def _loop(self) -> None:
        target, failures = self.opts.trials, 0
        if counted(self.study) >= target:
            print(f"study {self.study.study_name} already has {counted(self.study)} trials (asked for {target})")
            return
        self._start()
        cpu = max(self.plan.profile.resources.cpu, 1)
        fits = sum(int(n.get("CPU", 0) // cpu) or 0 for n in self.driver.executor.nodes()) or 1
        at_once = max(1, min(self.opts.concurrency or fits, fits if self.opts.concurrency is None else 10**6))
        tally = Tally(target - counted(self.study))
        stage = 0
        while counted(self.study) < target:
            if failures > 2 * target + 5:  # a space of mostly untrainable configs must end
                raise RuntimeError(
                    f"{failures} trials failed in this invocation (see their reasons above and in MLflow): the "
                    "search space gives no trainable configs; narrow it"
                )
            n = min(at_once, target - counted(self.study))
            asked = [self.study.ask() for _ in range(n)]
            specs = {}
            for t in asked:
                spec = self._spec(t)
                if spec is not None:
                    specs[spec.row] = (t, spec)
                else:
                    failures += 1
            if not specs:
                continue
            name = f"search-{self.plan.experiment}-{self.recorder.runs.parent_id[:8]}-{stage}"
            outcomes = self.driver.run_stage([s for _, s in specs.values()], name, tally)
            if "throughput" in self.objective.metrics:
                self._throughput({k: specs[k] for k, o in outcomes.items() if o.status == "finished"})
            for key, out in outcomes.items():
                failed = self._tell(specs[key][0], out)
                failures += failed
                tally.failed += failed
                tally.done += 1 - failed
            stage += 1

    def _start(self) -> None:
        self.driver.start()
        if self.teacher_run:  # its logits stored with its run once (a Ray task); each trial fetches them
            self.driver.teacher_logits(self.teacher_run, self.plan.rows[self.opts.row].cfg)

    def _spec(self, trial) -> TrialSpec | None:
        """The trial's config, run and Ray trial; None (trial FAIL) when its parameters make an
        invalid config."""
        from optuna.trial import TrialState

        params = self.space.suggest(trial)
        try:
            cfg = apply(self.plan.rows[self.opts.row].cfg, params)
        except Exception as e:
            why = f"invalid config: {e}".splitlines()[0][:300]
            trial.set_user_attr("fail_reason", why)
            self.study.tell(trial, state=TrialState.FAIL)
            print(f"[trial{trial.number}] FAILED: {why}")
            self.result.failed[trial.number] = why
            return None
        extra = {"profile": self.opts.profile, "table": str(self.plan.table.table)}
        run_id = self.recorder.trial_run(trial.number, cfg, params, self.opts.row, extra)
        trial.set_user_attr("mlflow_run_id", run_id)
        link = (
            PruneLink(self.url, self.study.study_name, trial._trial_id, self.pruner) if self.pruner != "none" else None
        )
        return self.driver.spec(
            f"trial{trial.number}",
            run_id,
            cfg,
            self.workdir / f"trial{trial.number}" / run_id,
            prune=link,
            teacher_run=self.teacher_run,
            backbone_run=self.backbone_run,
        )

    def _finished_runs(self) -> dict:
        return finished_runs(self.plan, self.recorder.uri)

    def _throughput(self, done: dict) -> None:
        """Time the stage's finished trials (throughput is an objective), by the same protocol
        and with the same tag and headline as an ablation's rows."""
        specs = {s.run_id: s for _, s in done.values()}
        jobs = {k: (s.cfg.model, s.cfg.data.eval_crop, s.cfg.data.num_classes) for k, s in specs.items()}
        if not jobs:
            return
        figures = self.driver.time(jobs, {k: s.row for k, s in specs.items()})
        for run_id, metrics in figures.items():
            self.recorder.log_metrics(run_id, metrics, {"throughput_protocol": self.driver.protocol})

    def _tell(self, trial, out) -> int:
        """Tell Optuna what became of a trial; 1 when it failed."""
        from optuna.trial import TrialState

        if out.status == "pruned":
            self.study.tell(trial, state=TrialState.PRUNED)
            self.result.pruned[trial.number] = out.reason
            return 0
        if out.status == "finished":
            metrics = self.recorder.metrics(out.run_id)
            values = [metrics.get(m) for m in self.objective.metrics]
            if all(v is not None for v in values):
                self.study.tell(trial, values if self.objective.multi else values[0])
                self.result.ran.append(trial.number)
                return 0
            missing = [m for m, v in zip(self.objective.metrics, values, strict=True) if v is None]
            out.reason = f"the run has no {', '.join(missing)}"
        trial.set_user_attr("fail_reason", out.reason[:500])
        self.study.tell(trial, state=TrialState.FAIL)
        self.result.failed[trial.number] = out.reason
        return 1

    # -- the end ---------------------------------------------------------------------------------
    def _base_result(self) -> dict[str, float]:
        run = self._finished_runs().get(self.opts.row)
        return {m: run.data.metrics[m] for m in self.objective.metrics if m in run.data.metrics} if run else {}

    def _best(self) -> None:
        from optuna.trial import TrialState

        if not self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            return
        trials = self.study.best_trials if self.objective.multi else [self.study.best_trial]
        self.result.best = [{"number": t.number, "values": t.values, "params": t.params} for t in trials]
        rows = [best_row(self.opts.row, self.study.study_name, t.number, t.params) for t in trials]
        self.workdir.mkdir(parents=True, exist_ok=True)
        path = self.workdir / "best.yaml"
        path.write_text(rows_yaml(rows, self.study.study_name, self.objective, self.result.base))
        self.result.best_yaml = path
        self.recorder.attach(path)


def best_row(row: str, study: str, number: int, params: dict[str, Any]) -> dict:
    """A ready-to-paste table row: the searched row as its base plus the keys the trial changed
    (``optim.epochs`` is then an epoch count for every profile, as searched)."""
    out: dict[str, Any] = {
        "id": f"{row}-t{number}",
        "title": f"{row} tuned (study {study}, trial {number})",
        "base": row,
    }
    for key, value in sorted(params.items()):
        section, _, rest = key.partition(".")
        out.setdefault(section, {})[rest] = value
    return out


def rows_yaml(rows: list[dict], study: str, objective: Objective, base: dict[str, float]) -> str:
    head = f"# best of study {study} ({objective}); base row: " + (
        ", ".join(f"{k} {v:.2f}" for k, v in base.items()) or "no finished run"
    )
    return head + "\n" + yaml.safe_dump(rows, sort_keys=False)
