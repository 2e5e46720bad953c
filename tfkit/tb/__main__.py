"""The command line of ``python -m tfkit.tb``: export, rewrite, merge and plot."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tfkit import cli, tb
from tfkit.tb import dashboard, events, scalar_table, sessions, window


def build_parser() -> cli.Parser:
    """The parser of ``python -m tfkit.tb`` and its four commands."""
    parser = cli.Parser(prog="python -m tfkit.tb", description=(tb.__doc__ or "").strip())
    commands = parser.commands()
    force_help = "replace an existing --out (it is replaced only once the new one is complete)"
    for name, help_text in (
        ("export", "scalars to CSV, JSON or Parquet, at full precision"),
        ("rewrite", "a copy of a logdir with only a step window and some tags, every kept event as written"),
    ):
        command = commands.add_parser(name, help=help_text, description=help_text)
        command.add_argument("logdir")
        command.add_argument("--out", required=True)
        command.add_argument("--tags", help="keep tags matching this regex (searched anywhere in the tag)")
        command.add_argument("--steps", help="keep steps A:B (both included), A: or :B")
        command.add_argument("--force", action="store_true", help=force_help)
    joined = commands.add_parser(
        "merge", help="join the sessions of a run (earliest first) into one logdir", description=sessions.__doc__
    )
    joined.add_argument("sessions", nargs="+")
    joined.add_argument("--out", required=True)
    joined.add_argument("--offset", default="auto", help="auto (align each tag family), or N steps per session")
    joined.add_argument("--force", action="store_true", help=force_help)
    drawn = commands.add_parser("plot", help="a dashboard PNG: loss, metrics, learning rate, throughput, memory")
    drawn.add_argument("logdirs", nargs="+")
    drawn.add_argument("--out", required=True)
    drawn.add_argument("--panel", action="append", metavar="NAME=REGEX", help="add a panel, or change one's tags")
    drawn.add_argument("--force", action="store_true", help=force_help)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; returns the exit code. Bad input raises ``UserError`` (one line, exit 2 via ``cli.run``)."""
    args = build_parser().parse_args(list(argv) if argv is not None else sys.argv[1:])
    if args.command == "export":
        count = scalar_table.export(
            args.logdir, args.out, tags=args.tags, steps=events.parse_steps(args.steps), force=args.force
        )
        print(f"tfkit: exported {count} scalar rows to {args.out}")
    elif args.command == "rewrite":
        count = window.rewrite(
            args.logdir, args.out, tags=args.tags, steps=events.parse_steps(args.steps), force=args.force
        )
        print(f"tfkit: wrote {count} records to {args.out}")
    elif args.command == "merge":
        reports = sessions.merge(args.sessions, args.out, offset=args.offset, force=args.force)
        for report in reports:
            print(f"tfkit: {report.describe()}")
        print(f"tfkit: merged {len(reports)} session(s) into {args.out}")
    else:
        panels = dashboard.plot(args.logdirs, args.out, panels=args.panel, force=args.force)
        print(f"tfkit: drew {len(panels)} panels to {args.out}")
    return 0


if __name__ == "__main__":
    cli.run(main)
