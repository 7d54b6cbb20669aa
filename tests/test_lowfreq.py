"""pipeline.analysis.lowfreq helpers (the meter's measurements are tested in test_noise.py and test_fastpass.py)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.analysis.lowfreq import row_means


@pytest.mark.parametrize("columns", [8, 5, 16])
def test_row_means_are_numpys_bit_for_bit(columns):
    rng = np.random.default_rng(columns)
    rows = rng.standard_normal((20_000, columns)) * 10.0 ** rng.uniform(-9, 1, (20_000, 1))
    rows[:100] **= 2  # powers too: all positive, as the speech band's squares
    assert np.array_equal(row_means(rows), rows.mean(axis=1))
    assert row_means(rows[:0]).shape == (0,)
