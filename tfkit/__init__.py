"""tfkit: train Keras models on TPU, several GPUs, several workers or CPU, without losing the run.

TensorFlow is not a hard requirement of the package, so that installing tfkit never replaces a machine's own
TensorFlow build. Importing tfkit without TensorFlow says how to get it.
"""

import os as _os

__version__ = "0.1.0"

# TensorFlow's INFO and WARNING lines drown the one line a person needs. TF_CPP_MIN_LOG_LEVEL=0 brings them back.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _import_tensorflow() -> None:
    # TF 2.21 prints its oneDNN banner through absl before absl's log level is read, so TF_CPP_MIN_LOG_LEVEL cannot
    # hide it. Unless the user asked for TensorFlow's logs, stderr is closed at the file-descriptor level for the
    # import alone. A failing import still raises, so nothing that matters is hidden.
    if _os.environ.get("TF_CPP_MIN_LOG_LEVEL") in ("0", "1"):
        import tensorflow

        return
    saved = _os.dup(2)
    devnull = _os.open(_os.devnull, _os.O_WRONLY)
    try:
        _os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        _os.dup2(saved, 2)
        _os.close(saved)
        _os.close(devnull)


try:
    _import_tensorflow()
except ImportError:  # pragma: no cover - exercised in a venv without TensorFlow
    raise ImportError(
        "tfkit needs TensorFlow, which is not installed: pip install 'tfkit[cpu]' (or [gpu], or [tpu]), "
        "or install your machine's own TensorFlow first."
    ) from None
