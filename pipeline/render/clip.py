"""Render one :class:`~pipeline.selection.plan.ClipPlan` into the delivered enrollment clip.

One pass from the original decoded audio (``docs/render.md`` has the reasons and the measured numbers):

1. read each piece's window at its native rate (``read_window``) and mix it to mono with the piece's
   ``channel_weights``; pieces at different rates are brought to the highest of them (the working rate);
2. edges: cut in the quietest 10 ms frames of the bounding pauses, keeping
   ``delivery.edge_room_tone_s`` of room tone at each end; with too little room (speech at the file's
   edge) pad with a copy of the recording's own quietest stretch (noted);
3. shorten each ``long_pause`` to the middle of ``delivery.pause_target_s`` by cutting out its middle at
   its quietest part;
4. join pieces with each recording's own room tone (``pause_target_s``), crossfaded;
5. remove DC and rumble (70 Hz 4th-order Butterworth high-pass, zero-phase);
6. denoise (noisereduce) only when allowed and DNSMOS OVRL improves by >= 0.1 without SIG dropping;
7. resample to ``delivery.sample_rate`` (``high_sample_rate`` when the source has real content above
   ``high_rate_above_hz``), fade the clip's ends in and out;
8. normalise to ``delivery.target_lufs`` with a look-ahead true-peak limiter under
   ``delivery.true_peak_max_dbtp`` (never a hard clip);
9. encode (atomic write) and re-measure loudness and true peak from the written file.

Every cut pairs with another one that shares a fixed length budget (the two clip edges share twice the
middle of ``edge_room_tone_s``, the two halves of a join or of a shortened pause share the middle of
``pause_target_s``), so the rendered clip is as long as the plan expects, to the sample, while each
cut still lands on the quietest frame the budget allows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import maximum_filter1d, minimum_filter1d, uniform_filter1d

from pipeline.analysis.bandwidth import BandwidthMeter
from pipeline.analysis.base import ANALYSIS_RATE, FRAME_S
from pipeline.analysis.energy import HIGHPASS_HZ, frame_db, frame_power, highpass_sos
from pipeline.analysis.loudness import integrated_loudness
from pipeline.analysis.vad import speech_mask, webrtc_vad
from pipeline.audio import filters, io
from pipeline.audio.resample import resample
from pipeline.errors import AudioReadError, InvalidArgument
from pipeline.rules.families import FamilySpec
from pipeline.selection.plan import ClipPlan, PieceAudio, read_piece

__all__ = [
    "DENOISE_MIN_OVRL_GAIN",
    "HIGHPASS_HZ",
    "RenderResult",
    "render",
]

DENOISE_MIN_OVRL_GAIN = 0.1
"""Denoised audio is kept only when DNSMOS OVRL rises by at least this much ..."""

DENOISE_MAX_SIG_DROP = 0.0
"""... and DNSMOS SIG (the speech itself) falls by no more than this."""

DENOISE_STRENGTHS = (1.0, 0.8)
"""noisereduce ``prop_decrease`` values tried in turn, until one passes the DNSMOS rule: full removal
gains most OVRL but often costs a little SIG; removing 80 % of the noise keeps SIG more often."""

LIMITER_MARGIN_DB = 0.3
"""The limiter's ceiling sits this far under ``true_peak_max_dbtp`` (meter differences, PCM16 rounding)."""

LIMITER_RAMP_S = 0.004
"""Half-width of each of the two smoothing boxes of the limiter's gain curve (attack = release = 8 ms)."""

LOUDNESS_TOLERANCE_LU = 0.05
"""Normalisation iterates until the clip is this close to the target (limiting lowers loudness a bit)."""

CUT_HOP_S = 0.001
"""Grid on which cut points are searched (s)."""

PAD_COST_DB = 200.0
"""Extra cost of a room-tone length that needs padding although the recording has some room."""

PAD_DB_PER_S = 100.0
"""Cost of each second of copied room tone, against the dB level of a natural cut: 1 dB per 10 ms."""

PAD_SOURCE_MAX_S = 0.2
"""Longest stretch of room tone copied at once when padding; longer pads tile it with crossfades."""

PAD_LOUD_WARN_DB = 15.0
"""A padding source less than this far under the piece's speech level is noted as not really quiet."""

_LEVEL_FLOOR_DB = -150.0
_TRUNCATION_SLACK_S = 0.05


@dataclass
class RenderResult:
    """What :func:`render` wrote and how.

    ``segments`` lists the source spans ``{path, start_s, end_s}`` that appear in the clip, in clip order
    (a piece whose long pauses were shortened contributes one span per kept part; the room tone at the
    ends is included; copied padding is not a span but a note). ``gain_db`` is the static loudness gain;
    ``lufs`` and ``true_peak_dbtp`` are measured on the written file. ``dnsmos_before``/``dnsmos_after``
    (``{sig, bak, ovrl}``) are set only when denoising was tried.
    """

    path: Path
    duration_s: float
    sample_rate: int
    segments: list[dict[str, Any]]
    gain_db: float
    lufs: float | None
    true_peak_dbtp: float | None
    denoised: bool
    dnsmos_before: dict[str, float] | None
    dnsmos_after: dict[str, float] | None
    pauses_shortened: int
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------------
# reading pieces
# --------------------------------------------------------------------------------------------------------


def _at_rate(audio: PieceAudio, rate: int) -> PieceAudio:
    """A piece's samples at the working rate (``AudioReadError`` when decoding stopped before its end)."""
    piece, t0 = audio.piece, audio.t0
    x = resample(audio.x, in_rate=audio.rate, out_rate=rate).astype(np.float64)
    if round((piece.end_s - t0) * rate) > x.shape[0] + round(_TRUNCATION_SLACK_S * rate):
        raise AudioReadError(
            "truncated",
            f"{piece.source}: decoding ended at {t0 + x.shape[0] / rate:.3f} s, before the piece's end "
            f"({piece.end_s:.3f} s)",
        )
    return PieceAudio(piece, x, t0, rate)


# --------------------------------------------------------------------------------------------------------
# choosing cut points
# --------------------------------------------------------------------------------------------------------


Cost = Callable[[np.ndarray], np.ndarray]
"""The cost (dB) of each candidate length of room tone on one side of a cut (see :func:`_side_cost`)."""


def _side_cost(buf: PieceAudio, anchor: int, *, lead: bool, avail: int) -> Cost:
    """The cost (dB) of each length of room tone on one side of speech: ``lead`` cuts before ``anchor``,
    otherwise after it; the recording has ``avail`` samples of room there, longer lengths need padding.

    A length costs the level of the 10 ms frame next to its cut. A length the room cannot hold pads with
    copied room tone: that costs :data:`PAD_DB_PER_S` per second of copy, plus :data:`PAD_COST_DB` when
    the recording has enough room for some of the lengths (then natural room tone always wins).
    """
    rate = buf.rate
    frame = max(1, round(FRAME_S * rate))

    def cost(lengths: np.ndarray) -> np.ndarray:
        lengths = np.asarray(lengths, dtype=np.int64)
        natural = np.minimum(lengths, avail)
        if lead:
            lo = anchor - natural
            hi = np.minimum(lo + frame, anchor)
        else:
            hi = anchor + natural
            lo = np.maximum(hi - frame, anchor)
        width = np.maximum(hi - lo, 1)
        power = (buf.cumsq[hi] - buf.cumsq[lo]) / width
        level = np.maximum(10.0 * np.log10(np.maximum(power, 1e-15)), _LEVEL_FLOOR_DB)
        pad_s = np.maximum(lengths - avail, 0) / rate
        if lengths.size and avail < int(lengths.min()):
            return PAD_DB_PER_S * pad_s  # every choice pads: the least copy wins
        return np.where(pad_s > 0, PAD_COST_DB + PAD_DB_PER_S * pad_s, level)

    return cost


def _split(left: Cost, right: Cost, *, total: int, lo: int, hi: int, rate: int) -> tuple[int, int]:
    """Lengths ``(l, r)`` with ``l + r == total`` and both in ``[lo, hi]``, quietest cut frames first
    (searched on a :data:`CUT_HOP_S` grid; ``left``/``right`` are the two sides' :func:`_side_cost`)."""
    l_min = max(lo, total - hi)
    l_max = min(hi, total - lo)
    if l_max < l_min:  # the budget cannot be split within the range: the caller clamps before this
        half = total // 2
        return half, total - half
    hop = max(1, round(CUT_HOP_S * rate))
    lengths = np.unique(np.concatenate([np.arange(l_min, l_max + 1, hop), [l_max]]))
    cost = left(lengths) + right(total - lengths)
    cost = cost + 1e-6 * np.abs(lengths - total / 2)  # ties: the more even split
    best = int(lengths[int(np.argmin(cost))])
    return best, total - best


# --------------------------------------------------------------------------------------------------------
# assembling
# --------------------------------------------------------------------------------------------------------


def _xfade_concat(parts: list[np.ndarray], overlap: int) -> np.ndarray:
    """Join ``parts`` with equal-power crossfades of ``overlap`` samples (room tone is uncorrelated)."""
    if not parts:
        return np.zeros(0)
    out = parts[0].copy()
    for part in parts[1:]:
        n = min(overlap, out.shape[0], part.shape[0])
        if n <= 0:
            out = np.concatenate([out, part])
            continue
        theta = (np.arange(n) + 0.5) / n * (np.pi / 2)
        mixed = out[-n:] * np.cos(theta) + part[:n] * np.sin(theta)
        out = np.concatenate([out[:-n], mixed, part[n:]])
    return out


def _room_tone(buf: PieceAudio, n: int, *, overlap: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of the piece's own room tone: its quietest stretch, tiled with crossfades if short."""
    x, rate = buf.x, buf.rate
    frame = max(1, round(FRAME_S * rate))
    width = int(min(max(n + overlap, 4 * frame), round(PAD_SOURCE_MAX_S * rate), x.shape[0]))
    width = max(width, 1)
    step = max(1, frame // 2)
    starts = np.arange(0, x.shape[0] - width + 1, step)
    power = (buf.cumsq[starts + width] - buf.cumsq[starts]) / width
    begin = int(starts[int(np.argmin(power))])
    chunk = x[begin : begin + width]
    if width >= n:
        return chunk[:n].copy()
    overlap = min(overlap, width // 2)
    tiles: list[np.ndarray] = []
    total = 0
    while total < n + overlap:
        tile = chunk[::-1] if rng.random() < 0.5 else chunk
        tiles.append(tile)
        total += tile.shape[0] - (overlap if len(tiles) > 1 else 0)
    return _xfade_concat(tiles, overlap)[:n]


def _level_db(x: np.ndarray) -> float:
    power = float(np.mean(np.square(x))) if x.size else 0.0
    return 10.0 * math.log10(max(power, 1e-15))


def _assemble(
    buffers: list[PieceAudio],
    *,
    plan: ClipPlan,
    spec: FamilySpec,
    rate: int,
    rng: np.random.Generator,
    notes: list[str],
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Steps 2-4: the clip's audio and its source spans (one more per shortened pause than pieces)."""
    d = spec.delivery
    overlap = round(d.fade_s * rate)
    e_min = round(d.edge_room_tone_s.min * rate)
    e_max = round(d.edge_room_tone_s.max * rate)
    pause_t = round(spec.join_s * rate)
    pair_total = pause_t + overlap  # two kept halves overlap by one crossfade
    pair_max = max(e_min, pair_total - e_min)

    # 3. long pauses: keep (left, right) halves that share the pause target
    kept: list[list[tuple[int, int]]] = []
    content = 0
    for buf in buffers:
        spans: list[tuple[int, int]] = []
        cursor = buf.start
        for ps, pe in ((buf.at(s), buf.at(e)) for s, e in buf.piece.long_pauses):
            if pe - ps < pair_total:
                notes.append(
                    f"{buf.piece.path}: pause {buf.time(ps):.2f}-{buf.time(pe):.2f} s is "
                    f"already within {pause_t / rate:.2f} s; kept as it is"
                )
                continue
            left = _side_cost(buf, ps, lead=False, avail=pe - ps)
            right = _side_cost(buf, pe, lead=True, avail=pe - ps)
            lo = min(e_min, pair_total // 2)
            keep_l, keep_r = _split(left, right, total=pair_total, lo=lo, hi=pair_total - lo, rate=rate)
            spans.append((cursor, ps + keep_l))
            cursor = pe - keep_r
        spans.append((cursor, buf.end))
        kept.append(spans)
        content += sum(b - a for a, b in spans) - overlap * (len(spans) - 1)

    lead_room = [b.start for b in buffers]
    tail_room = [b.x.shape[0] - b.end for b in buffers]
    leads = [_side_cost(b, b.start, lead=True, avail=n) for b, n in zip(buffers, lead_room, strict=True)]
    tails = [_side_cost(b, b.end, lead=False, avail=n) for b, n in zip(buffers, tail_room, strict=True)]
    lead_len = [0] * len(buffers)
    tail_len = [0] * len(buffers)

    # 4. joins: tail of piece i + lead of piece i+1 make one pause target
    for i in range(len(buffers) - 1):
        tail_len[i], lead_len[i + 1] = _split(
            tails[i], leads[i + 1], total=pair_total, lo=e_min, hi=pair_max, rate=rate
        )
    content += (len(buffers) - 1) * pause_t

    # 2. edges: the clip's first lead and last tail share the plan's edge budget
    budget = round(plan.duration_s * rate) - content
    clamped = min(max(budget, 2 * e_min), 2 * e_max)
    if clamped != budget:
        notes.append(
            f"the plan's duration ({plan.duration_s:.3f} s) leaves {budget / rate:.3f} s for the two edges; "
            f"used {clamped / rate:.3f} s (edge room tone is {d.edge_room_tone_s.min:g}-"
            f"{d.edge_room_tone_s.max:g} s per end)"
        )
    lead_len[0], tail_len[-1] = _split(leads[0], tails[-1], total=clamped, lo=e_min, hi=e_max, rate=rate)

    parts: list[np.ndarray] = []
    segments: list[dict[str, Any]] = []
    for i, buf in enumerate(buffers):
        spans = list(kept[i])
        pad_lead = lead_len[i] - lead_room[i]
        pad_tail = tail_len[i] - tail_room[i]
        first_a = buf.start - min(lead_len[i], lead_room[i])
        last_b = buf.end + min(tail_len[i], tail_room[i])
        spans[0] = (first_a, spans[0][1])
        spans[-1] = (spans[-1][0], last_b)
        speech_db = _level_db(buf.x[buf.start : buf.end])
        if pad_lead > 0:
            pad = _room_tone(buf, pad_lead + overlap, overlap=overlap, rng=rng)
            parts.append(pad)
            notes.append(_pad_note(buf, "before the first word", lead_room[i], pad, speech_db))
        for a, b in spans:
            parts.append(buf.x[a:b])
            segments.append(
                {
                    "path": buf.piece.path,
                    "start_s": round(buf.time(a), 4),
                    "end_s": round(buf.time(b), 4),
                }
            )
        if pad_tail > 0:
            pad = _room_tone(buf, pad_tail + overlap, overlap=overlap, rng=rng)
            parts.append(pad)
            notes.append(_pad_note(buf, "after the last word", tail_room[i], pad, speech_db))
    return _xfade_concat(parts, overlap), segments


def _pad_note(buf: PieceAudio, where: str, avail: int, pad: np.ndarray, speech_db: float) -> str:
    below, rate = speech_db - _level_db(pad), buf.rate
    note = (
        f"{buf.piece.path}: only {avail / rate:.2f} s of room {where}; padded with "
        f"{pad.shape[0] / rate:.2f} s of the recording's own quietest room tone ({below:.0f} dB under speech)"
    )
    if below < PAD_LOUD_WARN_DB:
        note += "; that room tone is not much quieter than the speech"
    return note


# --------------------------------------------------------------------------------------------------------
# filters, denoising, rate, fades
# --------------------------------------------------------------------------------------------------------


def _highpass(x: np.ndarray, rate: int) -> np.ndarray:
    """DC and rumble out: the high-pass the measures of noise assume (``analysis.energy.HIGHPASS_HZ``),
    run forwards and backwards."""
    sos = highpass_sos(rate)
    if x.shape[0] <= 3 * (2 * sos.shape[0] + 1):
        return x - x.mean()
    return filters.sosfiltfilt(sos, x)


def _dnsmos_of(x: np.ndarray, rate: int, target_lufs: float) -> dict[str, float] | None:
    """DNSMOS of ``x`` at 16 kHz, scaled to ``target_lufs`` first so both versions are judged alike."""
    from pipeline.analysis.dnsmos import dnsmos

    x16 = resample(x.astype(np.float32), in_rate=rate, out_rate=ANALYSIS_RATE).astype(np.float64)
    m = integrated_loudness(x16, sample_rate=ANALYSIS_RATE, true_peak=False).metrics.get("lufs")
    if m is not None:
        x16 = x16 * 10.0 ** ((target_lufs - m) / 20.0)
    scores = dnsmos(np.clip(x16, -1.0, 1.0).astype(np.float32)).metrics
    if any(scores.get(k) is None for k in ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")):
        return None
    return {k: round(float(scores[f"dnsmos_{k}"]), 3) for k in ("sig", "bak", "ovrl")}


def _denoise(x: np.ndarray, rate: int, strength: float) -> np.ndarray:
    import noisereduce

    y = noisereduce.reduce_noise(y=x.astype(np.float32), sr=rate, stationary=False, prop_decrease=strength)
    return np.asarray(y, dtype=np.float64)[: x.shape[0]]


def _try_denoise(
    x: np.ndarray, rate: int, *, target_lufs: float, notes: list[str]
) -> tuple[np.ndarray, bool, dict[str, float] | None, dict[str, float] | None]:
    """Denoise at each of :data:`DENOISE_STRENGTHS` until DNSMOS says it helps; else keep ``x``.

    Returns the audio, whether it is the denoised one, and the DNSMOS scores before and after (the
    kept version, or the best-scoring attempt when none was kept).
    """
    before = _dnsmos_of(x, rate, target_lufs)
    if before is None:
        notes.append("denoising skipped: DNSMOS could not score the clip")
        return x, False, None, None
    best: dict[str, float] | None = None
    for strength in DENOISE_STRENGTHS:
        candidate = _denoise(x, rate, strength)
        after = _dnsmos_of(candidate, rate, target_lufs)
        if after is None:
            continue
        if best is None or after["ovrl"] > best["ovrl"]:
            best = after
        verdict = (
            f"DNSMOS OVRL {before['ovrl']:.2f} -> {after['ovrl']:.2f}, SIG {before['sig']:.2f} -> "
            f"{after['sig']:.2f} (noisereduce prop_decrease {strength:g})"
        )
        if (
            after["ovrl"] - before["ovrl"] >= DENOISE_MIN_OVRL_GAIN
            and after["sig"] >= before["sig"] - DENOISE_MAX_SIG_DROP
        ):
            notes.append(f"denoised: {verdict}")
            return candidate, True, before, after
        notes.append(f"denoising not kept: {verdict}")
    return x, False, before, best


def _clip_bandwidth(x: np.ndarray, rate: int) -> float | None:
    """Effective bandwidth of the clip's speech frames, measured as the fast pass does for a recording."""
    x32 = x.astype(np.float32)
    x16 = resample(x32, in_rate=rate, out_rate=ANALYSIS_RATE)
    levels = frame_db(frame_power(x16))
    raw = webrtc_vad(x16)
    n = min(levels.shape[0], raw.shape[0])
    mask = speech_mask(levels[:n], raw[:n])
    meter = BandwidthMeter(sample_rate=rate)
    meter.process(x32)
    value = meter.finish(speech_mask=mask if mask.any() else None).metrics.get("bandwidth_hz")
    return None if value is None else float(value)


def _choose_rate(plan: ClipPlan, spec: FamilySpec, x: np.ndarray, rate: int, notes: list[str]) -> int:
    """``high_sample_rate`` when the source has real content above ``high_rate_above_hz``, else the base."""
    d = spec.delivery
    if d.high_sample_rate is None:
        return d.sample_rate
    bandwidth = plan.measures.get("bandwidth_hz")
    if bandwidth is None:
        if rate / 2 <= d.high_rate_above_hz:
            return d.sample_rate  # nothing above high_rate_above_hz can exist at this rate
        bandwidth = _clip_bandwidth(x, rate)
        if bandwidth is None:
            notes.append("bandwidth not measurable on the clip; delivered at the base rate")
            return d.sample_rate
        notes.append(f"bandwidth measured on the clip: {bandwidth:.0f} Hz")
    return d.high_sample_rate if float(bandwidth) > d.high_rate_above_hz else d.sample_rate


def _fade_ends(x: np.ndarray, n: int) -> np.ndarray:
    n = min(n, x.shape[0] // 2)
    if n <= 0:
        return x
    ramp = np.sin((np.arange(n) / n) * (np.pi / 2)) ** 2  # raised cosine: starts at exactly 0
    y = x.copy()
    y[:n] *= ramp
    y[-n:] *= ramp[::-1]
    return y


# --------------------------------------------------------------------------------------------------------
# loudness and true-peak limiting
# --------------------------------------------------------------------------------------------------------


def _peak_envelope(x: np.ndarray) -> np.ndarray:
    """Per-sample bound of ``|x|`` including the 4x-interpolated values on both sides of each sample."""
    n = x.shape[0]
    env = np.empty(n, dtype=np.float64)
    # In blocks with a margin wider than the interpolation filter (10 input samples each side): the same
    # values as one pass, without four whole-clip copies at 4x the rate (180 MB for 30 s at 48 kHz);
    # 16384 samples: about 2 MB of working arrays per block.
    for a in range(0, n, _ENVELOPE_BLOCK):
        b = min(a + _ENVELOPE_BLOCK, n)
        lo, hi = max(a - _ENVELOPE_MARGIN, 0), min(b + _ENVELOPE_MARGIN, n)
        over = np.abs(filters.upsample_poly(x[lo:hi], 4))
        part = maximum_filter1d(over, size=9, mode="nearest")[::4]
        np.maximum(part[a - lo : b - lo], np.abs(x[a:b]), out=env[a:b])
    return env


_ENVELOPE_BLOCK = 1 << 14
_ENVELOPE_MARGIN = 64


def _limit(
    x: np.ndarray, rate: int, ceiling_db: float, *, envelope: np.ndarray | None = None, scale: float = 1.0
) -> tuple[np.ndarray, float]:
    """Look-ahead limiter: a smooth gain curve that keeps every (true) peak under ``ceiling_db``.

    The needed gain per sample is spread by a minimum filter of half-width ``2h`` and smoothed by two
    boxes of half-width ``h``; every sample's smoothed gain is an average of minima that include that
    sample's own need, so no peak escapes, and the gain moves in 16 ms raised ramps (no clicks).
    ``envelope`` (with ``scale``): ``x`` is ``scale`` times audio whose :func:`_peak_envelope` is known;
    the envelope is linear in the gain, so it is scaled instead of computed again.
    """
    ceiling = 10.0 ** (ceiling_db / 20.0)
    # One clip-long array from the envelope to the output (the same values as the plain expressions:
    # every step is elementwise or a filter that buffers its own lines): the render's peak memory.
    need = _peak_envelope(x) if envelope is None else np.multiply(envelope, scale)
    np.maximum(need, 1e-12, out=need)
    np.divide(ceiling, need, out=need)
    np.minimum(need, 1.0, out=need)
    if need.min() >= 1.0:
        return x, 0.0
    h = max(1, round(LIMITER_RAMP_S * rate))
    gain = need
    minimum_filter1d(gain, size=4 * h + 1, mode="nearest", output=gain)
    uniform_filter1d(gain, size=2 * h + 1, mode="nearest", output=gain)
    uniform_filter1d(gain, size=2 * h + 1, mode="nearest", output=gain)
    reduction = float(20.0 * np.log10(gain.min()))
    return np.multiply(x, gain, out=gain), reduction


def _normalise(
    x: np.ndarray, rate: int, *, target_lufs: float, tp_max: float, notes: list[str]
) -> tuple[np.ndarray, float]:
    """Gain to ``target_lufs`` with a true-peak limiter; returns the audio and the static gain (dB)."""
    first = integrated_loudness(x, sample_rate=rate).metrics
    if first.get("lufs") is None:
        notes.append("loudness not measurable (silent or too short): no gain applied")
        return x, 0.0
    gain_db = target_lufs - float(first["lufs"])
    ceiling_db = tp_max - LIMITER_MARGIN_DB
    reduction = 0.0
    y = x
    envelope = _peak_envelope(x)  # once: each try scales it (the 4x oversampling was most of a try)
    for _ in range(8):
        y = x  # the last try's output goes before the next one is made (one clip-long array less)
        scale = 10.0 ** (gain_db / 20.0)
        y = x * scale
        y, reduction = _limit(y, rate, ceiling_db, envelope=envelope, scale=scale)
        m = integrated_loudness(y, sample_rate=rate).metrics
        err = target_lufs - float(m["lufs"])
        over = float(m["true_peak_dbtp"]) - ceiling_db
        if over > 0.0:
            ceiling_db -= over + 0.01
        if abs(err) <= LOUDNESS_TOLERANCE_LU and over <= 0.0:
            break
        gain_db += err
    tp = float(m["true_peak_dbtp"])  # measured on this very ``y`` by the last try
    if tp > tp_max - 0.05:  # the limiter did not converge: fall back to plain gain reduction
        y = y * 10.0 ** ((tp_max - 0.05 - tp) / 20.0)
        notes.append(f"true peak {tp:.2f} dBTP after limiting; gain lowered by {tp - tp_max + 0.05:.2f} dB")
    if reduction < -0.05:
        notes.append(f"true-peak limiter: up to {-reduction:.1f} dB of gain reduction on the loudest peaks")
    if gain_db > 20.0:
        notes.append(f"{gain_db:.1f} dB of gain: the source is very quiet and its noise is raised as much")
    return y, gain_db


# --------------------------------------------------------------------------------------------------------
# render
# --------------------------------------------------------------------------------------------------------


def _check_args(plan: ClipPlan, denoise: object, seed: object, out_path: object) -> Path:
    if not plan.pieces:
        raise InvalidArgument("plan.pieces is empty: nothing to render")
    if denoise is not None and not isinstance(denoise, bool):
        raise InvalidArgument(f"denoise must be True, False or None, got {denoise!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidArgument(f"seed must be an int, got {seed!r}")
    if isinstance(out_path, bytes) or not isinstance(out_path, str | Path):
        raise InvalidArgument(f"out_path must be a str or Path, got {out_path!r}")
    return Path(out_path)


def render(
    plan: ClipPlan,
    spec: FamilySpec,
    out_path: Path,
    *,
    denoise: bool | None = None,
    seed: int = 0,
) -> RenderResult:
    """Render ``plan`` for the family ``spec`` into ``out_path`` (written atomically) and describe it.

    ``denoise=None`` follows ``spec.delivery.denoise_allowed``; ``True`` tries denoising even when the
    spec does not allow it, ``False`` never denoises. Denoised audio is kept only when DNSMOS OVRL rises
    by :data:`DENOISE_MIN_OVRL_GAIN` without SIG falling. ``seed`` makes room-tone padding reproducible.
    Raises :class:`~pipeline.errors.InvalidArgument` for a bad plan or argument and
    :class:`~pipeline.errors.AudioReadError` when a source cannot be read.
    """
    path = _check_args(plan, denoise, seed, out_path)
    d = spec.delivery
    rng = np.random.default_rng(seed)
    pause_mid = spec.join_s
    side_max = max(d.edge_room_tone_s.max, pause_mid + d.fade_s)

    # 1. read every piece at its native rate, mixed to mono
    raw = [read_piece(p, pad_s=side_max) for p in plan.pieces]
    rates = sorted({a.rate for a in raw})
    rate = rates[-1]
    buffers = [_at_rate(a, rate) for a in raw]
    del raw  # each piece is in ``buffers`` at the working rate now
    notes: list[str] = []

    # 2-4. cut, shorten pauses, join
    audio, segments = _assemble(buffers, plan=plan, spec=spec, rate=rate, rng=rng, notes=notes)
    pieces = len(buffers)
    del buffers  # the pieces (and their energy sums) are in the clip now: their memory goes

    # 5. DC and rumble
    audio = _highpass(audio, rate)

    # the delivery rate follows the source's bandwidth, judged before any denoising
    out_rate = _choose_rate(plan, spec, audio, rate, notes)
    if len(rates) > 1:  # said after the delivery rate is known, so the note cannot read as the clip's rate
        joined = " and ".join(str(r) for r in rates)
        notes.insert(
            0, f"pieces at {joined} Hz were joined at {rate} Hz; the clip is delivered at {out_rate} Hz"
        )

    # 6. denoise only when it measurably helps
    denoised = False
    before = after = None
    if d.denoise_allowed if denoise is None else denoise:
        audio, denoised, before, after = _try_denoise(audio, rate, target_lufs=d.target_lufs, notes=notes)

    # 7. delivery rate, then the clip's end fades
    audio = resample(audio.astype(np.float32), in_rate=rate, out_rate=out_rate).astype(np.float64)
    audio = _fade_ends(audio, round(d.fade_s * out_rate))

    # 8. loudness with a true-peak limit
    audio, gain_db = _normalise(
        audio, out_rate, target_lufs=d.target_lufs, tp_max=d.true_peak_max_dbtp, notes=notes
    )

    # 9. encode
    out = audio.astype(np.float32)
    if d.channels > 1:
        out = np.repeat(out[:, None], d.channels, axis=1)
    io.write(path, out, out_rate, format=d.format, subtype=d.subtype)
    written, written_rate = io.read(path)
    measured = integrated_loudness(written, sample_rate=written_rate).metrics
    return RenderResult(
        path=path,
        duration_s=round(written.shape[0] / written_rate, 6),
        sample_rate=written_rate,
        segments=segments,
        gain_db=round(gain_db, 3),
        lufs=None if measured.get("lufs") is None else round(float(measured["lufs"]), 3),
        true_peak_dbtp=None
        if measured.get("true_peak_dbtp") is None
        else round(float(measured["true_peak_dbtp"]), 3),
        denoised=denoised,
        dnsmos_before=before,
        dnsmos_after=after,
        pauses_shortened=len(segments) - pieces,
        notes=notes,
    )
