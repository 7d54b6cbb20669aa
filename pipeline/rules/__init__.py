"""Stage 2, rules: what each cloud service accepts, and the engine that judges metrics against it.

Takes: the family specs in ``pipeline/configs/families/*.yaml`` and a dict of measured metrics.
Gives: :class:`~pipeline.rules.families.FamilySpec` (limits, delivery, gates, models, sources;
``load_family``), and the check engine (:mod:`~pipeline.rules.checks`: one row per rule with value,
limit, verdict, reason code and fix hint; ``combine`` for the verdict of a file).
May import: :mod:`pipeline.audio` and :mod:`pipeline.errors` (which also holds the reason codes).
Measures nothing itself: the numbers come from :mod:`pipeline.analysis`.
"""
