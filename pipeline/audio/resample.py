"""Sample-rate conversion with soxr: one-shot for short arrays, streaming for long recordings.

Both paths use the same soxr filter, so a recording resampled block by block equals the same recording
resampled in one call. The output of a whole signal of ``n`` samples has exactly
``floor(n * out_rate / in_rate + 0.5)`` samples (soxr's own rounding, half up); a stream delivers that total
only after its final ``last=True`` call, because the filter holds back a short delay.
"""

from __future__ import annotations

import numpy as np
import soxr

from pipeline.errors import InvalidArgument

QUALITIES: tuple[str, ...] = ("QQ", "LQ", "MQ", "HQ", "VHQ")
"""soxr quality recipes, fastest first. ``HQ`` (the default) attenuates aliases by more than 100 dB."""


def output_length(n: int, *, in_rate: int, out_rate: int) -> int:
    """Number of samples a whole signal of ``n`` samples has after resampling (round half up)."""
    if n < 0:
        raise InvalidArgument(f"n must be >= 0, got {n!r}")
    _check_rates(in_rate, out_rate)
    return (2 * n * out_rate + in_rate) // (2 * in_rate)


def _check_rates(in_rate: int, out_rate: int) -> None:
    for name, value in (("in_rate", in_rate), ("out_rate", out_rate)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
            raise InvalidArgument(f"{name} must be a positive integer (Hz), got {value!r}")


def _check_quality(quality: str) -> None:
    if quality not in QUALITIES:
        raise InvalidArgument(f"quality must be one of {', '.join(QUALITIES)}, got {quality!r}")


def _as_float32(x: np.ndarray, *, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim not in (1, 2):
        raise InvalidArgument(f"{name} must be 1-D (n,) or 2-D (n, channels), got shape {arr.shape}")
    # asarray with the same dtype returns the array itself: no copy for float32 input.
    return np.asarray(arr, dtype=np.float32)


class StreamResampler:
    """Resample a signal that arrives in blocks, keeping the filter state between blocks.

    Feed blocks with :meth:`process`; pass ``last=True`` with the final block (it may be empty) to flush
    the filter's tail. Each call returns whatever output is ready, which may be empty. When the rates are
    equal the blocks pass through unchanged (only cast to float32).
    """

    def __init__(self, in_rate: int, out_rate: int, *, channels: int = 1, quality: str = "HQ") -> None:
        """Prepare a stream from ``in_rate`` to ``out_rate`` Hz for ``channels`` interleaved channels."""
        _check_rates(in_rate, out_rate)
        _check_quality(quality)
        if isinstance(channels, bool) or not isinstance(channels, int | np.integer) or channels < 1:
            raise InvalidArgument(f"channels must be a positive integer, got {channels!r}")
        self.in_rate = int(in_rate)
        self.out_rate = int(out_rate)
        self.channels = int(channels)
        self.quality = quality
        self.finished = False
        self._stream: soxr.ResampleStream | None = None
        if self.in_rate != self.out_rate:
            self._stream = soxr.ResampleStream(
                self.in_rate, self.out_rate, self.channels, dtype="float32", quality=quality
            )

    def process(self, block: np.ndarray, *, last: bool = False) -> np.ndarray:
        """Resample one block and return the output ready so far (float32).

        ``block`` is ``(n,)`` or ``(n, channels)``; the output has the same number of dimensions. After a
        call with ``last=True`` the stream is finished and further calls raise :class:`InvalidArgument`.
        """
        if self.finished:
            raise InvalidArgument("process() was called after last=True; create a new StreamResampler")
        x = _as_float32(block, name="block")
        width = 1 if x.ndim == 1 else x.shape[1]
        if width != self.channels:
            raise InvalidArgument(f"block has {width} channel(s), the stream was made for {self.channels}")
        self.finished = bool(last)
        if self._stream is None:
            return x
        # soxr needs C-contiguous input; a column slice of a wider array is not.
        return self._stream.resample_chunk(np.ascontiguousarray(x), last=bool(last))


def resample(x: np.ndarray, *, in_rate: int, out_rate: int, quality: str = "HQ") -> np.ndarray:
    """Resample a whole signal ``(n,)`` or ``(n, channels)`` from ``in_rate`` to ``out_rate`` Hz.

    Returns float32 with exactly :func:`output_length` samples. Equal rates return the input itself
    (cast to float32 if needed, no copy otherwise).
    """
    _check_rates(in_rate, out_rate)
    _check_quality(quality)
    arr = _as_float32(x, name="x")
    if in_rate == out_rate:
        return arr
    expected = output_length(arr.shape[0], in_rate=int(in_rate), out_rate=int(out_rate))
    out = soxr.resample(np.ascontiguousarray(arr), int(in_rate), int(out_rate), quality=quality)
    out = np.asarray(out, dtype=np.float32)
    if out.shape[0] != expected:  # soxr rounds the same way; keep the documented length regardless
        pad = [(0, max(0, expected - out.shape[0]))] + [(0, 0)] * (out.ndim - 1)
        out = np.pad(out[:expected], pad)
    return out
