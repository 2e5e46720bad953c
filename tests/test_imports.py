"""The house: tfkit's modules import each other one way, stay small, and the light ones load no TensorFlow."""

from __future__ import annotations

import ast
import configparser
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

PACKAGE = REPO / "tfkit"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def tfkit_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every tfkit module that ``path`` imports, anywhere in it (a function-local import counts too)."""
    found: set[str] = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            # `from tfkit import x` imports the module tfkit.x when there is one, else a name of tfkit.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name.startswith("tfkit") and name != "tfkit":
                found.add(name)
    found.discard(module_name(path))
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == 1:
                return [*stack[stack.index(child) :], child]
            if child not in state and (cycle := visit(child)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_tfkit_modules_import_each_other_without_a_cycle():
    modules = tfkit_modules()
    graph = {name: imported(path, modules) for name, path in modules.items()}
    assert graph["tfkit.train"] >= {"tfkit.session", "tfkit.cli"}  # the parser sees real imports
    assert find_cycle(graph) is None


def test_no_module_is_over_400_lines():
    sizes = {name: len(path.read_text().splitlines()) for name, path in tfkit_modules().items()}
    assert sizes and {name: size for name, size in sizes.items() if size > MAX_LINES} == {}


LIGHT = [
    "tfkit",
    "tfkit.cli",
    "tfkit.units",
    "tfkit.user_code",
    "tfkit.errors",
    "tfkit.config",
    "tfkit.metric_registry",
    "tfkit.records",
    "tfkit.tb",
    "tfkit.wheels",
    "tfkit.tpu_detect",
    "tfkit.tpu_runtime",
    "tfkit.train_command",
    "tfkit.evaluate_command",
    "tfkit.predict_command",
    "tfkit.export_command",
    "tfkit.restore_flags",
]


@pytest.mark.parametrize("module", LIGHT)
def test_light_modules_load_no_tensorflow(module):
    script = f"import sys, {module}; sys.exit(3 if 'tensorflow' in sys.modules else 0)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr or "tensorflow was imported"


def test_every_package_folder_ships_in_the_wheel():
    options = configparser.ConfigParser()
    options.read(REPO / "setup.cfg")
    shipped = {name.strip() for name in options["options"]["packages"].replace(",", "\n").split() if name.strip()}
    packages = {module_name(path.parent / "__init__.py") for path in PACKAGE.rglob("__init__.py")}
    assert packages <= shipped, f"add {sorted(packages - shipped)} to setup.cfg's packages"
