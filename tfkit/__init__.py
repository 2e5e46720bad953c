"""tfkit: train Keras models on TPU, several GPUs, several workers or CPU, without losing the run.

Importing tfkit imports nothing heavy: TensorFlow loads with the modules that need it (training, export, the data
reader), so ``tfkit.tb``, ``tfkit.wheels`` and ``tfkit.records inspect|verify`` start in well under two seconds,
and anything that must happen before TensorFlow loads (a TPU runtime's environment) can still happen.

TensorFlow is not a hard requirement of the package, so that installing tfkit never replaces a machine's own
TensorFlow build.
"""

import os as _os

__version__ = "0.1.0"

# TensorFlow's INFO and WARNING lines drown the one line a person needs. TF_CPP_MIN_LOG_LEVEL=0 brings them back.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
