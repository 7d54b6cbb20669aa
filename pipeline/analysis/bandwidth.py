"""Effective audio bandwidth: where the long-term speech spectrum falls off a cliff.

A file's sample rate says little about its content: a telephone recording upsampled to 48 kHz still
carries nothing above about 4 kHz. This module finds the *cliff*, the highest frequency above which the
long-term spectrum drops by ``drop_db`` (20 dB by default) within a few hundred hertz and stays down up to
Nyquist. A plain "highest band within 50 dB of the peak" rule fails as soon as broadband noise sits within
30 dB of the speech, while the cliff rule compares each frequency only with the kilohertz just below it, so
a smooth spectral tilt or a flat noise floor does not move the answer.

How it streams: the mono native-rate signal is cut into segments of four analysis frames (40 ms on the
shared 10 ms grid); each segment's Hann-windowed spectrum (25 Hz bins) is reduced to bands (100 Hz wide
up to 12.8 kHz, where every class boundary lies, 400 Hz wide above) and stored as one byte per band in
0.75 dB steps, about 160 bytes per 40 ms at 48 kHz (14 MB per hour). ``finish`` averages the segments that
hold speech (the VAD mask on the 10 ms grid, or the loudest 30 % of segments when no mask is given) and
looks for the cliff. Speed (issue 3): 0.7 s per hour of 48 kHz audio on one core (1.5 s before): the
segments are windowed straight from the block (only one that straddles two blocks is copied), 128 spectra
at a time so that they stay in the cache, and each band's power is summed in float64 straight from the
interleaved float32 spectrum. ``finish`` needs under 10 MB for an hour (it reads the stored levels a chunk
at a time).

Measured (on ``../shared/data``): low-passed white noise and chirps at 3.4-16 kHz land within -100/+400 Hz
of the cutoff; 18 speech recordings band-limited through 8 or 16 kHz, with white or pink noise at 20 or
10 dB SNR added before upsampling to 48 kHz, get ``narrow`` / ``wide`` in 144 of 144 cases (and so do
the clean ones); full-band 44.1/48 kHz speech is ``full``, LJSpeech at 22.05 kHz ``super_wide``; an MP3
at about 85 kbit/s shelves near 16 kHz (still ``full``), one at about 45 kbit/s near 8 kHz (``wide``).

Noise: band-limited speech with noise that was added *before* upsampling (the usual phone or 16 kHz
recording) keeps its cliff in the plain spectrum. Full-band noise added *after* band-limiting (hiss of a
48 kHz recording chain over an upsampled 16 kHz voice) fills the band above the speech: the plain cliff
then falls only to the noise floor, 4-16 dB at 30 dB SNR, too little for ``drop_db``. What is asked is the
bandwidth of the *speech*, so when the plain spectrum has no cliff and a speech mask is given, ``finish``
looks at the *speech excess* instead (:meth:`BandwidthMeter.speech_excess_db`): per band, how far the
speech segments' mean power lies above that band's stationary noise floor, estimated from the quietest
20 % of all segments (minimum statistics: speech is sparse in time in every band, so this works without
pauses too) and calibrated on white noise through the same meter, so that a noise-only band reads 0 dB.
A noise-aware cliff (:func:`find_excess_cliff`) needs the speech clearly present below the edge (3 dB or
more over the floor), absent above it (no kilohertz averaging more than 1 dB), and a sharp fall of the
speech power (15 dB from the kilohertz below to 400-800 Hz above the edge): a voice whose natural roll-off
sinks gradually into the hiss is not band-limited and stays ``full``. Without a mask the loudest segments
stand in for speech; they are mostly vowels, whose spectrum does fall steeply above 4-5 kHz, so the
noise-aware cliff is not tried then.

Measured with the noise-aware cliff (``benchmarks/accuracy.py``, fast-pass VAD mask): the 18 items with
white noise at 30 dB added after upsampling go from 10 to 17 or 18 right (18 with the VAD as of this
change, 17 with the one before). The hard one is ``sms_female`` at 11 kHz, whose speech near 11 kHz is only
3.6 dB above the noise: with four other noise seeds it is missed every time (the other 68 of those 72
seeded items are right). Outside the benchmark (same sources): white noise after upsampling at
40 dB 18/18, 25 dB 15/18, 20 dB 13/18, pink at 30 dB 18/18, LibriSpeech upsampled with white or pink noise
at 30 dB 14/14; natively full-band speech with white, pink, rain or DeepFilterNet noise at 20-40 dB stays
``full`` (60/60). With non-stationary noise (rain, DeepFilterNet) after band-limiting only 15 of 36 are
right, the rest stay ``full``: the quiet share underestimates such noise's mean, so the band above the
speech does not read as empty.

Under hiss at 20 dB SNR the *mean* speech excess of a 16 kHz voice's last kilohertz is only 1-3 dB (the
vowels leave that band empty), too little for the noise-aware cliff. When it finds none, ``finish`` tries
it once more on the *peak* excess (:meth:`BandwidthMeter.speech_peak_excess_db`): the loudest tenth of
the speech segments per band (the fricatives, which are what reaches up there) against what the noise
alone gives for its loudest tenth. The 27 speech files of ``../shared/data`` cut to 16 kHz, upsampled
to 48 kHz and put under white noise at 20 dB SNR in the 0-8 kHz band (the noise over 0-24 kHz three
times as strong): 23 ``wide`` (18 without it); at 20 dB over the whole band 23 (23); the six natively
full-band sources under the same noise stay ``full``. The
misses are the three short (1.6-2.8 s) CMU ARCTIC ``axb`` takes and ``sms_female``, whose speech above
7 kHz stays within 1-2 dB of the hiss even in its loudest segments.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import scipy.fft

from pipeline.analysis import calibration
from pipeline.analysis.base import FRAME_S, Analysis, fit_mask
from pipeline.rules.metrics import BANDWIDTH_CLASSES

FRAMES_PER_SEGMENT = 4
"""Analysis frames (10 ms each) per stored spectrum."""

FINE_BAND_HZ = 100.0
"""Width of the stored bands below :data:`FINE_LIMIT_HZ` (Hz)."""

FINE_LIMIT_HZ = 12800.0
"""Above this frequency the bands are :data:`COARSE_BAND_HZ` wide: no class boundary lies there."""

COARSE_BAND_HZ = 400.0
"""Width of the stored bands above :data:`FINE_LIMIT_HZ` (Hz)."""

CLASS_LIMITS_HZ: tuple[tuple[str, float], ...] = tuple(
    (cls.name, nxt.from_hz) for cls, nxt in itertools.pairwise(BANDWIDTH_CLASSES)
)
"""Upper (exclusive) bandwidth limit of each class; anything at or above the last limit is ``full``. The
scale is :data:`pipeline.rules.metrics.BANDWIDTH_CLASSES`, which the families' bandwidth gates share."""

LOUDEST_FRACTION = 0.3
"""Share of segments averaged when no speech mask is given: the loudest ones."""

_DB_FLOOR = -160.0
_DB_STEP = 0.75
_REFERENCE_HZ = 1000.0
_TRANSITION_HZ = 400.0
_EDGE_WITHIN_DB = 10.0
_MIN_ABOVE_HZ = 400.0
_MIN_CLIFF_HZ = 1000.0
_SILENT_DB = -130.0
_STAYS_DOWN_PERCENTILE = 95.0
_CONTENT_RANGE_DB = 60.0
_NEAR_HZ = 400.0
_BATCH_SEGMENTS = 128
_CALIBRATION_SEGMENTS = 2000
_SILENT_CODE = round((_SILENT_DB - _DB_FLOOR) / _DB_STEP)
_CODE_POWER = 10.0 ** ((np.arange(256) * _DB_STEP + _DB_FLOOR) / 10.0)

NOISE_FRACTION = 0.2
"""Share of the quietest segments, per band, from which the stationary noise floor is estimated."""

LOUD_FRACTION = 0.1
"""Share of the loudest speech segments, per band, whose mean :meth:`BandwidthMeter.speech_peak_excess_db`
compares with what the noise floor alone would give for its loudest share."""

MIN_EXCESS_SEGMENTS = 50
"""Fewest segments (2 s) for the noise-aware cliff: fewer give too noisy a floor estimate."""

EXCESS_PRESENT_DB = 3.0
"""Speech excess (dB over the noise floor) that counts as speech clearly present below a cliff."""

EXCESS_ABSENT_DB = 1.0
"""Largest mean speech excess (dB) over any kilohertz above a cliff: there the speech is absent."""

EXCESS_DROP_DB = 15.0
"""How far the speech power (excess over the floor, in power) must fall across a noise-aware cliff."""

_NEAR_RATIO_FLOOR = 0.03  # speech/noise power ratio a 400 Hz stretch of pure noise can read by chance
_MAX_CHUNKS = 64

BLOCK_S = 4.0
"""Length of the stretches :meth:`BandwidthMeter.block_bandwidths` measures (s)."""

BLOCK_MIN_SPEECH_S = 1.0
"""Speech a block needs for its own bandwidth (s); blocks with less are NaN."""


def bandwidth_class(bandwidth_hz: float) -> str:
    """Class of a bandwidth: ``narrow`` < 4200 Hz, ``wide`` < 8200, ``super_wide`` < 12000, else ``full``."""
    for name, limit in CLASS_LIMITS_HZ:
        if bandwidth_hz < limit:
            return name
    return "full"


def _band_edges(nyquist: float) -> np.ndarray:
    """Lower edges of the stored bands, plus Nyquist as the last upper edge."""
    fine_top = min(FINE_LIMIT_HZ, nyquist)
    edges = [float(f) for f in np.arange(0.0, fine_top, FINE_BAND_HZ)]
    if nyquist > FINE_LIMIT_HZ:
        edges.extend(float(f) for f in np.arange(FINE_LIMIT_HZ, nyquist, COARSE_BAND_HZ))
    # A sliver of a band just under Nyquist would hold one FFT bin or none: fold it into its neighbour.
    while len(edges) > 1 and nyquist - edges[-1] < FINE_BAND_HZ / 2:
        edges.pop()
    edges.append(nyquist)
    return np.asarray(edges, dtype=np.float64)


class BandwidthMeter:
    """Streaming effective-bandwidth meter for one mono signal at its native sample rate.

    Feed float32 mono blocks of any length with :meth:`process`, then call :meth:`finish`.
    """

    def __init__(self, *, sample_rate: int, drop_db: float = 20.0) -> None:
        self.sample_rate = int(sample_rate)
        self.drop_db = float(drop_db)
        self._nyquist = self.sample_rate / 2.0
        # Segment j covers samples [j*sr/25, (j+1)*sr/25): the 40 ms grid, exact for integer rates.
        self._segments_per_s = round(1.0 / (FRAMES_PER_SEGMENT * FRAME_S))
        self._n_fft = math.ceil(self.sample_rate / self._segments_per_s)
        self._window = np.hanning(self._n_fft + 2)[1:-1].astype(np.float32)
        self._window_power = float(np.sum(self._window.astype(np.float64) ** 2))
        self._edges = _band_edges(self._nyquist)
        bin_hz = self.sample_rate / self._n_fft
        bin_freqs = np.arange(self._n_fft // 2 + 1) * bin_hz
        band_of_bin = np.searchsorted(self._edges, bin_freqs, side="right") - 1
        band_of_bin = np.clip(band_of_bin, 0, len(self._edges) - 2)
        self._n_bands = len(self._edges) - 1
        # Every band holds at least two bins (see _band_edges), so reduceat never sees an empty band.
        self._band_starts = np.searchsorted(band_of_bin, np.arange(self._n_bands), side="left")
        self._bins_per_band = np.bincount(band_of_bin, minlength=self._n_bands).astype(np.float64)
        self._interleaved_starts = 2 * self._band_starts
        self._band_scale = 1.0 / (self._window_power * self._bins_per_band)
        self._regular = self.sample_rate % self._segments_per_s == 0
        self._carry = np.zeros(0, dtype=np.float32)
        self._consumed = 0  # samples before the carry buffer
        self._n_segments = 0
        self._n_samples = 0
        self._chunks: list[np.ndarray] = []
        self._quiet: tuple[int, np.ndarray | None] | None = None  # (segments then, _quiet_power())
        self.noise_aware_cliff = False
        """True after :meth:`finish` when the bandwidth came from the noise-aware cliff (a band limit
        under hiss); :meth:`block_bandwidths` then needs ``noise_aware`` to see it in blocks too."""
        self.peak_excess_cliff = False
        """True after :meth:`finish` when the bandwidth came from the noise-aware cliff of the loudest
        speech segments (:meth:`speech_peak_excess_db`), which a 4 s block has too few segments for:
        :meth:`block_bandwidths` then leaves the blocks without a cliff of their own unmeasured (NaN)."""

    @property
    def band_edges_hz(self) -> np.ndarray:
        """Band edges in Hz (length = number of bands + 1)."""
        return self._edges.copy()

    def _segment_start(self, index: int) -> int:
        return (index * self.sample_rate) // self._segments_per_s

    def process(self, block: np.ndarray) -> None:
        """Add a block of mono float samples (1-D) at the native rate."""
        if block.shape[0] == 0:
            return
        samples = block.astype(np.float32, copy=False)
        self._n_samples += samples.shape[0]
        if self._regular:
            self._process_regular(samples)
        else:
            self._process_gathered(samples)
        if len(self._chunks) > _MAX_CHUNKS:
            self._chunks = [np.concatenate(self._chunks, axis=0)]

    def _process_regular(self, samples: np.ndarray) -> None:
        """Every segment is ``n_fft`` samples long and they tile the stream: window them in place from the
        block (only a segment that straddles two blocks is copied)."""
        size = self._n_fft
        carried = self._carry.shape[0]  # always less than one segment
        complete = (carried + samples.shape[0]) // size
        if complete == 0:
            self._carry = np.concatenate([self._carry, samples])
            return
        head = size - carried if carried else 0  # samples of the block that complete the carried segment
        for first in range(0, complete, _BATCH_SEGMENTS):
            rows = min(_BATCH_SEGMENTS, complete - first)
            windowed = np.empty((rows, size), dtype=np.float32)
            regular_from = 0
            if first == 0 and carried:
                windowed[0, :carried] = self._carry
                windowed[0, carried:] = samples[:head]
                windowed[0] *= self._window
                regular_from = 1
            begin = head + (first + regular_from - (1 if carried else 0)) * size
            count = rows - regular_from
            tiles = samples[begin : begin + count * size].reshape(count, size)
            np.multiply(tiles, self._window, out=windowed[regular_from:])
            self._chunks.append(self._codes_of_windowed(windowed))
        used = head + (complete - (1 if carried else 0)) * size
        self._carry = samples[used:].copy()
        self._consumed += carried + used
        self._n_segments += complete

    def _process_gathered(self, samples: np.ndarray) -> None:
        """Rates not divisible by 25: segments of varying length, gathered and zero-padded."""
        self._carry = np.concatenate([self._carry, samples]) if self._carry.size else samples.copy()
        end = self._consumed + self._carry.shape[0]
        last = self._n_segments
        while self._segment_start(last + 1) <= end:
            last += 1
        for first in range(self._n_segments, last, _BATCH_SEGMENTS):
            self._chunks.append(self._codes(first, min(first + _BATCH_SEGMENTS, last)))
        if last > self._n_segments:
            keep_from = self._segment_start(last) - self._consumed
            self._carry = self._carry[keep_from:].copy()
            self._consumed += keep_from
            self._n_segments = last

    def _codes(self, first: int, stop: int) -> np.ndarray:
        """Quantised band levels of segments ``first`` to ``stop - 1`` of the carry buffer (the last may be
        partial: it is zero-padded)."""
        starts = np.array([self._segment_start(j) for j in range(first, stop + 1)], dtype=np.int64)
        starts -= self._consumed
        ends = np.minimum(starts[1:], self._carry.shape[0])
        index = starts[:-1, None] + np.arange(self._n_fft)[None, :]
        valid = index < ends[:, None]
        frames = np.where(valid, self._carry[np.minimum(index, self._carry.shape[0] - 1)], np.float32(0.0))
        return self._codes_of_windowed(frames.astype(np.float32, copy=False) * self._window)

    def _codes_of_windowed(self, windowed: np.ndarray) -> np.ndarray:
        """Quantised band levels of Hann-windowed float32 segments, one per row (``windowed`` is reused)."""
        spectrum = scipy.fft.rfft(windowed, axis=1, workers=1, overwrite_x=True)
        # Power in float64 from the float32 spectrum; the interleaved real and imaginary parts are summed
        # per band directly (2 * bin and 2 * bin + 1).
        squares = np.square(spectrum.view(np.float32), dtype=np.float64)
        band_power = np.add.reduceat(squares, self._interleaved_starts, axis=1)
        band_power *= self._band_scale
        band_power += 1e-30
        db = np.log10(band_power, out=band_power)
        db *= 10.0 / _DB_STEP
        db -= _DB_FLOOR / _DB_STEP
        return np.clip(np.round(db, out=db), 0, 255).astype(np.uint8)

    def _code_chunks(self, rows: int = 4096) -> list[np.ndarray]:
        """Band-level codes (uint8) of every segment so far in chunks of at most ``rows`` segments (views,
        no copies), the trailing partial segment included; callers expand one chunk at a time."""
        chunks = [c[i : i + rows] for c in self._chunks for i in range(0, c.shape[0], rows)]
        if self._carry.shape[0]:
            chunks.append(self._codes(self._n_segments, self._n_segments + 1))
        return chunks

    def long_term_spectrum(self, *, speech_mask: np.ndarray | None = None) -> np.ndarray | None:
        """Mean band power (dB) over speech segments, or ``None`` when no segment is selected.

        ``speech_mask`` is a boolean array on the 10 ms grid; a segment's weight is the share of its four
        frames that are speech. Without a mask the loudest :data:`LOUDEST_FRACTION` of segments are used.
        Works chunk by chunk on the stored codes, so memory stays a few MB whatever the length.
        """
        chunks = self._code_chunks()
        n = sum(c.shape[0] for c in chunks)
        if n == 0:
            return None
        if speech_mask is None:
            loudness = np.concatenate([_CODE_POWER[c].sum(axis=1) for c in chunks])
            keep = max(1, math.ceil(LOUDEST_FRACTION * n))
            order = np.argsort(loudness, kind="stable")[::-1][:keep]
            weights = np.zeros(n)
            weights[order] = 1.0
        else:
            weights = _speech_weights(speech_mask, n)
        total = float(weights.sum())
        if total <= 0:
            return None
        acc = np.zeros(self._n_bands, dtype=np.float64)
        first = 0
        for c in chunks:
            w = weights[first : first + c.shape[0]]
            first += c.shape[0]
            if w.any():
                acc += w @ _CODE_POWER[c]
        return 10.0 * np.log10(acc / total + 1e-30)

    def speech_excess_db(self, *, speech_mask: np.ndarray | None = None) -> np.ndarray | None:
        """Per band, how far the speech segments' mean power lies above the stationary noise floor (dB).

        The floor of a band is the mean power of the quietest :data:`NOISE_FRACTION` of all complete
        segments, speech or not (speech is sparse in time in every band, so even a recording without
        pauses has quiet segments in each band), times the ratio that stationary noise has between its
        mean and the mean of its quietest share in that band (calibrated once per sample rate on white
        noise through this very meter). A band that holds only stationary noise reads about 0 dB, one
        where speech adds power reads more. The speech segments are those of
        :meth:`long_term_spectrum`. ``None`` with fewer than :data:`MIN_EXCESS_SEGMENTS` audible
        complete segments, or when no segment is selected as speech.
        """
        floor_db = self._noise_floor_db()
        if floor_db is None:
            return None
        speech_db = self.long_term_spectrum(speech_mask=speech_mask)
        if speech_db is None:
            return None
        return speech_db - floor_db

    def speech_peak_excess_db(self, *, speech_mask: np.ndarray) -> np.ndarray | None:
        """Per band, how far the loudest speech segments lie above what the noise alone would give (dB).

        The mean power of the loudest :data:`LOUD_FRACTION` of the speech segments (at least half of
        their frames speech) in each band, against the quietest :data:`NOISE_FRACTION` of all audible
        segments times the ratio the two shares have in stationary white noise (calibrated through this
        meter). The mean speech excess of :meth:`speech_excess_db` is diluted by the many speech segments
        whose high band is empty (vowels): under full-band hiss at 20 dB SNR a 16 kHz voice's last
        kilohertz rises only 1-3 dB over the floor on average, while its fricatives, which are what
        reaches up there, rise 5-20 dB. A band that holds only stationary noise reads about 0 dB.
        ``None`` as for :meth:`speech_excess_db`, or with fewer than :data:`MIN_EXCESS_SEGMENTS` speech
        segments.
        """
        quiet = self._quiet_power()
        if quiet is None:
            return None
        chunks = self._code_chunks()
        weights = _speech_weights(speech_mask, sum(c.shape[0] for c in chunks))
        counts = np.zeros((self._n_bands, 256), dtype=np.int64)
        first = 0
        for c in chunks:
            speech = c[weights[first : first + c.shape[0]] >= 0.5]
            first += c.shape[0]
            counts += _band_histograms(speech)
        n_speech = int(counts[0].sum())
        if n_speech < MIN_EXCESS_SEGMENTS:
            return None
        loud_db = 10.0 * np.log10(_loud_mean_power(counts, n_speech, LOUD_FRACTION) + 1e-30)
        return loud_db - 10.0 * np.log10(quiet + 1e-30) - _loud_over_quiet_db(self.sample_rate)

    def _quiet_power(self) -> np.ndarray | None:
        """Per band, the mean power of the quietest :data:`NOISE_FRACTION` of the audible complete
        segments, or ``None`` with fewer than :data:`MIN_EXCESS_SEGMENTS` of them (read-only; kept until
        more segments come in: :meth:`finish` asks for it through both excesses)."""
        if self._quiet is None or self._quiet[0] != self._n_segments:
            quiet = self._measure_quiet_power()
            if quiet is not None:
                quiet.setflags(write=False)
            self._quiet = (self._n_segments, quiet)
        return self._quiet[1]

    def _measure_quiet_power(self) -> np.ndarray | None:
        """:meth:`_quiet_power` computed afresh."""
        # Band histograms of the audible complete segments, chunk by chunk (no copy of all the codes).
        counts = np.zeros((self._n_bands, 256), dtype=np.int64)
        n_audible = 0
        for chunk in (c[i : i + 4096] for c in self._chunks for i in range(0, c.shape[0], 4096)):
            audible = chunk[chunk.max(axis=1) > _SILENT_CODE]
            n_audible += audible.shape[0]
            counts += _band_histograms(audible)
        if n_audible < MIN_EXCESS_SEGMENTS:
            return None
        return _quiet_mean_power(counts, n_audible, NOISE_FRACTION)

    def _noise_floor_db(self) -> np.ndarray | None:
        """Per band, the calibrated stationary noise floor (dB) of :meth:`speech_excess_db`, or ``None``
        with fewer than :data:`MIN_EXCESS_SEGMENTS` audible complete segments."""
        quiet = self._quiet_power()
        if quiet is None:
            return None
        return 10.0 * np.log10(quiet + 1e-30) + _noise_floor_ratio_db(self.sample_rate)

    def block_bandwidths(
        self,
        *,
        speech_mask: np.ndarray,
        block_s: float = BLOCK_S,
        min_speech_s: float = BLOCK_MIN_SPEECH_S,
        noise_aware: bool = False,
    ) -> np.ndarray:
        """Effective bandwidth (Hz) of each ``block_s`` stretch of the recording, NaN where not measured.

        The plain cliff of :meth:`finish` (:func:`find_cliff`, all blocks at once) on the speech segments
        of each block alone, so a recording whose bandwidth changes along the way (a phone call inside a
        studio recording, a band-limited take) shows where. With ``noise_aware`` (worth it only when the
        whole recording's bandwidth needed it: a band limit under hiss), blocks without a plain cliff get
        the noise-aware one against the recording's noise floor, as :meth:`finish` does (when the
        recording's came from its loudest speech segments, blocks still without one are NaN). A block
        with less than ``min_speech_s`` of speech, or silent, is NaN. Works chunk by chunk on the stored
        codes.
        """
        per = max(1, round(block_s / (FRAMES_PER_SEGMENT * FRAME_S)))
        chunks = self._code_chunks(rows=per * max(1, 4096 // per))  # chunk edges fall on block edges
        n = sum(c.shape[0] for c in chunks)
        n_blocks = -(-n // per)
        acc = np.zeros((n_blocks, self._n_bands), dtype=np.float64)
        weight = np.zeros(n_blocks, dtype=np.float64)
        speech = _speech_weights(speech_mask, n)
        first = 0
        for c in chunks:
            w = speech[first : first + c.shape[0]]
            rows = np.arange(first, first + c.shape[0]) // per
            first += c.shape[0]
            if not w.any():
                continue
            starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
            acc[rows[starts]] += np.add.reduceat(w[:, None] * _CODE_POWER[c], starts, axis=0)
            weight[rows[starts]] += np.add.reduceat(w, starts)
        out = np.full(n_blocks, np.nan)
        enough = weight * FRAMES_PER_SEGMENT * FRAME_S >= min_speech_s - 1e-9
        spectra_db = 10.0 * np.log10(acc[enough] / weight[enough, None] + 1e-30)
        audible = spectra_db.max(axis=1) >= _SILENT_DB if spectra_db.size else np.zeros(0, dtype=bool)
        cliffs = find_cliffs(spectra_db[audible], self._edges, drop_db=self.drop_db)
        floor_db = self._noise_floor_db() if noise_aware and audible.any() else None
        if floor_db is not None:
            # Only where no plain cliff was found (as finish() does); slow, so only when asked.
            rows = spectra_db[audible]
            for k in np.flatnonzero(cliffs >= self._nyquist):
                cliff = find_excess_cliff(rows[k] - floor_db, self._edges)
                if cliff is not None:
                    cliffs[k] = cliff
            if self.peak_excess_cliff:
                cliffs[cliffs >= self._nyquist] = np.nan  # no block alone has enough loud segments
        measured = np.flatnonzero(enough)[audible]
        out[measured] = cliffs
        return out

    def finish(self, *, speech_mask: np.ndarray | None = None) -> Analysis:
        """Return ``bandwidth_hz`` and ``bandwidth_class`` for everything processed so far.

        The plain cliff of the speech segments' spectrum (:func:`find_cliff`); when it finds none and a
        ``speech_mask`` is given, the noise-aware cliff of the speech excess (:func:`find_excess_cliff`);
        otherwise Nyquist.
        """
        result = Analysis()
        if self._n_samples == 0:
            result.put("bandwidth_hz", None, why="empty: no samples were processed")
            result.put("bandwidth_class", None, why="empty: no samples were processed")
            return result
        spectrum_db = self.long_term_spectrum(speech_mask=speech_mask)
        if spectrum_db is None:
            why = "no_speech: the speech mask selects no frames"
            result.put("bandwidth_hz", None, why=why)
            result.put("bandwidth_class", None, why=why)
            return result
        if float(spectrum_db.max()) < _SILENT_DB:
            why = "not_measured: the signal is silent"
            result.put("bandwidth_hz", None, why=why)
            result.put("bandwidth_class", None, why=why)
            return result
        bandwidth_hz = find_cliff(spectrum_db, self._edges, drop_db=self.drop_db)
        if bandwidth_hz >= self._nyquist and speech_mask is not None:
            # The speech spectrum is at hand: no speech_excess_db().
            floor_db = self._noise_floor_db()
            cliff = None if floor_db is None else find_excess_cliff(spectrum_db - floor_db, self._edges)
            self.noise_aware_cliff = cliff is not None
            if cliff is None and floor_db is not None:
                peak_excess = self.speech_peak_excess_db(speech_mask=speech_mask)
                cliff = None if peak_excess is None else find_excess_cliff(peak_excess, self._edges)
                self.peak_excess_cliff = cliff is not None
            bandwidth_hz = bandwidth_hz if cliff is None else cliff
        result.put("bandwidth_hz", float(bandwidth_hz))
        result.put("bandwidth_class", bandwidth_class(bandwidth_hz))
        return result


def find_cliff(spectrum_db: np.ndarray, band_edges_hz: np.ndarray, *, drop_db: float = 20.0) -> float:
    """Highest frequency (Hz) above which ``spectrum_db`` drops by ``drop_db`` and stays down.

    ``spectrum_db`` holds one level per band (power per hertz, any dB reference); ``band_edges_hz`` has
    one more entry. A cliff at edge ``f`` needs: a reference level, the median of the kilohertz below
    ``f``, that is real content (within 60 dB of the spectrum's peak, not a numerical floor); the band just
    below ``f`` within 10 dB of the reference (the content reaches ``f``); every band from ``f + 400`` to
    ``f + 800`` Hz at least ``drop_db`` under the reference (the drop is sharp: a natural roll-off of
    speech takes a kilohertz or more to lose 20 dB); and the 95th percentile of all bands from
    ``f + 400`` Hz to Nyquist also that far down (it stays down). Edges are tried from the top; without
    a cliff above 1 kHz the bandwidth is the last band edge (Nyquist).
    """
    levels = np.asarray(spectrum_db, dtype=np.float64)
    return float(find_cliffs(levels[None, :], band_edges_hz, drop_db=drop_db)[0])


def find_cliffs(spectra_db: np.ndarray, band_edges_hz: np.ndarray, *, drop_db: float = 20.0) -> np.ndarray:
    """:func:`find_cliff` of every row of ``spectra_db`` (rows x bands) at once, as an array of Hz."""
    levels = np.asarray(spectra_db, dtype=np.float64)
    edges = np.asarray(band_edges_hz, dtype=np.float64)
    nyquist = float(edges[-1])
    lower = edges[:-1]
    out = np.full(levels.shape[0], nyquist)
    if levels.shape[0] == 0:
        return out
    peak = levels.max(axis=1)
    todo = np.arange(levels.shape[0])
    for e in range(levels.shape[1] - 1, 0, -1):
        edge_hz = float(lower[e])
        if edge_hz < _MIN_CLIFF_HZ or todo.size == 0:
            break
        above_from = edge_hz + _TRANSITION_HZ
        near_bands = (lower >= above_from) & (lower < above_from + _NEAR_HZ)
        if nyquist - above_from < _MIN_ABOVE_HZ or not near_bands.any():
            continue
        rows = levels[todo]
        reference = np.median(rows[:, (lower >= edge_hz - _REFERENCE_HZ) & (lower < edge_hz)], axis=1)
        limit = reference - drop_db
        found = (reference >= peak[todo] - _CONTENT_RANGE_DB) & (
            rows[:, e - 1] >= reference - _EDGE_WITHIN_DB
        )
        found &= rows[:, near_bands].max(axis=1) <= limit
        if found.any():
            stays = np.percentile(rows[found][:, lower >= above_from], _STAYS_DOWN_PERCENTILE, axis=1)
            found[found] = stays <= limit[found]
            out[todo[found]] = edge_hz
            todo = todo[~found]
    return out


def _speech_weights(speech_mask: np.ndarray, n: int) -> np.ndarray:
    """Per segment of ``n``, the share of its frames that ``speech_mask`` (10 ms grid, cut or padded with
    non-speech to the segments) marks as speech."""
    frames = fit_mask(np.asarray(speech_mask), n * FRAMES_PER_SEGMENT)
    return np.count_nonzero(frames.reshape(n, FRAMES_PER_SEGMENT), axis=1) / float(FRAMES_PER_SEGMENT)


def _band_histograms(codes: np.ndarray) -> np.ndarray:
    """Per band (column) of quantised ``codes``, the count of each of the 256 code values."""
    n_bands = codes.shape[1]
    keyed = codes.astype(np.intp)  # bincount's own index type: no second conversion inside it
    keyed += np.arange(0, n_bands * 256, 256, dtype=np.intp)
    return np.bincount(keyed.reshape(-1), minlength=n_bands * 256).reshape(n_bands, 256)


def _loud_mean_power(counts: np.ndarray, n: int, fraction: float) -> np.ndarray:
    """Per band, the mean power of the loudest ``fraction`` of ``n`` rows, from the bands' code histograms
    (:func:`_band_histograms`)."""
    return _quiet_mean_power(counts[:, ::-1], n, fraction, power=_CODE_POWER[::-1])


def _quiet_mean_power(
    counts: np.ndarray, n: int, fraction: float, *, power: np.ndarray = _CODE_POWER
) -> np.ndarray:
    """Per band, the mean power of the quietest ``fraction`` of ``n`` rows, from the bands' code histograms
    (:func:`_band_histograms`)."""
    take_total = max(1, int(fraction * n))
    counts = counts.astype(np.float64)
    before = np.cumsum(counts, axis=1) - counts
    take = np.clip(take_total - before, 0.0, counts)
    return (take * power[None, :]).sum(axis=1) / take_total


@functools.lru_cache(maxsize=16)
def _noise_floor_ratio_db(sample_rate: int) -> np.ndarray:
    """Per band: the mean power of stationary white noise over the mean of its quietest share (dB)."""
    return _white_noise_ratio_db(sample_rate, loud=False)


@functools.lru_cache(maxsize=16)
def _loud_over_quiet_db(sample_rate: int) -> np.ndarray:
    """Per band: the mean of the loudest share of stationary white noise over that of its quietest (dB)."""
    return _white_noise_ratio_db(sample_rate, loud=True)


def _band_make_up(meter: BandwidthMeter) -> np.ndarray:
    """Per band of ``meter``: its number of FFT bins, -1 for the DC band and -2 for the Nyquist band."""
    make_up = meter._bins_per_band.copy()
    make_up[0], make_up[-1] = -1.0, -2.0
    return make_up


def _white_noise_ratio_db(sample_rate: int, *, loud: bool) -> np.ndarray:
    """:func:`simulate_white_noise_ratio_db`, read from :mod:`pipeline.analysis.calibration` at the rates
    stored there (the simulation took 0.03-0.12 s per rate and process; read-only)."""
    stored = (calibration.WHITE_NOISE_LOUD if loud else calibration.WHITE_NOISE_QUIET).get(int(sample_rate))
    make_up = _band_make_up(BandwidthMeter(sample_rate=sample_rate))
    if stored is None or sample_rate != int(sample_rate) or not set(make_up.astype(int)) <= set(stored):
        return simulate_white_noise_ratio_db(sample_rate, loud=loud)
    shared = np.array([stored[int(value)] for value in make_up], dtype=np.float64)
    shared.setflags(write=False)
    return shared


def simulate_white_noise_ratio_db(sample_rate: int, *, loud: bool) -> np.ndarray:
    """Per band, in white noise: the mean power (``loud``: of the loudest :data:`LOUD_FRACTION`) over the
    mean power of the quietest :data:`NOISE_FRACTION` of the segments (dB).

    Measured on seeded white noise through a meter at ``sample_rate``, then shared among bands of the
    same make-up (number of FFT bins; the DC and Nyquist bands apart), so the calibration's own scatter
    does not leak into the answer.
    """
    meter = BandwidthMeter(sample_rate=sample_rate)
    rng = np.random.default_rng(0)
    block = meter._segment_start(_CALIBRATION_SEGMENTS // 8)
    for _ in range(8):
        meter.process(rng.standard_normal(block).astype(np.float32) * np.float32(0.01))
    codes = np.concatenate(meter._chunks, axis=0)
    counts = _band_histograms(codes)
    if loud:
        top_power = _loud_mean_power(counts, codes.shape[0], LOUD_FRACTION)
    else:
        top_power = _CODE_POWER[codes].mean(axis=0)
    ratio = 10.0 * np.log10(top_power / _quiet_mean_power(counts, codes.shape[0], NOISE_FRACTION))
    make_up = _band_make_up(meter)
    shared = np.empty_like(ratio)
    for value in np.unique(make_up):
        same = make_up == value
        shared[same] = np.median(ratio[same])
    shared.setflags(write=False)
    return shared


def find_excess_cliff(excess_db: np.ndarray, band_edges_hz: np.ndarray) -> float | None:
    """Highest edge where the speech excess falls from clearly present to nothing, or ``None``.

    ``excess_db`` holds one speech excess per band (:meth:`BandwidthMeter.speech_excess_db`: dB over the
    noise floor, 0 where there is only noise); ``band_edges_hz`` has one more entry. A cliff at edge
    ``f`` needs: the median excess of the kilohertz below ``f``, and the excess of the band just below
    ``f``, at least :data:`EXCESS_PRESENT_DB` (the speech reaches ``f``); every kilohertz-wide stretch
    from ``f + 400`` Hz to Nyquist, and its first 400 Hz, at most :data:`EXCESS_ABSENT_DB` on average
    (above, the speech segments look like the noise); and the speech power (excess as a power ratio) of
    ``f + 400`` to ``f + 800`` Hz at least :data:`EXCESS_DROP_DB` under that of the kilohertz below
    (sharp). Edges are tried from the top, down to 1 kHz.
    """
    excess = np.asarray(excess_db, dtype=np.float64)
    edges = np.asarray(band_edges_hz, dtype=np.float64)
    nyquist = float(edges[-1])
    lower = edges[:-1]
    width = np.diff(edges)
    for e in range(excess.shape[0] - 1, 0, -1):
        edge_hz = float(lower[e])
        if edge_hz < _MIN_CLIFF_HZ:
            break
        above_from = edge_hz + _TRANSITION_HZ
        if nyquist - above_from < _MIN_ABOVE_HZ:
            continue
        below = (lower >= edge_hz - _REFERENCE_HZ) & (lower < edge_hz)
        reference = float(np.median(excess[below]))
        if reference < EXCESS_PRESENT_DB:
            continue
        if excess[e - 1] < EXCESS_PRESENT_DB:
            continue
        if _max_window_mean(excess, lower, width, start_hz=above_from) > EXCESS_ABSENT_DB:
            continue
        # Sharp: the speech power falls by EXCESS_DROP_DB within the transition. Speech that fades into
        # the noise over a kilohertz (a natural roll-off under a high floor) is not a cliff.
        near = (lower >= above_from) & (lower < above_from + _NEAR_HZ)
        if not near.any():
            continue
        near_ratio = float(np.average(10.0 ** (excess[near] / 10.0) - 1.0, weights=width[near]))
        reference_ratio = 10.0 ** (reference / 10.0) - 1.0
        if max(near_ratio, _NEAR_RATIO_FLOOR) > reference_ratio * 10.0 ** (-EXCESS_DROP_DB / 10.0):
            continue
        return edge_hz
    return None


def _max_window_mean(values: np.ndarray, lower: np.ndarray, width: np.ndarray, *, start_hz: float) -> float:
    """Largest width-weighted mean of ``values`` over the bands from ``start_hz`` up, taken over their
    first :data:`_NEAR_HZ` and over every stretch of :data:`_REFERENCE_HZ` that starts at a band edge and
    fits below the top (the whole range when it is shorter): averaging several bands keeps the chance
    scatter of single bands out, while a kilohertz of real content still shows."""
    keep = lower >= start_hz
    v, w, lo = values[keep], width[keep], lower[keep]
    top = float(lo[-1] + w[-1])
    cum_vw = np.concatenate([[0.0], np.cumsum(v * w)])
    cum_w = np.concatenate([[0.0], np.cumsum(w)])
    starts = np.flatnonzero(lo + _REFERENCE_HZ <= top + 1e-6)
    if starts.size == 0:
        starts = np.array([0])
    ends = np.maximum(np.searchsorted(lo, lo[starts] + _REFERENCE_HZ - 1e-6, side="left"), starts + 1)
    ends = np.minimum(ends, lo.shape[0])
    near_end = max(int(np.searchsorted(lo, lo[0] + _NEAR_HZ - 1e-6, side="left")), 1)
    starts = np.concatenate([starts, [0]])
    ends = np.concatenate([ends, [near_end]])
    means = (cum_vw[ends] - cum_vw[starts]) / (cum_w[ends] - cum_w[starts])
    return float(means.max())
