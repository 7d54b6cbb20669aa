"""Frame energy on the shared 10 ms grid, the band a delivered clip keeps, the noise floor, DC offset.

Frame ``i`` covers samples ``[i * 160, (i + 1) * 160)`` of the 16 kHz analysis view. Only complete frames
are reported: a tail shorter than 10 ms at the very end of a stream is ignored, the same rule every
analyser on the grid follows, so frame arrays from different analysers line up index by index.

The *speech band* is what a delivered clip keeps of the analysis view: everything above the render's
DC/rumble high-pass (:data:`HIGHPASS_HZ`, defined here because the render, a later stage, applies it and
the measures must see what it leaves). :class:`SpeechBandFilter` gives it as a stream.
"""

from __future__ import annotations

import numpy as np

from pipeline.analysis.base import ANALYSIS_RATE, FRAME_SAMPLES, Analysis, whole_frames
from pipeline.audio import filters
from pipeline.audio.arguments import signal as checked_signal

DB_FLOOR = -120.0
"""Lowest level reported for a frame (dBFS): digital silence is -120 dB, never -inf."""

_POWER_FLOOR = 10.0 ** (DB_FLOOR / 10.0)

MIN_NOISE_FRAMES = 30
"""Non-speech frames (0.3 s) needed before the noise floor is taken from non-speech frames only."""

MIN_FRAMES = 10
"""Frames (0.1 s) needed for any noise-floor estimate at all."""

HIGHPASS_HZ = 70.0
"""Cut-off of the render's DC/rumble high-pass (Hz); speech has no useful content below about 80 Hz. The
measures of noise (``snr_db``, ``rumble_db``, ``hum_db``) split the audio at the same filter."""

HIGHPASS_ORDER = 4
"""Butterworth order of that high-pass; the render runs it forwards and backwards (``sosfiltfilt``): 48 dB
per octave, zero phase, a power response of ``|H(f)|^4``."""


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


def highpass_sos(rate: int) -> np.ndarray:
    """The render's DC/rumble high-pass at ``rate`` (second-order sections): :data:`HIGHPASS_ORDER`,
    Butterworth, :data:`HIGHPASS_HZ`."""
    return filters.butter_highpass_sos(HIGHPASS_ORDER, HIGHPASS_HZ, rate)


class SpeechBandFilter:
    """Streaming high-pass of the 16 kHz view with the power response of the render's (zero-phase) one.

    The render runs its high-pass forwards and backwards; a stream can only run forwards, so this runs
    the same sections twice in a row (state kept across blocks): the same magnitude response ``|H|^2``,
    hence the same power in every band, delayed by the filter's group delay (a few ms above 100 Hz).
    """

    def __init__(self, *, sample_rate: int = ANALYSIS_RATE) -> None:
        sos = highpass_sos(sample_rate)
        self._sos = np.concatenate([sos, sos])
        self._zi: np.ndarray | None = None

    def process(self, block: np.ndarray) -> np.ndarray:
        """The next block of samples, filtered (float64, same length)."""
        x = block.astype(np.float64, copy=False)
        if self._zi is None:
            if not x.size:
                return x
            # Start as if the first sample had always been there (a DC offset or a recording that starts
            # mid-sound): from rest, the filter would ring for 50 ms and the VAD take it for a word.
            self._zi = filters.sosfilt_zi(self._sos) * x[0]
        y, self._zi = filters.sosfilt(self._sos, x, zi=self._zi)
        return y


def speech_band(x: np.ndarray) -> np.ndarray:
    """A whole 16 kHz signal through :class:`SpeechBandFilter` (one shot)."""
    return SpeechBandFilter().process(checked_signal("x", x, mono=True))


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
