"""Synthesis over HTTP against the local fake: MiniMax T2A (server-sent events of hex PCM) and ElevenLabs
stream speech (raw PCM), field by field, with a stream cut short and an error inside the stream; and
MiniMax voices made earlier (no ``demo_audio`` in this process) that can now be heard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fake_providers import FakeProviders, Fault, create_request, make_wav, provider_client, speech_pcm

from pipeline.enroll.providers.base import ProviderError
from pipeline.enroll.providers.speech import SpeechInterrupted

MM_MODEL = "speech-2.8-hd"
EL_MODEL = "eleven_multilingual_v2"
TEXT = "Hello, this is my new voice."
NAME = "vp_alice_0123456789"


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.wav"
    path.write_bytes(make_wav(12.0))
    return path


def minimax(fake: FakeProviders, clip: Path, **create: Any) -> Any:
    mm = provider_client(fake, "minimax")
    mm.create_voice(create_request(clip, "minimax", MM_MODEL, NAME), **create)
    return mm


def test_minimax_speaks_through_t2a_streamed_as_events(fake: FakeProviders, clip: Path) -> None:
    mm = minimax(fake, clip)
    speech = mm.speak(NAME, target_model=MM_MODEL, text=TEXT)
    chunks = list(speech)
    assert b"".join(chunks) == speech_pcm(TEXT, 24000) and len(chunks) > 1
    [t2a] = fake.requests_to("minimax.t2a")
    assert t2a.json == {
        "model": MM_MODEL,
        "text": TEXT,
        "stream": True,
        "stream_options": {"exclude_aggregated_audio": True},
        "voice_setting": {"voice_id": NAME, "speed": 1, "vol": 1, "pitch": 0},
        "audio_setting": {"sample_rate": 24000, "format": "pcm", "channel": 1},
        "output_format": "hex",
    }
    assert t2a.header("Authorization") == f"Bearer {fake.keys['minimax']}"
    assert speech.request_id  # the Trace-Id, for support
    assert "last_used" in fake.voices("minimax")[0]  # a real synthesis: it keeps the voice alive


def test_an_older_minimax_voice_is_previewed_through_t2a(fake: FakeProviders, clip: Path) -> None:
    """A voice made earlier (another process: no demo_audio here) can be heard; one made now with a
    preview text is heard from its free demo_audio."""
    minimax(fake, clip)
    later = provider_client(fake, "minimax")  # a new process: it did not make the voice
    wav = later.preview(NAME, target_model=MM_MODEL, text="Hi.")
    assert wav[:4] == b"RIFF" and wav[44:] == speech_pcm("Hi.", 24000)
    assert len(fake.requests_to("minimax.t2a")) == 1
    fresh = provider_client(fake, "minimax")
    fresh.create_voice(create_request(clip, "minimax", MM_MODEL, "vp_bob_0123456789"), preview_text="Hi.")
    assert fresh.preview("vp_bob_0123456789", target_model=MM_MODEL, text="Hi.")[:4] == b"RIFF"
    assert len(fake.requests_to("minimax.t2a")) == 1  # the demo audio, not a second synthesis
    assert len(fake.requests_to("audio.download")) == 1


@pytest.mark.parametrize(
    ("fault", "reason", "says"),
    [
        (Fault.drop(), "provider_unavailable", "ended before its last event"),
        (Fault.error(1033, "system error", after_action=True), "provider_unavailable", "1033"),
        (Fault.error(1026, "sensitive text", after_action=True), "provider_rejected", "sensitive"),
    ],
    ids=["dropped", "error-1033", "error-1026"],
)
def test_a_minimax_stream_cut_short_is_never_whole(
    fake: FakeProviders, clip: Path, fault: Fault, reason: str, says: str
) -> None:
    mm = minimax(fake, clip)
    fake.inject("minimax.t2a", fault)
    with pytest.raises(SpeechInterrupted) as info:
        mm.speak(NAME, target_model=MM_MODEL, text=TEXT).read_all()
    assert info.value.reason == reason and says in info.value.message
    assert info.value.received_bytes == 4800  # the first event's audio came


def test_minimax_errors_before_the_stream_are_mapped(fake: FakeProviders, clip: Path) -> None:
    mm = minimax(fake, clip)
    with pytest.raises(ProviderError) as info:  # a voice that does not exist
        mm.speak("vp_nobody_000000000", target_model=MM_MODEL, text=TEXT)
    assert (info.value.reason, info.value.provider_code) == ("provider_bad_request", "2013")
    fake.inject("minimax.t2a", Fault.error(1002, "rate limit"), Fault.error(1004, "login fail"))
    with pytest.raises(ProviderError) as auth:  # 1002 is retried; 1004 is not
        mm.speak(NAME, target_model=MM_MODEL, text=TEXT)
    assert auth.value.reason == "provider_auth" and not isinstance(auth.value, SpeechInterrupted)
    assert len(fake.requests_to("minimax.t2a")) == 3


def test_elevenlabs_streams_raw_pcm(fake: FakeProviders, clip: Path) -> None:
    el = provider_client(fake, "elevenlabs")
    voice = el.create_voice(create_request(clip, "elevenlabs", EL_MODEL, "alice")).voice_id
    speech = el.speak(voice, target_model=EL_MODEL, text=TEXT)
    assert speech.read_all() == speech_pcm(TEXT, 24000)
    [call] = fake.requests_to("elevenlabs.tts_stream")
    assert call.path == f"/v1/text-to-speech/{voice}/stream"
    assert call.query == {"output_format": "pcm_24000"}
    assert call.json == {"text": TEXT, "model_id": EL_MODEL}
    assert call.header("xi-api-key") == fake.keys["elevenlabs"]
    assert el.preview(voice, target_model=EL_MODEL, text="Hi.")[44:] == speech_pcm("Hi.", 24000)
    fake.inject("elevenlabs.tts_stream", Fault.drop(after_action=True))
    with pytest.raises(SpeechInterrupted) as info:
        el.speak(voice, target_model=EL_MODEL, text=TEXT).read_all()
    assert info.value.reason == "provider_unavailable" and info.value.received_bytes == 4800
    with pytest.raises(ProviderError) as missing:
        el.speak("nobody", target_model=EL_MODEL, text=TEXT)
    assert missing.value.http_status == 404
