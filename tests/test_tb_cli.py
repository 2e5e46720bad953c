"""python -m tfkit.tb as a user runs it: one-line errors, no TensorFlow, and nothing readable left by a kill."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from conftest import python_script, stderr_lines, tfkit_process
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboardX import SummaryWriter

from tfkit.tb import files


@pytest.fixture
def logdir(tmp_path):
    writer = SummaryWriter(str(tmp_path / "logs"))
    for step in range(120):
        writer.add_scalar("loss", 1.0 / (step + 1), step)
    writer.close()
    return tmp_path / "logs"


def snapshot(folder):
    return {path: path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["export", "LOGS", "--out", "a.csv", "--tags", "("], "--tags received '('"),
        (["rewrite", "LOGS", "--out", "kept", "--steps", "100:81"], "end comes before its start"),
        (["rewrite", "LOGS", "--out", "LOGS"], "overlaps the input"),
        (["rewrite", "LOGS", "--out", "LOGS/kept", "--force"], "overlaps the input"),
        (["merge", "LOGS", "LOGS", "--out", "merged", "--offset", "soon"], "--offset received 'soon'"),
        (["plot", "LOGS", "--out", "p.png", "--panel", "broken"], "--panel received 'broken'"),
        (["export", "LOGS", "--out", "a.txt"], "expected a .csv, .json or .parquet"),
        (["export", "missing", "--out", "a.csv"], "log folder 'missing' does not exist"),
        (["rewrite", "LOGS"], "--out"),
    ],
)
def test_bad_options_are_one_line_and_exit_2_with_the_input_untouched(args, expected, logdir, tmp_path):
    before = snapshot(tmp_path)
    result = tfkit_process(
        ["tfkit.tb", *(str(logdir) if arg == "LOGS" else arg.replace("LOGS", str(logdir)) for arg in args)],
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert len(stderr_lines(result)) == 1 and expected in result.stderr
    assert snapshot(tmp_path) == before


def test_no_command_imports_tensorflow(logdir, tmp_path):
    logs = repr(str(logdir))
    script = f"""
import runpy, sys
for argv in (["export", {logs}, "--out", "a.csv"], ["rewrite", {logs}, "--out", "kept"],
             ["merge", {logs}, {logs}, "--out", "merged"], ["plot", {logs}, "--out", "p.png"]):
    sys.argv = ["tfkit.tb", *argv]
    try:
        runpy.run_module("tfkit.tb", run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        assert stop.code == 0, (argv, stop.code)
assert "tensorflow" not in sys.modules, "tensorflow was imported"
print("no tensorflow")
"""
    result = python_script(script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no tensorflow" in result.stdout and (tmp_path / "merged").is_dir() and (tmp_path / "p.png").is_file()
    assert python_script("import tfkit.tb, sys; assert 'tensorflow' not in sys.modules", cwd=tmp_path).returncode == 0


def test_a_killed_rewrite_leaves_nothing_tensorboard_reads(tmp_path):
    event = event_pb2.Event(
        wall_time=1.7e9,
        step=5,
        summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="loss", simple_value=1)]),
    )
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "events.out.tfevents.1.big").write_bytes(files.frame(event.SerializeToString()) * 600_000)
    process = subprocess.Popen(
        [sys.executable, "-m", "tfkit.tb", "rewrite", str(tmp_path / "logs"), "--out", str(tmp_path / "kept")],
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 120
    while not any(path.stat().st_size for path in tmp_path.glob(".kept.*/.tfkit-partial-*")):
        assert process.poll() is None and time.monotonic() < deadline, "the rewrite ended before it could be killed"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    left = [path for path in tmp_path.rglob("*") if path.is_file() and path.parent != tmp_path / "logs"]
    assert left and not [path for path in left if "tfevents" in path.name]
    assert not (tmp_path / "kept").exists()
