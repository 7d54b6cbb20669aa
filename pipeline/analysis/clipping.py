"""Clipping: samples stuck at a plateau level, measured on the original-rate samples.

Clipping is a property of the source, so this runs on the decoded samples at their native rate, every
channel separately. The detector keeps, per channel and in constant memory, a fine histogram of sample
levels (0.002 dB bins from -40 to +12 dBFS) and a histogram of *adjacent pairs* (the level of the quieter
sample of each pair), plus one small integer per 10 ms frame (the loudest level in the frame) for the
event times. The clip level is decided in :meth:`ClippingDetector.finish`, in two stages:

1. **Exact plateau** (PCM clipping, also after a gain change or requantisation): at least four samples
   share the top level (within 0.006 dB); at least a tenth of them have a neighbour on it too (clipped
   runs do, measured 14 % or more from 16 to 48 kHz, while a peak limiter's rounded peaks touch the
   ceiling one sample at a time); and the top level holds at least three times as many samples as the
   next occupied level below (so coarse 8-bit or very quiet audio, whose levels are all shared, is not
   mistaken for clipping). Clipped samples = the samples on the plateau.
2. **Rippled plateau** (clipped audio that was later MP3/AAC-encoded or resampled: the plateau turns into
   a wavy band and the overshoots rise well above it): a spike in the 0.05 dB level histogram within
   8 dB of the peak, where the +-0.3 dB window holds at least 1.3 times, and 5 standard deviations more
   than, the count that the density 0.6-1.8 dB below predicts, spread over at least 8 effectively
   occupied 0.002 dB levels (quantisation spikes sit on one exact level each). Clipped samples = every
   sample from 0.3 dB below the spike upwards (the band plus its overshoots).

3. **Local flat tops** (clipping under the file's own peak: a clipped part of a session whose other parts,
   or a click, peak higher; both stages above only read the levels near the file's top): every block of
   :data:`LOCAL_BLOCK_FRAMES` frames (0.5 s) is tested at its *own* top level. Its top holds at least
   six samples within :data:`LOCAL_TOLERANCE` (1.5 steps of 16-bit audio), in at least two separate flat
   runs (neighbours on it that are equal, or on opposite rails: clipped hiss swings from one to the
   other in one sample), a tenth of its samples in such pairs, and three times as many samples as the
   next level under it in the same frames. Flat tops at or above the level the histogram stages count are
   theirs (not counted twice). Only the frames whose peak reaches the block's top are read again. Found in
   16-bit speech clipped at 0.1, 0.25 and 0.5 of full scale (0.3-3 %) between louder clean copies: every
   case, the clipped share within 1 %, every event inside the clipped part. False alarms: none of 462
   variants of the 32 recordings of ``../shared/data`` (speech, long, conversation) as they are, as 16-bit
   PCM at peaks 0.99 to 0.02 (also upsampled to 48 kHz), as float at peaks 0.5 to 0.01, peak-limited, and
   through MP3 clamped to 16 bits (the decoder's overshoot): the flags on those sets are the histogram
   stages' own, the same before and after. A natural peak can put two samples within the tolerance of
   its block's top (quiet float audio at 44.1 kHz does), but not two equal ones in two places.

Why not "runs of three or more samples within 0.2 dB of the maximum": at 44.1-48 kHz the natural peak
of any low-pitched waveform spans several samples within 0.2 dB, and at 16-22 kHz most clipped runs of a
lightly clipped file are only one or two samples long (0.01 % clipping of a 22 kHz LJSpeech clip: 17
clipped samples, no run of three); the shared exact level, the neighbour pairs and the histogram spike
separate clipping from natural peaks better.

Measured on the 20 recordings in ``../shared/data/speech`` (clipped at a known ratio by amplifying,
"found" = flagged and within a factor of 2): exact PCM clipping 100 % at 0.1 %, 1 % and 5 % (also
after x0.5 attenuation), 85 % at 0.01 % (the misses hold under 8 clipped samples); after MP3 (about
85 kbit/s) 15 % at 0.1 %, 85 % at 1 %, 100 % at 5 %; after resampling 40 %, 95 %, 100 %. False alarms
on the same recordings unclipped at 0.99 peak, as 16-bit PCM, MP3 or resampled: none.

Why 0.1 % clipping after MP3 stays mostly unfound (measured for issue 3 on the accuracy corpus: 12 clipped
items, 212 unclipped MP3 items, 590 unclipped PCM items, 64 peak-limited recordings, half of them as MP3).
At 0.1 % the clip level sits at the 99.9th percentile, where the natural density of samples is already
high: the clipped samples, spread by the codec over about -1.3 to +0.8 dB around the level, add a *wall*
(the histogram stays flat up to the level, then stops) rather than a spike, 1.8-7.9e-4 of the samples in
excess of what the tail below the level predicts. Unclipped recordings make the same wall: LibriSpeech 3080
holds one sustained vowel whose 56 pitch periods stay within 1.5 dB of its peak (excess 1.5-4.3e-4 as PCM,
MP3 and with noise), and peak-limited speech piles up at its ceiling in every loud syllable (excess up to
5.7e-3). The shape of the peaks does not separate them either: after MP3 a clipped top of one to three
samples (most runs at 16-22 kHz) is as round as a natural one, and natural peak flatness varies more with
the voice's pitch than clipping changes it. Neither the number of separate events reaching the level
(clipped 3-12, natural 2-6) nor both polarities reaching it (limiters and compressors are symmetric too)
closes the gap. A sweep of the rippled stage (window 0.2-0.6 dB, baseline 0.6-3 dB below, ratio 1.0-1.3,
3-5 standard deviations) finds at best 6 of the 12 items at 0.1 %, with 5 new false alarms among the 802
unclipped items and 6 among the limited ones; 4 of 12 without new ones among the unclipped items but with
2-4 limited recordings flagged; 2 of 12 with none anywhere (these settings). So the detector stays where
its false alarms stay at zero on those sets (0.5 % and more after MP3: 36 of 36 found).

Results: ``clipped_ratio`` is the share of clipped samples in the *worst* channel (one clipped channel
of a stereo file is a clipped recording; averaging would halve it), ``clip_level`` the plateau level of
that channel (linear, 0-1 for full scale), ``clipped_events`` the start times (s) of groups of 10 ms
frames that reach the clip level, merged when closer than 0.1 s and capped at :data:`MAX_EVENTS`, and
``clipped_event_count`` the uncapped number of groups. Treat ``clipped_ratio > CLIPPED_RATIO_FLAG`` as
clipped. Known limits: a steady pure tone has a histogram spike at its amplitude and can look clipped;
fewer than four clipped samples cannot be told from a natural peak.

Speed (issue 3: 0.4 s per hour of 48 kHz stereo on one core, was 3.0 s): the histograms are exact only
where :meth:`ClippingDetector.finish` reads them. It reads the bins from 9.9 dB under a channel's top
level upwards (the rippled stage's span and baseline) and, in the exact stage, the three bins ending at
the highest occupied level under the plateau, however far down that is. Both bounds only ever rise, so
a sample under both of them as seen so far (the top minus 11.1 dB, and three bins under the highest
level below the top) can never be read: it is skipped without a logarithm (in speech that is 90-98 % of
the samples). The per-frame loudest levels come from one maximum per frame (the level bin is monotonic
in the magnitude). The results are those of the full histograms (tested against them).
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.analysis.base import FRAME_S, Analysis

CLIPPED_RATIO_FLAG = 1e-4
"""A ``clipped_ratio`` above this (0.01 % of the samples) means the recording is clipped."""

MAX_EVENTS = 200
"""At most this many event times are listed in ``clipped_events``."""

EVENT_MERGE_S = 0.1
"""Clipped frames closer than this are one event."""

LEVEL_FLOOR_DB = -40.0
"""Levels below this (dBFS) are not histogrammed: a plateau that low is not worth reporting."""

LEVEL_CEILING_DB = 12.0
"""Levels above this (dBFS, possible in float files) share the top bin."""

FINE_BIN_DB = 0.002
"""Width of one level bin (dB)."""

_N_BINS = round((LEVEL_CEILING_DB - LEVEL_FLOOR_DB) / FINE_BIN_DB) + 2  # + underflow bin 0
_EXACT_BINS = 3  # the plateau window of stage 1: 0.006 dB
_EXACT_MIN_SAMPLES = 4
_EXACT_MIN_PAIR_SHARE = 0.1  # measured: >= 0.14 for real clipping of 7+ samples, 16-48 kHz
_EXACT_OVER_NEXT = 3.0
_COARSE = 25  # fine bins per coarse bin: 0.05 dB
_SPIKE_HALF_DB = 0.3
_BASELINE_DB = (1.8, 0.6)  # baseline window, dB below the candidate level (from, to)
_SPAN_DB = 8.0
_SPIKE_MIN_RATIO = 1.3
_SPIKE_MIN_SIGMA = 5.0
_SPIKE_MIN_EXCESS = 8.0
_SPIKE_MIN_LEVELS = 8.0
_MAX_CHUNKS = 256
LOCAL_BLOCK_FRAMES = 50
"""Frames (0.5 s) per block of the local stage: each block's own top level is tested for a flat top."""

_LOCAL_MIN_SAMPLES = 6  # samples exactly on a block's top level
_LOCAL_MIN_RUNS = 2  # separate runs of two or more samples on it (one natural peak makes at most one)
_LOCAL_MIN_PAIR_SHARE = 0.1  # as the exact stage: a limiter's ceiling is touched one sample at a time
_LOCAL_OVER_NEXT = 3.0  # as the exact stage: coarse quantisation shares every level, clipping only its top
_LOCAL_FLOOR = 10.0 ** (LEVEL_FLOOR_DB / 20.0)
LOCAL_TOLERANCE = 1.5 / 32768.0
"""How far under a block's top level a sample still counts as on it: one and a half steps of 16-bit audio,
because writers scale the two polarities differently (a plateau at +-0.1 becomes 3277 and -3276)."""
_MAX_BLOCK = 1 << 19  # longer blocks are processed in pieces: the scratch buffers stay a few MB
# How far below the top level finish() reads the histogram (the rippled stage: its span, its baseline window
# and the coarse bins' rounding), plus a margin; the exact bins of quieter samples are never needed.
_KEEP_BINS = round((_SPAN_DB + _BASELINE_DB[0] + _SPIKE_HALF_DB + 1.0) / FINE_BIN_DB)

_NEAR_BINS = 1024  # where _highest_occupied looks first


def _flat_top(
    x: np.ndarray, frame_ids: np.ndarray, starts: np.ndarray, ends: np.ndarray, level: float
) -> tuple[float, int, np.ndarray] | None:
    """The flat top of one block of one channel at its top ``level``: ``(level, samples on it, the frames
    holding them)``, or None when the block is not clipped there.

    ``x`` holds the channel's signed samples; frame ``frame_ids[i]`` is ``x[starts[i]:ends[i]]``; give
    only the frames whose peak reaches the level. Clipped: several flat runs exactly on the top level,
    which holds far more samples than the next level under it in those frames.
    """
    on_top = pairs = runs = on_next = 0
    next_level = 0.0
    frames: list[int] = []
    for frame, a, b in zip(frame_ids.tolist(), starts.tolist(), ends.tolist(), strict=True):
        samples = x[a:b]
        magnitude = np.abs(samples).astype(np.float32, copy=False)
        on = magnitude >= np.float32(level - LOCAL_TOLERANCE)
        count = int(on.sum())
        if count:
            frames.append(frame)
        on_top += count
        # A flat pair: neighbours on the top level, exactly equal (a clipped run is flat; two samples of a
        # natural peak within the tolerance are not, unless quantisation made them so) or on opposite rails
        # (clipped hiss swings from one to the other in one sample; no natural peak does).
        flipped = np.signbit(samples[1:]) != np.signbit(samples[:-1])
        flat = on[1:] & on[:-1] & ((magnitude[1:] == magnitude[:-1]) | flipped)
        pairs += int(flat.sum())
        runs += int(flat[0]) + int(np.sum(flat[1:] & ~flat[:-1])) if flat.size else 0
        below = magnitude[~on]
        if below.size:  # the highest level under the top, with the samples within the tolerance of it
            top_below = float(below.max())
            near = int(np.sum(below >= np.float32(top_below - LOCAL_TOLERANCE)))
            if top_below > next_level + LOCAL_TOLERANCE:
                next_level, on_next = top_below, near
            elif top_below >= next_level - LOCAL_TOLERANCE:
                next_level = max(next_level, top_below)
                on_next += near
    clipped = (
        level >= _LOCAL_FLOOR
        and on_top >= _LOCAL_MIN_SAMPLES
        and runs >= _LOCAL_MIN_RUNS
        and pairs >= _LOCAL_MIN_PAIR_SHARE * on_top
        and on_top >= _LOCAL_OVER_NEXT * on_next
    )
    return (level, on_top, np.asarray(frames, dtype=np.int64)) if clipped else None


def _level_bins(magnitude: np.ndarray) -> np.ndarray:
    """Fine level bin of each magnitude: 0 below the floor, else 1 + floor((dB - floor) / bin width)."""
    scale = np.float32(20.0 / FINE_BIN_DB)
    offset = np.float32(1.0 - LEVEL_FLOOR_DB / FINE_BIN_DB)
    with np.errstate(divide="ignore"):
        position = np.log10(magnitude, dtype=np.float32) * scale + offset
    # Below the floor (and -inf for exact zeros) maps to the underflow bin 0.
    np.clip(position, 0.0, np.float32(_N_BINS - 1), out=position)
    return position.astype(np.int32)


def _bin_level(index: float) -> float:
    """Linear level at a (possibly fractional) fine bin position."""
    return float(10.0 ** ((LEVEL_FLOOR_DB + (index - 1) * FINE_BIN_DB) / 20.0))


def _exact_plateau(levels: np.ndarray, pairs: np.ndarray, top: int) -> tuple[int, float, int] | None:
    low = max(top - _EXACT_BINS + 1, 1)
    on_top = int(levels[low : top + 1].sum())
    pairs_on_top = int(pairs[low : top + 1].sum())
    if on_top < _EXACT_MIN_SAMPLES or pairs_on_top < max(1.0, _EXACT_MIN_PAIR_SHARE * on_top):
        return None
    occupied_below = np.flatnonzero(levels[1:low]) + 1
    next_level = 0
    if occupied_below.size:
        j = int(occupied_below[-1])
        next_level = int(levels[max(j - _EXACT_BINS + 1, 1) : j + 1].sum())
    if on_top < _EXACT_OVER_NEXT * next_level:
        return None
    mean_bin = float(np.average(np.arange(low, top + 1), weights=levels[low : top + 1])) + 0.5
    return on_top, _bin_level(mean_bin), low


def _rippled_plateau(levels: np.ndarray, top: int) -> tuple[int, float, int] | None:
    coarse = np.add.reduceat(levels[1:], np.arange(0, levels.shape[0] - 1, _COARSE)).astype(np.float64)
    step = FINE_BIN_DB * _COARSE
    half = round(_SPIKE_HALF_DB / step)
    base_from = round(_BASELINE_DB[0] / step)
    base_to = round(_BASELINE_DB[1] / step)
    coarse_top = (top - 1) // _COARSE
    first = max(coarse_top - round(_SPAN_DB / step), base_from)
    best: tuple[float, int, float, float] | None = None
    for c in range(first, coarse_top + 1):
        in_spike = float(coarse[c - half : c + half + 1].sum())
        expected = float(coarse[c - base_from : c - base_to].mean()) * (2 * half + 1)
        sigma = (in_spike - expected) / math.sqrt(expected + 1.0)
        if best is None or sigma > best[0]:
            best = (sigma, c, in_spike, expected)
    if best is None:
        return None
    sigma, c, in_spike, expected = best
    if (
        sigma < _SPIKE_MIN_SIGMA
        or in_spike < _SPIKE_MIN_RATIO * expected
        or in_spike - expected < _SPIKE_MIN_EXCESS
    ):
        return None
    # A codec's ripple spreads the plateau over many distinct levels; coarse quantisation (8-bit or very
    # quiet audio) stacks whole spikes on single levels. Count the effectively occupied fine bins.
    fine = levels[1 + (c - half) * _COARSE : 1 + (c + half + 1) * _COARSE].astype(np.float64)
    occupied = float(fine.sum()) ** 2 / max(float(np.sum(fine**2)), 1.0)
    if occupied < _SPIKE_MIN_LEVELS:
        return None
    clipped = int(coarse[c - half :].sum())
    return clipped, _bin_level(1 + c * _COARSE + _COARSE / 2.0), 1 + (c - half) * _COARSE


def _find_plateau(levels: np.ndarray, pairs: np.ndarray) -> tuple[int, float, int] | None:
    """A channel's plateau as (clipped sample count, linear level, lowest fine bin of an event), or None."""
    occupied = np.flatnonzero(levels[1:])
    if occupied.size == 0:
        return None
    top = int(occupied[-1]) + 1
    return _exact_plateau(levels, pairs, top) or _rippled_plateau(levels, top)


def _add_counts(histogram: np.ndarray, bins: np.ndarray) -> None:
    """Add one count per entry of ``bins`` to ``histogram`` (a bincount over the occupied span only)."""
    low = int(bins.min())
    counts = np.bincount(bins - low)
    histogram[low : low + counts.shape[0]] += counts


def _highest_occupied(histogram: np.ndarray, start: int, stop: int) -> int | None:
    """The highest bin in ``[start, stop)`` that holds a count, or None. Looked for just under ``stop``
    first: the occupied levels lie near the top, and the whole span is 26 000 bins."""
    near = max(start, stop - _NEAR_BINS)
    for lo, hi in ((near, stop), (start, near)):
        occupied = np.flatnonzero(histogram[lo:hi]) if hi > lo else np.zeros(0, dtype=np.int64)
        if occupied.size:
            return lo + int(occupied[-1])
    return None


def _merge_events(frames: np.ndarray, *, gap_frames: int) -> list[int]:
    """First frame of each group of sorted frame indices whose gaps are at most ``gap_frames``."""
    if frames.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(frames) > gap_frames) + 1
    return [int(frames[0])] + [int(frames[b]) for b in breaks]


class ClippingDetector:
    """Streaming clipping detector for ``channels`` channels at ``sample_rate`` (the native rate).

    Feed float32 blocks of shape ``(n, channels)`` (1-D is accepted for one channel) with
    :meth:`process`, then call :meth:`finish`. Memory: two histograms per channel, two bytes per
    channel per 10 ms frame, five bytes per sample of one block (at most half a million samples) of
    scratch space, and the samples of the 0.5 s block of the local stage still coming in.
    """

    def __init__(self, *, sample_rate: int, channels: int) -> None:
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self._levels = np.zeros((self.channels, _N_BINS), dtype=np.int64)
        self._pairs = np.zeros((self.channels, _N_BINS), dtype=np.int64)
        self._last_bin = np.zeros(self.channels, dtype=np.int64)  # bin of the previous sample, 0 if skipped
        self._top = np.zeros(self.channels, dtype=np.int64)  # highest fine bin so far
        self._scratch = np.zeros((self.channels, 0), dtype=np.float32)  # |samples| per channel, reused
        self._loud = np.zeros(0, dtype=bool)
        self._n_samples = 0
        self._frames_per_s = round(1.0 / FRAME_S)
        self._frame_chunks: list[np.ndarray] = []
        self._open_frame = -1
        self._open_max = np.zeros(self.channels, dtype=np.uint16)
        self._local_tail = np.zeros((0, self.channels), dtype=np.float32)  # the block still being fed
        self._local_block = 0  # the index of that block
        self._local_found: list[tuple[int, float, int, np.ndarray]] = []  # (channel, level, samples, frames)

    def process(self, block: np.ndarray) -> None:
        """Add a block of finite float samples, shape ``(n, channels)`` (or ``(n,)``), at the native rate."""
        samples = block.reshape(block.shape[0], -1)
        for start in range(0, samples.shape[0], _MAX_BLOCK):  # bounded scratch memory
            self._process(samples[start : start + _MAX_BLOCK])

    def _process(self, samples: np.ndarray) -> None:
        n = samples.shape[0]
        if self._scratch.shape[1] < n:
            self._scratch = np.empty((self.channels, n), dtype=np.float32)
            self._loud = np.empty(n, dtype=bool)
        magnitudes = self._scratch[:, :n]
        # Frame k holds samples [ceil(k * rate / fps), ceil((k + 1) * rate / fps)): computed per frame, not
        # per sample (the same split as floor(sample * fps / rate), at a fraction of the cost).
        fps, rate, n0 = self._frames_per_s, self.sample_rate, self._n_samples
        frame_ids = np.arange((n0 * fps) // rate, ((n0 + n - 1) * fps) // rate + 1, dtype=np.int64)
        starts = np.maximum((frame_ids * rate + fps - 1) // fps - n0, 0)
        peaks = np.empty((frame_ids.shape[0], self.channels), dtype=np.float32)
        for ch in range(self.channels):
            np.abs(samples[:, ch], out=magnitudes[ch], casting="same_kind")
            peaks[:, ch] = np.maximum.reduceat(magnitudes[ch], starts)
        # The level bin is monotonic in the magnitude: the bin of a frame's peak is the frame's loudest bin.
        maxima = _level_bins(peaks).astype(np.uint16)
        np.maximum(self._top, maxima.max(axis=0), out=self._top)
        for ch in range(self.channels):
            self._add_levels(ch, magnitudes[ch])
        self._track_frames(frame_ids, maxima)
        self._track_local_tops(frame_ids, starts, peaks, samples, n)
        self._n_samples += n

    def _exact_from(self, ch: int) -> int:
        """The lowest fine bin of channel ``ch`` whose counts must be exact from now on.

        finish() reads the histograms from :data:`_KEEP_BINS` under the top level upwards, and, in the exact
        stage, the three bins up to the highest occupied level under the plateau, however far down that is.
        Both bounds only rise as samples come in, so a sample under them now stays irrelevant.
        """
        top = int(self._top[ch])
        low = top - _EXACT_BINS + 1
        highest = _highest_occupied(self._levels[ch], 1, low)
        if highest is None:  # no level under the plateau yet: any sample may become the next one
            return 1
        return max(min(top - _KEEP_BINS, highest - _EXACT_BINS), 1)

    def _add_levels(self, ch: int, magnitude: np.ndarray) -> None:
        """Count the exact fine bins of the samples at or above the exact-from level, and their pairs.

        The other samples are skipped: that saves most of the logarithms, and finish() never reads the
        bins they would fall in.
        """
        n = magnitude.shape[0]
        previous = int(self._last_bin[ch])
        self._last_bin[ch] = 0
        # Half a bin of slack: float32 rounding can never push a sample of bin >= start below it.
        threshold = 10.0 ** ((LEVEL_FLOOR_DB + (self._exact_from(ch) - 1.5) * FINE_BIN_DB) / 20.0)
        loud = self._loud[:n]
        np.greater_equal(magnitude, np.float32(threshold), out=loud)
        time = np.flatnonzero(loud)
        if time.size == 0:
            return
        bins = _level_bins(magnitude[time])
        _add_counts(self._levels[ch], bins)
        # Pairs of adjacent kept samples; a pair with a skipped sample has its minimum under every bin
        # finish() reads.
        adjacent = time[1:] == time[:-1] + 1
        if adjacent.any():
            _add_counts(self._pairs[ch], np.minimum(bins[:-1], bins[1:])[adjacent])
        if time[0] == 0 and previous > 0:  # the pair across the block boundary
            self._pairs[ch, min(previous, int(bins[0]))] += 1
        if time[-1] == n - 1:
            self._last_bin[ch] = int(bins[-1])

    def _track_local_tops(
        self, frame_ids: np.ndarray, starts: np.ndarray, peaks: np.ndarray, samples: np.ndarray, n: int
    ) -> None:
        """The local stage: test every block of :data:`LOCAL_BLOCK_FRAMES` frames for a flat top at its own
        top level (clipping that stays under the file's peak, where the histogram stages cannot see it).

        Only the frames whose peak reaches their block's top are read again (one or two per block in
        unclipped speech), and only in blocks where at least two frames reach it. A block is tested when
        all of it has come in: the samples of the block the fed ones end in wait for the next (at most
        0.5 s), so how the samples are fed does not change the answer.
        """
        blocks = frame_ids // LOCAL_BLOCK_FRAMES
        part_starts = np.flatnonzero(np.r_[True, blocks[1:] != blocks[:-1]])
        part_ends = np.r_[part_starts[1:], blocks.size]
        ends = np.r_[starts[1:], n]
        goes_on = self._block_start(int(blocks[-1]) + 1) > self._n_samples + n  # the last block is not whole
        first, stop = 0, part_starts.size - goes_on
        if self._local_tail.shape[0]:  # the first block began in earlier samples: test it whole
            whole = np.concatenate([self._local_tail, samples[: ends[part_ends[0] - 1]] if stop else samples])
            if stop == 0:
                self._local_tail = whole
                return
            self._local_found.extend(self._block_tops(self._local_block, whole))
            self._local_tail, first = self._local_tail[:0], 1
        if goes_on:
            self._local_tail = samples[starts[part_starts[-1]] :].copy()
        self._local_block = int(blocks[-1]) + (not goes_on)
        if first >= stop:
            return
        # Every block in [first, stop) lies whole in these samples: the frame peaks are exact.
        lo, hi = part_starts[first], part_ends[stop - 1]
        sizes = part_ends[first:stop] - part_starts[first:stop]
        for ch in range(self.channels):
            frame_peaks = peaks[lo:hi, ch]
            part_max = np.maximum.reduceat(frame_peaks, part_starts[first:stop] - lo)
            reach = frame_peaks >= np.repeat(part_max - np.float32(LOCAL_TOLERANCE), sizes)
            reaching = np.add.reduceat(reach.astype(np.int32), part_starts[first:stop] - lo)
            for p in np.flatnonzero((reaching >= 2) & (part_max >= _LOCAL_FLOOR)) + first:
                frames = np.flatnonzero(reach[part_starts[p] - lo : part_ends[p] - lo]) + part_starts[p]
                top = _flat_top(
                    samples[:, ch],
                    frame_ids[frames],
                    starts[frames],
                    ends[frames],
                    float(part_max[p - first]),
                )
                if top is not None:
                    self._local_found.append((ch, *top))

    def _block_start(self, block: int) -> int:
        """The first sample of local block ``block`` (frame ``k`` starts at sample ``ceil(k * rate / fps)``)."""
        fps, rate = self._frames_per_s, self.sample_rate
        return (block * LOCAL_BLOCK_FRAMES * rate + fps - 1) // fps

    def _block_tops(self, block: int, x: np.ndarray) -> list[tuple[int, float, int, np.ndarray]]:
        """The flat tops of local block ``block``, whose samples (all of them, or the file's last) are ``x``:
        ``(channel, level, samples on it, frames)``."""
        fps, rate, first = self._frames_per_s, self.sample_rate, block * LOCAL_BLOCK_FRAMES
        frame_ids = np.arange(first, first + LOCAL_BLOCK_FRAMES, dtype=np.int64)
        starts = (frame_ids * rate + fps - 1) // fps - self._block_start(block)
        keep = starts < x.shape[0]
        frame_ids, starts = frame_ids[keep], starts[keep]
        ends = np.r_[starts[1:], x.shape[0]]
        found = []
        for ch in range(self.channels):
            frame_peaks = np.maximum.reduceat(np.abs(x[:, ch]), starts)
            level = frame_peaks.max()
            reach = np.flatnonzero(frame_peaks >= level - np.float32(LOCAL_TOLERANCE))
            if reach.size >= 2 and level >= _LOCAL_FLOOR:
                top = _flat_top(x[:, ch], frame_ids[reach], starts[reach], ends[reach], float(level))
                if top is not None:
                    found.append((ch, *top))
        return found

    def _local_plateaus(
        self, plateaus: list[tuple[int, float, int] | None]
    ) -> list[list[tuple[int, float, int, np.ndarray]]]:
        """Per channel, the flat tops the local stage found under what the histogram stages count: below
        the channel's plateau (the lowest level it counts), or below its top level when it has none."""
        found = list(self._local_found)
        if self._local_tail.shape[0]:  # the file's last block
            found += self._block_tops(self._local_block, self._local_tail)
        out: list[list[tuple[int, float, int, np.ndarray]]] = [[] for _ in range(self.channels)]
        for entry in found:
            ch = entry[0]
            plateau = plateaus[ch]
            lowest_bin = plateau[2] if plateau is not None else int(self._top[ch]) - _EXACT_BINS + 1
            if entry[1] < _bin_level(lowest_bin):
                out[ch].append(entry)
        return out

    def _track_frames(self, frame_ids: np.ndarray, maxima: np.ndarray) -> None:
        if frame_ids[0] == self._open_frame:
            maxima[0] = np.maximum(maxima[0], self._open_max)
        elif self._open_frame >= 0:
            self._frame_chunks.append(self._open_max[None, :].copy())
        # Every frame but the last of this block is complete; the last may continue in the next block.
        if maxima.shape[0] > 1:
            self._frame_chunks.append(maxima[:-1])
        self._open_frame = int(frame_ids[-1])
        self._open_max = maxima[-1].copy()
        if len(self._frame_chunks) > _MAX_CHUNKS:
            self._frame_chunks = [np.concatenate(self._frame_chunks, axis=0)]

    def _frame_maxima(self) -> np.ndarray:
        chunks = list(self._frame_chunks)
        if self._open_frame >= 0:
            chunks.append(self._open_max[None, :])
        if not chunks:
            return np.zeros((0, self.channels), dtype=np.uint16)
        return np.concatenate(chunks, axis=0)

    def finish(self) -> Analysis:
        """Return ``clipped_ratio``, ``clip_level``, ``clipped_events`` and ``clipped_event_count``."""
        result = Analysis()
        if self._n_samples == 0:
            for name in ("clipped_ratio", "clip_level", "clipped_events", "clipped_event_count"):
                result.put(name, None, why="empty: no samples were processed")
            return result
        plateaus = [_find_plateau(self._levels[ch], self._pairs[ch]) for ch in range(self.channels)]
        local = self._local_plateaus(plateaus)
        counts = [(p[0] if p else 0) + sum(found[2] for found in local[ch]) for ch, p in enumerate(plateaus)]
        ratios = [count / self._n_samples for count in counts]
        worst = int(np.argmax(ratios))
        result.put("clipped_ratio", float(ratios[worst]))
        worst_plateau = plateaus[worst]
        if worst_plateau is not None:
            result.put("clip_level", worst_plateau[1])
        elif local[worst]:
            result.put("clip_level", max(local[worst], key=lambda found: found[2])[1])
        else:
            result.put("clip_level", None, why="not_measured: no clipping plateau found")
        frame_maxima = self._frame_maxima()
        hit = np.zeros(frame_maxima.shape[0], dtype=bool)
        for ch, plateau in enumerate(plateaus):
            if plateau is not None:
                hit |= frame_maxima[:, ch] >= plateau[2]
            for found in local[ch]:
                hit[found[3][found[3] < hit.shape[0]]] = True
        gap = round(EVENT_MERGE_S / FRAME_S)
        firsts = _merge_events(np.flatnonzero(hit), gap_frames=gap)
        result.put("clipped_events", [round(i * FRAME_S, 3) for i in firsts[:MAX_EVENTS]])
        result.put("clipped_event_count", len(firsts))
        return result
