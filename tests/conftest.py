"""Shared test fixtures: where the real recordings live, a small PyAV encoder for making test files, and
the local fake of the provider APIs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from fake_providers import FakeProviders

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CORPUS = Path(os.environ.get("VOICEPREP_CORPUS") or DATA_DIR)
"""The larger corpus of real recordings (``VOICEPREP_CORPUS``, default ``../shared/data``)."""
NO_CORPUS = (
    f"no recordings corpus at {CORPUS}: place the shared data folder there (or set VOICEPREP_CORPUS) "
    "to run the tests that need it"
)


def _reads_corpus_on_import(path: Path) -> bool:
    """A test module that names ``../shared`` paths at module level (it cannot even be imported without them)."""
    text = path.read_text(encoding="utf-8")
    return '/ "shared"' in text or "load_corpus" in text


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """On a clone without the corpus, modules that read it are left out (listed in the summary line)."""
    if CORPUS.is_dir() or collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    return True if _reads_corpus_on_import(collection_path) else None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line saying what was skipped and why, when the corpus is absent."""
    if not CORPUS.is_dir():
        skipped = len(terminalreporter.stats.get("skipped", []))
        here = Path(__file__).resolve().parent  # workers collect under xdist: list the modules again here
        modules = sorted(p.name for p in here.rglob("test_*.py") if _reads_corpus_on_import(p))
        terminalreporter.write_line(
            f"{skipped} tests skipped and {len(modules)} modules left out ({', '.join(modules)}): {NO_CORPUS}"
        )


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only folder of real recordings (``../shared/data`` from the repo root)."""
    if not CORPUS.is_dir():
        pytest.skip(NO_CORPUS)
    return CORPUS


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


DAMAGED_MP3_SOURCE = Path(__file__).resolve().parents[1] / "data" / "samples" / "alice" / "noisy_market.mp3"


@pytest.fixture
def damaged_mp3(tmp_path: Path) -> Path:
    """A real MP3 (``data/samples/alice/noisy_market.mp3``) with 200 zero bytes inserted in its middle.

    Every frame still decodes (mpg123 skips the zeros), but while reading it mpg123, inside libsndfile,
    writes ``Note: Illegal Audio-MPEG-Header 0x00000000 at offset 77322.`` and two more lines to fd 2.
    """
    data = DAMAGED_MP3_SOURCE.read_bytes()
    middle = len(data) // 2
    path = tmp_path / "damaged.mp3"
    path.write_bytes(data[:middle] + bytes(200) + data[middle:])
    return path
