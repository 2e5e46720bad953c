"""The user's own model (``model.name: module:function`` or ``file.py:function``), called and checked.

Whatever goes wrong in the user's code (a syntax error, an import that fails, other arguments, an exception while
building, a head of the wrong width) is one line naming the file and the line, never a traceback.
"""

from __future__ import annotations

import inspect
import os
import traceback

import keras

from tfkit import user_code
from tfkit.errors import UserError


def build(spec: str, *, input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """Calls the user's model function; whatever goes wrong in the user's code is reported as one line."""
    try:
        function = user_code.load_function(spec, key="model.name")
    except SyntaxError as error:
        raise UserError(
            f"config key 'model.name': '{spec}' does not parse: {error.msg} ({error.filename}, line {error.lineno}); "
            "fix the syntax error."
        ) from None
    except UserError:
        raise
    except Exception as error:
        raise UserError(
            f"config key 'model.name': importing '{spec}' raised {type(error).__name__}: {_first_line(error)}"
            f"{_where(error)}; fix the module."
        ) from None
    try:
        inspect.signature(function).bind(input_shape=input_shape, num_classes=num_classes)
    except TypeError:
        raise UserError(
            f"config key 'model.name': '{spec}' takes {inspect.signature(function)}; expected a function called as "
            "f(*, input_shape, num_classes) that returns a keras.Model."
        ) from None
    except ValueError:
        pass  # a builtin or C function without a signature: call it and see
    try:
        return function(input_shape=input_shape, num_classes=num_classes)
    except Exception as error:
        raise UserError(
            f"model '{spec}' raised {type(error).__name__} while building for input {input_shape} and "
            f"{num_classes} classes: {_first_line(error)}{_where(error)}; fix the model function."
        ) from None


def check_outputs(name: str, model: keras.Model, *, num_classes: int) -> None:
    """Refuses a model whose head does not give ``num_classes`` values, before any data reaches it."""
    try:
        outputs = list(model.outputs or [])
    except (AttributeError, ValueError):
        return  # a subclassed model has no symbolic outputs before its first call; the first step checks it
    if len(outputs) != 1:
        raise UserError(f"model '{name}' has {len(outputs)} outputs; expected one output of {num_classes} logits.")
    shape = tuple(outputs[0].shape)
    width = shape[-1] if shape else None
    if width is not None and width != num_classes:
        raise UserError(
            f"model '{name}' outputs {width} values per example (output shape {shape}); expected "
            f"{num_classes} (num_classes). Make the last layer Dense({num_classes}) or set model.num_classes."
        )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "(no message)"


def _where(error: BaseException) -> str:
    """`` (file.py, line N)`` of the deepest frame outside Keras and TensorFlow: where the user's code failed."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if "site-packages" not in frame.filename]
    if not frames:
        return ""
    frame = frames[-1]
    return f" ({os.path.basename(frame.filename)}, line {frame.lineno})"
