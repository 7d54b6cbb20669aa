"""The committed demo recordings in data/samples/ match EXPECTED.json, and the generator's parts are right.

The file checks read the audio with soundfile (WAV, FLAC, MP3, Ogg) or PyAV (M4A) and never use voiceprep's
own analysis; they compare the samples with the real recordings of data/corpus/ they were made from. The
generator checks import data/make_samples.py and pin its building blocks to known answers.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import av
import numpy as np
import pytest
import soundfile as sf
import soxr
from _samples import EXPECTED, SAMPLES
from scipy import signal

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
CORPUS = DATA / "corpus"
FILES: dict[str, dict[str, Any]] = EXPECTED["files"]
DECODABLE = sorted(name for name, facts in FILES.items() if facts["decodable"])
CORRUPT = sorted(name for name, facts in FILES.items() if not facts["decodable"])
SOUNDFILE_FORMATS = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "ogg": ("OGG", "VORBIS"),
}


def _make_samples() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_samples", DATA / "make_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_samples"] = module
    spec.loader.exec_module(module)
    return module


ms = _make_samples()


@functools.cache
def decode(name: str) -> tuple[np.ndarray, int]:
    """Decode a sample to float64 (frames, channels): PyAV for M4A, soundfile otherwise."""
    path = SAMPLES / name
    if path.suffix == ".m4a":
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            planes = [frame.to_ndarray() for frame in container.decode(stream)]
            rate = stream.rate
        return np.concatenate(planes, axis=1).T.astype(np.float64), rate
    audio, rate = sf.read(path, dtype="float64", always_2d=True)
    return audio, rate


def rms_dbfs(x: np.ndarray) -> float:
    """RMS level in dBFS (never -inf: a floor of -200 dB)."""
    return float(10 * np.log10(np.mean(x**2) + 1e-20))


def frame_levels_db(x: np.ndarray, rate: int, *, frame_s: float = 0.05) -> np.ndarray:
    """Per-frame RMS level in dBFS."""
    hop = int(rate * frame_s)
    n = len(x) // hop
    return 10 * np.log10(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-20)


# ------------------------------------------------------------------------------ committed files


def test_every_file_is_in_expected_and_in_the_readme() -> None:
    on_disk = {p.relative_to(SAMPLES).as_posix() for p in SAMPLES.rglob("*") if p.is_file()}
    assert on_disk - {"EXPECTED.json"} == set(FILES)
    readme = (DATA / "README.md").read_text()
    missing = [name for name in FILES if f"`{name}`" not in readme]
    assert missing == []


def test_total_size_is_under_5_mb_and_sizes_match_expected() -> None:
    total = sum(p.stat().st_size for p in SAMPLES.rglob("*") if p.is_file())
    assert total < 5_000_000
    for name, facts in FILES.items():
        assert (SAMPLES / name).stat().st_size == facts["bytes"], name


def test_four_speakers_and_the_required_formats() -> None:
    speakers = {facts["speaker"] for facts in FILES.values()}
    assert speakers == set(EXPECTED["speakers"]) == {"alice", "bob", "carol", "dave"}
    assert {facts["format"] for facts in FILES.values()} >= {"m4a", "mp3", "wav", "flac", "ogg"}


def test_every_recording_is_made_from_the_repository_corpus_with_its_licence() -> None:
    listed = (CORPUS / "SOURCES.md").read_text(encoding="utf-8")
    for name, facts in FILES.items():
        speaker = EXPECTED["speakers"][facts["speaker"]]
        if "source" in facts:
            sources = [facts["source"]]
        else:  # the interview: one list per section
            sources = [s for section in facts["degradation"]["sections"] for s in section["sources"]]
        assert sources, name
        for source in sources:
            relpath = source["file"]
            assert relpath in speaker["sources"], (name, relpath)
            assert (CORPUS / relpath).is_file() and f"`{relpath}`" in listed, relpath
        assert speaker["licence"]
    for noise in EXPECTED["noises"].values():
        assert (CORPUS / noise["file"]).is_file() and f"`{noise['file']}`" in listed


def _source_cut(source: dict[str, Any], rate: int) -> np.ndarray:
    """The span of a corpus recording a sample was cut from, mono, at ``rate``."""
    x, native = sf.read(CORPUS / source["file"], dtype="float64", always_2d=True)
    x = soxr.resample(x.mean(axis=1), native, rate)
    start, end = source["span_s"]
    return x[int(start * rate) : int(end * rate)]


def _best_correlation(x: np.ndarray, reference: np.ndarray) -> float:
    """Peak normalised cross-correlation of ``x`` with ``reference`` (1.0: the same waveform, shifted)."""
    c = signal.correlate(x, reference, mode="full", method="fft")
    return float(np.max(np.abs(c)) / np.sqrt(np.sum(x**2) * np.sum(reference**2)))


@pytest.mark.parametrize("name", sorted(n for n in FILES if n.startswith("bob/takes/")))
def test_takes_are_the_real_recording_cut_at_pauses(name: str) -> None:
    audio, rate = decode(name)
    assert _best_correlation(audio[:, 0], _source_cut(FILES[name]["source"], rate)) > 0.98


@pytest.mark.parametrize("name", DECODABLE)
def test_sample_matches_expected(name: str) -> None:
    facts = FILES[name]
    audio, rate = decode(name)
    assert rate == facts["sample_rate"]
    assert audio.shape[1] == facts["channels"]
    assert abs(len(audio) / rate - facts["duration_s"]) < 0.1
    if facts["format"] == "m4a":
        with av.open(str(SAMPLES / name)) as container:
            assert container.streams.audio[0].codec_context.name == "aac"
    else:
        info = sf.info(SAMPLES / name)
        assert (info.format, info.subtype) == SOUNDFILE_FORMATS[facts["format"]]


@pytest.mark.parametrize("name", DECODABLE)
def test_speech_level_is_realistic(name: str) -> None:
    audio, rate = decode(name)
    speech = audio[:, -1]  # the stereo file has its speech on the last channel
    level = 10 * np.log10(ms.active_power(speech, rate))
    assert -30.0 <= level <= -18.0
    assert np.max(np.abs(audio)) < 1.0


@pytest.mark.parametrize("name", CORRUPT)
def test_corrupt_file_fails_with_soundfile_and_pyav(name: str) -> None:
    path = SAMPLES / name
    with pytest.raises(sf.LibsndfileError):
        sf.read(path)
    with pytest.raises(av.FFmpegError), av.open(str(path)) as container:
        for _ in container.decode(audio=0):
            pass


def test_stereo_file_has_a_silent_left_and_a_speaking_right_channel() -> None:
    (name,) = [n for n, f in FILES.items() if (f["degradation"] or {}).get("kind") == "silent_channel"]
    audio, _ = decode(name)
    assert FILES[name]["degradation"]["silent_channel"] == 0
    assert rms_dbfs(audio[:, 0]) < -80.0
    assert rms_dbfs(audio[:, 1]) > -35.0


def _high_band_ratio_db(name: str, *, split_hz: float) -> float:
    audio, rate = decode(name)
    freqs, power = signal.welch(audio[:, 0], rate, nperseg=4096)
    return float(10 * np.log10(power[freqs > split_hz].sum() / power[freqs <= split_hz].sum()))


def test_upsampled_file_has_nothing_above_8_5_khz() -> None:
    name = "alice/upsampled_16k.wav"
    assert FILES[name]["sample_rate"] == 24000
    assert FILES[name]["degradation"]["lowpass_hz"] == 8000
    assert _high_band_ratio_db(name, split_hz=8500) < -50.0
    # the same measure on the phone memo of the same reader sees her 8.5-11 kHz content: it discriminates
    assert _high_band_ratio_db("alice/phone_memo.m4a", split_hz=8500) > -40.0


def test_clipped_file_has_the_documented_clipped_ratio() -> None:
    name = "alice/clipped.flac"
    clipping = FILES[name]["degradation"]
    assert 0.01 <= clipping["clipped_ratio"] <= 0.03
    audio, _ = decode(name)
    magnitude = np.abs(audio[:, 0])
    peak = magnitude.max()
    assert abs(peak * 32767 - clipping["clip_level_int16"]) <= 1
    assert abs(20 * np.log10(peak) - clipping["clip_level_dbfs"]) < 0.05
    near_peak = float(np.mean(magnitude >= peak * 10 ** (-0.2 / 20)))  # within 0.2 dB of the maximum
    assert abs(near_peak - clipping["clipped_ratio"]) <= 0.3 * clipping["clipped_ratio"]


def test_long_pause_file_is_quiet_inside_the_pause_and_speaks_around_it() -> None:
    name = "bob/long_pause.mp3"
    pause = FILES[name]["degradation"]
    start, end = pause["pause_span_s"]
    assert pause["pause_s"] == pytest.approx(end - start, abs=1e-3)
    assert 2.2 <= pause["pause_s"] <= 3.0
    audio, rate = decode(name)
    x = audio[:, 0]
    inside = x[int((start + 0.1) * rate) : int((end - 0.1) * rate)]
    before = x[int((start - 1.0) * rate) : int(start * rate)]
    after = x[int(end * rate) : int((end + 1.0) * rate)]
    assert frame_levels_db(inside, rate).max() < -55.0
    assert rms_dbfs(before) > -35.0
    assert rms_dbfs(after) > -35.0
    # with the pause shortened to 0.5 s the words last under 10 s: no clip can come from this file alone
    assert len(x) / rate - pause["pause_s"] + 0.5 < 10.0


def test_takes_are_short_and_acoustically_matched() -> None:
    takes = sorted(name for name in FILES if name.startswith("bob/takes/"))
    assert len(takes) >= 5
    levels, floors = [], []
    for name in takes:
        audio, rate = decode(name)
        assert 3.0 <= len(audio) / rate <= 6.0
        assert rate == FILES[takes[0]]["sample_rate"]
        levels.append(10 * np.log10(ms.active_power(audio[:, 0], rate)))
        floors.append(np.percentile(frame_levels_db(audio[:, 0], rate), 5))
    assert max(levels) - min(levels) < 1.0
    assert max(floors) - min(floors) < 2.0


def test_phone_memo_is_the_whole_reading_clean_and_never_digital_silence() -> None:
    name = "alice/phone_memo.m4a"
    audio, rate = decode(name)
    assert rate == 44100 and audio.shape[1] == 1
    assert len(audio) / rate >= 45.0  # long enough for ElevenLabs' 30 s from this one recording
    levels = frame_levels_db(audio[:, 0], rate)
    assert -70.0 < levels.min() < -50.0  # the room between lines, not digital zero
    assert _best_correlation(audio[:, 0], _source_cut(FILES[name]["source"], rate)) > 0.9
    assert FILES[name]["degradation"]["highpass_hz"] <= 150  # a phone's high-pass keeps the voice


def test_voice_note_is_clean_full_band_and_too_short() -> None:
    name = "dave/voice_note.m4a"
    audio, rate = decode(name)
    assert rate == 48000 and len(audio) / rate < 10.0
    assert _high_band_ratio_db(name, split_hz=12000) > -60.0  # content above 12 kHz


def test_long_file_has_one_clean_stretch_between_degraded_sections() -> None:
    name = "carol/interview_long.ogg"
    audio, rate = decode(name)
    duration = len(audio) / rate
    assert duration >= 50.0
    mixed = FILES[name]["degradation"]
    sections = mixed["sections"]
    assert sections[0]["start_s"] == 0.0
    assert abs(sections[-1]["end_s"] - duration) < 0.02
    for before, after in itertools.pairwise(sections):
        assert after["start_s"] == pytest.approx(before["end_s"] - 0.25, abs=0.011)
    (clean,) = [s for s in sections if s["kind"] == "clean"]
    assert [s["kind"] for s in sections] == ["noise", "clean", "reverb"]
    best_start, best_end = mixed["best_span_s"]
    assert clean["start_s"] < best_start < best_end < clean["end_s"]
    assert 25.0 <= best_end - best_start <= 35.0
    x = audio[:, 0]
    for section in sections:
        part = x[int((section["start_s"] + 1.0) * rate) : int((section["end_s"] - 1.0) * rate)]
        floor = np.percentile(frame_levels_db(part, rate), 10)
        dry = np.concatenate([_source_cut(s, rate) for s in section["sources"]])
        likeness = _best_correlation(x[int(section["start_s"] * rate) : int(section["end_s"] * rate)], dry)
        if section["kind"] == "clean":  # the recordings as they are, over a quiet room
            assert floor < -55.0 and likeness > 0.95
        elif section["kind"] == "noise":  # noise fills the pauses
            assert floor > -45.0 and likeness < 0.95
        else:  # the hall smears the words: far from the dry recording
            assert likeness < 0.8


# ------------------------------------------------------------------------------ generator


def _fit_slope(x: np.ndarray, rate: int, low_hz: float, high_hz: float) -> float:
    freqs, power = signal.welch(x, rate, nperseg=4096)
    band = (freqs >= low_hz) & (freqs <= high_hz)
    return float(np.polyfit(np.log10(freqs[band]), np.log10(power[band]), 1)[0])


@pytest.mark.parametrize(("exponent", "name"), [(1.0, "pink"), (2.0, "brown")])
def test_colored_noise_has_the_requested_spectral_slope(exponent: float, name: str) -> None:
    rng = np.random.default_rng(1)
    noise = ms.colored_noise(2**18, rng, exponent=exponent, rate=16000)
    assert np.sqrt(np.mean(noise**2)) == pytest.approx(1.0, rel=1e-9)
    # pink: -3.01 dB per octave (power ~ 1/f); brown: -6.02 dB per octave (1/f^2)
    assert _fit_slope(noise, 16000, 100, 4000) == pytest.approx(-exponent, abs=0.05), name


def _schroeder_t60(rir: np.ndarray, rate: int, *, top_db: float, bottom_db: float) -> float:
    energy = np.cumsum(rir[::-1] ** 2)[::-1]
    decay = 10 * np.log10(energy / energy[0])
    band = (decay <= top_db) & (decay >= bottom_db)
    slope = np.polyfit(np.flatnonzero(band) / rate, decay[band], 1)[0]
    return float(-60.0 / slope)


@pytest.mark.parametrize("t60_s", [0.3, 0.9])
def test_synthetic_rir_decays_with_the_requested_t60_and_drr(t60_s: float) -> None:
    rate = 16000
    rir = ms.synthetic_rir(rate, np.random.default_rng(3), t60_s=t60_s, drr_db=-2.0)
    onset = int(0.002 * rate)
    assert rir[0] == 1.0 and not np.any(rir[1:onset])
    assert 10 * np.log10(1.0 / np.sum(rir[onset:] ** 2)) == pytest.approx(-2.0, abs=1e-9)
    assert _schroeder_t60(rir[onset:], rate, top_db=-5, bottom_db=-35) == pytest.approx(t60_s, rel=0.05)


def test_noise_is_scaled_to_the_requested_snr_against_active_speech() -> None:
    rate = 16000
    t = np.arange(rate) / rate
    # one second of a 1 kHz tone (power 0.125 in every 20 ms frame), then one second of silence
    speech = np.concatenate([0.5 * np.sin(2 * np.pi * 1000 * t), np.zeros(rate)])
    noise = ms.scale_noise_to_snr(
        speech, np.random.default_rng(4).standard_normal(2 * rate), rate, snr_db=6.0
    )
    assert 10 * np.log10(0.125 / np.mean(noise**2)) == pytest.approx(6.0, abs=1e-6)


def test_hard_clip_clips_the_requested_fraction_at_the_requested_level() -> None:
    # an incommensurate frequency spreads the sample phases evenly, so no two samples tie
    x = np.sin(2 * np.pi * np.arange(200_000) / 1000.37)
    clipped, gain = ms.hard_clip(x, level=0.5, ratio=0.02)
    assert np.max(np.abs(clipped)) == 0.5
    assert np.mean(np.abs(clipped) >= 0.5) == pytest.approx(0.02, abs=1e-4)
    # |sin| exceeds sin(0.49 pi) on 2 % of the period, so that is where the gain puts the ceiling
    assert gain == pytest.approx(0.5 / np.sin(0.49 * np.pi), rel=1e-3)


def test_ogg_serial_rewrite_is_valid_and_makes_encodes_identical(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    audio = 0.1 * rng.standard_normal(24000 * 3)
    paths = [tmp_path / "a.ogg", tmp_path / "b.ogg"]
    for path in paths:
        ms.write_soundfile(path, audio, 24000, fmt="OGG", subtype="VORBIS", compression_level=0.5)
    before, _ = sf.read(paths[0])
    for path in paths:
        ms.set_ogg_serial(path, serial=1234)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    after, _ = sf.read(paths[0])  # libogg drops pages whose CRC is wrong
    np.testing.assert_array_equal(after, before)
    data = paths[0].read_bytes()
    pages = [i for i in range(len(data) - 3) if data[i : i + 4] == b"OggS"]
    assert len(pages) > 2
    assert {int.from_bytes(data[i + 14 : i + 18], "little") for i in pages} == {1234}


def test_cut_keeps_the_span_and_fades_both_ends() -> None:
    rate = 1000
    x = np.ones(5 * rate)
    part = ms.cut(x, rate, 1.0, 3.5, fade_s=0.02)
    assert len(part) == 2500
    assert part[0] == 0.0 and part[-1] == 0.0 and np.all(part[20:-20] == 1.0)


def test_speech_span_finds_the_loud_frames() -> None:
    rate = 16000
    x = np.full(3 * rate, 1e-4)
    x[int(0.5 * rate) : int(2.2 * rate)] = 0.3
    start, end = ms.speech_span(x, rate)
    assert start == pytest.approx(0.5, abs=0.02) and end == pytest.approx(2.2, abs=0.02)


def test_phone_highpass_removes_rumble_and_keeps_the_voice() -> None:
    rate = 16000
    t = np.arange(2 * rate) / rate

    def gain_db(hz: float) -> float:
        tone = np.sin(2 * np.pi * hz * t)
        out = ms.highpass(tone, rate, hz=ms.PHONE_HIGHPASS_HZ)[rate // 2 : -rate // 2]
        return 20 * np.log10(np.sqrt(np.mean(out**2)) / np.sqrt(0.5))

    assert gain_db(40.0) < -30.0
    assert abs(gain_db(500.0)) < 0.1


def test_missing_corpus_fails_with_one_clear_line(tmp_path: Path) -> None:
    empty = tmp_path / "no-corpus"
    empty.mkdir()
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(DATA / "make_samples.py"), "--out", str(out), "--corpus", str(empty)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing" in lines[0] and "data/corpus" in lines[0]
    assert not out.exists()
