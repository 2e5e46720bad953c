"""``python -m tfkit.tb``: local TensorBoard logs kept, trimmed, joined and drawn, now that tensorboard.dev is gone.

.. code-block:: shell

    python -m tfkit.tb export runs/x/logs --out scalars.csv --tags 'loss|accuracy' --steps 81:100
    python -m tfkit.tb rewrite runs/x/logs --out kept/ --steps 81:100        # a logdir of just those steps
    python -m tfkit.tb merge session1/logs session2/logs --out merged/       # --offset auto|N
    python -m tfkit.tb plot runs/x/logs runs/y/logs --out curves.png         # --panel NAME=REGEX

They read logs from any writer (tensorboardX, TF1's ``FileWriter``, TF2's ``tf.summary``, Keras' callback) as
TensorBoard does: every file with ``tfevents`` in its name. ``rewrite`` and ``merge`` read the TFRecord framing
themselves and copy each kept record's bytes as written; protobufs are parsed only to decide what to keep. Nothing
here imports TensorFlow, so every command starts in well under two seconds. Step ranges ``A:B`` include both ends.

Modules: ``files`` (finding event files, reading and framing records), ``wire`` (byte-level edits of an event),
``events`` (what a step window keeps), ``output`` (new outputs, complete or absent), ``scalars`` (reading and
``export``: ``scalar_table``), ``rewrite``: ``window``, ``merge``: ``sessions``, ``plot``: ``dashboard``, and
``__main__`` (the command line).
"""

from __future__ import annotations

from tfkit.tb.dashboard import PANELS, PanelDrawn, plot
from tfkit.tb.events import ALL_STEPS, Steps, parse_steps
from tfkit.tb.files import event_files
from tfkit.tb.scalar_table import export, scalars
from tfkit.tb.sessions import SessionReport, merge
from tfkit.tb.window import rewrite

__all__ = [
    "ALL_STEPS",
    "PANELS",
    "PanelDrawn",
    "SessionReport",
    "Steps",
    "event_files",
    "export",
    "merge",
    "parse_steps",
    "plot",
    "rewrite",
    "scalars",
]
