"""Render the report page of a run (its :class:`~pipeline.report.results.RunResults` and speaker cards) with
jinja2 (autoescaped).

The stylesheet and the small script are inlined from ``templates/``; the page's Content-Security-Policy
allows no network source at all (images only from ``data:``, media only from the page's own origin or
``file:``, the script only by its hash), so a stray external URL would be blocked *and* reported as a
console error, which the browser test watches for.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
from functools import lru_cache, partial
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from pipeline.report.data import (
    RECORDING_HEADERS,
    SHORT_SOURCE_S,
    STATUSES,
    Speaker,
    cells,
    counts,
    duration,
    failed_recordings,
    family_counts,
    gates_by_family,
    is_badge,
    reason_of,
    voices_note,
)
from pipeline.report.results import RunResults
from pipeline.rules.checks import LIMIT_LABELS
from pipeline.rules.metrics import audio_length, definition, label, limit_text, number, seconds, value_text


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The jinja2 environment: templates from the package, autoescaping on, undefined names are errors."""
    env = Environment(
        loader=PackageLoader("pipeline.report", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        num=lambda x, digits=2: number(x, digits=digits),
        secs=seconds,
        hours=audio_length,
        metric=lambda rule: LIMIT_LABELS.get(rule) or label(rule),
        # hover text of a check: its message, then what the metric means when that is not obvious
        explained=lambda c: c["message"] + (f" ({definition(c['rule'])})" if definition(c["rule"]) else ""),
        mval=lambda x, rule, unit="": value_text(rule, x, unit),
        reason=reason_of,
        duration=duration,
        # a check's value and limit as people read them
        check_value=lambda c: value_text(c["rule"], c["value"], c["unit"] or ""),
        check_limit=lambda c: limit_text(c["rule"], c["op"] or "", c["limit"], c["unit"] or ""),
    )
    env.tests["badge"] = is_badge
    return env


def _asset(name: str) -> str:
    env = environment()
    assert env.loader is not None
    source, _, _ = env.loader.get_source(env, name)
    return source


def content_security_policy(script: str) -> str:
    """The page's CSP: nothing from the network; the inline script allowed by its sha256."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return "; ".join(
        (
            "default-src 'none'",
            "img-src data:",
            "media-src 'self' file:",
            "style-src 'unsafe-inline'",
            f"script-src 'sha256-{digest}'",
            "base-uri 'none'",
            "form-action 'none'",
        )
    )


def render(
    res: RunResults,
    speakers: list[Speaker],
    *,
    histograms: list[str],
    preload: str,
    built_at: _dt.datetime | None = None,
) -> str:
    """The report page as one HTML string: the run, its speaker cards as drawn and the batch histograms."""
    script = _asset("report.js")
    built = (built_at or _dt.datetime.now(_dt.UTC)).strftime("%Y-%m-%d %H:%M UTC")
    context: dict[str, Any] = {
        "run": res.run,
        "families": res.families,
        "speakers": speakers,
        "counts": counts(res, speakers),
        "family_counts": family_counts(res),
        "cells": partial(cells, gates=gates_by_family(res.families)),
        "recording_headers": RECORDING_HEADERS,
        "speech_stored": any(r["speech_segments"] for r in res.recording_rows),
        "histograms": histograms,
        "failed_recordings": failed_recordings(res),
        "voices_note": voices_note(res),
        "statuses": STATUSES,
        "short_s": SHORT_SOURCE_S,
        "css": _asset("report.css"),
        "script": script,
        "csp": content_security_policy(script),
        "preload": preload,
        "built": built,
        "title": res.out_dir.name,
    }
    return environment().get_template("report.html.j2").render(context)
