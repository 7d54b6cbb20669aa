"""The voice ledger: the intent/outcome protocol, unique keys, schema versions, concurrency, secrets."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from pipeline.enroll import ledger as ledger_mod
from pipeline.enroll.ledger import (
    Ledger,
    LedgerBusy,
    LedgerConflict,
    LedgerError,
    default_ledger_path,
    ledger_lock,
    parse_stored_time,
    read_voices,
    scrub,
)
from pipeline.enroll.providers.base import VoiceRecord

SHA = "ab" * 32


def _begin(ledger: Ledger, **kw: object):
    args = {
        "provider": "dashscope",
        "base_url": "https://dashscope-intl.aliyuncs.com/api/v1/",
        "family": "cosyvoice",
        "target_model": "cosyvoice-v3-plus",
        "name": "alix12345",
        "clip_sha256": SHA,
        "clip_path": "/tmp/out/clips/alice/cosyvoice.wav",
        "speaker": "alice",
        "sources": ["alice/a.wav", "alice/b.wav"],
        "enrollment_key": "k" * 64,
    }
    args.update(kw)
    return ledger.begin(VoiceRecord(**args))  # type: ignore[arg-type]


def test_intent_then_sent_then_outcome(tmp_path: Path) -> None:
    t0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    clock = iter([t0 + dt.timedelta(seconds=i) for i in range(20)])
    with Ledger(tmp_path / "v.sqlite", clock=lambda: next(clock)) as ledger:
        row = _begin(ledger)
        assert (row.status, row.sent_at, row.voice_id, row.origin) == ("pending", None, None, "submit")
        assert row.base_url == "https://dashscope-intl.aliyuncs.com/api/v1"  # trailing slash normalised
        assert not row.unresolved  # never sent: may be retried
        sent = ledger.mark_sent(row.id)
        assert sent.sent_at is not None and sent.unresolved
        done = ledger.update(
            row.id,
            status="ready",
            voice_id="cosyvoice-v3-plus-alix12345-abc",
            request_ids=["r1", None, "r1", "r2"],
        )
        assert done.status == "ready" and done.voice_id == "cosyvoice-v3-plus-alix12345-abc"
        assert done.request_ids == ["r1", "r2"]
        assert parse_stored_time(done.created_at) == t0
        assert parse_stored_time(done.updated_at) > parse_stored_time(done.created_at)  # type: ignore[operator]
        assert done.created_at.endswith("+00:00")
    rows = read_voices(tmp_path / "v.sqlite")
    assert len(rows) == 1
    assert rows[0]["sources"] == ["alice/a.wav", "alice/b.wav"]
    assert rows[0]["status"] == "ready" and rows[0]["request_ids"] == ["r1", "r2"]


def test_wal_mode_and_schema_version(tmp_path: Path) -> None:
    Ledger(tmp_path / "v.sqlite").close()
    conn = sqlite3.connect(tmp_path / "v.sqlite")
    assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == ledger_mod.SCHEMA_VERSION == 2
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_unique_clip_model_name(tmp_path: Path) -> None:
    with Ledger(tmp_path / "v.sqlite") as ledger:
        _begin(ledger)
        with pytest.raises(LedgerConflict, match="already exists"):
            _begin(ledger)
        # another name, model or clip is another row
        _begin(ledger, name="alix99999")
        _begin(ledger, target_model="cosyvoice-v2")
        _begin(ledger, clip_sha256="cd" * 32)
        assert len(ledger.rows()) == 4


def test_one_remote_voice_one_row(tmp_path: Path) -> None:
    with Ledger(tmp_path / "v.sqlite") as ledger:
        a = _begin(ledger)
        b = _begin(ledger, name="other1")
        ledger.update(a.id, status="ready", voice_id="v-1")
        with pytest.raises(LedgerConflict, match="already belongs to ledger row"):
            ledger.update(b.id, status="ready", voice_id="v-1")
        # a voice first recorded by sync (origin remote) moves to the row that made it
        remote = VoiceRecord(
            provider="dashscope",
            base_url=a.base_url,
            family="cosyvoice",
            voice_id="v-2",
            status="ready",
            origin="remote",
        )
        found = ledger.record_found(remote)
        assert found.origin == "remote" and found.id > 0
        again = ledger.record_found(remote)
        assert again.id == found.id  # not recorded twice
        moved = ledger.update(b.id, status="ready", voice_id="v-2")
        assert moved.voice_id == "v-2"
        assert ledger.get(found.id) is None
        assert [r.voice_id for r in ledger.rows()] == ["v-1", "v-2"]


def test_the_schema_refuses_an_unknown_status(tmp_path: Path) -> None:
    with Ledger(tmp_path / "v.sqlite") as ledger:
        row = _begin(ledger)
        with pytest.raises(LedgerError, match="CHECK constraint"):
            ledger.update(row.id, status="done")
        assert ledger.get(row.id) == row  # the failed write changed nothing


def test_read_voices_is_read_only(tmp_path: Path) -> None:
    missing = tmp_path / "none" / "voices.sqlite"
    assert read_voices(missing) == []
    assert not missing.exists() and not missing.parent.exists()
    path = tmp_path / "v.sqlite"
    with Ledger(path) as ledger:
        _begin(ledger)
    before = path.read_bytes()
    assert len(read_voices(path)) == 1
    assert path.read_bytes() == before


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    Ledger(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = 7")
    conn.commit()
    conn.close()
    with pytest.raises(LedgerError, match="newer voiceprep"):
        Ledger(path)


def test_scrub_removes_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINIMAX_API_KEY", "mm-secret-value-123")
    text = (
        "401: Authorization: Bearer sk-abc.def-123 failed; api_key=sk-zzz; "
        '{"xi-api-key": "el-777"} echo mm-secret-value-123'
    )
    out = scrub(text)
    for secret in ("sk-abc.def-123", "sk-zzz", "el-777", "mm-secret-value-123"):
        assert secret not in out
    assert out.startswith("401: Authorization") and "Bearer ***" in out
    assert scrub("nothing secret here") == "nothing secret here"


def test_errors_are_stored_scrubbed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-live-0123456789")
    path = tmp_path / "v.sqlite"
    with Ledger(path) as ledger:
        row = _begin(ledger)
        after = ledger.update(
            row.id, status="failed", error=("provider_auth", "key sk-live-0123456789 refused")
        )
    assert after.last_error == {"reason": "provider_auth", "message": "key *** refused"}
    raw = path.read_bytes() + (
        path.with_name(path.name + "-wal").read_bytes() if Path(f"{path}-wal").exists() else b""
    )
    assert b"sk-live-0123456789" not in raw


def test_default_ledger_path(tmp_path: Path) -> None:
    assert default_ledger_path(tmp_path) == tmp_path / "voices.sqlite"
    assert default_ledger_path(tmp_path, tmp_path / "shared.sqlite") == tmp_path / "shared.sqlite"


def _writer(args: tuple[str, int]) -> int:
    path, worker = args
    with Ledger(Path(path), busy_timeout_s=30) as ledger:
        for i in range(20):
            row = ledger.begin(
                VoiceRecord(
                    provider="minimax",
                    base_url="https://api.minimax.io",
                    family="minimax",
                    target_model="speech-2.8-hd",
                    name=f"vp_w{worker}_{i:03d}",
                    clip_sha256=f"{worker:02d}{i:062d}",
                )
            )
            ledger.mark_sent(row.id)
            ledger.update(row.id, status="ready", voice_id=f"vp_w{worker}_{i:03d}")
    return worker


def test_several_processes_write_without_losing_rows(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    Ledger(path).close()
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=4, mp_context=ctx) as pool:
        done = sorted(pool.map(_writer, [(str(path), w) for w in range(4)]))
    assert done == [0, 1, 2, 3]
    rows = read_voices(path)
    assert len(rows) == 80
    assert all(r["status"] == "ready" for r in rows)
    assert len({r["voice_id"] for r in rows}) == 80


def test_lock_excludes_a_second_writer(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    with (
        ledger_lock(path, timeout_s=0.1),
        pytest.raises(LedgerBusy, match=r"in use by voiceprep pid \d+"),
        ledger_lock(path, timeout_s=0.1),
    ):
        pass
    with ledger_lock(path, timeout_s=0.1):  # released: free again
        pass


def test_run_ledger_path_follows_run_json_and_survives_odd_settings(tmp_path: Path) -> None:
    from pipeline.enroll.ledger import run_ledger_path

    shared = tmp_path / "shared.sqlite"
    assert run_ledger_path(tmp_path, {"config": {"ledger": str(shared)}}) == shared
    default = tmp_path / "voices.sqlite"
    for odd in (
        None,
        {},
        {"config": None},
        {"config": "x"},
        {"config": {"ledger": None}},
        {"config": {"ledger": 3}},
    ):
        assert run_ledger_path(tmp_path, odd) == default


@pytest.mark.parametrize("folder", ["out#1", "what?mode=rw", "100%", "a b", "naïve 张伟", "x%23y"])
def test_read_voices_opens_the_right_file_whatever_the_folder_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, folder: str
) -> None:
    monkeypatch.chdir(tmp_path)  # a stray database would appear here
    path = tmp_path / folder / "voices.sqlite"
    path.parent.mkdir()
    with Ledger(path) as ledger:
        _begin(ledger)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert [row["name"] for row in read_voices(path)] == ["alix12345"]
    assert [row["name"] for row in read_voices(Path(folder) / "voices.sqlite")] == ["alix12345"]  # relative
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    "text",
    [
        "InvalidApiKey: Invalid API-key provided.",
        "InvalidToken: The token has expired.",
        "MissingSignature: request is not signed",
    ],
)
def test_scrub_keeps_error_codes_and_their_messages(text: str) -> None:
    assert scrub(text) == text


def test_scrub_removes_every_fragment_of_a_known_key(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-0123456789abcdefghijklmnopqrstuvwxyz"
    monkeypatch.setenv("DASHSCOPE_API_KEY", key)
    for fragment in (key[:20], key[-8:], key[5:13], key[:8]):
        out = scrub(f"Bad key '{fragment}...' (cut)")
        assert fragment not in out and out.startswith("Bad key '")
    assert scrub(f"the key {key[:7]} is short") == f"the key {key[:7]} is short"  # < 8: not a fragment


def test_read_voices_scrubs_a_key_an_older_voiceprep_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-0123456789abcdefghijklmnopqrstuvwxyz"
    path = tmp_path / "v.sqlite"
    with Ledger(path) as ledger:
        row = _begin(ledger)
    conn = sqlite3.connect(path)  # as the 200-character cut left it: the key's first 20 characters
    conn.execute(
        "UPDATE voices SET last_error = ? WHERE id = ?",
        (f'{{"reason": "provider_bad_request", "message": "Bad key {key[:20]}"}}', row.id),
    )
    conn.commit()
    conn.close()
    monkeypatch.setenv("DASHSCOPE_API_KEY", key)
    [shown] = read_voices(path)
    assert shown["last_error"] == {"reason": "provider_bad_request", "message": "Bad key ***"}
