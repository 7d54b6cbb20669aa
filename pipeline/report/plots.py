"""Pictures for the report, as inline SVG text: source waveforms, clip spectrograms, batch histograms.

Waveforms are drawn by hand as small SVG paths (a few kB each, crisp at any zoom, with hover titles and
links to the clip they belong to); the spectrogram is a small WebP image inside an SVG frame with axes;
histograms are matplotlib (Agg) SVGs with their XML header, metadata and namespace URLs stripped, so the
page holds no external address at all. Every text that comes from data is escaped here.
"""

from __future__ import annotations

import base64
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from markupsafe import Markup, escape

from pipeline.rules.metrics import number, value_text

STATUS_COLOURS = {
    "ready": "#2e7d32",
    "submitted": "#1565c0",
    "rejected": "#c62828",
    "failed": "#616161",
}
"""Fill colours by clip status; the stylesheet uses the same values."""

BANDWIDTH_CLASSES = ("narrow", "wide", "super_wide", "full")

_NICE_STEPS = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)


def _n(x: float) -> str:
    """A coordinate with one decimal, no trailing zero."""
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _time_ticks(duration_s: float, *, max_ticks: int = 10) -> list[tuple[float, str]]:
    """``(t, label)`` of the time axis: at most ``max_ticks`` ticks a nice step apart (``0``, ``2.5 s``, ``1:30``)."""
    step = next((s for s in _NICE_STEPS if duration_s / s <= max_ticks), _NICE_STEPS[-1])
    ticks = []
    t = 0.0
    while t <= duration_s + 1e-9:
        m, sec = divmod(round(t), 60)
        ticks.append((t, f"{m}:{sec:02d}" if t >= 60 else f"{number(t, digits=1)} s" if t else "0"))
        t += step
    return ticks


# ------------------------------------------------------------------------------------------ waveform

W = 1000.0
LEFT = 96.0
RIGHT = 6.0
WAVE_TOP = 4.0
WAVE_H = 70.0
LANE_H = 14.0


def waveform_svg(
    env: tuple[np.ndarray, np.ndarray] | None,
    *,
    duration_s: float,
    regions: Sequence[tuple[float, float]] | None = None,
    families: Sequence[str],
    uses: Sequence[Mapping[str, Any]],
    pauses: Iterable[Sequence[float]] = (),
    speech: Iterable[Sequence[float]] = (),
    clipped_events: Iterable[float] = (),
    content: Iterable[Sequence[Any]] = (),
    other_voices: Iterable[Sequence[float]] = (),
    anchors: dict[str, str] | None = None,
    statuses: dict[str, str] | None = None,
    label: str = "",
    width: float = W,
) -> Markup:
    """A source recording's waveform with its pauses shaded, its speech segments (when the run stored
    them) as a green strip along the bottom, and, below it, one lane per family with the
    span(s) its clip took (solid) and its alternatives (outlined), each linking to ``#<anchors[family]>``.
    ``uses`` are ``{family, kind, rank, start_s, end_s}`` (``kind`` ``chosen`` or ``alternative``).

    ``env`` is the ``(lo, hi)`` envelope of :func:`pipeline.report.media.envelope`, read over ``regions``
    (None: all of the source); ``env`` None draws the lanes and pauses on an empty track (the audio could
    not be read). ``width`` is
    the drawing's width in user units: a narrower drawing keeps its text readable in a narrower column.
    ``content`` are ``(start_s, end_s, kind)`` spans where music or singing was heard (``kind`` ``music``
    or ``singing``), drawn as a strip along the top.
    ``statuses`` (family -> clip status) colours each lane's bars like the clip's status badge.
    ``other_voices`` are ``(start_s, end_s)`` where selection heard a voice other than the speaker's (a
    red strip along the top).
    """
    anchors = anchors or {}
    statuses = statuses or {}
    pw = width - LEFT - RIGHT
    scale = pw / duration_s if duration_s > 0 else 0.0

    def x(t: float) -> float:
        return LEFT + min(max(t, 0.0), duration_s) * scale

    lane_families = [f for f in families if any(u["family"] == f for u in uses)]
    lanes_top = WAVE_TOP + WAVE_H + 6
    axis_y = lanes_top + LANE_H * len(lane_families) + 2
    height = axis_y + 14
    mid = WAVE_TOP + WAVE_H / 2
    parts: list[str] = [
        f'<svg class="waveform" viewBox="0 0 {_n(width)} {_n(height)}" role="img" '
        f'preserveAspectRatio="xMinYMin meet" aria-label="{escape(label)}">',
        f'<rect class="wf-bg" x="{_n(LEFT)}" y="{_n(WAVE_TOP)}" width="{_n(pw)}" height="{_n(WAVE_H)}"/>',
    ]

    def span(cls: str, a: float, b: float, y: float, h: float, title: str = "", least: float = 0.5) -> str:
        """A rect over ``[a, b]`` seconds (at least ``least`` wide), with a hover title when given."""
        head = f'<rect class="{cls}" x="{_n(x(a))}" y="{_n(y)}" width="{_n(max(x(b) - x(a), least))}" height="{_n(h)}"'
        return f"{head}><title>{title}</title></rect>" if title else f"{head}/>"

    if env is not None and regions:
        parts.append(
            f'<rect class="unread" x="{_n(LEFT)}" y="{_n(WAVE_TOP)}" width="{_n(pw)}" height="{_n(WAVE_H)}">'
            "<title>long source: drawn only around the spans the clips used</title></rect>"
        )
        parts += [span("wf-bg", a, b, WAVE_TOP, WAVE_H) for a, b in regions]
    chosen = sorted((u["start_s"], u["end_s"]) for u in uses if u["kind"] == "chosen")
    parts += [span("chosen-shade", a, b, WAVE_TOP, WAVE_H) for a, b in chosen]
    for pause in pauses:
        a, b = float(pause[0]), float(pause[1])
        title = f"pause {number(a)}–{number(b)} s ({number(b - a)} s)"
        parts.append(span("pause pause-long" if b - a > 2.0 else "pause", a, b, WAVE_TOP, WAVE_H, title))
    if env is not None:
        lo, hi = env
        finite = np.isfinite(hi) & np.isfinite(lo)
        peak = float(max(np.abs(lo[finite]).max(), np.abs(hi[finite]).max())) if finite.any() else 0.0
        half = WAVE_H / 2 - 1
        gain = half / peak if peak > 0 else 0.0
        cols = len(hi)
        # One vertical stroke per column, in column units (x) and whole units (y): a few kB per recording.
        top = np.floor(mid - np.nan_to_num(hi) * gain).astype(int)
        bottom = np.ceil(mid - np.nan_to_num(lo) * gain).astype(int)
        bottom = np.maximum(bottom, top + 1)
        strokes = _strokes(top, bottom, finite)
        parts.append(
            f'<g transform="translate({_n(LEFT)} 0) scale({pw / cols:.5g} 1)">'
            f'<path class="wave" stroke-width="1" d="{strokes}"/></g>'
        )
        if peak > 0:
            parts.append(
                f'<text class="wf-note" x="2" y="{_n(mid + 4)}">peak {number(20 * math.log10(peak), digits=1)} dBFS</text>'
            )
    parts += [span("speech", float(s[0]), float(s[1]), WAVE_TOP + WAVE_H - 4, 4) for s in speech]
    for c in content:
        a, b, kind = float(c[0]), float(c[1]), str(c[2])
        title = f"{escape(kind)} heard {number(a)}–{number(b)} s"
        parts.append(span(f"content content-{escape(kind)}", a, b, WAVE_TOP, 4, title))
    for a, b in ((float(s[0]), float(s[1])) for s in other_voices):
        title = f"another voice {number(a)}–{number(b)} s: no clip takes it"
        parts.append(span("other-voice", a, b, WAVE_TOP, 4, title))
    for t in clipped_events:
        parts.append(
            f'<line class="clip-tick" x1="{_n(x(float(t)))}" x2="{_n(x(float(t)))}" y1="{_n(WAVE_TOP)}" '
            f'y2="{_n(WAVE_TOP + 9)}"><title>clipping at {number(float(t))} s</title></line>'
        )
    for i, family in enumerate(lane_families):
        y = lanes_top + i * LANE_H
        parts.append(f'<text class="lane-label" x="2" y="{_n(y + 10)}">{escape(family)}</text>')
        for u in sorted((u for u in uses if u["family"] == family), key=lambda u: -u["rank"]):
            a, b = u["start_s"], u["end_s"]
            what = "clip" if u["kind"] == "chosen" else f"alternative {u['rank']}"
            cls = "use use-chosen" if u["kind"] == "chosen" else "use use-alt"
            if family in statuses:
                cls += f" lane-{escape(statuses[family])}"
            title = f"{escape(family)} {what}: {number(a)}–{number(b)} s"
            rect = span(cls, a, b, y + 2, LANE_H - 4, title, least=1.0)
            href = anchors.get(family)
            parts.append(f'<a href="#{escape(href)}">{rect}</a>' if href else rect)
    for t, text in _time_ticks(duration_s):
        xt = x(t)
        parts.append(
            f'<line class="tick" x1="{_n(xt)}" x2="{_n(xt)}" y1="{_n(axis_y - 3)}" y2="{_n(axis_y)}"/>'
            f'<text class="tick-label" x="{_n(xt)}" y="{_n(axis_y + 11)}" text-anchor="middle">{text}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _strokes(top: np.ndarray, bottom: np.ndarray, finite: np.ndarray) -> str:
    """Path data of one vertical stroke per finite column, with relative moves between neighbours
    (``m1-12v20``), which is about a third shorter than absolute coordinates."""
    out: list[str] = []
    prev: int | None = None
    prev_bottom = 0
    for i in np.flatnonzero(finite).tolist():
        t, b = int(top[i]), int(bottom[i])
        if prev is not None and i == prev + 1:
            out.append(f"m1 {t - prev_bottom}v{b - t}")
        else:
            out.append(f"M{i} {t}v{b - t}")
        prev, prev_bottom = i, b
    return "".join(out).replace(" -", "-")


# ------------------------------------------------------------------------------------------ spectrogram

SPEC_LEFT = 44.0
SPEC_H = 96.0
SPEC_TOP = 8.0


def _image_uri(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="WEBP", quality=50, method=4)
    return "data:image/webp;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def spectrogram_svg(
    db: np.ndarray,
    *,
    sample_rate: int,
    duration_s: float,
    bandwidth_hz: float | None = None,
    label: str = "",
    dynamic_range_db: float = 80.0,
) -> Markup:
    """A clip's spectrogram (``db`` shaped (rows, columns), row 0 lowest) as an SVG with kHz and time axes
    and, when known, a dashed line at the measured bandwidth."""
    from matplotlib import colormaps

    vmax = float(np.percentile(db, 99.5)) if db.size else 0.0
    norm = np.clip((db - (vmax - dynamic_range_db)) / dynamic_range_db, 0.0, 1.0)
    rgb = (colormaps["magma"](norm[::-1])[:, :, :3] * 255).astype(np.uint8)
    pw = W - SPEC_LEFT - RIGHT
    nyquist = sample_rate / 2
    height = SPEC_TOP + SPEC_H + 16

    def y(f: float) -> float:
        return SPEC_TOP + SPEC_H * (1 - min(max(f / nyquist, 0.0), 1.0))

    parts = [
        f'<svg class="spectrogram" viewBox="0 0 {_n(W)} {_n(height)}" role="img" aria-label="{escape(label)}">',
        f'<image x="{_n(SPEC_LEFT)}" y="{_n(SPEC_TOP)}" width="{_n(pw)}" height="{_n(SPEC_H)}" preserveAspectRatio="none" '
        f'href="{_image_uri(rgb)}"/>',
    ]
    khz_step = 2 if nyquist <= 12000 else 4 if nyquist <= 24000 else 8
    f = 0.0
    while f <= nyquist / 1000 + 1e-9:
        yy = y(f * 1000)
        parts.append(
            f'<text class="tick-label" x="{_n(SPEC_LEFT - 4)}" y="{_n(yy + 3)}" text-anchor="end">'
            f"{number(f)} kHz</text>"
        )
        f += khz_step
    if bandwidth_hz:
        yy = y(bandwidth_hz)
        parts.append(
            f'<line class="bw-line" x1="{_n(SPEC_LEFT)}" x2="{_n(W - RIGHT)}" y1="{_n(yy)}" y2="{_n(yy)}">'
            f"<title>measured bandwidth {value_text('bandwidth_hz', bandwidth_hz)}</title></line>"
            f'<text class="bw-label" x="{_n(W - RIGHT - 4)}" y="{_n(max(yy - 3, SPEC_TOP + 9))}" text-anchor="end">'
            f"bandwidth {value_text('bandwidth_hz', bandwidth_hz)}</text>"
        )
    for t, text in _time_ticks(duration_s) if duration_s > 0 else ():
        xt = SPEC_LEFT + pw * t / duration_s
        parts.append(
            f'<text class="tick-label" x="{_n(xt)}" y="{_n(SPEC_TOP + SPEC_H + 13)}" text-anchor="middle">{text}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


# ------------------------------------------------------------------------------------------ histograms

_SVG_HEAD = re.compile(r"^.*?(?=<svg)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>", re.S)
_XMLNS = re.compile(r'\s+xmlns(:\w+)?="[^"]*"')


def clean_svg(text: str) -> str:
    """A matplotlib SVG made fit to inline in HTML: no XML header or DOCTYPE, no RDF metadata, no namespace
    declarations (HTML parses ``<svg>`` and ``xlink:href`` without them), so no URL is left in it."""
    text = _SVG_HEAD.sub("", text, count=1)
    text = _METADATA.sub("", text)
    return _XMLNS.sub("", text)


def histogram_svg(
    values: Sequence[tuple[Any, str]],
    *,
    metric: str,
    title: str,
    unit: str = "",
    gates: dict[float, list[str]] | None = None,
) -> Markup:
    """A histogram of clip values stacked by clip status (colours as the badges), with the families'
    gate limits as dashed lines. ``bandwidth_class`` is drawn as a bar per class. Empty data gives a
    short note instead of a plot."""
    present = [(v, s) for v, s in values if v is not None]
    if not present:
        return Markup(f'<p class="empty-plot">{escape(title)}: no values in this run</p>')
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    statuses = [s for s in STATUS_COLOURS if any(st == s for _, st in present)]
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": f"voiceprep-{metric}", "font.size": 8}):
        fig = Figure(figsize=(3.3, 2.1), layout="constrained")
        ax = fig.add_subplot()
        if metric == "bandwidth_class":
            cats = [c for c in BANDWIDTH_CLASSES if any(v == c for v, _ in present)]
            cats += sorted({str(v) for v, _ in present} - set(cats))
            bottom = np.zeros(len(cats))
            for s in statuses:
                heights = np.array([sum(1 for v, st in present if v == c and st == s) for c in cats], float)
                ax.bar(range(len(cats)), heights, bottom=bottom, color=STATUS_COLOURS[s], label=s, width=0.7)
                bottom += heights
            ax.set_xticks(range(len(cats)), [c.replace("_", " ") for c in cats])
        else:
            numbers = np.array([float(v) for v, _ in present])
            lo, hi = float(numbers.min()), float(numbers.max())
            if gates:
                lo, hi = min(lo, *gates), max(hi, *gates)
            if hi - lo < 1e-9:
                lo, hi = lo - 0.5, hi + 0.5
            edges = np.linspace(lo, hi, min(20, max(6, len(numbers) // 2)) + 1)
            ax.hist(
                [[float(v) for v, st in present if st == s] for s in statuses],
                bins=edges,
                stacked=True,
                color=[STATUS_COLOURS[s] for s in statuses],
                label=statuses,
            )
            for limit in sorted(gates or {}):
                ax.axvline(limit, color="#333333", ls="--", lw=0.8)
                ax.annotate(
                    f" {number(limit)}",
                    (limit, 0.99),
                    xycoords=("data", "axes fraction"),
                    fontsize=6.5,
                    ha="left",
                    va="top",
                )
            ax.set_xlabel(unit or "")
        ax.set_ylabel("clips")
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_title(title, fontsize=9, loc="left")
        if len(statuses) > 1:
            ax.legend(fontsize=6.5, frameon=False)
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
    return Markup(clean_svg(buf.getvalue()).replace("<svg ", '<svg class="histogram" ', 1))
