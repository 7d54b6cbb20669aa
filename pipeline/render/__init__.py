"""Stage 5, render: one clip plan in, one delivered enrollment file out.

Takes: a :class:`~pipeline.selection.plan.ClipPlan`, the family spec and an output path.
Gives: :func:`~pipeline.render.clip.render`: cut at pauses, room tone at the edges, long pauses
shortened, high-pass, loudness to the family's target with a true-peak limit, the family's rate and
format, written atomically; a :class:`~pipeline.render.clip.RenderResult` with what was done. Nothing else:
the re-check of the file is the caller's (``pipeline.analysis.inspection.check``).
May import: :mod:`pipeline.selection` (the plan), :mod:`pipeline.analysis`, :mod:`pipeline.rules`,
:mod:`pipeline.audio`, :mod:`pipeline.errors`.
"""
