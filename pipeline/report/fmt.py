"""Human text for the numbers of a run: metric names, values with units, limits, durations, sizes.

Pure functions from plain manifest values to short strings; the templates escape whatever they return.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

LABELS: dict[str, str] = {
    "readable": "readable",
    "format": "format",
    "sample_format": "sample format",
    "sample_rate": "sample rate",
    "channels": "channels",
    "first_channel_silent": "first channel",
    "min_duration_s": "duration (min)",
    "max_duration_s": "duration (max)",
    "recommended_duration_s": "duration",
    "max_bytes": "upload size",
    "speech": "speech",
    "min_speech_run_s": "longest speech run",
    "max_pause_s": "longest pause",
    "snr_db": "SNR",
    "wada_snr_db": "WADA SNR",
    "clipped_ratio": "clipping",
    "bandwidth_hz": "bandwidth",
    "bandwidth_class": "bandwidth class",
    "dnsmos_ovrl": "DNSMOS OVRL",
    "dnsmos_sig": "DNSMOS SIG",
    "dnsmos_bak": "DNSMOS BAK",
    "reverb_score": "reverb",
    "rt60_s": "RT60",
    "lufs": "loudness",
    "true_peak_dbtp": "true peak",
    "noise_floor_dbfs": "noise floor",
    "speech_ratio": "speech ratio",
    "duration_s": "duration",
}

_OPS = {">=": "≥", "<=": "≤", ">": ">", "<": "<", "==": "=", "in": "in"}


def metric_name(rule: str) -> str:
    """The short human name of a check rule or metric (``gate:snr_db`` -> ``SNR``)."""
    key = rule.removeprefix("gate:")
    return LABELS.get(key, key.replace("_", " "))


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def number(x: Any, *, digits: int = 2) -> str:
    """A number with at most ``digits`` decimals and no trailing zeros (``15.0`` -> ``15``); ``—`` for None."""
    if x is None:
        return "—"
    if not _is_number(x):
        return str(x)
    text = f"{float(x):.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text


def seconds(x: Any) -> str:
    """Seconds as ``12.3 s``, or ``1:02:03`` from one minute up; ``—`` for None."""
    if not _is_number(x):
        return "—"
    s = float(x)
    if s < 60:
        return f"{number(s, digits=1)} s"
    whole = round(s)
    h, rest = divmod(whole, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def hours(total_s: float) -> str:
    """A total duration for the header: ``5:23`` (minutes) under an hour, ``1.5 h`` or ``12 h`` above."""
    if total_s < 3600:
        return seconds(total_s)
    h = total_s / 3600.0
    return f"{number(h, digits=2 if h < 10 else 1)} h"


def size(n_bytes: Any) -> str:
    """Bytes as ``812 B``, ``14.2 kB`` or ``3.1 MB`` (powers of 1000, as the services count)."""
    if not _is_number(n_bytes):
        return "—"
    n = float(n_bytes)
    if n < 1000:
        return f"{int(n)} B"
    if n < 1e6:
        return f"{number(n / 1e3, digits=1)} kB"
    return f"{number(n / 1e6, digits=2)} MB"


def value(rule: str, x: Any, unit: str = "") -> str:
    """A measured value with its unit, in the form a person reads it.

    ``clipped_ratio`` becomes a percentage, Hz above 1000 become kHz, bytes get kB/MB; lists are joined.
    """
    key = rule.removeprefix("gate:")
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, list | tuple):
        return ", ".join(value(rule, v, unit) for v in x)
    if not _is_number(x):
        return str(x)
    if key == "clipped_ratio":
        pct = float(x) * 100.0
        return f"{number(pct, digits=3 if pct < 0.1 else 2)} %"
    if unit == "Hz" or key.endswith("_hz") or key == "sample_rate":
        return f"{number(float(x) / 1000.0, digits=1)} kHz" if abs(float(x)) >= 1000 else f"{number(x)} Hz"
    if unit == "bytes" or key == "max_bytes":
        return size(x)
    if unit == "s" or key.endswith("_s"):
        return seconds(x)
    # DNSMOS gates sit at round numbers (3.0): two decimals would show 2.996 as "3" next to "≥ 3".
    digits = 3 if key.startswith(("reverb", "dnsmos")) else 2
    text = number(x, digits=digits)
    return f"{text} {unit}" if unit else text


def limit(rule: str, op: str, lim: Any, unit: str = "") -> str:
    """The limit of a check as ``≥ 25 dB``, ``10–20 s`` (a range) or ``in wav, mp3, m4a``."""
    if lim is None:
        return ""
    if (
        op == "in"
        and isinstance(lim, Sequence)
        and not isinstance(lim, str)
        and len(lim) == 2
        and all(v is None or _is_number(v) for v in lim)
        and any(_is_number(v) for v in lim)
        and rule.removeprefix("gate:").endswith("_s")
    ):
        lo, hi = lim
        if lo is None:
            return f"≤ {number(hi)} s"
        if hi is None:
            return f"≥ {number(lo)} s"
        return f"{number(lo)}–{number(hi)} s"
    sign = _OPS.get(op, op)
    return f"{sign} {value(rule, lim, unit)}".strip()
