"""Manifests: row models, JSONL append/read under crashes and threads, JSON hygiene, fingerprints, and the
tables and exports :func:`pipeline.load_run` makes of them."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _corpus import corpus_file

from pipeline.analysis.inspection import analyze
from pipeline.batch.manifest import (
    ClipRow,
    ManifestError,
    RecordingRow,
    append_row,
    canonical_json,
    fingerprint,
    read_rows,
    read_run_json,
    to_jsonable,
    write_rows,
)
from pipeline.errors import InvalidArgument
from pipeline.report.results import DERIVED_COLUMNS, RECORDING_SCHEMA, load_run

SPEECH = (
    "pra_cmu_arctic_us_aew_a0001.wav",
    "pra_cmu_arctic_us_axb_a0005.wav",
    "librosa_libri1_198-209-0000.ogg",
)


def _clip_row(speaker: str = "alice", **over) -> ClipRow:
    fields = {
        "speaker": speaker,
        "family": "cosyvoice",
        "status": "ready",
        "clip": f"clips/{speaker}/cosyvoice.wav",
        "segments": [{"path": f"{speaker}/memo.wav", "start_s": 1.25, "end_s": 13.5}],
        "duration_s": 12.7,
        "sample_rate": 24000,
        "metrics": {"snr_db": 31.5, "lufs": -23.0},
        "checks": [
            {"rule": "duration_s", "value": 12.7, "limit": "3-20", "verdict": "pass"},
            {"rule": "format", "value": "wav", "limit": "wav", "verdict": "pass"},
        ],
        "alternatives": [{"score": 0.71, "pieces": [{"path": "x.wav", "start_s": 0.0, "end_s": 9.0}]}],
        "key": "k" * 64,
        "plan": {"pieces": [{"path": f"{speaker}/memo.wav"}]},
    }
    fields.update(over)
    return ClipRow(**fields)


def _json(row: ClipRow) -> str:
    return json.dumps(to_jsonable(row), ensure_ascii=False)


@pytest.fixture(scope="module")
def real_rows() -> list[RecordingRow]:
    """Recording rows built from real analysis of three speech files (WAV and Ogg)."""
    rows = []
    for name in SPEECH:
        a = analyze(corpus_file("speech", name), dnsmos=False)  # DNSMOS null, with its reason
        info = dataclasses.asdict(a.info)
        rows.append(
            RecordingRow(
                path=name,
                speaker=Path(name).stem,
                sha256=info["sha256"],
                probe={
                    k: info[k] for k in ("format", "codec", "sample_rate", "channels", "duration_s", "bytes")
                },
                metrics=a.metrics,
                null_reasons=a.null_reasons,
            )
        )
    rows.append(
        RecordingRow(
            path="broken.wav", speaker="broken", status="failed", reasons=["decode_failed"], message="corrupt"
        )
    )
    return rows


# --- rows and JSONL ---------------------------------------------------------------------------------


def test_rows_round_trip_through_jsonl(tmp_path: Path, real_rows: list[RecordingRow]) -> None:
    path = tmp_path / "recordings.jsonl"
    for row in real_rows:
        append_row(path, row)
    assert read_rows(path, RecordingRow) == real_rows
    as_dicts = read_rows(path)
    assert [d["path"] for d in as_dicts] == [*SPEECH, "broken.wav"]
    assert all(d["schema_version"] == 2 for d in as_dicts)
    assert as_dicts[-1]["sha256"] is None and as_dicts[-1]["metrics"] is None
    assert path.read_text().count("\n") == len(real_rows)

    clips = tmp_path / "clips.jsonl"
    row = _clip_row(target_extra="kept")  # later issues add fields: they survive the round trip
    append_row(clips, row)
    append_row(clips, {"speaker": "bob", "family": "minimax", "status": "rejected", "reasons": ["too_short"]})
    back = read_rows(clips, ClipRow)
    assert back[0] == row and back[0].target_extra == "kept"
    assert back[1].status == "rejected" and back[1].clip is None and back[1].voice_id is None


def test_clip_rows_of_schema_1_are_read_into_the_current_layout(tmp_path: Path) -> None:
    span = {"path": "alice/memo.wav", "start_s": 1.25, "end_s": 13.5}
    old = {
        "schema_version": 1,
        "speaker": "alice",
        "family": "cosyvoice",
        "status": "ready",
        "clip": "clips/alice/cosyvoice.wav",
        "segments": [span],
        "sha256": "c" * 64,  # the clip's hash, now clip_sha256
        "plan": {"score": 0.8, "pieces": [{**span, "source": "/in/alice/memo.wav"}], "segments": [span]},
        "alternatives": [{"score": 0.7, "segments": [span]}],  # older still: no pieces at all
        "render": {"gain_db": -1.5},
    }
    (tmp_path / "clips.jsonl").write_text(json.dumps(old) + "\n")
    (row,) = read_rows(tmp_path / "clips.jsonl", ClipRow)
    assert (row.schema_version, row.clip_sha256, row.render) == (2, "c" * 64, {"gain_db": -1.5})
    assert row.plan == {"score": 0.8, "pieces": [{**span, "source": "/in/alice/memo.wav"}]}
    assert row.alternatives == [{"score": 0.7, "pieces": [span]}]
    assert row.segments == [span]  # the rendered spans are other data and stay
    assert "sha256" not in row.model_dump()

    res = load_run(tmp_path)
    assert res.clips["clip_sha256"].tolist() == ["c" * 64] and "sha256" not in res.clips.columns
    windows = res.windows()
    assert windows["score"].tolist() == [0.8, 0.7]
    assert [w[0]["start_s"] for w in windows["pieces"]] == [1.25, 1.25]


def test_a_torn_last_line_is_skipped_and_repaired_by_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "clips.jsonl"
    append_row(path, _clip_row("a"))
    append_row(path, _clip_row("b"))
    whole = _json(_clip_row("c"))
    with path.open("a") as fh:  # a crash mid-write: only part of the third line reached the disk
        fh.write(whole[: len(whole) // 2])
    assert [r.speaker for r in read_rows(path, ClipRow)] == ["a", "b"]

    append_row(path, _clip_row("d"))
    assert [r.speaker for r in read_rows(path, ClipRow)] == ["a", "b", "d"]
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_a_complete_last_line_without_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "clips.jsonl"
    path.write_text(_json(_clip_row("a")))  # edited by hand, no final newline
    append_row(path, _clip_row("b"))
    assert [r.speaker for r in read_rows(path, ClipRow)] == ["a", "b"]


def test_run_json_is_a_json_object_or_nothing_yet(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    assert read_run_json(path) == {}  # a first run writes it at the end
    path.write_text(json.dumps({"config": {"ledger": "shared.sqlite"}}))
    assert read_run_json(path) == {"config": {"ledger": "shared.sqlite"}}
    for damaged in (b"[1, 2]", b'{"config": ', b'{"name": "\xff"}'):  # a list, cut short, not UTF-8
        path.write_bytes(damaged)
        with pytest.raises(ManifestError, match=r"run\.json"):
            read_run_json(path)


def test_damage_before_the_last_line_is_an_error_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "clips.jsonl"
    path.write_text(_json(_clip_row("a")) + "\n{oops\n" + _json(_clip_row("b")) + "\n")
    with pytest.raises(ManifestError, match=r"clips\.jsonl:2"):
        read_rows(path)
    path.write_text('{"speaker": "a", "family": "f", "status": "bogus"}\n')
    with pytest.raises(ManifestError, match="ClipRow"):
        read_rows(path, ClipRow)
    path.write_text("[1, 2]\n" + _json(_clip_row("a")) + "\n")
    with pytest.raises(ManifestError, match="JSON object"):
        read_rows(path)


def test_a_missing_manifest_reads_as_no_rows(tmp_path: Path) -> None:
    assert read_rows(tmp_path / "nothing.jsonl", ClipRow) == []


_WRITER = """
import sys
from pipeline.batch.manifest import append_row
path = sys.argv[1]
for i in range(100000):
    append_row(path, {"i": i, "pad": "x" * 50000})
"""


def test_a_writer_killed_mid_run_leaves_only_whole_rows(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)])
    try:
        deadline = time.monotonic() + 30
        while (not path.exists() or path.stat().st_size < 40 * 50000) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    rows = read_rows(path)
    assert len(rows) >= 40
    assert [r["i"] for r in rows] == list(range(len(rows)))
    assert all(len(r["pad"]) == 50000 for r in rows)
    append_row(path, {"i": len(rows), "pad": ""})  # a resumed run appends after them
    assert [r["i"] for r in read_rows(path)] == list(range(len(rows) + 1))


def test_concurrent_appends_from_threads_give_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    n_threads, per_thread = 8, 40
    start = threading.Barrier(n_threads)

    def work(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            # long lines make interleaving likely if the lock or the single write were missing
            append_row(path, {"thread": t, "i": i, "pad": chr(65 + t) * (20000 + 997 * i)})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    lines = path.read_text().splitlines()
    assert len(lines) == n_threads * per_thread
    rows = [json.loads(line) for line in lines]
    assert {(r["thread"], r["i"]) for r in rows} == {
        (t, i) for t in range(n_threads) for i in range(per_thread)
    }
    assert all(r["pad"] == chr(65 + r["thread"]) * (20000 + 997 * r["i"]) for r in rows)


def test_write_rows_replaces_the_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "clips.jsonl"
    append_row(path, _clip_row("old"))

    def rows_then_bug():
        yield _clip_row("x")
        raise RuntimeError("bug while producing rows")

    with pytest.raises(RuntimeError):
        write_rows(path, rows_then_bug())
    assert [r.speaker for r in read_rows(path, ClipRow)] == ["old"]

    write_rows(path, [_clip_row("b"), _clip_row("a")])
    assert [r.speaker for r in read_rows(path, ClipRow)] == ["b", "a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clips.jsonl"]  # no temporary files left


# --- JSON hygiene -----------------------------------------------------------------------------------


def test_nan_and_inf_become_null_and_numpy_becomes_plain(tmp_path: Path) -> None:
    row = RecordingRow(
        path="a.wav",
        speaker="a",
        probe={"sample_rate": np.int32(48000), "duration_s": np.float64(2.5)},
        metrics={
            "snr_db": float("nan"),
            "lufs": np.float32(-np.inf),
            "rt60_s": np.float32(0.25),
            "levels": np.array([1.0, np.nan, 3.0]),
            "clipped": np.bool_(True),
        },
    )
    path = tmp_path / "r.jsonl"
    append_row(path, row)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    back = json.loads(text)
    assert back["metrics"] == {
        "snr_db": None,
        "lufs": None,
        "rt60_s": 0.25,
        "levels": [1.0, None, 3.0],
        "clipped": True,
    }
    assert back["probe"] == {"sample_rate": 48000, "duration_s": 2.5}
    assert type(back["probe"]["sample_rate"]) is int


def test_values_json_cannot_say_are_refused() -> None:
    with pytest.raises(TypeError, match="object"):
        to_jsonable({"x": object()})
    assert to_jsonable({1: (Path("a/b.wav"), {2, 1})}) == {"1": ["a/b.wav", [1, 2]]}


def test_fingerprint_is_stable_across_key_order_and_number_types() -> None:
    a = {"family": "cosyvoice", "limits": {"max_s": 20.0, "min_s": 3}, "order": [1, 2]}
    b = {"order": (1, 2), "limits": {"min_s": np.int64(3), "max_s": np.float64(20.0)}, "family": "cosyvoice"}
    assert (
        canonical_json(a)
        == canonical_json(b)
        == ('{"family":"cosyvoice","limits":{"max_s":20.0,"min_s":3},"order":[1,2]}')
    )
    assert fingerprint(a) == fingerprint(b) == hashlib.sha256(canonical_json(a).encode()).hexdigest()
    assert fingerprint({"a": 1}) == hashlib.sha256(b'{"a":1}').hexdigest()
    assert fingerprint({**a, "limits": {"max_s": 20.000001, "min_s": 3}}) != fingerprint(a)
    assert fingerprint([1, 2]) != fingerprint([2, 1])  # list order is data
    assert canonical_json({"x": float("nan")}) == '{"x":null}'
    assert canonical_json({"x": 0.1}) == '{"x":0.1}'  # floats as they are, not rounded


# --- tables and export ------------------------------------------------------------------------------


def test_tables_flatten_metrics_and_probe_with_dotted_names(
    tmp_path: Path, real_rows: list[RecordingRow]
) -> None:
    write_rows(tmp_path / "recordings.jsonl", real_rows)
    res = load_run(tmp_path)
    df = res.recordings
    assert len(df) == 4
    cols = list(df.columns)
    assert cols[:7] == ["schema_version", "path", "source", "speaker", "sha256", "status", "reasons"]
    assert {"probe.sample_rate", "probe.duration_s", "metrics.snr_db", "metrics.lufs"} <= set(cols)
    assert "metrics" not in cols and "probe" not in cols
    assert cols.index("probe.format") < cols.index("metrics.duration_s") < cols.index("null_reasons")
    for i, row in enumerate(real_rows[:3]):
        assert df["metrics.snr_db"][i] == pytest.approx(row.metrics["snr_db"])
        assert df["probe.sample_rate"][i] == row.probe["sample_rate"]
    assert str(df["probe.sample_rate"].dtype) == "Int64"  # ints stay ints; the failed row is <NA>
    assert df["probe.sample_rate"].isna().tolist() == [False, False, False, True]
    assert math.isnan(df["metrics.snr_db"][3])
    assert df["reasons"][3] == ["decode_failed"]  # lists stay Python objects
    assert len(res.clips) == 0 and "voice_id" in res.clips.columns  # no clips.jsonl yet: still every column


def test_export_parquet_and_csv_are_readable_by_pandas(tmp_path: Path, real_rows: list[RecordingRow]) -> None:
    for row in real_rows:
        append_row(tmp_path / "recordings.jsonl", row)
    append_row(tmp_path / "clips.jsonl", _clip_row("alice"))
    append_row(tmp_path / "clips.jsonl", _clip_row("bob", status="rejected", clip=None, sample_rate=None))

    res = load_run(tmp_path)
    written = res.export("parquet") + res.export("csv")
    assert sorted(p.name for p in written) == [
        "clips.csv",
        "clips.parquet",
        "recordings.csv",
        "recordings.parquet",
    ]

    rec = pd.read_parquet(tmp_path / "recordings.parquet")
    snr = [r.metrics["snr_db"] if r.metrics else None for r in real_rows]
    assert rec["metrics.snr_db"].tolist()[:3] == pytest.approx(snr[:3])
    assert math.isnan(rec["metrics.snr_db"].tolist()[3])
    assert list(rec["reasons"][3]) == ["decode_failed"]  # parquet keeps the list
    assert json.loads(rec["null_reasons"][0]) == real_rows[0].null_reasons  # dicts as JSON text

    clips = pd.read_parquet(tmp_path / "clips.parquet")
    seg = clips["segments"][0][0]
    assert (seg["path"], seg["start_s"], seg["end_s"]) == ("alice/memo.wav", 1.25, 13.5)
    assert json.loads(clips["checks"][0])[1]["value"] == "wav"  # mixed value types: JSON text
    assert clips["status"].tolist() == ["ready", "rejected"]

    rec_csv = pd.read_csv(tmp_path / "recordings.csv")
    assert rec_csv["metrics.snr_db"].tolist()[:3] == pytest.approx(snr[:3])
    assert rec_csv["probe.sample_rate"].tolist()[:3] == [r.probe["sample_rate"] for r in real_rows[:3]]
    assert json.loads(rec_csv["reasons"][3]) == ["decode_failed"]
    clips_csv = pd.read_csv(tmp_path / "clips.csv")
    assert json.loads(clips_csv["segments"][1]) == [{"path": "bob/memo.wav", "start_s": 1.25, "end_s": 13.5}]
    assert math.isnan(clips_csv["clip"][1])


def test_decode_notes_are_declared_read_back_and_exported(tmp_path: Path) -> None:
    notes = [
        {"message": "Note: Illegal Audio-MPEG-Header 0x00000000 at offset 62694.", "count": 2},
        {"message": "Note: Trying to resync...", "count": 2},
    ]
    noted = RecordingRow(path="dave/damaged.mp3", speaker="dave", decode_notes=notes)
    manifest = tmp_path / "recordings.jsonl"
    append_row(manifest, noted)
    older = {"schema_version": 2, "path": "erin/memo.wav", "speaker": "erin"}  # written before the field
    append_row(manifest, older)
    back = read_rows(manifest, RecordingRow)
    assert back[0] == noted and back[0].decode_notes[0]["count"] == 2
    assert back[1].decode_notes == []
    assert json.loads(manifest.read_text().splitlines()[0])["decode_notes"] == notes

    res = load_run(tmp_path)
    assert "decode_notes" in RECORDING_SCHEMA
    assert res.recordings["decode_notes"].tolist() == [notes, []]
    res.export("parquet")
    res.export("csv")
    parquet = pd.read_parquet(tmp_path / "recordings.parquet")["decode_notes"]
    assert [dict(entry) for entry in parquet[0]] == notes and len(parquet[1]) == 0
    assert json.loads(pd.read_csv(tmp_path / "recordings.csv")["decode_notes"][0]) == notes


def test_export_of_an_empty_run_writes_tables_with_headers(tmp_path: Path) -> None:
    (tmp_path / "recordings.jsonl").touch()
    load_run(tmp_path).export("csv")
    load_run(tmp_path).export("parquet")
    assert "speaker" in pd.read_csv(tmp_path / "clips.csv").columns
    empty = pd.read_parquet(tmp_path / "recordings.parquet")
    assert list(empty.columns) == [c for c in RECORDING_SCHEMA if c not in DERIVED_COLUMNS]
    assert len(empty) == 0 and "metrics.snr_db" in empty.columns  # every metric, even with no rows


def test_export_rejects_bad_arguments(tmp_path: Path) -> None:
    (tmp_path / "recordings.jsonl").touch()
    with pytest.raises(InvalidArgument, match="xlsx"):
        load_run(tmp_path).export("xlsx")
    with pytest.raises(InvalidArgument, match="does not exist"):
        load_run(tmp_path / "missing")
