"""Loading the user's own code named in a config: ``module:function`` or ``path/to/file.py:function``."""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable
from typing import Any

from tfkit.errors import UserError


def load_function(spec: str, *, key: str) -> Callable[..., Any]:
    """Imports ``module:function`` or ``path/file.py:function``, for the config key ``key``.

    Raises:
        UserError: The module or file does not import, or has no such function.
    """
    location, _, function_name = spec.rpartition(":")
    module: Any
    try:
        if location.endswith(".py"):
            if not os.path.isfile(location):
                raise UserError(f"config key '{key}': file '{location}' does not exist; expected a .py file.")
            module_spec = importlib.util.spec_from_file_location(f"tfkit_user_{abs(hash(location))}", location)
            if module_spec is None or module_spec.loader is None:
                raise UserError(f"config key '{key}': '{location}' cannot be imported as Python.")
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(location)
    except ImportError as error:
        raise UserError(f"config key '{key}': cannot import '{location}' ({error}); check the module path.") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise UserError(f"config key '{key}': '{location}' has no function '{function_name}'.")
    return function
