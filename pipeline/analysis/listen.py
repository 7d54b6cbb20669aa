"""A coarse listen refined where it matters: the partials of a two-voice recording's turns at less cost.

The speaker's turns (:func:`pipeline.analysis.voice.speaker_runs`) are runs of partials every
:data:`~pipeline.analysis.voice.TURN_STEP_S` (0.5 s) leaning to the speaker's group by
:data:`~pipeline.analysis.voice.TURN_MARGIN`, eroded by :data:`~pipeline.analysis.voice.TURN_ERODE_PARTIALS`
at both ends. CAM++ hears every second of those 1.5 s partials three times, the largest part of the
speaker checks' cost on a long interview (BENCHMARKS.md, "CAM++ cost"). Inside a turn the partials all
say the same thing; only near a change of voice (or a partial that is not sure) does every place count.
So :func:`turn_partials`:

1. embeds every :data:`COARSE_EVERY`-th place of each stretch's grid (and its last), each partial heard on
   its own exactly as the full grid would hear it (:class:`~pipeline.analysis.campplus.PartialGrid`);
2. splits those coarse partials into two voices (:func:`~pipeline.analysis.voice.two_voices`, all
   stretches together, as the turns will be split);
3. embeds the places between two coarse partials too unless both lean to the same group by
   :data:`~pipeline.analysis.voice.TURN_MARGIN` + :data:`SURE_BAND`, and :data:`NEAR_GAPS` gaps either side
   of each such place, and the first and last :data:`EDGE_GAPS` gaps of each stretch, so a run's edges
   and its erosion lie on the full grid.

Where nothing was left out the partials are those of the full grid, place for place; inside a sure run
only every other place is heard. When the coarse partials do not clearly hold two voices (centroids at
:data:`~pipeline.analysis.voice.TWO_VOICES_COSINE` or above) every place is heard, as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.analysis.speaker import EMBEDDING_SIZE, PartialGrid, Partials
from pipeline.analysis.voice import TURN_MARGIN, TWO_VOICES_COSINE, two_voices

__all__ = ["COARSE_EVERY", "EDGE_GAPS", "NEAR_GAPS", "SURE_BAND", "coarse_places", "turn_partials"]

COARSE_EVERY = 2
"""The coarse listen hears every this-many-th place of the grid (1.0 s apart at 0.5 s steps)."""
SURE_BAND = 0.10
"""A coarse partial is sure of its group when it leans to it by :data:`~pipeline.analysis.voice.TURN_MARGIN`
plus this. On the 36 interviews of ``voices_items.py`` (seed 0; the speaker's turns of the full grid and
of this listen, against the host's voice): 77 % of the partials, the same turns in 31 interviews, in 5
one turn's edge 0.5-1.5 s away (4 longer, 1 shorter), the guest's time inside the turns the same 2.0 s;
band 0 or 0.2: 76 / 78 % of the partials, the same guest time (BENCHMARKS.md, "CAM++ cost")."""
NEAR_GAPS = 1
"""Gaps between coarse partials also heard in full on each side of a gap that is not sure (the erosion of a
run's edge counts partials of the full grid). Without them (63 % of the partials) no turn was the full
grid's: the erosion took 2 coarse partials, the host's turns lost 18 % of their time."""
EDGE_GAPS = 2
"""Gaps at each end of a stretch always heard in full (a run touching the edge is eroded there)."""


def coarse_places(n: int) -> np.ndarray:
    """The places of a grid of ``n`` partials the coarse listen hears: every :data:`COARSE_EVERY`-th and
    the last."""
    places = np.arange(0, n, COARSE_EVERY)
    if n and places[-1] != n - 1:
        places = np.append(places, n - 1)
    return places


def _gaps_to_fill(lean: np.ndarray) -> np.ndarray:
    """Which gaps between consecutive coarse partials are heard in full, from each coarse partial's lean
    (``+1``/``-1``: sure of one group, ``0``: not sure)."""
    unsure = ~((lean[:-1] != 0) & (lean[:-1] == lean[1:]))
    fill = unsure.copy()
    for k in np.flatnonzero(unsure):
        fill[max(0, k - NEAR_GAPS) : k + NEAR_GAPS + 1] = True
    fill[:EDGE_GAPS] = True
    fill[max(0, fill.size - EDGE_GAPS) :] = True
    return fill


def turn_partials(grids: Sequence[PartialGrid]) -> list[Partials]:
    """The partials along each grid (the stretches of one recording) that its turns need: the coarse listen,
    refined between coarse partials wherever a decision could change (module docstring). Each result holds
    a subset of its grid's places in order, their vectors exactly those the full grid would give."""
    coarse = [coarse_places(len(g)) for g in grids]
    vectors = [g.vectors(c) for g, c in zip(grids, coarse, strict=True)]
    stacked = np.concatenate([np.zeros((0, EMBEDDING_SIZE), dtype=np.float32), *vectors]).astype(np.float64)
    pair = two_voices(stacked)
    out = []
    for grid, places, found in zip(grids, coarse, vectors, strict=True):
        if pair is None or float(pair[0] @ pair[1]) >= TWO_VOICES_COSINE:
            fill = np.ones(max(0, places.size - 1), dtype=bool)
        else:
            lean = found.astype(np.float64) @ pair[0] - found.astype(np.float64) @ pair[1]
            band = TURN_MARGIN + SURE_BAND
            fill = _gaps_to_fill(np.where(lean > band, 1, np.where(lean < -band, -1, 0)))
        extra = np.concatenate(
            [np.zeros(0, dtype=np.int64)]
            + [np.arange(places[k] + 1, places[k + 1]) for k in np.flatnonzero(fill)]
        )
        every = np.concatenate([places, extra])
        order = np.argsort(every, kind="stable")
        out.append(grid.partials(every[order], np.concatenate([found, grid.vectors(extra)])[order]))
    return out
