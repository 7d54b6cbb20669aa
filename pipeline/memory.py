"""Keeping the process's peak memory down between stages."""

from __future__ import annotations

import ctypes
import gc
from functools import cache


@cache
def _malloc_trim() -> object | None:
    """glibc's ``malloc_trim``, or ``None`` where there is no glibc (macOS, musl)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return getattr(libc, "malloc_trim", None)


def release_free_memory(*, collect: bool = False) -> None:
    """Hand the heap's free pages back to the system (glibc only; elsewhere nothing happens).

    A stage that allocated and freed large arrays (the fast pass of a long file, a render) leaves the
    freed blocks in the heap; without this, the next stage's working set (DNSMOS needs about 130 MB per
    9 s segment) stacks on top of them in the process's peak memory. ``collect`` runs the garbage
    collector first, for cycles that still hold arrays. Costs a few milliseconds.
    """
    if collect:
        gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)  # type: ignore[operator]
