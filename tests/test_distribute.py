from __future__ import annotations

import glob
import json
import textwrap

import pytest
import tensorflow as tf
from conftest import LOGICAL_CPUS, free_port, python_script, stderr_lines, tfkit_process

from tfkit import distribute
from tfkit.config import DistributeConfig
from tfkit.errors import UserError

NO_SIGNS = ("COLAB_TPU_ADDR", "TPU_NAME", "TF_CONFIG", "ISTPUVM", "TPU_ACCELERATOR_TYPE", "TPU_PROCESS_ADDRESSES")


@pytest.fixture
def clean_env(monkeypatch):
    for name in NO_SIGNS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_cpu_is_one_device(clean_env):
    selected = distribute.select(DistributeConfig(strategy="cpu"))
    assert selected.strategy is tf.distribute.get_strategy()  # the default strategy: nothing added to the step
    assert (selected.name, selected.device_kind, selected.replicas, selected.is_chief) == ("one_device", "CPU", 1, True)


@pytest.mark.parametrize("replicas", [2, LOGICAL_CPUS])
def test_cpu_replicas_mirror_over_logical_cpus(clean_env, replicas):
    for strategy in ("cpu", "mirrored", "auto"):
        selected = distribute.select(DistributeConfig(strategy=strategy, cpu_replicas=replicas))
        assert isinstance(selected.strategy, tf.distribute.MirroredStrategy)
        assert (selected.name, selected.replicas) == ("mirrored", replicas)
        assert all("CPU" in device for device in selected.strategy.extended.worker_devices)


def test_asking_for_more_cpu_replicas_than_exist_after_start_says_to_restart(clean_env):
    with pytest.raises(UserError, match=f"already started with {LOGICAL_CPUS} logical CPU"):
        distribute.select(DistributeConfig(strategy="mirrored", cpu_replicas=LOGICAL_CPUS + 1))


def test_auto_without_tpu_signs_cluster_or_gpus_is_one_cpu(clean_env):
    assert not tf.config.list_physical_devices("GPU")  # this machine has none
    selected = distribute.select(DistributeConfig())
    assert (selected.name, selected.device_kind) == ("one_device", "CPU")


def test_gpu_without_a_gpu_is_a_clear_error(clean_env):
    with pytest.raises(UserError, match="--strategy gpu found no GPU"):
        distribute.select(DistributeConfig(strategy="gpu"))


def test_multi_worker_without_tf_config_is_a_clear_error(clean_env):
    with pytest.raises(UserError, match="needs TF_CONFIG naming a cluster"):
        distribute.select(DistributeConfig(strategy="multi_worker"))


def test_tf_config_names_a_cluster_only_with_several_tasks(clean_env):
    assert not distribute.tf_config_cluster()
    clean_env.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker"}}))
    assert not distribute.tf_config_cluster()
    clean_env.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}}))
    assert distribute.tf_config_cluster()
    clean_env.setenv("TF_CONFIG", "{not json")
    with pytest.raises(UserError, match="TF_CONFIG is not valid JSON"):
        distribute.tf_config_cluster()


def test_tpu_signs_are_read_from_the_environment_only(clean_env):
    on_a_tpu_vm = bool(glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"))
    assert distribute.tpu_signs() == ("local" if on_a_tpu_vm else None)
    clean_env.setenv("ISTPUVM", "1")
    assert distribute.tpu_signs() == "local"
    clean_env.setenv("TPU_NAME", "my-tpu")
    assert distribute.tpu_signs() == "my-tpu"
    clean_env.setenv("COLAB_TPU_ADDR", "10.0.0.2:8470")
    assert distribute.tpu_signs() == "grpc://10.0.0.2:8470"


def test_the_tpu_branch_runs_with_an_injected_resolver(tmp_path):
    # A real TensorFlow server on loopback plays the TPU host. The TPU branch connects to it for real, then finds no
    # TPU there and says so. A subprocess, because connecting changes the process's eager context.
    port = free_port()
    script = textwrap.dedent(
        f"""
        import tensorflow as tf
        from tfkit import distribute
        from tfkit.config import DistributeConfig
        from tfkit.errors import UserError
        spec = tf.train.ClusterSpec({{"worker": ["127.0.0.1:{port}"]}})
        server = tf.distribute.Server(spec, job_name="worker", task_index=0, start=True)
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="grpc://127.0.0.1:{port}")
        try:
            config = DistributeConfig(strategy="tpu", tpu_address="grpc://127.0.0.1:{port}")
            distribute.select(config, tpu_resolver=resolver)
        except UserError as error:
            print("USER ERROR:", error)
        """
    )
    result = python_script(script, cwd=tmp_path)
    assert f"USER ERROR: no TPU was found at 'grpc://127.0.0.1:{port}' (TPUs not found in the cluster)" in result.stdout
    assert "tensorflow-tpu" in result.stdout


def test_auto_with_a_tpu_name_but_no_reachable_tpu_falls_back_without_leaving_the_machine(tmp_path):
    # TPU_NAME makes auto try a TPU; the resolver asks the metadata server, which conftest points at a closed port
    # on 127.0.0.1. auto says why it skips the TPU and carries on with one device.
    script = "from tfkit import distribute, config; print('CHOSE', distribute.select(config.DistributeConfig()).name)"
    result = python_script(script, cwd=tmp_path, env={"TPU_NAME": "my-tpu", "GCE_METADATA_HOST": "127.0.0.1:9"})
    assert "a TPU looked present but is not usable" in result.stdout
    assert "CHOSE one_device" in result.stdout


@pytest.mark.slow
def test_tpu_flag_without_a_tpu_exits_2_with_one_line(outside_repo):
    result = tfkit_process(["tfkit.train", "--tpu"], cwd=outside_repo)
    assert result.returncode == 2
    lines = stderr_lines(result)
    assert len(lines) == 1, result.stderr
    # TensorFlow's own text here is "No OpKernel was registered to support Op 'ConfigureDistributedTPU'".
    assert lines[0].startswith("tfkit: error: the TPU at 'local' did not start: this TensorFlow has no TPU kernels")
    assert "tensorflow-cpu" in lines[0] and "Traceback" not in result.stderr
    assert not (outside_repo / "runs").exists()  # nothing written for a run that never started
