"""The rule engine: judge a file's probe and metrics against a family spec.

Every check carries the rule, the measured value, the limit, a verdict (``pass``/``warn``/``fail``), a
stable reason code and a fix hint. The numbers come from the spec file (``configs/families/*.yaml``),
never from this module: here lives only *how* each kind of rule is applied.

Used by ``voiceprep check`` (a file as it is) and after every render (the clip voiceprep made).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pipeline.errors import reason as reason_info
from pipeline.rules.families import FamilySpec, Gate, number_text, range_text

Verdict = Literal["pass", "warn", "fail"]
_RANK = {"pass": 0, "warn": 1, "fail": 2}

# Container/codec names reported by probe -> the format names a family spec uses.
_FORMAT_ALIASES = {
    "wav": "wav",
    "wave": "wav",
    "wavex": "wav",
    "mp3": "mp3",
    "flac": "flac",
    "ogg": "ogg",
    "webm": "webm",
}
_MP4_CONTAINERS = {"mp4", "m4a", "mov", "ipod", "3gp", "m4b"}
# probe's sample_format -> soundfile subtype names used in specs.
_SUBTYPES = {
    "pcm8": "PCM_U8",
    "pcm16": "PCM_16",
    "pcm24": "PCM_24",
    "pcm32": "PCM_32",
    "float32": "FLOAT",
    "float64": "DOUBLE",
}


@dataclass(frozen=True)
class Check:
    """One rule applied to one file.

    ``limit`` is the threshold (number, list or range) and ``op`` how the value must relate to it
    (``>=``, ``<=``, ``in``, ``==``); ``group`` is ``limit`` (the vendor's hard rule) or ``gate``
    (voiceprep's quality gate). ``reason`` and ``hint`` are set whenever the verdict is not ``pass``.
    """

    rule: str
    group: Literal["limit", "gate"]
    value: Any
    limit: Any
    op: str
    unit: str
    verdict: Verdict
    reason: str | None
    message: str
    hint: str | None

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-friendly dict."""
        return asdict(self)


@dataclass
class CheckResult:
    """The verdict of one file for one family, with every check and what could not be measured."""

    path: str
    family: str
    verdict: Verdict
    checks: list[Check]
    metrics: dict[str, Any] = field(default_factory=dict)
    probe: dict[str, Any] = field(default_factory=dict)
    not_checked: dict[str, str] = field(default_factory=dict)

    @property
    def reasons(self) -> list[str]:
        """Reason codes of the failing checks, then of the warnings, without repeats."""
        ordered = [c for c in self.checks if c.verdict == "fail"] + [
            c for c in self.checks if c.verdict == "warn"
        ]
        seen: dict[str, None] = {}
        for c in ordered:
            if c.reason:
                seen.setdefault(c.reason, None)
        return list(seen)

    @property
    def problems(self) -> list[Check]:
        """Failing checks first, then warnings."""
        return sorted((c for c in self.checks if c.verdict != "pass"), key=lambda c: -_RANK[c.verdict])

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``voiceprep check --json``."""
        return {
            "path": self.path,
            "family": self.family,
            "verdict": self.verdict,
            "reasons": self.reasons,
            "checks": [c.to_dict() for c in self.checks],
            "not_checked": dict(self.not_checked),
            "metrics": self.metrics,
            "probe": self.probe,
        }


def combine(verdicts: Sequence[str]) -> Verdict:
    """The worst of several verdicts (``pass`` when there are none)."""
    worst = max((_RANK[v] for v in verdicts), default=0)
    return ("pass", "warn", "fail")[worst]  # type: ignore[return-value]


def delivered_format(probe: Mapping[str, Any]) -> str | None:
    """The spec-level format name (wav, mp3, m4a, ...) of a probed file, or None when unknown."""
    fmt = str(probe.get("format") or "").lower()
    codec = str(probe.get("codec") or "").lower()
    if fmt in _MP4_CONTAINERS or fmt.startswith("mov,mp4"):
        return "m4a" if codec in {"aac", "alac", "mp3", ""} else fmt
    if fmt == "ogg" and codec == "opus":
        return "opus"
    return _FORMAT_ALIASES.get(fmt, fmt or None)


def _check(
    rule: str,
    group: Literal["limit", "gate"],
    value: Any,
    limit: Any,
    op: str,
    unit: str,
    ok: bool,
    code: str,
    message: str,
    *,
    soft: bool = False,
    hint: str | None = None,
) -> Check:
    verdict: Verdict = "pass" if ok else ("warn" if soft else "fail")
    return Check(
        rule=rule,
        group=group,
        value=value,
        limit=limit,
        op=op,
        unit=unit,
        verdict=verdict,
        reason=None if ok else code,
        message=message,
        hint=None if ok else (hint or reason_info(code).hint),
    )


def check_limits(
    spec: FamilySpec,
    *,
    probe: Mapping[str, Any],
    metrics: Mapping[str, Any],
    first_channel_silent: bool | None = None,
) -> tuple[list[Check], dict[str, str]]:
    """Apply the family's hard limits. Returns the checks and ``{rule: why}`` for rules not checkable.

    ``metrics`` must have been measured the way the service hears the file (for a family that reads only
    the first channel, on the first channel) with the family's ``min_pause_s``; see :func:`evaluate`.
    """
    lim = spec.limits
    checks: list[Check] = []
    skipped: dict[str, str] = {}

    fmt = delivered_format(probe)
    if lim.formats.value is not None:
        allowed = list(lim.formats.value)
        checks.append(
            _check(
                "format",
                "limit",
                fmt,
                allowed,
                "in",
                "",
                fmt in allowed,
                "bad_format",
                f"format {fmt or 'unknown'} ({'accepted' if fmt in allowed else 'not accepted'}; accepted: {', '.join(allowed)})",
            )
        )
    subtypes = (lim.sample_formats.value or {}).get(fmt or "") if fmt else None
    if subtypes:
        sub = _SUBTYPES.get(str(probe.get("sample_format") or ""), probe.get("sample_format"))
        checks.append(
            _check(
                "sample_format",
                "limit",
                sub,
                list(subtypes),
                "in",
                "",
                sub in subtypes,
                "bad_sample_format",
                f"{fmt} sample format {sub} (accepted: {', '.join(subtypes)})",
            )
        )

    rate = probe.get("sample_rate")
    if lim.min_sample_rate.value is not None:
        if rate is None:
            skipped["sample_rate"] = "not_measured: the sample rate is unknown"
        else:
            need = lim.min_sample_rate.value
            checks.append(
                _check(
                    "sample_rate",
                    "limit",
                    rate,
                    need,
                    ">=",
                    "Hz",
                    rate >= need,
                    "rate_too_low",
                    f"sample rate {rate} Hz (needs {need} Hz or more)",
                )
            )

    channels = probe.get("channels")
    if lim.channels.value is not None and channels is not None:
        allowed_ch = list(lim.channels.value)
        checks.append(
            _check(
                "channels",
                "limit",
                channels,
                allowed_ch,
                "in",
                "",
                channels in allowed_ch,
                "not_mono",
                f"{channels} channel(s) (accepted: {', '.join(map(str, allowed_ch))})",
            )
        )
    if lim.first_channel_only.value and channels is not None and channels > 1:
        if first_channel_silent is None:
            skipped["first_channel_silent"] = "not_measured: channel levels were not measured"
        else:
            checks.append(
                _check(
                    "first_channel_silent",
                    "limit",
                    first_channel_silent,
                    False,
                    "==",
                    "",
                    not first_channel_silent,
                    "first_channel_silent",
                    "the first channel is silent; the service hears only the first channel"
                    if first_channel_silent
                    else "the first channel carries sound",
                )
            )

    duration = metrics.get("duration_s", probe.get("duration_s"))
    if duration is None:
        skipped["duration_s"] = "not_measured: the duration is unknown"
    else:
        lo, hi = lim.min_duration_s.value, lim.max_duration_s.value
        if lo is not None:
            checks.append(
                _check(
                    "min_duration_s",
                    "limit",
                    duration,
                    lo,
                    ">=",
                    "s",
                    duration >= lo,
                    "too_short",
                    f"duration {number_text(duration)} s (needs {number_text(lo)} s or more)",
                )
            )
        if hi is not None:
            checks.append(
                _check(
                    "max_duration_s",
                    "limit",
                    duration,
                    hi,
                    "<=",
                    "s",
                    duration <= hi,
                    "too_long_clip",
                    f"duration {number_text(duration)} s (at most {number_text(hi)} s)",
                )
            )
        rec = lim.recommended_duration_s.value
        if rec is not None:
            ok = (rec.min is None or duration >= rec.min) and (rec.max is None or duration <= rec.max)
            code = "too_short" if rec.min is not None and duration < rec.min else "too_long_clip"
            checks.append(
                _check(
                    "recommended_duration_s",
                    "limit",
                    duration,
                    [rec.min, rec.max],
                    "in",
                    "s",
                    ok,
                    code,
                    f"duration {number_text(duration)} s (recommended {range_text(rec.min, rec.max, 's')})",
                    soft=True,
                    hint=None if ok else f"aim for {range_text(rec.min, rec.max, 's')} of speech",
                )
            )

    size = probe.get("bytes")
    if lim.max_bytes.value is not None and size is not None:
        limit_bytes = lim.max_bytes.value
        upload = 4 * math.ceil(size / 3) if lim.inline_base64.value else size
        what = "base64 upload size" if lim.inline_base64.value else "file size"
        checks.append(
            _check(
                "max_bytes",
                "limit",
                upload,
                limit_bytes,
                "<=",
                "bytes",
                upload <= limit_bytes,
                "too_large",
                f"{what} {upload} bytes (at most {limit_bytes})",
            )
        )

    speech_s = metrics.get("speech_s")
    if speech_s is not None and speech_s <= 0:
        checks.append(
            _check("speech", "limit", 0.0, 0.0, ">", "s", False, "no_speech", "no speech was detected")
        )
    need_run = lim.min_speech_run_s.value
    if need_run is not None:
        run = metrics.get("longest_run_s")
        if run is None:
            skipped["min_speech_run_s"] = "not_measured: speech runs were not measured"
        else:
            checks.append(
                _check(
                    "min_speech_run_s",
                    "limit",
                    run,
                    need_run,
                    ">=",
                    "s",
                    run >= need_run,
                    "no_continuous_speech",
                    f"longest unbroken speech {number_text(run)} s (needs {number_text(need_run)} s)",
                )
            )
    max_pause = lim.max_pause_s.value
    if max_pause is not None:
        pause = metrics.get("max_pause_s")
        if pause is None:
            if speech_s:
                skipped["max_pause_s"] = "not_measured: pauses were not measured"
        else:
            checks.append(
                _check(
                    "max_pause_s",
                    "limit",
                    pause,
                    max_pause,
                    "<=",
                    "s",
                    pause <= max_pause,
                    "pause_too_long",
                    f"longest pause {number_text(pause)} s (at most {number_text(max_pause)} s)",
                )
            )
    return checks, skipped


_PERCENT_METRICS = {"clipped_ratio", "speech_ratio"}


def _gate_value_text(metric: str, value: float | None, unit: str) -> str:
    """A value as a person reads it: ratios as percentages, other numbers with their unit."""
    if value is None:
        return "-"
    if metric in _PERCENT_METRICS:
        return f"{value * 100:.3g} %"
    text = number_text(value)
    return f"{text} {unit}" if unit else text


def check_gates(
    gates: Sequence[Gate], *, metrics: Mapping[str, Any], null_reasons: Mapping[str, str] | None = None
) -> tuple[list[Check], dict[str, str]]:
    """Apply quality gates to measured metrics; a gate whose metric is missing is reported, not judged."""
    from pipeline.rules.families import METRIC_UNITS

    checks: list[Check] = []
    skipped: dict[str, str] = {}
    for gate in gates:
        value = metrics.get(gate.metric)
        verdict = gate.verdict(value) if isinstance(value, int | float) else None
        name = f"gate:{gate.metric}"
        if verdict is None:
            why = (null_reasons or {}).get(gate.metric) or f"not_measured: {gate.metric} was not measured"
            skipped[name] = why
            continue
        threshold = gate.fail if verdict == "fail" else gate.warn if gate.warn is not None else gate.fail
        op = ">=" if gate.direction == "min" else "<="
        unit = METRIC_UNITS.get(gate.metric, "")
        shown = _gate_value_text(gate.metric, value, unit)
        if verdict == "pass":
            message = f"{gate.metric} {shown} (passes {op} {_gate_value_text(gate.metric, threshold, unit)})"
        else:
            message = (
                f"{gate.metric} {shown} ({verdict}: should be {op} "
                f"{_gate_value_text(gate.metric, threshold, unit)})"
            )
        checks.append(
            Check(
                rule=name,
                group="gate",
                value=value,
                limit=threshold,
                op=op,
                unit=unit,
                verdict=verdict,
                reason=None if verdict == "pass" else gate.reason,
                message=message,
                hint=None if verdict == "pass" else (gate.hint or reason_info(gate.reason).hint),
            )
        )
    return checks, skipped


def evaluate(
    spec: FamilySpec,
    *,
    path: str,
    probe: Mapping[str, Any],
    metrics: Mapping[str, Any],
    null_reasons: Mapping[str, str] | None = None,
    first_channel_silent: bool | None = None,
) -> CheckResult:
    """Judge one file for one family: hard limits, then quality gates; the verdict is the worst check."""
    limit_checks, skipped = check_limits(
        spec, probe=probe, metrics=metrics, first_channel_silent=first_channel_silent
    )
    gate_checks, skipped_gates = check_gates(spec.gates, metrics=metrics, null_reasons=null_reasons)
    checks = limit_checks + gate_checks
    return CheckResult(
        path=path,
        family=spec.name,
        verdict=combine([c.verdict for c in checks]),
        checks=checks,
        metrics=dict(metrics),
        probe=dict(probe),
        not_checked={**skipped, **skipped_gates},
    )


def failed_read(
    path: str, family: str, code: str, message: str, probe: Mapping[str, Any] | None = None
) -> CheckResult:
    """A ``fail`` result for a file that could not be read at all (missing, corrupt, ...)."""
    check = Check(
        rule="readable",
        group="limit",
        value=False,
        limit=True,
        op="==",
        unit="",
        verdict="fail",
        reason=code,
        message=message,
        hint=reason_info(code).hint if code in _known_codes() else None,
    )
    return CheckResult(path=path, family=family, verdict="fail", checks=[check], probe=dict(probe or {}))


def _known_codes() -> set[str]:
    from pipeline.errors import all_codes

    return set(all_codes())
