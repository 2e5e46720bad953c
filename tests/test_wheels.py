"""The offline wheels bundle: built here from the package registry, installed with no index, verified by hash."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import venv
from pathlib import Path

import pytest
from conftest import REPO, stderr_lines, tfkit_process
from packaging.utils import canonicalize_name

from tfkit import wheels
from tfkit.errors import UserError

pytestmark = [pytest.mark.slow, pytest.mark.registry]  # each test resolves against the package registry


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory):
    """A bundle without TensorFlow (as for an image that has its own), with absl-py pinned by a constraints file."""
    folder = tmp_path_factory.mktemp("bundle")
    constraints = folder.parent / "freeze.txt"
    constraints.write_text("absl-py==2.1.0\n")
    manifest = wheels.build(folder / "wheels", tensorflow="none", constraints=str(constraints))
    return folder / "wheels", manifest


def test_a_constraints_file_is_honoured(small_bundle):
    _, manifest = small_bundle
    absl = [name for name in manifest["files"] if name.startswith("absl_py-")]
    assert absl == ["absl_py-2.1.0-py3-none-any.whl"]  # not the newest, 2.5.x: the image's pin
    assert manifest["constraints"] == "freeze.txt" and manifest["install"] == "tfkit"
    assert any(name.startswith("tfkit-0.1.0-") for name in manifest["files"])
    assert not any(name.startswith(("tensorflow-", "tensorflow_cpu-")) for name in manifest["files"])


def test_a_tampered_wheel_fails_verify(small_bundle, tmp_path):
    folder, _ = small_bundle
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    assert wheels.verify(copy, install=False) == []
    keras = next(copy.glob("keras-*.whl"))
    data = bytearray(keras.read_bytes())
    data[len(data) // 2] ^= 0xFF
    keras.write_bytes(bytes(data))
    (copy / "extra-1.0-py3-none-any.whl").write_bytes(b"not in the manifest")
    result = tfkit_process(["tfkit.wheels", "verify", str(copy), "--hashes_only"], cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert f"bad: {keras.name}: sha256 differs from the manifest (changed or damaged)" in result.stdout
    assert "bad: extra-1.0-py3-none-any.whl: not in the manifest" in result.stdout


def test_a_source_only_dependency_is_refused(tmp_path):
    sdists = tmp_path / "sdists"
    sdists.mkdir()
    with tarfile.open(sdists / "onlysource-1.0.tar.gz", "w:gz"):
        pass  # pip sees a source archive of onlysource 1.0, and no wheel
    with pytest.raises(UserError, match=r"'onlysource' has no wheel for this target .*cannot be built offline"):
        wheels.build(tmp_path / "out", tensorflow="none", extra_requirements=["onlysource"], find_links=[str(sdists)])
    args = ["--dest", "out", "--tensorflow", "none", "--with", "onlysource", "--find_links", str(sdists)]
    result = tfkit_process(["tfkit.wheels", "build", *args], cwd=tmp_path)
    assert result.returncode == 2
    (line,) = stderr_lines(result)
    assert line.startswith("tfkit: error: 'onlysource' has no wheel for this target")


def test_the_bundle_installs_offline_into_a_fresh_venv_and_trains_outside_the_repository(tmp_path, outside_repo):
    folder = tmp_path / "wheels"
    manifest = wheels.build(folder, tensorflow="tensorflow-cpu", constraints=str(REPO / ".ci" / "constraints.txt"))
    assert manifest["install"] == "tfkit[cpu]"
    assert any(name.startswith("tensorflow_cpu-2.21.") for name in manifest["files"])
    venv = tmp_path / "venv"
    assert wheels.verify(folder, venv_dir=venv) == []  # pip --isolated --no-index: nothing but the bundle
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PIP_", "PYTHONPATH"))}
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "tfkit.train", "--set", "train.epochs=2"],
        cwd=outside_repo,
        env={**env, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((outside_repo / "runs" / "digits" / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert str(venv) in (outside_repo / "runs" / "digits" / "config.yaml").read_text()  # the wheel's own data


KAGGLE_TPU_FREEZE = """\
# The kind of pins Kaggle's TPU image has (docker-python tpu/, 2026): CPU TensorFlow, libtpu forced for JAX.
tensorflow-cpu==2.20.0
libtpu==0.0.17
keras==3.10.0
numpy==2.2.6
protobuf==5.29.5
tensorboard==2.20.0
absl-py==2.3.1
jax==0.6.2
"""


def test_the_tpu_bundle_resolves_tensorflow_tpu_2_19_1_with_its_libtpu_and_says_what_moves(tmp_path):
    freeze = tmp_path / "kaggle-freeze.txt"
    freeze.write_text(KAGGLE_TPU_FREEZE)
    args = ["--tpu", "--resolve_only", "--constraints", str(freeze), "--dest", "wheels"]
    result = tfkit_process(["tfkit.wheels", "build", *args], cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "wheels" / "manifest.json").read_text())
    packages = manifest["packages"]
    assert (manifest["python"], manifest["install"]) == ("3.12", "tfkit[tpu]")
    assert (packages["tensorflow_tpu"], packages["libtpu"]) == ("2.19.1", "0.0.10")
    # The image's keras, protobuf and absl-py are kept; what the TPU stack forbids moves, with the requirement.
    assert (packages["keras"], packages["protobuf"], packages["absl-py"]) == ("3.10.0", "5.29.5", "2.3.1")
    moves = manifest["moves"]
    assert set(moves) == {"tensorflow-cpu", "libtpu", "numpy", "tensorboard"}
    assert moves["libtpu"] == "0.0.17 -> 0.0.10: tensorflow_tpu 2.19.1 requires libtpu==0.0.10"
    assert moves["numpy"].startswith("2.2.6 -> 2.1.") and "requires numpy<2.2.0,>=1.26.0" in moves["numpy"]
    assert moves["tensorflow-cpu"].startswith("2.20.0 -> removed: the bundle's tensorflow-tpu 2.19.1 replaces it")
    assert "moves: libtpu 0.0.17 -> 0.0.10: tensorflow_tpu 2.19.1 requires libtpu==0.0.10" in result.stdout
    verify = tfkit_process(["tfkit.wheels", "verify", "wheels", "--freeze", str(freeze)], cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # A version that differs from the freeze without a recorded move is caught.
    manifest["moves"].pop("numpy")
    (tmp_path / "wheels" / "manifest.json").write_text(json.dumps(manifest))
    assert wheels.verify(tmp_path / "wheels", freeze=freeze) == [
        f"numpy: the bundle has {packages['numpy']}, the freeze 2.2.6, and the manifest gives no reason"
    ]


# A venv standing in for Kaggle's TPU image, on this machine's Python: tensorflow-cpu 2.20.0 with the keras, numpy,
# protobuf and tensorboard it allows.
CPU_IMAGE = ("tensorflow-cpu==2.20.0", "keras==3.10.0", "numpy==2.2.6", "protobuf==5.29.5", "tensorboard==2.20.0")
HOST_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def _without_pip_config() -> dict[str, str]:
    # As on the notebook with internet off: no index, no configured find-links, only the bundle.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_") and key != "PYTHONPATH"}
    return {**env, "PIP_CONFIG_FILE": os.devnull}


def _freeze(python: Path) -> dict[str, str]:
    result = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True, check=True)
    return {canonicalize_name(name): version for name, version in re.findall(r"^(\S+)==(\S+)$", result.stdout, re.M)}


@pytest.fixture(scope="module")
def cpu_image(tmp_path_factory):
    """The image's venv with tensorflow-cpu 2.20.0 from the registry, and its ``pip freeze`` file."""
    folder = tmp_path_factory.mktemp("cpu-image")
    venv.create(folder / "venv", with_pip=True)
    python = folder / "venv" / "bin" / "python"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    # --no-compile: the image's own .pyc files are no part of what is tested, and compiling them costs a minute.
    install = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    subprocess.run([*install, *CPU_IMAGE], env=env, check=True, timeout=900)
    freeze = folder / "freeze.txt"
    freeze.write_text(subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True).stdout)
    return python, freeze


@pytest.fixture(scope="module")
def tpu_bundle(cpu_image, tmp_path_factory):
    """The TPU bundle for this Python, built against the image's freeze, as BUILD.md tells users; and the build."""
    _, freeze = cpu_image
    folder = tmp_path_factory.mktemp("tpu-bundle")
    args = ["--tpu", "--python", HOST_PYTHON, "--constraints", str(freeze), "--dest", "wheels"]
    result = tfkit_process(["tfkit.wheels", "build", *args], cwd=folder, timeout=900)
    assert result.returncode == 0, result.stderr
    return folder / "wheels", json.loads((folder / "wheels" / "manifest.json").read_text()), result


def test_the_tpu_bundle_downloads_with_its_libtpu_and_says_which_of_the_images_packages_move(cpu_image, tpu_bundle):
    _, freeze = cpu_image
    folder, manifest, build = tpu_bundle
    wheels_by_name = {canonicalize_name(name): version for name, version in manifest["packages"].items()}
    assert (wheels_by_name["tensorflow-tpu"], wheels_by_name["libtpu"]) == ("2.19.1", "0.0.10")
    assert manifest["python"] == HOST_PYTHON and "tensorflow-cpu" not in wheels_by_name
    # keras and protobuf are the image's; numpy and tensorboard move, each with the requirement that moves it.
    assert (wheels_by_name["keras"], wheels_by_name["protobuf"]) == ("3.10.0", "5.29.5")
    assert set(manifest["moves"]) == {"tensorflow-cpu", "numpy", "tensorboard"}
    numpy = wheels_by_name["numpy"]
    assert f"moves: numpy 2.2.6 -> {numpy}: tensorflow_tpu 2.19.1 requires numpy<2.2.0,>=1.26.0" in build.stdout
    assert "moves: tensorboard 2.20.0 -> 2.19.0: tensorflow_tpu 2.19.1 requires tensorboard~=2.19.0" in build.stdout
    verify = ["tfkit.wheels", "verify", str(folder), "--freeze", str(freeze), "--hashes_only"]
    result = tfkit_process(verify, cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr


def test_installing_the_tpu_bundle_over_tensorflow_cpu_2_20_gives_a_tensorflow_2_19_1_that_imports(
    cpu_image, tpu_bundle, outside_repo
):
    python, _ = cpu_image
    folder, manifest, _ = tpu_bundle
    before = _freeze(python)
    env = _without_pip_config()
    pip = [str(python), "-m", "pip", "--isolated", "--disable-pip-version-check"]
    # BUILD.md's two lines, as in the notebook with internet off.
    subprocess.run([*pip, "uninstall", "-y", "tensorflow", "tensorflow-cpu"], env=env, check=True, timeout=600)
    install = [*pip, "install", "--no-index", "--find-links", str(folder), manifest["install"]]
    result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    after = _freeze(python)
    # What the build said moves has moved to the bundle's version (tensorflow-cpu is gone); the rest is the image's.
    bundled = {canonicalize_name(name): version for name, version in manifest["packages"].items()}
    assert {name: after.get(name) for name in manifest["moves"]} == {
        name: bundled.get(name) for name in manifest["moves"]
    }
    assert {name: after.get(name) for name in before if name not in manifest["moves"]} == {
        name: version for name, version in before.items() if name not in manifest["moves"]
    }
    assert (after["tensorflow-tpu"], after["libtpu"], after["keras"], after["protobuf"]) == (
        "2.19.1",
        "0.0.10",
        "3.10.0",
        "5.29.5",
    )
    # Off a TPU, libtpu asks the GCE metadata server (169.254.169.254, whatever GCE_METADATA_HOST says) for the TPU's
    # topology, 30 tries for each of 7 variables; TPU_SKIP_MDS_QUERY=1 stops that, and any HTTP it still tried
    # would go to a closed loopback port.
    tpu_names = ("TPU_", "PJRT_", "NEXT_PLUGGABLE_", "TF_PLUGGABLE_", "ISTPUVM", "COLAB_TPU", "TF_XLA_FLAGS")
    env = {key: value for key, value in env.items() if not key.startswith(tpu_names) and "proxy" not in key.lower()}
    env |= {"GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1", "TPU_SKIP_MDS_QUERY": "1"}
    env |= {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}
    script = (
        "import tfkit, tensorflow as tf, keras, numpy, google.protobuf as protobuf; "
        "print(tf.__version__, keras.__version__, numpy.__version__, protobuf.__version__); "
        "print(float(tf.reduce_sum(tf.ones([2, 3]))))"
    )
    check = subprocess.run(
        [str(python), "-c", script], cwd=outside_repo, env=env, capture_output=True, text=True, timeout=300
    )
    assert check.returncode == 0, check.stderr[-3000:]
    assert check.stdout.split("\n")[:2] == [f"2.19.1 3.10.0 {bundled['numpy']} 5.29.5", "6.0"], check.stderr[-3000:]
    assert "Failed to get TPU metadata" not in check.stderr
