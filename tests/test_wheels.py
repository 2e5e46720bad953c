"""The offline wheels bundle: built here from the package registry, installed with no index, verified by hash."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile

import pytest
from conftest import REPO, stderr_lines, tfkit_process

from tfkit import wheels
from tfkit.errors import UserError

pytestmark = pytest.mark.slow  # each test resolves against the package registry


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


def test_a_tpu_bundle_gets_the_current_tensorflow_tpu_and_a_libtpu_that_needs_a_newer_glibc(tmp_path):
    manifest = wheels.build(tmp_path / "wheels", tensorflow="tensorflow-tpu")
    names = list(manifest["files"])
    (tpu,) = [name for name in names if name.startswith("tensorflow_tpu-")]
    (libtpu,) = [name for name in names if name.startswith("libtpu-")]
    # With tags only up to manylinux_2_28, pip quietly took tensorflow-tpu 2.19.1 and libtpu 0.0.10.
    assert tuple(int(part) for part in tpu.split("-")[1].split(".")[:2]) >= (2, 20), tpu
    glibc = re.search(r"manylinux_2_(\d+)", libtpu)
    assert glibc and int(glibc.group(1)) >= 31, libtpu
    assert manifest["install"] == "tfkit[tpu]"
    assert wheels.verify(tmp_path / "wheels", install=False) == []
