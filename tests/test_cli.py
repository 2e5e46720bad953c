"""cli.run: every way a command ends is one of the documented exit codes, in a real process."""

from __future__ import annotations

import pytest
from conftest import python_script, stderr_lines

from tfkit import cli

COMMAND = """
import os, signal, sys
from tfkit import cli, stopping
from tfkit.errors import Stopped, UserError

def main():
    {body}

cli.run(main)
"""


def run_main(body: str, tmp_path):
    return python_script(COMMAND.format(body=body), cwd=tmp_path, timeout=60)


@pytest.mark.parametrize(
    ("body", "code", "line"),
    [
        ("return 0", 0, None),
        ("return None", 0, None),
        ("raise UserError('bad input; expected good input.')", 2, "tfkit: error: bad input; expected good input."),
        ("raise Stopped('time_limit at step 8.', reason='time_limit')", 75, "tfkit: stopped: time_limit at step 8."),
        ("stopping.check('loading'); raise KeyboardInterrupt", 130, "tfkit: interrupted: nothing was written."),
        (
            "stopping.mark_written(); raise KeyboardInterrupt",
            75,
            "tfkit: stopped: interrupted; run the same command to go on.",
        ),
    ],
)
def test_each_ending_has_its_exit_code_and_at_most_one_line(tmp_path, body, code, line):
    result = run_main(body, tmp_path)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert stderr_lines(result) == ([line] if line else [])


def test_a_bug_shows_its_traceback_and_says_it_is_a_bug(tmp_path):
    result = run_main("return {}['missing']", tmp_path)
    assert result.returncode == cli.EXIT_BUG
    assert "Traceback" in result.stderr
    assert "KeyError: 'missing'" in result.stderr
    assert stderr_lines(result)[-1] == cli.BUG_LINE


def test_a_signal_before_anything_was_written_exits_130_and_never_0(tmp_path):
    # The signal is recorded, the command ends its phase, and the end of main is a phase boundary too.
    result = run_main("os.kill(os.getpid(), signal.SIGINT); return 0", tmp_path)
    assert result.returncode == cli.EXIT_INTERRUPTED, result.stderr
    assert stderr_lines(result) == ["tfkit: interrupted: SIGINT while finishing; nothing was written."]


def test_a_signal_after_the_command_wrote_exits_75(tmp_path):
    result = run_main(
        "stopping.mark_written(); os.kill(os.getpid(), signal.SIGTERM); stopping.check('writing the config')",
        tmp_path,
    )
    assert result.returncode == 75, result.stderr
    assert stderr_lines(result) == ["tfkit: stopped: SIGTERM while writing the config; run the same command to go on."]


def test_usage_errors_are_one_line_and_help_exits_0(tmp_path):
    parser = "p = cli.Parser('python -m tfkit.x'); p.add_argument('--n', type=int); p.parse_args(sys.argv[1:])"
    script = f"import sys\nfrom tfkit import cli\ndef main():\n    {parser}\ncli.run(main)\n"
    bad = python_script(script.replace("sys.argv[1:]", "['--n', 'x']"), cwd=tmp_path)
    assert bad.returncode == 2
    assert stderr_lines(bad) == ["tfkit: error: argument --n: invalid int value: 'x'; see python -m tfkit.x --help."]
    helped = python_script(script.replace("sys.argv[1:]", "['--help']"), cwd=tmp_path)
    assert helped.returncode == 0
    assert helped.stdout.startswith("usage: python -m tfkit.x")
