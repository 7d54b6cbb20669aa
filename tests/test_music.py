"""Tests for pipeline.analysis.music: known answers for background music and singing.

Real excerpts (the larger corpus's music and singing; the speech and the traffic hum are also in the
repository's own corpus): a music bed under read speech is music and the speech alone is not; mains hum,
a whine and real traffic hum under speech are not music; a cappella singing is singing and read speech is
not. Synthetic signals pin the parts down: tuned against untuned notes, the YIN pitch of a harmonic tone.
The accuracy figures over many mixtures are in ``benchmarks/content_bench.py`` (BENCHMARKS.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from _corpus import corpus_file

from pipeline.analysis import music
from pipeline.analysis.fastpass import analyze_array
from pipeline.analysis.music import (
    CHUNK_S,
    MUSIC_THRESHOLD,
    SINGING_THRESHOLD,
    ContentMeter,
    content_frames,
    content_scores,
    music_score_from_parts,
)

RATE = 16000


def _load(path: Path, *, start_s: float = 0.0, seconds: float | None = None) -> np.ndarray:
    """A recording as 16 kHz mono float32 (channels averaged), cut to ``[start_s, start_s + seconds)``."""
    x, rate = sf.read(path, dtype="float64", always_2d=True)
    y = x.mean(axis=1)
    y = y[round(start_s * rate) : None if seconds is None else round((start_s + seconds) * rate)]
    return soxr.resample(y, rate, RATE).astype(np.float32) if rate != RATE else y.astype(np.float32)


def _speech() -> np.ndarray:
    """About 15 s of one reader (LJ Speech, two utterances joined)."""
    return np.concatenate(
        [
            _load(corpus_file("speech", "coqui_ljspeech_LJ001-0001.wav")),
            _load(corpus_file("speech", "coqui_ljspeech_LJ001-0003.wav")),
        ]
    )[: 15 * RATE]


def _under(speech: np.ndarray, other: np.ndarray, below_db: float) -> np.ndarray:
    """``other`` (looped to the speech's length) mixed ``below_db`` under the speech's loud level."""
    other = np.resize(other, speech.shape[0]).astype(np.float64)
    loud = speech[np.abs(speech) > 0.01 * np.abs(speech).max()]
    gain = np.sqrt(np.mean(loud.astype(np.float64) ** 2) / np.mean(other**2)) * 10 ** (-below_db / 20)
    mix = speech + gain * other
    return (mix / max(1.0, np.abs(mix).max() / 0.95)).astype(np.float32)


def _scores(x: np.ndarray) -> dict[str, float | None]:
    """Scores of a recording with the fast pass's speech mask, as a run would compute them."""
    return content_scores(x, analyze_array(x, RATE).speech_mask).metrics


def _hum(seconds: float, f0: float) -> np.ndarray:
    """Mains hum: the fundamental and 11 harmonics, odd ones stronger."""
    t = np.arange(round(seconds * RATE)) / RATE
    tone = sum((1.5 if k % 2 else 1.0) / k * np.sin(2 * np.pi * k * f0 * t + k) for k in range(1, 13))
    return (tone / np.std(tone)).astype(np.float32)


# ---------------------------------------------------------------- music: known answers on real excerpts


def test_read_speech_alone_is_not_music() -> None:
    scores = _scores(_speech())
    assert scores["music_score"] < MUSIC_THRESHOLD / 2
    assert scores["music_onset_rate"] < 0.5  # the voice's own harmonics are set aside (0.7 per s if not)
    assert scores["singing_score"] < SINGING_THRESHOLD


@pytest.mark.parametrize(
    ("piece", "below_db"),
    [
        ("librosa_brahms_hungarian_dance5.ogg", 10.0),
        ("librosa_brahms_hungarian_dance5.ogg", 15.0),
        ("afp_musopen_bach_goldberg_aria.ogg", 15.0),
        ("max_jazz_guitar_sub-d.wav", 10.0),
    ],
)
def test_music_bed_under_speech_is_music(piece: str, below_db: float) -> None:
    bed = _load(corpus_file("music", piece), start_s=3.0, seconds=16.0)
    scores = _scores(_under(_speech(), bed, below_db))
    assert scores["music_score"] >= MUSIC_THRESHOLD
    assert scores["music_onset_rate"] > 1.0
    assert scores["singing_score"] < SINGING_THRESHOLD


def test_music_alone_is_music() -> None:
    bed = _load(corpus_file("music", "librosa_brahms_hungarian_dance5.ogg"), seconds=12.0)
    assert content_scores(bed).metrics["music_score"] >= MUSIC_THRESHOLD  # no speech mask at all


@pytest.mark.parametrize(
    ("ambience", "snr_db"),
    [
        ("tg_lluvias_de_mayo_felix_blume.flac", 10.0),  # rain's pitched drips: scored 1.0 before
        ("tg_lluvias_de_mayo_felix_blume.flac", 17.0),  # its level in benchmarks/realistic_hour.py
        ("amb_wind_usc.mp3", 10.0),
    ],
)
def test_rain_and_wind_under_speech_are_not_music(ambience: str, snr_db: float) -> None:
    scores = _scores(_under(_speech(), _load(corpus_file("noise", ambience), seconds=15.0), snr_db))
    assert scores["music_score"] < MUSIC_THRESHOLD
    assert scores["music_onset_rate"] > 1.0 or ambience.startswith("amb_wind")  # the drips are tones


@pytest.mark.parametrize("f0", [50.0, 60.0])
@pytest.mark.parametrize("snr_db", [10.0, 25.0])
def test_mains_hum_under_speech_is_not_music(f0: float, snr_db: float) -> None:
    speech = _speech()
    scores = _scores(_under(speech, _hum(speech.shape[0] / RATE, f0), snr_db))
    assert scores["music_score"] < MUSIC_THRESHOLD / 2
    assert scores["music_onset_rate"] < 1.0  # the hum's harmonics never start: they are the floor


def test_steady_whine_and_real_traffic_hum_are_not_music() -> None:
    speech = _speech()
    t = np.arange(speech.shape[0]) / RATE
    whine = np.sin(2 * np.pi * 1000.0 * t).astype(np.float32)
    traffic = _load(corpus_file("noise", "amb_city_traffic_hum_usc.mp3"))
    for noise, snr_db in ((whine, 20.0), (traffic, 5.0), (traffic, 15.0)):
        assert _scores(_under(speech, noise, snr_db))["music_score"] < MUSIC_THRESHOLD


@pytest.mark.parametrize("snr_db", [5.0, 10.0])
def test_cheering_crowd_under_speech_is_not_music(snr_db: float) -> None:
    """Many voices holding vowels make plenty of sustained tones, but on no tuning grid."""
    crowd = _load(corpus_file("noise", "max_crowd_cheering_soundsexciting.wav"))
    scores = _scores(_under(_speech(), crowd, snr_db))
    assert scores["music_onset_rate"] > 3.0
    assert scores["music_tuning"] < 0.3
    assert scores["music_score"] < MUSIC_THRESHOLD


def test_reverberant_speech_is_not_music() -> None:
    """A seminar room (T60 0.75 s) rings on after the voice moves: tones, but not music."""
    room = _load(corpus_file("rir", "sa_rir_clap.wav"))
    speech = _speech().astype(np.float64)
    wet = np.convolve(speech, room[np.argmax(np.abs(room)) :])[: speech.shape[0]]
    assert _scores((0.5 * wet / np.abs(wet).max()).astype(np.float32))["music_score"] < MUSIC_THRESHOLD


def test_a_rooms_resonance_excited_syllable_after_syllable_is_not_music(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another reading in the seminar room: its 3.7 kHz mode starts again with each syllable, one pitch
    that lines up on any grid. Counted every time, it reads as music in the first 10 s window."""
    room = _load(corpus_file("rir", "sa_rir_clap.wav"))
    names = (
        "coqui_ljspeech_LJ001-0007.wav",
        "coqui_ljspeech_LJ001-0010.wav",
        "coqui_ljspeech_LJ001-0014.wav",
    )
    speech = np.concatenate([_load(corpus_file("speech", n)) for n in names]).astype(np.float64)
    wet = np.convolve(speech, room[np.argmax(np.abs(room)) :])[: speech.shape[0]]
    x = (0.5 * wet / np.abs(wet).max()).astype(np.float32)
    frames = content_frames(x, analyze_array(x, RATE).speech_mask)
    assert music.content_metrics(frames).metrics["music_score"] < MUSIC_THRESHOLD
    monkeypatch.setattr(music, "PITCH_REPEATS", 10**6)
    assert music.content_metrics(frames).metrics["music_score"] >= MUSIC_THRESHOLD


def test_one_pitch_counts_at_most_a_few_onsets() -> None:
    """Onsets within a quarter semitone of the next lower one are one pitch; it weighs PITCH_REPEATS."""
    cents, weights = music._pitch_weights(np.array([700.0, 10.0, 0.0, 3.0, 300.0, 12.0, 5.0]))
    assert cents.tolist() == [0.0, 3.0, 5.0, 10.0, 12.0, 300.0, 700.0]
    assert music.PITCH_REPEATS == 4
    assert weights.tolist() == pytest.approx([0.8] * 5 + [1.0, 1.0])


def test_hum_alone_has_no_tone_onsets() -> None:
    scores = content_scores(_hum(10.0, 50.0)).metrics
    assert scores["music_onset_rate"] == pytest.approx(0.0, abs=0.2)
    assert scores["music_score"] < 0.1


def test_span_scores_find_the_music_half() -> None:
    """Scores per span: speech alone for 15 s, then the same speech with a bed 10 dB under it."""
    speech = _speech()
    bed = _load(corpus_file("music", "librosa_brahms_hungarian_dance5.ogg"), start_s=3.0, seconds=16.0)
    x = np.concatenate([speech, _under(speech, bed, 10.0)])
    frames = content_frames(x, analyze_array(x, RATE).speech_mask)
    assert frames.scores(0.0, 15.0).metrics["music_score"] < MUSIC_THRESHOLD / 2
    assert frames.scores(15.0, 30.0).metrics["music_score"] >= MUSIC_THRESHOLD
    assert frames.scores(15.0).metrics == frames.scores(15.0, 30.0).metrics


# ---------------------------------------------------------------- singing


def test_a_cappella_singing_is_singing() -> None:
    for name, start_s in (("sms_singing-female.wav", 0.0), ("sms_singing-female.wav", 3.0)):
        sung = _load(corpus_file("music", name), start_s=start_s, seconds=3.0)
        assert _scores(sung)["singing_score"] >= SINGING_THRESHOLD, (name, start_s)


def test_operatic_singing_is_singing() -> None:
    sung = _load(corpus_file("music", "sa_openair_operatic_singing.wav"), seconds=3.5)
    assert _scores(sung)["singing_score"] >= SINGING_THRESHOLD


@pytest.mark.parametrize(
    "name",
    [
        "sms_speech-female.wav",
        "resem_librispeech_1246-124548-0000.flac",
        "resem_librispeech_196-122150-0000.flac",
        "pra_cmu_arctic_us_aew_a0001.wav",
    ],
)
def test_read_speech_is_not_singing(name: str) -> None:
    scores = _scores(_load(corpus_file("speech", name), seconds=8.0))
    assert scores["singing_score"] < SINGING_THRESHOLD
    assert scores["singing_long_ratio"] < 0.5


# ---------------------------------------------------------------- parts on synthetic known answers


def _notes(pitches_hz: list[float], *, note_s: float = 0.3) -> np.ndarray:
    """Harmonic notes (5 partials, soft attack) one after another."""
    n = round(note_s * RATE)
    t = np.arange(n) / RATE
    envelope = np.minimum(1.0, t / 0.01) * np.exp(-t / 0.6)
    parts = [envelope * sum(np.sin(2 * np.pi * k * f * t) / k for k in range(1, 6)) for f in pitches_hz]
    return (0.2 * np.concatenate(parts)).astype(np.float32)


def test_tuning_separates_tuned_from_untuned_notes() -> None:
    rng = np.random.default_rng(7)
    semitones = rng.integers(-12, 13, size=40)
    tuned = _notes([440.0 * 2 ** (s / 12) for s in semitones]).astype(np.float32)
    untuned = _notes([440.0 * 2 ** ((s + rng.uniform(-0.5, 0.5)) / 12) for s in semitones])
    tuned_scores = content_scores(tuned).metrics
    untuned_scores = content_scores(untuned).metrics
    assert tuned_scores["music_tuning"] > 0.7  # harmonics 5 and 7 stray 14 and 31 cents from the grid
    assert untuned_scores["music_tuning"] < 0.3
    assert tuned_scores["music_onset_rate"] == pytest.approx(untuned_scores["music_onset_rate"], rel=0.3)
    # struck notes: their partials attack together (a piano; it counts as far as some tuning is kept)
    assert untuned_scores["music_attack_rate"] > 2.0


def test_yin_finds_the_pitch_of_a_harmonic_tone() -> None:
    t = np.arange(2 * RATE) / RATE
    tone = sum(np.sin(2 * np.pi * k * 220.0 * t) / k for k in range(1, 8)).astype(np.float32)
    frames = content_frames(0.3 * tone)
    assert np.median(frames.f0_hz) == pytest.approx(220.0, rel=0.01)
    assert np.median(frames.aperiodicity) < 0.1
    noise = content_frames(0.3 * np.random.default_rng(1).standard_normal(2 * RATE).astype(np.float32))
    assert np.median(noise.aperiodicity) > 0.5


def _sung_note(cents_of_t: np.ndarray) -> np.ndarray:
    """A harmonic voice-like tone (6 partials) whose pitch follows ``cents_of_t`` (cents above 220 Hz)."""
    hz = 220.0 * 2.0 ** (cents_of_t / 1200.0)
    phase = 2 * np.pi * np.cumsum(hz) / RATE
    return (0.2 * sum(np.sin(k * phase) / k for k in range(1, 7))).astype(np.float32)


def test_vibrato_is_told_from_a_glide() -> None:
    t = np.arange(2 * RATE) / RATE
    speech_mask = np.ones(200, dtype=bool)
    vibrato = content_frames(_sung_note(90.0 * np.sin(2 * np.pi * 5.5 * t)), speech_mask).scores().metrics
    glide = content_frames(_sung_note(-600.0 * t), speech_mask).scores().metrics  # a falling tone, no swing
    assert vibrato["singing_vibrato_ratio"] > 0.9 and vibrato["singing_steady_ratio"] < 0.5
    assert glide["singing_vibrato_ratio"] == 0.0


def test_music_score_from_parts() -> None:
    assert music_score_from_parts(0.0, 1.0, 5.0) == 0.0  # no tones, no music
    assert music_score_from_parts(10.0, 0.0, 0.0) == 0.0  # tones that are neither tuned nor together
    assert music_score_from_parts(10.0, 0.9, 0.0) == 1.0
    assert music_score_from_parts(10.0, 0.2, 5.0) == 1.0  # a piano: stretched partials, struck notes
    assert music_score_from_parts(10.0, 0.0, 5.0) == 0.0  # drips in rain: together, at unrelated pitches
    assert music_score_from_parts(1.0, 0.9, 0.0) < music_score_from_parts(2.0, 0.9, 0.0)


# ---------------------------------------------------------------- streaming, spans, missing values


def test_streaming_does_not_depend_on_the_block_size() -> None:
    """Chunks are cut at fixed frames, so any blocking gives the same frames (here across two chunks)."""
    rng = np.random.default_rng(3)
    x = np.concatenate([_notes([330.0, 440.0, 392.0, 294.0] * 30), 0.01 * rng.standard_normal(RATE)])
    assert x.shape[0] > CHUNK_S * RATE
    whole = content_frames(x)
    for block in (RATE // 3, 7 * RATE):
        meter = ContentMeter()
        for lo in range(0, x.shape[0], block):
            meter.process(x[lo : lo + block])
        frames = meter.frames()
        assert frames.n_frames == whole.n_frames
        np.testing.assert_array_equal(frames.start_frames, whole.start_frames)
        np.testing.assert_array_equal(frames.f0_hz, whole.f0_hz)


def test_frames_are_on_the_content_grid() -> None:
    frames = content_frames(np.zeros(RATE, dtype=np.float32))
    assert frames.n_frames == 1 + (RATE - 1024) // 256
    assert frames.times[0] == pytest.approx(0.032)
    assert np.diff(frames.times)[0] == pytest.approx(music.CONTENT_HOP_S)


def test_too_little_audio_is_none_with_a_reason() -> None:
    out = content_scores(np.zeros(RATE // 4, dtype=np.float32))
    assert out.metrics["music_score"] is None
    assert out.null_reasons["music_score"].startswith("not_measured")
    assert out.metrics["singing_score"] is None


def test_singing_needs_speech() -> None:
    out = content_scores(_notes([440.0] * 10))  # no speech mask: nothing to call singing
    assert out.metrics["singing_score"] is None
    assert out.null_reasons["singing_score"].startswith("no_speech")
    assert out.metrics["music_score"] is not None


def test_meter_rejects_another_rate() -> None:
    with pytest.raises(ValueError, match="16000"):
        ContentMeter(sample_rate=8000)
