"""Shared test fixtures: the larger corpus of real recordings (``_corpus.py`` says where recordings are
found), a small PyAV encoder for making test files, and the local fake of the provider APIs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from _corpus import NO_CORPUS, corpus_dir
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
