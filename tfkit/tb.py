"""``python -m tfkit.tb``: local TensorBoard logs, kept, trimmed, joined and drawn, now that tensorboard.dev is gone.

.. code-block:: shell

    python -m tfkit.tb export runs/x/logs --out scalars.csv --tags 'loss|accuracy' --steps 81:100
    python -m tfkit.tb rewrite runs/x/logs --out kept/ --steps 81:100        # a logdir of just those steps
    python -m tfkit.tb merge session1/logs session2/logs --out merged/       # --offset auto|N
    python -m tfkit.tb plot runs/x/logs runs/y/logs --out curves.png

They work on logs from tfkit and from any TF2, Keras or tensorboardX writer. Tables come from tbparse, which reads
both classic scalars and TF2's tensor scalars (``tf.summary.scalar`` writes tensors). ``rewrite`` and ``merge`` stream
every event through tensorboard's own ``EventFileLoader`` and ``RecordWriter`` one at a time, so they keep wall
times, run subfolders and every other kind of event (histograms, images, text) of the steps they keep, and a large
log is never held in memory. Step ranges ``A:B`` include both ends; ``A:`` and ``:B`` are open.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfkit.cli import run as run_cli
from tfkit.errors import UserError

EVENTS_GLOB = "events.out.tfevents.*"
Steps = tuple[float, float]
ALL_STEPS: Steps = (-math.inf, math.inf)

# Dashboard panels: a title and the tags it draws (a regex searched in the tag). Tags no panel claims go under
# "metrics", so Keras' epoch_accuracy or a custom metric is drawn too.
PANELS = (
    ("loss", r"(?:^|_)loss$"),
    ("metrics", None),
    ("learning rate", r"learning_rate|(?:^|_)lr$"),
    ("throughput", r"examples_per_second|steps_per_second|step_time"),
    ("memory", r"rss|memory|_mb$"),
)
# Left off the dashboard because their scale would flatten a panel's other curves; `export` still has them.
HIDDEN = r"^(?:loss_scale|step_time_ms)$"


def parse_steps(text: str | None) -> Steps:
    """Parses ``A:B`` (both included), ``A:`` or ``:B``; None means every step.

    Raises:
        UserError: The text is not such a range.
    """
    if not text:
        return ALL_STEPS
    match = re.fullmatch(r"\s*(-?\d+)?\s*:\s*(-?\d+)?\s*", text)
    if not match:
        raise UserError(f"--steps received {text!r}; expected a range A:B (both included), A: or :B, e.g. 81:100.")
    low = float(match.group(1)) if match.group(1) else -math.inf
    high = float(match.group(2)) if match.group(2) else math.inf
    return low, high


def event_files(logdir: str | os.PathLike[str]) -> list[Path]:
    """The event files under ``logdir``, in every run subfolder, in the order TensorBoard reads them.

    Raises:
        UserError: The folder is missing or holds no event file.
    """
    root = Path(logdir)
    if not root.is_dir():
        raise UserError(f"log folder '{root}' does not exist; expected a TensorBoard logdir.")
    files = sorted(path for path in root.rglob(EVENTS_GLOB) if not path.name.startswith("."))
    if not files:
        raise UserError(f"log folder '{root}' holds no {EVENTS_GLOB} file; expected a TensorBoard logdir.")
    return files


def scalars(logdir: str | os.PathLike[str], *, tags: str | None = None, steps: Steps = ALL_STEPS) -> Any:
    """Every scalar under ``logdir`` as a pandas DataFrame with columns run, tag, step, value, wall_time.

    ``run`` is the subfolder the events came from (``.`` for the logdir itself), as TensorBoard names runs.
    """
    import pandas as pd
    from tbparse import SummaryReader

    event_files(logdir)  # a clear error for a missing or empty folder
    reader = SummaryReader(str(logdir), pivot=False, extra_columns={"wall_time", "dir_name"})
    frames = [frame for frame in (reader.scalars, reader.tensors) if len(frame)]
    if not frames:
        return pd.DataFrame(columns=["run", "tag", "step", "value", "wall_time"])
    table = pd.concat(frames, ignore_index=True)
    table = table[table["value"].map(_is_scalar)]  # tensors that are not scalars (e.g. text) are not curves
    table = table.assign(run=table["dir_name"].replace("", "."), value=table["value"].astype(float))
    table = table[["run", "tag", "step", "value", "wall_time"]]
    if tags:
        table = table[table["tag"].str.contains(tags, regex=True)]
    table = table[(table["step"] >= steps[0]) & (table["step"] <= steps[1])]
    return table.sort_values(["run", "tag", "step", "wall_time"], kind="stable").reset_index(drop=True)


def export(
    logdir: str | os.PathLike[str], out: str | os.PathLike[str], *, tags: str | None = None, steps: Steps = ALL_STEPS
) -> int:
    """Writes the selected scalars to ``out`` (``.csv``, ``.json`` or ``.parquet``); returns the row count."""
    table = scalars(logdir, tags=tags, steps=steps)
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix == ".csv":
        table.to_csv(target, index=False)
    elif target.suffix == ".json":
        table.to_json(target, orient="records", indent=1)
    elif target.suffix == ".parquet":
        try:
            table.to_parquet(target, index=False)
        except ImportError:
            raise UserError(
                "writing .parquet needs pyarrow: pip install pyarrow, or export to .csv or .json."
            ) from None
    else:
        raise UserError(f"--out received '{target}'; expected a .csv, .json or .parquet file.")
    return len(table)


def rewrite(
    logdir: str | os.PathLike[str], out: str | os.PathLike[str], *, tags: str | None = None, steps: Steps = ALL_STEPS
) -> int:
    """Re-exports the selected events into a new logdir; returns how many events were written.

    Run subfolders and file names are kept, every event keeps its wall time, and summaries of every kind
    (scalars, histograms, images, text) are kept when their step is in range and their tag matches.
    """
    written = 0
    for source, target in _mirror(logdir, out):
        with _EventWriter(target) as writer:
            for event in _events(source):
                kept = _select(event, tags=tags, steps=steps)
                if kept is not None:
                    writer.write(kept)
                    written += 1
    return written


def merge(runs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *, offset: str = "auto") -> list[int]:
    """Joins several logdirs (the sessions of a resumed run, or several runs) into one; returns the offsets used.

    With ``auto``, a session whose steps start again at or below where the previous one ended is shifted to
    continue after it; a session that already continues is left alone. With a number N, session ``i`` is shifted
    by ``i * N``.
    """
    if not runs:
        raise UserError("merge received no run; expected one or more logdirs.")
    if offset != "auto" and not re.fullmatch(r"\d+", offset):
        raise UserError(f"--offset received {offset!r}; expected auto or a whole number of steps.")
    offsets: list[int] = []
    previous_end = -math.inf
    for index, run in enumerate(runs):
        files = event_files(run)
        if offset == "auto":
            start = min((_first_step(path) for path in files), default=0)
            shift = int(previous_end) if start <= previous_end else 0
        else:
            shift = index * int(offset)
        offsets.append(shift)
        end = previous_end
        for source, target in _mirror(run, out):
            with _EventWriter(target) as writer:
                for event in _events(source):
                    if event.HasField("summary"):
                        event.step += shift
                        end = max(end, event.step)
                    writer.write(event)
        previous_end = end
    return offsets


def plot(logdirs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str]) -> list[tuple[int, int, int, int]]:
    """Draws a dashboard PNG: one panel each for loss, metrics, learning rate, throughput and memory, runs overlaid.

    Returns:
        Each panel's box in the PNG, as (left, top, right, bottom) pixels, in ``PANELS`` order.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tables = [(Path(logdir), scalars(logdir)) for logdir in logdirs]
    tables = [(logdir, table[~table["tag"].str.contains(HIDDEN)]) for logdir, table in tables]
    common = Path(os.path.commonpath([logdir.resolve() for logdir, _ in tables])) if len(tables) > 1 else None
    claimed = "|".join(f"(?:{pattern})" for _, pattern in PANELS if pattern)
    figure, axes = plt.subplots(len(PANELS), 1, figsize=(10, 3 * len(PANELS)), dpi=100, squeeze=False)
    for axis, (title, pattern) in zip(axes[:, 0], PANELS, strict=True):
        drawn = 0
        for logdir, table in tables:
            selected = (
                table[table["tag"].str.contains(pattern)] if pattern else table[~table["tag"].str.contains(claimed)]
            )
            for (run, tag), curve in selected.groupby(["run", "tag"], sort=True):
                where = logdir.resolve().relative_to(common) / run if common else Path(run)
                label = f"{where}: {tag}"
                axis.plot(
                    curve["step"], curve["value"], label=label, linewidth=1.2, marker="." if len(curve) < 30 else None
                )
                drawn += 1
        axis.set_title(title)
        axis.set_xlabel("step")
        if drawn:
            axis.legend(fontsize="small", loc="best")
            axis.grid(alpha=0.3)
        else:
            axis.text(0.5, 0.5, "no data", ha="center", va="center", transform=axis.transAxes, color="grey")
    figure.tight_layout()
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target)
    height = figure.bbox.height
    boxes = []
    for axis in axes[:, 0]:
        box = axis.get_window_extent()
        boxes.append((int(box.x0), int(height - box.y1), int(box.x1), int(height - box.y0)))
    plt.close(figure)
    return boxes


def _is_scalar(value: Any) -> bool:
    if isinstance(value, (str, bytes)):
        return False
    array = np.asarray(value)
    return array.size == 1 and array.dtype.kind in "biuf"


def _mirror(logdir: str | os.PathLike[str], out: str | os.PathLike[str]) -> Iterator[tuple[Path, Path]]:
    root = Path(logdir)
    for source in event_files(root):
        target = Path(out) / source.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        yield source, target


def _events(path: Path) -> Iterator[Any]:
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    yield from EventFileLoader(str(path)).Load()


def _first_step(path: Path) -> float:
    for event in _events(path):
        if event.HasField("summary"):
            return float(event.step)
    return math.inf


def _select(event: Any, *, tags: str | None, steps: Steps) -> Any:
    if not event.HasField("summary"):
        return event  # the file version and other bookkeeping events travel as they are
    if not steps[0] <= event.step <= steps[1]:
        return None
    if tags:
        kept = [value for value in event.summary.value if re.search(tags, value.tag)]
        if not kept:
            return None
        del event.summary.value[:]
        event.summary.value.extend(kept)
    return event


class _EventWriter:
    """Writes events to one file through tensorboard's RecordWriter, under a temporary name until complete."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.temporary = path.with_name(f".{path.name}.tmp")

    def __enter__(self) -> _EventWriter:
        from tensorboard.summary.writer.record_writer import RecordWriter

        self.handle = open(self.temporary, "wb")  # closed by __exit__, through the RecordWriter
        self.writer = RecordWriter(self.handle)
        return self

    def write(self, event: Any) -> None:
        self.writer.write(event.SerializeToString())

    def __exit__(self, *exc: object) -> None:
        self.writer.close()
        if exc[0] is None:
            if self.path.exists():  # merge: a second session's file of the same name continues it
                with open(self.path, "ab") as existing, open(self.temporary, "rb") as new:
                    existing.write(new.read())
                self.temporary.unlink()
            else:
                os.replace(self.temporary, self.path)
        else:
            self.temporary.unlink(missing_ok=True)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line and exit 2, like every tfkit command
        raise UserError(f"{message}. See python -m tfkit.tb --help.")


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit code."""
    parser = _Parser(prog="python -m tfkit.tb", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("export", "scalars to CSV, JSON or Parquet"), ("rewrite", "a trimmed copy of a logdir")):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("logdir")
        command.add_argument("--out", required=True)
        command.add_argument("--tags", help="keep tags matching this regex")
        command.add_argument("--steps", help="keep steps A:B (both included)")
    joined = commands.add_parser("merge", help="join sessions or runs into one logdir")
    joined.add_argument("runs", nargs="+")
    joined.add_argument("--out", required=True)
    joined.add_argument("--offset", default="auto", help="auto, or a whole number of steps per run")
    drawn = commands.add_parser("plot", help="a dashboard PNG")
    drawn.add_argument("logdirs", nargs="+")
    drawn.add_argument("--out", required=True)
    args = parser.parse_args(list(argv) if argv is not None else sys.argv[1:])
    if args.command == "export":
        count = export(args.logdir, args.out, tags=args.tags, steps=parse_steps(args.steps))
        print(f"tfkit: exported {count} scalar rows to {args.out}")
    elif args.command == "rewrite":
        count = rewrite(args.logdir, args.out, tags=args.tags, steps=parse_steps(args.steps))
        print(f"tfkit: wrote {count} events to {args.out}")
    elif args.command == "merge":
        offsets = merge(args.runs, args.out, offset=args.offset)
        print(f"tfkit: merged {len(args.runs)} run(s) into {args.out} with step offsets {offsets}")
    else:
        plot(args.logdirs, args.out)
        print(f"tfkit: drew {args.out}")
    return 0


if __name__ == "__main__":
    run_cli(lambda: main(None))
