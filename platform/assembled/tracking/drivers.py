"""Which process drives an invocation, and what its death leaves behind: a parent run (an
ablation's or a search's) carries its driver's host, pid and process start time, so the next
invocation can tell a live driver from one killed with SIGKILL and end what the dead one left
RUNNING or SCHEDULED."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .store import retry_locked

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

UNFINISHED = ("RUNNING", "SCHEDULED")
PARENT_KINDS = ("ablation", "search")  # runs that own trials and carry their driver's tags


def _process_start(pid: int) -> str | None:
    """Start time of a process (clock ticks since boot), or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def driver_tags() -> dict[str, str]:
    pid = os.getpid()
    return {"driver.host": socket.gethostname(), "driver.pid": str(pid), "driver.started": _process_start(pid) or ""}


def driver_gone(tags: dict[str, str]) -> bool:
    """True when the run's driver ran on this host and that process no longer exists (a reused
    pid has another start time). Drivers on other hosts cannot be judged from here."""
    if tags.get("driver.host") != socket.gethostname() or not tags.get("driver.pid"):
        return False
    started = _process_start(int(tags["driver.pid"]))
    return started is None or started != tags.get("driver.started")


def reap_orphans(client: MlflowClient, experiment_id: str, end: Callable[[str, str, str], None]) -> list[str]:
    """Runs an earlier driver left RUNNING or SCHEDULED when it died: parents whose driver process
    is gone, and trials whose parent is not alive. ``end(run_id, status, reason)`` ends each."""
    runs = retry_locked(lambda: client.search_runs([experiment_id], "", max_results=5000, order_by=["start_time DESC"]))
    open_runs = [r for r in runs if r.info.status in UNFINISHED]
    alive_parents = {
        r.info.run_id for r in open_runs if r.data.tags.get("kind") in PARENT_KINDS and not driver_gone(r.data.tags)
    }
    reaped = []
    for r in open_runs:
        tags = r.data.tags
        if tags.get("kind") in PARENT_KINDS and r.info.run_id not in alive_parents:
            why = f"driver process {tags.get('driver.pid')} on {tags.get('driver.host')} is gone (killed?)"
        elif tags.get("kind") == "trial" and tags.get("mlflow.parentRunId") not in alive_parents:
            why = f"its invocation (parent run {tags.get('mlflow.parentRunId', '?')}) ended or its driver is gone"
        else:
            continue
        end(r.info.run_id, "KILLED", f"{why}; marked KILLED by the next invocation")
        reaped.append(r.info.run_id)
    return reaped
