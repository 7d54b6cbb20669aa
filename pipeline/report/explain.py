"""Why a speaker's clip is what it is, as plain text: the chosen window, the runners-up and what they lost on,
and every recording of the speaker with why it was or was not used (``voiceprep explain``).

The facts are those of :func:`~pipeline.report.results.load_run` (``clips.jsonl``'s plan and alternatives,
``recordings.jsonl``); the text is made here so that the CLI only prints it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.errors import InvalidArgument, all_codes, reason_hint
from pipeline.report.results import RunResults
from pipeline.rules.checks import check_gates
from pipeline.rules.families import FamilySpec, load_family
from pipeline.rules.metrics import counted
from pipeline.selection.scoring import WEIGHTS

LOST_ON_SHOWN = 3
"""How many score parts a runner-up's line names (the ones where it trails the chosen window most)."""


def _pieces_text(plan: Mapping[str, Any]) -> str:
    """``a.wav 0.00-14.17 s + b.wav 2.10-9.00 s``: where a window's speech comes from."""
    parts = [
        f"{p.get('path')} {p.get('start_s', 0.0):.2f}-{p.get('end_s', 0.0):.2f} s"
        for p in plan.get("pieces") or []
    ]
    return " + ".join(parts) or "no pieces"


def _lost_on(chosen: Mapping[str, Any], other: Mapping[str, Any]) -> list[str]:
    """The score parts where ``other`` trails ``chosen`` most, weighted as the score weighs them."""
    mine, theirs = chosen.get("score_parts") or {}, other.get("score_parts") or {}
    deficits = []
    for name, weight in WEIGHTS.items():
        if name in mine and name in theirs and mine[name] > theirs[name]:
            deficits.append((weight * (mine[name] - theirs[name]), name, theirs[name], mine[name]))
    deficits.sort(reverse=True)
    return [f"{name} {them:.2f} vs {us:.2f}" for _, name, them, us in deficits[:LOST_ON_SHOWN]]


def _check_lines(checks: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per check that did not pass: verdict, reason code, the message with value and limit, hint."""
    lines = []
    for c in checks:
        if c.get("verdict") in ("warn", "fail"):
            hint = f" -> {c['hint']}" if c.get("hint") else ""
            lines.append(f"{c['verdict']} {c.get('reason') or c.get('rule')}: {c.get('message')}{hint}")
    return lines


def _unchecked_reasons(row: Mapping[str, Any]) -> list[str]:
    """``fail CODE -> hint`` for each reason of a rejected row that no check of it carries (selection found
    no window: ``too_short``, ``no_continuous_speech``, ...; the row's message gives value and limit)."""
    if row.get("status") != "rejected":
        return []
    checked = {c.get("reason") for c in row.get("checks") or []}
    known = set(all_codes())
    return [
        f"fail {code} -> {reason_hint(code)}"
        for code in row.get("reasons") or []
        if code not in checked and code in known
    ]


def _plan_paths(plan: Mapping[str, Any] | None) -> set[str]:
    return {p.get("path") for p in (plan or {}).get("pieces") or []}


def _recording_line(
    recording: Mapping[str, Any],
    row: Mapping[str, Any],
    plans: Sequence[Mapping[str, Any]],
    spec: FamilySpec,
    readable: int,
) -> str:
    """Why one recording was or was not used for one family."""
    path = recording["path"]
    if recording["status"] != "ok":
        reasons = ", ".join(recording.get("reasons") or []) or recording["status"]
        return f"{path}: not readable ({reasons}: {recording.get('message') or 'no detail'})"
    for rank, plan in enumerate(plans):
        if path in _plan_paths(plan):
            if rank == 0:
                return f"{path}: used in the clip ({row['status']})"
            return f"{path}: runner-up #{rank} (score {plan.get('score', 0):.2f} vs {plans[0].get('score', 0):.2f})"
    metrics = recording.get("metrics") or {}
    judged, _ = check_gates(spec.gates, metrics=metrics, null_reasons=recording.get("null_reasons") or {})
    below = [c.message for c in judged if c.verdict != "pass"]
    if not plans:  # no window was kept: the clip row's reasons are this recording's too
        line = _no_window_line(recording, row, spec, readable)
        return line + ("; as a whole it also has " + ", ".join(below) if below else "")
    if below:
        return f"{path}: usable, not chosen; as a whole it has " + ", ".join(below)
    short = _too_short_alone(metrics, spec)
    if short:
        if plans[0].get("assembled"):
            return f"{path}: {short}; the joined clip reached its length with higher-scoring takes"
        aim = spec.delivery.duration_s.aim
        if (plans[0].get("duration_s") or 0.0) >= aim - 1e-9:
            return f"{path}: {short}, and takes are joined only when no single recording gives a window of {aim:g} s"
        return f"{path}: {short}; joined with matching takes it scored below the chosen window (or no take matched it)"
    return f"{path}: usable, but its best window scored below the {len(plans)} kept (see the alternatives setting)"


def _too_short_alone(metrics: Mapping[str, Any], spec: FamilySpec) -> str:
    """``too short alone (4.0 s; ...)`` when the recording is shorter than the family's clip, else ``""``."""
    duration = metrics.get("duration_s")
    if isinstance(duration, int | float) and duration < spec.delivery.duration_s.min:
        return f"too short alone ({duration:.1f} s; {spec.name} needs a clip of {spec.delivery.duration_s.min:g} s or more)"
    return ""


def _no_window_line(
    recording: Mapping[str, Any], row: Mapping[str, Any], spec: FamilySpec, readable: int
) -> str:
    """Why a recording made no clip when no window of the speaker was kept, in the clip row's terms: another
    voice (where in this recording, the check's value, limit and hint), too short alone, or the reasons."""
    path = recording["path"]
    reasons = list(row.get("reasons") or [])
    if "other_voices" in reasons:
        where = [s for s in row.get("other_voices_avoided") or [] if len(s) == 3 and s[0] == path]
        heard = (
            "another voice talks at " + ", ".join(f"{a:.1f}-{b:.1f} s" for _, a, b in where)
            if where
            else "another voice talks in every window of it"
        )
        (check,) = [c for c in row.get("checks") or [] if c.get("rule") == "other_voices"] or [{}]
        hint = f" -> {check['hint']}" if check.get("hint") else ""
        return f"{path}: not used (other_voices): {heard}, and no window without it fits {spec.name}{hint}"
    short = _too_short_alone(recording.get("metrics") or {}, spec)
    if short and readable == 1:
        return f"{path}: {short}, and the speaker has no other recording to join it with"
    if short:
        return f"{path}: {short}, and no matching takes make a clip with it"
    why = ", ".join(reasons) or row["status"]
    return f"{path}: usable, but none of its windows could make the clip ({why})"


def explain(results: RunResults, speaker: str, family: str | None = None) -> str:
    """The explanation of ``speaker``'s clips (every family of the run, or only ``family``) as text.

    Raises:
        InvalidArgument: the speaker or family is not in this run.
    """
    rows = [r for r in results.clip_rows if r["speaker"] == speaker]
    recordings = [r for r in results.recording_rows if r["speaker"] == speaker]
    if not rows and not recordings:
        known = ", ".join(sorted({r["speaker"] for r in results.recording_rows})) or "none"
        raise InvalidArgument(f"speaker {speaker!r} is not in {results.out_dir} (speakers: {known})")
    if family is not None:
        family = family.lower()
        rows = [r for r in rows if r["family"] == family]
        if not rows:
            known = ", ".join(sorted({r["family"] for r in results.clip_rows})) or "none"
            raise InvalidArgument(f"family {family!r} has no clip for {speaker!r} (families: {known})")
    readable = sum(r["status"] == "ok" for r in recordings)
    lines = [f"{speaker}: {counted(len(recordings), 'recording')}, {readable} readable"]
    for row in rows:
        plan = row.get("plan") if isinstance(row.get("plan"), Mapping) else None
        plans = [p for p in (plan, *(row.get("alternatives") or [])) if isinstance(p, Mapping)]
        lines.append("")
        head = f"{row['family']}: {row['status']}"
        if plan is not None:
            head += f", {row.get('duration_s') or plan.get('duration_s', 0):.2f} s from {_pieces_text(plan)}"
            head += f" (score {plan.get('score', 0):.2f})"
        elif row.get("message"):
            head += f": {row['message']}"
        lines.append(head)
        lines += [f"  {line}" for line in _check_lines(row.get("checks") or [])]
        lines += [f"  {line}" for line in _unchecked_reasons(row)]
        if len(plans) > 1:
            lines.append("  runners-up:")
            for rank, other in enumerate(plans[1:], start=1):
                lost = ", ".join(_lost_on(plans[0], other)) or "a lower total"
                lines.append(
                    f"    #{rank} {_pieces_text(other)} (score {other.get('score', 0):.2f}): lost on {lost}"
                )
        dropped = ((plan or {}).get("measures") or {}).get("content_rejected") or []
        if dropped:
            lines.append("  dropped for music or singing:")
            lines += [
                f"    {_pieces_text(d)}: {d.get('content')} (music {d.get('music_score')}, singing "
                f"{d.get('singing_score')})"
                for d in dropped
            ]
        lines.append("  recordings:")
        spec = load_family(row["family"])
        lines += [f"    {_recording_line(rec, row, plans, spec, readable)}" for rec in recordings]
    return "\n".join(lines)
