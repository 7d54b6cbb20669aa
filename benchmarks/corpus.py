"""The accuracy corpus: degraded versions of real recordings, with known answers.

The recordings come from the larger corpus (``VOICEPREP_CORPUS``, default ``../shared/data``). Every item is built deterministically (fixed seeds derived from the item name) from the real speech, noise and
room-impulse-response recordings, and carries the truth it was built to have. The definitions of every truth
(speech mask, SNR, T60, bandwidth class, clip ratio, pause lengths) are written down in ``docs/accuracy.md``;
the functions here are those definitions in code.

Items are produced lazily by :func:`iter_corpus` so that only one degraded signal is in memory at a time (the
small source recordings are cached).
"""

from __future__ import annotations

import io
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr
from scipy import signal

from pipeline.errors import InvalidArgument

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("VOICEPREP_CORPUS") or REPO.parent / "shared" / "data")
"""The larger corpus of real recordings (``VOICEPREP_CORPUS``, default ``../shared/data`` beside the repository)."""
REPO_CORPUS = REPO / "data" / "corpus"
"""The few recordings copied unchanged into the repository (``data/corpus/SOURCES.md``)."""

FRAME_S = 0.01
"""Truth masks use the analysers' grid: frame ``i`` covers ``[i * 0.01, (i + 1) * 0.01)`` seconds."""

FULL_RATE = 48000
ANALYSIS_RATE = 16000

CONDITIONS: tuple[str, ...] = (
    "clean", "snr", "rumble", "continuous", "reverb", "bandwidth", "clipping", "pause"
)  # fmt: skip

SNR_LEVELS_DB: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0)
NOISE_FILES: dict[str, str] = {
    "exercise_bike": "pra_exercise_bike.wav",
    "rain": "sms_rain.wav",
    "dishes": "pra_doing_the_dishes.wav",
    "dfn": "dfn_noise_freesound_573577.wav",
    "typing": "max_typing_rodzuz.wav",
    "rain_ambience": "tg_lluvias_de_mayo_felix_blume.flac",
    "traffic_hum": "amb_city_traffic_hum_usc.mp3",
    "car_engine": "max_car_engine_inspectorj.wav",
    "wind": "amb_wind_usc.mp3",
}
NOISE_TYPES: tuple[str, ...] = ("white", "pink", "exercise_bike", "rain", "dishes", "dfn")
"""The noises of the accuracy corpus; ``typing`` and ``rain_ambience`` are used by the sessions only."""
STATIONARY_NOISES: frozenset[str] = frozenset({"white", "pink", "exercise_bike", "rain"})

RUMBLE_FILES: dict[str, str] = {
    "traffic_hum": "amb_city_traffic_hum_usc.mp3",
    "car_engine": "max_car_engine_inspectorj.wav",
    "wind": "amb_wind_usc.mp3",
}
RUMBLE_NOISES: tuple[str, ...] = ("traffic_hum", "car_engine", "wind", "hum50", "hum60")
"""Low-frequency noises: three real ones and a synthetic mains hum at 50 and 60 Hz (:func:`mains_hum`)."""
RUMBLE_LEVELS_DB: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0)
"""Broadband SNRs (whole 0-8 kHz band, the way an unfiltered meter reads them) of the rumble items."""
HUM_HARMONICS: tuple[float, ...] = (1.0, 0.5, 0.6, 0.25, 0.35, 0.15, 0.2, 0.1)
"""Amplitudes of the synthetic hum's harmonics 1-8: the odd ones of a transformer's field, the even
ones of a rectifier, falling with the order."""

CONTINUOUS_SOURCES: tuple[str, ...] = (
    "aew", "libri_1246", "libri_196", "libri_2289", "libri_3080", "ljspeech", "vctk_p286", "sms_male"
)  # fmt: skip
CONTINUOUS_NOISES: tuple[str, ...] = ("white", "pink", "exercise_bike", "rain", "rain_ambience")
CONTINUOUS_LEVELS_DB: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0)
CONTINUOUS_MIN_S = 12.0
"""Continuous items are the source's speech with its pauses cut out, repeated to at least this long."""

SYNTHETIC_T60_S: tuple[float, ...] = (0.2, 0.3, 0.45, 0.6, 0.8, 1.0, 1.2)
MEASURED_RIRS: dict[str, str] = {
    "clap_seminar_room": "sa_rir_clap.wav",
    "genesis6_live_room": "openair_genesis6_studio_live_room.wav",
    "st_margarets_church": "openair_st_margarets_church.wav",
}
T_MID_BANDS_HZ: tuple[tuple[float, float], ...] = ((354.0, 707.0), (707.0, 1414.0))
"""Octave bands around 500 Hz and 1 kHz; their mean T60 is the usual single-number "T_mid"."""
REVERB_NOISE_SNR_DB = 40.0

CLIP_RATIOS: tuple[float, ...] = (1e-4, 1e-3, 5e-3, 1e-2, 5e-2)
CLIP_LEVEL = 32767.0 / 32768.0
"""Hard-clip level: the largest positive 16-bit sample, as a recorder's converter would clip."""
UNDER_PEAK_CLIP_LEVEL = 0.25
"""Clip level of the part clipped *under* the item's peak: 12 dB under the louder clean copies around it."""

PAUSE_LENGTHS_S: tuple[float, ...] = (0.3, 0.6, 1.0, 1.5, 2.0, 2.5, 3.0)
FILLER_DBFS = -70.0
"""Level of the pink-noise filler used when an item has no usable room tone of its own."""

BANDWIDTH_EDGES_HZ: tuple[tuple[str, float], ...] = (
    ("narrow", 4200.0),
    ("wide", 8200.0),
    ("super_wide", 12000.0),
)
"""Class upper edges: below 4.2 kHz narrow, below 8.2 kHz wide, below 12 kHz super_wide, otherwise full."""

# Speech sources: name -> files in speech/ (same speaker; several files are concatenated in order).
SOURCES: dict[str, tuple[str, ...]] = {
    "aew": tuple(f"pra_cmu_arctic_us_aew_a000{i}.wav" for i in (1, 2, 3)),
    "axb": tuple(f"pra_cmu_arctic_us_axb_a000{i}.wav" for i in (4, 5, 6)),
    "libri_1246": ("resem_librispeech_1246-124548-0000.flac",),
    "libri_196": ("resem_librispeech_196-122150-0000.flac",),
    "libri_2289": ("resem_librispeech_2289-152253-0000.flac",),
    "libri_3080": ("resem_librispeech_3080-5032-0006.flac",),
    "libri_3080b": ("resem_librispeech_3080-5032-0007.flac",),
    "libri_3080c": ("resem_librispeech_3080-5032-0009.flac",),
    "libri_150": ("resem_librispeech_150-126107-0000.flac",),
    "libri1_198": ("librosa_libri1_198-209-0000.ogg",),
    "ljspeech": ("sb_ljspeech_LJ050-0131.wav",),
    "vctk_p286": ("aug_vctk_p286_011.wav",),
    "sms_female": ("sms_speech-female.wav",),
    "sms_male": ("sms_speech-male.wav",),
}
# libri_150 (own SNR about 6 dB), the VCTK p240 MP3 (little silence, floor 31 dB under peak) and the
# 53 s LibriVox MP3 are not used: their own noise would dominate the truths.
CLEAN_SOURCES: tuple[str, ...] = (
    "aew",
    "axb",
    "libri_1246",
    "libri_196",
    "libri_2289",
    "libri_3080",
    "libri1_198",
    "ljspeech",
    "vctk_p286",
    "sms_female",
    "sms_male",
)
SNR_SOURCES: tuple[str, ...] = tuple(s for s in CLEAN_SOURCES if s != "libri1_198")
REVERB_SOURCES: tuple[str, ...] = ("aew", "libri_196", "ljspeech", "vctk_p286", "sms_female")
FULLBAND_SOURCES: tuple[str, ...] = ("sms_male", "vctk_p286", "sms_female")
WIDEBAND_LIBRI: tuple[str, ...] = (
    "libri_1246",
    "libri_196",
    "libri_2289",
    "libri_3080",
    "libri_3080b",
    "libri_3080c",
    "libri_150",
)
CLIP_SOURCES: tuple[str, ...] = ("aew", "libri_196", "ljspeech", "vctk_p286", "sms_female", "sms_male")
PAUSE_SPEAKERS: dict[str, tuple[str, ...]] = {
    "aew": ("aew",),
    "axb": ("axb",),
    "libri_3080": ("libri_3080", "libri_3080b", "libri_3080c"),
}


@dataclass(frozen=True)
class Item:
    """One corpus item: a degraded signal and the truth it was built to have.

    ``samples`` is float32 mono at ``sample_rate``. ``truth`` holds plain values (numbers, strings, lists) and,
    for items with a speech reference, ``speech_mask``: a bool array on the 10 ms grid.
    """

    name: str
    condition: str
    params: dict[str, Any]
    samples: np.ndarray
    sample_rate: int
    truth: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------------------
# loading


def _seed(name: str) -> int:
    """A stable seed from an item name (``hash()`` is salted per process, crc32 is not)."""
    return zlib.crc32(name.encode("utf-8"))


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(_seed(name))


def _readonly(x: np.ndarray) -> np.ndarray:
    x.setflags(write=False)
    return x


def recording_path(relpath: str) -> Path:
    """Where the recording ``relpath`` (e.g. ``speech/x.wav``) is: the larger corpus, else the repository's copy."""
    for root in (DATA_DIR, REPO_CORPUS):
        path = root / relpath
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"recording missing: {relpath} is in neither {DATA_DIR} nor {REPO_CORPUS} "
        "(set VOICEPREP_CORPUS to the folder of the shared recordings; see its SOURCES.md)"
    )


@lru_cache(maxsize=64)
def _read(relpath: str) -> tuple[np.ndarray, int]:
    """Channel 0 of a shared recording as float64, and its rate."""
    path = recording_path(relpath)
    x, rate = sf.read(str(path), dtype="float64", always_2d=True)
    return _readonly(np.ascontiguousarray(x[:, 0])), int(rate)


def resample(x: np.ndarray, *, in_rate: int, out_rate: int) -> np.ndarray:
    """Resample with soxr (HQ) in float64; the same array when the rates are equal."""
    if in_rate == out_rate:
        return np.asarray(x, dtype=np.float64)
    return soxr.resample(np.asarray(x, dtype=np.float64), in_rate, out_rate, quality="HQ")


@lru_cache(maxsize=64)
def load_utterances(source: str, *, rate: int | None = None) -> tuple[tuple[np.ndarray, ...], int]:
    """The files of ``source`` as separate float64 arrays, all at ``rate`` (default: the native rate)."""
    if source not in SOURCES:
        raise InvalidArgument(f"source must be one of {sorted(SOURCES)}, got {source!r}")
    parts = [_read(f"speech/{f}") for f in SOURCES[source]]
    native = parts[0][1]
    if any(r != native for _, r in parts):
        raise InvalidArgument(f"source {source!r} mixes sample rates")
    out_rate = native if rate is None else int(rate)
    arrays = tuple(_readonly(resample(x, in_rate=native, out_rate=out_rate)) for x, _ in parts)
    return arrays, out_rate


def load_source(source: str, *, rate: int | None = None) -> tuple[np.ndarray, int]:
    """The files of ``source`` concatenated (same speaker, natural silences at the joins)."""
    arrays, out_rate = load_utterances(source, rate=rate)
    return np.concatenate(arrays), out_rate


# ----------------------------------------------------------------------------------------------------------
# truth speech mask


def frame_count(n_samples: int, rate: int) -> int:
    """Number of complete 10 ms frames in ``n_samples`` at ``rate`` (a partial last frame is dropped)."""
    return (int(n_samples) * 100) // int(rate)


def frame_bounds(n_frames: int, rate: int) -> np.ndarray:
    """Sample index where each 10 ms frame starts, plus the end of the last one (``n_frames + 1`` values)."""
    return (np.arange(n_frames + 1, dtype=np.int64) * int(rate)) // 100


def frame_powers(x: np.ndarray, rate: int) -> np.ndarray:
    """Mean square of each complete 10 ms frame of ``x``."""
    x = np.asarray(x, dtype=np.float64)
    n = frame_count(len(x), rate)
    bounds = frame_bounds(n, rate)
    csum = np.concatenate([[0.0], np.cumsum(x[: bounds[-1]] ** 2)])
    return (csum[bounds[1:]] - csum[bounds[:-1]]) / np.diff(bounds)


def _runs(mask: np.ndarray, value: bool) -> list[tuple[int, int]]:
    """``[start, end)`` frame runs where ``mask == value``."""
    return _true_runs(np.asarray(mask, dtype=bool) == value)


def _true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    m = np.concatenate([[0], np.asarray(mask, dtype=np.int8), [0]])
    d = np.diff(m)
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def internal_gaps(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` frame runs of non-speech that lie between two speech runs."""
    runs = _true_runs(mask)
    return [(a[1], b[0]) for a, b in pairwise(runs)]


def truth_speech_mask(
    x: np.ndarray,
    rate: int,
    *,
    range_db: float = 40.0,
    floor_margin_db: float = 6.0,
    floor_percentile: float = 5.0,
    smooth_frames: int = 3,
    fill_gap_s: float = 0.1,
    pad_s: float = 0.02,
) -> np.ndarray:
    """The reference speech mask of a clean recording, one bool per complete 10 ms frame.

    Frame level = 10*log10 of the frame power averaged over ``smooth_frames`` neighbouring frames. A frame is
    speech when its level exceeds ``max(peak - range_db, floor + floor_margin_db)``, where peak is the highest
    level and floor the ``floor_percentile``-th percentile of the levels (so a recording whose own noise floor
    sits less than ``range_db`` under the peak does not turn into "all speech"). Non-speech gaps shorter than
    ``fill_gap_s`` between speech runs are filled, then every run is widened by ``pad_s`` on each side.
    """
    if rate <= 0:
        raise InvalidArgument(f"rate must be > 0, got {rate!r}")
    if smooth_frames < 1:
        raise InvalidArgument(f"smooth_frames must be >= 1, got {smooth_frames!r}")
    p = frame_powers(x, rate)
    if len(p) == 0:
        return np.zeros(0, dtype=bool)
    kernel = np.ones(smooth_frames) / smooth_frames
    padded = np.pad(p, (smooth_frames // 2, smooth_frames - 1 - smooth_frames // 2), mode="edge")
    level = 10.0 * np.log10(np.convolve(padded, kernel, mode="valid") + 1e-12)
    peak = float(level.max())
    floor = float(np.percentile(level, floor_percentile))
    mask = level > max(peak - range_db, floor + floor_margin_db)
    max_gap = round(fill_gap_s / FRAME_S)
    for start, end in internal_gaps(mask):
        if end - start < max_gap:
            mask[start:end] = True
    pad = round(pad_s / FRAME_S)
    if pad > 0 and mask.any():
        mask = np.convolve(mask.astype(np.int8), np.ones(2 * pad + 1, dtype=np.int8), mode="same") > 0
    return mask


def active_power(x: np.ndarray, mask: np.ndarray, rate: int) -> float:
    """Mean power of ``x`` over the frames where ``mask`` is true (the speech level of the SNR truth)."""
    p = frame_powers(x, rate)
    m = np.asarray(mask, dtype=bool)[: len(p)]
    if not m.any():
        raise InvalidArgument("mask has no speech frames")
    bounds = frame_bounds(len(p), rate)
    weights = np.diff(bounds)[m]
    return float(np.sum(p[: len(m)][m] * weights) / np.sum(weights))


def delivered_band(x: np.ndarray, rate: int) -> np.ndarray:
    """``x`` through the render's own DC/rumble high-pass, forwards and backwards as the render runs it
    (``pipeline.analysis.energy.HIGHPASS_HZ``): what a delivered clip keeps, the band SNR truths use."""
    from pipeline.analysis.energy import highpass_sos

    return signal.sosfiltfilt(highpass_sos(rate), np.asarray(x, dtype=np.float64))


def source_noise_power(x: np.ndarray, mask: np.ndarray, rate: int, *, guard_s: float = 0.05) -> float | None:
    """Mean power of a recording's own background, from its non-speech frames.

    Frames at least ``guard_s`` away from any speech frame are used when there are 20 of them (0.2 s);
    otherwise every non-speech frame, when there are 10; otherwise ``None``.
    """
    p = frame_powers(x, rate)
    m = np.asarray(mask, dtype=bool)[: len(p)]
    p = p[: len(m)]
    guard = round(guard_s / FRAME_S)
    near = np.convolve(m.astype(np.int8), np.ones(2 * guard + 1, dtype=np.int8), mode="same") > 0
    if np.sum(~near) >= 20:
        return float(p[~near].mean())
    if np.sum(~m) >= 10:
        return float(p[~m].mean())
    return None


# ----------------------------------------------------------------------------------------------------------
# noise and mixing


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with a 1/f power spectrum (-3 dB per octave), unit variance."""
    if n <= 0:
        return np.zeros(0)
    spec = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 1 else 1.0
    spec /= np.sqrt(f)
    spec[0] = 0.0
    x = np.fft.irfft(spec, n)
    return x / (x.std() + 1e-30)


@lru_cache(maxsize=16)
def _noise_at(kind: str, rate: int) -> np.ndarray:
    x, native = _read(f"noise/{NOISE_FILES[kind]}")
    return _readonly(resample(x, in_rate=native, out_rate=rate))


def noise_signal(kind: str, *, n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of noise ``kind`` at ``rate``.

    Synthetic ``white``/``pink`` are drawn from ``rng``. A real noise is resampled to ``rate``, looped by mirror
    tiling (forward, reversed, forward, ...: no click at the seams) and cropped at a random offset.
    """
    if kind == "white":
        return rng.standard_normal(n)
    if kind == "pink":
        return pink_noise(n, rng)
    if kind in ("hum50", "hum60"):
        return mains_hum(50.0 if kind == "hum50" else 60.0, n=n, rate=rate, rng=rng)
    if kind not in NOISE_FILES:
        raise InvalidArgument(f"noise kind must be one of {NOISE_TYPES}, got {kind!r}")
    base = _noise_at(kind, rate)
    period = np.concatenate([base, base[::-1]])
    offset = int(rng.integers(0, len(period)))
    reps = (offset + n) // len(period) + 1
    return np.tile(period, reps)[offset : offset + n].copy()


def mains_hum(f0_hz: float, *, n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of mains hum at ``f0_hz``: the harmonics of :data:`HUM_HARMONICS` at random phases."""
    t = np.arange(n) / rate
    phases = rng.uniform(0.0, 2.0 * np.pi, len(HUM_HARMONICS))
    return sum(
        (
            a * np.sin(2.0 * np.pi * k * f0_hz * t + ph)
            for k, (a, ph) in enumerate(zip(HUM_HARMONICS, phases, strict=True), 1)
        ),
        start=np.zeros(n),
    )


def mix_at_snr(
    speech: np.ndarray, noise: np.ndarray, *, snr_db: float, mask: np.ndarray, rate: int
) -> tuple[np.ndarray, np.ndarray]:
    """Scale ``noise`` so that active speech power / mean noise power = ``snr_db``; return (mixture, noise).

    Speech power is the mean over the frames of ``mask`` (see :func:`active_power`); noise power is the mean
    over the whole noise signal, which must be as long as ``speech``.
    """
    speech = np.asarray(speech, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    if len(noise) != len(speech):
        raise InvalidArgument(f"noise length {len(noise)} must equal speech length {len(speech)}")
    if not np.isfinite(snr_db):
        raise InvalidArgument(f"snr_db must be finite, got {snr_db!r}")
    ps = active_power(speech, mask, rate)
    pn = float(np.mean(noise**2))
    if pn <= 0.0:
        raise InvalidArgument("noise is digital silence")
    scaled = noise * np.sqrt(ps / (pn * 10.0 ** (snr_db / 10.0)))
    return speech + scaled, scaled


def _fit_peak(x: np.ndarray, *, limit: float = 0.99) -> tuple[np.ndarray, float]:
    """Scale ``x`` down (never up) so its peak is at most ``limit``; return it and the gain used."""
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    gain = min(1.0, limit / peak) if peak > 0 else 1.0
    return x * gain, gain


# ----------------------------------------------------------------------------------------------------------
# room impulse responses


def synthetic_rir(
    *, t60_s: float, rate: int, seed: int, volume_m3: float = 50.0, distance_m: float = 1.0
) -> np.ndarray:
    """A synthetic RIR: a unit direct impulse, then a Gaussian tail decaying 60 dB in ``t60_s``.

    The tail starts 2 ms after the direct sound and lasts ``1.2 * t60_s + 0.05`` s. Its energy relative to the
    direct sound follows Sabine's diffuse-field model for a room of ``volume_m3`` at ``distance_m``: critical
    distance ``0.057 * sqrt(V / T60)``, so DRR = ``20 log10(r_c / r)`` (about -1 dB at 0.2 s, -9 dB at 1.2 s).
    """
    if not (t60_s > 0 and np.isfinite(t60_s)):
        raise InvalidArgument(f"t60_s must be a positive number, got {t60_s!r}")
    n = round((1.2 * t60_s + 0.05) * rate)
    t = np.arange(n) / rate
    rng = np.random.default_rng(seed)
    tail = rng.standard_normal(n) * 10.0 ** (-3.0 * t / t60_s)
    tail[t < 0.002] = 0.0
    drr_db = 20.0 * np.log10(0.057 * np.sqrt(volume_m3 / t60_s) / distance_m)
    tail *= np.sqrt(10.0 ** (-drr_db / 10.0) / np.sum(tail**2))
    tail[0] = 1.0
    return tail


def _band_edc_db(h: np.ndarray, rate: int) -> np.ndarray:
    """Schroeder energy decay curve (dB, 0 at the direct sound) with the noise floor handled.

    The response starts at its peak. When the last 10 % is flat (a noise floor: its two halves within 3 dB),
    that mean power is subtracted and the response is cut where its 10 ms envelope first falls within 5 dB
    of the floor (a simplified Lundeby truncation); otherwise it is integrated to its end.
    """
    h = h[int(np.argmax(np.abs(h))) :]
    e = h**2
    tail = e[int(0.9 * len(e)) :]
    half = len(tail) // 2
    first, second = float(tail[:half].mean()), float(tail[half:].mean())
    if half > 0 and second > 0 and abs(10.0 * np.log10(first / second)) < 3.0:
        noise = float(tail.mean())
        block = max(1, round(0.01 * rate))
        nb = len(e) // block
        env = e[: nb * block].reshape(nb, block).mean(axis=1)
        below = np.flatnonzero(env <= noise * 10.0**0.5)
        cut = int(below[0]) * block if len(below) else len(e)
        e = np.clip(e[:cut] - noise, 0.0, None)
    edc = np.cumsum(e[::-1])[::-1]
    if len(edc) == 0 or edc[0] <= 0:
        return np.zeros(0)
    return 10.0 * np.log10(np.maximum(edc / edc[0], 1e-30))


def _fit_t60(edc_db: np.ndarray, rate: int) -> float | None:
    """T60 from a line fitted to the EDC between -5 dB and -35 dB (T30), else -5 to -25 dB (T20)."""
    for low in (-35.0, -25.0):
        if len(edc_db) == 0 or edc_db.min() > low:
            continue
        i0 = int(np.argmax(edc_db <= -5.0))
        i1 = int(np.argmax(edc_db <= low))
        if i1 - i0 < 10:
            continue
        t = np.arange(i0, i1) / rate
        slope = np.polyfit(t, edc_db[i0:i1], 1)[0]
        if slope < 0:
            return float(-60.0 / slope)
    return None


def schroeder_t60(
    rir: np.ndarray, rate: int, *, bands: Sequence[tuple[float, float]] | None = T_MID_BANDS_HZ
) -> float | None:
    """T60 of a room impulse response by Schroeder backward integration (T30 fit, T20 if range is short).

    With ``bands`` (default: the 500 Hz and 1 kHz octaves), the response is band-passed (4th-order
    Butterworth, causal) per band and the per-band T60s are averaged; ``bands=None`` fits the broadband
    response. ``None`` when any band has too little decay range for a T20 fit.
    """
    h = np.asarray(rir, dtype=np.float64)
    if h.ndim != 1 or len(h) < rate // 20:
        raise InvalidArgument(f"rir must be 1-D and at least 50 ms long, got shape {h.shape}")
    if bands is None:
        return _fit_t60(_band_edc_db(h, rate), rate)
    values = []
    for lo, hi in bands:
        sos = signal.butter(4, [lo, hi], btype="bandpass", fs=rate, output="sos")
        value = _fit_t60(_band_edc_db(signal.sosfilt(sos, h), rate), rate)
        if value is None:
            return None
        values.append(value)
    return float(np.mean(values))


@lru_cache(maxsize=8)
def measured_rir(room: str) -> tuple[np.ndarray, int, float]:
    """A measured RIR (channel 0, starting 1 ms before its direct-sound peak), its rate and its T_mid T60."""
    if room not in MEASURED_RIRS:
        raise InvalidArgument(f"room must be one of {sorted(MEASURED_RIRS)}, got {room!r}")
    h, rate = _read(f"rir/{MEASURED_RIRS[room]}")
    start = max(0, int(np.argmax(np.abs(h))) - rate // 1000)
    h = np.ascontiguousarray(h[start:])
    t60 = schroeder_t60(h, rate)
    if t60 is None:
        raise RuntimeError(f"no T60 could be fitted to {room}")
    return _readonly(h), rate, t60


def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve ``x`` with ``rir`` (same rate), keep ``len(x)`` samples (the direct sound stays aligned)."""
    return signal.fftconvolve(x, rir)[: len(x)]


# ----------------------------------------------------------------------------------------------------------
# band limiting, clipping, pauses


def lowpass_fir(*, pass_hz: float, stop_hz: float, rate: int, atten_db: float = 80.0) -> np.ndarray:
    """Linear-phase Kaiser low-pass: flat to ``pass_hz``, at least ``atten_db`` down from ``stop_hz``."""
    if not 0 < pass_hz < stop_hz <= rate / 2:
        raise InvalidArgument(f"need 0 < pass_hz < stop_hz <= rate/2, got {pass_hz!r}, {stop_hz!r}, {rate!r}")
    numtaps, beta = signal.kaiserord(atten_db, (stop_hz - pass_hz) / (rate / 2))
    numtaps |= 1
    return signal.firwin(numtaps, (pass_hz + stop_hz) / 2, window=("kaiser", beta), fs=rate)


def bandwidth_class(hz: float | None) -> str:
    """The class of an effective bandwidth: narrow < 4200 Hz, wide < 8200, super_wide < 12000, else full."""
    if hz is None:
        return "full"
    for name, edge in BANDWIDTH_EDGES_HZ:
        if hz < edge:
            return name
    return "full"


def clip_to_ratio(x: np.ndarray, ratio: float, *, level: float = CLIP_LEVEL) -> tuple[np.ndarray, float]:
    """Apply gain, then hard-clip at ``±level`` so that about ``ratio`` of the samples are clipped.

    The gain maps the ``(1 - ratio)`` quantile of ``|x|`` to ``level``; returns the clipped signal and the
    achieved ratio (the fraction of samples at ``±level``).
    """
    if not 0 < ratio < 1:
        raise InvalidArgument(f"ratio must be in (0, 1), got {ratio!r}")
    x = np.asarray(x, dtype=np.float64)
    threshold = float(np.quantile(np.abs(x), 1.0 - ratio))
    if threshold <= 0:
        raise InvalidArgument("signal is too sparse to clip at that ratio")
    y = np.clip(x * (level / threshold), -level, level)
    achieved = float(np.mean(np.abs(y) >= level))
    return y, achieved


def mp3_roundtrip(x: np.ndarray, rate: int) -> np.ndarray:
    """Encode ``x`` as MP3 with libsndfile (soundfile) in memory and decode it again (float64)."""
    buf = io.BytesIO()
    sf.write(buf, np.asarray(x, dtype=np.float32), rate, format="MP3")
    buf.seek(0)
    y, _ = sf.read(buf, dtype="float64")
    return np.asarray(y)


def room_tone(utterances: Sequence[np.ndarray], masks: Sequence[np.ndarray], rate: int) -> np.ndarray | None:
    """The item's own background: the longest stretch of *quiet* non-speech frames, if >= 0.1 s.

    Quiet = at most 6 dB above the median level of all non-speech frames of the utterances, so a breath or a
    lip smack left outside the speech mask is not looped into the silence. One frame is trimmed each side.
    """
    powers = [frame_powers(x, rate)[: len(m)] for x, m in zip(utterances, masks, strict=True)]
    nonspeech = np.concatenate([p[~np.asarray(m, dtype=bool)] for p, m in zip(powers, masks, strict=True)])
    if len(nonspeech) == 0:
        return None
    limit = float(np.median(nonspeech)) * 10.0 ** (6.0 / 10.0)
    best: np.ndarray | None = None
    for x, m, p in zip(utterances, masks, powers, strict=True):
        bounds = frame_bounds(len(m), rate)
        quiet = ~np.asarray(m, dtype=bool) & (p <= limit)
        for start, end in _true_runs(quiet):
            if end - start - 2 < round(0.1 / FRAME_S):
                continue
            seg = x[bounds[start + 1] : bounds[end - 1]]
            if best is None or len(seg) > len(best):
                best = seg
    return None if best is None else np.array(best)


def filler(n: int, *, tone: np.ndarray | None, rate: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of silence that is never digital zero.

    With a room ``tone``: Gaussian noise shaped to the tone's long-term spectrum (Welch) and scaled to its
    RMS, so a short stretch of room tone becomes any length of it without looping (a looped 0.2 s stretch
    would be periodic, which no room is). Without one: pink noise at -70 dBFS.
    """
    if n <= 0:
        return np.zeros(0)
    if tone is None or len(tone) < 64:
        return pink_noise(n, rng) * 10.0 ** (FILLER_DBFS / 20.0)
    f, psd = signal.welch(tone, rate, nperseg=min(512, len(tone)))
    spec = np.fft.rfft(rng.standard_normal(n)) * np.sqrt(np.interp(np.fft.rfftfreq(n, 1.0 / rate), f, psd))
    y = np.fft.irfft(spec, n)
    return y * np.sqrt(np.mean(tone**2) / (np.mean(y**2) + 1e-30))


def insert_pauses(
    utterances: Sequence[np.ndarray], pauses_s: Sequence[float], *, rate: int, seed: int = 0
) -> tuple[np.ndarray, dict[str, Any]]:
    """Join utterances with inserted silences; return the signal and its pause truth.

    ``pauses_s[k]`` goes between utterance ``k`` and ``k + 1``. Each utterance is cut to whole 10 ms frames
    and the silences are whole frames, so the truth mask is the concatenation of each utterance's own
    :func:`truth_speech_mask` with non-speech over the fillers. Truth: ``speech_mask``; ``pauses`` (every
    internal non-speech run of that mask, ``[start_s, end_s]``); ``inserted`` (per join: asked length, the
    natural silence at the join, and the resulting pause); ``max_pause_s``.
    """
    if len(pauses_s) != len(utterances) - 1:
        raise InvalidArgument(f"need {len(utterances) - 1} pauses for {len(utterances)} utterances")
    if rate % 100 != 0:
        raise InvalidArgument(f"rate must be a multiple of 100 Hz for whole frames, got {rate!r}")
    for p in pauses_s:
        if not p > 0 or abs(p * 100 - round(p * 100)) > 1e-9:
            raise InvalidArgument(f"pauses must be positive multiples of 10 ms, got {p!r}")
    flen = rate // 100
    cut = [np.asarray(u, dtype=np.float64)[: (len(u) // flen) * flen] for u in utterances]
    masks = [truth_speech_mask(u, rate) for u in cut]
    for k, m in enumerate(masks):
        if not m.any():
            raise InvalidArgument(f"utterance {k} has no speech")
    tone = room_tone(cut, masks, rate)
    rng = np.random.default_rng(seed)
    pieces: list[np.ndarray] = []
    mask_parts: list[np.ndarray] = []
    inserted: list[dict[str, Any]] = []
    frame = 0
    for k, (u, m) in enumerate(zip(cut, masks, strict=True)):
        pieces.append(u)
        mask_parts.append(m)
        frame += len(m)
        if k == len(cut) - 1:
            break
        n_fill = round(pauses_s[k] * 100)
        trailing = len(m) - 1 - int(np.flatnonzero(m)[-1])
        leading = int(np.flatnonzero(masks[k + 1])[0])
        start = frame - trailing
        end = frame + n_fill + leading
        inserted.append(
            {
                "asked_s": float(pauses_s[k]),
                "natural_s": round((trailing + leading) * FRAME_S, 2),
                "start_s": round(start * FRAME_S, 2),
                "end_s": round(end * FRAME_S, 2),
                "length_s": round((end - start) * FRAME_S, 2),
            }
        )
        pieces.append(filler(n_fill * flen, tone=tone, rate=rate, rng=rng))
        mask_parts.append(np.zeros(n_fill, dtype=bool))
        frame += n_fill
    y = np.concatenate(pieces)
    mask = np.concatenate(mask_parts)
    gaps = [[round(a * FRAME_S, 2), round(b * FRAME_S, 2)] for a, b in internal_gaps(mask)]
    truth = {
        "speech_mask": mask,
        "pauses": gaps,
        "inserted": inserted,
        "max_pause_s": max((b - a for a, b in gaps), default=0.0),
        "room_tone": tone is not None,
    }
    return y, truth


# ----------------------------------------------------------------------------------------------------------
# items per condition


def _item(name: str, condition: str, params: dict[str, Any], x: np.ndarray, rate: int, truth: dict) -> Item:
    samples = np.asarray(x, dtype=np.float32)
    if not np.all(np.isfinite(samples)):
        raise RuntimeError(f"corpus item {name} has non-finite samples")
    return Item(name=name, condition=condition, params=params, samples=samples, sample_rate=rate, truth=truth)


def _source_truth(x: np.ndarray, rate: int) -> dict[str, Any]:
    """Speech mask and powers of a clean source; ``_ps``/``_pn`` in the band a delivered clip keeps
    (:func:`delivered_band`), ``_ps_broad``/``_pn_broad`` over the whole band."""
    mask = truth_speech_mask(x, rate)
    band = delivered_band(x, rate)
    ps, pn = active_power(band, mask, rate), source_noise_power(band, mask, rate)
    return {
        "speech_mask": mask,
        "speech_s": round(float(mask.sum()) * FRAME_S, 2),
        "source_snr_db": None if pn is None or pn <= 0 else round(10.0 * np.log10(ps / pn), 2),
        "_ps": ps,
        "_pn": pn,
        "_ps_broad": active_power(x, mask, rate),
        "_pn_broad": source_noise_power(x, mask, rate),
    }


def _snr_truth(st: dict[str, Any], noise: np.ndarray, rate: int) -> dict[str, float]:
    """The truths of a clean source ``st`` plus ``noise``: ``effective_snr_db`` in the delivered band
    (what voiceprep's ``snr_db`` means) and ``broadband_snr_db`` over the whole band, both counting the
    source's own background."""
    pn_band = float(np.mean(delivered_band(noise, rate) ** 2)) + (st["_pn"] or 0.0)
    pn_broad = float(np.mean(np.asarray(noise, dtype=np.float64) ** 2)) + (st["_pn_broad"] or 0.0)
    return {
        "effective_snr_db": round(10.0 * np.log10(st["_ps"] / pn_band), 3),
        "broadband_snr_db": round(10.0 * np.log10(st["_ps_broad"] / pn_broad), 3),
    }


def clean_items(*, quick: bool = False) -> Iterator[Item]:
    """The clean sources at their native rates (VAD reference, negative cases for the other measures)."""
    for src in CLEAN_SOURCES[:3] if quick else CLEAN_SOURCES:
        x, rate = load_source(src)
        st = _source_truth(x, rate)
        truth = {k: v for k, v in st.items() if not k.startswith("_")}
        yield _item(f"clean/{src}", "clean", {"source": src}, x, rate, truth)


def snr_items(*, quick: bool = False) -> Iterator[Item]:
    """Sources at 16 kHz mixed with each noise at each SNR.

    Items are at the analysis rate so the band over which the truth SNR is defined is the band the analysers
    see (white noise at 48 kHz would otherwise put two thirds of its power above 8 kHz).
    """
    sources = ("aew", "libri_196") if quick else SNR_SOURCES
    noises = ("white", "exercise_bike", "dishes") if quick else NOISE_TYPES
    levels = (0.0, 10.0, 20.0, 30.0) if quick else SNR_LEVELS_DB
    for src in sources:
        x, rate = load_source(src, rate=ANALYSIS_RATE)
        st = _source_truth(x, rate)
        for kind in noises:
            for level in levels:
                name = f"snr/{src}/{kind}/{level:g}dB"
                mix, noise = mix_at_snr(
                    x,
                    noise_signal(kind, n=len(x), rate=rate, rng=_rng(name)),
                    snr_db=level,
                    mask=st["speech_mask"],
                    rate=rate,
                )
                mix, gain = _fit_peak(mix)
                truth = {
                    "snr_db": level,
                    **_snr_truth(st, noise, rate),
                    "source_snr_db": st["source_snr_db"],
                    "noise": kind,
                    "stationary": kind in STATIONARY_NOISES,
                    "mix_gain": gain,
                    "speech_mask": st["speech_mask"],
                }
                params = {"source": src, "noise": kind, "snr_db": level}
                yield _item(name, "snr", params, mix, rate, truth)


def rumble_items(*, quick: bool = False) -> Iterator[Item]:
    """Sources at 16 kHz under low-frequency noise (:data:`RUMBLE_NOISES`) at broadband SNRs of 0-20 dB.

    ``snr_db`` is the asked broadband SNR (over the whole band); ``effective_snr_db`` is the truth in the
    band a delivered clip keeps, after the render's own high-pass, which removes most of such noise.
    """
    sources = ("aew", "libri_196") if quick else SNR_SOURCES
    noises = ("car_engine", "hum50") if quick else RUMBLE_NOISES
    levels = (0.0, 10.0) if quick else RUMBLE_LEVELS_DB
    for src in sources:
        x, rate = load_source(src, rate=ANALYSIS_RATE)
        st = _source_truth(x, rate)
        for kind in noises:
            for level in levels:
                hum = {"hum50": 50.0, "hum60": 60.0}.get(kind)
                yield _noisy_item("rumble", src, x, rate, st, kind, level, {"hum_hz": hum})


def _noisy_item(
    group: str, src: str, x: np.ndarray, rate: int, st: dict, kind: str, level: float, extra: dict
) -> Item:
    """``x`` under noise ``kind`` at ``level`` dB SNR over its speech, peak-fitted, with the SNR truths
    (as :func:`snr_items` has them) and ``extra`` truth fields."""
    name = f"{group}/{src}/{kind}/{level:g}dB"
    noise = noise_signal(kind, n=len(x), rate=rate, rng=_rng(name))
    mix, noise = mix_at_snr(x, noise, snr_db=level, mask=st["speech_mask"], rate=rate)
    mix, gain = _fit_peak(mix)
    truth = {"snr_db": level, **_snr_truth(st, noise, rate), "noise": kind, "mix_gain": gain, **extra}
    return _item(name, group, {"source": src, "noise": kind, "snr_db": level}, mix, rate, truth)


def continuous_speech(x: np.ndarray, rate: int, *, min_s: float = CONTINUOUS_MIN_S) -> np.ndarray:
    """The speech of a clean recording with its pauses cut out (only its truth-mask frames, joined with
    10 ms crossfades), repeated until it is at least ``min_s`` long: speech with no quiet between words."""
    mask = truth_speech_mask(x, rate)
    bounds = frame_bounds(len(mask), rate)
    fade = rate // 100
    ramp = np.sin(np.linspace(0.0, np.pi / 2, fade)) ** 2
    out = np.zeros(0)
    for start, end in _true_runs(mask):
        part = np.asarray(x[bounds[start] : bounds[end]], dtype=np.float64)
        if out.size >= fade and part.size >= fade:
            out[-fade:] = out[-fade:] * ramp[::-1] + part[:fade] * ramp
            part = part[fade:]
        out = np.concatenate([out, part])
    reps = int(np.ceil(min_s * rate / max(out.size, 1)))
    return np.tile(out, reps)


def continuous_items(*, quick: bool = False) -> Iterator[Item]:
    """Speech with no pauses (:func:`continuous_speech`) under stationary noise at 0-20 dB, at 16 kHz.

    Nothing is left between the words to measure the noise in. Truths as for :func:`snr_items`; the source's
    own background is counted at its level between the original words.
    """
    sources = ("aew", "libri_196") if quick else CONTINUOUS_SOURCES
    noises = ("white", "rain_ambience") if quick else CONTINUOUS_NOISES
    levels = (0.0, 10.0, 20.0) if quick else CONTINUOUS_LEVELS_DB
    for src in sources:
        x, rate = load_source(src, rate=ANALYSIS_RATE)
        own = _source_truth(x, rate)
        y = continuous_speech(x, rate)
        st = {**_source_truth(y, rate), "_pn": own["_pn"], "_pn_broad": own["_pn_broad"]}
        for kind in noises:
            for level in levels:
                share = round(float(st["speech_mask"].mean()), 3)
                yield _noisy_item("continuous", src, y, rate, st, kind, level, {"speech_share": share})


def _rooms(rate: int, seed_name: str) -> Iterator[tuple[str, np.ndarray, float, str]]:
    """(room, rir at ``rate``, true T60, kind) for the synthetic and measured rooms."""
    for t60 in SYNTHETIC_T60_S:
        yield (
            f"synthetic_{t60:g}s",
            synthetic_rir(t60_s=t60, rate=rate, seed=_seed(f"{seed_name}/{t60}")),
            t60,
            "synthetic",
        )
    for room in MEASURED_RIRS:
        h, native, t60 = measured_rir(room)
        yield room, resample(h, in_rate=native, out_rate=rate), t60, "measured"


def reverb_items(*, quick: bool = False) -> Iterator[Item]:
    """Each source dry and convolved with every room, all with pink noise 40 dB under the speech."""
    for src in REVERB_SOURCES[:1] if quick else REVERB_SOURCES:
        x, rate = load_source(src)
        st = _source_truth(x, rate)
        mask = st["speech_mask"]
        dry_power = active_power(x, mask, rate)
        versions: list[tuple[str, np.ndarray, float | None, str]] = [("dry", x, None, "dry")]
        versions += [(room, reverberate(x, h), t60, kind) for room, h, t60, kind in _rooms(rate, src)]
        for room, wet, t60, kind in versions:
            name = f"reverb/{src}/{room}"
            wet = wet * np.sqrt(dry_power / active_power(wet, mask, rate))
            noise = pink_noise(len(wet), _rng(name))
            mix, _ = mix_at_snr(wet, noise, snr_db=REVERB_NOISE_SNR_DB, mask=mask, rate=rate)
            mix, _ = _fit_peak(mix)
            truth = {"t60_s": t60, "room": room, "room_kind": kind, "dry": kind == "dry", "speech_mask": mask}
            yield _item(name, "reverb", {"source": src, "room": room, "kind": kind}, mix, rate, truth)


# band name -> (low rate, pass edge of an extra FIR low-pass or None, stop edge of that FIR, class, nominal Hz)
BANDS: dict[str, tuple[int | None, float | None, float | None, str, float | None]] = {
    "narrow_3k4": (8000, 3400.0, 3800.0, "narrow", 3400.0),
    "narrow_4k": (8000, None, None, "narrow", 4000.0),
    "wide_7k": (16000, 7000.0, 7500.0, "wide", 7000.0),
    "wide_8k": (16000, None, None, "wide", 8000.0),
    "super_wide_11k": (24000, None, None, "super_wide", 11700.0),
    "full": (None, None, None, "full", None),
}
BANDWIDTH_NOISE: tuple[str, ...] = ("clean", "low_rate_20db", "full_band_30db", "full_band_20db")
HISS_20DB = "full_band_20db"
"""White noise at 20 dB added at 48 kHz after band-limiting (issue 8 item 5): scored on its own."""


def edge_drop_db(y: np.ndarray, rate: int, mask: np.ndarray, *, edge_hz: float, stop_hz: float) -> float:
    """How far the speech-frame spectrum falls across a band edge (dB): the "cliff" a bandwidth meter sees.

    Mean power spectrum over the STFT frames (2048 points, 10 ms hop) centred in speech frames; mean level
    in ``[0.85, 0.97] * edge_hz`` minus mean level in ``[1.03, 1.2] * stop_hz`` (capped below Nyquist).
    """
    hop = rate // 100
    f, t, z = signal.stft(y, rate, nperseg=2048, noverlap=2048 - hop, boundary=None, padded=False)
    idx = np.clip((t / FRAME_S).astype(int), 0, len(mask) - 1)
    frames = np.abs(z[:, np.asarray(mask, dtype=bool)[idx]]) ** 2
    psd = frames.mean(axis=1) if frames.shape[1] else (np.abs(z) ** 2).mean(axis=1)
    below = psd[(f >= 0.85 * edge_hz) & (f <= 0.97 * edge_hz)]
    above = psd[(f >= 1.03 * stop_hz) & (f <= min(1.2 * stop_hz, 0.98 * rate / 2))]
    return float(10.0 * np.log10(below.mean() / max(above.mean(), 1e-30)))


def band_limit_item(
    x48: np.ndarray, *, band: str, noise: str, mask: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, Any]]:
    """Band-limit a 48 kHz signal the way real recordings are: down to a low rate, (noise), back up to 48 kHz.

    ``noise``: ``clean``; ``low_rate_20db`` (pink noise at 20 dB added at the low rate before the optional
    FIR and the upsampling, so it is band-limited like the speech, as in a phone); ``full_band_30db`` and
    ``full_band_20db`` (white noise at 30 or 20 dB, over the whole band, added at 48 kHz after upsampling).
    Returns the signal and the truth (``class``,
    ``bandwidth_hz`` nominal, ``stopband_hz``: above it the band-limited signal is at least 50 dB down;
    ``edge_drop_db``: how far the speech spectrum falls across the edge, see :func:`edge_drop_db`).
    """
    if band not in BANDS:
        raise InvalidArgument(f"band must be one of {sorted(BANDS)}, got {band!r}")
    if noise not in BANDWIDTH_NOISE:
        raise InvalidArgument(f"noise must be one of {BANDWIDTH_NOISE}, got {noise!r}")
    low_rate, pass_hz, stop_hz, cls, nominal = BANDS[band]
    rate = low_rate or FULL_RATE
    y = resample(x48, in_rate=FULL_RATE, out_rate=rate)
    if noise == "low_rate_20db":
        low_mask = mask[: frame_count(len(y), rate)]
        y, _ = mix_at_snr(y, pink_noise(len(y), rng), snr_db=20.0, mask=low_mask, rate=rate)
    if pass_hz is not None and stop_hz is not None:
        y = np.convolve(y, lowpass_fir(pass_hz=pass_hz, stop_hz=stop_hz, rate=rate), mode="same")
    y = resample(y, in_rate=rate, out_rate=FULL_RATE)[: len(x48)]
    if len(y) < len(x48):
        y = np.pad(y, (0, len(x48) - len(y)))
    if noise in ("full_band_30db", HISS_20DB):
        level = 30.0 if noise == "full_band_30db" else 20.0
        y, _ = mix_at_snr(y, rng.standard_normal(len(y)), snr_db=level, mask=mask, rate=FULL_RATE)
    y, _ = _fit_peak(y)
    stopband = stop_hz if stop_hz is not None else (low_rate / 2 if low_rate else None)
    truth: dict[str, Any] = {
        "class": cls,
        "bandwidth_hz": nominal,
        "stopband_hz": stopband,
        "edge_drop_db": None,
    }
    if nominal is not None and stopband is not None:
        truth["edge_drop_db"] = round(edge_drop_db(y, FULL_RATE, mask, edge_hz=nominal, stop_hz=stopband), 1)
    return y, truth


def bandwidth_items(*, quick: bool = False) -> Iterator[Item]:
    """Full-band sources at 48 kHz band-limited to each class, clean and noisy; LibriSpeech upsampled (wide)."""
    for src in FULLBAND_SOURCES[:1] if quick else FULLBAND_SOURCES:
        x48, _ = load_source(src, rate=FULL_RATE)
        mask = truth_speech_mask(x48, FULL_RATE)
        for band in BANDS:
            for noise in ("clean", "low_rate_20db") if quick else BANDWIDTH_NOISE:
                name = f"bandwidth/{src}/{band}/{noise}"
                y, truth = band_limit_item(x48, band=band, noise=noise, mask=mask, rng=_rng(name))
                params = {"source": src, "band": band, "noise": noise}
                yield _item(name, "bandwidth", params, y, FULL_RATE, truth)
    for src in WIDEBAND_LIBRI[:2] if quick else WIDEBAND_LIBRI:
        x, rate = load_source(src)
        y, _ = _fit_peak(resample(x, in_rate=rate, out_rate=FULL_RATE))
        truth = {"class": "wide", "bandwidth_hz": 8000.0, "stopband_hz": rate / 2}
        mask = truth_speech_mask(y, FULL_RATE)
        truth["edge_drop_db"] = round(edge_drop_db(y, FULL_RATE, mask, edge_hz=7600.0, stop_hz=8000.0), 1)
        params = {"source": src, "band": "librispeech_16k_up", "noise": "as_recorded"}
        yield _item(f"bandwidth/{src}/librispeech_16k_up", "bandwidth", params, y, FULL_RATE, truth)
        name = f"bandwidth/{src}/librispeech_16k_up/{HISS_20DB}"
        hissed, _ = mix_at_snr(y, _rng(name).standard_normal(len(y)), snr_db=20.0, mask=mask, rate=FULL_RATE)
        hissed, _ = _fit_peak(hissed)
        params = {**params, "noise": HISS_20DB}
        yield _item(name, "bandwidth", params, hissed, FULL_RATE, truth)


def clipping_items(*, quick: bool = False) -> Iterator[Item]:
    """Clipped at each ratio and clipped then attenuated x0.5; unclipped negatives; each also through MP3.

    Negatives are every clean source peak-normalised to 0.99 and to 0.9 (more negatives make the
    false-alarm rate less coarse).
    """
    variants: list[tuple[str, str, np.ndarray, int, dict[str, Any]]] = []
    for src in CLIP_SOURCES[:2] if quick else CLIP_SOURCES:
        x, rate = load_source(src)
        x = x / np.max(np.abs(x))
        for ratio in CLIP_RATIOS:
            y, achieved = clip_to_ratio(x, ratio)
            base = {"clipped": True, "clipped_ratio": achieved, "asked_ratio": ratio}
            variants.append((src, f"clip_{ratio:g}", y, rate, {**base, "clip_level": CLIP_LEVEL}))
            variants.append(
                (src, f"clip_{ratio:g}_x0.5", 0.5 * y, rate, {**base, "clip_level": 0.5 * CLIP_LEVEL})
            )
        yield from _clip_versions(variants)
        variants.clear()
        for ratio in CLIP_RATIOS:
            y, achieved = under_peak_clipping(x, rate, ratio)
            truth = {"clipped": True, "clipped_ratio": achieved, "asked_ratio": ratio, "under_peak": True}
            variants.append(
                (src, f"clip_{ratio:g}_under_peak", y, rate, {**truth, "clip_level": UNDER_PEAK_CLIP_LEVEL})
            )
        yield from _clip_versions(variants, codecs=("pcm",))
        variants.clear()
    for src in CLEAN_SOURCES[:2] if quick else CLEAN_SOURCES:
        x, rate = load_source(src)
        x = x / np.max(np.abs(x))
        for peak in (0.99, 0.9):
            truth = {"clipped": False, "clipped_ratio": 0.0, "asked_ratio": 0.0, "clip_level": None}
            variants.append((src, f"unclipped_{peak:g}", peak * x, rate, truth))
        yield from _clip_versions(variants)
        variants.clear()


def under_peak_clipping(x: np.ndarray, rate: int, ratio: float) -> tuple[np.ndarray, float]:
    """``x`` clipped at :data:`UNDER_PEAK_CLIP_LEVEL` between two unclipped copies at peak 0.99, 1.2 s apart,
    so that about ``ratio`` of all the samples are clipped: clipping whose plateau lies 12 dB under the
    recording's peak (issue 8, case 3). Returns the signal and the clipped share of the whole."""
    loud = 0.99 * np.asarray(x, dtype=np.float64) / np.max(np.abs(x))
    gap = np.zeros(round(1.2 * rate))
    # The part is clipped harder, so that the clipped share of the whole is about ``ratio``.
    part, achieved = clip_to_ratio(
        x, ratio * (3 * x.size + 2 * gap.size) / x.size, level=UNDER_PEAK_CLIP_LEVEL
    )
    whole = np.concatenate([loud, gap, part, gap, loud])
    return whole, achieved * part.size / whole.size


def _clip_versions(
    variants: Sequence[tuple[str, str, np.ndarray, int, dict[str, Any]]],
    *,
    codecs: Sequence[str] = ("pcm", "mp3"),
) -> Iterator[Item]:
    for src, label, y, rate, truth in variants:
        for codec in codecs:
            out = y if codec == "pcm" else mp3_roundtrip(y, rate)
            params = {"source": src, "variant": label, "codec": codec, "asked_ratio": truth["asked_ratio"]}
            t = {**truth, "codec": codec, "attenuated": label.endswith("x0.5")}
            yield _item(f"clipping/{src}/{label}/{codec}", "clipping", params, out, rate, t)


def pause_items(*, quick: bool = False) -> Iterator[Item]:
    """Three utterances of one speaker joined by two inserted silences of the listed lengths."""
    speakers = ("aew",) if quick else tuple(PAUSE_SPEAKERS)
    lengths = (0.6, 1.5, 3.0) if quick else PAUSE_LENGTHS_S
    for spk in speakers:
        utts: list[np.ndarray] = []
        rate = ANALYSIS_RATE
        for src in PAUSE_SPEAKERS[spk]:
            arrays, rate = load_utterances(src, rate=ANALYSIS_RATE)
            utts.extend(arrays)
        utts = utts[:3]
        for i, first in enumerate(lengths):
            second = lengths[(i + len(lengths) // 2) % len(lengths)]
            name = f"pause/{spk}/{first:g}s+{second:g}s"
            y, truth = insert_pauses(utts, [first, second], rate=rate, seed=_seed(name))
            params = {"speaker": spk, "pauses_s": [first, second]}
            yield _item(name, "pause", params, y, rate, truth)


_GENERATORS = {
    "clean": clean_items,
    "snr": snr_items,
    "rumble": rumble_items,
    "continuous": continuous_items,
    "reverb": reverb_items,
    "bandwidth": bandwidth_items,
    "clipping": clipping_items,
    "pause": pause_items,
}


def iter_corpus(*, conditions: Sequence[str] | None = None, quick: bool = False) -> Iterator[Item]:
    """Yield the corpus items of ``conditions`` (default: all), one at a time; ``quick`` is a small subset."""
    chosen = list(CONDITIONS) if conditions is None else list(conditions)
    for c in chosen:
        if c not in _GENERATORS:
            raise InvalidArgument(f"condition must be one of {CONDITIONS}, got {c!r}")
    for c in chosen:
        yield from _GENERATORS[c](quick=quick)


# ----------------------------------------------------------------------------------------------------------
# selection recordings: one clean stretch, everything else degraded (benchmarks/selection_bench.py)

SELECTION_SPEAKERS: dict[str, tuple[str, ...]] = {
    "aew": ("aew",),
    "axb": ("axb",),
    "libri_3080": ("libri_3080", "libri_3080b", "libri_3080c"),
    "libri_1246": ("libri_1246",),
    "libri_196": ("libri_196",),
    "libri1_198": ("libri1_198",),
    "ljspeech": ("ljspeech",),
    "vctk_p286": ("vctk_p286",),
    "sms_female": ("sms_female",),
    "sms_male": ("sms_male",),
}
"""Voice -> corpus sources whose files are its utterances. libri_2289 is left out: one utterance (15.2 s of
speech) is under the clean stretch's 16 s and two are over its 30 s."""

SELECTION_POSITIONS: tuple[str, ...] = ("start", "middle", "end")
SELECTION_RATES: tuple[int, ...] = (48000, 44100)
SELECTION_CLEAN_S: tuple[float, float] = (16.0, 30.0)
"""Speech span of the clean stretch (first clean word onset to last clean word offset), seconds."""
SELECTION_TOTAL_S: tuple[float, float] = (66.0, 100.0)
"""Range the target length is drawn from. Whole utterances land within half an utterance of it and long
pauses add up to 12 s: every recording is 60-120 s (tested)."""
SELECTION_MIN_CLEAN_RUN_S = 6.0
"""The clean stretch holds speech unbroken by a 0.5 s pause for at least this long (CosyVoice needs 5 s)."""
SELECTION_MARGIN_S = 0.1
"""Own silence kept around each utterance's speech when it is trimmed."""
SELECTION_GAP_S: tuple[float, float] = (0.25, 0.45)
"""Gap (speech to speech) between utterances inside a stretch: shorter than a 0.5 s pause..."""
SELECTION_PHRASE_GAP_S: tuple[float, float] = (0.55, 0.9)
"""...or, with probability :data:`SELECTION_PHRASE_P`, a phrase pause."""
SELECTION_PHRASE_P = 0.3
SELECTION_BOUNDARY_GAP_S = 1.0
"""Gap between the clean stretch and its degraded neighbours; the degradation switches at its middle, so
0.5 s of undegraded room tone lies on each side of the clean speech."""
SELECTION_EDGE_SILENCE_S = 0.5
"""Room tone before the first and after the last utterance of the file."""
SELECTION_LONG_PAUSE_S: tuple[float, float] = (2.5, 4.0)
SELECTION_RAMP_S = 0.02
"""Raised-cosine crossfade between the clean and the degraded signal at each boundary."""
SELECTION_SPEECH_DBFS = -26.0
"""Active speech level of the dry recording (before degradation)."""
SELECTION_ROOMS: dict[str, float | None] = {
    "synthetic_0.8s": 0.8,
    "clap_seminar_room": None,
    "st_margarets_church": None,
}
"""Rooms for the reverb degradation: synthetic T60 (s), or ``None`` for a measured response."""

SELECTION_CONFIGS: tuple[dict[str, Any], ...] = (
    {"noise": "exercise_bike", "snr_db": 5.0},
    {"noise": "dishes", "snr_db": 0.0, "long_pauses": 2},
    {"noise": "rain", "snr_db": 10.0},
    {"noise": "dfn", "snr_db": 5.0},
    {"room": "synthetic_0.8s"},
    {"room": "st_margarets_church"},
    {"room": "clap_seminar_room", "noise": "exercise_bike", "snr_db": 10.0},
    {"clip_ratio": 0.01},
    {"clip_ratio": 0.03, "long_pauses": 3},
    {"clip_ratio": 0.02, "noise": "dishes", "snr_db": 10.0},
    {"band_limit_hz": 4000.0},
    {"band_limit_hz": 4000.0, "room": "synthetic_0.8s"},
)
"""Degradations of the parts outside the clean stretch; each is used at every position (36 recordings).
Applied in recording order: room, noise, band limit, clipping (the converter clips last). Noise SNR is
active speech power over mean noise power in the degraded part, broadband (``dfn`` has 88 % of its power
under 70 Hz, so after the renderer's high-pass it is about 9 dB weaker). ``long_pauses`` is an upper
bound: a degraded part of few long utterances has fewer gaps."""

SELECTION_QUICK: tuple[int, ...] = (0, 4, 8, 13, 17, 21, 26, 33)
"""Indices of the quick subset: noise (3), reverb (2), clipping (2), band limit + reverb; all positions."""


def selection_label(config: dict[str, Any]) -> str:
    """A short name of a degradation, e.g. ``noise-dishes-0dB+pauses2``."""
    parts: list[str] = []
    if "room" in config:
        parts.append(f"reverb-{config['room']}")
    if "noise" in config:
        parts.append(f"noise-{config['noise']}-{config['snr_db']:g}dB")
    if "band_limit_hz" in config:
        parts.append(f"band-{config['band_limit_hz'] / 1000:g}k")
    if "clip_ratio" in config:
        parts.append(f"clip-{100 * config['clip_ratio']:g}pct")
    if config.get("long_pauses"):
        parts.append(f"pauses{config['long_pauses']}")
    return "+".join(parts)


def selection_plan() -> list[dict[str, Any]]:
    """Every selection recording as plain parameters (no audio): index, name, voice, position, rate, config.

    Item ``k`` uses configuration ``k // 3`` at position ``k % 3``; voices and rates rotate so that each
    configuration meets different voices.
    """
    voices = list(SELECTION_SPEAKERS)
    plan = []
    for k in range(len(SELECTION_CONFIGS) * len(SELECTION_POSITIONS)):
        config = SELECTION_CONFIGS[k // len(SELECTION_POSITIONS)]
        position = SELECTION_POSITIONS[k % len(SELECTION_POSITIONS)]
        voice = voices[(7 * k + k // len(voices)) % len(voices)]
        label = selection_label(config)
        plan.append(
            {
                "index": k,
                "name": f"sel{k:02d}_{voice}_{position}_{label}",
                "voice": voice,
                "position": position,
                "rate": SELECTION_RATES[k % len(SELECTION_RATES)],
                "config": dict(config),
                "degradation": label,
            }
        )
    return plan


@dataclass(frozen=True)
class _Utterance:
    """One trimmed utterance: samples (whole frames), its truth mask, speech frames ``[first, last)``."""

    x: np.ndarray
    mask: np.ndarray
    first: int
    last: int

    @property
    def speech_frames(self) -> int:
        return self.last - self.first


@lru_cache(maxsize=32)
def _selection_utterances(voice: str, rate: int) -> tuple[tuple[_Utterance, ...], np.ndarray | None]:
    """A voice's utterances at ``rate``, trimmed to their speech plus :data:`SELECTION_MARGIN_S`, and the
    voice's own room tone (see :func:`room_tone`)."""
    flen = rate // 100
    margin = round(SELECTION_MARGIN_S / FRAME_S)
    full: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    for src in SELECTION_SPEAKERS[voice]:
        arrays, _ = load_utterances(src, rate=rate)
        for x in arrays:
            x = np.asarray(x[: (len(x) // flen) * flen], dtype=np.float64)
            full.append(x)
            masks.append(truth_speech_mask(x, rate))
    tone = room_tone(full, masks, rate)
    out = []
    for x, m in zip(full, masks, strict=True):
        speech = np.flatnonzero(m)
        a = max(int(speech[0]) - margin, 0)
        b = min(int(speech[-1]) + 1 + margin, len(m))
        cut = m[a:b]
        idx = np.flatnonzero(cut)
        out.append(_Utterance(x[a * flen : b * flen].copy(), cut.copy(), int(idx[0]), int(idx[-1]) + 1))
    return tuple(out), tone


def _gap_frames(rng: np.random.Generator) -> int:
    lo, hi = SELECTION_PHRASE_GAP_S if rng.random() < SELECTION_PHRASE_P else SELECTION_GAP_S
    return round(rng.uniform(lo, hi) / FRAME_S)


def _fill_frames(gap: int, before: _Utterance, after: _Utterance) -> int:
    """Filler frames so that the silence from ``before``'s last speech frame to ``after``'s first is ``gap``."""
    trailing = len(before.mask) - before.last
    return max(gap - trailing - after.first, 1)


def _span_frames(utts: Sequence[_Utterance], gaps: Sequence[int]) -> int:
    """Speech span (first onset to last offset) of utterances joined by speech-to-speech ``gaps``."""
    return sum(u.speech_frames for u in utts) + sum(gaps)


def _longest_run_frames(utts: Sequence[_Utterance], gaps: Sequence[int], *, min_pause: int) -> int:
    """Longest truth speech run of joined utterances: silences shorter than ``min_pause`` frames join runs."""
    parts = []
    for k, u in enumerate(utts):
        if k:
            parts.append(np.zeros(gaps[k - 1], dtype=bool))
        parts.append(u.mask[u.first : u.last])
    mask = np.concatenate(parts)
    for a, b in internal_gaps(mask):
        if b - a < min_pause:
            mask[a:b] = True
    return max((b - a for a, b in _true_runs(mask)), default=0)


def _choose_clean(utts: Sequence[_Utterance], rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """Utterance indices (in cycle order) and gaps of a clean stretch whose span is in SELECTION_CLEAN_S."""
    lo, hi = (round(v / FRAME_S) for v in SELECTION_CLEAN_S)
    min_run = round(SELECTION_MIN_CLEAN_RUN_S / FRAME_S)
    for _attempt in range(50):
        for offset in rng.permutation(len(utts)).tolist():
            order = [offset]
            gaps: list[int] = []
            while _span_frames([utts[i] for i in order], gaps) < lo:
                gaps.append(_gap_frames(rng))
                order.append((order[-1] + 1) % len(utts))
            chosen = [utts[i] for i in order]
            if _span_frames(chosen, gaps) > hi:
                continue
            if _longest_run_frames(chosen, gaps, min_pause=round(0.5 / FRAME_S)) >= min_run:
                return order, gaps
    raise RuntimeError("no clean stretch of 16-30 s with a 6 s run could be drawn")


def _raised_cosine_step(n: int, at: float, rate: int, *, rising: bool) -> np.ndarray:
    """0 before ``at`` seconds and 1 after (or the reverse), with a :data:`SELECTION_RAMP_S` crossfade."""
    t = np.arange(n) / rate
    ramp = np.clip((t - at) / SELECTION_RAMP_S + 0.5, 0.0, 1.0)
    up = 0.5 - 0.5 * np.cos(np.pi * ramp)
    return up if rising else 1.0 - up


def _room_response(room: str, rate: int, seed: int) -> tuple[np.ndarray, float]:
    t60 = SELECTION_ROOMS[room]
    if t60 is not None:
        return synthetic_rir(t60_s=t60, rate=rate, seed=seed), t60
    h, native, measured = measured_rir(room)
    return resample(h, in_rate=native, out_rate=rate), measured


def _frames_to_samples(mask: np.ndarray, n: int, rate: int) -> np.ndarray:
    """Per-sample bool from a 10 ms frame mask (samples past the last frame are False)."""
    out = np.zeros(n, dtype=bool)
    bounds = frame_bounds(len(mask), rate)
    for a, b in _true_runs(mask):
        out[bounds[a] : bounds[b]] = True
    return out


def selection_item(index: int, *, degrade: bool = True) -> Item:
    """Selection recording ``index`` of :func:`selection_plan`: one clean stretch, the rest degraded.

    Utterances of one voice (cycled) are joined by room tone (gaps drawn from :data:`SELECTION_GAP_S` and
    :data:`SELECTION_PHRASE_GAP_S`). A clean stretch of 16-30 s of speech, holding an unbroken run of at
    least 6 s, sits at the start, middle or end with :data:`SELECTION_BOUNDARY_GAP_S` of silence on each
    side; the degradations of the configuration apply outside the middles of those two gaps. Truth:
    ``clean_span_s`` (clean speech onset and offset), ``clean_region_s`` (the undegraded audio),
    ``degraded_spans_s``, ``utterances`` (``[start_s, end_s, clean]`` speech spans), ``long_pauses_s``,
    ``clean_longest_run_s``, ``speech_mask``, and per degradation its achieved figure (``snr_db`` over the
    degraded region, ``t60_s``, ``clipped_ratio`` of the degraded samples, ``band_limit_hz``).
    ``degrade=False`` returns the same recording dry (no degradation, no output gain), for comparison.
    """
    plan = selection_plan()
    if not isinstance(index, int) or not 0 <= index < len(plan):
        raise InvalidArgument(f"index must be an integer in [0, {len(plan)}), got {index!r}")
    p = plan[index]
    name, rate, config = p["name"], p["rate"], p["config"]
    rng = _rng(f"selection/{name}")
    utts, tone = _selection_utterances(p["voice"], rate)
    flen = rate // 100

    clean_order, clean_gaps = _choose_clean(utts, rng)
    clean_span_f = _span_frames([utts[i] for i in clean_order], clean_gaps)
    total_f = round(rng.uniform(*SELECTION_TOTAL_S) / FRAME_S)
    rest_f = max(total_f - clean_span_f, 0)
    share = {"start": (0.0, 1.0), "middle": (0.5, 0.5), "end": (1.0, 0.0)}[p["position"]]
    boundary = round(SELECTION_BOUNDARY_GAP_S / FRAME_S)

    def grow(start: int, step: int, want: int) -> tuple[list[int], list[int]]:
        order: list[int] = []
        gaps: list[int] = []
        i = start
        span = 0
        while want > 0:
            i = (i + step) % len(utts)
            gap = _gap_frames(rng) if order else 0
            # Add the next utterance only when it brings the side closer to its share.
            if order and abs(span + gap + utts[i].speech_frames - want) >= abs(span - want):
                break
            if order:
                gaps.append(gap)
            order.append(i)
            span = _span_frames([utts[k] for k in order], gaps)
        return order, gaps

    before, before_gaps = grow(clean_order[0], -1, round(share[0] * rest_f))
    before, before_gaps = before[::-1], before_gaps[::-1]
    after, after_gaps = grow(clean_order[-1], 1, round(share[1] * rest_f))

    degraded_gaps = [("before", k) for k in range(len(before_gaps))] + [
        ("after", k) for k in range(len(after_gaps))
    ]
    long_idx = rng.permutation(len(degraded_gaps))[: int(config.get("long_pauses", 0))].tolist()
    for g in long_idx:
        side, k = degraded_gaps[g]
        frames = round(rng.uniform(*SELECTION_LONG_PAUSE_S) / FRAME_S)
        (before_gaps if side == "before" else after_gaps)[k] = frames

    order = before + clean_order + after
    gaps = list(before_gaps)
    if before:
        gaps.append(boundary)
    gaps += clean_gaps
    if after:
        gaps.append(boundary)
    gaps += after_gaps
    clean_first, clean_last = len(before), len(before) + len(clean_order) - 1

    edge = round(SELECTION_EDGE_SILENCE_S / FRAME_S)
    pieces = [filler(edge * flen, tone=tone, rate=rate, rng=rng)]
    mask_parts = [np.zeros(edge, dtype=bool)]
    frame = edge
    spans: list[list[Any]] = []
    long_pauses: list[list[float]] = []
    for k, i in enumerate(order):
        u = utts[i]
        if k:
            fill = _fill_frames(gaps[k - 1], utts[order[k - 1]], u)
            pieces.append(filler(fill * flen, tone=tone, rate=rate, rng=rng))
            mask_parts.append(np.zeros(fill, dtype=bool))
            if gaps[k - 1] >= round(SELECTION_LONG_PAUSE_S[0] / FRAME_S):
                long_pauses.append([round(spans[-1][1], 2), None])
            frame += fill
        pieces.append(u.x)
        mask_parts.append(u.mask)
        onset, offset = (frame + u.first) * FRAME_S, (frame + u.last) * FRAME_S
        if long_pauses and long_pauses[-1][1] is None:
            long_pauses[-1][1] = round(onset, 2)
        spans.append([round(onset, 2), round(offset, 2), clean_first <= k <= clean_last])
        frame += len(u.mask)
    pieces.append(filler(edge * flen, tone=tone, rate=rate, rng=rng))
    mask_parts.append(np.zeros(edge, dtype=bool))
    x = np.concatenate(pieces)
    mask = np.concatenate(mask_parts)
    n = len(x)
    duration = n / rate

    clean_on, clean_off = spans[clean_first][0], spans[clean_last][1]
    lo = (spans[clean_first - 1][1] + clean_on) / 2 if before else 0.0
    hi = (clean_off + spans[clean_last + 1][0]) / 2 if after else duration
    w = np.zeros(n)
    if before:
        w = np.maximum(w, _raised_cosine_step(n, lo, rate, rising=False))
    if after:
        w = np.maximum(w, _raised_cosine_step(n, hi, rate, rising=True))
    degraded = w >= 1.0
    deg_frames = mask & (frame_powers(w, rate)[: len(mask)] >= 1.0 - 1e-12)

    x *= 10.0 ** (SELECTION_SPEECH_DBFS / 20.0) / np.sqrt(active_power(x, mask, rate))
    y = x.copy()
    truth_deg: dict[str, Any] = {}
    if not degrade:
        config = {}
    if "room" in config:
        h, t60 = _room_response(config["room"], rate, _seed(f"{name}/room"))
        wet = reverberate(y, h)
        y = wet * np.sqrt(active_power(y, deg_frames, rate) / active_power(wet, deg_frames, rate))
        truth_deg["room"], truth_deg["t60_s"] = config["room"], round(t60, 3)
    if "noise" in config:
        noise = noise_signal(config["noise"], n=n, rate=rate, rng=rng)
        ps = active_power(y, deg_frames, rate)
        pn = float(np.mean(noise[degraded] ** 2))
        noise *= np.sqrt(ps / (pn * 10.0 ** (config["snr_db"] / 10.0)))
        y = y + noise
        truth_deg["noise"], truth_deg["snr_db"] = config["noise"], float(config["snr_db"])
    if "band_limit_hz" in config:
        low = int(2 * config["band_limit_hz"])
        z = resample(resample(y, in_rate=rate, out_rate=low), in_rate=low, out_rate=rate)[:n]
        y = np.pad(z, (0, n - len(z)))
        truth_deg["band_limit_hz"] = float(config["band_limit_hz"])
    if "clip_ratio" in config:
        threshold = float(np.quantile(np.abs(y[degraded]), 1.0 - config["clip_ratio"]))
        y = np.clip(y * (CLIP_LEVEL / threshold), -CLIP_LEVEL, CLIP_LEVEL)
        truth_deg["clip_gain_db"] = round(20.0 * np.log10(CLIP_LEVEL / threshold), 2)
    out = w * y + (1.0 - w) * x
    if "clip_ratio" in config:
        truth_deg["clipped_ratio"] = float(np.mean(np.abs(out[degraded]) >= CLIP_LEVEL))
        gain = 1.0
    elif not degrade:
        gain = 1.0
    else:
        out, gain = _fit_peak(out)

    truth = {
        "speech_mask": mask,
        "duration_s": round(duration, 3),
        "position": p["position"],
        "voice": p["voice"],
        "degradation": p["degradation"],
        "config": dict(p["config"]),
        "degraded": degrade,
        "clean_span_s": [clean_on, clean_off],
        "clean_region_s": [round(lo, 3), round(hi, 3)],
        "degraded_spans_s": [
            s for s in ([0.0, round(lo, 3)], [round(hi, 3), round(duration, 3)]) if s[1] > s[0]
        ],
        "utterances": spans,
        "long_pauses_s": long_pauses,
        "clean_speech_s": round(
            float(mask[round(clean_on / FRAME_S) : round(clean_off / FRAME_S)].sum()) * FRAME_S, 2
        ),
        "clean_longest_run_s": round(
            _longest_run_frames([utts[i] for i in clean_order], clean_gaps, min_pause=round(0.5 / FRAME_S))
            * FRAME_S,
            2,
        ),
        "output_gain": gain,
        **truth_deg,
    }
    params = {k: p[k] for k in ("index", "voice", "position", "rate", "degradation")}
    return _item(name, "selection", params, out, rate, truth)


def selection_items(*, quick: bool = False) -> Iterator[Item]:
    """The selection recordings (36; ``quick``: the 8 of :data:`SELECTION_QUICK`), one at a time."""
    indices = SELECTION_QUICK if quick else range(len(selection_plan()))
    for k in indices:
        yield selection_item(k)


# ----------------------------------------------------------------------------------------------------------
# sessions: several parts of one voice in a row, one of them clean (benchmarks/selection_bench.py)

SESSION_GAP_S: tuple[float, float] = (1.0, 1.5)
"""Silence (speech to speech) between two parts; the conditions switch at its middle."""
SESSION_TOTAL_S: tuple[float, float] = (60.0, 300.0)
SESSION_PARTS: tuple[int, int] = (4, 8)
SESSION_COUNT = 12
SESSION_QUICK: tuple[int, ...] = (0, 3, 6, 9)
"""Indices of the quick subset: the issue-8 session and three drawn ones."""
SESSION_CONTINUOUS: tuple[str, ...] = ("white", "pink", "rain", "rain_ambience")
"""Continuous broadband noises (no quiet between words): every drawn session has one at 0-5 dB."""
SESSION_DEGRADATIONS: tuple[dict[str, Any], ...] = (
    *SELECTION_CONFIGS,
    {"noise": "typing", "snr_db": 3.0},
    {"room": "st_margarets_church", "noise": "pink", "snr_db": 15.0},
)
"""What the other parts of a drawn session suffer (besides the continuous noise): every selection
degradation, impulsive typing noise and a reverberant room with noise."""

ISSUE8_SESSION: dict[str, Any] = {
    "name": "ses00_issue8_libri_3080",
    "voice": "libri_3080",
    "rate": 44100,
    "gap_s": 1.2,
    "parts": [
        {"config": {"noise": "typing", "snr_db": 3.0}, "utterances": [0]},
        {"config": {"room": "st_margarets_church"}, "utterances": [1]},
        {"config": {}, "utterances": [2]},
        {"config": {"clip_ratio": 0.03, "clip_at_level": True}, "utterances": [0]},
        {"config": {"noise": "white", "snr_db": 0.0}, "utterances": [1]},
    ],
}
"""The session of issue 8 (case 3): one LibriSpeech reader in five parts (speech under 3 dB typing noise,
a church, a clean 22 s part, 3 % clipping, 0 dB continuous noise) with 1.2 s between parts; the other
parts repeat the reader's two other utterances."""


def session_plan() -> list[dict[str, Any]]:
    """Every session as plain parameters (no audio): the issue-8 session, then drawn ones.

    A drawn session has 4-8 parts and a target length of 1-5 minutes (spread evenly over the sessions);
    the clean part sits anywhere (first, last, in between: rotated), one other part has continuous noise
    at 0-5 dB, the rest draw from :data:`SESSION_DEGRADATIONS`. Voices and rates rotate.
    """
    voices = list(SELECTION_SPEAKERS)
    plan = [{**ISSUE8_SESSION, "index": 0, "target_s": None}]
    for k in range(1, SESSION_COUNT):
        rng = _rng(f"session/{k}")
        n_parts = SESSION_PARTS[0] + k % (SESSION_PARTS[1] - SESSION_PARTS[0] + 1)
        clean = (k * 3) % n_parts
        configs = [dict(SESSION_DEGRADATIONS[int(i)]) for i in rng.permutation(len(SESSION_DEGRADATIONS))]
        noisy = {
            "noise": SESSION_CONTINUOUS[k % len(SESSION_CONTINUOUS)],
            "snr_db": round(rng.uniform(0, 5), 1),
        }
        others = [noisy, *configs[: n_parts - 2]]
        others = [others[int(i)] for i in rng.permutation(len(others))]
        others.insert(clean, {})
        voice = voices[(3 * k) % len(voices)]
        lo, hi = SESSION_TOTAL_S
        plan.append(
            {
                "index": k,
                "name": f"ses{k:02d}_{voice}_{n_parts}parts",
                "voice": voice,
                "rate": SELECTION_RATES[k % len(SELECTION_RATES)],
                "gap_s": None,
                "target_s": round(lo + (hi - lo) * ((k * 7) % (SESSION_COUNT - 1)) / (SESSION_COUNT - 2), 1),
                "parts": [{"config": c} for c in others],
            }
        )
    return plan


def _forward_part(
    utts: Sequence[_Utterance], start: int, want: int, rng: np.random.Generator
) -> tuple[list[int], list[int]]:
    """Utterances from ``start`` on (cycled) and their gaps, while they bring the span closer to ``want``
    frames; always at least one."""
    order = [start % len(utts)]
    gaps: list[int] = []
    span = utts[order[0]].speech_frames
    while True:
        i = (order[-1] + 1) % len(utts)
        gap = _gap_frames(rng)
        if abs(span + gap + utts[i].speech_frames - want) >= abs(span - want):
            return order, gaps
        order.append(i)
        gaps.append(gap)
        span += gap + utts[i].speech_frames


def _session_layout(
    p: dict[str, Any], utts: Sequence[_Utterance], rng: np.random.Generator
) -> tuple[list[list[int]], list[list[int]]]:
    """Per part, the utterances (indices into ``utts``) and the gaps between them."""
    parts = p["parts"]
    if all("utterances" in part for part in parts):
        orders = [list(part["utterances"]) for part in parts]
        return orders, [[_gap_frames(rng) for _ in order[1:]] for order in orders]
    clean_k = next(k for k, part in enumerate(parts) if not part["config"])
    clean_order, clean_gaps = _choose_clean(utts, rng)
    clean_f = _span_frames([utts[i] for i in clean_order], clean_gaps)
    rest = max(round(p["target_s"] / FRAME_S) - clean_f, 0) / max(len(parts) - 1, 1)
    orders: list[list[int]] = []
    gaps: list[list[int]] = []
    for k in range(len(parts)):
        if k == clean_k:
            orders.append(clean_order)
            gaps.append(clean_gaps)
            continue
        # Each part starts at a random utterance, so the voice's utterances recur under several conditions.
        want = round(rest * rng.uniform(0.75, 1.25))
        order, part_gaps = _forward_part(utts, int(rng.integers(len(utts))), want, rng)
        for g in rng.permutation(len(part_gaps))[: int(parts[k]["config"].get("long_pauses", 0))].tolist():
            part_gaps[g] = round(rng.uniform(*SELECTION_LONG_PAUSE_S) / FRAME_S)
        orders.append(order)
        gaps.append(part_gaps)
    return orders, gaps


def _raised_cosine_window(n: int, lo: float | None, hi: float | None, rate: int) -> np.ndarray:
    """1 between ``lo`` and ``hi`` seconds (``None``: the file's edge), 0 outside, crossfaded at each."""
    w = np.ones(n)
    if lo is not None:
        w *= _raised_cosine_step(n, lo, rate, rising=True)
    if hi is not None:
        w *= _raised_cosine_step(n, hi, rate, rising=False)
    return w


def _degrade_part(
    x: np.ndarray,
    config: dict[str, Any],
    *,
    region: slice,
    speech: np.ndarray,
    rate: int,
    rng: np.random.Generator,
    seed_name: str,
) -> tuple[np.ndarray, dict[str, Any]]:
    """``x`` (one part with a little around it) degraded by ``config`` in the order room, noise, band limit,
    clipping; levels are measured over ``region`` (the part) and its ``speech`` frames (a frame mask of
    ``x``). Returns the degraded samples and the achieved figures."""
    y = x.copy()
    truth: dict[str, Any] = {}
    if "room" in config:
        h, t60 = _room_response(config["room"], rate, _seed(f"{seed_name}/room"))
        wet = reverberate(y, h)
        y = wet * np.sqrt(active_power(y, speech, rate) / active_power(wet, speech, rate))
        truth["room"], truth["t60_s"] = config["room"], round(t60, 3)
    if "noise" in config:
        noise = noise_signal(config["noise"], n=len(y), rate=rate, rng=rng)
        ps = active_power(y, speech, rate)
        noise *= np.sqrt(ps / (float(np.mean(noise[region] ** 2)) * 10.0 ** (config["snr_db"] / 10.0)))
        y = y + noise
        truth["noise"], truth["snr_db"] = config["noise"], float(config["snr_db"])
    if "band_limit_hz" in config:
        low = int(2 * config["band_limit_hz"])
        z = resample(resample(y, in_rate=rate, out_rate=low), in_rate=low, out_rate=rate)[: len(y)]
        y = np.pad(z, (0, len(y) - len(z)))
        truth["band_limit_hz"] = float(config["band_limit_hz"])
    if "clip_ratio" in config:
        threshold = float(np.quantile(np.abs(y[region]), 1.0 - config["clip_ratio"]))
        level = threshold if config.get("clip_at_level") else CLIP_LEVEL
        y = np.clip(y * (level / threshold), -level, level)
        truth["clip_level"] = level
    return y, truth


def session_item(index: int, *, degrade: bool = True) -> Item:
    """Session ``index`` of :func:`session_plan`: one voice in several parts, each under its own
    conditions, one part clean.

    Utterances are joined by room tone as in :func:`selection_item` (gaps of 0.25-0.9 s inside a part);
    parts are :data:`SESSION_GAP_S` apart (speech to speech) and each part's conditions hold from the
    middle of the gap before it to the middle of the gap after it (20 ms crossfades), so the clean part has
    0.5-0.75 s of clean room tone on each side. The clean part is drawn like a selection clean stretch
    (16-30 s of speech with an unbroken 6 s run), except in the issue-8 session, where every part is one
    whole utterance. Truth as for :func:`selection_item` (``clean_span_s``, ``clean_region_s``,
    ``degraded_spans_s``, ``utterances``, ``speech_mask``) plus ``parts`` (per part: its region, speech span,
    degradation label, utterances used and achieved figures: ``snr_db``, ``t60_s``, ``clip_level`` and
    the ``clipped_ratio`` of the part's samples) and ``clean_part``. ``degrade=False`` returns the same
    session dry (every part clean, no output gain), for comparison.
    """
    plan = session_plan()
    if not isinstance(index, int) or not 0 <= index < len(plan):
        raise InvalidArgument(f"index must be an integer in [0, {len(plan)}), got {index!r}")
    p = plan[index]
    name, rate = p["name"], p["rate"]
    rng = _rng(f"session/{name}")
    utts, tone = _selection_utterances(p["voice"], rate)
    flen = rate // 100
    orders, part_gaps = _session_layout(p, utts, rng)

    edge = round(SELECTION_EDGE_SILENCE_S / FRAME_S)
    pieces = [filler(edge * flen, tone=tone, rate=rate, rng=rng)]
    mask_parts = [np.zeros(edge, dtype=bool)]
    frame = edge
    spans: list[list[Any]] = []  # [onset_s, offset_s, part]
    previous: _Utterance | None = None
    for k, (order, gaps) in enumerate(zip(orders, part_gaps, strict=True)):
        between = [round((p["gap_s"] or rng.uniform(*SESSION_GAP_S)) / FRAME_S), *gaps]
        for m, i in enumerate(order):
            u = utts[i]
            if previous is not None:
                fill = _fill_frames(between[m] if m else between[0], previous, u)
                pieces.append(filler(fill * flen, tone=tone, rate=rate, rng=rng))
                mask_parts.append(np.zeros(fill, dtype=bool))
                frame += fill
            pieces.append(u.x)
            mask_parts.append(u.mask)
            spans.append([round((frame + u.first) * FRAME_S, 2), round((frame + u.last) * FRAME_S, 2), k])
            frame += len(u.mask)
            previous = u
    pieces.append(filler(edge * flen, tone=tone, rate=rate, rng=rng))
    mask_parts.append(np.zeros(edge, dtype=bool))
    x = np.concatenate(pieces)
    mask = np.concatenate(mask_parts)
    n = len(x)
    duration = n / rate
    x *= 10.0 ** (SELECTION_SPEECH_DBFS / 20.0) / np.sqrt(active_power(x, mask, rate))

    n_parts = len(orders)
    onsets = [min(s[0] for s in spans if s[2] == k) for k in range(n_parts)]
    offsets = [max(s[1] for s in spans if s[2] == k) for k in range(n_parts)]
    bounds = [None, *((offsets[k] + onsets[k + 1]) / 2 for k in range(n_parts - 1)), None]
    margin = round(0.1 * rate)  # samples past each boundary, under its crossfade
    out = np.zeros(n)
    clip_weight = np.zeros(n)
    parts_truth: list[dict[str, Any]] = []
    for k, part in enumerate(p["parts"]):
        lo, hi = bounds[k], bounds[k + 1]
        a = 0 if lo is None else max(round(lo * rate) - margin, 0)
        b = n if hi is None else min(round(hi * rate) + margin, n)
        w = _raised_cosine_window(
            b - a, None if lo is None else lo - a / rate, None if hi is None else hi - a / rate, rate
        )
        config = part["config"]
        label = selection_label(config) if config else "clean"
        achieved: dict[str, Any] = {}
        if config and degrade:
            fa, fb = a // flen + 1, b // flen  # whole frames inside the slice
            speech = np.zeros(len(frame_powers(x[a:b], rate)), dtype=bool)
            speech[: max(fb - fa, 0)] = mask[fa:fb][: len(speech)]
            core = slice(round((lo or 0.0) * rate) - a, round((hi or duration) * rate) - a)
            y, achieved = _degrade_part(
                x[a:b], config, region=core, speech=speech, rate=rate, rng=rng, seed_name=f"{name}/{k}"
            )
            if "clip_ratio" in config:
                clip_weight[a:b] += w
        else:
            y = x[a:b]
        out[a:b] += w * y
        parts_truth.append(
            {
                "label": label,
                "region_s": [round(lo or 0.0, 3), round(hi or duration, 3)],
                "speech_span_s": [onsets[k], offsets[k]],
                "utterances": orders[k],
                **achieved,
            }
        )
    # Fit the peak of everything but the clipped parts (their plateau is the converter's full scale).
    peak = float(np.max(np.abs(out[clip_weight < 1e-9]))) if np.any(clip_weight < 1e-9) else 0.0
    gain = min(1.0, 0.99 / peak) if peak > 0 and degrade else 1.0
    out = out * (gain + (1.0 - gain) * clip_weight)
    for t in parts_truth:
        if "clip_level" in t:
            region = out[round(t["region_s"][0] * rate) : round(t["region_s"][1] * rate)]
            t["clipped_ratio"] = float(np.mean(np.abs(region) >= t["clip_level"] * (1 - 1e-9)))

    clean_k = next(k for k, part in enumerate(p["parts"]) if not part["config"])
    clean_region = parts_truth[clean_k]["region_s"]
    label = f"session-{n_parts}parts"
    position = "first" if clean_k == 0 else "last" if clean_k == n_parts - 1 else "inside"
    truth = {
        "speech_mask": mask,
        "duration_s": round(duration, 3),
        "position": position,
        "voice": p["voice"],
        "degradation": label,
        "clean_part": clean_k,
        "clean_span_s": parts_truth[clean_k]["speech_span_s"],
        "clean_region_s": clean_region,
        "degraded_spans_s": [t["region_s"] for k, t in enumerate(parts_truth) if k != clean_k],
        "utterances": [[s[0], s[1], s[2] == clean_k] for s in spans],
        "parts": parts_truth,
        "output_gain": gain,
        "degraded": degrade,
    }
    params = {"index": index, "voice": p["voice"], "position": position, "rate": rate, "degradation": label}
    return _item(name, "session", params, out, rate, truth)


def session_items(*, quick: bool = False) -> Iterator[Item]:
    """The sessions (12; ``quick``: the 4 of :data:`SESSION_QUICK`), one at a time."""
    for k in SESSION_QUICK if quick else range(len(session_plan())):
        yield session_item(k)
