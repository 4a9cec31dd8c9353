"""``--executor local``: the trials of a stage one after another in this process, with the same
specs, tracking, resume and live lines as on Ray. For a single-GPU workstation, for debugging
(a breakpoint in the trainer works), and for a machine without Ray: nothing here imports it.

What it cannot do: retry a trial whose process died (the command itself died; run it again to
resume), run data-parallel trials (``workers > 1`` needs Ray Train), or time throughput alone on
a node while other work runs (nothing else runs here).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

from .executor import Outcome, _store_logits, outcome
from .progress import Lines, Tally
from .trial import RETRYABLE, TrialSpec, _train


class LocalExecutor:
    local = True  # what this command started: resources are fitted to this machine
    on_this_machine = True

    def __init__(self, workdir: Path) -> None:
        self.connected = False
        self.storage = str((workdir / "train").resolve())

    def start(self) -> None:
        self.connected = True

    def nodes(self) -> list[dict[str, float]]:
        import torch

        gpus = torch.cuda.device_count()
        return [{"CPU": float(os.cpu_count() or 1), **({"GPU": float(gpus)} if gpus else {})}]

    def run_stage(
        self,
        specs: list[TrialSpec],
        resources: dict[str, float],
        max_failures: int,
        name: str,
        tally: Tally | None = None,
    ) -> dict[str, Outcome]:
        lines = Lines(copy.copy(tally) if tally else None, name.split("-")[0])
        return {spec.row: self._one(spec, max_failures, lines) for spec in specs}

    def _one(self, spec: TrialSpec, max_failures: int, lines: Lines) -> Outcome:
        if spec.workers > 1:
            why = "the local executor runs one process per trial: data-parallel trials (workers > 1) need Ray"
            lines.error(spec.row, spec.row, why)
            return Outcome("failed", spec.run_id, why)
        final: dict = {}

        def report(metrics: dict) -> None:
            lines.result(spec.row, metrics)
            if any(k in metrics for k in ("finished", "failed", "pruned")):
                final.update(metrics)

        lines.start(spec.row, spec.row)
        for attempt in range(max_failures + 1):
            try:
                _train(spec, report, live=True)
                break
            except RETRYABLE as e:  # the tracking server was unreachable: try again, as Ray would
                if attempt == max_failures:
                    final = {"failed": 1, "reason": f"{type(e).__name__}: {e}"[:500]}
                    lines.result(spec.row, {"row": spec.row, **final})
        return outcome(spec, final)

    def measure_throughput(self, jobs: dict, reference: dict, reference_size: int, batch: int, repeats: int, gpu: bool):
        """Timed in a fresh process of its own (this one's threads and caches are the trials')."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from ..evaluation.throughput import measure_architectures

        device = "cuda" if gpu else "cpu"
        threads = os.cpu_count() or 1
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            job = pool.submit(measure_architectures, jobs, reference, reference_size, batch, repeats, device, threads)
            return job.result()

    def teacher_logits(self, uri: str, teacher_run: str, student) -> bool:
        return _store_logits(uri, teacher_run, student)

    def stop(self) -> None:
        self.connected = False
