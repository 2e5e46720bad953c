"""``rewrite``: a copy of a logdir with only a step window and some tags, every kept event as its writer wrote it."""

from __future__ import annotations

import os
from pathlib import Path

from tfkit.tb import events, files, output


def rewrite(
    logdir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    tags: str | None = None,
    steps: events.Steps = events.ALL_STEPS,
    force: bool = False,
) -> int:
    """Copies the events of a step window (and tags) into a new logdir; returns how many records were written.

    Run folders and file names are kept. A summary is kept when its step is in ``steps`` and its tag matches
    ``tags``; run-level events (file version, graph, meta graph, hparams, Keras' model graph) are kept whatever the
    window. Kept records are copied byte for byte: the same encoding and wall times. Where a kept tag's plugin
    metadata sat only on a dropped event, it is copied onto the tag's first kept value.

    Args:
        logdir: The TensorBoard logdir to read.
        out: A new (or empty) folder; with ``force`` an existing one is replaced once the copy is complete.
        tags: A regex searched in each tag; None keeps every tag.
        steps: The window, both ends included (``events.parse_steps``).
        force: Replace an existing ``out``.

    Raises:
        UserError: Bad input or an output that would overlap the input; nothing is written.
    """
    root = Path(logdir)
    pattern = events.parse_tags(tags)
    sources = files.event_files(root)  # a clear error for a missing or empty folder, before anything is written
    keep = events.window(pattern, steps)
    written = 0
    selectors: dict[str, events.RunSelector] = {}
    with output.staged_folder(Path(out), inputs=[root], force=force) as folder:
        for source in sources:
            selector = selectors.setdefault(files.run_name(root, source), events.RunSelector())
            with folder.create(source.relative_to(root)) as target:
                for data in files.read_records(source):
                    kept = selector.select(data, events.parse(data), keep)
                    if kept is not None:
                        target.write(files.frame(kept))
                        written += 1
    return written
