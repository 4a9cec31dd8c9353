"""One live line per trial on the driver: row, epoch, loss, top-1, ETA."""

from __future__ import annotations

import sys
import time

from ray.tune import Callback


class TrialLines(Callback):
    def __init__(self) -> None:
        self.started: dict[str, float] = {}

    @property
    def stream(self):
        # looked up at print time: Ray pickles callbacks, and a captured stream may not pickle
        return sys.stdout

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        row = trial.config["trial"].row
        self.started[trial.trial_id] = time.time()
        print(f"[{row}] started", file=self.stream, flush=True)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        row = result.get("row", "?")
        if result.get("failed"):
            print(f"[{row}] FAILED: {result.get('reason')}", file=self.stream, flush=True)
            return
        if result.get("skipped_images"):
            n = int(result["skipped_images"])
            print(f"[{row}] {n} unreadable image(s) skipped (artifact skipped_files.txt)", file=self.stream, flush=True)
        if result.get("finished"):
            top1, mce, mfr = (result.get(k, float("nan")) for k in ("top1", "mce", "mfr"))
            line = f"[{row}] finished: top1 {top1:.2f}  mCE {mce:.2f}  mFR {mfr:.2f}"
            print(line, file=self.stream, flush=True)
            return
        epoch, epochs = result.get("epoch", 0), result.get("epochs", 0)
        elapsed = time.time() - self.started.get(trial.trial_id, time.time())
        eta = elapsed / max(epoch, 1) * (epochs - epoch)
        print(
            f"[{row}] epoch {epoch}/{epochs}  loss {result.get('loss', float('nan')):.3f}  "
            f"top1 {result.get('top1', float('nan')):.2f}  ETA {eta:.0f}s (+ evaluation)",
            file=self.stream,
            flush=True,
        )

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        print(f"[{trial.config['trial'].row}] error (Ray retries up to max_failures)", file=self.stream, flush=True)
