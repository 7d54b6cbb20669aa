"""DNSMOS in the end-to-end tests: each distinct window scored once per test process.

A run re-checks every clip it renders with DNSMOS, and that is most of its time. The end-to-end tests
meet the same audio again and again: one clip for two families with the same delivery format, a run
repeated over the same input to test resuming or another executor, ``voiceprep check`` on the clips a
run wrote. :func:`dnsmos_once` keeps the model's scores by the exact samples it was given, so a window
already scored in this process is not scored again; the values are the ones the model gives for those
samples (it is deterministic: ``tests/test_dnsmos.py``), every other step of the re-check still runs,
and processes the tests start (process pools, the command as a process) score everything themselves.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

_SCORES: dict[tuple[str, str, tuple[int, ...]], Any] = {}
"""DNSMOS results by (sha256 of the samples, dtype, shape), for this process."""


@contextlib.contextmanager
def dnsmos_once() -> Iterator[None]:
    """Within the block, :func:`pipeline.analysis.dnsmos.dnsmos` gives a copy of its earlier result for
    samples it has already scored (every caller imports it from its module when it calls it)."""
    from pipeline.analysis import dnsmos as module

    score = module.dnsmos

    def remembered(audio16k: Any) -> Any:
        samples = np.ascontiguousarray(audio16k)
        key = (hashlib.sha256(samples.tobytes()).hexdigest(), samples.dtype.str, samples.shape)
        if key not in _SCORES:
            _SCORES[key] = score(audio16k)
        return copy.deepcopy(_SCORES[key])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "dnsmos", remembered)
        yield
