"""Why a TPU did not start: each known failure text, turned into one line with its cause and the fix.

The texts are TensorFlow's and libtpu's own, as users and the Kaggle image's maintainers met them. The tests inject a
resolver or initialiser that raises each of them, since no TPU is reachable there. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tfkit import tpu_runtime

_INSTALL = tpu_runtime.INSTALL_TPU_STACK
_KNOWN: tuple[tuple[str, str], ...] = (
    (
        r"No TPU platform (found|registered)",
        "TensorFlow found no TPU platform: the PJRT runtime was not set up before TensorFlow was imported, or this "
        "libtpu is not one this TensorFlow can use; fix: restart the kernel and import tfkit before TensorFlow (it "
        f"sets the PJRT variables), with the known-good stack: {_INSTALL}",
    ),
    (
        r"No OpKernel was registered to support Op 'ConfigureDistributedTPU'",
        "this TensorFlow has no TPU kernels (a CPU-only build such as tensorflow-cpu, which Kaggle's TPU image "
        f"ships); fix: pip uninstall -y tensorflow tensorflow-cpu && {_INSTALL}, then restart the kernel",
    ),
    (
        r"TPU is already in use by process with pid (?P<pid>\d+)",
        "another process (pid {pid}) holds the TPU, or a crashed one left /tmp/libtpu_lockfile behind; fix: stop it "
        "(kill {pid}; python -m tfkit.doctor lists the holders), or if no such process runs, rm /tmp/libtpu_lockfile",
    ),
    (
        r"Device /job:localhost/replica:0/task:0/device:CPU:0 is not found",
        "Keras 3 placed a variable on a host device that this TPUStrategy does not know (tensorflow#74926, seen with "
        f"TensorFlow 2.16 on Kaggle's TPU VMs); fix: use the known-good stack ({_INSTALL}) and build the model and "
        "optimizer inside the strategy's scope, as tfkit.train does",
    ),
    (
        r"(Connection refused|[Ff]ailed to connect|connect_to_cluster|UNAVAILABLE|Deadline Exceeded|timed out)",
        "nothing answers at that address (a TPU node that is stopped, or a wrong address); fix: check the TPU's "
        "state and address (gcloud compute tpus list), or on a TPU VM use --tpu_address local",
    ),
    (
        r"(file too short|invalid ELF header|undefined symbol|cannot open shared object|pluggable device)",
        "TensorFlow could not load libtpu.so as its PJRT plugin (TF_PLUGGABLE_DEVICE_LIBRARY_PATH names a library this "
        f"TensorFlow cannot use); fix: {_INSTALL}, unset TF_PLUGGABLE_DEVICE_LIBRARY_PATH, then restart",
    ),
)


def explain(text: str, *, address: str, problems: Sequence[str] = ()) -> str:
    """One line for a TPU that did not start: what failed at ``address``, why, and the fix.

    Args:
        text: The error's text, as TensorFlow or libtpu raised it.
        address: The TPU address that was tried.
        problems: What ``tpu_runtime`` found wrong with the installed stack, said when the text is not one we know.

    Returns:
        The line, without a trailing period.
    """
    for pattern, reason in _KNOWN:
        match = re.search(pattern, text)
        if match:
            return f"the TPU at '{address}' did not start: {reason.format(**match.groupdict())}"
    first = text.strip().splitlines()[0].split(". ")[0].rstrip(".") if text.strip() else "no message"
    why = f"; {problems[0]}" if problems else ""
    return (
        f"no TPU was found at '{address}' ({first}){why}; check that this TensorFlow has TPU support (tensorflow-cpu, "
        f"as on Kaggle's TPU image, has none: {_INSTALL}) and that no other process holds the TPU (python -m "
        "tfkit.doctor lists them)"
    )
