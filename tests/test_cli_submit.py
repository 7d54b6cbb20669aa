"""`voiceprep run --submit`, `submit` and `voices` through the real command (its entry point, in this
process: ``tests/_cli.py``), against the local fake server."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
from _cli import voiceprep
from _samples import MEMO, cut
from fake_providers import FakeProviders


def _voiceprep(*args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``voiceprep ARGS`` with no provider key or address in the environment but those in ``env``."""
    return voiceprep(*args, env=env, drop=["*_API_KEY", "*_BASE_URL"])


@pytest.fixture(scope="module")
def cloud():
    with FakeProviders() as fake:
        yield fake


def test_run_then_submit_then_manage_voices(tmp_path: Path, cloud: FakeProviders) -> None:
    cut(MEMO, tmp_path / "in" / "alice" / "phone_memo.m4a", 12.5)  # one clean recording: a 12 s clip
    out = tmp_path / "out"

    # Without a key, submit stops at once with one line naming the variable, and sends nothing.
    no_key = _voiceprep(
        "run",
        tmp_path / "in",
        "--out",
        out,
        "-f",
        "minimax",
        "--executor",
        "serial",
        "--submit",
        env={"MINIMAX_BASE_URL": cloud.minimax_base_url},
    )
    assert no_key.returncode == 2, no_key.stderr
    assert "MINIMAX_API_KEY" in no_key.stderr
    assert len([line for line in no_key.stderr.splitlines() if "MINIMAX_API_KEY" in line]) == 1
    assert cloud.voices("minimax") == []
    assert json.loads((out / "clips.jsonl").read_text().splitlines()[0])["status"] == "ready"

    # With the key: the run (resumed from cache) submits its ready clip.
    env = cloud.env()
    done = _voiceprep(
        "run", tmp_path / "in", "--out", out, "-f", "minimax", "--executor", "serial", "--submit", env=env
    )
    assert done.returncode == 0, done.stderr
    row = json.loads((out / "clips.jsonl").read_text().splitlines()[0])
    assert row["status"] == "submitted" and row["voice_id"]
    remote = cloud.voices("minimax")
    assert [v["voice_id"] for v in remote] == [row["voice_id"]]
    with sqlite3.connect(out / "voices.sqlite") as db:
        ledger = db.execute("SELECT voice_id, status, target_model FROM voices").fetchall()
    assert ledger == [(row["voice_id"], "ready", "speech-2.8-hd")]
    assert row["voice_id"] in done.stdout

    # Submitting again changes nothing remotely.
    again = _voiceprep("submit", "--out", out, env=env)
    assert again.returncode == 0, again.stderr
    assert [v["voice_id"] for v in cloud.voices("minimax")] == [row["voice_id"]]
    legacy = _voiceprep("submit", out, "--dry-run", env=env)  # the old positional OUT, for one release
    assert legacy.returncode == 0, legacy.stderr

    listed = _voiceprep("voices", "list", "--out", out, env=env)
    assert listed.returncode == 0 and row["voice_id"] in listed.stdout

    gone = _voiceprep("voices", "delete", row["voice_id"], "--out", out, "--yes", env=env)
    assert gone.returncode == 0, gone.stderr
    assert cloud.voices("minimax") == []
    with sqlite3.connect(out / "voices.sqlite") as db:
        assert db.execute("SELECT status FROM voices").fetchall() == [("deleted",)]

    # No key ever reaches the output, the manifests or the ledger.
    secrets = [v for k, v in env.items() if k.endswith("_API_KEY")]
    texts = [
        no_key.stdout,
        no_key.stderr,
        done.stdout,
        done.stderr,
        again.stdout,
        again.stderr,
        listed.stdout,
        gone.stdout,
        gone.stderr,
    ]
    texts += [p.read_bytes().decode("latin-1") for p in out.rglob("*") if p.is_file()]
    assert not any(s in t for s in secrets for t in texts)
