"""Two real worker processes on 127.0.0.1 with TF_CONFIG: MultiWorkerMirroredStrategy end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import free_port


@pytest.mark.slow
def test_two_workers_on_localhost_train_together_and_end_with_the_same_weights(tmp_path):
    workers = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", "tfkit.train", "--workdir", str(tmp_path / "run"), "--set", "train.epochs=3"]
        processes.append(
            subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err[-3000:]

    chief = tmp_path / "run"
    other = chief / "workers" / "worker-1"
    summary = json.loads((chief / "summary.json").read_text())
    assert (summary["strategy"], summary["replicas"]) == ("multi_worker", 2)
    assert summary["metrics"]["accuracy"] > 0.5
    assert (chief / "logs" / "train").is_dir() and not (other / "logs").exists()  # only the chief logs
    assert "epoch 3/3" in outputs[0][0] and "epoch" not in outputs[1][0]  # only the chief talks

    chief_weights = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(chief / "checkpoints")))
    other_weights = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(other / "checkpoints")))
    # Everything saved: weights (stored under the optimizer's path, TF names each variable by its shortest path in
    # the object graph), optimizer slots, metrics, the step. Not each worker's own wall-clock time.
    skip = {"_CHECKPOINTABLE_OBJECT_GRAPH", "elapsed/.ATTRIBUTES/VARIABLE_VALUE"}
    names = [name for name in chief_weights.get_variable_to_shape_map() if name not in skip]
    assert len(names) >= 20
    for name in names:
        np.testing.assert_array_equal(chief_weights.get_tensor(name), other_weights.get_tensor(name))
