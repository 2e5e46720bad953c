"""The flags of ``python -m tfkit.evaluate`` and the checks of what they name, read without TensorFlow.

``tfkit.evaluate`` checks the command line here before it imports TensorFlow, so a mistyped flag, an existing
metrics file or a folder without a run is one line and exit 2 in a fraction of a second, not after seconds of
start-up. ``tfkit.evaluate.run`` makes the same checks, with the same lines, when called from Python.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from tfkit import cli, export_command, restore_flags
from tfkit import config as config_lib
from tfkit.errors import UserError


def parser(description: str | None) -> cli.Parser:
    """The evaluate command's flags; ``description`` is the command's module docstring."""
    parser = cli.Parser("python -m tfkit.evaluate", description=description)
    parser.add_argument("workdir", help="the run folder of python -m tfkit.train")
    parser.add_argument("--data", required=True, help="the split: a folder of shards with a schema, or a glob")
    parser.add_argument("--out", help="the metrics JSON to write (default: WORKDIR.metrics.json beside the run)")
    restore_flags.add_flags(parser)
    return parser


def metrics_path(
    workdir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, *, force: bool = False
) -> Path:
    """The metrics file to write: ``out``, or ``WORKDIR.metrics.json`` beside the run folder.

    Raises:
        UserError: The file exists and ``force`` is off.
    """
    root = Path(workdir)
    target = Path(out) if out is not None else root.with_name(f"{root.name}.metrics.json")
    if target.exists() and not force:
        raise UserError(f"'{target}' already exists; expected a new file. Pass --force to replace it, or --out.")
    return target


def check(description: str | None, argv: Sequence[str]) -> None:
    """Parses the command line and checks the run it names, only to refuse bad input early (``--help`` exits 0 here).

    The checks are those ``tfkit.evaluate.run`` makes before it restores the model, in the same order (but for
    the choice of a strategy, which needs TensorFlow).

    Raises:
        UserError: A bad flag, an existing metrics file without ``--force``, a folder without a run or without
            checkpoints, or a run config that no longer loads.
    """
    args = parser(description).parse_args(list(argv))
    metrics_path(args.workdir, args.out, force=args.force)
    restore_flags.check_images(args.images)
    root = restore_flags.require_run(args.workdir)
    config_lib.load(root / "config.yaml")
    export_command.check_run(root)
