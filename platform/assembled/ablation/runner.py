"""``assembled ablation``: every row of a table as a trial of the shared trainer on Ray.

Order: rows whose dependencies (KD teachers) are finished run together in one Tune stage,
as many at once as the cluster fits; students follow once their teacher's logits exist.
Rows already FINISHED with the same config hash in the table's experiment, and evaluated
with the profile's current evaluation identity (tag eval_hash), are skipped (``rerun`` forces
them), so an interrupted invocation resumes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..config_io import ConfigError
from ..tracking.store import client as make_client
from ..tracking.store import ensure_experiment, retry_locked, tracking_uri
from ..training import TrainConfig
from .external_teachers import external_teachers
from .profiles import eval_config, load_profiles, train_config
from .spec import ResolvedRow, load_table, table_path
from .summary import build_summary, format_table, latest_runs
from .teachers import ensure_logits

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Trial:
    row: ResolvedRow
    cfg: TrainConfig
    teacher: str | None = None  # row id
    status: str = "pending"
    run_id: str | None = None
    reason: str = ""


@dataclass
class AblationResult:
    summary: pd.DataFrame
    parent_run_id: str
    experiment: str
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    logits_computed: int = 0


def _start_ray(address: str | None) -> bool:
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        tmp = Path(os.environ.get("ASSEMBLED_RAY_TMP", "/tmp/assembled-ray"))
        ray.init(
            include_dashboard=False,
            _temp_dir=str(tmp),
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONWARNINGS": "ignore"}},
        )
    return True


def run_ablation(
    spec: str,
    profile: str = "cpu",
    data: str | None = None,
    address: str | None = None,
    rerun: bool = False,
    ablations_dir: Path | None = None,
    workdir: Path | None = None,
    rows: list[str] | None = None,
) -> AblationResult:
    import ray
    from ray import tune

    from .progress import TrialLines
    from .trial import run_trial

    ablations_dir = ablations_dir or ROOT / "ablations"
    path = table_path(spec, ablations_dir)
    table, resolved = load_table(path)
    profiles = load_profiles(ablations_dir / "profiles.yaml")
    if profile not in profiles:
        raise ConfigError(f"{ablations_dir / 'profiles.yaml'}: no profile {profile!r}; have {', '.join(profiles)}")
    prof = profiles[profile]
    if rows:
        missing = set(rows) - {r.id for r in resolved}
        if missing:
            raise ConfigError(f"{path}: no row(s) {', '.join(sorted(missing))}")
    extra, teacher_of = external_teachers(path, resolved, ablations_dir)
    resolved = resolved + extra
    trials = {r.id: Trial(r, train_config(r, table, prof, data)) for r in resolved}
    for rid, sub in prof.teachers.items():
        if rid not in trials or sub not in trials:
            missing = rid if rid not in trials else sub
            raise ConfigError(
                f"{ablations_dir / 'profiles.yaml'}: profile {profile}: key 'teachers.{rid}': "
                f"row {missing} is not in {path.name}"
            )
    for rid, teacher in teacher_of.items():
        trials[rid].teacher = prof.teachers.get(teacher, teacher)
    _bind_teachers(trials, path)
    wanted = set(rows) if rows else set(trials)
    for rid in list(wanted):  # teachers of wanted rows are wanted too
        if trials[rid].teacher:
            wanted.add(trials[rid].teacher)
    exp = path.stem
    uri = tracking_uri()
    workdir = (workdir or Path.cwd() / "runs") / exp
    exp_id = ensure_experiment(exp, uri)
    client = make_client(uri)
    parent = retry_locked(
        lambda: client.create_run(
            exp_id,
            run_name=f"{exp} ({profile})",
            tags={
                "table": str(table.table),
                "profile": profile,
                "kind": "ablation",
                "data": data or "profile default",
                "profile_description": prof.description,
            },
        )
    )
    parent_id = parent.info.run_id
    result = AblationResult(pd.DataFrame(), parent_id, exp)
    hashes = {rid: t.cfg.config_hash() for rid, t in trials.items()}
    # what the table asked for, so readers of MLflow alone (dashboards) know every row and the paper
    manifest = table_manifest(table, prof, profile, data, [trials[r.id] for r in resolved], hashes, wanted)
    retry_locked(lambda: client.log_dict(parent_id, manifest, "table.json"))
    finished = {rid: run for rid, run in latest_runs(client, exp_id, hashes).items() if run.info.status == "FINISHED"}
    eval_cfg = eval_config(prof)
    eval_id = eval_cfg.identity()
    stale = sorted(rid for rid, run in finished.items() if rid in wanted and run.data.tags.get("eval_hash") != eval_id)
    if stale and not rerun:
        print(
            f"{path.name}: re-running {', '.join(stale)}: evaluated with other settings or another generation of "
            "corrupted images, so their mCE/mFR would not compare with new rows"
        )
    for rid, t in trials.items():
        if rid not in wanted:
            t.status = "not requested"
        elif rid in finished and rid not in stale and not rerun:
            t.status, t.run_id = "finished", finished[rid].info.run_id
            result.skipped.append(rid)
    started_ray = False
    status = "FINISHED"
    try:
        while True:
            pending = [t for t in trials.values() if t.status == "pending"]
            if not pending:
                break
            for t in pending:
                if t.teacher and trials[t.teacher].status in ("failed", "blocked"):
                    t.status, t.reason = "blocked", f"teacher {t.teacher} failed"
                    result.failed[t.row.id] = t.reason
            ready = [
                t
                for t in pending
                if t.status == "pending" and (not t.teacher or trials[t.teacher].status == "finished")
            ]
            if not ready:
                break
            for t in ready:
                if t.teacher:
                    logits, computed = ensure_logits(
                        client, trials[t.teacher].run_id, t.cfg, workdir / "teacher_logits"
                    )
                    result.logits_computed += int(computed)
                    t.cfg = t.cfg.model_copy(
                        update={"reg": t.cfg.reg.model_copy(update={"teacher_logits": str(logits)})}
                    )
            if not started_ray:
                started_ray = _start_ray(address)
            use_gpu = ray.cluster_resources().get("GPU", 0) > 0 and prof.resources.gpu > 0
            resources = {"cpu": prof.resources.cpu, **({"gpu": prof.resources.gpu} if use_gpu else {})}
            payloads = [
                {
                    "row": t.row.id,
                    "train_cfg": t.cfg.model_dump(mode="json"),
                    "eval_cfg": eval_cfg.model_dump(mode="json"),
                    "uri": uri,
                    "experiment": exp,
                    "parent_run_id": parent_id,
                    "workdir": str((workdir / f"{t.row.id}-{hashes[t.row.id]}").resolve()),
                    "gpu": use_gpu,
                    "tags": {
                        "row": t.row.id,
                        "table": str(table.table),
                        "profile": profile,
                        "kind": "trial",
                        "reference": str(t.row.reference).lower(),
                        **({"kd_teacher": t.teacher} if t.teacher else {}),
                    },
                }
                for t in ready
            ]
            tuner = tune.Tuner(
                tune.with_resources(run_trial, resources),
                param_space={"trial": tune.grid_search(payloads)},
                run_config=tune.RunConfig(
                    name=f"{exp}-{parent_id[:8]}-{len(result.ran)}",
                    storage_path=str((workdir / "ray").resolve()),
                    failure_config=tune.FailureConfig(max_failures=prof.max_failures),
                    verbose=0,
                    callbacks=[TrialLines()],
                ),
                tune_config=tune.TuneConfig(reuse_actors=False),
            )
            grid = tuner.fit()
            by_row = {}
            for res in grid:
                row = res.config["trial"]["row"]
                by_row[row] = res
            for t in ready:
                res = by_row.get(t.row.id)
                m = res.metrics if res is not None and res.metrics else {}
                if res is not None and res.error is None and m.get("finished") and not m.get("failed"):
                    t.status, t.run_id = "finished", m.get("run_id")
                    result.ran.append(t.row.id)
                else:
                    reason = m.get("reason") or (
                        _last_line(res.error) if res is not None and res.error else "no result"
                    )
                    t.status, t.reason = "failed", reason
                    result.failed[t.row.id] = reason
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        if started_ray:
            ray.shutdown()
        runs = latest_runs(client, exp_id, hashes)
        shown = [r for r in resolved if r.id in wanted]
        result.summary = build_summary(shown, runs, table.baseline)
        out = workdir / "summary.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        result.summary.to_csv(out, index=False)
        retry_locked(lambda: client.log_artifact(parent_id, str(out)))
        if result.failed and status == "FINISHED":
            retry_locked(lambda: client.set_tag(parent_id, "failed_rows", ",".join(sorted(result.failed))))
        retry_locked(lambda: client.set_terminated(parent_id, status=status))
    return result


def _bind_teachers(trials: dict[str, Trial], path: Path) -> None:
    """Make each student's identity include its teacher's, teachers first (a teacher may be a student)."""
    bound: set[str] = set()
    while len(bound) < len(trials):
        progress = False
        for rid, t in trials.items():
            if rid in bound or (t.teacher and t.teacher not in bound):
                continue
            if t.teacher:
                teacher_hash = trials[t.teacher].cfg.config_hash()
                t.cfg = t.cfg.model_copy(update={"reg": t.cfg.reg.model_copy(update={"teacher": teacher_hash})})
            bound.add(rid)
            progress = True
        if not progress:
            cycle = sorted(set(trials) - bound)
            raise ConfigError(f"{path}: KD teachers form a cycle among rows {', '.join(cycle)}")


def table_manifest(
    table, prof, profile: str, data: str | None, trials: list[Trial], hashes: dict[str, str], wanted: set[str]
) -> dict:
    return {
        "table": str(table.table),
        "title": table.title,
        "baseline": table.baseline,
        "profile": profile,
        "profile_description": prof.description,
        "data": data or "profile default",
        "rows": [
            {
                "id": t.row.id,
                "title": t.row.title,
                "reference": t.row.reference,
                "paper_epochs": t.row.epochs,
                "epochs": t.cfg.optim.epochs,
                "teacher": t.teacher,
                "config_hash": hashes[t.row.id],
                "requested": t.row.id in wanted,
                "paper": t.row.paper.model_dump(),
            }
            for t in trials
        ],
    }


def _last_line(error: BaseException) -> str:
    lines = [ln.strip() for ln in str(error).strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else type(error).__name__)[:300]


def print_result(result: AblationResult) -> None:
    print()
    print(format_table(result.summary))
    print()
    print(
        f"ran {len(result.ran)}, skipped (already finished) {len(result.skipped)}, failed {len(result.failed)}; "
        f"MLflow experiment '{result.experiment}', parent run {result.parent_run_id}"
    )
    for row, reason in result.failed.items():
        print(f"  {row} failed: {reason}")
