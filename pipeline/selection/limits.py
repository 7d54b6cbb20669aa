"""The numbers selection takes from a family spec.

Nothing here is hard-coded per family: every duration, run and pause figure comes from the spec
(:class:`Rules.from_spec`). The only constants are selection's own choices about *where* a window may
start or end (:data:`MIN_EDGE_GAP_S`) and which pauses are too long to shorten (:data:`SPLIT_PAUSE_S`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.errors import InvalidArgument
from pipeline.rules.families import FamilySpec

SPLIT_PAUSE_S = 10.0
"""A silence longer than this is never shortened inside a clip: windows stop at it (split instead).

Shortening a 3 s pause to 0.5 s is invisible; bridging a 30 s silence joins two moments that may differ in
room, distance and mood, so the two sides are treated as separate stretches (assembly may still join
them, but only when their acoustics match).
"""

MIN_EDGE_GAP_S = 0.1
"""A window may start (end) at a segment only when the silence before (after) it is at least this long.

Gaps between words and phrases of read speech are 0.15-0.5 s; shorter silences are often the closure
of a stop consonant or a dip of the VAD inside a word, where a cut would clip the word. The file's own
start and end always count as edges.
"""

_EPS = 1e-9


@dataclass(frozen=True)
class Rules:
    """The family's numbers as selection uses them (seconds).

    ``min_duration_s``/``max_duration_s`` is the delivery window narrowed by the hard limits;
    ``edge_s`` the room tone the renderer adds at *both* ends together (twice the midpoint of
    ``edge_room_tone_s``); ``join_s`` the length a shortened pause, or a join between two pieces, takes in
    the clip (the midpoint of ``pause_target_s``).
    """

    family: str
    min_duration_s: float
    max_duration_s: float
    aim_s: float
    edge_s: float
    join_s: float
    min_pause_s: float
    max_pause_s: float | None
    min_run_s: float | None

    @classmethod
    def from_spec(cls, spec: FamilySpec) -> Rules:
        """Read the numbers from ``spec``; ``InvalidArgument`` when its windows leave no room for a clip."""
        d, lim = spec.delivery, spec.limits
        lo = max(d.duration_s.min, lim.min_duration_s.value or 0.0)
        hi = min(d.duration_s.max, lim.max_duration_s.value or math.inf)
        if lo > hi:
            raise InvalidArgument(
                f"spec {spec.name!r}: delivery.duration_s [{d.duration_s.min}, {d.duration_s.max}] and the "
                f"hard limits leave no duration for a clip (min {lo} > max {hi})"
            )
        return cls(
            family=spec.name,
            min_duration_s=float(lo),
            max_duration_s=float(hi),
            aim_s=float(min(max(d.duration_s.aim, lo), hi)),
            edge_s=float(d.edge_room_tone_s.min + d.edge_room_tone_s.max),
            join_s=float((d.pause_target_s.min + d.pause_target_s.max) / 2.0),
            min_pause_s=float(lim.min_pause_s.value),
            max_pause_s=None if lim.max_pause_s.value is None else float(lim.max_pause_s.value),
            min_run_s=None if lim.min_speech_run_s.value is None else float(lim.min_speech_run_s.value),
        )

    def is_long(self, gaps: np.ndarray) -> np.ndarray:
        """Which gaps exceed the family's ``max_pause_s`` (and will be shortened by the renderer)."""
        g = np.asarray(gaps, dtype=np.float64)
        if self.max_pause_s is None:
            return np.zeros(g.shape, dtype=bool)
        return g > self.max_pause_s + _EPS

    def shortened(self, gaps: np.ndarray) -> np.ndarray:
        """Gap lengths as they will be in the clip: long pauses become :attr:`join_s`."""
        g = np.asarray(gaps, dtype=np.float64)
        return np.where(self.is_long(g), self.join_s, g)

    def fits(self, duration_s: float, longest_run_s: float) -> bool:
        """True when a clip of this expected duration and longest run satisfies the family."""
        if not self.min_duration_s - _EPS <= duration_s <= self.max_duration_s + _EPS:
            return False
        return self.min_run_s is None or longest_run_s >= self.min_run_s - _EPS
