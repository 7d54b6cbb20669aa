"""Runs, pauses and the speech summary: known answers, and real speech with inserted pauses."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import soundfile as sf
from _corpus import corpus_file
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.analysis.base import FRAME_SAMPLES, merge_spans, runs_and_pauses, speech_metrics
from pipeline.analysis.energy import FrameEnergy, frame_db, frame_power
from pipeline.analysis.vad import WebRtcVad, segments_from_mask, speech_mask

RATE = 16000


def test_runs_and_pauses_known_answer():
    segments = [(0.5, 1.0), (1.3, 2.0), (2.5, 3.0), (4.0, 4.2), (6.7, 7.0)]
    runs, pauses = runs_and_pauses(segments, min_pause_s=0.5)
    # 0.3 s gap joins; a gap of exactly min_pause_s is a pause; 1.0 s and 2.5 s are pauses.
    assert runs == [(0.5, 2.0), (2.5, 3.0), (4.0, 4.2), (6.7, 7.0)]
    assert pauses == [(2.0, 2.5), (3.0, 4.0), (4.2, 6.7)]


def test_merge_spans_known_answer():
    """Overlapping and touching spans merge; a gap merges only when closer than ``gap_s`` (strictly, as a
    pause of exactly ``min_pause_s`` is a pause); the input's order does not matter."""
    spans = [(7.0, 8.0), (0.0, 2.0), (1.0, 3.0), (3.0, 4.0), (5.0, 6.0), (1.5, 1.8)]
    assert merge_spans(spans) == [(0.0, 4.0), (5.0, 6.0), (7.0, 8.0)]
    assert merge_spans(spans, gap_s=1.0) == [(0.0, 4.0), (5.0, 6.0), (7.0, 8.0)]  # gaps of exactly 1 s
    assert merge_spans(spans, gap_s=1.01) == [(0.0, 8.0)]
    assert merge_spans([]) == []
    assert merge_spans([[2, 3], [0, 1]]) == [(0.0, 1.0), (2.0, 3.0)]  # any pair of numbers, floats out


_SPANS = st.lists(
    st.tuples(st.integers(0, 100), st.integers(0, 20)).map(lambda p: (p[0] / 4, (p[0] + p[1]) / 4)),
    max_size=15,
)


@settings(max_examples=300, deadline=None)
@given(_SPANS, st.sampled_from([0.0, 0.25, 1.0, 3.0]))
def test_merge_spans_covers_the_same_time_with_spans_apart(spans: list, gap_s: float) -> None:
    """The merged spans are in time order, each at least ``gap_s`` from the next and never touching; each
    is the chain of input spans it holds (every one closer than ``gap_s`` to the stretch before it, or
    overlapping it), edge to edge; every input lies in one; merging again changes nothing."""
    merged = merge_spans(spans, gap_s=gap_s)
    assert all(b - a >= gap_s and b > a for (_, a), (b, _) in itertools.pairwise(merged))
    assert sorted(spans) == sorted(s for a, b in merged for s in spans if a <= s[0] and s[1] <= b)
    for a, b in merged:
        inside = sorted(s for s in spans if a <= s[0] and s[1] <= b)
        assert inside[0][0] == a
        reach = inside[0][1]
        for start, end in inside[1:]:
            assert start <= reach or start - reach < gap_s
            reach = max(reach, end)
        assert reach == b
    assert merge_spans(merged, gap_s=gap_s) == merged
    assert merge_spans(list(reversed(spans)), gap_s=gap_s) == merged


def test_speech_metrics_known_answer():
    segments = [(0.5, 1.0), (1.3, 2.0), (2.5, 3.0), (4.0, 4.2), (6.2, 7.0), (9.1, 9.5)]
    m = speech_metrics(segments, duration_s=10.0)
    v = m.metrics
    assert v["speech_s"] == pytest.approx(0.5 + 0.7 + 0.5 + 0.2 + 0.8 + 0.4)
    assert v["speech_ratio"] == pytest.approx(3.1 / 10.0)
    assert v["longest_run_s"] == pytest.approx(1.5)
    assert v["max_pause_s"] == pytest.approx(2.1)
    # pauses 0.5, 1.0, 2.0 (not over 2 s), 2.1 (over)
    assert v["pauses_over_2s"] == 1
    assert v["pauses"] == [[2.0, 2.5], [3.0, 4.0], [4.2, 6.2], [7.0, 9.1]]
    assert m.null_reasons == {}


def test_single_run_has_zero_max_pause():
    m = speech_metrics([(1.0, 2.0), (2.2, 3.0)], duration_s=4.0)
    assert m.metrics["max_pause_s"] == 0.0
    assert m.metrics["longest_run_s"] == pytest.approx(2.0)
    assert m.metrics["pauses"] == []


def test_no_speech_gives_none_with_reason():
    m = speech_metrics([], duration_s=5.0)
    assert m.metrics["speech_s"] == 0.0
    assert m.metrics["speech_ratio"] == 0.0
    assert m.metrics["max_pause_s"] is None
    assert m.null_reasons["max_pause_s"].startswith("no_speech:")
    assert m.metrics["pauses_over_2s"] == 0


def _trimmed(name: str) -> np.ndarray:
    """A real 16 kHz utterance cut to its speech: frames within 30 dB of its loud frames.

    (These recordings have room noise bursts about 35-40 dB below the speech: a 30 dB cut leaves them out.)
    """
    x, rate = sf.read(corpus_file("speech", name), dtype="float32")
    assert rate == RATE
    db = frame_db(frame_power(x))
    on = np.flatnonzero(db > np.percentile(db, 99) - 30.0)
    x = x[on[0] * FRAME_SAMPLES : (on[-1] + 1) * FRAME_SAMPLES]
    return (x * 0.05 / np.sqrt(np.mean(x**2))).astype(np.float32)


@pytest.mark.parametrize("background_dbfs", [-70.0, -50.0])
def test_inserted_pauses_are_measured(background_dbfs):
    """Four short real sentences joined by silences of 1.0 s, 0.3 s and 2.5 s, on a steady background.

    The whole fast-pass chain (streaming energy and WebRTC, fused mask with refined edges, segments,
    metrics) must find exactly the 1.0 s and 2.5 s pauses, each edge within 80 ms (a 30 ms pad, the 30 ms
    level window, and over the -50 dBFS background about 30 ms kept for a word tail it could hide; WebRTC
    and its hangover alone used to put the start 0.1 s late), and must not call the 0.3 s gap a pause.
    """
    names = [
        "pra_cmu_arctic_us_aew_a0001.wav",
        "pra_cmu_arctic_us_aew_a0002.wav",
        "pra_cmu_arctic_us_axb_a0004.wav",
        "pra_cmu_arctic_us_aew_a0003.wav",
    ]
    gaps = [1.0, 0.3, 2.5]
    parts = [np.zeros(RATE // 2, dtype=np.float32)]
    truth = []
    t = 0.5
    for i, name in enumerate(names):
        utterance = _trimmed(name)
        parts.append(utterance)
        t += utterance.size / RATE
        if i < len(gaps):
            parts.append(np.zeros(round(gaps[i] * RATE), dtype=np.float32))
            truth.append((t, t + gaps[i]))
            t += gaps[i]
    parts.append(np.zeros(RATE // 2, dtype=np.float32))
    clean = np.concatenate(parts)
    level = 10.0 ** (background_dbfs / 20.0)
    y = (clean + level * np.random.default_rng(5).standard_normal(clean.size)).astype(np.float32)

    energy, vad = FrameEnergy(), WebRtcVad()
    for start in range(0, y.size, 4001):
        energy.process(y[start : start + 4001])
        vad.process(y[start : start + 4001])
    mask = speech_mask(frame_db(energy.finish()), vad.finish())
    m = speech_metrics(segments_from_mask(mask), duration_s=y.size / RATE)

    expected = [span for span in truth if span[1] - span[0] >= 0.5]
    assert len(m.metrics["pauses"]) == len(expected) == 2
    for (start, end), (true_start, true_end) in zip(m.metrics["pauses"], expected, strict=True):
        assert abs((end - start) - (true_end - true_start)) <= 0.08
        assert abs(start - true_start) <= 0.08 and abs(end - true_end) <= 0.08
    assert m.metrics["pauses_over_2s"] == 1
    assert m.metrics["max_pause_s"] == pytest.approx(2.5, abs=0.08)
