"""Submitting clips: names, the intent/outcome protocol under faults, reconciliation, dry run, previews,
missing keys, and the properties "one clip, one voice, one ledger row" under generated fault schedules."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from _cli import voiceprep
from fake_providers import ECHO_SHAPES, FakeProviders, FakeTime, Fault, fake_runtime, make_wav
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from submit_fakes import SECRET, FakeCloud, FakeProvider, Killed, make_providers, make_run

from pipeline.batch.config import RunConfig
from pipeline.batch.manifest import read_rows
from pipeline.enroll.ledger import Ledger, LedgerBusy, ledger_lock, read_voices
from pipeline.enroll.providers import make_provider
from pipeline.enroll.providers.base import VoiceRecord
from pipeline.enroll.providers.http import shown_request
from pipeline.enroll.submit import (
    MissingApiKey,
    resolve_target_model,
    submit_run,
    voice_name,
)
from pipeline.enroll.voices import sync_voices
from pipeline.errors import InvalidArgument
from pipeline.rules.families import list_families, load_family

FAMILIES = ("cosyvoice", "qwen-tts", "minimax")
REPO = Path(__file__).resolve().parents[1]


def _clips(out: Path) -> dict[tuple[str, str], dict]:
    return {(r["speaker"], r["family"]): r for r in read_rows(out / "clips.jsonl")}


def _ledger(out: Path) -> list[dict]:
    return read_voices(out / "voices.sqlite")


def _creates(cloud: FakeCloud) -> list[tuple[str, str, str]]:
    return [c for c in cloud.calls if c[0] == "create"]


def _submit(out: Path, providers: dict, *, families=None, speakers=None, target_models=None, **kw: object):
    kw.setdefault("settle_interval_s", 1.0)
    kw.setdefault("settle_timeout_s", 5.0)
    config = RunConfig(target_models=target_models or {})
    return submit_run(out, families, speakers, config=config, providers=providers, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ names


@pytest.mark.parametrize("family", list_families())
def test_names_fit_every_family_rule(family: str) -> None:
    spec = load_family(family)
    model = spec.default_target_model or spec.target_models[0]
    names = set()
    for speaker in ("alice", "Zoë O'Brien-Smith", "李", "x" * 300, "007"):
        for gen in range(3):
            name = voice_name(
                spec, speaker=speaker, clip_sha256="ab" * 32, target_model=model, generation=gen
            )
            assert spec.name_rule.matches(name), name
            names.add(name)
    assert len(names) == 15  # distinct per speaker and generation


def test_names_are_deterministic_and_depend_on_clip_and_model() -> None:
    cosy, qwen, mm = load_family("cosyvoice"), load_family("qwen-tts"), load_family("minimax")
    a = voice_name(cosy, speaker="alice", clip_sha256="ab" * 32, target_model="cosyvoice-v3-plus")
    assert a == voice_name(cosy, speaker="alice", clip_sha256="ab" * 32, target_model="cosyvoice-v3-plus")
    assert len(a) == 9 and a.startswith("ali") and a.isalnum() and a == a.lower()
    assert a != voice_name(cosy, speaker="alice", clip_sha256="cd" * 32, target_model="cosyvoice-v3-plus")
    assert a != voice_name(cosy, speaker="alice", clip_sha256="ab" * 32, target_model="cosyvoice-v2")
    q = voice_name(qwen, speaker="alice", clip_sha256="ab" * 32, target_model="qwen3-tts-vc-2026-01-22")
    assert q.startswith("alice_") and len(q) == 16
    m = voice_name(mm, speaker="Alice B", clip_sha256="ab" * 32, target_model="speech-2.8-hd")
    assert m.startswith("vp_alice-b_") and len(m) == len("vp_alice-b_") + 10
    with pytest.raises(InvalidArgument, match="generation"):
        voice_name(mm, speaker="a", clip_sha256="ab", target_model="m", generation=-1)


def test_target_model_default_override_and_unknown() -> None:
    spec = load_family("cosyvoice")
    assert resolve_target_model(spec) == "cosyvoice-v3-plus"
    assert resolve_target_model(spec, {"cosyvoice": "cosyvoice-v2"}) == "cosyvoice-v2"
    assert resolve_target_model(spec, {"minimax": "speech-02-hd"}) == "cosyvoice-v3-plus"
    with pytest.raises(InvalidArgument, match="'cosyvoice-v9' is not a cosyvoice model"):
        resolve_target_model(spec, {"cosyvoice": "cosyvoice-v9"})


# ------------------------------------------------------------------------------------------------ happy path


def test_submit_creates_one_voice_per_clip_and_updates_manifest(tmp_path: Path) -> None:
    make_run(tmp_path)
    cloud = FakeCloud()
    outcomes = _submit(tmp_path, make_providers(cloud, FAMILIES))
    assert [(o.action, o.status) for o in outcomes] == [("created", "ready")] * 6
    assert len(cloud.voices) == 6
    ledger = _ledger(tmp_path)
    assert sorted(r["voice_id"] for r in ledger) == sorted(cloud.voices)
    assert all(r["status"] == "ready" and r["sent_at"] for r in ledger)
    cosy = next(r for r in ledger if r["family"] == "cosyvoice" and r["speaker"] == "alice")
    clip_bytes = (tmp_path / "clips/alice/cosyvoice.wav").read_bytes()
    assert cosy["clip_sha256"] == hashlib.sha256(clip_bytes).hexdigest()
    assert cosy["target_model"] == "cosyvoice-v3-plus" and cosy["sources"] == ["alice/take1.wav"]
    assert cosy["enrollment_key"] == hashlib.sha256(b"key:alice:cosyvoice").hexdigest()
    clips = _clips(tmp_path)
    for (speaker, family), row in clips.items():
        match = next(r for r in ledger if r["speaker"] == speaker and r["family"] == family)
        assert row["status"] == "submitted" and row["voice_id"] == match["voice_id"]
        assert row["target_model"] == load_family(family).default_target_model

    # a second submit re-verifies and never creates
    calls_before = len(_creates(cloud))
    again = _submit(tmp_path, make_providers(cloud, FAMILIES))
    assert [(o.action, o.status) for o in again] == [("reverified", "ready")] * 6
    assert len(_creates(cloud)) == calls_before and len(cloud.voices) == 6 and len(_ledger(tmp_path)) == 6


def test_filters_and_bad_arguments(tmp_path: Path) -> None:
    make_run(tmp_path)
    cloud = FakeCloud()
    providers = make_providers(cloud, FAMILIES)
    out = _submit(tmp_path, providers, families=["minimax"], speakers=["bob"])
    assert [(o.speaker, o.family) for o in out] == [("bob", "minimax")]
    assert _submit(tmp_path, providers, families=["elevenlabs"]) == []  # a known family without clips
    with pytest.raises(InvalidArgument, match="unknown speaker 'carol'"):
        _submit(tmp_path, providers, speakers=["carol"])
    with pytest.raises(Exception, match="unknown family 'nope'"):
        _submit(tmp_path, providers, families=["nope"])
    with pytest.raises(InvalidArgument, match="not a minimax model"):
        _submit(tmp_path, providers, target_models={"minimax": "speech-9"})
    with pytest.raises(InvalidArgument, match=r"clips\.jsonl does not exist"):
        _submit(tmp_path / "empty", providers)
    assert len(cloud.voices) == 1


# ------------------------------------------------------------------------------------------------ faults


def test_lost_answer_after_create_is_reconciled_not_duplicated(tmp_path: Path) -> None:
    make_run(tmp_path, speakers=["alice"], families=["qwen-tts"])
    cloud = FakeCloud()
    providers = make_providers(cloud, ["qwen-tts"], faults=["lost_after"])
    [o] = _submit(tmp_path, providers)
    assert (o.status, o.action) == ("ready", "created") and "answer was lost" in o.note
    assert len(cloud.voices) == 1 and o.voice_id in cloud.voices
    [row] = _ledger(tmp_path)
    assert row["voice_id"] == o.voice_id and row["request_ids"] == ["req-lost2"]
    assert _clips(tmp_path)[("alice", "qwen-tts")]["voice_id"] == o.voice_id


def test_lost_request_stays_unknown_and_is_never_resubmitted(tmp_path: Path) -> None:
    make_run(tmp_path, speakers=["alice"], families=["minimax"])
    cloud = FakeCloud()
    [o] = _submit(tmp_path, make_providers(cloud, ["minimax"], faults=["lost_before"]))
    assert o.status == "unknown" and not o.ok and o.reason == "outcome_unknown"
    assert cloud.voices == {}
    assert _clips(tmp_path)[("alice", "minimax")]["status"] == "ready"
    for _ in range(2):
        outs = _submit(tmp_path, make_providers(cloud, ["minimax"]))
        assert [o.status for o in outs] == ["unknown", "unknown"]  # the reconciled row, then the clip
        assert outs[1].action == "skipped" and "not resubmitted" in outs[1].last_error["message"]
    assert len(_creates(cloud)) == 1 and cloud.voices == {}
    assert [r["status"] for r in _ledger(tmp_path)] == ["unknown"]


def test_an_unknown_voice_proven_absent_becomes_retryable(tmp_path: Path) -> None:
    make_run(tmp_path, speakers=["alice"], families=["minimax"])
    cloud = FakeCloud()
    [o] = _submit(tmp_path, make_providers(cloud, ["minimax"], faults=["lost_before"]), absent_settle_s=0)
    assert o.status == "unknown"  # search 1, right after the lost answer
    outs = _submit(tmp_path, make_providers(cloud, ["minimax"]), absent_settle_s=0)
    assert [o.status for o in outs] == ["unknown", "unknown"]  # search 2: not yet proven
    assert outs[0].last_error["absent_checks"] == 2
    report = sync_voices(
        tmp_path / "voices.sqlite", providers=make_providers(cloud, ["minimax"]), absent_settle_s=0
    )
    assert [(b.status, a.status) for b, a, _ in report.changes] == [("unknown", "failed")]  # search 3: absent
    [row] = _ledger(tmp_path)
    assert row["last_error"]["reason"] == "not_created"
    outs = _submit(tmp_path, make_providers(cloud, ["minimax"]), absent_settle_s=0)
    assert [(o.action, o.status) for o in outs] == [("created", "ready")]
    assert len(cloud.voices) == 1 and len(_creates(cloud)) == 2  # retried once, one voice
    [row] = _ledger(tmp_path)  # the same row, under the same name
    assert row["voice_id"] in cloud.voices and row["name"] == o.name
    assert _clips(tmp_path)[("alice", "minimax")]["status"] == "submitted"


def test_an_unknown_voice_is_not_proven_absent_before_the_settle_interval(tmp_path: Path) -> None:
    make_run(tmp_path, speakers=["alice"], families=["minimax"])
    cloud = FakeCloud()
    _submit(tmp_path, make_providers(cloud, ["minimax"], faults=["lost_before"]))
    for _ in range(4):  # searches 2..5 within seconds of the send: far inside ABSENT_SETTLE_S
        outs = _submit(tmp_path, make_providers(cloud, ["minimax"]))
        assert [o.status for o in outs] == ["unknown", "unknown"]
    assert "proven absent" in outs[0].note and len(_creates(cloud)) == 1


def test_crash_between_create_and_ledger_write_is_reconciled(tmp_path: Path) -> None:
    make_run(tmp_path, speakers=["alice", "bob"], families=["cosyvoice"])
    cloud = FakeCloud()
    with pytest.raises(Killed):
        _submit(tmp_path, make_providers(cloud, ["cosyvoice"], faults=["ok", "crash"]))
    rows = _ledger(tmp_path)
    assert [(r["status"], r["voice_id"] is None, r["sent_at"] is None) for r in rows] == [
        ("ready", False, False),
        ("pending", True, False),
    ]
    assert len(cloud.voices) == 2  # the provider made bob's voice before the "process" died
    outs = _submit(tmp_path, make_providers(cloud, ["cosyvoice"]))
    assert outs[0].action == "reconciled" and outs[0].status == "ready" and outs[0].speaker == "bob"
    assert len(_creates(cloud)) == 2 and len(cloud.voices) == 2
    rows = _ledger(tmp_path)
    assert sorted(r["voice_id"] for r in rows) == sorted(cloud.voices)
    assert {c["voice_id"] for c in _clips(tmp_path).values()} == set(cloud.voices)


def test_intent_without_sent_marker_is_retried_with_the_same_row(tmp_path: Path) -> None:
    make_run(tmp_path, speakers=["alice"], families=["minimax"])
    spec = load_family("minimax")
    sha = hashlib.sha256((tmp_path / "clips/alice/minimax.wav").read_bytes()).hexdigest()
    name = voice_name(spec, speaker="alice", clip_sha256=sha, target_model="speech-2.8-hd")
    with Ledger(tmp_path / "voices.sqlite") as ledger:  # as left by a crash right after the intent
        ledger.begin(
            VoiceRecord(
                provider="minimax",
                base_url="https://fake.example/api/v1",
                family="minimax",
                target_model="speech-2.8-hd",
                name=name,
                clip_sha256=sha,
            )
        )
    cloud = FakeCloud()
    outs = _submit(tmp_path, make_providers(cloud, ["minimax"]))
    assert [o.action for o in outs] == ["created"]
    assert list(cloud.voices) == [name]
    [row] = _ledger(tmp_path)
    assert row["status"] == "ready" and row["voice_id"] == name


def test_eventually_consistent_list_resolves_on_a_later_run(tmp_path: Path) -> None:
    make_run(tmp_path, speakers=["alice"], families=["cosyvoice"])
    cloud = FakeCloud()
    [o] = _submit(tmp_path, make_providers(cloud, ["cosyvoice"], faults=["lost_after"], list_lag=1))
    assert o.status == "unknown" and len(cloud.voices) == 1
    outs = _submit(tmp_path, make_providers(cloud, ["cosyvoice"]))
    assert outs[0].action == "reconciled" and outs[0].status == "ready"
    assert outs[1].action == "existing" and outs[1].voice_id == next(iter(cloud.voices))
    assert len(_creates(cloud)) == 1
    assert _clips(tmp_path)[("alice", "cosyvoice")]["status"] == "submitted"


def test_reconcile_failure_blocks_the_create(tmp_path: Path) -> None:
    make_run(tmp_path, speakers=["alice"], families=["qwen-tts"])
    cloud = FakeCloud()
    with pytest.raises(Killed):
        _submit(tmp_path, make_providers(cloud, ["qwen-tts"], faults=["crash"]))
    outs = _submit(tmp_path, make_providers(cloud, ["qwen-tts"], find_faults=["error"]))
    assert outs[0].action == "reconciled" and outs[0].status == "pending" and not outs[0].ok
    assert "could not ask the provider" in outs[0].note
    assert outs[1].action == "skipped" and outs[1].reason == "outcome_unknown"
    assert len(_creates(cloud)) == 1 and len(cloud.voices) == 1


def test_review_ready_rejected_and_timeout(tmp_path: Path) -> None:
    make_run(tmp_path, speakers=["alice", "bob", "carol"], families=["cosyvoice"])
    cloud = FakeCloud()
    providers = {
        "cosyvoice": FakeProvider(cloud, "cosyvoice", faults=["ok", "deploy_reject", "ok"], review_polls=3)
    }
    outs = _submit(tmp_path, providers, speakers=["alice", "bob"], settle_timeout_s=10, settle_interval_s=1)
    assert [o.status for o in outs] == ["ready", "rejected"]
    assert outs[1].reason == "provider_rejected"
    clips = _clips(tmp_path)
    assert clips[("alice", "cosyvoice")]["status"] == "submitted"
    assert clips[("bob", "cosyvoice")]["status"] == "rejected"
    assert clips[("bob", "cosyvoice")]["reasons"] == ["provider_rejected"]
    # a review longer than the wait: the voice stays deploying, the clip is submitted, a later run settles it
    [o] = _submit(tmp_path, providers, speakers=["carol"], settle_timeout_s=1, settle_interval_s=1)
    assert o.status == "deploying" and o.ok
    assert _clips(tmp_path)[("carol", "cosyvoice")]["status"] == "submitted"
    later = _submit(tmp_path, providers, speakers=["carol"], settle_timeout_s=10, settle_interval_s=1)
    assert [o.status for o in later] == ["ready"]
    assert len(_creates(cloud)) == 3 and len(cloud.voices) == 3  # the rejected one is still listed remotely


def test_audio_rejection_is_final_until_the_clip_changes(tmp_path: Path) -> None:
    make_run(tmp_path, speakers=["alice"], families=["qwen-tts"])
    cloud = FakeCloud()
    [o] = _submit(tmp_path, make_providers(cloud, ["qwen-tts"], faults=["reject"]))
    assert (o.status, o.reason) == ("rejected", "provider_rejected") and cloud.voices == {}
    assert _clips(tmp_path)[("alice", "qwen-tts")]["status"] == "rejected"
    assert _submit(tmp_path, make_providers(cloud, ["qwen-tts"])) == []  # no ready clip left
    assert len(_creates(cloud)) == 1


def test_quota_stops_the_family_and_is_retried_later(tmp_path: Path) -> None:
    make_run(tmp_path, speakers=["alice", "bob", "carol"], families=["cosyvoice", "minimax"])
    cloud = FakeCloud()
    providers = {
        "cosyvoice": FakeProvider(cloud, "cosyvoice", faults=["quota"], review_polls=0),
        "minimax": FakeProvider(cloud, "minimax"),
    }
    outs = _submit(tmp_path, providers)
    by = {(o.speaker, o.family): o for o in outs}
    assert (
        by[("alice", "cosyvoice")].status == "failed"
        and by[("alice", "cosyvoice")].reason == "provider_quota"
    )
    assert (
        by[("bob", "cosyvoice")].status == "skipped" and by[("bob", "cosyvoice")].reason == "provider_quota"
    )
    assert all(by[(s, "minimax")].status == "ready" for s in ("alice", "bob", "carol"))
    assert [c[1] for c in _creates(cloud)].count("cosyvoice") == 1
    failed = next(r for r in _ledger(tmp_path) if r["family"] == "cosyvoice")
    assert failed["last_error"]["reason"] == "provider_quota"
    # quota freed: the failed row is retried under the same name, the others are created
    outs = _submit(tmp_path, providers, families=["cosyvoice"])
    assert [o.status for o in outs] == ["ready"] * 3
    rows = [r for r in _ledger(tmp_path) if r["family"] == "cosyvoice"]
    assert len(rows) == 3 and rows[0]["id"] == failed["id"] and rows[0]["name"] == failed["name"]


def test_gone_voice_is_detected_and_recreated_under_a_new_name(tmp_path: Path) -> None:
    make_run(tmp_path, speakers=["alice"], families=["minimax"])
    cloud = FakeCloud()
    [first] = _submit(tmp_path, make_providers(cloud, ["minimax"]))
    cloud.graveyard.append(cloud.voices.pop(first.voice_id))  # expired after 7 days unused
    [o] = _submit(tmp_path, make_providers(cloud, ["minimax"]))
    assert (o.action, o.status, o.reason) == ("reverified", "gone", "voice_gone")
    clip = _clips(tmp_path)[("alice", "minimax")]
    assert clip["status"] == "ready" and clip["voice_id"] is None and "voice_gone" in clip["reasons"]
    [again] = _submit(tmp_path, make_providers(cloud, ["minimax"]))
    assert again.status == "ready" and again.voice_id != first.voice_id  # MiniMax never reuses an id
    assert [r["status"] for r in _ledger(tmp_path)] == ["gone", "ready"]


def test_voice_known_only_to_the_manifest_is_recorded(tmp_path: Path) -> None:
    make_run(tmp_path, speakers=["alice"], families=["minimax"])
    cloud = FakeCloud()
    [o] = _submit(tmp_path, make_providers(cloud, ["minimax"]))
    (tmp_path / "voices.sqlite").unlink()  # the ledger was lost
    for suffix in ("-wal", "-shm"):
        Path(f"{tmp_path / 'voices.sqlite'}{suffix}").unlink(missing_ok=True)
    [again] = _submit(tmp_path, make_providers(cloud, ["minimax"]))
    assert again.action == "reverified" and again.status == "ready"
    [row] = _ledger(tmp_path)
    assert (row["voice_id"], row["origin"]) == (o.voice_id, "manifest")
    assert len(_creates(cloud)) == 1


def test_preview_is_saved_next_to_the_clip(tmp_path: Path) -> None:
    make_run(tmp_path, speakers=["alice"], families=["cosyvoice", "minimax"])
    cloud = FakeCloud()
    mp3 = b"ID3\x04\x00" + bytes(100)
    providers = {
        "cosyvoice": FakeProvider(cloud, "cosyvoice"),
        "minimax": FakeProvider(cloud, "minimax", preview_bytes=mp3),
    }
    outs = _submit(tmp_path, providers, preview_text="Hello there.")
    assert [o.preview_path for o in outs] == [
        str(tmp_path / "clips/alice/cosyvoice.preview.wav"),
        str(tmp_path / "clips/alice/minimax.preview.mp3"),
    ]
    assert (tmp_path / "clips/alice/minimax.preview.mp3").read_bytes() == mp3
    assert (tmp_path / "clips/alice/cosyvoice.preview.wav").read_bytes()[:4] == b"RIFF"
    assert _clips(tmp_path)[("alice", "minimax")]["preview"] == "clips/alice/minimax.preview.mp3"
    assert {r["preview_path"] for r in _ledger(tmp_path)} == {
        str(tmp_path / "clips/alice/cosyvoice.preview.wav"),
        str(tmp_path / "clips/alice/minimax.preview.mp3"),
    }


def test_another_process_holding_the_ledger_stops_submit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.enroll.ledger

    make_run(tmp_path, speakers=["alice"], families=["minimax"])
    cloud = FakeCloud()
    monkeypatch.setattr(pipeline.enroll.ledger, "LOCK_TIMEOUT_S", 0.1)
    with ledger_lock(tmp_path / "voices.sqlite"), pytest.raises(LedgerBusy):
        _submit(tmp_path, make_providers(cloud, ["minimax"]))
    assert cloud.calls == []


# ------------------------------------------------------------------------------------------------ dry run


def test_dry_run_sends_and_writes_nothing(tmp_path: Path) -> None:
    make_run(tmp_path)
    cloud = FakeCloud()
    manifest = (tmp_path / "clips.jsonl").read_bytes()
    outs = _submit(tmp_path, make_providers(cloud, FAMILIES), dry_run=True, preview_text="hi")
    assert [o.action for o in outs] == ["dry-run"] * 6 and all(o.ok for o in outs)
    assert all(len(o.requests) == 1 and o.name for o in outs)
    assert cloud.calls == [] and len(cloud.prepared) == 6
    assert not (tmp_path / "voices.sqlite").exists()
    assert (tmp_path / "clips.jsonl").read_bytes() == manifest
    # the names are those a real submit then uses
    real = _submit(tmp_path, make_providers(cloud, FAMILIES))
    assert [o.name for o in real] == [o.name for o in outs]


def test_dry_run_checks_raw_and_base64_sizes(tmp_path: Path) -> None:
    # 8 MB: under the 10 MB limits as bytes, but 10.67 MB as base64, which only the inline families send
    make_run(tmp_path, speakers=["alice"], size=8_000_000)
    cloud = FakeCloud()
    ledger = tmp_path / "voices.sqlite"
    Ledger(ledger).close()
    before = ledger.read_bytes()
    outs = {o.family: o for o in _submit(tmp_path, make_providers(cloud, FAMILIES), dry_run=True)}
    assert any("base64 of the clip is 10666668 bytes" in p for p in outs["qwen-tts"].problems)
    assert any("base64" in p for p in outs["cosyvoice"].problems)
    assert outs["minimax"].problems == [] and outs["minimax"].ok
    assert not outs["qwen-tts"].ok
    assert cloud.calls == [] and ledger.read_bytes() == before


def test_shown_request_masks_headers_and_audio() -> None:
    shown = shown_request(
        "POST",
        "https://x/api?key=abc",
        {"Authorization": f"Bearer {SECRET}", "X-DashScope-OssResourceResolve": "enable"},
        {"input": {"url": "data:audio/wav;base64," + "A" * 5000, "prefix": "alix"}, "raw": b"\x00" * 9},
        audio_bytes=3750,
        encoded_bytes=5022,
    )
    text = json.dumps(shown)
    assert SECRET not in text and "AAAA" not in text
    assert shown["headers"] == {"Authorization": "***", "X-DashScope-OssResourceResolve": "enable"}
    assert shown["body"]["input"] == {"url": "<5022 characters elided>", "prefix": "alix"}
    assert shown["body"]["raw"] == "<9 bytes elided>"


# ------------------------------------------------------------------------------------------------ keys


def test_missing_keys_stop_before_anything_when_no_family_has_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    monkeypatch.delenv("MINIMAX_API_KEY", raising=False)
    make_run(tmp_path, speakers=["alice"], families=["minimax", "qwen-tts", "cosyvoice"])
    manifest = (tmp_path / "clips.jsonl").read_bytes()
    with pytest.raises(MissingApiKey) as info:
        submit_run(tmp_path)  # clients from the environment, as `voiceprep submit` makes them
    # One error names both (and each once), so the user sets them in one go.
    assert sorted(info.value.env_vars) == ["DASHSCOPE_API_KEY", "MINIMAX_API_KEY"]
    assert info.value.reason == "missing_api_key"
    assert info.value.message.count("DASHSCOPE_API_KEY is not set") == 1
    assert "MINIMAX_API_KEY is not set" in info.value.message
    assert not (tmp_path / "voices.sqlite").exists() and (tmp_path / "clips.jsonl").read_bytes() == manifest


def test_a_missing_key_skips_only_its_families(tmp_path: Path, server: FakeProviders) -> None:
    make_run(tmp_path, speakers=["alice", "bob"], families=["cosyvoice", "qwen-tts", "minimax"], audio=_wav)
    env = {k: v for k, v in server.env().items() if k != "DASHSCOPE_API_KEY"}
    done = voiceprep("submit", "--out", tmp_path, env=env, drop=["*_API_KEY", "*_BASE_URL"])
    assert done.returncode == 1, done.stderr  # partial: documented as exit 1
    assert len(server.voices("minimax")) == 2
    assert not [r for r in server.requests if r.endpoint.startswith(("cosyvoice", "qwen", "dashscope"))]
    clips = _clips(tmp_path)
    assert {k[1] for k, c in clips.items() if c["status"] == "submitted"} == {"minimax"}
    assert {k[1] for k, c in clips.items() if c["status"] == "ready"} == {"cosyvoice", "qwen-tts"}
    # the skipped families are named once, with the variable that enables them
    hint = [line for line in done.stdout.splitlines() if line.startswith("skipped ")]
    assert len(hint) == 1 and "cosyvoice" in hint[0] and "qwen-tts" in hint[0], done.stdout
    assert "export DASHSCOPE_API_KEY=<your dashscope key>" in hint[0]
    as_json = voiceprep("submit", "--out", tmp_path, "--json", env=env, drop=["*_API_KEY", "*_BASE_URL"])
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    skipped = [r for r in rows if r["status"] == "skipped"]
    assert len(skipped) == 4 and {r["last_error"]["reason"] for r in skipped} == {"missing_api_key"}
    assert as_json.returncode == 1 and len(server.voices("minimax")) == 2  # nothing made twice


def test_the_key_never_reaches_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", SECRET)
    make_run(tmp_path, speakers=["alice"], families=["cosyvoice", "qwen-tts"])
    cloud = FakeCloud()
    providers = make_providers(cloud, ["cosyvoice", "qwen-tts"], faults=["leak"])
    outs = _submit(tmp_path, providers)
    assert all(o.status == "failed" for o in outs)
    assert all(
        SECRET not in o.last_error["message"] and "Bearer ***" in o.last_error["message"] for o in outs
    )
    blobs = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    assert blobs and not any(SECRET.encode() in b for b in blobs)


# ------------------------------------------------------------------------------------------------ properties

_FAST_TMP = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # fsync-heavy: keep it in memory
CREATE_FAULTS = ["ok", "ok", "ok", "lost_after", "lost_before", "crash", "reject", "quota", "deploy_reject"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    speakers=st.lists(st.sampled_from(["ann", "ben", "cho"]), min_size=1, max_size=3, unique=True),
    families=st.lists(st.sampled_from(FAMILIES), min_size=1, max_size=3, unique=True),
    faults=st.lists(st.sampled_from(CREATE_FAULTS), max_size=8),
    find_faults=st.lists(st.sampled_from(["ok", "ok", "error"]), max_size=4),
    lag=st.integers(min_value=0, max_value=2),
    rounds=st.integers(min_value=1, max_value=4),
)
def test_property_one_clip_one_voice_one_row(
    speakers: list[str], families: list[str], faults: list[str], find_faults: list[str], lag: int, rounds: int
) -> None:
    with tempfile.TemporaryDirectory(dir=_FAST_TMP) as tmp:
        out = Path(tmp)
        make_run(out, speakers=speakers, families=families, size=400)
        cloud = FakeCloud()
        schedule = list(faults)
        finds = list(find_faults)

        def providers() -> dict[str, FakeProvider]:
            # the fault schedule is shared by all families and consumed across runs
            ps = {}
            for f in families:
                p = FakeProvider(cloud, f, review_polls=1 if f == "cosyvoice" else 0, list_lag=lag)
                p.faults, p.find_faults = schedule, finds
                ps[f] = p
            return ps

        def check_invariants() -> None:
            rows = _ledger(out)
            ledger_ids = {r["voice_id"] for r in rows if r["voice_id"]}
            pending_names = {r["name"] for r in rows if r["status"] in ("pending", "unknown")}
            for v in cloud.voices.values():  # no remote voice the ledger does not know
                assert v.voice_id in ledger_ids or v.name in pending_names
            for (speaker, family), _clip in _clips(out).items():  # never two voices for one clip
                mine = [r for r in rows if r["speaker"] == speaker and r["family"] == family]
                names = {r["name"] for r in mine}
                assert len(mine) <= 1
                assert sum(1 for v in cloud.voices.values() if v.name in names) <= 1
            assert len([r["voice_id"] for r in rows if r["voice_id"]]) == len(ledger_ids)

        for _ in range(rounds):  # faulty runs; a "crash" kills the run part-way
            with contextlib.suppress(Killed):
                _submit(out, providers())
            check_invariants()
        schedule.clear()
        finds.clear()
        for _ in range(2 + lag):  # fault-free runs settle everything that can be settled
            _submit(out, providers())
            check_invariants()

        rows = _ledger(out)
        clips = _clips(out)
        for (speaker, family), clip in clips.items():
            [row] = [r for r in rows if r["speaker"] == speaker and r["family"] == family]
            remote = [v for v in cloud.voices.values() if v.name == row["name"]]
            if row["status"] == "ready":
                assert [v.voice_id for v in remote] == [row["voice_id"]]
                assert clip["status"] == "submitted" and clip["voice_id"] == row["voice_id"]
            elif row["status"] == "rejected":
                assert clip["status"] == "rejected" and len(remote) <= 1
            else:  # a visible unknown (a lost request), never a second voice
                assert row["status"] == "unknown" and remote == [] and clip["status"] == "ready"


# ------------------------------------------------------------------------------------------------ a real kill

_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from submit_fakes import FakeCloud, FakeProvider
    from pipeline.enroll.submit import submit_run
    cloud = FakeCloud.load(Path({state!r}))
    providers = {{"minimax": FakeProvider(cloud, "minimax", faults=["ok", "sigkill"])}}
    submit_run(Path({out!r}), providers=providers)
    """
)


def test_sigkill_after_create_is_reconciled_without_a_duplicate(tmp_path: Path) -> None:
    make_run(tmp_path, speakers=["alice", "bob", "cho"], families=["minimax"])
    state = tmp_path / "cloud.json"
    code = _CHILD.format(tests=str(REPO / "tests"), state=str(state), out=str(tmp_path))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    cloud = FakeCloud.load(state)
    assert len(cloud.voices) == 2  # alice's, and bob's made just before the kill
    rows = _ledger(tmp_path)
    assert [(r["speaker"], r["status"]) for r in rows] == [("alice", "ready"), ("bob", "pending")]
    assert rows[1]["sent_at"] is not None and rows[1]["voice_id"] is None
    assert _clips(tmp_path)[("alice", "minimax")]["status"] == "ready"  # the manifest write never happened

    outs = submit_run(tmp_path, providers={"minimax": FakeProvider(cloud, "minimax")})
    assert [(o.speaker, o.action, o.status) for o in outs] == [
        ("bob", "reconciled", "ready"),
        ("alice", "existing", "ready"),
        ("bob", "existing", "ready"),
        ("cho", "created", "ready"),
    ]
    assert len(cloud.voices) == 3 and len([c for c in cloud.calls if c[0] == "create"]) == 3
    rows = _ledger(tmp_path)
    assert sorted(r["voice_id"] for r in rows) == sorted(cloud.voices)
    assert all(c["status"] == "submitted" for c in _clips(tmp_path).values())


# ------------------------------------------------------------------------------------------------ end to end
# The real HTTP clients (pipeline.enroll.providers) against the local fake server (tests/fake_providers.py).


@pytest.fixture
def server(fake: FakeProviders, monkeypatch: pytest.MonkeyPatch) -> FakeProviders:
    """The local fake server (``fake``), its keys and base URLs in the environment."""
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    return fake


def real_factory(fake: FakeProviders, t: FakeTime | None = None):
    """``make_provider`` on the fake server, with fake time so retries and review polls cost nothing."""
    t = t or FakeTime()

    def factory(spec, base_url):
        return make_provider(spec, base_url=base_url, runtime=fake_runtime(fake.env(), t))

    return factory


def _wav(i: int) -> bytes:
    return make_wav(1.0 + 0.1 * i, freq=200.0 + 30 * i)


KIND = {"cosyvoice": "cosyvoice", "qwen-tts": "qwen", "minimax": "minimax"}
ID_FIELD = {"cosyvoice": "voice_id", "qwen": "voice", "minimax": "voice_id"}


def _server_ids(fake: FakeProviders, family: str) -> list[str]:
    kind = KIND[family]
    return [v[ID_FIELD[kind]] for v in fake.voices(kind)]


def test_e2e_all_families_with_previews(tmp_path: Path, server: FakeProviders) -> None:
    make_run(tmp_path, families=FAMILIES, audio=_wav)
    outs = submit_run(tmp_path, preview_text="Hello there.", providers=real_factory(server))
    assert [(o.action, o.status) for o in outs] == [("created", "ready")] * 6, [o.note for o in outs]
    rows = _ledger(tmp_path)
    for family in FAMILIES:
        assert sorted(_server_ids(server, family)) == sorted(
            r["voice_id"] for r in rows if r["family"] == family
        )
    # the names voiceprep derived are the ones sent
    sent = {
        "cosyvoice": [r.json["input"]["prefix"] for r in server.requests_to("cosyvoice.create_voice")],
        "qwen-tts": [r.json["input"]["preferred_name"] for r in server.requests_to("qwen.create")],
        "minimax": [r.json["voice_id"] for r in server.requests_to("minimax.clone")],
    }
    for family, names in sent.items():
        assert names == [r["name"] for r in rows if r["family"] == family]
    for o in outs:
        assert Path(o.preview_path).read_bytes()[:4] == b"RIFF"
    clips = _clips(tmp_path)
    assert all(c["status"] == "submitted" for c in clips.values())
    secrets = [v.encode() for k, v in server.env().items() if k.endswith("_API_KEY")]
    files = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    assert not any(s in b for s in secrets for b in files)


SYNTHESIS = (
    "minimax.t2a",
    "cosyvoice.ws",
    "qwen.realtime",
    "cosyvoice.synthesize",
    "qwen.synthesize",
    "audio.download",
)
"""The fake's endpoints that make or fetch a synthesis (MiniMax T2A bills one per call)."""


def _syntheses(fake: FakeProviders) -> dict[str, int]:
    return {e: n for e in SYNTHESIS if (n := len(fake.requests_to(e)))}


def test_a_voice_with_its_preview_on_disk_is_not_synthesised_again(
    tmp_path: Path, server: FakeProviders
) -> None:
    make_run(tmp_path, speakers=["alice"], families=FAMILIES, audio=_wav)
    factory = real_factory(server)
    first = submit_run(tmp_path, preview_text="Hello there.", providers=factory)
    assert [(o.action, o.status) for o in first] == [("created", "ready")] * 3
    assert _syntheses(server)  # the first previews were made
    made = {Path(o.preview_path or ""): Path(o.preview_path or "").read_bytes() for o in first}

    server.clear_requests()  # the clips are `submitted` now: re-verified, previews kept
    again = voiceprep("submit", "--out", tmp_path, "--preview", "Hello there.", env=server.env())
    assert again.returncode == 0, again.stdout + again.stderr
    assert _syntheses(server) == {}
    assert again.stdout.count("preview kept") == 3
    assert {p: p.read_bytes() for p in made} == made

    clips = [json.loads(line) for line in (tmp_path / "clips.jsonl").read_text().splitlines()]
    for c in clips:  # a run over the same input wrote clips.jsonl anew: the voices exist (`existing`)
        c.update(status="ready", voice_id=None, preview=None)
    (tmp_path / "clips.jsonl").write_text("".join(json.dumps(c) + "\n" for c in clips))
    existing = submit_run(tmp_path, preview_text="Hello there.", providers=factory)
    assert [(o.action, "preview kept" in o.note) for o in existing] == [("existing", True)] * 3
    assert _syntheses(server) == {}
    assert {c["preview"] for c in _clips(tmp_path).values()} == {
        p.relative_to(tmp_path).as_posix() for p in made
    }

    # What makes a preview again: its file gone, another text, the voice enrolled from another clip.
    (tmp_path / "clips/alice/minimax.preview.wav").unlink()
    gone = {o.family: o for o in submit_run(tmp_path, preview_text="Hello there.", providers=factory)}
    assert _syntheses(server) == {"minimax.t2a": 1} and "preview kept" not in gone["minimax"].note
    assert (tmp_path / "clips/alice/minimax.preview.wav").is_file()
    server.clear_requests()
    other = submit_run(tmp_path, preview_text="Another text.", providers=factory)
    assert not any("preview kept" in o.note for o in other)
    assert _syntheses(server).keys() - {"audio.download"} == {
        "minimax.t2a",
        "cosyvoice.ws",
        "qwen.synthesize",
    }
    server.clear_requests()
    with Ledger(tmp_path / "voices.sqlite") as ledger:
        row = next(r for r in ledger.rows() if r.family == "cosyvoice")
        ledger.add_version(row.id, clip_sha256="0" * 64, clip_path=str(tmp_path / "take2.wav"))
    updated = {o.family: o for o in submit_run(tmp_path, preview_text="Another text.", providers=factory)}
    assert "preview kept" not in updated["cosyvoice"].note
    assert "preview kept" in updated["minimax"].note and "preview kept" in updated["qwen-tts"].note
    assert list(_syntheses(server)) == ["cosyvoice.ws"]


def test_e2e_lost_answers_and_throttling_make_no_duplicate(
    tmp_path: Path, server: FakeProviders, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    make_run(tmp_path, speakers=["alice", "bob"], families=FAMILIES, audio=_wav)
    server.inject("cosyvoice.create_voice", Fault.drop(after_action=True))
    server.inject("qwen.create", Fault.throttle(retry_after=2), Fault.malformed(after_action=True))
    server.inject("minimax.clone", Fault.drop(after_action=True), Fault.http(503))
    outs = submit_run(tmp_path, providers=real_factory(server))
    assert [o.status for o in outs] == ["ready"] * 6, [(o.family, o.note, o.last_error) for o in outs]
    for family in FAMILIES:
        assert len(_server_ids(server, family)) == 2
    assert sorted(r["voice_id"] for r in _ledger(tmp_path)) == sorted(
        v for f in FAMILIES for v in _server_ids(server, f)
    )
    assert len(server.requests_to("cosyvoice.create_voice")) == 2  # the lost create was never re-sent
    assert len(server.requests_to("qwen.create")) == 3  # 429 retried, the malformed answer never re-sent
    assert "created" in caplog.text  # the clients did log, and never a key
    assert not any(v in caplog.text for k, v in server.env().items() if k.endswith("_API_KEY"))


class _KillAfterCreate:
    """A real client whose process "dies" right after the provider answered a create."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def create_voice(self, request, **options):
        self.inner.create_voice(request, **options)
        raise Killed("killed before the ledger write")


@pytest.mark.parametrize("family", FAMILIES)
def test_e2e_crash_after_create_is_reconciled(tmp_path: Path, server: FakeProviders, family: str) -> None:
    make_run(tmp_path, speakers=["alice"], families=[family], audio=_wav)
    factory = real_factory(server)
    dying = {family: _KillAfterCreate(factory(load_family(family), None))}
    with pytest.raises(Killed):
        submit_run(tmp_path, settle_interval_s=1, providers=dying)
    [row] = _ledger(tmp_path)
    assert row["status"] == "pending" and row["voice_id"] is None and len(_server_ids(server, family)) == 1
    outs = submit_run(tmp_path, settle_interval_s=1, providers=factory)
    assert [(o.action, o.status) for o in outs] == [("reconciled", "ready"), ("existing", "ready")]
    assert [r["voice_id"] for r in _ledger(tmp_path)] == _server_ids(server, family)
    assert _clips(tmp_path)[("alice", family)]["voice_id"] == _server_ids(server, family)[0]


def test_e2e_rejection_and_quota(tmp_path: Path, server: FakeProviders) -> None:
    make_run(tmp_path, speakers=["alice", "bob", "cho"], families=["cosyvoice", "qwen-tts"], audio=_wav)
    server.mark_bad_audio((tmp_path / "clips/alice/cosyvoice.wav").read_bytes())
    server.set_quota("qwen", 1)
    outs = {(o.speaker, o.family): o for o in submit_run(tmp_path, providers=real_factory(server))}
    assert (outs[("alice", "cosyvoice")].status, outs[("alice", "cosyvoice")].reason) == (
        "rejected",
        "provider_rejected",
    )
    assert outs[("bob", "cosyvoice")].status == "ready"
    assert outs[("alice", "qwen-tts")].status == "ready"
    assert (outs[("bob", "qwen-tts")].status, outs[("bob", "qwen-tts")].reason) == (
        "failed",
        "provider_quota",
    )
    assert outs[("cho", "qwen-tts")].status == "skipped"
    assert len(server.requests_to("qwen.create")) == 2
    assert _clips(tmp_path)[("alice", "cosyvoice")]["status"] == "rejected"


def test_e2e_dry_run_sends_nothing_and_needs_no_key(
    tmp_path: Path, server: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_run(tmp_path, speakers=["alice"], families=FAMILIES, audio=_wav)
    monkeypatch.delenv("DASHSCOPE_API_KEY")
    outs = submit_run(tmp_path, dry_run=True)  # the default factory: make_provider from the environment
    assert all(o.action == "dry-run" and o.ok for o in outs), [o.problems for o in outs]
    assert "DASHSCOPE_API_KEY is not set" in outs[0].note
    assert server.requests == [] and not (tmp_path / "voices.sqlite").exists()
    bodies = json.dumps([r for o in outs for r in o.requests])
    assert server.keys["minimax"] not in bodies and "base64," in bodies
    monkeypatch.delenv("MINIMAX_API_KEY")  # no family has a key: a real submit stops before anything
    with pytest.raises(MissingApiKey, match="DASHSCOPE_API_KEY"):
        submit_run(tmp_path)
    assert server.requests == []


# ------------------------------------------------------------------------------------- hostile servers
# Servers that quote the key back in every error shape: no run of 8 characters of a key may reach the
# command's output, the logs, the manifests or the ledger.

LONG_KEYS = {
    "dashscope": "sk-" + "0a1b2c3d4e5f6g7h8i9j" * 2,
    "minimax": "eyJhbGciOiJSUzI1NiJ9." + "mQ4nT7vX2kP9sR5wL8zB" * 2,
    "elevenlabs": "el_" + "Zx9Yw8Vu7Ts6Rq5Po4Nm" * 2,
}
LIST_ENDPOINT = {"cosyvoice": "cosyvoice.list_voice", "qwen-tts": "qwen.list", "minimax": "minimax.get_voice"}
CREATE_ENDPOINT = {
    "cosyvoice": "cosyvoice.create_voice",
    "qwen-tts": "qwen.create",
    "minimax": "minimax.clone",
}


@pytest.fixture(scope="module")
def hostile() -> Iterator[FakeProviders]:
    """One fake server for the module, with long keys (so a 200-character cut can fall inside one)."""
    with FakeProviders(
        dashscope_key=LONG_KEYS["dashscope"],
        minimax_key=LONG_KEYS["minimax"],
        elevenlabs_key=LONG_KEYS["elevenlabs"],
    ) as fake:
        yield fake


def key_fragments(text: str, keys: Iterable[str] = LONG_KEYS.values(), n: int = 8) -> list[str]:
    """Every run of ``n`` characters of one of ``keys`` found in ``text``."""
    return sorted({k[i : i + n] for k in keys for i in range(len(k) - n + 1) if k[i : i + n] in text})


def _cli(*args: str | Path, env: dict[str, str]):
    """``voiceprep ARGS`` with only ``env``'s provider keys and addresses."""
    return voiceprep(*args, env=env, drop=["*_API_KEY", "*_BASE_URL"])


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("shape", ECHO_SHAPES)
def test_a_server_echoing_the_key_leaks_no_fragment(
    tmp_path: Path, hostile: FakeProviders, family: str, shape: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hostile.reset()
    make_run(tmp_path, speakers=["alice"], families=[family], audio=_wav)
    hostile.inject(CREATE_ENDPOINT[family], Fault.echo(shape))
    env = hostile.env()
    done = _cli("submit", "--out", tmp_path, env=env)
    listed = _cli("voices", "list", "--out", tmp_path, "--json", env=env)
    assert done.returncode == 1, done.stderr  # the create failed and says so
    [row] = _ledger(tmp_path)
    assert row["status"] == "failed" and row["last_error"]["message"]
    texts = [done.stdout, done.stderr, listed.stdout, listed.stderr, caplog.text]
    texts += [p.read_bytes().decode("latin-1") for p in tmp_path.rglob("*") if p.is_file()]
    assert key_fragments("\n".join(texts)) == []


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("shape", ECHO_SHAPES)
def test_echoed_keys_in_5xx_creates_and_failed_searches_leak_no_fragment(
    tmp_path: Path, hostile: FakeProviders, family: str, shape: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A 5xx create (a lost outcome for DashScope: the message goes to the ledger as unknown; MiniMax
    retries), then searches that answer with the key (sync, list --remote, the next submit's reconcile)."""
    caplog.set_level(logging.DEBUG)
    hostile.reset()
    make_run(tmp_path, speakers=["alice"], families=[family], audio=_wav)
    hostile.inject(CREATE_ENDPOINT[family], Fault.echo(shape, status=500))
    env = hostile.env()
    runs = [_cli("submit", "--out", tmp_path, env=env)]
    for command in (["voices", "sync"], ["voices", "list", "--remote"], ["submit"]):
        hostile.inject(LIST_ENDPOINT[family], Fault.echo(shape))
        runs.append(_cli(*command, "--out", tmp_path, env=env))
        if command[0] == "voices":  # both always list; submit searches only for unresolved rows
            assert hostile.pending_faults() == {}, command
    assert all(r.returncode in (0, 1) for r in runs), [r.stderr for r in runs]
    texts = [r.stdout + r.stderr for r in runs] + [caplog.text]
    texts += [p.read_bytes().decode("latin-1") for p in tmp_path.rglob("*") if p.is_file()]
    assert key_fragments("\n".join(texts)) == []


def test_reconcile_never_sends_the_key_to_a_host_read_from_the_ledger(
    tmp_path: Path, server: FakeProviders
) -> None:
    make_run(tmp_path, speakers=["alice"], families=["minimax"], audio=_wav)
    with FakeProviders() as evil:  # named only by a tampered ledger row
        with Ledger(tmp_path / "voices.sqlite") as ledger:
            row = ledger.begin(
                VoiceRecord(
                    provider="minimax",
                    base_url=evil.minimax_base_url,
                    family="minimax",
                    target_model="speech-2.8-hd",
                    name="vp_mallory_x",
                    clip_sha256="e" * 64,
                    speaker="mallory",
                )
            )
            ledger.mark_sent(row.id)
        outs = submit_run(tmp_path, providers=real_factory(server))
        assert evil.requests == []
    reconciled = [o for o in outs if o.action == "reconciled"]
    assert len(reconciled) == 1 and "not contacted" in reconciled[0].note and not reconciled[0].ok
    assert [o.status for o in outs if o.action == "created"] == ["ready"]  # alice's clip still submitted


# ------------------------------------------------------------------------------------- fault schedules
# submit, submit, voices sync, submit against the HTTP server under each schedule: every ready clip is
# submitted, with no duplicate voice, no orphan on the server and no lost voice. The unknown-outcome
# rule's settle interval is 0 here (what it proves is the number of searches; the interval is real time).

SCHEDULES = {
    "answer dropped after create": lambda fam: {CREATE_ENDPOINT[fam]: [Fault.drop(after_action=True)]},
    "request dropped before create": lambda fam: {CREATE_ENDPOINT[fam]: [Fault.drop(after_action=False)]},
    "429 with Retry-After": lambda fam: {CREATE_ENDPOINT[fam]: [Fault.throttle(retry_after=3)] * 2},
    "500 on create": lambda fam: {CREATE_ENDPOINT[fam]: [Fault.http(500)]},
    "timeout after create": lambda fam: {CREATE_ENDPOINT[fam]: [Fault.delay(0.6, after_action=True)]},
    "timeout, then the search fails once": lambda fam: {  # 3 attempts: one search not counted
        CREATE_ENDPOINT[fam]: [Fault.delay(0.6, after_action=False)],
        LIST_ENDPOINT[fam]: [Fault.http(503)] * 3,
    },
}


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_fault_schedules_end_with_every_clip_submitted_once(
    tmp_path: Path, server: FakeProviders, schedule: str
) -> None:
    make_run(tmp_path, speakers=["alice", "bob"], families=FAMILIES, audio=_wav)
    for family in FAMILIES:
        for endpoint, faults in SCHEDULES[schedule](family).items():
            server.inject(endpoint, *faults)
    t = FakeTime()

    def factory(spec, base_url):
        runtime = fake_runtime(server.env(), t, read_timeout_s=0.3, max_attempts=3)
        return make_provider(spec, base_url=base_url, runtime=runtime)

    fast = {"settle_interval_s": 1, "absent_settle_s": 0, "providers": factory}
    submit_run(tmp_path, **fast)
    submit_run(tmp_path, **fast)
    sync_voices(tmp_path / "voices.sqlite", providers=factory, absent_settle_s=0)
    submit_run(tmp_path, **fast)

    clips = _clips(tmp_path)
    assert {k: c["status"] for k, c in clips.items()} == dict.fromkeys(clips, "submitted")
    rows = [r for r in _ledger(tmp_path) if r["status"] not in ("failed", "deleted", "gone")]
    for family in FAMILIES:
        on_server = _server_ids(server, family)
        held = [r["voice_id"] for r in rows if r["family"] == family]
        assert len(on_server) == 2, (family, on_server)  # no duplicate
        assert sorted(held) == sorted(on_server), family  # no orphan, no lost voice
        assert {clips[(s, family)]["voice_id"] for s in ("alice", "bob")} == set(on_server)
