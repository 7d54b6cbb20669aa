"""``voiceprep run data/samples`` (what ``make demo`` runs) gives each speaker the result the demo promises.

``data/samples/EXPECTED.json`` says, per speaker and family, what the run is meant to make of the demo
recordings and why (``speakers``): alice ready everywhere from one recording, bob ready only by joining
takes, carol's clips cut from the clean stretch of a long mixed recording, dave rejected as too short, and
alice's truncated upload failed. One serial run without the slow measures checks it (the re-check of every
rendered clip still runs DNSMOS, once per distinct clip: ``tests/_dnsmos.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _cli import jsonl
from _dnsmos import dnsmos_once
from _samples import EXPECTED, SAMPLES

from pipeline.batch.config import load_config
from pipeline.batch.runner import run


@pytest.fixture(scope="module", autouse=True)
def _dnsmos_once() -> Iterator[None]:
    with dnsmos_once():  # alice's and carol's clips for two families are the same audio
        yield


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "out"
    run(SAMPLES, out, config=load_config(slow_measures=False), executor="serial")
    return out


@pytest.mark.slow
def test_every_speaker_gets_the_promised_result(demo: Path) -> None:
    speakers = EXPECTED["speakers"]
    assert sorted(speakers) == sorted(p.name for p in SAMPLES.iterdir() if p.is_dir())
    rows = {(r["speaker"], r["family"]): r for r in jsonl(demo / "clips.jsonl")}
    promised = {(s, f): want for s, info in speakers.items() for f, want in info["clips"].items()}
    assert sorted(rows) == sorted(promised)
    for key, want in promised.items():
        row = rows[key]
        assert row["status"] == want["status"], (key, row["status"], row["reasons"])
        if "assembled" in want:
            assert row["assembled"] is want["assembled"], key
        if "reason" in want:
            assert want["reason"] in row["reasons"], (key, row["reasons"])
        if row["status"] == "ready":
            paths = {s["path"] for s in row["segments"]}
            assert all(p.startswith(f"{key[0]}/") for p in paths), (key, paths)


@pytest.mark.slow
def test_the_corrupt_upload_fails_and_every_other_file_is_read(demo: Path) -> None:
    recordings = {r["path"]: r for r in jsonl(demo / "recordings.jsonl")}
    assert sorted(recordings) == sorted(EXPECTED["files"])
    for name, facts in EXPECTED["files"].items():
        status = recordings[name]["status"]
        if facts["decodable"]:
            assert status == "ok", (name, recordings[name]["reasons"])
        else:
            assert status == "failed" and recordings[name]["reasons"] == ["decode_failed"], name
