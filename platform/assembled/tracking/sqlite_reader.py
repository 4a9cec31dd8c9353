"""Reading a SQLite MLflow store without loading MLflow: what ``plan``, ``report`` and
``dashboard`` ask of a store, answered from its tables with the standard library.

Why not MLflow's client: importing it and opening its SQLAlchemy store took ~2.1 s of a
reading command's ~3 s on an idle 2-core box (``python benchmarks/startup.py``; MLflow's package
imports pandas, fastapi and its GenAI modules, its store alembic and every SQL dialect), against
a 2-s target for those commands (issue 25). The tables read here are MLflow's own (``runs``,
``tags``, ``params``, ``latest_metrics``, ``metrics``, ``experiments``, ``experiment_tags``) and
the answers are MLflow's: the same runs in the same order (start time descending, then run id),
active ones only, NaN metrics as NaN. Anything else is MLflow's client's, made on first need:
a filter or an order beyond the few this platform writes (tag equality and inequality, run
status, experiment name LIKE), an artifact not on a local path, any write but a local artifact's
copy, and every call on a store whose schema revision is not one this was checked against
(``tests/test_sqlite_reader.py`` compares every answer with MLflow's on a real store). The
database is opened read-only: a reader never creates or changes a store's tables.
"""

from __future__ import annotations

import math
import re
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse

# MLflow's schema revisions (table alembic_version) whose runs, tags, params and metrics tables
# this reads as MLflow does: the pinned MLflow's head. Another revision: MLflow's client answers.
KNOWN_REVISIONS = frozenset({"dc11669786a5"})
DEFAULT_MAX_RESULTS = 1000  # MLflow's SEARCH_MAX_RESULTS_DEFAULT
NATURAL_ORDER = (None, "start_time DESC", "attributes.start_time DESC", "attribute.start_time DESC")


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str | None
    status: str
    start_time: int | None
    end_time: int | None
    artifact_uri: str | None
    lifecycle_stage: str

    @property
    def run_uuid(self) -> str:
        return self.run_id


@dataclass(frozen=True)
class RunData:
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Run:
    info: RunInfo
    data: RunData


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str | None
    lifecycle_stage: str
    tags: dict[str, str]
    creation_time: int | None
    last_update_time: int | None


@dataclass(frozen=True)
class Metric:
    key: str
    value: float
    timestamp: int
    step: int


# one clause of a filter: tags.<key> = / != '<value>', attributes.status = '<value>'
_CLAUSE = re.compile(r"\s*(tags?|attributes?)\.(`[^`]+`|\w+)\s*(=|!=)\s*'([^']*)'\s*")
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
_NAME_LIKE = re.compile(r"\s*name\s+(LIKE|=)\s*'([^']*)'\s*", re.IGNORECASE)


def _where(filter_string: str | None) -> tuple[list[str], list[str]] | None:
    """SQL conditions and their parameters for a run filter, or None when it is beyond this
    reader (MLflow's client then answers)."""
    conds: list[str] = []
    args: list[str] = []
    for clause in _AND.split(filter_string.strip()) if filter_string and filter_string.strip() else []:
        m = _CLAUSE.fullmatch(clause)
        if m is None:
            return None
        kind, key, op, value = m.group(1), m.group(2).strip("`"), m.group(3), m.group(4)
        if kind.startswith("tag"):
            conds.append(
                f"exists (select 1 from tags t where t.run_uuid = r.run_uuid and t.key = ? and t.value {op} ?)"
            )
            args += [key, value]
        elif key == "status":
            conds.append(f"r.status {op} ?")
            args.append(value)
        else:
            return None
    return conds, args


def _local_path(uri: str | None) -> Path | None:
    """An artifact location on this machine's disk (a plain path or file://), else None."""
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return Path(uri) if parsed.scheme == "" else None


class SqliteReader:
    """MLflow's client's reading methods over a SQLite store (see the module's docstring)."""

    def __init__(self, uri: str) -> None:
        self.tracking_uri = uri
        self._client: Any = None
        self._db: sqlite3.Connection | None = None
        path = Path(uri.removeprefix("sqlite:///")).absolute()
        db = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=30)
        try:
            revision = db.execute("select version_num from alembic_version").fetchone()
        except sqlite3.Error:
            revision = None
        if revision is not None and revision[0] in KNOWN_REVISIONS:
            db.execute("PRAGMA case_sensitive_like = true")  # as MLflow's sessions: LIKE minds case
            self._db = db
        else:
            db.close()  # another MLflow's schema: its client reads it

    def mlflow(self) -> Any:
        """MLflow's own client of this store, made on first need."""
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def __getattr__(self, name: str) -> Any:  # writes and whatever else: MLflow's client
        return getattr(self.mlflow(), name)

    # -- experiments ---------------------------------------------------------------------------
    def search_experiments(self, filter_string: str | None = None, **kwargs: Any) -> list:
        like = _NAME_LIKE.fullmatch(filter_string) if filter_string else None
        if self._db is None or kwargs or (filter_string and like is None):
            return self.mlflow().search_experiments(filter_string=filter_string, **kwargs)
        where, args = "lifecycle_stage = 'active'", []
        if like:
            where += f" and name {'LIKE' if like.group(1).upper() == 'LIKE' else '='} ?"
            args.append(like.group(2))
        return self._experiments(where, args, DEFAULT_MAX_RESULTS)

    def get_experiment_by_name(self, name: str):
        if self._db is None:
            return self.mlflow().get_experiment_by_name(name)
        found = self._experiments("name = ?", [name], 1)
        return found[0] if found else None

    def _experiments(self, where: str, args: list, limit: int) -> list[Experiment]:
        assert self._db is not None
        rows = self._db.execute(
            "select experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time "
            f"from experiments where {where} order by creation_time desc, experiment_id asc limit ?",
            [*args, limit],
        ).fetchall()
        tags: dict[int, dict[str, str]] = {}
        ids = [r[0] for r in rows]  # at most DEFAULT_MAX_RESULTS: under SQLite's bound-parameter limit
        marks = ",".join("?" * len(ids))
        query = f"select key, value, experiment_id from experiment_tags where experiment_id in ({marks})"
        for key, value, eid in self._db.execute(query, ids):
            tags.setdefault(eid, {})[key] = value
        return [Experiment(str(r[0]), r[1], r[2], r[3], tags.get(r[0], {}), r[4], r[5]) for r in rows]

    # -- runs ----------------------------------------------------------------------------------
    def search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str = "",
        order_by: list[str] | None = None,
        max_results: int = DEFAULT_MAX_RESULTS,
        **kwargs: Any,
    ) -> list:
        where = _where(filter_string) if self._db is not None else None
        natural = not order_by or (len(order_by) == 1 and order_by[0] in NATURAL_ORDER)
        plain_ids = all(str(e).isdigit() for e in experiment_ids)  # else MLflow's own error
        if where is None or not natural or not plain_ids or kwargs:
            return self.mlflow().search_runs(
                experiment_ids, filter_string, order_by=order_by, max_results=max_results, **kwargs
            )
        if not experiment_ids:
            return []
        conds, args = where
        marks = ",".join("?" * len(experiment_ids))
        conds = [f"r.experiment_id in ({marks})", "r.lifecycle_stage = 'active'", *conds]
        return self._runs(" and ".join(conds), [*(int(e) for e in experiment_ids), *args], max_results)

    def get_run(self, run_id: str):
        if self._db is None:
            return self.mlflow().get_run(run_id)
        found = self._runs("r.run_uuid = ?", [run_id], 1)
        return found[0] if found else self.mlflow().get_run(run_id)  # MLflow's own error

    def _runs(self, where: str, args: list, limit: int) -> list[Run]:
        assert self._db is not None
        db = self._db
        rows = db.execute(
            "select run_uuid, experiment_id, name, status, start_time, end_time, artifact_uri, lifecycle_stage "
            f"from runs r where {where} order by r.start_time desc, r.run_uuid asc limit ?",
            [*args, limit],
        ).fetchall()
        if not rows:
            return []
        ids = [r[0] for r in rows]
        tags, params, metrics = self._per_run(ids)
        return [
            Run(
                RunInfo(r[0], str(r[1]), r[2], r[3], r[4], r[5], r[6], r[7]),
                RunData(metrics.get(r[0], {}), params.get(r[0], {}), tags.get(r[0], {})),
            )
            for r in rows
        ]

    def _per_run(self, ids: list[str]) -> tuple[dict, dict, dict]:
        """Tags, params and latest metrics of these runs, keyed by run id."""
        assert self._db is not None
        tags: dict[str, dict[str, str]] = {}
        params: dict[str, dict[str, str]] = {}
        metrics: dict[str, dict[str, float]] = {}
        for i in range(0, len(ids), 500):  # SQLite's bound-parameter limit
            chunk = ids[i : i + 500]
            where = f"where run_uuid in ({','.join('?' * len(chunk))})"
            for key, value, rid in self._db.execute(f"select key, value, run_uuid from tags {where}", chunk):
                tags.setdefault(rid, {})[key] = value
            for key, value, rid in self._db.execute(f"select key, value, run_uuid from params {where}", chunk):
                params.setdefault(rid, {})[key] = value
            query = f"select key, value, is_nan, run_uuid from latest_metrics {where}"
            for key, value, is_nan, rid in self._db.execute(query, chunk):
                metrics.setdefault(rid, {})[key] = math.nan if is_nan else value
        return tags, params, metrics

    def get_metric_history(self, run_id: str, key: str) -> list:
        if self._db is None:
            return self.mlflow().get_metric_history(run_id, key)
        rows = self._db.execute(
            "select value, is_nan, timestamp, step from metrics where run_uuid = ? and key = ? "
            "order by timestamp, step, value",
            [run_id, key],
        ).fetchall()
        return [Metric(key, math.nan if is_nan else value, ts, step) for value, is_nan, ts, step in rows]

    # -- artifacts -----------------------------------------------------------------------------
    def download_artifacts(self, run_id: str, path: str, dst_path: str | None = None) -> str:
        """A file artifact of a run whose artifacts are on this machine's disk, copied into
        ``dst_path`` as MLflow does; elsewhere (S3, a server's proxy) MLflow fetches it."""
        root = self._artifact_root(run_id)
        if root is None or dst_path is None:
            return self.mlflow().download_artifacts(run_id, path, dst_path)
        source = root / path
        if not source.is_file():  # e.g. an invocation interrupted before its manifest
            raise FileNotFoundError(f"run {run_id} has no artifact {path} (looked in {root})")
        target = Path(dst_path) / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return str(target)

    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None = None) -> None:
        """A file into a run's artifacts on this machine's disk: a copy into its artifact folder,
        which is all MLflow's local artifact repository does (the store's tables do not list
        artifacts); elsewhere MLflow uploads it. The dashboard's page, without MLflow's ~2 s."""
        root = self._artifact_root(run_id)
        if root is None or not Path(local_path).is_file():
            self.mlflow().log_artifact(run_id, local_path, artifact_path)
            return
        folder = root / artifact_path if artifact_path else root
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(local_path, folder / Path(local_path).name)

    def _artifact_root(self, run_id: str) -> Path | None:
        """The run's artifact folder when it is on this machine's disk; None (another store, an
        unknown run, an unread schema): MLflow's client handles the artifact."""
        if self._db is None:
            return None
        found = self._runs("r.run_uuid = ?", [run_id], 1)
        return _local_path(found[0].info.artifact_uri) if found else None
