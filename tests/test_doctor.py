from __future__ import annotations

import json
import os

from conftest import REPO, stderr_lines, tfkit_process
from test_tpu_detect import NO_NETWORK, fake_libtpu

from tfkit import doctor


def test_doctor_json_has_every_field(tmp_path):
    result = tfkit_process(["tfkit.doctor", "--json", "--workdir", str(tmp_path)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"tensorflow", "keras", "python", "packages", "build", "devices", "host_memory", "disk"} <= set(data)
    assert {"accelerator_holders", "recommendations"} <= set(data)
    assert set(data["build"]) == {"cuda", "cuda_version", "cudnn_version", "tpu_support"}
    assert set(data["devices"]) == {"cpu_cores", "gpus", "tpu"}
    assert data["batch"] is None  # no --config
    assert data["host_memory"]["total_bytes"] >= data["host_memory"]["available_bytes"] > 0
    assert data["disk"]["free_bytes"] > 0 and data["disk"]["workdir"] == str(tmp_path.resolve())
    assert data["recommendations"][0] == "precision: auto will use float32"  # no GPU or TPU here


def test_the_text_report_and_a_tpu_that_this_tensorflow_cannot_drive(tmp_path):
    result = tfkit_process(["tfkit.doctor"], cwd=tmp_path, env={"TPU_NAME": "my-tpu"})
    assert result.returncode == 0, result.stderr
    assert "TPU: signs at my-tpu" in result.stdout
    assert "a TPU looks present (my-tpu) but this TensorFlow cannot drive it" in result.stdout


def test_accelerator_holders_are_read_from_proc_and_never_killed(tmp_path):
    proc = tmp_path / "proc"
    me = proc / str(os.getpid())
    (me / "fd").mkdir(parents=True)
    (me / "fd" / "3").symlink_to("/dev/nvidia0")
    (me / "fd" / "4").symlink_to("/dev/accel1")
    (me / "fd" / "5").symlink_to("/tmp/some-file")
    (me / "cmdline").write_bytes(b"python\0train.py\0")
    (proc / "self").mkdir()  # not a pid: ignored
    (holder,) = doctor.accelerator_holders(str(proc))
    assert holder["pid"] == os.getpid() and holder["command"] == "python train.py"
    assert holder["devices"] == ["/dev/accel1", "/dev/nvidia0"] and holder["rss_bytes"] > 0
    assert holder["to_stop_it"] == f"kill {os.getpid()}"


def test_with_a_config_the_doctor_recommends_the_batch_the_finder_chooses(tmp_path):
    args = ["--json", "--config", "digits", "--set", "faults.oom_above_per_replica_batch=48"]
    result = tfkit_process(["tfkit.doctor", *args], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # the finder's own line does not break the JSON
    batch = data["batch"]
    assert (batch["per_replica_batch_size"], batch["grad_accum_steps"], batch["global_batch_size"]) == (32, 2, 64)
    assert [trial["batch"] for trial in batch["trials"] if not trial["fits"]] == [64]
    assert data["recommendations"][-1].startswith("per-replica batch: 32 x 2 accumulation (the largest divisor")
    assert not list(tmp_path.iterdir())  # the trials ran in a temporary folder


def test_on_a_kaggle_v5e_8_the_doctor_shows_the_tpu_its_runtime_and_the_fix(tmp_path):
    # Kaggle's image: ISTPUVM, tensorflow-cpu and libtpu 0.0.17 (for JAX); the accelerator type names the v5e-8.
    site = fake_libtpu(tmp_path / "site", version="0.0.17")
    env = {**NO_NETWORK, "ISTPUVM": "1", "TPU_ACCELERATOR_TYPE": "v5litepod-8", "PYTHONPATH": f"{site}:{REPO}"}
    result = tfkit_process(["tfkit.doctor"], cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "TPU: signs at local: v5e, 8 chip(s), 8 replica(s) of 16 GiB HBM, bfloat16" in out
    assert f"TPU runtime: PJRT, libtpu {site}/libtpu/libtpu.so; NEXT_PLUGGABLE_DEVICE_USE_C_API=true" in out
    assert "recommend: tensorflow-cpu 2.21.0 has no TPU support" in out
    assert "fix: pip uninstall -y tensorflow tensorflow-cpu && pip install 'tensorflow-tpu==2.19.1'" in out
    assert "python -m tfkit.wheels build --tpu --python 3.11 --constraints freeze.txt" in out  # this Python
    assert "recommend: precision: auto will use float32" in out  # no tensorflow-tpu: not a usable TPU


def test_help_exits_0_and_a_bad_flag_is_one_line(tmp_path):
    assert tfkit_process(["tfkit.doctor", "--help"], cwd=tmp_path).returncode == 0
    result = tfkit_process(["tfkit.doctor", "--nope"], cwd=tmp_path)
    assert result.returncode == 2 and len(stderr_lines(result)) == 1
