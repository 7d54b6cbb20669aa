"""Audio I/O and DSP helpers: pure functions on numpy arrays and files."""
