"""The flags of ``python -m tfkit.export`` and the checks of the run and the output they name, without TensorFlow.

``tfkit.export`` checks the command line here before it imports TensorFlow, so a mistyped flag, an output it
cannot write or would overwrite, or a folder without a run is one line and exit 2 in a fraction of a second, not
after seconds of start-up. ``tfkit.export.export`` makes the same checks, with the same lines, from Python.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from tfkit import cli
from tfkit import config as config_lib
from tfkit.errors import UserError

ACCEPTED = ".keras, .tar.gz, .tgz, or a name without an extension for a SavedModel folder"

# tfkit.checkpoint.RUN_FILE, which a light module cannot import (tfkit.checkpoint imports TensorFlow); a test
# keeps the two equal.
RUN_FILE = "run.json"


def parser(description: str | None) -> cli.Parser:
    """The export command's flags; ``description`` is the command's module docstring."""
    parser = cli.Parser("python -m tfkit.export", description=description)
    parser.add_argument("workdir", help="the run folder of python -m tfkit.train")
    parser.add_argument("--out", required=True, help="output: a .keras file, a .tar.gz archive, or a SavedModel folder")
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best", help="which checkpoint to export")
    parser.add_argument("--force", action="store_true", help="replace an existing output, once the new one is written")
    return parser


def check_run(workdir: str | os.PathLike[str]) -> Path:
    """The run folder, once it is known to hold a config and the identity its checkpoints were written with.

    Raises:
        UserError: The folder holds no tfkit run with checkpoints.
    """
    root = Path(workdir)
    if not (root / "config.yaml").is_file() or not (root / "checkpoints" / RUN_FILE).is_file():
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


def check(description: str | None, argv: Sequence[str]) -> None:
    """Parses the command line and checks the run and the output, only to refuse bad input early.

    ``--help`` exits 0 here. The checks are those ``tfkit.export.export`` makes before it restores the model, in
    the same order.

    Raises:
        UserError: A bad flag, a folder without a run, an output export cannot write or would replace without
            ``--force``, or a run config that no longer loads.
    """
    args = parser(description).parse_args(list(argv))
    root = check_run(args.workdir)
    check_output(args.workdir, args.out, force=args.force)
    config_lib.load(root / "config.yaml")
