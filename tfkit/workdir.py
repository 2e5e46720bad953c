"""The run's folder: what a person and the later tools rely on finding there.

.. code-block:: text

    runs/<name>/
      config.yaml      the resolved config
      history.csv      one row per epoch
      summary.json     status, strategy, batches, precision, steps, final metrics, wall time
      logs/train/      TensorBoard: loss, metrics, learning rate, examples/s, step time, memory
      logs/eval/       TensorBoard: eval loss and metrics
      batch.json       the batch split the finder chose or an OOM recovery changed to; a resume uses it
      checkpoints/     tf.train.Checkpoint files

Under MultiWorkerMirroredStrategy only the chief writes here; every other worker writes its own copy under
``workers/worker-<id>/`` (checkpoints must be written by every worker) and logs nothing to TensorBoard.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import tensorflow as tf

from tfkit import atomic, disk, stopping
from tfkit import config as config_lib
from tfkit.errors import UserError


class Workdir:
    """One task's view of the run folder.

    Args:
        path: The run folder.
        is_chief: Whether this task writes the shared files.
        task_id: This task's worker index, used for a non-chief's own folder.
        create: Make the folder now. ``python -m tfkit.train`` passes False, checks (``check_writable``) and
            validates everything else, and only then calls ``create``: a refused command writes nothing. Until
            then ``write_batch`` keeps the split and ``create`` writes it.
        fresh: Read nothing of what the folder holds (a ``--restart`` that moves it aside once all is checked).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        is_chief: bool = True,
        task_id: int = 0,
        create: bool = True,
        fresh: bool = False,
    ) -> None:
        self.run_root = Path(path)
        self.is_chief = is_chief
        self.fresh = fresh
        self.root = self.run_root if is_chief else self.run_root / "workers" / f"worker-{task_id}"
        self._created = False
        self._pending_batch: dict[str, Any] | None = None
        if create:
            self.create()
        self.checkpoints = self.root / "checkpoints"
        self.history_path = self.root / "history.csv"
        self.summary_path = self.root / "summary.json"
        self.batch_path = self.root / "batch.json"
        self.train_writer = tf.summary.create_noop_writer()
        self.eval_writer = tf.summary.create_noop_writer()
        self._logs_open = False

    def check_writable(self) -> None:
        """Refuses a workdir that cannot be written: a file where a folder should be, or a read-only folder.

        Raises:
            UserError: The folder, or the nearest existing folder above it, is a file or is not writable.
        """
        existing = self.root
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise UserError(
                f"workdir '{self.run_root}': '{existing}' is a file; expected a folder or a path that does not exist "
                "yet. Use another --workdir."
            )
        if not os.access(existing, os.W_OK):
            raise UserError(
                f"workdir '{self.run_root}': '{existing}' is read-only; expected a folder tfkit can write to. Use "
                "another --workdir."
            )

    def create(self) -> None:
        """Makes the folder; from now on the command changes files (a signal then stops it with exit 75)."""
        stopping.mark_written()
        self.root.mkdir(parents=True, exist_ok=True)
        self._created = True
        if self._pending_batch is not None:
            _write_json(self.batch_path, self._pending_batch)

    def open_logs(self) -> None:
        """Opens the TensorBoard writers (the chief's; other workers keep no-op writers). Call after ``rewind``."""
        if self.is_chief:
            self.train_writer = tf.summary.create_file_writer(str(self.root / "logs" / "train"))
            self.eval_writer = tf.summary.create_file_writer(str(self.root / "logs" / "eval"))
            self._logs_open = True

    def write_config(self, config: config_lib.Config) -> None:
        """Writes the resolved config as ``config.yaml``, atomically."""
        with atomic.replacing(self.root / "config.yaml") as temporary:
            config_lib.dump(config, temporary)

    def append_history(self, row: dict[str, Any]) -> None:
        """Appends one epoch's row to ``history.csv``, writing the header first when the file is new."""
        new = not self.history_path.exists()
        with self.history_path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    def rewind(self, step: int) -> None:
        """Drops what the logs hold beyond ``step``, the step a resumed run continues from.

        A session can log steps after its last checkpoint and then die. The resumed run does those steps again, so
        they are removed first: ``history.csv`` rows and TensorBoard events past ``step`` go, and the logs continue
        with no gap and no duplicate. Each file is rewritten under a temporary name and renamed, so a kill during a
        rewind loses nothing that the checkpoint does not cover. Open TensorBoard writers (a recovery in the middle of
        a session) are closed first and opened again after, on new files: a writer left open would go on writing to
        the file the rewrite replaced.
        """
        reopen = self._logs_open
        if reopen:
            self.close()
        if self.history_path.exists():
            with self.history_path.open(newline="") as handle:
                rows = list(csv.DictReader(handle))
            kept = [row for row in rows if int(row["step"]) <= step]
            if len(kept) != len(rows):
                with atomic.writing(self.history_path, newline="") as handle:
                    writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
                    writer.writeheader()
                    writer.writerows(kept)
        for path in sorted((self.root / "logs").glob("*/events.out.tfevents.*")):
            # Streamed, never held whole: one read to see whether anything is past the step, a second to rewrite.
            if all(event.step <= step for event in _events(path)):
                continue
            with atomic.replacing(path) as temporary, tf.io.TFRecordWriter(str(temporary)) as writer:
                for event in _events(path):
                    if event.step <= step:
                        writer.write(event.SerializeToString())
        if reopen:
            self.open_logs()

    def write_summary(self, summary: dict[str, Any]) -> None:
        """Writes ``summary.json`` atomically, so a reader never sees half a file.

        On a full disk the previous summary stays and the run's stop (exit 75) is reported all the same.
        """
        try:
            _write_json(self.summary_path, summary)
        except OSError as error:
            if not disk.is_full(error):
                raise

    def read_summary(self) -> dict[str, Any] | None:
        """The summary of an earlier session, or None."""
        return None if self.fresh else _read_json(self.summary_path)

    def write_batch(self, batch: dict[str, Any]) -> None:
        """Writes ``batch.json``: the split in force when it did not come from the config as written."""
        if not self._created:
            self._pending_batch = batch
            return
        _write_json(self.batch_path, batch)

    def read_batch(self) -> dict[str, Any] | None:
        """The stored batch split, or None."""
        if self._pending_batch is not None:
            return self._pending_batch
        return None if self.fresh else _read_json(self.batch_path)

    def scalars(self, writer: Any, step: int, values: dict[str, float]) -> None:
        """Writes scalars to one TensorBoard writer at ``step``."""
        with writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(name, value)

    def close(self) -> None:
        """Flushes and closes the TensorBoard writers; on a full disk the events not yet written are dropped."""
        for writer in (self.train_writer, self.eval_writer):
            try:
                writer.flush()
                writer.close()
            except (OSError, tf.errors.OpError) as error:
                if not disk.is_full(error):
                    raise
        self._logs_open = False


def _write_json(path: Path, data: dict[str, Any]) -> None:
    atomic.write_text(path, json.dumps(data, indent=2) + "\n")


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    return json.loads(path.read_text())


def _events(path: Path) -> Iterator[Any]:
    for raw in tf.data.TFRecordDataset(str(path)):
        yield tf.compat.v1.Event.FromString(raw.numpy())
