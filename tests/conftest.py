"""Test setup, run before TensorFlow initialises its devices.

The CPU is split into 4 logical devices, as TensorFlow's own distribution tests do, so MirroredStrategy runs with
1, 2 or 4 replicas in this process. Nothing may leave the machine: the GCE metadata server, which TPUClusterResolver
asks about TPU names, is pointed at a closed loopback port, and libtpu, which asks 169.254.169.254 whatever those
variables say, is told to skip its metadata query (TPU_SKIP_MDS_QUERY), in this process and every one it starts.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

os.environ["GCE_METADATA_HOST"] = "127.0.0.1:9"
os.environ["GCE_METADATA_IP"] = "127.0.0.1:9"
os.environ["TPU_SKIP_MDS_QUERY"] = "1"
os.environ.pop("TF_CONFIG", None)

import numpy as np
import pytest
import tensorflow as tf

from tfkit import config as config_lib

LOGICAL_CPUS = 4
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * LOGICAL_CPUS
)
# Initialise the runtime now: until then, a test's own split (--cpu_replicas 2) would replace this one, and the
# next test asking for 4 would find 2. Any order of tests, or one test alone, then sees the same 4.
assert len(tf.config.list_logical_devices("CPU")) == LOGICAL_CPUS

REPO = Path(__file__).resolve().parents[1]
DIGITS_CONFIG = REPO / "configs" / "digits.yaml"
DIGITS_DATA = REPO / "tfrecords" / "digits"


def tfkit_process(
    args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Runs ``python -m ARGS`` in a real process, as a user would, and returns its result."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


def python_script(
    script: str, *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Runs ``python -c SCRIPT`` in a real process and returns its result."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


EARLY_PROBE = """
import runpy, sys
module = sys.argv[1]
sys.argv = [module, *sys.argv[2:]]
try:
    runpy.run_module(module, run_name="__main__")
except SystemExit as stop:
    print("tensorflow loaded" if "tensorflow" in sys.modules else "no tensorflow", stop.code)
    raise
"""


def probe_command(args: list[str], *, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Runs ``python -m ARGS`` as ``tfkit_process`` does, and prints last whether TensorFlow was loaded at its exit.

    The last words of stdout are ``no tensorflow CODE`` or ``tensorflow loaded CODE``: a command that refuses bad
    input before its heavy imports ends with ``no tensorflow 2``. The process exits with the command's code.
    """
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-c", EARLY_PROBE, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=300
    )


FLAT_MODEL = """
import keras

def flat(*, input_shape, num_classes):
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(keras.layers.Flatten()(inputs)))
"""


def model_file(folder: Path, source: str = FLAT_MODEL, name: str = "user_model.py") -> Path:
    """Writes a user model module (the ``file.py:function`` form of ``model``) and returns its path."""
    path = folder / name
    path.write_text(source)
    return path


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_scalars(logdir: Path, tag: str) -> dict[int, float]:
    """Reads one tag's values by step from TensorBoard event files (TF2 writes scalars as tensors)."""
    values: dict[int, float] = {}
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == tag:
                    values[event.step] = float(tf.make_ndarray(value.tensor))
    return values


def stderr_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The non-empty lines a process wrote to stderr."""
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.fixture
def outside_repo(tmp_path: Path) -> Path:
    """A working directory outside the repository, as a newcomer's would be."""
    work = tmp_path / "elsewhere"
    work.mkdir()
    return work


def file_hashes(*roots: Path) -> dict[str, str]:
    """The sha256 of every file under ``roots`` (a root may be a file), to show that nothing was changed."""
    hashes: dict[str, str] = {}
    for root in roots:
        paths = [root] if root.is_file() else sorted(path for path in root.rglob("*") if path.is_file())
        for path in paths:
            hashes[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def refused_early(args: list[str], *, cwd: Path) -> str:
    """Asserts that ``python -m ARGS`` is refused before TensorFlow loads: exit 2, one line, every file in ``cwd`` kept.

    Returns:
        The one line, for the caller to check its words.
    """
    before = file_hashes(cwd)
    result = probe_command(args, cwd=cwd)
    assert result.stdout.split()[-3:] == ["no", "tensorflow", "2"], result.stderr[-2000:]
    return assert_refused(result, before=before, roots=[cwd])


def run_without_weights(folder: Path, *, checkpoints: bool = True) -> Path:
    """A run folder as far as the checks before a restore can tell: the digits config, and ``checkpoints/run.json``.

    It holds no checkpoint, so a command that gets past its early checks fails later, after TensorFlow's import.
    """
    folder.mkdir(parents=True)
    config_lib.dump(config_lib.load(DIGITS_CONFIG), folder / "config.yaml")
    if checkpoints:
        (folder / "checkpoints").mkdir()
        (folder / "checkpoints" / "run.json").write_text('{"num_classes": 10, "input_shape": [8, 8, 1]}\n')
    return folder


def saved_tensors(workdir: Path, checkpoint: str | None = None) -> dict[str, np.ndarray]:
    """Every tensor of a run's checkpoint, by name, but for the bookkeeping that differs by design between runs.

    Left out: the object graph, how many saves there were (``save_counter``) and the wall time they took
    (``elapsed``), so two runs that trained alike compare equal whatever their clocks.

    Args:
        workdir: The run folder.
        checkpoint: A checkpoint under ``checkpoints/`` (``ckpt-4``); the newest by default.
    """
    folder = workdir / "checkpoints"
    path = str(folder / checkpoint) if checkpoint is not None else tf.train.latest_checkpoint(str(folder))
    reader = tf.train.load_checkpoint(path)
    skip = {
        "_CHECKPOINTABLE_OBJECT_GRAPH",
        "save_counter/.ATTRIBUTES/VARIABLE_VALUE",
        "elapsed/.ATTRIBUTES/VARIABLE_VALUE",
    }
    return {name: reader.get_tensor(name) for name in sorted(set(reader.get_variable_to_shape_map()) - skip)}


def assert_refused(
    result: subprocess.CompletedProcess[str], *, before: dict[str, str], roots: list[Path], code: int = 2
) -> str:
    """A refused command: exit ``code``, one stderr line and no traceback, every file it found byte-identical.

    Returns:
        The one line, for the caller to check its words.
    """
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = stderr_lines(result)
    assert len(lines) == 1, result.stderr[-2000:]
    assert file_hashes(*roots) == before, "a refused command changed a file it found"
    return lines[0]
