"""TPU detection from local signs, on fake machines: fake /dev and /sys trees and a fake environment."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from conftest import REPO, python_script

from tfkit import tpu_detect

NO_NETWORK = {"GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9"}
TPU_VARIABLES = ("ISTPUVM", "TPU_ACCELERATOR_TYPE", "TPU_NAME", "COLAB_TPU_ADDR", "TPU_PROCESS_ADDRESSES")
PJRT_VARIABLES = ("NEXT_PLUGGABLE_DEVICE_USE_C_API", "TF_PLUGGABLE_DEVICE_LIBRARY_PATH", "PJRT_DEVICE", "TF_XLA_FLAGS")


def fake_machine(root: Path, kind: str, *, node_port: int = 9) -> dict[str, str]:
    """Builds the device files and PCI entries of one kind of machine under ``root``; returns its environment.

    Kinds: ``v3-8 node`` (a TPU node over gRPC, nothing local), ``v3-8 VM`` (4 chips, /dev/accel*), ``Kaggle v5e-8``
    (8 chips, /dev/vfio, Kaggle's ISTPUVM and TPU_PROCESS_ADDRESSES, no TPU_ACCELERATOR_TYPE), ``Colab v5e-1``.
    """
    (root / "dev").mkdir(parents=True)
    devices = root / "sys" / "bus" / "pci" / "devices"
    devices.mkdir(parents=True)
    _pci(devices / "0000:00:04.0", vendor="0x1ae0", device="0x0042")  # a Google NIC, not a TPU
    _pci(devices / "0000:00:01.0", vendor="0x8086", device="0x1237")
    if kind == "v3-8 node":
        return {"COLAB_TPU_ADDR": f"127.0.0.1:{node_port}"}
    if kind == "v3-8 VM":
        for index in range(4):
            (root / "dev" / f"accel{index}").touch()
            _pci(devices / f"0000:00:0{5 + index}.0", vendor="0x1ae0", device="0x0027", subsystem="0x004f")
        return {"TPU_ACCELERATOR_TYPE": "v3-8"}
    chips = {"Kaggle v5e-8": 8, "Colab v5e-1": 1}[kind]
    (root / "dev" / "vfio").mkdir()
    (root / "dev" / "vfio" / "vfio").touch()  # the control file, not a chip
    for index in range(chips):
        (root / "dev" / "vfio" / str(index)).touch()
        _pci(devices / f"0000:00:{5 + index:02x}.0", vendor="0x1ae0", device="0x0063")
    return {"ISTPUVM": "1", "TPU_PROCESS_ADDRESSES": "local"} if kind == "Kaggle v5e-8" else {}


def fake_libtpu(folder: Path, *, version: str = "0.0.17") -> Path:
    """A ``libtpu`` package whose ``get_library_path()`` names a real shared object (one that is no PJRT plugin)."""
    import _ctypes  # any real ELF shared object: TensorFlow loads it without error, and it registers no device

    package = folder / "libtpu"
    package.mkdir(parents=True)
    library = package / "libtpu.so"
    library.write_bytes(Path(_ctypes.__file__).read_bytes())
    (package / "__init__.py").write_text(
        "import os\n\ndef get_library_path():\n    return os.path.join(os.path.dirname(__file__), 'libtpu.so')\n"
    )
    info = folder / f"libtpu-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: libtpu\nVersion: {version}\n")
    return folder


def _pci(path: Path, *, vendor: str, device: str, subsystem: str = "0x0000") -> None:
    path.mkdir()
    (path / "vendor").write_text(vendor + "\n")
    (path / "device").write_text(device + "\n")
    (path / "subsystem_device").write_text(subsystem + "\n")


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("v3-8 node", {"address": "grpc://127.0.0.1:9", "generation": None, "chips": None, "needs_pjrt": False}),
        ("v3-8 VM", {"address": "local", "generation": "v3", "chips": 4, "replicas": 8, "needs_pjrt": False}),
        ("Kaggle v5e-8", {"address": "local", "generation": "v5e", "chips": 8, "replicas": 8, "needs_pjrt": True}),
        ("Colab v5e-1", {"address": "local", "generation": "v5e", "chips": 1, "replicas": 1, "needs_pjrt": True}),
    ],
)
def test_each_kind_of_machine_is_detected_from_its_local_signs(tmp_path, kind, expected):
    env = fake_machine(tmp_path, kind)
    facts = tpu_detect.detect(env, dev_root=tmp_path / "dev", sys_root=str(tmp_path / "sys")).to_dict()
    assert facts["present"] and facts["bfloat16"]
    assert {key: facts[key] for key in expected} == expected
    if facts["generation"]:
        assert facts["hbm_per_replica_bytes"] == 16 * 2**30  # a v3 core and a v5e chip alike
    if kind == "Kaggle v5e-8":
        assert facts["accelerator_type"] == "v5litepod-8"
        assert "8 Google TPU PCI device(s) (v5e)" in facts["signs"] and "ISTPUVM=1" in facts["signs"]


def test_no_signs_is_no_tpu_and_a_google_nic_is_not_a_tpu(tmp_path):
    fake_machine(tmp_path / "plain", "v3-8 node")
    facts = tpu_detect.detect({}, dev_root=tmp_path / "plain" / "dev", sys_root=str(tmp_path / "plain" / "sys"))
    assert (facts.present, facts.address, facts.replicas, facts.signs) == (False, None, None, ())


@pytest.mark.parametrize(
    ("accelerator_type", "generation", "chips", "replicas"),
    [("v5litepod-8", "v5e", 8, 8), ("v5litepod-1", "v5e", 1, 1), ("v3-8", "v3", 4, 8), ("v4-8", "v4", 4, 4)],
)
def test_environment_signs_alone_count_as_a_tpu(tmp_path, accelerator_type, generation, chips, replicas):
    env = {"ISTPUVM": "1", "TPU_ACCELERATOR_TYPE": accelerator_type}
    facts = tpu_detect.detect(env, dev_root=tmp_path, sys_root=str(tmp_path))
    assert facts.present and facts.address == "local"
    assert (facts.generation and facts.generation.name, facts.chips, facts.replicas) == (generation, chips, replicas)


def test_a_tpu_name_is_a_node_whose_chips_are_elsewhere(tmp_path):
    facts = tpu_detect.detect({"TPU_NAME": "my-tpu"}, dev_root=tmp_path, sys_root=str(tmp_path))
    assert (facts.present, facts.address, facts.chips, facts.needs_pjrt) == (True, "my-tpu", None, False)


def test_detection_in_a_fresh_process_imports_no_tensorflow(tmp_path):
    env = fake_machine(tmp_path, "Kaggle v5e-8")
    script = textwrap.dedent(
        f"""
        import json, sys
        from tfkit import tpu_detect
        facts = tpu_detect.detect(dev_root={str(tmp_path / "dev")!r}, sys_root={str(tmp_path / "sys")!r})
        print(json.dumps({{"facts": facts.to_dict(), "tensorflow": "tensorflow" in sys.modules}}))
        """
    )
    result = python_script(script, cwd=tmp_path, env={**NO_NETWORK, **env, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["tensorflow"] is False
    assert (out["facts"]["generation"], out["facts"]["replicas"]) == ("v5e", 8)
