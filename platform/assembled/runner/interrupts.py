"""Ctrl-C and SIGTERM as one exception the runner can record truthfully.

Ray Tune catches SIGINT itself (it ends the experiment quietly and returns partial results),
and ``ray.init`` replaces the SIGTERM handler with ``sys.exit(15)``; neither lets the runner
mark its runs KILLED. Inside :func:`interruptible` both signals raise :class:`Interrupted`
in the main thread (Tune's handler is switched off by its documented variable), and
:func:`install` puts the handlers back after Ray has started. Further signals while the runner
cleans up are ignored, so the cleanup that records the truth is not itself cut short.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_state: dict = {"raised": False, "active": False, "signum": None}


T = TypeVar("T")


class Interrupted(KeyboardInterrupt):
    """The user (SIGINT) or the system (SIGTERM) stopped the command."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _handler(signum: int, frame) -> None:
    if _state["raised"]:
        print("still stopping trials and recording them as KILLED; one moment", file=sys.stderr, flush=True)
        return
    _state.update(raised=True, signum=signum)
    raise Interrupted(signum)


def as_interrupted(e: KeyboardInterrupt) -> Interrupted:
    """The signal behind a KeyboardInterrupt. Ray's compiled core can surface our handler's
    exception as a plain KeyboardInterrupt; the signal we received is recorded here."""
    if isinstance(e, Interrupted):
        return e
    return Interrupted(_state["signum"] or signal.SIGINT)


def install() -> None:
    """(Re)install the handlers; a no-op outside :func:`interruptible` or off the main thread."""
    if _state["active"] and threading.current_thread() is threading.main_thread():
        for s in SIGNALS:
            signal.signal(s, _handler)


@contextmanager
def interruptible() -> Iterator[None]:
    old = {s: signal.getsignal(s) for s in SIGNALS}
    previous_env = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    _state.update(raised=False, active=True, signum=None)
    install()
    try:
        yield
    finally:
        _state["active"] = False
        if threading.current_thread() is threading.main_thread():
            for s, h in old.items():
                signal.signal(s, h if h is not None else signal.SIG_DFL)
        if previous_env is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = previous_env


def run_recorded(body: Callable[[], T], end: Callable[[str, str], None], hint: str) -> T:
    """``body()``, then ``end(status, reason)`` whatever happened: FINISHED; KILLED on Ctrl-C or
    SIGTERM (re-raised as :class:`Interrupted`; the reason says how to go on: ``hint``); FAILED
    with the error otherwise. What makes an invocation's MLflow status true (ablations, searches)."""
    status, reason = "FAILED", ""
    try:
        result = body()
        status = "FINISHED"
        return result
    except KeyboardInterrupt as e:
        stop = as_interrupted(e)
        status, reason = "KILLED", f"interrupted by {stop}: {hint}"
        raise stop from None
    except BaseException as e:
        reason = f"{type(e).__name__}: {e}"[:2000]
        raise
    finally:
        end(status, reason)
