"""Window measures from the fast pass's frame arrays, in O(1) per window through prefix sums.

A :class:`RecordingIndex` is built once per recording from its :class:`~pipeline.analysis.base.Analysis`
(10 ms ``frame_db`` and ``speech_mask``); :meth:`RecordingIndex.measure` then measures any number of
windows ``[start_s, end_s)`` at once, vectorised:

* ``snr_db``: mean power of the window's speech frames against its *local* noise: the mean power of the
  audible pause frames in the window and :data:`NOISE_CONTEXT_S` around it
  (:func:`pipeline.analysis.snr.audible_pauses`, as :func:`~pipeline.analysis.snr.vad_snr_db` reads
  them), or, with fewer than :data:`MIN_NOISE_FRAMES` of them (speech without pauses, or pauses muted to
  digital silence), the mean of the fast pass's noise level under every frame there (``noise_db``: the
  noise followed under the speech, :func:`pipeline.analysis.snr.frame_noise`). Noise is measured locally
  because long recordings change rooms and backgrounds; a recording-wide floor would rate a noisy
  stretch as clean, and so did, before, the recording's pauses for a window of continuous noise (60 dB).
  A window whose noise cannot be told has no SNR (NaN): unknown, never clean (scored as
  :data:`~pipeline.selection.scoring.SNR_UNKNOWN_DB`).
* ``speech_s``, ``speech_level_dbfs``, ``clipped_events`` (fast-pass event times inside the window);
* ``level_spread_db``: an estimate of the inter-quartile range of per-second speech levels
  (1.349 standard deviations, exact for a normal spread), refined to the exact IQR by :meth:`level_iqr_db`
  for the windows that survive;
* ``dnsmos_ovrl``: the overlap-weighted mean OVRL of the fast pass's DNSMOS windows, when it ran DNSMOS.

The index also lays the recording's segments out as one family's rules see them (the *shortened
timeline*, see :mod:`pipeline.selection.windows`), so a window ``(i, j)`` from the start of segment ``i``
to the end of segment ``j`` is measured in O(1) as well: :meth:`RecordingIndex.clip_s` and
:meth:`~RecordingIndex.longest_run_s`.

In a recording of two voices, the speaker's ``turns`` (:attr:`pipeline.analysis.voice.Voice.turns`) narrow
its segments to the speaker's own stretches (:func:`within_turns`), and each turn is a block of its own
(as after a silence longer than :data:`~pipeline.selection.limits.SPLIT_PAUSE_S`): no window crosses the
other voice's turn, and joining takes (:mod:`pipeline.selection.assembly`) joins the speaker's turns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from pipeline.analysis.bandwidth import BLOCK_S as BANDWIDTH_BLOCK_S
from pipeline.analysis.base import FRAME_S, Analysis
from pipeline.analysis.clipping import MAX_EVENTS
from pipeline.analysis.snr import MIN_SNR_FRAMES, SNR_MAX_DB, SNR_MIN_DB, audible_pauses, frame_noise
from pipeline.rules.families import FamilySpec
from pipeline.selection import parts
from pipeline.selection.limits import MIN_EDGE_GAP_S, SPLIT_PAUSE_S, is_long, shortened

NOISE_CONTEXT_S = 1.0
"""Seconds on each side of a window whose noise counts towards its own."""

MIN_NOISE_FRAMES = 30
"""Audible pause frames (0.3 s) needed for a window's noise from its pauses; fewer: the noise level
followed under its speech."""

LEVEL_BLOCK_S = 1.0
"""Length of the blocks whose speech level is compared for loudness stability."""

MIN_BLOCK_SPEECH_S = 0.2
"""A block needs this much speech for its speech level to count."""

MIN_LEVEL_BLOCKS = 3
"""Blocks needed for a level spread."""

IQR_PER_STD = 1.349
"""Inter-quartile range of a normal distribution, in standard deviations."""

_POWER_FLOOR = 1e-12  # -120 dBFS, the frame-level floor of pipeline.analysis.energy
_EPS = 1e-9


def float_or_nan(value: object) -> float:
    """A recording-level metric as a float, NaN when missing or not a finite number."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def _cumsum0(x: np.ndarray) -> np.ndarray:
    """Prefix sums with a leading zero: ``out[b] - out[a]`` is ``x[a:b].sum()``."""
    out = np.zeros(x.size + 1, dtype=np.float64)
    np.cumsum(x, out=out[1:])
    return out


def _db(power: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(power, _POWER_FLOOR))


class RangeMax:
    """Sparse table for O(1) maximum queries over a fixed array of non-negative values."""

    def __init__(self, values: np.ndarray) -> None:
        v = np.asarray(values, dtype=np.float64)
        n = max(v.size, 1)
        levels = [np.concatenate([v, np.zeros(n - v.size)])]
        width = 1
        while 2 * width <= n:
            prev = levels[-1]
            nxt = np.zeros(n)
            nxt[: n - width] = np.maximum(prev[: n - width], prev[width:])
            levels.append(nxt)
            width *= 2
        self._table = np.stack(levels)

    def query(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Maximum of ``values[lo..hi]`` (inclusive) per query; 0 where ``lo > hi``."""
        lo = np.asarray(lo, dtype=np.int64)
        hi = np.asarray(hi, dtype=np.int64)
        length = hi - lo + 1
        ok = length > 0
        safe = np.where(ok, length, 1)
        k = np.floor(np.log2(safe)).astype(np.int64)
        lo_c = np.where(ok, lo, 0)
        right = np.where(ok, hi - (1 << k) + 1, 0)
        out = np.maximum(self._table[k, lo_c], self._table[k, right])
        return np.where(ok, out, 0.0)


TURN_SLACK_S = 0.5
"""A speech segment in the speaker's turn may reach this far beyond it (turns are shortened by about 1 s at
both ends, :data:`pipeline.analysis.voice.TURN_ERODE_PARTIALS`); beyond it, it is cut there. A segment
outside the turn is not taken into the slack: before a turn that follows music (speech to the voice
activity detector) the music ended within the slack and became a piece of the clip. Measured with GE2E;
CAM++'s turn edges lie closer to the other voice (36 interviews of ``voices_bench.py``, 392 edges next to a
guest turn, the 0.3-0.9 s gaps included: 0.004 s (one), 0.44 s at the 1st percentile, 1.1 s at the median),
and where turns follow each other without a gap (``tests/test_speaker_run.py``, the jingle interview) 0.5
reaches 0.34 s into the guest's turn; 0.25 and 0.35 cost the 16 s recording joined around its guest its
clip (too little of the host left). Not changed: a strict xfail."""
MIN_TURN_SEGMENT_S = 0.3
"""A segment holding less of a turn than this, or left shorter than this by a turn's edge, is dropped."""


def within_turns(segments: np.ndarray, turns: Sequence[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """The speech ``segments`` ``(n, 2)`` inside the speaker's ``turns``: each segment holding at least
    :data:`MIN_TURN_SEGMENT_S` of a turn, cut to the turn widened by :data:`TURN_SLACK_S` (pieces under
    :data:`MIN_TURN_SEGMENT_S` dropped), in order, and the turn each lies in."""
    kept: list[tuple[float, float]] = []
    turn_of: list[int] = []
    for k, (t0, t1) in enumerate(sorted(turns)):
        lo, hi = t0 - TURN_SLACK_S, t1 + TURN_SLACK_S
        for a, b in segments.tolist():
            if min(b, t1) - max(a, t0) < MIN_TURN_SEGMENT_S:  # not in the turn: the slack only lengthens
                continue
            a, b = max(a, lo), min(b, hi)
            if b - a >= MIN_TURN_SEGMENT_S:
                kept.append((a, b))
                turn_of.append(k)
    order = sorted(range(len(kept)), key=lambda k: kept[k])
    segs: list[tuple[float, float]] = []
    ids: list[int] = []
    for k in order:  # widened turns close together may overlap: a piece starts after the one before
        a, b = kept[k]
        a = max(a, segs[-1][1]) if segs else a
        if b - a >= MIN_TURN_SEGMENT_S:
            segs.append((a, b))
            ids.append(turn_of[k])
    return np.asarray(segs, dtype=np.float64).reshape(-1, 2), np.asarray(ids, dtype=np.int64)


class RecordingIndex:
    """Prefix sums over one recording's frames and segments (laid out by the family ``spec``), and its figures.
    ``turns``: the speaker's own stretches of a recording of two voices (:func:`within_turns`)."""

    def __init__(
        self, rec: Analysis, spec: FamilySpec, turns: Sequence[tuple[float, float]] | None = None
    ) -> None:
        db = np.asarray(rec.frame_db, dtype=np.float64)
        mask = np.asarray(rec.speech_mask, dtype=bool)
        self.rec = rec
        self.n_frames = db.size
        segs = np.asarray(rec.speech_segments, dtype=np.float64).reshape(-1, 2)
        turn_of = None
        if turns is not None:
            segs, turn_of = within_turns(segs, turns)
        self.starts = segs[:, 0].copy()
        self.ends = segs[:, 1].copy()
        self.duration_s = max(
            float(rec.metrics.get("duration_s") or 0.0),
            db.size * FRAME_S,
            float(self.ends[-1]) if segs.size else 0.0,
        )

        power = np.power(10.0, db / 10.0)
        noise = self._frame_noise(rec, power, mask)
        unknown = np.isnan(noise)
        noise = np.where(unknown, 0.0, noise)
        pauses = audible_pauses(power, mask)
        self._c_speech = _cumsum0(mask.astype(np.float64))
        self._c_speech_power = _cumsum0(power * mask)
        self._c_pauses = _cumsum0(pauses.astype(np.float64))
        self._c_pause_power = _cumsum0(power * pauses)
        self._c_noise = _cumsum0(noise)
        self._c_unknown = _cumsum0(unknown.astype(np.float64))

        per = round(LEVEL_BLOCK_S / FRAME_S)
        n_blocks = -(-db.size // per) if db.size else 0
        pad = n_blocks * per - db.size
        sp = np.concatenate([power * mask, np.zeros(pad)]).reshape(n_blocks, per).sum(axis=1)
        cnt = np.concatenate([mask.astype(np.float64), np.zeros(pad)]).reshape(n_blocks, per).sum(axis=1)
        valid = cnt * FRAME_S >= MIN_BLOCK_SPEECH_S - 1e-9
        level = np.where(valid, _db(sp / np.maximum(cnt, 1.0)), 0.0)
        self.block_levels = np.where(valid, level, np.nan)
        self._c_valid = _cumsum0(valid.astype(np.float64))
        self._c_level = _cumsum0(level)
        self._c_level2 = _cumsum0(level * level)

        blocks = np.asarray(rec.block_bandwidth_hz, dtype=np.float64).reshape(-1)
        self._block_bandwidth = np.where(np.isfinite(blocks), blocks, np.inf)
        self._bandwidth = float_or_nan(rec.metrics.get("bandwidth_hz"))

        events = np.sort(np.asarray(rec.metrics.get("clipped_events") or [], dtype=np.float64))
        self.clip_events = events
        self.clip_events_capped = events.size >= MAX_EVENTS
        self.dnsmos_windows = [
            (float(w["start_s"]), float(w["end_s"]), float(w["ovrl"]))
            for w in rec.dnsmos_windows
            if w.get("ovrl") is not None and float(w["end_s"]) > float(w["start_s"])
        ]

        # the segments under the family's rules: shortened timeline, blocks, runs, edge eligibility
        self.spec = spec
        s, e = self.starts, self.ends
        n = s.size
        gaps = s[1:] - e[:-1]
        short = shortened(spec, gaps)
        self.sp = np.zeros(n)  # segment starts on the shortened timeline
        self.ep = np.zeros(n)  # segment ends on the shortened timeline
        if n:
            lengths = e - s
            self.ep = np.cumsum(lengths) + np.concatenate([[0.0], np.cumsum(short)])
            self.sp = self.ep - lengths
        self.split = gaps > SPLIT_PAUSE_S
        if turn_of is not None:
            self.split |= np.diff(turn_of) != 0
        block_id = np.concatenate([[0], np.cumsum(self.split)]).astype(np.int64)
        last_of_block = np.concatenate([np.flatnonzero(self.split), [n - 1]]).astype(np.int64)
        # per segment: the last segment before the next enormous gap
        self.block_last = last_of_block[block_id] if n else np.zeros(0, np.int64)
        wide = gaps >= MIN_EDGE_GAP_S - _EPS
        self.start_ok = np.concatenate([[True], wide]) if n else np.zeros(0, bool)
        self.end_ok = np.concatenate([wide, [True]]) if n else np.zeros(0, bool)
        brk = (short >= spec.limits.min_pause_s.value - _EPS) | self.split
        self.run_id = np.concatenate([[0], np.cumsum(brk)]).astype(np.int64) if n else np.zeros(0, np.int64)
        n_runs = int(self.run_id[-1]) + 1 if n else 0
        self.run_first = np.searchsorted(self.run_id, np.arange(n_runs), side="left")
        self.run_last = np.searchsorted(self.run_id, np.arange(n_runs), side="right") - 1
        self._runs = RangeMax(self.ep[self.run_last] - self.sp[self.run_first] if n else np.zeros(0))
        self.long = is_long(spec, gaps)
        # Part boundaries (pipeline.selection.parts): where the conditions may change.
        bandwidth = np.asarray(rec.block_bandwidth_hz, dtype=np.float64).reshape(-1)
        boundary = self.split | parts.boundaries(
            db, s, e, block_bandwidth_hz=bandwidth, block_s=BANDWIDTH_BLOCK_S
        )
        self.part_id = (
            np.concatenate([[0], np.cumsum(boundary)]).astype(np.int64) if n else np.zeros(0, np.int64)
        )

    @property
    def rules(self) -> FamilySpec:
        """The old name of :attr:`spec`, which ``pipeline.selection.slow`` still reads (that module is being
        changed on another branch): drop it with ``selection.limits.Rules``."""
        return self.spec

    def crossings(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """How many part boundaries windows ``(i, j)`` cross (0: the window lies inside one part)."""
        return self.part_id[j] - self.part_id[i]

    def part_at(self, t: float) -> int:
        """The part of the segment at or last before time ``t`` (0 before the first segment)."""
        k = int(np.searchsorted(self.starts, t, side="right")) - 1
        return int(self.part_id[k]) if k >= 0 else 0

    def crossings_in(self, start_s: float, end_s: float) -> int:
        """How many part boundaries lie between the segments that ``[start_s, end_s]`` touches."""
        i = int(np.searchsorted(self.ends, start_s + _EPS, side="right"))
        j = int(np.searchsorted(self.starts, end_s - _EPS, side="left")) - 1
        return int(self.part_id[j] - self.part_id[i]) if 0 <= i <= j < self.part_id.size else 0

    def clip_s(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Expected clip length of windows ``(i, j)``: pauses shortened, plus the edge room tone."""
        return self.ep[j] - self.sp[i] + self.spec.edge_s

    def longest_run_s(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Longest run of speech of windows ``(i, j)`` after pause shortening."""
        ri, rj = self.run_id[i], self.run_id[j]
        first = self.ep[self.run_last[ri]] - self.sp[i]
        last = self.ep[j] - self.sp[self.run_first[rj]]
        middle = self._runs.query(ri + 1, rj - 1)
        return np.where(ri == rj, self.ep[j] - self.sp[i], np.maximum(np.maximum(first, last), middle))

    @staticmethod
    def _frame_noise(rec: Analysis, power: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The noise power under every frame: the fast pass's ``noise_db`` (NaN: unknown), or, for
        analyses made without it, :func:`~pipeline.analysis.snr.frame_noise` from the pauses alone."""
        levels = np.asarray(rec.noise_db, dtype=np.float64).reshape(-1)
        if levels.size != power.size:
            return frame_noise(power, mask)
        return np.where(np.isnan(levels), np.nan, np.power(10.0, levels / 10.0))

    def frame(self, t: np.ndarray) -> np.ndarray:
        """Frame index (clipped to ``[0, n_frames]``) of times ``t`` in seconds."""
        return np.clip(np.rint(np.asarray(t, dtype=np.float64) / FRAME_S), 0, self.n_frames).astype(np.int64)

    def measure(self, start_s: np.ndarray, end_s: np.ndarray) -> dict[str, np.ndarray]:
        """Measures of the windows ``[start_s[k], end_s[k])`` (arrays; NaN where not measurable)."""
        a, b = self.frame(start_s), self.frame(end_s)
        n_speech = self._c_speech[b] - self._c_speech[a]
        speech_power = (self._c_speech_power[b] - self._c_speech_power[a]) / np.maximum(n_speech, 1.0)
        ctx = round(NOISE_CONTEXT_S / FRAME_S)
        ca, cb = np.maximum(a - ctx, 0), np.minimum(b + ctx, self.n_frames)
        n_pauses = self._c_pauses[cb] - self._c_pauses[ca]
        from_pauses = (self._c_pause_power[cb] - self._c_pause_power[ca]) / np.maximum(n_pauses, 1.0)
        under_speech = (self._c_noise[cb] - self._c_noise[ca]) / np.maximum(cb - ca, 1)
        enough = n_pauses >= MIN_NOISE_FRAMES
        noise = np.where(enough, from_pauses, under_speech)
        with np.errstate(invalid="ignore", divide="ignore"):
            clean = np.maximum(speech_power - noise, noise * 10.0 ** (SNR_MIN_DB / 10.0))
            snr = 10.0 * np.log10(clean / np.maximum(noise, _POWER_FLOOR))
        snr = np.where(noise <= _POWER_FLOOR, SNR_MAX_DB, np.clip(snr, SNR_MIN_DB, SNR_MAX_DB))
        unknown = (~enough & (self._c_unknown[cb] - self._c_unknown[ca] > 0)) | (b <= a)
        noise = np.where(unknown, np.nan, noise)
        snr = np.where(unknown | (n_speech < MIN_SNR_FRAMES), np.nan, snr)

        per_block = LEVEL_BLOCK_S
        n_blocks = self.block_levels.size
        ba = np.clip(np.floor(np.asarray(start_s) / per_block), 0, n_blocks).astype(np.int64)
        bb = np.clip(np.ceil(np.asarray(end_s) / per_block), 0, n_blocks).astype(np.int64)
        nv = self._c_valid[bb] - self._c_valid[ba]
        mean = (self._c_level[bb] - self._c_level[ba]) / np.maximum(nv, 1.0)
        var = (self._c_level2[bb] - self._c_level2[ba]) / np.maximum(nv, 1.0) - mean * mean
        spread = np.where(nv >= MIN_LEVEL_BLOCKS, IQR_PER_STD * np.sqrt(np.maximum(var, 0.0)), np.nan)

        return {
            "snr_db": snr,
            "noise_dbfs": np.where(np.isnan(noise), np.nan, _db(noise)),
            "speech_s": n_speech * FRAME_S,
            "speech_level_dbfs": np.where(n_speech > 0, _db(speech_power), np.nan),
            "clipped_events": self.count_clipped(start_s, end_s),
            "level_spread_db": spread,
            "dnsmos_ovrl": self.dnsmos_estimate(start_s, end_s),
        }

    def bandwidth_in(self, start_s: np.ndarray, end_s: np.ndarray) -> np.ndarray:
        """Effective bandwidth (Hz) of each window: the narrowest measured bandwidth block at least half
        inside it (the block around its middle when none is), else the recording's (NaN if unknown)."""
        s = np.asarray(start_s, dtype=np.float64)
        e = np.asarray(end_s, dtype=np.float64)
        bw = self._block_bandwidth
        if bw.size == 0:
            return np.full(s.shape, self._bandwidth)
        # Block k spans [kB, (k+1)B); it is at least half inside [s, e) for ceil(s/B - 1/2) <= k < floor(e/B + 1/2).
        a = np.clip(np.ceil(s / BANDWIDTH_BLOCK_S - 0.5), 0, bw.size).astype(np.int64)
        b = np.clip(np.floor(e / BANDWIDTH_BLOCK_S + 0.5), 0, bw.size).astype(np.int64)
        mid = np.clip(np.floor((s + e) / 2.0 / BANDWIDTH_BLOCK_S), 0, bw.size - 1).astype(np.int64)
        empty = b <= a
        a, b = np.where(empty, mid, a), np.where(empty, mid + 1, b)
        pairs = np.empty(2 * s.size, dtype=np.int64)
        pairs[0::2], pairs[1::2] = a, b
        narrowest = np.minimum.reduceat(np.append(bw, np.inf), pairs)[0::2] if s.size else np.zeros(0)
        return np.where(np.isinf(narrowest), self._bandwidth, narrowest).reshape(s.shape)

    def count_clipped(self, start_s: np.ndarray, end_s: np.ndarray) -> np.ndarray:
        """Clipping events inside each window (float: estimated past the fast pass's event cap)."""
        s, e = np.asarray(start_s, dtype=np.float64), np.asarray(end_s, dtype=np.float64)
        ev = self.clip_events
        count = (np.searchsorted(ev, e, side="left") - np.searchsorted(ev, s, side="left")).astype(np.float64)
        if self.clip_events_capped and ev.size and ev[-1] > 0:
            # The list stops at MAX_EVENTS: past its last event, assume the density seen so far.
            rate = ev.size / ev[-1]
            count += rate * np.maximum(e - np.maximum(s, ev[-1]), 0.0)
        return count

    def dnsmos_estimate(self, start_s: np.ndarray, end_s: np.ndarray) -> np.ndarray:
        """Overlap-weighted mean OVRL of the fast pass's DNSMOS windows (NaN when there are none)."""
        s, e = np.asarray(start_s, dtype=np.float64), np.asarray(end_s, dtype=np.float64)
        total = np.zeros(s.shape)
        weight = np.zeros(s.shape)
        for ws, we, ovrl in self.dnsmos_windows:
            w = np.clip(np.minimum(e, we) - np.maximum(s, ws), 0.0, None)
            total += w * ovrl
            weight += w
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(weight > 0, total / np.maximum(weight, 1e-12), np.nan)

    def block_levels_in(self, start_s: float, end_s: float) -> np.ndarray:
        """Per-second speech levels (dBFS) of the blocks ``[start_s, end_s)`` touches, where measurable."""
        n_blocks = self.block_levels.size
        a = min(max(math.floor(start_s / LEVEL_BLOCK_S), 0), n_blocks)
        b = min(max(math.ceil(end_s / LEVEL_BLOCK_S), 0), n_blocks)
        part = self.block_levels[a:b]
        return part[~np.isnan(part)]


def iqr(values: np.ndarray) -> float | None:
    """Inter-quartile range of ``values``; ``None`` with fewer than :data:`MIN_LEVEL_BLOCKS` of them."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < MIN_LEVEL_BLOCKS:
        return None
    q75, q25 = np.percentile(v, [75.0, 25.0])
    return float(q75 - q25)
