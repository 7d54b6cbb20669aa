"""DashScope clients (CosyVoice, Qwen-TTS) against the local fake: exact request shapes, the three audio
URL modes, review polling, paging, error mapping, lost answers and redaction."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
from pathlib import Path
from typing import Any

import pytest
from fake_providers import FakeProviders, FakeTime, Fault, create_request, make_wav, provider_client

from pipeline.enroll.providers import (
    CosyVoiceClient,
    QwenClient,
    Runtime,
    VoiceRecord,
    api_key_env,
    make_provider,
)
from pipeline.enroll.providers.base import OutcomeUnknown, ProviderError
from pipeline.enroll.providers.dashscope import created_since, dashscope_error
from pipeline.enroll.providers.http import LOGGER_NAME
from pipeline.errors import InvalidArgument

COSY = "cosyvoice-v3-plus"
QWEN = "qwen3-tts-vc-2026-01-22"


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clips" / "alice" / "cosyvoice.wav"
    path.parent.mkdir(parents=True)
    path.write_bytes(make_wav(1.5))
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cosy_request(clip: Path, name: str = "ali1") -> VoiceRecord:
    return create_request(clip, "cosyvoice", COSY, name)


def qwen_request(clip: Path, name: str = "alice_1") -> VoiceRecord:
    return create_request(clip, "qwen-tts", QWEN, name)


def provider(fake: FakeProviders, family: str, t: FakeTime | None = None, **kw: object) -> Any:
    """The client for ``family`` on the fake (see ``provider_client``)."""
    return provider_client(fake, family, t, seed=1, **kw)


# --- construction, keys, base URLs --------------------------------------------------------------------


def test_make_provider_picks_the_client_and_names_the_variables(fake: FakeProviders) -> None:
    assert isinstance(provider(fake, "cosyvoice"), CosyVoiceClient)
    assert isinstance(provider(fake, "qwen-tts"), QwenClient)
    assert provider(fake, "cosyvoice").audio_source == "oss"  # the documented default
    assert api_key_env("dashscope") == "DASHSCOPE_API_KEY"
    assert provider(fake, "cosyvoice").base_url_envs[0] == "DASHSCOPE_BASE_URL"
    assert api_key_env("minimax") == "MINIMAX_API_KEY"
    with pytest.raises(InvalidArgument, match="nope"):
        api_key_env("nope")
    # A run's audio options reach every family's client; only CosyVoice fetches audio from a URL.
    assert isinstance(provider(fake, "qwen-tts", audio_source="url_template"), QwenClient)


def test_base_url_comes_from_the_argument_then_the_environment_then_the_default() -> None:
    env = {"DASHSCOPE_API_KEY": "k" * 12}
    assert (
        make_provider("cosyvoice", runtime=Runtime(environ=env)).base_url
        == "https://dashscope-intl.aliyuncs.com/api/v1"
    )
    env["DASHSCOPE_BASE_URL"] = "https://dashscope.aliyuncs.com/api/v1/"
    assert (
        make_provider("cosyvoice", runtime=Runtime(environ=env)).base_url
        == "https://dashscope.aliyuncs.com/api/v1"
    )
    assert (
        make_provider("cosyvoice", runtime=Runtime(environ=env), base_url="http://h:1/api/v1").base_url
        == "http://h:1/api/v1"
    )
    with pytest.raises(InvalidArgument, match="DASHSCOPE_BASE_URL"):
        make_provider(
            "cosyvoice", runtime=Runtime(environ={**env, "DASHSCOPE_BASE_URL": "dashscope.aliyuncs.com"})
        )


def test_a_missing_key_is_one_clear_error_and_dry_run_needs_none(fake: FakeProviders, clip: Path) -> None:
    env = {k: v for k, v in fake.env().items() if k != "DASHSCOPE_API_KEY"}
    with pytest.raises(ProviderError) as info:
        provider(fake, "cosyvoice", env=env)
    assert info.value.reason == "missing_api_key"
    assert "DASHSCOPE_API_KEY" in info.value.message
    offline = provider(fake, "cosyvoice", env=env, require_key=False)
    prepared = offline.prepare_create(cosy_request(clip))
    assert [p["method"] for p in prepared] == ["GET", "POST", "POST"]
    with pytest.raises(ProviderError, match="missing_api_key"):
        offline.list_voices()
    assert fake.requests == []  # neither the dry run nor the refused call sent anything


def test_invalid_names_models_and_sizes_are_refused_before_sending(fake: FakeProviders, clip: Path) -> None:
    cosy = provider(fake, "cosyvoice")
    with pytest.raises(InvalidArgument, match="name"):
        cosy.create_voice(cosy_request(clip, name="Alice"))  # upper case is outside [a-z0-9]
    with pytest.raises(InvalidArgument, match="name"):
        cosy.create_voice(cosy_request(clip, name="abcdefghij"))  # 10 > 9 characters
    with pytest.raises(InvalidArgument, match="target_model"):
        cosy.prepare_create(create_request(clip, "cosyvoice", "qwen3-tts-vc-2026-01-22", "ali1"))
    small = provider(fake, "qwen-tts", max_bytes=90_000)
    size = clip.stat().st_size  # 72 044 bytes: fits raw, but not as a base64 data URI (96 082 characters)
    assert size < 90_000
    with pytest.raises(ProviderError) as info:
        small.create_voice(qwen_request(clip))
    assert info.value.reason == "too_large"
    assert fake.requests == []


# --- CosyVoice ------------------------------------------------------------------------------------------


def test_cosyvoice_oss_upload_and_create_send_the_documented_requests(
    fake: FakeProviders, clip: Path
) -> None:
    cosy = provider(fake, "cosyvoice")
    request = cosy_request(clip)
    result = cosy.create_voice(request, language="en")
    [policy] = fake.requests_to("dashscope.get_policy")
    assert policy.method == "GET"
    assert policy.query == {"action": "getPolicy", "model": COSY}  # bound to the target model
    assert policy.header("Authorization") == f"Bearer {fake.keys['dashscope']}"
    [upload] = fake.requests_to("oss.upload")
    assert upload.header("Authorization") is None  # the key never goes to the storage host
    assert upload.field_order == [
        "OSSAccessKeyId",
        "Signature",
        "policy",
        "key",
        "x-oss-object-acl",
        "x-oss-forbid-overwrite",
        "success_action_status",
        "file",
    ]
    key = upload.form["key"]
    assert key.endswith(f"/{sha(clip)}.wav")
    assert upload.files["file"][1] == clip.read_bytes()
    [create] = fake.requests_to("cosyvoice.create_voice")
    assert create.header("X-DashScope-OssResourceResolve") == "enable"
    assert create.json == {
        "model": "voice-enrollment",
        "input": {
            "action": "create_voice",
            "target_model": COSY,
            "prefix": "ali1",
            "url": f"oss://{key}",
            "language_hints": ["en"],
        },
    }
    [stored] = fake.voices("cosyvoice")
    assert result.voice_id == stored["voice_id"]
    assert result.voice_id.startswith(f"{COSY}-ali1-")
    assert result.status == "deploying"
    assert len(result.request_ids) == 2  # getPolicy and create


def test_cosyvoice_review_is_polled_until_ok(fake: FakeProviders, clip: Path) -> None:
    t = FakeTime()
    cosy = provider(fake, "cosyvoice", t)
    result = cosy.create_voice(cosy_request(clip))
    voice = cosy.wait_until_settled(result.voice_id, timeout_s=60, interval_s=10)
    assert voice.status == "ready"
    assert voice.target_model == COSY
    assert voice.name == "ali1"
    assert t.sleeps == [10, 10]  # deploy_polls=2: two answers say DEPLOYING, the third OK
    assert [r.json["input"] for r in fake.requests_to("cosyvoice.query_voice")] == [
        {"action": "query_voice", "voice_id": result.voice_id}
    ] * 3


def test_cosyvoice_undeployed_becomes_rejected(fake: FakeProviders, clip: Path) -> None:
    fake.mark_bad_audio(clip.read_bytes())
    cosy = provider(fake, "cosyvoice")
    result = cosy.create_voice(cosy_request(clip))
    voice = cosy.wait_until_settled(result.voice_id, timeout_s=60, interval_s=1)
    assert voice.status == "rejected"


def test_cosyvoice_wait_gives_up_at_the_timeout(clip: Path) -> None:
    with FakeProviders(deploy_polls=100) as fake:
        t = FakeTime()
        cosy = provider(fake, "cosyvoice", t)
        result = cosy.create_voice(cosy_request(clip))
        voice = cosy.wait_until_settled(result.voice_id, timeout_s=25, interval_s=10)
        assert voice.status == "deploying"
        assert t.sleeps == [10, 10]  # a third wait would end past 25 s
        cosy.delete_voice(result.voice_id)
        with pytest.raises(ProviderError) as info:
            cosy.wait_until_settled(result.voice_id, timeout_s=25, interval_s=10)
        assert info.value.reason == "voice_gone"


def test_cosyvoice_url_template_mode_uses_the_users_storage(fake: FakeProviders, clip: Path) -> None:
    url = fake.publish(f"voices/alice/{sha(clip)}.wav", clip.read_bytes())
    template = fake.url + "/public/voices/{speaker}/{clip_sha256}.wav"
    cosy = provider(fake, "cosyvoice", url_template=template)
    old_name = provider(fake, "cosyvoice", url_template=template.replace("{clip_sha256}", "{sha256}"))
    assert old_name.audio_url(cosy_request(clip)) == cosy.audio_url(cosy_request(clip)) == url
    assert cosy.audio_source == "url_template"
    result = cosy.create_voice(cosy_request(clip))
    [create] = fake.requests_to("cosyvoice.create_voice")
    assert result.voice_id == fake.voices("cosyvoice")[0]["voice_id"]
    assert create.json["input"]["url"] == url
    assert create.header("X-DashScope-OssResourceResolve") is None
    assert fake.requests_to("oss.upload") == []
    with pytest.raises(InvalidArgument, match="unknown field"):
        provider(fake, "cosyvoice", url_template="https://b.example.com/{user}.wav")
    with pytest.raises(InvalidArgument, match="url_template"):
        provider(fake, "cosyvoice", audio_source="url_template")
    other = clip.with_name("other.wav")
    other.write_bytes(make_wav(1.2, freq=330.0))
    with pytest.raises(ProviderError) as info:  # the user did not upload this one
        cosy.create_voice(cosy_request(other, name="ali2"))
    assert info.value.reason == "provider_bad_request"
    assert "download audio failed" in info.value.message


def test_cosyvoice_data_uri_mode_inlines_the_clip(fake: FakeProviders, clip: Path) -> None:
    cosy = provider(fake, "cosyvoice", audio_source="data_uri")
    [prepared] = cosy.prepare_create(cosy_request(clip))
    cosy.create_voice(cosy_request(clip))
    [create] = fake.requests_to("cosyvoice.create_voice")
    url = create.json["input"]["url"]
    assert url.startswith("data:audio/wav;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == clip.read_bytes()
    assert prepared["encoded_bytes"] == len(url)
    assert prepared["audio_bytes"] == clip.stat().st_size
    assert "base64: " in prepared["body"]["input"]["url"] and len(prepared["body"]["input"]["url"]) < 100


def test_cosyvoice_list_pages_query_and_delete(fake: FakeProviders, clip: Path) -> None:
    for i in range(5):
        fake.add_voice("cosyvoice", prefix=f"p{i}")
    cosy = provider(fake, "cosyvoice", page_size=2)
    voices = cosy.list_voices()
    assert sorted(v.name for v in voices) == ["p0", "p1", "p2", "p3", "p4"]
    assert len({v.voice_id for v in voices}) == 5
    # pages of 2, 2, 1, then an empty page ends the list (a short page does not: the service may cap sizes)
    assert [r.json["input"]["page_index"] for r in fake.requests_to("cosyvoice.list_voice")] == [0, 1, 2, 3]
    assert all(r.json["input"]["page_size"] == 2 for r in fake.requests_to("cosyvoice.list_voice"))
    target = voices[0].voice_id
    assert cosy.query_voice(target).voice_id == target  # type: ignore[union-attr]
    assert cosy.query_voice(f"{COSY}-zz-0000") is None
    cosy.delete_voice(target)
    cosy.delete_voice(target)  # already gone: not an error
    assert len(fake.voices("cosyvoice")) == 4


def test_cosyvoice_preview_synthesises_with_the_target_model(fake: FakeProviders, clip: Path) -> None:
    """Over the WebSocket task protocol (the vendor's pages: CosyVoice takes WebSocket only); the protocol
    itself is tested in test_speak_dashscope.py."""
    cosy = provider(fake, "cosyvoice")
    result = cosy.create_voice(cosy_request(clip))
    cosy.wait_until_settled(result.voice_id, timeout_s=60, interval_s=1)
    audio = cosy.preview(result.voice_id, target_model=COSY, text="Hello there.")
    assert audio[:4] == b"RIFF"
    [session] = fake.requests_to("cosyvoice.ws")
    run = session.messages[0]["payload"]
    assert (run["model"], run["parameters"]["voice"]) == (COSY, result.voice_id)
    assert fake.requests_to("cosyvoice.synthesize") == []
    with pytest.raises(ProviderError) as info:  # a voice only works with the model it was made for
        cosy.preview(result.voice_id, target_model="cosyvoice-v2", text="Hello there.")
    assert info.value.reason == "provider_bad_request"


# --- lost answers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [Fault.drop(), Fault.delay(1.0), Fault.malformed(), Fault.http(500)],
    ids=["drop", "timeout", "malformed", "500"],
)
def test_a_lost_cosyvoice_create_is_outcome_unknown_and_find_voice_settles_it(
    fake: FakeProviders, clip: Path, fault: Fault
) -> None:
    cosy = provider(fake, "cosyvoice", limits={"read_timeout_s": 0.3})
    request = cosy_request(clip)
    sent = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)).isoformat()
    fake.inject("cosyvoice.create_voice", fault)
    with pytest.raises(OutcomeUnknown):
        cosy.create_voice(request)
    assert len(fake.requests_to("cosyvoice.create_voice")) == 1  # not re-sent
    found = cosy.find_voice(request, since=sent)
    if fault.kind == "http":  # the injected 500 came before any work
        assert found is None
        assert fake.voices("cosyvoice") == []
    else:
        [stored] = fake.voices("cosyvoice")
        assert found is not None and found.voice_id == stored["voice_id"]
        later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat()
        assert cosy.find_voice(request, since=later) is None  # made before "since": not this request's
        assert cosy.find_voice(cosy_request(clip, name="ali2"), since=sent) is None


def test_a_lost_temporary_upload_is_retried_and_the_existing_object_accepted(
    fake: FakeProviders, clip: Path
) -> None:
    cosy = provider(fake, "cosyvoice")
    fake.inject("oss.upload", Fault.drop(after_action=True))
    result = cosy.create_voice(cosy_request(clip))
    assert [r.status for r in fake.requests_to("oss.upload")] == [None, 409]  # stored, then "already exists"
    assert len(fake.voices("cosyvoice")) == 1
    assert result.voice_id == fake.voices("cosyvoice")[0]["voice_id"]


def test_throttled_creates_are_resent_because_nothing_was_made(fake: FakeProviders, clip: Path) -> None:
    t = FakeTime()
    cosy = provider(fake, "cosyvoice", t)
    fake.inject("cosyvoice.create_voice", Fault.throttle(retry_after="2"), Fault.throttle())
    cosy.create_voice(cosy_request(clip))
    assert len(fake.voices("cosyvoice")) == 1
    assert t.sleeps[0] == 2.0
    assert len(fake.requests_to("cosyvoice.create_voice")) == 3


@pytest.mark.parametrize(
    ("code", "reason", "retryable"),
    [
        ("InvalidApiKey", "provider_auth", False),
        ("AccessDenied", "provider_access", False),
        ("AccessDenied.Unpurchased", "provider_access", False),
        ("Arrearage", "provider_balance", False),
        ("InvalidParameter", "provider_bad_request", False),
        ("Audio.PreprocessError", "provider_rejected", False),
        ("Throttling.RateQuota", "provider_rate_limited", True),
        ("Throttling.AllocationQuota", "provider_rate_limited", True),
    ],
)
def test_dashscope_codes_map_to_reasons(
    fake: FakeProviders, clip: Path, code: str, reason: str, retryable: bool
) -> None:
    cosy = provider(fake, "cosyvoice")
    fake.inject("cosyvoice.list_voice", *[Fault.error(code)] * 4)
    with pytest.raises(ProviderError) as info:
        cosy.list_voices()
    assert (info.value.reason, info.value.retryable, info.value.provider_code) == (reason, retryable, code)
    assert len(fake.requests_to("cosyvoice.list_voice")) == (4 if retryable else 1)
    assert info.value.request_id  # captured from the body for support


def test_dashscope_error_table() -> None:
    assert dashscope_error(500, "InternalError", "x").reason == "provider_unavailable"
    assert dashscope_error(503, None, None).retryable is True
    assert dashscope_error(404, "ModelNotFound", "no").reason == "provider_bad_request"
    assert dashscope_error(400, "VoiceQuotaExceeded", "full").reason == "provider_quota"
    assert (
        dashscope_error(400, "InvalidParameter", "The number of voices exceeds the limit").reason
        == "provider_quota"
    )
    assert dashscope_error(400, "InvalidParameter", "prefix is invalid").reason == "provider_bad_request"


def test_quota_exhaustion_is_provider_quota(clip: Path) -> None:
    with FakeProviders(quotas={"cosyvoice": 1, "qwen": 0}) as fake:
        cosy = provider(fake, "cosyvoice")
        cosy.create_voice(cosy_request(clip))
        with pytest.raises(ProviderError) as info:
            cosy.create_voice(cosy_request(clip, name="ali2"))
        assert info.value.reason == "provider_quota"
        with pytest.raises(ProviderError, match="provider_quota"):
            provider(fake, "qwen-tts").create_voice(qwen_request(clip))
        assert len(fake.voices("cosyvoice")) == 1 and fake.voices("qwen") == []


# --- Qwen-TTS ---------------------------------------------------------------------------------------------


def test_qwen_create_sends_the_clip_inline_and_is_ready(fake: FakeProviders, clip: Path) -> None:
    qwen = provider(fake, "qwen-tts")
    result = qwen.create_voice(qwen_request(clip), language="en")
    [create] = fake.requests_to("qwen.create")
    body = create.json
    data = body["input"].pop("audio")["data"]
    assert body == {
        "model": "qwen-voice-enrollment",
        "input": {"action": "create", "target_model": QWEN, "preferred_name": "alice_1", "language": "en"},
    }
    assert data.startswith("data:audio/wav;base64,")
    assert base64.b64decode(data.split(",", 1)[1]) == clip.read_bytes()
    [stored] = fake.voices("qwen")
    assert (result.voice_id, result.status) == (stored["voice"], "ready")
    assert qwen.list_voices()[0].name == "alice_1"
    assert qwen.wait_until_settled(result.voice_id, timeout_s=1, interval_s=1).status == "ready"


def test_qwen_lost_create_is_found_by_name_and_time(fake: FakeProviders, clip: Path) -> None:
    qwen = provider(fake, "qwen-tts")
    fake.add_voice("qwen", preferred_name="alice_10")  # a longer name that contains ours
    fake.add_voice("qwen", preferred_name="bob_1")
    request = qwen_request(clip)
    sent = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)).isoformat()
    fake.inject("qwen.create", Fault.drop(after_action=True))
    with pytest.raises(OutcomeUnknown):
        qwen.create_voice(request)
    [made] = [v for v in fake.voices("qwen") if v["preferred_name"] == "alice_1"]
    found = qwen.find_voice(request, since=sent)
    assert found is not None and found.voice_id == made["voice"]
    assert qwen.find_voice(qwen_request(clip, name="carol"), since=sent) is None


def test_qwen_rejected_audio_and_preview(clip: Path) -> None:
    with FakeProviders(qwen_audio_inline=True) as fake:
        qwen = provider(fake, "qwen-tts")
        result = qwen.create_voice(qwen_request(clip))
        audio = qwen.preview(result.voice_id, target_model=QWEN, text="Hi.")
        assert audio[:4] == b"RIFF"  # decoded from output.audio.data
        [synth] = fake.requests_to("qwen.synthesize")
        assert synth.json == {"model": QWEN, "input": {"text": "Hi.", "voice": result.voice_id}}
        fake.qwen_audio_inline = False
        assert qwen.preview(result.voice_id, target_model=QWEN, text="Hi.")[:4] == b"RIFF"  # via the URL
        bad = clip.with_name("bad.wav")
        bad.write_bytes(make_wav(1.0, freq=90.0))
        fake.mark_bad_audio(bad.read_bytes())
        with pytest.raises(ProviderError) as info:
            qwen.create_voice(qwen_request(bad, name="bad_1"))
        assert (info.value.reason, info.value.provider_code) == ("provider_rejected", "Audio.PreprocessError")
        qwen.delete_voice(result.voice_id)
        qwen.delete_voice(result.voice_id)
        assert fake.voices("qwen") == []


def test_qwen_list_pages(fake: FakeProviders) -> None:
    for i in range(7):
        fake.add_voice("qwen", preferred_name=f"v{i}")
    voices = provider(fake, "qwen-tts", page_size=3).list_voices()
    assert sorted(v.name for v in voices) == [f"v{i}" for i in range(7)]
    assert [r.json["input"]["page_index"] for r in fake.requests_to("qwen.list")] == [0, 1, 2]


# --- secrets ------------------------------------------------------------------------------------------------


def test_the_key_never_leaks_into_errors_logs_or_bodies(
    fake: FakeProviders, clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    wrong = "sk-wrong-SECRET-98f3a1"
    env = {**fake.env(), "DASHSCOPE_API_KEY": wrong}
    cosy = provider(fake, "cosyvoice", env=env)
    with pytest.raises(ProviderError) as info:  # the fake quotes the presented key in its 401 body
        cosy.create_voice(cosy_request(clip))
    assert info.value.reason == "provider_auth"
    assert fake.requests[-1].header("Authorization") == f"Bearer {wrong}"
    assert wrong not in str(info.value) and wrong not in info.value.message
    assert wrong not in repr(cosy)
    good = provider(fake, "qwen-tts")
    fake.inject("qwen.create", Fault.throttle(), Fault.http(429))
    fake.inject("qwen.list", Fault.error("InvalidParameter", f"bad request from {fake.keys['dashscope']}"))
    good.create_voice(qwen_request(clip))
    with pytest.raises(ProviderError) as echoed:
        good.list_voices()
    keys = (wrong, fake.keys["dashscope"])
    assert all(k not in str(echoed.value) for k in keys)
    assert all(k not in rec.getMessage() for rec in caplog.records for k in keys)
    assert any("retrying" in rec.getMessage() for rec in caplog.records)
    assert all(k not in fake.seen_text() for k in keys)  # only ever in the Authorization header


def test_created_since_allows_for_an_undocumented_zone() -> None:
    assert created_since("2026-01-01 10:00:00", "2026-01-01T09:59:00+00:00")
    assert created_since("2026-01-01 00:00:00", "2026-01-01T12:00:00+00:00")  # within 14 h: a zone offset
    assert not created_since("2025-12-30 00:00:00", "2026-01-01T12:00:00+00:00")
    assert not created_since("2026-01-01T10:00:00+00:00", "2026-01-01T10:05:00+00:00")
    assert created_since(None, "2026-01-01T10:05:00+00:00")  # unknown time never excludes
