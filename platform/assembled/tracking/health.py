"""Whether the tracking store can be used, checked once per process before MLflow touches it, so
that a corrupt file, a read-only folder or a server that does not answer ends a command in one
line naming the cause and what to do (MLflow's own errors are 30-90-line SQLAlchemy or urllib3
tracebacks, and a damaged SQLite file can even read silently)."""

from __future__ import annotations

import base64
import errno
import os
import shutil
import sqlite3
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from ..redact import redact

SERVER_TIMEOUT_S = 15.0


class StorageError(RuntimeError):
    """The tracking store or the working folder cannot be used; the message says why and what
    to do."""


_checked: set[tuple[str, bool]] = set()


def check_store(uri: str, write: bool) -> None:
    """Raise :class:`StorageError` when the store at ``uri`` cannot be read (or, with ``write``,
    written). A SQLite file is integrity-checked; a server must answer ``/health``."""
    if (uri, write) in _checked:
        return
    if uri.startswith("sqlite:///"):
        _check_sqlite(Path(uri.removeprefix("sqlite:///")), write)
    elif uri.startswith(("http://", "https://")):
        _check_server(uri)
    _checked.add((uri, write))


def _check_sqlite(db: Path, write: bool) -> None:
    folder = db.parent
    if write and not db.exists() and folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        raise StorageError(
            f"cannot create the MLflow store {db}: {folder} is read-only; run from a writable folder "
            "or set MLFLOW_TRACKING_URI to a writable store (sqlite:////path/mlflow.db or a server)"
        )
    if not db.exists():
        return
    if write and not (os.access(db, os.W_OK) and os.access(folder, os.W_OK | os.X_OK)):
        where = db if not os.access(db, os.W_OK) else folder  # SQLite writes a journal beside the file
        raise StorageError(
            f"cannot write the MLflow store {db}: {where} is read-only; make it writable, or set "
            "MLFLOW_TRACKING_URI to a writable store"
        )
    problem = _integrity(db)
    if problem:
        raise StorageError(
            f"the MLflow store {db} is damaged ({problem}); restore it from a backup, or move it aside "
            f"(mv {db.name} {db.name}.damaged) to start a new store here"
        )


def _integrity(db: Path) -> str | None:
    """SQLite's quick_check (O(size), milliseconds for a store of thousands of runs). The
    connection is read-write where the store can be written: a process killed in the middle of a
    write leaves a hot journal (``mlflow.db-journal``) that SQLite rolls back on the next
    read-write open, and that a read-only connection refuses ("attempt to write a readonly
    database"), which is a store in need of SQLite's own recovery, not a damaged one."""
    writable = os.access(db, os.W_OK) and os.access(db.parent, os.W_OK | os.X_OK)
    try:
        with closing(sqlite3.connect(f"file:{db}?mode={'rw' if writable else 'ro'}", uri=True, timeout=30)) as conn:
            rows = conn.execute("PRAGMA quick_check(1)").fetchall()
    except sqlite3.DatabaseError as e:
        journal = db.with_name(db.name + "-journal")
        if not writable and journal.exists():  # not damage: moving the store aside would lose it
            raise StorageError(
                f"the MLflow store {db} has an unfinished write ({journal.name}, left by a killed "
                "process) that only a read-write open rolls back; run one command where it can be written"
            ) from e
        return str(e)
    result = " ".join(str(rows[0][0]).split()) if rows else "no answer"
    return None if result == "ok" else result


def _check_server(uri: str) -> None:
    parts = urlsplit(uri)
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    request = urllib.request.Request(urlunsplit(parts._replace(netloc=netloc)).rstrip("/") + "/health")
    user = parts.username or os.environ.get("MLFLOW_TRACKING_USERNAME")
    if user:  # credentials in the URL (or MLflow's variables) go as basic auth, never into the URL
        password = parts.password or os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
        token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=SERVER_TIMEOUT_S) as r:
            if r.status == 200:
                return
            reason = f"HTTP {r.status}"
    except urllib.error.HTTPError as e:
        if e.code < 500:  # it answers (a 401 is MLflow's to explain, with the request that needs it)
            return
        reason = f"HTTP {e.code}"
    except (urllib.error.URLError, OSError) as e:
        reason = str(getattr(e, "reason", e))
    raise StorageError(
        f"the tracking server {redact(uri)} does not answer ({reason}); start it, or set "
        "MLFLOW_TRACKING_URI to a server that runs"
    )


def check_writable(folder: Path, what: str) -> None:
    """Raise :class:`StorageError` unless ``folder`` (or, before it exists, the folder it would be
    made in) can be written: checkpoints and summaries go there, and finding out after the
    parent run exists would leave it to be cleaned up."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise StorageError(f"cannot write {what} to {folder}: {probe} is read-only; run from a writable folder")


_DISK_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT}
_DISK_MESSAGES = ("database or disk is full", "attempt to write a readonly database", "no space left on device")


def disk_problem(error: BaseException) -> str | None:
    """One line for an error that a full or read-only disk caused anywhere under MLflow, SQLite
    or Ray (found along the exception's causes), else None."""
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _DISK_ERRNOS:
            where = f" ({e.filename})" if e.filename else ""
            return f"{e.strerror}{where}: free space or make it writable, then run the same command to resume"
        text = str(e).lower()
        for message in _DISK_MESSAGES:
            if message in text:
                return f"{message}: free space or make the store writable, then run the same command to resume"
        e = e.__cause__ or e.__context__
    return None


def failure_reason(error: BaseException, folder: Path) -> str:
    """A failed trial's reason: its error, said plainly when a full disk caused it (torch.save
    reports ENOSPC as ``unexpected pos ...``, with no OSError to find)."""
    reason = f"{type(error).__name__}: {error}"
    problem = disk_problem(error)
    if problem:
        return f"{problem} [{reason}]"
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return reason
    if free < 16 * 2**20:
        return f"no space left on device ({folder}: {free // 1024} KiB free) [{reason}]"
    return reason
