"""Stage 8, report: a run folder in, tables and an HTML page out. It never measures again.

Takes: the manifests, ``run.json`` and the voice ledger of a run folder.
Gives: :func:`~pipeline.report.results.load_run` (the run as pandas tables: recordings, clips, checks,
segments, voices; ``windows()`` explains a choice) and :func:`~pipeline.report.build.build_report`
(``OUT/report.html``: self-contained, drawn from the manifests; audio read only to draw it). See
``docs/report.md``.
May import: :mod:`pipeline.enroll` (the ledger, read-only), :mod:`pipeline.batch` (manifests) and every
stage below, :mod:`pipeline.errors`.
"""
