"""The command line every tfkit command shares: one parser style, one error line, one set of exit codes.

Every ``python -m tfkit.X`` builds its flags with ``Parser`` (argparse, so ``--help`` works everywhere and exits 0)
and runs its ``main`` through ``run``, which turns tfkit's exceptions into the documented exit codes:

- 0: done; 1: a check that found damage (``records verify``, ``wheels verify``);
- 2: bad input (``UserError``): one line on stderr naming the problem and the fix, no traceback;
- 75: a resumable stop (``Stopped``): the run left a checkpoint; run the same command again. A signal (SIGINT,
  SIGTERM) after the command started writing ends here too;
- 130: a signal before the command wrote anything: nothing changed;
- 1 with a traceback: anything else is a bug in tfkit, and the last line says so.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

from tfkit import stopping
from tfkit.errors import EXIT_RESUMABLE, EXIT_USER_ERROR, Stopped, UserError

EXIT_BUG = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a Ctrl-C
BUG_LINE = (
    "tfkit: bug: the traceback above is a bug in tfkit, not a problem with your input; please report it to the "
    "tfkit maintainers (the issue tracker of the repository you installed tfkit from) with the command you ran."
)


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


def positive_int(text: str) -> int:
    """An argparse ``type``: a whole number of at least 1 (``--cpu_replicas 2``, ``--batch_size 64``).

    Raises:
        argparse.ArgumentTypeError: Anything else; the parser reports it as one line naming the flag.
    """
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"received {text!r}; expected a whole number of at least 1")
    return int(text)


def refuse_early(check: Callable[[], None]) -> None:
    """Runs a command's light checks (flags, config) before its heavy imports; bad input exits 2 here at once.

    ``--help`` prints and exits 0 from here too. Anything else the check raises is left to ``run``, which reports
    it after the imports as it always would.
    """
    try:
        check()
    except UserError as error:
        _exit(EXIT_USER_ERROR, f"tfkit: error: {error}")
    except (SystemExit, KeyboardInterrupt, stopping.Interrupted):
        raise
    except Exception:  # not this check's to report: main() meets it again, after the imports, and reports it whole
        return


def run(main: Callable[[], int | None]) -> NoReturn:
    """Runs a command's ``main`` and turns every way it can end into one line and an exit code.

    Signals are caught from here on (``stopping.catch_signals``; commands that import TensorFlow call it earlier,
    before that import). A signal that reaches the end of ``main`` unhandled still ends the command with 75, or 130
    when nothing was written: never 0.

    Args:
        main: The command. It returns an exit code, or None for 0.
    """
    stopping.catch_signals()
    try:
        code = main()
        stopping.check("finishing")
    except UserError as error:
        _exit(EXIT_USER_ERROR, f"tfkit: error: {error}")
    except Stopped as stop:
        _exit(EXIT_RESUMABLE, f"tfkit: stopped: {stop}")
    except stopping.Interrupted as interrupted:
        _exit(EXIT_INTERRUPTED, f"tfkit: interrupted: {interrupted}")
    except KeyboardInterrupt:  # a Ctrl-C where tfkit's handler could not be set (not the main thread)
        if stopping.written():
            _exit(EXIT_RESUMABLE, "tfkit: stopped: interrupted; run the same command to go on.")
        _exit(EXIT_INTERRUPTED, "tfkit: interrupted: nothing was written.")
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        _exit(EXIT_BUG, BUG_LINE)
    sys.exit(code or 0)


def _exit(code: int, line: str) -> NoReturn:
    print(line, file=sys.stderr)
    sys.exit(code)


def require_tensorflow() -> None:
    """Imports TensorFlow for a command that needs it; without it, one line saying how to install it, and exit 2.

    TensorFlow is not a hard requirement of the package, so that installing tfkit never replaces a machine's own
    build (a TPU VM's, a CUDA image's): the commands that train, export or predict say what to install instead.
    """
    try:
        import tensorflow  # noqa: F401 - the import is the check
    except ImportError as error:
        print(
            f"tfkit: error: tfkit needs TensorFlow, which is not installed ({error}): pip install 'tfkit[cpu]' "
            "(or [gpu], or [tpu]), or install your machine's own TensorFlow first.",
            file=sys.stderr,
        )
        sys.exit(EXIT_USER_ERROR)
