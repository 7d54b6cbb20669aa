"""The speaker benchmark's known-answer items (``benchmarks/voices_items.py``): truth spans and determinism."""

from __future__ import annotations

import numpy as np
import pytest
from _corpus import corpus_dir

from benchmarks import voices_items as vi

RATE = vi.RATE


@pytest.mark.parametrize("position", vi.POSITIONS)
def test_splice_places_the_other_voice_on_its_truth_span(position: str) -> None:
    """A marker turn spliced into a window of noise lies exactly on the span returned, and the window
    keeps its length."""
    rng = np.random.default_rng(1)
    window = rng.uniform(-0.1, 0.1, round(vi.WINDOW_S * RATE))
    mask = np.ones(round(vi.WINDOW_S / 0.01), dtype=bool)
    mask[[300, 301, 700, 701, 1100, 1101]] = False  # pauses at 3.0, 7.0 and 11.0 s; none in the last 2-3 s
    other = np.full(2 * RATE, 0.5)
    out, (start, end) = vi._splice(window, mask, other, position)
    assert out.size == window.size
    assert end - start == pytest.approx(2.0)
    marker = np.flatnonzero(out == 0.5)
    assert marker[0] == round(start * RATE) and marker[-1] + 1 == round(end * RATE)
    assert {"start": 0.0, "middle": 7.005, "end": 13.0}[position] == pytest.approx(start, abs=0.01)


def test_other_voice_windows_are_seeded_and_hold_the_other_speech() -> None:
    """The same seed gives the same windows; each span holds at least its nominal seconds of the other
    voice's speech and lies inside the 15 s window."""
    corpus_dir("speech")
    first = vi.other_voice_windows(3, targets=("libri3080",))
    again = vi.other_voice_windows(3, targets=("libri3080",))
    assert len(first) == 3 * 3 * 2 * 3
    for a, b in zip(first, again, strict=True):
        assert a.name == b.name and a.other == b.other and np.array_equal(a.audio, b.audio)
        ((start, end),) = a.spans
        assert a.audio.size == round(vi.WINDOW_S * RATE)
        assert 0.0 <= start < end <= vi.WINDOW_S
        assert end - start >= a.params["duration_s"]
        assert a.params["other_speech_s"] >= a.params["duration_s"]
        assert a.other != "libri3080"
        assert (vi.VOICES[a.other].sex == "F") == (a.params["pairing"] == "same_sex")
