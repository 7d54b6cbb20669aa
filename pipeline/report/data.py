"""What the report shows of a run, from its :class:`~pipeline.report.results.RunResults` (``load_run``).

Nothing here reads audio or measures anything: every number comes from the manifest rows as
``load_run`` read them (``pipeline.report.media`` draws pictures and cuts excerpts later). The page
reads the rows themselves (``recordings.jsonl`` and ``clips.jsonl`` rows, ledger rows); :class:`Speaker` only
groups them by speaker and holds what :func:`~pipeline.report.build.build_report` draws. The family specs are loaded only to colour the
*recordings'* metrics against each family's gates; clips are coloured by their own ``checks``, which
hold the verdicts the run gave.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.enroll.check import describe_check, stored_check
from pipeline.errors import reason_hint, reason_message
from pipeline.report.results import RunResults
from pipeline.rules.checks import combine
from pipeline.rules.metrics import value_text

STATUSES = ("ready", "submitted", "rejected", "failed")
"""Clip statuses in the order the report lists them."""

BADGE_LIMIT_RULES = ("recommended_duration_s", "min_speech_run_s", "max_pause_s")
"""Hard-limit rules shown as badges next to the quality gates (every non-passing check is shown too)."""

RECORDING_METRICS = (
    "duration_s",
    "snr_db",
    "reverb_score",
    "clipped_ratio",
    "bandwidth_hz",
    "dnsmos_ovrl",
    "lufs",
    "speaker_similarity",
)
"""The metric columns of a speaker's recordings table; all but duration, loudness and speaker similarity
are coloured against the families' gates."""

RECORDING_HEADERS: dict[str, tuple[str, str]] = {
    "duration_s": ("duration", ""),
    "snr_db": ("SNR", "speech over noise, dB"),
    "reverb_score": ("reverb (0-1)", "room echo on a 0-1 scale: 0 dry, 1 very reverberant (no unit)"),
    "clipped_ratio": ("clipping", "share of the samples at the clipping level"),
    "bandwidth_hz": ("bandwidth", "highest frequency the speech reaches, and its class"),
    "dnsmos_ovrl": ("DNSMOS", "predicted listener rating (OVRL), 1-5"),
    "lufs": ("loudness", "integrated loudness, LUFS"),
    "speaker_similarity": ("voice", "cosine of the file's voice to the speaker's voice"),
}
"""Header text and hover title of each column of :data:`RECORDING_METRICS`."""

HISTOGRAM_METRICS = ("snr_db", "dnsmos_ovrl", "reverb_score", "bandwidth_class", "duration_s")

SHORT_SOURCE_S = 10.0
"""Recordings up to this long are drawn in a narrow column, three to a row (takes, short memos)."""


@dataclass
class Speaker:
    """One speaker's card: their recordings (manifest rows, by path) and clips (by family, in run order).

    A clip on the page is its ``clips.jsonl`` row as ``load_run`` read it, plus its ``anchor``, its
    ``verdict`` (the worst check verdict; ``fail`` for a rejected or failed clip), its ``voices`` (ledger
    rows of this speaker and family, newest first, each with ``same_clip``: made from this very clip, an
    earlier one, or ``None``: unknown; ``error`` (text) and, once drawn, ``preview_url``; a voice id only
    ``clips.jsonl`` knows comes first, marked ``manifest``) and what
    :func:`~pipeline.report.build.build_report` draws: the clip's ``audio_url``, its ``spectrogram`` (SVG),
    source ``excerpts`` written under ``report_files/`` (``{url, path, start_s, end_s}``), ``notes`` and
    ``same_as``, an earlier clip of this speaker with the very same bytes (its spectrogram is not drawn
    twice).
    """

    name: str
    anchor: str
    recordings: list[dict[str, Any]] = field(default_factory=list)
    clips: dict[str, dict[str, Any]] = field(default_factory=dict)
    uses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Recording path -> the spans each family's clip took (``kind`` ``chosen``, ``rank`` 0) or ranked
    next (``alternative``, ``rank`` >= 1) from it: ``{family, kind, rank, start_s, end_s}``."""
    sources: dict[str, Path | None] = field(default_factory=dict)
    """Recording path -> the input file now (``None`` when it is gone), as ``load_run`` finds it."""
    waveforms: dict[str, str] = field(default_factory=dict)
    """Recording path -> its drawn waveform (SVG)."""
    notes: dict[str, str] = field(default_factory=dict)
    """Recording path -> why its waveform is partial or not drawn."""

    @property
    def statuses(self) -> list[str]:
        """The distinct statuses of this speaker's clips (for filtering)."""
        return sorted({c["status"] for c in self.clips.values()})

    @property
    def verdicts(self) -> list[str]:
        """The distinct check verdicts of this speaker's clips (for filtering)."""
        return sorted({c["verdict"] for c in self.clips.values()})

    @property
    def worst(self) -> str:
        """The worst clip status: failed > rejected > ready/submitted."""
        return next((s for s in ("failed", "rejected", "ready", "submitted") if s in self.statuses), "none")

    @property
    def audio_s(self) -> float:
        """Seconds of readable audio over this speaker's recordings."""
        return sum(duration(r) or 0.0 for r in self.recordings)

    @property
    def recording_metrics(self) -> tuple[str, ...]:
        """The metric columns of this speaker's recordings table: :data:`RECORDING_METRICS`, the voice
        (``speaker_similarity``) only when it compares something: two or more of the speaker's recordings
        have one; DNSMOS only when one was measured (:attr:`dnsmos_measured`). A lone file's voice *is* the speaker's voice (about 1 by construction); a lone file
        unlike a named reference says so in its ``speaker_mismatch`` reason and message."""
        compared = sum((r["metrics"] or {}).get("speaker_similarity") is not None for r in self.recordings)
        shown = tuple(m for m in RECORDING_METRICS if m != "speaker_similarity" or compared >= 2)
        return shown if self.dnsmos_measured else tuple(m for m in shown if m != "dnsmos_ovrl")

    @property
    def dnsmos_measured(self) -> bool:
        """Whether any of this speaker's recordings has a DNSMOS score: a run scores only the windows it
        considers, so its recordings have none and the column is left out (the page says so once)."""
        return any((r["metrics"] or {}).get("dnsmos_ovrl") is not None for r in self.recordings)


def counts(res: RunResults, speakers: list[Speaker]) -> dict[str, Any]:
    """The page header's numbers."""
    rows, clips = res.recording_rows, res.clip_rows
    return {
        "recordings": len(rows),
        "recordings_failed": sum(r["status"] != "ok" for r in rows),
        "audio_s": sum(sv.audio_s for sv in speakers),
        "speakers": len(speakers),
        "clips": len(clips),
        "by_status": dict(Counter(r["status"] for r in clips)),
    }


def family_counts(res: RunResults) -> dict[str, dict[str, int]]:
    """Family -> clip status -> number of clips."""
    table = {f: dict.fromkeys(STATUSES, 0) for f in res.families}
    for row in res.clip_rows:
        table[row["family"]][row["status"]] += 1
    return table


def failed_recordings(res: RunResults) -> list[dict[str, Any]]:
    """The recordings that could not be used, by path: unreadable, or someone else's voice."""
    unused = (r for r in res.recording_rows if r["status"] != "ok" or "speaker_mismatch" in r["reasons"])
    return sorted(unused, key=lambda r: r["path"])


def cells(row: dict[str, Any], gates: dict[str, list[Any]]) -> dict[str, tuple[str, str | None, str]]:
    """A recording's metric cells: metric -> (text, verdict against the families' ``gates`` or None,
    title)."""
    metrics = row["metrics"] or {}
    out: dict[str, tuple[str, str | None, str]] = {}
    for metric in RECORDING_METRICS if metrics else ():
        x = metrics.get(metric)
        text = value_text(metric, x)
        if metric == "bandwidth_hz" and x is not None and metrics.get("bandwidth_class"):
            text = f"{value_text(metric, x, 'Hz')} ({metrics['bandwidth_class']})"
        if x is None:
            out[metric] = (text, None, row["null_reasons"].get(metric, "not measured"))
            continue
        judged: dict[str, list[str]] = {"fail": [], "warn": []}
        for family, family_gates in gates.items():
            for gate in family_gates:
                verdict = gate.verdict(_float(x)) if gate.metric == metric else None
                if verdict in judged:
                    judged[verdict].append(family)
        verdict = "fail" if judged["fail"] else "warn" if judged["warn"] else ("pass" if gates else None)
        verdict = None if metric in ("duration_s", "lufs", "speaker_similarity") else verdict
        parts = [f"{v} for {', '.join(fams)}" for v, fams in judged.items() if fams]
        title = "; ".join(parts) if parts else ("passes every family's gate" if verdict else "")
        out[metric] = (text, verdict, title)
    return out


# ---------------------------------------------------------------------------------------------- helpers


def anchor_for(*parts: str) -> str:
    """A stable HTML id for a speaker (and family): ``s-<hash>`` plus a readable, safe suffix."""
    digest = hashlib.sha1("\x00".join(parts).encode("utf-8")).hexdigest()[:10]
    tail = re.sub(r"[^a-z0-9]+", "-", parts[-1].lower()).strip("-")[:24]
    return f"s-{digest}-{tail}" if tail else f"s-{digest}"


def reason_of(code: str) -> tuple[str, str]:
    """What a reason code means and its fix hint; an unknown code (from newer code) reads as its words,
    without a hint."""
    try:
        return reason_message(code), reason_hint(code)
    except KeyError:
        return code.replace("_", " "), ""


def is_badge(check: dict[str, Any]) -> bool:
    """True for a check shown as a badge on its clip: quality gates, a few hard limits, every non-pass."""
    return (
        check.get("group") == "gate"
        or check.get("rule") in BADGE_LIMIT_RULES
        or check.get("verdict") != "pass"
    )


def duration(row: dict[str, Any]) -> float | None:
    """A recording's length: from its probe, else its measured duration."""
    return _float(row["probe"].get("duration_s")) or _float((row["metrics"] or {}).get("duration_s"))


def _float(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def gates_by_family(families: list[str]) -> dict[str, list[Any]]:
    """The quality gates of each family that still loads (a renamed or removed spec is skipped)."""
    from pipeline.rules.families import load_family

    out: dict[str, list[Any]] = {}
    for name in families:
        try:
            out[name] = list(load_family(name).gates)
        except Exception:  # a spec that no longer loads only loses the colouring
            continue
    return out


def content_spans(
    path: str, metrics: dict[str, Any], clips: Iterable[dict[str, Any]]
) -> list[tuple[float, float, str]]:
    """Where music or singing was heard in a recording: its own ``music_spans`` (when the whole file was
    measured) and the windows selection dropped for it (``content_rejected`` in each clip's plan)."""
    found = [(float(a), float(b), str(k)) for a, b, k in metrics.get("music_spans") or []]
    for row in clips:
        for rejected in ((row.get("plan") or {}).get("measures") or {}).get("content_rejected") or []:
            for piece in rejected.get("pieces") or []:
                if piece.get("path") == path:
                    found.append((float(piece["start_s"]), float(piece["end_s"]), str(rejected["content"])))
    return sorted(set(found))


def _uses(clips: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Relative recording path -> the spans each family's clip took or considered from it."""
    uses: dict[str, list[dict[str, Any]]] = {}
    for row in clips:
        spans = [(seg, "chosen", 0) for seg in row["segments"]] + [
            (seg, "alternative", rank)
            for rank, alt in enumerate(row["alternatives"], start=1)
            for seg in alt.get("pieces") or []
        ]
        for seg, kind, rank in spans:
            start, end, path = _float(seg.get("start_s")), _float(seg.get("end_s")), seg.get("path")
            if isinstance(path, str) and start is not None and end is not None and end > start:
                use = {"family": row["family"], "kind": kind, "rank": rank, "start_s": start, "end_s": end}
                uses.setdefault(path, []).append(use)
    return uses


def _voices(row: dict[str, Any], ledger_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The voices of a clip: its ledger rows, newest first, and a voice id only ``clips.jsonl`` knows."""
    sha = row["clip_sha256"]
    voices = []
    for r in sorted(ledger_rows, key=lambda r: str(r.get("created_at") or ""), reverse=True):
        error = r.get("last_error")
        if isinstance(error, dict):
            error = ": ".join(str(error.get(k)) for k in ("reason", "message") if error.get(k))
        same = (r.get("clip_sha256") == sha) if sha and r.get("clip_sha256") else None
        check = stored_check(r["details"]) if isinstance(r.get("details"), dict) else None
        clone = describe_check(check) if check else None
        flagged = bool(check and check.get("flag"))
        voices.append(
            {
                **r,
                "same_clip": same,
                "error": str(error) if error else None,
                "clone": clone,
                "clone_flagged": flagged,
            }
        )
    if row["voice_id"] and not any(v.get("voice_id") == row["voice_id"] for v in voices):
        voices.insert(
            0,
            {
                "voice_id": row["voice_id"],
                "target_model": row["target_model"],
                "status": row["status"],
                "same_clip": True,
                "error": None,
                "manifest": True,
            },
        )
    return voices


def ledger_rows(res: RunResults) -> list[dict[str, Any]] | None:
    """The voice ledger's rows; ``None`` when the ledger cannot be read (that must not stop the report)."""
    try:
        return res.voice_rows
    except Exception:
        return None


def voices_note(res: RunResults) -> str:
    """What the page says about the voice ledger it read."""
    try:
        rows = res.voice_rows
    except Exception as exc:
        return f"the voice ledger could not be read ({type(exc).__name__}); voice ids from clips.jsonl"
    path = res.ledger_path
    shown = path.name if path.parent == res.out_dir else str(path)
    return f"{len(rows)} voice(s) in the ledger {shown}" if path.is_file() else "no voice ledger yet"


# ---------------------------------------------------------------------------------------------- gather


def speaker_cards(res: RunResults) -> list[Speaker]:
    """The run's speakers by name, each with its recordings, its clips (in family order), the spans they
    use and where its input files are now. No audio is read."""
    families = res.families
    by_clip: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for v in ledger_rows(res) or []:
        by_clip.setdefault((str(v.get("speaker")), str(v.get("family"))), []).append(v)

    speakers: dict[str, Speaker] = {}

    def speaker(name: str) -> Speaker:
        return speakers.setdefault(name, Speaker(name=name, anchor=anchor_for(name)))

    sources = dict(zip(res.recordings["path"], res.recordings["source"], strict=True))
    uses = _uses(res.clip_rows)
    for spans in uses.values():
        spans.sort(key=lambda u: (u["rank"], families.index(u["family"]), u["start_s"]))
    for row in sorted(res.recording_rows, key=lambda r: r["path"]):
        sv, path = speaker(row["speaker"]), row["path"]
        sv.recordings.append(row)
        sv.sources[path] = Path(sources[path]) if isinstance(sources.get(path), str) else None
        if path in uses:
            sv.uses[path] = uses[path]
    for row in sorted(res.clip_rows, key=lambda r: families.index(r["family"])):
        worst = combine([c["verdict"] for c in row["checks"]])
        speaker(row["speaker"]).clips[row["family"]] = {
            **row,
            "anchor": anchor_for(row["speaker"], row["family"]),
            "verdict": "fail" if row["status"] in ("rejected", "failed") else worst,
            "voices": _voices(row, by_clip.get((row["speaker"], row["family"]), [])),
            **{"audio_url": None, "spectrogram": None, "excerpts": [], "notes": [], "same_as": None},
        }
    return sorted(speakers.values(), key=lambda s: s.name)
