"""End-to-end benchmark of ``voiceprep run`` (issues 3 and 13 of the tracker): long files, many files, resume.

1. **Long recording** (the benchmark of record, issue 13): the realistic hour of
   ``benchmarks/realistic_hour.py`` (one reader's varied phrases of 3-15 s, 0.3-2.5 s apart, 48 kHz
   stereo, real background noise at 25 dB SNR) through ``run`` with the default families (every family)
   and ``--jobs 1``, pinned to one core; beside decode-only and the fast pass alone from the same run
   (targets: >= 240x real time end to end, peak memory <= 300 MB, fast pass >= 600x); ``--jobs2`` adds
   the same run with ``--jobs 2`` on both cores (target >= 1.6x the one-core speed). ``--material tiled``
   gives the old measurement (a tiled 5.6 s phrase, WAV and MP3, three families, serial executor).
2. **Many short files**: 500 files of 5-20 s cut from the corpus's ``speech/`` (``VOICEPREP_CORPUS``,
   default ``../shared/data``) into 20 speaker folders; files per second with ``--jobs 1``, ``--jobs 2``
   (process pool) and a 2-worker Dask LocalCluster; scaling efficiency = rate(2 workers) /
   (2 x rate(1 worker)) (targets: >= 0.9 with the process pool, >= 0.85 with Dask).
3. **Resume**: the same run again over an unchanged input (target: >= 20x faster than the first).

Every measured run is a fresh ``python -m pipeline.cli.main run`` subprocess (peak memory = its ru_maxrss plus
that of its workers; CPU seconds = user + system of it and its workers). Writes
``benchmarks/results/run_bench*.json``.
Usage: ``python benchmarks/run_bench.py [--minutes 60] [--files 500] [--only long,short,resume]
[--material realistic|tiled] [--jobs2]``
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
import soxr

ROOT = Path(__file__).resolve().parents[1]
SPEECH = Path(os.environ.get("VOICEPREP_CORPUS") or ROOT.parent / "shared" / "data") / "speech"
sys.path.insert(0, str(ROOT / "benchmarks"))

from io_bench import make_mp3, make_wav, save_results  # noqa: E402 (benchmarks/ is not a package)
from realistic_hour import make_realistic_hour  # noqa: E402
from throughput import run_method  # noqa: E402

FAMILIES = ("cosyvoice", "qwen-tts", "minimax")


_WRAPPER = r"""
import json, resource, runpy, sys
sys.argv = ["voiceprep", *sys.argv[1:]]
code = 0
try:
    runpy.run_module("pipeline.cli.main", run_name="__main__")
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 0
own = resource.getrusage(resource.RUSAGE_SELF)
workers = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime
rss = {"self_kb": own.ru_maxrss, "children_kb": workers.ru_maxrss, "cpu_s": cpu}
print("VOICEPREP_RSS " + json.dumps(rss), file=sys.stderr)
sys.exit(code)
"""


def voiceprep_run(inp: Path, out: Path, *args: str, one_core: bool = False) -> dict:
    """Run the CLI in a fresh interpreter; seconds, exit code, and peak RSS (MB) of it and of its workers.

    The peak is measured inside that interpreter (its own ru_maxrss, and the largest of its worker
    processes), so earlier benchmark steps in this process do not leak into it.
    """
    cmd = [sys.executable, "-c", _WRAPPER, "run", str(inp), "--out", str(out), *args]
    if one_core and shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    seconds = time.perf_counter() - t0
    row: dict = {"seconds": seconds, "exit": proc.returncode}
    for line in proc.stderr.splitlines():
        if line.startswith("VOICEPREP_RSS "):
            rss = json.loads(line.split(" ", 1)[1])
            row["peak_mb"] = rss["self_kb"] / 1024
            row["worker_peak_mb"] = rss["children_kb"] / 1024
            row["cpu_s"] = rss["cpu_s"]
    if proc.returncode != 0:
        row["stderr"] = proc.stderr.strip().splitlines()[-3:]
    clips = out / "clips.jsonl"
    if clips.exists():
        statuses = [json.loads(line)["status"] for line in clips.read_text().splitlines() if line.strip()]
        row["clips"] = {s: statuses.count(s) for s in sorted(set(statuses))}
    return row


def bench_realistic(workdir: Path, minutes: float, *, jobs2: bool = False) -> dict:
    """The realistic hour through ``run`` (default families, ``--jobs 1``, one core), with decode-only and
    the fast pass alone; with ``jobs2`` also ``--jobs 2`` on every core."""
    wav = workdir / f"realistic_{minutes:g}min_48k_stereo.wav"
    built = None
    if not wav.exists():
        built = make_realistic_hour(wav, minutes)
    audio_s = sf.info(wav).duration
    out: dict = {
        "minutes": minutes,
        "material": "realistic",
        "families": "default",
        "built": built,
        "runs": [],
    }
    for method in ("decode", "fastpass"):
        r = run_method(method, wav, one_core=True)
        r.update(input="wav", method=method, x_realtime=audio_s / r["seconds"] if "seconds" in r else None)
        out["runs"].append(r)
    inp = workdir / "in_realistic"
    inp.mkdir(exist_ok=True)
    link = inp / "reader.wav"
    if not link.exists():
        link.symlink_to(wav)
    configs = [("run --jobs 1", ["--jobs", "1"], True)]
    if jobs2:
        configs.append(("run --jobs 2", ["--jobs", "2"], False))
    for name, args, one_core in configs:
        res = voiceprep_run(inp, workdir / "out_realistic", "--no-resume", *args, one_core=one_core)
        res.update(input="wav", method=name, x_realtime=audio_s / res["seconds"])
        out["runs"].append(res)
    return out


def bench_long(workdir: Path, minutes: float) -> dict:
    """The old long-recording runs (tiled phrase, WAV and MP3, three families), with decode-only and naive
    baselines (``--material tiled``)."""
    wav = workdir / f"long_{minutes:g}min_48k_stereo.wav"
    mp3 = wav.with_suffix(".mp3")
    if not wav.exists():
        make_wav(wav, minutes)
    if not mp3.exists():
        make_mp3(wav, mp3)
    audio_s = minutes * 60
    out: dict = {"minutes": minutes, "families": list(FAMILIES), "runs": []}
    fams = [a for f in FAMILIES for a in ("--family", f)]
    for label, path in (("wav", wav), ("mp3", mp3)):
        for method in ("decode", "naive") if label == "wav" else ("decode",):
            r = run_method(method, path, one_core=True)
            r.update(
                input=label, method=method, x_realtime=audio_s / r["seconds"] if "seconds" in r else None
            )
            out["runs"].append(r)
        # Each file alone in its own input folder: one speaker, three families.
        inp = workdir / f"in_{label}"
        inp.mkdir(exist_ok=True)
        link = inp / path.name
        if not link.exists():
            link.symlink_to(path)
        res = voiceprep_run(
            inp, workdir / f"out_{label}", "--executor", "serial", "--no-resume", *fams, one_core=True
        )
        res.update(input=label, method="run", x_realtime=audio_s / res["seconds"])
        out["runs"].append(res)
    return out


def make_short_files(folder: Path, count: int, speakers: int = 20, seed: int = 1) -> float:
    """``count`` files of 5-20 s cut from the shared speech (looped), in ``speakers`` folders; returns seconds."""
    rng = np.random.default_rng(seed)
    sources = []
    for path in sorted(SPEECH.glob("*")):
        if path.suffix not in {".wav", ".flac", ".ogg", ".mp3"}:
            continue
        x, sr = sf.read(path, dtype="float32", always_2d=True)
        sources.append((soxr.resample(x[:, 0], sr, 16000).astype(np.float32), path.stem))
    total = 0.0
    for k in range(count):
        x, _ = sources[k % len(sources)]
        length = int(rng.uniform(5, 20) * 16000)
        reps = int(np.ceil(length / x.size)) + 1
        tiled = np.tile(x, reps)
        start = int(rng.integers(0, x.size))
        clip = tiled[start : start + length]
        speaker = folder / f"speaker_{k % speakers:02d}"
        speaker.mkdir(parents=True, exist_ok=True)
        sf.write(speaker / f"take_{k:04d}.flac", clip, 16000, subtype="PCM_16")
        total += length / 16000
    return total


def bench_short(workdir: Path, files: int) -> dict:
    """Files per second over many short files with 1 and 2 workers and with Dask."""
    inp = workdir / f"short_{files}"
    if not inp.exists():
        audio_s = make_short_files(inp, files)
    else:
        audio_s = sum(sf.info(p).duration for p in inp.rglob("*.flac"))
    out: dict = {"files": files, "audio_s": audio_s, "runs": []}
    configs = {
        "processes_jobs1": ["--executor", "processes", "--jobs", "1"],
        "processes_jobs2": ["--executor", "processes", "--jobs", "2"],
        "dask_2_workers": ["--executor", "dask", "--jobs", "2"],
    }
    for name, args in configs.items():
        res = voiceprep_run(inp, workdir / f"out_short_{name}", "--no-resume", "--family", "cosyvoice", *args)
        res.update(config=name, files_per_s=files / res["seconds"])
        out["runs"].append(res)
    rate = {r["config"]: r["files_per_s"] for r in out["runs"]}
    out["efficiency_processes"] = rate["processes_jobs2"] / (2 * rate["processes_jobs1"])
    out["efficiency_dask"] = rate["dask_2_workers"] / (2 * rate["processes_jobs1"])
    return out


def bench_resume(workdir: Path) -> dict:
    """A first run over the demo samples, then the identical run again."""
    out_dir = workdir / "out_resume"
    shutil.rmtree(out_dir, ignore_errors=True)
    first = voiceprep_run(ROOT / "data" / "samples", out_dir, "--executor", "processes", "--jobs", "2")
    again = voiceprep_run(ROOT / "data" / "samples", out_dir, "--executor", "processes", "--jobs", "2")
    return {"first": first, "again": again, "speedup": first["seconds"] / again["seconds"]}


def main() -> None:
    """Run the selected parts, print the tables, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--only", default="long,short,resume")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/voiceprep-bench"))
    parser.add_argument("--material", choices=["realistic", "tiled"], default="realistic")
    parser.add_argument("--jobs2", action="store_true", help="also run the long file with --jobs 2")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    args.workdir.mkdir(parents=True, exist_ok=True)
    results: dict = {"python": platform.python_version()}
    if "long" in parts:
        if args.material == "realistic":
            long = bench_realistic(args.workdir, args.minutes, jobs2=args.jobs2)
            title = "realistic, default families"
        else:
            long = bench_long(args.workdir, args.minutes)
            title = f"tiled phrase, one core, families {', '.join(FAMILIES)}"
        results["long"] = long
        print(f"\n{args.minutes:g}-minute 48 kHz stereo ({title})")
        print(
            f"{'input':5} {'method':12} {'seconds':>8} {'CPU s':>7} {'x real time':>12} {'peak MB':>8}  clips"
        )
        for r in long["runs"]:
            if "seconds" not in r:
                print(f"{r['input']:5} {r['method']:12} error: {r.get('error')}")
                continue
            peak = max(r.get("peak_mb", 0), r.get("worker_peak_mb", 0))
            print(
                f"{r['input']:5} {r['method']:12} {r['seconds']:8.1f} {r.get('cpu_s', float('nan')):7.1f} "
                f"{r['x_realtime']:12.0f} {peak:8.0f}  {r.get('clips', '')}"
            )
    if "short" in parts:
        short = bench_short(args.workdir, args.files)
        results["short"] = short
        print(f"\n{args.files} short files ({short['audio_s'] / 60:.0f} min of audio), family cosyvoice")
        for r in short["runs"]:
            print(
                f"{r['config']:16} {r['seconds']:7.1f} s  {r['files_per_s']:6.2f} files/s  "
                f"peak {r.get('peak_mb', 0):.0f} MB (workers {r.get('worker_peak_mb', 0):.0f} MB)"
            )
        print(
            f"scaling efficiency: processes {short['efficiency_processes']:.2f}, "
            f"dask {short['efficiency_dask']:.2f} (targets: processes >= 0.9, Dask >= 0.85)"
        )
    if "resume" in parts:
        resume = bench_resume(args.workdir)
        results["resume"] = resume
        print(
            f"\nresume on data/samples: first {resume['first']['seconds']:.1f} s, again "
            f"{resume['again']['seconds']:.1f} s: {resume['speedup']:.0f}x faster (target >= 20x)"
        )
    suffix = "" if parts == {"long", "short", "resume"} else "-" + "-".join(sorted(parts))
    suffix += "-tiled" if args.material == "tiled" and "long" in parts else ""
    save_results(f"run_bench{suffix}.json", results)


if __name__ == "__main__":
    main()
