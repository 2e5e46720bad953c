"""Choosing the tf.distribute strategy: TPU, MultiWorkerMirrored, Mirrored (GPUs or logical CPUs), or one device.

This is the one place a strategy is chosen. ``auto`` never sends traffic off the machine to look for a TPU: it tries
one only when ``tfkit.tpu_detect`` sees local signs of it (PCI ids, ``/dev/accel*``, ``/dev/vfio``, ``ISTPUVM``,
``TPU_NAME``, ...), because ``TPUClusterResolver`` with any name but ``local`` asks the GCE metadata server over the
network. A TPU that does not start is explained by ``tfkit.tpu_diagnose``: one line with the cause and the fix.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
from typing import Any
from urllib.parse import urlsplit

import tensorflow as tf

from tfkit import tpu_detect, tpu_diagnose, tpu_runtime
from tfkit.config import DistributeConfig
from tfkit.errors import UserError

# A gRPC address that does not answer makes TensorFlow retry for minutes; a plain TCP connect says so in seconds.
CONNECT_TIMEOUT_SECONDS = 10.0


@dataclasses.dataclass(frozen=True)
class Selected:
    """The chosen strategy and what the rest of the run needs to know about it.

    Attributes:
        strategy: The tf.distribute strategy.
        name: ``tpu``, ``multi_worker``, ``mirrored`` or ``one_device``.
        device_kind: ``TPU``, ``GPU`` or ``CPU``: what the replicas run on.
        gpu_compute_capability: The first GPU's (major, minor), or None.
        is_chief: Whether this task writes the shared workdir (always true outside multi-worker).
        task_id: This task's index among the workers (0 outside multi-worker).
    """

    strategy: tf.distribute.Strategy
    name: str
    device_kind: str
    gpu_compute_capability: tuple[int, int] | None = None
    is_chief: bool = True
    task_id: int = 0

    @property
    def replicas(self) -> int:
        """Replicas that take part in one step, over all workers."""
        return int(self.strategy.num_replicas_in_sync)


def select(config: DistributeConfig, *, tpu_resolver: Any = None) -> Selected:
    """Builds the strategy that ``config`` asks for.

    Args:
        config: The ``distribute`` section of the run config.
        tpu_resolver: A cluster resolver to use instead of ``TPUClusterResolver(config.tpu_address)``. Tests inject
            one, since no TPU is reachable there.

    Returns:
        The strategy and its facts.

    Raises:
        UserError: The asked-for hardware is not there (no TPU at the address, no GPU, no TF_CONFIG cluster).
    """
    name = config.strategy
    if name == "auto":
        return _auto(config, tpu_resolver=tpu_resolver)
    if name == "tpu":
        return _tpu(config.tpu_address, resolver=tpu_resolver)
    if name == "multi_worker":
        if not tf_config_cluster():
            raise UserError(
                "--strategy multi_worker needs TF_CONFIG naming a cluster of workers; received none. "
                'Set TF_CONFIG, e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
                '"task": {"type": "worker", "index": 0}}.'
            )
        return _multi_worker()
    if name == "gpu":
        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            raise UserError("--strategy gpu found no GPU; expected at least one. Run python -m tfkit.doctor.")
        return _one_device("GPU", _compute_capability(gpus[0]))
    if name == "mirrored":
        return _mirrored(config.cpu_replicas)
    # name == "cpu"
    if config.cpu_replicas:
        return _mirrored(config.cpu_replicas)
    if tf.config.list_physical_devices("GPU"):
        return Selected(tf.distribute.OneDeviceStrategy("/cpu:0"), "one_device", "CPU")  # CPU asked for over a GPU
    return _one_device("CPU", None)


def tpu_signs() -> str | None:
    """Returns the TPU address that local signs point to, or None when there are none.

    Nothing here touches the network: only environment variables, device files and sysfs are read
    (``tfkit.tpu_detect``).
    """
    return tpu_detect.detect().address


def tf_config_cluster() -> bool:
    """Whether ``TF_CONFIG`` names a cluster of more than one task."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return False
    try:
        cluster = json.loads(raw).get("cluster", {})
    except (ValueError, AttributeError):
        raise UserError(f"TF_CONFIG is not valid JSON (received {raw[:60]!r}); expected a cluster spec.") from None
    return sum(len(tasks) for tasks in cluster.values()) > 1


def split_cpu(replicas: int) -> list[str]:
    """Splits the CPU into ``replicas`` logical devices and returns their names.

    This must happen before TensorFlow initialises its devices. When they are already initialised (a notebook that
    ran TensorFlow before, a test process), existing logical CPUs are used if there are enough.

    Raises:
        UserError: TensorFlow is initialised with fewer logical CPUs than asked for.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    with contextlib.suppress(RuntimeError):  # already initialised: see below whether what exists is enough
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    logical = tf.config.list_logical_devices("CPU")
    if len(logical) < replicas:
        raise UserError(
            f"--cpu_replicas {replicas} cannot split the CPU: TensorFlow already started with {len(logical)} logical "
            "CPU device(s). Restart the Python process (the notebook kernel) and run tfkit before anything else "
            "uses TensorFlow."
        )
    return [device.name for device in logical[:replicas]]


def _auto(config: DistributeConfig, *, tpu_resolver: Any) -> Selected:
    if config.tpu_address != "local":  # an address given by hand is a TPU asked for: its failure is an error
        return _tpu(config.tpu_address, resolver=tpu_resolver)
    address = config.tpu_address if tpu_resolver is not None else tpu_signs()
    if address is not None:
        try:
            return _tpu(address, resolver=tpu_resolver)
        except UserError as error:
            print(f"tfkit: a TPU looked present but is not usable, so it is not used: {error}")
    if tf_config_cluster():
        return _multi_worker()
    if config.cpu_replicas:
        return _mirrored(config.cpu_replicas)
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        return _mirrored(0)
    if gpus:
        return _one_device("GPU", _compute_capability(gpus[0]))
    return _one_device("CPU", None)


def _one_device(kind: str, capability: tuple[int, int] | None) -> Selected:
    # TensorFlow's default strategy, as Keras' fit uses: it places on the machine's default device (the first GPU,
    # else the CPU) and adds nothing to the step, where OneDeviceStrategy costs about 2% on the digits CNN.
    return Selected(tf.distribute.get_strategy(), "one_device", kind, capability)


def _tpu(address: str, *, resolver: Any) -> Selected:
    _check_reachable(address)
    try:
        if resolver is None:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
        if address != "local":
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy = tf.distribute.TPUStrategy(resolver)
    except (ValueError, RuntimeError, OSError, tf.errors.OpError) as error:  # OSError: metadata server unreachable
        problems = tpu_runtime.stack_problems(
            tpu_runtime.installed_versions(), libtpu_pin=tpu_runtime.tensorflow_tpu_libtpu_pin()
        )
        text = str(error).strip() or type(error).__name__
        raise UserError(tpu_diagnose.explain(text, address=address, problems=problems) + ".") from None
    return Selected(strategy, "tpu", "TPU")


def _check_reachable(address: str) -> None:
    """Fails fast, with the diagnosis, when a ``grpc://host:port`` TPU address does not accept a connection."""
    if not address.startswith("grpc://"):
        return  # local, or a TPU name that the resolver looks up
    parts = urlsplit(address)
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 8470), timeout=CONNECT_TIMEOUT_SECONDS):
            pass
    except OSError as error:
        raise UserError(tpu_diagnose.explain(str(error) or "timed out", address=address) + ".") from None


def _multi_worker() -> Selected:
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
    # The chief is the `chief` task, or worker 0 when the cluster has no chief.
    is_chief = task_type == "chief" or (
        task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().jobs
    )
    gpus = tf.config.list_physical_devices("GPU")
    kind = "GPU" if gpus else "CPU"
    capability = _compute_capability(gpus[0]) if gpus else None
    return Selected(strategy, "multi_worker", kind, capability, is_chief=is_chief, task_id=task_id)


def _mirrored(cpu_replicas: int) -> Selected:
    if cpu_replicas:
        # Logical CPUs share one memory, so reducing onto one of them is the natural all-reduce. It also avoids
        # collective group keys, which clash when a notebook mirrors over 2 and then 4 CPUs in one process.
        strategy = tf.distribute.MirroredStrategy(
            split_cpu(cpu_replicas), cross_device_ops=tf.distribute.ReductionToOneDevice()
        )
        return Selected(strategy, "mirrored", "CPU")
    gpus = tf.config.list_physical_devices("GPU")
    capability = _compute_capability(gpus[0]) if gpus else None
    return Selected(tf.distribute.MirroredStrategy(), "mirrored", "GPU" if gpus else "CPU", capability)


def _compute_capability(gpu: Any) -> tuple[int, int] | None:
    details = tf.config.experimental.get_device_details(gpu)
    capability = details.get("compute_capability")
    return (int(capability[0]), int(capability[1])) if capability else None
