"""tfkit.stopping.StopWatch: the time limit leaves room for one more call, the epoch's eval and the last checkpoint."""

from __future__ import annotations

import time

from tfkit import stopping


def watch_started(seconds_ago: float) -> stopping.StopWatch:
    return stopping.StopWatch(time_limit_seconds=10.0, started=time.monotonic() - seconds_ago, preempt_at_step=None)


def test_the_reserve_counts_the_slowest_eval_once_one_was_timed():
    watch = watch_started(4.0)
    watch.record_call(1.0)
    watch.record_save(0.5)
    # 4 s spent + 2 x (1 + 0.5) + the call standing in for the untimed eval (1) + 1 s margin = 9 s: room left.
    assert watch.reason(step_before=0, step_after=8) is None
    watch.record_eval(2.5)  # an eval slower than a call: 4 + 3 + 2.5 + 1 = 10.5 s, past the limit
    assert watch.reason(step_before=8, step_after=16) == "time_limit"


def test_without_a_time_limit_nothing_stops_the_run():
    watch = stopping.StopWatch(time_limit_seconds=None, started=time.monotonic() - 1e6, preempt_at_step=None)
    watch.record_call(100.0)
    watch.record_eval(100.0)
    assert watch.reason(step_before=0, step_after=8) is None
