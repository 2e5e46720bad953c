"""``python -m tfkit.export WORKDIR --out PATH``: the trained model out of a run, as a file to keep or download.

The model is rebuilt from the workdir's own ``config.yaml`` and ``checkpoints/run.json`` and restored from the best
checkpoint (``--checkpoint best``, the default) or the newest (``last``). The output format follows ``--out``:

- ``model.keras``: a Keras file (``keras.models.load_model``);
- ``model.tar.gz``: the notebook "download my model" case: ``model.keras`` with the run's config, history, summary
  and TensorBoard logs, all under relative paths;
- a name without an extension: a folder holding a TensorFlow SavedModel for serving
  (``tf.saved_model.load(PATH).serve``).

Any other extension (``.onnx``, ``.h5``) is refused. An existing output is refused unless ``--force``, which replaces
it only once the new one is complete; the output may not be the run folder or lie inside it. A checkpoint whose files
do not match the sha256 written with them is refused.
"""

from __future__ import annotations

import sys

from tfkit import cli, export_command, stopping

if __name__ == "__main__":
    # Before TensorFlow's import (seconds): a Ctrl-C from here on ends the command cleanly, and bad flags, a folder
    # without a run or an output that cannot be written are refused at once.
    stopping.catch_signals()
    cli.refuse_early(lambda: export_command.check(__doc__, sys.argv[1:]))
    cli.require_tensorflow()

import json
import os
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf

from tfkit import atomic, checksums, models, precision
from tfkit import checkpoint as checkpoint_lib
from tfkit import config as config_lib
from tfkit.errors import UserError

check_output = export_command.check_output  # defined beside the flags, so the command checks it without TensorFlow

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
    root = export_command.check_run(workdir)
    identity_path = root / "checkpoints" / checkpoint_lib.RUN_FILE
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
    problem = checksums.problem(path)
    if problem is not None:
        other = "last" if which == "best" else "best"
        raise UserError(
            f"checkpoint '{path}' is damaged: {problem}; expected the files as they were written. Export another "
            f"with --checkpoint {other}, or train again."
        )
    summary_path = root / "summary.json"
    policy = json.loads(summary_path.read_text()).get("precision", "float32") if summary_path.exists() else "float32"
    with precision.policy(policy):
        model = models.build(
            config.model, input_shape=tuple(identity["input_shape"]), num_classes=int(identity["num_classes"])
        )
    # The optimizer and metrics in the file are not needed to predict; every model variable must be restored.
    tf.train.Checkpoint(model=model).restore(path).expect_partial().assert_existing_objects_matched()
    return model, path


def export(
    workdir: str | os.PathLike[str], out: str | os.PathLike[str], *, which: str = "best", force: bool = False
) -> Path:
    """Writes a run's model to ``out``; the format follows its name (see the module's doc).

    The output is written under a temporary name beside ``out`` and renamed: a failed export leaves nothing, and
    ``force`` replaces an existing output only once the new one is complete.

    Returns:
        The path written.
    """
    export_command.check_run(workdir)
    target = export_command.check_output(workdir, out, force=force)
    model, _ = restore_model(workdir, which=which)
    stopping.check("restoring the model")
    stopping.mark_written()
    target.parent.mkdir(parents=True, exist_ok=True)
    name = target.name
    with atomic.replacing(target) as temporary:
        if name.endswith(".keras"):
            # Keras insists on the extension: write it in a scratch folder and move it into place.
            with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tfkit-export-") as scratch:
                keras_file = Path(scratch) / "model.keras"
                model.save(keras_file)
                os.replace(keras_file, temporary)
        elif name.endswith((".tar.gz", ".tgz")):
            root = Path(workdir)
            with tempfile.TemporaryDirectory() as scratch:
                keras_file = Path(scratch) / "model.keras"
                model.save(keras_file)
                with tarfile.open(temporary, "w:gz") as archive:
                    archive.add(keras_file, arcname="model.keras")
                    for item in _ARCHIVED:
                        if (root / item).exists():
                            archive.add(root / item, arcname=item)  # relative names only
        else:
            model.export(str(temporary), verbose=False)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit code."""
    args = export_command.parser(__doc__).parse_args(list(argv) if argv is not None else sys.argv[1:])
    written = export(args.workdir, args.out, which=args.checkpoint, force=args.force)
    print(f"tfkit: exported the {args.checkpoint} checkpoint of {args.workdir} to {written}")
    return 0


if __name__ == "__main__":
    cli.run(main)
