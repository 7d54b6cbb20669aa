"""Gather what the report shows from a run folder: the manifests, ``run.json`` and the voice ledger.

Nothing here reads audio or measures anything: every number comes from ``recordings.jsonl`` and
``clips.jsonl`` as the run wrote them (``pipeline.report.media`` draws pictures and cuts excerpts later).
The family specs are loaded only to colour the *recordings'* metrics against each family's gates; clips
are coloured by their own ``checks``, which hold the verdicts the run gave.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pipeline.batch.manifest import CLIPS_FILE, RECORDINGS_FILE, read_rows
from pipeline.errors import InvalidArgument
from pipeline.report import fmt
from pipeline.report.results import locate_source, recorded_sources

VERDICT_RANK = {"pass": 0, "warn": 1, "fail": 2}
STATUSES = ("ready", "submitted", "rejected", "failed")
"""Clip statuses in the order the report lists them."""

BADGE_LIMIT_RULES = ("recommended_duration_s", "min_speech_run_s", "max_pause_s")
"""Hard-limit rules shown as badges next to the quality gates (every non-passing check is shown too)."""

RECORDING_GATE_METRICS = ("snr_db", "reverb_score", "clipped_ratio", "bandwidth_hz", "dnsmos_ovrl")
"""Recording metrics coloured against the families' gates in a speaker's recordings table."""

HISTOGRAM_METRICS = ("snr_db", "dnsmos_ovrl", "reverb_score", "bandwidth_class", "duration_s")


# ---------------------------------------------------------------------------------------------- views


@dataclass(frozen=True)
class Use:
    """A span of a source recording that a family's clip took (``chosen``) or considered (``alternative``)."""

    family: str
    kind: Literal["chosen", "alternative"]
    rank: int
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Reason:
    """A reason code with its human message and fix hint (from ``pipeline.errors``)."""

    code: str
    message: str
    hint: str


@dataclass(frozen=True)
class Badge:
    """One metric of a clip against its family's limit: text, verdict and the check's message."""

    label: str
    value: str
    limit: str
    verdict: str
    reason: str | None
    title: str


@dataclass(frozen=True)
class CheckView:
    """One row of a clip's checks table."""

    label: str
    group: str
    value: str
    limit: str
    verdict: str
    reason: str | None
    message: str
    hint: str | None


@dataclass(frozen=True)
class AltView:
    """An alternative window the selection kept for a clip (not rendered)."""

    rank: int
    spans: list[str]
    duration_s: float | None
    score: float | None
    snr_db: float | None
    dnsmos_ovrl: float | None
    reverb_score: float | None
    assembled: bool


@dataclass(frozen=True)
class VoiceView:
    """A cloned voice of a clip: from the ledger (``source == "ledger"``) or only from ``clips.jsonl``."""

    provider: str
    target_model: str | None
    voice_id: str | None
    status: str
    created_at: str | None
    updated_at: str | None
    origin: str | None
    same_clip: bool | None
    """True when the voice was made from this very clip (sha256), False for an earlier clip, None unknown."""
    error: str | None
    preview_path: str | None
    source: Literal["ledger", "manifest"]
    preview_url: str | None = None


@dataclass(frozen=True)
class Excerpt:
    """A short piece of a source recording, written under ``report_files/``, to hear the clip's context."""

    url: str
    path: str
    start_s: float
    end_s: float


@dataclass
class ClipView:
    """One (speaker, family) row of ``clips.jsonl`` as the report shows it."""

    speaker: str
    family: str
    anchor: str
    status: str
    verdict: str
    reasons: list[Reason]
    message: str
    clip: str | None
    clip_exists: bool
    duration_s: float | None
    sample_rate: int | None
    assembled: bool
    segments: list[dict[str, Any]]
    badges: list[Badge]
    checks: list[CheckView]
    alternatives: list[AltView]
    voices: list[VoiceView]
    render: dict[str, Any]
    metrics: dict[str, Any]
    row: dict[str, Any]
    audio_url: str | None = None
    spectrogram: str | None = None
    excerpts: list[Excerpt] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    same_as: ClipView | None = None
    """An earlier clip of this speaker with the very same bytes (its spectrogram is not drawn twice)."""

    @property
    def top_reason(self) -> Reason | None:
        """The first reason code (the run orders failures before warnings)."""
        return self.reasons[0] if self.reasons else None


@dataclass
class RecordingView:
    """One row of ``recordings.jsonl`` with the spans the clips took from it."""

    path: str
    speaker: str
    status: str
    reasons: list[Reason]
    message: str
    duration_s: float | None
    probe: dict[str, Any]
    metrics: dict[str, Any]
    null_reasons: dict[str, str]
    source: Path | None
    uses: list[Use]
    cells: dict[str, tuple[str, str | None, str]]
    """metric -> (text, verdict or None, title)."""
    sha256: str | None = None
    speech: list[list[float]] = field(default_factory=list)
    """Speech segments ``[start_s, end_s]`` when the run stored them (``speech_segments``); else empty."""
    waveform: str | None = None
    waveform_note: str = ""
    short: bool = False
    """Drawn in a narrow column (a short recording)."""

    @property
    def used(self) -> bool:
        """True when some family's clip took audio from this recording."""
        return any(u.kind == "chosen" for u in self.uses)


@dataclass
class SpeakerView:
    """Everything about one speaker."""

    name: str
    anchor: str
    recordings: list[RecordingView]
    clips: dict[str, ClipView]
    audio_s: float

    @property
    def statuses(self) -> list[str]:
        """The distinct statuses of this speaker's clips (for filtering)."""
        return sorted({c.status for c in self.clips.values()})

    @property
    def verdicts(self) -> list[str]:
        """The distinct check verdicts of this speaker's clips (for filtering)."""
        return sorted({c.verdict for c in self.clips.values()})

    @property
    def worst(self) -> str:
        """The worst clip status: failed > rejected > ready/submitted."""
        for status in ("failed", "rejected", "ready", "submitted"):
            if status in self.statuses:
                return status
        return "none"


@dataclass
class ReportData:
    """The whole report's content before drawing."""

    out_dir: Path
    run: dict[str, Any]
    families: list[str]
    speakers: list[SpeakerView]
    failed_recordings: list[RecordingView]
    counts: dict[str, Any]
    family_counts: dict[str, dict[str, int]]
    histograms: dict[str, dict[str, Any]]
    voices_note: str
    ledger_path: Path | None
    inputs: dict[str, Any] = field(default_factory=dict, repr=False)
    """What was read, as read: ``recordings`` and ``clips`` rows, ``voices`` (ledger rows, or ``None`` when
    the ledger could not be read). The report's cache key is a digest of these."""
    histogram_svgs: list[str] = field(default_factory=list)

    @property
    def speech_stored(self) -> bool:
        """True when some recording row carries its speech segments (drawn as a strip)."""
        return any(r.speech for sv in self.speakers for r in sv.recordings)


# ---------------------------------------------------------------------------------------------- helpers


def anchor_for(*parts: str) -> str:
    """A stable HTML id for a speaker (and family): ``s-<hash>`` plus a readable, safe suffix."""
    digest = hashlib.sha1("\x00".join(parts).encode("utf-8")).hexdigest()[:10]
    tail = re.sub(r"[^a-z0-9]+", "-", parts[-1].lower()).strip("-")[:24]
    return f"s-{digest}-{tail}" if tail else f"s-{digest}"


def reason_of(code: str) -> Reason:
    """The :class:`Reason` of a code; unknown codes (from newer code) keep the code as their message."""
    from pipeline.errors import reason

    try:
        r = reason(code)
    except KeyError:
        return Reason(code=code, message=code.replace("_", " "), hint="")
    return Reason(code=r.code, message=r.message, hint=r.hint)


def worst_verdict(verdicts: list[str]) -> str:
    """The worst of ``pass``/``warn``/``fail`` (``pass`` for none)."""
    rank = max((VERDICT_RANK.get(v, 0) for v in verdicts), default=0)
    return ("pass", "warn", "fail")[rank]


def _float(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def read_run_json(out_dir: Path) -> dict[str, Any]:
    """``run.json`` as a dict, ``{}`` when missing or unreadable (a run still going has none yet)."""
    try:
        data = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _gates_by_family(families: list[str]) -> dict[str, list[Any]]:
    """The quality gates of each family that still loads (a renamed or removed spec is skipped)."""
    from pipeline.rules.families import load_family

    out: dict[str, list[Any]] = {}
    for name in families:
        try:
            out[name] = list(load_family(name).gates)
        except Exception:  # a spec that no longer loads only loses the colouring
            continue
    return out


def _recording_cells(
    metrics: dict[str, Any], null_reasons: dict[str, str], gates: dict[str, list[Any]]
) -> dict[str, tuple[str, str | None, str]]:
    cells: dict[str, tuple[str, str | None, str]] = {}
    for metric in ("duration_s", *RECORDING_GATE_METRICS, "lufs"):
        x = metrics.get(metric)
        if metric == "bandwidth_hz" and x is not None and metrics.get("bandwidth_class"):
            text = f"{fmt.value(metric, x, 'Hz')} ({metrics['bandwidth_class']})"
        else:
            text = fmt.value(metric, x)
        if x is None:
            cells[metric] = (text, None, null_reasons.get(metric, "not measured"))
            continue
        judged: dict[str, list[str]] = {"fail": [], "warn": []}
        for family, family_gates in gates.items():
            for gate in family_gates:
                if gate.metric == metric:
                    v = gate.verdict(_float(x))
                    if v in judged:
                        judged[v].append(family)
        verdict = "fail" if judged["fail"] else "warn" if judged["warn"] else ("pass" if gates else None)
        if metric in ("duration_s", "lufs"):
            verdict = None
        parts = [f"{v} for {', '.join(fams)}" for v, fams in judged.items() if fams]
        title = "; ".join(parts) if parts else ("passes every family's gate" if verdict else "")
        cells[metric] = (text, verdict, title)
    return cells


def _badges_and_checks(checks: list[dict[str, Any]]) -> tuple[list[Badge], list[CheckView]]:
    badges: list[Badge] = []
    views: list[CheckView] = []
    for c in checks:
        rule = str(c.get("rule", ""))
        unit = str(c.get("unit") or "")
        verdict = str(c.get("verdict") or "pass")
        value_text = fmt.value(rule, c.get("value"), unit)
        limit_text = fmt.limit(rule, str(c.get("op") or ""), c.get("limit"), unit)
        views.append(
            CheckView(
                label=fmt.metric_name(rule),
                group=str(c.get("group") or ""),
                value=value_text,
                limit=limit_text,
                verdict=verdict,
                reason=c.get("reason"),
                message=str(c.get("message") or ""),
                hint=c.get("hint"),
            )
        )
        if c.get("group") == "gate" or rule in BADGE_LIMIT_RULES or verdict != "pass":
            badges.append(
                Badge(
                    label=fmt.metric_name(rule),
                    value=value_text,
                    limit=limit_text,
                    verdict=verdict,
                    reason=c.get("reason"),
                    title=str(c.get("message") or ""),
                )
            )
    return badges, views


def _spans(value: Any) -> list[list[float]]:
    """Valid ``[start_s, end_s]`` pairs from a stored list (anything else is ignored)."""
    out = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, list | tuple) and len(item) == 2:
            a, b = _float(item[0]), _float(item[1])
            if a is not None and b is not None and b > a:
                out.append([a, b])
    return out


def _span_text(seg: dict[str, Any]) -> str:
    return f"{seg.get('path')} {fmt.number(seg.get('start_s'))}–{fmt.number(seg.get('end_s'))} s"


def _alternatives(row: dict[str, Any]) -> list[AltView]:
    out = []
    for rank, alt in enumerate(row.get("alternatives") or [], start=1):
        measures = alt.get("measures") or {}
        out.append(
            AltView(
                rank=rank,
                spans=[_span_text(s) for s in alt.get("segments") or []],
                duration_s=_float(alt.get("duration_s")),
                score=_float(alt.get("score")),
                snr_db=_float(measures.get("snr_db")),
                dnsmos_ovrl=_float(measures.get("dnsmos_ovrl")),
                reverb_score=_float(measures.get("reverb_score")),
                assembled=bool(alt.get("assembled")),
            )
        )
    return out


def _uses(clips: list[dict[str, Any]]) -> dict[str, list[Use]]:
    """Relative recording path -> the spans each family's clip took or considered from it."""
    uses: dict[str, list[Use]] = {}
    for row in clips:
        family = str(row.get("family"))
        plan = row.get("plan") or {}
        chosen = row.get("segments") or plan.get("segments") or []
        for seg in chosen:
            _add_use(uses, seg, family, "chosen", 0)
        for rank, alt in enumerate(row.get("alternatives") or [], start=1):
            for seg in alt.get("segments") or []:
                _add_use(uses, seg, family, "alternative", rank)
    return uses


def _add_use(uses: dict[str, list[Use]], seg: dict[str, Any], family: str, kind: Any, rank: int) -> None:
    start, end = _float(seg.get("start_s")), _float(seg.get("end_s"))
    path = seg.get("path")
    if isinstance(path, str) and start is not None and end is not None and end > start:
        uses.setdefault(path, []).append(Use(family, kind, rank, start, end))


# ---------------------------------------------------------------------------------------------- voices


def _voices(
    out_dir: Path, run: dict[str, Any]
) -> tuple[dict[tuple[str, str], list[dict[str, Any]]], str, Path, list[dict[str, Any]] | None]:
    """Ledger rows grouped by (speaker, family), a note saying where they came from, the ledger path, and
    the rows as read (``None`` when the ledger could not be read)."""
    from pipeline.enroll.ledger import read_voices, run_ledger_path

    path = run_ledger_path(out_dir, run)
    try:
        rows = read_voices(path)
    except Exception as exc:  # a damaged ledger must not stop the report
        return (
            {},
            f"the voice ledger could not be read ({type(exc).__name__}); voice ids from clips.jsonl",
            path,
            None,
        )
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        grouped.setdefault((str(r.get("speaker")), str(r.get("family"))), []).append(r)
    shown = path.name if path.parent.resolve() == out_dir.resolve() else str(path)
    note = f"{len(rows)} voice(s) in the ledger {shown}" if path.is_file() else "no voice ledger yet"
    return grouped, note, path, rows


def _voice_views(row: dict[str, Any], ledger_rows: list[dict[str, Any]]) -> list[VoiceView]:
    sha = row.get("sha256")
    views = []
    for r in sorted(ledger_rows, key=lambda r: str(r.get("created_at") or ""), reverse=True):
        error = r.get("last_error")
        if isinstance(error, dict):
            error = ": ".join(str(error.get(k)) for k in ("reason", "message") if error.get(k))
        views.append(
            VoiceView(
                provider=str(r.get("provider") or ""),
                target_model=r.get("target_model"),
                voice_id=r.get("voice_id"),
                status=str(r.get("status") or "unknown"),
                created_at=r.get("created_at"),
                updated_at=r.get("updated_at"),
                origin=r.get("origin"),
                same_clip=(r.get("clip_sha256") == sha) if sha and r.get("clip_sha256") else None,
                error=str(error) if error else None,
                preview_path=r.get("preview_path"),
                source="ledger",
            )
        )
    if row.get("voice_id") and not any(v.voice_id == row["voice_id"] for v in views):
        views.insert(
            0,
            VoiceView(
                provider="",
                target_model=row.get("target_model"),
                voice_id=row["voice_id"],
                status=str(row.get("status")),
                created_at=None,
                updated_at=None,
                origin=None,
                same_clip=True,
                error=None,
                preview_path=None,
                source="manifest",
            ),
        )
    return views


# ---------------------------------------------------------------------------------------------- gather


def _clip_view(row: dict[str, Any], out_dir: Path, voices: list[dict[str, Any]]) -> ClipView:
    speaker, family = str(row.get("speaker")), str(row.get("family"))
    checks = [c for c in row.get("checks") or [] if isinstance(c, dict)]
    badges, check_views = _badges_and_checks(checks)
    status = str(row.get("status"))
    verdict = worst_verdict([str(c.get("verdict")) for c in checks])
    if status in ("rejected", "failed"):
        verdict = "fail"
    clip = row.get("clip") if isinstance(row.get("clip"), str) else None
    clip_exists = bool(clip) and (out_dir / clip).is_file()
    return ClipView(
        speaker=speaker,
        family=family,
        anchor=anchor_for(speaker, family),
        status=status,
        verdict=verdict,
        reasons=[reason_of(str(code)) for code in row.get("reasons") or []],
        message=str(row.get("message") or ""),
        clip=clip,
        clip_exists=clip_exists,
        duration_s=_float(row.get("duration_s")),
        sample_rate=row.get("sample_rate"),
        assembled=bool(row.get("assembled")),
        segments=[s for s in row.get("segments") or [] if isinstance(s, dict)],
        badges=badges,
        checks=check_views,
        alternatives=_alternatives(row),
        voices=_voice_views(row, voices),
        render=dict(row.get("render") or {}),
        metrics=dict(row.get("metrics") or {}),
        row=row,
    )


def gather(out_dir: Path) -> ReportData:
    """Read a run folder into a :class:`ReportData` (no audio is read).

    Raises:
        InvalidArgument: ``out_dir`` is not a folder or holds neither manifest.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise InvalidArgument(f"out_dir {str(out_dir)!r} is not a folder")
    if not (out_dir / RECORDINGS_FILE).is_file() and not (out_dir / CLIPS_FILE).is_file():
        raise InvalidArgument(
            f"out_dir {str(out_dir)!r} holds no {RECORDINGS_FILE} or {CLIPS_FILE}: not a voiceprep run folder"
        )
    recordings = read_rows(out_dir / RECORDINGS_FILE)
    clips = read_rows(out_dir / CLIPS_FILE)
    run = read_run_json(out_dir)

    families = [f for f in run.get("families") or [] if isinstance(f, str)]
    for row in clips:
        if row.get("family") not in families:
            families.append(str(row.get("family")))

    grouped_voices, voices_note, ledger_path, voice_rows = _voices(out_dir, run)
    sources = recorded_sources(clips)
    uses = _uses(clips)
    gates = _gates_by_family(families)

    speakers: dict[str, SpeakerView] = {}

    def speaker_view(name: str) -> SpeakerView:
        if name not in speakers:
            speakers[name] = SpeakerView(
                name=name, anchor=anchor_for(name), recordings=[], clips={}, audio_s=0.0
            )
        return speakers[name]

    failed: list[RecordingView] = []
    for row in sorted(recordings, key=lambda r: str(r.get("path"))):
        path = str(row.get("path"))
        metrics = row.get("metrics") or {}
        probe = row.get("probe") or {}
        duration = _float(probe.get("duration_s")) or _float(metrics.get("duration_s"))
        null_reasons = row.get("null_reasons") or {}
        view = RecordingView(
            path=path,
            speaker=str(row.get("speaker")),
            status=str(row.get("status")),
            reasons=[reason_of(str(c)) for c in row.get("reasons") or []],
            message=str(row.get("message") or ""),
            duration_s=duration,
            probe=probe,
            metrics=metrics,
            null_reasons=null_reasons,
            source=locate_source(path, run.get("input"), sources) if row.get("status") == "ok" else None,
            uses=sorted(uses.get(path, []), key=lambda u: (u.rank, families.index(u.family), u.start_s)),
            cells=_recording_cells(metrics, null_reasons, gates) if metrics else {},
            sha256=row.get("sha256"),
            speech=_spans(row.get("speech_segments") or metrics.get("speech_segments")),
        )
        sv = speaker_view(view.speaker)
        sv.recordings.append(view)
        sv.audio_s += duration or 0.0
        if view.status != "ok":
            failed.append(view)

    family_counts: dict[str, dict[str, int]] = {f: dict.fromkeys(STATUSES, 0) for f in families}
    for row in clips:
        view = _clip_view(
            row, out_dir, grouped_voices.get((str(row.get("speaker")), str(row.get("family"))), [])
        )
        speaker_view(view.speaker).clips[view.family] = view
        family_counts.setdefault(view.family, dict.fromkeys(STATUSES, 0))
        family_counts[view.family][view.status] = family_counts[view.family].get(view.status, 0) + 1

    for sv in speakers.values():
        sv.clips = {f: sv.clips[f] for f in families if f in sv.clips}

    audio_s = sum(sv.audio_s for sv in speakers.values())
    counts = {
        "recordings": len(recordings),
        "recordings_failed": sum(r.get("status") != "ok" for r in recordings),
        "audio_s": audio_s,
        "hours": fmt.hours(audio_s),
        "speakers": len(speakers),
        "clips": len(clips),
        "by_status": dict(Counter(str(r.get("status")) for r in clips)),
    }
    return ReportData(
        out_dir=out_dir,
        run=run,
        families=families,
        speakers=sorted(speakers.values(), key=lambda s: s.name),
        failed_recordings=failed,
        counts=counts,
        family_counts=family_counts,
        histograms=histogram_data(clips),
        voices_note=voices_note,
        ledger_path=ledger_path,
        inputs={"recordings": recordings, "clips": clips, "voices": voice_rows},
    )


def histogram_data(clips: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per metric: ``values`` as (value, status) pairs over the clips that have one, and ``gates``
    as {limit: [families]} read from the clips' own gate checks."""
    out: dict[str, dict[str, Any]] = {}
    for metric in HISTOGRAM_METRICS:
        values: list[tuple[Any, str]] = []
        gates: dict[float, list[str]] = {}
        for row in clips:
            if not row.get("clip"):
                continue
            x = row.get("duration_s") if metric == "duration_s" else (row.get("metrics") or {}).get(metric)
            if x is not None:
                values.append((x, str(row.get("status"))))
            for c in row.get("checks") or []:
                lim = _float(c.get("limit"))
                if c.get("rule") == f"gate:{metric}" and lim is not None:
                    fams = gates.setdefault(lim, [])
                    if row.get("family") not in fams:
                        fams.append(str(row.get("family")))
        out[metric] = {"values": values, "gates": gates}
    return out
