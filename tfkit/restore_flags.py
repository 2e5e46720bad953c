"""What every command that restores a run (evaluate, predict) takes and requires, read without TensorFlow.

The flags are defined once here, and the run folder is checked here, so ``tfkit.evaluate`` and ``tfkit.predict``
refuse a mistyped flag or a folder without a run before they import TensorFlow (seconds), with the same line
``tfkit.restore`` gives when called from Python.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tfkit import cli
from tfkit.errors import UserError


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Adds the restoring commands' flags: --checkpoint, --images, --batch_size, --cpu_replicas, --force."""
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best", help="which checkpoint to use")
    parser.add_argument("--images", help="the image folder of a CSV --data (default: the run's data.images)")
    parser.add_argument("--batch_size", type=cli.positive_int, help="global batch (default: the run's)")
    parser.add_argument("--cpu_replicas", type=cli.positive_int, help="mirror over N logical CPUs")
    parser.add_argument("--force", action="store_true", help="replace an existing --out")


def require_run(workdir: str | os.PathLike[str]) -> Path:
    """The run folder, once it is known to hold a run's ``config.yaml``.

    Raises:
        UserError: The folder holds no tfkit run.
    """
    root = Path(workdir)
    if not (root / "config.yaml").is_file():
        raise UserError(
            f"'{root}' holds no tfkit run; expected a workdir of python -m tfkit.train (with config.yaml and "
            "checkpoints/). Check the path."
        )
    return root


def check_images(images: str | os.PathLike[str] | None) -> None:
    """Refuses an ``--images`` that is not a folder.

    Raises:
        UserError: Naming it.
    """
    if images is not None and not Path(images).is_dir():
        raise UserError(
            f"--images received '{images}', which is not a folder; expected the folder of the CSV's images."
        )
