"""Low-frequency noise: the rumble below the render's high-pass, and mains hum.

Two kinds of noise live low in the spectrum and are treated differently by the render:

* **Rumble** (``rumble_db``): everything the render's DC/rumble high-pass
  (:data:`~pipeline.analysis.energy.HIGHPASS_HZ`) removes: room and building rumble, air conditioning,
  traffic, wind and handling thumps, the hum's own fundamental. It is the mean power of the 16 kHz view
  minus that of its speech band (:class:`~pipeline.analysis.energy.SpeechBandFilter`), over the whole
  recording, in dB relative to the speech (the speech frames' power in the speech band, less their noise:
  the ``S`` of ``snr_db``). A voice has almost nothing there: clean read speech measures -35 to -60 dB.
* **Mains hum** (``hum_hz``, ``hum_db``): narrow lines at the multiples of 50 or 60 Hz that stay put for
  the whole recording. Its fundamental falls under the high-pass; its harmonics (100-700 Hz) do not, and
  no high-pass removes them without removing the voice. ``hum_db`` is the power of the harmonics the
  render keeps, relative to the speech, when a hum is found (``None`` with ``absent`` otherwise).

How the hum is found: the 16 kHz view is averaged over groups of 8 samples (2 kHz, a cheap decimation whose
zeros at 2, 4, 6 kHz keep most of the voice from folding down) and cut into 1024-sample Hann segments
(0.51 s, 1.95 Hz bins); their power spectra are summed by the segment's level, in
:data:`LEVEL_STEP_DB` steps, so that :meth:`LowFrequencyMeter.hum` can take the quietest quarter of the
recording: there the speech, whose harmonics around a hum line are 20-30 dB louder than the line of a hum
20 dB under the voice, is mostly absent, while a hum, which never stops, is all there. For each mains
frequency and each of its first :data:`HUM_HARMONICS` harmonics, the line's peak is compared with the
median of that spectrum 8-20 Hz to either side: a voice's harmonics move with its pitch and smear into a
broad hump, a hum's stay within a bin. A mains frequency counts as hum with its fundamental
(below any voice: a voice's harmonics can fall on 100, 150, 200 Hz, never on 50 or 60) and at least
:data:`HUM_MIN_LINES` lines in all :data:`HUM_LINE_DB` or more over their surroundings; the one with more
lines (then the louder) wins. A line's power is its excess over the surroundings, summed over its main lobe.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from pipeline.analysis.base import ANALYSIS_RATE, Analysis, whole_frames
from pipeline.analysis.energy import highpass_sos
from pipeline.audio import filters

MAINS_HZ: tuple[float, ...] = (50.0, 60.0)
"""The mains frequencies looked for."""

HUM_HARMONICS = 12
"""Harmonics of the mains frequency examined (up to 600 or 720 Hz)."""

HUM_LINE_DB = 10.0
"""How far a line's peak must rise over the median of its surroundings to count (dB)."""

HUM_TOLERANCE_HZ = 0.6
"""How far a line's measured frequency may lie from the multiple of the mains frequency (Hz)."""

HUM_MIN_LINES = 2
"""Lines a mains frequency needs to count as hum."""

DECIMATION = 8
"""Samples of the 16 kHz view averaged into one for the hum spectrum (2 kHz)."""

SEGMENT = 1024
"""Samples (at 2 kHz) per hum spectrum: 0.51 s, 1.95 Hz bins."""

LEVEL_STEP_DB = 3.0
"""Segments are summed in classes of this width by their level (dB)."""

QUIET_SHARE = 0.25
"""Share of the segments, the quietest, whose spectrum the hum is found and measured in."""

_LOBE_BINS = 3  # a Hann line spreads over +-2 bins; +-3 holds it whatever its offset from a bin centre
_NEAR_HZ = (8.0, 20.0)  # the surroundings a line is compared with, each side
_LEVEL_CLASSES = 60  # -150 to +30 dBFS in 3 dB steps


def row_means(rows: np.ndarray) -> np.ndarray:
    """``rows.mean(axis=1)`` of a float64 ``(n, columns)`` array, bit for bit.

    Rows of eight (:data:`DECIMATION`) are added in numpy's own pairwise order for eight values, column
    by column: numpy's reduction machinery costs four times the additions on rows this short (0.2 s of
    CPU per hour of audio). Other widths go to numpy.
    """
    if rows.shape[1] != 8:
        return rows.mean(axis=1)
    c = [rows[:, k] for k in range(8)]
    return (((c[0] + c[1]) + (c[2] + c[3])) + ((c[4] + c[5]) + (c[6] + c[7]))) / 8.0


class LowFrequencyMeter:
    """Streaming rumble and hum meter: feed the 16 kHz view and its speech band, block by block."""

    def __init__(self) -> None:
        self._rate = ANALYSIS_RATE / DECIMATION
        self._window = np.hanning(SEGMENT + 2)[1:-1]
        self._scale = 2.0 / (SEGMENT * float(np.sum(self._window**2)))
        self._groups = np.zeros(0, dtype=np.float64)
        self._low = np.zeros(0, dtype=np.float64)
        self._band_groups = np.zeros(0, dtype=np.float64)
        self._band_low = np.zeros(0, dtype=np.float64)
        self._spectra = np.zeros((_LEVEL_CLASSES, SEGMENT // 2 + 1))
        self._counts = np.zeros(_LEVEL_CLASSES, dtype=np.int64)
        self._segments = 0
        self._power = 0.0
        self._band_power = 0.0
        self._samples = 0

    def process(self, mono16k: np.ndarray, band: np.ndarray) -> None:
        """Add a block of the 16 kHz view and the same block of its speech band."""
        x = mono16k.astype(np.float64, copy=False)
        # Sums that do not go through BLAS: its threaded kernels add in an order that depends on the thread
        # count, so a process-pool worker (OMP_NUM_THREADS=1) and the parent gave different last digits.
        self._power += float(np.einsum("i,i->", x, x))
        self._band_power += float(np.einsum("i,i->", band, band))
        self._samples += x.shape[0]
        groups, self._groups = whole_frames(self._groups, x, DECIMATION)
        band_groups, self._band_groups = whole_frames(self._band_groups, band * band, DECIMATION)
        if not groups.shape[0]:
            return
        segments, self._low = whole_frames(self._low, row_means(groups), SEGMENT)
        band_energy, self._band_low = whole_frames(self._band_low, row_means(band_groups), SEGMENT)
        if segments.shape[0]:
            spectra = scipy.fft.rfft(segments * self._window, axis=1, workers=1)
            # Classed by the speech band's level: under loud rumble the whole band's level says nothing
            # about where the voice is.
            level = 10.0 * np.log10(band_energy.mean(axis=1) + 1e-15)
            cls = np.clip(((level + 150.0) // LEVEL_STEP_DB).astype(np.int64), 0, _LEVEL_CLASSES - 1)
            np.add.at(self._spectra, cls, spectra.real**2 + spectra.imag**2)
            self._counts += np.bincount(cls, minlength=_LEVEL_CLASSES)
            self._segments += segments.shape[0]

    def removed_power(self) -> float | None:
        """Mean power the high-pass removes (the 16 kHz view's minus its speech band's); ``None`` if empty."""
        if not self._samples:
            return None
        return max(self._power - self._band_power, 0.0) / self._samples

    def quiet_spectrum(self) -> np.ndarray:
        """Mean power spectrum (mean-square units per bin) of the quietest :data:`QUIET_SHARE` of the
        segments: the level classes from the quietest up until they hold that share."""
        enough = max(1, round(QUIET_SHARE * self._segments))
        last = int(np.searchsorted(np.cumsum(self._counts), enough))
        counts = int(self._counts[: last + 1].sum())
        return self._spectra[: last + 1].sum(axis=0) * self._scale / max(counts, 1)

    def hum(self) -> tuple[float, float] | None:
        """``(mains frequency, kept power)`` of the hum found, or ``None``: the power (mean square, 16 kHz
        view) of its lines weighted by the high-pass's power response, i.e. what the render keeps."""
        if not self._segments:
            return None
        mean = self.quiet_spectrum()
        freqs = np.fft.rfftfreq(SEGMENT, 1.0 / self._rate)
        boxcar = np.sinc(freqs * DECIMATION / ANALYSIS_RATE) ** 2  # the group mean's own response
        kept = _highpass_power_response(freqs)
        best: tuple[int, float, float, float] | None = None
        for mains in MAINS_HZ:
            lines, kept_power, total = 0, 0.0, 0.0
            for k in range(1, HUM_HARMONICS + 1):
                excess = _line_excess(mean, freqs, k * mains)
                if excess is None:
                    if k == 1:
                        break  # no fundamental: the lines above it could be a voice's harmonics
                    continue
                centre = int(np.argmin(np.abs(freqs - k * mains)))
                power = excess / boxcar[centre]
                lines += 1
                total += power
                kept_power += power * kept[centre]
            if lines >= HUM_MIN_LINES and (best is None or (lines, total) > (best[0], best[2])):
                best = (lines, mains, total, kept_power)
        return None if best is None else (best[1], best[3])

    def finish(self, *, speech_power: float | None) -> Analysis:
        """``rumble_db``, ``hum_hz`` and ``hum_db`` (relative to ``speech_power``, the clean speech's mean
        power in the speech band; ``None`` with a reason when there is no speech to compare with)."""
        m = Analysis()
        removed = self.removed_power()
        hum = self.hum()
        if hum is None:
            why = "absent: no mains hum (no lines at the multiples of 50 or 60 Hz)"
            m.put("hum_hz", None, why=why)
            m.put("hum_db", None, why=why)
        else:
            m.put("hum_hz", hum[0])
        if speech_power is None or speech_power <= 0.0:
            why = "no_speech: no speech to compare the low-frequency noise with"
            m.put("rumble_db", None, why=why)
            if hum is not None:
                m.put("hum_db", None, why=why)
            return m
        m.put("rumble_db", _db_over(removed, speech_power))
        if hum is not None:
            m.put("hum_db", _db_over(hum[1], speech_power))
        return m


def _db_over(power: float | None, reference: float) -> float | None:
    """``power`` in dB relative to ``reference``, floored at -120 dB (``None`` stays ``None``)."""
    if power is None:
        return None
    return float(10.0 * np.log10(max(power, reference * 1e-12) / reference))


def _line_excess(mean: np.ndarray, freqs: np.ndarray, line_hz: float) -> float | None:
    """The power of a narrow line at ``line_hz`` over its surroundings (summed over its main lobe), or
    ``None`` when its peak is not :data:`HUM_LINE_DB` over the median of the surroundings, or lies more
    than :data:`HUM_TOLERANCE_HZ` from ``line_hz`` (a line off the mains grid: an engine, a voice)."""
    if line_hz + _NEAR_HZ[1] >= freqs[-1]:
        return None
    centre = int(np.argmin(np.abs(freqs - line_hz)))
    lobe = mean[max(centre - _LOBE_BINS, 0) : centre + _LOBE_BINS + 1]
    distance = np.abs(freqs - line_hz)
    around = mean[(distance >= _NEAR_HZ[0]) & (distance <= _NEAR_HZ[1])]
    background = float(np.median(around))
    top = max(centre - _LOBE_BINS, 0) + int(np.argmax(lobe))
    if mean[top] < background * 10.0 ** (HUM_LINE_DB / 10.0) or not 0 < top < mean.shape[0] - 1:
        return None
    # Where the line really is (a parabola through the log power of the top three bins): mains frequency
    # holds within 0.1 Hz; an engine's harmonics (26.6, 53.3, 79.9 Hz ...) only pass near the grid.
    a, b, c = np.log(mean[top - 1 : top + 2] + 1e-300)
    shift = 0.5 * (a - c) / (a - 2.0 * b + c) if a - 2.0 * b + c < 0 else 0.0
    if abs(freqs[top] + shift * (freqs[1] - freqs[0]) - line_hz) > HUM_TOLERANCE_HZ:
        return None
    return float(np.sum(np.maximum(lobe - background, 0.0)))


def _highpass_power_response(freqs: np.ndarray) -> np.ndarray:
    """The render's high-pass, run forwards and backwards, as a power gain at ``freqs`` (``|H|^4``)."""
    h = filters.sos_response(highpass_sos(ANALYSIS_RATE), freqs, fs=ANALYSIS_RATE)
    return np.abs(h) ** 4
