"""Stage 6, batch: a folder in, a run folder out (``voiceprep run``, ``pipeline.run``).

Takes: an input folder, a run configuration (:mod:`~pipeline.batch.config`: defaults, file, flags).
Gives: :func:`~pipeline.batch.runner.run`: scan, group by speaker, analyse each file (cached by sha256
and settings), select, render and re-check per speaker and family, resume after a kill; the executors
(serial, process pool, Dask behind one ``map_unordered`` seam); each speaker's voice and the files of
someone else (:mod:`~pipeline.batch.speakers`, between analysis and selection); the manifests
(:mod:`~pipeline.batch.manifest`: ``recordings.jsonl``, ``clips.jsonl`` rows, append/read/export) and
``run.json``; :mod:`~pipeline.batch.outputs`: one writer per output folder (a lock) and the record of the
clips a run wrote, so that it deletes or overwrites nothing else.
May import: every stage below it (render, selection, analysis, rules, audio) and :mod:`pipeline.errors`.
"""
