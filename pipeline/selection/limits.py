"""How selection reads a family spec's pauses, and selection's own constants.

Every duration, run and pause figure comes from the :class:`~pipeline.rules.families.FamilySpec` itself:
``spec.delivery.duration_s`` (the clip's window, inside the hard limits), ``spec.limits.min_pause_s``,
``max_pause_s`` and ``min_speech_run_s``, and the spec's derived ``edge_s``, ``join_s`` and ``fits``. The
only constants are selection's own choices about *where* a window may start or end
(:data:`MIN_EDGE_GAP_S`) and which pauses are too long to shorten (:data:`SPLIT_PAUSE_S`).
"""

from __future__ import annotations

import numpy as np

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


Rules = FamilySpec
"""The name ``pipeline.selection.slow`` still imports (that module is being changed on another branch):
selection reads the spec itself; drop this line with that import."""


def is_long(spec: FamilySpec, gaps: np.ndarray) -> np.ndarray:
    """Which gaps exceed the family's ``max_pause_s`` (and will be shortened by the renderer)."""
    g = np.asarray(gaps, dtype=np.float64)
    longest = spec.limits.max_pause_s.value
    if longest is None:
        return np.zeros(g.shape, dtype=bool)
    return g > longest + _EPS


def shortened(spec: FamilySpec, gaps: np.ndarray) -> np.ndarray:
    """Gap lengths as they will be in the clip: long pauses become the spec's ``join_s``."""
    g = np.asarray(gaps, dtype=np.float64)
    return np.where(is_long(spec, g), spec.join_s, g)
