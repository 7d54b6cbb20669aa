"""Background music and singing: ``music_score`` and ``singing_score`` from the 16 kHz analysis view.

Every family's rules forbid background music and singing. Both are heard here without a trained model
(none that ships inside a PyPI package fits), from the spectrum and the pitch, on a CPU:

* **music** is notes. An instrument holds a pitch: a spectral peak that stands out of its neighbourhood
  and stays within 25 cents for at least 8 frames of 16 ms (a *sustained tone*). Three kinds of sustained
  tone are not music and are set aside: a tone that never changes (mains hum and its harmonics, a fan,
  a whine) is no louder than its frequency's usual level, which a peak must exceed by
  :data:`FLOOR_MARGIN_DB`; the voice's own harmonics (a tone on a harmonic of the pitch of a speech
  frame); and tones more than :data:`TONE_RANGE_DB` below the loud speech. What is left is weighed for
  two signs of music: how often tones start (:data:`ONSET_RATE_REF` per second is full evidence), and
  either their tuning (the concentration of their pitches in cents modulo a semitone: a band, an
  orchestra or a keyboard is tuned to one grid; a cheering crowd, rain or a room's echo is not) or
  partials attacking together, as a struck or plucked note's do (a piano's stretched partials stray from the
  grid, but its notes keep some tuning; drips in rain attack together at unrelated pitches, so attacks count
  in proportion to the tuning up to :data:`ATTACK_TUNING_REF`). One pitch counts at most
  :data:`PITCH_REPEATS` onsets of a span: a reverberant room's resonance, excited by syllable after
  syllable, is one pitch starting again and again, and would otherwise line up on any grid. It works in the
  pauses and under the speech alike, so a bed under continuous speech is heard; the VAD often calls a music-filled
  pause speech anyway.
* **singing** is the voice holding its notes. Over the speech frames, the YIN pitch (computed on the same
  frames) gives voiced runs; sung notes last (runs of :data:`LONG_NOTE_S` or more) and keep their pitch
  (its running median, which averages vibrato out, stays within :data:`STEADY_CENTS`), where read speech
  is made of short syllables whose pitch glides. A trained voice's vibrato (a 4-8 Hz swing of the pitch,
  up to a semitone either way) keeps a held note from looking steady, so a periodic swing inside a held
  note counts as singing too, where the voice is voiced almost throughout, as a sung line is.

Both are measured per 16 ms frame (the *content grid*: frame ``i`` is centred at ``0.032 + 0.016 i``
seconds) into a :class:`ContentFrames`; the speech mask is applied when scoring, so
:meth:`ContentFrames.scores` gives both scores for the whole recording or any span of it (selection
needs them per window) from one analysis. :class:`ContentMeter` streams a recording through in chunks of
:data:`CHUNK_S` seconds, keeping a few numbers per frame and per tone (about 8 MB an hour of music, less
of speech); :func:`content_frames` and :func:`content_scores` do the same for samples in memory.
Cost: about 0.09 s of one core per minute of audio (0.43x the fast pass), so it is meant for the
candidate windows and finalists, not every frame of every file (BENCHMARKS.md).

Scores are in [0, 1]; :data:`MUSIC_THRESHOLD` and :data:`SINGING_THRESHOLD` are the decision points,
with references set on the ``dev`` half of ``benchmarks/content_bench.py`` (figures in BENCHMARKS.md).
A score that cannot be measured (too little audio; no speech, for singing) is ``None`` with a reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.fft
import scipy.ndimage
import soxr

from pipeline.analysis.base import ANALYSIS_RATE, FRAME_S, Analysis, merge_spans

__all__ = [
    "CONTENT_HOP_S",
    "CONTENT_METRICS",
    "MUSIC_THRESHOLD",
    "SINGING_THRESHOLD",
    "ContentFrames",
    "ContentMeter",
    "content_frames",
    "content_metrics",
    "content_scores",
    "has_content",
    "music_score_from_parts",
    "singing_score_from_parts",
    "speech_mask_at",
]

WORK_RATE = 8000
"""The content analysis runs at 8 kHz: notes and the voice's pitch live below 4 kHz."""
FRAME_LENGTH = 512
"""Analysis window at :data:`WORK_RATE` (64 ms: 15.6 Hz bins, four periods of a 70 Hz voice)."""
HOP = 128
"""Hop at :data:`WORK_RATE` (16 ms)."""
CONTENT_HOP_S = HOP / WORK_RATE
"""Spacing of the content grid (seconds)."""
_FRAME_CENTRE_S = FRAME_LENGTH / WORK_RATE / 2

LOW_HZ = 60.0
HIGH_HZ = 3900.0
"""Band searched for tonal peaks."""
PEAK_PROMINENCE_DB = 12.0
"""A tonal peak stands this far above the median of its neighbourhood (250 Hz groups of bins)."""
FLOOR_MARGIN_DB = 6.0
"""...and this far above its frequency's usual level (:data:`FLOOR_PERCENTILE` over a chunk)."""
FLOOR_PERCENTILE = 20.0
_FLOOR_STRIDE = 4
ATTACK_PROMINENCE_DB = 8.0
"""A tone *attacks* when no peak of this prominence was within a bin of it 3 frames before it started."""
STABLE_FRAMES = 8
"""A sustained tone lasts at least this many frames (128 ms)..."""
FLAT_CENTS = 25.0
"""...within this pitch range (cents) from its first frame to its last."""
HARMONIC_TOLERANCE = 0.03
HARMONIC_TOLERANCE_HZ = 12.0
"""A tone within ``max(3 % of its frequency, 12 Hz)`` of a harmonic of a speech frame's pitch is the voice."""
MAX_HARMONIC = 40
HARMONIC_APERIODICITY = 0.35
"""Speech frames whose YIN aperiodicity is below this have their pitch's harmonics set aside."""
TONE_RANGE_DB = 45.0
"""Tones more than this far below the loud speech are ignored (inaudible beside the voice)."""

F0_MIN_HZ = 70.0
F0_MAX_HZ = 1000.0
YIN_THRESHOLD = 0.2
VOICED_APERIODICITY = 0.35
"""A frame is voiced when its YIN aperiodicity (normalised difference at the chosen lag) is below this."""
VOICED_LEVEL_DB = 45.0
"""...and its level within this many dB of the loudest speech (the 95th percentile of speech frames)."""
PITCH_JUMP_CENTS = 100.0
"""A voiced run breaks where the pitch jumps by more than this from one frame to the next."""
VOICED_GAP_FRAMES = 3
"""A voiced run bridges up to this many unvoiced frames when the pitch carries on across them."""
LONG_NOTE_S = 0.4
"""A voiced run of at least this length is a held note (read speech has few: syllables are shorter)."""
STEADY_CENTS = 80.0
"""A steady note's pitch (running median) stays within this range over :data:`LONG_NOTE_S`."""
STEADY_SMOOTH_FRAMES = 15
"""The pitch of a note is its running median over this many frames (240 ms: a vibrato cycle or more)."""

VIBRATO_RUN_S = 0.5
"""A voiced run of at least this length is searched for vibrato."""
VIBRATO_SMOOTH_FRAMES = 15
"""Vibrato is the pitch less its running mean over this many frames (240 ms: one 4-8 Hz cycle or more)..."""
VIBRATO_MIN_CENTS = 25.0
"""...swinging by at least this much (RMS, cents)..."""
VIBRATO_LAGS = (8, 16)
"""...with a period of this many frames (125-250 ms: 4-8 Hz)..."""
VIBRATO_MIN_CORRELATION = 0.3
"""...that its autocorrelation at some lag in :data:`VIBRATO_LAGS` reaches (speech's pitch glides, it
does not swing)."""
VIBRATO_MIN_VOICED = 0.8
"""Vibrato counts only where at least this share of the speech frames is voiced: a singer's line is
voiced throughout, while reading stops for consonants and breaths (a slow reading of a sonnet, whose
intonation can swing at 4-8 Hz for a moment, is voiced for about 0.6-0.7 of its speech)."""

LONG_WEIGHT = 0.5
STEADY_WEIGHT = 1.5
VIBRATO_WEIGHT = 0.5
SINGING_REF = 0.45
"""``singing_score`` weighs the share of speech in held notes, in steady held notes and in held notes with
vibrato (see :func:`singing_score_from_parts`); the first two weights and the reference were set on the
benchmark's ``dev`` half, the vibrato part after the ``test`` half's operatic voice was missed (its wide
vibrato keeps few frames steady), so its figure there is no longer unseen (BENCHMARKS.md); the demo's
slow reading of a sonnet set :data:`VIBRATO_MIN_VOICED`."""

CHUNK_S = 10.0
"""The streaming meter analyses this much audio at a time (plus :data:`_MARGIN_FRAMES` either side)."""
_MARGIN_FRAMES = 32
_MIN_FRAMES = 32
"""Below about half a second there is nothing to score."""

ONSET_RATE_REF = 2.5
"""Sustained tones starting per second that count as a full measure of tonal evidence."""
TUNING_SHRINK = 1.0
"""The tuning concentration is lowered by this over the square root of the number of tones (few tones
line up by chance)."""
SAME_PITCH_CENTS = 25.0
"""Tone onsets within this of each other are one pitch (a quarter of a semitone: two notes are at least a
semitone apart)..."""
PITCH_REPEATS = 4
"""...and one pitch counts at most this many onsets in a span, in the onset rate and the tuning alike
(:func:`_pitch_weights`): a room's resonance excited syllable after syllable is one pitch starting again
and again (a seminar room's 3.7 kHz mode gave 11 of 15 onsets in a 10 s window of reverberant reading).
Measured (``content_bench.py`` items, the 12 reverberant interviews of ``voices_bench.py``, BENCHMARKS.md):
every onset counted 96.7 % of beds / 1.0 % false alarms / 3 interviews at 0.5 or more; 4 per pitch 95.8 %
/ 0 % / none (highest 0.35); 3 per pitch 95.4 %; 3 per pitch in the tuning only 96.3 % but 0.57 on a
seminar-room reading."""
TUNING_REF = 0.5
"""Tuning concentration (0: pitches anywhere between semitones; 1: all on one grid) of a tuned bed."""
ATTACK_RATE_REF = 2.0
"""Frames per second in which two or more tones attack together, for a full measure of that sign."""
ATTACK_TUNING_FLOOR = 0.1
ATTACK_TUNING_REF = 0.2
"""Tones attacking together count fully only when their tuning reaches this, not at all below
:data:`ATTACK_TUNING_FLOOR`, and in proportion between: a piano's partials stray from the grid but its
notes keep some tuning (0.19-0.37 in the benchmark's beds that its attacks carry), while drips in rain
start together at unrelated pitches (tuning 0-0.17 under the benchmark's readings; the rain ambience of ``benchmarks/realistic_hour.py`` scored 0.5-1.0 on attacks
alone, BENCHMARKS.md)."""
MUSIC_THRESHOLD = 0.5
"""``music_score`` at or above this is music."""
SINGING_THRESHOLD = 0.5
"""``singing_score`` at or above this is singing."""

_EPS = 1e-12


# --------------------------------------------------------------------------------------------------------
# per-frame evidence
# --------------------------------------------------------------------------------------------------------


@dataclass
class ContentFrames:
    """Evidence of music and singing on the content grid (16 ms frames), before the speech mask is applied.

    Per frame: ``f0_hz`` and ``aperiodicity``, the YIN pitch (0 Hz where no period was found) and how
    far from periodic the frame is; ``level_db``, the frame level (dBFS); ``peak_db``, the level of its
    strongest spectral peak in the tonal band; ``speech``, the VAD's decision at the frame's centre (all
    False until a speech mask is given). Per *tone start* (a spectral peak that holds its pitch for
    :data:`STABLE_FRAMES` frames from this one), in time order: ``start_frames``, ``start_bins`` (its
    FFT bin), ``start_cents`` (its pitch in cents above 440 Hz), ``start_db`` (its level) and
    ``start_abrupt`` (nothing was sounding within a bin of it three frames earlier). Which starts are the
    voice, too faint to matter, or the first frame of a tone is decided when scoring, with the mask.
    """

    f0_hz: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    aperiodicity: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    level_db: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    peak_db: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    speech: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    start_frames: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    start_bins: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int16))
    start_cents: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    start_db: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    start_abrupt: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.f0_hz.shape[0])

    @property
    def times(self) -> np.ndarray:
        """Centre time (s) of each frame."""
        return _FRAME_CENTRE_S + CONTENT_HOP_S * np.arange(self.n_frames)

    @classmethod
    def concatenate(cls, parts: list[ContentFrames]) -> ContentFrames:
        """The frames of consecutive stretches, in order."""
        if not parts:
            return cls()
        joined = {name: np.concatenate([getattr(p, name) for p in parts]) for name in _FRAME_FIELDS}
        for name in _START_FIELDS:
            joined[name] = np.concatenate([getattr(p, name) for p in parts])
        offsets = np.cumsum([0] + [p.n_frames for p in parts[:-1]])
        joined["start_frames"] = np.concatenate(
            [p.start_frames + offset for p, offset in zip(parts, offsets, strict=True)]
        ).astype(np.int32)
        return cls(**joined)

    def take(self, lo: int, hi: int) -> ContentFrames:
        """Frames ``[lo, hi)`` and the tone starts in them."""
        first, last = np.searchsorted(self.start_frames, [lo, hi], side="left")
        out = {name: getattr(self, name)[lo:hi] for name in _FRAME_FIELDS}
        out.update({name: getattr(self, name)[first:last] for name in _START_FIELDS})
        out["start_frames"] = out["start_frames"] - lo
        return ContentFrames(**out)

    def with_speech_mask(self, speech_mask: np.ndarray, *, frame_s: float = FRAME_S) -> ContentFrames:
        """These frames with ``speech`` read from a speech mask on another grid (the shared 10 ms one).

        A frame takes the mask's value at its centre; frames past the mask's end are not speech.
        """
        mask = np.asarray(speech_mask, dtype=bool)
        out = self.take(0, self.n_frames)
        index = (self.times / frame_s).astype(np.int64)
        inside = index < mask.size
        out.speech = np.zeros(self.n_frames, dtype=bool)
        out.speech[inside] = mask[index[inside]]
        return out

    def scores(self, start_s: float = 0.0, end_s: float | None = None) -> Analysis:
        """``music_score`` and ``singing_score`` (with their parts) of the frames centred in ``[start_s, end_s)``.

        Parts, for reports and thresholds: ``music_onset_rate`` (sustained tones starting per second, a pitch
        counted at most :data:`PITCH_REPEATS` times),
        ``music_tuning`` (their concentration on a semitone grid, bias-corrected, 0-1),
        ``music_attack_rate`` (frames per second where two or more tones attack together),
        ``music_pause_ratio`` and ``music_speech_ratio`` (frames with a sustained tone among the pause and
        the speech frames), ``singing_voiced_ratio`` (voiced frames among the speech frames),
        ``singing_long_ratio`` (speech frames inside voiced runs of :data:`LONG_NOTE_S` or more),
        ``singing_steady_ratio`` (speech frames inside held, steady notes) and ``singing_vibrato_ratio``
        (speech frames inside held notes whose pitch swings at 4-8 Hz; 0 unless the speech is voiced
        throughout, :data:`VIBRATO_MIN_VOICED`).
        """
        times = self.times
        lo = int(np.searchsorted(times, start_s, side="left"))
        hi = self.n_frames if end_s is None else int(np.searchsorted(times, end_s, side="left"))
        return _score(self.take(lo, max(lo, hi)))


_FRAME_FIELDS = ("f0_hz", "aperiodicity", "level_db", "peak_db", "speech")
_START_FIELDS = ("start_frames", "start_bins", "start_cents", "start_db", "start_abrupt")


def _frame_count(n_samples: int) -> int:
    """Frames of the content grid in ``n_samples`` at 16 kHz (a partial last frame is dropped)."""
    length16 = FRAME_LENGTH * ANALYSIS_RATE // WORK_RATE
    hop16 = HOP * ANALYSIS_RATE // WORK_RATE
    return 0 if n_samples < length16 else 1 + (n_samples - length16) // hop16


def _analyse(x16: np.ndarray, *, keep: tuple[int, int]) -> ContentFrames:
    """Evidence for the frames ``keep`` (indices into this stretch's own frames) of 16 kHz samples ``x16``.

    The frames around ``keep`` are context: a tone crossing the edge of ``keep`` is followed into them.
    """
    x8 = soxr.resample(np.ascontiguousarray(x16, dtype=np.float32), ANALYSIS_RATE, WORK_RATE, quality="HQ")
    n_frames = 0 if x8.shape[0] < FRAME_LENGTH else 1 + (x8.shape[0] - FRAME_LENGTH) // HOP
    n_frames = min(n_frames, _frame_count(x16.shape[0]))
    if n_frames == 0:
        return ContentFrames()
    frames = np.lib.stride_tricks.sliding_window_view(x8, FRAME_LENGTH)[::HOP][:n_frames]
    frames = frames - frames.mean(axis=1, keepdims=True)
    padded_spectrum = scipy.fft.rfft(frames, n=2 * FRAME_LENGTH, axis=1, workers=1)
    power = padded_spectrum.real**2 + padded_spectrum.imag**2
    f0, aperiodicity = _yin(frames, power)
    level = 10.0 * np.log10(np.mean(frames**2, axis=1) + _EPS)
    spectrum_db = _hann_spectrum_db(padded_spectrum)
    del padded_spectrum, power
    tones = _tone_starts(spectrum_db)
    frames_out = ContentFrames(
        f0_hz=np.where(np.isfinite(f0), f0, 0.0).astype(np.float32),
        aperiodicity=aperiodicity.astype(np.float32),
        level_db=level.astype(np.float32),
        speech=np.zeros(n_frames, dtype=bool),
        **tones,
    )
    return frames_out.take(*keep)


def _hann_spectrum_db(padded_spectrum: np.ndarray) -> np.ndarray:
    """Power (dB) of the Hann-windowed ``FRAME_LENGTH``-point spectrum, from the zero-padded plain one.

    The even bins of a 2n-point transform of an n-sample frame are its n-point DFT; a periodic Hann
    window is the three-tap kernel (-1/4, 1/2, -1/4) across those bins.
    """
    plain = padded_spectrum[:, ::2]  # bins 0 .. n/2 of the n-point DFT
    left = np.empty_like(plain)
    right = np.empty_like(plain)
    left[:, 1:] = plain[:, :-1]
    left[:, 0] = np.conj(plain[:, 1])
    right[:, :-1] = plain[:, 1:]
    right[:, -1] = np.conj(plain[:, -2])
    windowed = 0.5 * plain - 0.25 * (left + right)
    power = windowed.real**2 + windowed.imag**2
    return (10.0 * np.log10(power + _EPS)).astype(np.float32)


def _yin(frames: np.ndarray, power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """YIN pitch (Hz, NaN where no lag qualifies) and aperiodicity per frame.

    ``power`` is the squared magnitude of each frame's zero-padded transform, whose inverse is the
    frame's (linear) autocorrelation.
    """
    n = frames.shape[1]
    tau_min = int(WORK_RATE / F0_MAX_HZ)
    tau_max = math.ceil(WORK_RATE / F0_MIN_HZ) + 1
    acf = scipy.fft.irfft(power, axis=1, workers=1)[:, : tau_max + 1]
    squares = np.square(frames, dtype=np.float32)
    total = squares.sum(axis=1, keepdims=True)
    # d(tau) = sum_{j < n - tau} x_j^2 + sum_{j >= tau} x_j^2 - 2 r(tau): only the first and last
    # tau_max + 1 samples' running sums are needed
    head = np.cumsum(squares[:, : tau_max + 1], axis=1)  # head[:, j] = sum of x_0..x_j
    tail = np.cumsum(squares[:, : n - tau_max - 2 : -1], axis=1)  # tail[:, j] = sum of the last j + 1
    zero = np.zeros((frames.shape[0], 1), dtype=np.float32)
    first = total - np.concatenate([zero, tail[:, :tau_max]], axis=1)
    second = total - np.concatenate([zero, head[:, :tau_max]], axis=1)
    diff = np.maximum(first + second - 2.0 * acf, 0.0)
    diff[:, 0] = 0.0
    running = np.cumsum(diff[:, 1:], axis=1) / np.arange(1, tau_max + 1, dtype=np.float32)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] / np.maximum(running, _EPS)
    part = cmnd[:, tau_min:tau_max]
    rows = np.arange(part.shape[0])
    below = part < YIN_THRESHOLD
    index = np.where(below.any(axis=1), below.argmax(axis=1), part.argmin(axis=1))
    for _ in range(8):  # walk down to the bottom of the dip
        step = np.minimum(index + 1, part.shape[1] - 1)
        index = np.where(part[rows, step] < part[rows, index], step, index)
    value = part[rows, index]
    inner = np.clip(index, 1, part.shape[1] - 2)
    a, b, c = part[rows, inner - 1], part[rows, inner], part[rows, inner + 1]
    curvature = a - 2.0 * b + c
    offset = np.where(np.abs(curvature) > _EPS, 0.5 * (a - c) / np.where(curvature == 0, 1.0, curvature), 0.0)
    tau = tau_min + inner + np.clip(offset, -1.0, 1.0)
    silent = total[:, 0] <= _EPS
    f0 = np.where(silent, np.nan, WORK_RATE / tau)
    return f0, np.where(silent, 1.0, value)


def _neighbourhood_median(spectrum_db: np.ndarray) -> np.ndarray:
    """Median level of each bin's neighbourhood: medians of 16-bin groups, interpolated across bins."""
    n_bins = spectrum_db.shape[1]
    group = 16
    n_groups = (n_bins - 1) // group
    grouped = spectrum_db[:, : n_groups * group].reshape(-1, n_groups, group)
    ordered = np.sort(grouped, axis=2)  # faster than a partition for rows this short
    medians = 0.5 * (ordered[:, :, group // 2 - 1] + ordered[:, :, group // 2])
    centres = group * np.arange(n_groups) + (group - 1) / 2
    position = np.clip((np.arange(n_bins) - centres[0]) / group, 0, n_groups - 1)
    below = np.minimum(position.astype(np.int64), n_groups - 2)
    weight = (position - below).astype(np.float32)
    return medians[:, below] * (1 - weight) + medians[:, below + 1] * weight


def _spread(mask: np.ndarray) -> np.ndarray:
    """``mask`` or'ed with itself shifted one bin up and one bin down."""
    out = mask.copy()
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


def _tone_starts(spectrum_db: np.ndarray) -> dict[str, np.ndarray]:
    """Every frame and bin where a sustained tone is sounding and holds on for :data:`STABLE_FRAMES` frames.

    A peak is a local maximum :data:`PEAK_PROMINENCE_DB` above its neighbourhood's median and
    :data:`FLOOR_MARGIN_DB` above its bin's usual level; it *holds* when a peak is within a bin of it in
    each of the next frames and their pitches span at most :data:`FLAT_CENTS`.
    """
    n_frames, n_bins = spectrum_db.shape
    lo_bin = math.ceil(LOW_HZ * FRAME_LENGTH / WORK_RATE)
    hi_bin = min(n_bins - 1, int(HIGH_HZ * FRAME_LENGTH / WORK_RATE))
    s = spectrum_db
    prominence = s - _neighbourhood_median(s)
    floor = np.percentile(s[::_FLOOR_STRIDE], FLOOR_PERCENTILE, axis=0)  # every 4th frame is plenty
    local_max = np.zeros(s.shape, dtype=bool)
    local_max[:, 1:-1] = (s[:, 1:-1] > s[:, :-2]) & (s[:, 1:-1] >= s[:, 2:])
    local_max[:, :lo_bin] = False
    local_max[:, hi_bin:] = False
    weak = local_max & (prominence >= ATTACK_PROMINENCE_DB)
    peaks = weak & (prominence >= PEAK_PROMINENCE_DB) & (s - floor >= FLOOR_MARGIN_DB)
    del prominence, local_max

    # interpolated frequency of every peak (parabola through the three bins around it)
    peak_rows, peak_cols = np.nonzero(peaks)
    left, centre, right = (s[peak_rows, peak_cols + d] for d in (-1, 0, 1))
    curvature = left - 2.0 * centre + right
    offset = np.clip(0.5 * (left - right) / np.where(curvature < -_EPS, curvature, -1.0), -0.5, 0.5)
    freq = np.zeros(s.shape, dtype=np.float32)
    freq[peak_rows, peak_cols] = (peak_cols + offset) * (WORK_RATE / FRAME_LENGTH)

    n = STABLE_FRAMES
    rows = cols = np.zeros(0, dtype=np.int64)
    if n_frames >= n:
        present = _spread(peaks)
        held = peaks[: n_frames - n + 1].copy()
        for later in range(1, n):
            held &= present[later : n_frames - n + 1 + later]
        del present
        rows, cols = np.nonzero(held)  # row-major: in time order
        # the pitch along each: the bin's own peak in each of the n frames, else a neighbour's
        along = rows[:, None] + np.arange(n)
        own, below, above = (freq[along, (cols + d)[:, None]] for d in (0, -1, 1))
        pitch = np.where(own > 0, own, np.where(below > 0, below, above))
        flat = 1200.0 * np.log2(pitch.max(axis=1) / pitch.min(axis=1)) <= FLAT_CENTS
        rows, cols = rows[flat], cols[flat]
    earlier = np.zeros_like(weak)
    earlier[3:] = weak[:-3]
    return {
        "peak_db": s[:, lo_bin:hi_bin].max(axis=1).astype(np.float32),
        "start_frames": rows.astype(np.int32),
        "start_bins": cols.astype(np.int16),
        "start_cents": (1200.0 * np.log2(freq[rows, cols] / 440.0)).astype(np.float32),
        "start_db": s[rows, cols].astype(np.float32),
        "start_abrupt": ~_spread(earlier)[rows, cols],
    }


# --------------------------------------------------------------------------------------------------------
# scores
# --------------------------------------------------------------------------------------------------------


def _score(frames: ContentFrames) -> Analysis:
    """The scores of a stretch of frames (see :meth:`ContentFrames.scores`)."""
    out = Analysis()
    n = frames.n_frames
    seconds = n * CONTENT_HOP_S
    if n < _MIN_FRAMES:
        why = f"not_measured: too little audio ({seconds:.2f} s, need {_MIN_FRAMES * CONTENT_HOP_S:.1f} s)"
        for name in (*_MUSIC_PARTS, "music_score", *_SINGING_PARTS, "singing_score"):
            out.put(name, None, why=why)
        return out
    _music(frames, seconds, out)
    _singing(frames, out)
    return out


_MUSIC_PARTS = (
    "music_onset_rate",
    "music_tuning",
    "music_attack_rate",
    "music_pause_ratio",
    "music_speech_ratio",
)
_SINGING_PARTS = (
    "singing_voiced_ratio",
    "singing_long_ratio",
    "singing_steady_ratio",
    "singing_vibrato_ratio",
)


def _tones(frames: ContentFrames) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The tones of a stretch once the voice and the inaudible are set aside: the pitch of each tone at its
    onset (cents above 440 Hz), per frame the tones that start abruptly in it, and per frame whether a
    tone is sounding.

    A start is the voice when it falls in a speech frame whose pitch is periodic enough
    (:data:`HARMONIC_APERIODICITY`) and lies on one of that pitch's harmonics. It is too faint to matter
    when it is more than :data:`TONE_RANGE_DB` below the loud speech (the 95th percentile of the speech
    frames' strongest peaks; of all frames when there is no speech). A tone's onset is a start with no
    start within a bin of it in the frame before.
    """
    n = frames.n_frames
    t = frames.start_frames
    speech = frames.speech
    reference = frames.peak_db[speech] if speech.sum() >= _MIN_FRAMES else frames.peak_db
    keep = frames.start_db >= float(np.percentile(reference, 95)) - TONE_RANGE_DB
    pitch = frames.f0_hz[t]
    periodic = speech[t] & (frames.aperiodicity[t] < HARMONIC_APERIODICITY) & (pitch > 0)
    hz = 440.0 * 2.0 ** (frames.start_cents.astype(np.float64) / 1200.0)
    harmonic = np.rint(hz / np.where(periodic, pitch, 1.0))
    voice = periodic & (harmonic >= 1) & (harmonic <= MAX_HARMONIC)
    voice &= np.abs(hz - harmonic * pitch) <= np.maximum(HARMONIC_TOLERANCE_HZ, HARMONIC_TOLERANCE * hz)
    keep &= ~voice
    t, bins = t[keep].astype(np.int64), frames.start_bins[keep].astype(np.int64)
    key = t * 1024 + bins
    previous = (t - 1) * 1024 + bins
    continued = np.isin(previous, key) | np.isin(previous - 1, key) | np.isin(previous + 1, key)
    onset = ~continued
    covered = np.zeros(n + 1, dtype=np.int64)  # a start sounds for STABLE_FRAMES frames from its own
    np.add.at(covered, t, 1)
    np.add.at(covered, np.minimum(t + STABLE_FRAMES, n), -1)
    attacks = np.bincount(t[onset & frames.start_abrupt[keep]], minlength=n)[:n]
    return frames.start_cents[keep][onset], attacks, np.cumsum(covered)[:n] > 0


def _pitch_weights(cents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The tones' pitches in increasing order and the weight each counts with: one pitch (tones within
    :data:`SAME_PITCH_CENTS` of the next lower one) counts at most :data:`PITCH_REPEATS` tones in all, its
    tones sharing that weight. A room's resonance excited by syllable after syllable starts again and again
    at one frequency, and one pitch repeated lines up on any grid; a tune is many pitches on one grid."""
    ordered = np.sort(np.asarray(cents, dtype=np.float64))
    if ordered.size == 0:
        return ordered, ordered
    pitch = np.cumsum(np.concatenate([[0], np.diff(ordered) > SAME_PITCH_CENTS]))
    repeats = np.bincount(pitch)[pitch]
    return ordered, np.minimum(repeats, PITCH_REPEATS) / repeats


def _tuning_concentration(cents: np.ndarray, weights: np.ndarray | None = None) -> float:
    """How closely tones share one semitone grid (0-1), corrected for their number.

    The mean resultant length ``R`` of ``exp(2j*pi*cents/100)`` over ``n`` tones is biased upwards for few
    of them (``n`` random pitches give ``R`` about ``1/sqrt(n)``); ``sqrt((n R^2 - 1) / (n - 1))``
    removes that bias. With ``weights`` (:func:`_pitch_weights`) ``R`` is their weighted mean and ``n``
    their sum.
    """
    cents = np.asarray(cents, dtype=np.float64)
    w = np.ones(cents.size) if weights is None else np.asarray(weights, dtype=np.float64)
    count = float(w.sum())
    if count <= 1:
        return 0.0
    resultant = abs(complex((w * np.exp(2j * np.pi * cents / 100.0)).sum())) / count
    unbiased = math.sqrt(max(0.0, (count * resultant**2 - 1.0) / (count - 1.0)))
    return max(0.0, unbiased - TUNING_SHRINK / math.sqrt(count))


def _attack_rate(attacks: np.ndarray, seconds: float) -> float:
    """Frames per second in which a tone attacks with at least one more within a frame of it."""
    attacks = attacks.astype(np.int32)
    together = np.convolve(attacks, np.ones(3, dtype=np.int32), mode="same")
    return float(np.sum((attacks > 0) & (together >= 2))) / seconds


def music_score_from_parts(onset_rate: float, tuning: float, attack_rate: float) -> float:
    """``music_score`` from its parts: tonal evidence times the stronger sign of music, capped at 1.

    ``min(1, onset_rate / ONSET_RATE_REF) * min(1, max(tuning / TUNING_REF, attack_rate / ATTACK_RATE_REF
    * clip((tuning - ATTACK_TUNING_FLOOR) / (ATTACK_TUNING_REF - ATTACK_TUNING_FLOOR), 0, 1)))``: attacks
    count as far as the tones keep some tuning (:data:`ATTACK_TUNING_REF`).
    """
    evidence = min(1.0, onset_rate / ONSET_RATE_REF)
    kept_tuning = (tuning - ATTACK_TUNING_FLOOR) / (ATTACK_TUNING_REF - ATTACK_TUNING_FLOOR)
    attacks = attack_rate / ATTACK_RATE_REF * min(1.0, max(0.0, kept_tuning))
    structure = min(1.0, max(tuning / TUNING_REF, attacks))
    return evidence * structure


def _music(frames: ContentFrames, seconds: float, out: Analysis) -> None:
    onset_cents, attacks, sounding = _tones(frames)
    cents, weights = _pitch_weights(onset_cents)
    onset_rate = float(weights.sum()) / seconds
    tuning = _tuning_concentration(cents, weights)
    attack_rate = _attack_rate(attacks, seconds)
    out.put("music_onset_rate", round(onset_rate, 3))
    out.put("music_tuning", round(tuning, 3))
    out.put("music_attack_rate", round(attack_rate, 3))
    speech = frames.speech
    pause = ~speech
    if pause.sum() >= _MIN_FRAMES:
        out.put("music_pause_ratio", round(float(sounding[pause].mean()), 3))
    else:
        out.put("music_pause_ratio", None, why="not_measured: less than 0.5 s without speech")
    if speech.sum() >= _MIN_FRAMES:
        out.put("music_speech_ratio", round(float(sounding[speech].mean()), 3))
    else:
        out.put("music_speech_ratio", None, why="no_speech: less than 0.5 s of speech")
    out.put("music_score", round(music_score_from_parts(onset_rate, tuning, attack_rate), 3))


def _singing(frames: ContentFrames, out: Analysis) -> None:
    speech = frames.speech
    n_speech = int(speech.sum())
    if n_speech < _MIN_FRAMES:
        why = "no_speech: less than 0.5 s of speech to judge"
        for name in (*_SINGING_PARTS, "singing_score"):
            out.put(name, None, why=why)
        return
    loud = float(np.percentile(frames.level_db[speech], 95))
    voiced = speech & (frames.aperiodicity < VOICED_APERIODICITY) & (frames.f0_hz > 0)
    voiced &= frames.level_db >= loud - VOICED_LEVEL_DB
    cents = 1200.0 * np.log2(np.maximum(frames.f0_hz, 1.0) / 55.0)
    note_frames = round(LONG_NOTE_S / CONTENT_HOP_S)
    long_frames = 0
    steady_frames = 0
    vibrato_frames = 0
    for start, end in _voiced_runs(voiced, cents):
        if end - start < note_frames:
            continue
        long_frames += int(speech[start:end].sum())
        if _has_vibrato(cents[start:end], voiced[start:end]):
            vibrato_frames += int(speech[start:end].sum())
        # the note's pitch: a running median (vibrato averaged out) that must hold over a note's length
        pitch = scipy.ndimage.median_filter(cents[start:end], size=STEADY_SMOOTH_FRAMES, mode="nearest")
        spread = scipy.ndimage.maximum_filter1d(pitch, note_frames) - scipy.ndimage.minimum_filter1d(
            pitch, note_frames
        )
        steady_frames += int(np.sum(voiced[start:end] & (spread <= STEADY_CENTS)))
    voiced_ratio = float(voiced.sum()) / n_speech
    long_ratio = long_frames / n_speech
    steady_ratio = steady_frames / n_speech
    vibrato_ratio = vibrato_frames / n_speech if voiced_ratio >= VIBRATO_MIN_VOICED else 0.0
    out.put("singing_voiced_ratio", round(voiced_ratio, 3))
    out.put("singing_long_ratio", round(long_ratio, 3))
    out.put("singing_steady_ratio", round(steady_ratio, 3))
    out.put("singing_vibrato_ratio", round(vibrato_ratio, 3))
    out.put("singing_score", round(singing_score_from_parts(long_ratio, steady_ratio, vibrato_ratio), 3))


def _has_vibrato(cents: np.ndarray, voiced: np.ndarray) -> bool:
    """Whether a voiced run's pitch swings periodically at 4-8 Hz (see :data:`VIBRATO_MIN_CORRELATION`).

    Unvoiced frames inside the run take the pitch interpolated from their voiced neighbours.
    """
    if cents.size < round(VIBRATO_RUN_S / CONTENT_HOP_S):
        return False
    pitch = cents.astype(np.float64)
    if not voiced.all():
        inside = np.flatnonzero(voiced)
        pitch[~voiced] = np.interp(np.flatnonzero(~voiced), inside, pitch[inside])
    swing = pitch - scipy.ndimage.uniform_filter1d(pitch, VIBRATO_SMOOTH_FRAMES, mode="nearest")
    swing -= swing.mean()
    energy = float(np.dot(swing, swing))
    if energy <= 0.0 or float(np.std(swing)) < VIBRATO_MIN_CENTS:
        return False
    n = swing.size
    lags = range(VIBRATO_LAGS[0], min(VIBRATO_LAGS[1] + 1, n - 4))
    correlation = [float(np.dot(swing[:-lag], swing[lag:])) / energy * n / (n - lag) for lag in lags]
    return bool(correlation) and max(correlation) >= VIBRATO_MIN_CORRELATION


def _voiced_runs(voiced: np.ndarray, cents: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` of the voiced runs: voiced frames whose pitch moves by at most
    :data:`PITCH_JUMP_CENTS` from one to the next, across gaps of up to :data:`VOICED_GAP_FRAMES`."""
    index = np.flatnonzero(voiced)
    if index.size == 0:
        return []
    gaps = np.diff(index)
    jumps = np.abs(np.diff(cents[index]))
    breaks = np.flatnonzero((gaps > VOICED_GAP_FRAMES + 1) | (jumps > PITCH_JUMP_CENTS))
    starts = np.concatenate([[index[0]], index[breaks + 1]])
    ends = np.concatenate([index[breaks] + 1, [index[-1] + 1]])
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def singing_score_from_parts(long_ratio: float, steady_ratio: float, vibrato_ratio: float = 0.0) -> float:
    """``singing_score`` from its parts: how much of the speech is held notes, steady ones and ones with
    vibrato, capped at 1.

    ``min(1, (LONG_WEIGHT * long + STEADY_WEIGHT * steady + VIBRATO_WEIGHT * vibrato) / (2 * SINGING_REF))``:
    0.5 when the weighted sum reaches :data:`SINGING_REF`.
    """
    weighted = LONG_WEIGHT * long_ratio + STEADY_WEIGHT * steady_ratio + VIBRATO_WEIGHT * vibrato_ratio
    return min(1.0, weighted / (2.0 * SINGING_REF))


# --------------------------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------------------------


class ContentMeter:
    """Streaming music and singing evidence on the 16 kHz mono analysis view.

    Feed blocks with :meth:`process`, then :meth:`finish` with the VAD's speech mask (10 ms grid). The
    audio is analysed :data:`CHUNK_S` at a time with half a second of context either side, so memory is
    bounded by a chunk plus a few numbers per 16 ms frame.
    """

    def __init__(self, *, sample_rate: int = ANALYSIS_RATE) -> None:
        if sample_rate != ANALYSIS_RATE:
            raise ValueError(f"ContentMeter works on the {ANALYSIS_RATE} Hz analysis view, got {sample_rate}")
        self._hop16 = HOP * ANALYSIS_RATE // WORK_RATE
        self._chunk_frames = round(CHUNK_S / CONTENT_HOP_S)
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_first_frame = 0  # frame index of the buffer's first sample
        self._next_frame = 0  # first frame not analysed yet
        self._parts: list[ContentFrames] = []

    def process(self, block: np.ndarray) -> None:
        """Add a block of mono 16 kHz samples (any length)."""
        if block.size == 0:
            return
        self._buffer = np.concatenate([self._buffer, np.asarray(block, dtype=np.float32)])
        while _frame_count(self._buffer.shape[0]) >= (
            self._next_frame - self._buffer_first_frame + self._chunk_frames + _MARGIN_FRAMES
        ):
            self._analyse_chunk(self._chunk_frames)

    def _analyse_chunk(self, n_frames: int | None) -> None:
        first = self._next_frame - self._buffer_first_frame  # index of the first new frame in the buffer
        available = _frame_count(self._buffer.shape[0])
        count = available - first if n_frames is None else n_frames
        if count <= 0:
            return
        end_frame = min(available, first + count + _MARGIN_FRAMES)
        stop = (end_frame - 1) * self._hop16 + FRAME_LENGTH * ANALYSIS_RATE // WORK_RATE
        self._parts.append(_analyse(self._buffer[:stop], keep=(first, first + count)))
        self._next_frame += count
        # keep the margin before the next chunk as its left context
        drop = max(0, self._next_frame - _MARGIN_FRAMES - self._buffer_first_frame)
        self._buffer = self._buffer[drop * self._hop16 :].copy()
        self._buffer_first_frame += drop

    def frames(self, speech_mask: np.ndarray | None = None) -> ContentFrames:
        """Everything seen so far as :class:`ContentFrames` (``speech`` from ``speech_mask`` when given)."""
        self._analyse_chunk(None)
        if len(self._parts) > 1:
            self._parts = [ContentFrames.concatenate(self._parts)]
        frames = self._parts[0] if self._parts else ContentFrames()
        return frames if speech_mask is None else frames.with_speech_mask(speech_mask)

    def finish(self, speech_mask: np.ndarray | None = None) -> Analysis:
        """``music_score``, ``singing_score`` and their parts for the whole recording."""
        mask = np.zeros(0, dtype=bool) if speech_mask is None else speech_mask
        return self.frames(mask).scores()


def speech_mask_at(speech_mask: np.ndarray, start_s: float, n_samples: int) -> np.ndarray:
    """The part of a recording's speech mask (10 ms frames) that covers ``n_samples`` samples at 16 kHz
    read from ``start_s`` (and one frame more), for :func:`content_frames` of that stretch."""
    first = max(0, round(start_s / FRAME_S))
    return np.asarray(speech_mask)[first : first + math.ceil(n_samples / ANALYSIS_RATE / FRAME_S) + 1]


def content_frames(samples: np.ndarray, speech_mask: np.ndarray | None = None) -> ContentFrames:
    """:class:`ContentFrames` of 16 kHz mono ``samples`` (in memory), with ``speech`` from a 10 ms mask."""
    meter = ContentMeter()
    meter.process(np.asarray(samples, dtype=np.float32))
    return meter.frames(speech_mask)


def content_scores(
    samples: np.ndarray,
    speech_mask: np.ndarray | None = None,
    *,
    start_s: float = 0.0,
    end_s: float | None = None,
) -> Analysis:
    """``music_score`` and ``singing_score`` (and parts) of 16 kHz mono ``samples`` or a span of them."""
    return content_frames(samples, speech_mask).scores(start_s, end_s)


# --------------------------------------------------------------------------------------------------------
# what a recording, a clip or a window reports
# --------------------------------------------------------------------------------------------------------

SPAN_WINDOW_S = 10.0
"""Content is judged over windows of this length (about a benchmark item): a jingle under one minute of an
hour-long podcast is not diluted by the rest."""
SPAN_HOP_S = 5.0
"""...starting this far apart (the last one ends where the audio does)."""

CONTENT_METRICS = ("music_score", "singing_score", "music_spans")
"""The metrics :func:`content_metrics` gives (the rest of :meth:`ContentFrames.scores` are its parts)."""


def _windows(start_s: float, end_s: float) -> list[tuple[float, float]]:
    """The :data:`SPAN_WINDOW_S` windows covering ``[start_s, end_s)`` (one when it is shorter than 1.5x)."""
    if end_s - start_s <= 1.5 * SPAN_WINDOW_S:
        return [(start_s, end_s)]
    count = math.ceil((end_s - start_s - SPAN_WINDOW_S) / SPAN_HOP_S) + 1
    starts = np.linspace(start_s, end_s - SPAN_WINDOW_S, count)
    return [(float(a), float(a) + SPAN_WINDOW_S) for a in starts]


def content_metrics(frames: ContentFrames, start_s: float = 0.0, end_s: float | None = None) -> Analysis:
    """``music_score``, ``singing_score`` and ``music_spans`` of the frames in ``[start_s, end_s)``.

    Each score is the highest over the :data:`SPAN_WINDOW_S` windows covering the span (the span itself when
    it is short); ``music_spans`` lists the windows that reach :data:`MUSIC_THRESHOLD` or
    :data:`SINGING_THRESHOLD` as ``[start_s, end_s, "music" | "singing"]``, overlapping ones of a kind
    merged, in time order. A score that no window could measure is ``None`` with the reason.
    """
    end = frames.n_frames * CONTENT_HOP_S + _FRAME_CENTRE_S if end_s is None else end_s
    out = Analysis()
    best: dict[str, float | None] = {"music_score": None, "singing_score": None}
    why: dict[str, str] = {}
    found: list[list[Any]] = []
    for a, b in _windows(start_s, end):
        scores = frames.scores(a, b)
        for name, kind, threshold in (
            ("music_score", "music", MUSIC_THRESHOLD),
            ("singing_score", "singing", SINGING_THRESHOLD),
        ):
            value = scores.metrics.get(name)
            if value is None:
                why.setdefault(name, scores.null_reasons.get(name, "not_measured: no value"))
                continue
            best[name] = value if best[name] is None else max(best[name], value)
            if value >= threshold:
                found.append([round(a, 2), round(b, 2), kind])
    for name, value in best.items():
        out.put(name, value, why=why.get(name))
    kinds = {kind for *_, kind in found}
    spans = [[a, b, k] for k in kinds for a, b in merge_spans((a, b) for a, b, kind in found if kind == k)]
    out.put("music_spans", sorted(spans, key=lambda s: (s[0], s[2])))  # time order, each kind merged
    return out


def has_content(metrics: dict[str, Any]) -> str | None:
    """``"music"`` or ``"singing"`` when the scores in ``metrics`` reach their threshold, else ``None``."""
    music, singing = metrics.get("music_score"), metrics.get("singing_score")
    if singing is not None and singing >= SINGING_THRESHOLD:
        return "singing"
    if music is not None and music >= MUSIC_THRESHOLD:
        return "music"
    return None
