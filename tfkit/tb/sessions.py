"""``merge``: the sessions of one run (or several runs) joined into one logdir, one step per point.

Steps are aligned per tag family, the tags that share a step counter: Keras' ``epoch_*`` tags count epochs, its
``batch_*`` and ``*_vs_iterations`` tags count optimizer steps, and every other tag counts the writer's global step.
For each family, a session is compared with the previous session that has it:

- its first step comes after the previous last step: it **continues**, and keeps the previous session's shift;
- its first step lies inside the previous session's steps (after its first): it **resumed** from a checkpoint, and
  the later session wins from its first step on (the earlier session's steps from there are dropped);
- its first step is at or before the previous session's first: its counter **restarted**, and it is shifted by
  ``previous end + 1 - start``, so 0-based and 1-based counters both continue without a repeated step.

``SessionLog`` events are shifted with their session, so TensorBoard does not take a later session's start for a
restart and discard the earlier one. Run-level events (file version, graph, hparams) are copied unshifted, and each
run becomes one file holding its sessions in order, every record as written but for its step.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tfkit.errors import UserError
from tfkit.tb import events, files, output, wire

_EPOCH = re.compile(r"epoch[_/]", re.IGNORECASE)
_ITERATION = re.compile(r"batch[_/]|.*_vs_iterations$", re.IGNORECASE)


def family(tag: str) -> str:
    """The step counter a tag counts: ``epoch``, ``iteration`` (Keras' batch-level tags) or ``step``."""
    if _EPOCH.match(tag):
        return "epoch"
    if _ITERATION.match(tag):
        return "iteration"
    return "step"


@dataclass(frozen=True)
class Alignment:
    """How one family of one session was placed.

    Attributes:
        family: ``epoch``, ``iteration`` or ``step``.
        kind: ``first``, ``continues``, ``resumed``, ``restarted`` or ``offset`` (a fixed ``--offset``).
        first: The session's own first step of the family.
        last: The session's own last step of the family.
        shift: Added to every step of the family.
    """

    family: str
    kind: str
    first: int
    last: int
    shift: int

    def describe(self) -> str:
        """One phrase, e.g. ``step: restarted at 0, shifted by +100 to 100-199``."""
        placed = f"{self.first + self.shift}-{self.last + self.shift}"
        if self.kind == "resumed":
            return f"{self.family}: resumed at {self.first}, replacing earlier steps from {self.first + self.shift}"
        if self.shift:
            return f"{self.family}: {self.kind} at {self.first}, shifted by {self.shift:+d} to {placed}"
        return f"{self.family}: {self.kind}, steps {placed} as they were"


@dataclass(frozen=True)
class SessionReport:
    """What ``merge`` did with one session: its logdir and the alignment of each of its tag families."""

    logdir: Path
    families: tuple[Alignment, ...]

    @property
    def shift(self) -> int:
        """The shift of the session's untagged step events (``SessionLog``): its largest family shift."""
        return max((alignment.shift for alignment in self.families), default=0)

    def describe(self) -> str:
        """One line for the command's output."""
        return f"{self.logdir}: " + ("; ".join(a.describe() for a in self.families) or "no step-scoped events")


def parse_offset(text: str) -> int | None:
    """``auto`` (None) or a whole number of steps per session.

    Raises:
        UserError: Anything else.
    """
    if text == "auto":
        return None
    if not re.fullmatch(r"\d+", text):
        raise UserError(f"--offset received {text!r}; expected auto or a whole number of steps, e.g. 1000.")
    return int(text)


def merge(
    sessions: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    offset: str = "auto",
    force: bool = False,
) -> list[SessionReport]:
    """Joins logdirs, in the order given, into one new logdir; returns what was done with each.

    Args:
        sessions: The logdirs, earliest first.
        out: A new (or empty) folder; with ``force`` an existing one is replaced once the merge is complete.
        offset: ``auto`` aligns each tag family as the module says; a number N shifts session ``i`` by ``i * N``.
        force: Replace an existing ``out``.

    Raises:
        UserError: Bad input or an output that would overlap an input; nothing is written.
    """
    if not sessions:
        raise UserError("merge received no logdir; expected one or more, earliest session first.")
    fixed = parse_offset(offset)
    roots = [Path(session) for session in sessions]
    sources = [files.event_files(root) for root in roots]
    ranges = [_family_ranges(root, paths) for root, paths in zip(roots, sources, strict=True)]
    reports = _align(roots, ranges, fixed)
    # The later session wins from its first step on: each family's events stop where a later session's begin.
    cutoffs = [
        {
            name: min(
                (a.first + a.shift for later in reports[index + 1 :] for a in later.families if a.family == name),
                default=math.inf,
            )
            for name in ranges[index]
        }
        if fixed is None
        else {}
        for index in range(len(roots))
    ]
    selectors: dict[str, events.RunSelector] = {}
    targets: dict[str, BinaryIO] = {}
    with output.staged_folder(Path(out), inputs=roots, force=force) as folder:
        try:
            for root, paths, report, cutoff in zip(roots, sources, reports, cutoffs, strict=True):
                shifts = {alignment.family: alignment.shift for alignment in report.families}
                for source in paths:
                    run = files.run_name(root, source)
                    selector = selectors.setdefault(run, events.RunSelector())
                    first_file = run not in targets
                    if first_file:
                        targets[run] = folder.create(source.relative_to(root))
                    _copy(
                        source,
                        targets[run],
                        selector,
                        shifts=shifts,
                        cutoff=cutoff,
                        default=report.shift,
                        keep_version=first_file,
                    )
        finally:
            for target in targets.values():
                target.close()
    return reports


def _copy(
    source: Path,
    target: BinaryIO,
    selector: events.RunSelector,
    *,
    shifts: dict[str, int],
    cutoff: dict[str, float],
    default: int,
    keep_version: bool,
) -> None:
    def shift_of(tag: str | None) -> int:
        return default if tag is None else shifts.get(family(tag), default)

    def keep(tag: str | None, step: int) -> bool:
        return tag is None or step + shift_of(tag) < cutoff.get(family(tag), math.inf)

    for data in files.read_records(source):
        event = events.parse(data)
        if event.HasField("file_version") and not keep_version:
            continue  # one file version per run file: it opens the first session's records
        kept = selector.select(data, event, keep)
        if kept is None:
            continue
        if not selector.is_run_level(event):
            step_values = [v.tag for v in event.summary.value if selector.plugin(v) not in events.RUN_LEVEL_PLUGINS]
            tag = step_values[0] if step_values else (event.tagged_run_metadata.tag or None)
            if shift_of(tag):
                kept = wire.with_step(kept, event.step + shift_of(tag))
        target.write(files.frame(kept))
        keep_version = False


def _family_ranges(root: Path, paths: list[Path]) -> dict[str, tuple[int, int]]:
    """Each tag family's first and last step in one session, over the step-scoped summaries of all its runs."""
    ranges: dict[str, tuple[int, int]] = {}
    selectors: dict[str, events.RunSelector] = {}
    for path in paths:
        selector = selectors.setdefault(files.run_name(root, path), events.RunSelector())
        for data in files.read_records(path):
            event = events.parse(data)
            selector.observe(event)
            if selector.is_run_level(event):
                continue
            tags = [v.tag for v in event.summary.value] or [event.tagged_run_metadata.tag]
            for name in {family(tag) for tag in tags if tag}:
                low, high = ranges.get(name, (event.step, event.step))
                ranges[name] = (min(low, event.step), max(high, event.step))
    return dict(sorted(ranges.items()))


def _align(roots: list[Path], ranges: list[dict[str, tuple[int, int]]], fixed: int | None) -> list[SessionReport]:
    previous: dict[str, Alignment] = {}
    merged_end: dict[str, int] = {}
    reports = []
    for index, (root, session) in enumerate(zip(roots, ranges, strict=True)):
        placed = []
        for name, (first, last) in session.items():
            before = previous.get(name)
            if fixed is not None:
                kind, shift = "offset", index * fixed
            elif before is None:
                kind, shift = "first", 0
            elif first > before.last:
                kind, shift = "continues", before.shift
            elif first > before.first:
                kind, shift = "resumed", before.shift
            else:
                kind, shift = "restarted", merged_end[name] + 1 - first
            alignment = Alignment(family=name, kind=kind, first=first, last=last, shift=shift)
            previous[name] = alignment
            merged_end[name] = max(merged_end.get(name, last + shift), last + shift)
            placed.append(alignment)
        reports.append(SessionReport(logdir=root, families=tuple(placed)))
    return reports
