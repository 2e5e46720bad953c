"""Is there a TPU here, which generation, how many chips: read from local signs only, without TensorFlow.

Nothing here touches the network or imports anything heavy: ``import tfkit`` runs it before TensorFlow loads (see
``tfkit.tpu_runtime``). The signs, strongest first:

- Google's PCI vendor id ``0x1ae0`` under ``/sys/bus/pci/devices``, whose device id names the generation (the ids
  that Google's ``tpu-info`` reads: ``0x0027`` is v2 or v3 by subsystem, ``0x0063`` v5e, ...), one entry per chip;
- ``/dev/accel*`` (v2 to v4 TPU VMs) and ``/dev/vfio/<n>`` (v5e and later), one file per chip;
- ``TPU_ACCELERATOR_TYPE`` (``v5litepod-8``, ``v3-8``), ``ISTPUVM`` and ``TPU_PROCESS_ADDRESSES`` (Kaggle's image);
- ``TPU_NAME`` and ``COLAB_TPU_ADDR``: a TPU node reached over gRPC, whose chips are on another host.

The roots are arguments, so tests point them at fake trees.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

GOOGLE_PCI_VENDOR = "0x1ae0"
GIB = 2**30


@dataclasses.dataclass(frozen=True)
class Generation:
    """What tfkit needs to know about one TPU generation.

    Attributes:
        name: ``v2``, ``v3``, ``v4``, ``v5e``, ``v5p``, ``v6e`` or ``v7x``.
        replicas_per_chip: TensorCores that TensorFlow sees as replicas (2 on v2/v3; 1 from v4 on, megacore).
        hbm_per_replica_bytes: High-bandwidth memory one replica can use.
        needs_pjrt: TensorFlow drives it only through the PJRT plugin (v4 and later).
        type_units_per_chip: What the number in an accelerator type counts per chip: 1 for ``v5litepod-8`` and
            ``v6e-8`` (chips), 2 for ``v3-8``, ``v4-8`` and ``v5p-8`` (TensorCores).
    """

    name: str
    replicas_per_chip: int
    hbm_per_replica_bytes: int
    needs_pjrt: bool
    type_units_per_chip: int


GENERATIONS = {
    generation.name: generation
    for generation in (
        Generation("v2", 2, 8 * GIB, False, 2),
        Generation("v3", 2, 16 * GIB, False, 2),
        Generation("v4", 1, 32 * GIB, True, 2),
        Generation("v5e", 1, 16 * GIB, True, 1),
        Generation("v5p", 1, 95 * GIB, True, 2),
        Generation("v6e", 1, 32 * GIB, True, 1),
        Generation("v7x", 2, 96 * GIB, True, 1),
    )
}
# PCI device id -> generation; 0x0027 is shared by v2 and v3 and told apart by the subsystem id.
_PCI_DEVICES = {"0x005e": "v4", "0x0063": "v5e", "0x0062": "v5p", "0x006f": "v6e", "0x0076": "v7x"}
_PCI_V2_V3 = {"0x004e": "v2", "0x004f": "v3"}
# TPU_ACCELERATOR_TYPE prefixes: v5litepod and v5e are the same chip.
_TYPE_PREFIXES = {"v5litepod": "v5e", "v5lite": "v5e", "v5e": "v5e", "v6e": "v6e", "v5p": "v5p", "tpu7x": "v7x"}


@dataclasses.dataclass(frozen=True)
class TpuFacts:
    """What the local signs say about a TPU.

    Attributes:
        present: A TPU looks attached to this host, or reachable as a TPU node.
        address: What ``TPUClusterResolver`` is given: ``local`` on a TPU VM, ``grpc://host:port`` or a name for a
            TPU node; None without a TPU.
        generation: The generation, or None when the signs do not tell.
        chips: Chips on this host (None for a TPU node, whose chips are elsewhere, or when unknown).
        accelerator_type: ``TPU_ACCELERATOR_TYPE`` or one made from the generation and count, e.g. ``v5litepod-8``.
        signs: Each sign seen, for people (``doctor`` prints them).
    """

    present: bool
    address: str | None
    generation: Generation | None
    chips: int | None
    accelerator_type: str | None
    signs: tuple[str, ...]

    @property
    def replicas(self) -> int | None:
        """Replicas a TPUStrategy over this host gets (8 on a v3-8 or v5e-8, 1 on a v5e-1), or None if unknown."""
        if self.generation is None or self.chips is None:
            return None
        return self.chips * self.generation.replicas_per_chip

    @property
    def hbm_per_replica_bytes(self) -> int | None:
        """Memory one replica has, for the batch finder's limit; None when the generation is unknown."""
        return self.generation.hbm_per_replica_bytes if self.generation else None

    @property
    def needs_pjrt(self) -> bool:
        """Whether TensorFlow must load libtpu as a PJRT plugin (a TPU VM of v4 or later)."""
        return bool(self.generation and self.generation.needs_pjrt and self.address == "local")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready facts, as ``doctor --json`` and ``summary.json`` carry them."""
        return {
            "present": self.present,
            "address": self.address,
            "generation": self.generation.name if self.generation else None,
            "chips": self.chips,
            "replicas": self.replicas,
            "hbm_per_replica_bytes": self.hbm_per_replica_bytes,
            "bfloat16": self.present,  # every TPU generation computes in bfloat16
            "accelerator_type": self.accelerator_type,
            "needs_pjrt": self.needs_pjrt,
            "signs": list(self.signs),
        }


def detect(
    environ: Mapping[str, str] | None = None, *, dev_root: str | os.PathLike[str] = "/dev", sys_root: str = "/sys"
) -> TpuFacts:
    """Reads the local signs of a TPU.

    Args:
        environ: The environment to read; ``os.environ`` by default.
        dev_root: Where device files live (``/dev``).
        sys_root: Where sysfs is mounted (``/sys``).

    Returns:
        The facts; ``present`` is false when there is no sign at all.
    """
    env = os.environ if environ is None else environ
    signs: list[str] = []
    pci = _pci_chips(Path(sys_root))
    if pci:
        signs.append(f"{len(pci)} Google TPU PCI device(s) ({', '.join(sorted(set(pci)))})")
    dev = Path(dev_root)
    accel = sorted(path.name for path in dev.glob("accel[0-9]*"))
    vfio = sorted(path.name for path in dev.glob("vfio/[0-9]*"))
    if accel:
        signs.append(f"{len(accel)} {dev_root}/accel* file(s)")
    if vfio:
        signs.append(f"{len(vfio)} {dev_root}/vfio/<group> file(s)")
    type_name, type_count = _accelerator_type(env.get("TPU_ACCELERATOR_TYPE", ""))
    for name in ("TPU_ACCELERATOR_TYPE", "ISTPUVM", "TPU_PROCESS_ADDRESSES", "TPU_NAME", "COLAB_TPU_ADDR"):
        if env.get(name):
            signs.append(f"{name}={env[name]}")
    on_this_host = bool(pci or accel or vfio or env.get("ISTPUVM") or type_name)
    address = _address(env, on_this_host=on_this_host)
    generation_name = (pci[0] if pci and len(set(pci)) == 1 else None) or type_name
    generation = GENERATIONS.get(generation_name) if generation_name else None
    chips = len(pci) or len(vfio) or len(accel) or None
    if chips is None and generation is not None and type_count:
        chips = max(type_count // generation.type_units_per_chip, 1)
    if address != "local":
        chips = None  # a TPU node's chips are on its own host
    accelerator = env.get("TPU_ACCELERATOR_TYPE") or _type_name(generation, chips)
    return TpuFacts(address is not None, address, generation, chips, accelerator, tuple(signs))


def _pci_chips(sys_root: Path) -> list[str]:
    """One generation name (or ``unknown``) per Google TPU on the PCI bus."""
    chips = []
    for device in sorted((sys_root / "bus" / "pci" / "devices").glob("*")):
        if _read(device / "vendor") != GOOGLE_PCI_VENDOR:
            continue
        device_id = _read(device / "device")
        if device_id == "0x0027":
            chips.append(_PCI_V2_V3.get(_read(device / "subsystem_device"), "unknown"))
        elif device_id in _PCI_DEVICES:
            chips.append(_PCI_DEVICES[device_id])
        # other Google PCI devices (gVNIC, NVMe) are not TPUs
    return chips


def _read(path: Path) -> str:
    try:
        return path.read_text().strip().lower()
    except OSError:
        return ""


def _accelerator_type(text: str) -> tuple[str | None, int | None]:
    """``v5litepod-8`` -> (``v5e``, 8); ``v3-8`` -> (``v3``, 8); anything else -> (None, None)."""
    match = re.fullmatch(r"(v\d[a-z]*|tpu7x)-(\d+)", text.strip().lower())
    if not match:
        return None, None
    prefix, count = match.group(1), int(match.group(2))
    name = _TYPE_PREFIXES.get(prefix, prefix)
    return (name, count) if name in GENERATIONS else (None, None)


def _address(env: Mapping[str, str], *, on_this_host: bool) -> str | None:
    if env.get("COLAB_TPU_ADDR"):  # Colab's old TPU node runtime (v2-8)
        return "grpc://" + env["COLAB_TPU_ADDR"]
    if env.get("TPU_NAME"):
        return env["TPU_NAME"]
    return "local" if on_this_host else None


def _type_name(generation: Generation | None, chips: int | None) -> str | None:
    if generation is None or chips is None:
        return None
    if generation.name == "v5e":
        return f"v5litepod-{chips}"
    return f"{generation.name}-{chips * generation.type_units_per_chip}"
