"""Loading a config: YAML, ``--set a.b=value`` overrides, type conversion, paths, and writing it back.

Every key and type is checked here, and sizes, shares and durations are resolved (see ``tfkit.config.resolved``);
the cross-key checks follow in ``tfkit.config.checks``. A key given twice in one mapping of a YAML file is refused
rather than letting the later one win silently.

Relative paths inside a YAML file are relative to that file's folder, so a config and its data travel together (the
embedded ``configs/digits.yaml`` points at ``../tfrecords/digits``). Paths given with ``--set`` are relative to the
current directory, as on any command line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml

from tfkit.config.checks import validate
from tfkit.config.resolved import Unit, unit_fields
from tfkit.config.sections import Config
from tfkit.errors import UserError

# Keys that hold filesystem paths: a relative value in a YAML file is resolved against the file's folder.
_PATH_KEYS = ("data.train", "data.eval", "data.test", "data.schema", "data.images", "data.cache", "model.weights")


def load(
    path: str | os.PathLike[str] | None = None,
    *,
    overrides: Iterable[str] = (),
    values: Mapping[str, Any] | None = None,
) -> Config:
    """Loads and validates a config.

    Args:
        path: A YAML file. None starts from the defaults alone.
        overrides: ``a.b=value`` strings; each value is parsed as YAML (``3``, ``true``, ``null``, ``[a, b]``).
        values: A nested mapping applied after the file and before ``overrides``, for the Python API.

    Returns:
        The validated, frozen config, with sizes in bytes and durations in seconds.

    Raises:
        UserError: The file is missing or not YAML, or a key, type or combination is wrong.
    """
    tree: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        tree = _read_yaml(path)
        tree.setdefault("name", path.stem)
        _resolve_paths(tree, base=path.resolve().parent)
    if values:
        tree = _merge(tree, _normalise(dict(values)))
    for item in overrides:
        key, value = _parse_override(item)
        _set(tree, key, value)
        if key in _PATH_KEYS and isinstance(value, (str, list)):
            _resolve_paths(tree, base=Path.cwd(), only=key)
    config = _build(Config, _normalise(tree), prefix="")
    validate(config)
    return config


def to_dict(config: Any) -> dict[str, Any]:
    """Returns a config (or one section) as plain YAML-ready data that ``load`` reads back to the same config.

    Tuples become lists, and sizes, shares and durations are written as people write them (``64MB``, ``85%``,
    ``8h45m``).
    """
    units_here = unit_fields(type(config))
    plain: dict[str, Any] = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name in units_here and value is not None:
            value = units_here[field.name].written(value)
        elif dataclasses.is_dataclass(value):
            value = to_dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        plain[field.name] = value
    return plain


def dump(config: Config, path: str | os.PathLike[str]) -> None:
    """Writes the resolved config as YAML; ``load`` of that file gives the same config back."""
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: object, first_line: int, line: int) -> None:
        super().__init__(f"key {key!r} given twice")
        self.key, self.first_line, self.line = key, first_line, line


try:  # libyaml's parser, where PyYAML was built with it: a config loads in a tenth of the time
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - PyYAML without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]


class _UniqueKeyLoader(_SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` merges another mapping; its keys may be overridden here on purpose
            key = self.construct_object(key_node, deep=True)
            with contextlib.suppress(TypeError):  # an unhashable key fails in PyYAML's own construction below
                if key in lines:
                    raise _DuplicateKey(key, lines[key], key_node.start_mark.line + 1)
                lines[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"config file '{path}' does not exist; expected a YAML file. Check the --config path.")
    try:
        tree = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # a SafeLoader
    except _DuplicateKey as error:
        raise UserError(
            f"config file '{path}' gives key '{error.key}' twice, at lines {error.first_line} and {error.line}; "
            "expected each key once (the later would silently win). Remove one of them."
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"config file '{path}' is not valid YAML{where}; fix its syntax.") from None
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise UserError(f"config file '{path}' holds a {type(tree).__name__}; expected a mapping of keys.")
    return tree


def _normalise(tree: dict[str, Any]) -> dict[str, Any]:
    # `model: resnet50` is shorthand for `model: {name: resnet50}`.
    if isinstance(tree.get("model"), str):
        tree = {**tree, "model": {"name": tree["model"]}}
    return tree


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _parse_override(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set received '{item}'; expected key=value, e.g. --set train.epochs=5.")
    try:
        value = yaml.load(raw, Loader=_UniqueKeyLoader) if raw.strip() else ""  # a SafeLoader
    except _DuplicateKey as error:
        raise UserError(
            f"--set received '{item}', which gives key '{error.key}' twice; expected each key once. Remove one."
        ) from None
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def _set(tree: dict[str, Any], key: str, value: Any) -> None:
    if key == "model" and isinstance(value, str):
        key = "model.name"  # --set model=X swaps the model and keeps the section's other keys (num_classes, ...)
    parts = key.split(".")
    if isinstance(tree.get("model"), str):
        tree["model"] = {"name": tree["model"]}
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _resolve_paths(tree: dict[str, Any], *, base: Path, only: str | None = None) -> None:
    for key in _PATH_KEYS:
        if only is not None and key != only:
            continue
        section, _, leaf = key.partition(".")
        node = tree.get(section)
        if not isinstance(node, dict) or leaf not in node:
            continue
        value = node[leaf]
        if isinstance(value, list):  # a list of globs (data.train)
            node[leaf] = [_resolve_path(item, base) for item in value]
        else:
            node[leaf] = _resolve_path(value, base)


def _resolve_path(value: Any, base: Path) -> Any:
    if isinstance(value, str) and value and "://" not in value and not os.path.isabs(value):
        return str((base / value).resolve())
    return value


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _build(cls: type, tree: Any, *, prefix: str) -> Any:
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(tree, Mapping):
        raise UserError(f"config key '{where}': received {_describe(tree)}; expected a mapping of keys.")
    hints = typing.get_type_hints(cls, include_extras=True)
    names = {field.name for field in dataclasses.fields(cls)}
    for key in tree:
        if key not in names:
            raise UserError(
                f"config key '{prefix}{key}' is unknown; expected one of: {', '.join(sorted(names))}. "
                "Check its spelling and section."
            )
    kwargs = {key: _convert(hints[key], value, key=f"{prefix}{key}") for key, value in tree.items()}
    return cls(**kwargs)


def _expectation(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return " or ".join(map(str, typing.get_args(hint)))
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(hint, str(hint))


def _convert(hint: Any, value: Any, *, key: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is Annotated:
        unit = next((meta for meta in hint.__metadata__ if isinstance(meta, Unit)), None)
        if unit is None:
            return _convert(typing.get_args(hint)[0], value, key=key)
        if value is None and type(None) in typing.get_args(typing.get_args(hint)[0]):
            return None
        return unit.resolve(value, key=key)
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type, hint), value, prefix=f"{key}.")
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        inner = [option for option in options if option is not type(None)]
        if len(inner) == 1:
            return _convert(inner[0], value, key=key)
        for option in inner:  # e.g. an integer or "auto"
            with contextlib.suppress(UserError):
                return _convert(option, value, key=key)
        expected = " or ".join(_expectation(option) for option in inner)
        raise UserError(f"config key '{key}': received {_describe(value)}; expected {expected}.")
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise UserError(f"config key '{key}': received {value!r}; expected one of {', '.join(map(str, allowed))}.")
        return value
    if origin is dict:
        # A loss or metric with its arguments, or class weights: keys are converted, values are checked by their
        # user (tfkit.losses, tfkit.metric_builder) where they are Any.
        if not isinstance(value, Mapping):
            raise UserError(f"config key '{key}': received {_describe(value)}; expected a mapping.")
        key_hint, value_hint = typing.get_args(hint)
        return {
            _convert(key_hint, item_key, key=key): _convert(value_hint, item, key=f"{key}.{item_key}")
            for item_key, item in value.items()
        }
    if hint is Any:
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config key '{key}': received {_describe(value)}; expected a list.")
        (item_hint, _) = typing.get_args(hint)
        return tuple(_convert(item_hint, item, key=key) for item in value)
    return _convert_scalar(hint, value, key=key)


def _convert_scalar(hint: Any, value: Any, *, key: str) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise UserError(f"config key '{key}': received {_describe(value)}; expected true or false.")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"config key '{key}': received {_describe(value)}; expected an integer.")
        return value
    if hint is float:
        if isinstance(value, str):
            # PyYAML follows YAML 1.1, which reads 3e-4 (no dot) as a string; every user writes it that way.
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"config key '{key}': received {_describe(value)}; expected a number.")
        if not math.isfinite(value):
            raise UserError(f"config key '{key}': received {value!r}; expected a finite number.")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise UserError(f"config key '{key}': received {_describe(value)}; expected a string.")
        return value
    raise TypeError(f"tfkit.config cannot convert key '{key}' to {hint!r}")  # a tfkit bug, not user input
