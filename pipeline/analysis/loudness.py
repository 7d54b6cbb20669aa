"""Streaming ITU-R BS.1770-4 loudness: integrated LUFS, true peak (dBTP) and sample peak (dBFS).

K-weighting: the standard publishes the two biquads (a high shelf of about +4 dB above 1.5 kHz that models
the head, and a 38 Hz high-pass) only for 48 kHz. :func:`k_weighting_sos` maps those published
coefficients back to the analog prototype with the inverse bilinear transform and discretises the
prototype again at the wanted rate (pre-warped at each section's pole frequency), so 48 kHz reproduces
the standard exactly and other rates follow its response: within 0.07 dB up to 0.95 x Nyquist at 16 kHz,
0.3 dB at 8 kHz.

Gating: mean squares of 100 ms sub-blocks are kept (memory grows by one float per 100 ms); the 400 ms
blocks with 75 % overlap are sums of four consecutive sub-blocks. Blocks below -70 LUFS are dropped
(absolute gate), then blocks more than 10 LU below the loudness of the remaining ones (relative gate).

True peak: 4x oversampling with a windowed-sinc polyphase interpolator, filter state carried across
blocks, as in BS.1770-4 Annex 2 (no 12 dB input attenuation is needed in floating point).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.analysis.base import Analysis
from pipeline.audio import filters
from pipeline.audio.arguments import integer
from pipeline.audio.arguments import signal as signal_arg
from pipeline.errors import InvalidArgument

# BS.1770-4 Table 1 (pre-filter, the head's high shelf) and Table 2 (RLB high-pass), at 48 kHz.
_REF_RATE = 48000.0
_SHELF_B_48K = (1.53512485958697, -2.69169618940638, 1.19839281085285)
_SHELF_A_48K = (1.0, -1.69065929318241, 0.73248077421585)
_HIGHPASS_B_48K = (1.0, -2.0, 1.0)
_HIGHPASS_A_48K = (1.0, -1.99004745483398, 0.99007225036621)

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
BLOCK_S = 0.4
SUBBLOCKS_PER_BLOCK = 4  # 75 % overlap: a new 400 ms block every 100 ms
OVERSAMPLE = 4
PEAK_FLOOR_DB = -120.0
_TAPS_PER_PHASE = 32
_LOUDNESS_OFFSET = -0.691  # BS.1770: 0 dBFS 997 Hz sine in one channel reads -3.01 LKFS


def _analog_from_digital(b: Sequence[float], a: Sequence[float], rate: float) -> tuple[np.ndarray, ...]:
    """Inverse bilinear transform of a biquad: the analog ``(b, a)`` that ``bilinear`` maps back to it."""
    c = 2.0 * rate
    # z^-1 = (1 - s/c) / (1 + s/c); multiply numerator and denominator by (1 + s/c)^2.
    basis = (
        np.polymul([1.0 / c, 1.0], [1.0 / c, 1.0]),  # (1 + s/c)^2
        np.polymul([-1.0 / c, 1.0], [1.0 / c, 1.0]),  # (1 - s/c)(1 + s/c)
        np.polymul([-1.0 / c, 1.0], [-1.0 / c, 1.0]),  # (1 - s/c)^2
    )
    num = sum(coef * poly for coef, poly in zip(b, basis, strict=True))
    den = sum(coef * poly for coef, poly in zip(a, basis, strict=True))
    return np.asarray(num), np.asarray(den)


def k_weighting_sos(sample_rate: float) -> np.ndarray:
    """Second-order sections of the BS.1770 K-weighting filter at ``sample_rate`` (Hz)."""
    sections = []
    for b48, a48 in ((_SHELF_B_48K, _SHELF_A_48K), (_HIGHPASS_B_48K, _HIGHPASS_A_48K)):
        if sample_rate == _REF_RATE:
            b, a = np.asarray(b48), np.asarray(a48)
        else:
            bs, as_ = _analog_from_digital(b48, a48, _REF_RATE)
            # Pre-warp at the prototype's pole frequency (about 1.68 kHz for the shelf, 38 Hz for the
            # high-pass) so the new filter matches the 48 kHz response where it changes fastest.
            f0 = np.sqrt(as_[2] / as_[0]) / (2.0 * np.pi)
            warp = np.tan(np.pi * f0 / _REF_RATE) / np.tan(np.pi * min(f0, 0.45 * sample_rate) / sample_rate)
            b, a = filters.bilinear(bs, as_, fs=_REF_RATE * warp)
        sections.append(np.concatenate([b / a[0], a / a[0]]))
    return np.vstack(sections)


def _true_peak_filter() -> np.ndarray:
    """Interpolation filter for 4x oversampling, shape ``(OVERSAMPLE, _TAPS_PER_PHASE)`` (polyphase).

    A Kaiser-windowed sinc of odd length with its cutoff at the input's Nyquist frequency: the delay is a
    whole number of output samples, so the four phases sit at offsets 0, 1/4, 1/2 and 3/4 of an input
    sample, and the gain error of every phase stays under 0.01 dB up to 0.4 x the sample rate.
    """
    n = OVERSAMPLE * _TAPS_PER_PHASE - 1
    h = filters.firwin_lowpass(n, 1.0 / OVERSAMPLE, beta=8.0) * OVERSAMPLE
    h = np.concatenate([h, [0.0]])
    return h.reshape(_TAPS_PER_PHASE, OVERSAMPLE).T.copy()


def amplitude_db(amplitude: float) -> float:
    """Amplitude to dB (20 log10), floored at :data:`PEAK_FLOOR_DB`."""
    if amplitude <= 10.0 ** (PEAK_FLOOR_DB / 20.0):
        return PEAK_FLOOR_DB
    return float(20.0 * np.log10(amplitude))


class TruePeakMeter:
    """Streaming true peak (ITU-R BS.1770-4 annex 2): the largest absolute value of the signal
    oversampled 4x, never below the sample peak.

    ``process`` takes float arrays ``(channels, samples)``; :attr:`peak` is the linear true peak so far.
    Only the interpolated values that could raise the peak are computed: no interpolated value exceeds
    the largest sample in its filter window times the largest phase's L1 norm, so windows whose samples
    all stay below ``peak / bound`` are skipped. The answer is exact; the work shrinks once the peak is
    established (most blocks of speech then need a few hundred interpolated values, not all of them).
    """

    def __init__(self, *, channels: int = 1) -> None:
        phases = _true_peak_filter()
        self._gain_bound = float(np.abs(phases).sum(axis=1).max())
        # The phase at offset 0 is (to rounding) a pure delay: it only repeats the sample peak.
        delay_only = np.abs(phases).max(axis=1) > 1.0 - 1e-9
        # float32 halves the cost of the convolutions; its rounding (1e-7) is far below any peak tolerance.
        self._phases = phases[~delay_only].astype(np.float32)
        self._history = np.zeros((int(channels), _TAPS_PER_PHASE - 1), dtype=np.float32)
        self.peak = 0.0
        """Linear true peak so far (interpolated values and samples)."""

    def process(self, x: np.ndarray) -> None:
        """Add ``x`` (channels x samples), continuing the filter from the previous block."""
        taps = _TAPS_PER_PHASE
        xx = np.concatenate([self._history, np.asarray(x, dtype=np.float32)], axis=1)
        self._history = xx[:, -(taps - 1) :].copy()
        magnitude = np.abs(xx)  # the history's first, then the block's
        if x.shape[1]:
            self.peak = max(self.peak, float(np.max(magnitude[:, taps - 1 :])))
        threshold = self.peak / self._gain_bound
        n_out = xx.shape[1] - taps + 1
        for channel, channel_magnitude in zip(xx, magnitude, strict=True):
            loud = np.flatnonzero(channel_magnitude > threshold)
            if loud.size == 0 or n_out <= 0:
                continue
            if loud.size * taps >= n_out // 4:
                for phase in self._phases:
                    y = np.convolve(channel, phase, mode="valid")
                    self.peak = max(self.peak, float(np.max(np.abs(y))))
                continue
            wanted = np.zeros(n_out, dtype=bool)
            for back in range(taps):
                idx = loud - back
                wanted[idx[(idx >= 0) & (idx < n_out)]] = True
            # The wanted windows gathered by index: a boolean mask over the strided window view walks
            # every row of it and cost twice as much.
            rows = np.flatnonzero(wanted)
            windows = channel[rows[:, None] + np.arange(taps)]
            y = windows @ self._phases[:, ::-1].T
            self.peak = max(self.peak, float(np.max(np.abs(y))))


class LoudnessMeter:
    """Streaming BS.1770-4 meter: ``process`` blocks of any length, then ``finish``.

    Blocks are float arrays ``(samples,)`` for mono or ``(samples, channels)``, at most 5 channels, weighted
    as the standard says: 1.0 for L, R, C and 1.41 for Ls, Rs (channels 4 and 5, in that order).
    ``true_peak=False`` skips the oversampling (``true_peak_dbtp`` is then ``None``): the 16 kHz analysis
    view has no use for it, and it is most of the cost.
    """

    def __init__(
        self,
        *,
        sample_rate: int,
        channels: int = 1,
        true_peak: bool = True,
    ) -> None:
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self._weights = np.asarray([1.0, 1.0, 1.0, 1.41, 1.41][:channels], dtype=np.float64)
        self._sos = k_weighting_sos(self.sample_rate)
        self._zi = np.zeros((self._sos.shape[0], self.channels, 2))
        self._measure_true_peak = bool(true_peak)
        self._peak_meter = TruePeakMeter(channels=self.channels) if self._measure_true_peak else None
        # Sub-block k covers samples [floor(k * rate / 10), floor((k + 1) * rate / 10)).
        self._n_seen = 0
        self._sub_index = 0
        self._sub_acc = 0.0
        self._sub_energy: list[float] = []
        self._sub_count: list[int] = []
        self._sample_peak = 0.0

    def _sub_bound(self, k: int) -> int:
        """First sample index of sub-block ``k``."""
        return (k * self.sample_rate) // 10

    def process(self, block: np.ndarray) -> None:
        """Add the next block of samples, ``(samples,)`` or ``(samples, channels)``."""
        x = np.ascontiguousarray(block.reshape(block.shape[0], -1).T, dtype=np.float64)
        if x.shape[1] == 0:
            return
        if self._peak_meter is not None:
            self._peak_meter.process(x)
        self._sample_peak = max(self._sample_peak, float(x.max()), -float(x.min()))
        weighted, self._zi = filters.sosfilt(self._sos, x, axis=-1, zi=self._zi)
        squares = np.square(weighted, out=weighted)
        # One channel weighs 1.0: its energy is its squares (what the product with the weights gives).
        self._add_energy(squares[0] if self.channels == 1 else self._weights @ squares)

    def _add_energy(self, energy: np.ndarray) -> None:
        """Accumulate K-weighted, channel-weighted energy into 100 ms sub-blocks."""
        pos = 0
        n = energy.size
        size = self.sample_rate // 10
        while pos < n:
            if not self.sample_rate % 10 and self._n_seen == self._sub_bound(self._sub_index):
                # Whole sub-blocks at once: each row's sum is the sum of its slice, element for element.
                rows = (n - pos) // size
                if rows:
                    sums = energy[pos : pos + rows * size].reshape(rows, size).sum(axis=1)
                    self._sub_energy.extend(sums.tolist())
                    self._sub_count.extend([size] * rows)
                    self._sub_index += rows
                    self._n_seen += rows * size
                    pos += rows * size
                    continue
            # self._n_seen is the global sample index of energy[pos].
            end = pos + self._sub_bound(self._sub_index + 1) - self._n_seen
            take = min(n, end)
            self._sub_acc += float(energy[pos:take].sum())
            if take == end:
                self._sub_energy.append(self._sub_acc)
                self._sub_count.append(
                    self._sub_bound(self._sub_index + 1) - self._sub_bound(self._sub_index)
                )
                self._sub_acc = 0.0
                self._sub_index += 1
            self._n_seen += take - pos
            pos = take

    def block_loudness(self) -> np.ndarray:
        """Loudness (LUFS) of every complete 400 ms gating block so far (``-inf`` for digital silence)."""
        energy = np.asarray(self._sub_energy, dtype=np.float64)
        count = np.asarray(self._sub_count, dtype=np.float64)
        if energy.size < SUBBLOCKS_PER_BLOCK:
            return np.zeros(0)
        kernel = np.ones(SUBBLOCKS_PER_BLOCK)
        z = np.convolve(energy, kernel, mode="valid") / np.convolve(count, kernel, mode="valid")
        with np.errstate(divide="ignore"):
            return _LOUDNESS_OFFSET + 10.0 * np.log10(z)

    def finish(self) -> Analysis:
        """Return ``lufs``, ``true_peak_dbtp`` and ``sample_peak_dbfs``.

        ``lufs`` is ``None`` with reason ``not_measured`` for less than 0.4 s of audio and ``too_quiet``
        when no block passes the -70 LUFS absolute gate (silence). Peaks are floored at -120 dB. The true
        peak is never reported below the sample peak.
        """
        out = Analysis()
        loud = self.block_loudness()
        power = 10.0 ** ((loud - _LOUDNESS_OFFSET) / 10.0)
        if loud.size == 0:
            seconds = self._n_seen / self.sample_rate
            out.put("lufs", None, why=f"not_measured: {seconds:.3f} s of audio, loudness needs 0.4 s")
        else:
            above_abs = loud > ABSOLUTE_GATE_LUFS
            if not above_abs.any():
                out.put("lufs", None, why="too_quiet: no 400 ms block is louder than -70 LUFS (silence)")
            else:
                relative = _LOUDNESS_OFFSET + 10.0 * np.log10(power[above_abs].mean()) + RELATIVE_GATE_LU
                keep = above_abs & (loud > relative)
                out.put("lufs", float(_LOUDNESS_OFFSET + 10.0 * np.log10(power[keep].mean())))
        if self._peak_meter is not None:
            out.put("true_peak_dbtp", amplitude_db(max(self._peak_meter.peak, self._sample_peak)))
        else:
            out.put("true_peak_dbtp", None, why="not_measured: true peak was switched off")
        out.put("sample_peak_dbfs", amplitude_db(self._sample_peak))
        return out


def integrated_loudness(x: np.ndarray, *, sample_rate: int, true_peak: bool = True) -> Analysis:
    """Loudness of a whole signal (one-shot :class:`LoudnessMeter`; mono or ``(samples, channels)``)."""
    arr = signal_arg("x", x)
    sample_rate = integer("sample_rate", sample_rate, minimum=8000)
    channels = 1 if arr.ndim == 1 else arr.shape[1]
    if not 1 <= channels <= 5:
        raise InvalidArgument(f"x must have 1 to 5 channels (BS.1770 weights), got shape {arr.shape}")
    meter = LoudnessMeter(sample_rate=sample_rate, channels=channels, true_peak=true_peak)
    # In blocks: the meter streams, and the 4x-oversampled copy the true-peak meter makes of a block
    # would otherwise be four times the whole signal (45 MB for a 30 s clip at 48 kHz).
    block = max(sample_rate, 1) * 4
    for start in range(0, max(arr.shape[0], 1), block):
        meter.process(arr[start : start + block])
    return meter.finish()
