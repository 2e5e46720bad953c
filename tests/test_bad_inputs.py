"""The battery of bad inputs (issue 17): each is a real ``python -m tfkit.X`` process, as a user would type it.

For every case: the exit code, a single stderr line with no traceback, the words that line must hold, and every
file that was in the case's folder before is byte-identical after (no new run folder either, where a run was
refused). The cases are a table: add a ``Case`` to ``CASES`` (or, for the records commands, to
tests/test_bad_inputs_records.py, which runs its own table with ``run_cases``).

Each process pays TensorFlow's start-up (5-20 s here), so the processes of a table run a few at a time in one
module-scoped fixture, and the tests only read the outcomes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import DIGITS_CONFIG, FLAT_MODEL, assert_refused, file_hashes, stderr_lines, tfkit_process

import tfkit.train
from tfkit import checksums

pytestmark = pytest.mark.slow

PARALLEL = 4


@dataclass(frozen=True)
class Case:
    """One bad input.

    Attributes:
        name: The test id.
        args: What follows ``python -m``, e.g. ``["tfkit.train", "--set", "x=1"]``; run in the case's own folder.
        says: Words the one stderr line must hold (or, for ``code`` 0, stdout).
        code: The expected exit code.
        files: Files to write into the case's folder first, name -> text.
        run: Copy the trained run into the case's folder as ``run/``.
        prepare: Called with the case's folder after the files are in place, to damage something.
        absent: Paths (relative to the folder) that must not exist after the command.
        known_bug: Why the case fails today, for a command another branch owns (a strict xfail: it is seen when fixed).
    """

    name: str
    args: Sequence[str]
    says: str
    code: int = 2
    files: dict[str, str] = field(default_factory=dict)
    run: bool = False
    prepare: Callable[[Path], None] | None = None
    absent: Sequence[str] = ("runs", "w")
    known_bug: str | None = None


@dataclass
class Outcome:
    """What one case did: its process's result, the hashes before, the folder."""

    result: subprocess.CompletedProcess[str]
    before: dict[str, str]
    folder: Path


def run_cases(cases: Sequence[Case], root: Path, *, trained: Path | None = None) -> dict[str, Outcome]:
    """Runs every case in its own folder under ``root``, ``PARALLEL`` at a time, and returns the outcomes by name."""

    def one(case: Case) -> Outcome:
        folder = root / case.name
        folder.mkdir(parents=True)
        for name, text in case.files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
        if case.run:
            assert trained is not None, case.name
            shutil.copytree(trained, folder / "run")
        if case.prepare is not None:
            case.prepare(folder)
        before = file_hashes(folder)
        return Outcome(tfkit_process(list(case.args), cwd=folder, timeout=600), before, folder)

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        return dict(zip((case.name for case in cases), pool.map(one, cases), strict=True))


def check(case: Case, outcome: Outcome) -> None:
    """Asserts what every case promises."""
    if case.code == 0:
        assert outcome.result.returncode == 0, outcome.result.stderr[-2000:]
        assert case.says in outcome.result.stdout
        assert file_hashes(outcome.folder) == outcome.before
    else:
        line = assert_refused(outcome.result, before=outcome.before, roots=[outcome.folder], code=case.code)
        assert case.says in line, line
    for name in case.absent:
        assert not (outcome.folder / name).exists(), name
    assert not list(outcome.folder.glob("run.old-*")), "a refused --restart moved the old run aside"


# --- damage done to a copy of a trained run --------------------------------------------------------------------------


def flip_bytes(folder: Path) -> None:
    """Flips bytes in the middle of every checkpoint's data file, as a bad disk or a bad copy would."""
    for path in (folder / "run" / "checkpoints").rglob("*.data-*"):
        content = bytearray(path.read_bytes())
        middle = len(content) // 2
        content[middle : middle + 8] = bytes(byte ^ 0xFF for byte in content[middle : middle + 8])
        path.write_bytes(bytes(content))


def exported(folder: Path) -> None:
    (folder / "model.keras").write_text("an earlier export\n")


RAISES = FLAT_MODEL + "\n\ndef broken(*, input_shape, num_classes):\n    raise ValueError('no such layer size')\n"
OTHER_ARGUMENTS = FLAT_MODEL + "\n\ndef positional(shape, classes):\n    return None\n"
NOT_A_MODEL = FLAT_MODEL + "\n\ndef nothing(*, input_shape, num_classes):\n    return 42\n"
WRONG_WIDTH = FLAT_MODEL.replace("Dense(num_classes)", "Dense(num_classes + 3)")
IMPORT_FAILS = "import keras\nraise RuntimeError('this module cannot be imported')\n"
TRAIN = ["tfkit.train", "--workdir", "w"]
RESUME = ["tfkit.train", "--workdir", "run", "--config", "run/config.yaml"]

CASES = [
    # train: flags
    Case("train-unknown-flag", [*TRAIN, "--epochs", "3"], "unrecognized arguments: --epochs 3"),
    Case("train-bad-strategy", [*TRAIN, "--strategy", "fast"], "invalid choice: 'fast'"),
    Case("train-cpu-replicas-0", [*TRAIN, "--cpu_replicas", "0"], "--cpu_replicas: received '0'"),
    Case("train-cpu-replicas-word", [*TRAIN, "--cpu_replicas", "two"], "--cpu_replicas: received 'two'"),
    Case("train-tpu-and-cpu", [*TRAIN, "--tpu", "--strategy", "cpu"], "--tpu and --strategy cpu contradict"),
    Case("train-bad-time-limit", [*TRAIN, "--time_limit", "soon"], "train.time_limit"),
    Case("train-missing-config", [*TRAIN, "--config", "missing.yaml"], "config file 'missing.yaml' does not exist"),
    Case("train-set-without-value", [*TRAIN, "--set", "train.epochs"], "train.epochs"),
    # train: config keys
    Case("config-unknown-key", [*TRAIN, "--set", "train.epoch=3"], "config key 'train.epoch' is unknown"),
    Case("config-wrong-type", [*TRAIN, "--set", "train.epochs=three"], "train.epochs"),
    Case("config-missing-data", [*TRAIN, "--set", "data.train=/nowhere"], "data folder '/nowhere' does not exist"),
    Case("config-unknown-model", [*TRAIN, "--set", "model=nothing_like_it"], "received 'nothing_like_it'"),
    Case(
        "config-duplicate-key",
        [*TRAIN, "--config", "twice.yaml"],
        "twice",
        files={"twice.yaml": "train:\n  epochs: 2\n  epochs: 3\n"},
    ),
    Case(
        "config-not-yaml",
        [*TRAIN, "--config", "broken.yaml"],
        "broken.yaml",
        files={"broken.yaml": "train: [epochs: 2\n"},
    ),
    Case(
        "config-missing-weights",
        [*TRAIN, "--set", "model.weights=missing.weights.h5"],
        "config key 'model.weights'",
    ),
    # train: the user's model
    Case(
        "model-syntax-error",
        [*TRAIN, "--set", "model=user.py:flat"],
        "does not parse: invalid syntax",
        files={"user.py": "def flat(:\n"},
    ),
    Case("model-file-missing", [*TRAIN, "--set", "model=absent.py:flat"], "file 'absent.py' does not exist"),
    Case(
        "model-function-missing",
        [*TRAIN, "--set", "model=user.py:nope"],
        "has no function 'nope'",
        files={"user.py": FLAT_MODEL},
    ),
    Case(
        "model-raises",
        [*TRAIN, "--set", "model=user.py:broken"],
        "raised ValueError while building for input (8, 8, 1) and 10 classes: no such layer size (user.py, line",
        files={"user.py": RAISES},
    ),
    Case(
        "model-other-arguments",
        [*TRAIN, "--set", "model=user.py:positional"],
        "takes (shape, classes); expected a function called as f(*, input_shape, num_classes)",
        files={"user.py": OTHER_ARGUMENTS},
    ),
    Case(
        "model-not-a-model",
        [*TRAIN, "--set", "model=user.py:nothing"],
        "returned int; expected a keras.Model",
        files={"user.py": NOT_A_MODEL},
    ),
    Case(
        "model-wrong-width",
        [*TRAIN, "--set", "model=user.py:flat"],
        "outputs 13 values per example (output shape (None, 13)); expected 10 (num_classes)",
        files={"user.py": WRONG_WIDTH},
    ),
    Case(
        "model-import-raises",
        [*TRAIN, "--set", "model=user.py:flat"],
        "raised RuntimeError: this module cannot be imported (user.py, line 2)",
        files={"user.py": IMPORT_FAILS},
    ),
    Case(
        "model-application-too-small",
        [*TRAIN, "--set", "model=MobileNetV3Small"],
        "keras.applications.MobileNetV3Small cannot be built for input (8, 8, 1)",
    ),
    # train: the workdir
    Case("workdir-is-a-file", ["tfkit.train", "--workdir", "taken"], "is a file", files={"taken": "x\n"}, absent=()),
    Case(
        "workdir-under-a-file",
        ["tfkit.train", "--workdir", "taken/run"],
        "'taken' is a file",
        files={"taken": "x\n"},
        absent=(),
    ),
    # train: resuming a run with something else
    Case(
        "resume-another-model",
        [*RESUME, "--set", "model=mlp"],
        "holds checkpoints of another run (model was 'digits_cnn', now 'mlp')",
        run=True,
    ),
    Case(
        "resume-another-global-batch",
        [*RESUME, "--set", "train.global_batch_size=32"],
        "global_batch_size was 64, now 32",
        run=True,
    ),
    Case(
        "resume-every-checkpoint-damaged",
        RESUME,
        "does not match the sha256 written with it",
        run=True,
        prepare=flip_bytes,
    ),
    Case(
        "restart-with-a-broken-model",
        [*RESUME, "--restart", "--set", "model=user.py:flat"],
        "does not parse",
        files={"user.py": "def flat(:\n"},
        run=True,
    ),
    # export
    Case("export-onnx", ["tfkit.export", "run", "--out", "m.onnx"], "extension .onnx export cannot write", run=True),
    Case("export-h5", ["tfkit.export", "run", "--out", "m.h5"], "extension .h5 export cannot write", run=True),
    Case("export-into-the-run", ["tfkit.export", "run", "--out", "run"], "is the run folder or inside it", run=True),
    Case(
        "export-inside-the-run",
        ["tfkit.export", "run", "--out", "run/model.keras"],
        "is the run folder or inside it",
        run=True,
    ),
    Case(
        "export-existing-output",
        ["tfkit.export", "run", "--out", "model.keras"],
        "exists; expected a new path, or --force",
        run=True,
        prepare=exported,
    ),
    Case(
        "export-under-a-file",
        ["tfkit.export", "run", "--out", "taken/model.keras"],
        "'taken' is a file",
        run=True,
        files={"taken": "x\n"},
    ),
    Case("export-no-run", ["tfkit.export", ".", "--out", "m.keras"], "holds no tfkit run with checkpoints"),
    Case("export-no-out", ["tfkit.export", "run"], "the following arguments are required: --out", run=True),
    Case(
        "export-bad-checkpoint-choice",
        ["tfkit.export", "run", "--out", "m.keras", "--checkpoint", "middle"],
        "invalid choice: 'middle'",
        run=True,
    ),
    Case(
        "export-damaged-checkpoint",
        ["tfkit.export", "run", "--out", "m.keras"],
        "is damaged: ckpt-",
        run=True,
        prepare=flip_bytes,
        absent=("m.keras",),
    ),
    # doctor, and --help everywhere
    Case("doctor-unknown-flag", ["tfkit.doctor", "--bad"], "unrecognized arguments: --bad"),
    Case("doctor-help", ["tfkit.doctor", "--help"], "usage:", code=0),
    Case("train-help", ["tfkit.train", "--help"], "usage:", code=0),
    Case("export-help", ["tfkit.export", "--help"], "usage:", code=0),
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-epoch digits run (global batch 64), copied into each case that needs one."""
    workdir = tmp_path_factory.mktemp("battery") / "run"
    tfkit.train.run(DIGITS_CONFIG, workdir=workdir, overrides=["train.epochs=1"])
    assert list((workdir / "checkpoints").glob(f"*{checksums.SUFFIX}"))
    return workdir


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Runs the cases of the tests that were selected (``-k`` runs a few), all at once."""
    selected = {
        item.callspec.params["case"].name
        for item in request.session.items
        if hasattr(item, "callspec") and isinstance(item.callspec.params.get("case"), Case)
    }
    always = {"train-help", "restart-with-a-broken-model"}  # read by the two tests after the table's
    cases = [case for case in CASES if case.name in selected | always]
    trained = request.getfixturevalue("trained") if any(case.run for case in cases) else None
    return run_cases(cases, tmp_path_factory.mktemp("cases"), trained=trained)


def test_the_battery_has_a_case_for_each_kind_of_bad_input():
    assert len(CASES) >= 35
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(case, marks=[pytest.mark.xfail(reason=case.known_bug, strict=True)] if case.known_bug else [])
        for case in CASES
    ],
    ids=[case.name for case in CASES],
)
def test_a_bad_input_gets_one_line_its_exit_code_and_changes_nothing(case, outcomes):
    check(case, outcomes[case.name])


def test_a_refused_restart_keeps_the_old_run_where_it_was(outcomes):
    folder = outcomes["restart-with-a-broken-model"].folder
    assert (folder / "run" / "summary.json").is_file()
    assert sorted(path.name for path in folder.iterdir()) == ["run", "user.py"]


def test_stderr_lines_counts_only_what_a_person_reads(outcomes):
    # A case that exits 0 writes nothing to stderr, so the battery's one-line rule is not trivially met.
    assert stderr_lines(outcomes["train-help"].result) == []


# --- signals at several moments from process start -------------------------------------------------------------------


def train_process(folder: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tfkit.train", "--workdir", "w", "--set", "train.epochs=100", *extra],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.parametrize(
    ("number", "moment"),
    [
        (signal.SIGINT, 0.5),
        (signal.SIGINT, 2.0),
        (signal.SIGTERM, 2.0),
        (signal.SIGINT, 4.0),
        (signal.SIGINT, "set-up"),
        (signal.SIGINT, "training"),
        (signal.SIGTERM, "training"),
    ],
    ids=["SIGINT-0.5s", "SIGINT-2s", "SIGTERM-2s", "SIGINT-4s", "SIGINT-set-up", "SIGINT-training", "SIGTERM-training"],
)
def test_a_signal_at_any_moment_ends_with_75_or_130_never_0_nor_a_traceback(tmp_path, number, moment):
    process = train_process(tmp_path)
    assert process.stdout is not None
    if moment == "set-up":
        process.stdout.readline()  # the first line: the strategy is chosen, the workdir comes next
    elif moment == "training":
        for line in process.stdout:
            if line.startswith("epoch 1"):
                break
    else:
        time.sleep(float(moment))
    process.send_signal(number)
    try:
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert result.returncode in (75, 130), stderr[-2000:]
    assert "Traceback" not in stderr
    lines = stderr_lines(result)
    assert len(lines) == 1, stderr[-2000:]
    name = signal.Signals(number).name
    if result.returncode == 130:
        assert lines[0].startswith(f"tfkit: interrupted: {name} while ")
        assert not (tmp_path / "w").exists()
    else:
        assert lines[0].startswith("tfkit: stopped: ")
        summary = json.loads((tmp_path / "w" / "summary.json").read_text())
        assert (summary["status"], summary["stop_reason"]) == ("stopped", "signal")
    if moment == "training":
        assert result.returncode == 75


# --- a read-only workdir: as root, chmod does not stop writes, so it is a read-only mount -----------------------------


@contextlib.contextmanager
def read_only_view(source: Path, view: Path):
    """``source`` mounted read-only at ``view`` (a bind mount); the test is skipped where that is not allowed."""
    view.mkdir()
    bound = subprocess.run(["mount", "--bind", str(source), str(view)], capture_output=True)
    if bound.returncode != 0:
        pytest.skip(f"cannot bind-mount here ({bound.stderr.decode().strip()}); a read-only folder needs one")
    try:
        remounted = subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], capture_output=True)
        if remounted.returncode != 0:
            pytest.skip(f"cannot remount read-only here ({remounted.stderr.decode().strip()})")
        yield view
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)


def test_a_read_only_workdir_is_refused_with_one_line_before_anything_is_tried(trained, tmp_path):
    shutil.copytree(trained, tmp_path / "source" / "run")
    with read_only_view(tmp_path / "source", tmp_path / "ro"):
        before = file_hashes(tmp_path / "source")
        resume = tfkit_process(
            ["tfkit.train", "--workdir", "ro/run", "--config", "ro/run/config.yaml", "--set", "train.epochs=2"],
            cwd=tmp_path,
        )
        line = assert_refused(resume, before=before, roots=[tmp_path / "source"])
        assert "'ro/run' is read-only" in line
        new = tfkit_process(["tfkit.train", "--workdir", "ro/new"], cwd=tmp_path)
        assert "'ro' is read-only" in assert_refused(new, before=before, roots=[tmp_path / "source"])
        export_into = tfkit_process(["tfkit.export", "ro/run", "--out", "ro/model.keras"], cwd=tmp_path)
        assert "is read-only" in assert_refused(export_into, before=before, roots=[tmp_path / "source"])
