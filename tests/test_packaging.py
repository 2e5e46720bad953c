from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO, tfkit_process


@pytest.mark.slow
def test_the_wheel_carries_the_configs_and_tfrecords_of_the_embedded_default(tmp_path, outside_repo):
    dist, site = tmp_path / "dist", tmp_path / "site"
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(REPO)]
    subprocess.run(build, check=True, capture_output=True, timeout=300)
    (wheel,) = dist.glob("tfkit-*.whl")
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    assert (site / "tfkit" / "configs" / "digits.yaml").is_file()
    assert (site / "tfkit" / "tfrecords" / "digits" / "train" / "schema.json").is_file()

    env = {"PYTHONPATH": str(site)}  # the installed wheel, not this checkout
    result = tfkit_process(["tfkit.train", "--set", "train.epochs=2"], cwd=outside_repo, env=env)
    assert result.returncode == 0, result.stderr
    config_text = (outside_repo / "runs" / "digits" / "config.yaml").read_text()
    assert str(site / "tfkit" / "tfrecords" / "digits" / "train") in config_text
    summary = json.loads((outside_repo / "runs" / "digits" / "summary.json").read_text())
    assert summary["status"] == "completed"


def test_importing_tfkit_without_tensorflow_says_how_to_install_it_in_one_line(tmp_path):
    # A stand-in package named tensorflow that fails to import, first on the path, as on a machine without it.
    fake = tmp_path / "no_tf" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named tensorflow')\n")
    env = {"PYTHONPATH": f"{fake.parent}:{REPO}"}
    result = tfkit_process(["tfkit.train"], cwd=tmp_path, env=env)
    assert result.returncode == 2  # bad input of the machine's, said in one line: no traceback since issue 17
    (last,) = result.stderr.strip().splitlines()
    assert last.startswith("tfkit: error: tfkit needs TensorFlow, which is not installed")
    assert "pip install 'tfkit[cpu]'" in last
