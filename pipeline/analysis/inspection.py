"""Inspect one file: :func:`analyze` (measure it) and :func:`check` (judge it for a family, as it is).

These are the library forms of ``voiceprep analyze`` and ``voiceprep check``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.analysis.base import FRAME_S
from pipeline.analysis.fastpass import FastPassResult, analyze_file
from pipeline.analysis.segments import speech_metrics
from pipeline.audio.io import AudioInfo, probe
from pipeline.errors import AudioReadError
from pipeline.rules.checks import CheckResult, evaluate, failed_read
from pipeline.rules.families import FamilySpec, load_family

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

AUTO_DNSMOS_MAX_S = 120.0
"""``check`` runs DNSMOS by default on files up to this long (a clip costs about a second)."""

PLOT_AUDIO_MAX_S = 20 * 60.0
"""``Analysis.plot`` re-reads the audio for the waveform and spectrogram up to this duration."""


@dataclass
class Analysis:
    """The measurements of one recording.

    ``metrics`` uses the public metric names; ``null_reasons`` says why each ``None`` metric is missing.
    """

    path: str
    info: AudioInfo
    result: FastPassResult
    strategy: str = "best"
    warnings: list[str] = field(default_factory=list)

    @property
    def metrics(self) -> dict[str, Any]:
        """Metric name -> value (``None`` when not measurable; see :attr:`null_reasons`)."""
        return self.result.metrics

    @property
    def null_reasons(self) -> dict[str, str]:
        """Metric name -> ``"code: explanation"`` for every metric that is ``None``."""
        return self.result.null_reasons

    @property
    def segments(self) -> pd.DataFrame:
        """Speech segments as a DataFrame with ``start_s``, ``end_s`` and ``duration_s``."""
        import pandas as pd

        starts = [s for s, _ in self.result.segments]
        ends = [e for _, e in self.result.segments]
        df = pd.DataFrame({"start_s": starts, "end_s": ends}, dtype=float)
        df["duration_s"] = df["end_s"] - df["start_s"]
        return df

    @property
    def frames(self) -> pd.DataFrame:
        """Per-10 ms-frame arrays: ``time_s``, ``level_db`` (dBFS) and ``speech`` (bool)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "time_s": self.result.frame_times,
                "level_db": self.result.frame_db,
                "speech": self.result.speech_mask,
            }
        )

    def speech_metrics(self, *, min_pause_s: float) -> dict[str, Any]:
        """Runs and pauses re-derived from the segments with another ``min_pause_s`` (cheap)."""
        measured = speech_metrics(
            self.result.segments, duration_s=self.metrics["duration_s"], min_pause_s=min_pause_s
        )
        return dict(measured.values)

    def plot(self, *, max_audio_s: float = PLOT_AUDIO_MAX_S) -> Figure:
        """A matplotlib figure: waveform with speech shaded, spectrogram, frame level with noise floor."""
        from pipeline.analysis.plot import plot_analysis

        return plot_analysis(self, max_audio_s=max_audio_s)


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
    Raises :class:`pipeline.errors.AudioReadError` (with a reason code) when the file cannot be read.
    """
    if info is None:
        info = probe(path, stream_index=stream_index, max_duration_s=max_duration_s)
    result = analyze_file(
        path,
        strategy=strategy,
        dnsmos=dnsmos,
        min_pause_s=min_pause_s,
        stream_index=stream_index,
        max_duration_s=max_duration_s,
    )
    warnings = list(result.warnings)
    if result.metrics.get("duration_s") == 0:
        raise AudioReadError("empty", f"{path}: no samples could be decoded")
    return Analysis(path=str(path), info=info, result=result, strategy=strategy, warnings=warnings)


def service_strategy(spec: FamilySpec) -> str:
    """How the service turns a multi-channel file into what it hears: ``first`` or ``mean``."""
    return "first" if spec.limits.first_channel_only.value else "mean"


class _AnalysisCache:
    """Analyses of one file keyed by channel strategy, so several families share one decode each."""

    def __init__(self, path: str | Path, *, dnsmos: bool, stream_index: int, info: AudioInfo) -> None:
        self.path = path
        self.info = info
        self.dnsmos = dnsmos
        self.stream_index = stream_index
        self._by_strategy: dict[str, Analysis] = {}

    def get(self, strategy: str, channels: int) -> Analysis:
        key = strategy if channels > 1 else "mono"
        if key not in self._by_strategy:
            self._by_strategy[key] = analyze(
                self.path,
                dnsmos=self.dnsmos,
                strategy=strategy,
                stream_index=self.stream_index,
                info=self.info,
            )
        return self._by_strategy[key]


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
    results = _check_specs(
        str(path), specs, dnsmos=dnsmos, stream_index=stream_index, known=dict(known_metrics or {})
    )
    return results if many else results[0]


def _check_specs(
    path: str,
    specs: Sequence[FamilySpec],
    *,
    dnsmos: bool | None,
    stream_index: int,
    known: dict[str, Any],
) -> list[CheckResult]:
    try:
        info = probe(path, stream_index=stream_index)
    except AudioReadError as exc:
        return [failed_read(path, spec.name, exc.reason, exc.message) for spec in specs]
    run_dnsmos = dnsmos if dnsmos is not None else (info.duration_s or 0) <= AUTO_DNSMOS_MAX_S
    if known.get("dnsmos_ovrl") is not None:
        run_dnsmos = False
    cache = _AnalysisCache(path, dnsmos=run_dnsmos, stream_index=stream_index, info=info)
    results = []
    probe_dict = info.to_dict()
    for spec in specs:
        try:
            analysis = cache.get(service_strategy(spec), info.channels)
        except AudioReadError as exc:
            results.append(failed_read(path, spec.name, exc.reason, exc.message, probe_dict))
            continue
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
            first_channel_silent=analysis.result.channel_choice.first_channel_silent,
        )
        if "truncated" in analysis.warnings or "truncated" in (probe_dict.get("warnings") or []):
            result.not_checked["truncated"] = "truncated: the file ends before its header says it should"
        results.append(result)
    return results


__all__ = ["FRAME_S", "Analysis", "analyze", "check", "service_strategy"]
