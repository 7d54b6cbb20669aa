"""Part boundaries: the pauses where a recording's conditions may change (a new take, another room, noise
that starts or stops).

A session often strings together parts recorded under different conditions. The fast measures cannot
hear every difference (local reverb, noise the VAD takes for speech, clipping below the recording's
peak), so a window that reaches over such a pause into a worse part can score as well as the window that
stays in the clean part, and non-maximum suppression then keeps only one of them: that is how the clean
part of the issue-8 session was lost. Selection makes a window pay for crossing a boundary
(:data:`~pipeline.selection.scoring.CROSSING_PENALTY`); this module says where the boundaries are.

A gap between two speech segments is a boundary when

* it is a pause of at least :data:`PART_PAUSE_S` (where recordings are most often stopped or edited), or
* the bandwidth changes near it (:func:`bandwidth_changes`: a band-limited part next to a full-band one), or
* the *floor* of the level changes across it by at least :data:`PART_FLOOR_JUMP_DB`: the
  :data:`PART_FLOOR_PERCENTILE` of the 50 ms level over :data:`PART_CONTEXT_S` on each side. Read speech
  pauses for more than 5 % of any 8 s, so the floor is the room tone; under continuous noise it is the
  noise, whatever the length of the pause (the VAD takes a noisy half of a pause for speech, so the pause
  between a clean part and a noisy one looks 0.5-0.8 s long).

Near a change several gaps show the jump (a side's floor drops only once it holds enough quiet frames),
so one boundary is kept per change, at the gap that separates the quiet side's own pauses from the
rest: for noise that stops, the first gap as quiet as the quieter side; for noise that starts, the last
one. Measured on 12 sessions, 7 selection recordings and 9 real readings (a sweep of contexts 3-10 s, the
minimum or the 5th/10th percentile, jumps of 10-15 dB): 16 of the 18 boundaries of a clean part whose
pause is under 1 s are found, and no pause inside clean speech is taken for one.
"""

from __future__ import annotations

import numpy as np

from pipeline.analysis.base import FRAME_S
from pipeline.selection.limits import MIN_EDGE_GAP_S

PART_PAUSE_S = 1.0
"""A pause at least this long is a part boundary."""

PART_FLOOR_JUMP_DB = 12.0
"""A change of the level floor across a pause that makes it a part boundary."""

PART_CONTEXT_S = 8.0
"""Seconds on each side of a pause whose level floor is compared."""

PART_FLOOR_SMOOTH_S = 0.05
"""The level is averaged (in power) over this long before its floor is taken."""

PART_FLOOR_PERCENTILE = 5.0
"""The floor of a side: this percentile of its smoothed level."""

QUIET_GAP_DB = 6.0
"""A gap is as quiet as a side when its level is at most this much above that side's floor."""

BANDWIDTH_CHANGE_RATIO = 1.6
"""Neighbouring bandwidth blocks this many times apart mark a change of microphone, channel or codec (a
phone call inside a studio recording: 4 vs 8 kHz; block figures of one real recording vary by at most 1.4
times, measured on six real recordings)."""

CHANGE_PAUSE_S = 0.5
"""Inside the span where a bandwidth change lies, the pauses at least this long (``min_pause_s`` of
every family: a pause that ends a run) are boundaries."""

MIN_PART_CONTEXT_S = 0.5
"""A side shorter than this (cut by the file's edge) is not compared."""

_POWER_FLOOR = 1e-12


def _level_db(frame_db: np.ndarray) -> np.ndarray:
    """The frame level averaged in power over :data:`PART_FLOOR_SMOOTH_S`: ``out[k]`` covers frames ``k..``."""
    width = max(round(PART_FLOOR_SMOOTH_S / FRAME_S), 1)
    power = np.concatenate([[0.0], np.cumsum(np.power(10.0, np.asarray(frame_db, dtype=np.float64) / 10.0))])
    return 10.0 * np.log10(np.maximum((power[width:] - power[:-width]) / width, _POWER_FLOOR))


def _percentile_of(level: np.ndarray, first: np.ndarray, length: np.ndarray, ctx: int) -> np.ndarray:
    """:data:`PART_FLOOR_PERCENTILE` (nearest rank) of ``level[first[g] : first[g] + length[g]]`` per ``g``."""
    out = np.zeros(first.size)
    full = np.flatnonzero(length == ctx)
    if full.size and level.size >= ctx:
        windows = np.lib.stride_tricks.sliding_window_view(level, ctx)
        k = round(PART_FLOOR_PERCENTILE / 100.0 * (ctx - 1))
        for chunk in np.array_split(full, max(1, full.size // 1024)):  # bounded memory
            out[chunk] = np.partition(windows[first[chunk]], k, axis=1)[:, k]
    for g in np.flatnonzero(length != ctx).tolist():  # sides cut by the file's edges
        part = level[first[g] : first[g] + length[g]]
        k = round(PART_FLOOR_PERCENTILE / 100.0 * (part.size - 1))
        out[g] = np.partition(part, k)[k]
    return out


def floor_changes(frame_db: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Per gap between consecutive segments (``starts``/``ends`` in seconds): a part boundary made by a
    change of the noise floor (see the module docstring), one per change."""
    n_gaps = max(starts.size - 1, 0)
    out = np.zeros(n_gaps, dtype=bool)
    level = _level_db(frame_db)
    if n_gaps == 0 or level.size == 0:
        return out
    ctx, least = round(PART_CONTEXT_S / FRAME_S), round(MIN_PART_CONTEXT_S / FRAME_S)
    gap_start = np.clip(np.rint(ends[:-1] / FRAME_S), 0, level.size).astype(np.int64)
    gap_end = np.clip(np.rint(starts[1:] / FRAME_S), 0, level.size).astype(np.int64)
    before_len, after_len = np.minimum(gap_start, ctx), np.minimum(level.size - gap_end, ctx)
    # Only pauses a window may start or end at can be boundaries (shorter ones lie inside words).
    ok = (
        (before_len >= least)
        & (after_len >= least)
        & (gap_end - gap_start >= round(MIN_EDGE_GAP_S / FRAME_S))
    )
    k = np.flatnonzero(ok)
    if k.size == 0:
        return out
    before = _percentile_of(level, gap_start[k] - before_len[k], before_len[k], ctx)
    after = _percentile_of(level, gap_end[k], after_len[k], ctx)
    raw = np.asarray(frame_db, dtype=np.float64)
    gap_db = np.array(
        [np.median(raw[a:b]) for a, b in zip(gap_start[k].tolist(), gap_end[k].tolist(), strict=True)]
    )
    jump = after - before
    changed = np.abs(jump) >= PART_FLOOR_JUMP_DB
    # Runs of neighbouring gaps that see the same change: one boundary each.
    m = 0
    while m < k.size:
        if not changed[m]:
            m += 1
            continue
        run = [m]
        while (
            run[-1] + 1 < k.size
            and changed[run[-1] + 1]
            and np.sign(jump[run[-1] + 1]) == np.sign(jump[m])
            and starts[k[run[-1] + 1]] - ends[k[run[-1]]] <= PART_CONTEXT_S
        ):
            run.append(run[-1] + 1)
        if jump[m] < 0:  # quieter after: the first gap as quiet as the after side
            quiet = [r for r in run if gap_db[r] <= after[r] + QUIET_GAP_DB]
            chosen = quiet[0] if quiet else run[-1]
        else:  # louder after: the last gap as quiet as the before side
            quiet = [r for r in run if gap_db[r] <= before[r] + QUIET_GAP_DB]
            chosen = quiet[-1] if quiet else run[0]
        out[k[chosen]] = True
        m = run[-1] + 1
    return out


def bandwidth_changes(
    block_bandwidth_hz: np.ndarray, starts: np.ndarray, ends: np.ndarray, *, block_s: float
) -> np.ndarray:
    """Per gap between consecutive segments: a part boundary made by a change of bandwidth.

    Two neighbouring measured blocks (``block_s`` long; NaN blocks are skipped) whose bandwidths differ by
    a factor of :data:`BANDWIDTH_CHANGE_RATIO` or more put the change somewhere in the span they cover;
    a block's figure is that of its widest speech, so where exactly is not known. Every pause of at least
    :data:`CHANGE_PAUSE_S` in that span is a boundary (the longest gap there when none is that long)."""
    n_gaps = max(starts.size - 1, 0)
    out = np.zeros(n_gaps, dtype=bool)
    bw = np.asarray(block_bandwidth_hz, dtype=np.float64).reshape(-1)
    measured = np.flatnonzero(np.isfinite(bw) & (bw > 0))
    if n_gaps == 0 or measured.size < 2:
        return out
    gap_start, gap_end = np.asarray(ends[:-1], dtype=np.float64), np.asarray(starts[1:], dtype=np.float64)
    length, middle = gap_end - gap_start, (gap_start + gap_end) / 2.0
    for a, b in zip(measured[:-1].tolist(), measured[1:].tolist(), strict=True):
        if max(bw[a], bw[b]) < BANDWIDTH_CHANGE_RATIO * min(bw[a], bw[b]):
            continue
        within = (middle >= a * block_s) & (middle <= (b + 1) * block_s) & (length >= MIN_EDGE_GAP_S)
        pauses = within & (length >= CHANGE_PAUSE_S)
        if pauses.any():
            out |= pauses
        elif within.any():
            out[np.flatnonzero(within)[np.argmax(length[within])]] = True
    return out


def boundaries(
    frame_db: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    *,
    block_bandwidth_hz: np.ndarray | None = None,
    block_s: float = 4.0,
) -> np.ndarray:
    """Per gap between consecutive segments: is it a part boundary (a long pause, a change of the noise
    floor, or a change of bandwidth between the ``block_s`` blocks of ``block_bandwidth_hz``)?"""
    gaps = np.asarray(starts[1:], dtype=np.float64) - np.asarray(ends[:-1], dtype=np.float64)
    out = (gaps >= PART_PAUSE_S - 1e-9) | floor_changes(frame_db, starts, ends)
    if block_bandwidth_hz is not None:
        out |= bandwidth_changes(block_bandwidth_hz, starts, ends, block_s=block_s)
    return out
