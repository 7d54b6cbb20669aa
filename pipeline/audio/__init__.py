"""Stage 1, audio: files in, sample arrays out. The bottom of the stack.

Takes: paths (any container and codec PyAV or libsndfile reads) and numpy arrays.
Gives: ``probe`` (what a file is), streaming decode (``AudioReader``, ``read_window``), atomic writes,
channel mixdown with the reason for the choice (``mix``), resampling (``resample``), the IIR and FIR
filters the meters and the render run, ``scipy.signal``'s results without importing it (``filters``), the 16 kHz mono
analysis view decoded in a background thread (``view``), folder scanning (``scan``), returning freed heap
to the system between stages (``memory``), what the decoders say kept as bounded notes instead of
terminal output (``notes``), and the argument checks every public function shares (``arguments``: the
public functions check once, everything inside trusts its typed inputs).
May import: :mod:`pipeline.errors` only. Pure functions on arrays and files; no knowledge of services.
"""
