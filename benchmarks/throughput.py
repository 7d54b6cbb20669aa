"""Throughput benchmark: the fast pass over a long recording, beside decode-only and a naive baseline.

Methods, each in a fresh interpreter (peak memory = that method's own ru_maxrss), pinned to one core
with ``taskset -c 0`` by default (``--cores all`` lets the decode thread use the second core):

- ``decode``: plain ``soundfile.blocks`` decode (the floor);
- ``fastpass``: :func:`pipeline.analysis.fastpass.analyze_file` — decode, channel choice, mix, resample,
  VAD, energy, SNR, WADA, reverb, clipping, bandwidth, loudness and true peak, in one streaming pass;
- ``naive``: ``librosa.load(sr=16000)`` + webrtcvad on every 30 ms frame + ``pyloudnorm`` integrated
  loudness on the whole array (what a script would do);
- ``dnsmos``: cost of DNSMOS per 10 s window after warm-up (mean of 10 windows).

Prints x-real-time and peak MB with ratios, writes ``benchmarks/results/throughput.json``.
Usage: ``python benchmarks/throughput.py [--minutes 60] [--cores one|all] [--skip-naive]``
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from io_bench import make_mp3, make_wav, save_results  # noqa: E402 (benchmarks/ is not a package)

_RUNNER = r"""
import json, resource, sys, time
method, path = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
extra = {}
if method == "decode":
    import soundfile as sf
    for block in sf.blocks(path, blocksize=65536, dtype="float32", always_2d=True):
        pass
elif method == "fastpass":
    from pipeline.analysis.fastpass import analyze_file
    t0 = time.perf_counter()
    result = analyze_file(path)
    extra = {k: result.metrics[k] for k in ("speech_s", "snr_db", "lufs", "bandwidth_class", "clipped_ratio")}
elif method == "naive":
    import librosa, numpy as np, pyloudnorm, webrtcvad
    y, sr = librosa.load(path, sr=16000)
    pcm = (np.clip(y, -1, 1) * 32767).astype(np.int16).tobytes()
    vad = webrtcvad.Vad(2)
    frame = 480 * 2
    speech = sum(vad.is_speech(pcm[i:i + frame], 16000) for i in range(0, len(pcm) - frame + 1, frame))
    lufs = pyloudnorm.Meter(sr).integrated_loudness(y)
    extra = {"speech_frames": int(speech), "lufs": float(lufs)}
elif method == "dnsmos":
    import numpy as np
    from pipeline.analysis.dnsmos import dnsmos, warm_up
    from pipeline.audio.view import load_mono
    audio, rate, _ = load_mono(path, rate=16000, start_s=0, end_s=100)
    warm_up()
    t0 = time.perf_counter()
    for k in range(10):
        dnsmos(audio[k * 160000:(k + 1) * 160000])
    extra = {"ms_per_10s_window": (time.perf_counter() - t0) * 100}
seconds = time.perf_counter() - t0
usage = resource.getrusage(resource.RUSAGE_SELF)
peak_mb, cpu_s = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
print(json.dumps({"seconds": seconds, "cpu_s": cpu_s, "peak_mb": peak_mb, **extra}))
"""


def run_method(method: str, path: Path, *, one_core: bool) -> dict:
    """Run one method in a fresh interpreter (pinned to core 0 when asked)."""
    cmd = [sys.executable, "-c", _RUNNER, method, str(path)]
    if one_core and shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    """Generate inputs, run every method, print the table, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/voiceprep-bench"))
    parser.add_argument("--cores", choices=["one", "all"], default="one")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    args.workdir.mkdir(parents=True, exist_ok=True)
    wav = args.workdir / f"long_{args.minutes:g}min_48k_stereo.wav"
    mp3 = wav.with_suffix(".mp3")
    if not wav.exists():
        make_wav(wav, args.minutes)
    if not mp3.exists():
        make_mp3(wav, mp3)
    audio_s = args.minutes * 60
    one_core = args.cores == "one"
    results: dict = {
        "minutes": args.minutes,
        "cores": args.cores,
        "python": platform.python_version(),
        "runs": [],
    }
    print(f"{args.minutes:g}-minute 48 kHz stereo; {'pinned to one core' if one_core else 'all cores'}")
    print(f"{'input':5} {'method':9} {'seconds':>9} {'x real time':>12} {'peak MB':>8}")
    for label, path in (("wav", wav), ("mp3", mp3)):
        methods = ["decode", "fastpass"] + ([] if args.skip_naive or label == "mp3" else ["naive"])
        for method in methods:
            r = run_method(method, path, one_core=one_core)
            row = {"input": label, "method": method, **r}
            if "seconds" in r:
                row["x_realtime"] = audio_s / r["seconds"]
                print(
                    f"{label:5} {method:9} {r['seconds']:9.2f} {row['x_realtime']:12.0f} {r['peak_mb']:8.0f}"
                )
            else:
                print(f"{label:5} {method:9} error: {r['error']}")
            results["runs"].append(row)
    dn = run_method("dnsmos", wav, one_core=one_core)
    results["dnsmos"] = dn
    if "ms_per_10s_window" in dn:
        print(f"DNSMOS: {dn['ms_per_10s_window']:.0f} ms per 10 s window after warm-up")

    def get(label: str, method: str) -> dict:
        return next((r for r in results["runs"] if r["input"] == label and r["method"] == method), {})

    ratios = {}
    for label in ("wav", "mp3"):
        dec, fp, naive = get(label, "decode"), get(label, "fastpass"), get(label, "naive")
        if "seconds" in dec and "seconds" in fp:
            ratios[f"{label}_fastpass_over_decode_time"] = fp["seconds"] / dec["seconds"]
            print(
                f"{label}: fast pass {fp['x_realtime']:.0f}x real time (target >= 500x), "
                f"{fp['seconds'] / dec['seconds']:.2f}x decode-only time, peak {fp['peak_mb']:.0f} MB (target < 200)"
            )
        if "seconds" in naive and "seconds" in fp:
            ratios[f"{label}_naive_over_fastpass_time"] = naive["seconds"] / fp["seconds"]
            ratios[f"{label}_naive_over_fastpass_memory"] = naive["peak_mb"] / fp["peak_mb"]
            print(
                f"{label}: naive baseline takes {naive['seconds'] / fp['seconds']:.1f}x the time and "
                f"{naive['peak_mb'] / fp['peak_mb']:.0f}x the memory of the fast pass"
            )
    results["ratios"] = ratios
    save_results("throughput.json", results)
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
