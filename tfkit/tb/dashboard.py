"""``plot``: a dashboard PNG of one or more logdirs, one panel per kind of curve, runs overlaid.

Tags go to panels by the names writers commonly use (``loss``, ``epoch_loss``, ``loss/train``, ``train/loss``,
``Loss/train``; ``lr``, ``learning_rate``; ``examples_per_second``; ``rss_mb``, ``memory``), first match wins, and
tags that no panel claims are drawn under "metrics". ``--panel NAME=REGEX`` adds a panel or replaces one's pattern.
The learning rate is on a log scale; NaN and infinite points are marked with a cross at the panel's top (NaN, +inf)
or bottom (-inf); the legend sits beside its panel, in columns, so 50 runs stay readable; a font that has the
glyphs of non-Latin tags is found among the installed ones.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfkit.errors import UserError
from tfkit.tb import output, scalar_table

PANELS: tuple[tuple[str, str | None], ...] = (
    ("loss", r"(?i)(?:^|[/_.\s-])loss(?:$|[/_.\s-])"),
    ("metrics", None),  # every tag no other panel claims
    ("learning rate", r"(?i)learning[_\s-]?rate|(?:^|[/_.\s-])lr(?:$|[/_.\s-])"),
    (
        "throughput",
        r"(?i)(?:examples|samples|images|tokens|steps|batches)[_/\s-]?per[_/\s-]?s|throughput|(?:^|[/_])fps$|step_time",
    ),
    ("memory", r"(?i)memory|(?:^|[/_])(?:rss|mem|vram)(?:$|[/_])|_[mg]b$|bytes_in_use"),
)
LOG_SCALE_PANELS = frozenset({"learning rate"})
# Left off the dashboard because their scale would flatten a panel's other curves; `export` still has them.
HIDDEN = re.compile(r"^(?:loss_scale|step_time_ms)$")
LEGEND_ROWS = 25  # entries per legend column, so a panel's legend fits beside it
_STYLES = ("-", "--", ":")
_FONT_PACKAGES = ("matplotlib_fontja", "japanize_matplotlib")  # pip packages that ship a CJK font


@dataclass(frozen=True)
class PanelDrawn:
    """One panel of the PNG.

    Attributes:
        title: The panel's name.
        box: Its axes in the PNG as (left, top, right, bottom) pixels.
        legend_box: Its legend likewise, or None when it has no curve.
        curves: How many (run, tag) curves it draws.
        nonfinite: How many NaN or infinite points it marks.
        log_scale: Whether its y axis is logarithmic.
    """

    title: str
    box: tuple[int, int, int, int]
    legend_box: tuple[int, int, int, int] | None
    curves: int
    nonfinite: int
    log_scale: bool


def parse_panels(texts: Sequence[str] | None) -> tuple[tuple[str, str | None], ...]:
    """``PANELS`` with each ``NAME=REGEX`` applied: a known NAME gets the new pattern, a new one is added first.

    Raises:
        UserError: A text without ``=`` or with a pattern that is not a regular expression.
    """
    panels = dict(PANELS)
    added: dict[str, str] = {}
    for text in texts or ():
        name, separator, pattern = text.partition("=")
        if not separator or not name.strip() or not pattern:
            raise UserError(f"--panel received {text!r}; expected NAME=REGEX, e.g. 'perplexity=(?i)ppl|perplexity'.")
        try:
            re.compile(pattern)
        except re.error as error:
            raise UserError(
                f"--panel received {text!r}, whose pattern is not a regular expression ({error})."
            ) from None
        (panels if name.strip() in panels and panels[name.strip()] else added)[name.strip()] = pattern
    return (*added.items(), *panels.items())


def plot(
    logdirs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    panels: Sequence[str] | None = None,
    force: bool = False,
) -> list[PanelDrawn]:
    """Draws the dashboard PNG of ``logdirs`` to ``out``; returns each panel as drawn, in display order.

    Raises:
        UserError: Bad input or an existing ``out`` without ``force``; nothing is written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layout = parse_panels(panels)
    roots = [Path(logdir) for logdir in logdirs]
    curves = _curves(roots)
    output.check_target(Path(out), inputs=roots, force=force)
    assigned = _assign(layout, sorted(curves))
    rows = max((min(len(assigned[title]), LEGEND_ROWS) for title, _ in layout), default=0)
    columns = max((math.ceil(len(assigned[title]) / LEGEND_ROWS) for title, _ in layout), default=1)
    panel_height = max(3.0, 0.16 * rows + 0.8)
    labels = [label for label in curves] + [title for title, _ in layout]
    with matplotlib.rc_context({"font.family": _font_families(labels)}):
        figure, axes = plt.subplots(
            len(layout),
            1,
            figsize=(10 + 2.6 * columns, panel_height * len(layout)),
            dpi=100,
            squeeze=False,
            layout="constrained",
        )
        drawn = [
            _draw_panel(axis, title, [(label, curves[label]) for label in assigned[title]])
            for axis, (title, _) in zip(axes[:, 0], layout, strict=True)
        ]
        with output.staged_file(Path(out), inputs=roots, force=force) as temporary:
            figure.savefig(temporary, format="png")
        height = figure.bbox.height
        panels_drawn = []
        for axis, (title, count, nonfinite, log_scale) in zip(axes[:, 0], drawn, strict=True):
            legend = axis.get_legend()
            panels_drawn.append(
                PanelDrawn(
                    title=title,
                    box=_pixels(axis.get_window_extent(), height),
                    legend_box=_pixels(legend.get_window_extent(), height) if legend else None,
                    curves=count,
                    nonfinite=nonfinite,
                    log_scale=log_scale,
                )
            )
        plt.close(figure)
    return panels_drawn


def _curves(roots: list[Path]) -> dict[str, list[tuple[int, float]]]:
    """Each (logdir, run, tag) curve as its label and points, steps in order."""
    common = Path(os.path.commonpath([root.resolve() for root in roots])) if len(roots) > 1 else None
    curves: dict[str, list[tuple[int, float]]] = {}
    for root in roots:
        for row in scalar_table.read_rows(root):
            if HIDDEN.search(row.tag):
                continue
            where = Path(row.run) if common is None else root.resolve().relative_to(common) / row.run
            curves.setdefault(f"{where.as_posix()}: {row.tag}", []).append((row.step, float(row.value)))
    return {label: sorted(points, key=lambda point: point[0]) for label, points in curves.items()}


def _assign(layout: Sequence[tuple[str, str | None]], labels: list[str]) -> dict[str, list[str]]:
    assigned: dict[str, list[str]] = {title: [] for title, _ in layout}
    fallback = next(title for title, pattern in layout if pattern is None)
    for label in labels:
        tag = label.split(": ", 1)[1]
        title = next((title for title, pattern in layout if pattern and re.search(pattern, tag)), fallback)
        assigned[title].append(label)
    return assigned


Curve = tuple[str, list[tuple[int, float]]]


def _draw_panel(axis: Any, title: str, curves: list[Curve]) -> tuple[str, int, int, bool]:
    import matplotlib.colors
    from matplotlib import colormaps

    palette = colormaps["tab10" if len(curves) <= 10 else "tab20"]
    nonfinite = 0
    positive = True
    for index, (label, points) in enumerate(curves):
        steps = [step for step, _ in points]
        values = [value if math.isfinite(value) else math.nan for _, value in points]
        color = matplotlib.colors.to_hex(palette(index % palette.N))
        short = label if len(label) <= 48 else "…" + label[-47:]
        axis.plot(
            steps,
            values,
            label=short,
            color=color,
            linestyle=_STYLES[index // palette.N % len(_STYLES)],
            linewidth=1.2,
            marker="." if len(points) < 30 else None,
        )
        positive = positive and all(value > 0 for value in values if math.isfinite(value))
        for where, kept in ((1.0, lambda value: math.isnan(value) or value > 0), (0.0, lambda value: value < 0)):
            marked = [step for step, value in points if not math.isfinite(value) and kept(value)]
            if marked:
                axis.plot(
                    marked,
                    [where] * len(marked),
                    linestyle="none",
                    marker="x",
                    markersize=9,
                    color=color,
                    transform=axis.get_xaxis_transform(),
                    clip_on=False,
                )
                nonfinite += len(marked)
    log_scale = title in LOG_SCALE_PANELS and bool(curves) and positive
    if log_scale:
        axis.set_yscale("log")
    axis.set_title(
        title + (f"  (× marks {nonfinite} NaN/inf points: NaN and +inf at top, -inf at bottom)" if nonfinite else "")
    )
    axis.set_xlabel("step")
    if curves:
        size = "small" if len(curves) <= 10 else ("x-small" if len(curves) <= LEGEND_ROWS else "xx-small")
        axis.legend(
            fontsize=size,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            borderaxespad=0.0,
            frameon=False,
            ncols=math.ceil(len(curves) / LEGEND_ROWS),
        )
        axis.grid(alpha=0.3)
    else:
        axis.text(0.5, 0.5, "no data", ha="center", va="center", transform=axis.transAxes, color="grey")
    return title, len(curves), nonfinite, log_scale


def _pixels(box: Any, height: float) -> tuple[int, int, int, int]:
    return int(box.x0), int(height - box.y1), int(box.x1), int(height - box.y0)


def _font_families(texts: Sequence[str]) -> list[str]:
    """DejaVu Sans, then installed fonts that have the glyphs it lacks (matplotlib falls back glyph by glyph)."""
    from matplotlib import font_manager, ft2font

    default = font_manager.findfont("DejaVu Sans")
    missing = set("".join(texts)) - set(map(chr, ft2font.FT2Font(default).get_charmap()))
    if not missing:
        return ["DejaVu Sans"]
    for package in _FONT_PACKAGES:
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            for path in font_manager.findSystemFonts(fontpaths=[str(Path(location) / "fonts")]):
                font_manager.fontManager.addfont(path)
    families = ["DejaVu Sans"]
    for entry in font_manager.fontManager.ttflist:
        if not missing or entry.name in families or entry.name.startswith("Last Resort"):
            continue  # Last Resort "has" every glyph, as a box
        try:
            covered = missing & set(map(chr, ft2font.FT2Font(entry.fname).get_charmap()))
        except (OSError, RuntimeError):
            continue
        if covered:
            families.append(entry.name)
            missing -= covered
    if missing:
        sample = "".join(sorted(missing)[:5])
        print(
            f"tfkit: note: no installed font has the glyphs {sample!r}, so they draw as boxes; install one, e.g. "
            "apt-get install fonts-noto-cjk, or pip install matplotlib-fontja.",
            file=sys.stderr,
        )
    return families
