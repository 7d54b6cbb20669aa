"""DNSMOS in the end-to-end tests: each distinct window scored once per test process.

A run re-checks every clip it renders with DNSMOS, and that is most of its time. The end-to-end tests
meet the same audio again and again: one clip for two families with the same delivery format, a run
repeated over the same input to test resuming or another executor, ``voiceprep check`` on the clips a
run wrote. :func:`dnsmos_once` keeps the model's scores by the exact samples it was given, so a window
already scored in this process is not scored again; the values are the ones the model gives for those
samples (it is deterministic: ``tests/test_dnsmos.py``), every other step of the re-check still runs,
and processes the tests start (process pools, the command as a process) score everything themselves,
except the children of ``tests/_kill_zygote.py``, which hand their new scores back to the zygote
(:func:`remember`, :func:`scores`, :func:`learn`) for the children forked after them.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np

_SCORES: dict[tuple[str, str, tuple[int, ...]], Any] = {}
"""DNSMOS results by (sha256 of the samples, dtype, shape), for this process."""


def _remembering(score: Any) -> Any:
    """``score`` (:func:`pipeline.analysis.dnsmos.dnsmos`) that looks the samples up first."""

    def remembered(audio16k: Any) -> Any:
        samples = np.ascontiguousarray(audio16k)
        key = (hashlib.sha256(samples.tobytes()).hexdigest(), samples.dtype.str, samples.shape)
        if key not in _SCORES:
            _SCORES[key] = score(audio16k)
        return copy.deepcopy(_SCORES[key])

    return remembered


@contextlib.contextmanager
def dnsmos_once() -> Iterator[None]:
    """Within the block, :func:`pipeline.analysis.dnsmos.dnsmos` gives a copy of its earlier result for
    samples it has already scored (every caller imports it from its module when it calls it)."""
    import pytest

    from pipeline.analysis import dnsmos as module

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "dnsmos", _remembering(module.dnsmos))
        yield


def remember() -> None:
    """:func:`dnsmos_once` for the rest of this process (a zygote and the children it forks)."""
    from pipeline.analysis import dnsmos as module

    module.dnsmos = _remembering(module.dnsmos)


def scores() -> dict[tuple[str, str, tuple[int, ...]], Any]:
    """The scores this process holds (a child hands them back to its zygote)."""
    return dict(_SCORES)


def learn(found: dict[tuple[str, str, tuple[int, ...]], Any]) -> None:
    """Hold scores another process of the same model made (a child's, in its zygote)."""
    _SCORES.update(found)
