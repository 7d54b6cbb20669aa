"""Joining short takes of one speaker into one clip when no single recording holds a window as long as the
family's duration aim (the joined plans then compete with the windows there are on their scores).

A *stretch* is the whole speech span of a recording (first segment start to last segment end), split at
silences longer than :data:`~pipeline.selection.limits.SPLIT_PAUSE_S`, evaluated as a plan of its own
(:func:`stretches`); its *quality* is that plan's score without the duration part. Stretches are joined
only when their recordings sound alike, so the clip does not jump between rooms or microphones:

* integrated loudness within :data:`MATCH_LUFS_LU` (the renderer normalises the clip as a whole, so a
  louder take stays louder; 3 LU is about the just-noticeable step for speech level in a sequence);
* room tone within :data:`MATCH_NOISE_FLOOR_DB` (the quietest 50 ms of each, :func:`room_tone_dbfs`: the
  background between and under the takes; 6 dB is a clearly audible but not jarring change in a steady
  background);
* the same bandwidth class (a phone take next to a studio take sounds like two voices);
* reverb scores within :data:`MATCH_REVERB_SCORE` when both are measured (a dry take next to a
  reverberant one sounds like two rooms).

Poorer stretches (quality below the best by more than :data:`QUALITY_TOLERANCE`) are added only while
the clip is still shorter than the family's minimum: they may make a clip possible, never merely longer
(a longer reference made of poorer audio clones worse).

Every stretch in a plan matches every other one. A plan starts from an *anchor* (a stretch whose longest
run meets the family's ``min_speech_run_s`` on its own: joins are pauses, so joining never creates a
run), adds the best-scoring matching stretches until the duration aim is reached without passing the
maximum, and orders its pieces by path, then start time. The renderer puts each recording's own room tone
in the joins; the expected duration counts each join as the midpoint of ``pause_target_s``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pipeline.analysis.base import FRAME_S, Analysis
from pipeline.rules.families import FamilySpec
from pipeline.selection import scoring
from pipeline.selection.frames import RecordingIndex
from pipeline.selection.plan import ClipPlan, evaluate, make_piece, plan_key, suppress

MATCH_LUFS_LU = 3.0
"""Takes whose integrated loudness differs by more than this (LU) are not joined."""

MATCH_NOISE_FLOOR_DB = 6.0
"""Takes whose room tones (:func:`room_tone_dbfs`) differ by more than this (dB) are not joined."""

ROOM_TONE_S = 0.05
"""Length of the quietest stretch whose level is a recording's room tone (s)."""

DIGITAL_SILENCE_DBFS = -100.0
"""Frames below this level are digital silence (zeros, dither), not a room."""

MATCH_REVERB_SCORE = 0.25
"""Takes whose reverb scores differ by more than this are not joined (two rooms in one clip)."""

QUALITY_TOLERANCE = 0.05
"""Takes whose quality (score without the duration part) is this close to the best count as equal."""


def stretches(idx: RecordingIndex) -> list[ClipPlan]:
    """The stretches of one recording, each evaluated as a clip of its own (one piece each)."""
    if idx.starts.size == 0:
        return []
    ends = [*idx.split.nonzero()[0].tolist(), idx.starts.size - 1]
    firsts = [0, *(k + 1 for k in ends[:-1])]
    return [evaluate([make_piece(idx, i, j)], {idx.rec.path: idx}) for i, j in zip(firsts, ends, strict=True)]


def quality(stretch: ClipPlan) -> float:
    """Score of a stretch as a clip of its own, leaving out the duration part (0-1)."""
    return float(scoring.total({k: v for k, v in stretch.score_parts.items() if k != "duration"}))


def _order(stretch: ClipPlan) -> tuple[str, float]:
    """Stable clip order: by path, then start time."""
    return (stretch.pieces[0].path, stretch.pieces[0].start_s)


def mismatch(a: Analysis, b: Analysis) -> str | None:
    """Why two recordings should not be joined (``None`` when their acoustics match)."""
    if a.path == b.path:
        return None
    la, lb = a.metrics.get("lufs"), b.metrics.get("lufs")
    if la is None or lb is None:
        return "loudness unknown"
    if abs(float(la) - float(lb)) > MATCH_LUFS_LU:
        return f"loudness {float(la):.1f} vs {float(lb):.1f} LUFS (more than {MATCH_LUFS_LU:g} LU apart)"
    na, nb = room_tone_dbfs(a), room_tone_dbfs(b)
    if na is None or nb is None:
        return "noise floor unknown"
    if abs(na - nb) > MATCH_NOISE_FLOOR_DB:
        return (
            f"noise floor (room tone) {na:.0f} vs {nb:.0f} dBFS (more than {MATCH_NOISE_FLOOR_DB:g} dB apart)"
        )
    ca, cb = a.metrics.get("bandwidth_class"), b.metrics.get("bandwidth_class")
    if ca is None or cb is None or ca != cb:
        return f"bandwidth class {ca} vs {cb}"
    ra, rb = a.metrics.get("reverb_score"), b.metrics.get("reverb_score")
    if ra is not None and rb is not None and abs(float(ra) - float(rb)) > MATCH_REVERB_SCORE:
        return f"reverb score {float(ra):.2f} vs {float(rb):.2f} (more than {MATCH_REVERB_SCORE:g} apart)"
    return None


def room_tone_dbfs(rec: Analysis) -> float | None:
    """The level (dBFS) of the quietest :data:`ROOM_TONE_S` of a recording: the room tone the renderer
    puts in the joins (it pads with each piece's quietest stretch), and what the background sounds like
    under the speech. Frames of digital silence (below :data:`DIGITAL_SILENCE_DBFS`) are left out (a
    take padded with zeros still has a room). Falls back to the fast pass's ``noise_floor_dbfs`` when
    the frames are not known.

    Not that noise floor itself: it is the 20th percentile of the non-speech frames, and a short take cut
    close to its words has few of them, mostly word tails and breaths. Measured on CMU ARCTIC ``aew``
    a0001-a0003 (3.5-4 s takes of one session): noise floors -58, -57 and -47 dBFS, room tone -55 dBFS
    in all three (a0003 keeps 0.1 s of silence before its first word and none after its last)."""
    db = np.asarray(rec.frame_db, dtype=np.float64)
    db = db[np.isfinite(db) & (db > DIGITAL_SILENCE_DBFS)]
    width = max(1, round(ROOM_TONE_S / FRAME_S))
    if db.size < width:
        floor = rec.metrics.get("noise_floor_dbfs")
        return None if floor is None else float(floor)
    power = np.concatenate([[0.0], np.cumsum(np.power(10.0, db / 10.0))])
    mean = (power[width:] - power[:-width]) / width
    return float(10.0 * np.log10(max(float(mean.min()), 1e-16)))


def is_anchor(stretch: ClipPlan, spec: FamilySpec) -> bool:
    """True when the stretch alone meets the family's continuous-speech rule."""
    run = spec.limits.min_speech_run_s.value
    return run is None or stretch.longest_run_s >= run - 1e-9


def usable(all_stretches: list[ClipPlan], spec: FamilySpec) -> list[ClipPlan]:
    """Stretches short enough to be a whole piece of a clip."""
    return [s for s in all_stretches if s.duration_s <= spec.delivery.duration_s.max + 1e-9]


def _by_quality(s: ClipPlan) -> tuple[float, str, float]:
    return (-round(quality(s), 9), *_order(s))


def _fill_order(pool: list[ClipPlan]) -> list[ClipPlan]:
    """Stretches within :data:`QUALITY_TOLERANCE` of the best in stable order, then the rest best first."""
    if not pool:
        return []
    best = max(quality(s) for s in pool)
    good = sorted((s for s in pool if quality(s) >= best - QUALITY_TOLERANCE), key=_order)
    rest = sorted((s for s in pool if quality(s) < best - QUALITY_TOLERANCE), key=_by_quality)
    return good + rest


def grow(
    anchor: ClipPlan, pool: list[ClipPlan], recs: Mapping[str, Analysis], spec: FamilySpec
) -> list[ClipPlan]:
    """Anchor plus matching stretches until the aim is reached without passing the maximum.

    Every stretch added matches every one already chosen. Stretches about as good as the best (within
    :data:`QUALITY_TOLERANCE`) come in stable order, so equal takes join in the order of their paths;
    poorer ones only when those are not enough. The result is in stable clip order.
    """
    chosen = [anchor]
    body = anchor.duration_s - spec.edge_s  # the clip's length without its edge room tone
    others = [s for s in pool if s is not anchor]
    best = max((quality(s) for s in pool), default=0.0)
    for s in _fill_order(others):
        if body + spec.edge_s >= spec.delivery.duration_s.aim - 1e-9:
            break
        poorer = quality(s) < best - QUALITY_TOLERANCE
        if poorer and body + spec.edge_s >= spec.delivery.duration_s.min - 1e-9:
            continue
        if any(mismatch(recs[s.pieces[0].path], recs[c.pieces[0].path]) for c in chosen):
            continue
        s_body = s.duration_s - spec.edge_s
        if body + spec.join_s + s_body + spec.edge_s <= spec.delivery.duration_s.max + 1e-9:
            chosen.append(s)
            body += spec.join_s + s_body
    return sorted(chosen, key=_order)


def assemble(indexes: Mapping[str, RecordingIndex], spec: FamilySpec, *, limit: int) -> list[ClipPlan]:
    """Assembled plans of several pieces, best first, overlapping each other at most 50 %."""
    recs = {path: idx.rec for path, idx in indexes.items()}
    pool = usable([s for path in sorted(indexes) for s in stretches(indexes[path])], spec)
    anchors = sorted((s for s in pool if is_anchor(s, spec)), key=_by_quality)
    seen: set[tuple[tuple[str, float], ...]] = set()
    plans: list[ClipPlan] = []
    best = max((quality(s) for s in pool), default=0.0)
    for anchor in anchors:
        if plans and quality(anchor) < best - QUALITY_TOLERANCE:
            break  # a poorer anchor would only add poorer audio to plans that already work
        chosen = grow(anchor, pool, recs, spec)
        key = tuple(_order(s) for s in chosen)
        if len(chosen) < 2 or key in seen:
            continue
        seen.add(key)
        plan = evaluate([s.pieces[0] for s in chosen], indexes)
        if spec.fits(plan.duration_s, plan.longest_run_s):
            plans.append(plan)
    return suppress(sorted(plans, key=plan_key), limit=limit)
