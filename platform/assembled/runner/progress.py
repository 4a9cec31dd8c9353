"""Live lines on the driver: one per trial event (row, epoch, loss, top-1, progress inside a long
epoch, evaluation phase) and, whenever a trial starts, ends or reports progress, one overall line
for the invocation: units done / total, running, failed, elapsed and ETA. The ETA counts the
running trials' training still to do (from their own pace) and the trials not started yet at the
mean trial length. Ray-free (the local executor prints through it too); the Tune callback that
feeds it is tune_lines.py."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field


@dataclass
class Tally:
    """The invocation's units to run, across its stages (teachers first, then students)."""

    total: int
    done: int = 0
    failed: int = 0
    running: int = 0
    width: int = 0  # the most trials seen running at once: the slots the executor gives
    started: float = field(default_factory=time.time)
    pace: dict = field(default_factory=dict)  # running trial -> (its start, fraction of training done, when)
    lengths: list = field(default_factory=list)  # finished trials' durations (s)

    def eta(self) -> float | None:
        """Seconds left: what the running trials' pace says they need, plus the trials not
        started at the mean trial length, over as many slots as have run at once (not as run
        now: between one trial's end and the next one's start a single trial runs), and never
        less than the longest running trial still needs."""
        now = time.time()
        # a whole trial at its pace, from when its fraction was reported (trials report in turn)
        expected = {k: (at - t0) / f for k, (t0, f, at) in self.pace.items() if f > 0.02}
        typical = self.lengths + list(expected.values())
        if not typical:
            return None
        mean = sum(typical) / len(typical)
        left = [max(0.0, expected.get(k, mean) - (now - t0)) for k, (t0, _, _) in self.pace.items()]
        waiting = max(0, self.total - self.done - self.failed - self.running)
        slots = max(1, self.width, self.running)
        return max((sum(left) + waiting * mean) / slots, max(left, default=0.0))

    def line(self, name: str) -> str:
        elapsed = time.time() - self.started
        ended = self.done + self.failed
        left = self.eta() if ended < self.total else None
        eta = f"ETA ~{duration(left)}" if left is not None else "ETA -"
        return (
            f"[{name}] {ended}/{self.total} trials ended ({self.done} finished, {self.failed} failed), "
            f"{self.running} running, {duration(elapsed)} elapsed, {eta}"
        )


nan = float("nan")


class Lines:
    """What the driver prints for each trial event: keyed by the trial (any hashable id)."""

    def __init__(self, tally: Tally | None = None, name: str = "table") -> None:
        self.started: dict[object, float] = {}
        self.tally, self.name = tally, name

    def _say(self, text: str) -> None:
        print(text, file=sys.stdout, flush=True)  # looked up at print time: Ray pickles callbacks

    def _overall(self, key: object = None, started: int = 0, ended: int = 0, failed: bool = False) -> None:
        if self.tally is None:
            return
        self.tally.running += started - ended
        self.tally.width = max(self.tally.width, self.tally.running)
        if started:
            self.tally.pace[key] = (self.started[key], 0.0, self.started[key])
        if ended:
            self.tally.failed += int(failed)
            self.tally.done += int(not failed)
            t0, _, _ = self.tally.pace.pop(key, (None, 0.0, None))
            if t0 is not None and not failed:
                self.tally.lengths.append(time.time() - t0)
        self._say(self.tally.line(self.name))

    def start(self, key: object, row: str) -> None:
        self.started[key] = time.time()
        self._say(f"[{row}] started")
        self._overall(key, started=1)

    def result(self, key: object, result: dict) -> None:
        row = result.get("row", "?")
        if result.get("failed"):
            self._say(f"[{row}] FAILED: {result.get('reason')}")
            self._overall(key, ended=1, failed=True)
            return
        if result.get("pruned"):
            self._say(f"[{row}] {result.get('reason')}")
            self._overall(key, ended=1)
            return
        if result.get("skipped_images"):
            n = int(result["skipped_images"])
            self._say(f"[{row}] {n} unreadable image(s) skipped (artifact skipped_files.txt)")
        if result.get("finished"):
            self._say(f"[{row}] finished: {_headline(result)}")
            self._overall(key, ended=1)
            return
        if result.get("phase") == "train":
            self._train_progress(key, row, result)
            return
        if result.get("phase"):
            self._say(f"[{row}] evaluating {result['phase']}: {100 * result.get('progress', 0):.0f}%")
            return
        epoch, epochs = result.get("epoch", 0), result.get("epochs", 0)
        elapsed = time.time() - self.started.get(key, time.time())
        eta = elapsed / max(epoch, 1) * (epochs - epoch)
        r1, top1 = result.get("recall_at_1"), result.get("top1")
        if r1 is not None:
            score = f"R@1 {r1:.2f}  "
        elif top1 is not None and math.isfinite(top1):  # not evaluated this epoch (eval_every): left out
            score = f"top1 {top1:.2f}  "
        else:
            score = ""
        loss = result.get("loss", nan)
        self._say(f"[{row}] epoch {epoch}/{epochs}  loss {loss:.3f}  {score}ETA {duration(eta)} (+ evaluation)")

    def _train_progress(self, key: object, row: str, p: dict) -> None:
        """Where a trial is inside a long epoch: step, pace, what its training still needs."""
        self._say(
            f"[{row}] epoch {p.get('epoch')}/{p.get('epochs')} step {p.get('step')}/{p.get('steps')} "
            f"({100 * p.get('fraction', 0):.0f}% of training), {p.get('images_per_s', nan):.0f} img/s, "
            f"ETA {duration(p.get('train_eta_s', 0))} (+ evaluation)"
        )
        if self.tally is not None and key in self.tally.pace:
            self.tally.pace[key] = (self.tally.pace[key][0], float(p.get("fraction", 0)), time.time())
            self._say(self.tally.line(self.name))

    def error(self, key: object, row: str, why: str) -> None:
        self._say(f"[{row}] error: {why}")
        self._overall(key, ended=1, failed=True)


def _headline(result: dict) -> str:
    """A finished trial's numbers: Recall@1 for a retrieval row, else top-1, mCE and mFR."""
    if "recall_at_1" in result:
        return f"R@1 {result['recall_at_1']:.2f}"
    top1, mce, mfr = (result.get(k, nan) for k in ("top1", "mce", "mfr"))
    return f"top1 {top1:.2f}  mCE {mce:.2f}  mFR {mfr:.2f}"


def duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
