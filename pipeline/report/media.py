"""Read audio only to draw it and to cut listening excerpts; nothing here measures or judges.

Everything is bounded: a waveform is a min/max envelope of a fixed number of columns computed while the
file streams past in blocks; sources longer than :data:`LONG_SOURCE_S` are read only around the spans the
clips took; a spectrogram looks at a fixed number of frames whatever the clip's length; an excerpt is at
most :data:`EXCERPT_MAX_S` long.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.analysis.base import merge_spans
from pipeline.errors import InvalidArgument

LONG_SOURCE_S = 300.0
"""Sources longer than this are drawn only around the spans the clips used (plus :data:`CONTEXT_S`)."""

CONTEXT_S = 3.0
"""Seconds of source kept on each side of a used span, in drawings of long sources and in excerpts."""

EXCERPT_MAX_S = 75.0
"""Longest source excerpt written for listening."""

EXCERPT_BITRATE = 64_000
"""MP3 bit rate of the excerpts, per channel (stereo sources keep both channels at twice this)."""

EXCERPT_MP3_QUALITY = 7
"""LAME's quality setting for the excerpts (0 best and slowest, 9 fastest): 7 encodes in 0.6 of the time
of LAME's default at the same bit rate and file size; the excerpts are for listening to the source, not
measured."""

EXCERPT_RATE = 32_000
"""Highest sample rate of an excerpt: faster sources are resampled to it (soxr). MP3 at 64 kb/s per
channel keeps little above 15 kHz at any rate (a 48 kHz encode of the realistic hour: -3 dB at 15-16 kHz,
nothing above 16 kHz; at 32 kHz: within 1 dB of it up to 15 kHz, -13 dB at 15-16 kHz), and LAME encodes
32 kHz in 0.6 of the time of 48 kHz (36 s of stereo: 0.90 -> 0.55 s of CPU) at the same size."""

_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000)
_BLOCK = 65536


def envelope(
    path: Path,
    *,
    duration_s: float,
    columns: int = 500,
    regions: Sequence[tuple[float, float]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Stream ``path`` (or only ``regions`` of it) into a min/max envelope of ``columns`` columns.

    Returns ``(lo, hi)``: the min and max of the samples (over all channels) in ``columns`` equal slices
    of ``[0, duration_s]``; columns that were not read (outside ``regions``) hold NaN. Memory is one decoded block plus the envelope, whatever the file's length.

    ``duration_s`` (positive) is the file's length as the run recorded it.

    Raises:
        AudioReadError: the file cannot be decoded.
    """
    from pipeline.audio.io import AudioReader

    lo = np.full(columns, np.inf)
    hi = np.full(columns, -np.inf)
    spans = [(0.0, float(duration_s))] if regions is None else [(max(0.0, a), b) for a, b in regions]
    with AudioReader(path, max_input_s=None) as reader:
        rate = reader.info.sample_rate
        per_frame = columns / (duration_s * rate)
        for start_s, end_s in spans:
            first = round(start_s * rate)
            position = first
            for block in reader.blocks(block_frames=_BLOCK, start_s=start_s, end_s=end_s):
                n = len(block)
                cols = np.minimum(((np.arange(n) + position) * per_frame).astype(np.int64), columns - 1)
                position += n
                edges = np.flatnonzero(np.diff(cols)) + 1
                idx = np.concatenate(([0], edges))
                ids = cols[idx]
                # Reduce each column's slice over time first, then its few channels: the same extremes
                # as reducing the channels of every frame first, at a thirtieth of the cost.
                bmin = np.minimum.reduceat(block, idx, axis=0).min(axis=1)
                bmax = np.maximum.reduceat(block, idx, axis=0).max(axis=1)
                lo[ids] = np.minimum(lo[ids], bmin)
                hi[ids] = np.maximum(hi[ids], bmax)
    lo[~np.isfinite(lo)] = np.nan
    hi[~np.isfinite(hi)] = np.nan
    return lo, hi


def regions_for(
    duration_s: float, spans: Sequence[tuple[float, float]], *, long_s: float = LONG_SOURCE_S
) -> list[tuple[float, float]] | None:
    """The parts of a source to read for its drawing: None (all of it) for a short source, else the used
    spans widened by :data:`CONTEXT_S` and merged (an empty list when nothing was used)."""
    if duration_s <= long_s:
        return None
    wide = [(max(0.0, a - CONTEXT_S), min(duration_s, b + CONTEXT_S)) for a, b in spans]
    return merge_spans(wide, gap_s=CONTEXT_S)


def spectrogram(
    path: Path, *, columns: int = 360, n_fft: int = 1024, rows: int = 64
) -> tuple[np.ndarray, int, float]:
    """Level in dB of ``rows`` linear frequency bands (0 to Nyquist) at ``columns`` evenly spaced times.

    Returns ``(db, sample_rate, duration_s)`` with ``db`` shaped ``(rows, columns)``, row 0 the lowest
    band. Channels are averaged. Work is bounded by ``columns`` FFTs whatever the clip's length.
    """
    from pipeline.audio.io import read

    data, rate = read(path)
    mono = data.mean(axis=1)
    duration = len(mono) / rate if rate else 0.0
    if len(mono) < n_fft:
        mono = np.pad(mono, (0, n_fft - len(mono)))
    starts = np.linspace(0, len(mono) - n_fft, columns).astype(np.int64)
    frames = mono[starts[:, None] + np.arange(n_fft)[None, :]] * np.hanning(n_fft)[None, :]
    power = np.abs(np.fft.rfft(frames, axis=1))[:, : n_fft // 2] ** 2
    bands = power.reshape(columns, rows, -1).mean(axis=2).T
    db = 10.0 * np.log10(bands + 1e-12)
    return db.astype(np.float32), int(rate), float(duration)


def excerpt_name(key: str, start_s: float, end_s: float) -> str:
    """File name of an excerpt: a hash of the source's identity (sha256 or path) and the span."""
    digest = hashlib.sha256(f"v1|{key}|{start_s:.3f}|{end_s:.3f}".encode()).hexdigest()[:20]
    return f"src-{digest}.mp3"


def excerpt_span(start_s: float, end_s: float, duration_s: float | None) -> tuple[float, float]:
    """The span to cut for listening: the used span with :data:`CONTEXT_S` around it, at most
    :data:`EXCERPT_MAX_S` long (then starting at the span's start)."""
    a = max(0.0, start_s - CONTEXT_S)
    b = end_s + CONTEXT_S
    if duration_s is not None:
        b = min(b, duration_s)
    if b - a > EXCERPT_MAX_S:
        a = max(0.0, start_s - 1.0)
        b = a + EXCERPT_MAX_S
    return round(a, 3), round(b, 3)


def write_excerpt(source: Path, target: Path, *, start_s: float, end_s: float) -> Path:
    """Cut ``[start_s, end_s)`` of ``source`` into an MP3 at ``target`` (atomic), unless it exists.

    Up to two channels are kept as they are (a silent first channel stays audible as such); more are
    averaged to mono. The rate is kept when MP3 allows it and it is at most :data:`EXCERPT_RATE`, else
    resampled to that. 20 ms fades keep the cut edges from clicking.
    """
    from pipeline.audio.io import read_window, write
    from pipeline.audio.resample import resample

    if target.is_file():
        return target
    data, rate = read_window(source, start_s=start_s, end_s=end_s)
    if len(data) == 0:
        raise InvalidArgument(f"the span {start_s:.2f}-{end_s:.2f} s of {source.name} holds no audio")
    if data.shape[1] > 2:
        data = data.mean(axis=1, keepdims=True)
    if rate not in _MP3_RATES:
        data, rate = resample(data, in_rate=rate, out_rate=EXCERPT_RATE), EXCERPT_RATE
    fade = min(len(data) // 2, round(0.02 * rate))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)[:, None]
        data = data.copy()
        data[:fade] *= ramp
        data[-fade:] *= ramp[::-1]
    target.parent.mkdir(parents=True, exist_ok=True)
    return write(
        target,
        data,
        rate,
        format="mp3",
        bitrate=EXCERPT_BITRATE * data.shape[1],
        mp3_quality=EXCERPT_MP3_QUALITY,
    )
