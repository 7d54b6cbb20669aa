"""Candidate windows, scoring and multi-take assembly: the best clip of one speaker for one family.

:func:`candidates` lists every clip plan that satisfies the family's rules, scored from the fast pass and
best first: windows of a single recording, or, when no recording holds one, plans that join matching
takes. :func:`choose` sends the top few to the slow measures (Silero edges, DNSMOS), re-ranks them and
returns the best followed by its alternatives; :func:`explain` gives the true reasons when there is none.
The rules, the scoring and the tolerances are described in ``docs/selection.md``; the parts live in
:mod:`pipeline.selection`.

Typical use::

    takes = [pipeline.analyze(p) for p in paths]  # one speaker's recordings
    best, *alternatives = choose(takes, load_family("cosyvoice"))  # [] when explain() finds reasons
    best.pieces  # -> what pipeline.render.clip cuts
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.analysis.base import Analysis
from pipeline.analysis.voice import SPAN_STEP_S, TURN_ERODE_PARTIALS
from pipeline.errors import InvalidArgument
from pipeline.rules.families import FamilySpec
from pipeline.selection.assembly import assemble, grow, is_anchor, mismatch, quality, stretches, usable
from pipeline.selection.frames import MIN_TURN_SEGMENT_S, RecordingIndex
from pipeline.selection.plan import MAX_OVERLAP, ClipPlan, evaluate, make_piece, plan_key, suppress
from pipeline.selection.windows import NESTED_MAX_SHARE, best_nested, best_windows

if TYPE_CHECKING:
    from pipeline.analysis.voice import Voice

__all__ = ["DEFAULT_LIMIT", "MAX_OVERLAP", "candidates", "choose", "explain"]

DEFAULT_LIMIT = 50
"""How many candidates :func:`candidates` keeps by default."""

NESTED_DEPTH = 2
"""Levels of nested windows scored below a finalist (window in window in finalist)."""

CONTENT_EXTRA = 10
"""Candidates beyond the short list that may go to the slow pass to replace finalists with music or singing."""

EDGE_OTHER_S = TURN_ERODE_PARTIALS * SPAN_STEP_S + MIN_TURN_SEGMENT_S
"""Speech before a recording's first turn (or after its last) longer than this is another voice's: a turn
loses :data:`~pipeline.analysis.voice.TURN_ERODE_PARTIALS` partials (1 s) at each edge, so speech up to
that far out is the speaker's own (plus the shortest segment a window keeps)."""

NESTED_SPREAD_MIN = 0.15
"""A finalist whose DNSMOS segments differ by at least this much (OVRL) gets its nested window scored."""


def _prepare(
    recordings: Sequence[Analysis], spec: FamilySpec, voice: Voice | None = None
) -> dict[str, RecordingIndex]:
    """Check the recordings (at least one, one speaker, each path once); one index per recording by path,
    kept to the speaker's turns in a recording of two voices (the ``turns`` of its entry in ``voice``)."""
    if not recordings:
        raise InvalidArgument("recordings must hold at least one recording of the speaker")
    indexes: dict[str, RecordingIndex] = {}
    for k, rec in enumerate(recordings):
        if rec.speaker != recordings[0].speaker:
            raise InvalidArgument(
                f"recordings[{k}] ({rec.path}) belongs to speaker {rec.speaker!r}, not "
                f"{recordings[0].speaker!r}: pass one speaker's recordings at a time"
            )
        if rec.path in indexes:
            raise InvalidArgument(f"recordings[{k}]: path {rec.path!r} is given twice")
        here = None if voice is None else voice.recordings.get(rec.path)
        indexes[rec.path] = RecordingIndex(rec, spec, None if here is None else here.turns)
    return indexes


def _window_plans(indexes: dict[str, RecordingIndex], *, limit: int) -> list[ClipPlan]:
    """Plans of the best single-recording windows across all recordings (exact measures, best first)."""
    found: list[tuple[float, str, float, float, int, int]] = []
    for path in sorted(indexes):
        idx = indexes[path]
        i, j, score = best_windows(idx, limit=limit)
        for a, b, s in zip(i.tolist(), j.tolist(), score.tolist(), strict=True):
            found.append((-round(s, 9), path, float(idx.starts[a]), float(idx.ends[b]), a, b))
    found.sort()
    plans = [evaluate([make_piece(indexes[path], i, j)], indexes) for _, path, _, _, i, j in found[:limit]]
    return sorted(plans, key=plan_key)


def candidates(
    recordings: Sequence[Analysis], spec: FamilySpec, *, limit: int = DEFAULT_LIMIT
) -> list[ClipPlan]:
    """Every clip plan that satisfies ``spec``'s rules, scored from the fast-pass features, best first.

    Plans are single-recording windows that start and end at speech segments; when no recording holds
    one that reaches the family's duration aim, plans that join matching takes (``assembled``) are added
    and compete on their scores. At most ``limit`` plans are returned, and no two
    overlap by more than :data:`MAX_OVERLAP` of the shorter one. An empty list means no plan is possible
    (:func:`explain` says why).
    """
    if limit < 1:
        raise InvalidArgument(f"limit must be an integer >= 1, got {limit!r}")
    return _candidates(_prepare(recordings, spec), limit=limit)


def _candidates(indexes: dict[str, RecordingIndex], *, limit: int) -> list[ClipPlan]:
    """Single-recording windows; joined takes when no window reaches the family's duration aim (when none
    exists at all, or when the longest is short of the aim: then both compete on their scores)."""
    plans = _window_plans(indexes, limit=limit)
    spec = next(iter(indexes.values())).spec
    if plans and max(p.duration_s for p in plans) >= spec.delivery.duration_s.aim - 1e-9:
        return plans
    joined = assemble(indexes, spec, limit=limit)
    return suppress(sorted([*plans, *joined], key=plan_key), limit=limit) if plans else joined


def _span(plan: ClipPlan) -> tuple[tuple[str, float, float], ...]:
    """Where a plan's pieces lie (identifies a plan across re-evaluation)."""
    return tuple((p.path, p.start_s, p.end_s) for p in plan.pieces)


def _home(plan: ClipPlan, indexes: dict[str, RecordingIndex]) -> tuple[str, int]:
    """The part a plan mostly belongs to: the recording and part of the middle of its first piece."""
    piece = plan.pieces[0]
    return piece.path, indexes[piece.path].part_at((piece.start_s + piece.end_s) / 2.0)


def _slow_order(plans: Sequence[ClipPlan], indexes: dict[str, RecordingIndex]) -> list[ClipPlan]:
    """The order in which plans go to the slow pass: the best plan of each part first (best parts first),
    then the next best plans. Parts that look alike to the fast pass may differ in what only the slow pass
    hears, so each should be heard before a second window of the same part is."""
    firsts: list[ClipPlan] = []
    others: list[ClipPlan] = []
    seen: set[tuple[str, int]] = set()
    for plan in plans:
        home = _home(plan, indexes)
        (others if home in seen else firsts).append(plan)
        seen.add(home)
    return firsts + others


def _finish_with_nested(
    short_list: Sequence[ClipPlan], indexes: dict[str, RecordingIndex], *, refine: bool
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
    from pipeline.selection.voices import carry

    seen = {_span(p) for p in short_list}
    finished: list[ClipPlan] = []
    queue: list[tuple[ClipPlan, ClipPlan, int]] = []
    for plan in short_list:
        done = carry(plan.measures, finish(plan, indexes, refine=refine, sample=True))
        finished.append(done)
        queue.append((plan, done, 0))
    while queue:
        plan, done, depth = queue.pop(0)
        spread = done.measures.get("dnsmos_spread")
        if depth >= NESTED_DEPTH or spread is None or spread < NESTED_SPREAD_MIN:
            continue
        inner = _nested(plan, indexes)
        if inner is None or _span(inner) in seen:
            continue
        seen.add(_span(inner))
        inner_done = finish(inner, indexes, refine=refine, sample=True)
        finished.append(inner_done)
        queue.append((inner, inner_done, depth + 1))
    return finished, seen


def _nested(plan: ClipPlan, indexes: dict[str, RecordingIndex]) -> ClipPlan | None:
    """The best window inside a single-recording ``plan`` (``None`` for assembled plans or none fits)."""
    if plan.assembled:
        return None
    piece = plan.pieces[0]
    idx = indexes[piece.path]
    found = best_nested(idx, piece.start_s, piece.end_s, max_duration_s=NESTED_MAX_SHARE * plan.duration_s)
    return None if found is None else evaluate([make_piece(idx, *found)], indexes)


def choose(
    recordings: Sequence[Analysis],
    spec: FamilySpec,
    *,
    top: int = 5,
    slow: bool = True,
    alternatives: int = 2,
    refine_edges: bool = True,
    voice: Voice | None = None,
    avoided: list[list[Any]] | None = None,
) -> list[ClipPlan]:
    """The best clip plan of one speaker for one family, then up to ``alternatives`` runners-up.

    The ``top`` best candidates, the best of each part of the recordings first (see
    :mod:`pipeline.selection.parts`), get the slow measures (Silero edge refinement when ``refine_edges``, and
    DNSMOS of the clip-to-be, which replaces the fast estimate in the score), and so do the best windows
    nested inside the ones whose DNSMOS is uneven (up to :data:`NESTED_DEPTH` levels, each at most 75 % of
    the one it lies in); all are re-ranked. The first plan returned is the best; each runner-up overlaps
    the best and the other runners-up by at most 50 %. A finalist in which the slow pass hears music or
    singing is dropped and the next candidate (up to :data:`CONTENT_EXTRA` more) heard in its place; the
    dropped ones are returned only when nothing else is left (the clip's re-check then rejects it with
    ``music`` or ``singing``), and the best plan's ``measures["content_rejected"]`` lists where they lay. ``slow=False`` skips the slow measures and ranks on
    the fast pass alone. An empty list means no plan is possible: :func:`explain` gives the true reasons
    (``no_speech``, ``no_continuous_speech``, ``too_short``, ``too_long_clip``, ``low_snr``).

    With the speaker's ``voice`` (:class:`pipeline.analysis.voice.Voice`), every plan short-listed or
    returned is heard first (:mod:`pipeline.selection.voices`): one in which another voice talks is
    dropped for the next candidate, so every plan returned carries ``speaker_similarity`` and no
    ``other_voice_spans``, and ``other_voices_avoided``: the spans ``[path, start_s, end_s]`` where the
    dropped plans heard another voice, and the stretches between the speaker's turns in a recording of two
    voices (windows there keep to the speaker's ``turns``; when no single window is long enough, the turns
    are joined). When every candidate holds another voice the list is empty (reason ``other_voices``);
    a list passed as ``avoided`` receives the same spans, merged, in that case too (where the voice was
    heard in the windows that fit).
    """
    if top < 1 or alternatives < 0:
        raise InvalidArgument(f"top must be >= 1 and alternatives >= 0, got {top!r} and {alternatives!r}")
    from pipeline.selection.slow import complete, sampled

    indexes = _prepare(recordings, spec, voice)
    plans = _candidates(indexes, limit=max(DEFAULT_LIMIT, top + alternatives))
    keep = None
    heard_elsewhere = _outside_turns(voice, indexes)  # the other-voice spans left out or of plans dropped
    heard: list[ClipPlan] = []  # finalists dropped for music or singing
    if voice is not None:
        from pipeline.selection.slow import heard_content
        from pipeline.selection.voices import annotate

        def keep(plan: ClipPlan) -> bool:
            if annotate(plan, voice):
                return True
            # Music under the voice moves its embeddings too: when music or singing is heard, that is the
            # cause, and the slow pass drops the plan for it (or the re-check rejects it with that reason).
            if heard_content(plan, indexes) is not None:
                return True
            heard_elsewhere.extend(plan.measures["other_voice_spans"])
            return False

    if slow and plans:
        ordered: Iterator[ClipPlan] = iter(_slow_order(plans, indexes))
        if keep is not None:  # another voice in a plan: the next one instead, before any slow measure
            ordered = (p for p in ordered if keep(p))
        short = list(itertools.islice(ordered, top))
        finished, scored = _finish_with_nested(short, indexes, refine=refine_edges)
        # Finalists with music or singing are dropped: the next candidates take their places.
        extra = itertools.islice(ordered, CONTENT_EXTRA)
        while (missing := len(short) - sum(not _content(p) for p in finished)) > 0:
            more = [p for p in itertools.islice(extra, missing) if _span(p) not in scored]
            if not more:
                break
            done, seen = _finish_with_nested(more, indexes, refine=refine_edges)
            finished += done
            scored |= seen
        clean = sorted((p for p in finished if not _content(p)), key=plan_key)
        heard = sorted((p for p in finished if _content(p)), key=plan_key)
        plans = (clean + [p for p in plans if _span(p) not in scored]) or heard
    chosen = suppress(plans, limit=alternatives + 1)
    while True:
        # Hear what would be returned; drop any plan with another voice and choose again.
        dropped = [p for p in chosen if not keep(p)] if keep is not None else []
        if dropped:
            plans = [p for p in plans if all(p is not d for d in dropped)]
        elif chosen and sampled(chosen[0]):
            # The best was ranked on part of its DNSMOS cover: score the rest and rank it again.
            plans = _rerank(plans, chosen[0], complete(chosen[0], indexes))
        else:
            break
        chosen = suppress(plans, limit=alternatives + 1)
    if keep is not None:
        from pipeline.selection.voices import avoided_spans

        for plan in chosen:
            plan.measures["other_voices_avoided"] = avoided_spans(heard_elsewhere)
        if avoided is not None:
            avoided[:] = avoided_spans(heard_elsewhere)
    if heard and chosen:
        chosen[0].measures["content_rejected"] = [_rejected(p) for p in heard]
    return chosen


def _rerank(plans: Sequence[ClipPlan], old: ClipPlan, new: ClipPlan) -> list[ClipPlan]:
    """``plans`` with ``old`` replaced by ``new``, moved down past the slow-scored plans now ranked above
    it (plans the slow pass never scored stay behind them, as :func:`choose` orders them)."""
    rest = [p for p in plans if p is not old]
    at = 0
    while at < len(rest) and rest[at].measures.get("dnsmos_source") in ("window", "window_sample"):
        if plan_key(new) <= plan_key(rest[at]):
            break
        at += 1
    return [*rest[:at], new, *rest[at:]]


def _outside_turns(voice: Voice | None, indexes: Mapping[str, RecordingIndex]) -> list[list[Any]]:
    """``[path, start_s, end_s]`` of the speech outside the speaker's turns in each recording of two voices
    (:attr:`pipeline.analysis.voice.Voice.turns`): another voice's, left out of every window. Between
    consecutive turns the whole gap; before the first turn and after the last, from the first speech to
    the turn and from the turn to the last speech, when the speech there reaches beyond what the turn's
    edge lost to erosion (:data:`EDGE_OTHER_S`: shorter, it is the speaker's own turn). A recording with
    no turn at all is the other voice's from its first speech to its last."""
    spans: list[list[Any]] = []
    for path in sorted(indexes):
        here = None if voice is None else voice.recordings.get(path)
        if here is None or here.turns is None:
            continue
        turns = sorted(here.turns)
        speech = np.asarray(indexes[path].rec.speech_segments, dtype=np.float64).reshape(-1, 2)
        if not turns:
            if speech.size:
                spans.append([path, float(speech[0, 0]), float(speech[-1, 1])])
            continue
        first, last = turns[0][0], turns[-1][1]
        if speech.size and first - float(speech[0, 0]) > EDGE_OTHER_S:
            spans.append([path, float(speech[0, 0]), first])
        spans.extend([path, end, start] for (_, end), (start, _) in itertools.pairwise(turns) if start > end)
        if speech.size and float(speech[-1, 1]) - last > EDGE_OTHER_S:
            spans.append([path, last, float(speech[-1, 1])])
    return spans


def _content(plan: ClipPlan) -> str | None:
    """``music`` or ``singing`` when the slow pass heard it in the plan."""
    return plan.measures.get("content")


def _rejected(plan: ClipPlan) -> dict[str, object]:
    """Where a plan dropped for music or singing lay, and what was heard (for the report's bands)."""
    return {
        "content": _content(plan),
        "music_score": plan.measures.get("music_score"),
        "singing_score": plan.measures.get("singing_score"),
        "pieces": [{"path": p.path, "start_s": p.start_s, "end_s": p.end_s} for p in plan.pieces],
    }


def explain(recordings: Sequence[Analysis], spec: FamilySpec) -> tuple[list[str], str]:
    """The true reasons why no plan satisfies ``spec`` for these recordings, and a sentence saying so.

    Reasons, every one that holds: ``no_speech`` (no recording has speech; alone),
    ``no_continuous_speech`` (no run reaches ``min_speech_run_s``, and joining takes only adds pauses),
    ``too_short`` (all the speech together, pauses shortened, is shorter than the minimum; or the takes
    that match acoustically are); when none of these holds, ``too_long_clip`` (the speech cannot be cut at
    a pause into a short enough clip). ``low_snr`` is added when recordings fail the family's SNR gate, and
    comes **first** when those recordings hold enough audio for a clip: the voice detector then found too
    little speech, too few runs or no pauses because the noise drowned the voice, and the noise is what to
    fix (see :func:`_drowned`). Returns ``([], "")`` when a plan exists.
    """
    indexes = _prepare(recordings, spec)
    if _candidates(indexes, limit=1):
        return [], ""
    if all(idx.starts.size == 0 for idx in indexes.values()):
        speaker = recordings[0].speaker
        return ["no_speech"], f"no speech was detected in any of the {len(indexes)} recording(s) of {speaker}"
    reasons, text = _structural(indexes, spec)
    noise = _drowned(recordings, spec)
    if noise is None:
        return reasons, text
    drowned_text, is_cause = noise
    if is_cause:
        return ["low_snr", *reasons], f"{drowned_text}; so {text}"
    return [*reasons, "low_snr"], f"{text}; {drowned_text}"


def _drowned(recordings: Sequence[Analysis], spec: FamilySpec) -> tuple[str, bool] | None:
    """The recordings whose SNR fails the family's gate, as a sentence, and whether the noise is the cause
    of the missing speech: they hold at least ``min_duration_s`` of audio, so a clip's worth of speech
    could have been there (when they are shorter, the speech itself is short). ``None``: no recording
    fails the gate (or the family has none, or no SNR was measured)."""
    gate = next((g for g in spec.gates if g.metric == "snr_db"), None)
    if gate is None or gate.fail is None:
        return None
    noisy = [
        r
        for r in recordings
        if isinstance(r.metrics.get("snr_db"), int | float)
        and gate.verdict(float(r.metrics["snr_db"])) == "fail"
    ]
    if not noisy:
        return None
    audio_s = sum(float(r.metrics.get("duration_s") or 0.0) for r in noisy)
    speech_s = sum(float(r.metrics.get("speech_s") or 0.0) for r in noisy)
    shown = ", ".join(f"{r.path}: SNR {float(r.metrics['snr_db']):.1f} dB" for r in noisy[:3])
    more = f" and {len(noisy) - 3} more" if len(noisy) > 3 else ""
    text = (
        f"the voice is drowned in noise ({shown}{more}; {spec.name} needs at least {gate.fail:g} dB): in "
        f"{audio_s:.1f} s of audio the voice detector found {speech_s:.1f} s of speech"
    )
    return text, audio_s >= spec.delivery.duration_s.min - 1e-9


def _structural(indexes: dict[str, RecordingIndex], spec: FamilySpec) -> tuple[list[str], str]:
    """Why the speech found cannot make a clip: its runs, its length, or where it can be cut."""
    spans = [s for path in sorted(indexes) for s in stretches(indexes[path])]
    longest = max(s.longest_run_s for s in spans)
    together = evaluate([s.pieces[0] for s in spans], indexes).duration_s
    run, window = spec.limits.min_speech_run_s.value, spec.delivery.duration_s
    reasons: list[str] = []
    sentences: list[str] = []
    if run is not None and longest < run - 1e-9:
        reasons.append("no_continuous_speech")
        sentences.append(
            f"the longest unbroken speech is {longest:.1f} s and {spec.name} needs {run:g} s "
            "(joining takes adds pauses, so it cannot help)"
        )
    if together < window.min - 1e-9:
        reasons.append("too_short")
        sentences.append(
            f"all the speech together makes a {together:.1f} s clip and {spec.name} needs at least "
            f"{window.min:g} s"
        )
    if reasons:
        return reasons, "; ".join(sentences)
    pool = usable(spans, spec)
    anchors = [s for s in pool if is_anchor(s, spec)]
    if not anchors:
        return ["too_long_clip"], (
            f"the speech that meets the {run:g} s run rule cannot be cut at a pause into a clip "
            f"of at most {window.max:g} s"
        )
    anchor = max(anchors, key=lambda s: (quality(s), s.pieces[0].path))
    anchor_path = anchor.pieces[0].path
    chosen = grow(anchor, pool, {p: i.rec for p, i in indexes.items()}, spec)
    plan = evaluate([s.pieces[0] for s in chosen], indexes)
    apart = sorted(
        f"{p} ({why})" for p, i in indexes.items() if (why := mismatch(indexes[anchor_path].rec, i.rec))
    )
    text = (
        f"the takes whose acoustics match {anchor_path} make a {plan.duration_s:.1f} s clip and "
        f"{spec.name} needs {window.min:g}-{window.max:g} s"
    )
    if apart:
        text += "; not joined because their acoustics differ: " + ", ".join(apart)
    return ["too_short"], text
