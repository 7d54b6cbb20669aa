"""Shared test fixtures: the larger corpus of real recordings (``_corpus.py`` says where recordings are
found), a small PyAV encoder for making test files, the local fake of the provider APIs, and a process
that runs ``voiceprep`` commands in forks of itself (``_kill_zygote.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from _cli import process_env
from _corpus import NO_CORPUS, corpus_dir
from _kill_zygote import Zygote
from fake_providers import FakeProviders


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    return longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line for the tests skipped because a recording is in neither corpus (they are not itemised)."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if NO_CORPUS in _skip_reason(r)]
    if skipped:
        terminalreporter.write_line(f"{len(skipped)} tests skipped: {NO_CORPUS}")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The larger corpus of real recordings (``VOICEPREP_CORPUS``, default ``../shared/data``), whole.

    For tests about the corpus itself; a test that reads a few recordings uses ``_corpus.corpus_file``,
    which also finds the repository's own copies.
    """
    return corpus_dir()


READING = "speech/resem_librispeech_3080-5032-0006.flac"
"""A 16.5 s LibriSpeech reading (speaker 3080, 16 kHz) for the cause-of-rejection cases of issue 8."""


def _active_power(x: np.ndarray, rate: int) -> float:
    """Mean power of the 10 ms frames within 40 dB of the loudest one (the active speech)."""
    n = rate // 100
    frames = (x[: len(x) // n * n].reshape(-1, n) ** 2).mean(axis=1)
    return float(frames[frames > frames.max() * 1e-4].mean())


@pytest.fixture(scope="session")
def drowned_reading(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reading under white noise at -2 dB SNR (active speech power over noise power), 16 kHz WAV:
    the voice detector finds only about 2.5 s of its 15 s of speech."""
    import soundfile as sf

    x, rate = sf.read(str(shared_data / READING), dtype="float64")
    noise = np.random.default_rng(8).standard_normal(len(x))
    noise *= np.sqrt(_active_power(x, rate) / np.mean(noise**2) / 10 ** (-2.0 / 10))
    y = x + noise
    path = tmp_path_factory.mktemp("drowned") / "drowned_reading.wav"
    sf.write(str(path), (y * 0.9 / np.max(np.abs(y))).astype(np.float32), rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def short_reading(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 2.8 s of the reading's speech, then the recording's own quiet to 16.5 s: the speech
    itself is short, and the recording is clean."""
    import soundfile as sf

    x, rate = sf.read(str(shared_data / READING), dtype="float64")
    n = rate // 100
    frames = (x[: len(x) // n * n].reshape(-1, n) ** 2).mean(axis=1)
    loud = np.flatnonzero(frames > frames.max() * 1e-4)
    start = int(loud[0]) * n
    quiet = x[: max(start - n, n)]  # the room before the first word
    speech = x[start : start + round(2.8 * rate)]
    fade = np.linspace(1.0, 0.0, n)
    speech[-n:] *= fade
    tail = np.resize(quiet, len(x) - len(speech) - start)
    y = np.concatenate([x[:start], speech, tail])
    path = tmp_path_factory.mktemp("short") / "short_reading.wav"
    sf.write(str(path), y.astype(np.float32), rate, subtype="PCM_16")
    return path


AudioTrack = tuple[np.ndarray, int, str, int | None]  # (data (n, ch) float, rate, encoder, bit rate)


def _encode_with_av(
    path: Path,
    container_format: str,
    tracks: Sequence[AudioTrack],
    *,
    video_frames: int = 0,
    video_codec: str = "mpeg4",
) -> Path:
    """Write ``tracks`` (and optionally a small video track first) into one container with PyAV.

    Independent of ``pipeline.audio.io.write`` so that round trips do not test the writer against itself.
    """
    with av.open(str(path), mode="w", format=container_format) as out:
        if video_frames:
            video = out.add_stream(video_codec, rate=10)
            video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        streams = []
        for data, rate, encoder, bit_rate in tracks:
            channels = data.shape[1]
            stream = out.add_stream(encoder, rate=rate)
            stream.layout = {1: "mono", 2: "stereo"}[channels]
            if bit_rate:
                stream.bit_rate = bit_rate
            streams.append(stream)
        if video_frames:
            for index in range(video_frames):
                image = np.full((48, 64, 3), (index * 20) % 256, dtype=np.uint8)
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = index
                for packet in video.encode(frame):
                    out.mux(packet)
        for stream, (data, rate, _, _) in zip(streams, tracks, strict=True):
            layout = stream.layout.name
            planar = np.ascontiguousarray(data.T, dtype=np.float32)
            for offset in range(0, planar.shape[1], 2048):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(planar[:, offset : offset + 2048]), format="fltp", layout=layout
                )
                frame.sample_rate = rate
                frame.time_base = Fraction(1, rate)
                frame.pts = offset
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        if video_frames:
            for packet in video.encode(None):
                out.mux(packet)
    return path


@pytest.fixture(scope="session")
def av_encode() -> Callable[..., Path]:
    """``av_encode(path, container_format, tracks, *, video_frames=0, video_codec="mpeg4") -> path``."""
    return _encode_with_av


@pytest.fixture
def fake() -> Iterator[FakeProviders]:
    """A running local fake of the provider APIs (``tests/fake_providers.py``); after the test, it must
    have met no bug of its own."""
    with FakeProviders() as server:
        yield server
        assert not server.errors, server.errors[0]


DAMAGED_MP3_SOURCE = Path(__file__).resolve().parents[1] / "data" / "samples" / "alice" / "noisy_street.mp3"


@pytest.fixture
def damaged_mp3(tmp_path: Path) -> Path:
    """A real MP3 (``data/samples/alice/noisy_street.mp3``) with 200 zero bytes inserted in its middle.

    Every frame still decodes (mpg123 skips the zeros), but while reading it mpg123, inside libsndfile,
    writes ``Note: Illegal Audio-MPEG-Header 0x00000000 at offset 62694.`` and two more lines to fd 2.
    """
    data = DAMAGED_MP3_SOURCE.read_bytes()
    middle = len(data) // 2
    path = tmp_path / "damaged.mp3"
    path.write_bytes(data[:middle] + bytes(200) + data[middle:])
    return path


@pytest.fixture(scope="session")
def zygote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zygote]:
    """A process that imported voiceprep once and runs each ``voiceprep`` command in a fork of itself,
    killed at a chosen event when asked (``tests/_kill_zygote.py``); one per test process."""
    from pipeline.rules.families import ENV_FAMILIES_DIR

    z = Zygote(tmp_path_factory.mktemp("zygote") / "commands.log", process_env(drop=[ENV_FAMILIES_DIR]))
    yield z
    z.close()
