"""The realistic long recording of issue 13: one reader, varied speech, real background noise.

One speaker (the LibriVox reading in ``long/`` of the corpus, ``VOICEPREP_CORPUS``, default
``../shared/data``) cut into random phrases of 3-15 s taken from anywhere in the reading (so the speech
varies, unlike a tiled phrase), separated by gaps of 0.3-2.5 s, written as 48 kHz stereo PCM16 (the voice
in both channels, 1 dB apart), under real background noise (the ambiences in ``noise/``, stereo where
the recording is, looped one after another) at 25 dB SNR against the speech's active level. Phrases
start and end with 10 ms fades, so cuts inside a word do not click.

The file is built block by block (peak memory about 150 MB) and cached: the same seed gives the same file.
Usage: ``python benchmarks/realistic_hour.py OUT.wav [--minutes 60]``
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("VOICEPREP_CORPUS") or ROOT.parent / "shared" / "data")
READING = CORPUS / "long" / "asimov_librivox_gettysburg_john_greenman.mp3"
NOISES = (  # steady ambiences without voices, tunes or tones (those would change what the run decides)
    "amb_city_traffic_hum_usc.mp3",
    "amb_wind_usc.mp3",
    "tg_lluvias_de_mayo_felix_blume.flac",
    "pra_exercise_bike.wav",
)
RATE = 48000
SNR_DB = 25.0
PHRASE_S = (3.0, 15.0)
GAP_S = (0.3, 2.5)
FADE_S = 0.01


def _read(path: Path, channels: int) -> np.ndarray:
    """``path`` as float32 at :data:`RATE` with ``channels`` channels (mono duplicated)."""
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    if sr != RATE:
        x = soxr.resample(x, sr, RATE).astype(np.float32)
    if x.shape[1] < channels:
        x = np.repeat(x[:, :1], channels, axis=1)
    return np.ascontiguousarray(x[:, :channels])


def _active_rms(x: np.ndarray) -> float:
    """RMS of the 20 ms frames within 30 dB of the loudest (the speech's active level)."""
    frame = int(0.02 * RATE)
    n = x.size // frame
    power = np.mean(np.square(x[: n * frame].reshape(n, frame), dtype=np.float64), axis=1)
    active = power[power > power.max() * 1e-3]
    return float(np.sqrt(active.mean()))


def make_realistic_hour(path: Path, minutes: float = 60.0, *, seed: int = 13) -> dict:
    """Write the recording to ``path`` (48 kHz stereo PCM16); returns how it was built."""
    rng = np.random.default_rng(seed)
    speech = _read(READING, 1)[:, 0]
    speech_rms = _active_rms(speech)
    noise = np.concatenate([_read(CORPUS / "noise" / name, 2) for name in NOISES])
    noise /= np.sqrt(np.mean(np.square(noise, dtype=np.float64)))
    noise_gain = speech_rms * 10 ** (-SNR_DB / 20)
    total = round(minutes * 60 * RATE)
    fade = np.linspace(0.0, 1.0, round(FADE_S * RATE), dtype=np.float32)
    tmp = path.with_name(path.name + ".part")
    written = phrases = noise_at = 0
    with sf.SoundFile(tmp, "w", samplerate=RATE, channels=2, subtype="PCM_16", format="WAV") as out:
        while written < total:
            phrase = round(rng.uniform(*PHRASE_S) * RATE)
            start = int(rng.integers(0, speech.size - phrase))
            voice = speech[start : start + phrase].copy()
            voice[: fade.size] *= fade
            voice[-fade.size :] *= fade[::-1]
            gap = np.zeros(round(rng.uniform(*GAP_S) * RATE), dtype=np.float32)
            block = np.concatenate([voice, gap])[: total - written]
            stereo = np.stack([block, block * np.float32(10 ** (-1 / 20))], axis=1)
            idx = (noise_at + np.arange(block.size)) % noise.shape[0]
            noise_at = int((noise_at + block.size) % noise.shape[0])
            stereo += noise[idx] * np.float32(noise_gain)
            out.write(np.clip(stereo, -1.0, 1.0))
            written += block.size
            phrases += 1
    tmp.replace(path)
    return {"minutes": minutes, "phrases": phrases, "snr_db": SNR_DB, "noises": list(NOISES), "seed": seed}


def main() -> None:
    """Build the file at the path given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--minutes", type=float, default=60.0)
    args = parser.parse_args()
    print(make_realistic_hour(args.out, args.minutes))


if __name__ == "__main__":
    main()
