"""``voiceprep run`` end to end: speakers, manifests, honest re-checks, resume, SIGKILL, executors, the CLI.

Most tests share one small input folder (five speakers, nine files: real speech from the corpus and demo
recordings from ``data/samples``, the two longest cut to their first 11-13 s) and one serial reference
run over two families. Known answers come from the recordings themselves (durations, the corrupt and
empty files, the family specs), never from an earlier output of the runner. ``slow_measures=False`` and
the short inputs keep the runs quick; the re-check of every rendered clip still runs DNSMOS, as
``voiceprep check`` does (in this process once per distinct clip: ``tests/_dnsmos.py``). The command
runs in this process where the test is not about the process (``tests/_cli.py``); killed, in a fork of a
process that imported voiceprep once, at chosen events (``tests/_kill_zygote.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import soundfile as sf
import yaml
from _cli import jsonl, process_env, voiceprep
from _corpus import corpus_file
from _dnsmos import dnsmos_once
from _kill_zygote import Zygote
from _samples import MEMO, SAMPLES, cut

import pipeline.analysis.fastpass
import pipeline.analysis.inspection
import pipeline.audio.io
import pipeline.batch.runner
import pipeline.render.clip
from pipeline.analysis.inspection import check_families
from pipeline.audio.scan import InputFile
from pipeline.batch.config import load_config
from pipeline.batch.manifest import fingerprint
from pipeline.batch.runner import (
    RunError,
    analyze_recording,
    cached_recording,
    clip_groups,
    find_inputs,
    meter_threads,
    run,
)
from pipeline.report.results import load_run
from pipeline.rules.families import ENV_FAMILIES_DIR, families_dir, load_family
from pipeline.rules.metrics import FAST_PASS_METRICS

ROOT = Path(__file__).resolve().parents[1]

FAMILIES = ("cosyvoice", "qwen-tts")
LOOSE = "resem_librispeech_1246-124548-0000"  # a loose file in the input root: its own speaker
SOURCES: dict[str, Path | tuple[str, str]] = {
    "alice/phone_memo.m4a": MEMO,  # clean continuous reading (cut, see CUT_S)
    "alice/broken.m4a": SAMPLES / "alice" / "broken.m4a",  # an upload cut off halfway
    "bob/takes/take_1.m4a": SAMPLES / "bob" / "takes" / "take_1.m4a",  # 4.9 s
    "bob/takes/take_2.m4a": SAMPLES / "bob" / "takes" / "take_2.m4a",  # 4.3 s
    "bob/takes/take_5.m4a": SAMPLES / "bob" / "takes" / "take_5.m4a",  # 4.7 s
    "dave/broken.m4a": SAMPLES / "alice" / "broken.m4a",  # the same bytes as alice's
    "erin/arctic_a0003.wav": ("speech", "pra_cmu_arctic_us_aew_a0003.wav"),  # 3.5 s
    f"{LOOSE}.flac": ("speech", f"{LOOSE}.flac"),  # LibriSpeech, 16 kHz FLAC (cut, see CUT_S)
}
CUT_S = {"alice/phone_memo.m4a": 12.5, f"{LOOSE}.flac": 11.5}
"""Inputs copied as their first seconds only: long enough for a 10-12.5 s clip of every family, which
DNSMOS scores in 1-2 segments (the whole 53 s memo and 14.4 s LibriSpeech file give clips it scores in
3 and 10: ``tests/_samples.py``)."""
EMPTY = "dave/empty.wav"  # zero bytes
HELD_S: dict[str, float] = {}
"""Seconds each cut input holds, as :func:`_samples.cut` counted them (filled by the ``corpus`` fixture)."""
SPEAKERS = ["alice", "bob", "dave", "erin", LOOSE]


def _source(rel: str) -> Path:
    """The file input ``rel`` is copied from (a real recording through the corpus lookup)."""
    source = SOURCES[rel]
    return source if isinstance(source, Path) else corpus_file(*source)


def _config() -> Any:
    return load_config(slow_measures=False)


@pytest.fixture(scope="module", autouse=True)
def _dnsmos_once() -> Iterator[None]:
    with dnsmos_once():  # the clips of the repeated runs and of `check` are the reference run's
        yield


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared input folder (copies, so no recording of the corpus is touched)."""
    root = tmp_path_factory.mktemp("corpus") / "in"
    for rel in SOURCES:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel in CUT_S:
            HELD_S[rel] = cut(_source(rel), target, CUT_S[rel])
        else:
            shutil.copyfile(_source(rel), target)
    (root / EMPTY).write_bytes(b"")
    return root


@pytest.fixture(scope="module")
def reference(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OUT of an uninterrupted serial run over ``corpus`` for :data:`FAMILIES` (do not modify it)."""
    assert ENV_FAMILIES_DIR not in os.environ
    out = tmp_path_factory.mktemp("reference") / "out"
    run(corpus, out, families=FAMILIES, config=_config(), executor="serial")
    return out


# ------------------------------------------------------------------------------------------- helpers


def _rows(out: Path, name: str) -> list[dict[str, Any]]:
    return jsonl(out / name)


def _digests(out: Path) -> dict[str, str]:
    """sha256 of every file under ``clips/`` and ``rejected/``, by path relative to OUT."""
    found = {}
    for folder in ("clips", "rejected"):
        for path in sorted((out / folder).rglob("*")) if (out / folder).exists() else []:
            if path.is_file():
                found[path.relative_to(out).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _mtimes(out: Path) -> dict[str, int]:
    return {p.relative_to(out).as_posix(): p.stat().st_mtime_ns for p in (out / "clips").rglob("*.wav")}


def _copy_out(reference: Path, target: Path) -> Path:
    shutil.copytree(reference, target, copy_function=shutil.copy2)  # copy2 keeps mtime_ns
    return target


def _temp_files(out: Path) -> list[str]:
    return sorted(
        p.relative_to(out).as_posix()
        for p in out.rglob(".*")
        if p.is_file() and (p.name.endswith(".tmp") or p.name.startswith(".write-test"))
    )


def _env() -> dict[str, str]:
    """The environment of a ``voiceprep`` process: this one's, without a families folder override."""
    return process_env(drop=[ENV_FAMILIES_DIR])


def _voiceprep(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``voiceprep ARGS`` in this process, with the environment of :func:`_env`."""
    return voiceprep(*args, drop=[ENV_FAMILIES_DIR])


def _run_yaml(tmp_path: Path) -> Path:
    """A --config file equal to :func:`_config` plus a serial executor (not part of any cache key)."""
    path = tmp_path / "run.yaml"
    path.write_text("slow_measures: false\nexecutor: serial\n")
    return path


def _cli_args(corpus: Path, out: Path, config: Path, *extra: str) -> list[str]:
    families = [arg for name in FAMILIES for arg in ("--family", name)]
    return ["run", str(corpus), "--out", str(out), *families, "--config", str(config), *extra]


# ------------------------------------------------------------------------------------------- speakers


def _touch_tree(root: Path, names: list[str]) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")  # the scan reads names only


def test_subfolders_are_speakers_and_loose_files_their_own(tmp_path: Path) -> None:
    _touch_tree(
        tmp_path,
        [
            "alice/a.wav",
            "alice/2024/b.mp3",
            "alice/2024/deep/c.flac",
            "bob/x.m4a",
            "Loose One.wav",
            "carol.flac",
        ],
    )
    (tmp_path / "notes.txt").write_text("not audio")
    found = {f.path: f.speaker for f in find_inputs(tmp_path)}
    assert found == {
        "Loose One.wav": "Loose One",
        "alice/2024/b.mp3": "alice",
        "alice/2024/deep/c.flac": "alice",
        "alice/a.wav": "alice",
        "bob/x.m4a": "bob",
        "carol.flac": "carol",
    }
    one = find_inputs(tmp_path, speaker="Zoe")
    assert {f.speaker for f in one} == {"Zoe"} and len(one) == 6
    single = find_inputs(tmp_path / "alice" / "2024" / "b.mp3")
    assert [(f.path, f.speaker) for f in single] == [("b.mp3", "b")]


def test_speaker_map_overrides_per_file_with_or_without_header(tmp_path: Path) -> None:
    _touch_tree(tmp_path / "in", ["alice/a.wav", "alice/b.wav", "carol.flac"])
    with_header = tmp_path / "map.csv"
    # Written by a spreadsheet: a byte-order mark, a header, CRLF line ends, a "./" path.
    with_header.write_bytes("\ufeffpath,speaker\r\n./alice/b.wav,Bob\r\ncarol.flac,Carol C\r\n".encode())
    found = {f.path: f.speaker for f in find_inputs(tmp_path / "in", speaker_map=with_header)}
    assert found == {"alice/a.wav": "alice", "alice/b.wav": "Bob", "carol.flac": "Carol C"}
    bare = tmp_path / "bare.csv"
    bare.write_text("# who is who\nalice/a.wav,Ann\n")
    found = {f.path: f.speaker for f in find_inputs(tmp_path / "in", speaker="All", speaker_map=bare)}
    assert found == {"alice/a.wav": "Ann", "alice/b.wav": "All", "carol.flac": "All"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("path,speaker\nalice/a.wav\n", "line 2"),  # one column
        ("alice/a.wav,\n", "line 1"),  # empty speaker
        ("alice/a.wav,Ann\nalice/typo.wav,Ann\n", "alice/typo.wav"),  # a file the input does not hold
    ],
)
def test_bad_speaker_map_is_a_run_error(tmp_path: Path, text: str, words: str) -> None:
    _touch_tree(tmp_path / "in", ["alice/a.wav"])
    bad = tmp_path / "map.csv"
    bad.write_text(text)
    with pytest.raises(RunError, match=words):
        find_inputs(tmp_path / "in", speaker_map=bad)
    with pytest.raises(RunError, match="cannot read"):
        find_inputs(tmp_path / "in", speaker_map=tmp_path / "missing.csv")


def test_speakers_sharing_a_clip_folder_are_refused_before_any_work(tmp_path: Path) -> None:
    _touch_tree(tmp_path / "in", ["Bob Smith/a.wav", "Bob_Smith/b.wav"])
    out = tmp_path / "out"
    with pytest.raises(RunError, match=r"Bob Smith.*Bob_Smith.*clips/Bob_Smith"):
        run(tmp_path / "in", out, families=["qwen-tts"], config=_config(), executor="serial")
    assert not (out / "recordings.jsonl").exists()


def test_an_output_folder_inside_the_input_is_not_read_as_input(tmp_path: Path) -> None:
    root = tmp_path / "in"
    (root / "erin").mkdir(parents=True)
    shutil.copyfile(_source("erin/arctic_a0003.wav"), root / "erin" / "a.wav")
    earlier_clip = root / "out" / "clips" / "alice" / "qwen-tts.wav"  # what an earlier run left there
    earlier_clip.parent.mkdir(parents=True)
    shutil.copyfile(_source("erin/arctic_a0003.wav"), earlier_clip)
    res = load_run(run(root, root / "out", families=["qwen-tts"], config=_config(), executor="serial"))
    assert [r["path"] for r in res.recording_rows] == ["erin/a.wav"]
    assert [(c["speaker"], c["status"]) for c in res.clip_rows] == [("erin", "rejected")]


# ------------------------------------------------------------------------------------------- end to end


def test_recordings_manifest_has_one_row_per_file_with_the_field_contract(
    corpus: Path, reference: Path
) -> None:
    rows = _rows(reference, "recordings.jsonl")
    assert [r["path"] for r in rows] == sorted([*SOURCES, EMPTY])
    by_path = {r["path"]: r for r in rows}
    for path, row in by_path.items():
        assert row["speaker"] == (path.split("/")[0] if "/" in path else Path(path).stem)
        assert not Path(path).is_absolute() and "\\" not in path
        for key in ("sha256", "status", "reasons", "message", "probe", "metrics"):
            assert key in row, (path, key)
        assert row["sha256"] == hashlib.sha256((corpus / path).read_bytes()).hexdigest()

    memo = by_path["alice/phone_memo.m4a"]
    memo_s = HELD_S["alice/phone_memo.m4a"]
    assert memo["status"] == "ok"
    probe = memo["probe"]
    assert (probe["format"], probe["codec"], probe["sample_rate"], probe["channels"]) == (
        "m4a",
        "aac",
        44100,
        1,
    )
    assert probe["duration_s"] == pytest.approx(memo_s, abs=0.05)
    assert probe["bytes"] == (corpus / "alice/phone_memo.m4a").stat().st_size
    assert set(FAST_PASS_METRICS) <= set(memo["metrics"])
    assert memo["metrics"]["duration_s"] == pytest.approx(memo_s, abs=0.05)
    # Speech segments (for the report's waveforms): ordered, inside the file, adding up to the speech.
    spans = memo["speech_segments"]
    assert spans and all(0.0 <= a < b <= memo_s + 0.05 for a, b in spans)
    assert all(b1 <= a2 for (_, b1), (a2, _) in itertools.pairwise(spans))
    assert sum(b - a for a, b in spans) == pytest.approx(memo["metrics"]["speech_s"], abs=0.05)
    loose = by_path[f"{LOOSE}.flac"]
    assert (loose["probe"]["format"], loose["probe"]["sample_rate"]) == ("flac", 16000)

    ok = [p for p, r in by_path.items() if r["status"] == "ok"]
    assert sorted(ok) == sorted(p for p in SOURCES if "broken" not in p)
    for path in ("alice/broken.m4a", "dave/broken.m4a"):
        row = by_path[path]
        assert (row["status"], row["reasons"]) == ("failed", ["decode_failed"])
    # The two copies share one cache entry: the message names no file (each row's path does).
    messages = {by_path[p]["message"] for p in ("alice/broken.m4a", "dave/broken.m4a")}
    assert len(messages) == 1 and all(
        m and "broken.m4a" not in m and str(corpus) not in m for m in messages
    ), messages
    assert (by_path[EMPTY]["status"], by_path[EMPTY]["reasons"]) == ("failed", ["empty"])


def test_vad_aggressiveness_reaches_the_fast_pass(corpus: Path, tmp_path: Path) -> None:
    """A stricter VAD (3) measures less speech than a lenient one (0); each has its own cache entry."""
    (item,) = [i for i in find_inputs(corpus) if i.path == f"{LOOSE}.flac"]
    speech = {}
    for level in (0, 3):
        config = load_config(slow_measures=False, vad_aggressiveness=level)
        row = analyze_recording(item, cache_dir=tmp_path, config=config)
        speech[level] = row.metrics["speech_s"]
        assert cached_recording(item, cache_dir=tmp_path, config=config) == row
    assert speech[3] < speech[0]


def test_a_cached_row_that_is_not_a_json_object_is_analysed_again(corpus: Path, tmp_path: Path) -> None:
    """A recording's cached row damaged into other JSON (a list) is a cache miss, as unreadable JSON is, not
    a crash of the run."""
    (item,) = [i for i in find_inputs(corpus) if i.path == f"{LOOSE}.flac"]
    config = load_config(slow_measures=False)
    row = analyze_recording(item, cache_dir=tmp_path, config=config)
    (cached,) = (tmp_path / "recordings").glob("*.json")
    cached.write_text("[1, 2]")
    assert cached_recording(item, cache_dir=tmp_path, config=config) is None
    assert analyze_recording(item, cache_dir=tmp_path, config=config) == row


def test_clips_manifest_has_a_row_per_speaker_and_family_with_known_verdicts(reference: Path) -> None:
    rows = _rows(reference, "clips.jsonl")
    assert [(r["speaker"], r["family"]) for r in rows] == [(s, f) for s in sorted(SPEAKERS) for f in FAMILIES]
    status = {(r["speaker"], r["family"]): r["status"] for r in rows}
    # 12.5 s and 11.5 s of clean continuous speech: every family gets a clip.
    for who in ("alice", LOOSE):
        assert status[(who, "cosyvoice")] == status[(who, "qwen-tts")] == "ready"
    # Three takes of 4.3-4.9 s (runs of 3.5-4 s): too short alone, so qwen-tts (3 s run rule) gets them
    # joined; no take can hold the 5 s continuous run cosyvoice asks for.
    assert load_family("qwen-tts").limits.min_speech_run_s.value <= 3 < 4.3
    assert load_family("cosyvoice").limits.min_speech_run_s.value == 5 > 4.8
    assert status[("bob", "qwen-tts")] == "ready"
    by_key = {(r["speaker"], r["family"]): r for r in rows}
    assert by_key[("bob", "qwen-tts")]["assembled"] is True
    assert status[("bob", "cosyvoice")] == "rejected"
    assert "no_continuous_speech" in by_key[("bob", "cosyvoice")]["reasons"]
    # One 3.5 s file: below every family's 10 s minimum.
    for family in FAMILIES:
        assert load_family(family).delivery.duration_s.min >= 10
        assert status[("erin", family)] == "rejected"
        assert "too_short" in by_key[("erin", family)]["reasons"]
        assert by_key[("erin", family)]["clip"] is None
    for row in rows:
        for key in ("reasons", "clip", "segments", "duration_s", "sample_rate", "assembled", "metrics"):
            assert key in row
        assert row["checks"] is not None and row["alternatives"] is not None
        assert row["voice_id"] is None
        # One name per concept: the clip's hash is clip_sha256; a plan's spans are its pieces only.
        assert row["schema_version"] == 2 and "sha256" not in row
        assert all("segments" not in plan for plan in [row["plan"] or {}, *row["alternatives"]])


def test_recordings_say_which_families_used_them(reference: Path) -> None:
    used = {r["path"]: r["used_in"] for r in _rows(reference, "recordings.jsonl")}
    joined = {p["path"] for p in next(
        r for r in _rows(reference, "clips.jsonl") if (r["speaker"], r["family"]) == ("bob", "qwen-tts")
    )["plan"]["pieces"]}  # fmt: skip
    assert used["alice/phone_memo.m4a"] == list(FAMILIES)
    assert used["alice/broken.m4a"] == [] and used[EMPTY] == []
    # bob's takes are in qwen-tts's joined clip only (cosyvoice rejected them: no run long enough, no clip)
    for path in (p for p in SOURCES if p.startswith("bob/")):
        assert used[path] == (["qwen-tts"] if path in joined else [])
    assert len(joined) >= 2


def test_a_speaker_with_only_unreadable_files_gets_failed_clip_rows_with_their_reasons(
    reference: Path,
) -> None:
    for row in _rows(reference, "clips.jsonl"):
        if row["speaker"] == "dave":
            assert row["status"] == "failed"
            assert sorted(row["reasons"]) == ["decode_failed", "empty"]
            assert row["clip"] is None and row["segments"] == []
    assert not (reference / "clips" / "dave").exists()


def test_ready_clips_are_files_in_the_family_delivery_format(corpus: Path, reference: Path) -> None:
    recordings = {r["path"]: r for r in _rows(reference, "recordings.jsonl")}
    ready = [r for r in _rows(reference, "clips.jsonl") if r["status"] == "ready"]
    assert len(ready) == 5
    for row in ready:
        spec = load_family(row["family"])
        delivery = spec.delivery
        path = reference / row["clip"]
        assert row["clip"] == f"clips/{row['speaker']}/{row['family']}.{delivery.format}"
        info = sf.info(str(path))
        assert (info.format, info.subtype, info.channels) == ("WAV", "PCM_16", 1)
        assert info.samplerate == row["sample_rate"]
        assert row["sample_rate"] in {delivery.sample_rate, delivery.high_sample_rate}
        assert row["duration_s"] == pytest.approx(info.frames / info.samplerate, abs=0.002)
        assert delivery.duration_s.min <= row["duration_s"] <= delivery.duration_s.max
        assert row["metrics"]["lufs"] == pytest.approx(delivery.target_lufs, abs=1.0)
        assert row["metrics"]["true_peak_dbtp"] <= delivery.true_peak_max_dbtp + 0.3
        assert row["clip_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert all(c["verdict"] != "fail" for c in row["checks"])
        assert len(row["alternatives"]) <= 2
        assert row["segments"], row
        for seg in row["segments"]:
            source = recordings[seg["path"]]
            assert source["speaker"] == row["speaker"] and source["status"] == "ok"
            assert 0 <= seg["start_s"] < seg["end_s"] <= source["probe"]["duration_s"] + 0.01
        if not row["assembled"]:
            assert len({s["path"] for s in row["segments"]}) == 1
    bob = next(r for r in ready if r["speaker"] == "bob")
    assert len({s["path"] for s in bob["segments"]}) >= 2  # joined takes
    assert sorted(_digests(reference)) == sorted(r["clip"] for r in ready)  # nothing else was left behind


def test_every_ready_clip_passes_voiceprep_check_for_its_family(reference: Path) -> None:
    ready = [r for r in _rows(reference, "clips.jsonl") if r["status"] == "ready"]
    by_bytes: dict[str, tuple[Path, list[str]]] = {}
    for row in ready:  # identical files (same window for two families) are checked once for both
        path, families = by_bytes.setdefault(row["clip_sha256"], (reference / row["clip"], []))
        families.append(row["family"])
    for path, families in by_bytes.values():
        for result in check_families(path, families, dnsmos=True):
            assert result.verdict != "fail", (path, result.family, result.reasons)
            assert result.metrics["dnsmos_ovrl"] is not None


def test_run_json_has_fingerprint_counts_and_timings(corpus: Path, reference: Path) -> None:
    info = json.loads((reference / "run.json").read_text())
    assert info["config_fingerprint"] == fingerprint(_config().model_dump(mode="json"))
    assert info["families"] == list(FAMILIES)
    assert info["input"] == str(corpus.resolve())
    counts = info["counts"]
    assert (counts["recordings"], counts["recordings_ok"], counts["recordings_failed"]) == (9, 6, 3)
    assert counts["speakers"] == 5
    assert counts["clips"] == {
        "cosyvoice": {"failed": 1, "ready": 2, "rejected": 2},
        "qwen-tts": {"failed": 1, "ready": 3, "rejected": 1},
    }
    assert set(info["timings"]) == {"analyze_s", "voices_s", "clips_s"}
    assert all(v >= 0 for v in info["timings"].values())
    assert info["seconds"] >= info["timings"]["analyze_s"] + info["timings"]["clips_s"] - 0.01
    assert info["voiceprep"] and info["python"]


# ------------------------------------------------------------------------------------------- resume


@pytest.fixture
def work_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Record every decode, analysis, render and re-check this process makes (serial runs only)."""
    log: list[str] = []

    def spy(module: Any, name: str) -> None:
        original = getattr(module, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            log.append(f"{name}({args[0] if args else ''})")
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    original_blocks = pipeline.audio.io.AudioReader.blocks

    def blocks(self: Any, *args: Any, **kwargs: Any) -> Any:
        log.append("decode")
        return original_blocks(self, *args, **kwargs)

    monkeypatch.setattr(pipeline.audio.io.AudioReader, "blocks", blocks)
    spy(pipeline.audio.io, "probe")
    spy(pipeline.audio.io, "sha256_file")
    spy(pipeline.analysis.fastpass, "analyze_file")
    spy(pipeline.render.clip, "render")
    spy(pipeline.analysis.inspection, "check")
    yield log


def test_an_identical_second_run_decodes_nothing_and_writes_the_same(
    corpus: Path, reference: Path, tmp_path: Path, work_log: list[str]
) -> None:
    out = _copy_out(reference, tmp_path / "out")
    before = _mtimes(out)
    run(corpus, out, families=FAMILIES, config=_config(), executor="serial")
    inputs_touched = [entry for entry in work_log if str(corpus) in entry]
    assert "decode" not in work_log and inputs_touched == [], work_log
    assert not any(e.startswith(("analyze_file", "render", "check", "probe")) for e in work_log), work_log
    for name in ("recordings.jsonl", "clips.jsonl"):
        assert (out / name).read_text() == (reference / name).read_text()
    assert _mtimes(out) == before


def test_changing_one_family_spec_redoes_only_that_family_and_changing_it_back_restores_it(
    corpus: Path, reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, work_log: list[str]
) -> None:
    out = _copy_out(reference, tmp_path / "out")
    before = _mtimes(out)
    families = tmp_path / "families"
    shutil.copytree(families_dir(), families)
    spec_file = families / "qwen-tts.yaml"
    spec = yaml.safe_load(spec_file.read_text())
    gate = next(g for g in spec["gates"] if g["metric"] == "bandwidth_hz")
    gate["warn"] = 4200  # the 16 kHz LibriSpeech source (7.7 kHz of content, class wide) passes
    del gate["fail"]  # (a fail below the warn would have to lie under 4200, the lowest class boundary)
    spec["delivery"]["target_lufs"] = -23  # and the clips come out 3 dB quieter
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    monkeypatch.setenv(ENV_FAMILIES_DIR, str(families))

    run(corpus, out, families=FAMILIES, config=_config(), executor="serial")
    assert "decode" in work_log  # rendering reads the chosen windows again...
    assert not any(
        e.startswith("analyze_file") and str(corpus) in e for e in work_log
    )  # ...analysis is cached
    after = _mtimes(out)
    for clip, mtime in before.items():
        assert (after[clip] == mtime) == clip.endswith("/cosyvoice.wav"), clip
    old = {(r["speaker"], r["family"]): r for r in _rows(reference, "clips.jsonl")}
    new = {(r["speaker"], r["family"]): r for r in _rows(out, "clips.jsonl")}
    assert {k: v for k, v in new.items() if k[1] == "cosyvoice"} == {
        k: v for k, v in old.items() if k[1] == "cosyvoice"
    }
    assert "narrowband" in old[(LOOSE, "qwen-tts")]["reasons"]
    assert "narrowband" not in new[(LOOSE, "qwen-tts")]["reasons"]
    for key, row in new.items():
        if key[1] == "qwen-tts" and row["status"] == "ready":
            assert row["metrics"]["lufs"] == pytest.approx(-23, abs=1.0)
            assert row["clip_sha256"] != old[key]["clip_sha256"]
            assert row["clip_sha256"] == hashlib.sha256((out / row["clip"]).read_bytes()).hexdigest()

    # Back to the original spec: the old cache entries match again, but the files at their paths hold the
    # -23 LUFS renders, so they must be rendered again rather than trusted.
    monkeypatch.delenv(ENV_FAMILIES_DIR)
    run(corpus, out, families=FAMILIES, config=_config(), executor="serial")
    for name in ("recordings.jsonl", "clips.jsonl"):
        assert _rows(out, name) == _rows(reference, name)
    assert _digests(out) == _digests(reference)


# ------------------------------------------------------------------------------------------- SIGKILL


def _dead_pid() -> int:
    """The pid of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _count(folder: Path, pattern: str) -> int:
    return sum(1 for p in folder.glob(pattern) if p.is_file()) if folder.exists() else 0


def test_a_run_killed_at_several_points_and_restarted_equals_an_uninterrupted_one(
    corpus: Path, reference: Path, tmp_path: Path, zygote: Zygote
) -> None:
    out = tmp_path / "out"
    args = _cli_args(corpus, out, _run_yaml(tmp_path))
    cache = out / ".cache"

    def killed(event: str, pattern: str, nth: int = 1) -> None:
        """The command in a process of its own, killed at the nth ``event`` on a file matching ``pattern``."""
        at = {"event": event, "path": str(out / pattern), "nth": nth}
        assert zygote.run(*args, env=_env(), kill_at=at)["signal"] == signal.SIGKILL, at

    # 1. right after the first recording is analysed and cached
    killed("replace:after", ".cache/recordings/*.json")
    assert _count(cache / "recordings", "*.json") == 1
    # 2. the resumed command, right after the first clip is cached
    killed("replace:after", ".cache/clips/*.json")
    assert _count(cache / "clips", "*.json") == 1
    # 3. in the middle of a clip task: two more clips rendered, the re-check of the second still running
    rendered = set((out / "clips").rglob("*.wav"))
    killed("replace:after", "clips/*.wav", nth=2)
    assert len(set((out / "clips").rglob("*.wav")) - rendered) == 2
    assert not (out / "run.json").exists()

    # What a kill in the middle of a write leaves behind (the kills above were not in one).
    gone = _dead_pid()  # the temporary names carry the writer's pid: the sweep removes those of the dead
    for leftover in (
        cache / "clips" / f".0123abcd.json.{gone}-0a1b2c3d4e5f.tmp",
        cache / "recordings" / ".0123abcd.npz.0a1b2c3d4e5f.tmp",  # an older version's name, under .cache
        out / "clips" / "alice" / f".qwen-tts.wav.{gone}-5f5f5f5f5f5f.tmp",
        out / f".clips.jsonl.{gone}-0a1b2c3d4e5f.tmp",
        out / f".write-test-{gone}",
    ):
        leftover.parent.mkdir(parents=True, exist_ok=True)
        leftover.write_bytes(b"half a file")

    final = _voiceprep(*args)  # the same command, resumed (in this process: it is not killed)
    assert final.returncode == 0, final.stderr
    for name in ("recordings.jsonl", "clips.jsonl"):
        assert _rows(out, name) == _rows(reference, name)
    assert _digests(out) == _digests(reference)
    assert _temp_files(out) == []


# ------------------------------------------------------------------------------------------- executors


@pytest.mark.parametrize("kind", ["processes", "a user's executor"])
def test_a_process_pool_or_any_executor_gives_the_serial_manifests(
    kind: str, corpus: Path, reference: Path, tmp_path: Path
) -> None:
    """Dask runs through the same loop (``client.get_executor()``); tests/test_executors.py covers it."""
    out = tmp_path / "out"
    with contextlib.ExitStack() as stack:
        executor = kind if kind == "processes" else stack.enter_context(ThreadPoolExecutor(2))
        assert run(corpus, out, families=FAMILIES, config=_config(), executor=executor, jobs=2) == out
    recorded = json.loads((out / "run.json").read_text())
    assert recorded["executor"] == ("processes" if kind == "processes" else "ThreadPoolExecutor")
    assert recorded["counts"] == json.loads((reference / "run.json").read_text())["counts"]
    for name in ("recordings.jsonl", "clips.jsonl"):
        assert _rows(out, name) == _rows(reference, name)
    assert _digests(out) == _digests(reference)
    assert not (out / "errors.log").exists()


# ------------------------------------------------------------------------------------------- CLI


def test_cli_run_prints_the_summary_exports_tables_and_exits_by_the_rules(
    corpus: Path, reference: Path, tmp_path: Path
) -> None:
    out = _copy_out(reference, tmp_path / "out")
    config = _run_yaml(tmp_path)
    proc = _voiceprep(*_cli_args(corpus, out, config, "--export", "parquet", "--export", "csv"))
    assert proc.returncode == 0, proc.stderr  # rejected and failed clips do not make the run fail
    lines = proc.stdout.splitlines()
    header = next(line for line in lines if "speaker" in line and "cosyvoice" in line)
    assert header.index("cosyvoice") < header.index("qwen-tts")
    cells = {who: next(line for line in lines if f" {who} " in line) for who in SPEAKERS}
    assert cells["alice"].count("ready") == 2
    assert cells["bob"].count("ready") == 1 and "rejected (no_continuous_speech)" in cells["bob"]
    assert cells["erin"].count("rejected") == 2 and "too_short" in cells["erin"]
    assert cells["dave"].count("failed (decode_failed)") == 2
    assert "9 recordings" in proc.stdout and "3 failed" in proc.stdout
    assert str(out) in proc.stdout

    recordings = _rows(out, "recordings.jsonl")
    memo = next(r for r in recordings if r["path"] == "alice/phone_memo.m4a")
    for fmt, read in (("parquet", pd.read_parquet), ("csv", pd.read_csv)):
        table = read(out / f"recordings.{fmt}")
        assert len(table) == 9 and {"path", "speaker", "status", "sha256"} <= set(table.columns)
        assert {f"metrics.{m}" for m in ("snr_db", "lufs", "longest_run_s")} <= set(table.columns)
        row = table[table["path"] == "alice/phone_memo.m4a"].iloc[0]
        assert row["metrics.snr_db"] == pytest.approx(memo["metrics"]["snr_db"])
        assert row["probe.sample_rate"] == 44100
        clips = read(out / f"clips.{fmt}")
        assert len(clips) == 10 and "metrics.lufs" in clips.columns
        assert sorted(clips["status"]) == sorted(r["status"] for r in _rows(out, "clips.jsonl"))

    strict = _voiceprep(*_cli_args(corpus, out, config, "--strict"))
    assert strict.returncode == 1  # some clips are not ready

    # The same command on a folder whose every clip is ready: --strict exits 0 (reusing the cache).
    only_alice = tmp_path / "alice_only"
    (only_alice / "alice").mkdir(parents=True)
    shutil.copyfile(corpus / "alice" / "phone_memo.m4a", only_alice / "alice" / "phone_memo.m4a")
    ready = _voiceprep(*_cli_args(only_alice, _copy_out(reference, tmp_path / "out2"), config, "--strict"))
    assert ready.returncode == 0, ready.stdout + ready.stderr
    assert ready.stdout.count("ready") >= 2


def test_cli_run_cannot_proceed_exit_3_and_usage_errors_exit_2(corpus: Path, tmp_path: Path) -> None:
    a_file = tmp_path / "out"
    a_file.write_text("not a folder")
    proc = _voiceprep("run", corpus, "--out", a_file, "--family", "qwen-tts")
    assert proc.returncode == 3
    assert [line for line in proc.stderr.splitlines() if line.strip()] == [
        f"voiceprep: cannot run: {a_file}: exists and is not a folder"
    ]
    assert a_file.read_text() == "not a folder"

    proc = _voiceprep("run", corpus, "--out", tmp_path / "new", "--family", "no-such-family")
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no-such-family" in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "new").exists()  # nothing was created before the family was known


def test_the_recheck_reuses_only_a_whole_clip_dnsmos() -> None:
    from types import SimpleNamespace

    from pipeline.batch.runner import _known_dnsmos

    scores = {"dnsmos_ovrl": 3.3, "dnsmos_sig": 3.6, "dnsmos_bak": 4.0}
    plain = SimpleNamespace(denoised=False, dnsmos_before=None, dnsmos_after=None)
    whole = SimpleNamespace(measures={**scores, "dnsmos_source": "window"})
    assert _known_dnsmos(whole, plain) == scores
    # A runner-up ranked on part of its DNSMOS cover: the re-check must measure the written clip itself.
    sampled = SimpleNamespace(
        measures={**scores, "dnsmos_source": "window_sample", "dnsmos_segments": 2, "dnsmos_cover": 4}
    )
    assert _known_dnsmos(sampled, plain) is None


# ------------------------------------------------------------------------------------------- clip tasks


def test_families_with_the_same_clip_duration_share_one_task_per_speaker() -> None:
    """CosyVoice and Qwen-TTS both deliver 10-20 s (their specs say so): one task per speaker, first;
    ElevenLabs (30-90 s) and MiniMax (10-60 s) alone."""
    assert load_family("cosyvoice").delivery.duration_s == load_family("qwen-tts").delivery.duration_s
    files = {who: (InputFile(path=f"{who}/a.wav", source=f"/in/{who}/a.wav", speaker=who),) for who in "ab"}
    families = ("cosyvoice", "elevenlabs", "minimax", "qwen-tts")
    groups = clip_groups([(family, files[who]) for who in "ab" for family in families])
    assert groups == [
        (("cosyvoice", "qwen-tts"), files["a"]),
        (("cosyvoice", "qwen-tts"), files["b"]),
        (("elevenlabs",), files["a"]),
        (("minimax",), files["a"]),
        (("elevenlabs",), files["b"]),
        (("minimax",), files["b"]),
    ]


def test_a_family_that_crashes_leaves_the_other_of_its_task_made(
    corpus: Path, reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = pipeline.batch.runner.make_clip

    def make_clip(task: Any, **kwargs: Any) -> Any:
        if task[0] == "qwen-tts":
            raise ZeroDivisionError("planted")
        return original(task, **kwargs)

    monkeypatch.setattr(pipeline.batch.runner, "make_clip", make_clip)
    out = tmp_path / "out"
    run(corpus, out, families=FAMILIES, config=_config(), executor="serial")
    rows = {(r["speaker"], r["family"]): r for r in _rows(out, "clips.jsonl")}
    expected = {(r["speaker"], r["family"]): r for r in _rows(reference, "clips.jsonl")}
    assert rows.keys() == expected.keys()
    crashed = {key for key, row in rows.items() if "internal_error" in row["reasons"]}
    made = {who for (who, family), row in rows.items() if family == "cosyvoice" and row["status"] != "failed"}
    assert crashed == {(who, "qwen-tts") for who in made} and made
    assert {rows[key]["error_type"] for key in crashed} == {"ZeroDivisionError"}
    assert all(row == expected[key] for key, row in rows.items() if key not in crashed)
    assert (
        json.loads((out / "run.json").read_text())["tasks"]
        == json.loads((reference / "run.json").read_text())["tasks"]
    )


def test_the_fast_pass_takes_a_second_thread_only_where_a_core_would_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pipeline.batch.executors

    monkeypatch.setattr(pipeline.batch.executors, "default_jobs", lambda: 4)  # this process's CPUs
    assert meter_threads("processes", 2, None, 1) == 2  # one long recording on two workers
    assert meter_threads("processes", 4, None, 2) == 2
    assert meter_threads("processes", 2, None, 2) == 1  # every core has a file of its own
    assert meter_threads("processes", 1, None, 1) == 1
    assert meter_threads("dask", None, None, 1) == 2  # the LocalCluster's two workers
    assert meter_threads("dask", None, "tcp://127.0.0.1:8786", 1) == 1  # someone else's workers
    assert meter_threads("serial", 4, None, 1) == 1
    with ThreadPoolExecutor(4) as pool:
        assert meter_threads(pool, 4, None, 1) == 1
    monkeypatch.setattr(pipeline.batch.executors, "default_jobs", lambda: 1)
    assert meter_threads("processes", 2, None, 1) == 1  # --jobs 2 pinned to one core
