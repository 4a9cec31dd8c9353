"""Everything an ablation writes to MLflow: the parent run of an invocation, a child run per
row, their statuses, the table manifest and the summary.

Per-row state lives in the tracking store, not in the working directory: a row's run is found
by its tags (row + config hash) in the table's experiment, so deleting or switching stores
never points a row at a run of another store. Statuses stay true under faults: runs waiting for
a slot are SCHEDULED, a trial sets its run RUNNING, an interrupted invocation marks what it had
in flight KILLED, and the next invocation marks runs whose driver process is gone KILLED too.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from mlflow.entities import Run

from ..config_io import ConfigError
from ..tracking.drivers import UNFINISHED, driver_tags
from ..tracking.headline import DESCRIPTION_TAG
from ..tracking.invocation import Invocation
from ..tracking.store import retry_locked, schema_lock
from .plan import Plan
from .report import markdown
from .summary import build_summary, latest_runs, summary_columns, table_runs, unit_frame


@dataclass
class Recorder:
    plan: Plan
    uri: str
    workdir: Path
    reused: dict[str, Run] = field(default_factory=dict)  # unit -> FINISHED run of another table
    table: dict = field(default_factory=dict)  # the manifest, once closed

    def __post_init__(self) -> None:
        self.runs = Invocation(self.uri, self.plan.experiment)

    # -- the parent ---------------------------------------------------------------------
    def open(self) -> str:
        """The invocation's parent run. One invocation per table and store at a time: a live
        driver's RUNNING parent of this table refuses this one, checked under the store's lock
        (SQLite) and again once this parent exists (a tracking server has no lock: of two drivers
        that passed the first check in the same second, the later one yields)."""
        self.runs.open_experiment()
        with schema_lock(self.uri):
            self.runs.reap()
            if running := self._running_parents():
                raise self._running_error(running[0])
            self._create_parent()
        self._yield_to_an_earlier_rival()
        return self.runs.parent_id

    def _running_parents(self) -> list[Run]:
        return self.runs.find("tags.kind = 'ablation' and attributes.status = 'RUNNING'", max_results=10)

    def _yield_to_an_earlier_rival(self) -> None:
        """Another RUNNING parent of this table that started before this one (ties: the smaller
        run id) wins: this one's parent run is deleted (nothing was started) and it refuses."""
        mine = self.runs.get(self.runs.parent_id)
        order = (mine.info.start_time, mine.info.run_id)
        rivals = [r for r in self._running_parents() if (r.info.start_time, r.info.run_id) < order]
        if rivals:
            self.runs.drop_parent()
            raise self._running_error(rivals[0])

    def _running_error(self, run: Run) -> ConfigError:
        t = run.data.tags
        where = f"pid {t.get('driver.pid', '?')} on {t.get('driver.host', '?')}"
        hint = "wait for it to end or stop it"
        if t.get("driver.host") != socket.gethostname():
            hint += (
                '; if that driver is gone, end its run first: python -c "import mlflow; '
                f"mlflow.MlflowClient().set_terminated('{run.info.run_id}', 'KILLED')\""
            )
        return ConfigError(
            f"{self.plan.experiment} is being run now by {where} (parent run {run.info.run_id}, profile "
            f"{t.get('profile', '?')}): {hint}; nothing was started"
        )

    def _create_parent(self) -> str:
        plan = self.plan
        tags = {
            "table": str(plan.table.table),
            "profile": plan.profile_name,
            "kind": "ablation",
            "data": plan.data or "profile default",
            "profile_description": plan.profile.description,
            "repeats": str(plan.repeats),
            **driver_tags(),
        }
        # the newest earlier invocation of this table and profile: this one continues it
        previous = self.runs.find(f"tags.kind = 'ablation' and tags.profile = '{plan.profile_name}'", max_results=1)
        if previous:
            tags["resumed_from"] = previous[0].info.run_id
        self.runs.create_parent(f"{plan.experiment} ({plan.profile_name})", tags)
        self.runs.attach_dict(manifest(plan), "table.json")
        return self.runs.parent_id

    # -- children -------------------------------------------------------------------------
    def latest(self) -> dict[str, Run]:
        """Newest run of each unit (row x seed) with the current config hash, any status."""
        return retry_locked(lambda: latest_runs(self.runs.client, self.runs.experiment_id, self.plan.units))

    def finished(self) -> dict[str, Run]:
        """Each unit's FINISHED run: its own, or one of another table with the same config hash
        and evaluation identity (remembered in :attr:`reused`)."""
        done = {k: r for k, r in self._table_runs().items() if r.info.status == "FINISHED"}
        self.reused = {k: r for k, r in done.items() if r.info.experiment_id != self.runs.experiment_id}
        return done

    def _table_runs(self) -> dict[str, Run]:
        """Each unit's run: this table's newest, or, where that is not FINISHED, another table's reusable one."""
        eval_id = self.plan.eval_cfg.identity()
        return retry_locked(lambda: table_runs(self.runs.client, self.runs.experiment_id, self.plan.units, eval_id))

    def adopt(self, key: str) -> str:
        """Use another table's finished run for a unit; the run records every table using it."""
        run = self.reused[key]
        self.runs.tag(run.info.run_id, {f"used_by.{self.plan.experiment}": self.plan.rows[key].id})
        origin = f"table {run.data.tags.get('table', '?')} row {run.data.tags.get('row', '?')}"
        return f"{key}: reusing the finished run of {origin} (same config hash and evaluation)"

    def child(self, rid: str, fresh: bool) -> str:
        """The run a unit's trial logs into, SCHEDULED under this invocation's parent: its newest
        run of this config hash when that was KILLED or FAILED (an interrupted row continues its
        own run) or is being re-evaluated, else a new run."""
        prev = None if fresh else self.latest().get(rid)
        if prev is not None and prev.info.status not in UNFINISHED:
            return self.runs.continue_trial_run(rid, prev)
        # none, or a live invocation's run (orphans were reaped at open): leave that to it
        return self.runs.new_trial_run(rid, self.plan.rows[rid].cfg, rid, self.child_tags(rid))

    def child_tags(self, rid: str) -> dict[str, str]:
        prow, plan = self.plan.rows[rid], self.plan
        return {
            "row": prow.id,
            "repeat": str(prow.repeat),
            "table": str(plan.table.table),
            "profile": plan.profile_name,
            "kind": "trial",
            "reference": str(plan.is_reference(prow)).lower(),
            **({"kd_teacher": plan.rows[prow.teacher].id} if prow.teacher else {}),
            **({"backbone": plan.rows[prow.backbone].id} if prow.backbone else {}),
            **({"backbone_hash": prow.cfg.transfer.backbone} if prow.cfg.transfer else {}),
            **({"dataset": prow.row.dataset} if prow.row.dataset else {}),
        }

    def end(self, run_id: str, status: str, reason: str) -> None:
        """End a run FAILED or KILLED with the reason, as a trial's own run would end."""
        self.runs.end(run_id, status, reason)

    def block(self, rid: str, reason: str) -> None:
        """A row that cannot run (its teacher failed) still leaves a FAILED run that says why."""
        self.end(self.child(rid, fresh=False), "FAILED", reason)

    def log_metrics(self, run_id: str, metrics: dict[str, float], tags: dict[str, str]) -> None:
        self.runs.log_metrics(run_id, metrics, tags)

    # -- the end ---------------------------------------------------------------------------
    @property
    def summary_csv(self) -> Path:
        return self.workdir / "summary.csv"

    def close(self, status: str, failed: dict[str, str], reason: str = "") -> pd.DataFrame:
        """Summary, then the parent's final status, which is written even when the summary cannot
        be (a read-only folder or a full disk: the parent is then FAILED with that reason). When
        the invocation is KILLED or FAILED, every child it left SCHEDULED or RUNNING ends with the
        same status and reason (after the executor stopped them); with KILLED, so does one its
        trial already ended KILLED: a Ctrl-C reaches the workers too, and their own reason
        ("KeyboardInterrupt") would not say how to resume."""
        if status != "FINISHED":
            why = reason or "interrupted"
            self.runs.end_children(status, why if status == "KILLED" else f"the invocation failed: {why}",
                                   rekill=status == "KILLED")  # fmt: skip
        error = None
        try:
            summary = self._summarise(status, failed)
        except Exception as e:  # the parent's status must still be written; then the error goes on
            error, status = e, "FAILED" if status == "FINISHED" else status
            reason = reason or f"the summary could not be written: {type(e).__name__}: {e}"[:2000]
        self.runs.close(status, reason)
        if error is not None:
            raise error
        return summary

    def _summarise(self, status: str, failed: dict[str, str]) -> pd.DataFrame:
        """summary.csv (file and artifact) and the parent's description and tags."""
        table = self.table = manifest(self.plan)
        summary = build_summary(table, unit_frame(table, self._table_runs(), self.runs.experiment_id))
        self.summary_csv.parent.mkdir(parents=True, exist_ok=True)
        summary_columns(summary).to_csv(self.summary_csv, index=False)
        self.runs.attach(self.summary_csv)
        tags = {
            DESCRIPTION_TAG: _fit_tag(markdown(table, summary), "\n\n(truncated: `assembled report` prints all of it)")
        }
        if status == "FINISHED" and not self.runs.children:
            # every row was already finished: say so, so the experiment page is not a stack of look-alikes
            tags |= {
                "nothing_ran": "true",
                "mlflow.runName": f"{self.plan.experiment} ({self.plan.profile_name}; nothing to run)",
            }
        if failed:
            tags["failed_rows"] = ",".join(sorted(failed))
        self.runs.tag_parent(tags)
        return summary


def _fit_tag(text: str, tail: str, limit: int = 8000) -> str:
    """``text`` cut at a line boundary to fit MLflow's tag value limit, ``tail`` saying so."""
    if len(text) <= limit:
        return text
    return text[: limit - len(tail)].rsplit("\n", 1)[0] + tail


def manifest(plan: Plan) -> dict:
    """What the table asked for, so readers of MLflow alone (report, dashboards) know every row,
    its seeds' config hashes, what each row is judged against, and the paper's numbers."""
    hashes = plan.hashes
    rows: dict[str, dict] = {}
    for key, u in plan.rows.items():  # repeat 0 of each row comes first
        entry = rows.setdefault(
            u.id,
            {
                "id": u.id,
                "title": u.row.title,
                "base": u.row.base,
                "vs": u.row.vs,
                "reference": plan.is_reference(u),
                "paper_only": u.id in plan.paper_only,
                "table_row": u.id in plan.table_rows,
                "paper_epochs": u.row.epochs,
                "epochs": u.cfg.optim.epochs,
                "teacher": plan.rows[u.teacher].id if u.teacher else None,
                "backbone": plan.rows[u.backbone].id if u.backbone else None,
                "dataset": u.row.dataset,
                "config_hash": hashes[key],
                "same_as": plan.rows[u.same_as].id if u.same_as else None,
                "trained_by": plan.rows[u.trained_by].id if u.trained_by else None,
                "requested": False,
                "paper": u.row.paper.model_dump(),
                "units": [],
            },
        )
        unit = {"repeat": u.repeat, "config_hash": hashes[key], "requested": u.wanted}
        unit |= {k: v for k, v in (("same_as", u.same_as), ("trained_by", u.trained_by)) if v}
        entry["units"].append(unit)
        entry["requested"] = entry["requested"] or u.wanted
    return {
        "table": str(plan.table.table),
        "title": plan.table.title,
        "baseline": plan.table.baseline,
        "kind": plan.table.kind,
        "task": plan.table.task,
        "repeats": plan.repeats,
        "eval_hash": plan.eval_cfg.identity(),
        "mce_mean": plan.eval_cfg.mce_mean(),
        "profile": plan.profile_name,
        "profile_description": plan.profile.description,
        "data": plan.data or "profile default",
        "rows": list(rows.values()),
    }
