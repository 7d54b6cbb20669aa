"""The batch runner: scan, group by speaker, analyse each file, select and render per family, write outputs.

Two stages, each a set of independent tasks sent through one executor seam (serial, processes, Dask):

1. one task per input file: probe, sha256, fast pass; the result (a recordings row and the
   :class:`~pipeline.analysis.base.Analysis`) is cached under ``OUT/.cache/recordings/`` keyed by the
   file's sha256 and the analysis settings, so a resumed or repeated run never decodes a file twice;
2. one task per (speaker, family): selection over the speaker's recordings, render, re-check; cached
   under ``OUT/.cache/clips/`` keyed by the speaker's recordings, the family spec and the settings.

Every file is written under a temporary name and renamed. Manifests are appended while the run goes
(readable during it) and rewritten whole, sorted, at the end, so a run killed at any point and started
again ends with the same manifests and clips as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import os
import platform
import re
import time
import traceback
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline.audio import io
from pipeline.audio.memory import release_free_memory
from pipeline.audio.notes import collect
from pipeline.audio.scan import InputFile, scan
from pipeline.batch import outputs
from pipeline.batch.config import RunConfig, load_config
from pipeline.batch.manifest import (
    RUN_FILE,
    ClipRow,
    RecordingRow,
    append_row,
    fingerprint,
    to_jsonable,
    write_rows,
)
from pipeline.errors import (
    AudioReadError,
    InvalidArgument,
    VoiceprepError,
    encodable,
    reason_message,
    without_path,
)
from pipeline.rules.metrics import counted

CACHE_VERSION = 5
"""Bumped when cached rows or analyses change meaning; old cache entries are then ignored."""

WORKER_MODULES = (
    "pipeline.batch.runner",
    "pipeline.analysis.fastpass",
    "pipeline.analysis.inspection",
    "pipeline.selection.select",
    "pipeline.render.clip",
)
"""What the tasks of both stages import: each process-pool worker imports them as it starts."""

ProgressCallback = Callable[[str, dict[str, Any]], None]


class RunError(VoiceprepError):
    """The run itself could not proceed (output folder unwritable, no input, invalid configuration)."""


# --------------------------------------------------------------------------------------------- speakers


_WINDOWS_RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(1, 10)),
    *(f"LPT{i}" for i in range(1, 10)),
}


def safe_name(name: str) -> str:
    """The clip folder of a speaker: the name itself (NFC), letters and digits of every script kept
    (``张伟`` stays ``张伟``); runs of anything else (spaces, ``/``, ``\\``, ``:``, control characters,
    markup) become ``_``; never empty, hidden or a reserved Windows device name."""
    text = unicodedata.normalize("NFC", encodable(name)).strip()
    cleaned = re.sub(r"[^\w.-]+", "_", text).strip("._")
    if cleaned.split(".")[0].upper() in _WINDOWS_RESERVED:
        cleaned = f"_{cleaned}"
    return cleaned or "speaker"


def folder_key(name: str) -> str:
    """What makes two clip folders the same on a case-insensitive file system (macOS, Windows)."""
    return unicodedata.normalize("NFC", safe_name(name)).casefold()


def _read_speaker_map(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """``{path: speaker}`` and ``{speaker: reference}`` (the optional third column) of a speaker map."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:  # spreadsheets often write a BOM
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise RunError(f"{path}: cannot read the speaker map: {exc.strerror or exc}") from None
    mapping: dict[str, str] = {}
    references: dict[str, str] = {}
    for number, row in enumerate(rows, start=1):
        if not row or row[0].strip().startswith("#"):
            continue
        if number == 1 and [c.strip().lower() for c in row[:2]] == ["path", "speaker"]:
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise RunError(f"{path}: line {number}: expected 'path,speaker' or 'path,speaker,reference'")
        who = row[1].strip()
        mapping[Path(row[0].strip()).as_posix()] = who
        if len(row) > 2 and row[2].strip():
            given = row[2].strip()
            if references.setdefault(who, given) != given:
                raise RunError(f"{path}: line {number}: {who} already has the reference {references[who]!r}")
    return mapping, references


def speaker_languages(speaker_map: str | Path | None) -> dict[str, str]:
    """``{speaker: language}`` from the optional fourth column of a speaker map
    (``path,speaker,reference,language``; the reference may be empty), for ``voiceprep submit``."""
    if speaker_map is None:
        return {}
    try:
        with Path(speaker_map).open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise RunError(f"{speaker_map}: cannot read the speaker map: {exc.strerror or exc}") from None
    out: dict[str, str] = {}
    for number, row in enumerate(rows, start=1):
        if len(row) < 4 or not row[3].strip() or row[0].strip().startswith("#"):
            continue
        if number == 1 and [c.strip().lower() for c in row[:2]] == ["path", "speaker"]:
            continue
        who, language = row[1].strip(), row[3].strip()
        if out.setdefault(who, language) != language:
            raise RunError(f"{speaker_map}: line {number}: {who} already has the language {out[who]!r}")
    return out


def speaker_references(
    input_path: str | Path,
    inputs: Sequence[InputFile],
    *,
    reference: str | Path | None = None,
    speaker_map: str | Path | None = None,
) -> dict[str, Path]:
    """``{speaker: reference recording}``: ``reference`` (only for an input of one speaker) and the
    ``reference`` column of ``speaker_map`` (a path relative to the input folder, else as given)."""
    speakers = sorted({i.speaker for i in inputs})
    named: dict[str, str] = {}
    if speaker_map is not None:
        named = _read_speaker_map(Path(speaker_map))[1]  # its speakers are the input's (find_inputs)
    if reference is not None:
        if len(speakers) != 1:
            raise RunError(
                f"--reference names one voice, and the input holds {len(speakers)} speakers; give each its "
                "reference in the reference column of --speaker-map"
            )
        named.setdefault(speakers[0], str(reference))
    root = Path(input_path)
    base = root if root.is_dir() else root.parent
    out: dict[str, Path] = {}
    for who, given in named.items():
        found = next((p for p in (base / given, Path(given)) if p.is_file()), None)
        if found is None:
            raise RunError(f"the reference recording of {who} ({given}) is not a file")
        out[who] = found.resolve()
    return out


def find_inputs(
    input_path: str | Path,
    *,
    speaker: str | None = None,
    speaker_map: str | Path | None = None,
    skipped: list[str] | None = None,
) -> list[InputFile]:
    """Scan the input and name each file's speaker.

    Each immediate subfolder of the input is a speaker (nested folders belong to it); each loose file in
    the input root is its own speaker named by its stem; ``speaker`` makes the whole input one speaker;
    ``speaker_map`` (CSV of ``path,speaker``, paths relative to the input) overrides per file (an optional
    third column ``reference`` names the speaker's reference recording: :func:`speaker_references`).
    ``skipped`` receives the paths of the files left out because they are not audio (see :func:`scan`).
    """
    root = Path(input_path)
    if not root.exists():
        raise RunError(f"{root}: no such file or folder")
    mapping = _read_speaker_map(Path(speaker_map))[0] if speaker_map is not None else {}
    files: list[InputFile] = []
    for item in scan([root], skipped=skipped):
        shown = encodable(item.path)  # manifests, logs and the terminal see text; `source` keeps the bytes
        parts = Path(shown).parts
        who = speaker or (parts[0] if len(parts) > 1 else Path(shown).stem)
        who = mapping.get(shown, who)
        # realpath, not Path.resolve: a link to itself must stay a row (symlink_loop), not raise
        files.append(replace(item, path=shown, source=os.path.realpath(item.source), speaker=who))
    # A path the map names but the input does not hold is a typo: silently ignoring it would put that
    # file under the wrong speaker.
    unknown = sorted(set(mapping) - {f.path for f in files})
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:3]) + (
            f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        )
        raise RunError(f"{speaker_map}: names files that are not in {root}: {shown}")
    return files


# --------------------------------------------------------------------------------------------- stage 1


def _code_version() -> str:
    from pipeline import __version__
    from pipeline.analysis.base import FEATURES_VERSION

    return f"{__version__}/f{FEATURES_VERSION}/c{CACHE_VERSION}"


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Key order is kept (not sorted): a row read back from the cache must print exactly as the fresh row
    # did, so a resumed run writes byte-identical manifests.
    text = json.dumps(to_jsonable(obj), ensure_ascii=False, allow_nan=False)
    io.atomic_write_bytes(path, lambda fh: fh.write(text.encode("utf-8")))


def _file_sha256(source: Path, cache_dir: Path) -> str:
    """sha256 of a file's bytes, remembered by (size, mtime, inode) so a repeated run does not re-read it."""
    st = source.stat()
    stamp = fingerprint([encodable(str(source)), st.st_size, st.st_mtime_ns, st.st_ino])
    entry = cache_dir / "hashes" / f"{stamp}.txt"
    try:
        value = entry.read_text().strip()
        if len(value) == 64:
            return value
    except OSError:
        pass
    value = io.sha256_file(source)
    entry.parent.mkdir(parents=True, exist_ok=True)
    io.atomic_write_bytes(entry, lambda fh: fh.write(value.encode()))
    return value


def _cache_key(cfg: RunConfig, **parts: Any) -> str:
    """The name of a cache entry: a fingerprint of what it was made from (``parts``), the analysis
    settings and the code version; a change of any of them makes every entry new."""
    return fingerprint({**parts, "analysis": cfg.fingerprint_fields("analysis"), "code": _code_version()})


def _speaker_model() -> list[Any]:
    """What the cached partials of a recording depend on besides its bytes and the analysis settings: the
    speaker model (its name and sha256: partials of another model, such as GE2E's 256-number ones before
    2026-12-08, are never reused) and the partials' length."""
    from pipeline.analysis.speaker import MODEL_NAME, MODEL_SHA256, PARTIAL_S

    return [MODEL_NAME, MODEL_SHA256, PARTIAL_S]


def _analysis_cache(sha: str, cache: Path, cfg: RunConfig) -> tuple[Path, Path]:
    """Where the analysis of the bytes ``sha`` is cached, keyed by content and settings: its row (JSON)
    and its :class:`~pipeline.analysis.base.Analysis` (``.npz``)."""
    key = _cache_key(cfg, sha256=sha)
    return cache / "recordings" / f"{key}.json", cache / "recordings" / f"{key}.npz"


def _message(exc: OSError | AudioReadError, source: str | Path) -> str:
    """What went wrong, without the file's name (the row's ``path`` names it).

    A cached analysis is keyed by content, so it serves every file with these bytes: its message must
    name no file (another copy, or the same input moved, would show it).
    """
    if isinstance(exc, AudioReadError):
        return without_path(exc.message, source)
    return str(exc.strerror or exc)


def cached_recording(item: InputFile, *, cache_dir: Path, config: RunConfig) -> RecordingRow | None:
    """Stage 1 without analysing: the row of a file that cannot be read or whose analysis is cached (an
    ``ok`` row's :class:`~pipeline.analysis.base.Analysis` is cached beside it).

    ``None`` when the file must be analysed (:func:`analyze_recording`, in a worker). Runs in the calling
    process: a repeated run over an unchanged input starts no worker at all.
    """
    who = {"path": item.path, "speaker": item.speaker}
    if item.problem is not None:
        message = reason_message(item.problem)
        return RecordingRow(**who, status="failed", reasons=[item.problem], message=message)
    try:
        sha = _file_sha256(Path(item.source), cache_dir)
    except (OSError, AudioReadError) as exc:
        message = _message(exc, item.source)
        return RecordingRow(**who, status="failed", reasons=["unreadable"], message=message)
    row_path, analysis_path = _analysis_cache(sha, cache_dir, config)
    cached = outputs.read_json_object(row_path)
    if cached is None:
        return None
    row = RecordingRow.model_validate(cached).model_copy(update=who)  # the same bytes, another name
    return row if row.status != "ok" or analysis_path.exists() else None


def analyze_recording(
    item: InputFile, *, cache_dir: Path, config: RunConfig, threads: int = 1
) -> RecordingRow:
    """Stage-1 task: the recordings row of one file; its analysis, when ``ok``, is cached for stage 2.

    ``threads=2`` runs the fast pass's meters in two threads (:func:`meter_threads`), the same result.
    Data problems become a ``failed`` row with a reason code; this function only raises on bugs.
    """
    from pipeline.analysis.fastpass import analyze_file

    source = Path(item.source)
    sha = _file_sha256(source, cache_dir)
    row_path, analysis_path = _analysis_cache(sha, cache_dir, config)
    who = {"path": item.path, "speaker": item.speaker, "sha256": sha}
    probed: dict[str, Any] = {}
    with collect() as notes:  # what the decoders say while reading the file: the row's decode_notes
        try:
            info = io.probe(source, max_input_s=config.max_input_s, hash=False)
            probed = {k: getattr(info, k) for k in io.PROBE_FIELDS}
            result = analyze_file(
                source,
                channel_strategy=config.channel_strategy,
                max_input_s=config.max_input_s,
                info=info,
                vad_aggressiveness=config.vad_aggressiveness,
                threads=threads,
            )
            if not result.metrics.get("duration_s"):
                raise AudioReadError("empty", "no samples could be decoded")
        except AudioReadError as exc:
            row = RecordingRow(
                **who,
                probe=probed,
                status="failed",
                reasons=[exc.reason],
                message=_message(exc, source),
                decode_notes=notes.entries(),
            )
            _write_json(row_path, row)
            return row
    result.path, result.speaker = item.path, item.speaker
    result.save(analysis_path)
    row = RecordingRow(
        **who,
        probe=probed,
        status="ok",
        reasons=list(result.warnings),
        message="; ".join(result.warnings),
        metrics=result.metrics,
        null_reasons=result.null_reasons,
        speech_segments=[[round(a, 3), round(b, 3)] for a, b in result.speech_segments],
        decode_notes=notes.entries(),
    )
    _write_json(row_path, row)
    del result
    release_free_memory()
    return row


def meter_threads(kind: str | Executor, workers: int | None, scheduler: str | None, files: int) -> int:
    """Threads for each file's fast pass: 2 when voiceprep's own workers have two cores per file to
    analyse (one long recording on ``--jobs 2``: its fast pass is one task, and the second core would
    wait for it), else 1. Workers count only as far as this process has CPUs (``--jobs 2`` pinned to one
    core keeps one thread). A serial run, a user's executor and a scheduler's workers keep one thread."""
    from pipeline.batch.executors import DEFAULT_DASK_WORKERS, default_jobs

    if not isinstance(kind, str) or kind == "serial" or scheduler is not None:
        return 1
    cores = min(workers or (default_jobs() if kind == "processes" else DEFAULT_DASK_WORKERS), default_jobs())
    return 2 if cores >= 2 * files else 1


# --------------------------------------------------------------------------------------------- stage 2


ClipTask = tuple[str, tuple[InputFile, ...]]
"""Stage-2 input: a family and one speaker's readable recordings (each with its ``sha256``)."""


def _clip_cache(task: ClipTask, cache_dir: Path, cfg: RunConfig, voice: Any = None) -> tuple[Any, str, Path]:
    """The family spec of a stage-2 task, its cache key (the speaker's recordings and voice, the spec and
    the selection settings) and where its row is cached."""
    from pipeline.rules.families import load_family

    family, files = task
    spec = load_family(family)
    key = _cache_key(
        cfg,
        voice=voice,
        speaker=files[0].speaker,
        family=family,
        recordings=sorted((f.sha256 or "", f.path) for f in files),
        spec=spec.model_dump(mode="json"),
        selection=cfg.fingerprint_fields("selection"),
    )
    return spec, key, cache_dir / "clips" / f"{key}.json"


def cached_clip(
    task: ClipTask,
    *,
    out_dir: Path,
    cache_dir: Path,
    config: RunConfig,
    voices: dict[str, dict[str, Any]] | None = None,
) -> ClipRow | None:
    """Stage 2 without working: the cached row of this speaker and family when its clip is intact, else None."""
    _, _, row_path = _clip_cache(task, cache_dir, config, (voices or {}).get(task[1][0].speaker))
    cached = outputs.read_json_object(row_path)
    if cached is None or _without_heard_spans(cached):
        return None
    row = ClipRow.model_validate(cached)
    return row if _clip_intact(out_dir, row) else None


def _without_heard_spans(cached: dict[str, Any]) -> bool:
    """True for a row cached before rows kept where another voice was heard (``other_voices_avoided``)
    and its check (value, limit, hint) when it rejected every window for it: selected again, so the report
    can draw where and say how much."""
    return (
        "other_voices" in (cached.get("reasons") or [])
        and cached.get("plan") is None
        and ("other_voices_avoided" not in cached or not cached.get("checks"))
    )


def make_clip(
    task: ClipTask,
    *,
    out_dir: Path,
    cache_dir: Path,
    config: RunConfig,
    voices: dict[str, dict[str, Any]] | None = None,
) -> ClipRow:
    """Stage-2 task: choose, render and re-check the clip of one speaker for one family.

    ``voices`` holds each speaker's voice (:meth:`pipeline.analysis.voice.Voice.to_dict`): selection then
    never picks a window in which another voice talks."""
    from pipeline.analysis.base import Analysis
    from pipeline.analysis.voice import Voice

    _, files = task
    voice_dict = (voices or {}).get(files[0].speaker)
    spec, key, row_path = _clip_cache(task, cache_dir, config, voice_dict)
    recordings = []
    for f in files:
        rec = Analysis.load(_analysis_cache(f.sha256 or "", cache_dir, config)[1])
        rec.source, rec.path, rec.speaker = f.source, f.path, f.speaker  # cached by content, named here
        recordings.append(rec)
    voice = None if voice_dict is None else Voice.from_dict(voice_dict)
    row = _select_render_check(recordings, spec, out_dir, config, voice)
    row.key = key
    if "output_in_the_way" not in row.reasons:  # not cached: once the file is moved, the clip is made
        _write_json(row_path, row)
    del recordings
    release_free_memory()
    return row


def _own_turns(voice: Any, recordings: Sequence[Any]) -> list[tuple[float, float]] | None:
    """The speaker's own turns in all their recordings when every one holds two voices (else None: some
    recording is the speaker's alone, and how long they talk there is not a turn)."""
    turns: list[tuple[float, float]] = []
    for rec in recordings:
        here = voice.recordings.get(rec.path)
        if here is None or here.turns is None:
            return None
        turns.extend(here.turns)
    return turns


ClipGroup = tuple[tuple[str, ...], tuple[InputFile, ...]]
"""Stage-2 input of one worker task: families that share their windows and one speaker's recordings."""


def clip_groups(tasks: Sequence[ClipTask]) -> list[ClipGroup]:
    """The stage-2 tasks of one speaker whose families deliver clips of the same duration range, as one
    worker task each, the biggest first.

    Such families score the same windows, and selection keeps each window's slow measures (DNSMOS,
    Silero's edges, the content meter) in its process (:mod:`pipeline.selection.slow`): in one task the
    second family finds them measured (on the realistic hour Qwen-TTS after CosyVoice costs 0.5 s of CPU
    instead of 3.5 s; ``BENCHMARKS.md``, scaling). Groups of more families go first, so the longest tasks
    do not start last. The rows do not depend on the grouping: each family is still selected on its own.
    """
    from pipeline.rules.families import load_family

    groups: dict[tuple[str, Any], list[str]] = {}
    files_of: dict[str, tuple[InputFile, ...]] = {}
    for family, files in tasks:
        who = files[0].speaker
        span = load_family(family).delivery.duration_s.model_dump(mode="json")
        groups.setdefault((who, json.dumps(span, sort_keys=True)), []).append(family)
        files_of[who] = files
    out = [(tuple(families), files_of[who]) for (who, _), families in groups.items()]
    return sorted(out, key=lambda g: -len(g[0]))  # stable: speakers stay in name order


def cached_clips(
    group: ClipGroup,
    *,
    out_dir: Path,
    cache_dir: Path,
    config: RunConfig,
    voices: dict[str, dict[str, Any]] | None = None,
) -> list[ClipRow] | None:
    """:func:`cached_clip` of every family of ``group``, or None when any of them must be made."""
    families, files = group
    rows = []
    for family in families:
        row = cached_clip((family, files), out_dir=out_dir, cache_dir=cache_dir, config=config, voices=voices)
        if row is None:
            return None
        rows.append(row)
    return rows


def make_clips(
    group: ClipGroup,
    *,
    out_dir: Path,
    cache_dir: Path,
    config: RunConfig,
    voices: dict[str, dict[str, Any]] | None = None,
) -> list[ClipRow | BaseException]:
    """Stage-2 task of a :func:`clip_groups` group: each family's row, from the cache or
    :func:`make_clip`, in the group's order.

    A family whose work raises (a bug) gets its exception in its place (a
    :class:`~pipeline.batch.executors.TaskError` when it cannot travel between processes as itself); the
    other families of the group are still made.
    """
    from pipeline.batch.executors import portable

    families, files = group
    where = {"out_dir": out_dir, "cache_dir": cache_dir, "config": config, "voices": voices}
    rows: list[ClipRow | BaseException] = []
    for family in families:
        try:
            rows.append(cached_clip((family, files), **where) or make_clip((family, files), **where))
        except Exception as exc:
            rows.append(portable(exc))
    return rows


def _clip_intact(out: Path, row: ClipRow) -> bool:
    """True when a cached row's clip file exists and holds the bytes the row describes.

    The file at ``clips/<speaker>/<family>.wav`` is shared by every key of that speaker and family: after a
    spec is changed and changed back, the old key's row is found again but the file holds the other
    spec's render. Hashing a clip (a few hundred kB) is cheap next to rendering it again.
    """
    if row.clip is None:
        return True
    path = out / row.clip
    if not path.is_file():
        return False
    return row.clip_sha256 is None or io.sha256_file(path) == row.clip_sha256


def _select_render_check(
    recordings: list[Any], spec: Any, out: Path, cfg: RunConfig, voice: Any = None
) -> ClipRow:
    from pipeline.analysis.inspection import check
    from pipeline.render.clip import render
    from pipeline.rules.checks import other_voices_everywhere
    from pipeline.selection.select import choose, explain

    speaker = recordings[0].speaker
    avoided: list[list[Any]] = []
    plans = choose(
        recordings,
        spec,
        top=cfg.top_candidates,
        slow=cfg.slow_measures,
        alternatives=cfg.alternatives,
        voice=voice,
        avoided=avoided,
    )
    if not plans:
        reasons, message = explain(recordings, spec)
        heard: dict[str, Any] = {}
        if not reasons and voice is not None:  # windows exist, and another voice talks in every one
            reasons = ["other_voices"]
            message = f"another voice talks in every window that fits {spec.name}"
            check = other_voices_everywhere(
                avoided,
                family=spec.name,
                needed_s=spec.delivery.duration_s.min,
                turns=_own_turns(voice, recordings),
            )
            # where: no plan carries it (the report draws it); what: the check, with value, limit and hint
            heard = {"other_voices_avoided": avoided, "checks": [check.to_dict()]}
        return ClipRow(
            speaker=speaker, family=spec.name, status="rejected", reasons=reasons, message=message, **heard
        )
    target = out / "clips" / safe_name(speaker) / f"{spec.name}.{spec.delivery.format}"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not outputs.may_write(out, target):
        return _in_the_way(speaker, spec.name, out, target)
    outputs.note_intent(out, target)
    first_failure: ClipRow | None = None
    for rank, plan in enumerate(plans):
        rendered = render(plan, spec, target)
        known = _known_dnsmos(plan, rendered)
        verdict = check(
            rendered.path,
            spec,
            dnsmos=True,
            known_metrics={**(known or {}), **_known_voices(plan)} or None,
            voices=cfg.speaker_checks,
        )
        row = ClipRow(
            speaker=speaker,
            family=spec.name,
            status="ready" if verdict.verdict != "fail" else "rejected",
            reasons=verdict.reasons,
            message="" if rank == 0 else f"the best window failed its re-check; alternative {rank} used",
            clip=rendered.path.relative_to(out).as_posix(),
            clip_sha256=io.sha256_file(rendered.path),
            segments=rendered.segments,
            duration_s=rendered.duration_s,
            sample_rate=rendered.sample_rate,
            assembled=plan.assembled,
            metrics=verdict.metrics,
            checks=[c.to_dict() for c in verdict.checks],
            alternatives=[p.to_dict() for i, p in enumerate(plans) if i != rank],
            plan=plan.to_dict(),
            render={
                "gain_db": rendered.gain_db,
                "lufs": rendered.lufs,
                "true_peak_dbtp": rendered.true_peak_dbtp,
                "denoised": rendered.denoised,
                "pauses_shortened": rendered.pauses_shortened,
                "dnsmos_from": "the clip" if known is None else "the planned window (slow pass) or render",
                "notes": rendered.notes,
            },
        )
        if verdict.verdict != "fail":
            return row
        first_failure = first_failure or row
    assert first_failure is not None
    # Re-render the best plan and keep it to listen to, but never where a ready clip would be.
    rejected = out / "rejected" / safe_name(speaker) / target.name
    rejected.parent.mkdir(parents=True, exist_ok=True)
    if not outputs.may_write(out, rejected):
        target.unlink(missing_ok=True)
        return _in_the_way(speaker, spec.name, out, rejected)
    outputs.note_intent(out, rejected)
    render(plans[0], spec, rejected)
    target.unlink(missing_ok=True)
    first_failure.clip = rejected.relative_to(out).as_posix()
    first_failure.clip_sha256 = io.sha256_file(rejected)
    first_failure.message = "every candidate failed its re-check; the best is kept under rejected/"
    return first_failure


def _in_the_way(speaker: str, family: str, out: Path, target: Path) -> ClipRow:
    where = target.relative_to(out).as_posix()
    return ClipRow(
        speaker=speaker,
        family=family,
        status="failed",
        reasons=["output_in_the_way"],
        message=f"{where}: {reason_message('output_in_the_way')}; it was left as it is",
    )


def _known_voices(plan: Any) -> dict[str, Any]:
    """Who speaks in the plan, measured by selection against the speaker's voice (the re-check keeps it
    instead of judging the clip against its own dominant voice). The spans are the plan's (times of its
    source), so they are passed only when there are none; a plan with some is never chosen."""
    m = plan.measures
    known = {k: m[k] for k in ("speaker_similarity", "other_voice_s") if m.get(k) is not None}
    if known and not m.get("other_voice_spans"):
        known["other_voice_spans"] = []
    return known


def _known_dnsmos(plan: Any, rendered: Any) -> dict[str, float] | None:
    """DNSMOS already measured on this clip's audio, so the re-check need not run the model again.

    The renderer scores the final audio when it considers denoising (``dnsmos_after`` when it kept the
    denoised version, ``dnsmos_before`` otherwise); the slow pass scores the planned clip's own audio
    brought to about the delivered level (see ``pipeline.selection.slow.dnsmos_of``). ``None``: measure it.
    """
    scores = rendered.dnsmos_after if rendered.denoised else rendered.dnsmos_before
    if scores and scores.get("ovrl") is not None:
        return {"dnsmos_ovrl": scores["ovrl"], "dnsmos_sig": scores["sig"], "dnsmos_bak": scores["bak"]}
    m = plan.measures
    if m.get("dnsmos_source") == "window" and m.get("dnsmos_ovrl") is not None:
        return {k: m[k] for k in ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak") if m.get(k) is not None}
    return None


# --------------------------------------------------------------------------------------------- the run


def _notify(progress: ProgressCallback | None, event: str, **data: Any) -> None:
    if progress is not None:
        progress(event, data)


def _crash(out: Path, what: str, exc: BaseException) -> dict[str, Any]:
    """The fields of a row whose task crashed (a bug, not a data problem); its traceback is appended to
    ``OUT/errors.log``."""
    from pipeline.batch.executors import error_type

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    # Paths in a traceback may hold bytes that are not UTF-8: escaped, never a second crash.
    with (out / "errors.log").open("a", encoding="utf-8", errors="backslashreplace") as fh:
        fh.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {encodable(what)}\n{text}\n")
    kind_name = error_type(exc)  # the original type, also when it came back wrapped from a worker
    message = encodable(f"{kind_name}: {exc}")
    return {"status": "failed", "reasons": ["internal_error"], "message": message, "error_type": kind_name}


def run(
    input_path: str | Path,
    out_dir: str | Path,
    *,
    families: Sequence[str] | None = None,
    config: RunConfig | None = None,
    executor: str | Executor | None = None,
    jobs: int | None = None,
    scheduler: str | None = None,
    resume: bool = True,
    speaker: str | None = None,
    speaker_map: str | Path | None = None,
    reference: str | Path | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Run voiceprep over a file or folder, write the outputs to ``out_dir`` and return that folder (read
    what the run produced with :func:`pipeline.load_run`).

    ``executor`` is ``"serial"``, ``"processes"`` or ``"dask"`` (default: the config's), or any
    :class:`concurrent.futures.Executor` (a Dask ``client.get_executor()``, a thread pool), which the run
    uses and leaves open; the kinds are started only when some work is not cached, and stopped at the end.

    ``reference`` names the recording whose voice is the speaker's (an input of one speaker; per speaker:
    the ``reference`` column of ``speaker_map``); by default each speaker's voice is the dominant voice of
    their recordings (:mod:`pipeline.batch.speakers`, with ``speaker_checks`` in the config).

    Raises :class:`RunError` when the run cannot proceed (no input, unwritable output, the input is the
    output folder or inside it) and :class:`~pipeline.batch.outputs.OutputBusy` when another run holds the
    output folder's lock; data problems in individual files never raise: they become rows with a status
    and reasons. Only clips this function can prove it wrote are ever deleted or overwritten
    (:mod:`pipeline.batch.outputs`).
    """
    from pipeline.batch.executors import KINDS
    from pipeline.rules.families import list_families, load_family

    started = time.time()
    t0 = time.perf_counter()
    cfg = config or load_config()
    kind = executor or cfg.executor
    if isinstance(kind, str) and kind not in KINDS:  # before anything is written
        raise InvalidArgument(f"executor must be one of {', '.join(KINDS)}, got {kind!r}")
    # Unknown families fail before any work; `Qwen-TTS` is named `qwen-tts` everywhere after this.
    family_names = list(
        dict.fromkeys(load_family(n).name for n in families or cfg.families or list_families())
    )
    out = prepare_output(input_path, out_dir)
    with outputs.output_lock(out):  # one writer per OUT; raises OutputBusy (re-entrant: the CLI holds it)
        workers = jobs or cfg.jobs or None
        cache = out / ".cache"
        outputs.remove_temp_files(out)
        outputs.keep_record(out)
        not_audio: list[str] = []
        inputs = find_inputs(input_path, speaker=speaker, speaker_map=speaker_map, skipped=not_audio)
        # An output folder inside the input (``run . --out out``) must not feed files back in: they are not
        # read, and named in run.json (a user's file there, e.g. through a link, is not silently ignored).
        inside = out.resolve()
        record = outputs.load_record(out)
        inside_out = [
            i.path
            for i in inputs
            if Path(i.source).is_relative_to(inside)
            and not _own_output(out, Path(i.source).relative_to(inside).as_posix(), record)
        ]
        inputs = [i for i in inputs if not Path(i.source).is_relative_to(inside)]
        skipped_suffixes = _by_suffix(
            p for p in not_audio if not Path(os.path.realpath(p)).is_relative_to(inside)
        )
        if not inputs:
            more = f" ({len(inside_out)} inside the output folder {out}, not read)" if inside_out else ""
            if skipped_suffixes:
                more += f" ({not_audio_text(skipped_suffixes)})"
            raise RunError(f"{input_path}: no audio files found{more}")
        _check_speaker_folders(inputs)
        references = speaker_references(input_path, inputs, reference=reference, speaker_map=speaker_map)
        if not resume and cache.is_symlink():  # a link to somewhere else: only the link goes
            cache.unlink()
        elif not resume and cache.exists():  # after every check: a refused run removes nothing
            import shutil

            shutil.rmtree(cache)
        _notify(progress, "start", files=len(inputs), families=family_names, inside_out=inside_out)

        rec_manifest, clip_manifest = out / "recordings.jsonl", out / "clips.jsonl"
        (out / "errors.log").unlink(missing_ok=True)  # it describes this run only
        write_rows(rec_manifest, [])
        write_rows(clip_manifest, [])
        config_dict = cfg.model_dump(mode="json")
        timings: dict[str, float] = {}
        recordings: list[RecordingRow] = []
        clips: list[ClipRow] = []
        tasks = {"from_cache": 0, "computed": 0}
        with contextlib.ExitStack() as stack:
            opened: list[Executor] = [kind] if isinstance(kind, Executor) else []

            def outcomes(
                cached: Callable[[Any], Any],
                compute: Callable[[Any], Any],
                items: Sequence[Any],
                count: Callable[[Any], int] = lambda item: 1,
            ):
                """``(item, result or exception)``: cached results first (no worker), then computed ones;
                ``count`` says how many of run.json's tasks an item is."""
                from pipeline.batch.executors import map_unordered, open_executor

                missing = []
                for item in items:
                    try:
                        hit = cached(item)
                    except Exception:  # a damaged cache entry: compute it again
                        hit = None
                    if hit is None:
                        missing.append(item)
                    else:
                        tasks["from_cache"] += count(item)
                        yield item, hit
                if missing and not opened:  # started on first need, once per run
                    opened.append(
                        stack.enter_context(
                            open_executor(
                                str(kind), jobs=workers, scheduler=scheduler, preload=WORKER_MODULES
                            )
                        )
                    )
                for item, result in map_unordered(opened[0], compute, missing) if missing else ():
                    tasks["computed"] += count(item)
                    yield item, result

            t_stage = time.perf_counter()
            where = {"cache_dir": cache, "config": cfg}
            threads = meter_threads(kind, workers, scheduler, len(inputs))
            stage1 = outcomes(
                functools.partial(cached_recording, **where),
                functools.partial(analyze_recording, **where, threads=threads),
                inputs,
            )
            for item, result in stage1:
                if isinstance(result, BaseException):
                    row = RecordingRow(path=item.path, speaker=item.speaker, **_crash(out, item.path, result))
                else:
                    row = result
                recordings.append(row)
                append_row(rec_manifest, row)
                _notify(progress, "recording", row=row)
            timings["analyze_s"] = time.perf_counter() - t_stage

            voices: dict[str, dict[str, Any]] = {}
            if cfg.speaker_checks:
                t_stage = time.perf_counter()
                recordings, voices = _learn_voices(recordings, inputs, references, out, cfg, outcomes)
                timings["voices_s"] = time.perf_counter() - t_stage

            t_stage = time.perf_counter()
            clip_tasks = _clip_tasks(recordings, inputs, family_names)
            skipped = _speakers_without_audio(recordings, clip_tasks, family_names)
            _notify(progress, "clips", total=len(clip_tasks) + len(skipped))
            for clip in skipped:
                clips.append(clip)
                append_row(clip_manifest, clip)
                _notify(progress, "clip", row=clip)
            where = {"out_dir": out, "cache_dir": cache, "config": cfg, "voices": voices}
            stage2 = outcomes(
                functools.partial(cached_clips, **where),
                functools.partial(make_clips, **where),
                clip_groups(clip_tasks),
                lambda group: len(group[0]),
            )
            for (families, files), result in stage2:
                results = [result] * len(families) if isinstance(result, BaseException) else result
                for family, made in zip(families, results, strict=True):
                    if isinstance(made, BaseException):
                        who = files[0].speaker
                        clip = ClipRow(speaker=who, family=family, **_crash(out, f"{who}/{family}", made))
                    else:
                        clip = made
                    clips.append(clip)
                    append_row(clip_manifest, clip)
                    _notify(progress, "clip", row=clip)
            timings["clips_s"] = time.perf_counter() - t_stage

        recordings = sorted(_with_use(recordings, clips), key=lambda r: r.path)
        clips.sort(key=lambda c: (c.speaker, c.family))
        write_rows(rec_manifest, recordings)
        write_rows(clip_manifest, clips)
        outputs.remove_unlisted(out, {c.clip: c.clip_sha256 for c in clips if c.clip})
        seconds = time.perf_counter() - t0
        counts = _counts(recordings, clips)
        _write_json(
            out / RUN_FILE,
            {
                "voiceprep": _code_version(),
                "python": platform.python_version(),
                "config": config_dict,
                "config_fingerprint": fingerprint(config_dict),
                "families": family_names,
                "input": str(Path(input_path).resolve()),
                "executor": kind if isinstance(kind, str) else type(kind).__name__,
                "jobs": workers,
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                "seconds": round(seconds, 3),
                "timings": {k: round(v, 3) for k, v in timings.items()},
                "tasks": tasks,
                "counts": counts,
                "inputs_inside_out": inside_out,
                "inputs_not_audio": skipped_suffixes,
                "languages": speaker_languages(speaker_map),
            },
        )
        _notify(progress, "done", out_dir=out, counts=counts)
        return out


def prepare_output(input_path: str | Path, out_dir: str | Path) -> Path:
    """Make the output folder of a run over ``input_path`` and prove it writable; return it.

    Raises :class:`RunError` when OUT is a file, is not writable, or is the input or holds it.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RunError(f"{out}: exists and is not a folder")
    # The input may hold OUT (its outputs are then not read), but may not be OUT or inside it.
    source, target = Path(input_path).resolve(), out.resolve()
    if source == target or source.is_relative_to(target):
        raise RunError(
            f"{input_path}: the input is the output folder {out} or inside it; choose another --out"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe_file = out / f".write-test-{os.getpid()}"
        probe_file.write_text("")
        probe_file.unlink()
    except OSError as exc:
        raise RunError(f"{out}: the output folder is not writable ({exc.strerror or exc})") from None
    return out


def _own_output(out: Path, rel: str, record: dict[str, dict[str, Any]]) -> bool:
    """A file in OUT that voiceprep made: a recorded clip, or a source excerpt of the report."""
    return rel.startswith("report_files/") or outputs.is_ours(out, rel, record)


def _learn_voices(
    recordings: list[RecordingRow],
    inputs: Sequence[InputFile],
    references: dict[str, Path],
    out: Path,
    cfg: RunConfig,
    outcomes: Callable[..., Iterable[tuple[Any, Any]]],
) -> tuple[list[RecordingRow], dict[str, dict[str, Any]]]:
    """Each speaker's voice and the recordings that are someone else (:mod:`pipeline.batch.speakers`).

    Returns the recordings with ``speaker_similarity`` in their metrics (and ``speaker_mismatch`` in the
    reasons of those left out of selection) and ``{speaker: voice}`` for stage 2.
    """
    import numpy as np

    from pipeline.analysis.speaker import EMBEDDING_SIZE
    from pipeline.analysis.voice import speech_budget
    from pipeline.batch.speakers import (
        VoiceTask,
        cached_partials,
        decide,
        heard_speech,
        recording_partials,
        reference_voice,
        speech_pool,
        with_turns,
    )

    cache = out / ".cache"
    sources = {i.path: i.source for i in inputs}
    ok = [r for r in recordings if r.status == "ok" and r.sha256]
    files_of = Counter(r.speaker for r in ok)
    tasks = []
    for r in ok:
        budget = round(speech_budget(files_of[r.speaker]), 3)
        analysis_file = _analysis_cache(r.sha256 or "", cache, cfg)[1]
        cache_file = (
            cache
            / "voices"
            / f"{_cache_key(cfg, sha256=r.sha256, speech_s=budget, model=_speaker_model())}.npz"
        )
        tasks.append(VoiceTask(r.path, sources[r.path], str(analysis_file), str(cache_file), budget))
    partials: dict[str, Any] = {}
    times: dict[str, Any] = {}
    for task, result in outcomes(cached_partials, recording_partials, tasks):
        if isinstance(result, BaseException):  # a bug: logged; the file then has no say in the voice
            _crash(out, f"{task.path} (speaker voice)", result)
            partials[task.path] = np.zeros((0, EMBEDDING_SIZE), dtype=np.float32)
            times[task.path] = np.zeros((0, 2))
            continue
        partials[task.path] = result.vectors
        times[task.path] = np.stack([result.starts_s, result.ends_s], axis=1)
    decisions = {}
    for speaker in sorted(files_of):
        rows = [r for r in ok if r.speaker == speaker]
        ref = references.get(speaker)
        ref_voice = None if ref is None else reference_voice(ref, cache, _file_sha256(ref, cache))
        if ref is not None and ref_voice is None:
            raise RunError(f"{ref}: the reference recording of {speaker} holds too little speech")
        decisions[speaker] = decide(
            {r.path: partials[r.path] for r in rows},
            {r.path: r.metrics for r in rows},
            ref_voice,
            {r.path: times[r.path] for r in rows},
        )
    along = _turn_partials(ok, sources, decisions, partials, cache, cfg, out, outcomes)
    for speaker in sorted(decisions):
        # A learnt voice is the one heard longest: once a recording of two voices was heard along all its
        # speech, that says who talks most better than its sample (speakers.speech_pool).
        rows = [r for r in ok if r.speaker == speaker]
        if references.get(speaker) is not None or not any(r.path in along for r in rows):
            continue
        learn = heard_speech({r.path: partials[r.path] for r in rows}, along)
        if learn is not None:
            heard, heard_times = speech_pool(
                {r.path: partials[r.path] for r in rows}, {r.path: times[r.path] for r in rows}, along
            )
            decisions[speaker] = decide(heard, {r.path: r.metrics for r in rows}, None, heard_times, learn)
    voices: dict[str, dict[str, Any]] = {}
    updated: dict[str, RecordingRow] = {}
    for speaker, decision in decisions.items():
        rows = [r for r in ok if r.speaker == speaker]
        voice, similarities, mismatched = decision
        if voice is not None:
            voices[speaker] = with_turns(voice, along).to_dict()
        for r in rows:
            similarity = similarities.get(r.path)
            metrics = {**(r.metrics or {}), "speaker_similarity": similarity}
            null_reasons = dict(r.null_reasons)
            if similarity is None:
                null_reasons["speaker_similarity"] = (
                    "not_measured: too little speech to tell whose voice it is"
                )
            reasons, message = list(r.reasons), r.message
            if r.path in mismatched:
                reasons.append("speaker_mismatch")
                text = (
                    f"its voice does not match {speaker}'s (speaker similarity {similarity:.2f}, under "
                    f"{mismatched[r.path]:.2f}): left out of selection"
                )
                message = f"{message}; {text}" if message else text
            updates = {
                "metrics": metrics,
                "null_reasons": null_reasons,
                "reasons": reasons,
                "message": message,
            }
            updated[r.path] = r.model_copy(update=updates)
    return [updated.get(r.path, r) for r in recordings], voices


def _turn_partials(
    ok: Sequence[RecordingRow],
    sources: dict[str, str],
    decisions: dict[str, Any],
    partials: dict[str, Any],
    cache: Path,
    cfg: RunConfig,
    out: Path,
    outcomes: Callable[..., Iterable[tuple[Any, Any]]],
) -> dict[str, Any]:
    """Partials along the speech of each speaker's recordings of two voices (by path), for their turns
    (:func:`pipeline.batch.speakers.with_turns`); cached under ``OUT/.cache/voices/`` by the file's sha256."""
    from pipeline.batch.speakers import (
        TURN_SPEECH_S,
        VoiceTask,
        cached_turn_partials,
        turn_partials,
        two_voice_recordings,
    )

    sha = {r.path: r.sha256 or "" for r in ok}
    tasks = []
    for voice, _, _ in decisions.values():
        if voice is None:
            continue
        for path in two_voice_recordings(voice, partials):
            key = _cache_key(
                cfg, sha256=sha[path], turns=True, speech_s=TURN_SPEECH_S, model=_speaker_model()
            )
            analysis_file = _analysis_cache(sha[path], cache, cfg)[1]
            tasks.append(
                VoiceTask(path, sources[path], str(analysis_file), str(cache / "voices" / f"turns-{key}.npz"))
            )
    along: dict[str, Any] = {}
    for task, result in outcomes(cached_turn_partials, turn_partials, tasks):
        if isinstance(result, BaseException):  # a bug: logged; the recording is then heard window by window
            _crash(out, f"{task.path} (speaker turns)", result)
            continue
        along[task.path] = result
    return along


def _with_use(recordings: Sequence[RecordingRow], clips: Sequence[ClipRow]) -> list[RecordingRow]:
    """The recordings with ``used_in`` set: the families whose chosen window takes speech from each."""
    used: dict[tuple[str, str], list[str]] = {}
    for clip in clips:
        for path in sorted({piece.get("path") for piece in (clip.plan or {}).get("pieces") or []}):
            used.setdefault((clip.speaker, path), []).append(clip.family)
    return [r.model_copy(update={"used_in": sorted(used.get((r.speaker, r.path), []))}) for r in recordings]


def _check_speaker_folders(inputs: Sequence[InputFile]) -> None:
    """Two speakers whose clip folders are the same name, ignoring case (:func:`folder_key`), would
    overwrite each other's clips (on macOS and Windows also ``Alice`` and ``alice``): the run is refused,
    naming both, on every system alike."""
    owner: dict[str, str] = {}
    for item in inputs:
        other = owner.setdefault(folder_key(item.speaker), item.speaker)
        if other != item.speaker:
            raise RunError(
                f"speakers {other!r} and {item.speaker!r} would share the clip folder "
                f"clips/{safe_name(other)}/ (folder names are compared ignoring case); rename one "
                "(e.g. with --speaker-map)"
            )


def _clip_tasks(
    recordings: Iterable[RecordingRow], inputs: Sequence[InputFile], families: Sequence[str]
) -> list[ClipTask]:
    """One task per speaker with readable recordings and family, the speakers in name order."""
    by_path = {i.path: i for i in inputs}
    by_speaker: dict[str, list[InputFile]] = {}
    for row in sorted(recordings, key=lambda r: r.path):
        if row.status == "ok" and "speaker_mismatch" not in row.reasons:
            by_speaker.setdefault(row.speaker, []).append(replace(by_path[row.path], sha256=row.sha256))
    return [(family, tuple(files)) for _, files in sorted(by_speaker.items()) for family in families]


def _speakers_without_audio(
    recordings: Iterable[RecordingRow], tasks: Sequence[ClipTask], families: Sequence[str]
) -> list[ClipRow]:
    """Clip rows for speakers none of whose files could be read: rejected, with the files' reasons."""
    have = {files[0].speaker for _, files in tasks}
    reasons: dict[str, Counter[str]] = {}
    for row in sorted(recordings, key=lambda r: r.path):  # completion order differs between executors
        if row.speaker not in have:
            reasons.setdefault(row.speaker, Counter()).update(row.reasons or ["decode_failed"])
    readable = {r.speaker for r in recordings if r.status == "ok"}  # every one someone else's voice
    rows = []
    for speaker, counter in sorted(reasons.items()):
        codes = [code for code, _ in counter.most_common()]
        if speaker in readable:
            codes = ["speaker_mismatch"]
        for family in families:
            rows.append(
                ClipRow(
                    speaker=speaker,
                    family=family,
                    status="rejected" if speaker in readable else "failed",
                    reasons=codes,
                    message="every recording of this speaker is someone else's voice"
                    if speaker in readable
                    else "no recording of this speaker could be read",
                )
            )
    return rows


def _by_suffix(paths: Iterable[str]) -> dict[str, int]:
    """How many of ``paths`` end in each lower-case suffix (``.txt``; ``(none)`` for a name without one),
    in suffix order."""
    suffixes = Counter(Path(p).suffix.lower() or "(none)" for p in paths)
    return dict(sorted(suffixes.items()))


def not_audio_text(by_suffix: Mapping[str, int]) -> str:
    """``3 files skipped: not audio (2 .txt, 1 .csv)``: what a run says of the input files it left out
    (``by_suffix`` as in run.json's ``inputs_not_audio``), most frequent suffix first."""
    total = sum(by_suffix.values())
    parts = ", ".join(f"{n} {s}" for s, n in sorted(by_suffix.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"{counted(total, 'file')} skipped: not audio ({parts})"


def _counts(recordings: Sequence[RecordingRow], clips: Sequence[ClipRow]) -> dict[str, Any]:
    audio_s = sum(float(r.probe.get("duration_s") or 0.0) for r in recordings)
    per_family: dict[str, Counter[str]] = {}
    for c in clips:
        per_family.setdefault(c.family, Counter())[c.status] += 1
    return {
        "recordings": len(recordings),
        "recordings_ok": sum(r.status == "ok" for r in recordings),
        "recordings_failed": sum(r.status != "ok" for r in recordings),
        "recordings_mismatched": sum("speaker_mismatch" in r.reasons for r in recordings),
        "recordings_with_decode_notes": sum(bool(r.decode_notes) for r in recordings),
        "audio_hours": round(audio_s / 3600, 4),
        "speakers": len({r.speaker for r in recordings}),
        "clips": {f: dict(sorted(c.items())) for f, c in sorted(per_family.items())},
    }
