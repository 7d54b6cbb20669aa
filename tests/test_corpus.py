"""Known answers of the accuracy corpus builder (benchmarks/corpus.py): its truths must be right.

These tests do not touch the analysers; they check that the degraded items really have the SNR, clip
ratio, T60, pause lengths and band limits the benchmark scores against.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _benchmarks import load_corpus
from scipy import signal

ROOT = Path(__file__).resolve().parents[1]


corpus = load_corpus()
RATE = 16000


def _frames(x: np.ndarray) -> np.ndarray:
    """Per-frame mean square at 16 kHz computed directly (160 samples a frame), independent of the module."""
    n = len(x) // 160
    return (np.asarray(x[: n * 160], dtype=np.float64).reshape(n, 160) ** 2).mean(axis=1)


def _bursts(noise_db: float, seed: int = 0) -> np.ndarray:
    """3 s: 440 Hz bursts at [0.50, 1.00), [1.05, 1.50), [2.00, 2.50) s over white noise ``noise_db`` under them."""
    t = np.arange(3 * RATE) / RATE
    on = ((t >= 0.5) & (t < 1.0)) | ((t >= 1.05) & (t < 1.5)) | ((t >= 2.0) & (t < 2.5))
    tone = 0.5 * np.sin(2 * np.pi * 440 * t) * on
    noise = np.random.default_rng(seed).standard_normal(len(t)) * 0.5 / np.sqrt(2) * 10 ** (noise_db / 20)
    return tone + noise


@pytest.mark.parametrize("noise_db", [-60.0, -25.0])
def test_truth_mask_of_tone_bursts(noise_db: float) -> None:
    # Burst frames 50-99, 105-149, 200-249. The 3-frame smoothing widens each run by one frame, the 30 ms
    # gap (frames 101-103) is shorter than 0.1 s and is filled, then the 20 ms pad adds two frames a side.
    # At -25 dB the floor rule (floor + 6 dB), not peak - 40 dB, keeps the noise out.
    mask = corpus.truth_speech_mask(_bursts(noise_db), RATE)
    expected = np.zeros(300, dtype=bool)
    expected[47:153] = True
    expected[197:253] = True
    assert mask.shape == (300,)
    np.testing.assert_array_equal(mask, expected)


def test_frame_grid_of_non_integer_frame_length() -> None:
    # 22.05 kHz: frames of 220 or 221 samples; 1 s holds exactly 100 frames covering every sample once.
    x = np.ones(22050)
    bounds = corpus.frame_bounds(corpus.frame_count(len(x), 22050), 22050)
    assert len(bounds) == 101 and bounds[0] == 0 and bounds[-1] == 22050
    assert set(np.diff(bounds).tolist()) == {220, 221}
    np.testing.assert_allclose(corpus.frame_powers(x, 22050), 1.0)


def _measured_snr(clean: np.ndarray, noise: np.ndarray, mask: np.ndarray) -> float:
    p = _frames(clean)
    return float(10 * np.log10(p[mask[: len(p)]].mean() / np.mean(noise**2)))


def test_mix_at_snr_real_speech_and_noise() -> None:
    speech, rate = corpus.load_source("aew", rate=RATE)
    speech = speech[: (len(speech) // 160) * 160]
    mask = corpus.truth_speech_mask(speech, rate)
    noise = corpus.noise_signal("exercise_bike", n=len(speech), rate=rate, rng=np.random.default_rng(3))
    mix, scaled = corpus.mix_at_snr(speech, noise, snr_db=10.0, mask=mask, rate=rate)
    np.testing.assert_allclose(mix - speech, scaled, atol=1e-12)
    assert abs(_measured_snr(speech, scaled, mask) - 10.0) < 0.01


def test_snr_item_has_the_asked_snr() -> None:
    # The third item is aew + white noise at 10 dB (levels 0, 5, 10 come first).
    item = next(it for it in corpus.snr_items() if it.params["snr_db"] == 10.0)
    assert item.params == {"source": "aew", "noise": "white", "snr_db": 10.0}
    clean, rate = corpus.load_source("aew", rate=RATE)
    assert item.sample_rate == rate and len(item.samples) == len(clean)
    noise = item.samples.astype(np.float64) / item.truth["mix_gain"] - clean
    assert abs(_measured_snr(clean, noise, item.truth["speech_mask"]) - 10.0) < 0.01
    # The effective SNR adds the source's own floor, so it can only be lower.
    assert item.truth["effective_snr_db"] <= 10.0


def test_real_noise_loops_without_clicks() -> None:
    base, native = corpus._read("noise/sms_rain.wav")
    rain = corpus.resample(base, in_rate=native, out_rate=RATE)
    n = 3 * len(rain)  # three times the file: at least two seams
    a = corpus.noise_signal("rain", n=n, rate=RATE, rng=np.random.default_rng(7))
    b = corpus.noise_signal("rain", n=n, rate=RATE, rng=np.random.default_rng(7))
    assert len(a) == n
    np.testing.assert_array_equal(a, b)
    # Mirror tiling: no sample-to-sample step larger than the recording's own largest step.
    assert np.max(np.abs(np.diff(a))) <= np.max(np.abs(np.diff(rain))) + 1e-12


@pytest.mark.parametrize("ratio", [1e-4, 1e-3, 5e-3, 1e-2, 5e-2])
def test_clip_ratio_achieved(ratio: float) -> None:
    x, _ = corpus.load_source("aew", rate=RATE)
    x = x / np.max(np.abs(x))
    y, achieved = corpus.clip_to_ratio(x, ratio)
    level = corpus.CLIP_LEVEL
    counted = float(np.mean(np.abs(y) >= level))
    assert counted == achieved
    assert abs(achieved - ratio) <= 0.1 * ratio
    assert np.max(np.abs(y)) == level
    # Below the clip level the waveform is the original times one gain.
    inside = np.abs(y) < level
    gain = level / np.quantile(np.abs(x), 1 - ratio)
    np.testing.assert_allclose(y[inside], gain * x[inside], rtol=1e-12)


@pytest.mark.parametrize("t60", [0.2, 0.3, 0.45, 0.6, 0.8, 1.0, 1.2])
def test_schroeder_t60_of_synthetic_rir(t60: float) -> None:
    broadband = [
        corpus.schroeder_t60(corpus.synthetic_rir(t60_s=t60, rate=RATE, seed=s), RATE, bands=None)
        for s in range(4)
    ]
    assert all(abs(v / t60 - 1) < 0.05 for v in broadband), broadband
    # The 500 Hz / 1 kHz octave-band estimate (T_mid, used for the measured rooms) scatters more per
    # realisation (narrow band, fewer independent samples), but is unbiased: its mean over seeds is close.
    tmid = [corpus.schroeder_t60(corpus.synthetic_rir(t60_s=t60, rate=RATE, seed=s), RATE) for s in range(6)]
    assert abs(np.mean(tmid) / t60 - 1) < 0.05, tmid


def test_schroeder_t60_with_noise_floor() -> None:
    # A measured RIR ends in a noise floor; it is subtracted and the decay cut where it meets the floor.
    # Here the floor is 45 dB under the early decay, inside the -5..-35 dB fit range once integrated.
    h = corpus.synthetic_rir(t60_s=0.5, rate=RATE, seed=11)
    early_rms = np.sqrt(np.mean(h[40:200] ** 2))
    floor = np.random.default_rng(12).standard_normal(2 * RATE) * early_rms * 10 ** (-45 / 20)
    noisy = np.concatenate([h, np.zeros(2 * RATE - len(h))]) + floor
    t60 = corpus.schroeder_t60(noisy, RATE, bands=None)
    assert t60 is not None and abs(t60 / 0.5 - 1) < 0.05
    # Without the floor handling the flat tail bends the curve: a plain integration is far too long.
    e = noisy[np.argmax(np.abs(noisy)) :] ** 2
    edc = 10 * np.log10(np.cumsum(e[::-1])[::-1] / e.sum())
    i0, i1 = np.argmax(edc <= -5), np.argmax(edc <= -35)
    naive = -60 / np.polyfit(np.arange(i0, i1) / RATE, edc[i0:i1], 1)[0]
    assert naive > 2 * 0.5


def test_measured_rooms_have_a_t60() -> None:
    t60s = {room: corpus.measured_rir(room)[2] for room in corpus.MEASURED_RIRS}
    # Three distinct rooms from a small live room to a church, all within what speech rooms span.
    assert all(0.1 < v < 2.5 for v in t60s.values()), t60s
    assert t60s["genesis6_live_room"] < t60s["clap_seminar_room"] < t60s["st_margarets_church"]


def test_inserted_pause_truth() -> None:
    utts, rate = corpus.load_utterances("aew", rate=RATE)
    y, truth = corpus.insert_pauses(utts, [1.0, 2.5], rate=rate, seed=1)
    cut = [u[: (len(u) // 160) * 160] for u in utts]
    masks = [corpus.truth_speech_mask(u, rate) for u in cut]
    tone = corpus.room_tone(cut, masks, rate)
    assert tone is not None and len(tone) >= 0.1 * rate
    assert truth["room_tone"] is True
    assert len(y) == sum(len(u) for u in cut) + 3.5 * rate
    start = len(masks[0])
    for k, asked in enumerate([1.0, 2.5]):
        trailing = len(masks[k]) - 1 - np.flatnonzero(masks[k])[-1]
        leading = np.flatnonzero(masks[k + 1])[0]
        ins = truth["inserted"][k]
        assert ins["asked_s"] == asked
        assert ins["natural_s"] == pytest.approx((trailing + leading) * 0.01)
        assert ins["length_s"] == pytest.approx(asked + (trailing + leading) * 0.01)
        assert ins["start_s"] == pytest.approx((start - trailing) * 0.01)
        # The filler is the item's own room tone (same RMS as the quiet stretch it is modelled on): quiet,
        # but never digital zero.
        filler = y[start * 160 : start * 160 + int(asked * rate)]
        speech_rms = np.sqrt(np.mean(cut[k] ** 2))
        assert 1e-6 < np.sqrt(np.mean(filler**2)) < speech_rms * 10 ** (-25 / 20)
        assert 10 * np.log10(np.mean(filler**2) / np.mean(tone**2)) == pytest.approx(0.0, abs=0.5)
        start += round(asked * 100) + len(masks[k + 1])
    assert truth["max_pause_s"] == pytest.approx(truth["inserted"][1]["length_s"])
    # Independent check: the mask of the joined signal finds the same pauses. Its thresholds come from the
    # whole signal's peak and floor rather than each utterance's, so edges may move by a few frames.
    whole = corpus.truth_speech_mask(y, rate)
    gaps = [(a * 0.01, b * 0.01) for a, b in corpus.internal_gaps(whole)]
    for ins in truth["inserted"]:
        match = max(gaps, key=lambda g: min(g[1], ins["end_s"]) - max(g[0], ins["start_s"]))
        assert match[1] - match[0] == pytest.approx(ins["length_s"], abs=0.05)


@pytest.mark.parametrize("band", ["narrow_3k4", "narrow_4k", "wide_7k", "wide_8k", "super_wide_11k"])
@pytest.mark.parametrize("noise", ["clean", "low_rate_20db"])
def test_band_limited_item_has_no_energy_above_cutoff(band: str, noise: str) -> None:
    x48, _ = corpus.load_source("sms_male", rate=48000)
    mask = corpus.truth_speech_mask(x48, 48000)
    y, truth = corpus.band_limit_item(x48, band=band, noise=noise, mask=mask, rng=np.random.default_rng(5))
    assert len(y) == len(x48)
    f, p_y = signal.welch(y, 48000, nperseg=8192)
    _, p_x = signal.welch(x48, 48000, nperseg=8192)
    above = 10 * np.log10(p_y[f > truth["stopband_hz"]].sum() / p_y.sum())
    assert above < -50.0
    assert truth["class"] == corpus.bandwidth_class(truth["bandwidth_hz"])
    if noise == "clean":
        # The passband (300 Hz to 80 % of the nominal edge) is kept to within 1 dB (up to the peak fit).
        band_ = (f > 300) & (f < 0.8 * truth["bandwidth_hz"])
        scale = np.max(np.abs(x48)) / max(np.max(np.abs(y)), 1e-12)
        kept = 10 * np.log10(p_y[band_].sum() * scale**2 / p_x[band_].sum())
        assert abs(kept) < 1.0


def test_bandwidth_class_edges() -> None:
    cases = {3400: "narrow", 4199.9: "narrow", 4200: "wide", 8199: "wide", 8200: "super_wide"}
    cases |= {11999: "super_wide", 12000: "full", 20000: "full"}
    for hz, cls in cases.items():
        assert corpus.bandwidth_class(hz) == cls


def test_mp3_roundtrip_keeps_length_and_alignment() -> None:
    x, rate = corpus.load_source("ljspeech")
    y = corpus.mp3_roundtrip(0.5 * x / np.max(np.abs(x)), rate)
    assert len(y) == len(x)
    # Aligned: the decoded signal correlates best at lag 0 (no encoder delay left in).
    seg = slice(rate, 3 * rate)
    lags = range(-50, 51)
    corr = [float(np.dot(x[seg], np.roll(y, -lag)[seg])) for lag in lags]
    assert list(lags)[int(np.argmax(corr))] == 0


def test_filler_is_shaped_noise_not_a_loop() -> None:
    # A 0.2 s tone of low-passed noise becomes 2 s of noise with the same spectrum shape, not a repetition.
    rng = np.random.default_rng(4)
    b, a = signal.butter(4, 1000, fs=RATE)
    tone = signal.lfilter(b, a, rng.standard_normal(int(0.2 * RATE))) * 1e-3
    y = corpus.filler(2 * RATE, tone=tone, rate=RATE, rng=np.random.default_rng(5))
    assert len(y) == 2 * RATE
    assert 10 * np.log10(np.mean(y**2) / np.mean(tone**2)) == pytest.approx(0.0, abs=0.1)
    f, p = signal.welch(y, RATE, nperseg=512)
    assert 10 * np.log10(p[(f > 3000) & (f < 6000)].mean() / p[f < 500].mean()) < -30
    # Not periodic: the correlation of y with itself shifted by the tone's length is small.
    lag = len(tone)
    corr = np.dot(y[:-lag], y[lag:]) / np.dot(y, y)
    assert abs(corr) < 0.1
    # Without a tone: pink noise at -70 dBFS.
    z = corpus.filler(RATE, tone=None, rate=RATE, rng=np.random.default_rng(6))
    assert 10 * np.log10(np.mean(z**2)) == pytest.approx(-70.0, abs=0.5)


def test_rumble_item_has_the_asked_broadband_snr_and_a_speech_band_truth() -> None:
    """A car-engine rumble item at 10 dB: the asked SNR holds over the whole band; the truth is the same
    ratio after the render's own high-pass (``delivered_band``), higher because the filter removes most of
    the engine's sub-bass."""
    item = next(it for it in corpus.rumble_items(quick=True) if it.params == {
        "source": "aew", "noise": "car_engine", "snr_db": 10.0})  # fmt: skip
    clean, _ = corpus.load_source("aew", rate=RATE)
    noise = item.samples.astype(np.float64) / item.truth["mix_gain"] - clean
    mask = item.truth.get("speech_mask")
    assert mask is None  # rumble items score the SNR only
    mask = corpus.truth_speech_mask(clean, RATE)
    assert abs(_measured_snr(clean, noise, mask) - 10.0) < 0.01
    band_clean, band_noise = corpus.delivered_band(clean, RATE), corpus.delivered_band(noise, RATE)
    own = corpus.source_noise_power(band_clean, mask, RATE) or 0.0
    expected = 10 * np.log10(
        _frames(band_clean)[mask[: len(_frames(band_clean))]].mean() / (np.mean(band_noise**2) + own)
    )
    assert item.truth["effective_snr_db"] == pytest.approx(expected, abs=0.05)
    assert item.truth["effective_snr_db"] > 11.0


def test_mains_hum_has_its_harmonics_at_known_levels() -> None:
    """Synthetic hum: each harmonic ``k * f0`` with amplitude ``HUM_HARMONICS[k - 1]`` (power a^2 / 2)."""
    n = 4 * RATE  # whole periods of 50 and 60 Hz: exact bins of a 4 s FFT
    for f0 in (50.0, 60.0):
        hum = corpus.mains_hum(f0, n=n, rate=RATE, rng=np.random.default_rng(1))
        spectrum = np.abs(np.fft.rfft(hum)) ** 2 * 2 / n**2
        for k, a in enumerate(corpus.HUM_HARMONICS, 1):
            assert spectrum[round(k * f0 * 4)] == pytest.approx(a**2 / 2, rel=1e-6)
        assert np.mean(hum**2) == pytest.approx(sum(a**2 / 2 for a in corpus.HUM_HARMONICS), rel=1e-6)


def test_continuous_speech_has_no_pauses() -> None:
    """The speech of a source with its pauses cut out: its own truth mask has no gap of 0.1 s or more and
    covers nearly every frame; it is at least the asked length."""
    x, _ = corpus.load_source("libri_196", rate=RATE)
    y = corpus.continuous_speech(x, RATE, min_s=12.0)
    assert len(y) >= 12 * RATE
    mask = corpus.truth_speech_mask(y, RATE)
    assert mask.mean() > 0.95
    assert all(b - a < 10 for a, b in corpus.internal_gaps(mask))
