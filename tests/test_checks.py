"""The rule engine: each hard limit and gate gives the right verdict, reason, limit and hint."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.rules.checks import combine, delivered_format, evaluate, failed_read
from pipeline.rules.families import load_family

GOOD_PROBE = {
    "format": "wav",
    "codec": "pcm_s16le",
    "sample_rate": 24000,
    "channels": 1,
    "duration_s": 15.0,
    "sample_format": "pcm16",
    "bytes": 720_044,
}
GOOD_METRICS = {
    "duration_s": 15.0,
    "speech_s": 13.0,
    "longest_run_s": 8.0,
    "max_pause_s": 0.6,
    "snr_db": 40.0,
    "clipped_ratio": 0.0,
    "bandwidth_hz": 11500.0,
    "reverb_score": 0.1,
    "dnsmos_ovrl": 3.3,
    "lufs": -20.0,
}


def _by_rule(result, rule):
    return next(c for c in result.checks if c.rule == rule)


@pytest.mark.parametrize("family", ["cosyvoice", "qwen-tts", "minimax"])
def test_a_good_clip_passes_every_family(family: str) -> None:
    metrics = dict(GOOD_METRICS, duration_s=15.0)
    if family == "minimax":
        metrics["duration_s"] = 30.0
    result = evaluate(load_family(family), path="a.wav", probe=GOOD_PROBE, metrics=metrics)
    assert result.verdict == "pass", [c.message for c in result.problems]
    assert result.reasons == []
    assert all(c.hint is None for c in result.checks)


def test_qwen_rejects_16k_and_stereo_with_reasons_limits_and_hints() -> None:
    probe = dict(GOOD_PROBE, sample_rate=16000, channels=2)
    result = evaluate(load_family("qwen-tts"), path="a.wav", probe=probe, metrics=GOOD_METRICS)
    assert result.verdict == "fail"
    rate = _by_rule(result, "sample_rate")
    assert (rate.verdict, rate.reason, rate.value, rate.limit, rate.op) == (
        "fail",
        "rate_too_low",
        16000,
        24000,
        ">=",
    )
    assert rate.hint and "24 kHz" in rate.hint
    channels = _by_rule(result, "channels")
    assert channels.verdict == "fail" and channels.reason == "not_mono"
    assert result.reasons[:2] == ["rate_too_low", "not_mono"]


def test_cosyvoice_fails_a_stereo_file_whose_first_channel_is_silent() -> None:
    probe = dict(GOOD_PROBE, channels=2)
    spec = load_family("cosyvoice")
    silent = evaluate(spec, path="s.wav", probe=probe, metrics=GOOD_METRICS, first_channel_silent=True)
    assert silent.verdict == "fail"
    assert "first_channel_silent" in silent.reasons
    fine = evaluate(spec, path="s.wav", probe=probe, metrics=GOOD_METRICS, first_channel_silent=False)
    assert fine.verdict == "pass"
    unknown = evaluate(spec, path="s.wav", probe=probe, metrics=GOOD_METRICS, first_channel_silent=None)
    assert "first_channel_silent" in unknown.not_checked


@pytest.mark.parametrize(
    ("metric", "value", "rule", "reason", "verdict"),
    [
        ("max_pause_s", 2.5, "max_pause_s", "pause_too_long", "fail"),
        ("max_pause_s", 2.0, "max_pause_s", None, "pass"),
        ("longest_run_s", 4.0, "min_speech_run_s", "no_continuous_speech", "fail"),
        ("longest_run_s", 5.0, "min_speech_run_s", None, "pass"),
        ("duration_s", 61.0, "max_duration_s", "too_long_clip", "fail"),
        ("duration_s", 25.0, "recommended_duration_s", "too_long_clip", "warn"),
        ("duration_s", 8.0, "recommended_duration_s", "too_short", "warn"),
    ],
)
def test_cosyvoice_speech_rules(
    metric: str, value: float, rule: str, reason: str | None, verdict: str
) -> None:
    metrics = dict(GOOD_METRICS, **{metric: value})
    result = evaluate(load_family("cosyvoice"), path="a.wav", probe=GOOD_PROBE, metrics=metrics)
    check = _by_rule(result, rule)
    assert check.verdict == verdict
    assert check.reason == reason
    assert check.value == value


def test_minimax_minimum_duration_is_hard() -> None:
    metrics = dict(GOOD_METRICS, duration_s=9.0)
    result = evaluate(load_family("minimax"), path="a.wav", probe=GOOD_PROBE, metrics=metrics)
    check = _by_rule(result, "min_duration_s")
    assert (check.verdict, check.reason, check.limit) == ("fail", "too_short", 10)


def test_a_file_too_short_for_the_clip_run_makes_fails_even_without_a_vendor_minimum() -> None:
    """qwen-tts states no hard minimum, but ``run`` makes 10-20 s clips: a 6.8 s file alone cannot make one,
    so ``check`` fails it (``too_short``, as ``run`` rejects it); 10.5 s can. Where the vendor's own minimum
    already covers the clip's (minimax), the file fails once, by that rule."""
    spec = load_family("qwen-tts")
    short = evaluate(spec, path="a.wav", probe=GOOD_PROBE, metrics=dict(GOOD_METRICS, duration_s=6.8))
    check = _by_rule(short, "clip_min_duration_s")
    assert (short.verdict, check.verdict, check.reason, check.limit) == ("fail", "fail", "too_short", 10)
    enough = evaluate(spec, path="a.wav", probe=GOOD_PROBE, metrics=dict(GOOD_METRICS, duration_s=10.5))
    assert [c for c in enough.checks if c.verdict == "fail"] == []
    minimax = evaluate(
        load_family("minimax"), path="a.wav", probe=GOOD_PROBE, metrics=dict(GOOD_METRICS, duration_s=9.0)
    )
    assert [c.rule for c in minimax.checks if c.verdict == "fail"] == ["min_duration_s"]


def test_base64_size_counts_for_inline_uploads() -> None:
    spec = load_family("qwen-tts")
    # 7.6 MB fits 10 MB raw but not as base64 (10.13 MB).
    probe = dict(GOOD_PROBE, bytes=7_600_000)
    check = _by_rule(evaluate(spec, path="a.wav", probe=probe, metrics=GOOD_METRICS), "max_bytes")
    assert check.verdict == "fail" and check.reason == "too_large"
    assert check.value == 4 * ((7_600_000 + 2) // 3)
    probe = dict(GOOD_PROBE, bytes=7_400_000)
    assert (
        _by_rule(evaluate(spec, path="a.wav", probe=probe, metrics=GOOD_METRICS), "max_bytes").verdict
        == "pass"
    )


def test_format_and_sample_format_rules() -> None:
    spec = load_family("cosyvoice")
    flac = dict(GOOD_PROBE, format="flac", codec="flac", sample_format="pcm16")
    result = evaluate(spec, path="a.flac", probe=flac, metrics=GOOD_METRICS)
    assert _by_rule(result, "format").reason == "bad_format"
    wav24 = dict(GOOD_PROBE, sample_format="pcm24", codec="pcm_s24le")
    result = evaluate(spec, path="a.wav", probe=wav24, metrics=GOOD_METRICS)
    check = _by_rule(result, "sample_format")
    assert (check.verdict, check.reason, check.value) == ("fail", "bad_sample_format", "PCM_24")
    m4a = dict(GOOD_PROBE, format="mp4", codec="aac", sample_format="fltp")
    result = evaluate(spec, path="a.m4a", probe=m4a, metrics=GOOD_METRICS)
    assert _by_rule(result, "format").verdict == "pass"
    assert all(c.rule != "sample_format" for c in result.checks)


@pytest.mark.parametrize(
    ("metric", "value", "verdict", "reason"),
    [
        ("snr_db", 20.0, "warn", "low_snr"),
        ("snr_db", 10.0, "fail", "low_snr"),
        ("clipped_ratio", 0.001, "warn", "clipped"),
        ("clipped_ratio", 0.01, "fail", "clipped"),
        ("bandwidth_hz", 7900.0, "warn", "narrowband"),  # a 16 kHz recording's band
        ("bandwidth_hz", 3400.0, "fail", "narrowband"),
        ("dnsmos_ovrl", 2.0, "fail", "low_quality"),
        ("reverb_score", 0.9, "fail", "reverberant"),
    ],
)
def test_quality_gates_come_from_the_spec(metric: str, value: float, verdict: str, reason: str) -> None:
    spec = load_family("qwen-tts")
    gate = next(g for g in spec.gates if g.metric == metric)
    result = evaluate(spec, path="a.wav", probe=GOOD_PROBE, metrics=dict(GOOD_METRICS, **{metric: value}))
    check = _by_rule(result, f"gate:{metric}")
    assert (check.verdict, check.reason) == (verdict, reason)
    assert check.limit == (gate.fail if verdict == "fail" else gate.warn)
    assert check.hint
    assert result.verdict == verdict


def test_unmeasured_gate_is_reported_not_judged() -> None:
    metrics = {k: v for k, v in GOOD_METRICS.items() if k != "dnsmos_ovrl"}
    result = evaluate(
        load_family("cosyvoice"),
        path="a.wav",
        probe=GOOD_PROBE,
        metrics=metrics,
        null_reasons={"dnsmos_ovrl": "not_measured: DNSMOS was not requested"},
    )
    assert result.verdict == "pass"
    assert result.not_checked["gate:dnsmos_ovrl"] == "not_measured: DNSMOS was not requested"
    assert all(c.rule != "gate:dnsmos_ovrl" for c in result.checks)


def test_no_speech_fails() -> None:
    metrics = dict(GOOD_METRICS, speech_s=0.0, longest_run_s=0.0, max_pause_s=None)
    result = evaluate(load_family("minimax"), path="a.wav", probe=GOOD_PROBE, metrics=metrics)
    assert "no_speech" in result.reasons


def test_failed_read_and_combine_and_format_names() -> None:
    result = failed_read("missing.wav", "cosyvoice", "not_found", "no such file")
    assert result.verdict == "fail" and result.reasons == ["not_found"]
    assert result.to_dict()["checks"][0]["hint"] == "check the path"
    assert (
        combine(["pass", "warn"]) == "warn" and combine([]) == "pass" and combine(["warn", "fail"]) == "fail"
    )
    assert delivered_format({"format": "mp4", "codec": "aac"}) == "m4a"
    assert delivered_format({"format": "ogg", "codec": "opus"}) == "opus"
    assert delivered_format({"format": "wav", "codec": "pcm_s16le"}) == "wav"


def test_open_ended_recommended_range_reads_naturally() -> None:
    from pipeline.rules.metrics import range_text

    assert range_text(30.0, None) == "at least 30"
    assert range_text(None, 20.0, "s") == "at most 20 s"
    assert range_text(10.0, 20.5, "s") == "10-20.5 s"
    assert range_text(None, None) == "any"


def test_a_stretch_of_a_recording_reads_in_tenths() -> None:
    from pipeline.rules.metrics import span_text, value_text

    assert span_text(12.0, 15.06) == "12-15.1 s"
    assert value_text("clipped_events", [[0.0, 10.0, "music"], 3.25]) == "2 (0-10 s music, 3.25)"


def test_drowned_speech_is_rejected_for_the_noise_first(drowned_reading) -> None:
    # 16.5 s of reading under white noise at -2 dB SNR: the voice detector hears 2-3 s of speech in short
    # bits, so the runs fail too, but the noise is the cause and its hint is the advice (issue 8).
    import pipeline
    from pipeline.errors import reason_hint

    for family in ("cosyvoice", "minimax"):
        result = pipeline.check(drowned_reading, family)
        assert result.metrics["speech_s"] < 4.0 < result.metrics["duration_s"] / 4
        assert result.reasons[0] == "low_snr"
        assert result.problems[0].hint == reason_hint("low_snr")
        if family == "cosyvoice":
            assert "no_continuous_speech" in result.reasons  # still listed: it is true of the file


def test_short_speech_is_rejected_for_its_length_first(short_reading) -> None:
    # The same reading, 2.8 s of it in its own quiet: the speech itself is short, so that comes first.
    import pipeline

    result = pipeline.check(short_reading, "cosyvoice")
    assert result.metrics["snr_db"] > 25.0
    assert result.reasons[0] == "no_continuous_speech"
    assert "low_snr" not in result.reasons


def test_a_failing_cause_moves_before_what_it_explains_a_warning_does_not() -> None:
    spec = load_family("cosyvoice")
    metrics = dict(GOOD_METRICS, longest_run_s=1.0, max_pause_s=3.0, dnsmos_ovrl=2.0)
    drowned = evaluate(spec, path="a.wav", probe=GOOD_PROBE, metrics=dict(metrics, snr_db=3.0))
    assert drowned.reasons[:4] == ["low_snr", "no_continuous_speech", "pause_too_long", "low_quality"]
    # SNR 20 dB only warns: the detector can be trusted, the runs are the cause; the warning stays last.
    noisy = evaluate(spec, path="a.wav", probe=GOOD_PROBE, metrics=dict(metrics, snr_db=20.0))
    assert noisy.reasons == ["no_continuous_speech", "pause_too_long", "low_quality", "low_snr"]


FAMILIES = ("cosyvoice", "elevenlabs", "minimax", "qwen-tts")


@pytest.mark.parametrize(
    ("cutoff_hz", "expected_class", "qwen", "others"),
    [
        (3400, "narrow", "fail", "warn"),  # the telephone band
        (7000, "wide", "warn", "pass"),  # AMR-WB / G.722: a 16 kHz recording's band
        (8000, "wide", "warn", "pass"),  # a 16 kHz recording upsampled
        (11000, "super_wide", "pass", "pass"),  # a 24 kHz recording's band
    ],
)
def test_bandwidth_class_warning_and_hint_are_one_scale(
    cutoff_hz: int, expected_class: str, qwen: str, others: str
) -> None:
    """Noise low-passed at a known cutoff: its measured class, every family's bandwidth verdict and the
    hint agree. A verdict is not ``pass`` exactly when the class is below the one the gate names, and the
    hint is the measured class's (a 16 kHz recording's band is never called the telephone's)."""
    from _signals import band_limited_noise

    from pipeline.analysis.bandwidth import BandwidthMeter
    from pipeline.rules.checks import check_gates
    from pipeline.rules.metrics import BANDWIDTH_CLASSES, bandwidth_class_of

    rate = 48000
    meter = BandwidthMeter(sample_rate=rate)
    meter.process(band_limited_noise(cutoff_hz, 3.0, rate, seed=cutoff_hz).astype(np.float32))
    measured = meter.finish().metrics
    assert measured["bandwidth_class"] == expected_class == bandwidth_class_of(measured["bandwidth_hz"]).name
    rank = [c.name for c in BANDWIDTH_CLASSES].index
    for family in FAMILIES:
        gate = next(g for g in load_family(family).gates if g.metric == "bandwidth_hz")
        [check], _ = check_gates([gate], metrics=measured)
        assert check.verdict == (qwen if family == "qwen-tts" else others), family
        below_needed = rank(expected_class) < rank(bandwidth_class_of(check.limit).name)
        assert (check.verdict != "pass") == below_needed, family
        if check.verdict != "pass":
            assert check.reason == "narrowband" and expected_class in check.message
            assert check.hint == bandwidth_class_of(measured["bandwidth_hz"]).hint
            assert ("phone" in check.hint) == (expected_class == "narrow")


@pytest.mark.parametrize("family", FAMILIES)
def test_bandwidth_verdicts_change_exactly_at_class_boundaries(family: str) -> None:
    from pipeline.rules.checks import check_gates
    from pipeline.rules.metrics import BANDWIDTH_BOUNDARIES_HZ, bandwidth_class_of

    gate = next(g for g in load_family(family).gates if g.metric == "bandwidth_hz")
    for hz in BANDWIDTH_BOUNDARIES_HZ:
        [below], _ = check_gates([gate], metrics={"bandwidth_hz": hz - 0.1})
        [at], _ = check_gates([gate], metrics={"bandwidth_hz": hz})
        assert bandwidth_class_of(hz - 0.1) != bandwidth_class_of(hz)
        if below.verdict != at.verdict:  # a gate threshold: the verdict changes with the class
            assert hz in (gate.warn, gate.fail)
    for threshold in (gate.warn, gate.fail):
        assert threshold is None or threshold in BANDWIDTH_BOUNDARIES_HZ


def test_a_bandwidth_gate_off_the_class_scale_is_refused() -> None:
    from pipeline.errors import SpecError
    from pipeline.rules.families import Gate

    with pytest.raises((SpecError, ValueError), match="bandwidth class starts"):
        Gate(
            metric="bandwidth_hz",
            direction="min",
            warn=7000,
            reason="narrowband",
            source="voiceprep",
            why="test",
        )
    assert Gate(
        metric="bandwidth_hz", direction="min", warn=8200, reason="narrowband", source="voiceprep", why="test"
    )
