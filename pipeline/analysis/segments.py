"""Runs of continuous speech, pauses between them, and the speech summary of a recording.

A *run* is a stretch of speech whose internal silences are all shorter than ``min_pause_s`` (breaths and
the gaps between words belong to the run). A *pause* is a silence of at least ``min_pause_s`` between two
runs. Silence before the first and after the last speech is neither.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.analysis.base import Measurement

Span = tuple[float, float]

LONG_PAUSE_S = 2.0
"""Pauses longer than this are counted in ``pauses_over_2s``."""


def runs_and_pauses(segments: Sequence[Span], *, min_pause_s: float = 0.5) -> tuple[list[Span], list[Span]]:
    """Group speech segments into runs and list the pauses between the runs.

    ``segments`` are sorted, non-overlapping ``(start_s, end_s)`` spans (as :func:`pipeline.analysis.vad.segments_from_mask` gives).
    Gaps shorter than ``min_pause_s`` join their neighbours into one run; every gap of ``min_pause_s`` or
    more is a pause ``(start_s, end_s)``. Both lists are in time order; ``len(pauses) == len(runs) - 1``
    whenever there is speech.
    """
    runs: list[Span] = []
    pauses: list[Span] = []
    for start, end in segments:
        if runs and start - runs[-1][1] < min_pause_s:
            runs[-1] = (runs[-1][0], end)
            continue
        if runs:
            pauses.append((runs[-1][1], start))
        runs.append((start, end))
    return runs, pauses


def speech_metrics(segments: Sequence[Span], *, duration_s: float, min_pause_s: float = 0.5) -> Measurement:
    """Summarise speech segments of a recording of ``duration_s`` seconds.

    Keys: ``speech_s`` (total speech), ``speech_ratio`` (``speech_s / duration_s``), ``longest_run_s``,
    ``max_pause_s`` (0.0 with a single run; ``None`` with reason ``no_speech`` when there is no speech),
    ``pauses_over_2s`` (pauses longer than 2 s) and ``pauses`` (list of ``[start_s, end_s]``).
    """
    duration = float(duration_s)
    runs, pauses = runs_and_pauses(segments, min_pause_s=min_pause_s)
    speech_s = sum(end - start for start, end in segments)
    out = Measurement()
    out.put("speech_s", round(speech_s, 6))
    if duration > 0.0:
        out.put("speech_ratio", round(min(1.0, speech_s / duration), 6))
    else:
        out.put("speech_ratio", None, why="empty: the recording has zero duration")
    out.put("longest_run_s", round(max((end - start for start, end in runs), default=0.0), 6))
    if not runs:
        out.put("max_pause_s", None, why="no_speech: no speech was detected")
    else:
        out.put("max_pause_s", round(max((end - start for start, end in pauses), default=0.0), 6))
    out.put("pauses_over_2s", sum(1 for start, end in pauses if end - start > LONG_PAUSE_S))
    out.put("pauses", [[round(start, 6), round(end, 6)] for start, end in pauses])
    return out
