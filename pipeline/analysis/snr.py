"""Signal-to-noise ratio: from the speech mask (the main figure) and blind WADA-SNR (a cross-check).

Definition used everywhere in voiceprep (code, tests, benchmarks): SNR is the mean power of the clean
speech over the speech-active frames, divided by the mean power of the noise over the whole recording,
in dB (full band of the 16 kHz analysis view). From a noisy recording and a speech mask it is estimated
as ``S / N`` (:func:`vad_snr_db`): the noise is measured between words, and, when the band below 20 Hz
(where a voice has little energy) is loud during the words, that part also during the words; ``S`` is
the speech frames' power minus the noise they carry.
"""

from __future__ import annotations

import functools

import numpy as np

from pipeline.analysis.base import FRAME_S, Analysis
from pipeline.audio.arguments import signal

SNR_MIN_DB = -10.0
"""Lower clamp of ``snr_db``: below this the speech mask itself is unreliable."""

SNR_MAX_DB = 60.0
"""Upper clamp of ``snr_db``: 60 means "60 dB or cleaner", including digital silence between words."""

MIN_SNR_FRAMES = 10
"""Frames (0.1 s) of speech and of non-speech needed for ``snr_db``."""

LOW_BAND_RAMP_DB = (-15.0, -5.0)
"""Low-band excess during speech, relative to the speech (dB), from which :func:`vad_snr_db` starts to
count the low band frame by frame as noise, and at which it counts it fully (:func:`low_band_weight`)."""

_DIGITAL_ZERO_POWER = 1e-12  # -120 dBFS: the frame-level floor of pipeline.analysis.energy

WADA_MIN_DB = -20.0
"""Lower end of the WADA-SNR lookup (and clamp)."""

WADA_MAX_DB = 100.0
"""Upper end of the WADA-SNR lookup (and clamp); WADA saturates long before this (quality.md)."""

WADA_GAMMA_SHAPE = 0.4
"""Shape of the Gamma distribution assumed for clean-speech amplitudes (Kim & Stern, 2008)."""

MIN_WADA_SAMPLES = 1600
"""Non-zero samples (0.1 s at 16 kHz) needed for ``wada_snr_db``."""

_WADA_TABLE_SAMPLES = 400_000
_WADA_TABLE_SEED = 20080922  # fixed: the table is the same in every process


def low_band_weight(
    low_speech: float,
    low_quiet: float,
    speech_power: float,
    *,
    ramp_db: tuple[float, float] = LOW_BAND_RAMP_DB,
) -> float:
    """How much of the low band's level during speech :func:`vad_snr_db` takes as noise (0 to 1).

    ``low_speech`` and ``low_quiet`` are the mean low-band powers of the speech and non-speech frames,
    ``speech_power`` the mean power of the speech frames. The low band's excess during speech,
    ``low_speech - low_quiet``, relative to ``speech_power``: 0 at or below ``ramp_db[0]``, 1 at or above
    ``ramp_db[1]``, linear in dB in between.
    """
    lo, hi = ramp_db
    excess = float(low_speech) - float(low_quiet)
    if excess <= 0.0 or speech_power <= 0.0:
        return 0.0
    share_db = 10.0 * np.log10(excess / float(speech_power))
    if share_db >= hi:
        return 1.0
    if share_db <= lo:
        return 0.0
    return (share_db - lo) / (hi - lo)


def vad_snr_db(
    frame_power: np.ndarray,
    speech_mask: np.ndarray,
    *,
    guard_s: float = 0.05,
    low_power: np.ndarray | None = None,
    low_ramp_db: tuple[float, float] = LOW_BAND_RAMP_DB,
) -> Analysis:
    """Estimate ``snr_db`` from per-frame mean power and a speech mask on the same grid.

    Without ``low_power``: ``N`` is the mean power of the non-speech frames and ``S`` the mean power of the
    speech frames minus ``N``. The non-speech frames within ``guard_s`` of speech are left out of ``N``
    (the quiet start and tail of a word leak into them and would inflate the noise), unless that leaves
    too few frames.

    With ``low_power`` (per-frame power below 20 Hz, :class:`pipeline.analysis.energy.LowBandEnergy`):
    noise that comes in bursts (thumps, wind, handling) is mostly low-frequency and rarely falls in the
    few pauses of a recording, so measured between words only it is underestimated by 5-20 dB. A voice
    has little energy below 20 Hz, so when that band is loud during the words it is noise, read in
    *every* frame. The noise in a speech frame is ``n_high`` (the mean of ``frame_power - low_power`` over
    the non-speech frames) plus ``w * low_power + (1 - w) * (mean low_power of the non-speech frames)``;
    ``N`` is the mean noise over the non-speech and the speech frames and ``S`` the mean of
    ``frame_power`` minus that noise over the speech frames. ``w`` (:func:`low_band_weight` with
    ``low_ramp_db``) grows from 0 to 1 as the low band's excess during speech (over its level between
    words) rises from 15 to 5 dB under the speech. A voice's own energy down there (breath, plosives on
    the microphone, a synthetic voice's waveform) is 26-62 dB under it on the clean sources of the
    accuracy benchmark and the demo samples, one strong microphone pop 15 dB; bursty noise at 0-10 dB
    SNR puts 3-11 dB. With ``w = 0`` the estimate is the one without ``low_power``.

    The result ``10 * log10(S / N)`` is clamped to [:data:`SNR_MIN_DB`, :data:`SNR_MAX_DB`]. Noise that is
    digital silence gives :data:`SNR_MAX_DB`. Fewer than :data:`MIN_SNR_FRAMES` speech frames gives
    ``None`` (``no_speech``); fewer non-speech frames gives ``None`` (``not_measured``): with speech
    everywhere the noise cannot be seen.
    """
    power = np.asarray(frame_power, dtype=np.float64)
    mask = np.asarray(speech_mask, dtype=bool)
    low = np.zeros(power.shape) if low_power is None else np.asarray(low_power, dtype=np.float64)
    out = Analysis()
    n_speech = int(mask.sum())
    n_noise = int(mask.size - n_speech)
    if n_speech < MIN_SNR_FRAMES:
        out.put("snr_db", None, why=f"no_speech: {n_speech} speech frames (need {MIN_SNR_FRAMES})")
        return out
    if n_noise < MIN_SNR_FRAMES:
        out.put(
            "snr_db",
            None,
            why=f"not_measured: {n_noise} non-speech frames (need {MIN_SNR_FRAMES}) to measure the noise",
        )
        return out
    guard = round(guard_s / FRAME_S)
    quiet = ~mask
    if guard:
        near_speech = np.convolve(mask.astype(np.float64), np.ones(2 * guard + 1), mode="same") > 0.5
        if int((~near_speech).sum()) >= MIN_SNR_FRAMES:
            quiet = ~near_speech
    # Not clipped per frame: the low band lags the full band by about two frames (the filter's delay), so
    # a frame's low-band power can exceed its total; only sums over many frames are meaningful.
    low_quiet = float(low[quiet].mean())
    n_high = max(float((power[quiet] - low[quiet]).mean()), 0.0)
    w = low_band_weight(float(low[mask].mean()), low_quiet, float(power[mask].mean()), ramp_db=low_ramp_db)
    speech_noise = n_high + w * low[mask] + (1.0 - w) * low_quiet
    noise = float((power[quiet].sum() + speech_noise.sum()) / (quiet.sum() + n_speech))
    speech = float((power[mask] - speech_noise).mean())
    if noise <= _DIGITAL_ZERO_POWER:
        out.put("snr_db", SNR_MAX_DB)
        return out
    floor = noise * 10.0 ** (SNR_MIN_DB / 10.0)
    snr = 10.0 * np.log10(max(speech, floor) / noise)
    out.put("snr_db", float(np.clip(snr, SNR_MIN_DB, SNR_MAX_DB)))
    return out


@functools.cache
def wada_table() -> tuple[np.ndarray, np.ndarray]:
    """The WADA lookup: SNR grid (dB) and ``G = log(E|z|) - E[log|z|]`` of Gamma speech + Gaussian noise.

    Derived here by simulation (fixed seed, common random numbers across SNRs so the curve is smooth):
    speech samples are ``±Gamma(0.4, 1)`` and noise is Gaussian with power set for each SNR. ``G`` rises
    monotonically from the Gaussian value ``0.5*log(2/pi) + (euler_gamma + log 2)/2 ≈ 0.409`` to the
    Gamma value ``log(0.4) - digamma(0.4) ≈ 1.645``. Computed once per process.
    """
    rng = np.random.default_rng(_WADA_TABLE_SEED)
    n = _WADA_TABLE_SAMPLES
    speech = rng.gamma(WADA_GAMMA_SHAPE, 1.0, n) * rng.choice([-1.0, 1.0], n)
    noise = rng.standard_normal(n)
    speech_power = WADA_GAMMA_SHAPE * (WADA_GAMMA_SHAPE + 1.0)
    snrs = np.arange(WADA_MIN_DB, WADA_MAX_DB + 0.5, 1.0)
    g = np.empty(snrs.size)
    for i, snr in enumerate(snrs):
        z = np.abs(speech + noise * np.sqrt(speech_power / 10.0 ** (snr / 10.0)))
        g[i] = np.log(z.mean()) - np.log(z).mean()
    # Sampling noise can make the saturated top end wobble; force a strictly increasing curve to invert.
    g = np.maximum.accumulate(g) + np.arange(g.size) * 1e-9
    return snrs, g


def _wada_from_g(g: float) -> float:
    """Invert the lookup: the SNR (dB) whose ``G`` equals ``g``, clamped to the table's range."""
    snrs, table = wada_table()
    return float(np.interp(g, table, snrs, left=WADA_MIN_DB, right=WADA_MAX_DB))


class WadaAccumulator:
    """Streaming WADA-SNR (Kim & Stern, 2008): sums of ``|x|`` and ``log|x|`` over non-zero samples.

    Exact zeros are dropped: digital silence (padding, muted stretches) would pull ``E[log|x|]`` to minus
    infinity and the estimate to its ceiling. WADA assumes speech and noise everywhere in what it sees;
    it is reliable below about 20 dB and saturates by 30-40 dB.
    """

    def __init__(self) -> None:
        self._sum_abs = 0.0
        self._sum_log = 0.0
        self._count = 0

    def process(self, block: np.ndarray) -> None:
        """Add the next block of samples (1-D float, any rate, any length)."""
        a = np.abs(block.astype(np.float64, copy=False))
        a = a[a > 0.0]
        self._sum_abs += float(a.sum())
        self._sum_log += float(np.log(a).sum())
        self._count += int(a.size)

    def finish(self) -> Analysis:
        """Return ``wada_snr_db`` (``None`` with a reason below :data:`MIN_WADA_SAMPLES` non-zero samples)."""
        out = Analysis()
        if self._count < MIN_WADA_SAMPLES:
            out.put(
                "wada_snr_db",
                None,
                why=f"not_measured: {self._count} non-zero samples (need {MIN_WADA_SAMPLES})",
            )
            return out
        g = np.log(self._sum_abs / self._count) - self._sum_log / self._count
        out.put("wada_snr_db", _wada_from_g(float(g)))
        return out


def wada_snr_db(x: np.ndarray) -> Analysis:
    """WADA-SNR of a whole signal (one-shot :class:`WadaAccumulator`), key ``wada_snr_db``."""
    acc = WadaAccumulator()
    acc.process(signal("x", x, mono=True))
    return acc.finish()
