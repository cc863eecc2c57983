"""Ctrl-C is the user's, never a run's failure: telling an interrupt apart where libraries hide it.

A SIGINT raises KeyboardInterrupt wherever the main thread happens to be, and library code can
turn it into something else (each seen in sweeps):

- OmegaConf restores its flags in a `finally` and, over a half-built node, raises AttributeError
  in place of the interrupt;
- Lightning catches it inside fit() and calls exit(1);
- a finalizer (`__del__`, e.g. Lightning's Profiler) or an exit handler swallows it and prints
  an "Exception ignored" traceback, and the run goes on.

`task()` wraps one sweeplab task: it records the SIGINTs that reach it, so `caused_by_interrupt`
can name an error raised over one, and it delivers a swallowed interrupt again.
"""

from __future__ import annotations

import _thread
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

_sigints: list[int] = []  # SIGINTs seen by the running task's handler; empty between tasks
_in_task = False
_previous_hook: Callable[[Any], object] = sys.__unraisablehook__


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    _sigints.append(signum)
    raise KeyboardInterrupt


def _quiet_unraisable(args: Any) -> None:
    """sys.unraisablehook: a KeyboardInterrupt that a finalizer or exit handler swallowed is
    not printed; inside a task it is delivered again, to land in code that can raise it.
    Anything else goes to the hook installed before."""
    if args.exc_type is not None and issubclass(args.exc_type, KeyboardInterrupt):
        if _in_task:
            _thread.start_new_thread(_deliver_again, ())
        return
    _previous_hook(args)


def _deliver_again() -> None:
    # From another thread, once the hook has returned: called inside the hook, the handler
    # would raise there, and that would be printed as an error of the hook itself.
    time.sleep(0.05)
    _thread.interrupt_main(signal.SIGINT)


def install_hook() -> None:
    """Route swallowed interrupts through `_quiet_unraisable`, in front of the current hook
    (idempotent)."""
    global _previous_hook
    if sys.unraisablehook is not _quiet_unraisable:
        _previous_hook = sys.unraisablehook
        sys.unraisablehook = _quiet_unraisable


@contextmanager
def task() -> Iterator[None]:
    """Run one task with SIGINT recorded (main thread only: signals reach no other)."""
    global _in_task
    install_hook()
    _sigints.clear()
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, _on_sigint) if main else None
    _in_task = True
    try:
        yield
    finally:
        _in_task = False
        _sigints.clear()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def caused_by_interrupt(error: BaseException) -> bool:
    """Whether `error` arose from Ctrl-C: a SIGINT reached the running task, or `error` is a
    KeyboardInterrupt or has one in its cause/context chain."""
    if _sigints:
        return True
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
