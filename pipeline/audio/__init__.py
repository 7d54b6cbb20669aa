"""Stage 1, audio: files in, sample arrays out. The bottom of the stack.

Takes: paths (any container and codec PyAV or libsndfile reads) and numpy arrays.
Gives: ``probe`` (what a file is), streaming decode (``AudioReader``, ``read_window``), atomic writes,
channel mixdown with the reason for the choice (``mix``), resampling (``resample``), the 16 kHz mono
analysis view decoded in a background thread (``view``), folder scanning (``scan``), and returning freed
heap to the system between stages (``memory``).
May import: :mod:`pipeline.errors` only. Pure functions on arrays and files; no knowledge of services.
"""
