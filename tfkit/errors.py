"""The two ways a tfkit command ends early (tfkit.cli reports them at the command line).

A ``UserError`` is bad input (a config key, a missing file, a missing TPU): one line on stderr, exit code 2, nothing
written that could be lost. A ``Stopped`` is a stop that can be resumed (a time limit, SIGTERM, a memory guard): the
run has left a checkpoint, and the command exits 75 (``EX_TEMPFAIL``: "try again later").
"""

from __future__ import annotations

EXIT_USER_ERROR = 2
EXIT_RESUMABLE = 75


class UserError(Exception):
    """Bad input that a person can fix. Its message is one line: the problem, what was expected, how to fix it."""


class Stopped(Exception):  # noqa: N818 - a stop is not an error: the run is intact and resumes.
    """A clean, resumable stop. The run has written a checkpoint and ``summary.json`` says why it stopped.

    Attributes:
        reason: A short machine-readable reason, e.g. ``"time_limit"`` or ``"signal"``.
        summary: The summary written to the workdir.
    """

    def __init__(self, message: str, *, reason: str, summary: dict | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.summary = summary or {}
