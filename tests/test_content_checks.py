"""Music and singing wired through voiceprep: the metrics, the checks, selection and the report.

Real excerpts only (the meter's own known answers are in ``test_music.py``): read speech from one
LibriSpeech reader with the Dvořák string quartet (``data/corpus/music/``) mixed 10 dB under part of it,
a cappella singing and an operatic voice (the larger corpus), and speech over real traffic hum and an
exercise bike's fan. A run over the speaker with the music bed must take its clip from the clean part;
``check`` must name ``singing`` and ``music`` with value, limit and hint, and never ``music`` for hum or
a fan.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from _corpus import corpus_file

import pipeline
from pipeline.analysis.music import MUSIC_THRESHOLD, SINGING_THRESHOLD, content_frames, content_metrics
from pipeline.errors import reason_hint, reason_message
from pipeline.report.build import build_report
from pipeline.report.data import content_spans
from pipeline.report.explain import explain
from pipeline.report.plots import waveform_svg
from pipeline.rules.metrics import FAST_PASS_METRICS, METRICS, value_text

RATE = 16000
BED_BELOW_DB = 10.0


def _load(path: Path) -> np.ndarray:
    """A recording as 16 kHz mono float32."""
    x, rate = sf.read(path, dtype="float32", always_2d=True)
    y = x.mean(axis=1)
    return soxr.resample(y, rate, RATE).astype(np.float32) if rate != RATE else y


def _under(speech: np.ndarray, other: np.ndarray, below_db: float) -> np.ndarray:
    """``other`` (looped to the speech's length) ``below_db`` under the speech's RMS, added to it."""
    bed = np.resize(other, speech.size).astype(np.float64)
    gain = np.sqrt(np.mean(speech.astype(np.float64) ** 2) / np.mean(bed**2)) * 10 ** (-below_db / 20)
    return (speech + gain * bed).astype(np.float32)


def _reader(name: str) -> np.ndarray:
    return _load(corpus_file("speech", f"resem_librispeech_3080-5032-{name}.flac"))


@pytest.fixture(scope="module")
def music_bed() -> np.ndarray:
    return _load(corpus_file("music", "afp_musopen_dvorak_american_mvt1.ogg"))


@pytest.fixture(scope="module")
def bed_run(tmp_path_factory: pytest.TempPathFactory, music_bed: np.ndarray) -> tuple[Path, float]:
    """A run over one speaker whose only file has the music bed under its first 23 s; the run's folder
    and where the clean part starts."""
    first, second = _reader("0009"), _reader("0006")  # 22.75 s, then 16.5 s of the same reader
    audio = np.concatenate([_under(first, music_bed, BED_BELOW_DB), np.zeros(RATE // 2, np.float32), second])
    root = tmp_path_factory.mktemp("bed")
    (root / "in" / "reader").mkdir(parents=True)
    sf.write(root / "in" / "reader" / "talk.wav", audio / max(1.0, float(np.abs(audio).max()) / 0.9), RATE)
    pipeline.run(root / "in", root / "out", families=["qwen-tts"], executor="serial")
    return root / "out", (first.size + RATE // 2) / RATE


def test_a_run_takes_the_clip_from_the_part_without_music(bed_run: tuple[Path, float]) -> None:
    out, clean_from = bed_run
    res = pipeline.load_run(out)
    clip = res.clip_rows[0]
    assert clip["status"] == "ready", clip["reasons"]
    assert all(seg["start_s"] >= clean_from - 0.05 for seg in clip["segments"]), clip["segments"]
    rejected = clip["plan"]["measures"]["content_rejected"]
    assert rejected and all(r["content"] == "music" for r in rejected)
    assert all(p["end_s"] <= clean_from + 1.0 for r in rejected for p in r["pieces"])
    # the clip's re-check heard no music, and said so in its checks and metrics
    assert clip["metrics"]["music_score"] < MUSIC_THRESHOLD
    gate = next(c for c in clip["checks"] if c["rule"] == "gate:music_score")
    assert gate["verdict"] == "pass" and gate["limit"] == MUSIC_THRESHOLD
    # the run's fast pass does not hear the whole file: null, with the reason
    recording = res.recording_rows[0]
    assert recording["metrics"]["music_score"] is None
    assert "windows" in recording["null_reasons"]["music_score"]
    assert "metrics.music_score" in res.clips.columns and "metrics.singing_score" in res.recordings.columns
    text = explain(res, "reader", "qwen-tts")
    assert "dropped for music or singing:" in text and "reader/talk.wav" in text.split("dropped for music")[1]


def test_when_every_window_has_music_the_best_is_still_returned_marked(
    tmp_path: Path, music_bed: np.ndarray
) -> None:
    from pipeline.selection.select import choose

    path = tmp_path / "bed.wav"
    sf.write(path, _under(_reader("0009"), music_bed, BED_BELOW_DB), RATE)
    recording = pipeline.analyze(path, dnsmos=False)
    plans = choose([recording], pipeline.load_family("qwen-tts"), top=2, refine_edges=False)
    assert plans and all(p.measures["content"] == "music" for p in plans)
    assert plans[0].measures["music_score"] >= MUSIC_THRESHOLD
    assert plans[0].measures["content_rejected"]


def test_the_report_marks_where_music_was_heard(bed_run: tuple[Path, float]) -> None:
    out, clean_from = bed_run
    res = pipeline.load_run(out)
    spans = content_spans("reader/talk.wav", {}, res.clip_rows)
    assert spans and all(kind == "music" and end <= clean_from + 1.0 for _, end, kind in spans)
    html = build_report(out).read_text(encoding="utf-8")
    assert 'class="content content-music"' in html


def test_check_names_music_with_value_limit_and_hint(tmp_path: Path, music_bed: np.ndarray) -> None:
    path = tmp_path / "bed.wav"
    sf.write(path, _under(_reader("0007"), music_bed, BED_BELOW_DB), RATE)
    result = pipeline.check(path, "minimax", dnsmos=False)
    assert "music" in result.reasons
    gate = next(c for c in result.checks if c.rule == "gate:music_score")
    assert gate.verdict == "fail" and gate.value >= gate.limit == MUSIC_THRESHOLD
    assert gate.hint == reason_hint("music")
    assert result.metrics["music_spans"] and result.metrics["music_spans"][0][2] == "music"


@pytest.mark.parametrize("name", ["sms_singing-female.wav", "sa_openair_operatic_singing.wav"])
def test_check_names_singing(name: str) -> None:
    result = pipeline.check(corpus_file("music", name), "qwen-tts", dnsmos=False)
    assert "singing" in result.reasons
    gate = next(c for c in result.checks if c.rule == "gate:singing_score")
    assert gate.verdict == "fail" and gate.value >= gate.limit == SINGING_THRESHOLD
    assert gate.hint == reason_hint("singing") and "sing" in reason_message("singing")


@pytest.mark.parametrize(
    ("folder", "name", "below_db"),
    [("noise", "amb_city_traffic_hum_usc.mp3", 5.0), ("noise", "pra_exercise_bike.wav", 5.0)],
)
def test_hum_and_a_fan_under_speech_are_not_music(
    tmp_path: Path, folder: str, name: str, below_db: float
) -> None:
    path = tmp_path / "noisy.wav"
    speech = np.concatenate([_reader("0007"), _reader("0006")])
    sf.write(path, _under(speech, _load(corpus_file(folder, name)), below_db), RATE)
    result = pipeline.check(path, "qwen-tts", dnsmos=False)
    assert "music" not in result.reasons and "singing" not in result.reasons
    assert result.metrics["music_score"] < MUSIC_THRESHOLD
    assert result.metrics["music_spans"] == []


def test_scores_are_the_worst_ten_second_window_and_spans_say_where(music_bed: np.ndarray) -> None:
    speech = np.concatenate([_reader("0009"), _reader("0006")])  # 39 s
    half = speech.size // 2
    audio = np.concatenate([speech[:half], _under(speech[half:], music_bed, BED_BELOW_DB)])
    analysis = pipeline.analysis.fastpass.analyze_array(audio, RATE)
    frames = content_frames(audio, analysis.speech_mask)
    whole = content_metrics(frames)
    assert whole.metrics["music_score"] >= MUSIC_THRESHOLD
    spans = [s for s in whole.metrics["music_spans"] if s[2] == "music"]
    assert spans and spans[0][0] >= half / RATE - 10.0 and spans[-1][1] >= audio.size / RATE - 1.0
    assert content_metrics(frames, 0.0, half / RATE - 1.0).metrics["music_score"] < MUSIC_THRESHOLD


def test_the_metrics_checks_and_codes_are_one_entry_each() -> None:
    for name in ("music_score", "singing_score"):
        assert METRICS[name].gate and METRICS[name].bounds == (0.0, 1.0) and name in FAST_PASS_METRICS
    assert METRICS["music_spans"].style == "events"
    assert value_text("music_spans", [[0.0, 4.87, "singing"]]) == "1 (0-4.9 s singing)"
    for family in ("qwen-tts", "minimax", "cosyvoice", "elevenlabs"):
        gates = {g.metric: g for g in pipeline.load_family(family).gates}
        assert gates["music_score"].reason == "music" and gates["singing_score"].reason == "singing"


def test_waveform_draws_a_band_where_music_was_heard() -> None:
    svg = str(waveform_svg(None, duration_s=30.0, families=[], uses=[], content=[(5.0, 15.0, "singing")]))
    assert 'class="content content-singing"' in svg and "singing heard 5–15 s" in svg
