"""Argument checks for the public functions, shared so that each kind of check exists once.

Only the functions a user calls (``probe``, ``read``, ``write``, ``analyze_array``, the one-shot meters
on a numpy signal, ...) check their arguments; everything they call trusts its typed inputs. Every check
raises :class:`~pipeline.errors.InvalidArgument` with the parameter's name first in the message.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from pipeline.errors import InvalidArgument

F = TypeVar("F", bound=Callable[..., Any])


def as_path(name: str, value: object) -> Path:
    """A non-empty ``str``/``os.PathLike`` path without NUL bytes."""
    text = os.fspath(value) if isinstance(value, str | os.PathLike) else None
    if not isinstance(text, str) or not text or "\0" in text:
        raise InvalidArgument(f"{name} must be a non-empty str or os.PathLike path, got {value!r}")
    return Path(text)


def number(name: str, value: Any, *, minimum: float = 0.0, strict: bool = False) -> float:
    """A finite real number ``>= minimum`` (``> minimum`` when ``strict``), as ``float``."""
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < minimum or (strict and value == minimum):
        relation = ">" if strict else ">="
        raise InvalidArgument(f"{name} must be a finite number {relation} {minimum:g}, got {value!r}")
    return float(value)


def integer(name: str, value: Any, *, minimum: int = 1) -> int:
    """An ``int`` (numpy integers too, never ``bool``) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise InvalidArgument(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def one_of(name: str, value: Any, options: Collection[Any]) -> Any:
    """``value`` itself when it is one of ``options``."""
    if value not in options:
        raise InvalidArgument(f"{name} must be one of {', '.join(map(str, options))}, got {value!r}")
    return value


def signal(name: str, x: Any, *, mono: bool = False) -> np.ndarray:
    """``x`` as an array, when it is a finite float signal of shape ``(n,)`` or, unless ``mono``, ``(n, channels)``."""
    arr = np.asarray(x)
    if arr.ndim not in ((1,) if mono else (1, 2)) or not np.issubdtype(arr.dtype, np.floating):
        shape = "(n,)" if mono else "(n,) or (n, channels)"
        raise InvalidArgument(f"{name} must be a float array of shape {shape}, got {arr.dtype} {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidArgument(f"{name} contains NaN or infinite samples")
    return arr


def renamed(**old_to_new: str) -> Callable[[F], F]:
    """Accept the old keyword names of a public function for one more release, with a DeprecationWarning.

    ``@renamed(strategy="channel_strategy")`` maps ``strategy=`` to ``channel_strategy=``; passing both is a
    ``TypeError``. The function's signature shows only the new names.
    """

    def decorate(func: F) -> F:
        name = func.__qualname__.removesuffix(".__init__")

        @functools.wraps(func)
        def call(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{name}() got both {old}= and its new name {new}=")
                    warnings.warn(
                        f"{name}({old}=...) is deprecated and will be removed; use {new}=...",
                        DeprecationWarning,
                        stacklevel=2,
                    )
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return call  # type: ignore[return-value]

    return decorate
