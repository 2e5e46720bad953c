"""What an event is to the tb commands: step-scoped data to window, or run-level metadata to keep whatever the window.

Events are parsed with tensorboard's protobufs only to decide; what is written is the record's own bytes, edited on
the wire (``tfkit.tb.wire``) only where a value is dropped or a tag's plugin metadata must be carried forward.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from tensorboard.compat.proto import event_pb2

from tfkit.errors import UserError
from tfkit.tb import wire

Steps = tuple[float, float]
ALL_STEPS: Steps = (-math.inf, math.inf)
# Events that describe the run rather than a step: kept by every step window, never shifted by merge.
RUN_LEVEL_FIELDS = frozenset({"file_version", "graph_def", "meta_graph_def", "source_metadata"})
# Summaries that do the same: hparams session data (TF2 and tensorboardX), and Keras' model graph at step 0.
RUN_LEVEL_PLUGINS = frozenset({"hparams", "graph_keras_model"})
# keep(tag, step): whether a step-scoped value (or an untagged event, tag None) stays.
Keep = Callable[[str | None, int], bool]


def parse_steps(text: str | None) -> Steps:
    """Parses ``A:B`` (both included), ``A:`` or ``:B``; None or empty means every step.

    Raises:
        UserError: The text is not such a range, or its end comes before its start.
    """
    if not text:
        return ALL_STEPS
    match = re.fullmatch(r"\s*(-?\d+)?\s*:\s*(-?\d+)?\s*", text)
    if not match:
        raise UserError(f"--steps received {text!r}; expected a range A:B (both included), A: or :B, e.g. 81:100.")
    low = float(match.group(1)) if match.group(1) else -math.inf
    high = float(match.group(2)) if match.group(2) else math.inf
    if low > high:
        raise UserError(
            f"--steps received {text!r}, whose end comes before its start; expected A:B with A <= B, "
            f"e.g. {match.group(2)}:{match.group(1)}."
        )
    return low, high


def parse_tags(text: str | None) -> re.Pattern[str] | None:
    """Compiles a ``--tags`` regex (searched anywhere in a tag); None or empty keeps every tag.

    Raises:
        UserError: The text is not a regular expression.
    """
    if not text:
        return None
    try:
        return re.compile(text)
    except re.error as error:
        raise UserError(
            f"--tags received {text!r}, which is not a regular expression ({error}); expected e.g. "
            "'loss|accuracy', with special characters escaped: '\\('."
        ) from None


def in_window(step: float, steps: Steps) -> bool:
    """Whether ``step`` lies in the range, both ends included."""
    return steps[0] <= step <= steps[1]


def parse(data: bytes) -> event_pb2.Event:
    """The ``Event`` in a record, parsed only to decide what to do with its bytes."""
    return event_pb2.Event.FromString(data)


class RunSelector:
    """Walks one run's events in order and keeps what ``keep`` says, plus run-level metadata, as written.

    A run's files are one stream to TensorBoard, so one selector serves all of a run's files. It remembers each
    tag's plugin metadata: TF1's writer puts it on a tag's first event only, and when that event is dropped the
    metadata is copied onto the tag's first kept value, so that TensorBoard still knows the tag is text, say.
    """

    def __init__(self) -> None:
        self.metadata: dict[str, bytes] = {}
        self.plugins: dict[str, str] = {}
        self.kept_tags: set[str] = set()

    def plugin(self, value: object) -> str:
        """The plugin of a summary value: its own metadata's, or that of its tag's first event."""
        return self.plugins.get(value.tag, "")  # type: ignore[attr-defined]

    def is_run_level(self, event: event_pb2.Event) -> bool:
        """Whether the event describes the run (file version, graph, hparams) rather than a step."""
        kind = event.WhichOneof("what")
        if kind in RUN_LEVEL_FIELDS:
            return True
        values = event.summary.value if kind == "summary" else []
        return bool(values) and all(self.plugin(value) in RUN_LEVEL_PLUGINS for value in values)

    def observe(self, event: event_pb2.Event) -> None:
        """Remembers the plugin metadata on the event's values, whether or not the event is kept."""
        for value in event.summary.value:
            if value.HasField("metadata") and value.tag not in self.metadata:
                self.metadata[value.tag] = value.metadata.SerializeToString()
                self.plugins[value.tag] = value.metadata.plugin_data.plugin_name

    def select(self, data: bytes, event: event_pb2.Event, keep: Keep) -> bytes | None:
        """The bytes to write for one record (``event`` is ``data`` parsed), or None to drop it."""
        self.observe(event)
        kind = event.WhichOneof("what")
        if kind != "summary":
            if kind in RUN_LEVEL_FIELDS:
                return data
            tag = event.tagged_run_metadata.tag if kind == "tagged_run_metadata" else None
            return data if keep(tag, event.step) else None
        kept = [
            index
            for index, value in enumerate(event.summary.value)
            if self.plugin(value) in RUN_LEVEL_PLUGINS or keep(value.tag, event.step)
        ]
        patches = {}
        for index in kept:
            value = event.summary.value[index]
            if value.tag not in self.kept_tags and not value.HasField("metadata") and value.tag in self.metadata:
                patches[index] = self.metadata[value.tag]
            self.kept_tags.add(value.tag)
        if not kept:
            return None
        if len(kept) == len(event.summary.value) and not patches:
            return data
        return wire.with_values(data, kept, patches)


def window(tags: re.Pattern[str] | None, steps: Steps) -> Keep:
    """The ``keep`` of a step window and tag filter: untagged step events (session logs) follow the window alone."""

    def keep(tag: str | None, step: int) -> bool:
        return in_window(step, steps) and (tag is None or tags is None or tags.search(tag) is not None)

    return keep
