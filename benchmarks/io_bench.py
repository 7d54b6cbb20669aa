"""I/O benchmark: probe and streaming decode to the 16 kHz mono analysis view, beside the baselines.

Generates a long 48 kHz stereo WAV (default 60 minutes) and an MP3 of it, then measures, each in a fresh
subprocess so that peak memory (ru_maxrss) belongs to that method alone:

- ``probe``: :func:`pipeline.audio.io.probe` (header only, plus the sha256 of the bytes);
- ``sf_blocks``: plain ``soundfile.blocks`` decode, nothing else (the floor);
- ``view``: :class:`pipeline.audio.view.AnalysisView` (decode + channel choice + mix + soxr to 16 kHz);
- ``librosa``: ``librosa.load(path, sr=16000)`` (the naive whole-file load) — WAV only by default, since on
  the MP3 it takes minutes and gigabytes; ``--librosa-mp3`` adds it.

Prints a table with x-real-time and peak memory and the ratio of the streaming view to plain block decode,
and writes JSON to ``benchmarks/results/io_bench.json``.

Usage: ``python benchmarks/io_bench.py [--minutes 60] [--workdir /tmp/voiceprep-bench] [--keep]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("VOICEPREP_CORPUS") or ROOT.parent / "shared" / "data")
RESULTS = ROOT / "benchmarks" / "results"
RATE = 48000

# Each method runs in its own interpreter; it prints one JSON line: seconds and peak RSS in MB.
_RUNNER = r"""
import json, resource, sys, time
method, path = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
frames = 0
if method == "probe":
    from pipeline.audio.io import probe
    info = probe(path)
    frames = info.frames or 0
elif method == "sf_blocks":
    import soundfile as sf
    for block in sf.blocks(path, blocksize=65536, dtype="float32", always_2d=True):
        frames += len(block)
elif method == "view":
    from pipeline.audio.view import AnalysisView
    for block in AnalysisView(path, rate=16000, channel_strategy="best"):
        frames += len(block)
elif method == "av_blocks":
    from pipeline.audio.io import AudioReader
    with AudioReader(path) as reader:
        for block in reader.blocks(block_frames=65536):
            frames += len(block)
elif method == "librosa":
    import librosa
    y, sr = librosa.load(path, sr=16000)
    frames = len(y)
else:
    raise SystemExit("unknown method " + method)
seconds = time.perf_counter() - t0
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "frames": frames}))
"""

_BASELINE = r"""
import json, resource
import numpy, soundfile  # what every method imports anyway
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _speech_material() -> np.ndarray:
    """A few seconds of real speech (48 kHz) from the corpus (or the repository's copy), else a stand-in."""
    found = [p for p in (CORPUS, ROOT / "data" / "corpus") if (p / "speech" / "sms_speech-male.wav").exists()]
    if found:
        path = found[0] / "speech" / "sms_speech-male.wav"
        import soxr

        x, sr = sf.read(path, dtype="float32", always_2d=True)
        return soxr.resample(x[:, 0], sr, RATE).astype(np.float32)
    t = np.arange(RATE * 5) / RATE
    return (0.2 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def make_wav(path: Path, minutes: float) -> None:
    """Write a long 48 kHz stereo PCM16 WAV block by block (speech with pauses and noise, right channel quieter)."""
    rng = np.random.default_rng(7)
    speech = _speech_material()
    block = np.zeros(RATE * 10, dtype=np.float32)
    total = int(minutes * 60 * RATE)
    written = 0
    with sf.SoundFile(path, "w", samplerate=RATE, channels=2, subtype="PCM_16", format="WAV") as f:
        while written < total:
            block[:] = 0.0
            n = min(len(speech), len(block))
            block[:n] = speech[:n]
            noise = rng.normal(0, 0.003, size=len(block)).astype(np.float32)
            left = block + noise
            right = 0.5 * block + noise
            m = min(len(block), total - written)
            f.write(np.stack([left[:m], right[:m]], axis=1))
            written += m


def make_mp3(wav: Path, mp3: Path) -> None:
    """Encode the WAV to MP3 (soundfile/LAME), block by block."""
    with (
        sf.SoundFile(wav) as src,
        sf.SoundFile(mp3, "w", samplerate=src.samplerate, channels=src.channels, format="MP3") as dst,
    ):
        for block in src.blocks(blocksize=RATE * 10, dtype="float32", always_2d=True):
            dst.write(block)


def save_results(name: str, results: dict) -> Path:
    """Write a benchmark's results to ``benchmarks/results/NAME`` (JSON) and say where."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / name
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return out


def run_method(method: str, path: Path) -> dict:
    """Run one method in a fresh interpreter and return its JSON result."""
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, method, str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    """Generate the inputs, run every method, print the table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/voiceprep-bench"))
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--librosa-mp3", action="store_true", help="also run librosa.load on the MP3")
    args = parser.parse_args()

    args.workdir.mkdir(parents=True, exist_ok=True)
    wav = args.workdir / f"long_{args.minutes:g}min_48k_stereo.wav"
    mp3 = wav.with_suffix(".mp3")
    t0 = time.perf_counter()
    if not wav.exists():
        make_wav(wav, args.minutes)
    if not mp3.exists():
        make_mp3(wav, mp3)
    print(
        f"inputs ready in {time.perf_counter() - t0:.0f} s: {wav.name} ({wav.stat().st_size / 1e6:.0f} MB), "
        f"{mp3.name} ({mp3.stat().st_size / 1e6:.0f} MB)"
    )

    audio_s = args.minutes * 60
    baseline = json.loads(
        subprocess.run([sys.executable, "-c", _BASELINE], capture_output=True, text=True, check=True).stdout
    )
    plan = [
        ("wav", wav, ["probe", "sf_blocks", "av_blocks", "view", "librosa"]),
        ("mp3", mp3, ["probe", "sf_blocks", "view"] + (["librosa"] if args.librosa_mp3 else [])),
    ]
    results: dict = {
        "minutes": args.minutes,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "interpreter_baseline_mb": round(baseline["peak_mb"], 1),
        "runs": [],
    }
    header = f"{'input':5} {'method':10} {'seconds':>9} {'x real time':>12} {'peak MB':>9}"
    print(header)
    print("-" * len(header))
    for label, path, methods in plan:
        for method in methods:
            r = run_method(method, path)
            row = {"input": label, "method": method, **r}
            if "seconds" in r:
                row["x_realtime"] = audio_s / r["seconds"] if r["seconds"] > 0 else None
                print(
                    f"{label:5} {method:10} {r['seconds']:9.2f} {row['x_realtime']:12.0f} {r['peak_mb']:9.0f}"
                )
            else:
                print(f"{label:5} {method:10} error: {r['error']}")
            results["runs"].append(row)

    def _get(label: str, method: str) -> dict:
        return next((r for r in results["runs"] if r["input"] == label and r["method"] == method), {})

    print()
    ratios = {}
    for label in ("wav", "mp3"):
        base, view = _get(label, "sf_blocks"), _get(label, "view")
        if "seconds" in base and "seconds" in view:
            ratios[f"{label}_view_over_sf_blocks_time"] = view["seconds"] / base["seconds"]
            print(
                f"{label}: streaming view takes {view['seconds'] / base['seconds']:.2f}x the time of plain "
                f"block decode (target <= 1.5x); peak {view['peak_mb']:.0f} MB (target < 150 MB)"
            )
        lib = _get(label, "librosa")
        if "seconds" in lib and "seconds" in view:
            ratios[f"{label}_librosa_over_view_time"] = lib["seconds"] / view["seconds"]
            ratios[f"{label}_librosa_over_view_memory"] = lib["peak_mb"] / view["peak_mb"]
            print(
                f"{label}: librosa.load takes {lib['seconds'] / view['seconds']:.1f}x the time and "
                f"{lib['peak_mb'] / view['peak_mb']:.1f}x the memory of the streaming view"
            )
    results["ratios"] = ratios
    print(f"(a bare interpreter with numpy+soundfile peaks at {baseline['peak_mb']:.0f} MB)")

    save_results("io_bench.json", results)
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
