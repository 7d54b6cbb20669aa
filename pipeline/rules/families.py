"""Load and validate the model-family specs in ``pipeline/configs/families/*.yaml``.

A family spec holds what one cloud voice-cloning service accepts, in three groups the code keeps apart:

* ``limits``: the vendor's hard rules (breaking one is a ``fail``); each is ``{value, source, note?}``;
  a ``null`` value means the vendor states no such limit.
* ``delivery``: what voiceprep renders (rate, format, duration window, loudness, edges). Ours to choose.
* ``gates``: quality thresholds (SNR, reverb, clipping, bandwidth, DNSMOS) with a ``warn`` and/or
  ``fail`` threshold and a reason code.

Every number names a ``source``: a key of the file's ``sources`` map (title, url, date checked). Our own
choices use the ``voiceprep`` source and must say ``why``.

Validation is strict: unknown keys, wrong types and impossible values raise :class:`SpecError` whose
message names the file and the dotted key path, e.g.
``pipeline/configs/families/qwen-tts.yaml: limits.min_sample_rate.value: must be > 0 (got -5)``.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from pipeline.errors import SpecError, all_codes
from pipeline.rules import settings_file
from pipeline.rules.metrics import GATE_METRICS, METRICS, number, range_text, size, unit_of, value_text
from pipeline.rules.settings_file import display as _display

__all__ = [
    "OWN_SOURCE",
    "Delivery",
    "FamilySpec",
    "Gate",
    "Limit",
    "Limits",
    "NameRule",
    "Range",
    "Source",
    "describe",
    "families_dir",
    "list_families",
    "load_all",
    "load_family",
]

ENV_FAMILIES_DIR = "VOICEPREP_FAMILIES_DIR"
"""Environment variable that points the loader at another folder of spec files."""

OWN_SOURCE = "voiceprep"
"""Source id for voiceprep's own choices; items citing it must say ``why``."""

AudioFormat = Literal["wav", "mp3", "m4a", "flac", "ogg", "opus", "aac", "webm"]
"""Container/format names a spec may use (lower case, as file extensions)."""

Subtype = Literal["PCM_16", "PCM_24", "PCM_32", "PCM_U8", "PCM_S8", "FLOAT", "DOUBLE", "ULAW", "ALAW"]
"""Sample formats, spelled as :mod:`soundfile` subtypes."""

Provider = Literal["dashscope", "minimax", "elevenlabs"]

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Text = Annotated[str, Field(min_length=1)]

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_STRICT = ConfigDict(extra="forbid", frozen=True, strict=True)
T = TypeVar("T")


def _rule(subpath: str, message: str) -> PydanticCustomError:
    """An error for a rule that spans keys: ``subpath`` is relative to the model that raises it."""
    return PydanticCustomError("spec_rule", "{subpath}: {message}", {"subpath": subpath, "message": message})


# --------------------------------------------------------------------------- building blocks


class Source(BaseModel):
    """Where a number comes from: a document title, its URL and the date it was last checked."""

    model_config = _STRICT

    title: Text
    url: str | None = None
    checked: date

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise PydanticCustomError(
                "spec_url", "must start with https:// (got '{value}')", {"value": value}
            )
        return value


class Sourced(BaseModel):
    """Base for every item that carries a ``source`` id (a key of the spec's ``sources`` map)."""

    model_config = _STRICT

    source: Text
    note: Text | None = None
    why: Text | None = None

    @model_validator(mode="after")
    def _own_choices_say_why(self) -> Sourced:
        if self.source == OWN_SOURCE and self.why is None:
            raise _rule("why", f"required when source is {OWN_SOURCE!r} (say why we chose this)")
        return self


class Limit(Sourced, Generic[T]):
    """One hard limit: ``value`` (``None`` = the vendor states no such limit) plus its source."""

    value: T


class Range(BaseModel):
    """A range in seconds: ``min`` and ``max`` (either may be open, ``null``, but not both) and an optional
    ``aim`` inside it. Where a spec needs both ends or an aim, the group that holds the range says so."""

    model_config = _STRICT

    min: NonNegFloat | None = None
    max: NonNegFloat | None = None
    aim: NonNegFloat | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min is None and self.max is None:
            raise _rule("max", "a range needs at least one of min and max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise _rule("min", f"must be <= max (got min {number(self.min)} > max {number(self.max)})")
        if self.aim is not None and not (self.min or 0) <= self.aim <= (self.max or math.inf):
            raise _rule(
                "aim", f"must lie within {range_text(self.min, self.max, 's')} (got {number(self.aim)})"
            )
        return self

    def require(self, key: str, *parts: str, positive: bool = False) -> None:
        """Raise the spec error for ``key`` when one of ``parts`` (``min``/``max``/``aim``) is missing."""
        for part in parts:
            if getattr(self, part) is None:
                raise _rule(f"{key}.{part}", "required key is missing")
            if positive and getattr(self, part) <= 0:
                raise _rule(f"{key}.{part}", f"must be > 0 (got {number(getattr(self, part))})")


# --------------------------------------------------------------------------- identity


class NameRule(Sourced):
    """How the name we send (CosyVoice ``prefix``, Qwen ``preferred_name``, MiniMax ``voice_id``) must look."""

    field: Text
    pattern: Text
    min_length: PositiveInt = 1
    max_length: PositiveInt

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise PydanticCustomError(
                "spec_regex", "not a valid regular expression: {err}", {"err": str(exc)}
            ) from None
        return value

    @model_validator(mode="after")
    def _lengths(self) -> NameRule:
        if self.min_length > self.max_length:
            raise _rule("min_length", f"must be <= max_length (got {self.min_length} > {self.max_length})")
        return self

    def matches(self, name: str) -> bool:
        """True when ``name`` satisfies both the pattern and the length bounds."""
        return (
            self.min_length <= len(name) <= self.max_length and re.fullmatch(self.pattern, name) is not None
        )


Region = Literal["intl", "cn"]
"""The vendor regions voiceprep names: ``intl`` (Singapore / global) and ``cn`` (China, Beijing / mainland)."""


# --------------------------------------------------------------------------- the three groups


class Limits(BaseModel):
    """Hard limits of the service. A ``null`` value means the vendor states no such limit."""

    model_config = _STRICT

    formats: Limit[list[AudioFormat] | None]
    sample_formats: Limit[dict[AudioFormat, list[Subtype]] | None]
    min_sample_rate: Limit[PositiveInt | None]
    channels: Limit[list[PositiveInt] | None]
    first_channel_only: Limit[bool]
    min_duration_s: Limit[PositiveFloat | None]
    max_duration_s: Limit[PositiveFloat | None]
    recommended_duration_s: Limit[Range | None]
    max_bytes: Limit[PositiveInt | None]
    inline_base64: Limit[bool]
    min_speech_run_s: Limit[PositiveFloat | None]
    max_pause_s: Limit[PositiveFloat | None]
    min_pause_s: Limit[PositiveFloat]

    @model_validator(mode="after")
    def _consistent(self) -> Limits:
        formats = self.formats.value
        if formats is not None and not formats:
            raise _rule("formats.value", "must list at least one format (or be null: not stated)")
        if formats is not None and len(set(formats)) != len(formats):
            raise _rule("formats.value", f"lists a format twice ({formats})")
        for fmt, subtypes in (self.sample_formats.value or {}).items():
            if formats is not None and fmt not in formats:
                raise _rule(f"sample_formats.value.{fmt}", f"format is not in formats.value {formats}")
            if not subtypes:
                raise _rule(f"sample_formats.value.{fmt}", "must list at least one sample format")
        if self.channels.value is not None and not self.channels.value:
            raise _rule("channels.value", "must list at least one channel count (or be null: not stated)")
        lo, hi = self.min_duration_s.value, self.max_duration_s.value
        if lo is not None and hi is not None and lo > hi:
            raise _rule(
                "min_duration_s.value", f"must be <= max_duration_s.value (got {number(lo)} > {number(hi)})"
            )
        rec = self.recommended_duration_s.value
        if rec is not None:
            if lo is not None and rec.min is not None and rec.min < lo:
                raise _rule(
                    "recommended_duration_s.value.min",
                    f"must be >= min_duration_s.value (got {number(rec.min)} < {number(lo)})",
                )
            if hi is not None and rec.max is not None and rec.max > hi:
                raise _rule(
                    "recommended_duration_s.value.max",
                    f"must be <= max_duration_s.value (got {number(rec.max)} > {number(hi)})",
                )
        run = self.min_speech_run_s.value
        if run is not None and hi is not None and run > hi:
            raise _rule(
                "min_speech_run_s.value",
                f"must be <= max_duration_s.value (got {number(run)} > {number(hi)})",
            )
        pause = self.max_pause_s.value
        if pause is not None and self.min_pause_s.value > pause:
            raise _rule(
                "min_pause_s.value",
                f"must be <= max_pause_s.value (got {number(self.min_pause_s.value)} > {number(pause)})",
            )
        return self

    def items(self) -> list[tuple[str, Limit[Any]]]:
        """``(key, limit)`` pairs in declaration order."""
        return [(key, getattr(self, key)) for key in type(self).model_fields]


class Delivery(Sourced):
    """What voiceprep renders for this family. The group's ``source``/``why`` covers every key."""

    format: AudioFormat
    subtype: Subtype | None
    sample_rate: PositiveInt
    high_sample_rate: PositiveInt | None
    high_rate_above_hz: PositiveFloat
    channels: PositiveInt
    duration_s: Range
    target_lufs: Annotated[float, Field(lt=0)]
    true_peak_max_dbtp: Annotated[float, Field(le=0)]
    edge_room_tone_s: Range
    fade_s: Annotated[float, Field(ge=0, le=1)]
    pause_target_s: Range
    denoise_allowed: bool

    @model_validator(mode="after")
    def _consistent(self) -> Delivery:
        self.duration_s.require("duration_s", "min", "max", "aim", positive=True)
        self.edge_room_tone_s.require("edge_room_tone_s", "min", "max")
        self.pause_target_s.require("pause_target_s", "min", "max")
        if self.high_sample_rate is not None and self.high_sample_rate < self.sample_rate:
            raise _rule(
                "high_sample_rate",
                f"must be >= sample_rate (got {self.high_sample_rate} < {self.sample_rate})",
            )
        if self.high_rate_above_hz > self.sample_rate / 2:
            raise _rule(
                "high_rate_above_hz",
                f"must be <= sample_rate / 2 = {number(self.sample_rate / 2)} "
                f"(got {number(self.high_rate_above_hz)})",
            )
        if self.format == "wav" and self.subtype is None:
            raise _rule("subtype", "required for wav")
        if self.true_peak_max_dbtp <= self.target_lufs:
            raise _rule(
                "true_peak_max_dbtp",
                f"must be above target_lufs (got {number(self.true_peak_max_dbtp)} <= {number(self.target_lufs)})",
            )
        return self

    def items(self) -> list[tuple[str, Any]]:
        """``(key, value)`` pairs of the delivery choices (not ``source``/``note``/``why``)."""
        skip = set(Sourced.model_fields)
        return [(key, getattr(self, key)) for key in type(self).model_fields if key not in skip]


def _on_the_bandwidth_scale(key: str, x: float) -> None:
    """Refuse a bandwidth gate threshold that is not where a bandwidth class starts
    (:data:`pipeline.rules.metrics.BANDWIDTH_CLASSES`), so that the warning and the class agree."""
    from pipeline.rules.metrics import BANDWIDTH_BOUNDARIES_HZ, BANDWIDTH_CLASSES, number

    if x not in BANDWIDTH_BOUNDARIES_HZ:
        scale = ", ".join(f"{number(c.from_hz)} ({c.name})" for c in BANDWIDTH_CLASSES[1:])
        raise _rule(
            key,
            f"a bandwidth gate's threshold is where a bandwidth class starts, so that the warning and "
            f"the class agree: one of {scale} (got {number(x)})",
        )


class Gate(Sourced):
    """A quality gate: ``metric`` compared with ``warn``/``fail`` thresholds in ``direction``.

    ``direction: min`` means the value must be >= the threshold (e.g. SNR); ``max`` means <= (e.g. clipping).
    """

    metric: Text
    direction: Literal["min", "max"]
    warn: float | None = None
    fail: float | None = None
    reason: Text
    hint: Text | None = None

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in GATE_METRICS:
            raise PydanticCustomError(
                "spec_metric",
                "unknown metric '{value}' (known: {known})",
                {"value": value, "known": ", ".join(GATE_METRICS)},
            )
        return value

    @field_validator("reason")
    @classmethod
    def _known_reason(cls, value: str) -> str:
        if value not in all_codes():
            raise PydanticCustomError(
                "spec_reason",
                "unknown reason code '{value}' (add it to pipeline/errors.py first)",
                {"value": value},
            )
        return value

    @model_validator(mode="after")
    def _thresholds(self) -> Gate:
        if self.warn is None and self.fail is None:
            raise _rule("warn", "a gate needs a warn or a fail threshold (or both)")
        for key in ("warn", "fail"):
            x = getattr(self, key)
            if x is not None and not math.isfinite(x):
                raise _rule(key, f"must be a finite number (got {x})")
            bounds = METRICS[self.metric].bounds
            if x is not None and bounds is not None and not bounds[0] <= x <= bounds[1]:
                lo, hi, got = (number(v, digits=6) for v in (*bounds, x))
                raise _rule(key, f"{self.metric} lies in [{lo}, {hi}] (got {got})")
        if self.warn is not None and self.fail is not None:
            if self.direction == "min" and not self.fail < self.warn:
                raise _rule(
                    "fail",
                    f"with direction min the fail threshold must be below warn "
                    f"(got fail {number(self.fail, digits=6)} >= warn {number(self.warn, digits=6)})",
                )
            if self.direction == "max" and not self.fail > self.warn:
                raise _rule(
                    "fail",
                    f"with direction max the fail threshold must be above warn "
                    f"(got fail {number(self.fail, digits=6)} <= warn {number(self.warn, digits=6)})",
                )
        return self

    @model_validator(mode="after")
    def _bandwidth_scale(self) -> Gate:
        if self.metric == "bandwidth_hz":
            for key in ("warn", "fail"):
                x = getattr(self, key)
                if x is not None:
                    _on_the_bandwidth_scale(key, x)
        return self

    def verdict(self, value: float | None) -> Literal["pass", "warn", "fail"] | None:
        """``pass``/``warn``/``fail`` for a measured ``value``; ``None`` when the value is missing."""
        if value is None or not math.isfinite(value):
            return None
        bad = (lambda t: value < t) if self.direction == "min" else (lambda t: value > t)
        if self.fail is not None and bad(self.fail):
            return "fail"
        if self.warn is not None and bad(self.warn):
            return "warn"
        return "pass"


class FamilySpec(BaseModel):
    """One model family: identity, hard ``limits``, ``delivery`` choices, quality ``gates`` and ``sources``."""

    model_config = _STRICT

    name: Text
    title: Text
    provider: Provider
    enrollment_model: Text | None
    target_models: list[Text]
    default_target_model: Text | None = None
    models_source: Text
    regions: dict[Region, list[Text]] | None = None
    """The target models the vendor offers for cloning in each region (its model list); None: every
    model everywhere."""
    regions_source: Text | None = None
    name_rule: NameRule
    voice_expiry: Limit[PositiveInt | None]
    """When the provider deletes a voice: after ``value`` days without use (``None``: no fixed rule);
    ``note`` says it in words."""
    quota: Limit[PositiveInt | None]
    """How many cloned voices an account may hold (``None``: depends on the plan / not stated); ``note``
    says it in words."""
    limits: Limits
    delivery: Delivery
    gates: list[Gate]
    sources: dict[str, Source]

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise PydanticCustomError(
                "spec_name", "must be lower case letters, digits and '-' (got '{value}')", {"value": value}
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_model_is_first(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("default_target_model") is None:
            models = data.get("target_models")
            if isinstance(models, list) and models and isinstance(models[0], str):
                data = {**data, "default_target_model": models[0]}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> FamilySpec:
        if not self.target_models:
            raise _rule("target_models", "must list at least one model")
        if len(set(self.target_models)) != len(self.target_models):
            raise _rule("target_models", f"lists a model twice ({self.target_models})")
        if self.default_target_model not in self.target_models:
            raise _rule(
                "default_target_model",
                f"{self.default_target_model!r} is not in target_models {self.target_models}",
            )
        for region, offered in (self.regions or {}).items():
            unknown = [m for m in offered if m not in self.target_models]
            if unknown:
                raise _rule(f"regions.{region}", f"{unknown} are not in target_models")
        if (self.regions is None) != (self.regions_source is None):
            raise _rule("regions_source", "is given with regions, and only with regions")
        for key, rule in (("voice_expiry", self.voice_expiry), ("quota", self.quota)):
            if rule.note is None:
                raise _rule(f"{key}.note", "required: the rule in words")
        if self.provider == "dashscope" and self.enrollment_model is None:
            raise _rule("enrollment_model", "required for provider dashscope")
        for path, source_id in self._source_refs():
            if source_id not in self.sources:
                raise _rule(
                    path, f"unknown source {source_id!r} (sources: {', '.join(sorted(self.sources))})"
                )
        for source_id, src in self.sources.items():
            if source_id != OWN_SOURCE and src.url is None:
                raise _rule(f"sources.{source_id}.url", "required for a vendor source")
        seen: set[tuple[str, str]] = set()
        for i, gate in enumerate(self.gates):
            key = (gate.metric, gate.direction)
            if key in seen:
                raise _rule(f"gates[{i}]", f"a second {gate.direction} gate on {gate.metric}")
            seen.add(key)
        self._check_delivery_within_limits()
        return self

    def _source_refs(self) -> list[tuple[str, str]]:
        """``(dotted path of the source key, source id)`` for every sourced item."""
        refs = [
            ("models_source", self.models_source),
            ("name_rule.source", self.name_rule.source),
            ("voice_expiry.source", self.voice_expiry.source),
            ("quota.source", self.quota.source),
            ("delivery.source", self.delivery.source),
        ]
        refs += [("regions_source", self.regions_source)] if self.regions_source is not None else []
        refs += [(f"limits.{key}.source", limit.source) for key, limit in self.limits.items()]
        refs += [(f"gates[{i}].source", gate.source) for i, gate in enumerate(self.gates)]
        return refs

    def _check_delivery_within_limits(self) -> None:
        d, lim = self.delivery, self.limits
        formats = lim.formats.value
        if formats is not None and d.format not in formats:
            raise _rule("delivery.format", f"{d.format!r} is not in limits.formats.value {formats}")
        allowed = (lim.sample_formats.value or {}).get(d.format)
        if allowed is not None and d.subtype not in allowed:
            raise _rule(
                "delivery.subtype",
                f"{d.subtype!r} is not in limits.sample_formats.value.{d.format} {allowed}",
            )
        min_rate = lim.min_sample_rate.value
        for key in ("sample_rate", "high_sample_rate"):
            rate = getattr(d, key)
            if rate is not None and min_rate is not None and rate < min_rate:
                raise _rule(f"delivery.{key}", f"{rate} is below limits.min_sample_rate.value ({min_rate})")
        if lim.channels.value is not None and d.channels not in lim.channels.value:
            raise _rule(
                "delivery.channels", f"{d.channels} is not in limits.channels.value {lim.channels.value}"
            )
        lo, hi = lim.min_duration_s.value, lim.max_duration_s.value
        if lo is not None and d.duration_s.min < lo:
            raise _rule(
                "delivery.duration_s.min",
                f"{number(d.duration_s.min)} is below limits.min_duration_s.value ({number(lo)})",
            )
        if hi is not None and d.duration_s.max > hi:
            raise _rule(
                "delivery.duration_s.max",
                f"{number(d.duration_s.max)} is above limits.max_duration_s.value ({number(hi)})",
            )
        run = lim.min_speech_run_s.value
        if run is not None and d.duration_s.min < run:
            raise _rule(
                "delivery.duration_s.min",
                f"{number(d.duration_s.min)} is shorter than limits.min_speech_run_s.value ({number(run)})",
            )
        pause = lim.max_pause_s.value
        if pause is not None and d.pause_target_s.max > pause:
            raise _rule(
                "delivery.pause_target_s.max",
                f"{number(d.pause_target_s.max)} is above limits.max_pause_s.value ({number(pause)})",
            )
        max_bytes = lim.max_bytes.value
        wav_bytes = self.max_delivery_bytes()
        if max_bytes is not None and wav_bytes is not None and wav_bytes > max_bytes:
            what = "base64 of a" if lim.inline_base64.value else "a"
            raise _rule(
                "delivery.duration_s.max",
                f"{what} {number(d.duration_s.max)} s clip at the highest delivery rate is {wav_bytes} bytes, "
                f"over limits.max_bytes.value ({max_bytes})",
            )

    @property
    def edge_s(self) -> float:
        """The room tone a clip carries at both ends together (s): twice the middle of
        ``delivery.edge_room_tone_s``, which the renderer aims each end at."""
        tone = self.delivery.edge_room_tone_s
        return float(tone.min + tone.max)  # both ends are required (validated)

    @property
    def join_s(self) -> float:
        """The length (s) a shortened pause, or a join between two pieces, takes in a clip: the middle of
        ``delivery.pause_target_s``."""
        pause = self.delivery.pause_target_s
        return float((pause.min + pause.max) / 2.0)  # both ends are required (validated)

    def fits(self, duration_s: float, longest_run_s: float) -> bool:
        """True when a clip of this duration and longest run of speech satisfies the family: the duration
        within ``delivery.duration_s`` (which validation keeps inside the hard limits) and the run at least
        ``limits.min_speech_run_s``."""
        window, run, eps = self.delivery.duration_s, self.limits.min_speech_run_s.value, 1e-9
        if not window.min - eps <= duration_s <= window.max + eps:
            return False
        return run is None or longest_run_s >= run - eps

    def models_in(self, region: str | None) -> list[str]:
        """The target models offered in ``region``: the region's table when the spec has one (a region it
        does not list offers none), else every model (``region`` None, or a family without regions)."""
        if region is None or self.regions is None:
            return list(self.target_models)
        return list(self.regions.get(region, []))  # type: ignore[call-overload]

    def max_delivery_bytes(self) -> int | None:
        """Upper bound of the uploaded size (base64 form when inline) of the longest PCM WAV we render.

        ``None`` when the delivery format is not PCM WAV (compressed sizes are not known in advance).
        """
        d = self.delivery
        widths = {"PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "PCM_U8": 1, "PCM_S8": 1, "FLOAT": 4, "DOUBLE": 8}
        if d.format != "wav" or d.subtype not in widths:
            return None
        rate = d.high_sample_rate or d.sample_rate
        raw = math.ceil(d.duration_s.max * rate) * d.channels * widths[d.subtype] + 44  # 44: RIFF header
        return 4 * math.ceil(raw / 3) if self.limits.inline_base64.value else raw


def _parse(path: Path) -> FamilySpec:
    spec = settings_file.load(FamilySpec, path)
    if spec.name != path.stem:
        raise SpecError(
            f"{_display(path)}: name: must equal the file name stem {path.stem!r} (got {spec.name!r})"
        )
    return spec


# --------------------------------------------------------------------------- public API


def families_dir() -> Path:
    """The folder of family specs: ``$VOICEPREP_FAMILIES_DIR`` if set, else the specs shipped in the package
    (``pipeline/configs/families``)."""
    env = os.environ.get(ENV_FAMILIES_DIR)
    if env:
        return Path(env).expanduser()
    return _PACKAGED_FAMILIES_DIR


_PACKAGED_FAMILIES_DIR = Path(__file__).resolve().parents[1] / "configs" / "families"
"""The family specs shipped in the package."""


def list_families(directory: Path | None = None) -> list[str]:
    """Sorted names (file stems) of the ``*.yaml`` specs in ``directory`` (default :func:`families_dir`)."""
    folder = families_dir() if directory is None else Path(directory)
    if not folder.is_dir():
        raise SpecError(f"{_display(folder)}: the family spec folder does not exist")
    return sorted(p.stem for p in folder.glob("*.yaml") if p.is_file())


def load_family(name_or_path: str | Path, *, directory: Path | None = None) -> FamilySpec:
    """Load and validate one family spec, by name (``"qwen-tts"``) or by path to a ``.yaml`` file.

    Names are matched case-insensitively. Raises :class:`SpecError` naming the file and key for any
    problem; an unknown name lists the available names.
    """
    if not isinstance(name_or_path, str | Path):
        raise SpecError(f"name_or_path: expected a family name or a path (got {type(name_or_path).__name__})")
    text = str(name_or_path)
    is_path = (
        isinstance(name_or_path, Path) or text.endswith((".yaml", ".yml")) or os.sep in text or "/" in text
    )
    if is_path:
        return _parse(Path(name_or_path))
    folder = families_dir() if directory is None else Path(directory)
    text = text.strip().lower()  # `-f Qwen-TTS` is qwen-tts: names are matched case-insensitively
    if not _NAME_RE.match(text):
        guess = _did_you_mean(text, list_families(folder))
        raise SpecError(
            f"unknown family {text!r}: a family name is lower case letters, digits and '-'{guess}"
        )
    path = folder / f"{text}.yaml"
    if not path.is_file():
        names = list_families(folder)
        known = ", ".join(names) if names else "none"
        # The shipped specs' folder is an internal path: named only when the user chose the folder.
        where = "" if folder.resolve() == _PACKAGED_FAMILIES_DIR.resolve() else f" in {_display(folder)}"
        raise SpecError(f"unknown family {text!r}{where}{_did_you_mean(text, names)} (available: {known})")
    return _parse(path)


def _did_you_mean(typed: str, names: list[str]) -> str:
    """``: did you mean qwen-tts?`` for the name closest to ``typed`` (spaces and ``_`` read as ``-``; a
    name that starts with it counts, so ``qwen`` finds ``qwen-tts``), or ``""`` when none is close."""
    wanted = re.sub(r"[\s_]+", "-", typed.strip().lower())
    starting = [n for n in names if n.startswith(wanted + "-")] if wanted else []
    close = starting[:1] or difflib.get_close_matches(wanted, names, n=1, cutoff=0.6)
    return f": did you mean {close[0]}?" if close else ""


def load_all(directory: Path | None = None) -> dict[str, FamilySpec]:
    """Every spec in ``directory`` (default :func:`families_dir`), keyed by name, in name order."""
    folder = families_dir() if directory is None else Path(directory)
    return {name: _parse(folder / f"{name}.yaml") for name in list_families(folder)}


def _show(value: Any, unit: str = "") -> str:
    """Human form of a spec value with its unit."""
    if value is None:
        return "not stated"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Range):
        aim = "" if value.aim is None else f", aim {number(value.aim)} {unit}".rstrip()
        return range_text(value.min, value.max, unit) + aim
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {', '.join(v)}" for k, v in value.items())
    if unit == "bytes" and isinstance(value, int):
        return f"{value} bytes ({size(value)})"
    return f"{number(value, digits=6)} {unit}".strip()


def _cite(spec: FamilySpec, source_id: str) -> str:
    src = spec.sources.get(source_id)
    return f"{source_id} ({src.checked.isoformat()})" if src is not None else source_id


def describe(spec: FamilySpec) -> list[tuple[str, str, str, str]]:
    """Rows ``(group, rule, value with unit, source)`` listing every rule of ``spec``.

    Groups are ``identity``, ``limits``, ``delivery`` and ``gates``; the source column is the source id
    with the date it was checked. Used by ``voiceprep families show``.
    """
    rows: list[tuple[str, str, str, str]] = [
        ("identity", "provider", spec.provider, _cite(spec, spec.models_source)),
        ("identity", "enrollment_model", spec.enrollment_model or "none", _cite(spec, spec.models_source)),
        ("identity", "target_models", ", ".join(spec.target_models), _cite(spec, spec.models_source)),
        ("identity", "default_target_model", str(spec.default_target_model), _cite(spec, spec.models_source)),
        *(
            ("identity", f"models in {region}", ", ".join(models), _cite(spec, spec.regions_source or ""))
            for region, models in (spec.regions or {}).items()
        ),
        (
            "identity",
            f"name_rule ({spec.name_rule.field})",
            f"{spec.name_rule.pattern}, {spec.name_rule.min_length}-{spec.name_rule.max_length} chars",
            _cite(spec, spec.name_rule.source),
        ),
        ("identity", "voice_expiry", spec.voice_expiry.note or "", _cite(spec, spec.voice_expiry.source)),
        ("identity", "quota", spec.quota.note or "", _cite(spec, spec.quota.source)),
    ]
    for key, limit in spec.limits.items():
        rows.append(("limits", key, _show(limit.value, unit_of(key)), _cite(spec, limit.source)))
    for key, value in spec.delivery.items():
        rows.append(("delivery", key, _show(value, unit_of(key)), _cite(spec, spec.delivery.source)))
    for gate in spec.gates:
        op = "<" if gate.direction == "min" else ">"
        # As ``check`` and the report write the limits: ratios as percentages, Hz from 1000 up as kHz.
        parts = [
            f"{level} if {op} {value_text(gate.metric, x)}"
            for level, x in (("warn", gate.warn), ("fail", gate.fail))
            if x is not None
        ]
        rows.append(("gates", f"{gate.metric} ({gate.reason})", ", ".join(parts), _cite(spec, gate.source)))
    return rows
