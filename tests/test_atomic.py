"""tfkit.atomic: every file tfkit writes appears whole or not at all, and a killed writer's leftovers are mended."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest
from conftest import REPO

from tfkit import atomic

DEAD_PID = 2**22 + 12345  # above Linux's default pid_max: no live process has it


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic.writing(target) as handle:
        handle.write("half of the new")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["summary.json"]


def test_a_text_file_is_written_whole_for_the_csv_module(tmp_path):
    target = tmp_path / "history.csv"
    with atomic.writing(target, newline="") as handle:
        handle.write("a,b\r\n1,2\r\n")
    assert target.read_bytes() == b"a,b\r\n1,2\r\n"


def test_a_temporary_name_never_looks_like_an_event_file_to_tensorboard(tmp_path):
    temporary = atomic.temporary_sibling(tmp_path / "events.out.tfevents.1.host")
    assert temporary.parent == tmp_path and temporary.name.startswith(".")
    assert "tfevents" not in temporary.name


def test_a_folder_replaces_a_folder_only_when_complete(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic.replacing(target) as staging:
        staging.mkdir()
        (staging / "new.txt").write_text("new")
        raise RuntimeError("killed")
    assert [path.name for path in target.iterdir()] == ["old.txt"]
    with atomic.replacing(target) as staging:
        staging.mkdir()
        (staging / "new.txt").write_text("new")
    assert [path.name for path in target.iterdir()] == ["new.txt"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]


def test_a_copy_is_a_hard_link_to_the_same_bytes(tmp_path):
    source, target = tmp_path / "ckpt-4.index", tmp_path / "best" / "ckpt-4.index"
    source.write_bytes(b"\x00index")
    target.parent.mkdir()
    atomic.place_copy(source, target)
    assert target.read_bytes() == b"\x00index"
    assert os.stat(source).st_ino == os.stat(target).st_ino


def test_leftovers_of_a_dead_writer_are_cleared_and_old_data_set_aside_comes_back(tmp_path):
    target = tmp_path / "data"
    aside = tmp_path / f".data.old-{DEAD_PID}-99"
    aside.mkdir()
    (aside / "schema.json").write_text("{}")
    (tmp_path / f".data.tmp-{DEAD_PID}").mkdir()  # the half-written new data
    live = tmp_path / f".data.tmp-{os.getpid()}"
    live.write_text("being written by this process")
    atomic.clear_leftovers(target)
    assert (target / "schema.json").read_text() == "{}"
    assert sorted(path.name for path in tmp_path.iterdir()) == [live.name, "data"]


def test_a_writer_killed_mid_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "submission.csv"
    target.write_text("id,label\n")
    script = (
        "import os, signal, sys\nfrom tfkit import atomic\n"
        "with atomic.writing(sys.argv[1]) as handle:\n"
        "    handle.write('half')\n    handle.flush()\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(target)], cwd=REPO, capture_output=True)
    assert result.returncode == -9
    assert target.read_text() == "id,label\n"
    atomic.clear_leftovers(target)
    assert [path.name for path in tmp_path.iterdir()] == ["submission.csv"]


# Renames that are not a file write: moving a finished file into a folder that is itself still staged, and moving a
# whole run aside for --restart.
RENAMES_ALLOWED = {"tfkit/atomic.py", "tfkit/records/writing.py", "tfkit/tb/output.py", "tfkit/export.py"}


def test_no_module_but_atomic_renames_a_file_into_place():
    offenders = []
    for path in sorted((REPO / "tfkit").rglob("*.py")):
        relative = str(path.relative_to(REPO))
        for node in ast.walk(ast.parse(path.read_text())):
            renames = (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("replace", "rename")
                and ast.unparse(node.func.value) == "os"
            )
            if renames and relative not in RENAMES_ALLOWED:
                offenders.append(f"{relative}:{node.lineno}")
    assert not offenders, f"write through tfkit.atomic instead: {offenders}"
