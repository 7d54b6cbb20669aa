"""``pipeline.load_run``: a real run folder as pandas tables, equal to its JSONL rows.

One small serial run (demo recordings from ``data/samples``, the two longest cut to their first 11-13 s,
two families, no slow measures) feeds most tests: a clean speaker (``alice``, with a band-limited
runner-up and a corrupt upload beside her memo), a clipped one whose clip is rejected (``bob``), one
with only a 4.3 s take (``erin``: nothing can be cut) and one with only the corrupt file (``dave``:
failed rows). Expected values come from the JSONL files read here with ``json``,
from the recordings (``data/README.md``) and from an independent reader (soundfile), never from an
earlier output of ``load_run``.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from _cli import jsonl
from _dnsmos import dnsmos_once
from _samples import SAMPLES, cut

import pipeline
from pipeline.batch.config import load_config
from pipeline.batch.manifest import ManifestError
from pipeline.enroll.ledger import Ledger, VoiceRecord
from pipeline.errors import InvalidArgument, VoiceprepError
from pipeline.report.results import (
    CLIP_SCHEMA,
    METRIC_COLUMNS,
    PROBE_COLUMNS,
    RECORDING_SCHEMA,
    SCORE_PARTS,
    load_run,
)
from pipeline.rules.metrics import FAST_PASS_METRICS
from pipeline.selection.scoring import WEIGHTS

FAMILIES = ("cosyvoice", "qwen-tts")
SOURCES = {
    "alice/phone_memo.m4a": "alice/phone_memo.m4a",  # clean continuous reading (its first 16.5 s: a window after its 1.8 s pause)
    "alice/upsampled_16k.wav": "alice/upsampled_16k.wav",  # clean but band-limited: a runner-up window
    "alice/broken.m4a": "alice/broken.m4a",  # an upload cut off halfway: decode_failed
    "bob/clipped.flac": "alice/clipped.flac",  # 2 % of samples clipped everywhere (its first 11.5 s)
    "erin/take_1.m4a": "bob/takes/take_1.m4a",  # 4.3 s: too short for either family
    "dave/broken.m4a": "alice/broken.m4a",  # nothing readable at all
}
CUT_S = {"alice/phone_memo.m4a": 16.5, "bob/clipped.flac": 11.5}
"""Inputs copied as their first seconds only: each still gives a clip of 10-12 s (``tests/_samples.py``)."""


def _run(root: Path, out: Path, progress: Any = None) -> Path:
    config = load_config(slow_measures=False)
    pipeline.run(root, out, families=FAMILIES, config=config, executor="serial", progress=progress)
    return out


@pytest.fixture(scope="module", autouse=True)
def _dnsmos_once() -> Iterator[None]:
    with dnsmos_once():  # each speaker's clips for the two families are the same audio
        yield


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("results") / "in"
    for rel, sample in SOURCES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        if rel in CUT_S:
            cut(SAMPLES / sample, root / rel, CUT_S[rel])
        else:
            shutil.copyfile(SAMPLES / sample, root / rel)
    return root


MID_RUN: list[tuple[str, int, int, bool]] = []
"""(event, recordings, clips, run.json loaded) seen by load_run while the fixture's run was going."""


@pytest.fixture(scope="module")
def out(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OUT of one finished run over ``corpus`` (read only: copy it before changing anything).

    The run's progress callback loads the run folder after every row the runner appends.
    """
    target = tmp_path_factory.mktemp("results") / "out"

    def snapshot(event: str, data: dict[str, Any]) -> None:
        if event in {"recording", "clip"}:
            res = load_run(target)
            MID_RUN.append((event, len(res.recordings), len(res.clips), bool(res.run)))

    return _run(corpus, target, progress=snapshot)


def _same(cell: Any, expected: Any) -> bool:
    """A DataFrame cell holds the JSON value: ``None`` reads as NaN/NA, lists and dicts stay equal."""
    if expected is None:
        return cell is None or cell is pd.NA or (isinstance(cell, float) and math.isnan(cell))
    if isinstance(expected, bool):
        return bool(cell) is expected
    if isinstance(expected, int | float):
        return float(cell) == float(expected)
    return cell == expected


def _mismatches(df: pd.DataFrame, rows: list[dict[str, Any]], spread: tuple[str, ...]) -> list[str]:
    bad = []
    for i, row in enumerate(rows):
        for key, value in row.items():
            if key in spread and isinstance(value, dict):
                items = [(f"{key}.{k}", v) for k, v in value.items()]
            elif key in spread and value is None:
                items = [(c, None) for c in df.columns if c.startswith(f"{key}.")]
            else:
                items = [(key, value)]
            bad += [
                f"row {i} {col}: {df.at[i, col]!r} != {v!r}"
                for col, v in items
                if not _same(df.at[i, col], v)
            ]
    return bad


# ------------------------------------------------------------------------------------------- tables


def test_recordings_and_clips_hold_every_jsonl_row_and_value_in_file_order(out: Path) -> None:
    res = load_run(out)
    recordings, clips = jsonl(out / "recordings.jsonl"), jsonl(out / "clips.jsonl")
    assert len(recordings) == len(SOURCES) and len(clips) == 4 * len(FAMILIES)
    assert res.recordings["path"].tolist() == [r["path"] for r in recordings]
    assert list(zip(res.clips["speaker"], res.clips["family"], strict=True)) == [
        (c["speaker"], c["family"]) for c in clips
    ]
    assert _mismatches(res.recordings, recordings, ("probe", "metrics")) == []
    assert _mismatches(res.clips, clips, ("metrics",)) == []
    assert res.run == json.loads((out / "run.json").read_text())
    assert res.out_dir == out.resolve()


def test_columns_follow_the_documented_schema_with_stable_dtypes(out: Path) -> None:
    res = load_run(out)
    assert list(res.recordings.columns[: len(RECORDING_SCHEMA)]) == list(RECORDING_SCHEMA)
    assert list(res.clips.columns[: len(CLIP_SCHEMA)]) == list(CLIP_SCHEMA)
    rec, clips = res.recordings.dtypes, res.clips.dtypes
    assert rec["metrics.snr_db"] == "float64" and rec["metrics.dnsmos_ovrl"] == "float64"  # never measured
    assert rec["metrics.pauses_over_2s"] == "Int64" and rec["probe.sample_rate"] == "Int64"
    assert rec["probe.duration_s"] == "float64"
    assert pd.api.types.is_string_dtype(rec["status"]) and pd.api.types.is_string_dtype(rec["error_type"])
    assert rec["reasons"] == np.dtype("O") and rec["metrics.channel_choice"] == np.dtype("O")
    assert (
        clips["assembled"] == np.dtype("bool")
        and clips["score"] == "float64"
        and clips["sample_rate"] == "Int64"
    )
    assert pd.api.types.is_string_dtype(clips["clip_path"]) and clips["failed_rules"] == np.dtype("O")
    # the metrics and probe columns name exactly what the runner writes
    speaker = ["speaker_similarity", "other_voice_s", "other_voice_spans"]  # issue 9: who speaks
    assert list(METRIC_COLUMNS) == [*FAST_PASS_METRICS, "pauses", *speaker]
    written = next(r["probe"] for r in jsonl(out / "recordings.jsonl") if r["probe"])
    assert tuple(PROBE_COLUMNS) == tuple(written)
    assert tuple(WEIGHTS) == SCORE_PARTS


def test_a_run_where_every_file_failed_has_the_same_columns_and_dtypes(out: Path, tmp_path: Path) -> None:
    single = tmp_path / "broken.m4a"  # a run over one file: its own speaker, named by its file name
    shutil.copyfile(SAMPLES / "alice" / "broken.m4a", single)
    failed = load_run(_run(single, tmp_path / "out"))
    full = load_run(out)
    assert failed.recordings["status"].tolist() == ["failed"]
    assert failed.recordings["source"].tolist() == [str(single.resolve())]
    assert failed.recordings.dtypes.to_dict() == full.recordings.dtypes.to_dict()
    assert list(failed.clips.columns[: len(CLIP_SCHEMA)]) == list(full.clips.columns[: len(CLIP_SCHEMA)])
    assert failed.windows().empty and list(failed.windows().columns[:11]) == list(full.windows().columns[:11])


def test_failed_recordings_are_rows_with_their_reason_and_no_metrics(corpus: Path, out: Path) -> None:
    rec = load_run(out).recordings.set_index("path")
    for path in ("alice/broken.m4a", "dave/broken.m4a"):
        assert rec.at[path, "status"] == "failed"
        assert rec.at[path, "reasons"] == ["decode_failed"]
        assert "FFmpeg" in rec.at[path, "message"] and path not in rec.at[path, "message"]  # path names it
        assert rec.loc[path, [f"metrics.{m}" for m in ("snr_db", "duration_s", "lufs")]].isna().all()
    assert rec.at["alice/phone_memo.m4a", "metrics.snr_db"] > 30  # the clean reference memo
    assert rec.at["alice/phone_memo.m4a", "probe.sample_rate"] == 44100
    source = Path(rec.at["bob/clipped.flac", "source"])
    assert source.is_absolute() and source == (corpus / "bob" / "clipped.flac").resolve()


def test_derived_clip_columns_summarise_paths_checks_and_scores(out: Path) -> None:
    res = load_run(out)
    clips = res.clips.set_index(["speaker", "family"])
    for row in jsonl(out / "clips.jsonl"):
        key = (row["speaker"], row["family"])
        assert clips.at[key, "failed_rules"] == [c["rule"] for c in row["checks"] if c["verdict"] == "fail"]
        assert clips.at[key, "warned_rules"] == [c["rule"] for c in row["checks"] if c["verdict"] == "warn"]
        assert _same(clips.at[key, "score"], (row["plan"] or {}).get("score"))
        if row["clip"]:
            assert Path(clips.at[key, "clip_path"]) == out.resolve() / row["clip"]
            assert Path(clips.at[key, "clip_path"]).is_file()
        else:
            assert pd.isna(clips.at[key, "clip_path"])
    for family in FAMILIES:
        assert clips.at[("alice", family), "status"] == "ready"
        assert clips.at[("bob", family), "status"] == "rejected"
        assert "gate:clipped_ratio" in clips.at[("bob", family), "failed_rules"]
        assert "/rejected/" in clips.at[("bob", family), "clip_path"]
        assert clips.at[("erin", family), "status"] == "rejected" and pd.isna(
            clips.at[("erin", family), "score"]
        )
        assert clips.at[("dave", family), "status"] == "failed"
        assert "decode_failed" in clips.at[("dave", family), "reasons"]


def test_checks_and_segments_are_long_tables_of_every_clip(corpus: Path, out: Path) -> None:
    res = load_run(out)
    rows = jsonl(out / "clips.jsonl")
    assert len(res.checks) == sum(len(r["checks"]) for r in rows)
    first = next(r for r in rows if r["checks"])
    got = res.checks.iloc[0]
    assert (got["speaker"], got["family"], got["rule"], got["verdict"]) == (
        first["speaker"],
        first["family"],
        first["checks"][0]["rule"],
        first["checks"][0]["verdict"],
    )
    bob = res.checks.query("speaker == 'bob' and verdict == 'fail'")
    assert "gate:clipped_ratio" in set(bob["rule"]) and bob["hint"].notna().all()

    assert len(res.segments) == sum(len(r["segments"]) for r in rows)
    seg = res.segments.query("speaker == 'alice' and family == 'cosyvoice'")
    expected = next(r for r in rows if (r["speaker"], r["family"]) == ("alice", "cosyvoice"))["segments"]
    assert seg["path"].tolist() == [s["path"] for s in expected]
    assert seg["start_s"].tolist() == [s["start_s"] for s in expected]
    assert np.allclose(seg["duration_s"], seg["end_s"] - seg["start_s"])
    for source, path in zip(seg["source"], seg["path"], strict=True):
        assert Path(source) == (corpus / path).resolve()


def test_windows_list_the_chosen_window_first_then_the_runners_up(out: Path) -> None:
    res = load_run(out)
    row = res.clip_row("alice", "cosyvoice")
    w = res.windows("alice", "cosyvoice")
    assert len(w) == 1 + len(row["alternatives"]) >= 2
    assert "alice/upsampled_16k.wav" in {p["path"] for a in row["alternatives"] for p in a["pieces"]}
    assert w["rank"].tolist() == list(range(len(w)))
    assert w["chosen"].tolist() == [True] + [False] * (len(w) - 1)
    assert w["score"].tolist() == [row["plan"]["score"], *(a["score"] for a in row["alternatives"])]
    chosen = w.iloc[0]
    assert [s["path"] for s in chosen["pieces"]] == ["alice/phone_memo.m4a"]  # the only clean, long file
    assert chosen["pieces"][0]["start_s"] == row["plan"]["pieces"][0]["start_s"]
    assert w.iloc[0]["score_parts.snr"] == row["plan"]["score_parts"]["snr"]
    assert set(w["speaker"]) == {"alice"} and set(w["family"]) == {"cosyvoice"}
    assert set(res.windows(family="qwen-tts")["family"]) == {"qwen-tts"}
    assert res.windows("erin").empty  # nothing could be cut
    with pytest.raises(InvalidArgument, match="zoe"):
        res.windows("zoe")


def test_ready_clips_filters_by_status_and_family(out: Path) -> None:
    res = load_run(out)
    ready = res.ready_clips()
    assert sorted(zip(ready["speaker"], ready["family"], strict=True)) == [("alice", f) for f in FAMILIES]
    assert ready.index.tolist() == res.clips.index[res.clips["status"] == "ready"].tolist()
    assert res.ready_clips("qwen-tts")["family"].tolist() == ["qwen-tts"]
    assert len(res.ready_clips(list(FAMILIES))) == 2
    assert res.ready_clips("minimax").empty  # a known family this run did not make
    with pytest.raises(InvalidArgument, match="cosyvoic'"):
        res.ready_clips("cosyvoic")


def test_clip_audio_is_the_clip_file_as_samples_and_rate(out: Path) -> None:
    res = load_run(out)
    data, rate = res.clip_audio("alice", "cosyvoice")
    expected, expected_rate = sf.read(res.clip_file("alice", "cosyvoice"), dtype="float32")
    assert data.ndim == 1 and data.dtype == np.float32
    assert rate == expected_rate == res.clip_row("alice", "cosyvoice")["sample_rate"]
    np.testing.assert_allclose(data, expected, atol=1e-6)
    assert abs(len(data) / rate - res.clip_row("alice", "cosyvoice")["duration_s"]) < 0.02
    rejected, _ = res.clip_audio("bob", "cosyvoice")  # a rejected clip can still be heard
    assert len(rejected) > rate
    with pytest.raises(VoiceprepError, match="erin/cosyvoice has no clip"):
        res.clip_audio("erin", "cosyvoice")
    with pytest.raises(InvalidArgument, match="'zoe'"):
        res.clip_file("zoe", "cosyvoice")


# --------------------------------------------------------------------------------- partial and bad


def test_a_run_can_be_loaded_after_every_row_it_appends(out: Path) -> None:
    recordings = [e for e in MID_RUN if e[0] == "recording"]
    clips = [e for e in MID_RUN if e[0] == "clip"]
    # one more row each time; run.json (written at the end of a first run) is not there yet
    assert [e[1] for e in recordings] == list(range(1, len(SOURCES) + 1))
    assert [e[2] for e in clips] == list(range(1, 4 * len(FAMILIES) + 1))
    assert {e[1] for e in clips} == {len(SOURCES)}
    assert not any(e[3] for e in MID_RUN)


def test_a_run_still_writing_loads_without_its_torn_last_line(out: Path, tmp_path: Path) -> None:
    partial = tmp_path / "out"
    shutil.copytree(out, partial)
    (partial / "run.json").unlink()  # a first run writes run.json only at the end
    lines = (out / "clips.jsonl").read_text().splitlines(keepends=True)
    (partial / "clips.jsonl").write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2])
    res = load_run(partial)
    assert len(res.clips) == 3 and len(res.recordings) == len(SOURCES)
    assert res.run == {}
    # The input folder is named in run.json only: a source is known only where a clip's plan recorded it.
    planned = {
        piece["path"]
        for row in res.clip_rows
        for plan in [row.get("plan") or {}, *(row.get("alternatives") or [])]
        for piece in plan.get("pieces") or []
    }
    known = res.recordings.dropna(subset=["source"])
    assert set(known["path"]) == planned & set(res.recordings["path"])
    assert all(Path(p).is_file() for p in known["source"])
    assert "3 clips" in repr(res)
    (partial / "clips.jsonl").write_text(lines[0][:40] + "\n" + "".join(lines[1:]))  # damage mid-file
    with pytest.raises(ManifestError, match=r"clips\.jsonl:1"):
        load_run(partial)


def test_a_folder_that_is_not_a_run_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    for target, words in (
        (tmp_path / "missing", "does not exist"),
        (tmp_path / "file.txt", "is not a folder"),
        (tmp_path / "empty", "is not a voiceprep run folder"),
    ):
        with pytest.raises(InvalidArgument, match=words) as info:
            load_run(target)
        assert str(target) in str(info.value) and isinstance(info.value, VoiceprepError)


# ------------------------------------------------------------------------------------- ledger, export


def test_voices_come_from_the_ledger_and_join_the_clips(out: Path, tmp_path: Path) -> None:
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    empty = load_run(copy).voices
    assert empty.empty and {"provider", "voice_id", "clip_sha256", "status"} <= set(empty.columns)
    clip = load_run(copy).clip_row("alice", "qwen-tts")
    with Ledger(copy / "voices.sqlite") as ledger:
        row = ledger.begin(
            VoiceRecord(
                provider="dashscope",
                base_url="http://127.0.0.1:1/api/v1",
                family="qwen-tts",
                target_model="qwen3-tts-vc",
                name="alice",
                clip_sha256=clip["clip_sha256"],
                speaker="alice",
            )
        )
        ledger.update(row.id, status="ready", voice_id="voice-alice-1")
    res = load_run(copy)
    assert list(res.voices.columns) == list(empty.columns)
    assert res.voices[["voice_id", "status", "speaker"]].values.tolist() == [
        ["voice-alice-1", "ready", "alice"]
    ]
    # the two families' clips of alice are the same bytes here: the family tells them apart
    joined = res.clips.merge(res.voices, on=["clip_sha256", "family"], suffixes=("", "_ledger"))
    assert joined[["speaker", "family", "voice_id_ledger"]].values.tolist() == [
        ["alice", "qwen-tts", "voice-alice-1"]
    ]
    assert load_run(copy, ledger=tmp_path / "elsewhere.sqlite").voices.empty


def test_export_writes_the_same_tables_as_parquet_and_csv(out: Path, tmp_path: Path) -> None:
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    res = load_run(copy)
    paths = res.export("parquet")
    assert paths == [copy.resolve() / "recordings.parquet", copy.resolve() / "clips.parquet"]
    back = pd.read_parquet(paths[1])
    assert back["speaker"].tolist() == res.clips["speaker"].tolist()
    np.testing.assert_array_equal(
        back["metrics.snr_db"].to_numpy(float), res.clips["metrics.snr_db"].to_numpy()
    )
    csv = pd.read_csv(res.export("csv")[0])
    assert csv["path"].tolist() == res.recordings["path"].tolist()


# ------------------------------------------------------------------------------------- public names


def test_pipeline_run_is_the_runner_whatever_was_imported_first(tmp_path: Path) -> None:
    code = (
        "import pipeline.cli.main, pipeline, pipeline.batch.runner as module\n"
        "from pipeline.batch.runner import RunError, run\n"
        "assert pipeline.run is run and module.run is run and pipeline.batch.runner is module\n"
        "assert 'input_path' in __import__('inspect').signature(pipeline.run).parameters\n"
        "try:\n"
        f"    pipeline.run({str(tmp_path / 'nothing')!r}, {str(tmp_path / 'o')!r})\n"
        "except RunError as exc:\n"
        "    print('RunError:', exc)\n"
        "print(pipeline.load_run.__module__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"RunError: {tmp_path / 'nothing'}: no such file or folder",
        "pipeline.report.results",
    ]
