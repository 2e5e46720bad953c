"""Running out of device memory: the batch finder, and the recovery in the middle of a run (faults injected on CPU)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import DIGITS_CONFIG, read_scalars, stderr_lines, tfkit_process

import tfkit.train
from tfkit import autobatch

AUTO = ["train.per_replica_batch_size=auto", "train.global_batch_size=null"]


@pytest.mark.parametrize(
    ("threshold", "replicas", "tried"),
    [(40, 1, [8, 16, 32, 64, 48, 40]), (200, 1, [8, 16, 32, 64, 128, 256, 192, 224, 208, 200]), (24, 2, None)],
)
def test_the_finder_finds_an_injected_oom_threshold_exactly(threshold, replicas, tried):
    found = tfkit.train.find_batch(
        DIGITS_CONFIG,
        [*AUTO, f"faults.oom_above_per_replica_batch={threshold}", f"distribute.cpu_replicas={replicas}"],
    )
    assert (found["per_replica_batch_size"], found["grad_accum_steps"]) == (threshold, 1)
    assert found["global_batch_size"] == threshold * replicas
    trials = {trial["batch"]: trial for trial in found["trials"]}
    assert all(trial["fits"] == (batch <= threshold) for batch, trial in trials.items())
    assert all(trials[batch]["why"] == "out of memory" for batch in trials if batch > threshold)
    if tried:
        assert [trial["batch"] for trial in found["trials"]] == tried
    assert "that fits in 80% of the host's" in found["reason"]  # on CPU, the host budget


def test_with_a_global_batch_the_finder_splits_it_into_batch_and_accumulation():
    found = tfkit.train.find_batch(DIGITS_CONFIG, ["faults.oom_above_per_replica_batch=20"])  # global 64
    assert (found["per_replica_batch_size"], found["grad_accum_steps"], found["global_batch_size"]) == (16, 4, 64)


def test_the_search_keeps_multiples_of_8_and_of_128_on_tpu():
    def threshold_at(limit: int):
        return lambda batch: autobatch.Trial(batch=batch, fits=batch <= limit, peak_bytes=None)

    assert autobatch.search(threshold_at(300), upper=1024)[0] == 296
    assert autobatch.search(threshold_at(300), upper=1024, multiple_above_128=128)[0] == 256
    assert autobatch.search(threshold_at(5), upper=1024)[0] == 4  # 8 fails: 4, 2, 1
    assert autobatch.search(threshold_at(0), upper=1024)[0] is None
    assert autobatch.search(threshold_at(10_000), upper=100)[0] == 96  # the cap, rounded to a multiple of 8
    assert autobatch.search(threshold_at(12), upper=48, candidates=autobatch.divisors(48))[0] == 12
    assert autobatch.divisors(36) == [1, 2, 3, 4, 6, 9, 12, 18, 36]


def test_the_chosen_batch_is_stored_with_the_run_and_a_resume_uses_it(tmp_path, capsys):
    run = tmp_path / "run"
    fault = "faults.oom_above_per_replica_batch=40"
    first = tfkit.train.run(DIGITS_CONFIG, workdir=run, overrides=[*AUTO, fault, "faults.preempt_at_step=5"])
    out = capsys.readouterr().out
    assert "tfkit: batch finder: tried 8 fits" in out and "64 out of memory" in out
    assert "chose 40/replica x 1 accumulation" in out
    assert (first["status"], first["steps"], first["per_replica_batch_size"]) == ("stopped", 5, 40)
    assert first["batch_source"] == "auto" and first["batch_finder"]["per_replica_batch_size"] == 40
    stored = json.loads((run / "batch.json").read_text())
    assert (stored["per_replica_batch_size"], stored["global_batch_size"], stored["source"]) == (40, 40, "auto")

    second = tfkit.train.run(DIGITS_CONFIG, workdir=run, overrides=[*AUTO, "train.epochs=1"])
    out = capsys.readouterr().out
    assert "batch finder" not in out  # no fault now, and still no new search
    assert "using the batch split stored with this run (batch.json, from auto): 40/replica" in out
    assert (second["status"], second["per_replica_batch_size"], second["global_batch_size"]) == ("completed", 40, 40)


def test_an_oom_mid_run_halves_the_batch_and_ends_like_accumulation_from_the_start(tmp_path, capsys):
    run = tmp_path / "oom"
    epochs = "train.epochs=2"
    tfkit.train.run(DIGITS_CONFIG, workdir=run, overrides=[epochs, "faults.preempt_at_step=10"])  # 64/replica
    capsys.readouterr()
    recovered = tfkit.train.run(DIGITS_CONFIG, workdir=run, overrides=[epochs, "faults.oom_above_per_replica_batch=16"])
    out = capsys.readouterr().out
    assert "fault injection on: the step runs out of memory above a per-replica batch of 16" in out
    assert (
        "tfkit: out of device memory in step 11; restored step 10 and continuing with 32/replica x 2 accumulation "
        "(was 64 x 1): the same global batch of 64 and learning-rate schedule"
    ) in out
    assert "continuing with 16/replica x 4 accumulation (was 32 x 2)" in out
    assert recovered["status"] == "completed" and recovered["steps"] == 44
    assert (recovered["per_replica_batch_size"], recovered["grad_accum_steps"]) == (16, 4)
    assert recovered["global_batch_size"] == 64 and recovered["batch_source"] == "oom recovery"
    events = recovered["oom_recoveries"]
    assert [event["per_replica_batch_size"] for event in events] == [[64, 32], [32, 16]]
    assert all(event["step"] == 10 and "injected out-of-memory" in event["error"] for event in events)
    logged = read_scalars(run / "logs" / "train", "per_replica_batch_size")
    assert logged == {0: 64, 11: 16}  # from the step the split trains; the short-lived 32 went with its rewind

    small = tfkit.train.run(
        DIGITS_CONFIG,
        workdir=tmp_path / "small",
        overrides=[
            epochs,
            "train.global_batch_size=null",
            "train.per_replica_batch_size=16",
            "train.grad_accum_steps=4",
        ],
    )
    assert small["global_batch_size"] == 64
    for name, value in small["metrics"].items():
        assert np.isclose(recovered["metrics"][name], value, rtol=1e-3, atol=1e-4), name


@pytest.mark.slow
def test_an_oom_at_a_per_replica_batch_of_1_stops_with_exit_75_and_a_checkpoint(outside_repo):
    args = ["--set", "train.global_batch_size=4", "--set", "faults.oom_above_per_replica_batch=0"]
    result = tfkit_process(["tfkit.train", "--workdir", "run", "--set", "train.epochs=1", *args], cwd=outside_repo)
    assert result.returncode == 75, result.stderr
    assert "continuing with 2/replica x 2 accumulation" in result.stdout
    assert "continuing with 1/replica x 4 accumulation" in result.stdout
    summary = json.loads((outside_repo / "run" / "summary.json").read_text())
    assert (summary["status"], summary["stop_reason"], summary["steps"]) == ("stopped", "oom", 0)
    assert "per-replica batch of 1, which cannot shrink further" in summary["stop_detail"]
    assert stderr_lines(result)[-1].startswith("tfkit: stopped: oom at step 0; checkpoint saved in")
    assert (outside_repo / "run" / "checkpoints" / "checkpoint").exists()


def test_a_model_that_fits_at_no_batch_is_one_line_and_exit_2(outside_repo):
    args = ["--set", "train.per_replica_batch_size=auto", "--set", "train.global_batch_size=null"]
    result = tfkit_process(
        ["tfkit.train", "--workdir", "run", *args, "--set", "memory.device_fraction=0.001"], cwd=outside_repo
    )
    assert result.returncode == 2, result.stderr
    (line,) = stderr_lines(result)
    assert line.startswith("tfkit: error: train.per_replica_batch_size auto: not even a batch of 1 fits")
    assert "above 0% of the host's" in line and "Use mixed precision" in line
