"""``python -m tfkit.predict WORKDIR... --data GLOB --out submission.csv``: a trained run's predictions, as a file.

Each run's best checkpoint (or ``--checkpoint last``) is restored on the strategy training chose, and the split is
read with the run's own preprocessing (decoding, the resize to ``data.image_size``; normalisation is the model's
own), every record once, in the order of the files, padded to whole batches. The label is not needed.

What is written (``--as``):

- ``label``: the id feature (``--id``, default ``id``) and the predicted class, by name when the training schema
  has class names;
- ``probs``: the id and one column of probabilities per class;
- ``raw``: the model's outputs as they are (regression values, masks), to a ``.npy`` file, in record order.

Several WORKDIRs (folds, seeds) are averaged, as probabilities for ``label`` and ``probs``; ``--tta flip``
averages each image with its left-right mirror. Column names are options (``--id_column``, ``--columns``), or
``--like sample_submission.csv`` takes the header and the order of the ids from a competition's sample file.
An existing ``--out`` is kept unless ``--force``; the file is written under a temporary name and renamed.

From Python: ``tfkit.predict.run(["runs/a", "runs/b"], data="test/*.tfrec", out="submission.csv")``.
"""

from __future__ import annotations

import sys

from tfkit import stopping

if __name__ == "__main__":
    # First of all: a Ctrl-C or SIGTERM from here on ends the command at the next batch with nothing written. The
    # command's own imports (numpy among them) take tenths of a second, TensorFlow's seconds.
    stopping.catch_signals()

from tfkit import cli, predict_command

if __name__ == "__main__":
    # Before TensorFlow's import: bad flags, an existing output or a folder without a run are refused at once.
    cli.refuse_early(lambda: predict_command.check(__doc__, sys.argv[1:]))
    cli.require_tensorflow()

from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfkit import config as config_lib
from tfkit import data, loop, restore, submission
from tfkit.errors import UserError
from tfkit.records import Feature, Schema

OUTPUTS = predict_command.OUTPUTS


def run(
    workdirs: Sequence[str | Path] | str | Path,
    *,
    data: str,
    out: str | Path,
    output: str = "label",
    id_feature: str | None = None,
    id_column: str | None = None,
    columns: Sequence[str] | None = None,
    like: str | Path | None = None,
    tta: str | None = None,
    images: str | Path | None = None,
    checkpoint: str = "best",
    batch_size: int | None = None,
    cpu_replicas: int | None = None,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Predicts a split with one or more runs (averaged) and writes the file; see the module's doc.

    Args:
        workdirs: One run folder, or several whose predictions are averaged.
        data: The split: a folder of shards with a schema, or a glob of them.
        out: The file to write: a CSV for ``label`` and ``probs``, a ``.npy`` for ``raw``.
        output: ``label``, ``probs`` or ``raw``.
        id_feature: The feature holding each record's id (CSV outputs); by default the run's ``data.id``.
        id_column: The id column's name; by default ``id_feature``.
        columns: The prediction columns' names: one for ``label`` (default ``label``), one per class for ``probs``
            (default the class names, or ``class_0``...).
        like: A sample submission whose header and id order to follow.
        tta: None, or ``flip`` to average each image with its mirror.
        images: The image folder of a CSV ``data`` (a test CSV's images are often apart from the training ones);
            by default the run's ``data.images``.
        checkpoint: ``best`` or ``last``.
        batch_size: The global batch; the first run's by default.
        cpu_replicas: Mirror over this many logical CPUs instead of the run's own strategy choice.
        force: Replace an existing ``out``.
        progress: Show a progress bar.

    Returns:
        The path written.

    Raises:
        UserError: Bad input (see the messages); nothing is written then.
    """
    roots = [Path(workdirs)] if isinstance(workdirs, (str, Path)) else [Path(root) for root in workdirs]
    target = Path(out)
    predict_command.check_options(roots, target=target, output=output, tta=tta, force=force, images=images)
    like_path = Path(like) if like is not None else None
    header, like_ids = submission.read_like(like_path) if like_path is not None else (None, None)
    predict_command.require_first_run(roots[0])

    loaded = config_lib.load(roots[0] / "config.yaml")
    first = restore.with_images(loaded, images)
    id_feature = id_feature or first.data.id
    split = restore.read_split(data, first, labeled=False)
    stopping.check("reading the split")
    split_read_with = first.data
    schema = split[0]
    if output != "raw":
        _check_id(schema, id_feature, source=data)
    shape = list(schema.features[first.data.features].shape)
    if tta == "flip" and len(shape) != 3:
        raise UserError(
            f"--tta flip received feature '{first.data.features}' of shape {shape}; expected images "
            "[height, width, channels]. Leave out --tta."
        )

    selected = None
    averaged: np.ndarray | None = None
    names: tuple[str, ...] | None = None
    for root in roots:
        restored = restore.load(
            root,
            which=checkpoint,
            cpu_replicas=cpu_replicas,
            selected=selected,
            config=loaded if root == roots[0] else None,
        )
        selected = restored.selected
        stopping.check(f"restoring '{root}'")
        read_with = restore.with_images(restored.config, images)
        if read_with.data != split_read_with:  # another preprocessing (image size): the schema follows it
            split = restore.read_split(data, read_with, labeled=False)
            split_read_with = read_with.data
        values = _predict(
            restored, source=data, split=split, batch_size=batch_size, flip=tta == "flip", progress=progress
        )
        values = _activate(values, restored.config.task) if output != "raw" else values
        values = values.mean(axis=1)  # the views (the mirror with --tta flip)
        if averaged is not None and averaged.shape != values.shape:
            raise UserError(
                f"'{root}' predicts shape {list(values.shape[1:])}, '{roots[0]}' {list(averaged.shape[1:])}; "
                "expected runs of one task to average. Predict them separately."
            )
        averaged = values if averaged is None else averaged + values
        if output != "raw":  # reading the training schema for class names costs a check of its first records
            names = names or restore.class_names(restored.config, workdir=restored.root)
    assert averaged is not None  # at least one run: checked above
    averaged /= len(roots)
    stopping.check("predicting")

    if output == "raw":
        stopping.mark_written()
        submission.write_npy(target, averaged)
        return target
    ids = _read_ids(data, schema, id_feature)
    if output == "label":
        predicted = _labels(averaged, first.task, names=names)
        header = header or [id_column or id_feature, *(columns or ["label"])]
        table: list[list[object]] = [[value] for value in predicted]
    else:
        flat = averaged.reshape(len(averaged), -1)
        default = list(names) if names and len(names) == flat.shape[1] else [f"class_{i}" for i in range(flat.shape[1])]
        header = header or [id_column or id_feature, *(columns or default)]
        table = [[f"{value:.6g}" for value in row] for row in flat]
    if len(header) - 1 != len(table[0]):
        raise UserError(
            f"the header {header} has {len(header) - 1} prediction column(s); the predictions have {len(table[0])}. "
            "Check --columns, --like and --as."
        )
    order = np.arange(len(ids))
    if like_path is not None and like_ids is not None:
        order = submission.order_by(ids, like_ids, like=like_path)
    stopping.mark_written()
    submission.write_csv(target, header, [[ids[index], *table[index]] for index in order])
    return target


def _check_id(schema: Schema, id_feature: str, *, source: str) -> None:
    feature = schema.features.get(id_feature)
    if feature is None:
        raise UserError(
            f"--id received '{id_feature}', which is not a feature of '{source}'; expected one of "
            f"{', '.join(sorted(schema.features))}. Pass --id NAME."
        )
    if feature.encoding not in ("string", "int64") or feature.shape != ():
        raise UserError(
            f"--id received '{id_feature}', a {feature.encoding} feature of shape {list(feature.shape)}; expected one "
            "string or integer per record."
        )


def _predict(
    restored: restore.RestoredRun,
    *,
    source: str,
    split: tuple[Schema, config_lib.DataConfig],
    batch_size: int | None,
    flip: bool,
    progress: bool,
) -> np.ndarray:
    """The outputs of one run for every record, in file order: ``[records, views, ...]``.

    ``split`` is the schema and data section of ``restore.read_split`` for this run's config.
    """
    schema, section = split
    restore.check_input(restored, schema, section, source=source)
    strategy = restored.selected.strategy
    per_replica = restored.per_replica_batch_size(batch_size)
    dataset = strategy.distribute_datasets_from_function(
        data.dataset_fn(
            source,
            schema,
            section,
            per_replica_batch_size=per_replica,
            training=False,
            seed=restored.config.seed,
            epoch=0,
            labeled=False,  # predictions need no label: a test split may lack it, and reading it costs a check
        )
    )
    steps = data.eval_steps(
        schema, per_replica_batch_size=per_replica, pipelines=restored.pipelines, replicas=restored.selected.replicas
    )
    predict = loop.make_predict_function(strategy=strategy, model=restored.model, flip=flip)
    bar = keras.utils.Progbar(steps, unit_name="step") if progress else None
    per_call = max(1, restored.config.train.steps_per_execution)
    iterator = iter(dataset)
    alone = restored.selected.name != "multi_worker"  # one worker leaving mid-way would leave its peers waiting
    outputs, weights = [], []
    for done in range(0, steps, per_call):
        call = min(per_call, steps - done)
        call_outputs, call_weights = predict(iterator, tf.constant(call))
        outputs.append(call_outputs.numpy())
        weights.append(call_weights.numpy())
        if bar is not None:
            bar.update(done + call)
        if alone:  # a signal (from the command line only) ends the command here, with nothing written
            stopping.check("predicting")
    kept = np.concatenate(outputs)[np.concatenate(weights) > 0]  # padding has weight 0 and comes after the records
    if len(kept) != schema.records:
        raise UserError(
            f"'{source}' gave {len(kept)} predictions for the schema's {schema.records} records; expected one per "
            "record. Check the schema's counts (python -m tfkit.records verify)."
        )
    return kept


def _activate(values: np.ndarray, task: config_lib.TaskConfig) -> np.ndarray:
    """Logits to probabilities (softmax for classes, sigmoid for binary outputs); other outputs as they are."""
    if not task.from_logits:
        return values
    if task.loss == "sparse_categorical_crossentropy":
        shifted = values - values.max(axis=-1, keepdims=True)
        exponentials = np.exp(shifted)
        return exponentials / exponentials.sum(axis=-1, keepdims=True)
    if task.loss == "binary_crossentropy":
        return 1.0 / (1.0 + np.exp(-values))
    return values


def _labels(probabilities: np.ndarray, task: config_lib.TaskConfig, *, names: tuple[str, ...] | None) -> list[object]:
    if task.loss == "sparse_categorical_crossentropy":
        indices = probabilities.reshape(len(probabilities), -1).argmax(axis=1)
    elif task.loss == "binary_crossentropy" and probabilities.reshape(len(probabilities), -1).shape[1] == 1:
        indices = (probabilities.reshape(-1) > 0.5).astype(np.int64)
    else:
        raise UserError(
            f"--as label received a {task.loss} model with outputs of shape {list(probabilities.shape[1:])}; "
            "expected a classifier. Use --as raw --out FILE.npy for regression values and masks."
        )
    if names and len(names) > int(indices.max(initial=0)):
        return [names[index] for index in indices]
    return [int(index) for index in indices]


def _read_ids(source: str, schema: Schema, id_feature: str) -> list[str]:
    """Every record's id, in file order (the order predictions come in), as text."""
    feature: Feature = schema.features[id_feature]
    spec = {id_feature: data.parse_spec(feature)}
    records = tf.data.TFRecordDataset(schema.files(source), compression_type=schema.compression or "")
    ids: list[str] = []
    for batch in records.batch(4096).map(lambda serialized: tf.io.parse_example(serialized, spec)[id_feature]):
        values = batch.numpy()
        ids.extend(value.decode() if isinstance(value, bytes) else str(value) for value in values)
    return ids


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit code."""
    args = predict_command.parser(__doc__).parse_args(list(argv) if argv is not None else sys.argv[1:])
    written = run(
        args.workdirs,
        data=args.data,
        out=args.out,
        output=args.output,
        id_feature=args.id_feature,
        id_column=args.id_column,
        columns=args.columns.split(",") if args.columns else None,
        like=args.like,
        tta=args.tta,
        images=args.images,
        checkpoint=args.checkpoint,
        batch_size=args.batch_size,
        cpu_replicas=args.cpu_replicas,
        force=args.force,
    )
    print(f"tfkit: wrote {written}")
    return 0


if __name__ == "__main__":
    cli.run(main)
