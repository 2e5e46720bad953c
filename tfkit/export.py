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

from tfkit import cli, stopping

if __name__ == "__main__":
    stopping.catch_signals()  # before TensorFlow's import: a Ctrl-C from here on ends the command cleanly
    cli.require_tensorflow()

import json
import os
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf

from tfkit import atomic, checksums, cli, models, precision
from tfkit import checkpoint as checkpoint_lib
from tfkit import config as config_lib
from tfkit.errors import UserError

ACCEPTED = ".keras, .tar.gz, .tgz, or a name without an extension for a SavedModel folder"

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
    root = _check_run(workdir)
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


def _check_run(workdir: str | os.PathLike[str]) -> Path:
    root = Path(workdir)
    if not (root / "config.yaml").is_file() or not (root / "checkpoints" / checkpoint_lib.RUN_FILE).is_file():
        raise UserError(
            f"'{root}' holds no tfkit run with checkpoints; expected a workdir of python -m tfkit.train "
            "(with config.yaml and checkpoints/run.json)."
        )
    return root


def check_output(workdir: str | os.PathLike[str], out: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Refuses an output that would change what the user has, before anything is read or written.

    Returns:
        The output path.

    Raises:
        UserError: ``out`` has an extension export cannot write, is the run folder or inside it, exists without
            ``force``, or lies under a file.
    """
    target = Path(out)
    name = target.name
    known = name.endswith((".keras", ".tar.gz", ".tgz"))
    if not known and Path(name).suffix:
        raise UserError(
            f"--out received '{out}', whose extension {Path(name).suffix} export cannot write; expected {ACCEPTED}."
        )
    run_root = Path(workdir).resolve()
    resolved = target.resolve()
    if resolved == run_root or run_root in resolved.parents:
        raise UserError(
            f"--out '{out}' is the run folder or inside it; expected a path outside '{workdir}', which export reads."
        )
    if (target.exists() or target.is_symlink()) and not force:
        raise UserError(f"--out '{out}' exists; expected a new path, or --force to replace it once the new is written.")
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"--out '{out}': '{parent}' is a file; expected a folder to write into.")
    if not os.access(parent, os.W_OK):
        raise UserError(f"--out '{out}': '{parent}' is read-only; expected a folder export can write to.")
    return target


def export(
    workdir: str | os.PathLike[str], out: str | os.PathLike[str], *, which: str = "best", force: bool = False
) -> Path:
    """Writes a run's model to ``out``; the format follows its name (see the module's doc).

    The output is written under a temporary name beside ``out`` and renamed: a failed export leaves nothing, and
    ``force`` replaces an existing output only once the new one is complete.

    Returns:
        The path written.
    """
    _check_run(workdir)
    target = check_output(workdir, out, force=force)
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
    parser = cli.Parser("python -m tfkit.export", description=__doc__)
    parser.add_argument("workdir", help="the run folder of python -m tfkit.train")
    parser.add_argument("--out", required=True, help="output: a .keras file, a .tar.gz archive, or a SavedModel folder")
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best", help="which checkpoint to export")
    parser.add_argument("--force", action="store_true", help="replace an existing output, once the new one is written")
    args = parser.parse_args(list(argv) if argv is not None else sys.argv[1:])
    written = export(args.workdir, args.out, which=args.checkpoint, force=args.force)
    print(f"tfkit: exported the {args.checkpoint} checkpoint of {args.workdir} to {written}")
    return 0


if __name__ == "__main__":
    cli.run(main)
