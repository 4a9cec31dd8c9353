"""What the driver prints while trials run: the overall ETA from the trials' own paces, and the
per-epoch lines (no top-1 on epochs that were not evaluated)."""

from __future__ import annotations

import time

from assembled.runner.progress import Lines, Tally


def test_eta_uses_each_trial_pace_from_when_it_was_reported():
    now = time.time()
    tally = Tally(total=4, running=2)
    # trial a: started 100 s ago, 50% of its training at 50 s ago -> 100 s a trial, 0 s left;
    # trial b: started 60 s ago, 25% when reported 40 s ago (20 s in) -> 80 s a trial, 20 s left
    tally.pace = {"a": (now - 100, 0.5, now - 50), "b": (now - 60, 0.25, now - 40)}
    eta = tally.eta()
    # left: a 0 + b 20; waiting 2 trials at the mean of 100 and 80 s (=90): 180; over 2 at once
    assert abs(eta - (0 + 20 + 2 * 90) / 2) < 1.0, eta
    tally.lengths = [30.0]
    assert tally.eta() < eta  # a quick finished trial lowers the typical length


def test_eta_keeps_the_slots_while_a_trial_is_being_replaced():
    """Between one trial's end and the next one's start a single trial runs; the ETA must not
    double for that moment (seen: ~40 min, ~1h20m, ~40 min on consecutive lines)."""
    lines = Lines(Tally(total=6), "t")
    for key in ("a", "b"):
        lines.start(key, key)
    now = time.time()
    lines.tally.pace = {"a": (now - 100, 0.99, now), "b": (now - 50, 0.5, now)}
    both = lines.tally.eta()
    lines.result("a", {"row": "a", "finished": True, "top1": 50.0})  # a ended; c is not started yet
    one = lines.tally.eta()
    assert one < 1.3 * both, (one, both)
    # the last trial of a table: its own time left, not a share of two slots
    tally = Tally(total=1, running=1, width=2)
    tally.pace = {"z": (now - 50, 0.5, now)}
    assert abs(tally.eta() - 50) < 1.0


def test_epoch_lines_leave_out_top1_when_not_evaluated(capsys):
    lines = Lines(Tally(total=1), "t")
    lines.start("k", "T0")
    lines.result("k", {"row": "T0", "epoch": 1, "epochs": 2, "loss": 2.0, "top1": float("nan")})
    lines.result("k", {"row": "T0", "epoch": 2, "epochs": 2, "loss": 1.5, "top1": 41.0})
    out = capsys.readouterr().out
    assert "nan" not in out and "[T0] epoch 1/2  loss 2.000  ETA" in out and "top1 41.00" in out
    lines.result(
        "k",
        {
            "row": "T0",
            "phase": "train",
            "epoch": 1,
            "epochs": 2,
            "step": 5,
            "steps": 10,
            "fraction": 0.25,
            "images_per_s": 100.0,
            "train_eta_s": 30,
        },
    )
    out = capsys.readouterr().out
    assert "step 5/10 (25% of training), 100 img/s" in out and "[t] 0/1 trials ended" in out and "ETA ~" in out
