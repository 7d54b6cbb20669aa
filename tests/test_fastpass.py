"""The fast pass end to end: every metric from one decode, on known-answer signals and real speech."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
import soxr
from _corpus import corpus_file

from pipeline.analysis.base import Analysis
from pipeline.analysis.fastpass import analyze_array, analyze_file
from pipeline.audio.io import write
from pipeline.rules.metrics import FAST_PASS_METRICS


def _speech_16k(name: str) -> np.ndarray:
    x, sr = sf.read(corpus_file("speech", name), dtype="float32", always_2d=True)
    return soxr.resample(x[:, 0], sr, 16000).astype(np.float32)


@pytest.fixture(scope="module")
def two_utterances() -> tuple[np.ndarray, float, float]:
    """Two real utterances at 16 kHz with a 1.5 s low-noise pause between; returns (x, pause_start, pause_end)."""
    rng = np.random.default_rng(3)
    a = _speech_16k("pra_cmu_arctic_us_aew_a0001.wav")
    b = _speech_16k("pra_cmu_arctic_us_aew_a0002.wav")
    gap = np.zeros(int(1.5 * 16000), dtype=np.float32)
    x = np.concatenate([a, gap, b])
    x = x + rng.normal(0, 10 ** (-65 / 20), size=x.size).astype(np.float32)
    return x, a.size / 16000, (a.size + gap.size) / 16000


def _no_nan(obj: object) -> None:
    json.dumps(obj, allow_nan=False)


def test_every_metric_is_present_and_finite_or_null_with_reason(two_utterances) -> None:
    x, _, _ = two_utterances
    result = analyze_array(x, 16000)
    assert set(FAST_PASS_METRICS) <= set(result.metrics)
    _no_nan(result.metrics)
    for name in FAST_PASS_METRICS:
        if result.metrics[name] is None:
            assert result.null_reasons[name].split(":")[0], name
    assert result.metrics["duration_s"] == pytest.approx(x.size / 16000, abs=1e-6)
    assert result.null_reasons["dnsmos_ovrl"].startswith("not_measured")
    assert result.speech_mask.size == x.size // 160


def test_the_dnsmos_hint_names_options_the_commands_have(two_utterances) -> None:
    """DNSMOS off: the reason's hint names ``voiceprep CMD --dnsmos`` only for commands that take it (a run's
    recordings carry this reason, and ``voiceprep run`` has no ``--dnsmos``)."""
    import re

    from _cli import voiceprep

    x, _, _ = two_utterances
    reason = analyze_array(x, 16000).null_reasons["dnsmos_ovrl"]
    named = re.findall(r"(?:voiceprep )?(\w+) --dnsmos", reason)
    assert named, reason
    for command in named:
        assert "--dnsmos" in voiceprep(command, "--help").stdout, command
    assert "--dnsmos" not in voiceprep("run", "--help").stdout


def test_the_runner_cache_keeps_what_selection_reads(two_utterances, tmp_path: Path) -> None:
    """``Analysis.save``/``load``: metrics, reasons, segments and the channel weights survive; the frame
    arrays come back as float32 and bool."""
    x, _, _ = two_utterances
    stereo = np.stack([x, np.zeros_like(x)], axis=1)  # channel 1 silent: ``best`` picks channel 0
    result = analyze_array(stereo, 16000)
    result.path, result.speaker = "bob/take.wav", "bob"
    result.save(tmp_path / "a.npz")
    back = Analysis.load(tmp_path / "a.npz")
    assert (back.metrics, back.null_reasons) == (result.metrics, result.null_reasons)
    assert back.speech_segments == result.speech_segments and (back.path, back.speaker) == (
        "bob/take.wav",
        "bob",
    )
    assert back.channel_choice.weights == result.channel_choice.weights == (1.0, 0.0)
    assert back.frame_db.dtype == np.float32 and back.speech_mask.dtype == bool
    assert np.allclose(back.frame_db, result.frame_db, atol=1e-3)
    assert np.array_equal(back.speech_mask, result.speech_mask)


def test_inserted_pause_is_measured_and_speech_runs_split(two_utterances) -> None:
    x, pause_start, pause_end = two_utterances
    m = analyze_array(x, 16000).metrics
    # The measured pause includes each utterance's own trailing/leading silence, so it can only be longer
    # than the inserted 1.5 s, and by no more than those natural margins (< 0.6 s here).
    assert 1.35 <= m["max_pause_s"] <= 2.1
    (start, end) = max(m["pauses"], key=lambda p: p[1] - p[0])
    assert start <= pause_start + 0.15 and end >= pause_end - 0.15
    assert m["pauses_over_2s"] == (1 if m["max_pause_s"] > 2 else 0)
    assert m["longest_run_s"] < pause_start + 0.2
    assert 0.4 < m["speech_ratio"] < 0.9


def test_loudness_matches_pyloudnorm_and_snr_is_high_for_clean_speech(two_utterances) -> None:
    x, _, _ = two_utterances
    m = analyze_array(x, 16000).metrics
    reference = pyloudnorm.Meter(16000).integrated_loudness(x.astype(np.float64))
    assert m["lufs"] == pytest.approx(reference, abs=0.5)
    assert m["snr_db"] > 30
    assert m["clipped_ratio"] == 0
    assert m["clipped_events"] == []
    assert m["bandwidth_class"] == "wide"


def test_white_noise_at_10db_reads_near_10db(two_utterances) -> None:
    x, _, _ = two_utterances
    rng = np.random.default_rng(11)
    result = analyze_array(x, 16000)
    speech_power = float(np.mean(x[: result.speech_mask.size * 160][np.repeat(result.speech_mask, 160)] ** 2))
    noise = rng.normal(0, math.sqrt(speech_power / 10), size=x.size).astype(np.float32)
    m = analyze_array(x + noise, 16000).metrics
    assert m["snr_db"] == pytest.approx(10, abs=2.5)
    # Reverb cannot be told from noise at this SNR: reported as null, with the reason.
    assert m["reverb_score"] is None
    assert "SNR" in analyze_array(x + noise, 16000).null_reasons["reverb_score"]


def test_clipping_found_at_the_native_rate(two_utterances) -> None:
    x, _, _ = two_utterances
    y = soxr.resample(x, 16000, 48000).astype(np.float32)
    level = np.quantile(np.abs(y), 0.99)
    clipped = np.clip(y / level * 0.9, -0.9, 0.9)  # about 1 % of samples at the plateau
    m = analyze_array(clipped, 48000).metrics
    assert m["clipped_ratio"] == pytest.approx(0.01, rel=0.5)
    assert len(m["clipped_events"]) > 0


def test_stereo_with_silent_left_channel_is_analysed_on_the_voice(two_utterances, tmp_path: Path) -> None:
    x, _, _ = two_utterances
    stereo = np.stack([np.zeros_like(x), x], axis=1)
    best = analyze_array(stereo, 16000, channel_strategy="best")
    first = analyze_array(stereo, 16000, channel_strategy="first")
    assert best.channel_choice.first_channel_silent
    assert best.metrics["speech_s"] > 2.0
    assert first.metrics["speech_s"] == 0.0
    assert first.metrics["lufs"] is None and first.null_reasons["lufs"]


def test_file_and_array_agree_and_block_size_does_not_matter(two_utterances, tmp_path: Path) -> None:
    x, _, _ = two_utterances
    path = write(tmp_path / "two.wav", x, 16000, subtype="FLOAT")
    from_file = analyze_file(path).metrics
    small_blocks = analyze_file(path, block_s=0.37).metrics
    from_array = analyze_array(x, 16000).metrics
    for name in ("speech_s", "max_pause_s", "snr_db", "lufs", "bandwidth_hz", "noise_floor_dbfs"):
        assert from_file[name] == pytest.approx(from_array[name], abs=1e-3), name
        assert small_blocks[name] == pytest.approx(from_array[name], abs=1e-3), name


def test_silence_gives_nulls_with_reasons_never_nan() -> None:
    silent = np.zeros(16000 * 3, dtype=np.float32)
    result = analyze_array(silent, 16000)
    m = result.metrics
    _no_nan(m)
    assert m["speech_s"] == 0.0
    assert m["snr_db"] is None and result.null_reasons["snr_db"]
    assert m["lufs"] is None and result.null_reasons["lufs"]
    assert m["max_pause_s"] is None and result.null_reasons["max_pause_s"].startswith("no_speech")


def test_dnsmos_windows_on_request(two_utterances) -> None:
    x, _, _ = two_utterances
    result = analyze_array(x, 16000, dnsmos=True)
    assert 1.0 <= result.metrics["dnsmos_ovrl"] <= 5.0
    assert result.dnsmos_windows and all(1.0 <= w["ovrl"] <= 5.0 for w in result.dnsmos_windows)


def test_loudness_from_the_16k_view_matches_full_band_and_peaks_come_from_native_samples() -> None:
    """LUFS is measured on the 16 kHz view; for full-band speech it must agree with the native-rate value."""
    from pipeline.analysis.loudness import integrated_loudness

    for name in ("sms_speech-male.wav", "aug_vctk_p286_011.wav"):
        x, sr = sf.read(corpus_file("speech", name), dtype="float32")
        m = analyze_array(x, sr).metrics
        native = integrated_loudness(x, sample_rate=sr).metrics
        assert m["lufs"] == pytest.approx(native["lufs"], abs=0.2), name
        assert m["true_peak_dbtp"] == pytest.approx(native["true_peak_dbtp"], abs=0.01), name


def test_analyze_array_old_strategy_keyword_still_works_and_warns() -> None:
    rng = np.random.default_rng(3)
    stereo = np.stack([np.zeros(16000), 0.1 * rng.standard_normal(16000)], axis=1).astype(np.float32)
    with pytest.warns(DeprecationWarning, match="channel_strategy"):
        old = analyze_array(stereo, 16000, strategy="first")
    assert old.channel_choice.method == "first"
    assert old.metrics == analyze_array(stereo, 16000, channel_strategy="first").metrics


def test_metrics_do_not_depend_on_the_blas_thread_count() -> None:
    """A process-pool worker runs with ``OMP_NUM_THREADS=1``; its rows must equal the parent's to the last
    digit (threaded BLAS sums in another order: rumble_db once differed in its 14th digit)."""
    import os
    import subprocess
    import sys

    path = Path(__file__).resolve().parents[1] / "data" / "samples" / "bob" / "takes" / "take_1.m4a"
    code = (
        "import json, sys; from pipeline.analysis.fastpass import analyze_file; "
        "print(json.dumps(analyze_file(sys.argv[1]).metrics))"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code, str(path)],
            env={**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for threads in ("1", "2")
    ]
    assert json.loads(runs[0]) == json.loads(runs[1])


def _stereo_48k(two_utterances, tmp_path: Path) -> Path:
    """The two utterances at 48 kHz, the voice in the right channel and noise in the left."""
    x, _, _ = two_utterances
    voice = soxr.resample(x, 16000, 48000).astype(np.float32)
    noise = np.random.default_rng(5).normal(0, 0.01, size=voice.size).astype(np.float32)
    return write(tmp_path / "stereo48.wav", np.stack([noise, voice], axis=1), 48000, subtype="FLOAT")


def test_two_meter_threads_give_exactly_the_one_thread_analysis(two_utterances, tmp_path: Path) -> None:
    path = _stereo_48k(two_utterances, tmp_path)
    one = analyze_file(path, block_s=0.37, threads=1)  # 0.37 s blocks: many, so their order matters
    two = analyze_file(path, block_s=0.37, threads=2)
    assert one.metrics["speech_s"] > 2.0 and one.metrics["bandwidth_hz"] is not None
    assert json.dumps(two.metrics, sort_keys=True) == json.dumps(one.metrics, sort_keys=True)
    assert two.null_reasons == one.null_reasons
    for name in ("speech_mask", "frame_db", "noise_db"):
        assert np.array_equal(getattr(two, name), getattr(one, name), equal_nan=True), name
    assert np.array_equal(two.block_bandwidth_hz, one.block_bandwidth_hz, equal_nan=True)


def test_an_error_in_the_second_meter_thread_reaches_the_caller(
    two_utterances, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.analysis.fastpass import FastPass

    path = _stereo_48k(two_utterances, tmp_path)
    original, seen = FastPass.process_aside, []

    def failing(self: FastPass, *blocks: np.ndarray) -> None:
        seen.append(1)
        if len(seen) == 3:
            raise ZeroDivisionError("planted in the meters' thread")
        original(self, *blocks)

    monkeypatch.setattr(FastPass, "process_aside", failing)
    with pytest.raises(ZeroDivisionError, match="planted"):
        analyze_file(path, block_s=0.37, threads=2)
