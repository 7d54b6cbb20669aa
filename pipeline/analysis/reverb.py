"""Reverberation: a blind decay-time estimate (``rt60_s``) and a 0-1 reverberation score (``reverb_score``).

Method (see ``docs/reverb.md`` for the validation numbers and limits):

* While streaming, each 10 ms frame of the shared grid is reduced to its power in five sub-bands
  (250 Hz to 7.5 kHz, octave-wide), using a 20 ms Hann window that ends at the end of the frame.
  Only these five float32 numbers per frame are kept.
* ``rt60_s``: in every band the smoothed log-energy envelope is searched for *free decays*: runs that
  start at least 20 dB above the band's noise floor and keep falling (within 0.5 dB) for at least
  100 ms (or 50 ms if they fall by 10 dB), cut 10 dB above the noise floor. Each run's least-squares
  slope in dB/s gives a decay time ``60 / |slope|``; the estimate is the median over all runs of all
  bands (the decay-rate distribution idea of Ratnam et al. and Löllmann et al.). Fewer than five runs
  give ``None``.
* ``reverb_score``: an effective decay time (the geometric mean of the free-decay median and an
  *offset decay time* derived from the late/early level ratio 100 ms after the steepest speech offsets)
  mapped through a logistic curve in log-time: 0 is dry, 1 very reverberant, 0.5 at 0.5 s.

Cost (issue 3): 0.5 s per hour on one core (1.2 s before; overlapping windows are views, spectra are
computed 256 frames at a time and only the bands' bins are squared); ``finish`` works on one band at a
time, about 10 MB for an hour.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import scipy.fft

from pipeline.analysis.base import (
    ANALYSIS_RATE,
    FRAME_S,
    FRAME_SAMPLES,
    Analysis,
    fit_mask,
    runs,
    whole_frames,
)

__all__ = [
    "BAND_EDGES_HZ",
    "MIN_FREE_DECAYS",
    "ReverbMeter",
    "reverb_score_from_decay_time",
]

BAND_EDGES_HZ: tuple[float, ...] = (250.0, 500.0, 1000.0, 2000.0, 4000.0, 7500.0)
"""Edges of the sub-bands whose energy envelopes are analysed (Hz)."""

MIN_FREE_DECAYS = 5
"""Fewest free decays for which ``rt60_s`` is reported."""

_WINDOW_SAMPLES = 2 * FRAME_SAMPLES
_FRAMES_PER_BATCH = 256
_FLOOR_PERCENTILE = 5.0
_POWER_EPS = 1e-20  # -200 dB: digital silence sits here instead of at -inf
_SILENCE_DB = -190.0  # frames below this are digital silence and do not count for the noise floor
_SMOOTH_FRAMES = 3
_DECAY_START_DB = 20.0  # a free decay starts at least this far above the band's noise floor
_DECAY_END_MARGIN_DB = 10.0  # and is cut this far above it, before the floor bends the slope
_DECAY_TOLERANCE_DB = 0.5  # a frame may rise this much without ending the decay (envelope ripple)
_DECAY_SKIP_DB = 3.0  # the fit starts this far below the decay's first frame (skips the direct sound)
_DECAY_MIN_FRAMES = 10  # 100 ms of falling envelope
_DECAY_SHORT_FRAMES = 5  # or 50 ms if the fall is steep: otherwise a noise floor close to the speech
_DECAY_SHORT_DROP_DB = 10.0  # would leave only slow decays and bias the estimate upwards
_OFFSET_PEAK_DB = 30.0  # offsets used for the late/early ratio start this far above the floor
_OFFSET_LAG_FRAMES = 10  # the late level is read 100 ms after the offset
_OFFSET_PERCENTILE = 90.0  # the steepest tenth of offsets
_OFFSET_MIN_PEAKS = 10  # per band
_MASK_DILATION_FRAMES = 3  # a decay may start up to 30 ms after the last speech frame
_MIN_FRAMES = 50  # below 0.5 s there is nothing to look at
_SCORE_MIDPOINT_S = 0.5
_SCORE_STEEPNESS = 3.0


def reverb_score_from_decay_time(decay_time_s: float) -> float:
    """Map an effective decay time (seconds) to a reverberation score in (0, 1).

    ``score = 1 / (1 + (0.5 / t) ** 3)``: strictly increasing, 0.06 at 0.2 s, 0.5 at 0.5 s,
    0.80 at 0.8 s, 0.93 at 1.2 s (``decay_time_s`` > 0).
    """
    return 1.0 / (1.0 + (_SCORE_MIDPOINT_S / float(decay_time_s)) ** _SCORE_STEEPNESS)


def _band_bins(sample_rate: int) -> list[tuple[int, int]]:
    """FFT bin ranges [lo, hi) of the analysis bands for a ``_WINDOW_SAMPLES``-point FFT."""
    hz_per_bin = sample_rate / _WINDOW_SAMPLES
    return [(round(lo / hz_per_bin), round(hi / hz_per_bin)) for lo, hi in itertools.pairwise(BAND_EDGES_HZ)]


class ReverbMeter:
    """Streaming reverberation analyser on the 16 kHz mono analysis view.

    Feed blocks of any length with :meth:`process`, then call :meth:`finish`. Memory grows by five
    float32 values per 10 ms frame; the audio itself is not kept. A trailing partial frame is ignored.
    """

    def __init__(self, *, sample_rate: int = ANALYSIS_RATE) -> None:
        self.sample_rate = sample_rate
        self._window = np.hanning(_WINDOW_SAMPLES + 2)[1:-1].astype(np.float64)
        # scale so that band powers are mean squares: a full-scale sine reads 0.5 in its band
        self._scale = 2.0 / (_WINDOW_SAMPLES * float(np.sum(self._window**2)))
        self._bins = _band_bins(sample_rate)
        # Adjacent bands share their edge bin, so one reduceat over bins [first, stop) sums them all.
        self._first_bin, self._stop_bin = self._bins[0][0], self._bins[-1][1]
        self._interleaved_starts = np.array([2 * (lo - self._first_bin) for lo, _ in self._bins])
        self._pending = np.zeros(FRAME_SAMPLES, dtype=np.float32)  # the frame before the next one
        self._buffer = np.zeros(0, dtype=np.float32)  # samples of the next, still incomplete, frame
        self._chunks: list[np.ndarray] = []
        self._n_frames = 0

    @property
    def n_frames(self) -> int:
        """Number of complete 10 ms frames seen so far."""
        return self._n_frames

    def process(self, block: np.ndarray) -> None:
        """Add a block of mono samples (float, 16 kHz, any length, finite values)."""
        if block.size == 0:
            return
        frames, self._buffer = whole_frames(self._buffer, block.astype(np.float32, copy=False), FRAME_SAMPLES)
        n_new = frames.shape[0]
        if n_new == 0:
            return
        history = np.concatenate([self._pending, frames.reshape(-1)])
        # Frame i's window: the frame before it and the frame itself (a view: windows overlap by half).
        windows = np.lib.stride_tricks.sliding_window_view(history, _WINDOW_SAMPLES)[::FRAME_SAMPLES]
        stored = np.empty((n_new, len(self._bins)), dtype=np.float32)
        # bounded temporaries (they stay in the cache) whatever the block length
        for first in range(0, n_new, _FRAMES_PER_BATCH):
            chunk = windows[first : first + _FRAMES_PER_BATCH]
            weighted = np.multiply(chunk, self._window)  # float64
            spectra = scipy.fft.rfft(weighted, axis=1, workers=1, overwrite_x=True)
            # Only the bins of the bands; real and imaginary parts interleaved, summed per band directly.
            squares = np.square(spectra[:, self._first_bin : self._stop_bin].view(np.float64))
            powers = np.add.reduceat(squares, self._interleaved_starts, axis=1)
            powers *= self._scale
            stored[first : first + chunk.shape[0]] = powers
        self._chunks.append(stored)
        self._n_frames += n_new
        self._pending = history[-FRAME_SAMPLES:].copy()

    def band_powers(self) -> np.ndarray:
        """Per-frame sub-band powers so far, shape ``(n_frames, n_bands)``, float32 (a copy)."""
        if not self._chunks:
            return np.zeros((0, len(self._bins)), dtype=np.float32)
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks, axis=0)]
        return self._chunks[0].copy()

    def finish(self, speech_mask: np.ndarray | None = None) -> Analysis:
        """Estimate ``rt60_s`` and ``reverb_score`` from everything processed so far.

        ``speech_mask`` (optional) is a boolean array on the same 10 ms grid, True for speech; decays and
        offsets must then start in speech (or within 30 ms after it). Without a mask, a level well above
        the noise floor is the only requirement. The meter may keep receiving blocks afterwards.
        """
        mask = None if speech_mask is None else fit_mask(np.asarray(speech_mask, dtype=bool), self._n_frames)
        result = Analysis()
        if self._n_frames < _MIN_FRAMES:
            why = f"not_measured: too little audio ({self._n_frames * FRAME_S:.2f} s, need {_MIN_FRAMES * FRAME_S:.1f} s)"
            result.put("rt60_s", None, why=why)
            result.put("reverb_score", None, why=why)
            result.put("reverb_free_decays", 0)
            return result
        if mask is not None and not mask.any():
            why = "no_speech: the speech mask marks no speech"
            result.put("rt60_s", None, why=why)
            result.put("reverb_score", None, why=why)
            result.put("reverb_free_decays", 0)
            return result
        allowed = _dilate(mask, _MASK_DILATION_FRAMES) if mask is not None else None

        # One band at a time: a long recording's frames x bands would otherwise be copied several times.
        decay_times: list[np.ndarray] = []
        offset_drops: list[float] = []
        for band in range(len(self._bins)):
            level = _smoothed_level(self._padded_band_power(band))
            floor = _noise_floor(level)
            decay_times.append(_free_decay_times(level, floor, allowed))
            drop = _offset_drop_db(level, floor, allowed)
            if drop is not None:
                offset_drops.append(drop)
        times = np.concatenate(decay_times) if decay_times else np.zeros(0)
        n_decays = int(times.size)
        result.put("reverb_free_decays", n_decays)

        median_decay = float(np.median(times)) if n_decays >= MIN_FREE_DECAYS else None
        result.put(
            "rt60_s",
            round(median_decay, 3) if median_decay is not None else None,
            why=f"not_measured: too few free decays (found {n_decays}, need {MIN_FREE_DECAYS})",
        )

        offset_decay = None
        if offset_drops:
            drop = float(np.median(offset_drops))
            offset_decay = 60.0 * _OFFSET_LAG_FRAMES * FRAME_S / max(drop, 0.5)
        if median_decay is not None and offset_decay is not None:
            effective = math.sqrt(median_decay * offset_decay)
        else:
            effective = median_decay if median_decay is not None else offset_decay
        if effective is None:
            result.put(
                "reverb_score",
                None,
                why=f"not_measured: too few free decays (found {n_decays}, need {MIN_FREE_DECAYS}) "
                "and too few strong offsets",
            )
        else:
            result.put("reverb_score", round(reverb_score_from_decay_time(effective), 4))
        return result

    def _padded_band_power(self, band: int) -> np.ndarray:
        """One band's power per frame (float64), edge-padded by half the smoothing length at either end."""
        half = _SMOOTH_FRAMES // 2
        padded = np.empty(self._n_frames + 2 * half, dtype=np.float64)
        position = half
        for chunk in self._chunks:
            padded[position : position + chunk.shape[0]] = chunk[:, band]
            position += chunk.shape[0]
        padded[:half] = padded[half]
        padded[position:] = padded[position - 1]
        return padded


def _smoothed_level(padded_power: np.ndarray) -> np.ndarray:
    """A band's level in dB after a centred moving average of ``_SMOOTH_FRAMES`` frames in power.

    ``padded_power`` holds the frames' powers with the first and last repeated ``_SMOOTH_FRAMES // 2``
    times at either end (edge padding), at least ``_SMOOTH_FRAMES`` frames in all. Averaging in the power
    domain keeps the slope of an exponential decay unchanged.
    """
    smoothed = np.convolve(padded_power, np.ones(_SMOOTH_FRAMES) / _SMOOTH_FRAMES, mode="valid")
    smoothed += _POWER_EPS
    level = np.log10(smoothed, out=smoothed)
    level *= 10.0
    return level


def _noise_floor(level: np.ndarray) -> float:
    """A band's noise floor (dB): a low percentile of its levels, ignoring digital silence."""
    sound = level[level > _SILENCE_DB]
    if sound.size == 0:
        return _SILENCE_DB
    return float(np.percentile(sound, _FLOOR_PERCENTILE, overwrite_input=True))


def _dilate(mask: np.ndarray, frames: int) -> np.ndarray:
    """Extend every True run of ``mask`` by ``frames`` frames forward in time."""
    out = mask.copy()
    for shift in range(1, frames + 1):
        out[shift:] |= mask[:-shift]
    return out


def _free_decay_times(level: np.ndarray, floor: float, allowed: np.ndarray | None) -> np.ndarray:
    """Decay times (s) of the free decays in one band's level envelope (dB per frame)."""
    n = level.size
    if n < _DECAY_MIN_FRAMES + 1:
        return np.zeros(0)
    # step i -> i+1 continues a decay
    falling = level[1:] < level[:-1] + _DECAY_TOLERANCE_DB
    falling &= level[1:] >= floor + _DECAY_END_MARGIN_DB
    # A run of falling steps [s, e) is a decay from frame s to frame e (inclusive: the step into it fell).
    run_starts, run_ends = runs(falling)
    del falling
    keep = level[run_starts] >= floor + _DECAY_START_DB
    if allowed is not None:
        keep &= allowed[run_starts]
    run_starts, run_ends = run_starts[keep], run_ends[keep]
    if run_starts.size == 0:
        return np.zeros(0)
    fit_start = _fit_starts(level, run_starts, run_ends)
    ok = fit_start >= 0
    fit_len = np.where(ok, run_ends - fit_start + 1, 0)
    fit_drop = np.where(ok, level[np.maximum(fit_start, 0)] - level[run_ends], 0.0)
    ok &= (fit_len >= _DECAY_MIN_FRAMES) | (
        (fit_len >= _DECAY_SHORT_FRAMES) & (fit_drop >= _DECAY_SHORT_DROP_DB)
    )
    if not ok.any():
        return np.zeros(0)
    slopes = _segment_slopes(level, floor, fit_start[ok], run_ends[ok])
    slopes = slopes[slopes < 0]
    return 60.0 / (-slopes / FRAME_S)


def _fit_starts(level: np.ndarray, run_starts: np.ndarray, run_ends: np.ndarray) -> np.ndarray:
    """Per run, the first frame at least ``_DECAY_SKIP_DB`` below the run's first frame (-1 if none)."""
    lengths = (run_ends - run_starts + 1).astype(np.int32)
    owner = np.repeat(np.arange(run_starts.size, dtype=np.int32), lengths)
    # frame of each entry: its run's start plus its place within the run
    frames = np.arange(owner.size, dtype=np.int32)
    frames += np.repeat((run_starts - (np.cumsum(lengths) - lengths)).astype(np.int32), lengths)
    below = level[frames] <= (level[run_starts] - _DECAY_SKIP_DB)[owner]
    owner, frames = owner[below], frames[below]  # both sorted by run
    first = np.flatnonzero(np.concatenate([[True], owner[1:] != owner[:-1]])) if owner.size else owner
    fit_start = np.full(run_starts.size, -1, dtype=np.int64)
    fit_start[owner[first]] = frames[first]
    return fit_start


def _segment_slopes(level: np.ndarray, floor: float, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Least-squares slope (dB per frame) of ``level - floor`` over each inclusive range [start, end].

    From prefix sums of the values and of index times value, computed one at a time (bounded memory).
    """
    values = level - floor
    csum = np.zeros(values.size + 1)
    np.cumsum(values, out=csum[1:])
    sum_v = csum[ends + 1] - csum[starts]
    del csum
    weighted = np.arange(values.size, dtype=np.float64)
    weighted *= values
    del values
    cisum = np.zeros(weighted.size + 1)
    np.cumsum(weighted, out=cisum[1:])
    del weighted
    n = (ends - starts + 1).astype(np.float64)
    # sum over local index k = i - start of k * v
    sum_kv = (cisum[ends + 1] - cisum[starts]) - starts * sum_v
    sum_k = n * (n - 1) / 2
    sum_kk = (n - 1) * n * (2 * n - 1) / 6
    return (n * sum_kv - sum_k * sum_v) / (n * sum_kk - sum_k**2)


def _offset_drop_db(level: np.ndarray, floor: float, allowed: np.ndarray | None) -> float | None:
    """Level drop (dB) 100 ms after the steepest offsets of one band, or None with too few offsets.

    Offsets are local maxima at least ``_OFFSET_PEAK_DB`` above the floor; the drop of each is its level
    minus the level ``_OFFSET_LAG_FRAMES`` later (a late/early ratio); the 90th percentile keeps the
    offsets where speech really stopped, whose fall is bounded by the room's decay.
    """
    n = level.size
    lag = _OFFSET_LAG_FRAMES
    if n < lag + 3:
        return None
    centre = level[1 : n - lag]
    is_peak = (
        (centre >= level[: n - lag - 1])
        & (centre >= level[2 : n - lag + 1])
        & (centre >= floor + _OFFSET_PEAK_DB)
    )
    peaks = np.flatnonzero(is_peak) + 1
    if allowed is not None:
        peaks = peaks[allowed[peaks]]
    if peaks.size < _OFFSET_MIN_PEAKS:
        return None
    drops = level[peaks] - level[peaks + lag]
    return float(np.percentile(drops, _OFFSET_PERCENTILE))
