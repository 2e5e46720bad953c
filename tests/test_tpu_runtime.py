"""The PJRT set-up before TensorFlow loads, on fake machines in fresh processes, and the stack's known problems."""

from __future__ import annotations

import json
import textwrap

import pytest
from conftest import REPO, python_script, stderr_lines
from test_tpu_detect import NO_NETWORK, PJRT_VARIABLES, TPU_VARIABLES, fake_libtpu, fake_machine

from tfkit import tpu_runtime

# Each process starts without the signs of the machine that runs the tests, then gets its fake machine's.
CLEAN = {name: "" for name in (*TPU_VARIABLES, *PJRT_VARIABLES)}


def _env(tmp_path, machine_env, *, libtpu: bool = True) -> dict[str, str]:
    path = f"{fake_libtpu(tmp_path / 'site')}:{REPO}" if libtpu else str(REPO)
    return {**CLEAN, **NO_NETWORK, **machine_env, "PYTHONPATH": path}


def _without_empty(env: dict[str, str]) -> str:
    # python -c cannot unset variables through subprocess' env, so the script drops the empty ones first.
    return "import os\nfor k in [k for k, v in os.environ.items() if v == '']: del os.environ[k]\n"


SETUP_AND_ATTEMPT = """
import json, os, sys
from tfkit import tpu_runtime
setup = tpu_runtime.prepare(dev_root={dev!r}, sys_root={sys!r})
print("SETUP", json.dumps({{"facts": setup.facts.to_dict(), **setup.to_dict(),
    "env": {{k: os.environ.get(k) for k in ("TPU_NAME", "PJRT_DEVICE", "NEXT_PLUGGABLE_DEVICE_USE_C_API",
                                         "TF_PLUGGABLE_DEVICE_LIBRARY_PATH", "TF_XLA_FLAGS")}}}}))
from tfkit import distribute, config, errors
address = setup.facts.address
try:
    distribute.select(config.DistributeConfig(strategy="tpu", tpu_address=address))
except errors.UserError as error:
    print("ATTEMPT", address, "->", error)
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["v3-8 node", "v3-8 VM", "Kaggle v5e-8", "Colab v5e-1"])
def test_each_kind_gets_its_runtime_variables_its_strategy_and_its_message(tmp_path, kind):
    machine_env = fake_machine(tmp_path, kind)
    script = _without_empty({}) + textwrap.dedent(
        SETUP_AND_ATTEMPT.format(dev=str(tmp_path / "dev"), sys=str(tmp_path / "sys"))
    )
    result = python_script(script, cwd=tmp_path, env=_env(tmp_path, machine_env), timeout=120)
    assert result.returncode == 0, result.stderr
    setup = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("SETUP "))[6:])
    attempt = next(line for line in result.stdout.splitlines() if line.startswith("ATTEMPT "))
    library = str(tmp_path / "site" / "libtpu" / "libtpu.so")
    if kind.endswith("v5e-8") or kind.endswith("v5e-1"):
        # PJRT, with the libtpu package's library, whatever TensorFlow is installed (here tensorflow-cpu).
        assert setup["env"] == {
            "TPU_NAME": "local",
            "PJRT_DEVICE": "TPU",
            "NEXT_PLUGGABLE_DEVICE_USE_C_API": "true",
            "TF_PLUGGABLE_DEVICE_LIBRARY_PATH": library,
            "TF_XLA_FLAGS": "--tf_mlir_enable_mlir_bridge=true",
        }
        assert setup["set_variables"]["TF_PLUGGABLE_DEVICE_LIBRARY_PATH"] == library
        assert setup["facts"]["replicas"] == (8 if kind.endswith("8") else 1)
        # The TensorFlow here has no TPU support: the stack's problem is named, with the fix.
        assert any("tensorflow-cpu" in line and "has no TPU support" in line for line in setup["problems"])
        assert attempt.startswith("ATTEMPT local -> ")
        assert "pip install 'tensorflow-tpu==2.19.1'" in attempt
    else:
        assert setup["set_variables"] == {} and setup["env"]["PJRT_DEVICE"] is None  # v2/v3: no PJRT
        assert setup["env"]["TF_PLUGGABLE_DEVICE_LIBRARY_PATH"] is None
    if kind == "v3-8 node":
        # Nothing listens on 127.0.0.1:9: the node's address fails fast, with the cause.
        assert attempt.startswith("ATTEMPT grpc://127.0.0.1:9 -> the TPU at 'grpc://127.0.0.1:9' did not start")
        assert "nothing answers at that address" in attempt
    if kind == "v3-8 VM":
        assert setup["facts"]["replicas"] == 8 and attempt.startswith("ATTEMPT local -> ")


def test_import_tfkit_in_a_fresh_process_sets_pjrt_from_environment_signs_without_tensorflow(tmp_path):
    env = _env(tmp_path, {"ISTPUVM": "1", "TPU_ACCELERATOR_TYPE": "v5litepod-8", "PJRT_DEVICE": "TPU_USER"})
    script = _without_empty({}) + textwrap.dedent(
        """
        import json, os, sys
        import tfkit
        print(json.dumps({"tf": "tensorflow" in sys.modules, "set": tfkit.tpu_setup.set_variables,
                          "kept": tfkit.tpu_setup.kept_variables, "pjrt": os.environ["PJRT_DEVICE"]}))
        """
    )
    result = python_script(script, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["tf"] is False
    assert out["set"]["NEXT_PLUGGABLE_DEVICE_USE_C_API"] == "true" and out["set"]["TPU_NAME"] == "local"
    assert out["set"]["TF_PLUGGABLE_DEVICE_LIBRARY_PATH"].endswith("site/libtpu/libtpu.so")
    assert out["kept"] == {"PJRT_DEVICE": "TPU_USER"} and out["pjrt"] == "TPU_USER"  # the user's value stays
    assert not stderr_lines(result)


@pytest.mark.slow
def test_a_notebook_that_imported_tensorflow_first_gets_one_line_to_restart(tmp_path):
    env = _env(tmp_path, {"ISTPUVM": "1", "TPU_ACCELERATOR_TYPE": "v5litepod-8"})
    script = _without_empty({}) + "import os, tensorflow, tfkit\nprint('PJRT', os.environ.get('PJRT_DEVICE'))\n"
    result = python_script(script, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert stderr_lines(result) == [tpu_runtime.RESTART_LINE]
    assert "PJRT None" in result.stdout  # nothing set that this process could no longer use


def test_without_a_libtpu_nothing_is_set_and_the_fix_is_named(tmp_path):
    env = _env(tmp_path, {"ISTPUVM": "1", "TPU_ACCELERATOR_TYPE": "v5litepod-1"}, libtpu=False)
    script = _without_empty({}) + "import tfkit\nprint(tfkit.tpu_setup.set_variables, tfkit.tpu_setup.problems)\n"
    result = python_script(script, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("{} (")
    assert "needs libtpu.so and none was found" in result.stdout
    assert "pip install 'tensorflow-tpu==2.19.1'" in result.stdout


@pytest.mark.parametrize(
    ("versions", "pin", "expected"),
    [
        ({"tensorflow-tpu": "2.19.1", "libtpu": "0.0.10"}, "0.0.10", []),
        ({"tensorflow-cpu": "2.20.0", "libtpu": "0.0.17"}, None, ["tensorflow-cpu 2.20.0 has no TPU support"]),
        ({"tensorflow-tpu": "2.20.0", "libtpu": "0.0.17"}, None, ["tensorflow-tpu 2.20.0 and its libtpu report"]),
        (
            {"tensorflow-tpu": "2.19.1", "libtpu": "0.0.17"},
            "0.0.10",
            ["libtpu 0.0.17 is installed but tensorflow-tpu 2.19.1 was built for libtpu 0.0.10"],
        ),
        ({}, None, ["no TensorFlow is installed"]),
    ],
)
def test_tensorflow_libtpu_pairs_known_not_to_work_are_named_with_the_fix(versions, pin, expected):
    problems = tpu_runtime.stack_problems(versions, libtpu_pin=pin)
    assert [line[: len(start)] for line, start in zip(problems, expected, strict=True)] == expected
    assert all("fix: " in line for line in problems)
