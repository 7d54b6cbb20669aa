"""Signal-to-noise ratio: from the speech mask and a noise level for every frame (the main figure), and
blind WADA-SNR (a cross-check).

Definition used everywhere in voiceprep (code, tests, benchmarks): SNR is the mean power of the clean
speech over the speech-active frames, divided by the mean power of the noise over the whole recording,
in dB, both **in the band a delivered clip keeps**: the 16 kHz analysis view after the render's own
DC/rumble high-pass (:data:`pipeline.analysis.energy.HIGHPASS_HZ`, 70 Hz). Rumble, wind and the mains
hum's fundamental below it are removed by the render and do not count (``rumble_db`` and ``hum_db`` report
them, :mod:`pipeline.analysis.lowfreq`); what the service will hear does.

From a noisy recording it is estimated as ``S / N`` (:func:`vad_snr_db`) from a noise level for every
10 ms frame (:func:`frame_noise`): a frame between words is its own noise; a frame of speech takes the
noise of the pauses within :data:`NOISE_CONTEXT_S` of it, and, where there are none (speech without
pauses under continuous noise), the noise that :class:`~pipeline.analysis.noise.NoiseTracker` follows
under the speech (minimum statistics). ``N`` is the mean of those levels and ``S`` the mean over the
speech frames of their power minus their noise. A recording with no frame whose noise can be told is
``None`` (``not_measured``), never clean.
"""

from __future__ import annotations

import functools

import numpy as np

from pipeline.analysis import calibration
from pipeline.analysis.base import FRAME_S, Analysis
from pipeline.audio.arguments import signal

SNR_MIN_DB = -10.0
"""Lower clamp of ``snr_db``: below this the speech mask itself is unreliable."""

SNR_MAX_DB = 60.0
"""Upper clamp of ``snr_db``: 60 means "60 dB or cleaner", including digital silence between words."""

MIN_SNR_FRAMES = 10
"""Speech frames (0.1 s) needed for ``snr_db``; also the fewest pause frames :func:`frame_noise` reads a
local noise level from."""

NOISE_GUARD_S = 0.05
"""Non-speech frames this close to speech are not read as noise (the quiet start and tail of a word leak
into them and would inflate it)."""

NOISE_CONTEXT_S = 2.0
"""A speech frame takes the noise of the pause frames within this many seconds of it (measured: 1 s let
the noise tracker's bias through in more frames, 4 s let pauses speak for speech further away; in the
accuracy benchmark 2 s was best on continuous noise and on low-frequency noise alike)."""

_DIGITAL_ZERO_POWER = 1e-12  # -120 dBFS: the frame-level floor of pipeline.analysis.energy
_AUDIBLE_POWER = 1e-11  # -110 dBFS: a pause frame below this is an edit (muted), not a room's noise

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


def _prefix(x: np.ndarray) -> np.ndarray:
    """Prefix sums with a leading zero: ``out[b] - out[a]`` is ``x[a:b].sum()``."""
    out = np.zeros(x.size + 1, dtype=np.float64)
    np.cumsum(x, out=out[1:])
    return out


def _window_sums(x: np.ndarray, reach: int) -> np.ndarray:
    """``x[i - reach : i + reach + 1].sum()`` for every ``i`` (cut at the ends), from one prefix sum."""
    c = _prefix(np.asarray(x, dtype=np.float64))
    n = x.size
    if n <= reach:
        return np.full(n, c[-1])
    upper = np.concatenate([c[reach + 1 :], np.full(reach, c[-1])])  # c[min(i + reach + 1, n)]
    upper -= np.concatenate([np.zeros(reach), c[: n - reach]])  # c[max(i - reach, 0)]
    return upper


def pause_frames(speech_mask: np.ndarray, *, guard_s: float = NOISE_GUARD_S) -> np.ndarray:
    """The frames read as noise: non-speech at least ``guard_s`` from speech (all non-speech frames when
    that leaves fewer than :data:`MIN_SNR_FRAMES`)."""
    mask = np.asarray(speech_mask, dtype=bool)
    guard = round(guard_s / FRAME_S)
    if not guard or not mask.size:  # no frame at all: a header whose rate makes the file a few ms long
        return ~mask
    near_speech = np.convolve(mask.astype(np.float64), np.ones(2 * guard + 1), mode="same") > 0.5
    return ~near_speech if int((~near_speech).sum()) >= MIN_SNR_FRAMES else ~mask


def audible_pauses(
    frame_power: np.ndarray, speech_mask: np.ndarray, *, guard_s: float = NOISE_GUARD_S
) -> np.ndarray:
    """The :func:`pause_frames` that hold sound: a muted stretch (digital silence, an edit) is no level of
    the noise under the speech."""
    power = np.asarray(frame_power, dtype=np.float64)
    return pause_frames(speech_mask, guard_s=guard_s)[: power.size] & (power > _AUDIBLE_POWER)


def frame_noise(
    frame_power: np.ndarray,
    speech_mask: np.ndarray,
    track: np.ndarray | None = None,
    *,
    guard_s: float = NOISE_GUARD_S,
    context_s: float = NOISE_CONTEXT_S,
) -> np.ndarray:
    """The noise power of every frame (same units as ``frame_power``), NaN where it cannot be told.

    A pause frame (:func:`pause_frames`) is its own noise. Any other frame takes, in this order: the mean
    power of the *audible* pause frames within ``context_s`` (at least :data:`MIN_SNR_FRAMES` of them; a
    muted stretch of digital silence is an edit, not the noise under the speech); the noise ``track``
    (:meth:`pipeline.analysis.noise.NoiseTracker.finish`, the same frame grid) when given; the mean
    power of all pause frames, muted or not (speech between digital silences: 0); else NaN.
    """
    power = np.asarray(frame_power, dtype=np.float64)
    quiet = pause_frames(speech_mask, guard_s=guard_s)[: power.size]
    audible = audible_pauses(power, speech_mask, guard_s=guard_s)
    n = power.size
    reach = round(context_s / FRAME_S)
    # Long recordings have hundreds of thousands of frames: few temporaries, filled in place.
    few = _window_sums(audible, reach) < MIN_SNR_FRAMES
    local = _window_sums(np.where(audible, power, 0.0), reach)
    local /= np.maximum(_window_sums(audible, reach), 1.0)
    if track is not None and track.size:
        fallback = np.asarray(track, dtype=np.float64)
        if fallback.size < n:
            fallback = np.concatenate([fallback, np.full(n - fallback.size, fallback[-1])])
        local[few] = fallback[:n][few]
    else:
        local[few] = float(power[quiet].mean()) if quiet.any() else np.nan
    local[quiet] = power[quiet]
    return local


def clean_speech_power(frame_power: np.ndarray, speech_mask: np.ndarray, noise: np.ndarray) -> float:
    """``S`` of :func:`vad_snr_db`: the mean over the speech frames of their power minus their noise."""
    mask = np.asarray(speech_mask, dtype=bool)
    return float((np.asarray(frame_power, dtype=np.float64)[mask] - np.asarray(noise)[mask]).mean())


def vad_snr_db(
    frame_power: np.ndarray,
    speech_mask: np.ndarray,
    *,
    noise: np.ndarray | None = None,
    guard_s: float = NOISE_GUARD_S,
) -> Analysis:
    """Estimate ``snr_db`` from per-frame mean power, a speech mask and the noise of every frame.

    ``noise`` is :func:`frame_noise` of the same frames (by default without a noise track: from the pauses
    alone). ``N`` is its mean over all frames and ``S`` the mean of ``frame_power - noise`` over the
    speech frames; the result ``10 * log10(S / N)`` is clamped to [:data:`SNR_MIN_DB`,
    :data:`SNR_MAX_DB`]. Noise that is digital silence gives :data:`SNR_MAX_DB`. Fewer than
    :data:`MIN_SNR_FRAMES` speech frames gives ``None`` (``no_speech``); a frame whose noise cannot be
    told (no pauses, no track) gives ``None`` (``not_measured``): unknown is not clean.
    """
    power = np.asarray(frame_power, dtype=np.float64)
    mask = np.asarray(speech_mask, dtype=bool)
    out = Analysis()
    n_speech = int(mask.sum())
    if n_speech < MIN_SNR_FRAMES:
        out.put("snr_db", None, why=f"no_speech: {n_speech} speech frames (need {MIN_SNR_FRAMES})")
        return out
    if noise is None:
        noise = frame_noise(power, mask, guard_s=guard_s)
    noise = np.asarray(noise, dtype=np.float64)
    if np.isnan(noise).any():
        out.put(
            "snr_db",
            None,
            why=(
                f"not_measured: speech everywhere ({int((~mask).sum())} non-speech frames) and too little "
                "audio to follow the noise under it"
            ),
        )
        return out
    mean_noise = float(noise.mean())
    if mean_noise <= _DIGITAL_ZERO_POWER:
        out.put("snr_db", SNR_MAX_DB)
        return out
    speech = clean_speech_power(power, mask, noise)
    floor = mean_noise * 10.0 ** (SNR_MIN_DB / 10.0)
    snr = 10.0 * np.log10(max(speech, floor) / mean_noise)
    out.put("snr_db", float(np.clip(snr, SNR_MIN_DB, SNR_MAX_DB)))
    return out


@functools.cache
def wada_table() -> tuple[np.ndarray, np.ndarray]:
    """The WADA lookup: SNR grid (dB) and ``G = log(E|z|) - E[log|z|]`` of Gamma speech + Gaussian noise.

    The result of :func:`simulate_wada_table`, stored in :data:`pipeline.analysis.calibration.WADA_G` (the
    simulation took 0.15-0.28 s of every process that measured a file).
    """
    snrs = np.arange(WADA_MIN_DB, WADA_MAX_DB + 0.5, 1.0)
    g = np.array(calibration.WADA_G, dtype=np.float64)
    if g.shape != snrs.shape:  # the grid changed: the stored table is stale
        return simulate_wada_table()
    return snrs, g


def simulate_wada_table() -> tuple[np.ndarray, np.ndarray]:
    """Derive the WADA lookup by simulation (fixed seed, common random numbers across SNRs so the curve is
    smooth): speech samples are ``±Gamma(0.4, 1)`` and noise is Gaussian with power set for each SNR.

    ``G`` rises monotonically from the Gaussian value ``0.5*log(2/pi) + (euler_gamma + log 2)/2 ≈ 0.409``
    to the Gamma value ``log(0.4) - digamma(0.4) ≈ 1.645``. :func:`wada_table` reads its stored result.
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
        if np.count_nonzero(a) < a.size:  # noisy audio has no exact zeros: no copy without them
            a = a[a > 0.0]
        self._sum_abs += float(a.sum())
        self._sum_log += float(np.log(a, out=a).sum())  # a is this call's own array
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
