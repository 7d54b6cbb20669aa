"""Inspect one file: :func:`analyze` (measure it) and :func:`check` (judge it for a family, as it is).

These are the library forms of ``voiceprep analyze`` and ``voiceprep check``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pipeline.analysis.fastpass import Analysis, analyze_file
from pipeline.audio import arguments
from pipeline.audio.io import AudioInfo, probe
from pipeline.audio.mix import STRATEGIES
from pipeline.errors import AudioReadError
from pipeline.rules.checks import CheckResult, evaluate, failed_read
from pipeline.rules.families import FamilySpec, load_family

AUTO_DNSMOS_MAX_S = 120.0
"""``check`` runs DNSMOS by default on files up to this long (a clip costs about a second)."""


def analyze(
    path: str | Path,
    *,
    dnsmos: bool = False,
    strategy: str = "best",
    stream_index: int = 0,
    min_pause_s: float = 0.5,
    max_duration_s: float | None = 4 * 3600,
    info: AudioInfo | None = None,
) -> Analysis:
    """Measure a recording with the fast pass (and DNSMOS when asked).

    ``info`` is the file's probe when the caller already has it (saves reading and hashing it again).
    Raises :class:`pipeline.errors.AudioReadError` (with a reason code) when the file cannot be read and
    :class:`pipeline.errors.InvalidArgument` for a bad argument.
    """
    arguments.one_of("strategy", strategy, STRATEGIES)
    arguments.number("min_pause_s", min_pause_s, strict=True)
    if info is None:
        info = probe(path, stream_index=stream_index, max_duration_s=max_duration_s)
    result = analyze_file(
        path,
        strategy=strategy,
        dnsmos=dnsmos,
        min_pause_s=min_pause_s,
        stream_index=stream_index,
        max_duration_s=max_duration_s,
        info=info,
    )
    if result.metrics.get("duration_s") == 0:
        raise AudioReadError("empty", f"{path}: no samples could be decoded")
    return result


def service_strategy(spec: FamilySpec) -> str:
    """How the service turns a multi-channel file into what it hears: ``first`` or ``mean``."""
    return "first" if spec.limits.first_channel_only.value else "mean"


def check(
    path: str | Path,
    family: str | FamilySpec | Sequence[str | FamilySpec],
    *,
    dnsmos: bool | None = None,
    stream_index: int = 0,
    known_metrics: dict[str, Any] | None = None,
) -> CheckResult | list[CheckResult]:
    """Judge a file *as it is*, as the service would receive it (no processing).

    ``family`` is a name, a loaded spec, or a list of them (then a list of results is returned, one
    decode shared per channel strategy). ``dnsmos=None`` runs DNSMOS on files up to
    :data:`AUTO_DNSMOS_MAX_S` seconds. A file that cannot be read gives a ``fail`` result with its reason
    (``not_found``, ``decode_failed``, ...), not an exception. Unknown families raise ``SpecError``.
    ``known_metrics`` are values already measured on this very audio elsewhere (the runner passes the
    DNSMOS scores the renderer or the slow pass computed); they replace the file's own measurement.
    """
    many = isinstance(family, list | tuple)
    specs = [f if isinstance(f, FamilySpec) else load_family(f) for f in (family if many else [family])]
    known = dict(known_metrics or {})
    path = str(path)
    try:
        info = probe(path, stream_index=stream_index)
    except AudioReadError as exc:
        failed = [failed_read(path, spec.name, exc.reason, exc.message) for spec in specs]
        return failed if many else failed[0]
    run_dnsmos = dnsmos if dnsmos is not None else (info.duration_s or 0) <= AUTO_DNSMOS_MAX_S
    if known.get("dnsmos_ovrl") is not None:
        run_dnsmos = False
    analyses: dict[str, Analysis] = {}  # one decode per channel strategy, shared by the families
    results = []
    probe_dict = asdict(info)
    for spec in specs:
        strategy = service_strategy(spec)
        key = strategy if info.channels > 1 else "mono"
        try:
            if key not in analyses:
                analyses[key] = analyze(
                    path, dnsmos=run_dnsmos, strategy=strategy, stream_index=stream_index, info=info
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
    return results if many else results[0]


__all__ = ["Analysis", "analyze", "check", "service_strategy"]
