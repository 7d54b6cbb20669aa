"""``voices update`` (CosyVoice ``update_voice``, then the review polled to OK), the ledger's version
history and its migration from schema 1, CosyVoice listing that pages until an empty page, the MiniMax
codes 1041/2045/2048/2056 and its 7-day expiry, and Qwen's fallback signal: all against the local fake."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from _cli import voiceprep
from fake_providers import FakeProviders, Fault, create_request, make_wav, provider_client
from submit_fakes import make_run

from pipeline.batch.config import RunConfig
from pipeline.enroll import ledger as ledger_mod
from pipeline.enroll.ledger import Ledger, read_records, read_versions
from pipeline.enroll.providers.base import ProviderError, VoiceRecord
from pipeline.enroll.submit import submit_run
from pipeline.enroll.voices import expires_at, list_voices, show_voice, update_voice
from pipeline.errors import InvalidArgument


@pytest.fixture
def env(fake: FakeProviders, monkeypatch: pytest.MonkeyPatch) -> FakeProviders:
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    return fake


def _submitted(out: Path, families: tuple[str, ...]) -> None:
    make_run(out, speakers=("alice",), families=families, audio=lambda i: make_wav(1.0 + i / 10))
    outcomes = submit_run(out, config=RunConfig(region="cn"), settle_interval_s=0.01, settle_timeout_s=5.0)
    assert all(o.status == "ready" for o in outcomes), outcomes


# --- update ---------------------------------------------------------------------------------------------


def test_update_reenrols_the_same_id_polls_to_ok_and_records_each_clip(
    env: FakeProviders, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    _submitted(out, ("cosyvoice",))
    ledger = out / "voices.sqlite"
    [row] = read_records(ledger)
    first_sha = row.clip_sha256
    better = tmp_path / "better.wav"
    better.write_bytes(make_wav(2.0, freq=300.0))
    env.clear_requests()

    after = update_voice(
        ledger, row.voice_id or "", better, region="cn", settle_interval_s=0.01, settle_timeout_s=5.0
    )

    assert (after.voice_id, after.status, after.action) == (row.voice_id, "ready", "update")
    [sent] = env.requests_to("cosyvoice.update_voice")
    assert set(sent.json["input"]) == {"action", "voice_id", "url"}
    assert sent.json["input"]["voice_id"] == row.voice_id
    assert [r.json["input"]["action"] for r in env.requests if r.endpoint.startswith("cosyvoice.")] == [
        "update_voice",
        "query_voice",
        "query_voice",
        "query_voice",
    ]  # under review twice (deploy_polls=2), then OK
    [voice] = env.voices("cosyvoice")
    assert voice["status"] == "OK" and voice["audio_sha256"] != first_sha
    versions = read_versions(ledger, row.id)
    assert [(v["version"], v["clip_sha256"]) for v in versions] == [
        (1, first_sha),
        (2, voice["audio_sha256"]),
    ]
    assert show_voice(ledger, f"#{row.id}").clip_sha256 == voice["audio_sha256"]
    assert len(env.voices("cosyvoice")) == 1  # no second voice


def test_an_update_the_review_rejects_ends_rejected(env: FakeProviders, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _submitted(out, ("cosyvoice",))
    bad = tmp_path / "bad.wav"
    bad.write_bytes(make_wav(2.0, freq=500.0))
    env.mark_bad_audio(bad.read_bytes())
    [row] = read_records(out / "voices.sqlite")
    after = update_voice(out / "voices.sqlite", f"#{row.id}", bad, region="cn", settle_interval_s=0.01)
    assert after.status == "rejected" and after.reason == "provider_rejected"


def test_only_cosyvoice_can_update_and_nothing_is_sent_otherwise(env: FakeProviders, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _submitted(out, ("qwen-tts",))
    clip = tmp_path / "new.wav"
    clip.write_bytes(make_wav(2.0))
    env.clear_requests()
    [row] = read_records(out / "voices.sqlite")
    with pytest.raises(InvalidArgument, match="update_voice"):
        update_voice(out / "voices.sqlite", f"#{row.id}", clip)
    assert env.requests == []
    assert len(read_versions(out / "voices.sqlite", row.id)) == 1


def test_voices_update_and_show_through_the_command(
    fake: FakeProviders, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "out"
    _submitted(out, ("cosyvoice",))
    [row] = read_records(out / "voices.sqlite")
    clip = tmp_path / "take2.wav"
    clip.write_bytes(make_wav(2.0, freq=330.0))
    done = voiceprep(
        "voices",
        "update",
        row.voice_id,
        "--clip",
        clip,
        "--out",
        out,
        "--region",
        "cn",
        "--poll-interval",
        "0.1",
        env=fake.env(),
    )
    assert done.returncode == 0, done.stderr
    assert "version 2" in done.stdout
    shown = voiceprep("voices", "show", f"#{row.id}", "--out", out, "--json", env=fake.env())
    versions = json.loads(shown.stdout)["versions"]
    assert [v["clip_path"] for v in versions][-1] == str(clip.resolve())


# --- ledger migration -----------------------------------------------------------------------------------


def test_a_schema_1_ledger_is_migrated_keeping_every_row_with_its_clip_as_version_1(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    for statement in ledger_mod._SCHEMA_V1.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (1)")
    conn.execute(
        "INSERT INTO voices (provider, base_url, family, target_model, voice_id, name, clip_sha256, clip_path, "
        "status, created_at, updated_at) VALUES ('dashscope', 'https://x', 'cosyvoice', 'cosyvoice-v3-plus', "
        "'v1', 'ali', 'abc', '/c.wav', 'ready', '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')"
    )
    conn.commit()
    conn.close()
    [before] = read_records(path)  # read-only readers take a schema-1 ledger as it is
    assert before.details == {} and read_versions(path, before.id) == []
    with Ledger(path) as ledger:
        [row] = ledger.rows()
        assert (row.voice_id, row.details) == ("v1", {})
        assert [(v["version"], v["clip_sha256"], v["clip_path"]) for v in ledger.versions(row.id)] == [
            (1, "abc", "/c.wav")
        ]
        ledger.update(row.id, details={"fallback_mode": "x"})
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == 2
    assert json.loads(conn.execute("SELECT details FROM voices").fetchone()[0]) == {"fallback_mode": "x"}


# --- listing, codes, signals ------------------------------------------------------------------------------


def test_cosyvoice_listing_pages_until_an_empty_page(tmp_path: Path) -> None:
    with FakeProviders(page_cap=10) as capped:
        for i in range(25):
            capped.add_voice("cosyvoice", prefix=f"p{i}")
        client = provider_client(capped, "cosyvoice")
        assert len(client.list_voices()) == 25  # pages of 10 although 100 were asked for
        pages = [r.json["input"]["page_index"] for r in capped.requests_to("cosyvoice.list_voice")]
        assert pages == [0, 1, 2, 3]  # the last one came back empty


@pytest.mark.parametrize(
    ("code", "reason", "retried"),
    [(2045, "provider_rate_limited", True), (1041, "provider_rate_limited", True)],
)
def test_minimax_rate_codes_are_retried(
    fake: FakeProviders, tmp_path: Path, code: int, reason: str, retried: bool
) -> None:
    clip = tmp_path / "c.wav"
    clip.write_bytes(make_wav(1.0))
    mm = provider_client(fake, "minimax")
    fake.inject("minimax.clone", Fault.error(code))
    made = mm.create_voice(create_request(clip, "minimax", "speech-2.8-hd", "vp_alice_abc123"))
    assert made.status == "ready" and len(fake.requests_to("minimax.clone")) == 2
    fake.inject("minimax.get_voice", *[Fault.error(code)] * 4)
    with pytest.raises(ProviderError) as failed:
        mm.list_voices()
    assert failed.value.reason == reason and failed.value.retryable is retried
    assert len(fake.requests_to("minimax.get_voice")) == 4  # every attempt used


@pytest.mark.parametrize(("code", "reason"), [(2056, "provider_quota"), (2048, "provider_bad_request")])
def test_minimax_limit_and_prompt_codes_are_not_retried(
    fake: FakeProviders, tmp_path: Path, code: int, reason: str
) -> None:
    clip = tmp_path / "c.wav"
    clip.write_bytes(make_wav(1.0))
    fake.inject("minimax.clone", Fault.error(code))
    with pytest.raises(ProviderError) as failed:
        provider_client(fake, "minimax").create_voice(
            create_request(clip, "minimax", "speech-2.8-hd", "vp_alice_abc123")
        )
    assert (failed.value.reason, failed.value.provider_code) == (reason, str(code))
    assert len(fake.requests_to("minimax.clone")) == 1


def test_minimax_voices_show_when_they_expire_unused(env: FakeProviders, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _submitted(out, ("minimax",))
    [row] = read_records(out / "voices.sqlite")
    assert "expires_unless_used_by" in row.details
    assert expires_at(row) == row.details["expires_unless_used_by"]
    listed = voiceprep("voices", "list", "--out", out, "--json", env=env.env())
    assert json.loads(listed.stdout)["expires_at"] == row.details["expires_unless_used_by"]
    table = voiceprep("voices", "list", "--out", out, env=env.env())
    assert f"after {row.details['expires_unless_used_by'][:19]} unless" in table.stdout


def test_qwen_fallback_is_recorded_and_shown(env: FakeProviders, tmp_path: Path) -> None:
    env.qwen_fallback = ("denoise", "the sample was noisy")
    out = tmp_path / "out"
    make_run(out, speakers=("alice",), families=("qwen-tts",), audio=lambda i: make_wav(1.0))
    [outcome] = submit_run(out, config=RunConfig())
    assert "fallback" in outcome.note
    [row] = read_records(out / "voices.sqlite")
    assert row.details == {"fallback_mode": "denoise", "fallback_reason": "the sample was noisy"}
    listed = voiceprep("voices", "list", "--out", out, env=env.env())
    assert "fallback: denoise" in listed.stdout
    report = list_voices(out / "voices.sqlite")
    assert report.entries[0][0] is not None and report.entries[0][0].details["fallback_mode"] == "denoise"
    assert isinstance(report.entries[0][0], VoiceRecord)
