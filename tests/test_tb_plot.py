"""plot: panels found by common tag names, a log-scale learning rate, marked NaN/inf, 50 runs, non-Latin tags."""

from __future__ import annotations

import math
import warnings

import matplotlib.image
import pytest
from tensorboardX import SummaryWriter

from tfkit import tb
from tfkit.errors import UserError


def write(folder, curves, steps=range(20)):
    writer = SummaryWriter(str(folder))
    for step in steps:
        for tag, value in curves.items():
            writer.add_scalar(tag, value(step), step)
    writer.close()
    return folder


def panel(drawn, title):
    return next(p for p in drawn if p.title == title)


def test_common_tag_names_find_their_panels(tmp_path):
    logdir = write(
        tmp_path / "logs",
        {
            "loss/train": lambda s: 1 / (s + 1),
            "train/loss": lambda s: 1 / (s + 2),
            "Loss/train": lambda s: 1 / (s + 3),
            "lr": lambda s: 0.1 * 0.5**s,
            "examples_per_second": lambda s: 100.0,
            "gpu/memory_mb": lambda s: 5.0,
            "accuracy": lambda s: s / 20,
        },
    )
    drawn = tb.plot([logdir], tmp_path / "curves.png")
    assert [(p.title, p.curves) for p in drawn] == [
        ("loss", 3),
        ("metrics", 1),
        ("learning rate", 1),
        ("throughput", 1),
        ("memory", 1),
    ]
    assert panel(drawn, "learning rate").log_scale and not panel(drawn, "loss").log_scale
    image = matplotlib.image.imread(tmp_path / "curves.png")
    for left, top, right, bottom in (p.box for p in drawn):
        inside = image[top + 5 : bottom - 5, left + 5 : right - 5, :3]
        assert ((inside.max(axis=2) - inside.min(axis=2)) > 0.2).mean() > 0.002  # a coloured curve is drawn


def test_a_custom_panel_claims_its_tags(tmp_path):
    logdir = write(tmp_path / "logs", {"perplexity": lambda s: 10.0 - s / 4, "loss": lambda s: 1.0})
    drawn = tb.plot([logdir], tmp_path / "curves.png", panels=["perplexity=(?i)ppl|perplexity"])
    assert [(p.title, p.curves) for p in drawn][:3] == [("perplexity", 1), ("loss", 1), ("metrics", 0)]
    with pytest.raises(UserError, match="--panel received 'broken'"):
        tb.plot([logdir], tmp_path / "other.png", panels=["broken"])


def test_nan_and_infinite_points_are_marked(tmp_path):
    values = {3: math.nan, 7: math.inf, 11: -math.inf}
    logdir = write(tmp_path / "logs", {"loss": lambda s: values.get(s, 1.0 / (s + 1))})
    drawn = tb.plot([logdir], tmp_path / "curves.png")
    assert panel(drawn, "loss").nonfinite == 3


def test_fifty_runs_keep_a_legend_beside_the_panel(tmp_path):
    for run in range(50):
        write(tmp_path / "logs" / f"run_{run:02d}", {"loss": lambda s, run=run: 1.0 / (s + 1 + run)}, steps=range(3))
    drawn = tb.plot([tmp_path / "logs"], tmp_path / "curves.png")
    image = matplotlib.image.imread(tmp_path / "curves.png")
    loss = panel(drawn, "loss")
    assert loss.curves == 50
    legend_left, legend_top, legend_right, legend_bottom = loss.legend_box
    right = loss.box[2]
    assert legend_left >= right  # beside the panel, not over its curves
    assert legend_right <= image.shape[1] and legend_bottom <= image.shape[0] and legend_top >= 0


def test_non_latin_tags_are_drawn_with_a_font_that_has_their_glyphs(tmp_path):
    logdir = write(tmp_path / "logs", {"訓練/損失": lambda s: 1.0 / (s + 1), "学習率": lambda s: 0.1})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tb.plot([logdir], tmp_path / "curves.png")
    missing = [str(warning.message) for warning in caught if "missing from font" in str(warning.message)]
    assert missing == []
