"""The TPU runtime's environment, set before TensorFlow loads, and the TensorFlow/libtpu stack known to work.

TensorFlow drives a v4 or later TPU VM (Kaggle's v5e-8, Colab's v5e-1) only through the PJRT plugin in
``libtpu.so``, and it reads the plugin's variables once, when ``import tensorflow`` runs. So ``import tfkit`` calls
``prepare()`` before anything imports TensorFlow; it imports nothing heavy (the ``libtpu`` package's ``__init__`` is
a few lines of Python that name the library; the library itself is loaded by TensorFlow).

The variables are those keras-rs sets to run TensorFlow 2.19.1 on a TPU v6e: ``NEXT_PLUGGABLE_DEVICE_USE_C_API``,
``TF_PLUGGABLE_DEVICE_LIBRARY_PATH``, ``TPU_NAME=local``, ``PJRT_DEVICE=TPU`` and the MLIR bridge in
``TF_XLA_FLAGS``. A variable the user has set is left alone. They are set whatever TensorFlow is installed: a
TensorFlow without TPU support then fails where ``tfkit.tpu_diagnose`` names it, instead of silently training on CPU.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

from tfkit import tpu_detect

# The known-good stack: TensorFlow's last TPU build, the libtpu it pins, and the Python of Kaggle's TPU image.
TENSORFLOW_TPU_VERSION = "2.19.1"
LIBTPU_VERSION = "0.0.10"
TPU_PYTHON = "3.12"
INSTALL_TPU_STACK = f"pip install 'tensorflow-tpu=={TENSORFLOW_TPU_VERSION}' 'keras>=3.5'"
SYSTEM_LIBTPU = "/lib/libtpu.so"  # where Google's TPU VM images put it
RESTART_LINE = (
    "tfkit: TensorFlow was imported before tfkit, so the TPU runtime (PJRT) cannot be set up in this process; "
    "restart the kernel and import tfkit before anything imports TensorFlow."
)


@dataclasses.dataclass(frozen=True)
class Setup:
    """What ``prepare`` found and did.

    Attributes:
        facts: The TPU detection it acted on.
        library: The ``libtpu.so`` in use, or None.
        set_variables: The variables it set, with their values.
        kept_variables: The variables it would have set but the user had set, with the user's values.
        problems: One line each: what stands in the way of training on this TPU, and the fix.
    """

    facts: tpu_detect.TpuFacts
    library: str | None
    set_variables: dict[str, str]
    kept_variables: dict[str, str]
    problems: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for ``doctor --json``."""
        return {
            "library": self.library,
            "set_variables": self.set_variables,
            "kept_variables": self.kept_variables,
            "problems": list(self.problems),
        }


def prepare(
    environ: MutableMapping[str, str] | None = None,
    *,
    dev_root: str = "/dev",
    sys_root: str = "/sys",
    system_library: str = SYSTEM_LIBTPU,
    stream: TextIO | None = None,
) -> Setup:
    """Detects a TPU and, on one that needs PJRT, sets the runtime's variables that the user has not set.

    Args:
        environ: The environment to read and change; ``os.environ`` by default.
        dev_root: Where device files live (tests pass a fake tree).
        sys_root: Where sysfs is mounted (tests pass a fake tree).
        system_library: The image's own ``libtpu.so``, used when no ``libtpu`` package is installed.
        stream: Where the one restart line goes when TensorFlow is already imported; stderr by default.

    Returns:
        What was found and done.
    """
    env = os.environ if environ is None else environ
    facts = tpu_detect.detect(env, dev_root=dev_root, sys_root=sys_root)
    if not facts.needs_pjrt:
        return Setup(facts, None, {}, {}, ())
    library = find_libtpu(system_library)
    problems = list(stack_problems(installed_versions(), libtpu_pin=tensorflow_tpu_libtpu_pin()))
    if library is None:
        problems.append(
            f"a TPU {facts.generation.name if facts.generation else ''} needs libtpu.so and none was found (no libtpu "
            f"package, no {system_library}); fix: {INSTALL_TPU_STACK}, then restart the kernel"
        )
        return Setup(facts, None, {}, {}, tuple(problems))
    wanted = {
        "NEXT_PLUGGABLE_DEVICE_USE_C_API": "true",
        "TF_PLUGGABLE_DEVICE_LIBRARY_PATH": library,
        "TPU_NAME": "local",
        "PJRT_DEVICE": "TPU",
        "TF_XLA_FLAGS": "--tf_mlir_enable_mlir_bridge=true",
    }
    kept = {name: env[name] for name in wanted if name in env}
    missing = {name: value for name, value in wanted.items() if name not in env}
    if missing and "tensorflow" in sys.modules:
        # Setting them now changes nothing in this process and would mislead a child process; say what to do.
        print(RESTART_LINE, file=stream or sys.stderr)
        return Setup(facts, library, {}, kept, (*problems, RESTART_LINE.removeprefix("tfkit: ")))
    env.update(missing)
    return Setup(facts, library, missing, kept, tuple(problems))


def find_libtpu(system_library: str = SYSTEM_LIBTPU) -> str | None:
    """The ``libtpu.so`` to load: the ``libtpu`` package's, else the image's, else None."""
    try:
        package = importlib.import_module("libtpu")
    except ImportError:
        package = None
    if package is not None:
        finder = getattr(package, "get_library_path", None)
        path = finder() if callable(finder) else os.path.join(os.path.dirname(package.__file__ or ""), "libtpu.so")
        if os.path.isfile(path):
            return str(path)
    return system_library if os.path.isfile(system_library) else None


def installed_versions() -> dict[str, str]:
    """Versions of the installed TensorFlow builds and libtpu, by distribution name."""
    import importlib.metadata  # here, not at the top: 60 ms that ``import tfkit`` should not pay off a TPU

    versions = {}
    for name in ("tensorflow", "tensorflow-cpu", "tensorflow-tpu", "libtpu", "libtpu-nightly", "keras"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def tensorflow_tpu_libtpu_pin() -> str | None:
    """The libtpu version the installed tensorflow-tpu requires (``0.0.10`` for 2.19.1), or None."""
    import importlib.metadata  # see installed_versions

    try:
        requirements = importlib.metadata.requires("tensorflow-tpu") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for requirement in requirements:
        match = re.match(r"libtpu\s*\(?\s*==\s*([^\s;,)]+)", requirement)
        if match:
            return match.group(1)
    return None


def stack_problems(versions: Mapping[str, str], *, libtpu_pin: str | None) -> list[str]:
    """What is wrong with this TensorFlow/libtpu pair for a TPU: one line each with the fix; empty when good.

    Args:
        versions: Installed versions by distribution name (``installed_versions()``).
        libtpu_pin: The libtpu version tensorflow-tpu requires (``tensorflow_tpu_libtpu_pin()``).
    """
    tpu = versions.get("tensorflow-tpu")
    fix = f"fix: {INSTALL_TPU_STACK} (python -m tfkit.doctor prints the offline bundle command), then restart"
    if tpu is None:
        other = next((f"{name} {versions[name]}" for name in ("tensorflow-cpu", "tensorflow") if name in versions), "")
        if not other:
            return [f"no TensorFlow is installed; {fix}"]
        return [
            f"{other} has no TPU support (Kaggle's TPU image ships tensorflow-cpu); "
            f"fix: pip uninstall -y tensorflow tensorflow-cpu && {INSTALL_TPU_STACK}, then restart"
        ]
    problems = []
    if _release(tpu) >= (2, 20):
        problems.append(
            f"tensorflow-tpu {tpu} and its libtpu report 'No TPU platform found' on v5e (Kaggle/docker-python PR "
            f"#1499), and {TENSORFLOW_TPU_VERSION} is TensorFlow's last TPU build; {fix}"
        )
    libtpu = versions.get("libtpu")
    if libtpu_pin and libtpu and libtpu != libtpu_pin:
        problems.append(
            f"libtpu {libtpu} is installed but tensorflow-tpu {tpu} was built for libtpu {libtpu_pin} (a newer one "
            f"is forced for JAX/torch on Kaggle's image); fix: pip install 'libtpu=={libtpu_pin}' in this "
            "environment, then restart"
        )
    return problems


def bundle_command(python: str = f"{sys.version_info.major}.{sys.version_info.minor}") -> str:
    """The command that builds the offline TPU bundle for a machine running ``python``."""
    return (
        "pip freeze > freeze.txt && python -m tfkit.wheels build --tpu "
        f"--python {python} --constraints freeze.txt --dest tfkit-tpu-wheels"
    )


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:2])
