"""DNSMOS P.835 on real speech: clean vs noisy vs reverberant, determinism, and agreement with speechmos."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import soundfile as sf
import soxr
from _corpus import corpus_file
from _imports import loaded_after

from pipeline.analysis import dnsmos as dn
from pipeline.errors import InvalidArgument

RATE = 16000


@pytest.fixture(scope="module")
def dry_native() -> tuple[np.ndarray, int]:
    """Both sms-tools speakers back to back at 44.1 kHz: 9.6 s, so DNSMOS scores exactly one segment."""
    female, rate = sf.read(corpus_file("speech", "sms_speech-female.wav"), dtype="float64")
    male, rate_male = sf.read(corpus_file("speech", "sms_speech-male.wav"), dtype="float64")
    assert rate == rate_male == 44100
    return np.concatenate([female, male]), rate


@pytest.fixture(scope="module")
def clean16k(dry_native: tuple[np.ndarray, int]) -> np.ndarray:
    dry, rate = dry_native
    audio = soxr.resample(dry, rate, RATE).astype(np.float32)
    assert len(dn.segments(audio)) == 1
    return audio


@pytest.fixture(scope="module")
def clean_scores(clean16k: np.ndarray) -> dict[str, float]:
    dn.warm_up()
    return dn.dnsmos(clean16k).metrics


def test_clean_speech_scores_like_clean_read_speech(clean_scores: dict[str, float]) -> None:
    # quality.md: clean read-speech corpora sit at OVRL 3.2-3.3; studio-ish speech must clear 2.8.
    assert clean_scores["dnsmos_ovrl"] >= 2.8
    assert clean_scores["dnsmos_sig"] >= 3.0
    assert clean_scores["dnsmos_bak"] >= 3.5
    for name in dn.METRICS:
        assert 1.0 <= clean_scores[name] <= 5.0


def test_white_noise_at_5_db_snr_lowers_ovrl_and_bak(
    clean16k: np.ndarray, clean_scores: dict[str, float]
) -> None:
    rng = np.random.default_rng(7)
    noise = rng.standard_normal(clean16k.shape[0])
    noise *= np.sqrt(np.mean(clean16k.astype(np.float64) ** 2) / np.mean(noise**2) / 10 ** (5 / 10))
    noisy = clean16k + noise
    noisy /= max(1.0, float(np.abs(noisy).max()))
    scores = dn.dnsmos(noisy.astype(np.float32)).metrics
    assert scores["dnsmos_ovrl"] <= clean_scores["dnsmos_ovrl"] - 0.5
    assert scores["dnsmos_bak"] <= clean_scores["dnsmos_bak"] - 1.0


def test_church_reverb_lowers_ovrl(
    dry_native: tuple[np.ndarray, int], clean_scores: dict[str, float]
) -> None:
    dry, rate = dry_native
    rir, rir_rate = sf.read(corpus_file("rir", "openair_st_margarets_church.wav"), dtype="float64")
    assert rir_rate == rate
    wet = scipy.signal.fftconvolve(dry, rir[:, 0])[: dry.shape[0]]
    wet *= np.sqrt(np.mean(dry**2) / np.mean(wet**2))  # same level as the dry original
    wet16 = soxr.resample(wet, rate, RATE)
    wet16 /= max(1.0, float(np.abs(wet16).max()) / 0.99)
    scores = dn.dnsmos(wet16.astype(np.float32)).metrics
    assert scores["dnsmos_ovrl"] <= clean_scores["dnsmos_ovrl"] - 0.5
    assert scores["dnsmos_sig"] < clean_scores["dnsmos_sig"]


def test_same_input_gives_identical_scores(clean16k: np.ndarray, clean_scores: dict[str, float]) -> None:
    again = dn.dnsmos(clean16k.copy()).metrics
    assert again == clean_scores


def test_matches_speechmos_reference_scorer(clean16k: np.ndarray) -> None:
    """Same model, calibration and tiling as speechmos' DNSMOS (its P.808 branch stubbed out: not used)."""
    from speechmos.dnsmos import DNSMOS

    short = clean16k[: int(2.4 * RATE)]  # tiled by doubling to 9.6 s: one segment
    reference = DNSMOS.__new__(DNSMOS)
    reference.onnx_sess = dn._get_model().onnx_sess

    class _NoP808:
        def run(self, *_: object) -> list[np.ndarray]:
            return [np.zeros((1, 1), dtype=np.float32)]

    reference.p808_onnx_sess = _NoP808()
    reference.audio_melspec = lambda audio, **_: np.zeros((1, 120), dtype=np.float32)
    expected = reference(short.astype(np.float64), RATE, False)
    ours = dn.dnsmos(short).metrics
    assert ours["dnsmos_sig"] == pytest.approx(float(expected["sig_mos"]), abs=1e-5)
    assert ours["dnsmos_bak"] == pytest.approx(float(expected["bak_mos"]), abs=1e-5)
    assert ours["dnsmos_ovrl"] == pytest.approx(float(expected["ovrl_mos"]), abs=1e-5)


def test_segments_tile_short_input_and_hop_one_second() -> None:
    three_s = np.arange(3 * RATE, dtype=np.float32) / (3 * RATE)
    tiled = dn.segments(three_s)  # 3 s -> 6 s -> 12 s: 12 whole seconds - 9.01 -> 3 hops
    assert len(tiled) == 3
    assert all(s.shape == (dn.SEGMENT_SAMPLES,) for s in tiled)
    np.testing.assert_array_equal(tiled[0][3 * RATE : 6 * RATE], three_s)
    np.testing.assert_array_equal(tiled[1][: 2 * RATE], three_s[RATE:])
    # 19.25 s: 19 whole seconds - 9.01 -> 10 hops, all scored (speechmos' float arithmetic keeps 7).
    long = np.arange(int(19.25 * RATE), dtype=np.float32)
    hops = dn.segments(long)
    assert len(hops) == 10
    assert [float(h[0]) for h in hops] == [float(k * RATE) for k in range(10)]
    assert len(dn.segments(np.zeros(int(9.5 * RATE), dtype=np.float32))) == 1


def test_beyond_full_scale_is_clipped_before_scoring(clean16k: np.ndarray) -> None:
    loud = clean16k * 2.5
    assert np.abs(loud).max() > 1.0
    assert dn.dnsmos(loud).metrics == dn.dnsmos(np.clip(loud, -1.0, 1.0)).metrics


def test_silence_is_none_with_no_speech_reason() -> None:
    for audio in (np.zeros(5 * RATE, dtype=np.float32), np.full(5 * RATE, 1e-4, dtype=np.float32)):
        result = dn.dnsmos(audio)
        for name in dn.METRICS:
            assert result.metrics[name] is None
            assert result.null_reasons[name].startswith("no_speech:")


def test_under_one_second_is_none_with_reason() -> None:
    rng = np.random.default_rng(0)
    result = dn.dnsmos((rng.standard_normal(RATE - 1) * 0.1).astype(np.float32))
    for name in dn.METRICS:
        assert result.metrics[name] is None
        assert result.null_reasons[name].startswith("not_measured:")


def test_invalid_input_is_rejected() -> None:
    with pytest.raises(InvalidArgument, match="audio16k"):
        dn.dnsmos(np.zeros((2 * RATE, 2), dtype=np.float32))
    with pytest.raises(InvalidArgument, match="audio16k"):
        dn.dnsmos(np.zeros(2 * RATE, dtype=np.int16))
    bad = np.zeros(2 * RATE, dtype=np.float32)
    bad[100] = np.nan
    with pytest.raises(InvalidArgument, match="audio16k"):
        dn.dnsmos(bad)


def test_thread_settings_are_applied_and_validated() -> None:
    with pytest.raises(InvalidArgument, match="intra_op_num_threads"):
        dn.configure(intra_op_num_threads=0)
    try:
        dn.configure(intra_op_num_threads=2)
        assert dn._get_model().onnx_sess.get_session_options().intra_op_num_threads == 2
    finally:
        dn.configure(intra_op_num_threads=1)
    assert dn._get_model().onnx_sess.get_session_options().intra_op_num_threads == 1


def test_calibration_is_speechmos_own() -> None:
    """The stored polynomials give speechmos's calibrated scores exactly, over the model's raw range."""
    from speechmos.dnsmos import DNSMOS

    raw = np.random.default_rng(3).uniform(0.5, 5.5, size=(200, 3))
    for sig, bak, ovrl in raw:
        expected = DNSMOS.get_polyfit_val(DNSMOS.__new__(DNSMOS), sig, bak, ovrl, False)
        ours = tuple(poly(v) for poly, v in zip(dn.CALIBRATION, (sig, bak, ovrl), strict=True))
        assert ours == expected


def test_scoring_imports_neither_speechmos_code_nor_requests() -> None:
    """Only the model file is taken from speechmos: its module (and ``requests``, 14 MB) stays unloaded."""
    code = (
        "import numpy as np\n"
        "from pipeline.analysis import dnsmos\n"
        "dnsmos.dnsmos(np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1)\n"
    )
    assert loaded_after(code, "speechmos.dnsmos", "requests") == [False, False]
