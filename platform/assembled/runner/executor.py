"""Ray: start or join a cluster, run a stage of trials through Tune, time architectures alone
on a node, and stop. Knows nothing of MLflow or YAML; trials arrive as typed specs.

A stage is one ``Tuner`` over the stage's trials (as many at once as the cluster fits), with
Tune's failure config retrying trials whose worker died. Interrupts reach the runner as
:class:`~.interrupts.Interrupted` (see interrupts.py); :meth:`RayExecutor.stop` then ends the
trials by disconnecting (a local Ray this command started is shut down).
"""

from __future__ import annotations

import copy
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..redact import redact
from ..tracking import s3_compat
from ..tracking.health import StorageError
from . import interrupts
from .progress import Tally
from .trial import TrialSpec


@dataclass
class Outcome:
    status: Literal["finished", "failed", "pruned"]
    run_id: str | None
    reason: str = ""


# what workers inherit: no progress bars, no MLflow "View run at <URL>" lines (a URL's password)
QUIET_ENV = {
    "PYTHONWARNINGS": "ignore",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


def worker_env() -> dict[str, str]:
    """The environment of every trial process, on any node: quiet libraries and uploads that
    S3-compatible stores accept (a cluster's nodes were started without the driver's env)."""
    return {**QUIET_ENV, **s3_compat.apply()}


TOKEN = secrets.token_hex(32)  # one per process: Ray's driver caches the token it first read


def require_token() -> None:
    """A token of this process's own for a local Ray it starts. Ray 2.60 binds its GCS, raylet
    and worker ports to every interface (no setting narrows that; measured with ``ss -ltn``) and
    protects a new local Ray with one token per user, ``~/.ray/auth_token`` (mode 0644: readable by
    every local user, shared by every Ray this user starts). Set in the environment before
    ``ray.init`` (never on a command line), a random token replaces it: only this process and the
    workers it starts hold it, so nobody else who reaches a port can join or submit work (Ray
    turns ``RAY_AUTH_MODE`` to token itself). A ``RAY_AUTH_TOKEN`` the user set wins."""
    os.environ.setdefault("RAY_AUTH_TOKEN", TOKEN)


FRESH_ENV = "ASSEMBLED_FRESH_TRIAL_PROCESS"  # "1": every trial in a new worker process


def reuse_workers() -> bool:
    """Whether a trial may run in the worker process of an earlier trial of its stage (Tune's
    ``reuse_actors``). A fresh process imports torch, MLflow and the platform again: six trials of
    the cpu profile, two at a time, spanned 32.8 s that way and 19.1 s reused (1.72x,
    ``python benchmarks/trial_overhead.py``); Table 7 with 3 seeds took 11m16s instead of 9m07s,
    with the same results to the hundredth (every trial seeds Python, NumPy and torch, and sets
    its thread count). A worker that dies is replaced as before. ``ASSEMBLED_FRESH_TRIAL_PROCESS=1``
    gives each trial a process of its own (e.g. a library that leaks memory from trial to trial)."""
    return os.environ.get(FRESH_ENV, "") not in ("1", "true", "yes")


class RayExecutor:
    def __init__(self, address: str | None, storage: Path, name: str = "") -> None:
        """``storage``: Tune's experiment folder on this machine, unless ``ASSEMBLED_RAY_STORAGE``
        names a URI every node reaches (``s3://bucket/path?endpoint_override=host:port`` for an
        S3-compatible store): on a cluster without a shared disk, Tune's state and Ray Train's
        go there; ``name`` (the table) is its sub-folder."""
        self.address = address or os.environ.get("RAY_ADDRESS")
        shared = os.environ.get(STORAGE_ENV)
        self.shared = bool(shared)  # an object store every node reaches
        self.storage = join_uri(shared, name) if shared else str(storage.resolve())
        self.connected = False  # this executor called ray.init
        self.local = False  # ... and started the Ray it runs on
        self.on_this_machine = not self.address  # it will start a Ray here

    def start(self) -> None:
        import ray

        if ray.is_initialized():
            return
        _quiet()
        if self.address:
            ray.init(address=self.address, log_to_driver=True, runtime_env={"env_vars": worker_env()})
        else:
            tmp = Path(os.environ.get("ASSEMBLED_RAY_TMP", "/tmp/assembled-ray"))
            require_token()
            ray.init(
                include_dashboard=False,
                _temp_dir=str(tmp),
                log_to_driver=False,
                runtime_env={"env_vars": worker_env()},
            )
            self.local = True
        self.connected = True
        interrupts.install()  # ray.init replaced the SIGTERM handler

    def nodes(self) -> list[dict[str, float]]:
        import ray

        return [dict(n["Resources"]) for n in ray.nodes() if n.get("Alive")]

    def run_stage(
        self,
        specs: list[TrialSpec],
        resources: dict[str, float],
        max_failures: int,
        name: str,
        tally: Tally | None = None,
    ) -> dict[str, Outcome]:
        """``tally``: the invocation's counts so far (the live overall line continues them; the
        caller adds this stage's outcomes to it)."""
        from ray import tune

        from .trial import run_trial
        from .tune_lines import TrialLines

        try:
            results = tune.Tuner(
                tune.with_resources(run_trial, {k.lower(): v for k, v in resources.items()}),
                param_space={"trial": tune.grid_search(specs)},
                run_config=tune.RunConfig(
                    name=name,
                    storage_path=self.storage,
                    failure_config=tune.FailureConfig(max_failures=max_failures),
                    verbose=0,
                    callbacks=[TrialLines(copy.copy(tally) if tally else None, name.split("-")[0])],
                ),
                tune_config=tune.TuneConfig(reuse_actors=reuse_workers()),
            ).fit()
        except Exception as e:
            if self.shared:  # Tune itself raised: with an object store, that is where it writes
                raise StorageError(
                    f"Ray's storage {redact(self.storage)} failed ({_last_line(e)}); check {STORAGE_ENV}: the "
                    "bucket exists, the endpoint answers, the credentials may write"
                ) from e
            raise
        outcomes: dict[str, Outcome] = {}
        for res in results:
            spec = (res.config or {}).get("trial")
            if spec is not None:
                outcomes[spec.row] = outcome(spec, res.metrics or {}, _last_line(res.error) if res.error else None)
        for spec in specs:
            outcomes.setdefault(spec.row, Outcome("failed", spec.run_id, "Ray returned no result for this trial"))
        return outcomes

    def measure_throughput(self, jobs: dict, reference: dict, reference_size: int, batch: int, repeats: int, gpu: bool):
        """Every job's throughput, timed in one task that holds a whole node (all its CPUs, or a
        GPU), after training, so no other trial shares the device while it is timed; its worker
        process serves no other task (``max_calls=1``)."""
        import ray

        from ..evaluation.throughput import measure_architectures

        nodes = [n for n in self.nodes() if not gpu or n.get("GPU", 0) >= 1]
        cpus = max((n.get("CPU", 1) for n in nodes), default=1)
        task = ray.remote(max_calls=1)(measure_architectures).options(  # max_calls is not an .options() key
            num_cpus=cpus, num_gpus=1 if gpu else 0, max_retries=1
        )
        device = "cuda" if gpu else "cpu"
        return ray.get(task.remote(jobs, reference, reference_size, batch, repeats, device, int(cpus)))

    def teacher_logits(self, uri: str, teacher_run: str, student) -> bool:
        """Make sure the teacher's logits for the student's training data are stored with the
        teacher's run, computing them in a Ray task where the cluster has a GPU (or a CPU), not on
        the driver. True when they were computed now. A teacher whose logits are not finite
        raises :class:`~.teachers.TeacherFailed`."""
        import ray

        gpu = any(n.get("GPU", 0) >= 1 for n in self.nodes())
        task = ray.remote(_store_logits).options(num_cpus=1, num_gpus=1 if gpu else 0, max_retries=1)
        return ray.get(task.remote(uri, teacher_run, student))

    def stop(self) -> None:
        import ray

        if self.connected:
            ray.shutdown()
            self.connected = False


def outcome(spec: TrialSpec, last: dict, error: str | None = None) -> Outcome:
    """A trial's outcome from its last report; ``error``: why the trial itself raised, if it did
    (Ray's retries spent). The same for every executor."""
    if error is None and last.get("finished") and not last.get("failed"):
        return Outcome("finished", last.get("run_id") or spec.run_id)
    if error is None and last.get("pruned"):
        return Outcome("pruned", spec.run_id, last.get("reason", "pruned"))
    return Outcome("failed", spec.run_id, last.get("reason") or error or "the trial reported no result")


STORAGE_ENV = "ASSEMBLED_RAY_STORAGE"


def join_uri(base: str, *parts: str) -> str:
    """``base`` with path parts appended before any ``?query`` (pyarrow's S3 options)."""
    path, sep, query = base.partition("?")
    joined = "/".join([path.rstrip("/"), *(p.strip("/") for p in parts if p)])
    return joined + sep + query


def _store_logits(uri: str, teacher_run: str, student) -> bool:
    import tempfile

    from .teachers import ensure_logits

    with tempfile.TemporaryDirectory() as tmp:
        return ensure_logits(uri, teacher_run, student, Path(tmp))[1]


def _quiet() -> None:
    """Keep this terminal to the platform's own lines: Tune's experiment box and TensorBoard
    hint (the legacy reporter honours verbose=0, the new one does not), its INFO lines (state
    files written; the TensorBoard logger dropping the trial spec it cannot serialise), and
    the token-auth notice a local Ray prints on start (authentication stays as Ray sets it)."""
    import logging

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)


def _last_line(error: BaseException) -> str:
    lines = [ln.strip() for ln in str(error).strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else type(error).__name__)[:300]
