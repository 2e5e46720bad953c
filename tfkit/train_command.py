"""The flags of ``python -m tfkit.train`` and the config they give, read without TensorFlow.

``tfkit.train`` checks the command line here before it imports TensorFlow, so a mistyped flag or config key is one
line and exit 2 in a fraction of a second, not after seconds of start-up.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tfkit import cli, resources
from tfkit import config as config_lib
from tfkit.errors import UserError

ConfigSource = str | os.PathLike[str] | config_lib.Config | dict[str, Any] | None


def parser(description: str | None) -> cli.Parser:
    """The train command's flags; ``description`` is the command's module docstring."""
    parser = cli.Parser(
        "python -m tfkit.train", description=(description or "").replace(".. code-block:: shell\n\n", "")
    )
    parser.add_argument("--config", help="YAML config, or the name of a bundled one (default: digits)")
    parser.add_argument("--workdir", help="run folder (default: runs/<config name>)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key (repeatable)"
    )
    parser.add_argument(
        "--strategy",
        choices=["auto", "cpu", "gpu", "mirrored", "multi_worker", "tpu"],
        help="tf.distribute strategy (default: the config's, auto)",
    )
    parser.add_argument("--tpu", action="store_true", help="shorthand for --strategy tpu")
    parser.add_argument("--tpu_address", help="TPU address: local (TPU VM), grpc://host:port or a TPU name")
    parser.add_argument(
        "--cpu_replicas", type=cli.positive_int, help="split the CPU into N logical devices and mirror over them"
    )
    parser.add_argument("--time_limit", help="stop cleanly before this much time, e.g. 8h45m (exit 75)")
    parser.add_argument("--restart", action="store_true", help="start over; the old run is renamed, never deleted")
    return parser


def overrides(args: argparse.Namespace) -> list[str]:
    """The ``--set`` overrides, then the shorthand flags as the config keys they stand for.

    Raises:
        UserError: ``--tpu`` with another ``--strategy``.
    """
    result = list(args.set)
    if args.tpu and args.strategy not in (None, "tpu"):
        raise UserError(f"--tpu and --strategy {args.strategy} contradict; expected one of them.")
    strategy = "tpu" if args.tpu else args.strategy
    if strategy:
        result.append(f"distribute.strategy={strategy}")
    if args.tpu_address:
        result.append(f"distribute.tpu_address={args.tpu_address}")
    if args.cpu_replicas:
        result.append(f"distribute.cpu_replicas={args.cpu_replicas}")
    if args.time_limit:
        result.append(f"train.time_limit={args.time_limit}")
    return result


def load_config(source: ConfigSource, overrides: Sequence[str]) -> config_lib.Config:
    """The run's config from a YAML path, a bundled config's name, a ``Config``, a dict, or None for the default.

    Raises:
        UserError: The file is missing, or a key is unknown, mistyped or contradicts another.
    """
    if isinstance(source, config_lib.Config):
        if overrides:
            return config_lib.load(None, values=config_lib.to_dict(source), overrides=overrides)
        return source
    if isinstance(source, dict):
        return config_lib.load(None, values=source, overrides=overrides)
    if source is None:
        source = resources.config_path(resources.DEFAULT_CONFIG)
    path = Path(source)
    if not path.exists() and path.suffix == "" and os.sep not in str(source):
        path = resources.config_path(str(source))
    return config_lib.load(path, overrides=overrides)


def check(description: str | None, argv: Sequence[str]) -> None:
    """Parses the command line and loads its config, only to refuse bad input early (``--help`` exits 0 here).

    Raises:
        UserError: A bad flag or config key.
    """
    args = parser(description).parse_args(list(argv))
    load_config(args.config, overrides(args))
