"""The contract between selection and rendering: which spans of which recordings make a clip, and how good.

Selection (:mod:`pipeline.selection.select`) produces :class:`ClipPlan` objects; rendering (:mod:`pipeline.render.clip`)
turns one plan into a file. Times are seconds in the *source* recording's timeline. Both read a piece's
audio as :class:`PieceAudio` (the slow pass at 16 kHz, the renderer at its working rate).

Every plan that leaves selection, single window or assembled, refined or not, is measured and scored by
:func:`evaluate`, so the figures on a plan always come from one place. The window search
(:mod:`pipeline.selection.windows`) uses the same measures in vectorised form to rank millions of
windows; :func:`evaluate` then gives the survivors their exact figures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from pipeline.analysis.base import Analysis
from pipeline.errors import InvalidArgument
from pipeline.rules.families import FamilySpec
from pipeline.selection import scoring
from pipeline.selection.frames import RecordingIndex, float_or_nan, iqr
from pipeline.selection.limits import is_long

MAX_OVERLAP = 0.5
"""Two plans overlap too much when the source time they share exceeds this share of the shorter one."""


@dataclass(frozen=True)
class Piece:
    """One span of one recording, from the start of its first word to the end of its last.

    ``start_s``/``end_s`` lie on speech boundaries (never inside a word); the renderer adds room tone
    before and after from the bounding pauses. ``long_pauses`` are pauses inside the span longer than
    the family allows: the renderer shortens each to the family's ``pause_target_s`` by cutting at its
    quietest part. ``channel_weights`` is the channel mix the analysis used (mono = block @ weights).
    """

    path: str
    source: str
    start_s: float
    end_s: float
    channel_weights: tuple[float, ...]
    long_pauses: tuple[tuple[float, float], ...] = ()
    lead_room_s: float = 0.0
    """Silence available before ``start_s`` (s) inside the recording, up to the previous speech."""
    tail_room_s: float = 0.0
    """Silence available after ``end_s`` (s) inside the recording, up to the next speech."""

    @property
    def span_s(self) -> float:
        """``end_s - start_s``."""
        return self.end_s - self.start_s

    def to_dict(self) -> dict[str, Any]:
        """Plain data for manifests."""
        d = asdict(self)
        d["channel_weights"] = list(self.channel_weights)
        d["long_pauses"] = [list(p) for p in self.long_pauses]
        return d


@dataclass
class PieceAudio:
    """A piece's mono samples with some of the silence around it: ``x[k]`` lies at ``t0 + k / rate`` s."""

    piece: Piece
    x: np.ndarray
    t0: float
    rate: int

    def at(self, t: float) -> int:
        """Index of the sample at source time ``t``, within the samples read."""
        return min(max(round((t - self.t0) * self.rate), 0), self.x.shape[0])

    def time(self, index: int) -> float:
        """Source time (s) of sample ``index``."""
        return self.t0 + index / self.rate

    def cut(self, start_s: float, end_s: float) -> np.ndarray:
        """Samples of ``[start_s, end_s)``, within the samples read."""
        a = self.at(start_s)
        return self.x[a : max(self.at(end_s), a)]

    @property
    def start(self) -> int:
        """Index of the piece's ``start_s``."""
        return self.at(self.piece.start_s)

    @property
    def end(self) -> int:
        """Index of the piece's ``end_s``."""
        return self.at(self.piece.end_s)

    @cached_property
    def cumsq(self) -> np.ndarray:
        """Prefix sums of ``x**2`` with a leading 0: the energy of any stretch in O(1)."""
        return np.concatenate([[0.0], np.cumsum(self.x * self.x)])


def read_piece(piece: Piece, *, pad_s: float, rate: int | None = None) -> PieceAudio:
    """The piece's samples mixed to mono with its ``channel_weights``, with up to ``pad_s`` of its room
    (``lead_room_s``, ``tail_room_s``) on each side, at ``rate`` (``None``: the file's own rate)."""
    from pipeline.audio import io
    from pipeline.audio.resample import resample

    t0 = max(0.0, piece.start_s - min(piece.lead_room_s, pad_s))
    end = piece.end_s + min(piece.tail_room_s, pad_s)
    data, native = io.read_window(piece.source, start_s=t0, end_s=end)
    weights = np.asarray(piece.channel_weights, dtype=np.float32)
    if data.shape[1] != weights.size:
        raise InvalidArgument(
            f"piece {piece.path}: channel_weights has {weights.size} entries, the file has "
            f"{data.shape[1]} channel(s)"
        )
    mono = np.ascontiguousarray(data @ weights, dtype=np.float32)
    rate = native if rate is None else rate
    return PieceAudio(piece, resample(mono, in_rate=native, out_rate=rate), t0, rate)


@dataclass
class ClipPlan:
    """A candidate clip: its pieces in clip order, the expected result and how it scored.

    ``duration_s`` is the expected length of the rendered clip (pieces after pause shortening, plus
    joins and edge room tone); ``longest_run_s`` and ``max_pause_s`` are the expected speech figures
    after shortening, judged with the family's ``min_pause_s``.
    """

    family: str
    speaker: str
    pieces: list[Piece]
    duration_s: float
    longest_run_s: float
    max_pause_s: float
    score: float
    score_parts: dict[str, float] = field(default_factory=dict)
    measures: dict[str, Any] = field(default_factory=dict)
    """Window-level measurements used for scoring (snr_db, dnsmos_ovrl, ...)."""

    @property
    def assembled(self) -> bool:
        """True when the clip joins more than one piece."""
        return len(self.pieces) > 1

    def to_dict(self) -> dict[str, Any]:
        """Plain data for manifests (``alternatives`` and debugging)."""
        return {
            "family": self.family,
            "speaker": self.speaker,
            "assembled": self.assembled,
            "pieces": [p.to_dict() for p in self.pieces],
            "duration_s": round(self.duration_s, 3),
            "longest_run_s": round(self.longest_run_s, 3),
            "max_pause_s": round(self.max_pause_s, 3),
            "score": round(self.score, 4),
            "score_parts": {k: round(v, 4) for k, v in self.score_parts.items()},
            "measures": self.measures,
        }


def make_piece(idx: RecordingIndex, i: int, j: int) -> Piece:
    """The piece from the start of segment ``i`` to the end of segment ``j`` of a recording."""
    starts, ends = idx.starts, idx.ends
    long = (i + np.flatnonzero(idx.long[i:j])).tolist()
    lead = starts[i] - (ends[i - 1] if i > 0 else 0.0)
    tail = (starts[j + 1] if j + 1 < starts.size else idx.duration_s) - ends[j]
    return Piece(
        path=idx.rec.path,
        source=idx.rec.source,
        start_s=float(starts[i]),
        end_s=float(ends[j]),
        channel_weights=tuple(float(w) for w in idx.rec.channel_choice.weights),
        long_pauses=tuple((float(ends[k]), float(starts[k + 1])) for k in long),
        lead_room_s=round(max(float(lead), 0.0), 6),
        tail_room_s=round(max(float(tail), 0.0), 6),
    )


def piece_segments(idx: RecordingIndex, piece: Piece) -> list[tuple[float, float]]:
    """The recording's speech segments inside ``piece``, clipped to its (possibly refined) edges."""
    inside = (idx.ends > piece.start_s + 1e-9) & (idx.starts < piece.end_s - 1e-9)
    segs = [
        (max(float(s), piece.start_s), min(float(e), piece.end_s))
        for s, e in zip(idx.starts[inside], idx.ends[inside], strict=True)
    ]
    if not segs:
        return [(piece.start_s, piece.end_s)]
    # Edges moved outward by refinement extend the first and last segment.
    segs[0] = (piece.start_s, segs[0][1])
    segs[-1] = (segs[-1][0], piece.end_s)
    return segs


def expected_shape(
    pieces: Sequence[Sequence[tuple[float, float]]], spec: FamilySpec
) -> tuple[float, float, float, int]:
    """Expected duration, longest run and longest pause (s) of a clip whose pieces hold these speech
    segments, in clip order, and how many of its pauses are shortened.

    Inside a piece, gaps longer than ``max_pause_s`` are shortened to ``join_s``; between pieces the join
    is ``join_s``. A gap of ``min_pause_s`` or more (after shortening) is a pause and ends a run. The
    duration adds the edge room tone. This is the reference the vectorised window search agrees with.
    """
    lengths: list[float] = []
    gaps: list[float] = []
    long_count = 0
    for k, segs in enumerate(pieces):
        if k:
            gaps.append(spec.join_s)
        for m, (start, end) in enumerate(segs):
            if m:
                raw = start - segs[m - 1][1]
                long = bool(is_long(spec, np.array([raw]))[0])
                long_count += long
                gaps.append(spec.join_s if long else raw)
            lengths.append(end - start)
    runs: list[float] = [lengths[0]]
    pauses: list[float] = []
    for gap, length in zip(gaps, lengths[1:], strict=True):
        if gap >= spec.limits.min_pause_s.value - 1e-9:
            pauses.append(gap)
            runs.append(length)
        else:
            runs[-1] += gap + length
    return sum(lengths) + sum(gaps) + spec.edge_s, max(runs), max(pauses, default=0.0), long_count


def _weighted_mean(values: Sequence[float], weights: Sequence[float]) -> float:
    pairs = [(v, w) for v, w in zip(values, weights, strict=True) if not math.isnan(v) and w > 0]
    if not pairs:
        return math.nan
    return sum(v * w for v, w in pairs) / sum(w for _, w in pairs)


def _clean(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 3)


def evaluate(
    pieces: Sequence[Piece],
    indexes: Mapping[str, RecordingIndex],
    *,
    slow: Analysis | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ClipPlan:
    """Measure and score the clip made of ``pieces`` (in clip order) and return its plan.

    Per-piece measures are combined weighted by each piece's speech time (SNR, levels, reverb, DNSMOS
    estimate), summed (clipping events), or taken at their worst (bandwidth: the narrowest piece). With
    ``slow`` (``dnsmos_*`` values, see :func:`pipeline.selection.slow.dnsmos_of`) the window's own DNSMOS
    replaces the fast estimate. A piece that crosses part boundaries (``part_boundaries``, see
    :data:`~pipeline.selection.scoring.CROSSING_PENALTY`) costs the plan the crossing penalty.
    """
    spec = indexes[pieces[0].path].spec
    segs = [piece_segments(indexes[p.path], p) for p in pieces]
    duration_s, longest_run_s, max_pause_s, long_pauses = expected_shape(segs, spec)
    per: list[dict[str, float]] = []
    levels: list[np.ndarray] = []
    for piece in pieces:
        idx = indexes[piece.path]
        start, end = np.array([piece.start_s]), np.array([piece.end_s])
        m = {**idx.measure(start, end), "bandwidth_hz": idx.bandwidth_in(start, end)}
        per.append({k: float(v[0]) for k, v in m.items()})
        per[-1]["reverb_score"] = float_or_nan(idx.rec.metrics.get("reverb_score"))
        levels.append(idx.block_levels_in(piece.start_s, piece.end_s))
    speech = [m["speech_s"] for m in per]
    spans = [p.span_s for p in pieces]
    speech_s = sum(speech)
    body = duration_s - spec.edge_s
    level_iqr = iqr(np.concatenate(levels)) if levels else None
    known_bw = [m["bandwidth_hz"] for m in per if not math.isnan(m["bandwidth_hz"])]
    measures: dict[str, Any] = {
        "snr_db": _weighted_mean([m["snr_db"] for m in per], speech),
        "noise_dbfs": _weighted_mean([m["noise_dbfs"] for m in per], speech),
        "speech_level_dbfs": _weighted_mean([m["speech_level_dbfs"] for m in per], speech),
        "clipped_events": sum(m["clipped_events"] for m in per),
        "speech_s": speech_s,
        "speech_ratio": min(1.0, speech_s / body) if body > 0 else math.nan,
        "level_iqr_db": math.nan if level_iqr is None else level_iqr,
        "reverb_score": _weighted_mean([m["reverb_score"] for m in per], speech),
        "bandwidth_hz": min(known_bw) if known_bw else math.nan,
        "dnsmos_ovrl": _weighted_mean([m["dnsmos_ovrl"] for m in per], spans),
    }
    dnsmos_source = "fast_pass" if not math.isnan(measures["dnsmos_ovrl"]) else None
    if slow is not None:
        for key in ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak"):
            measures[key] = float_or_nan(slow.metrics.get(key))
        dnsmos_source = "window" if slow.metrics.get("dnsmos_ovrl") is not None else None
        if dnsmos_source and slow.metrics.get("dnsmos_segments") is not None:
            # A ranking estimate from part of the clip's cover (pipeline.selection.slow.finish, sample).
            dnsmos_source = "window_sample"
        if slow.metrics.get("dnsmos_spread") is not None:
            measures["dnsmos_spread"] = slow.metrics["dnsmos_spread"]
    crossed = sum(indexes[p.path].crossings_in(p.start_s, p.end_s) for p in pieces)
    parts = scoring.parts(measures, duration_s, spec)
    score = float(scoring.penalised(scoring.total(parts), crossed))
    out: dict[str, Any] = {k: _clean(v) for k, v in measures.items()}
    out["clipped_events"] = round(float(measures["clipped_events"]), 1)
    out["long_pauses"] = long_pauses
    out["part_boundaries"] = crossed
    out["dnsmos_source"] = dnsmos_source
    if dnsmos_source == "window_sample" and slow is not None:
        out["dnsmos_segments"] = int(slow.metrics["dnsmos_segments"])
        out["dnsmos_cover"] = int(slow.metrics["dnsmos_cover"])
    missing = _missing_reasons(out, slow)
    if missing:
        out["not_measured"] = missing
    if extra:
        out.update(extra)
    return ClipPlan(
        family=spec.name,
        speaker=indexes[pieces[0].path].rec.speaker,
        pieces=list(pieces),
        duration_s=round(duration_s, 6),
        longest_run_s=round(longest_run_s, 6),
        max_pause_s=round(max_pause_s, 6),
        score=score,
        score_parts={k: float(v) for k, v in parts.items() if not np.isnan(v)},  # the known parts
        measures=out,
    )


def _missing_reasons(out: Mapping[str, Any], slow: Analysis | None) -> dict[str, str]:
    """Why each missing measure is missing."""
    reasons: dict[str, str] = {}
    for key in ("reverb_score", "bandwidth_hz"):
        if out.get(key) is None:
            reasons[key] = f"not_measured: the fast pass could not measure the recording's {key}"
    if out.get("snr_db") is None:
        reasons["snr_db"] = "not_measured: no noise could be seen in or around the window"
    if out.get("level_iqr_db") is None:
        reasons["level_iqr_db"] = "not_measured: fewer than 3 one-second blocks hold speech"
    if out.get("dnsmos_ovrl") is None:
        why = slow.null_reasons.get("dnsmos_ovrl") if slow is not None else None
        reasons["dnsmos_ovrl"] = why or "not_measured: DNSMOS did not run on this window"
    return reasons


def overlap(a: ClipPlan, b: ClipPlan) -> float:
    """Source time shared by two plans, as a share of the shorter plan's total span (0-1)."""
    shared = 0.0
    for pa in a.pieces:
        for pb in b.pieces:
            if pa.path == pb.path:
                shared += max(0.0, min(pa.end_s, pb.end_s) - max(pa.start_s, pb.start_s))
    shorter = min(sum(p.span_s for p in a.pieces), sum(p.span_s for p in b.pieces))
    return shared / shorter if shorter > 0 else 0.0


def plan_key(plan: ClipPlan) -> tuple[Any, ...]:
    """Deterministic ordering: best score first, then source path and time."""
    first = plan.pieces[0]
    return (-round(plan.score, 9), first.path, first.start_s, first.end_s, len(plan.pieces))


def suppress(ranked: Sequence[ClipPlan], *, limit: int) -> list[ClipPlan]:
    """Greedy non-maximum suppression of plans ranked best first: each plan that overlaps one already kept
    by more than :data:`MAX_OVERLAP` is dropped, until ``limit`` are kept."""
    kept: list[ClipPlan] = []
    for plan in ranked:
        if all(overlap(plan, k) <= MAX_OVERLAP + 1e-9 for k in kept):
            kept.append(plan)
            if len(kept) >= limit:
                break
    return kept
