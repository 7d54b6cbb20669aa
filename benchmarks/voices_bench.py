"""What simple detectors built on :mod:`pipeline.analysis.speaker` achieve on the known-answer cases of
``benchmarks/voices_items.py``: another voice in a window, a wrong-speaker file, a two-person interview.

Only the existing functions are used (:func:`~pipeline.analysis.speaker.partial_embeddings` with 1.6 s
partials every :data:`STEP_S`, :func:`~pipeline.analysis.speaker.embed`, :func:`~pipeline.analysis.speaker.cosine`);
the rules are measured here so the pipeline can take the best one with its margins:

* **other voice** (216 windows with another voice >= 2 s, 144 of one speaker; clean, noise 5-20 dB, rooms):
  each partial's cosine to a reference voice, three references: ``clean_ref`` (the target's held-out clean
  material), ``same_ref`` (the held-out material recorded the same way as the window: the speaker's own
  voice in that room/noise, what a folder's dominant voice is when the files share the conditions) and
  ``self`` (the window's own dominant voice: the mean of its partials, refined once on the closer half;
  no reference at all). Rules: a window is flagged when at least ``N`` consecutive partials score below a
  threshold, absolute (``cos < T``) or relative to the window's median (``cos < median - d``). Every rule
  of the grid is scored; the best (most caught with <= 2 % false alarms) and its plateau (thresholds that
  meet both targets) are reported;
* **wrong speaker** (folders of 3-5 own files, half recorded differently, with or without one file of
  someone else): each file's embedding against the mean of the folder's other files (leave one out);
  rules ``c < F`` (floor), ``c < median - k`` (relative) and both;
* **interviews** (36, host and guest alternating, 60-120 s): the recording's dominant voice (partials'
  mean refined on the closer half, twice), partials labelled host by the best other-voice rule's form, then
  the clip a selection could make: the longest run of host partials (its span trimmed by
  :data:`EDGE_TRIM_S`) must hold no guest turn. ``--run-pipeline`` instead runs ``voiceprep run`` on the
  interviews written as folders (``--pipeline-root`` points at the worktree whose ``pipeline`` to use) and
  checks the chosen clip's pieces against the host's turns; ``--pipeline-rule`` measures the other-voice
  rule of a ``pipeline/analysis/voice.py`` (the pipeline's own) on the same windows.

``--model campplus`` measures the same with the CAM++ embeddings of :mod:`pipeline.analysis.campplus`
(partials of ``--partial-s`` seconds, ``--pooling separate`` or ``shared``). For shorter runs: ``--only``
some parts, ``--every N`` (every N-th window and interview), ``--step-s`` (partial spacing), and
``--file-max-s`` (seconds embedded of each folder file).

Prints the figures, writes ``benchmarks/results/voices.json`` (``voices-campplus.json`` for CAM++).
Takes 3-4 minutes on two shared cores (GE2E; CAM++ 1.5 s partials about 5).

Usage::

    python benchmarks/voices_bench.py [--seed 0] [--out PATH]
    python benchmarks/voices_bench.py --model campplus [--partial-s 1.5] [--pooling separate] [--every 2]
    python benchmarks/voices_bench.py --run-pipeline [--pipeline-root /work/wt-i9-voices] [--family cosyvoice] [--limit N] [--only NAME ...]
    python benchmarks/voices_bench.py --pipeline-rule [--pipeline-root /work/wt-i9-voices]
    python benchmarks/voices_bench.py --turns-cosine [--pipeline-root /work/wt-i9-voices] [--every 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import voices_items as vi  # noqa: E402
from pipeline.analysis import campplus  # noqa: E402
from pipeline.analysis import ge2e as speaker  # noqa: E402  (the default model; --model campplus swaps it)

RESULTS = ROOT / "benchmarks" / "results"
STEP_S = 0.5
"""Partial spacing (s) along windows and interviews."""
REFERENCE_MAX_S = 30.0
"""A reference voice is embedded from at most this much of the held-out material."""
INSIDE = 0.8
"""A partial is the other voice's when at least this share of its time lies in the other voice's span."""
CAUGHT_TARGET = 0.95
FALSE_ALARM_TARGET = 0.02
EDGE_TRIM_S = 0.25
ABS_THRESHOLDS = np.round(np.arange(-0.20, 0.90, 0.01), 2)
"""Down to -0.2: CAM++ cosines are not clipped at 0 and other voices score near 0 (GE2E's lie in [0, 1])."""
REL_THRESHOLDS = np.round(np.arange(0.05, 0.50, 0.01), 2)
RUNS = (1, 2, 3, 4, 5, 6)
FILE_MAX_S: float | None = None
"""Wrong-speaker folders: embed at most this many seconds of each file (``--file-max-s``; default all)."""
EVERY = 1
"""Only every N-th window and interview (``--every``)."""
PARTS = ("other_voice", "wrong_speaker", "interviews")
"""What ``--only`` may name (without ``--run-pipeline``, where it names interviews)."""


class CamPlusPlus:
    """:mod:`pipeline.analysis.campplus` under the names this benchmark calls, partial length fixed."""

    def __init__(self, partial_s: float, pooling: str = "separate") -> None:
        self.partial_s = partial_s
        self.pooling = pooling

    @staticmethod
    def embed(audio16k: np.ndarray) -> np.ndarray:
        """The CAM++ embedding of a whole signal."""
        return campplus.embed(audio16k)

    def partial_embeddings(self, audio16k: np.ndarray, step_s: float) -> speaker.Partials:
        """CAM++ partials of :attr:`partial_s` every ``step_s``."""
        return campplus.partial_embeddings(
            audio16k, step_s=step_s, partial_s=self.partial_s, pooling=self.pooling
        )

    cosine = staticmethod(campplus.cosine)


def _r(value: float) -> float:
    return round(float(value), 3)


def dominant_voice(vectors: np.ndarray, rounds: int = 1) -> np.ndarray:
    """The dominant voice of a set of partials: their mean, then ``rounds`` times the mean of the half
    closest to it (another voice holding less than half of the partials drops out)."""
    mean = speaker.unit(vectors.mean(axis=0))
    for _ in range(rounds):
        cos = vectors @ mean
        mean = speaker.unit(vectors[cos >= np.median(cos)].mean(axis=0))
    return mean


def longest_low_run(low: np.ndarray) -> int:
    """Length of the longest run of ``True`` in a bool array."""
    best = run = 0
    for value in low:
        run = run + 1 if value else 0
        best = max(best, run)
    return best


# ----------------------------------------------------------------------------------------------------------
# 1. another voice in a window


class References:
    """Reference voices of the targets: clean held-out material, and the same recorded like a window."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    def get(self, target: str, condition: str) -> np.ndarray:
        """The target's held-out reference voice recorded as ``condition`` (cached)."""
        key = (target, condition)
        if key not in self._cache:
            x = vi.joined(target, "reference")[: round(REFERENCE_MAX_S * vi.RATE)]
            y = vi.degrade(x, condition, vi._rng(self._seed, "reference", target, condition))
            self._cache[key] = speaker.embed(y)
        return self._cache[key]


def window_scores(item: vi.Item, refs: References) -> dict[str, Any]:
    """Partial cosines of one window against the three references, and which partials are the other voice's."""
    p = speaker.partial_embeddings(item.audio, step_s=STEP_S)
    share = np.array(
        [
            vi.overlap_s((s, e), item.spans) / max(e - s, 1e-9)
            for s, e in zip(p.starts_s, p.ends_s, strict=True)
        ]
    )
    return {
        "cos": {
            "clean_ref": np.atleast_1d(speaker.cosine(p.vectors, refs.get(item.target, "clean"))),
            "same_ref": np.atleast_1d(speaker.cosine(p.vectors, refs.get(item.target, item.condition))),
            "self": p.vectors @ dominant_voice(p.vectors),
        },
        "other": share >= INSIDE,
        "target": share == 0,
        "starts_s": p.starts_s,
        "ends_s": p.ends_s,
        "vectors": p.vectors,
    }


def _flags(scores: list[dict[str, Any]], reference: str, mode: str, threshold: float) -> np.ndarray:
    """Longest run of low partials per window for one reference and threshold."""
    runs = []
    for s in scores:
        cos = s["cos"][reference]
        low = cos < threshold if mode == "abs" else cos < np.median(cos) - threshold
        runs.append(longest_low_run(low))
    return np.array(runs)


def rule_grid(positives: list[dict], negatives: list[dict]) -> dict[str, Any]:
    """Every rule (reference x absolute/relative x threshold x run length): caught and false-alarm rates;
    per reference and mode, the best rule and its plateau."""
    out: dict[str, Any] = {}
    for reference in ("clean_ref", "same_ref", "self"):
        for mode, grid in (("abs", ABS_THRESHOLDS), ("rel", REL_THRESHOLDS)):
            rows = []
            for threshold in grid:
                pos = _flags(positives, reference, mode, float(threshold))
                neg = _flags(negatives, reference, mode, float(threshold))
                for n in RUNS:
                    rows.append((float(threshold), n, float(np.mean(pos >= n)), float(np.mean(neg >= n))))
            ok = [r for r in rows if r[3] <= FALSE_ALARM_TARGET]
            best = max(ok, key=lambda r: (r[2], -r[3])) if ok else min(rows, key=lambda r: r[3])
            meeting = [
                r for r in rows if r[2] >= CAUGHT_TARGET and r[3] <= FALSE_ALARM_TARGET and r[1] == best[1]
            ]
            out[f"{reference}:{mode}"] = {
                "best": {
                    "threshold": best[0],
                    "run": best[1],
                    "caught": _r(best[2]),
                    "false_alarms": _r(best[3]),
                },
                "plateau_at_best_run": [min(r[0] for r in meeting), max(r[0] for r in meeting)]
                if meeting
                else None,
                "rules_meeting_targets": sum(
                    r[2] >= CAUGHT_TARGET and r[3] <= FALSE_ALARM_TARGET for r in rows
                ),
            }
    return out


def _breakdown(
    positives: list[dict], items: list[vi.Item], reference: str, mode: str, threshold: float, run: int
) -> dict[str, Any]:
    """Caught rate of one rule by duration, position, pairing and condition kind; the missed windows."""
    runs = _flags(positives, reference, mode, threshold)
    caught = runs >= run
    table: dict[str, dict[str, float]] = {}
    for key, value_of in (
        ("duration_s", lambda it: f"{it.params['duration_s']:g}"),
        ("position", lambda it: it.params["position"]),
        ("pairing", lambda it: it.params["pairing"]),
        ("condition", lambda it: it.condition.split(":")[0]),
        ("target", lambda it: it.target),
    ):
        groups: dict[str, list[bool]] = {}
        for it, c in zip(items, caught, strict=True):
            groups.setdefault(value_of(it), []).append(bool(c))
        table[key] = {k: _r(np.mean(v)) for k, v in sorted(groups.items())}
    table["missed"] = [
        it.name + f" ({it.other}, {it.condition})" for it, c in zip(items, caught, strict=True) if not c
    ]
    return table


def partial_distributions(positives: list[dict], negatives: list[dict]) -> dict[str, Any]:
    """Percentiles of partial cosines: the target's (one-speaker windows and target partials of the others)
    against the other voice's partials, per reference."""
    out = {}
    for reference in ("clean_ref", "same_ref", "self"):
        own = np.concatenate([s["cos"][reference][s["target"]] for s in positives + negatives])
        other = np.concatenate([s["cos"][reference][s["other"]] for s in positives])
        own_rel = np.concatenate(
            [s["cos"][reference][s["target"]] - np.median(s["cos"][reference]) for s in positives + negatives]
        )
        other_rel = np.concatenate(
            [s["cos"][reference][s["other"]] - np.median(s["cos"][reference]) for s in positives]
        )
        out[reference] = {
            "target_partials": int(own.size),
            "other_partials": int(other.size),
            "target_p1": _r(np.percentile(own, 1)),
            "target_p5": _r(np.percentile(own, 5)),
            "target_median": _r(np.median(own)),
            "other_median": _r(np.median(other)),
            "other_p95": _r(np.percentile(other, 95)),
            "other_p99": _r(np.percentile(other, 99)),
            "relative_to_window_median": {
                "target_p5": _r(np.percentile(own_rel, 5)),
                "other_p95": _r(np.percentile(other_rel, 95)),
            },
        }
    return out


def other_voice(seed: int) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Build the windows, score them, and measure the rules; also the one-speaker windows' partials."""
    started = time.perf_counter()
    positives_items = vi.other_voice_windows(seed)[::EVERY]
    negatives_items = vi.one_speaker_windows(seed)[::EVERY]
    build_s = time.perf_counter() - started
    refs = References(seed)
    started = time.perf_counter()
    positives = [window_scores(it, refs) for it in positives_items]
    negatives = [window_scores(it, refs) for it in negatives_items]
    score_s = time.perf_counter() - started
    grid = rule_grid(positives, negatives)
    best_key = max(
        grid, key=lambda k: (grid[k]["best"]["false_alarms"] <= FALSE_ALARM_TARGET, grid[k]["best"]["caught"])
    )
    best = grid[best_key]["best"]
    reference, mode = best_key.split(":")
    result = {
        "windows_with_other_voice": len(positives),
        "one_speaker_windows": len(negatives),
        "conditions": sorted({it.condition.split(":")[0] for it in positives_items + negatives_items}),
        "partials": partial_distributions(positives, negatives),
        "rules": grid,
        "best_rule": {"reference": reference, "mode": mode, **best},
        "best_rule_breakdown": _breakdown(
            positives, positives_items, reference, mode, best["threshold"], best["run"]
        ),
        "best_rule_false_alarms": [
            it.name + f" ({it.condition})"
            for it, r in zip(
                negatives_items, _flags(negatives, reference, mode, best["threshold"]), strict=True
            )
            if r >= best["run"]
        ],
        "seconds_build": _r(build_s),
        "seconds_per_window_partials": _r(score_s / (len(positives) + len(negatives))),
    }
    return result, [s["vectors"] for s in negatives]


# ----------------------------------------------------------------------------------------------------------
# 2. wrong speaker in a folder


def folder_scores(folder: vi.Folder, cache: dict[tuple[str, str, str], np.ndarray]) -> dict[str, np.ndarray]:
    """Per file of a folder: ``loo``, its embedding's cosine to the normalised mean of the other files
    (leave one out), and ``nearest``, its highest cosine to any other file. Embeddings are cached by file
    name, voice and condition (folders share their files' versions)."""
    for f in folder.files:
        if (f.name, f.voice, f.condition) not in cache:
            audio = f.audio if FILE_MAX_S is None else f.audio[: round(FILE_MAX_S * vi.RATE)]
            cache[(f.name, f.voice, f.condition)] = speaker.embed(audio)
    vectors = np.stack([cache[(f.name, f.voice, f.condition)] for f in folder.files])
    total = vectors.sum(axis=0)
    pairs = vectors @ vectors.T
    np.fill_diagonal(pairs, -1.0)
    return {
        "loo": np.array([float(speaker.cosine(v, speaker.unit(total - v))) for v in vectors]),
        "nearest": pairs.max(axis=1),
    }


def _folder_rules(
    own: np.ndarray, own_gap: np.ndarray, wrong: np.ndarray, wrong_gap: np.ndarray
) -> dict[str, Any]:
    """Floor (``c < F``), relative (``median - c > k``) and either: the best setting with <= 2 % of own
    files excluded, and the settings that exclude every wrong file within it."""

    def rates(exclude: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> tuple[float, float]:
        return float(np.mean(exclude(wrong, wrong_gap))), float(np.mean(exclude(own, own_gap)))

    rules: dict[str, Any] = {}
    for name, params, make in (
        ("floor", [(f,) for f in np.round(np.arange(-0.20, 0.95, 0.01), 2)], lambda f: lambda c, g: c < f),
        ("relative", [(k,) for k in np.round(np.arange(0.0, 0.40, 0.01), 2)], lambda k: lambda c, g: g > k),
        (
            "floor_or_relative",
            [
                (f, k)
                for f in np.round(np.arange(0.00, 0.80, 0.01), 2)
                for k in np.round(np.arange(0.05, 0.35, 0.01), 2)
            ],
            lambda f, k: lambda c, g: (c < f) | (g > k),
        ),
    ):
        rows = [(p, *rates(make(*p))) for p in params]
        ok = [r for r in rows if r[2] <= FALSE_ALARM_TARGET]
        best = max(ok, key=lambda r: (r[1], -r[2])) if ok else min(rows, key=lambda r: r[2])
        meeting = [r[0] for r in rows if r[1] >= 1.0 and r[2] <= FALSE_ALARM_TARGET]
        rules[name] = {
            "best": {
                "params": [float(v) for v in best[0]],
                "wrong_excluded": _r(best[1]),
                "own_excluded": _r(best[2]),
            },
            "settings_meeting_targets": len(meeting),
            "range_meeting_targets": [[float(v) for v in meeting[0]], [float(v) for v in meeting[-1]]]
            if meeting
            else None,
        }
    return rules


def wrong_speaker_scenario(seed: int, clean_share: float, cache: dict) -> dict[str, Any]:
    """Folders with own files clean with probability ``clean_share``: distributions and rules per measure."""
    folders = vi.wrong_speaker_folders(seed, clean_share=clean_share)
    started = time.perf_counter()
    scores = [folder_scores(f, cache) for f in folders]
    seconds = time.perf_counter() - started
    out: dict[str, Any] = {
        "folders": len(folders),
        "folders_with_wrong_file": sum(f.wrong is not None for f in folders),
        "own_files": sum(x.own for f in folders for x in f.files),
        "own_files_recorded_differently": sum(
            x.own and x.condition != "clean" for f in folders for x in f.files
        ),
        "seconds_per_folder": _r(seconds / len(folders)),
    }
    for measure in ("loo", "nearest"):
        own, own_gap, wrong, wrong_gap = [], [], [], []
        lowest = []
        per_condition: dict[tuple[bool, str], list[float]] = {}
        for folder, sc in zip(folders, scores, strict=True):
            c = sc[measure]
            median = float(np.median(c))
            for value, file in zip(c, folder.files, strict=True):
                (own if file.own else wrong).append(float(value))
                (own_gap if file.own else wrong_gap).append(median - float(value))
                kind = "room+noise" if "+" in file.condition else file.condition.split(":")[0]
                per_condition.setdefault((file.own, kind), []).append(float(value))
            if folder.wrong is not None:
                lowest.append(not folder.files[int(np.argmin(c))].own)
        o, w = np.array(own), np.array(wrong)
        out[measure] = {
            "own": {"min": _r(o.min()), "p2": _r(np.percentile(o, 2)), "median": _r(np.median(o))},
            "wrong": {"median": _r(np.median(w)), "max": _r(w.max())},
            "wrong_is_lowest_of_its_folder": _r(np.mean(lowest)),
            "by_condition": {
                f"{'own' if is_own else 'wrong'}:{kind}": {
                    "files": len(v),
                    "min": _r(min(v)),
                    "max": _r(max(v)),
                }
                for (is_own, kind), v in sorted(per_condition.items())
            },
            "rules": _folder_rules(o, np.array(own_gap), w, np.array(wrong_gap)),
        }
    return out


def wrong_speaker(seed: int) -> dict[str, Any]:
    """The wrong-speaker folders twice: own files half recorded differently (``mixed``), and all clean."""
    cache: dict[tuple[str, str, str], np.ndarray] = {}
    return {
        "mixed": wrong_speaker_scenario(seed, 0.5, cache),
        "clean": wrong_speaker_scenario(seed, 1.0, cache),
        "file_embeddings": len(cache),
    }


# ----------------------------------------------------------------------------------------------------------
# 3. interviews


HOST_MARGIN = 0.10
"""A partial is the host's when its cosine to the host's centroid beats the guest's by this much."""
HOST_ERODE = 2
"""Partials dropped at each end of a run of host partials (0.5 s each): the turn changes."""
MIN_RUN_S = 3.0
"""A run of host partials shorter than this is not used."""


def two_voices(vectors: np.ndarray, iterations: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Two centroids of a recording's partials (spherical 2-means started from the dominant voice and the
    mean of the 20 % of partials farthest from it): ``(dominant, other)``, dominant = more partials."""
    first = dominant_voice(vectors, rounds=2)
    cos = vectors @ first
    second = speaker.unit(vectors[cos <= np.percentile(cos, 20)].mean(axis=0))
    for _ in range(iterations):
        near_first = vectors @ first >= vectors @ second
        if near_first.all() or not near_first.any():
            break
        first, second = (
            speaker.unit(vectors[near_first].mean(axis=0)),
            speaker.unit(vectors[~near_first].mean(axis=0)),
        )
    near_first = vectors @ first >= vectors @ second
    return (first, second) if near_first.sum() >= (~near_first).sum() else (second, first)


def host_runs(
    starts_s: np.ndarray,
    ends_s: np.ndarray,
    host: np.ndarray,
    erode: int = HOST_ERODE,
    min_run_s: float = MIN_RUN_S,
) -> list[tuple[float, float]]:
    """Spans of runs of host partials after dropping ``erode`` partials at each end of every run, each end
    trimmed by :data:`EDGE_TRIM_S`, at least ``min_run_s`` long."""
    keep = host.copy()
    for _ in range(erode):
        keep = keep & np.r_[keep[1:], False] & np.r_[False, keep[:-1]]
    runs = []
    k = 0
    while k < keep.size:
        if not keep[k]:
            k += 1
            continue
        j = k
        while j + 1 < keep.size and keep[j + 1]:
            j += 1
        runs.append((float(starts_s[k]) + EDGE_TRIM_S, float(ends_s[j]) - EDGE_TRIM_S))
        k = j + 1
    return [r for r in runs if r[1] - r[0] >= min_run_s]


def interview_scores(
    interview: vi.Interview, vectors: np.ndarray, starts_s: np.ndarray, ends_s: np.ndarray
) -> dict[str, Any]:
    """Host and guest centroids, host runs, and the clip a selection could cut (the longest run)."""
    host_c, guest_c = two_voices(vectors)
    true_host = speaker.embed(vi.joined(interview.host, "reference")[: round(REFERENCE_MAX_S * vi.RATE)])
    true_guest = speaker.embed(vi.joined(interview.guest, "pool")[: round(REFERENCE_MAX_S * vi.RATE)])
    runs = host_runs(starts_s, ends_s, vectors @ host_c - vectors @ guest_c > HOST_MARGIN)
    clip = max(runs, key=lambda r: r[1] - r[0]) if runs else None
    with_guest = [r for r in runs if vi.overlap_s(r, interview.guest_turns) > 0.1]

    def longest_is_host_only(host: np.ndarray) -> bool:
        other = host_runs(starts_s, ends_s, host, erode=0)
        longest = max(other, key=lambda r: r[1] - r[0]) if other else None
        return longest is not None and vi.overlap_s(longest, interview.guest_turns) <= 0.1

    dominant = dominant_voice(vectors, rounds=2)
    return {
        "baseline_clip_host_only": {
            "two_voices_no_erosion": longest_is_host_only(vectors @ host_c - vectors @ guest_c > HOST_MARGIN),
            "dominant_voice_above_0.67": longest_is_host_only(vectors @ dominant >= 0.67),
        },
        "name": interview.name,
        "host_identified": bool(speaker.cosine(host_c, true_host) > speaker.cosine(host_c, true_guest)),
        "centroids_cosine": _r(float(host_c @ guest_c)),
        "clip_s": _r(clip[1] - clip[0]) if clip else 0.0,
        "clip_host_only": bool(clip is not None and clip not in with_guest),
        "runs": len(runs),
        "runs_with_guest": len(with_guest),
        "host_s_in_clean_runs": _r(sum(e - s for s, e in runs if (s, e) not in with_guest)),
        "host_share": _r(interview.host_share),
    }


def interviews(seed: int, one_speaker_vectors: Sequence[np.ndarray] = ()) -> dict[str, Any]:
    """Score every interview (two-voice clustering of its partials); with ``one_speaker_vectors`` (the
    partials of one-speaker windows) also how far apart the two centroids of one voice fall."""
    items = vi.interviews(seed)[::EVERY]
    started = time.perf_counter()
    rows = []
    for it in items:
        p = speaker.partial_embeddings(it.audio, step_s=STEP_S)
        rows.append(interview_scores(it, p.vectors, p.starts_s, p.ends_s))
    seconds = time.perf_counter() - started
    one = [float(np.dot(*two_voices(v))) for v in one_speaker_vectors]
    return {
        "interviews": len(rows),
        "rule": {"host_margin": HOST_MARGIN, "erode_partials": HOST_ERODE, "min_run_s": MIN_RUN_S},
        "duration_s": [
            _r(min(it.audio.size for it in items) / vi.RATE),
            _r(max(it.audio.size for it in items) / vi.RATE),
        ],
        "host_share": [min(r["host_share"] for r in rows), max(r["host_share"] for r in rows)],
        "host_identified": _r(np.mean([r["host_identified"] for r in rows])),
        "clip_host_only": _r(np.mean([r["clip_host_only"] for r in rows])),
        "baselines_clip_host_only": {
            name: _r(np.mean([r["baseline_clip_host_only"][name] for r in rows]))
            for name in rows[0]["baseline_clip_host_only"]
        },
        "no_clip": sum(r["runs"] == 0 for r in rows),
        "interviews_with_a_guest_run": sum(r["runs_with_guest"] > 0 for r in rows),
        "clip_s_median": _r(np.median([r["clip_s"] for r in rows])),
        "host_s_in_clean_runs_median": _r(np.median([r["host_s_in_clean_runs"] for r in rows])),
        "centroids_cosine": {
            "interviews_max": max(r["centroids_cosine"] for r in rows),
            "interviews_median": _r(np.median([r["centroids_cosine"] for r in rows])),
            "one_speaker_windows_min": _r(min(one)) if one else None,
            "one_speaker_windows_p2": _r(np.percentile(one, 2)) if one else None,
        },
        "failures": [
            r for r in rows if not r["clip_host_only"] or not r["host_identified"] or r["runs_with_guest"]
        ],
        "seconds_per_interview": _r(seconds / len(rows)),
    }


# ----------------------------------------------------------------------------------------------------------
# the pipeline's own other-voice rule on the windows


def _load_voice_module(pipeline_root: Path) -> Any:
    """``pipeline/analysis/voice.py`` of ``pipeline_root`` loaded by path (its imports resolve to the
    ``pipeline`` package on the path; ``pipeline.analysis.speaker`` is the one on the path)."""
    import importlib.util

    path = pipeline_root / "pipeline" / "analysis" / "voice.py"
    if not path.is_file():
        raise SystemExit(f"{path} does not exist: no other-voice rule to measure there")
    spec = importlib.util.spec_from_file_location("voices_bench_pipeline_voice", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _degraded_condition(condition: str) -> bool:
    """Stands in for the pipeline's measured ``degraded_stretch``: a room, or noise under 20 dB SNR."""
    kind, *params = condition.split(":")
    return kind == "room" or (kind == "noise" and float(params[1]) < 20.0)


def pipeline_rule(
    seed: int, pipeline_root: Path, edge_drops: Sequence[float] = (), here_cosines: Sequence[float] = ()
) -> dict[str, Any]:
    """The other-voice rule of ``pipeline/analysis/voice.py`` (``dominant_voice``, ``other_voice_threshold``,
    ``other_voice_spans``, ``HERE_MIN_COSINE``) on the same windows: the speaker's voice = the dominant
    voice of the clean held-out material's partials (every 1.6 s); ``here`` = that module's
    ``recording_voice`` (else its ``dominant_voice``) of that material recorded like the window plus a third
    of the window's partials (the recording as heard), with the window left out again when the module's
    ``Voice`` can (``Voice.without``); a window is flagged when any span is found. ``edge_drops``: the
    rule again with each of these ``DEGRADED_EDGE_DROP`` (before it, ``EDGE_DROP``) values (``by_edge_drop``;
    the windows embedded once); ``here_cosines``: the rule again with each of these ``HERE_COSINE``
    (``by_here_cosine``)."""
    pv = _load_voice_module(pipeline_root)
    step = getattr(pv, "SAMPLE_STEP_S", 1.6)  # the module's sampling of a recording (side by side)
    partials: dict[tuple[str, str], np.ndarray] = {}

    def reference_partials(target: str, condition: str) -> np.ndarray:
        if (target, condition) not in partials:
            x = vi.joined(target, "reference")[: round(REFERENCE_MAX_S * vi.RATE)]
            y = vi.degrade(x, condition, vi._rng(seed, "reference", target, condition))
            partials[(target, condition)] = pv.partial_embeddings(y, step_s=step).vectors
        return partials[(target, condition)]

    voices = {t: pv.dominant_voice(reference_partials(t, "clean")) for t in vi.TARGETS}
    judged: list[tuple[vi.Item, Any, Any, Any]] = []
    for item in vi.other_voice_windows(seed) + vi.one_speaker_windows(seed):
        found = pv.partial_embeddings(item.audio, step_s=pv.SPAN_STEP_S)
        voice = voices[item.target]
        rest = reference_partials(item.target, item.condition)
        here_partials = np.vstack([rest, found.vectors[::3]])
        if hasattr(pv.Voice, "without"):  # the window left out of the recording's voice (i9-other on)
            # the rest of the recording after the window (which sits at 0-15 s), its partials side by side
            rest_starts = 20.0 + step * np.arange(rest.shape[0])
            starts = np.concatenate([rest_starts, found.starts_s[::3]])
            ends = np.concatenate([rest_starts + step, found.ends_s[::3]])
            here = pv.recording_voice(here_partials, voice, times=np.stack([starts, ends], axis=1))
            here = here.without(0.0, float(item.audio.size) / vi.RATE)
        elif hasattr(pv, "recording_voice"):  # the plain mean of the recording's partials (i9-interview on)
            here = pv.recording_voice(here_partials, voice)
        else:
            here = pv.dominant_voice(here_partials, source="recording")
        if here is not None and float(here.vector @ voice.vector) < pv.HERE_MIN_COSINE:
            here = None
        judged.append((item, found, voice, here))

    def rule() -> dict[str, Any]:
        flags: dict[str, list[tuple[bool, vi.Item]]] = {"other_voice": [], "one_speaker": []}
        for item, found, voice, here in judged:
            degraded = _degraded_condition(item.condition)
            finding = pv.other_voice_spans(
                found,
                voice,
                threshold=pv.other_voice_threshold(voice, is_degraded=degraded),
                here=here,
                here_threshold=None
                if here is None or hasattr(pv, "HERE_COSINE")
                else pv.other_voice_threshold(here, is_degraded=degraded),
                **({"is_degraded": degraded} if hasattr(pv, "DEGRADED_EDGE_DROP") else {}),
            )
            # (similarity, spans) from branch i9-voice on; an object with .spans before
            spans = finding.spans if hasattr(finding, "spans") else finding[1]
            flags[item.label].append((bool(spans), item))

        def rate(
            rows: list[tuple[bool, vi.Item]], keep: Callable[[vi.Item], bool] = lambda it: True
        ) -> float:
            chosen = [f for f, it in rows if keep(it)]
            return _r(np.mean(chosen)) if chosen else float("nan")

        by_kind = {k: (lambda it, k=k: it.condition.split(":")[0] == k) for k in ("clean", "noise", "room")}
        return {
            "caught": rate(flags["other_voice"]),
            "false_alarms": rate(flags["one_speaker"]),
            "caught_by_condition": {k: rate(flags["other_voice"], f) for k, f in by_kind.items()},
            "caught_same_sex": rate(flags["other_voice"], lambda it: it.params["pairing"] == "same_sex"),
            "false_alarms_by_condition": {k: rate(flags["one_speaker"], f) for k, f in by_kind.items()},
        }

    result = {
        "pipeline_root": str(pipeline_root),
        "edge_drop": getattr(pv, "DEGRADED_EDGE_DROP", getattr(pv, "EDGE_DROP", None)),
        **rule(),
    }
    if edge_drops:
        result["by_edge_drop"] = {}
        for drop in edge_drops:
            if hasattr(pv, "DEGRADED_EDGE_DROP"):  # against the recording's voice when degraded (i9-other on)
                pv.DEGRADED_EDGE_DROP = drop
            else:
                pv.EDGE_DROP = drop
            result["by_edge_drop"][str(drop)] = rule()
    if here_cosines:
        result["by_here_cosine"] = {}
        for value in here_cosines:
            pv.HERE_COSINE = value
            result["by_here_cosine"][str(value)] = rule()
    return result


def _one_voice(interview: vi.Interview, turns: Sequence[tuple[float, float]]) -> np.ndarray:
    """The audio of ``turns`` of ``interview`` end to end: one speaker, recorded as the interview is."""
    return np.concatenate([interview.audio[round(a * vi.RATE) : round(b * vi.RATE)] for a, b in turns])


def turns_cosine(seed: int, pipeline_root: Path) -> dict[str, Any]:
    """How far apart the two groups (``two_voices``) of ``pipeline/analysis/voice.py`` fall, with the
    pipeline's own embeddings, in the 36 interviews and in one-speaker recordings: each interview's host
    turns end to end and its guest's (72 recordings of one voice, 25-80 s, in the interview's conditions),
    and the one-speaker windows of the other-voice items (15 s). Each as a run hears it: its sample
    (``sample_spans``, partials every ``SAMPLE_STEP_S``: does it hold two voices, ``TWO_VOICES_COSINE``)
    and all its speech (partials every ``TURN_STEP_S``: the turns, ``TURNS_COSINE`` once the sample held
    two voices). Chooses ``TURNS_COSINE`` (and checks ``TWO_VOICES_COSINE``) between the two."""
    pv = _load_voice_module(pipeline_root)

    def centroids(audio: np.ndarray) -> dict[str, float]:
        seconds = audio.size / vi.RATE
        parts = []
        for a, b in pv.sample_spans([(0.0, seconds)]):
            found = pv.partial_embeddings(
                audio[round(a * vi.RATE) : round(b * vi.RATE)], step_s=pv.SAMPLE_STEP_S
            )
            parts.append(type(found)(found.starts_s + a, found.ends_s + a, found.vectors, found.heard_s))
        sampled = pv.two_voices(pv.join_partials(parts).vectors)
        along = pv.two_voices(pv.partial_embeddings(audio, step_s=pv.TURN_STEP_S).vectors)
        return {
            "sample": _r(float(sampled[0] @ sampled[1])) if sampled else float("nan"),
            "along": _r(float(along[0] @ along[1])) if along else float("nan"),
        }

    rows: dict[str, list[dict[str, Any]]] = {"interviews": [], "one_voice": [], "one_speaker_windows": []}
    for it in vi.interviews(seed)[::EVERY]:
        rows["interviews"].append({"name": it.name, **centroids(it.audio)})
        for who, turns in (("host", it.host_turns), ("guest", it.guest_turns)):
            rows["one_voice"].append({"name": f"{it.name}:{who}", **centroids(_one_voice(it, turns))})
    for item in vi.one_speaker_windows(seed)[::EVERY]:
        rows["one_speaker_windows"].append({"name": item.condition, **centroids(item.audio)})

    def spread(values: list[float]) -> dict[str, float]:
        x = np.asarray([v for v in values if v == v])
        return {
            "n": int(x.size),
            "min": _r(x.min()),
            "p2": _r(np.percentile(x, 2)),
            "p5": _r(np.percentile(x, 5)),
            "median": _r(np.median(x)),
            "p95": _r(np.percentile(x, 95)),
            "max": _r(x.max()),
        }

    return {
        "pipeline_root": str(pipeline_root),
        "TWO_VOICES_COSINE": pv.TWO_VOICES_COSINE,
        "TURNS_COSINE": getattr(pv, "TURNS_COSINE", None),
        "spread": {
            f"{kind}_{part}": spread([r[part] for r in found])
            for kind, found in rows.items()
            for part in ("sample", "along")
        },
        "interviews_sampled_as_one": [
            r["name"] for r in rows["interviews"] if not r["sample"] < pv.TWO_VOICES_COSINE
        ],
        "rows": rows,
    }


# ----------------------------------------------------------------------------------------------------------
# the pipeline on interview folders


def run_pipeline(
    seed: int, pipeline_root: Path, family: str, limit: int | None, only: Sequence[str] = ()
) -> dict[str, Any]:
    """``voiceprep run`` (the ``pipeline`` package of ``pipeline_root``) on each interview written as a
    one-file speaker folder; the clip's source ``segments`` in ``clips.jsonl`` are checked against the
    guest's turns (at most 0.1 s of overlap: only the host). ``only``: just the interviews of these names
    (after ``limit``'s first ones)."""
    items = vi.interviews(seed)
    items = items[:limit] + [it for it in items[limit or len(items) :] if it.name in set(only)]
    if only and limit is None:
        items = [it for it in items if it.name in set(only)]
    env = {**os.environ, "PYTHONPATH": str(pipeline_root)}
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for it in items:
            root = Path(scratch) / it.name
            vi.write_interview_folder(it, root / "in")
            out = root / "out"
            command = [sys.executable, "-m", "pipeline.cli.main", "run", str(root / "in"), "--out", str(out)]
            done = subprocess.run(  # cwd outside any checkout: `python -m` puts the cwd first on the path
                [*command, "--family", family], env=env, cwd=root, capture_output=True, text=True, check=False
            )
            status, reasons, segments = _clip_segments(out)
            guest = sum(vi.overlap_s(span, it.guest_turns) for span in segments)
            rows.append(
                {
                    "name": it.name,
                    "exit": done.returncode,
                    "status": status,
                    "reasons": reasons,
                    "segments": segments,
                    "guest_s_in_clip": _r(guest),
                    "host_only": bool(segments) and guest <= 0.1,
                    "stderr_tail": done.stderr[-300:] if done.returncode else "",
                }
            )
    with_clip = [r for r in rows if r["segments"]]
    return {
        "pipeline_root": str(pipeline_root),
        "family": family,
        "interviews": len(rows),
        "with_clip": len(with_clip),
        "ready": sum(r["status"] == "ready" for r in rows),
        "clip_host_only": _r(np.mean([r["host_only"] for r in with_clip])) if with_clip else None,
        "rows": rows,
    }


def _clip_segments(out: Path) -> tuple[str | None, list[str], list[tuple[float, float]]]:
    """Status, reasons and source ``(start_s, end_s)`` segments of the (one) clip row of ``out/clips.jsonl``."""
    path = out / "clips.jsonl"
    if not path.is_file():
        return None, [], []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        spans = [(float(g["start_s"]), float(g["end_s"])) for g in row.get("segments") or []]
        return row.get("status"), list(row.get("reasons") or []), spans
    return None, [], []


def _print_other_voice(ov: dict[str, Any]) -> None:
    best = ov["best_rule"]
    print(f"other voice: {ov['windows_with_other_voice']} windows with, {ov['one_speaker_windows']} without")
    for ref, d in ov["partials"].items():
        print(
            f"  partials vs {ref:9s}: target p5 {d['target_p5']} median {d['target_median']}; other median {d['other_median']} p95 {d['other_p95']}; rel {d['relative_to_window_median']}"
        )
    for key, row in ov["rules"].items():
        print(
            f"  {key:14s} best {row['best']}  plateau {row['plateau_at_best_run']}  ({row['rules_meeting_targets']} rules meet both)"
        )
    print(f"  best: {best}")
    print(f"  breakdown: { {k: v for k, v in ov['best_rule_breakdown'].items() if k != 'missed'} }")
    print(f"  missed: {ov['best_rule_breakdown']['missed'][:8]}")
    print(f"  false alarms: {ov['best_rule_false_alarms'][:8]}")
    print(f"  seconds per window: {ov['seconds_per_window_partials']}")


def _print_wrong_speaker(ws: dict[str, Any]) -> None:
    for scenario in ("mixed", "clean"):
        sc = ws[scenario]
        print(
            f"wrong speaker ({scenario}): {sc['folders']} folders, {sc['folders_with_wrong_file']} with a wrong file, "
            f"{sc['own_files']} own files ({sc['own_files_recorded_differently']} recorded differently)"
        )
        for measure in ("loo", "nearest"):
            m = sc[measure]
            print(
                f"  {measure}: own {m['own']}, wrong {m['wrong']}, wrong lowest {m['wrong_is_lowest_of_its_folder']}"
            )
            for key, row in m["rules"].items():
                print(
                    f"    {key:18s} best {row['best']}  ({row['settings_meeting_targets']} settings meet both)"
                )


def _print_interviews(iv: dict[str, Any]) -> None:
    print(
        f"interviews: {iv['interviews']}, host identified {iv['host_identified']}, clip host-only {iv['clip_host_only']} "
        f"(no clip {iv['no_clip']}), interviews with a guest run {iv['interviews_with_a_guest_run']}, "
        f"clip median {iv['clip_s_median']} s; centroids {iv['centroids_cosine']}; "
        f"baselines {iv['baselines_clip_host_only']}; seconds per interview {iv['seconds_per_interview']}"
    )
    for row in iv["failures"]:
        print(f"  {row}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print it and write its JSON."""
    global speaker, HOST_MARGIN, EVERY, STEP_S, FILE_MAX_S
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--run-pipeline", action="store_true", help="voiceprep run on the interview folders")
    parser.add_argument(
        "--pipeline-rule",
        action="store_true",
        help="the other-voice rule of PIPELINE_ROOT's voice.py on the windows",
    )
    parser.add_argument(
        "--turns-cosine",
        action="store_true",
        help="two-voice centroids of PIPELINE_ROOT's voice.py: interviews against one-speaker recordings",
    )
    parser.add_argument("--pipeline-root", type=Path, default=ROOT)
    parser.add_argument(
        "--edge-drop",
        type=float,
        nargs="*",
        default=(),
        help="--pipeline-rule: also with these EDGE_DROP values",
    )
    parser.add_argument(
        "--here-cosine",
        type=float,
        nargs="*",
        default=(),
        help="--pipeline-rule: also with these HERE_COSINE values",
    )
    parser.add_argument("--family", default="cosyvoice")
    parser.add_argument("--model", choices=("ge2e", "campplus"), default="ge2e", help="speaker embeddings")
    parser.add_argument("--partial-s", type=float, default=1.5, help="--model campplus: partial length (s)")
    parser.add_argument(
        "--pooling", choices=("separate", "shared"), default="separate", help="--model campplus: partials"
    )
    parser.add_argument("--file-max-s", type=float, default=None, help="embed at most this much of each file")
    parser.add_argument("--step-s", type=float, default=STEP_S, help="partial spacing along windows (s)")
    parser.add_argument(
        "--every", type=int, default=1, help="only every N-th window and interview (shorter runs)"
    )
    parser.add_argument(
        "--host-margin", type=float, default=HOST_MARGIN, help="interviews: host partial margin"
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="at most this many interviews (--run-pipeline)"
    )
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        help=f"run only these parts ({', '.join(PARTS)}); with --run-pipeline: also (or, without --limit, "
        "only) the interviews of these names",
    )
    args = parser.parse_args(argv)
    if not args.run_pipeline:
        unknown = sorted(set(args.only or ()) - set(PARTS))
        if unknown:
            parser.error(f"--only: unknown parts {unknown} (choose from {', '.join(PARTS)})")
        args.only = args.only or PARTS
    HOST_MARGIN, EVERY, STEP_S, FILE_MAX_S = args.host_margin, args.every, args.step_s, args.file_max_s
    if args.model == "campplus":
        speaker = CamPlusPlus(args.partial_s, args.pooling)  # type: ignore[assignment]
    started = time.perf_counter()
    if args.pipeline_rule:
        result = pipeline_rule(args.seed, args.pipeline_root, args.edge_drop, args.here_cosine)
        out = args.out or RESULTS / "voices-pipeline-rule.json"
        print(json.dumps(result, indent=1))
    elif args.turns_cosine:
        result = turns_cosine(args.seed, args.pipeline_root)
        out = args.out or RESULTS / "voices-turns-cosine.json"
        print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=1))
    elif args.run_pipeline:
        result = run_pipeline(args.seed, args.pipeline_root, args.family, args.limit, args.only or ())
        out = args.out or RESULTS / "voices-pipeline.json"
        print(
            f"{result['interviews']} interviews, {result['with_clip']} with a clip, host only {result['clip_host_only']}"
        )
    else:
        result = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count()}, "seed": args.seed}
        result["model"] = {
            "name": args.model,
            "partial_s": 1.6 if args.model == "ge2e" else args.partial_s,
            "pooling": None if args.model == "ge2e" else args.pooling,
            "every": args.every,
            "step_s": args.step_s,
            "file_max_s": args.file_max_s,
        }
        suffix = "" if args.model == "ge2e" else f"-{args.model}-{args.partial_s:g}s-{args.pooling}"
        suffix += "" if args.step_s == 0.5 else f"-step{args.step_s:g}"
        out = args.out or RESULTS / f"voices{suffix}.json"
        one_speaker_vectors: list[np.ndarray] = []
        if "other_voice" in args.only:
            result["other_voice"], one_speaker_vectors = other_voice(args.seed)
            _print_other_voice(result["other_voice"])
        if "wrong_speaker" in args.only:
            result["wrong_speaker"] = wrong_speaker(args.seed)
            _print_wrong_speaker(result["wrong_speaker"])
        if "interviews" in args.only:
            result["interviews"] = interviews(args.seed, one_speaker_vectors)
            _print_interviews(result["interviews"])
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(f"took {result['seconds']} s")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
