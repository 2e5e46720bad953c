"""``python -m tfkit.wheels build|verify``: a folder of wheels that installs tfkit with no internet (Kaggle).

``build`` puts tfkit's own wheel and a wheel of every dependency for the target Python and platforms in one folder.
It asks pip for binary wheels only (``--only-binary=:all:``), across several manylinux tags, so that pip neither
falls back to an old version that happens to match a single old tag nor packs a source archive that cannot be built
offline: a dependency with no wheel is refused, by name. A constraints file (the Kaggle image's ``pip freeze``) is
passed to the resolve, so the bundle carries the versions the image already has and installing it does not replace
them. ``manifest.json`` lists every file with its sha256.

``verify`` checks the hashes, then installs the bundle with ``pip install --no-index --find-links DIR`` into a
fresh virtual environment, with pip's configuration and environment ignored, and imports tfkit there.

With ``--constraints`` (the image's freeze), a pin that the bundled stack forbids is dropped and listed in the
manifest's ``moves`` with the requirement that moves it (``tfkit.wheels_pins``); ``verify --freeze`` checks that
every other version matches the freeze. ``--tpu`` bundles the known-good TPU stack: ``tensorflow-tpu`` 2.19.1 with the
``libtpu`` 0.0.10 it pins, for Python 3.12 (Kaggle's TPU image). ``--resolve_only`` resolves from the registry's
metadata without downloading the wheels (tensorflow-tpu and libtpu are about 370 MiB).

.. code-block:: shell

    pip freeze > freeze.txt                                          # on the TPU VM
    python -m tfkit.wheels build --tpu --constraints freeze.txt --dest wheels
    python -m tfkit.wheels verify wheels --freeze freeze.txt
    # on the TPU VM, with the folder attached as a dataset:
    pip uninstall -y tensorflow tensorflow-cpu
    pip install --no-index --find-links /kaggle/input/tfkit-wheels 'tfkit[tpu]'
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import venv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tfkit import __version__, cli, tpu_detect, tpu_runtime, wheels_pins
from tfkit.errors import UserError

MANIFEST = "manifest.json"
TENSORFLOW_CHOICES = ("tensorflow", "tensorflow-cpu", "tensorflow-tpu", "none")
# pip matches one platform tag per flag; several let it take the newest wheel any of them allows. A list that stops
# at an old glibc quietly picks old releases of unpinned packages. Ubuntu 22.04 (Kaggle, TPU VMs) has glibc 2.35.
DEFAULT_PLATFORMS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(35, 16, -1)),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
    "linux_x86_64",
)
_EXTRA_FOR = {"tensorflow-cpu": "cpu", "tensorflow-tpu": "tpu"}  # plain tensorflow is asked for by name


def project_root() -> Path:
    """The tfkit checkout this module runs from (a wheel is built from it).

    Raises:
        UserError: tfkit runs from an installed wheel, with no source next to it.
    """
    root = Path(__file__).resolve().parents[1]
    if not (root / "setup.cfg").exists():
        raise UserError(
            "tfkit.wheels build needs tfkit's source to build its wheel, and this tfkit is an installed package; "
            "expected a checkout. Run it from a clone (pip install -e .), or pass --project PATH."
        )
    return root


def build(
    dest: str | os.PathLike[str],
    *,
    python: str = f"{sys.version_info.major}.{sys.version_info.minor}",
    platforms: Sequence[str] = DEFAULT_PLATFORMS,
    constraints: str | None = None,
    tensorflow: str = "tensorflow-cpu",
    extra_requirements: Sequence[str] = (),
    find_links: Sequence[str] = (),
    project: str | os.PathLike[str] | None = None,
    resolve_only: bool = False,
) -> dict[str, Any]:
    """Builds the bundle and returns its manifest.

    Args:
        dest: The folder to fill; created if missing.
        python: The target Python, e.g. ``3.10``.
        platforms: Platform tags, newest first.
        constraints: A constraints file (``pip freeze`` of the target image) the resolve must honour.
        tensorflow: Which TensorFlow to bundle: ``tensorflow``, ``tensorflow-cpu``, ``tensorflow-tpu`` or ``none``
            (the image already has one).
        extra_requirements: More requirements to bundle (your own dependencies).
        find_links: More folders or URLs of wheels for pip to look in.
        project: tfkit's source folder; by default the checkout this module runs from.
        resolve_only: Resolve from the registry's metadata and write the manifest, without downloading wheels.

    Raises:
        UserError: A dependency has no wheel for the target, or pip cannot resolve.
    """
    if tensorflow not in TENSORFLOW_CHOICES:
        raise UserError(f"--tensorflow received {tensorflow!r}; expected one of {', '.join(TENSORFLOW_CHOICES)}.")
    if constraints is not None and not os.path.isfile(constraints):
        raise UserError(f"constraints file '{constraints}' does not exist; expected a pip freeze or constraints file.")
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(project) if project else project_root()
    _pip(["wheel", "--no-deps", "--wheel-dir", str(out), str(root)], what="build tfkit's wheel")
    own = sorted(out.glob("tfkit-*.whl"))[-1]
    extra = _EXTRA_FOR.get(tensorflow)
    requirement = f"tfkit[{extra}]" if extra else "tfkit"
    requirements = [f"{own}[{extra}]" if extra else str(own), *extra_requirements]
    if tensorflow == "tensorflow":  # the cpu extra would bring tensorflow-cpu on Linux
        requirements.append("tensorflow")
    python_tag = python.replace(".", "")
    target = ["--only-binary=:all:", "--python-version", python, "--implementation", "cp"]
    target += ["--abi", f"cp{python_tag}", "--abi", "abi3", "--abi", "none"]
    for platform in platforms:
        target += ["--platform", platform]
    for link in [str(out), *find_links]:
        target += ["--find-links", link]
    freeze = wheels_pins.read_freeze(constraints) if constraints else {}
    moves: dict[str, str] = {}
    if freeze:  # the stack alone first, to see which of the image's pins it cannot keep
        alone = wheels_pins.resolve(target, requirements, constraints={})
        moves = wheels_pins.moves(freeze, alone, python=python, replaces_tensorflow=tensorflow != "none")
    kept = wheels_pins.kept_constraints(freeze, moves)
    if resolve_only:
        resolved = wheels_pins.resolve(target, requirements, constraints=kept)
        packages = {item["metadata"]["name"]: item["metadata"]["version"] for item in resolved}
        files = [own]
    else:
        with tempfile.TemporaryDirectory(prefix="tfkit-wheels-") as scratch:
            pins = Path(scratch) / "constraints.txt"
            pins.write_text("".join(f"{name}=={version}\n" for name, version in sorted(kept.items())))
            command = ["download", "--dest", str(out), *target, "--constraint", str(pins)]
            _pip([*command, *requirements], what="download the dependencies")
        files = sorted(path for path in out.iterdir() if path.suffix == ".whl")
        packages = dict(path.name.split("-")[:2] for path in files)
    sources = sorted(path.name for path in out.iterdir() if path.name.endswith((".tar.gz", ".zip")))
    if sources:
        raise UserError(
            f"the bundle would hold source archives ({', '.join(sources)}), which cannot be built offline; expected "
            "wheels only. Pin a version with wheels in the constraints file."
        )
    manifest = {
        "tfkit": __version__,
        "python": python,
        "platforms": list(platforms),
        "tensorflow": tensorflow,
        "install": requirement if tensorflow != "tensorflow" else f"{requirement} tensorflow",
        "constraints": Path(constraints).name if constraints else None,
        "resolve_only": resolve_only,
        "packages": packages,
        "moves": moves,
        "files": {path.name: {"sha256": _sha256(path), "bytes": path.stat().st_size} for path in files},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def verify(
    folder: str | os.PathLike[str],
    *,
    install: bool = True,
    venv_dir: str | os.PathLike[str] | None = None,
    freeze: str | os.PathLike[str] | None = None,
) -> list[str]:
    """Checks a bundle's hashes, then that it installs offline into a fresh virtual environment.

    Args:
        folder: The bundle.
        install: Also install it offline and import tfkit (with the bundle's TensorFlow; a bundle without one only
            installs, since its TensorFlow is the target image's).
        venv_dir: Where to create the virtual environment, kept afterwards; by default a temporary one.
        freeze: The target image's ``pip freeze``: every bundled version must match it or be a recorded move.

    Returns:
        The problems found; empty when the bundle is good.
    """
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.exists():
        raise UserError(f"'{folder}' has no {MANIFEST}; expected a bundle from python -m tfkit.wheels build.")
    manifest = json.loads(path.read_text())
    problems = []
    for name, entry in manifest["files"].items():
        wheel = folder / name
        if not wheel.exists():
            problems.append(f"{name}: missing")
        elif _sha256(wheel) != entry["sha256"]:
            problems.append(f"{name}: sha256 differs from the manifest (changed or damaged)")
    unlisted = sorted(p.name for p in folder.glob("*.whl") if p.name not in manifest["files"])
    problems += [f"{name}: not in the manifest" for name in unlisted]
    if freeze is not None:
        if not os.path.isfile(freeze):
            raise UserError(f"freeze file '{freeze}' does not exist; expected the target image's pip freeze.")
        pins = wheels_pins.read_freeze(freeze)
        problems += wheels_pins.check_against_freeze(manifest.get("packages", {}), pins, manifest.get("moves", {}))
    if manifest.get("resolve_only"):
        print("install check skipped: a --resolve_only bundle holds only tfkit's wheel")
        return problems
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if problems or not install:
        return problems
    if manifest["python"] != here:
        print(f"install check skipped: the bundle targets Python {manifest['python']}, this is {here}")
        return problems
    with tempfile.TemporaryDirectory(prefix="tfkit-wheels-verify-") as scratch:
        env_dir = Path(venv_dir) if venv_dir else Path(scratch) / "venv"
        venv.create(env_dir, with_pip=True, clear=True)
        python = env_dir / "bin" / "python"
        requirement = manifest["install"].split()
        result = _offline_pip(python, ["install", "--no-index", "--find-links", str(folder), *requirement])
        if result.returncode:
            problems.append(f"offline install failed: {_last_error(result.stdout + result.stderr)}")
            return problems
        if manifest["tensorflow"] == "none":
            return problems
        if manifest["tensorflow"] == "tensorflow-tpu" and not tpu_detect.detect().present:
            # Off a TPU, importing tensorflow-tpu makes libtpu ask the GCE metadata server for the TPU's topology,
            # over the network, for minutes. The install is checked; the import is the TPU VM's to check.
            print("import check skipped: tensorflow-tpu only imports cleanly on a TPU VM (run verify there)")
            return problems
        check = subprocess.run(
            [str(python), "-c", "import tfkit; print(tfkit.__version__)"],
            capture_output=True,
            text=True,
            cwd=scratch,
            env=_clean_env(),
        )
        if check.returncode:
            problems.append(f"tfkit does not import after the offline install: {_last_error(check.stderr)}")
    return problems


def _offline_pip(python: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    # --isolated, no config file and no PIP_* variables: nothing but the bundle can be found.
    return subprocess.run(
        [str(python), "-m", "pip", "--isolated", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        env=_clean_env(),
    )


def _clean_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env.pop("PYTHONPATH", None)
    return env


def _pip(args: list[str], *, what: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args], capture_output=True, text=True
    )
    if result.returncode == 0:
        return
    output = result.stdout + result.stderr
    missing = re.search(r"No matching distribution found for ([^\s]+)", output)
    if missing:
        raise UserError(
            f"'{missing.group(1)}' has no wheel for this target (only a source archive, or nothing), and source "
            "archives cannot be built offline; expected wheels for every dependency. Pin a version that has wheels "
            "in --constraints, or pick another --python/--platform."
        )
    raise UserError(f"pip could not {what}: {_last_error(output)}")


def _last_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip() and not line.startswith("WARNING: Location")]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or ["no output"])[-1][:400]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tfkit.wheels build|verify``; returns the exit code (verify: 1 when the bundle is bad)."""
    parser = cli.Parser("python -m tfkit.wheels", description=__doc__)
    commands = parser.commands()
    build_cmd = commands.add_parser("build", help="download tfkit and its dependencies as wheels")
    build_cmd.add_argument("--dest", required=True, help="the bundle folder")
    build_cmd.add_argument(
        "--tpu",
        action="store_true",
        help=f"the known-good TPU stack: tensorflow-tpu {tpu_runtime.TENSORFLOW_TPU_VERSION}, libtpu "
        f"{tpu_runtime.LIBTPU_VERSION}, Python {tpu_runtime.TPU_PYTHON} unless --python says otherwise",
    )
    build_cmd.add_argument("--python", default=None, help="target Python, e.g. 3.12 (default: this one's)")
    build_cmd.add_argument(
        "--platform", action="append", default=None, help=f"platform tag, repeatable (default: {DEFAULT_PLATFORMS[0]}…)"
    )
    build_cmd.add_argument("--constraints", default=None, help="pip constraints, e.g. the target image's pip freeze")
    build_cmd.add_argument("--tensorflow", default=None, choices=TENSORFLOW_CHOICES, help="default: tensorflow-cpu")
    build_cmd.add_argument("--with", dest="extra", action="append", default=[], help="another requirement to bundle")
    build_cmd.add_argument("--find_links", action="append", default=[], help="another folder of wheels for pip")
    build_cmd.add_argument("--project", default=None, help="tfkit's source folder (default: this checkout)")
    build_cmd.add_argument("--resolve_only", action="store_true", help="resolve and write the manifest, no download")
    verify_cmd = commands.add_parser("verify", help="check hashes and an offline install into a fresh venv")
    verify_cmd.add_argument("folder")
    verify_cmd.add_argument("--hashes_only", action="store_true", help="skip the install check")
    verify_cmd.add_argument("--freeze", default=None, help="the target's pip freeze: versions must match or be moves")
    args = parser.parse_args(list(argv if argv is not None else sys.argv[1:]))
    if args.command == "build":
        if args.tpu and args.tensorflow not in (None, "tensorflow-tpu"):
            raise UserError(f"--tpu and --tensorflow {args.tensorflow} contradict; expected one of them.")
        here = f"{sys.version_info.major}.{sys.version_info.minor}"
        manifest = build(
            args.dest,
            python=args.python or (tpu_runtime.TPU_PYTHON if args.tpu else here),
            platforms=args.platform or DEFAULT_PLATFORMS,
            constraints=args.constraints,
            tensorflow="tensorflow-tpu" if args.tpu else (args.tensorflow or "tensorflow-cpu"),
            extra_requirements=args.extra,
            find_links=args.find_links,
            project=args.project,
            resolve_only=args.resolve_only,
        )
        for name, reason in manifest["moves"].items():
            print(f"moves: {name} {reason}")
        size = sum(entry["bytes"] for entry in manifest["files"].values())
        print(
            f"{args.dest}: {len(manifest['files'])} wheels, {size / 2**20:,.0f} MiB, for Python {manifest['python']}"
            f"; install with: pip install --no-index --find-links {args.dest} '{manifest['install']}'"
        )
        return 0
    problems = verify(args.folder, install=not args.hashes_only, freeze=args.freeze)
    for problem in problems:
        print(f"bad: {problem}")
    print(f"{args.folder}: " + (f"{len(problems)} problem(s)" if problems else "hashes match; installs offline"))
    return 1 if problems else 0


if __name__ == "__main__":
    cli.run(main)
