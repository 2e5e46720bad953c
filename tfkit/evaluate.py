"""``python -m tfkit.evaluate WORKDIR --data GLOB``: a trained run's loss and metrics on a split.

The run's best checkpoint (or ``--checkpoint last``) is restored on the strategy training chose, the split is read
with the run's own preprocessing, and every record counts once, whatever the number of replicas. The metrics are
printed and written as JSON beside the run (``WORKDIR.metrics.json``), never inside it unless ``--out`` says so;
an existing file is kept unless ``--force``. On several workers (``TF_CONFIG``) every worker runs the command;
only the chief writes the file and prints.

From Python: ``tfkit.evaluate.run("runs/digits", data="tfrecords/digits/eval")`` returns the same dictionary.
"""

from __future__ import annotations

import sys

from tfkit import stopping

if __name__ == "__main__":
    # First of all: a Ctrl-C or SIGTERM from here on ends the command at the next batch with nothing written. The
    # command's own imports (numpy among them) take tenths of a second, TensorFlow's seconds.
    stopping.catch_signals()

from tfkit import cli, evaluate_command

if __name__ == "__main__":
    # Before TensorFlow's import: bad flags, an existing output or a folder without a run are refused at once.
    cli.refuse_early(lambda: evaluate_command.check(__doc__, sys.argv[1:]))
    cli.require_tensorflow()

import dataclasses
import json
import os
from collections.abc import Sequence
from typing import Any

import keras

from tfkit import atomic, losses, metric_builder, restore, restore_flags
from tfkit.evaluation import Evaluator


def run(
    workdir: str | os.PathLike[str],
    *,
    data: str,
    out: str | os.PathLike[str] | None = None,
    checkpoint: str = "best",
    batch_size: int | None = None,
    cpu_replicas: int | None = None,
    images: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Evaluates a run's model on a split, writes the metrics file, and returns what it holds.

    Args:
        workdir: The run folder of ``python -m tfkit.train``.
        data: The split: a folder of shards with a schema, or a glob of them.
        out: The JSON file to write; by default ``WORKDIR.metrics.json`` beside the run folder.
        checkpoint: ``best`` or ``last``.
        batch_size: The global batch; the run's by default. The metrics do not depend on it.
        cpu_replicas: Mirror over this many logical CPUs instead of the run's own strategy choice.
        images: The image folder of a CSV ``data``; by default the run's ``data.images``.
        force: Replace an existing ``out``.

    Returns:
        ``{"metrics": {...}, "records": N, "checkpoint": PATH, "data": DATA, "replicas": R, "out": PATH}``; ``out``
        is None on a worker that is not the chief, which writes nothing.

    Raises:
        UserError: A missing run or split, a split without the run's label, or an existing ``out`` without ``force``.
    """
    target = evaluate_command.metrics_path(workdir, out, force=force)
    restore_flags.check_images(images)
    restored = restore.load(workdir, which=checkpoint, cpu_replicas=cpu_replicas)
    stopping.check("restoring the model")
    config = restore.with_images(restored.config, images)
    schema, section = restore.read_split(data, config, labeled=True)
    restore.check_input(restored, schema, section, source=str(data))
    stopping.check("reading the split")
    task = config.task
    with restored.selected.strategy.scope():
        metrics = metric_builder.make_metrics(
            task.metrics,
            loss=task.loss,
            from_logits=task.from_logits,
            num_classes=restored.num_classes,
            data_range=task.data_range,
        )
        loss_metric = keras.metrics.Mean(name="loss")
    evaluator = Evaluator(
        dataclasses.replace(config, data=section),
        strategy=restored.selected.strategy,
        model=restored.model,
        loss_fn=losses.per_example_loss(task.loss, from_logits=task.from_logits),
        loss_metric=loss_metric,
        metrics=metrics,
        folder=data,
        schema=schema,
        pipelines=restored.pipelines,
    )
    # A signal ends the command after the call under way; not on several workers, where one leaving would leave its
    # peers waiting in the next call's all-reduce.
    alone = restored.selected.name != "multi_worker"
    values = evaluator(
        per_replica_batch_size=restored.per_replica_batch_size(batch_size),
        between_calls=(lambda: stopping.check("evaluating")) if alone else None,
    )
    result = {
        "metrics": values,
        "records": schema.records,
        "checkpoint": restored.checkpoint,
        "data": str(data),
        "replicas": restored.selected.replicas,
    }
    if not restored.selected.is_chief:  # the chief writes the one file; the metrics are the same on every worker
        return {**result, "out": None}
    stopping.mark_written()
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(target, json.dumps(result, indent=2) + "\n")
    return {**result, "out": str(target)}


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit code."""
    args = evaluate_command.parser(__doc__).parse_args(list(argv) if argv is not None else sys.argv[1:])
    result = run(
        args.workdir,
        data=args.data,
        out=args.out,
        checkpoint=args.checkpoint,
        batch_size=args.batch_size,
        cpu_replicas=args.cpu_replicas,
        images=args.images,
        force=args.force,
    )
    if result["out"] is None:
        return 0  # a worker that is not the chief: the chief reports
    shown = " ".join(f"{name} {value:.6g}" for name, value in result["metrics"].items())
    print(f"tfkit: {result['records']} records of {args.data}: {shown}")
    print(f"tfkit: wrote {result['out']}")
    return 0


if __name__ == "__main__":
    cli.run(main)
