"""Each known TPU failure, raised with its real text by an injected resolver, gives its one line: cause and fix."""

from __future__ import annotations

import time

import pytest
import tensorflow as tf
from conftest import stderr_lines, tfkit_process

from tfkit import distribute, tpu_diagnose
from tfkit.config import DistributeConfig
from tfkit.errors import UserError


class FailingResolver(tf.distribute.cluster_resolver.TPUClusterResolver):
    """A local TPU resolver whose use raises ``error``, as TensorFlow and libtpu raise them on a broken TPU."""

    def __init__(self, error: Exception) -> None:
        super().__init__(tpu="local")
        self.error = error
        # initialize_tpu_system asks a non-local TPU for its job name first: that is where this one fails.
        self._tpu = b"broken-tpu"

    def get_job_name(self):
        raise self.error


KNOWN = [
    (
        tf.errors.NotFoundError(None, None, "No TPU platform found. Platform manager status: OK"),
        "TensorFlow found no TPU platform: the PJRT runtime was not set up before TensorFlow was imported",
    ),
    (
        RuntimeError("No TPU platform registered. Are you sure the TPU runtime is installed?"),
        "TensorFlow found no TPU platform",
    ),
    (
        tf.errors.NotFoundError(
            None,
            None,
            "No OpKernel was registered to support Op 'ConfigureDistributedTPU' used by {{node "
            "ConfigureDistributedTPU}} with these attrs: [...]. Registered devices: [CPU]",
        ),
        "this TensorFlow has no TPU kernels (a CPU-only build such as tensorflow-cpu",
    ),
    (
        tf.errors.AbortedError(None, None, "The TPU is already in use by process with pid 4242. Not attempting..."),
        "another process (pid 4242) holds the TPU, or a crashed one left /tmp/libtpu_lockfile behind; fix: stop it "
        "(kill 4242",
    ),
    (
        ValueError("Device /job:localhost/replica:0/task:0/device:CPU:0 is not found"),
        "Keras 3 placed a variable on a host device that this TPUStrategy does not know (tensorflow#74926",
    ),
    (
        tf.errors.NotFoundError(None, None, "/usr/lib/libtpu.so: undefined symbol: TFNPD_InitPlugin"),
        "TensorFlow could not load libtpu.so as its PJRT plugin",
    ),
]


@pytest.mark.parametrize(("error", "expected"), KNOWN, ids=[type(error).__name__ for error, _ in KNOWN])
def test_each_known_failure_gives_its_line(error, expected):
    with pytest.raises(UserError) as raised:
        distribute.select(DistributeConfig(strategy="tpu"), tpu_resolver=FailingResolver(error))
    line = str(raised.value)
    assert line.startswith(f"the TPU at 'local' did not start: {expected}")
    assert "\n" not in line and "fix: " in line and line.endswith(".")


def test_an_unknown_failure_names_the_stacks_problem_and_the_usual_fixes():
    line = tpu_diagnose.explain(
        "Something new. More detail", address="local", problems=["tensorflow-cpu 2.20.0 has no TPU support"]
    )
    assert line.startswith("no TPU was found at 'local' (Something new); tensorflow-cpu 2.20.0 has no TPU support;")
    assert "pip install 'tensorflow-tpu==2.19.1'" in line


def test_a_grpc_address_that_does_not_answer_fails_in_seconds():
    started = time.monotonic()
    with pytest.raises(UserError, match=r"^the TPU at 'grpc://127.0.0.1:1' did not start: nothing answers"):
        distribute.select(DistributeConfig(tpu_address="grpc://127.0.0.1:1"))  # auto: a given address is asked for
    assert time.monotonic() - started < distribute.CONNECT_TIMEOUT_SECONDS


@pytest.mark.slow
def test_the_command_with_a_dead_tpu_address_exits_2_with_one_line(tmp_path):
    result = tfkit_process(["tfkit.train", "--tpu_address", "grpc://127.0.0.1:1"], cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    (line,) = stderr_lines(result)
    assert line.startswith("tfkit: error: the TPU at 'grpc://127.0.0.1:1' did not start: nothing answers")
    assert not (tmp_path / "runs").exists()
