"""Training stopped on purpose by a callback (e.g. an Optuna pruner): not a failure, so its run
ends KILLED with the reason, not FAILED."""


class Stopped(Exception):
    """Raise from an ``on_epoch_end`` callback to end training early; the message says why."""
