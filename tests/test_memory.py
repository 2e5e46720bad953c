from __future__ import annotations

import json
import time

import psutil
import pytest
import tensorflow as tf
from conftest import stderr_lines, tfkit_process

from tfkit import memory, units
from tfkit.errors import UserError


def test_limits_are_a_share_of_the_budget_or_a_size():
    assert units.parse_limit("85%", key="k").of(1000) == 850
    assert units.parse_limit("6GB", key="k").of(1) == 6 * 10**9
    assert units.parse_limit("512MiB", key="k").of(1) == 512 * 2**20
    for bad in ("lots", "0%", "150%", "6 parsecs"):
        with pytest.raises(UserError, match="config key 'k'"):
            units.parse_limit(bad, key="k").of(1000)
    assert memory.host_budget_bytes() <= psutil.virtual_memory().total


def test_the_guard_trips_on_real_resident_memory():
    with memory.HostMemoryGuard(limit_bytes=10**6, attribution="nothing to name", interval_seconds=0.01) as guard:
        for _ in range(200):
            if guard.tripped:
                break
            time.sleep(0.01)
    assert guard.tripped is not None and "passed memory.host_limit 976.6 KB; nothing to name" in guard.tripped
    with memory.HostMemoryGuard(limit_bytes=10**13, attribution="", interval_seconds=0.01) as roomy:
        time.sleep(0.05)
    assert roomy.tripped is None


@pytest.mark.slow
def test_a_low_host_limit_stops_cleanly_with_a_checkpoint_and_the_run_resumes(outside_repo):
    stopped = tfkit_process(["tfkit.train", "--workdir", "run", "--set", "memory.host_limit=100MB"], cwd=outside_repo)
    assert stopped.returncode == 75, stopped.stderr
    assert stderr_lines(stopped)[-1].startswith("tfkit: stopped: host_memory at step")
    summary = json.loads((outside_repo / "run" / "summary.json").read_text())
    assert (summary["status"], summary["stop_reason"]) == ("stopped", "host_memory")
    assert "the largest consumer tfkit can attribute is the shuffle buffer, 2048 examples" in summary["stop_detail"]
    assert tf.train.latest_checkpoint(str(outside_repo / "run" / "checkpoints")).endswith(f"ckpt-{summary['steps']}")
    resumed = tfkit_process(["tfkit.train", "--workdir", "run", "--set", "train.epochs=2"], cwd=outside_repo)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed at epoch 1, step {summary['steps']}" in resumed.stdout
