"""Human text for the numbers of a run: metric names, values with units, limits, durations, sizes.

Pure functions from plain manifest values to short strings; the templates escape whatever they return.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.rules.checks import LIMIT_LABELS
from pipeline.rules.metrics import is_number, label, number, seconds, size
from pipeline.rules.metrics import value_text as value

__all__ = ["hours", "limit", "metric_name", "number", "seconds", "size", "value"]
"""``number``, ``seconds``, ``size`` and ``value`` are :mod:`pipeline.rules.metrics`'s, re-exported for the templates."""

_OPS = {">=": "≥", "<=": "≤", ">": ">", "<": "<", "==": "=", "in": "in"}


def metric_name(rule: str) -> str:
    """The short human name of a check rule or metric (``gate:snr_db`` -> ``SNR``)."""
    return LIMIT_LABELS.get(rule) or label(rule)


def hours(total_s: float) -> str:
    """A total duration for the header: ``5:23`` (minutes) under an hour, ``1.5 h`` or ``12 h`` above."""
    if total_s < 3600:
        return seconds(total_s)
    h = total_s / 3600.0
    return f"{number(h, digits=2 if h < 10 else 1)} h"


def limit(rule: str, op: str, lim: Any, unit: str = "") -> str:
    """The limit of a check as ``≥ 25 dB``, ``10–20 s`` (a range) or ``in wav, mp3, m4a``."""
    if lim is None:
        return ""
    if (
        op == "in"
        and isinstance(lim, Sequence)
        and not isinstance(lim, str)
        and len(lim) == 2
        and all(v is None or is_number(v) for v in lim)
        and any(is_number(v) for v in lim)
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
