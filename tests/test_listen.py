"""The turns' coarse listen refined near changes of voice (:mod:`pipeline.analysis.listen`): which places
it hears, that its vectors are the full grid's, and that the turns it gives are those of the full grid."""

from __future__ import annotations

from functools import cache

import _samples
import numpy as np
from _corpus import corpus_file

from pipeline.analysis import listen
from pipeline.analysis.base import ANALYSIS_RATE
from pipeline.analysis.speaker import partial_grid
from pipeline.analysis.voice import TURN_STEP_S, speaker_runs
from pipeline.audio.view import load_mono


@cache
def speech(name: str) -> np.ndarray:
    audio, _, _ = load_mono(corpus_file("speech", name), rate=ANALYSIS_RATE)
    return audio


def test_the_coarse_listen_hears_every_other_place_and_the_last() -> None:
    assert listen.coarse_places(7).tolist() == [0, 2, 4, 6]
    assert listen.coarse_places(6).tolist() == [0, 2, 4, 5]
    assert listen.coarse_places(1).tolist() == [0]
    assert listen.coarse_places(0).tolist() == []


def test_gaps_are_filled_near_an_unsure_or_changing_partial_and_at_the_edges() -> None:
    # 12 coarse partials, 11 gaps: sure of one group, a change of voice after the 6th
    lean = np.array([1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1])
    fill = listen._gaps_to_fill(lean)
    edge, near = listen.EDGE_GAPS, listen.NEAR_GAPS
    expected = np.zeros(11, dtype=bool)
    expected[:edge] = expected[11 - edge :] = True
    expected[5 - near : 5 + near + 1] = True  # the gap of the change and its neighbours
    assert fill.tolist() == expected.tolist()
    lean[2] = 0  # a partial not sure of its group: both its gaps
    assert listen._gaps_to_fill(lean)[1:3].all()


def test_an_interview_keeps_the_full_grids_turns_for_fewer_partials() -> None:
    """The interview of short turns (host 3080, guest 196): the places heard are a subset of the grid's,
    their vectors the full grid's, the speaker's turns the same, and inside the turns every other place
    is left out."""
    audio, _ = _samples.interview(speech)
    grid = partial_grid(audio, step_s=TURN_STEP_S)
    every = np.arange(len(grid))
    full = grid.partials(every, grid.vectors(every))
    [found] = listen.turn_partials([grid])
    places = np.searchsorted(full.starts_s, found.starts_s)
    assert np.array_equal(full.starts_s[places], found.starts_s)
    assert np.array_equal(full.ends_s[places], found.ends_s)
    assert np.allclose(found.vectors, full.vectors[places], atol=1e-6)
    assert len(found) < 0.9 * len(full)
    assert speaker_runs(found) == speaker_runs(full) is not None


def test_one_voice_is_heard_at_every_place() -> None:
    """A reader alone: the coarse partials do not hold two voices, so every place is heard, as before."""
    grid = partial_grid(speech(_samples.CONVERSATION_HOST[0]), step_s=TURN_STEP_S)
    [found] = listen.turn_partials([grid])
    assert len(found) == len(grid)
