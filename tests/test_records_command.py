"""``python -m tfkit.records``: every subcommand's help, and inspect and verify without TensorFlow."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import DIGITS_DATA, REPO, python_script, tfkit_process

from tfkit import records

# Runs inspect and verify in a fresh process and reports what they imported and how long importing took.
NO_TENSORFLOW = """
import json, sys, time
started = time.perf_counter()
from tfkit.records import command
imported = time.perf_counter() - started
codes = [command.main(["inspect", sys.argv[1]]), command.main(["verify", sys.argv[1]])]
print(json.dumps({"codes": codes, "import_seconds": imported, "modules": sorted(sys.modules)}))
"""


@pytest.mark.parametrize("command", [[], ["write"], ["inspect"], ["verify"], ["schema"]])
def test_help_exits_0_on_every_subcommand(tmp_path, command):
    result = tfkit_process(["tfkit.records", *command, "--help"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: python -m tfkit.records {' '.join(command)}".rstrip())


def test_inspect_and_verify_start_without_tensorflow(tmp_path):
    result = python_script(NO_TENSORFLOW.replace("sys.argv[1]", repr(str(DIGITS_DATA / "train"))), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["codes"] == [0, 0]
    assert "tensorflow" not in report["modules"] and "keras" not in report["modules"]
    assert not [name for name in report["modules"] if name in ("tfkit.config", "tfkit.data", "tfkit.train")]
    assert report["import_seconds"] < 2
    assert "sample label: 4" in result.stdout and "1437 good records of 1437 in 8 shard(s); clean" in result.stdout


def test_inspect_decodes_images_strings_and_integer_lists_without_tensorflow(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (6, 4, 3), dtype=np.uint8)
    features = {
        "image": records.Feature("uint8", (6, 4, 3), "png"),
        "name": records.Feature("string", (), "string"),
        "box": records.Feature("int64", (4,), "int64"),
    }
    example = {"image": tf.io.encode_png(pixels).numpy(), "name": b"first", "box": np.array([1, -2, 3, 4])}
    records.write_split([example], tmp_path / "split", split="train", features=features, num_shards=1)
    sample = records.first_example(tmp_path / "split", records.read_schema(tmp_path / "split"))
    assert np.array_equal(sample["image"], pixels)
    assert sample["name"].item() == b"first" and sample["box"].tolist() == [1, -2, 3, 4]
    result = tfkit_process(["tfkit.records", "inspect", "split"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "  sample name: b'first'" in result.stdout and "  sample box: [ 1 -2  3  4]" in result.stdout
    assert "  image: uint8 [6, 4, 3] (png)" in result.stdout


def test_a_missing_folder_or_bad_flag_is_one_line_and_exit_2(tmp_path):
    for args in (["inspect", "nowhere"], ["verify", "nowhere"], ["write", "x.npy", "--out", "o", "--shard_size", "1%"]):
        result = tfkit_process(["tfkit.records", *args], cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("tfkit: error: ")
    assert not (tmp_path / "o").exists()


def test_the_package_imports_nothing_of_training_and_no_function_imports_a_tfkit_module():
    allowed = ("tfkit.records", "tfkit.errors", "tfkit.units", "tfkit.cli", "tfkit.atomic")
    lazy = ("tensorflow", "h5py", "tensorflow_datasets")  # optional or heavy, imported where needed
    for path in sorted((REPO / "tfkit" / "records").rglob("*.py")):
        tree = ast.parse(path.read_text())
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] if node.module != "tfkit" else [f"tfkit.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            where = f"{Path(path).relative_to(REPO)}:{node.lineno}"
            for name in names:
                if name.startswith("tfkit"):
                    assert name.startswith(allowed), f"{where} imports {name}"
                    assert id(node) in top_level, f"{where} imports {name} inside a function"
                elif id(node) not in top_level:
                    assert name.split(".")[0] in lazy, f"{where} imports {name} inside a function"


def test_write_says_how_many_nan_values_it_counted_and_inspect_shows_them(tmp_path):
    x = np.ones((40, 2), np.float32)
    x[[3, 30], 1] = np.nan
    np.savez(tmp_path / "d.npz", x=x, label=np.arange(40) % 2)
    written = tfkit_process(["tfkit.records", "write", "d.npz", "--out", "data"], cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert "note: feature 'x' holds 2 NaN/inf value(s), the first in record 3; training refuses them" in written.stdout
    inspected = tfkit_process(["tfkit.records", "inspect", "data"], cwd=tmp_path)
    assert "x: float32 [2] (raw, 2 NaN/inf from record 3)" in inspected.stdout


def test_write_refuses_an_existing_split_and_force_replaces_it_with_eval_and_train(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.ones((40, 2), np.float32), label=np.arange(40) % 2)
    assert tfkit_process(["tfkit.records", "write", "d.npz", "--out", "data"], cwd=tmp_path).returncode == 0
    again = tfkit_process(["tfkit.records", "write", "d.npz", "--out", "data"], cwd=tmp_path)
    assert again.returncode == 2 and "Add --force to replace it" in again.stderr
    forced = ["tfkit.records", "write", "d.npz", "--out", "data", "--force", "--eval_fraction", "0.25"]
    assert tfkit_process(forced, cwd=tmp_path).returncode == 0
    assert sorted(path.name for path in (tmp_path / "data").iterdir()) == ["eval", "train"]
    assert records.read_schema(tmp_path / "data" / "eval").records == 10
    assert sorted(path.name for path in tmp_path.iterdir()) == ["d.npz", "data"]
