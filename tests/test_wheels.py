"""The offline wheels bundle: built here from the package registry, installed with no index, verified by hash."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile

import pytest
from conftest import REPO, stderr_lines, tfkit_process

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
