"""The flags of ``python -m tfkit.predict`` and the checks of what they name, read without TensorFlow.

``tfkit.predict`` checks the command line here before it imports TensorFlow, so a mistyped flag, an existing
``--out``, a missing ``--like`` file or a folder without a run is one line and exit 2 in a fraction of a second,
not after seconds of start-up. ``tfkit.predict.run`` makes the same checks, with the same lines, from Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tfkit import cli, export_command, restore_flags, submission
from tfkit import config as config_lib
from tfkit.errors import UserError

OUTPUTS = ("label", "probs", "raw")


def parser(description: str | None) -> cli.Parser:
    """The predict command's flags; ``description`` is the command's module docstring."""
    parser = cli.Parser("python -m tfkit.predict", description=description)
    parser.add_argument("workdirs", nargs="+", metavar="WORKDIR", help="run folders; several are averaged")
    parser.add_argument("--data", required=True, help="the split: a folder of shards with a schema, or a glob")
    parser.add_argument("--out", required=True, help="the file to write: submission.csv, or outputs.npy for --as raw")
    parser.add_argument("--as", dest="output", choices=OUTPUTS, default="label", help="what to write")
    parser.add_argument(
        "--id",
        dest="id_feature",
        help="the feature holding each record's id (default: the run's data.id, id unless set)",
    )
    parser.add_argument("--id_column", help="the id column's name (default: the id feature's)")
    parser.add_argument("--columns", help="comma-separated names of the prediction columns")
    parser.add_argument("--like", help="a sample submission CSV: its header and id order are followed")
    parser.add_argument("--tta", choices=["flip"], help="test-time augmentation: average with mirrored images")
    restore_flags.add_flags(parser)
    return parser


def check_options(
    roots: Sequence[Path], *, target: Path, output: str, tta: str | None, force: bool, images: str | Path | None = None
) -> None:
    """Refuses options that contradict each other, and an existing ``target`` without ``force``.

    Raises:
        UserError: No run, an unknown ``output`` or ``tta``, an extension that does not fit ``output``, an
            ``images`` that is no folder, or an existing ``target``.
    """
    restore_flags.check_images(images)
    if not roots:
        raise UserError("received no WORKDIR; expected at least one run folder of python -m tfkit.train.")
    if output not in OUTPUTS:
        raise UserError(f"--as received {output!r}; expected one of {', '.join(OUTPUTS)}.")
    if tta not in (None, "flip"):
        raise UserError(f"--tta received {tta!r}; expected flip.")
    if (output == "raw") != (target.suffix == ".npy"):
        raise UserError(
            f"--out received '{target}' for --as {output}; expected a .npy file for raw outputs and a .csv otherwise."
        )
    submission.refuse_existing(target, force=force)


def require_first_run(root: Path) -> None:
    """Refuses a first WORKDIR that holds no run: its config says how the split is read.

    Raises:
        UserError: ``root`` has no ``config.yaml``.
    """
    if not (root / "config.yaml").is_file():
        raise UserError(f"'{root}' holds no tfkit run; expected a workdir of python -m tfkit.train (config.yaml).")


def check(description: str | None, argv: Sequence[str]) -> None:
    """Parses the command line and checks what it names, only to refuse bad input early (``--help`` exits 0 here).

    The checks are those ``tfkit.predict.run`` makes before it reads the split, in the same order, then those
    ``tfkit.restore.load`` makes of every run before it restores one.

    Raises:
        UserError: A bad flag or option, an existing ``--out`` without ``--force``, a bad ``--like`` file, a folder
            without a run or without checkpoints, or a run config that no longer loads.
    """
    args = parser(description).parse_args(list(argv))
    roots = [Path(workdir) for workdir in args.workdirs]
    check_options(roots, target=Path(args.out), output=args.output, tta=args.tta, force=args.force, images=args.images)
    if args.like is not None:
        submission.read_like(Path(args.like))
    require_first_run(roots[0])
    for root in roots:
        restore_flags.require_run(root)
        config_lib.load(root / "config.yaml")
        export_command.check_run(root)
