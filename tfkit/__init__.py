"""tfkit: train Keras models on TPU, several GPUs, several workers or CPU, without losing the run.

Importing tfkit imports nothing heavy: TensorFlow loads with the modules that need it (training, export, the data
reader), so ``tfkit.tb``, ``tfkit.wheels`` and ``tfkit.records inspect|verify`` start in well under two seconds,
and the TPU runtime's environment is set here, before TensorFlow loads (``tfkit.tpu_runtime``: on a v4 or later TPU
VM, the PJRT plugin's variables; elsewhere nothing).

TensorFlow is not a hard requirement of the package, so that installing tfkit never replaces a machine's own
TensorFlow build.
"""

import os as _os

from tfkit import tpu_runtime as _tpu_runtime

__version__ = "0.1.0"

# TensorFlow's INFO and WARNING lines drown the one line a person needs. TF_CPP_MIN_LOG_LEVEL=0 brings them back.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow reads the PJRT variables once, at its import; a notebook that imported it first gets one line to restart.
tpu_setup = _tpu_runtime.prepare()
