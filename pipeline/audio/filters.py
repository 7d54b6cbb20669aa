"""The few ``scipy.signal`` routines the pipeline runs, without importing ``scipy.signal``.

Importing ``scipy.signal`` costs about 45 MB of resident memory and 0.5-0.7 s of CPU in every process
(it pulls in ``scipy.stats``, ``interpolate``, ``optimize``, ``spatial`` and ``sparse``), for eight
functions. Here each of them is ``scipy.signal``'s own code path for real float64 input, on the same
compiled kernels (``scipy/signal/_sosfilt`` and ``_upfirdn_apply``, loaded from their files without the
package's ``__init__``) and with the same arithmetic in the same order, so every result is bit-identical
to ``scipy.signal``'s (``tests/test_filters.py`` compares them). If a kernel cannot be loaded (a SciPy laid
out differently), ``scipy.signal`` itself is imported and used: slower to import, the same results.

The Butterworth design (:func:`butter_highpass_sos`) is kept as ``scipy.signal.butter``'s output for the
usual sample rates (exact float64 values) and asks ``scipy.signal`` for any other rate.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import scipy
import scipy.special


@functools.cache
def _kernel(name: str) -> ModuleType | None:
    """``scipy.signal.<name>`` (a compiled module) loaded from its file, or ``None`` if it is not there."""
    full = f"scipy.signal.{name}"
    if full in sys.modules:
        return sys.modules[full]
    folder = Path(scipy.__file__).parent / "signal"
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = folder / f"{name}{suffix}"
        if not path.is_file():
            continue
        try:
            loader = importlib.machinery.ExtensionFileLoader(full, str(path))
            spec = importlib.util.spec_from_loader(full, loader)
            if spec is None:  # pragma: no cover - spec_from_loader returns a spec for a loader
                return None
            module = importlib.util.module_from_spec(spec)
            loader.exec_module(module)
        except (ImportError, OSError):  # pragma: no cover - a SciPy built differently
            return None
        return module
    return None  # pragma: no cover - a SciPy laid out differently


def _scipy_signal() -> Any:
    """``scipy.signal`` itself (the fallback; imported only when needed)."""
    from scipy import signal

    return signal


_BUTTER_HIGHPASS: dict[tuple[int, float, int], tuple[tuple[float, ...], ...]] = {
    (4, 70.0, 8000): (
        (
            0.9306773239479453,
            -1.8613546478958907,
            0.9306773239479453,
            1.0,
            -1.9004951015063838,
            0.9033709094660679,
        ),
        (1.0, -2.0, 1.0, 1.0, -1.9558495664134816, 0.9588091361311718),
    ),
    (4, 70.0, 11025): (
        (
            0.9492082337991662,
            -1.8984164675983324,
            0.9492082337991662,
            1.0,
            -1.9273906164596142,
            0.9289253268811578,
        ),
        (1.0, -2.0, 1.0, 1.0, -1.9683666759579226, 0.9699340141120124),
    ),
    (4, 70.0, 12000): (
        (
            0.9532375179065147,
            -1.9064750358130294,
            0.9532375179065147,
            1.0,
            -1.9332092031333705,
            0.9345084310308928,
        ),
        (1.0, -2.0, 1.0, 1.0, -1.9710173293702171, 0.9723419665055395),
    ),
    (4, 70.0, 16000): (
        (
            0.9647200240179613,
            -1.9294400480359226,
            0.9647200240179613,
            1.0,
            -1.9497342832209117,
            0.9504711653809539,
        ),
        (1.0, -2.0, 1.0, 1.0, -1.9784347632594061, 0.9791824924727659),
    ),
    (4, 70.0, 22050): (
        (
            0.9742746620645277,
            -1.9485493241290555,
            0.9742746620645277,
            1.0,
            -1.9634220650430847,
            0.9638127208668574,
        ),
        (1.0, -2.0, 1.0, 1.0, -1.9844553242206122, 0.9848501649648547),
    ),
    (4, 70.0, 24000): (
        (
            0.9763399835162098,
            -1.9526799670324195,
            0.9763399835162098,
            1.0,
            -1.9663734097405916,
            0.9667036500685832,
        ),
        (1.0, -2.0, 1.0, 1.0, -1.985738881602966, 0.9860723742429284),
    ),
    (4, 70.0, 32000): (
        (
            0.9822021088762631,
            -1.9644042177525263,
            0.9822021088762631,
            1.0,
            -1.974736222321119,
            0.9749227611056634,
        ),
        (1.0, -2.0, 1.0, 1.0, -1.989347889505287, 0.9895358085463974),
    ),
    (4, 70.0, 44100): (
        (
            0.9870537127960188,
            -1.9741074255920377,
            0.9870537127960188,
            1.0,
            -1.981641718346965,
            0.9817402763234369,
        ),
        (1.0, -2.0, 1.0, 1.0, -1.9922968190702584, 0.9923959069836793),
    ),
    (4, 70.0, 48000): (
        (
            0.9880993224219236,
            -1.976198644843847,
            0.9880993224219236,
            1.0,
            -1.9831281272543053,
            0.983211382060463,
        ),
        (1.0, -2.0, 1.0, 1.0, -1.9929278964907595, 0.9930115627064862),
    ),
    (4, 70.0, 88200): (
        (
            0.9935057924520058,
            -1.9870115849040115,
            0.9935057924520058,
            1.0,
            -1.990803403693502,
            0.9908281563334832,
        ),
        (1.0, -2.0, 1.0, 1.0, -1.9961658453602613, 0.9961906646741228),
    ),
    (4, 70.0, 96000): (
        (
            0.9940318701054588,
            -1.9880637402109176,
            0.9940318701054588,
            1.0,
            -1.9915493206859094,
            0.9915702222227276,
        ),
        (1.0, -2.0, 1.0, 1.0, -1.996478675943807, 0.9964996292147696),
    ),
}
"""``scipy.signal.butter(order, hz, btype="highpass", fs=rate, output="sos")`` by ``(order, hz, rate)``:
the render's and the speech band's high-pass at the usual rates (``tests/test_filters.py`` checks them)."""


def butter_highpass_sos(order: int, hz: float, rate: int) -> np.ndarray:
    """``scipy.signal.butter(order, hz, btype="highpass", fs=rate, output="sos")``: from the table for the
    usual rates, else from ``scipy.signal`` (imported then)."""
    stored = _BUTTER_HIGHPASS.get((int(order), float(hz), int(rate)))
    if stored is not None and rate == int(rate):
        return np.array(stored, dtype=np.float64)
    return _scipy_signal().butter(order, hz, btype="highpass", fs=rate, output="sos")


def _sos_array(sos: np.ndarray) -> np.ndarray:
    """``sos`` as a float64 ``(sections, 6)`` array with ``a0 == 1`` checked (``_validate_sos``)."""
    sos = np.atleast_2d(np.asarray(sos, dtype=np.float64))
    if sos.ndim != 2 or sos.shape[1] != 6:
        raise ValueError("sos array must be shape (n_sections, 6)")
    if not (sos[:, 3] == 1).all():
        raise ValueError("sos[:, 3] should be all ones")
    return sos


def sosfilt(
    sos: np.ndarray, x: np.ndarray, *, axis: int = -1, zi: np.ndarray | None = None
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """``scipy.signal.sosfilt(sos, x, axis, zi)`` for real float64 input: the filtered ``x``, and the
    final state when ``zi`` is given."""
    kernel = _kernel("_sosfilt")
    if kernel is None:  # pragma: no cover - see the module docstring
        return _scipy_signal().sosfilt(sos, x, axis=axis, zi=zi)
    return _sosfilt(kernel, sos, x, axis=axis, zi=zi, overwrite_x=False)


def _sosfilt(
    kernel: Any, sos: np.ndarray, x: np.ndarray, *, axis: int, zi: np.ndarray | None, overwrite_x: bool
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """:func:`sosfilt` on SciPy's kernel; ``overwrite_x``: a C-ordered float64 ``x`` is filtered in place
    (the same values, one array fewer) instead of in a copy."""
    sos = _sos_array(sos)
    x = np.asarray(x, dtype=np.float64)
    n_sections = sos.shape[0]
    zi_shape = list(x.shape)
    zi_shape[axis] = 2
    state_shape = (n_sections, *zi_shape)
    if zi is not None:
        state = np.array(zi, dtype=np.float64)  # a copy: the kernel works in place
        if state.shape != state_shape:
            raise ValueError(f"zi must have shape {state_shape}, got {state.shape}")
    else:
        state = np.zeros(state_shape, dtype=np.float64)
    axis = axis % x.ndim
    moved = np.moveaxis(x, axis, -1)
    state = np.moveaxis(state, (0, axis + 1), (-2, -1))
    x_shape, state_moved_shape = moved.shape, state.shape
    y = np.reshape(moved, (-1, moved.shape[-1]))
    if not (overwrite_x and y.dtype == np.float64 and y.flags.c_contiguous and y.flags.writeable):
        y = np.array(y, np.float64, order="C")
    state = np.ascontiguousarray(np.reshape(state, (-1, n_sections, 2)))
    kernel._sosfilt(sos, y, state)
    y = np.moveaxis(y.reshape(x_shape), -1, axis)
    if zi is None:
        return y
    state = np.moveaxis(state.reshape(state_moved_shape), (-2, -1), (0, axis + 1))
    return y, state


def _lfilter_zi(b: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``scipy.signal.lfilter_zi`` for one normalised second-order section (``a[0] == 1``)."""
    n = max(a.shape[0], b.shape[0])
    companion = np.zeros((n - 1, n - 1), dtype=np.float64)
    companion[0] = -a[1:] / (1.0 * a[0])
    companion[list(range(1, n - 1)), list(range(0, n - 2))] = 1
    i_minus_a = np.eye(n - 1) - companion.T
    rhs = b[1:] - a[1:] * b[0]
    return np.linalg.solve(i_minus_a, rhs)


def sosfilt_zi(sos: np.ndarray) -> np.ndarray:
    """``scipy.signal.sosfilt_zi``: the state of each section at rest under a unit step,
    ``(sections, 2)``."""
    sos = _sos_array(sos)
    zi = np.empty((sos.shape[0], 2), dtype=np.float64)
    scale = 1.0
    for k in range(sos.shape[0]):
        b, a = sos[k, :3], sos[k, 3:]
        zi[k, ...] = scale * _lfilter_zi(b, a)
        scale *= np.sum(b) / np.sum(a)
    return zi


def _odd_extension(x: np.ndarray, n: int, axis: int) -> np.ndarray:
    """``scipy.signal._arraytools.odd_ext``: ``x`` with ``n`` samples mirrored oddly at each end."""
    if n < 1:
        return x
    if n > x.shape[axis] - 1:
        raise ValueError(f"The extension length n ({n}) is too big. It must not exceed x.shape[axis]-1.")
    take = [slice(None)] * x.ndim

    def part(start: int | None, stop: int | None, step: int | None = None) -> np.ndarray:
        take[axis] = slice(start, stop, step)
        return x[tuple(take)]

    left_end, left_ext = part(0, 1), part(n, 0, -1)
    right_end, right_ext = part(-1, None), part(-2, -(n + 2), -1)
    return np.concatenate((2 * left_end - left_ext, x, 2 * right_end - right_ext), axis=axis)


def sosfiltfilt(sos: np.ndarray, x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """``scipy.signal.sosfiltfilt(sos, x, axis)`` (odd padding of the default length) for real float
    input: the sections run forwards and backwards, zero phase (float64 out; the padding in ``x``'s own
    type, as SciPy pads it)."""
    if _kernel("_sosfilt") is None:  # pragma: no cover - see the module docstring
        return _scipy_signal().sosfiltfilt(sos, x, axis=axis)
    sos = _sos_array(sos)
    x = np.asarray(x)
    n_sections = sos.shape[0]
    ntaps = 2 * n_sections + 1
    ntaps -= min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    edge = ntaps * 3
    if x.shape[axis] <= edge:
        raise ValueError(f"The length of the input vector x must be greater than padlen, which is {edge}.")
    ext = _odd_extension(x, edge, axis)
    zi = sosfilt_zi(sos)
    zi_shape = [1] * x.ndim
    zi_shape[axis] = 2
    zi = zi.reshape([n_sections, *zi_shape])

    def axis_slice(a: np.ndarray, start: int | None, stop: int | None, step: int | None = None) -> np.ndarray:
        index = [slice(None)] * a.ndim
        index[axis] = slice(start, stop, step)
        return a[tuple(index)]

    # The padded copy is ours: the forward pass runs in it, so two padded arrays exist at a time, not
    # three (the render's zero-phase high-pass of a whole clip).
    kernel = _kernel("_sosfilt")
    y, _ = _sosfilt(kernel, sos, ext, axis=axis, zi=zi * axis_slice(ext, None, 1), overwrite_x=True)
    del ext
    y, _ = _sosfilt(
        kernel,
        sos,
        axis_slice(y, None, None, -1),
        axis=axis,
        zi=zi * axis_slice(y, -1, None),
        overwrite_x=False,
    )
    y = axis_slice(y, None, None, -1)
    return axis_slice(y, edge, -edge)


def kaiser_window(m: int, beta: float) -> np.ndarray:
    """``scipy.signal.windows.kaiser(m, beta)`` (symmetric)."""
    if m <= 1:
        return np.ones(m, dtype=np.float64)
    n = np.arange(0, m, dtype=np.float64)
    alpha = (m - 1) / 2.0
    return scipy.special.i0(beta * np.sqrt(1 - ((n - alpha) / alpha) ** 2.0)) / scipy.special.i0(
        np.asarray(beta, dtype=np.float64)
    )


def _sinc(x: np.ndarray) -> np.ndarray:
    """The normalised sinc as SciPy's ``firwin`` computes it (``array_api_extra.sinc``)."""
    y = np.pi * np.where(x, x, np.finfo(x.dtype).eps)
    return np.sin(y) / y


def firwin_lowpass(numtaps: int, cutoff: float, *, beta: float) -> np.ndarray:
    """``scipy.signal.firwin(numtaps, cutoff, window=("kaiser", beta))``: a linear-phase low-pass FIR
    with its cutoff as a fraction of the Nyquist frequency, unit gain at DC."""
    if not 0.0 < cutoff < 1.0:
        raise ValueError("cutoff must lie strictly between 0 and 1 (a fraction of Nyquist)")
    right = np.float64(cutoff)
    m = np.arange(0, numtaps, dtype=np.float64) - 0.5 * (numtaps - 1)
    h: Any = 0
    h += right * _sinc(right * m)
    h -= np.float64(0.0) * _sinc(np.float64(0.0) * m)
    h *= kaiser_window(numtaps, beta)
    c = np.cos(np.pi * m * 0.0)
    h /= np.sum(h * c)
    return h


def upsample_poly(x: np.ndarray, up: int, *, axis: int = 0, beta: float = 5.0) -> np.ndarray:
    """``scipy.signal.resample_poly(x, up, 1, axis, window=("kaiser", beta))`` for real ``x``: ``x``
    interpolated ``up`` times (``up`` >= 2), in float32 for float32 input and float64 otherwise, as SciPy."""
    kernel = _kernel("_upfirdn_apply")
    if kernel is None:  # pragma: no cover - see the module docstring
        return _scipy_signal().resample_poly(x, up, 1, axis=axis, window=("kaiser", beta))
    if int(up) != up or up < 2:
        raise ValueError("up must be an integer of at least 2")
    x = np.asarray(x)
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    x = x.astype(dtype, copy=False)
    n_in = x.shape[axis]
    n_out = n_in * up
    half_len = 10 * up
    h = firwin_lowpass(2 * half_len + 1, 1.0 / up, beta=beta).astype(dtype)
    h *= up
    n_pre_pad = 1 - half_len % 1  # down == 1
    n_post_pad = 0
    n_pre_remove = half_len + n_pre_pad
    while kernel._output_len(h.shape[0] + n_pre_pad + n_post_pad, n_in, up, 1) < n_out + n_pre_remove:
        n_post_pad += 1
    h = np.concatenate((np.zeros(n_pre_pad, dtype), h, np.zeros(n_post_pad, dtype)))
    # scipy.signal._upfirdn._UpFIRDn: the filter's phases, reversed, then the compiled loop.
    padded = np.zeros(len(h) + (-len(h) % up), h.dtype)
    padded[: len(h)] = h
    phases = np.ascontiguousarray(padded.reshape(-1, up).T[:, ::-1].ravel())
    out_shape = np.asarray(x.shape, dtype=np.int64)
    out_shape[axis] = kernel._output_len(len(h), n_in, up, 1)
    y = np.zeros(out_shape, dtype=dtype, order="C")
    kernel._apply(x, phases, y, up, 1, axis % x.ndim, kernel.mode_enum("constant"), 0)
    keep = [slice(None)] * x.ndim
    keep[axis] = slice(n_pre_remove, n_pre_remove + n_out)
    return y[tuple(keep)]


def bilinear(b: np.ndarray, a: np.ndarray, *, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """``scipy.signal.bilinear(b, a, fs)``: the digital filter of the analog ``b(s)/a(s)`` by the
    bilinear transform, normalised to ``a[0] == 1``."""
    b, a = np.trim_zeros(np.atleast_1d(np.asarray(b)), "f"), np.trim_zeros(np.atleast_1d(np.asarray(a)), "f")
    fac = np.sqrt(fs * 2)
    zp1 = np.polynomial.Polynomial((+1, 1)) / fac
    zm1 = np.polynomial.Polynomial((-1, 1)) * fac
    n = max(len(a), len(b)) - 1
    numerator = sum(b_ * zp1 ** (n - q) * zm1**q for q, b_ in enumerate(b[::-1]))
    denominator = sum(a_ * zp1 ** (n - p) * zm1**p for p, a_ in enumerate(a[::-1]))
    num, den = np.asarray(numerator.coef[::-1].copy()), np.asarray(denominator.coef[::-1].copy())
    den = np.trim_zeros(den, "f")
    num, den = num / den[0], den / den[0]
    if np.all(np.abs(num[:1]) <= 1e-14):  # pragma: no cover - the pipeline's filters never do this
        return _scipy_signal().bilinear(b, a, fs=fs)
    return num, den


def sos_response(sos: np.ndarray, freqs: np.ndarray, *, fs: float) -> np.ndarray:
    """``scipy.signal.sosfreqz(sos, worN=freqs, fs=fs)[1]``: the complex response at ``freqs`` (Hz)."""
    sos = _sos_array(sos)
    w = 2 * math.pi * np.atleast_1d(np.asarray(freqs, dtype=np.float64)) / fs
    zm1 = np.exp(-1j * w)
    h: Any = 1.0
    for row in sos:
        h *= _polyval(zm1, row[:3]) / _polyval(zm1, row[3:])
    return np.asarray(h)


def _polyval(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``c[0] + c[1] x + c[2] x^2 ...`` by Horner's rule, as SciPy's ``npp_polyval`` runs it."""
    c0 = c[-1] + x * 0
    for i in range(2, c.shape[0] + 1):
        c0 = c[-i] + c0 * x
    return c0
