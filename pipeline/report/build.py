"""The HTML quality report of a run: ``OUT/report.html``, one self-contained page built from the manifests.

``build_report(OUT)`` reads ``recordings.jsonl``, ``clips.jsonl``, ``run.json`` and the voice ledger, draws
the source waveforms and clip spectrograms (reading audio only to draw it), cuts short source excerpts
to listen to into ``OUT/report_files/``, and writes the page. Nothing is measured again: every number and
verdict is the run's own. See ``docs/report.md``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pipeline.errors import InvalidArgument
from pipeline.report.data import (
    HISTOGRAM_METRICS,
    SHORT_SOURCE_S,
    Speaker,
    content_spans,
    duration,
    ledger_rows,
    speaker_cards,
)
from pipeline.report.results import RunResults, load_run

__all__ = ["FILES_DIR", "REPORT_FILE", "build_report", "preload"]

REPORT_FILE = "report.html"
FILES_DIR = "report_files"
"""Folder (inside OUT) of the source excerpts the page links to."""

MAX_WAVEFORMS_PER_SPEAKER = 10
"""Source recordings drawn per speaker: those the clips used first, then the alternatives', then others."""

MAX_EXCERPTS_PER_CLIP = 4
"""Source excerpts per clip (an assembled clip may take pieces of many files)."""

PRELOAD_LIMIT = 40
"""Up to this many audio players the page preloads their metadata (durations show at once); above it
players load only when played, so a large report opens quickly."""

log = logging.getLogger(__name__)


PRELOADED = (
    "pandas",
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
    "matplotlib.backends.backend_svg",
    "pipeline.report.html",
    "pipeline.report.media",
    "pipeline.report.plots",
)
"""The modules :func:`preload` imports."""


def preload() -> None:
    """Import what :func:`build_report` needs (pandas, matplotlib's figures and SVG/PNG writers, the page
    template's Jinja2; 0.6-0.7 s of the report's CPU after a run of the realistic hour, measured):
    ``voiceprep run`` calls it in a thread at its start, so the imports take a core the run's workers
    leave idle (a long recording's fast pass, the last clip task) instead of adding to the run's end."""
    import importlib

    for name in PRELOADED:
        importlib.import_module(name)


def _url(target: Path, base: Path) -> str:
    """``target`` as a relative, percent-encoded URL from the folder ``base``."""
    rel = os.path.relpath(target.resolve(), base.resolve())
    return quote(Path(rel).as_posix(), safe="/")


def _draw_recordings(sv: Speaker, families: list[str]) -> None:
    from pipeline.report import media, plots

    def priority(r: dict[str, Any]) -> tuple[int, str]:
        uses = sv.uses.get(r["path"], [])
        return (0 if any(u["kind"] == "chosen" for u in uses) else 1 if uses else 2), r["path"]

    drawn = 0
    for r in sorted((r for r in sv.recordings if r["status"] == "ok"), key=priority):
        path, source, length = r["path"], sv.sources.get(r["path"]), duration(r)
        if source is None:
            sv.notes[path] = "the source file is no longer where the run read it; not drawn"
            continue
        if not length:
            sv.notes[path] = "no duration recorded; not drawn"
            continue
        if drawn >= MAX_WAVEFORMS_PER_SPEAKER:
            sv.notes[path] = (
                f"not drawn (at most {MAX_WAVEFORMS_PER_SPEAKER} recordings are drawn per speaker)"
            )
            continue
        short = length <= SHORT_SOURCE_S
        uses = sv.uses.get(path, [])
        regions = media.regions_for(length, [(u["start_s"], u["end_s"]) for u in uses])
        env = None
        try:
            if regions is None or regions:
                env = media.envelope(
                    source, duration_s=length, regions=regions, columns=240 if short else 500
                )
        except Exception as exc:  # a file that cannot be drawn keeps its lanes
            log.warning("report: cannot draw %s: %s", path, exc)
            sv.notes[path] = f"the waveform could not be drawn ({type(exc).__name__})"
        if regions is not None:
            sv.notes.setdefault(
                path,
                f"longer than {media.LONG_SOURCE_S / 60:.0f} min: waveform drawn only around the used spans",
            )
        metrics = r["metrics"] or {}
        sv.waveforms[path] = plots.waveform_svg(
            env,
            duration_s=length,
            regions=regions,
            families=families,
            uses=uses,
            pauses=metrics.get("pauses") or [],
            speech=r["speech_segments"],
            clipped_events=metrics.get("clipped_events") or [],
            other_voices=_other_voices(sv, path),
            content=content_spans(path, metrics, list(sv.clips.values())),
            anchors={fam: c["anchor"] for fam, c in sv.clips.items()},
            statuses={fam: c["status"] for fam, c in sv.clips.items()},
            label=path,
            width=480.0 if short else 1000.0,
        )
        drawn += 1


def _other_voices(sv: Speaker, path: str) -> list[tuple[float, float]]:
    """Where selection heard another voice in the recording ``path``: any family's plan says so, or the
    row of a clip rejected because another voice talks in every window (no plan to carry it)."""
    spans: set[tuple[float, float]] = set()
    for clip in sv.clips.values():
        measures = (clip.get("plan") or {}).get("measures") or {}
        for span in [
            *(measures.get("other_voices_avoided") or []),
            *(clip.get("other_voices_avoided") or []),
        ]:
            if len(span) == 3 and span[0] == path:
                spans.add((float(span[1]), float(span[2])))
    return sorted(spans)


def _excerpts(clip: dict[str, Any], sv: Speaker, files_dir: Path, base: Path, keep: set[str]) -> None:
    from pipeline.analysis.base import merge_spans
    from pipeline.report import media

    by_path: dict[str, list[tuple[float, float]]] = {}
    for seg in clip["segments"]:
        path, a, b = seg.get("path"), seg.get("start_s"), seg.get("end_s")
        if isinstance(path, str) and isinstance(a, int | float) and isinstance(b, int | float) and b > a:
            by_path.setdefault(path, []).append((float(a), float(b)))
    spans = [
        (path, span)
        for path, segs in by_path.items()
        for span in merge_spans(segs, gap_s=2 * media.CONTEXT_S)
    ]
    if len(spans) > MAX_EXCERPTS_PER_CLIP:
        clip["notes"].append(
            f"{len(spans)} source spans; excerpts of the first {MAX_EXCERPTS_PER_CLIP} are offered to listen to"
        )
    recordings = {r["path"]: r for r in sv.recordings}
    for path, (a, b) in spans[:MAX_EXCERPTS_PER_CLIP]:
        rec, source = recordings.get(path), sv.sources.get(path)
        if rec is None or source is None:
            clip["notes"].append(f"source {path} not found: no excerpt to listen to")
            continue
        start, end = media.excerpt_span(a, b, duration(rec))
        name = media.excerpt_name(rec["sha256"] or path, start, end)
        target = files_dir / name
        try:
            media.write_excerpt(source, target, start_s=start, end_s=end)
        except Exception as exc:  # a missing excerpt must not stop the report
            log.warning("report: cannot cut an excerpt of %s: %s", path, exc)
            clip["notes"].append(f"no excerpt of {path}: {type(exc).__name__}")
            continue
        keep.add(name)
        clip["excerpts"].append({"url": _url(target, base), "path": path, "start_s": start, "end_s": end})


def _draw_clip(clip: dict[str, Any], path: Path, base: Path) -> None:
    from pipeline.report import media, plots

    clip["audio_url"] = _url(path, base)
    try:
        db, rate, length = media.spectrogram(path)
    except Exception as exc:
        log.warning("report: cannot draw the spectrogram of %s: %s", path, exc)
        clip["notes"].append(f"spectrogram not drawn ({type(exc).__name__})")
        return
    bandwidth = clip["metrics"].get("bandwidth_hz")
    clip["spectrogram"] = plots.spectrogram_svg(
        db,
        sample_rate=rate,
        duration_s=length,
        bandwidth_hz=float(bandwidth) if isinstance(bandwidth, int | float) else None,
        label=f"{clip['speaker']} {clip['family']}",
    )


def _voice_previews(clip: dict[str, Any], out_dir: Path, base: Path) -> None:
    for v in clip["voices"]:
        if v.get("preview_path"):
            p = Path(v["preview_path"])
            p = p if p.is_absolute() else out_dir / p
            if p.is_file():
                v["preview_url"] = _url(p, base)


def _histograms(res: RunResults) -> list[str]:
    """Per metric, the delivered clips' values by status, with the families' gate limits as their checks
    recorded them."""
    from pipeline.report import plots
    from pipeline.rules.metrics import METRICS, is_number

    out = []
    for metric in HISTOGRAM_METRICS:
        values: list[tuple[Any, str]] = []
        gates: dict[float, list[str]] = {}
        for row in res.clip_rows:
            if not row["clip"]:
                continue
            x = row["duration_s"] if metric == "duration_s" else row["metrics"].get(metric)
            if x is not None:
                values.append((x, row["status"]))
            for c in row["checks"]:
                lim = c.get("limit")
                if c.get("rule") == f"gate:{metric}" and is_number(lim):
                    fams = gates.setdefault(float(lim), [])
                    if row["family"] not in fams:
                        fams.append(row["family"])
        title = "clip duration" if metric == "duration_s" else METRICS[metric].label
        out.append(
            plots.histogram_svg(
                values, metric=metric, title=title, unit=METRICS[metric].unit, gates=gates or None
            )
        )
    return out


def _prune(files_dir: Path, keep: Iterable[str]) -> None:
    """Delete excerpts this build no longer links (only files named like ours), and the temporary files a
    build killed mid-write left there."""
    from pipeline.batch.outputs import remove_dead_temp_files

    keep = set(keep)
    if not files_dir.is_dir():
        return
    remove_dead_temp_files(files_dir)
    for p in files_dir.glob("src-*.mp3"):
        if p.name not in keep:
            p.unlink(missing_ok=True)


def build_report(out_dir: Path, *, dest: Path | None = None, reuse: bool = False) -> Path:
    """Write the HTML report of the run in ``out_dir`` and return its path.

    ``dest`` defaults to ``OUT/report.html``; links to clips and excerpts are relative to ``dest``'s
    folder, so keep the page and ``OUT`` where they are relative to each other. Source excerpts go to
    ``OUT/report_files/`` (reused when unchanged, stale ones removed). The page is written atomically;
    up to 4 threads (one per core) draw the speakers. With ``reuse``, a page built
    from the very same results (manifests, ledger, run settings; times aside) is kept as it is: a resumed
    run does not draw everything again.

    Raises:
        InvalidArgument: ``out_dir`` is not a run folder, or ``dest``'s folder does not exist.
    """
    from pipeline.audio.io import atomic_write_bytes
    from pipeline.report.html import render

    out_dir = Path(out_dir)
    dest = Path(dest) if dest is not None else out_dir / REPORT_FILE
    res = load_run(out_dir)
    speakers = speaker_cards(res)
    key = _results_key(res, dest)
    key_file = out_dir / ".cache" / "report.key"
    if reuse and dest.is_file() and key_file.is_file() and key_file.read_text() == key:
        return dest
    if not dest.parent.is_dir():
        raise InvalidArgument(f"dest {str(dest)!r}: its folder does not exist")
    if dest.is_dir():
        raise InvalidArgument(f"dest {str(dest)!r} is a folder; give a file name such as report.html")
    base = dest.parent
    files_dir = out_dir / FILES_DIR
    keep: set[str] = set()

    def draw(sv: Speaker) -> None:
        _draw_recordings(sv, res.families)
        seen: dict[str, dict[str, Any]] = {}
        for clip in sv.clips.values():
            sha, path = clip["clip_sha256"], out_dir / (clip["clip"] or "")
            if clip["clip"] and path.is_file():
                if sha in seen:
                    clip["same_as"] = seen[sha]
                    clip["audio_url"] = _url(path, base)
                else:
                    _draw_clip(clip, path, base)
                    if sha:
                        seen.setdefault(sha, clip)
            _excerpts(clip, sv, files_dir, base, keep)
            _voice_previews(clip, out_dir, base)

    # Decoding (libsndfile, FFmpeg), FFTs and image encoding release the GIL: threads share the work.
    workers = min(4, os.cpu_count() or 1)
    if workers == 1 or len(speakers) < 2:
        for sv in speakers:
            draw(sv)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(draw, speakers))
    players = sum(bool(c["audio_url"]) + len(c["excerpts"]) for sv in speakers for c in sv.clips.values())
    _prune(files_dir, keep)
    preload = "metadata" if players <= PRELOAD_LIMIT else "none"
    page = render(res, speakers, histograms=_histograms(res), preload=preload)
    encoded = page.encode("utf-8")
    atomic_write_bytes(dest, lambda fh: fh.write(encoded))
    key_file.parent.mkdir(exist_ok=True)
    atomic_write_bytes(key_file, lambda fh: fh.write(key.encode()))
    return dest


_VOLATILE_RUN_KEYS = ("started", "seconds", "timings", "tasks")
"""``run.json`` entries that differ between a run and its resumed twin without changing any result."""


def _results_key(res: RunResults, dest: Path) -> str:
    """A digest of everything the page shows apart from times: manifests, run settings, ledger, code."""
    import hashlib
    import json

    from pipeline import __version__

    h = hashlib.sha256(f"{__version__}|{dest.resolve()}".encode())
    settled = {k: v for k, v in res.run.items() if k not in _VOLATILE_RUN_KEYS}
    voices = ledger_rows(res)
    if voices is None:  # a damaged ledger: the page says so; rebuild whenever it is asked for
        voices = f"unreadable {os.urandom(8).hex()}"
    for part in (res.recording_rows, res.clip_rows, settled, voices):
        h.update(json.dumps(part, sort_keys=True, default=str).encode())
    templates = Path(__file__).parent / "templates"
    for t in sorted(templates.iterdir()):
        h.update(t.read_bytes())
    return h.hexdigest()
