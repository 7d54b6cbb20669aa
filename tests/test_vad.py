"""WebRTC VAD streaming, smoothing, the energy gate, edge refinement and frame F1 on real speech in noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from _corpus import corpus_file

from pipeline.analysis.base import FRAME_SAMPLES
from pipeline.analysis.energy import frame_db, frame_power
from pipeline.analysis.vad import (
    TAIL_DECAY_DB_PER_S,
    WebRtcVad,
    background_dbfs,
    energy_gate,
    refine_edges,
    segments_from_mask,
    smooth,
    speech_mask,
    webrtc_vad,
)
from pipeline.errors import InvalidArgument

RATE = 16000
UTTERANCES = (
    "pra_cmu_arctic_us_aew_a0001.wav",
    "pra_cmu_arctic_us_axb_a0004.wav",
    "sb_ljspeech_LJ050-0131.wav",
)


def load16k(path: Path) -> np.ndarray:
    """Read a file as mono float32 at 16 kHz."""
    x, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = x.mean(axis=1)
    if rate != RATE:
        mono = soxr.resample(mono, rate, RATE)
    return np.asarray(mono, dtype=np.float32)


def reference_mask(clean: np.ndarray) -> np.ndarray:
    """The clean signal's own speech mask: frames within 35 dB of its loud (99th percentile) frames.

    Gaps under 0.1 s are filled and an 80 ms tail added, the same time conventions the VAD uses, so the
    comparison is about detection and not about where a word's tail is said to end.
    """
    db = frame_db(frame_power(clean))
    return smooth(db > np.percentile(db, 99) - 35.0, min_speech_s=0.0, hangover_s=0.08, min_gap_s=0.1)


def trimmed_utterance(name: str, *, rms: float = 0.05) -> np.ndarray:
    """A real utterance cut to its speech (frames within 35 dB of its loud frames), at a set speech RMS."""
    x = load16k(corpus_file("speech", name))
    db = frame_db(frame_power(x))
    on = np.flatnonzero(db > np.percentile(db, 99) - 35.0)
    x = x[on[0] * FRAME_SAMPLES : (on[-1] + 1) * FRAME_SAMPLES]
    active = reference_mask(x)
    return (x * rms / np.sqrt(frame_power(x)[active].mean())).astype(np.float32)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with a 1/f power spectrum."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spectrum.size, dtype=np.float64)
    f[0] = 1.0
    return np.fft.irfft(spectrum / np.sqrt(f), n)


def add_noise(clean: np.ndarray, noise: np.ndarray, snr_db: float, active: np.ndarray) -> np.ndarray:
    """Mix so that clean power over speech-active frames / mean noise power is ``snr_db``."""
    speech_power = frame_power(clean)[active].mean()
    noise = noise[: clean.size].astype(np.float64)
    gain = np.sqrt(speech_power / np.mean(noise**2) / 10.0 ** (snr_db / 10.0))
    return (clean + gain * noise).astype(np.float32)


def f1(est: np.ndarray, ref: np.ndarray) -> float:
    """Frame F1 of ``est`` against ``ref``."""
    tp = np.sum(est & ref)
    return float(2 * tp / (2 * tp + np.sum(est & ~ref) + np.sum(~est & ref)))


@pytest.fixture(scope="module")
def speech_with_pauses() -> tuple[np.ndarray, np.ndarray]:
    """Three real utterances at one level, 1 s of silence around and between them, and their mask."""
    silence = np.zeros(RATE, dtype=np.float32)
    parts = [silence[: RATE // 2]]
    for name in UTTERANCES:
        parts += [trimmed_utterance(name), silence]
    clean = np.concatenate(parts)
    return clean, reference_mask(clean)


def fused_mask(y: np.ndarray) -> np.ndarray:
    """The VAD decision the pipeline uses: WebRTC + energy gate + smoothing."""
    return speech_mask(frame_db(frame_power(y)), webrtc_vad(y))


def test_streaming_matches_one_shot_for_odd_block_sizes(speech_with_pauses):
    clean, _ = speech_with_pauses
    y = clean[: 3 * RATE] + np.float32(0.01) * np.random.default_rng(1).standard_normal(3 * RATE).astype(
        np.float32
    )
    vad = WebRtcVad()
    sizes = [1, 159, 161, 7, 480, 1000, 33]
    pos = i = 0
    while pos < y.size:
        vad.process(y[pos : pos + sizes[i % len(sizes)]])
        pos += sizes[i % len(sizes)]
        i += 1
    streamed = vad.finish()
    assert streamed.size == y.size // FRAME_SAMPLES
    np.testing.assert_array_equal(streamed, webrtc_vad(y))


def test_digital_silence_is_no_speech():
    y = np.zeros(2 * RATE + 77, dtype=np.float32)
    raw = webrtc_vad(y)
    assert raw.size == 200 and not raw.any()
    mask = speech_mask(frame_db(frame_power(y)), raw)
    assert segments_from_mask(mask) == []


def test_smooth_fills_gaps_drops_blips_and_adds_hangover():
    raw = np.zeros(60, dtype=bool)
    raw[5:15] = True  # run A
    raw[19:30] = True  # 4-frame gap (40 ms) after A: filled with min_gap_s=0.05
    raw[45:47] = True  # 20 ms blip: dropped with min_speech_s=0.03
    out = smooth(raw, min_speech_s=0.03, hangover_s=0.03, min_gap_s=0.05)
    expected = np.zeros(60, dtype=bool)
    expected[5:33] = True
    np.testing.assert_array_equal(out, expected)


def test_smooth_keeps_gaps_at_least_min_gap():
    raw = np.zeros(40, dtype=bool)
    raw[0:10] = True
    raw[20:30] = True  # 10-frame gap = min_gap_s: not filled
    out = smooth(raw, min_speech_s=0.0, hangover_s=0.0, min_gap_s=0.1)
    np.testing.assert_array_equal(out, raw)


def test_segments_from_mask_known_answer():
    mask = np.zeros(100, dtype=bool)
    mask[3:10] = True
    mask[50:100] = True
    assert segments_from_mask(mask) == [(0.03, 0.1), (0.5, 1.0)]
    assert segments_from_mask(np.zeros(5, dtype=bool)) == []


def test_energy_gate_rejects_noise_webrtc_calls_speech():
    """WebRTC says "speech" everywhere (as it does for loud noise); the gate keeps only the bursts."""
    rng = np.random.default_rng(7)
    y = 0.01 * rng.standard_normal(4 * RATE)
    bursts = [(1.0, 1.5), (2.5, 3.2)]
    for start, end in bursts:
        a, b = int(start * RATE), int(end * RATE)
        y[a:b] += 0.2 * np.sin(2 * np.pi * 300 * np.arange(b - a) / RATE)  # 23 dB above the noise
    db = frame_db(frame_power(y))
    gate = energy_gate(db, np.ones(db.size, dtype=bool))
    expected = np.zeros(db.size, dtype=bool)
    for start, end in bursts:
        expected[round(start * 100) : round(end * 100)] = True
    # The 50 ms level window may blur each edge by up to 3 frames; elsewhere the answer is exact.
    disagree = np.flatnonzero(gate != expected)
    edges = np.array([round(t * 100) for span in bursts for t in span])
    assert all(np.min(np.abs(edges - i)) <= 3 for i in disagree)
    mask = speech_mask(db, np.ones(db.size, dtype=bool))
    # Edge refinement never moves an edge outwards: each run starts where the 50 ms gate opened (20 ms
    # before the tone) and, although the last loud frame + 30 ms pad + the allowance for a tail hidden by
    # the noise (threshold about 20 dB above "40 dB under the tone": 7 frames at 300 dB/s) reaches 110 ms
    # past the tone, ends where the smoothed run ends (gate edge + 80 ms hangover).
    assert [(round(s, 2), round(e, 2)) for s, e in segments_from_mask(mask)] == [(0.98, 1.6), (2.48, 3.3)]


def _levels(n: int, background: float, spans: list[tuple[int, int, float]]) -> np.ndarray:
    """Per-frame levels (dB): ``background`` everywhere, ``level`` on frames ``[start, end)`` of each span."""
    db = np.full(n, background)
    for start, end, level in spans:
        db[start:end] = level
    return db


def test_refine_edges_trims_a_decayed_tail_known_answer():
    """A word at -20 dB decaying 5 dB per frame into a -60 dB room tone; the smoothed run is too long.

    Threshold = max(-60 + 3, -20 - 40) = -57 dB. The 3-frame level at frame 66 (-50, -55, -60 dB) is
    -53.3 dB, at frame 67 (-55, -60, -60) -57.6 dB: the last frame that stands out is 66. Tail allowance
    = (-57 - -60) dB / 3 dB per frame = 1 frame. End = 66 + 1 + 3 (pad) + 1 = 71. Start: frame 19's
    level (-60, -60, -20) stands out, so 19 - 3 = 16.
    """
    db = _levels(120, -60.0, [(20, 60, -20.0)])
    db[60:67] = [-25.0, -30.0, -35.0, -40.0, -45.0, -50.0, -55.0]
    mask = np.zeros(120, dtype=bool)
    mask[10:85] = True  # what WebRTC + hangover left: 10 frames early, 14 frames late
    out = refine_edges(mask, db, background_dbfs=-60.0)
    expected = np.zeros(120, dtype=bool)
    expected[16:71] = True
    np.testing.assert_array_equal(out, expected)
    assert TAIL_DECAY_DB_PER_S == 300.0  # the 1-frame allowance above assumes 3 dB per 10 ms


def test_refine_edges_keeps_room_for_the_tail_a_loud_background_hides():
    """Speech at -10 dB over a -30 dB background: threshold -27 dB, which is 23 dB above -50 dB (40 dB
    under the speech), so round(23 / 3) = 8 frames are kept after the last loud frame (50: its level
    averages -10, -30, -30) plus the 3-frame pad: end 50 + 1 + 3 + 8 = 62. Edges never move outwards
    (the run starts at 20), and a run that ends earlier keeps its end."""
    db = _levels(100, -30.0, [(20, 50, -10.0)])
    mask = np.zeros(100, dtype=bool)
    mask[20:80] = True
    out = refine_edges(mask, db, background_dbfs=-30.0)
    assert segments_from_mask(out) == [(0.2, 0.62)]
    mask[58:] = False
    assert segments_from_mask(refine_edges(mask, db, background_dbfs=-30.0)) == [(0.2, 0.58)]


def test_refine_edges_drops_runs_that_never_stand_out_and_respects_the_range():
    """A run 45 dB under the loud speech is dropped (threshold: 40 dB under the speech), with or without a
    known background; a wider range keeps it, trimmed to its own loud frames plus the pad."""
    db = _levels(200, -90.0, [(20, 60, -10.0), (120, 140, -55.0)])
    mask = np.zeros(200, dtype=bool)
    mask[15:70] = True
    mask[110:150] = True
    # First run: the 3-frame levels of frames 19 and 60 include a loud frame, so [19 - 3, 60 + 1 + 3).
    for background in (None, -90.0):
        assert segments_from_mask(refine_edges(mask, db, background_dbfs=background)) == [(0.16, 0.64)]
    kept = refine_edges(mask, db, background_dbfs=None, range_db=60.0)
    assert segments_from_mask(kept) == [(0.16, 0.64), (1.16, 1.44)]
    assert not refine_edges(np.zeros(200, dtype=bool), db, background_dbfs=None).any()


def test_background_is_the_floor_of_the_smoothed_non_speech_level():
    """White noise at -50 dBFS, 40 dB louder over 86 % of the signal (marked speech).

    The floor is the 20th percentile of the 50 ms levels of the frames WebRTC calls non-speech. Such a
    level (800 samples) scatters by sqrt(2 / 800) = 5 % (0.22 dB), so the 20th percentile sits about
    0.84 x 0.22 = 0.18 dB under -50 dB. Taken over all frames it would be the loud part's level; too few
    frames give ``None``.
    """
    rng = np.random.default_rng(8)
    y = 10 ** (-50 / 20) * rng.standard_normal(5 * RATE)
    y[RATE // 2 : 48 * RATE // 10] *= 100.0
    raw = np.zeros(500, dtype=bool)
    raw[45:485] = True
    db = frame_db(frame_power(y))
    assert background_dbfs(db, raw) == pytest.approx(-50.18, abs=0.2)
    assert background_dbfs(db, np.zeros(500, dtype=bool)) > -15.0
    assert background_dbfs(np.full(5, -40.0), np.zeros(5, dtype=bool)) is None


def test_pause_between_real_utterances_is_not_shortened_by_the_hangover():
    """Two real sentences with their own leading and trailing room tone, joined by 1 s of room tone.

    Truth (docs/accuracy.md): frames whose 3-frame level exceeds max(peak - 40 dB, 5th percentile + 6 dB),
    gaps under 0.1 s filled, 20 ms pad. WebRTC plus the 80 ms hangover used to end each sentence 0.1-0.2 s
    late; the refined mask must put both edges of the pause within 50 ms of the truth.
    """
    a = load16k(corpus_file("speech", "pra_cmu_arctic_us_aew_a0001.wav"))
    b = load16k(corpus_file("speech", "pra_cmu_arctic_us_aew_a0002.wav"))
    tone = a[: round(0.1 * RATE)]
    rms = float(np.sqrt(np.mean(tone.astype(np.float64) ** 2)))
    gap = (rms * np.random.default_rng(9).standard_normal(RATE)).astype(np.float32)
    n_a = (a.size // FRAME_SAMPLES) * FRAME_SAMPLES
    y = np.concatenate([a[:n_a], gap, b])

    power = frame_power(y)
    level = 10 * np.log10(np.convolve(power, np.ones(3) / 3, mode="same") + 1e-12)
    truth = level > max(level.max() - 40.0, np.percentile(level, 5) + 6.0)
    truth = smooth(truth, min_speech_s=0.0, hangover_s=0.0, min_gap_s=0.1)
    truth = np.convolve(truth.astype(float), np.ones(5), mode="same") > 0  # 20 ms pad on each side
    join = n_a // FRAME_SAMPLES + 50  # a frame in the middle of the inserted room tone
    true_start = join - int(np.flatnonzero(truth[:join][::-1])[0])
    true_end = join + int(np.flatnonzero(truth[join:])[0])

    mask = speech_mask(frame_db(power), webrtc_vad(y))
    start = join - int(np.flatnonzero(mask[:join][::-1])[0])
    end = join + int(np.flatnonzero(mask[join:])[0])
    assert end - true_end <= 5 and true_end - end <= 5
    assert abs(start - true_start) <= 5
    assert (end - start) - (true_end - true_start) >= -5  # not shorter than the truth by more than 50 ms


def test_invalid_arguments_name_the_value():
    with pytest.raises(InvalidArgument, match="aggressiveness"):
        webrtc_vad(np.zeros(160, dtype=np.float32), aggressiveness=5)
    with pytest.raises(InvalidArgument, match=r"^x "):
        webrtc_vad(np.zeros((10, 2), dtype=np.float32))


def test_f1_clean(speech_with_pauses):
    clean, ref = speech_with_pauses
    dither = 3e-4 * np.random.default_rng(2).standard_normal(clean.size)  # -70 dBFS, not digital zero
    assert f1(fused_mask((clean + dither).astype(np.float32)), ref) >= 0.92


@pytest.mark.parametrize("kind", ["white", "pink", "exercise_bike"])
def test_f1_at_10db_snr(speech_with_pauses, kind):
    clean, ref = speech_with_pauses
    rng = np.random.default_rng(3)
    if kind == "white":
        noise = rng.standard_normal(clean.size)
    elif kind == "pink":
        noise = pink_noise(clean.size, rng)
    else:
        noise = load16k(corpus_file("noise", "pra_exercise_bike.wav"))
    assert f1(fused_mask(add_noise(clean, noise, 10.0, ref)), ref) >= 0.85


def test_gate_rescues_loud_noise_where_webrtc_alone_fails(speech_with_pauses):
    """Speech at -16 dBFS RMS in pink noise at 10 dB SNR: WebRTC alone marks nearly every frame speech."""
    clean, ref = speech_with_pauses
    loud = (clean * np.float32(10.0 ** (-16 / 20) / 0.05)).astype(np.float32)
    y = add_noise(loud, pink_noise(loud.size, np.random.default_rng(4)), 10.0, ref)
    raw = webrtc_vad(y)
    webrtc_only = smooth(raw)
    fused = speech_mask(frame_db(frame_power(y)), raw)
    assert webrtc_only.mean() > 0.95  # WebRTC calls the noise speech ...
    assert f1(fused, ref) >= 0.85  # ... the fused decision does not
    assert f1(fused, ref) > f1(webrtc_only, ref) + 0.03
