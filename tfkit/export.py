"""``python -m tfkit.export WORKDIR --out PATH``: the trained model out of a run, as a file to keep or download.

The model is rebuilt from the workdir's own ``config.yaml`` and ``checkpoints/run.json`` and restored from the best
checkpoint (``--checkpoint best``, the default) or the newest (``last``). The output format follows ``--out``:

- ``model.keras``: a Keras file (``keras.models.load_model``);
- ``model.tar.gz``: the notebook "download my model" case: ``model.keras`` with the run's config, history, summary
  and TensorBoard logs, all under relative paths;
- anything else, a folder: a TensorFlow SavedModel for serving (``tf.saved_model.load(PATH).serve``).
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf

from tfkit import checkpoint as checkpoint_lib
from tfkit import cli, models, precision
from tfkit import config as config_lib
from tfkit.errors import UserError

_ARCHIVED = ("config.yaml", "history.csv", "summary.json", "logs")


def restore_model(workdir: str | os.PathLike[str], *, which: str = "best") -> tuple[keras.Model, str]:
    """Rebuilds a run's model and restores its weights.

    Args:
        workdir: The run folder.
        which: ``best`` (by the run's monitored value; the newest when no best was kept) or ``last``.

    Returns:
        The model and the checkpoint it was restored from.

    Raises:
        UserError: The folder holds no tfkit run or no checkpoint.
    """
    root = Path(workdir)
    identity_path = root / "checkpoints" / checkpoint_lib.RUN_FILE
    if not (root / "config.yaml").is_file() or not identity_path.is_file():
        raise UserError(
            f"'{root}' holds no tfkit run with checkpoints; expected a workdir of python -m tfkit.train "
            "(with config.yaml and checkpoints/run.json)."
        )
    if which not in ("best", "last"):
        raise UserError(f"--checkpoint received {which!r}; expected best or last.")
    config = config_lib.load(root / "config.yaml")
    identity = json.loads(identity_path.read_text())
    path = None
    if which == "best":
        path = tf.train.latest_checkpoint(str(root / "checkpoints" / "best"))
    path = path or tf.train.latest_checkpoint(str(root / "checkpoints"))
    if path is None:
        raise UserError(f"'{root}/checkpoints' holds no checkpoint yet; train first.")
    summary_path = root / "summary.json"
    policy = json.loads(summary_path.read_text()).get("precision", "float32") if summary_path.exists() else "float32"
    with precision.policy(policy):
        model = models.build(
            config.model, input_shape=tuple(identity["input_shape"]), num_classes=int(identity["num_classes"])
        )
    # The optimizer and metrics in the file are not needed to predict; every model variable must be restored.
    tf.train.Checkpoint(model=model).restore(path).expect_partial().assert_existing_objects_matched()
    return model, path


def export(workdir: str | os.PathLike[str], out: str | os.PathLike[str], *, which: str = "best") -> Path:
    """Writes a run's model to ``out``; the format follows its name (see the module's doc).

    Returns:
        The path written.
    """
    model, _ = restore_model(workdir, which=which)
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    name = target.name
    if name.endswith(".keras"):
        model.save(target)
    elif name.endswith(".tar.gz") or name.endswith(".tgz"):
        root = Path(workdir)
        with tempfile.TemporaryDirectory() as scratch:
            keras_file = Path(scratch) / "model.keras"
            model.save(keras_file)
            with tarfile.open(target, "w:gz") as archive:
                archive.add(keras_file, arcname="model.keras")
                for item in _ARCHIVED:
                    if (root / item).exists():
                        archive.add(root / item, arcname=item)  # relative names only
    else:
        model.export(str(target), verbose=False)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit code."""
    parser = cli.Parser("python -m tfkit.export", description=__doc__)
    parser.add_argument("workdir", help="the run folder of python -m tfkit.train")
    parser.add_argument("--out", required=True, help="output: a .keras file, a .tar.gz archive, or a SavedModel folder")
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best", help="which checkpoint to export")
    args = parser.parse_args(list(argv) if argv is not None else sys.argv[1:])
    written = export(args.workdir, args.out, which=args.checkpoint)
    print(f"tfkit: exported the {args.checkpoint} checkpoint of {args.workdir} to {written}")
    return 0


if __name__ == "__main__":
    cli.run(main)
