"""``python -m tfkit.train``: train a Keras model from a config on whatever tf.distribute strategy fits.

.. code-block:: shell

    python -m tfkit.train                                   # the embedded default: digits CNN on CPU
    python -m tfkit.train --config configs/x.yaml --set train.epochs=5
    python -m tfkit.train --tpu                             # TPU VM; --tpu_address grpc://... for TPU nodes
    python -m tfkit.train --cpu_replicas 8                  # rehearse a TPU v5e-8 config on a laptop

From a notebook, ``tfkit.train.run(config_or_path, workdir=None, overrides=(...))`` does the same and returns the
summary instead of exiting.

A run, in order: load and check the config; choose the strategy; read the training schema and plan the batches
(tfkit.plan); open the workdir; build the model, optimizer and metrics under the strategy's scope (tfkit.parts);
settle the batch split (tfkit.batch, with the finder for ``auto``); then the trainer (tfkit.trainer) restores or
starts and trains, epoch by epoch, until the end or a clean stop.
"""

from __future__ import annotations

import sys

from tfkit import cli, stopping, train_command

if __name__ == "__main__":
    # First, before TensorFlow's import (seconds): a Ctrl-C or SIGTERM from here on ends the command cleanly, and
    # bad flags or config keys are refused at once, so a typo costs no TensorFlow start-up.
    stopping.catch_signals()
    cli.refuse_early(lambda: train_command.check(__doc__, sys.argv[1:]))
    cli.require_tensorflow()

import os  # after the signal handlers, on purpose
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tfkit import config as config_lib
from tfkit import data, disk, session
from tfkit.errors import Stopped
from tfkit.report import Reporter
from tfkit.workdir import Workdir

ConfigSource = train_command.ConfigSource


def run(
    config_or_path: ConfigSource = None,
    workdir: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] = (),
    *,
    restart: bool = False,
    tpu_resolver: Any = None,
) -> dict[str, Any]:
    """Trains as ``python -m tfkit.train`` does, and returns the summary.

    Args:
        config_or_path: A YAML path, a bundled config's name (``digits``), a ``Config``, a nested dict of keys, or
            None for the embedded default.
        workdir: The run folder; defaults to ``runs/<config name>``.
        overrides: ``a.b=value`` strings, as with ``--set``.
        restart: Start over in the workdir; the old run is renamed to ``<workdir>.old-<time>``, never deleted.
        tpu_resolver: A cluster resolver for the TPU branch, instead of ``TPUClusterResolver``.

    Running again in the same workdir resumes from the newest checkpoint; a completed run is not trained again.

    Returns:
        The summary also written to ``summary.json``: ``status`` is ``completed``, or ``stopped`` with a
        ``stop_reason`` (a signal, the time limit, host memory, device memory, a non-finite loss) after a
        checkpoint, for a run that the same call resumes.

    Raises:
        UserError: Bad input: a config key, missing data, no TPU.
    """
    started = time.monotonic()
    # Validate, then act: everything that can refuse the command (config, data schema, strategy, workdir, user
    # model, the resume's identity, free disk) is checked before the first file is written, so a refused command
    # leaves every file as it found it. Signals are checked at each boundary (exit 130 before any write).
    config = train_command.load_config(config_or_path, overrides)
    stopping.check("loading the config")
    run_root = Path(workdir or Path("runs") / config.name)
    selected, train_schema, provisional = session.prepare(config, tpu_resolver=tpu_resolver, workdir=run_root)
    eval_schema = None
    if config.data.eval:
        classes = train_schema.features[config.data.label].num_classes
        eval_schema = session.read_split(config, "eval", workdir=run_root, classes=classes)
    stopping.check("reading the data's schema")
    fresh = restart and selected.is_chief and run_root.is_dir() and any(run_root.iterdir())
    work = Workdir(run_root, is_chief=selected.is_chief, task_id=selected.task_id, create=False, fresh=fresh)
    work.check_writable()
    if fresh:
        Workdir(run_root.parent, create=False).check_writable()  # the old run is renamed there
    trainer = session.trainer(
        config,
        selected=selected,
        provisional=provisional,
        train_schema=train_schema,
        eval_schema=eval_schema,
        report=Reporter(work, started=started),
    )
    if not fresh:
        trainer.state.check_resumable()
    stopping.check("building the model")
    needed = trainer.state.expected_bytes() + (1 << 20)
    if disk.free_bytes(work.root) < needed:
        raise Stopped(
            f"{disk.free_bytes(work.root)} bytes free for '{work.root}', a checkpoint needs about {needed}; nothing "
            "was written. Free disk space and run the same command again.",
            reason="disk_full",
        )
    if fresh:
        kept = run_root.with_name(f"{run_root.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        stopping.mark_written()
        run_root.rename(kept)
        print(f"tfkit: starting over; the previous run is kept in {kept}")
    work.create()
    work.write_config(config)
    for schema in filter(None, (train_schema, eval_schema)):
        data.keep_inferred(schema, workdir=work.root)
    return trainer.fit(work.read_summary())


def find_batch(
    config_or_path: ConfigSource = None, overrides: Sequence[str] = (), *, tpu_resolver: Any = None
) -> dict[str, Any]:
    """Runs the batch finder for a config as ``train.per_replica_batch_size: auto`` would, without training.

    The trials run in a temporary run folder, so nothing of a real run is touched. ``python -m tfkit.doctor
    --config`` reports this.

    Returns:
        ``per_replica_batch_size``, ``grad_accum_steps``, ``global_batch_size`` and the finder's ``reason`` and
        ``trials``.
    """
    base = train_command.load_config(config_or_path, overrides)
    values = config_lib.to_dict(base)
    values["train"]["per_replica_batch_size"] = "auto"
    if base.train.per_replica_batch_size is not None:
        values["train"]["global_batch_size"] = None  # a fixed per-replica batch: find one instead
    config = config_lib.load(None, values=values)
    selected, train_schema, provisional = session.prepare(config, tpu_resolver=tpu_resolver)
    built = session.build(config, selected=selected, provisional=provisional, train_schema=train_schema)
    with tempfile.TemporaryDirectory(prefix="tfkit-batch-") as folder:
        report = Reporter(Workdir(folder, is_chief=selected.is_chief, task_id=selected.task_id), started=0.0)
        split = session.choose_split(
            config, selected=selected, built=built, provisional=provisional, train_schema=train_schema, report=report
        )
    finder = split.finder or {}
    return {
        "per_replica_batch_size": split.per_replica_batch_size,
        "grad_accum_steps": split.grad_accum_steps,
        "global_batch_size": split.global_batch_size,
        "reason": finder.get("reason"),
        "trials": finder.get("trials"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit code."""
    args = train_command.parser(__doc__).parse_args(list(argv) if argv is not None else sys.argv[1:])
    summary = run(args.config, workdir=args.workdir, overrides=train_command.overrides(args), restart=args.restart)
    if summary["status"] == "stopped":
        saved = f"checkpoint saved in {summary['workdir']}. Run the same command to resume."
        if summary["stop_reason"] == "disk_full":  # no new checkpoint: say where the run stands and what to do
            saved = summary.get("stop_detail", "the disk is full; free space and run the same command to resume.")
        raise Stopped(
            f"{summary['stop_reason']} at step {summary['steps']}; {saved}",
            reason=summary["stop_reason"],
            summary=summary,
        )
    return 0


if __name__ == "__main__":
    cli.run(main)
