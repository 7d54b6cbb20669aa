"""Realtime synthesis with DashScope voices against the local fake's WebSocket endpoints: the CosyVoice task
protocol and the Qwen realtime socket, field by field, with their faults (a task-failed or error event, a
dropped socket mid-stream, a slow first chunk, a refused handshake), where the socket goes, and the key."""

from __future__ import annotations

import email.utils
from pathlib import Path
from typing import Any

import pytest
from fake_providers import (
    FakeProviders,
    FakeTime,
    Fault,
    create_request,
    make_wav,
    provider_client,
    speech_pcm,
)
from fake_websockets import CHUNK_BYTES

from pipeline.enroll.providers.base import ProviderError
from pipeline.enroll.providers.dashscope_ws import is_realtime_model
from pipeline.enroll.providers.speech import SpeechInterrupted
from pipeline.enroll.providers.ws import dashscope_websocket_url, websocket_allowed

COSY = "cosyvoice-v3-plus"
QWEN_RT = "qwen3-tts-vc-realtime-2026-01-15"
QWEN = "qwen3-tts-vc-2026-01-22"
TEXT = "Hello, this is my new voice."


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.wav"
    path.write_bytes(make_wav(1.5))
    return path


def client(fake: FakeProviders, family: str, **kw: Any) -> Any:
    return provider_client(fake, family, **kw)


def cosy_voice(fake: FakeProviders, clip: Path, model: str = COSY) -> tuple[Any, str]:
    """A CosyVoice client and a voice of ``model`` that passed review (``OK``)."""
    cosy = client(fake, "cosyvoice", audio_source="data_uri")
    made = cosy.create_voice(create_request(clip, "cosyvoice", model, "ali1"))
    assert cosy.wait_until_settled(made.voice_id, timeout_s=60, interval_s=1).status == "ready"
    return cosy, made.voice_id


def qwen_voice(fake: FakeProviders, clip: Path, model: str = QWEN_RT) -> tuple[Any, str]:
    qwen = client(fake, "qwen-tts")
    return qwen, qwen.create_voice(create_request(clip, "qwen-tts", model, "alice_1")).voice_id


# --- where the socket goes ----------------------------------------------------------------------------


def test_websocket_urls_follow_the_dashscope_sdk_convention() -> None:
    intl = "https://dashscope-intl.aliyuncs.com/api/v1"
    assert dashscope_websocket_url(intl) == "wss://dashscope-intl.aliyuncs.com/api-ws/v1/inference"
    assert (
        dashscope_websocket_url(intl, realtime_model=QWEN_RT)
        == f"wss://dashscope-intl.aliyuncs.com/api-ws/v1/realtime?model={QWEN_RT}"
    )
    ws = "https://ws-123.cn-beijing.maas.aliyuncs.com/api/v1"  # a workspace host keeps its host
    assert dashscope_websocket_url(ws) == "wss://ws-123.cn-beijing.maas.aliyuncs.com/api-ws/v1/inference"
    assert (
        dashscope_websocket_url("http://127.0.0.1:8080/api/v1") == "ws://127.0.0.1:8080/api-ws/v1/inference"
    )
    env = {"DASHSCOPE_WEBSOCKET_BASE_URL": "wss://dashscope.aliyuncs.com/api-ws/v1/inference/"}
    assert dashscope_websocket_url(intl, environ=env) == "wss://dashscope.aliyuncs.com/api-ws/v1/inference"
    assert (
        dashscope_websocket_url(intl, realtime_model=QWEN_RT, environ=env)
        == f"wss://dashscope.aliyuncs.com/api-ws/v1/realtime?model={QWEN_RT}"
    )


def test_the_key_goes_only_to_the_clients_host_or_a_documented_one(fake: FakeProviders) -> None:
    cosy = client(fake, "cosyvoice")
    port = fake.url.rsplit(":", 1)[1]
    assert websocket_allowed(cosy, f"ws://127.0.0.1:{port}/api-ws/v1/inference")
    assert websocket_allowed(cosy, "wss://dashscope.aliyuncs.com/api-ws/v1/inference")  # documented, TLS
    assert not websocket_allowed(cosy, "ws://dashscope.aliyuncs.com/api-ws/v1/inference")  # no TLS
    assert not websocket_allowed(cosy, "wss://evil.example/api-ws/v1/inference")
    assert not websocket_allowed(cosy, f"ws://127.0.0.1:{int(port) + 1}/api-ws/v1/inference")  # another port
    assert websocket_allowed(cosy, "wss://proxy.example/ws", ("wss://proxy.example/ws",))  # configured


def test_a_configured_websocket_base_url_is_used(fake: FakeProviders, clip: Path) -> None:
    """``DASHSCOPE_WEBSOCKET_BASE_URL`` (the SDK's variable) wins over the HTTP host, and is a host the key
    may go to because the user configured it (``localhost`` is not the base URL's ``127.0.0.1``)."""
    _, voice = cosy_voice(fake, clip)
    port = fake.url.rsplit(":", 1)[1]
    env = {**fake.env(), "DASHSCOPE_WEBSOCKET_BASE_URL": f"ws://localhost:{port}/api-ws/v1/inference"}
    configured = client(fake, "cosyvoice", env=env)
    assert configured.speak(voice, target_model=COSY, text=TEXT).read_all() == speech_pcm(TEXT, 24000)
    assert fake.requests_to("cosyvoice.ws")[0].header("Host") == f"localhost:{port}"


# --- CosyVoice ----------------------------------------------------------------------------------------


def test_cosyvoice_speaks_over_the_task_protocol_field_by_field(fake: FakeProviders, clip: Path) -> None:
    cosy, voice = cosy_voice(fake, clip)
    speech = cosy.speak(voice, target_model=COSY, text=TEXT)
    assert speech.sample_rate == 24000
    chunks = list(speech)
    assert b"".join(chunks) == speech_pcm(TEXT, 24000)
    assert len(chunks) > 1  # it came in frames, as they were made
    [session] = fake.requests_to("cosyvoice.ws")
    assert session.path == "/api-ws/v1/inference"
    assert session.header("Authorization") == f"Bearer {fake.keys['dashscope']}"
    run, cont, finish = session.messages
    task_id = run["header"]["task_id"]
    assert run == {
        "header": {"action": "run-task", "task_id": task_id, "streaming": "duplex"},
        "payload": {
            "task_group": "audio",
            "task": "tts",
            "function": "SpeechSynthesizer",
            "model": COSY,
            "parameters": {"text_type": "PlainText", "voice": voice, "format": "pcm", "sample_rate": 24000},
            "input": {},
        },
    }
    assert cont["header"] == {"action": "continue-task", "task_id": task_id, "streaming": "duplex"}
    assert cont["payload"]["input"] == {"text": TEXT}
    assert finish == {
        "header": {"action": "finish-task", "task_id": task_id, "streaming": "duplex"},
        "payload": {"input": {}},
    }
    assert speech.request_id == task_id
    assert fake.keys["dashscope"] not in fake.seen_text()  # the key only in the handshake's header


def test_cosyvoice_preview_is_the_speech_as_a_wav(fake: FakeProviders, clip: Path) -> None:
    cosy, voice = cosy_voice(fake, clip)
    wav = cosy.preview(voice, target_model=COSY, text=TEXT)
    assert wav[:4] == b"RIFF" and wav[44:] == speech_pcm(TEXT, 24000)
    assert fake.requests_to("cosyvoice.synthesize") == []  # not the HTTP endpoint


def test_a_task_failed_before_the_audio_raises_its_code_and_message(fake: FakeProviders, clip: Path) -> None:
    cosy, voice = cosy_voice(fake, clip)
    with pytest.raises(ProviderError) as info:  # a voice only works with the model it was made for
        cosy.speak(voice, target_model="cosyvoice-v3-flash", text=TEXT)
    err = info.value
    assert not isinstance(err, SpeechInterrupted)
    assert (err.reason, err.provider_code) == ("provider_bad_request", "InvalidParameter")
    assert "created for" in err.message


@pytest.mark.parametrize(
    ("fault", "reason", "code"),
    [
        (Fault.error("InternalError", "synthesis engine crashed"), "provider_unavailable", "InternalError"),
        (
            Fault.error("DataInspectionFailed", "input text is not allowed"),
            "provider_rejected",
            "DataInspectionFailed",
        ),
        (Fault.drop(), "provider_unavailable", None),
    ],
    ids=["task-failed", "task-failed-content", "dropped"],
)
def test_a_stream_cut_short_says_why_and_how_much_arrived(
    fake: FakeProviders, clip: Path, fault: Fault, reason: str, code: str | None
) -> None:
    cosy, voice = cosy_voice(fake, clip)
    fake.inject("cosyvoice.ws", fault)
    speech = cosy.speak(voice, target_model=COSY, text=TEXT)
    got: list[bytes] = []
    with pytest.raises(SpeechInterrupted) as info:
        for chunk in speech:
            got.append(chunk)
    err = info.value
    assert (err.reason, err.provider_code) == (reason, code)
    assert err.received_bytes == CHUNK_BYTES == sum(map(len, got))  # one frame came before the fault
    if fault.kind == "drop":
        assert "dropped" in err.message
    else:
        assert fault.message in err.message


def test_a_slow_first_chunk_is_waited_for_within_the_read_timeout(fake: FakeProviders, clip: Path) -> None:
    cosy, voice = cosy_voice(fake, clip)
    fake.inject("cosyvoice.ws", Fault.delay(0.3))
    assert cosy.speak(voice, target_model=COSY, text=TEXT).read_all() == speech_pcm(TEXT, 24000)
    impatient = client(fake, "cosyvoice", limits={"read_timeout_s": 0.1})
    fake.inject("cosyvoice.ws", Fault.delay(2.0))
    with pytest.raises(SpeechInterrupted) as info:
        impatient.speak(voice, target_model=COSY, text=TEXT).read_all()
    assert info.value.reason == "provider_unavailable" and "no message for 0.1 s" in info.value.message
    assert info.value.received_bytes == 0


def test_a_refused_handshake_is_retried_when_it_may_succeed_later(fake: FakeProviders, clip: Path) -> None:
    cosy, voice = cosy_voice(fake, clip)
    fake.inject("cosyvoice.ws", Fault.http(503), Fault.http(429, code="Throttling.RateQuota"))
    assert cosy.speak(voice, target_model=COSY, text=TEXT).read_all() == speech_pcm(TEXT, 24000)
    assert len(fake.requests_to("cosyvoice.ws")) == 3
    fake.inject("cosyvoice.ws", Fault.http(403, code="AccessDenied", message="no access to cosyvoice"))
    with pytest.raises(ProviderError) as info:
        cosy.speak(voice, target_model=COSY, text=TEXT)
    assert (info.value.reason, info.value.http_status) == ("provider_access", 403)
    assert len(fake.requests_to("cosyvoice.ws")) == 4  # not retried


def test_a_refused_handshake_waits_as_its_retry_after_says(fake: FakeProviders, clip: Path) -> None:
    t = FakeTime()
    _, voice = cosy_voice(fake, clip)
    cosy = provider_client(fake, "cosyvoice", t)
    date = email.utils.formatdate(t.wall() + 7 + 3, usegmt=True)  # 3 s after the first wait
    fake.inject("cosyvoice.ws", Fault.http(429, retry_after=7), Fault.http(503, retry_after=date))
    assert cosy.speak(voice, target_model=COSY, text=TEXT).read_all() == speech_pcm(TEXT, 24000)
    assert len(fake.requests_to("cosyvoice.ws")) == 3
    assert t.sleeps[0] == 7.0  # delta seconds, waited exactly (not a jittered backoff)
    assert 2.0 <= t.sleeps[1] <= 3.0  # an HTTP date, measured from the client's wall clock
    fake.inject("cosyvoice.ws", Fault.http(429, retry_after=3600))
    t2 = FakeTime()
    capped = provider_client(fake, "cosyvoice", t2)
    capped.speak(voice, target_model=COSY, text=TEXT).read_all()
    assert t2.sleeps == [capped.runtime.retry_after_cap_s]  # capped like the HTTP retries


def test_a_wrong_key_is_provider_auth_and_never_shown(fake: FakeProviders, clip: Path) -> None:
    _, voice = cosy_voice(fake, clip)
    wrong = "sk-wrong-key-0123456789abcdef"
    bad = client(fake, "cosyvoice", env={**fake.env(), "DASHSCOPE_API_KEY": wrong})
    with pytest.raises(ProviderError) as info:
        bad.speak(voice, target_model=COSY, text=TEXT)
    assert info.value.reason == "provider_auth"
    assert wrong not in str(info.value) and wrong[:12] not in str(info.value)


def test_a_server_message_quoting_the_key_is_redacted(fake: FakeProviders, clip: Path) -> None:
    cosy, voice = cosy_voice(fake, clip)
    key = fake.keys["dashscope"]
    fake.inject(
        "cosyvoice.ws", Fault.error("InvalidParameter", f"bad request from Bearer {key} ({key[:10]}...)")
    )
    with pytest.raises(SpeechInterrupted) as info:
        cosy.speak(voice, target_model=COSY, text=TEXT).read_all()
    assert key not in str(info.value) and "Bearer ***" in info.value.message


# --- Qwen ---------------------------------------------------------------------------------------------


def test_realtime_models_are_told_apart() -> None:
    assert is_realtime_model(QWEN_RT) and is_realtime_model("qwen3-tts-vc-realtime-2025-11-27")
    assert not is_realtime_model(QWEN) and not is_realtime_model(COSY)


def test_a_realtime_bound_voice_speaks_over_the_realtime_socket(fake: FakeProviders, clip: Path) -> None:
    qwen, voice = qwen_voice(fake, clip)
    speech = qwen.speak(voice, target_model=QWEN_RT, text=TEXT)
    assert speech.read_all() == speech_pcm(TEXT, 24000)
    [session] = fake.requests_to("qwen.realtime")
    assert (session.path, session.query) == ("/api-ws/v1/realtime", {"model": QWEN_RT})
    update, append, commit, finish = session.messages
    assert update["type"] == "session.update"
    assert update["session"] == {
        "voice": voice,
        "mode": "commit",
        "response_format": "pcm",
        "sample_rate": 24000,
    }
    assert (append["type"], append["text"]) == ("input_text_buffer.append", TEXT)
    assert commit["type"] == "input_text_buffer.commit" and finish["type"] == "session.finish"
    assert all(m["event_id"].startswith("event_") for m in session.messages)
    assert speech.request_id and speech.request_id.startswith("sess_")
    assert fake.requests_to("qwen.synthesize") == []


def test_a_realtime_bound_voice_can_be_previewed(fake: FakeProviders, clip: Path) -> None:
    """The bug this fixes: the preview went to the HTTP endpoint, which refuses realtime models."""
    qwen, voice = qwen_voice(fake, clip)
    wav = qwen.preview(voice, target_model=QWEN_RT, text="Hi.")
    assert wav[:4] == b"RIFF" and wav[44:] == speech_pcm("Hi.", 24000)
    with pytest.raises(ProviderError):  # what the old path did
        qwen._synthesise(
            "services/aigc/multimodal-generation/generation",
            {"model": QWEN_RT, "input": {"text": "Hi.", "voice": voice}},
            "old preview",
        )


def test_a_non_realtime_qwen_voice_speaks_over_http(fake: FakeProviders, clip: Path) -> None:
    qwen, voice = qwen_voice(fake, clip, model=QWEN)
    speech = qwen.speak(voice, target_model=QWEN, text=TEXT)
    assert speech.sample_rate == 24000 and speech.read_all() == speech_pcm(TEXT, 24000)
    [synth] = fake.requests_to("qwen.synthesize")
    assert synth.json == {"model": QWEN, "input": {"text": TEXT, "voice": voice}}
    assert fake.requests_to("qwen.realtime") == []


def test_qwen_realtime_error_events(fake: FakeProviders, clip: Path) -> None:
    qwen, voice = qwen_voice(fake, clip)
    with pytest.raises(ProviderError) as info:  # a voice of another model: refused at session.update
        qwen.speak(voice, target_model="qwen3-tts-vc-realtime-2025-11-27", text=TEXT)
    assert (info.value.reason, info.value.provider_code) == ("provider_bad_request", "invalid_value")
    fake.inject("qwen.realtime", Fault.error("InternalError", "engine crashed"))
    with pytest.raises(SpeechInterrupted) as cut:
        qwen.speak(voice, target_model=QWEN_RT, text=TEXT).read_all()
    assert cut.value.received_bytes == CHUNK_BYTES and "engine crashed" in cut.value.message
    fake.inject("qwen.realtime", Fault.drop())
    with pytest.raises(SpeechInterrupted) as dropped:
        qwen.speak(voice, target_model=QWEN_RT, text=TEXT).read_all()
    assert dropped.value.reason == "provider_unavailable" and "dropped" in dropped.value.message
