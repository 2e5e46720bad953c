"""The Kaggle TPU recipe: its config, reduce-LR-on-plateau, and the notebook, all rehearsed on CPU."""

from __future__ import annotations

import json

import nbformat
import pytest
from conftest import DIGITS_CONFIG, DIGITS_DATA, REPO, read_scalars, tfkit_process
from nbclient import NotebookClient

import tfkit.train
from tfkit import config as config_lib
from tfkit import resources


def test_the_tpu_recipe_is_8_per_replica_bfloat16_plateau_and_best_by_val_loss():
    config = config_lib.load(resources.config_path("efficientnetv2_tpu"))
    assert (config.model.name, config.task.loss, config.precision) == ("EfficientNetV2L", "mse", "mixed_bfloat16")
    assert config.train.per_replica_batch_size == 8 and config.train.steps_per_execution > 1
    assert config.optimizer.schedule == "plateau" and config.checkpoint.monitor == "val_loss"
    assert config.data.train.startswith("/kaggle/input/")
    comments = (REPO / "configs" / "efficientnetv2_tpu.yaml").read_text()
    assert "Kaggle TPU v5e-8: 8 chips, 1 replica each, 16 GiB HBM per replica -> 8 x 8 = 64 global" in comments
    assert "TPU v3-8:         4 chips, 2 cores each, 16 GiB HBM per core      -> 8 x 8 = 64 global" in comments


@pytest.mark.slow
def test_the_cpu_rehearsal_in_the_configs_comments_runs_with_8_replicas(outside_repo):
    comment = (REPO / "configs" / "efficientnetv2_tpu.yaml").read_text()
    assert "--cpu_replicas 8 --set model=digits_cnn" in comment
    args = ["--config", str(REPO / "configs" / "efficientnetv2_tpu.yaml"), "--cpu_replicas", "8"]
    sets = ["model=digits_cnn", f"data.train={DIGITS_DATA}/train", f"data.eval={DIGITS_DATA}/eval"]
    sets += ["train.epochs=2", "precision=float32", "train.steps_per_execution=4"]
    result = tfkit_process(
        ["tfkit.train", "--workdir", "run", *args, *[item for s in sets for item in ("--set", s)]], cwd=outside_repo
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((outside_repo / "run" / "summary.json").read_text())
    assert (summary["strategy"], summary["replicas"], summary["global_batch_size"]) == ("mirrored", 8, 64)
    assert summary["status"] == "completed" and "rmse" in summary["metrics"]


def test_a_plateau_lowers_the_learning_rate_and_a_resume_keeps_counting(tmp_path, capsys):
    # At a rate of 1e-12 the weights do not move, so val_accuracy never beats its first epoch: with a patience of 2
    # the rate is lowered at the end of epoch 3. The run stops inside epoch 3; only a resume that restored the
    # count (1 after epoch 2) lowers it there rather than at epoch 4.
    overrides = [
        "optimizer.schedule=plateau",
        "optimizer.plateau_patience=2",
        "optimizer.base_learning_rate=1e-12",
        "optimizer.warmup_steps=0",
        "checkpoint.monitor=val_accuracy",
        "train.epochs=4",
    ]
    run = tmp_path / "run"
    stopped = tfkit.train.run(DIGITS_CONFIG, workdir=run, overrides=[*overrides, "faults.preempt_at_step=50"])
    assert (stopped["status"], stopped["steps"]) == ("stopped", 50)
    summary = tfkit.train.run(DIGITS_CONFIG, workdir=run, overrides=overrides)
    out = capsys.readouterr().out
    assert summary["status"] == "completed"
    lowered = "tfkit: val_accuracy has not improved for 2 epoch(s); learning rate x0.5 (now x0.5 of the schedule's)"
    assert out.count(lowered) == 1
    assert out.index("epoch 3/4") < out.index(lowered) < out.index("epoch 4/4")
    rates = read_scalars(run / "logs" / "train", "learning_rate")
    assert rates[66] == pytest.approx(1e-12) and rates[88] == pytest.approx(0.5e-12)


@pytest.mark.slow
def test_the_kaggle_notebook_runs_top_to_bottom_in_rehearsal_mode(tmp_path):
    notebook = nbformat.read(REPO / "notebooks" / "kaggle_tpu.ipynb", as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert "rehearsal mode" in outputs and "recommend: precision" in outputs
    assert "'status': 'stopped'" in outputs and "'status': 'completed'" in outputs
    work = tmp_path / "kaggle-rehearsal"
    assert (work / "curves.png").stat().st_size > 10_000 and (work / "scalars.csv").exists()
    assert (work / "efficientnetv2.keras").exists() and (work / "efficientnetv2-run.tar.gz").exists()
    summary = json.loads((work / "runs" / "efficientnetv2" / "summary.json").read_text())
    assert (summary["replicas"], summary["global_batch_size"], summary["status"]) == (8, 64, "completed")
