"""Generate voiceprep's demo recordings in ``data/samples/`` (run: ``python data/make_samples.py``).

Speech comes from the espeak-ng synthesiser; every degradation (noise, hum, fan, babble, room echo,
band-limiting, clipping, pauses, a dead channel, a corrupt file) is made here with numpy, scipy and soxr
from fixed seeds, so the set is reproducible and carries no third-party audio. The script also writes
``data/samples/EXPECTED.json``: per file, the facts a test can check without voiceprep's own analysis.

Definitions used in EXPECTED.json:
- *active speech level* (``speech_rms_dbfs``): RMS of the speech signal alone over 20 ms frames whose
  energy is within 40 dB of the loudest frame (a simplified ITU-T P.56 level), in dBFS (full scale = 1.0).
- ``snr_db``: active speech power of the (possibly reverberant) speech over the mean power of the added
  noise, both measured before they are summed.
- ``t60_s``: the decay time of the synthetic room impulse response (exponentially decaying noise).
- ``clipped_ratio``: the fraction of all samples sitting at the clipping level.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import soundfile as sf
import soxr
from scipy import signal

ESPEAK_RATE = 22050
SEED = 20240611
DEFAULT_OUT = Path(__file__).resolve().parent / "samples"
FRAME_S = 0.02
ACTIVE_RANGE_DB = 40.0
SIZE_LIMIT_BYTES = 5_000_000
_WRITE_BLOCK = 16384  # libsndfile's Vorbis encoder crashes on very large single writes
FAMILIES = ("cosyvoice", "qwen-tts", "minimax")
M4A_BIT_RATE = 80000
CLIP_LEVEL_DBFS = -8.5
CLIPPED_RATIO = 0.02
LONG_DRR_DB = -3.0


# --------------------------------------------------------------------------------------------- speech


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice: the speaker folder name and the synthesiser settings."""

    speaker: str
    espeak: str
    wpm: int
    pitch: int

    def as_dict(self) -> dict[str, Any]:
        """The settings as plain data for EXPECTED.json."""
        return {"espeak_voice": self.espeak, "words_per_minute": self.wpm, "pitch": self.pitch}


ALICE = Voice("alice", "en-us+f3", 158, 62)
BOB = Voice("bob", "en-us+m3", 142, 36)
CAROL = Voice("carol", "en-gb+f4", 166, 52)
BABBLE_VOICES = (
    Voice("babble", "en+m1", 175, 45),
    Voice("babble", "en-us+f2", 165, 70),
    Voice("babble", "en-gb+m4", 150, 30),
    Voice("babble", "en+f5", 180, 58),
)


class EspeakMissing(RuntimeError):
    """espeak-ng is not installed or not on PATH."""


def espeak_version() -> str:
    """The installed espeak-ng's version line; raise :class:`EspeakMissing` if it is absent."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise EspeakMissing(
            "espeak-ng not found on PATH: install it (e.g. `apt-get install espeak-ng`) and run again"
        )
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    return out.strip().split("  Data at:")[0]


def synthesize(text: str, voice: Voice, *, workdir: Path) -> np.ndarray:
    """Speak ``text`` with espeak-ng; return float64 mono samples at 22.05 kHz, edge silence trimmed."""
    wav = workdir / "utterance.wav"
    cmd = ["espeak-ng", "-v", voice.espeak, "-s", str(voice.wpm), "-p", str(voice.pitch), "-w", str(wav)]
    subprocess.run([*cmd, text], check=True, capture_output=True)
    audio, rate = sf.read(wav, dtype="float64")
    if rate != ESPEAK_RATE or audio.ndim != 1:
        raise RuntimeError(f"unexpected espeak-ng output: {rate} Hz, shape {audio.shape}")
    return trim_silence(audio, ESPEAK_RATE)


def trim_silence(
    audio: np.ndarray, rate: int, *, floor_db: float = -50.0, margin_s: float = 0.01
) -> np.ndarray:
    """Cut leading and trailing frames more than ``floor_db`` below the loudest 10 ms frame."""
    hop = int(rate * 0.01)
    n = len(audio) // hop
    energy = np.mean(audio[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-20
    loud = np.flatnonzero(10 * np.log10(energy / energy.max()) > floor_db)
    margin = int(rate * margin_s)
    start = max(0, loud[0] * hop - margin)
    stop = min(len(audio), (loud[-1] + 1) * hop + margin)
    return audio[start:stop]


def speak(
    sentences: Sequence[str],
    voice: Voice,
    rng: np.random.Generator,
    *,
    workdir: Path,
    gap_s: tuple[float, float] = (0.2, 0.4),
) -> tuple[np.ndarray, list[float]]:
    """Speak sentences one by one, joined by gaps drawn uniformly from ``gap_s``; also return the gaps."""
    parts: list[np.ndarray] = []
    gaps: list[float] = []
    for i, sentence in enumerate(sentences):
        if i:
            gap = float(rng.uniform(*gap_s))
            gaps.append(gap)
            parts.append(np.zeros(round(gap * ESPEAK_RATE)))
        parts.append(synthesize(sentence, voice, workdir=workdir))
    return np.concatenate(parts), gaps


# ---------------------------------------------------------------------------------------- levels, dsp


def db(power_ratio: float) -> float:
    """Power ratio in decibels."""
    return float(10 * np.log10(power_ratio))


def active_power(x: np.ndarray, rate: int) -> float:
    """Mean power over the 20 ms frames within 40 dB of the loudest frame (see the module docstring)."""
    hop = max(1, int(rate * FRAME_S))
    n = len(x) // hop
    if n == 0:
        raise ValueError("signal shorter than one frame")
    frames = np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1)
    active = frames[frames >= frames.max() * 10 ** (-ACTIVE_RANGE_DB / 10)]
    return float(np.mean(active))


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
        return x.copy()
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


def mains_hum(n: int, rate: int, rng: np.random.Generator, *, base_hz: float = 50.0) -> np.ndarray:
    """Mains hum: a 50 Hz fundamental with odd-heavy harmonics up to 300 Hz, random phases, unit RMS."""
    t = np.arange(n) / rate
    amplitudes = (1.0, 0.3, 0.6, 0.15, 0.3, 0.1)
    out = np.zeros(n)
    for k, amp in enumerate(amplitudes, start=1):
        out += amp * np.sin(2 * np.pi * base_hz * k * t + rng.uniform(0, 2 * np.pi))
    return out / np.sqrt(np.mean(out**2))


def fan_noise(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """A fan: band noise (120-1500 Hz) with a slow wobble plus weak blade-pass tones at 87 Hz, unit RMS."""
    sos = signal.butter(2, [120, 1500], btype="bandpass", fs=rate, output="sos")
    band = signal.sosfilt(sos, rng.standard_normal(n))
    t = np.arange(n) / rate
    band *= 1 + 0.15 * np.sin(2 * np.pi * 0.4 * t)
    band /= np.sqrt(np.mean(band**2))
    tones = sum(np.sin(2 * np.pi * 87.0 * k * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3))
    out = band + 0.25 * tones
    return out / np.sqrt(np.mean(out**2))


def room_tone(n: int, rate: int, rng: np.random.Generator, *, dbfs: float) -> np.ndarray:
    """A quiet, pink, high-passed (40 Hz) noise floor at ``dbfs`` RMS, so pauses are not digital silence."""
    sos = signal.butter(2, 40, btype="highpass", fs=rate, output="sos")
    tone = signal.sosfilt(sos, colored_noise(n, rng, exponent=1.0, rate=rate))
    return tone * 10 ** (dbfs / 20) / np.sqrt(np.mean(tone**2))


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


def bandpass(x: np.ndarray, rate: int, *, low_hz: float, high_hz: float) -> np.ndarray:
    """A 4th-order Butterworth band-pass."""
    sos = signal.butter(4, [low_hz, high_hz], btype="bandpass", fs=rate, output="sos")
    return signal.sosfilt(sos, x)


def tile_to(x: np.ndarray, n: int, *, offset: int) -> np.ndarray:
    """Loop ``x`` circularly from ``offset`` to fill ``n`` samples."""
    return np.take(x, (np.arange(n) + offset) % len(x))


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
    voice: Voice | None
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


@dataclass
class Context:
    """Shared state for the builders: a scratch folder for espeak-ng and a babble cache."""

    workdir: Path
    babble_cache: dict[int, list[np.ndarray]] = field(default_factory=dict)

    def rng(self, name: str) -> np.random.Generator:
        """A generator seeded from the global seed and ``name``, independent of build order."""
        return np.random.default_rng([SEED, zlib.crc32(name.encode())])

    def speech(
        self,
        sentences: Sequence[str],
        voice: Voice,
        rate: int,
        *,
        name: str,
        gap_s: tuple[float, float] = (0.2, 0.4),
    ) -> tuple[np.ndarray, list[float]]:
        """Speak ``sentences`` and resample to ``rate``."""
        raw, gaps = speak(sentences, voice, self.rng(name + "/gaps"), workdir=self.workdir, gap_s=gap_s)
        return resample(raw, ESPEAK_RATE, rate), gaps

    def babble(self, n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
        """Distant chatter: four band-passed espeak talkers at random offsets, unit RMS."""
        if rate not in self.babble_cache:
            talkers = []
            for i, voice in enumerate(BABBLE_VOICES):
                raw, _ = speak(
                    BABBLE_TEXTS[i], voice, self.rng(f"babble{i}"), workdir=self.workdir, gap_s=(0.1, 0.5)
                )
                talker = bandpass(resample(raw, ESPEAK_RATE, rate), rate, low_hz=250, high_hz=3500)
                talkers.append(talker / np.sqrt(active_power(talker, rate)))
            self.babble_cache[rate] = talkers
        mix = np.zeros(n)
        for talker in self.babble_cache[rate]:
            gain = 10 ** (rng.uniform(-3, 3) / 20)
            mix += gain * tile_to(talker, n, offset=int(rng.integers(len(talker))))
        return mix / np.sqrt(np.mean(mix**2))


def pad(x: np.ndarray, rate: int, *, lead_s: float = 0.4, tail_s: float = 0.5) -> np.ndarray:
    """Add silence before and after (room tone is added to the whole file later)."""
    return np.concatenate([np.zeros(int(lead_s * rate)), x, np.zeros(int(tail_s * rate))])


def expected(cosyvoice: str, qwen: str, minimax: str) -> dict[str, str]:
    """Expected `voiceprep check` verdicts per family, as 'verdict reason' strings."""
    return dict(zip(FAMILIES, (cosyvoice, qwen, minimax), strict=True))


def build_phone_memo(ctx: Context) -> Sample:
    """Clean phone memo: continuous speech, natural phrase gaps, quiet room tone, AAC at 44.1 kHz."""
    rate, name = 44100, "alice/phone_memo.m4a"
    speech, gaps = ctx.speech(TEXTS["phone_memo"], ALICE, rate, name=name)
    speech = set_active_level(pad(speech, rate), rate, dbfs=-23.0)
    audio = speech + room_tone(len(speech), rate, ctx.rng(name), dbfs=-65.0)
    facts: dict[str, Any] = {
        "codec": "aac",
        "bit_rate": M4A_BIT_RATE,
        "speech_rms_dbfs": -23.0,
        "room_tone_dbfs": -65.0,
        "phrase_gaps_s": [round(min(gaps), 3), round(max(gaps), 3)],
        "degradation": None,
        "purpose": "reference: a clean phone memo; every family should accept it",
        "expected": expected("pass", "pass", "pass"),
    }
    return Sample(name, ALICE, audio, rate, "m4a", facts)


def build_noisy(ctx: Context) -> Sample:
    """Speech in a busy place: pink noise plus babble, 6 dB SNR, MP3."""
    rate, name = 44100, "alice/noisy_market.mp3"
    rng = ctx.rng(name)
    speech, _ = ctx.speech(TEXTS["noisy"], ALICE, rate, name=name)
    speech = set_active_level(pad(speech, rate), rate, dbfs=-24.0)
    n = len(speech)
    noise = colored_noise(n, rng, exponent=1.0, rate=rate) + 0.7 * ctx.babble(n, rate, rng)
    noise = scale_noise_to_snr(speech, noise, rate, snr_db=6.0)
    audio = speech + noise
    facts: dict[str, Any] = {
        "codec": "mp3",
        "speech_rms_dbfs": -24.0,
        "degradation": {"kind": "noise", "snr_db": 6.0, "noise": "pink + babble (4 band-passed talkers)"},
        "purpose": "background noise well below the services' expectations",
        "expected": expected("fail low_snr", "fail low_snr", "fail low_snr"),
    }
    return Sample(name, ALICE, audio, rate, "mp3", facts)


def build_stereo(ctx: Context) -> Sample:
    """Stereo recorder with a dead left input: ADC noise only on channel 0, speech on channel 1."""
    rate, name = 24000, "alice/stereo_left_silent.wav"
    rng = ctx.rng(name)
    speech, _ = ctx.speech(TEXTS["stereo"], ALICE, rate, name=name)
    speech = set_active_level(pad(speech, rate), rate, dbfs=-22.0)
    right = speech + room_tone(len(speech), rate, rng, dbfs=-64.0)
    left = rng.integers(-1, 2, size=len(speech)) / 32767  # +-1 LSB: a live but unconnected input
    facts: dict[str, Any] = {
        "codec": "pcm_s16le",
        "speech_rms_dbfs": -22.0,
        "room_tone_dbfs": -64.0,
        "degradation": {
            "kind": "silent_channel",
            "silent_channel": 0,
            "silent_channel_dbfs": round(db(float(np.mean(left**2))), 1),
        },
        "purpose": "CosyVoice listens only to the first channel, which here holds no speech",
        "expected": expected("fail first_channel_silent", "fail not_mono", "pass"),
    }
    return Sample(name, ALICE, np.stack([left, right], axis=1), rate, "wav", facts)


def build_upsampled(ctx: Context) -> Sample:
    """A 16 kHz recording upsampled to 48 kHz: nothing above 8 kHz."""
    rate, name, source_rate = 48000, "alice/upsampled_16k.wav", 16000
    rng = ctx.rng(name)
    speech, _ = ctx.speech(TEXTS["upsampled"], ALICE, source_rate, name=name)
    speech = set_active_level(pad(speech, source_rate), source_rate, dbfs=-23.0)
    narrow = speech + room_tone(len(speech), source_rate, rng, dbfs=-66.0)
    audio = resample(narrow, source_rate, rate)
    facts: dict[str, Any] = {
        "codec": "pcm_s16le",
        "speech_rms_dbfs": -23.0,
        "room_tone_dbfs": -66.0,
        "degradation": {"kind": "upsampled", "source_rate": source_rate, "lowpass_hz": 8000},
        "purpose": "meets the 24 kHz rate rule on paper, but has only 16 kHz-wideband content",
        "expected": expected("warn narrowband", "warn narrowband", "warn narrowband"),
    }
    return Sample(name, ALICE, audio, rate, "wav", facts)


def build_broken(ctx: Context) -> Sample:
    """A phone memo cut off mid-upload: a valid M4A header, half the audio, and no index (moov) atom."""
    name, rate = "alice/broken.m4a", 44100
    speech, _ = ctx.speech(TEXTS["broken"], ALICE, rate, name=name)
    speech = set_active_level(pad(speech, rate), rate, dbfs=-23.0)
    full = Path(ctx.workdir) / "full.m4a"
    write_m4a(full, speech, rate)
    whole = full.read_bytes()
    if whole.find(b"moov") < whole.find(b"mdat"):
        raise RuntimeError("expected the muxer to write the moov atom after the audio")
    truncated = whole[: len(whole) // 2]
    facts: dict[str, Any] = {
        "codec": "aac",
        "degradation": {
            "kind": "corrupt",
            "truncated_at_bytes": len(truncated),
            "original_bytes": len(whole),
        },
        "purpose": "a truncated upload (no moov atom): decoders must reject it, the batch must go on",
        "expected": expected("fail decode_failed", "fail decode_failed", "fail decode_failed"),
    }
    return Sample(name, ALICE, None, None, "m4a", facts, raw_bytes=truncated)


def build_reverberant(ctx: Context) -> Sample:
    """Speech in a hall: exponential-decay room response with T60 0.9 s, direct-to-reverberant -2 dB."""
    rate, name = 24000, "bob/reverberant_hall.wav"
    rng = ctx.rng(name)
    dry, _ = ctx.speech(TEXTS["reverberant"], BOB, rate, name=name)
    rir = synthetic_rir(rate, rng, t60_s=0.9, drr_db=-2.0)
    wet = set_active_level(reverberate(pad(dry, rate, tail_s=0.2), rir), rate, dbfs=-24.0)
    audio = wet + room_tone(len(wet), rate, rng, dbfs=-64.0)
    facts: dict[str, Any] = {
        "codec": "pcm_s16le",
        "speech_rms_dbfs": -24.0,
        "room_tone_dbfs": -64.0,
        "degradation": {"kind": "reverb", "t60_s": 0.9, "drr_db": -2.0},
        "purpose": "strong room echo: a clone would copy the hall",
        "expected": expected("fail reverberant", "fail reverberant", "fail reverberant"),
    }
    return Sample(name, BOB, audio, rate, "wav", facts)


def build_clipped(ctx: Context) -> Sample:
    """An over-driven take: hard-clipped at -8.5 dBFS so that 2 % of samples sit on the ceiling."""
    rate, name = 24000, "bob/clipped.flac"
    rng = ctx.rng(name)
    speech, _ = ctx.speech(TEXTS["clipped"], BOB, rate, name=name)
    speech = set_active_level(pad(speech, rate), rate, dbfs=-24.0)
    take = speech + room_tone(len(speech), rate, rng, dbfs=-62.0)
    level = 10 ** (CLIP_LEVEL_DBFS / 20)
    clipped, gain = hard_clip(take, level=level, ratio=CLIPPED_RATIO)
    pcm = to_pcm16(clipped)
    ceiling = int(np.max(np.abs(pcm)))
    ratio = float(np.mean(np.abs(pcm) >= ceiling))
    facts: dict[str, Any] = {
        "codec": "flac",
        "speech_rms_dbfs": round(db(active_power(clipped, rate)), 1),
        "degradation": {
            "kind": "clipping",
            "clip_level_dbfs": CLIP_LEVEL_DBFS,
            "clip_level_int16": ceiling,
            "gain_db": round(20 * np.log10(gain), 2),
            "clipped_ratio": round(ratio, 5),
        },
        "purpose": "clipped peaks below full scale (clipped, then turned down)",
        "expected": expected("fail clipped", "fail clipped", "fail clipped"),
    }
    return Sample(name, BOB, pcm / 32767, rate, "flac", facts)


def build_long_pause(ctx: Context) -> Sample:
    """Two stretches of continuous speech with a 2.5 s pause between them."""
    rate, name, pause_s = 44100, "bob/long_pause.mp3", 2.5
    rng = ctx.rng(name)
    first, _ = ctx.speech(TEXTS["pause_a"], BOB, rate, name=name + "/a")
    second, _ = ctx.speech(TEXTS["pause_b"], BOB, rate, name=name + "/b")
    lead = 0.4
    speech = np.concatenate([np.zeros(int(lead * rate)), first, np.zeros(int(pause_s * rate)), second])
    speech = set_active_level(np.concatenate([speech, np.zeros(int(0.5 * rate))]), rate, dbfs=-22.0)
    audio = speech + room_tone(len(speech), rate, rng, dbfs=-63.0)
    pause_start = lead + len(first) / rate
    facts: dict[str, Any] = {
        "codec": "mp3",
        "speech_rms_dbfs": -22.0,
        "room_tone_dbfs": -63.0,
        "degradation": {
            "kind": "long_pause",
            "pause_s": pause_s,
            "pause_span_s": [round(pause_start, 3), round(pause_start + pause_s, 3)],
        },
        "purpose": "one pause over the services' 2 s limit; `run` should shorten it",
        "expected": expected("fail pause_too_long", "fail pause_too_long", "fail pause_too_long"),
    }
    return Sample(name, BOB, audio, rate, "mp3", facts)


def build_takes(ctx: Context) -> list[Sample]:
    """Six short takes in the same small room, at the same level, over the same room tone."""
    rate = 48000
    rir = synthetic_rir(rate, ctx.rng("bob/takes/room"), t60_s=0.3, drr_db=8.0)
    samples: list[Sample] = []
    for i, sentence in enumerate(TEXTS["takes"], start=1):
        name = f"bob/takes/take_{i}.m4a"
        dry, _ = ctx.speech([sentence], BOB, rate, name=name)
        wet = set_active_level(reverberate(pad(dry, rate, lead_s=0.35, tail_s=0.15), rir), rate, dbfs=-21.0)
        audio = wet + room_tone(len(wet), rate, ctx.rng(name), dbfs=-62.0)
        facts: dict[str, Any] = {
            "codec": "aac",
            "bit_rate": M4A_BIT_RATE,
            "speech_rms_dbfs": -21.0,
            "room_tone_dbfs": -62.0,
            "degradation": {"kind": "short_take", "room_t60_s": 0.3, "room_drr_db": 8.0},
            "purpose": "one of six matching takes: each too short alone, usable together",
            "expected": expected("fail too_short", "fail too_short", "fail too_short"),
        }
        samples.append(Sample(name, BOB, audio, rate, "m4a", facts))
    return samples


@dataclass(frozen=True)
class Section:
    """One part of the long recording and how it is degraded."""

    key: str
    kind: str
    gap_s: tuple[float, float]
    noise: str | None = None
    snr_db: float | None = None
    t60_s: float | None = None


LONG_SECTIONS = (
    Section("long_a", "noise", (0.2, 0.4), noise="pink + mains hum 50 Hz", snr_db=8.0),
    Section("long_b", "long_pauses", (2.5, 4.0), noise="fan", snr_db=12.0),
    Section("long_c", "reverb", (0.2, 0.4), t60_s=0.9),
    Section("long_d", "clean", (0.2, 0.4)),
    Section("long_e", "noise", (0.2, 0.4), noise="babble + brown", snr_db=5.0),
    Section("long_f", "reverb_long_pauses", (2.5, 4.0), noise="brown", snr_db=15.0, t60_s=0.8),
)


def _noise_bed(kind: str, n: int, rate: int, rng: np.random.Generator, ctx: Context) -> np.ndarray:
    if kind == "pink + mains hum 50 Hz":
        return colored_noise(n, rng, exponent=1.0, rate=rate) + 0.5 * mains_hum(n, rate, rng)
    if kind == "fan":
        return fan_noise(n, rate, rng)
    if kind == "babble + brown":
        return ctx.babble(n, rate, rng) + 0.6 * colored_noise(n, rng, exponent=2.0, rate=rate)
    if kind == "brown":
        return colored_noise(n, rng, exponent=2.0, rate=rate)
    raise ValueError(f"unknown noise {kind!r}")


def build_long(ctx: Context) -> Sample:
    """A 3+ minute interview of mixed quality with one clean 20-30 s stretch of continuous speech."""
    rate, name, fade_s = 24000, "carol/interview_long.ogg", 0.25
    parts: list[np.ndarray] = []
    sections: list[dict[str, Any]] = []
    cursor = 0.0
    for section in LONG_SECTIONS:
        rng = ctx.rng(f"{name}/{section.key}")
        speech, gaps = ctx.speech(
            TEXTS[section.key], CAROL, rate, name=f"{name}/{section.key}", gap_s=section.gap_s
        )
        speech = pad(speech, rate, lead_s=0.6, tail_s=0.6)
        if section.t60_s is not None:
            speech = reverberate(speech, synthetic_rir(rate, rng, t60_s=section.t60_s, drr_db=LONG_DRR_DB))
        speech = set_active_level(speech, rate, dbfs=-23.0)
        part = speech + room_tone(len(speech), rate, rng, dbfs=-64.0)
        if section.noise is not None and section.snr_db is not None:
            bed = _noise_bed(section.noise, len(speech), rate, rng, ctx)
            part += scale_noise_to_snr(speech, bed, rate, snr_db=section.snr_db)
        start = cursor if not parts else cursor - fade_s
        parts.append(part)
        cursor = start + len(part) / rate
        info: dict[str, Any] = {"start_s": round(start, 2), "end_s": round(cursor, 2), "kind": section.kind}
        if section.noise is not None:
            info.update(noise=section.noise, snr_db=section.snr_db)
        if section.t60_s is not None:
            info.update(t60_s=section.t60_s, drr_db=LONG_DRR_DB)
        if gaps:
            info["gaps_s"] = [round(min(gaps), 2), round(max(gaps), 2)]
        sections.append(info)
    audio = raised_cosine_join(parts, rate, fade_s=fade_s)
    clean = next(s for s in sections if s["kind"] == "clean")
    # the speech inside the clean section starts 0.6 s after its start and ends 0.6 s before its end
    best = [round(clean["start_s"] + 0.6, 2), round(clean["end_s"] - 0.6, 2)]
    facts: dict[str, Any] = {
        "codec": "vorbis",
        "speech_rms_dbfs": -23.0,
        "room_tone_dbfs": -64.0,
        "degradation": {"kind": "mixed", "sections": sections, "best_span_s": best},
        "purpose": "long, mostly poor recording; `run` must find the one clean stretch (best_span_s)",
        "expected": expected(
            "fail too_long_clip, pause_too_long, low_snr, reverberant",
            "fail too_long_clip, pause_too_long, low_snr, reverberant",
            "fail pause_too_long, low_snr, reverberant",
        ),
    }
    return Sample(name, CAROL, audio, rate, "ogg", facts)


# ---------------------------------------------------------------------------------------------- texts

TEXTS: dict[str, list[str]] = {
    "phone_memo": [
        "Hi, it's me, just a quick note before I forget.",
        "The plumber can come on Thursday morning, somewhere between nine and eleven.",
        "Could you leave the side gate open for him?",
        "Also, the library books are due back on Saturday, and two of them are yours.",
        "I put them on the shelf by the front door, next to the umbrellas.",
    ],
    "noisy": [
        "I'm calling from the market, so sorry about all the noise.",
        "They had no fresh basil today, only the dried kind in little jars.",
        "I bought two lemons, a bag of rice, and some of that sharp cheese you like.",
        "See you around six.",
    ],
    "stereo": [
        "This is a test of the new recorder out on the balcony.",
        "The wind has dropped, and the birds are loud this evening.",
        "Tomorrow I will try the other microphone and compare them.",
    ],
    "upsampled": [
        "Good afternoon, and thank you for calling the community centre.",
        "Our opening hours have changed for the winter.",
        "We now close at eight on weekdays, and at four on Saturday.",
    ],
    "broken": [
        "Quick reminder: the car needs a service on Tuesday.",
    ],
    "reverberant": [
        "Welcome to the old assembly hall.",
        "The ceiling is nearly twelve metres high, and every footstep comes back to you.",
        "Please keep to the left of the rope.",
    ],
    "clipped": [
        "Okay, can everybody hear me at the back?",
        "Great. The match starts at three, the buses leave at half past one,",
        "and nobody gets on without a ticket.",
    ],
    "pause_a": [
        "Let me read the next paragraph from the top of the page,",
        "slowly and clearly, the way we practised.",
    ],
    "pause_b": [
        "Sorry, I lost my place for a second.",
        "The river rises in the hills and reaches the sea three days later.",
    ],
    "takes": [
        "The kettle is on, and the biscuits are in the blue tin.",
        "Turn left at the bakery, then follow the canal to the bridge.",
        "Our garden only gets the sun after lunch.",
        "Please remember to water the tomatoes while I am away.",
        "The quiz starts at eight, and our team still needs a name.",
        "I think that was the best one so far.",
    ],
    "long_a": [
        "Good evening, and welcome back to the programme.",
        "Tonight we are talking about small gardens, and how much food you can grow in very little space.",
        "My guest has been doing exactly that for eleven years, on a balcony four floors above a busy road.",
        "She grows beans, salad, strawberries, and, she tells me, one very stubborn lemon tree.",
        "We will hear how she started, what went wrong in the first year, and what she would do differently.",
        "But first, a word about the weather, which has not been kind to gardeners this month.",
        "The frost came late, the rain came early, and the slugs, as always, came in force.",
        "If you have questions for our guest, send them in, and we will answer a few at the end.",
    ],
    "long_b": [
        "So, how did it all begin?",
        "Well, I had a window box, and nothing else.",
        "A friend gave me some seeds in an envelope.",
        "I had no idea what they were.",
        "They turned out to be radishes.",
        "And they were ready in four weeks.",
        "I could not believe it.",
        "After that, I was hooked.",
    ],
    "long_c": [
        "The first year was a disaster, honestly.",
        "I planted everything at once, in April, in the same kind of compost, "
        "in pots that were far too small.",
        "Half of it drowned when the rain came, and the other half dried out in the first hot week of June.",
        "I had eleven strawberries all summer, and the birds ate nine of them.",
        "But I learned more from that year than from any book I have read since.",
    ],
    "long_d": [
        "Here is the advice I give everyone who asks me where to start.",
        "Begin with herbs, because they forgive almost every mistake you can make.",
        "Mint will grow in a bucket of almost anything, as long as it gets water.",
        "Parsley wants a deeper pot, and a little shade in the middle of the day.",
        "Chives come back every spring without being asked.",
        "Once those are thriving, move on to beans, then to tomatoes,",
        "and only after that to anything fussy, like peppers or melons.",
    ],
    "long_e": [
        "We are recording this part at the street market, so you may hear a few people around us.",
        "This stall sells seedlings every Saturday from March until the end of May.",
        "The owner tells me that the best sellers are cherry tomatoes, courgettes, and sweet peas.",
        "Prices have gone up a little this year, "
        "but a tray of six plants is still cheaper than one bag of salad.",
        "And if you bring the empty trays back, you get a small discount on the next ones.",
        "Next to it there is a man selling honey from his own hives, just outside the town.",
    ],
    "long_f": [
        "Before we finish, one last question.",
        "What would you tell someone with no space at all?",
        "Grow something on a windowsill.",
        "Even a single pot of basil changes how you cook.",
        "And it makes the kitchen smell wonderful.",
        "Thank you for listening, and good night.",
    ],
}

BABBLE_TEXTS: list[list[str]] = [
    [
        "Did you see the score last night?",
        "I told him to wait, but he never listens to anyone.",
        "The new place on the corner does a very good soup.",
        "We should book the tickets before the prices go up again.",
    ],
    [
        "She said the meeting moved to Wednesday afternoon.",
        "No, the red one, the one with the long handle.",
        "My brother is coming to stay for a week in August.",
        "Can you pass me the other bag, please?",
    ],
    [
        "They are digging up the road outside the school again.",
        "I left my glasses in the car, of all places.",
        "The bus was full, so I walked the whole way.",
        "It is cheaper at the other shop, but it is further away.",
    ],
    [
        "How much are the apples today?",
        "Three for a pound, or a whole bag for two.",
        "We had a lovely time at the seaside, apart from the rain.",
        "Tell your mother I said hello.",
    ],
]


# ------------------------------------------------------------------------------------------ main


def build_all(ctx: Context) -> list[Sample]:
    """Build every sample in memory."""
    builders: list[Callable[[Context], Sample]] = [
        build_phone_memo,
        build_noisy,
        build_stereo,
        build_upsampled,
        build_broken,
        build_reverberant,
        build_clipped,
        build_long_pause,
        build_long,
    ]
    samples = [build(ctx) for build in builders]
    samples[8:8] = build_takes(ctx)
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
        "voice": sample.voice.as_dict() if sample.voice else None,
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
    args = parser.parse_args(argv)
    try:
        version = espeak_version()
    except EspeakMissing as exc:
        print(f"make_samples: error: {exc}", file=sys.stderr)
        return 2
    out: Path = args.out
    with tempfile.TemporaryDirectory() as tmp:
        samples = build_all(Context(workdir=Path(tmp)))
    files: dict[str, Any] = {}
    total = 0
    for sample in samples:
        size = write_sample(sample, out)
        total += size
        files[sample.relpath] = expected_entry(sample, size)
        duration = "-" if sample.duration_s is None else f"{sample.duration_s:6.1f} s"
        print(f"{sample.relpath:34s} {duration:>9s} {size / 1000:8.1f} kB")
    manifest = {
        "schema_version": 1,
        "generator": "data/make_samples.py",
        "espeak_ng": version,
        "seed": SEED,
        "speech_bandwidth_hz": ESPEAK_RATE / 2,
        "definitions": {
            "speech_rms_dbfs": "RMS over 20 ms frames within 40 dB of the loudest frame, speech alone",
            "snr_db": "active speech power over mean power of the added noise, before mixing",
            "clipped_ratio": "fraction of all samples at the clipping level",
            "speech_bandwidth_hz": "espeak-ng renders at 22.05 kHz: no speech above this Nyquist limit",
            "expected": "verdict of `voiceprep check` on the file as it is, per family",
        },
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
