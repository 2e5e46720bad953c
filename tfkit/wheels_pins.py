"""Which of a target image's pinned packages a bundle can keep, and which must move and why (``tfkit.wheels``).

A bundle is resolved against the image's ``pip freeze`` so that installing it keeps the image's keras, numpy and
protobuf. Where the bundled stack forbids a frozen version (``tensorflow-tpu`` 2.19.1 requires ``libtpu==0.0.10``
and ``numpy<2.2``; Kaggle's TPU image has libtpu 0.0.17 for JAX), that pin is dropped from the resolve and the
package is listed as a move, with the requirement that moves it. TensorFlow builds in the freeze are replaced, not
kept: ``tensorflow-cpu`` and ``tensorflow-tpu`` install the same ``tensorflow`` package.

Resolving uses ``pip install --dry-run --report``, which reads the registry's metadata, not the wheels.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from tfkit.errors import UserError

TENSORFLOW_BUILDS = ("tensorflow", "tensorflow-cpu", "tensorflow-tpu", "tensorflow-intel", "tf-nightly")


def read_freeze(path: str | os.PathLike[str]) -> dict[str, str]:
    """``name==version`` lines of a ``pip freeze`` or constraints file, by canonical name; other lines are skipped."""
    pins: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)", line)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def resolve(pip_args: Sequence[str], requirements: Sequence[str], *, constraints: Mapping[str, str]) -> list[dict]:
    """Resolves ``requirements`` for the target in ``pip_args`` without downloading wheels; pip's report entries.

    Raises:
        UserError: pip cannot resolve; its last error line is given.
    """
    with tempfile.TemporaryDirectory(prefix="tfkit-resolve-") as scratch:
        pins = Path(scratch) / "constraints.txt"
        pins.write_text("".join(f"{name}=={version}\n" for name, version in sorted(constraints.items())))
        report = Path(scratch) / "report.json"
        command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "install", "--dry-run", "--quiet"]
        command += ["--ignore-installed", "--target", str(Path(scratch) / "target"), "--report", str(report)]
        command += [*pip_args, "--constraint", str(pins), *requirements]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode:
            lines = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("ERROR")]
            raise UserError(f"pip could not resolve the bundle: {(lines or ['no output'])[-1][:400]}")
        return list(json.loads(report.read_text())["install"])


def moves(
    freeze: Mapping[str, str], resolved: Sequence[dict], *, python: str, replaces_tensorflow: bool
) -> dict[str, str]:
    """The frozen packages the resolved stack cannot keep, each with the reason, by canonical name.

    Args:
        freeze: The image's pins (``read_freeze``).
        resolved: pip report entries of the stack resolved without those pins.
        python: The target Python, for requirement markers.
        replaces_tensorflow: The bundle brings its own TensorFlow build, which replaces the image's.
    """
    environment = {"python_version": python, "python_full_version": f"{python}.0", "sys_platform": "linux"}
    environment |= {"platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix", "extra": ""}
    versions: dict[str, str] = {}
    for item in resolved:
        versions[canonicalize_name(item["metadata"]["name"])] = item["metadata"]["version"]
    reasons: dict[str, str] = {}
    if replaces_tensorflow:
        bundled = next((f"{name} {versions[name]}" for name in TENSORFLOW_BUILDS if name in versions), "its own")
        for name in TENSORFLOW_BUILDS:
            if name in freeze and name not in versions:
                reasons[name] = (
                    f"{freeze[name]} -> removed: the bundle's {bundled} replaces it (both install the tensorflow "
                    f"package; pip uninstall -y {name} first)"
                )
    for item in resolved:
        owner = f"{item['metadata']['name']} {item['metadata']['version']}"
        for text in item["metadata"].get("requires_dist") or []:
            requirement = _requirement(text)
            if requirement is None or (requirement.marker and not requirement.marker.evaluate(environment)):
                continue
            name = canonicalize_name(requirement.name)
            if name in freeze and name not in reasons and not _allows(requirement, freeze[name]):
                reasons[name] = (
                    f"{freeze[name]} -> {versions.get(name, '?')}: {owner} requires {requirement.name}"
                    f"{requirement.specifier}"
                )
    return reasons


def kept_constraints(freeze: Mapping[str, str], moved: Mapping[str, str]) -> dict[str, str]:
    """The pins the final resolve keeps: every frozen package that does not move."""
    return {name: version for name, version in freeze.items() if name not in moved}


def check_against_freeze(packages: Mapping[str, str], freeze: Mapping[str, str], moved: Mapping[str, Any]) -> list[str]:
    """Problems with a bundle's versions against a freeze: a package that differs with no recorded reason."""
    problems = []
    for name, version in sorted(packages.items()):
        frozen = freeze.get(canonicalize_name(name))
        if frozen is not None and frozen != version and canonicalize_name(name) not in moved:
            problems.append(f"{name}: the bundle has {version}, the freeze {frozen}, and the manifest gives no reason")
    return problems


def _requirement(text: str) -> Requirement | None:
    try:
        return Requirement(text)
    except InvalidRequirement:
        return None


def _allows(requirement: Requirement, version: str) -> bool:
    try:
        return requirement.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return True  # a local or odd version: let pip judge it
