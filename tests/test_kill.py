"""Kill tests: ``voiceprep run`` and ``voiceprep submit`` killed with ``SIGKILL`` at 20+ seeded random points
each, then resumed: the outputs equal an uninterrupted run's, and the test server holds every ready clip's
voice exactly once (0 duplicates, 0 orphans, 0 lost).

A kill point is an *event* of the command (``tests/_kill_zygote.py``): an atomic write's rename (before
or after it), the lock's link or rename, an HTTP request (before it is sent, or after the provider acted
and answered, before voiceprep records anything). Every state a kill can leave on disk or on the server
lies between two such events, so killing at the events, chosen at random from those of an uninterrupted
command, reaches them without timing luck. The commands run in processes forked from one that imported
voiceprep once (20+ fresh interpreters would cost minutes of imports: ``tests/_kill_zygote.py``).

A create request whose process was killed after the ledger marked it sent (before or after the request
left) leaves the voice ``unknown``; by the documented rule it is retried only once searches over
:data:`~pipeline.enroll.submit.ABSENT_SETTLE_S` prove it absent, so the recovery runs ``voices sync`` and the
second ``submit`` with the ledger's clock that much later.
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from _cli import jsonl, process_env
from _kill_zygote import Zygote
from _samples import MEMO, cut
from fake_providers import FakeProviders, make_wav
from submit_fakes import make_run

from pipeline.enroll.submit import ABSENT_SETTLE_S
from pipeline.rules.families import ENV_FAMILIES_DIR

SEED = 20261207
KILLS = 20
"""Kill points per command (distinct events, drawn with :data:`SEED`)."""


def _env(**extra: str) -> dict[str, str]:
    """A clean environment for a command: no provider key or address, no families folder override."""
    return {**process_env(drop=["*_API_KEY", "*_BASE_URL", ENV_FAMILIES_DIR]), "COLUMNS": "200", **extra}


def _kill_points(events: list[str], seed_offset: int) -> list[int]:
    """:data:`KILLS` distinct event numbers (1-based), drawn at random from ``events``."""
    assert len(events) >= KILLS, events
    return sorted(random.Random(SEED + seed_offset).sample(range(1, len(events) + 1), KILLS))


def _files(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by relative path."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ----------------------------------------------------------------------------------------------------- run

TIMED = {"report.html", "run.json", ".cache/report.key"}
"""Outputs that carry timings or a random key: compared by name (run.json's counts apart)."""
USER_FILES = {"mine.txt": b"a user's note", "clips/alice/keep.txt": b"the user's own file"}


def _run_state(out: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """Every file of OUT with its sha256 (timed ones by name only), and run.json's counts."""
    files = {name: ("" if name in TIMED else digest) for name, digest in _files(out).items()}
    return files, json.loads((out / "run.json").read_text())["counts"]


@pytest.mark.slow
def test_run_killed_at_20_random_points_then_resumed_equals_an_uninterrupted_run(
    zygote: Zygote, tmp_path: Path
) -> None:
    recordings = tmp_path / "in"
    cut(MEMO, recordings / "alice" / "memo.m4a", 12.5)  # one clean recording: one 10-12 s clip
    before_inputs = _files(recordings)
    config = tmp_path / "run.yaml"
    config.write_text("slow_measures: false\nexecutor: serial\n")  # no DNSMOS; all in the forked process
    env = _env()

    def command(out: Path) -> list[str | Path]:
        return ["run", recordings, "--out", out, "--family", "minimax", "--config", config]

    def fresh_out(name: str) -> Path:
        out = tmp_path / name
        for rel, data in USER_FILES.items():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_bytes(data)
        return out

    reference = fresh_out("reference")
    whole = zygote.run(*command(reference), env=env)
    assert whole["code"] == 0, zygote.log.as_posix()
    expected = _run_state(reference)
    assert expected[1]["clips"] == {"minimax": {"ready": 1}}
    assert "clips/alice/minimax.wav" in expected[0]
    rng = random.Random(SEED)

    for number, point in enumerate(_kill_points(whole["events"], 0)):
        out = fresh_out(f"out{number}")
        killed = zygote.run(*command(out), env=env, kill_at=point)
        assert killed["signal"] == signal.SIGKILL, (point, whole["events"][point - 1])
        if rng.random() < 0.5:  # the resume itself killed early: while it takes the dead run's lock over
            again = zygote.run(*command(out), env=env, kill_at=rng.randint(1, 4))
            assert again["signal"] == signal.SIGKILL or again["code"] == 0, again
        resumed = zygote.run(*command(out), env=env)
        assert resumed["code"] == 0, (point, whole["events"][point - 1])
        files, counts = _run_state(out)
        context = (point, whole["events"][point - 1])
        assert counts == expected[1], context
        assert sorted(files.items() ^ expected[0].items()) == [], context
        for rel, data in USER_FILES.items():
            assert (out / rel).read_bytes() == data
    assert _files(recordings) == before_inputs


# -------------------------------------------------------------------------------------------------- submit

FAMILIES = ("cosyvoice", "qwen-tts", "minimax", "elevenlabs")
KIND = {"cosyvoice": "cosyvoice", "qwen-tts": "qwen", "minimax": "minimax", "elevenlabs": "elevenlabs"}
ID_FIELD = {"cosyvoice": "voice_id", "qwen": "voice", "minimax": "voice_id", "elevenlabs": "voice_id"}
SPEAKERS = ("alice", "bob")


def _server_ids(server: FakeProviders) -> dict[str, list[str]]:
    return {f: sorted(v[ID_FIELD[KIND[f]]] for v in server.voices(KIND[f])) for f in FAMILIES}


def _ledger(out: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(out / "voices.sqlite") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM voices")]


def _creates_in_flight(out: Path) -> list[str]:
    """The names of the ledger rows whose create was marked sent and has no recorded outcome (``pending``
    with ``sent_at``): what a kill may have left unknown; none without a ledger."""
    if not (out / "voices.sqlite").is_file():
        return []
    return sorted(r["name"] for r in _ledger(out) if r["status"] == "pending" and r["sent_at"])


def _assert_each_clip_submitted_once(out: Path, server: FakeProviders, context: object) -> None:
    """Every ready clip has exactly one voice on the server, the ledger and clips.jsonl name it, and the
    server holds no voice the ledger does not know."""
    remote = _server_ids(server)
    ledger = [r for r in _ledger(out) if r["status"] != "deleted"]
    clips = {(c["speaker"], c["family"]): c for c in jsonl(out / "clips.jsonl")}
    for family in FAMILIES:
        assert len(remote[family]) == len(SPEAKERS), (context, family, remote[family])  # 0 duplicates
        ours = sorted(r["voice_id"] for r in ledger if r["family"] == family and r["status"] == "ready")
        assert ours == remote[family], (context, family, ledger)  # 0 orphans, 0 unknowns
    for (_, family), clip in clips.items():  # 0 lost
        assert clip["status"] == "submitted" and clip["voice_id"] in remote[family], (context, clip)


@pytest.mark.slow
def test_submit_killed_at_20_random_points_then_resumed_submits_each_clip_exactly_once(
    zygote: Zygote, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    make_run(
        run,
        speakers=SPEAKERS,
        families=FAMILIES,
        audio=lambda i: make_wav(1.0 + 0.1 * i, freq=200.0 + 30 * i),
    )
    with FakeProviders() as server:
        env = _env(**server.env())

        def submit(out: Path, kill_at: int | None = None, later_s: float = 0.0) -> dict[str, Any]:
            argv = ("submit", "--out", out, "--poll-interval", "0.1")
            return zygote.run(*argv, env=env, kill_at=kill_at, later_s=later_s)

        reference = tmp_path / "reference"
        subprocess.run(["cp", "-a", run, reference], check=True)
        whole = submit(reference)
        assert whole["code"] == 0
        _assert_each_clip_submitted_once(reference, server, "uninterrupted")

        nothing_in_flight = 0
        for number, point in enumerate(_kill_points(whole["events"], 1)):
            server.reset()
            out = tmp_path / f"out{number}"
            subprocess.run(["cp", "-a", run, out], check=True)
            context = (point, whole["events"][point - 1])
            assert submit(out, kill_at=point)["signal"] == signal.SIGKILL, context
            in_flight = _creates_in_flight(out)
            # The recovery a user follows: submit; later (a create the kill left unknown is retried only
            # once searches over ABSENT_SETTLE_S prove it absent) sync the ledger with the providers, submit.
            first = submit(out)
            later_s = ABSENT_SETTLE_S + 60
            synced = zygote.run("voices", "sync", "--out", out, env=env, later_s=later_s)
            last = submit(out, later_s=later_s)
            # Killed with no create in flight (before any was sent, or between one's recorded outcome and
            # the next one's "sent" marker): nothing is left unknown, the first resume finishes the job.
            # Only a create marked sent whose outcome the kill lost may leave a voice unknown for now (1).
            assert first["code"] == 0 if not in_flight else first["code"] in {0, 1}, (context, in_flight)
            nothing_in_flight += not in_flight
            assert (synced["code"], last["code"]) == (0, 0), context
            _assert_each_clip_submitted_once(out, server, context)
        assert nothing_in_flight >= 3  # the assertion above was exercised
