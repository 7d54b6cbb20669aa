"""The rule engine: judge a file's probe and metrics against a family spec.

Every check carries the rule, the measured value, the limit, a verdict (``pass``/``warn``/``fail``), a
stable reason code and a fix hint. The numbers come from the spec file (``pipeline/configs/families/*.yaml``),
never from this module: here lives only *how* each kind of rule is applied.

Used by ``voiceprep check`` (a file as it is) and after every render (the clip voiceprep made).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pipeline.errors import all_codes, reason_hint
from pipeline.rules.families import FamilySpec, Gate, Limits
from pipeline.rules.metrics import METRICS, bandwidth_class_of, number, range_text, span_text, value_text

Verdict = Literal["pass", "warn", "fail"]
_RANK = {"pass": 0, "warn": 1, "fail": 2}

# Container names reported by probe that a family spec names otherwise (the rest are the same names).
_FORMAT_ALIASES = {"wave": "wav", "wavex": "wav"}
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


CAUSES: dict[str, tuple[str, ...]] = {
    "speech": ("gate:snr_db",),
    "min_speech_run_s": ("gate:snr_db",),
    "max_pause_s": ("gate:snr_db",),
    "gate:dnsmos_ovrl": ("gate:snr_db", "gate:clipped_ratio", "gate:bandwidth_hz", "gate:reverb_score"),
}
"""Rule -> the rules whose failure can cause its failure: the cause is named first (see
:func:`by_cause`).

Speech, runs and pauses are what the voice detector found: noise that drowns the voice hides words and
splits runs (a 17 s reading at -2 dB SNR showed 2.8 s of speech), so a failing SNR gate explains them and
"use a longer recording" would be the wrong advice; with a passing SNR the detector is right and the speech
itself is short. DNSMOS hears noise, clipping, a narrow band and reverb alike: the specific meter says
what to fix. The file's own duration (``min_duration_s``) has no cause among the checks."""


def by_cause(problems: Sequence[Check]) -> list[Check]:
    """``problems`` (failing first, then warnings) with every failing cause moved before the first of its
    consequences (:data:`CAUSES`); the order is otherwise kept. A warning is never a cause: a check that
    merely warns leaves the measures it feeds trustworthy."""
    failing = {c.rule: c for c in problems if c.verdict == "fail"}
    out: list[Check] = []
    placed: set[int] = set()

    def place(check: Check) -> None:
        if id(check) in placed:
            return
        placed.add(id(check))
        for cause in CAUSES.get(check.rule, ()):
            if cause in failing:
                place(failing[cause])
        out.append(check)

    for check in problems:
        place(check)
    return out


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
        """Reason codes of the failing checks, then of the warnings, causes first, without repeats."""
        return list(dict.fromkeys(c.reason for c in self.problems if c.reason))

    @property
    def problems(self) -> list[Check]:
        """Failing checks first, then warnings; a failing check that explains another comes before it
        (:func:`by_cause`: noise that drowns the speech before the speech it hid)."""
        ranked = sorted((c for c in self.checks if c.verdict != "pass"), key=lambda c: -_RANK[c.verdict])
        return by_cause(ranked)

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


Seen = dict[str, Any]
"""What a file shows the service: its delivered format, rate, channels, duration, upload size, speech."""

_TESTS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": lambda v, lim: v >= lim,
    "<=": lambda v, lim: v <= lim,
    ">": lambda v, lim: v > lim,
    "==": lambda v, lim: v == lim,
    "in": lambda v, lim: v in lim,
}


def _within(value: float, span: Sequence[float | None]) -> bool:
    lo, hi = span
    return (lo is None or value >= lo) and (hi is None or value <= hi)


@dataclass(frozen=True)
class LimitRule:
    """One kind of hard limit: where its limit and value come from, how they compare, what to say.

    ``limit(limits, seen)`` gives the family's limit (``None``: the family states none, no check);
    ``value(seen)`` the measured value (``None``: not measured, then ``unmeasured(seen)`` says why, or
    ``None`` to stay silent). ``reason`` is the code of a failure (a function of the value when it depends
    on it); a ``soft`` rule warns instead of failing; ``failures_only`` rules add no row when they pass.
    """

    name: str
    label: str
    op: str
    unit: str
    reason: str | Callable[[Any, Any], str]
    limit: Callable[[Limits, Seen], Any]
    value: Callable[[Seen], Any]
    message: Callable[[Any, Any, bool, Seen], str]
    unmeasured: Callable[[Seen], str | None] = lambda seen: None
    skip_key: str | None = None
    soft: bool = False
    failures_only: bool = False
    test: Callable[[Any, Any], bool] | None = None
    hint: Callable[[Any], str] | None = None


def _spans_text(spans: Sequence[Sequence[Any]]) -> str:
    """Other-voice spans as ``12.3-15.1 s`` (a leading path, in a clip's plan, is dropped)."""
    shown = [span_text(span[-2], span[-1]) for span in spans[:4]]
    return ", ".join(shown) + (f" and {len(spans) - 4} more" if len(spans) > 4 else "")


_CLIP_EPS_S = 0.01
"""Tolerance of the clip-length rule: a clip ``run`` rendered at its window's minimum, measured back, may be a
few samples short of its plan (render keeps within 1 ms); it must not fail its own re-check."""


def _duration_rule(name: str, label: str, op: str, reason: str, attr: str, bound: str) -> LimitRule:
    return LimitRule(
        name=name,
        label=label,
        op=op,
        unit="s",
        reason=reason,
        limit=lambda lim, seen: getattr(lim, attr).value,
        value=lambda seen: seen["duration_s"],
        message=lambda v, lim, ok, seen: f"duration {number(v)} s ({bound.format(number(lim))})",
        unmeasured=lambda seen: "not_measured: the duration is unknown",
        skip_key="duration_s",
    )


LIMIT_RULES: tuple[LimitRule, ...] = (
    LimitRule(
        name="format",
        label="format",
        op="in",
        unit="",
        reason="bad_format",
        limit=lambda lim, seen: None if lim.formats.value is None else list(lim.formats.value),
        value=lambda seen: seen["format"] or "unknown",
        message=lambda v, lim, ok, seen: (
            f"format {v} ({'accepted' if ok else 'not accepted'}; accepted: {', '.join(lim)})"
        ),
    ),
    LimitRule(
        name="sample_format",
        label="sample format",
        op="in",
        unit="",
        reason="bad_sample_format",
        limit=lambda lim, seen: (
            list((lim.sample_formats.value or {}).get(seen["format"]) or []) or None
            if seen["format"]
            else None
        ),
        value=lambda seen: seen["sample_format"] or "unknown",
        message=lambda v, lim, ok, seen: f"{seen['format']} sample format {v} (accepted: {', '.join(lim)})",
    ),
    LimitRule(
        name="sample_rate",
        label="sample rate",
        op=">=",
        unit="Hz",
        reason="rate_too_low",
        limit=lambda lim, seen: lim.min_sample_rate.value,
        value=lambda seen: seen["sample_rate"],
        message=lambda v, lim, ok, seen: f"sample rate {v} Hz (needs {lim} Hz or more)",
        unmeasured=lambda seen: "not_measured: the sample rate is unknown",
    ),
    LimitRule(
        name="channels",
        label="channels",
        op="in",
        unit="",
        reason="not_mono",
        limit=lambda lim, seen: None if lim.channels.value is None else list(lim.channels.value),
        value=lambda seen: seen["channels"],
        message=lambda v, lim, ok, seen: f"{v} channel(s) (accepted: {', '.join(map(str, lim))})",
    ),
    LimitRule(
        name="first_channel_silent",
        label="first channel",
        op="==",
        unit="",
        reason="first_channel_silent",
        # Only a family that hears the first channel alone, and only a file with more than one.
        limit=lambda lim, seen: (
            False if lim.first_channel_only.value and (seen["channels"] or 0) > 1 else None
        ),
        value=lambda seen: seen["first_channel_silent"],
        message=lambda v, lim, ok, seen: (
            "the first channel is silent; the service hears only the first channel"
            if v
            else "the first channel carries sound"
        ),
        unmeasured=lambda seen: "not_measured: channel levels were not measured",
    ),
    _duration_rule(
        "min_duration_s", "duration (min)", ">=", "too_short", "min_duration_s", "needs {} s or more"
    ),
    _duration_rule(
        "max_duration_s", "duration (max)", "<=", "too_long_clip", "max_duration_s", "at most {} s"
    ),
    LimitRule(
        name="clip_min_duration_s",
        label="duration (clip)",
        op=">=",
        unit="s",
        reason="too_short",
        # The shortest clip ``run`` makes (delivery.duration_s.min): a file shorter than that cannot make a
        # clip alone, so ``run`` rejects it. Not repeated where the vendor's own minimum already covers it.
        limit=lambda lim, seen: (
            None
            if lim.min_duration_s.value is not None and lim.min_duration_s.value >= seen["clip_min_s"]
            else seen["clip_min_s"]
        ),
        value=lambda seen: seen["duration_s"],
        message=lambda v, lim, ok, seen: (
            f"duration {number(v)} s (voiceprep run makes {seen['family']} clips of at least {number(lim)} s, "
            "so this recording alone is too short)"
        ),
        unmeasured=lambda seen: "not_measured: the duration is unknown",
        skip_key="duration_s",
        failures_only=True,
        test=lambda v, lim: v >= lim - _CLIP_EPS_S,
    ),
    LimitRule(
        name="recommended_duration_s",
        label="duration",
        op="in",
        unit="s",
        reason=lambda v, lim: "too_short" if lim[0] is not None and v < lim[0] else "too_long_clip",
        limit=lambda lim, seen: (
            None
            if lim.recommended_duration_s.value is None
            else [lim.recommended_duration_s.value.min, lim.recommended_duration_s.value.max]
        ),
        value=lambda seen: seen["duration_s"],
        message=lambda v, lim, ok, seen: (
            f"duration {number(v)} s (recommended {range_text(lim[0], lim[1], 's')})"
        ),
        unmeasured=lambda seen: "not_measured: the duration is unknown",
        skip_key="duration_s",
        soft=True,
        test=_within,
        hint=lambda lim: f"aim for {range_text(lim[0], lim[1], 's')} of speech",
    ),
    LimitRule(
        name="max_bytes",
        label="upload size",
        op="<=",
        unit="bytes",
        reason="too_large",
        limit=lambda lim, seen: lim.max_bytes.value,
        value=lambda seen: seen["upload_bytes"],
        message=lambda v, lim, ok, seen: f"{seen['upload_what']} {v} bytes (at most {lim})",
    ),
    LimitRule(
        name="speech",
        label="speech",
        op=">",
        unit="s",
        reason="no_speech",
        limit=lambda lim, seen: 0.0,
        value=lambda seen: seen["speech_s"],
        message=lambda v, lim, ok, seen: "no speech was detected",
        failures_only=True,
    ),
    LimitRule(
        name="min_speech_run_s",
        label="longest speech run",
        op=">=",
        unit="s",
        reason="no_continuous_speech",
        limit=lambda lim, seen: lim.min_speech_run_s.value,
        value=lambda seen: seen["longest_run_s"],
        message=lambda v, lim, ok, seen: f"longest unbroken speech {number(v)} s (needs {number(lim)} s)",
        unmeasured=lambda seen: "not_measured: speech runs were not measured",
    ),
    LimitRule(
        name="max_pause_s",
        label="longest pause",
        op="<=",
        unit="s",
        reason="pause_too_long",
        limit=lambda lim, seen: lim.max_pause_s.value,
        value=lambda seen: seen["max_pause_s"],
        message=lambda v, lim, ok, seen: f"longest pause {number(v)} s (at most {number(lim)} s)",
        unmeasured=lambda seen: "not_measured: pauses were not measured" if seen["speech_s"] else None,
    ),
    LimitRule(
        name="other_voices",
        label="other voices",
        op="<=",
        unit="s",
        reason="other_voices",
        limit=lambda lim, seen: 0.0,
        value=lambda seen: seen["other_voice_s"],
        message=lambda v, lim, ok, seen: (
            f"another voice talks for {number(v)} s ({_spans_text(seen['other_voice_spans'])})"
        ),
        failures_only=True,
    ),
)
"""Every hard limit the engine applies, in the order the checks are listed. A new limit is one entry
here plus its field in :class:`~pipeline.rules.families.Limits`."""

LIMIT_LABELS: dict[str, str] = {"readable": "readable", **{r.name: r.label for r in LIMIT_RULES}}
"""Short human names of the limit rules (``failed_read`` adds ``readable``)."""


def _seen(
    spec: FamilySpec, probe: Mapping[str, Any], metrics: Mapping[str, Any], first_channel_silent: bool | None
) -> Seen:
    """What the service will see of a file, from its probe and the metrics measured as the service hears it."""
    size = probe.get("bytes")
    base64 = spec.limits.inline_base64.value
    sample_format = probe.get("sample_format")
    return {
        "format": delivered_format(probe),
        "sample_format": _SUBTYPES.get(str(sample_format or ""), sample_format),
        "sample_rate": probe.get("sample_rate"),
        "channels": probe.get("channels"),
        "first_channel_silent": first_channel_silent,
        "clip_min_s": spec.delivery.duration_s.min,
        "family": spec.name,
        "duration_s": metrics.get("duration_s", probe.get("duration_s")),
        "upload_bytes": None if size is None else (4 * math.ceil(size / 3) if base64 else size),
        "upload_what": "base64 upload size" if base64 else "file size",
        "speech_s": metrics.get("speech_s"),
        "longest_run_s": metrics.get("longest_run_s"),
        "max_pause_s": metrics.get("max_pause_s"),
        "other_voice_s": metrics.get("other_voice_s"),
        "other_voice_spans": metrics.get("other_voice_spans") or [],
    }


def check_gates(
    gates: Sequence[Gate], *, metrics: Mapping[str, Any], null_reasons: Mapping[str, str] | None = None
) -> tuple[list[Check], dict[str, str]]:
    """Apply quality gates to measured metrics; a gate whose metric is missing is reported, not judged."""
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
        unit = METRICS[gate.metric].unit
        shown, limit_shown = value_text(gate.metric, value), value_text(gate.metric, threshold)
        hint = gate.hint or reason_hint(gate.reason)
        if gate.metric == "bandwidth_hz":  # one scale: the value's class, the class needed, that class's hint
            here, needed = bandwidth_class_of(value), bandwidth_class_of(threshold)
            shown = f"{shown}, {here.name} ({here.what})"
            limit_shown = f"{limit_shown}, {needed.name}"
            hint = gate.hint or here.hint or hint
        if verdict == "pass":
            message = f"{gate.metric} {shown} (passes {op} {limit_shown})"
        else:
            message = f"{gate.metric} {shown} ({verdict}: should be {op} {limit_shown})"
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
                hint=None if verdict == "pass" else hint,
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
    """Judge one file for one family: the hard limits (:data:`LIMIT_RULES`), then the quality gates; the
    verdict is the worst check, and ``not_checked`` says why each rule that could not be checked was not.

    ``metrics`` must have been measured the way the service hears the file (for a family that reads only
    the first channel, on the first channel) with the family's ``min_pause_s``.
    """
    seen = _seen(spec, probe, metrics, first_channel_silent)
    checks: list[Check] = []
    skipped: dict[str, str] = {}
    for rule in LIMIT_RULES:
        limit = rule.limit(spec.limits, seen)
        if limit is None:
            continue
        value = rule.value(seen)
        if value is None:
            why = rule.unmeasured(seen)
            if why is not None:
                skipped[rule.skip_key or rule.name] = why
            continue
        ok = (rule.test or _TESTS[rule.op])(value, limit)
        if ok and rule.failures_only:
            continue
        code = None if ok else rule.reason if isinstance(rule.reason, str) else rule.reason(value, limit)
        checks.append(
            Check(
                rule=rule.name,
                group="limit",
                value=value,
                limit=limit,
                op=rule.op,
                unit=rule.unit,
                verdict="pass" if ok else "warn" if rule.soft else "fail",
                reason=code,
                message=rule.message(value, limit, ok, seen),
                hint=None if code is None else rule.hint(limit) if rule.hint else reason_hint(code),
            )
        )
    gate_checks, skipped_gates = check_gates(spec.gates, metrics=metrics, null_reasons=null_reasons)
    checks += gate_checks
    return CheckResult(
        path=path,
        family=spec.name,
        verdict=combine([c.verdict for c in checks]),
        checks=checks,
        metrics=dict(metrics),
        probe=dict(probe),
        not_checked={**skipped, **skipped_gates},
    )


def other_voices_everywhere(
    spans: Sequence[Sequence[Any]],
    *,
    family: str,
    needed_s: float,
    turns: Sequence[tuple[float, float]] | None = None,
) -> Check:
    """The failing ``other_voices`` check of a speaker for whom another voice talks in every window that
    fits ``family``: no clip was made, so the check is of the speech as a whole, shaped as the clip's own
    ``other_voices`` check (value: seconds of the other voice heard, ``spans`` ``[path, start_s, end_s]``;
    limit 0 s). ``turns``, when every recording of the speaker holds two voices, are the speaker's own
    stretches: the message says how much speech they hold next to the ``needed_s`` a clip needs."""
    total = round(sum(float(s[-1]) - float(s[-2]) for s in spans), 3)
    message = (
        f"another voice talks for {number(total)} s ({_spans_text(spans)})"
        if spans
        else f"another voice talks in every window that fits {family}"
    )
    if turns:
        lengths = [b - a for a, b in turns]
        message += (
            f"; the speaker's own turns hold {number(sum(lengths))} s (the longest {number(max(lengths))} s)"
            f" and a {family} clip needs {number(needed_s)} s"
        )
    return Check(
        rule="other_voices",
        group="limit",
        value=total,
        limit=0.0,
        op="<=",
        unit="s",
        verdict="fail",
        reason="other_voices",
        message=message,
        hint=reason_hint("other_voices"),
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
        hint=reason_hint(code) if code in all_codes() else None,
    )
    return CheckResult(path=path, family=family, verdict="fail", checks=[check], probe=dict(probe or {}))
