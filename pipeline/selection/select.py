"""Candidate windows, scoring and multi-take assembly: the best clip of one speaker for one family.

:func:`candidates` lists every clip plan that satisfies the family's rules, scored from the fast pass and
best first: windows of a single recording, or, when no recording holds one, plans that join matching
takes. :func:`choose` sends the top few to the slow measures (Silero edges, DNSMOS), re-ranks them and
returns the best with its alternatives, or ``best=None`` with the true reasons. The rules, the scoring
and the tolerances are described in ``docs/selection.md``; the parts live in :mod:`pipeline.selection`.

Typical use::

    feats = [RecordingFeatures.from_fast_pass(analyze_file(p), path=..., source=p, speaker="bob", sha256=...)]
    sel = choose(feats, load_family("cosyvoice"))
    sel.best.pieces  # -> what pipeline.render.clip cuts
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.errors import InvalidArgument
from pipeline.rules.families import FamilySpec
from pipeline.selection.assembly import assemble, grow, is_anchor, mismatch, stretches, usable
from pipeline.selection.features import RecordingFeatures
from pipeline.selection.frames import RecordingIndex
from pipeline.selection.limits import Rules, clip_stats
from pipeline.selection.plan import ClipPlan, Selection
from pipeline.selection.plans import MAX_OVERLAP, evaluate, make_piece, overlap, piece_segments, plan_key
from pipeline.selection.windows import NESTED_MAX_SHARE, best_nested, best_windows

__all__ = ["DEFAULT_LIMIT", "MAX_OVERLAP", "candidates", "choose", "explain"]

DEFAULT_LIMIT = 50
"""How many candidates :func:`candidates` keeps by default."""

NESTED_DEPTH = 2
"""Levels of nested windows scored below a finalist (window in window in finalist)."""

NESTED_SPREAD_MIN = 0.15
"""A finalist whose DNSMOS segments differ by at least this much (OVRL) gets its nested window scored."""


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise InvalidArgument(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _prepare(
    recordings: Sequence[RecordingFeatures], spec: FamilySpec
) -> tuple[Rules, dict[str, RecordingIndex], str]:
    """Validate the inputs; return the family's rules, one index per recording (by path), the speaker."""
    rules = Rules.from_spec(spec)
    if isinstance(recordings, RecordingFeatures) or not isinstance(recordings, Sequence):
        raise InvalidArgument(
            f"recordings must be a sequence of RecordingFeatures, got {type(recordings).__name__}"
        )
    if not recordings:
        raise InvalidArgument("recordings must hold at least one recording of the speaker")
    indexes: dict[str, RecordingIndex] = {}
    speaker = getattr(recordings[0], "speaker", None)
    for k, rec in enumerate(recordings):
        if not isinstance(rec, RecordingFeatures):
            raise InvalidArgument(f"recordings[{k}] must be RecordingFeatures, got {type(rec).__name__}")
        if rec.speaker != speaker:
            raise InvalidArgument(
                f"recordings[{k}] ({rec.path}) belongs to speaker {rec.speaker!r}, not {speaker!r}: "
                "pass one speaker's recordings at a time"
            )
        if rec.path in indexes:
            raise InvalidArgument(f"recordings[{k}]: path {rec.path!r} is given twice")
        indexes[rec.path] = RecordingIndex(rec)
    return rules, indexes, str(speaker)


def _single_windows(
    indexes: dict[str, RecordingIndex], rules: Rules, *, speaker: str, limit: int
) -> list[ClipPlan]:
    """The best single-recording windows across all recordings (exact measures, best first)."""
    found: list[tuple[float, str, float, float, int, int]] = []
    for path in sorted(indexes):
        w = best_windows(indexes[path], rules, limit=limit)
        for k in range(w.i.size):
            found.append(
                (
                    -round(float(w.score[k]), 9),
                    path,
                    float(w.start_s[k]),
                    float(w.end_s[k]),
                    int(w.i[k]),
                    int(w.j[k]),
                )
            )
    found.sort()
    plans = [
        evaluate([make_piece(indexes[path], i, j, rules)], indexes, rules, speaker=speaker)
        for _, path, _, _, i, j in found[:limit]
    ]
    return sorted(plans, key=plan_key)


def candidates(
    recordings: Sequence[RecordingFeatures], spec: FamilySpec, *, limit: int = DEFAULT_LIMIT
) -> list[ClipPlan]:
    """Every clip plan that satisfies ``spec``'s rules, scored from the fast-pass features, best first.

    Plans are single-recording windows that start and end at speech segments; when no recording holds
    one, plans join matching takes (``assembled``). At most ``limit`` plans are returned, and no two
    overlap by more than :data:`MAX_OVERLAP` of the shorter one. An empty list means no plan is possible
    (:func:`explain` says why).
    """
    limit = _check_int("limit", limit, 1)
    rules, indexes, speaker = _prepare(recordings, spec)
    return _candidates(indexes, rules, speaker, limit=limit)


def _candidates(
    indexes: dict[str, RecordingIndex], rules: Rules, speaker: str, *, limit: int
) -> list[ClipPlan]:
    plans = _single_windows(indexes, rules, speaker=speaker, limit=limit)
    if not plans:
        plans = assemble(indexes, rules, speaker=speaker, limit=limit)
    return plans


def _span(plan: ClipPlan) -> tuple[tuple[str, float, float], ...]:
    """Where a plan's pieces lie (identifies a plan across re-evaluation)."""
    return tuple((p.path, p.start_s, p.end_s) for p in plan.pieces)


def _finish_with_nested(
    short_list: Sequence[ClipPlan],
    indexes: dict[str, RecordingIndex],
    rules: Rules,
    *,
    speaker: str,
    refine: bool,
) -> tuple[list[ClipPlan], set[tuple[tuple[str, float, float], ...]]]:
    """The slow measures on ``short_list``, then on the best windows nested inside the uneven ones.

    A nested window (at most :data:`~pipeline.selection.windows.NESTED_MAX_SHARE` of its parent) was
    hidden by non-maximum suppression behind the longer window, whose fast score may be better only
    because the fast pass cannot hear the noise or reverb around a clean stretch. It is worth DNSMOS only
    when the parent's own DNSMOS segments disagree by at least :data:`NESTED_SPREAD_MIN` (part of it is
    worse than the rest); then the nested window is scored, and the same again inside it, up to
    :data:`NESTED_DEPTH` levels. The slow measures then decide between parent and nested window.
    Returns the scored plans and where each lay before the slow pass moved its edges.
    """
    from pipeline.selection.slow import finish

    seen = {_span(p) for p in short_list}
    finished: list[ClipPlan] = []
    queue: list[tuple[ClipPlan, ClipPlan, int]] = []
    for plan in short_list:
        done = finish(plan, indexes, rules, refine=refine)
        finished.append(done)
        queue.append((plan, done, 0))
    while queue:
        plan, done, depth = queue.pop(0)
        spread = done.measures.get("dnsmos_spread")
        if depth >= NESTED_DEPTH or spread is None or spread < NESTED_SPREAD_MIN:
            continue
        inner = _nested(plan, indexes, rules, speaker=speaker)
        if inner is None or _span(inner) in seen:
            continue
        seen.add(_span(inner))
        inner_done = finish(inner, indexes, rules, refine=refine)
        finished.append(inner_done)
        queue.append((inner, inner_done, depth + 1))
    return finished, seen


def _nested(
    plan: ClipPlan, indexes: dict[str, RecordingIndex], rules: Rules, *, speaker: str
) -> ClipPlan | None:
    """The best window inside a single-recording ``plan`` (``None`` for assembled plans or none fits)."""
    if plan.assembled or len(plan.pieces) != 1:
        return None
    piece = plan.pieces[0]
    idx = indexes[piece.path]
    w = best_nested(idx, rules, piece.start_s, piece.end_s, max_duration_s=NESTED_MAX_SHARE * plan.duration_s)
    if w.i.size == 0:
        return None
    return evaluate([make_piece(idx, int(w.i[0]), int(w.j[0]), rules)], indexes, rules, speaker=speaker)


def choose(
    recordings: Sequence[RecordingFeatures],
    spec: FamilySpec,
    *,
    top: int = 5,
    slow: bool = True,
    alternatives: int = 2,
    refine_edges: bool = True,
) -> Selection:
    """Pick the best clip plan of one speaker for one family.

    The ``top`` best candidates get the slow measures (Silero edge refinement when ``refine_edges``, and
    DNSMOS of the clip-to-be, which replaces the fast estimate in the score), and so do the best windows
    nested inside the ones whose DNSMOS is uneven (up to :data:`NESTED_DEPTH` levels, each at most 75 % of
    the one it lies in); all are re-ranked; the best is ``best`` and the next ``alternatives`` that overlap it
    by at most 50 % are ``alternatives``.
    ``slow=False`` skips the slow measures and ranks on the fast pass alone. When no plan is possible,
    ``best`` is ``None`` and ``reasons``/``message`` say why (``no_speech``, ``no_continuous_speech``,
    ``too_short``, ``too_long_clip``).
    """
    top = _check_int("top", top, 1)
    alternatives = _check_int("alternatives", alternatives, 0)
    if not isinstance(slow, bool) or not isinstance(refine_edges, bool):
        raise InvalidArgument(f"slow and refine_edges must be True or False, got {slow!r}, {refine_edges!r}")
    rules, indexes, speaker = _prepare(recordings, spec)
    plans = _candidates(indexes, rules, speaker, limit=max(DEFAULT_LIMIT, top + alternatives))
    if not plans:
        reasons, message = _explain(indexes, rules, speaker)
        return Selection(family=rules.family, speaker=speaker, best=None, reasons=reasons, message=message)
    if slow:
        finished, scored = _finish_with_nested(
            plans[:top], indexes, rules, speaker=speaker, refine=refine_edges
        )
        ranked = sorted(finished, key=plan_key) + [p for p in plans[top:] if _span(p) not in scored]
    else:
        ranked = plans
    best = ranked[0]
    alts: list[ClipPlan] = []
    for plan in ranked[1:]:
        if len(alts) >= alternatives:
            break
        if all(overlap(plan, other) <= MAX_OVERLAP + 1e-9 for other in [best, *alts]):
            alts.append(plan)
    kind = "assembled plans" if best.assembled else "windows"
    message = f"best of {len(plans)} candidate {kind}" + (
        f"; slow measures on the top {min(top, len(plans))}" if slow else ""
    )
    return Selection(family=rules.family, speaker=speaker, best=best, alternatives=alts, message=message)


def explain(recordings: Sequence[RecordingFeatures], spec: FamilySpec) -> tuple[list[str], str]:
    """The true reasons why no plan satisfies ``spec`` for these recordings, and a sentence saying so.

    Reasons, in this order, every one that holds: ``no_speech`` (no recording has speech; alone),
    ``no_continuous_speech`` (no run reaches ``min_speech_run_s``, and joining takes only adds pauses),
    ``too_short`` (all the speech together, pauses shortened, is shorter than the minimum; or the takes
    that match acoustically are). When none of these holds, ``too_long_clip``: the speech cannot be cut
    at a pause into a short enough clip. Returns ``([], "")`` when a plan exists.
    """
    if candidates(recordings, spec, limit=1):
        return [], ""
    rules, indexes, speaker = _prepare(recordings, spec)
    return _explain(indexes, rules, speaker)


def _explain(indexes: dict[str, RecordingIndex], rules: Rules, speaker: str) -> tuple[list[str], str]:
    """:func:`explain` for prepared inputs that are known to allow no plan."""
    if all(idx.starts.size == 0 for idx in indexes.values()):
        return ["no_speech"], f"no speech was detected in any of the {len(indexes)} recording(s) of {speaker}"
    spans = [s for path in sorted(indexes) for s in stretches(indexes[path], rules, speaker=speaker)]
    longest = max(s.longest_run_s for s in spans)
    together = clip_stats([piece_segments(indexes[s.piece.path], s.piece) for s in spans], rules).duration_s
    reasons: list[str] = []
    sentences: list[str] = []
    if rules.min_run_s is not None and longest < rules.min_run_s - 1e-9:
        reasons.append("no_continuous_speech")
        sentences.append(
            f"the longest unbroken speech is {longest:.1f} s and {rules.family} needs {rules.min_run_s:g} s "
            "(joining takes adds pauses, so it cannot help)"
        )
    if together < rules.min_duration_s - 1e-9:
        reasons.append("too_short")
        sentences.append(
            f"all the speech together makes a {together:.1f} s clip and {rules.family} needs at least "
            f"{rules.min_duration_s:g} s"
        )
    if reasons:
        return reasons, "; ".join(sentences)
    pool = usable(spans, rules)
    anchors = [s for s in pool if is_anchor(s, rules)]
    if not anchors:
        return ["too_long_clip"], (
            f"the speech that meets the {rules.min_run_s:g} s run rule cannot be cut at a pause into a clip "
            f"of at most {rules.max_duration_s:g} s"
        )
    anchor = max(anchors, key=lambda s: (s.quality, s.piece.path))
    anchor_rec = indexes[anchor.piece.path].rec
    chosen = grow(anchor, pool, {p: i.rec for p, i in indexes.items()}, rules)
    plan = evaluate([s.piece for s in chosen], indexes, rules, speaker=speaker)
    apart = sorted(f"{p} ({why})" for p, i in indexes.items() if (why := mismatch(anchor_rec, i.rec)))
    text = (
        f"the takes whose acoustics match {anchor.piece.path} make a {plan.duration_s:.1f} s clip and "
        f"{rules.family} needs {rules.min_duration_s:g}-{rules.max_duration_s:g} s"
    )
    if apart:
        text += "; not joined because their acoustics differ: " + ", ".join(apart)
    return ["too_short"], text
