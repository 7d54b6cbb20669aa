"""pipeline.analyze / pipeline.check on the demo samples and the shared recordings."""

from __future__ import annotations

from pathlib import Path

import pytest
from _corpus import corpus_file
from _samples import EXPECTED, SAMPLES

import pipeline


def _expected(relpath: str) -> dict:
    files = EXPECTED["files"]
    return files[relpath]


@pytest.fixture(scope="module")
def long_pause() -> pipeline.Analysis:
    return pipeline.analyze(SAMPLES / "bob" / "long_pause.mp3", dnsmos=False)


def test_analyze_measures_the_known_pause(long_pause) -> None:
    truth = _expected("bob/long_pause.mp3")
    pause_s = truth.get("pause_s") or truth["degradation"]["pause_s"]
    assert long_pause.metrics["max_pause_s"] == pytest.approx(pause_s, abs=0.15)
    assert long_pause.metrics["pauses_over_2s"] == 1


def test_analysis_frames_segments_and_plot(long_pause) -> None:
    seg = long_pause.segments
    assert list(seg.columns) == ["start_s", "end_s", "duration_s"]
    assert (seg["end_s"] > seg["start_s"]).all()
    assert seg["duration_s"].sum() == pytest.approx(long_pause.metrics["speech_s"], abs=1e-6)
    frames = long_pause.frames
    assert list(frames.columns) == ["time_s", "level_db", "speech"]
    assert frames["speech"].sum() * 0.01 == pytest.approx(long_pause.metrics["speech_s"], abs=0.011)
    fig = long_pause.plot()
    assert len(fig.axes) == 3
    assert "long_pause.mp3" in fig._suptitle.get_text()


def test_the_plot_shows_the_recordings_own_band_not_the_analysis_view() -> None:
    """A 24 kHz recording's spectrogram reaches 12 kHz (the analysis itself runs at 16 kHz)."""
    from pipeline.analysis.plot import frames_for_plot

    a = pipeline.analyze(SAMPLES / "alice" / "clipped.flac", dnsmos=False)  # 24 kHz
    audio, rate = frames_for_plot(a, max_audio_s=600.0)
    assert rate == a.info.sample_rate == 24000
    assert audio.size == pytest.approx(a.metrics["duration_s"] * rate, rel=0.01)
    fig = a.plot()
    assert fig.axes[1].get_ylim()[1] == pytest.approx(rate / 2, rel=0.05)


def test_check_first_channel_silent_only_matters_for_cosyvoice() -> None:
    path = SAMPLES / "alice" / "stereo_left_silent.wav"
    cosy, minimax = pipeline.check_families(path, ["cosyvoice", "minimax"], dnsmos=False)
    assert cosy.verdict == "fail" and "first_channel_silent" in cosy.reasons
    assert "first_channel_silent" not in minimax.reasons
    # MiniMax hears a mono mix that contains the voice.
    assert minimax.metrics["speech_s"] > 5


def test_check_known_defects_of_the_samples() -> None:
    clipped = pipeline.check(SAMPLES / "alice" / "clipped.flac", "minimax", dnsmos=False)
    assert "clipped" in clipped.reasons
    upsampled = pipeline.check(SAMPLES / "alice" / "upsampled_16k.wav", "qwen-tts", dnsmos=False)
    assert "narrowband" in upsampled.reasons
    pause = pipeline.check(SAMPLES / "bob" / "long_pause.mp3", "cosyvoice", dnsmos=False)
    assert pause.verdict == "fail" and "pause_too_long" in pause.reasons
    take = pipeline.check(SAMPLES / "bob" / "takes" / "take_3.m4a", "cosyvoice", dnsmos=False)
    assert "no_continuous_speech" in take.reasons


def test_check_unreadable_files_are_fail_rows_not_exceptions(tmp_path: Path) -> None:
    broken = pipeline.check(SAMPLES / "alice" / "broken.m4a", "cosyvoice")
    assert broken.verdict == "fail" and broken.reasons == ["decode_failed"]
    missing = pipeline.check(tmp_path / "nope.wav", "qwen-tts")
    assert missing.verdict == "fail" and missing.reasons == ["not_found"]
    assert missing.checks[0].hint


def test_check_clean_real_speech_passes_hard_limits() -> None:
    # 44.1 kHz mono PCM16 real speech, 5.6 s: only the duration (shorter than the 10 s clip run makes, and
    # the recommendations) and the speech run can complain; format, rate, channels and pauses are fine.
    result = pipeline.check(corpus_file("speech", "sms_speech-male.wav"), "qwen-tts", dnsmos=False)
    hard_failures = {c.rule for c in result.checks if c.group == "limit" and c.verdict == "fail"}
    assert hard_failures <= {"min_speech_run_s", "clip_min_duration_s"}
    assert {"format", "sample_rate", "channels", "max_pause_s"} <= {c.rule for c in result.checks}


def test_unknown_family_raises_spec_error() -> None:
    from pipeline.errors import SpecError

    with pytest.raises(SpecError, match="available"):
        pipeline.check(corpus_file("speech", "sms_speech-male.wav"), "no-such-family")


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"channel_strategy": "loudest"}, "channel_strategy"),
        ({"min_pause_s": 0}, "min_pause_s"),
        ({"stream_index": -1}, "stream_index"),
    ],
)
def test_analyze_rejects_a_bad_argument_by_name(kwargs: dict, name: str) -> None:
    from pipeline.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match=name):
        pipeline.analyze(corpus_file("speech", "sms_speech-male.wav"), **kwargs)
    with pytest.raises(InvalidArgument, match="path"):
        pipeline.analyze(123)  # type: ignore[arg-type]


def test_check_takes_one_family_and_check_families_many() -> None:
    path = SAMPLES / "alice" / "stereo_left_silent.wav"
    one = pipeline.check(path, "minimax", dnsmos=False)
    assert isinstance(one, pipeline.CheckResult) and one.family == "minimax"
    many = pipeline.check_families(path, ["cosyvoice", pipeline.load_family("minimax")], dnsmos=False)
    assert [r.family for r in many] == ["cosyvoice", "minimax"]
    assert many[1].to_dict() == one.to_dict()
    assert pipeline.check_families(path, [], dnsmos=False) == []
    from pipeline.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="families"):
        pipeline.check_families(path, "minimax")  # type: ignore[arg-type]


def test_check_with_a_list_still_works_for_one_release_and_warns() -> None:
    path = SAMPLES / "alice" / "stereo_left_silent.wav"
    with pytest.warns(DeprecationWarning, match="check_families"):
        results = pipeline.check(path, ["cosyvoice", "minimax"], dnsmos=False)  # type: ignore[arg-type]
    assert isinstance(results, list)
    assert [r.to_dict() for r in results] == [
        r.to_dict() for r in pipeline.check_families(path, ["cosyvoice", "minimax"], dnsmos=False)
    ]


def test_analyze_old_keywords_still_work_and_warn() -> None:
    import warnings

    path = SAMPLES / "alice" / "stereo_left_silent.wav"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new names do not warn
        new = pipeline.analyze(path, channel_strategy="first", max_input_s=600.0, dnsmos=False)
    assert new.channel_choice.method == "first"
    with pytest.warns(DeprecationWarning, match=r"strategy=.*channel_strategy="):
        old = pipeline.analyze(path, strategy="first", dnsmos=False)
    assert old.metrics == new.metrics
    with pytest.warns(DeprecationWarning, match=r"max_duration_s=.*max_input_s="):
        pipeline.analyze(path, max_duration_s=600.0, dnsmos=False)
    from pipeline.errors import AudioReadError

    with pytest.warns(DeprecationWarning), pytest.raises(AudioReadError) as err:
        pipeline.analyze(path, max_duration_s=1.0)
    assert err.value.reason == "too_long"
    with pytest.raises(AudioReadError) as err:
        pipeline.analyze(path, max_input_s=1.0)
    assert err.value.reason == "too_long"
    with pytest.raises(TypeError, match="both"):
        pipeline.analyze(path, strategy="first", channel_strategy="mean")


def test_stream_index_reaches_the_stream_in_analyze_check_and_plot(tmp_path: Path, av_encode) -> None:
    import numpy as np

    from pipeline.analysis.plot import frames_for_plot

    rate = 16000
    t = np.arange(2 * rate) / rate
    mono = (0.3 * np.sin(2 * np.pi * 440 * t))[:, None]
    right_only = np.stack([np.zeros_like(t), 0.3 * np.sin(2 * np.pi * 1000 * t)], axis=1)
    path = av_encode(
        tmp_path / "two.mkv", "matroska", [(mono, rate, "aac", 96000), (right_only, rate, "aac", 96000)]
    )
    first = pipeline.analyze(path, dnsmos=False)
    second = pipeline.analyze(path, stream_index=1, dnsmos=False)
    assert (first.channels, second.channels, second.info.stream_index) == (1, 2, 1)
    assert second.channel_choice.weights == (0.0, 1.0)  # `best` drops the silent left channel of stream 1
    audio, audio_rate = frames_for_plot(second, max_audio_s=60.0)
    spectrum = np.abs(np.fft.rfft(audio))
    assert np.fft.rfftfreq(audio.size, 1 / audio_rate)[spectrum.argmax()] == pytest.approx(1000, abs=5)
    cosy, minimax = pipeline.check_families(path, ["cosyvoice", "minimax"], stream_index=1, dnsmos=False)
    assert "first_channel_silent" in cosy.reasons and "first_channel_silent" not in minimax.reasons
    assert pipeline.check(path, "cosyvoice", dnsmos=False).probe["channels"] == 1


def test_check_and_analyze_of_a_damaged_mp3_print_nothing_and_give_notes(damaged_mp3: Path, capfd) -> None:
    from pipeline.audio.notes import collect

    intact = pipeline.analyze(SAMPLES / "alice" / "noisy_street.mp3", dnsmos=False)
    with collect() as notes:
        damaged = pipeline.analyze(damaged_mp3, dnsmos=False)
        result = pipeline.check(damaged_mp3, "qwen-tts", dnsmos=False)
    assert capfd.readouterr().err == ""
    assert any("Illegal Audio-MPEG-Header" in entry["message"] for entry in notes.entries())
    # 200 zero bytes in 154 kB: the same measurements, to within a dB, and the same verdict as the intact file
    assert damaged.metrics["duration_s"] == intact.metrics["duration_s"]
    assert damaged.metrics["snr_db"] == pytest.approx(intact.metrics["snr_db"], abs=1.0)
    assert (
        result.verdict
        == pipeline.check(SAMPLES / "alice" / "noisy_street.mp3", "qwen-tts", dnsmos=False).verdict
    )
