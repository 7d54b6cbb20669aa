"""The one table of metrics, and the one way numbers are written for people.

Every measurement voiceprep reports is one :class:`Metric` in :data:`METRICS`: its name (the key in
``metrics`` of a manifest row), a short label, its unit, its column type for pandas, the physically
possible range (a gate threshold outside it can never trigger), whether a family's quality gate may
name it, and how its value reads. The fast pass, the family loader, the check engine, the CLI,
``load_run`` and the report all read this table: adding a metric is one entry here plus its meter.

:func:`value_text` writes any measured value or limit the way a person reads it (``12.3 s``, ``4.8 kHz``,
``0.012 %``, ``-23.2 LUFS``); :func:`range_text` writes a range that may be open at one end, and
:func:`limit_text` the limit of a check (``≥ 25 dB``, a range of seconds, ``in wav, mp3``);
:func:`span_text` a stretch of a recording (``12.3-15.1 s``); :func:`counted` a count of things (``3 clips``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

Dtype = Literal["float", "int", "text", "bool", "object"]
Style = Literal["number", "percent", "events", "choice", "text"]


@dataclass(frozen=True)
class Metric:
    """One measurement: what it is called, in what unit, what type, and how it reads."""

    name: str
    label: str
    unit: str = ""
    dtype: Dtype = "float"
    bounds: tuple[float, float] | None = None
    """The physically possible range (inclusive); ``None`` for unbounded values."""
    gate: bool = False
    """A family's quality gate may name this metric."""
    style: Style = "number"
    digits: int = 2
    """Decimals shown for plain numbers."""
    fast_pass: bool = True
    """Reported by the fast pass of every recording (``False``: an extra kept beside them)."""
    definition: str = ""
    """What the number counts, where it could be misread (shown beside it by ``voiceprep analyze``)."""


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("duration_s", "duration", "s"),
        Metric("speech_s", "speech", "s", definition="voiced time only: the gaps between words excluded"),
        Metric("speech_ratio", "speech ratio", bounds=(0.0, 1.0), gate=True, style="percent"),
        Metric(
            "longest_run_s",
            "longest speech run",
            "s",
            definition="speech with no pause of 0.5 s or more; shorter gaps count as part of the run",
        ),
        Metric(
            "max_pause_s", "longest pause", "s", definition="longest silence of 0.5 s or more between speech"
        ),
        Metric("pauses_over_2s", "pauses over 2 s", dtype="int"),
        Metric(
            "snr_db",
            "SNR",
            "dB",
            gate=True,
            definition="speech over noise in the band a delivered clip keeps (above the render's high-pass)",
        ),
        Metric("wada_snr_db", "WADA SNR", "dB", gate=True),
        Metric("noise_floor_dbfs", "noise floor", "dBFS", bounds=(-200.0, 0.0), gate=True),
        Metric(
            "rumble_db",
            "rumble",
            "dB",
            bounds=(-120.0, 120.0),
            gate=True,
            definition="low-frequency noise the render's high-pass removes, relative to the speech",
        ),
        Metric("hum_hz", "mains hum", "Hz", bounds=(0.0, 1000.0)),
        Metric(
            "hum_db",
            "hum in the voice band",
            "dB",
            bounds=(-120.0, 120.0),
            gate=True,
            definition="the mains hum's harmonics above the render's high-pass, relative to the speech",
        ),
        Metric("rt60_s", "RT60", "s", bounds=(0.0, 30.0), gate=True),
        Metric(
            "reverb_score",
            "reverb",
            bounds=(0.0, 1.0),
            gate=True,
            digits=3,
            definition="room echo on a 0-1 scale, no unit: 0 dry, 1 very reverberant",
        ),
        Metric("clipped_ratio", "clipping", bounds=(0.0, 1.0), gate=True, style="percent"),
        Metric("clipped_events", "clipping events", dtype="object", style="events"),
        Metric("bandwidth_hz", "bandwidth", "Hz", bounds=(0.0, 192000.0), gate=True),
        Metric("bandwidth_class", "bandwidth class", dtype="text", style="text"),
        Metric("lufs", "loudness", "LUFS", bounds=(-120.0, 0.0), gate=True),
        Metric("true_peak_dbtp", "true peak", "dBTP", bounds=(-120.0, 20.0), gate=True),
        Metric("dc_offset", "DC offset", digits=4),
        Metric(
            "dnsmos_sig",
            "DNSMOS SIG",
            bounds=(1.0, 5.0),
            gate=True,
            digits=3,
            definition="predicted listener rating (1-5) of the voice itself: distortion, muffling, codec damage",
        ),
        Metric(
            "dnsmos_bak",
            "DNSMOS BAK",
            bounds=(1.0, 5.0),
            gate=True,
            digits=3,
            definition="predicted listener rating (1-5) of the background: 5 is no audible noise",
        ),
        Metric(
            "dnsmos_ovrl",
            "DNSMOS OVRL",
            bounds=(1.0, 5.0),
            gate=True,
            digits=3,
            definition="predicted listener rating (1-5) of the whole recording; clean read speech scores about "
            "3.2-3.3, and a clone copies the noise and distortion that lower it",
        ),
        Metric(
            "music_score",
            "music",
            bounds=(0.0, 1.0),
            gate=True,
            definition="0-1: tuned notes under or between the words (0.5 is music); hum and fan tones do not count",
        ),
        Metric(
            "singing_score",
            "singing",
            bounds=(0.0, 1.0),
            gate=True,
            definition="0-1: how much of the voice holds steady notes, as sung (0.5 is singing)",
        ),
        Metric(
            "music_spans",
            "music/singing at",
            dtype="object",
            style="events",
            definition="where the 10 s windows heard as music or singing lie (start-end, kind)",
        ),
        Metric("channel_choice", "channels used", dtype="object", style="choice"),
        Metric("pauses", "pauses", dtype="object", style="events", fast_pass=False),
        Metric(
            "speaker_similarity",
            "speaker similarity",
            bounds=(0.0, 1.0),
            digits=3,
            fast_pass=False,
            definition="cosine of the voice (GE2E embedding) to the speaker's voice: 1 is the same voice; a "
            "speaker's own clean recordings score about 0.85-0.98, other people about 0.45-0.75",
        ),
        Metric(
            "other_voice_s",
            "other voices",
            "s",
            bounds=(0.0, 1e7),
            fast_pass=False,
            definition="seconds in stretches of about 2 s or more where a voice other than the speaker's talks",
        ),
        Metric(
            "other_voice_spans",
            "other-voice spans",
            dtype="object",
            style="events",
            fast_pass=False,
            definition="[start_s, end_s] of each stretch where another voice talks",
        ),
    )
}
"""Every metric, in report order."""

FAST_PASS_METRICS: tuple[str, ...] = tuple(n for n, m in METRICS.items() if m.fast_pass)
"""The metrics every analysed recording carries (``null`` with a reason when not measurable)."""

GATE_METRICS: tuple[str, ...] = tuple(n for n, m in METRICS.items() if m.gate)
"""The metrics a family's quality gate may name."""


# ------------------------------------------------------------------------------------------ writing


@dataclass(frozen=True)
class BandwidthClass:
    """One class of the bandwidth scale: ``name`` (the ``bandwidth_class`` metric), the bandwidth it starts
    at (``from_hz``, inclusive), what audio has it (``what``), and how to get a wider band (``hint``)."""

    name: str
    from_hz: float
    what: str
    hint: str


BANDWIDTH_CLASSES: tuple[BandwidthClass, ...] = (
    BandwidthClass(
        "narrow",
        0.0,
        "the telephone band",
        "record with a microphone at 44.1 or 48 kHz, not over the phone or from a call recording",
    ),
    BandwidthClass(
        "wide",
        4200.0,
        "a 16 kHz recording's band",
        "record or export at 44.1 or 48 kHz: a file made at 16 kHz (or upsampled from it) stops near 8 kHz",
    ),
    BandwidthClass(
        "super_wide",
        8200.0,
        "a 24 kHz recording's band",
        "record or export at 44.1 or 48 kHz: a file made at 24 kHz (or upsampled from it) stops near 12 kHz",
    ),
    BandwidthClass("full", 12000.0, "full band", ""),
)
"""The one bandwidth scale (``../shared/docs/quality.md``): the ``bandwidth_class`` the fast pass reports, and
the only thresholds a family's ``bandwidth_hz`` gate may use (the ``from_hz`` of a class above ``narrow``),
so that a warning always means "this class is below the one the family needs" and its hint names the class.
Boundaries: under 4.2 kHz the telephone band (a cut at 3.4-4 kHz), under 8.2 kHz a 16 kHz recording's, under
12 kHz a 24 kHz recording's, else full band (an MP3 shelf near 15-16 kHz included)."""

BANDWIDTH_BOUNDARIES_HZ: tuple[float, ...] = tuple(c.from_hz for c in BANDWIDTH_CLASSES[1:])
"""Where one bandwidth class ends and the next starts (Hz): the thresholds a bandwidth gate may use."""


def bandwidth_class_of(bandwidth_hz: float) -> BandwidthClass:
    """The :data:`BANDWIDTH_CLASSES` entry of a bandwidth (each class includes its ``from_hz``)."""
    found = BANDWIDTH_CLASSES[0]
    for cls in BANDWIDTH_CLASSES:
        if bandwidth_hz >= cls.from_hz:
            found = cls
    return found


def is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def number(x: Any, *, digits: int = 2) -> str:
    """A number with at most ``digits`` decimals and no trailing zeros (``15.0`` -> ``15``); ``—`` for None."""
    if x is None:
        return "—"
    if not is_number(x):
        return str(x)
    text = f"{float(x):.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1: ``1 recording``, ``3 clips``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def seconds(x: Any) -> str:
    """Seconds as ``12.3 s``, or ``1:02:03`` from one minute up; ``—`` for None."""
    if not is_number(x):
        return "—"
    s = float(x)
    if s < 60:
        return f"{number(s, digits=1)} s"
    whole = round(s)
    h, rest = divmod(whole, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def audio_length(total_s: float) -> str:
    """An amount of audio: as :func:`seconds` writes it (``17.4 s``, ``5:23``) under an hour, else in hours
    (``1.5 h``, ``12 h``)."""
    if total_s < 3600:
        return seconds(total_s)
    h = total_s / 3600.0
    return f"{number(h, digits=2 if h < 10 else 1)} h"


def size(n_bytes: Any) -> str:
    """Bytes as ``812 B``, ``14.2 kB`` or ``3.1 MB`` (powers of 1000, as the services count)."""
    if not is_number(n_bytes):
        return "—"
    n = float(n_bytes)
    if n < 1000:
        return f"{int(n)} B"
    if n < 1e6:
        return f"{number(n / 1e3, digits=1)} kB"
    return f"{number(n / 1e6, digits=2)} MB"


_UNIT_SUFFIXES = (("_s", "s"), ("_hz", "Hz"), ("sample_rate", "Hz"), ("bytes", "bytes"), ("lufs", "LUFS"))
_UNIT_SUFFIXES += (("_dbtp", "dBTP"), ("_db", "dB"))


def unit_of(key: str) -> str:
    """The unit a setting's name carries (``max_pause_s`` -> ``s``, ``min_sample_rate`` -> ``Hz``); a metric's
    own unit when it is in :data:`METRICS`; ``""`` when the name says none."""
    if key in METRICS:
        return METRICS[key].unit
    return next((unit for suffix, unit in _UNIT_SUFFIXES if key.endswith(suffix)), "")


def value_text(name: str, x: Any, unit: str | None = None) -> str:
    """A measured value or limit with its unit, as a person reads it.

    ``name`` is a metric (``snr_db``), a check rule (``gate:snr_db``, ``max_bytes``) or any key; the unit
    comes from :data:`METRICS` unless given. Ratios read as percentages, Hz from 1000 up as kHz, bytes
    as kB/MB, seconds as ``12.3 s`` or ``1:02``; lists are joined; ``—`` for a missing value.
    """
    key = name.removeprefix("gate:")
    metric = METRICS.get(key)
    if unit is None:
        unit = metric.unit if metric is not None else ""
    if x is None:
        return "—"
    style = metric.style if metric is not None else "number"
    if style == "events" and isinstance(x, list | tuple):
        shown = ", ".join(_event_text(t) for t in x[:6])
        return f"{len(x)} ({shown}{', ...' if len(x) > 6 else ''})" if x else "0"
    if style == "choice" and isinstance(x, dict):
        return str(x.get("detail") or x.get("method"))
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, list | tuple):
        return ", ".join(value_text(name, v, unit) for v in x)
    if not is_number(x):
        return str(x)
    if style == "percent":
        pct = float(x) * 100.0
        return f"{number(pct, digits=3 if pct < 0.1 else 2)} %"
    if unit == "Hz" or key.endswith("_hz") or key == "sample_rate":
        return f"{number(float(x) / 1000.0, digits=1)} kHz" if abs(float(x)) >= 1000 else f"{number(x)} Hz"
    if unit == "bytes" or key == "max_bytes":
        return size(x)
    if unit == "s" or key.endswith("_s"):
        return seconds(x)
    text = number(x, digits=metric.digits if metric is not None else 2)
    return f"{text} {unit}" if unit else text


def _event_text(event: Any) -> str:
    """One event: a time (``12.3``), or a span with what was found (``[0, 10, "music"]`` -> ``0-10 s music``)."""
    if is_number(event):
        return number(event, digits=2)
    if len(event) == 3 and isinstance(event[2], str):
        return f"{span_text(event[0], event[1])} {event[2]}"
    return number(event[0], digits=2)


def span_text(start_s: float, end_s: float) -> str:
    """A stretch of a recording as ``12.3-15.1 s`` (tenths of a second, no trailing zeros)."""
    return f"{number(start_s, digits=1)}-{number(end_s, digits=1)} s"


def range_text(lo: float | None, hi: float | None, unit: str = "") -> str:
    """The one way a range is written: ``10-20 s``, ``at least 30 s``, ``at most 20 s`` or ``any``."""
    if lo is None and hi is None:
        return "any"
    if hi is None:
        text = f"at least {number(lo)}"
    elif lo is None:
        text = f"at most {number(hi)}"
    else:
        text = f"{number(lo)}-{number(hi)}"
    return f"{text} {unit}".rstrip()


_OPS = {">=": "≥", "<=": "≤", ">": ">", "<": "<", "==": "=", "in": "in"}


def limit_text(rule: str, op: str, lim: Any, unit: str = "") -> str:
    """The limit of a check as ``≥ 25 dB``, ``in wav, mp3, m4a`` or, for a pair of seconds, as
    :func:`range_text` writes it (``10-20 s``, ``at least 30 s``); ``""`` when the check has none."""
    if lim is None:
        return ""
    pair = op == "in" and isinstance(lim, list | tuple) and len(lim) == 2
    numbers = pair and all(v is None or is_number(v) for v in lim) and any(is_number(v) for v in lim)
    if numbers and rule.removeprefix("gate:").endswith("_s"):
        return range_text(lim[0], lim[1], "s")
    return f"{_OPS.get(op, op)} {value_text(rule, lim, unit)}".strip()


def label(name: str) -> str:
    """The short human name of a metric (``snr_db`` -> ``SNR``; ``gate:`` prefixes are dropped)."""
    key = name.removeprefix("gate:")
    metric = METRICS.get(key)
    return metric.label if metric is not None else key.replace("_", " ")


def definition(name: str) -> str:
    """What a metric counts (``""`` when its label says it all); ``gate:`` prefixes are dropped."""
    metric = METRICS.get(name.removeprefix("gate:"))
    return metric.definition if metric is not None else ""


def pandas_dtypes(names: Sequence[str] | None = None) -> dict[str, Dtype]:
    """``{metric: column type}`` for ``names`` (default: every metric), for the tables of ``load_run``."""
    return {n: METRICS[n].dtype for n in (names or METRICS)}
