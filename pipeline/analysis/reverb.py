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
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from pipeline.analysis.base import ANALYSIS_RATE, FRAME_S, FRAME_SAMPLES, Measurement
from pipeline.errors import InvalidArgument

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
_FRAMES_PER_BATCH = 2048
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
_MASK_LENGTH_SLACK = 3  # frames by which the speech mask may differ from the meter's frame count
_MIN_FRAMES = 50  # below 0.5 s there is nothing to look at
_SCORE_MIDPOINT_S = 0.5
_SCORE_STEEPNESS = 3.0


def reverb_score_from_decay_time(decay_time_s: float) -> float:
    """Map an effective decay time (seconds) to a reverberation score in (0, 1).

    ``score = 1 / (1 + (0.5 / t) ** 3)``: strictly increasing, 0.06 at 0.2 s, 0.5 at 0.5 s,
    0.80 at 0.8 s, 0.93 at 1.2 s. Raises :class:`InvalidArgument` unless ``decay_time_s`` is a
    positive finite number.
    """
    if not isinstance(decay_time_s, int | float) or not math.isfinite(decay_time_s) or decay_time_s <= 0:
        raise InvalidArgument(f"decay_time_s must be a positive finite number, got {decay_time_s!r}")
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
        if sample_rate != ANALYSIS_RATE:
            raise InvalidArgument(
                f"sample_rate must be {ANALYSIS_RATE} (the analysis rate), got {sample_rate!r}"
            )
        self.sample_rate = sample_rate
        self._window = np.hanning(_WINDOW_SAMPLES + 2)[1:-1].astype(np.float64)
        # scale so that band powers are mean squares: a full-scale sine reads 0.5 in its band
        self._scale = 2.0 / (_WINDOW_SAMPLES * float(np.sum(self._window**2)))
        self._bins = _band_bins(sample_rate)
        self._offsets = np.arange(_WINDOW_SAMPLES)[None, :]
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
        samples = np.asarray(block)
        if samples.ndim != 1:
            raise InvalidArgument(f"block must be a 1-D mono array, got shape {samples.shape}")
        if samples.size == 0:
            return
        if not np.issubdtype(samples.dtype, np.floating):
            raise InvalidArgument(f"block must hold float samples, got dtype {samples.dtype}")
        samples = samples.astype(np.float32, copy=False)
        if not np.all(np.isfinite(samples)):
            raise InvalidArgument("block contains NaN or infinite samples")
        data = np.concatenate([self._buffer, samples])
        n_new = data.size // FRAME_SAMPLES
        used = n_new * FRAME_SAMPLES
        history = np.concatenate([self._pending, data[:used]])
        # bounded temporaries whatever the block length
        for first in range(0, n_new, _FRAMES_PER_BATCH):
            count = min(_FRAMES_PER_BATCH, n_new - first)
            starts = (first + np.arange(count)) * FRAME_SAMPLES
            windows = history[starts[:, None] + self._offsets].astype(np.float64)
            spectra = np.abs(np.fft.rfft(windows * self._window, axis=1)) ** 2
            powers = np.stack([spectra[:, lo:hi].sum(axis=1) for lo, hi in self._bins], axis=1)
            self._chunks.append((powers * self._scale).astype(np.float32))
        self._n_frames += n_new
        if n_new:
            self._pending = data[used - FRAME_SAMPLES : used].copy()
        self._buffer = data[used:].copy()

    def band_powers(self) -> np.ndarray:
        """Per-frame sub-band powers so far, shape ``(n_frames, n_bands)``, float32 (a copy)."""
        if not self._chunks:
            return np.zeros((0, len(self._bins)), dtype=np.float32)
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks, axis=0)]
        return self._chunks[0].copy()

    def finish(self, speech_mask: np.ndarray | None = None) -> Measurement:
        """Estimate ``rt60_s`` and ``reverb_score`` from everything processed so far.

        ``speech_mask`` (optional) is a boolean array on the same 10 ms grid, True for speech; decays and
        offsets must then start in speech (or within 30 ms after it). Without a mask, a level well above
        the noise floor is the only requirement. The meter may keep receiving blocks afterwards.
        """
        powers = self.band_powers()
        mask = self._check_mask(speech_mask)
        result = Measurement()
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
        for band in range(powers.shape[1]):
            level = _smoothed_levels(powers[:, band : band + 1].astype(np.float64))[:, 0]
            floor = float(_noise_floors(level[:, None])[0])
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

    def _check_mask(self, speech_mask: np.ndarray | None) -> np.ndarray | None:
        """Validate the speech mask and fit it to the meter's frame count."""
        if speech_mask is None:
            return None
        mask = np.asarray(speech_mask)
        if mask.ndim != 1:
            raise InvalidArgument(f"speech_mask must be 1-D, got shape {mask.shape}")
        if abs(mask.size - self._n_frames) > _MASK_LENGTH_SLACK:
            raise InvalidArgument(
                f"speech_mask has {mask.size} frames but the meter saw {self._n_frames} frames of 10 ms"
            )
        mask = mask.astype(bool)
        if mask.size >= self._n_frames:
            return mask[: self._n_frames]
        return np.concatenate([mask, np.zeros(self._n_frames - mask.size, dtype=bool)])


def _smoothed_levels(powers: np.ndarray) -> np.ndarray:
    """Band levels in dB after a centred moving average of ``_SMOOTH_FRAMES`` frames in power.

    Averaging in the power domain keeps the slope of an exponential decay unchanged.
    """
    if powers.shape[0] >= _SMOOTH_FRAMES:
        kernel = np.ones(_SMOOTH_FRAMES) / _SMOOTH_FRAMES
        half = _SMOOTH_FRAMES // 2
        padded = np.pad(powers, ((half, half), (0, 0)), mode="edge")
        smoothed = np.stack(
            [np.convolve(padded[:, b], kernel, mode="valid") for b in range(powers.shape[1])], axis=1
        )
    else:
        smoothed = powers
    return 10.0 * np.log10(smoothed + _POWER_EPS)


def _noise_floors(levels: np.ndarray) -> np.ndarray:
    """Per-band noise floor (dB): a low percentile of the levels, ignoring digital silence."""
    floors = np.full(levels.shape[1], _SILENCE_DB)
    for band in range(levels.shape[1]):
        sound = levels[:, band][levels[:, band] > _SILENCE_DB]
        if sound.size:
            floors[band] = np.percentile(sound, _FLOOR_PERCENTILE)
    return floors


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
    falling = (level[1:] < level[:-1] + _DECAY_TOLERANCE_DB) & (level[1:] >= floor + _DECAY_END_MARGIN_DB)
    edges = np.diff(np.concatenate([[0], falling.astype(np.int8), [0]]))
    run_starts = np.flatnonzero(edges == 1)  # first frame of a decay
    run_ends = np.flatnonzero(edges == -1)  # last frame of a decay (the step into it was falling)
    keep = level[run_starts] >= floor + _DECAY_START_DB
    if allowed is not None:
        keep &= allowed[run_starts]
    run_starts, run_ends = run_starts[keep], run_ends[keep]
    if run_starts.size == 0:
        return np.zeros(0)
    # fit start: the first frame at least _DECAY_SKIP_DB below the run's first frame
    lengths = run_ends - run_starts + 1
    owner = np.repeat(np.arange(run_starts.size), lengths)
    frames = (
        np.repeat(run_starts, lengths)
        + np.arange(owner.size)
        - np.repeat(np.cumsum(lengths) - lengths, lengths)
    )
    below = level[frames] <= level[run_starts[owner]] - _DECAY_SKIP_DB
    ids, first = np.unique(owner[below], return_index=True)
    fit_start = np.full(run_starts.size, -1)
    fit_start[ids] = frames[below][first]
    ok = fit_start >= 0
    fit_len = np.where(ok, run_ends - fit_start + 1, 0)
    fit_drop = np.where(ok, level[np.maximum(fit_start, 0)] - level[run_ends], 0.0)
    ok &= (fit_len >= _DECAY_MIN_FRAMES) | (
        (fit_len >= _DECAY_SHORT_FRAMES) & (fit_drop >= _DECAY_SHORT_DROP_DB)
    )
    if not ok.any():
        return np.zeros(0)
    slopes = _segment_slopes(level - floor, fit_start[ok], run_ends[ok])
    slopes = slopes[slopes < 0]
    return 60.0 / (-slopes / FRAME_S)


def _segment_slopes(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Least-squares slope (units per frame) of ``values`` over each inclusive range [start, end]."""
    idx = np.arange(values.size, dtype=np.float64)
    csum = np.concatenate([[0.0], np.cumsum(values)])
    cisum = np.concatenate([[0.0], np.cumsum(idx * values)])
    n = (ends - starts + 1).astype(np.float64)
    sum_v = csum[ends + 1] - csum[starts]
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
