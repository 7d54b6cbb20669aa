"""Stage 4, selection: a speaker's analysed recordings in, the best clip plan per family out.

Takes: each recording's fast-pass :class:`~pipeline.analysis.base.Analysis` (cached per file by the runner)
and a family spec.
Gives: :class:`~pipeline.selection.plan.ClipPlan` (its :class:`~pipeline.selection.plan.Piece` spans of
recordings, measures and score: the contract with rendering); :func:`~pipeline.selection.select.candidates`
and :func:`~pipeline.selection.select.choose` (the best plan, then its alternatives) and
:func:`~pipeline.selection.select.explain` (the true reasons there is none). The parts, one job each:

* :mod:`~pipeline.selection.limits`: the numbers selection takes from a family spec;
* :mod:`~pipeline.selection.frames`: per-recording prefix sums and the family's shortened timeline, so
  any window ``(i, j)`` of segments is measured in O(1);
* :mod:`~pipeline.selection.parts`: part boundaries, the pauses where a recording's conditions may change
  (a window crossing one pays a penalty, and the slow pass hears each part's best window first);
* :mod:`~pipeline.selection.scoring`: score parts in [0, 1] and their weights;
* :mod:`~pipeline.selection.windows`: enumerating single-recording windows, non-maximum suppression;
* :mod:`~pipeline.selection.plan`: pieces and plans (the contract with rendering), measuring them (the
  expected duration, longest run and longest pause after pause shortening) and ranking them;
* :mod:`~pipeline.selection.assembly`: joining short takes whose acoustics match;
* :mod:`~pipeline.selection.slow`: DNSMOS and Silero edge refinement on the finalists.

May import: :mod:`pipeline.analysis`, :mod:`pipeline.rules`, :mod:`pipeline.audio`, :mod:`pipeline.errors`.
"""
