"""The noise under the speech, measured without pauses: minimum statistics over time-frequency cells.

The pauses between words show the noise only when there are pauses. Under continuous noise (a sea, a
fan, a street with no quiet between words) the speech mask covers everything and no frame is left to
measure it in. But speech is sparse in time *and* frequency: within two seconds every band has moments
(between phonemes, in the closure of a stop, between syllables) when only the noise is in it. So the
noise of a band is the minimum of its short-time power over a couple of seconds (Martin, 2001, "Noise
power spectral density estimation based on optimal smoothing and minimum statistics"), scaled up by how
far the minimum of the noise alone lies under its mean.

How it streams: the speech band of the 16 kHz view (:class:`~pipeline.analysis.energy.SpeechBandFilter`)
is cut into *cells* of :data:`CELL_FRAMES` analysis frames (40 ms, Hann window, 25 Hz bins) whose power
is summed into the bands of :data:`BAND_EDGES_HZ`; every :data:`SUBWINDOW_CELLS` cells the minimum of
each band is kept (a few floats per 0.32 s, 1 MB per hour). :meth:`NoiseTracker.finish` takes, for each
sub-window, the minimum over the :data:`WINDOW_SUBWINDOWS` sub-windows centred on it, multiplies each
band by its bias (the mean over the expected minimum of stationary noise, calibrated on seeded white noise
through this very tracker; the result is stored) and sums the bands: the noise power of every 10 ms frame,
in the units of :class:`~pipeline.analysis.energy.FrameEnergy` of the speech band.

What it cannot see: noise that rises and falls faster than the window (clanks, a passing car, typing)
is read at its quiet moments, too low; a band that holds speech without a break for the whole window
reads the speech, too high. :func:`pipeline.analysis.snr.snr_db` uses it only where the pauses cannot
answer (docs/accuracy.md has the measurements).
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft
from scipy.ndimage import minimum_filter1d

from pipeline.analysis import calibration
from pipeline.analysis.base import ANALYSIS_RATE, FRAME_SAMPLES, whole_frames

CELL_FRAMES = 4
"""Analysis frames (10 ms) per cell: 40 ms, 25 Hz resolution."""

BAND_EDGES_HZ: tuple[float, ...] = (
    0.0, 250.0, 500.0, 750.0, 1000.0, 1250.0, 1500.0, 2000.0, 2500.0, 3000.0, 4000.0, 5000.0, 6000.0,
    7000.0, 8000.0,
)  # fmt: skip
"""Edges of the bands whose minima are tracked separately: a quarter kilohertz wide where voiced speech
has its harmonics, wider above. The noise's spectrum may have any shape across bands."""

SUBWINDOW_CELLS = 8
"""Cells per sub-window (0.32 s): the minimum of each band is kept once per sub-window."""

WINDOW_SUBWINDOWS = 5
"""Sub-windows over which the minimum is taken, centred on each one (1.6 s): long enough to hold a gap
in the speech in every band, short enough to follow noise that changes from sentence to sentence."""

CALIBRATION_S = 60.0
"""Seconds of seeded white noise the bias is calibrated on (once per process)."""

MIN_CELLS = 2 * SUBWINDOW_CELLS
"""Cells (0.64 s) needed for a noise track at all."""

_CELL_SAMPLES = CELL_FRAMES * FRAME_SAMPLES
_CALIBRATION_SEED = 20010701


class NoiseTracker:
    """Streaming minimum-statistics noise tracker over the speech band of the 16 kHz view.

    Feed the *speech band* (the output of :class:`~pipeline.analysis.energy.SpeechBandFilter`) in
    blocks of any length with :meth:`process`; :meth:`finish` gives the noise power of every frame.
    """

    def __init__(self) -> None:
        self._window = np.hanning(_CELL_SAMPLES + 2)[1:-1]
        bins = np.fft.rfftfreq(_CELL_SAMPLES, 1.0 / ANALYSIS_RATE)
        band_of_bin = np.clip(
            np.searchsorted(BAND_EDGES_HZ, bins, side="right") - 1, 0, len(BAND_EDGES_HZ) - 2
        )
        self._band_starts = np.searchsorted(band_of_bin, np.arange(len(BAND_EDGES_HZ) - 1), side="left")
        # One-sided power to mean-square units: twice every bin over N * sum(w^2) (DC and Nyquist count
        # twice too: the high-pass leaves nothing at DC and the bin at 8 kHz holds a 640th of the band).
        self._interleaved_starts = 2 * self._band_starts
        self._band_scale = 2.0 / (_CELL_SAMPLES * float(np.sum(self._window**2)))
        self._rest = np.zeros(0, dtype=np.float64)
        self._pending = np.zeros((0, len(BAND_EDGES_HZ) - 1))
        self._minima: list[np.ndarray] = []
        self._cells = 0

    def process(self, band: np.ndarray) -> None:
        """Add the next block of the speech band (1-D float, any length)."""
        cells, self._rest = whole_frames(self._rest, band.astype(np.float64, copy=False), _CELL_SAMPLES)
        if not cells.shape[0]:
            return
        bands = self.cell_bands(cells)
        self._cells += bands.shape[0]
        pending = np.concatenate([self._pending, bands]) if self._pending.shape[0] else bands
        whole = (pending.shape[0] // SUBWINDOW_CELLS) * SUBWINDOW_CELLS
        if whole:
            shaped = pending[:whole].reshape(-1, SUBWINDOW_CELLS, pending.shape[1])
            self._minima.append(shaped.min(axis=1))
        self._pending = pending[whole:]

    def cell_bands(self, cells: np.ndarray) -> np.ndarray:
        """The power of each band (mean-square units) of each row of ``cells`` (40 ms of samples each)."""
        spectrum = scipy.fft.rfft((cells * self._window).astype(np.float32), axis=1, workers=1)
        power = np.square(spectrum.view(np.float32), dtype=np.float64)  # interleaved re, im
        return np.add.reduceat(power, self._interleaved_starts, axis=1) * self._band_scale

    def band_minima(self) -> np.ndarray:
        """The minimum of each band in every sub-window so far (sub-windows x bands), the last one partial."""
        parts = list(self._minima)
        if self._pending.shape[0]:
            parts.append(self._pending.min(axis=0, keepdims=True))
        return np.concatenate(parts) if parts else np.zeros((0, len(BAND_EDGES_HZ) - 1))

    def band_noise(self) -> np.ndarray | None:
        """The noise power of each band in every sub-window (sub-windows x bands), bias-corrected; ``None``
        with fewer than :data:`MIN_CELLS` cells."""
        if self._cells < MIN_CELLS:
            return None
        minima = minimum_filter1d(self.band_minima(), size=WINDOW_SUBWINDOWS, axis=0, mode="nearest")
        return minima * band_bias()

    def finish(self, n_frames: int) -> np.ndarray | None:
        """The noise power (speech band, mean square) of each of ``n_frames`` 10 ms frames; ``None`` with
        fewer than :data:`MIN_CELLS` cells. Frames past the last cell take the last sub-window's value."""
        noise = self.band_noise()
        if noise is None:
            return None
        per_subwindow = noise.sum(axis=1)
        index = np.minimum(np.arange(n_frames) // (CELL_FRAMES * SUBWINDOW_CELLS), per_subwindow.shape[0] - 1)
        return per_subwindow[index]


@functools.cache
def band_bias() -> np.ndarray:
    """Per band: the mean power of stationary white noise over the mean of what :class:`NoiseTracker`
    tracks of it (the window's minimum). About 2-4 (3-6 dB). The result of :func:`simulate_band_bias`,
    stored in :data:`pipeline.analysis.calibration.BAND_BIAS` (read-only)."""
    bias = np.array(calibration.BAND_BIAS, dtype=np.float64)
    if bias.shape != (len(BAND_EDGES_HZ) - 1,):  # the bands changed: the stored bias is stale
        return simulate_band_bias()
    bias.setflags(write=False)
    return bias


def simulate_band_bias() -> np.ndarray:
    """Measure :func:`band_bias` on :data:`CALIBRATION_S` seconds of seeded white noise through the
    speech-band filter and the tracker (read-only)."""
    from pipeline.analysis.energy import SpeechBandFilter

    rng = np.random.default_rng(_CALIBRATION_SEED)
    band = SpeechBandFilter().process(rng.standard_normal(round(CALIBRATION_S * ANALYSIS_RATE)))
    tracker = NoiseTracker()
    tracker.process(band)
    cells = band[: (band.shape[0] // _CELL_SAMPLES) * _CELL_SAMPLES].reshape(-1, _CELL_SAMPLES)
    mean = tracker.cell_bands(cells).mean(axis=0)
    minima = minimum_filter1d(tracker.band_minima(), size=WINDOW_SUBWINDOWS, axis=0, mode="nearest")
    bias = mean / minima.mean(axis=0)
    bias.setflags(write=False)
    return bias
