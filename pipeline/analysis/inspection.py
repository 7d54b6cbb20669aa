"""Inspect one file: :func:`analyze` (measure it), :func:`check` (judge it for a family, as it is) and
:func:`check_families` (judge it for several families, sharing the decode).

These are the library forms of ``voiceprep analyze`` and ``voiceprep check``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pipeline.analysis.base import Analysis
from pipeline.analysis.fastpass import analyze_file
from pipeline.audio import arguments
from pipeline.audio.io import DEFAULT_MAX_INPUT_S, AudioInfo, probe
from pipeline.audio.mix import STRATEGIES
from pipeline.errors import AudioReadError, InvalidArgument
from pipeline.rules.checks import CheckResult, evaluate, failed_read
from pipeline.rules.families import FamilySpec, load_family

AUTO_DNSMOS_MAX_S = 120.0
"""``analyze`` and ``check`` run DNSMOS by default on files up to this long (a clip costs about a second)."""


def _wants_dnsmos(dnsmos: bool | None, info: AudioInfo) -> bool:
    """The one default of ``analyze`` and ``check``: DNSMOS when asked, else on files up to 2 minutes."""
    return dnsmos if dnsmos is not None else (info.duration_s or 0) <= AUTO_DNSMOS_MAX_S


def _hear_voices(path: str | Path, result: Analysis) -> None:
    """Put ``other_voice_s`` and ``other_voice_spans`` in ``result``: partials along the whole recording
    against its own dominant voice (:func:`pipeline.analysis.voice.span_finding`)."""
    from pipeline.analysis.base import ANALYSIS_RATE
    from pipeline.analysis.voice import span_finding
    from pipeline.audio.view import load_mono

    audio, _, _ = load_mono(path, rate=ANALYSIS_RATE, choice=result.channel_choice, info=result.info)
    similarity, spans, _ = span_finding(audio, None)
    if similarity is None:
        why = "not_measured: too little speech to tell voices apart"
        result.put("other_voice_s", None, why=why)
        result.put("other_voice_spans", None, why=why)
        return
    result.put("other_voice_s", round(sum(b - a for a, b in spans), 3))
    result.put("other_voice_spans", spans)


@arguments.renamed(strategy="channel_strategy", max_duration_s="max_input_s")
def analyze(
    path: str | Path,
    *,
    dnsmos: bool | None = None,
    channel_strategy: str = "best",
    stream_index: int = 0,
    min_pause_s: float = 0.5,
    max_input_s: float | None = DEFAULT_MAX_INPUT_S,
    info: AudioInfo | None = None,
    voices: bool | None = None,
) -> Analysis:
    """Measure a recording with the fast pass, the music and singing meter, and DNSMOS (``dnsmos=None``: on
    files up to :data:`AUTO_DNSMOS_MAX_S` seconds, as :func:`check` does).

    ``voices`` (``None``: on files up to :data:`AUTO_DNSMOS_MAX_S` seconds) also listens for other voices:
    ``other_voice_s`` and ``other_voice_spans`` (``[start_s, end_s]`` where a voice other than the
    recording's dominant one talks for about 2 s or more).

    ``channel_strategy`` (``best``, ``first`` or ``mean``) says which channel(s) to hear; ``stream_index``
    picks the audio stream of a container; ``max_input_s`` is the longest input accepted (``None``: no
    limit). ``info`` is the file's probe when the caller already has it (saves reading and hashing it
    again; it names the stream, so ``stream_index`` is then not used). The old keywords ``strategy=`` and
    ``max_duration_s=`` still work for one release, with a ``DeprecationWarning``.
    Raises :class:`pipeline.errors.AudioReadError` (with a reason code) when the file cannot be read and
    :class:`pipeline.errors.InvalidArgument` for a bad argument.
    """
    arguments.one_of("channel_strategy", channel_strategy, STRATEGIES)
    arguments.number("min_pause_s", min_pause_s, strict=True)
    if info is None:
        info = probe(path, stream_index=stream_index, max_input_s=max_input_s)
    result = analyze_file(
        path,
        channel_strategy=channel_strategy,
        dnsmos=_wants_dnsmos(dnsmos, info),
        content=True,
        min_pause_s=min_pause_s,
        max_input_s=max_input_s,
        info=info,
    )
    if result.metrics.get("duration_s") == 0:
        raise AudioReadError("empty", f"{path}: no samples could be decoded")
    if _wants_dnsmos(voices, info):
        _hear_voices(path, result)
    return result


def check(
    path: str | Path,
    family: str | FamilySpec,
    *,
    dnsmos: bool | None = None,
    stream_index: int = 0,
    known_metrics: dict[str, Any] | None = None,
    voices: bool | None = None,
) -> CheckResult:
    """Judge a file *as it is*, as the service of ``family`` (a name or a loaded spec) would receive it.

    No processing: the file is measured as the service would hear it. ``dnsmos=None`` runs DNSMOS on files
    up to :data:`AUTO_DNSMOS_MAX_S` seconds. A file that cannot be read gives a ``fail`` result with its
    reason (``not_found``, ``decode_failed``, ...), not an exception. Unknown families raise ``SpecError``.
    ``known_metrics`` are values already measured on this very audio elsewhere (the runner passes the
    DNSMOS scores the renderer or the slow pass computed); they replace the file's own measurement.
    ``voices`` (``None``: on files up to :data:`AUTO_DNSMOS_MAX_S` seconds, unless ``known_metrics`` has
    ``other_voice_s``) listens for other voices (:func:`analyze`): the ``other_voices`` check.
    For several families at once use :func:`check_families` (one decode shared); passing a list here still
    works for one release, with a ``DeprecationWarning``, and returns a list.
    """
    if isinstance(family, list | tuple):
        warnings.warn(
            "check(path, [families]) is deprecated and will be removed; use check_families(path, families)",
            DeprecationWarning,
            stacklevel=2,
        )
        return check_families(  # type: ignore[return-value]
            path, family, dnsmos=dnsmos, stream_index=stream_index, known_metrics=known_metrics, voices=voices
        )
    [result] = check_families(
        path, [family], dnsmos=dnsmos, stream_index=stream_index, known_metrics=known_metrics, voices=voices
    )
    return result


def check_families(
    path: str | Path,
    families: Sequence[str | FamilySpec],
    *,
    dnsmos: bool | None = None,
    stream_index: int = 0,
    known_metrics: dict[str, Any] | None = None,
    voices: bool | None = None,
) -> list[CheckResult]:
    """:func:`check` one file for several families: one result per family, in order.

    The file is probed once and decoded once per channel strategy the families need (a mono file once).
    """
    if isinstance(families, str | FamilySpec):
        raise InvalidArgument("families must be a list of family names or specs (check() takes one)")
    specs = [f if isinstance(f, FamilySpec) else load_family(f) for f in families]
    known = dict(known_metrics or {})
    path = str(path)
    try:
        info = probe(path, stream_index=stream_index)
    except AudioReadError as exc:
        return [failed_read(path, spec.name, exc.reason, exc.message) for spec in specs]
    run_dnsmos = _wants_dnsmos(dnsmos, info) and known.get("dnsmos_ovrl") is None
    run_voices = _wants_dnsmos(voices, info) and known.get("other_voice_s") is None
    analyses: dict[str, Analysis] = {}  # one decode per channel strategy, shared by the families
    results = []
    probe_dict = asdict(info)
    for spec in specs:
        # How the service turns a multi-channel file into what it hears.
        channel_strategy = "first" if spec.limits.first_channel_only.value else "mean"
        key = channel_strategy if info.channels > 1 else "mono"
        try:
            if key not in analyses:
                analyses[key] = analyze(
                    path, dnsmos=run_dnsmos, channel_strategy=channel_strategy, info=info, voices=run_voices
                )
        except AudioReadError as exc:
            results.append(failed_read(path, spec.name, exc.reason, exc.message, probe_dict))
            continue
        analysis = analyses[key]
        metrics = dict(analysis.metrics)
        metrics.update(analysis.speech_metrics(min_pause_s=spec.limits.min_pause_s.value))
        metrics.update(known)
        null_reasons = {k: v for k, v in analysis.null_reasons.items() if metrics.get(k) is None}
        result = evaluate(
            spec,
            path=path,
            probe=probe_dict,
            metrics=metrics,
            null_reasons=null_reasons,
            first_channel_silent=analysis.channel_choice.first_channel_silent,
        )
        if "truncated" in analysis.warnings:
            result.not_checked["truncated"] = "truncated: the file ends before its header says it should"
        results.append(result)
    return results


__all__ = ["Analysis", "analyze", "check", "check_families"]
