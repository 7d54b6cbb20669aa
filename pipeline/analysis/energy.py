"""Frame energy on the shared 10 ms grid (full band and below the audible band), the noise floor, DC offset.

Frame ``i`` covers samples ``[i * 160, (i + 1) * 160)`` of the 16 kHz analysis view. Only complete frames
are reported: a tail shorter than 10 ms at the very end of a stream is ignored, the same rule every
analyser on the grid follows, so frame arrays from different analysers line up index by index.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from pipeline.analysis.base import ANALYSIS_RATE, FRAME_S, FRAME_SAMPLES, Analysis, whole_frames
from pipeline.audio.arguments import signal as checked_signal

DB_FLOOR = -120.0
"""Lowest level reported for a frame (dBFS): digital silence is -120 dB, never -inf."""

_POWER_FLOOR = 10.0 ** (DB_FLOOR / 10.0)

MIN_NOISE_FRAMES = 30
"""Non-speech frames (0.3 s) needed before the noise floor is taken from non-speech frames only."""

MIN_FRAMES = 10
"""Frames (0.1 s) needed for any noise-floor estimate at all."""

LOW_BAND_HZ = 20.0
"""Upper edge of the band below hearing (and below any voice) that :class:`LowBandEnergy` measures."""

LOW_BAND_ORDER = 4
"""Order of the Butterworth low-pass of :class:`LowBandEnergy` (24 dB/octave: -32 dB at 50 Hz)."""


def frame_db(power: np.ndarray) -> np.ndarray:
    """Mean power (per frame) to level in dBFS: ``10 * log10``, floored at :data:`DB_FLOOR` (never ``-inf``)."""
    p = np.maximum(np.asarray(power, dtype=np.float64), _POWER_FLOOR)
    return 10.0 * np.log10(p)


class FrameEnergy:
    """Streaming mean power per 10 ms frame of the 16 kHz analysis view.

    ``process`` accepts blocks of any length; samples that do not yet fill a frame are kept for the next
    block. Memory grows with the number of frames only (one float per frame).
    """

    def __init__(self, *, frame_samples: int = FRAME_SAMPLES) -> None:
        self._frame = frame_samples
        self._rest = np.zeros(0, dtype=np.float64)
        self._chunks: list[np.ndarray] = []

    def process(self, block: np.ndarray) -> None:
        """Add the next block of samples (1-D float, any length)."""
        frames, self._rest = whole_frames(self._rest, block.astype(np.float64, copy=False), self._frame)
        if frames.shape[0]:
            self._chunks.append(np.mean(frames * frames, axis=1))

    def finish(self) -> np.ndarray:
        """Return the mean power of every complete frame (float64; a trailing partial frame is dropped)."""
        if not self._chunks:
            return np.zeros(0, dtype=np.float64)
        return np.concatenate(self._chunks)


def frame_power(x: np.ndarray) -> np.ndarray:
    """Mean power of each complete 10 ms frame of a whole 16 kHz signal (one-shot :class:`FrameEnergy`)."""
    meter = FrameEnergy()
    meter.process(checked_signal("x", x, mono=True))
    return meter.finish()


class LowBandEnergy:
    """Streaming mean power per 10 ms frame of the signal below :data:`LOW_BAND_HZ` (default 20 Hz).

    A voice puts little energy below about 50 Hz, so loud energy down there (wind, handling bumps,
    building rumble, a drifting DC level) is noise that, unlike the rest of the noise, can be measured
    *during* speech: :func:`pipeline.analysis.snr.vad_snr_db` uses it that way. The signal is averaged over
    groups of four samples (a cheap decimation: the 4-sample mean has a zero at a quarter of the rate, so
    nothing aliases into the low band), low-passed (Butterworth, :data:`LOW_BAND_ORDER`, state kept across
    blocks) and framed like :class:`FrameEnergy`, so the two arrays have the same length and line up frame
    by frame (the filter delays the band by about 20 ms, two frames).
    """

    def __init__(self, *, cutoff_hz: float = LOW_BAND_HZ, sample_rate: int = ANALYSIS_RATE) -> None:
        frame = round(sample_rate * FRAME_S)
        self._step = 4 if frame % 4 == 0 else 1
        rate = sample_rate / self._step
        self._sos = signal.butter(LOW_BAND_ORDER, cutoff_hz, btype="lowpass", fs=rate, output="sos")
        self._zi = np.zeros((self._sos.shape[0], 2))
        self._rest = np.zeros(0, dtype=np.float64)
        self._frames = FrameEnergy(frame_samples=frame // self._step)

    def process(self, block: np.ndarray) -> None:
        """Add the next block of samples (1-D float, any length)."""
        groups, self._rest = whole_frames(self._rest, block.astype(np.float64, copy=False), self._step)
        if groups.shape[0]:
            y, self._zi = signal.sosfilt(self._sos, groups.mean(axis=1), zi=self._zi)
            self._frames.process(y)

    def finish(self) -> np.ndarray:
        """Return the low-band mean power of every complete frame (a trailing partial frame is dropped)."""
        return self._frames.finish()


def low_band_power(x: np.ndarray, *, cutoff_hz: float = LOW_BAND_HZ) -> np.ndarray:
    """Low-band mean power of each complete 10 ms frame of a whole 16 kHz signal (one-shot :class:`LowBandEnergy`)."""
    meter = LowBandEnergy(cutoff_hz=cutoff_hz)
    meter.process(checked_signal("x", x, mono=True))
    return meter.finish()


def noise_floor_dbfs(frame_db: np.ndarray, speech_mask: np.ndarray | None) -> Analysis:
    """Estimate the background level (key ``noise_floor_dbfs``) from per-frame levels.

    With at least :data:`MIN_NOISE_FRAMES` non-speech frames, the floor is the 20th percentile of their
    levels (low enough to ignore speech leaking into the mask, high enough to be stable). Otherwise it is
    the 10th percentile of all frames, which is still the background as long as speech fills less than
    about 90 % of the recording. Fewer than :data:`MIN_FRAMES` frames: ``None`` with a reason.
    """
    db = np.asarray(frame_db, dtype=np.float64)
    out = Analysis()
    if speech_mask is not None:
        quiet = db[~np.asarray(speech_mask, dtype=bool)]
        if quiet.size >= MIN_NOISE_FRAMES:
            out.put("noise_floor_dbfs", float(np.percentile(quiet, 20.0)))
            return out
    if db.size >= MIN_FRAMES:
        out.put("noise_floor_dbfs", float(np.percentile(db, 10.0)))
        return out
    out.put("noise_floor_dbfs", None, why=f"not_measured: only {db.size} frames (need {MIN_FRAMES})")
    return out


class DcOffsetMeter:
    """Streaming DC offset: the mean sample value of each channel.

    Accepts 1-D (mono) or 2-D ``(samples, channels)`` float blocks at any rate. ``finish`` reports the
    channel mean with the largest magnitude (signed), key ``dc_offset``.
    """

    def __init__(self) -> None:
        self._sum: np.ndarray | None = None
        self._count = 0

    def process(self, block: np.ndarray) -> None:
        """Add the next block (1-D mono or 2-D samples x channels)."""
        arr2 = block.reshape(block.shape[0], -1).astype(np.float64, copy=False)
        sums = arr2.sum(axis=0)
        self._sum = sums if self._sum is None else self._sum + sums
        self._count += arr2.shape[0]

    def finish(self) -> Analysis:
        """Return ``dc_offset`` (``None`` with a reason when no samples were seen)."""
        out = Analysis()
        if self._sum is None or self._count == 0:
            out.put("dc_offset", None, why="empty: no samples")
            return out
        means = self._sum / self._count
        out.put("dc_offset", float(means[int(np.argmax(np.abs(means)))]))
        return out


def dc_offset(x: np.ndarray) -> Analysis:
    """DC offset of a whole signal (one-shot :class:`DcOffsetMeter`)."""
    meter = DcOffsetMeter()
    meter.process(checked_signal("x", x))
    return meter.finish()
