"""The command line every tfkit command shares: one parser style, one error line, one set of exit codes.

Every ``python -m tfkit.X`` builds its flags with ``Parser`` (argparse, so ``--help`` works everywhere and exits 0)
and runs its ``main`` through ``run``, which turns tfkit's exceptions into the documented exit codes:

- 0: done; 1: a check that found damage (``records verify``, ``wheels verify``);
- 2: bad input (``UserError``): one line on stderr naming the problem and the fix, no traceback;
- 75: a resumable stop (``Stopped``): the run left a checkpoint; run the same command again.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from tfkit.errors import EXIT_RESUMABLE, EXIT_USER_ERROR, Stopped, UserError


class Parser(argparse.ArgumentParser):
    """An ``argparse.ArgumentParser`` whose usage errors are tfkit's one line and exit 2.

    Args:
        prog: The command as a user types it, e.g. ``python -m tfkit.tb``.
        description: What the command does; shown by ``--help``.
    """

    def __init__(self, prog: str, description: str | None = None, **options: Any) -> None:
        options.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(prog=prog, description=description, **options)

    def error(self, message: str) -> NoReturn:
        """Raises the usage error as a ``UserError``, so it is reported like every other bad input."""
        raise UserError(f"{message}; see {self.prog} --help.")

    def commands(self) -> argparse._SubParsersAction:
        """Adds required subcommands (``write``, ``export``, ...) that share this parser's error style."""
        return self.add_subparsers(dest="command", required=True, parser_class=Parser)


def run(main: Callable[[], int | None]) -> NoReturn:
    """Runs a command's ``main`` and turns tfkit's exceptions into one line and an exit code.

    Args:
        main: The command. It returns an exit code, or None for 0.
    """
    try:
        code = main()
    except UserError as error:
        print(f"tfkit: error: {error}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except Stopped as stop:
        print(f"tfkit: stopped: {stop}", file=sys.stderr)
        sys.exit(EXIT_RESUMABLE)
    sys.exit(code or 0)
