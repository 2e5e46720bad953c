"""Finding the configs and TFRecords that ship with tfkit.

In an installed wheel they sit inside the package (``tfkit/configs``, ``tfkit/tfrecords``); in a source checkout,
or an editable install of one, they are the repository's top-level ``configs/`` and ``tfrecords/``.
"""

from __future__ import annotations

from pathlib import Path

from tfkit.errors import UserError

_PACKAGE = Path(__file__).resolve().parent


def bundled(name: str) -> Path:
    """Returns the folder of bundled ``configs`` or ``tfrecords``."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise UserError(f"tfkit's bundled '{name}' folder is missing from {_PACKAGE}; reinstall tfkit.")


def config_path(name: str) -> Path:
    """Returns a bundled config by name (``digits`` or ``digits.yaml``)."""
    path = bundled("configs") / (name if name.endswith(".yaml") else f"{name}.yaml")
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in bundled("configs").glob("*.yaml")))
        raise UserError(f"there is no bundled config '{name}'; expected one of: {known}.")
    return path


DEFAULT_CONFIG = "digits"
