"""A run's headline, as its MLflow description (tag ``mlflow.note.content``): the handful of
numbers a reader looks for, findable at a glance among ~150 per-corruption metrics. MLflow 3
shows the description on the run page and offers it as a column of the runs table."""

from __future__ import annotations

DESCRIPTION_TAG = "mlflow.note.content"
FORMATS = {
    "top1": "top-1 {:.2f}%",
    "mce": "mCE {:.2f}",
    "mfr": "mFR {:.2f}",
    "throughput": "{:.0f} img/s",
    "throughput_ratio_r50": "{:.2f}x R50",
}


def headline(metrics: dict[str, float]) -> str:
    parts = [fmt.format(metrics[k]) for k, fmt in FORMATS.items() if metrics.get(k) is not None]
    if metrics.get("macs") is not None:
        parts.append(f"{metrics['macs'] / 1e9:.3g} GMACs")
    if metrics.get("params") is not None:
        parts.append(f"{metrics['params'] / 1e6:.3g}M params")
    return " · ".join(parts)


def add_metrics(client, run_id: str, metrics: dict[str, float], tags: dict[str, str]) -> None:
    """Metrics measured after a run ended (its inference timing), with the tags that say how,
    and the headline rewritten to include them; every write retried while SQLite is locked."""
    from .callback import MlflowCallback
    from .store import retry_locked

    MlflowCallback(client, run_id).log_metrics(metrics, 0)
    for k, v in tags.items():
        retry_locked(lambda k=k, v=v: client.set_tag(run_id, k, v))
    now = retry_locked(lambda: client.get_run(run_id)).data.metrics
    retry_locked(lambda: client.set_tag(run_id, DESCRIPTION_TAG, headline(now)))
