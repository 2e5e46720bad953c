"""Deciding when a run must stop cleanly: a signal, the session's time budget, or an injected preemption.

Nothing here stops anything. The loop asks ``reason()`` after every compiled call and, when there is a reason,
finishes by saving a checkpoint, writing ``summary.json`` with ``status: "stopped"`` and exiting 75. A signal
(SIGTERM from a preemption or ``docker stop``, SIGINT from Ctrl-C or a notebook's interrupt) therefore never cuts
a step in half.

A command catches the signals from its first line on (``catch_signals``, before TensorFlow's import, which takes
seconds), so a Ctrl-C during set-up is recorded too. Set-up asks ``check`` at each phase boundary: before anything
was written the command ends with ``Interrupted`` (exit 130); after, with a resumable stop (exit 75).
"""

from __future__ import annotations

import signal
import threading
import time
import types
from typing import Any

from tfkit.errors import Stopped

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(Exception):  # noqa: N818 - a person's request, not an error
    """A signal before the command wrote anything: nothing to resume, nothing changed (exit 130)."""


class _Process:
    """What this process has seen: the first signal since ``catch_signals``, and whether it wrote anything yet."""

    caught = False
    signal_name: str | None = None
    written = False


def catch_signals() -> None:
    """Records SIGINT and SIGTERM from now on instead of raising ``KeyboardInterrupt`` or dying; idempotent.

    Commands call it first, so that a signal at any moment of their start-up ends them cleanly. Only the main
    thread can set handlers; elsewhere this does nothing.
    """
    if _Process.caught or threading.current_thread() is not threading.main_thread():
        return
    for number in _SIGNALS:
        signal.signal(number, _record)
    _Process.caught = True


def _record(number: int, frame: types.FrameType | None) -> None:
    _Process.signal_name = _Process.signal_name or signal.Signals(number).name


def received() -> str | None:
    """The name of the first signal this command caught (``SIGINT``, ``SIGTERM``), or None."""
    return _Process.signal_name


def mark_written() -> None:
    """Notes that the command is about to change files: a signal from now on is a resumable stop, not exit 130."""
    _Process.written = True


def written() -> bool:
    """Whether the command has started to change files."""
    return _Process.written


def check(phase: str) -> None:
    """Ends the command if a signal came: call it at each boundary of set-up.

    Args:
        phase: What was just done, for the message (``loading the config``).

    Raises:
        Interrupted: A signal came before anything was written.
        Stopped: A signal came after files were written; the run can be resumed.
    """
    name = _Process.signal_name
    if name is None:
        return
    if not _Process.written:
        raise Interrupted(f"{name} while {phase}; nothing was written.")
    raise Stopped(f"{name} while {phase}; run the same command to go on.", reason="signal")


class StopWatch:
    """Collects the reasons to stop.

    Use it as a context manager: inside, SIGTERM and SIGINT are caught (in the main thread only, where Python lets
    handlers be set) and the previous handlers come back on exit.

    Args:
        time_limit_seconds: This session's budget from ``started``, or None.
        started: ``time.monotonic()`` when the session started.
        preempt_at_step: An injected preemption after this step, or None.
        catch_sigterm: Leave False where tf.distribute's PreemptionCheckpointHandler watches SIGTERM instead.
        memory_guard: An object whose ``tripped`` is a message once host memory passed its limit.
    """

    def __init__(
        self,
        *,
        time_limit_seconds: float | None,
        started: float,
        preempt_at_step: int | None,
        catch_sigterm: bool = True,
        memory_guard: Any = None,
    ) -> None:
        self.time_limit_seconds = time_limit_seconds
        self.started = started
        self.preempt_at_step = preempt_at_step
        self.signal_name: str | None = None
        self.memory_guard = memory_guard
        self._signals = _SIGNALS if catch_sigterm else (signal.SIGINT,)
        self._previous: dict[int, Any] = {}
        self._slowest_call = 0.0
        self._slowest_save = 0.0
        self._slowest_eval: float | None = None

    def catch_sigterm(self, enabled: bool) -> None:
        """Whether SIGTERM is caught here; off where tf.distribute's PreemptionCheckpointHandler watches it instead.

        Call it before entering the context.
        """
        self._signals = _SIGNALS if enabled else (signal.SIGINT,)

    def __enter__(self) -> StopWatch:
        if threading.current_thread() is threading.main_thread():
            for number in self._signals:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _handle(self, number: int, frame: types.FrameType | None) -> None:
        self.signal_name = signal.Signals(number).name
        if _Process.caught:
            _record(number, frame)

    def preempted(self) -> None:
        """Records a preemption that tf.distribute's PreemptionCheckpointHandler coordinated (its exit_fn)."""
        self.signal_name = "SIGTERM"

    def record_call(self, seconds: float) -> None:
        """Records how long a compiled call took, to leave room for one more."""
        self._slowest_call = max(self._slowest_call, seconds)

    def record_eval(self, seconds: float) -> None:
        """Records how long an epoch's eval took: a stop on an epoch's last step evaluates before its checkpoint."""
        self._slowest_eval = max(self._slowest_eval or 0.0, seconds)

    def record_save(self, seconds: float) -> None:
        """Records how long a checkpoint took to write, to leave room for the final one."""
        self._slowest_save = max(self._slowest_save, seconds)

    def reason(self, *, step_before: int, step_after: int) -> str | None:
        """Returns why the run must stop now (``signal``, ``host_memory``, ``time_limit``, ``preempted``), or None.

        Args:
            step_before: The optimizer step before the last call.
            step_after: The optimizer step after it.
        """
        if self.signal_name is not None or _Process.signal_name is not None:
            return "signal"
        if self.memory_guard is not None and self.memory_guard.tripped:
            return "host_memory"
        if self.preempt_at_step is not None and step_before < self.preempt_at_step <= step_after:
            return "preempted"
        if self.time_limit_seconds is not None:
            # Room for one more call, the eval that ends an epoch and a final checkpoint, measured from the slowest
            # seen, with a margin: stopping a little early costs a few steps, stopping late costs the session. Until
            # an eval has been timed, the slowest call stands in for it (the first eval also traces its step).
            eval_seconds = self._slowest_call if self._slowest_eval is None else self._slowest_eval
            reserve = 2.0 * (self._slowest_call + self._slowest_save) + eval_seconds + 1.0
            if time.monotonic() - self.started + reserve > self.time_limit_seconds:
                return "time_limit"
        return None
