"""ElevenLabs client (optional fourth family) against the local fake: voices/add shape, the xi-api-key
header, lost answers, quota, list/delete/preview."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_providers import FakeProviders, Fault, create_request, make_wav, provider_client

from pipeline.enroll.providers import ElevenLabsClient, VoiceRecord
from pipeline.enroll.providers.base import OutcomeUnknown, ProviderError

MODEL = "eleven_multilingual_v2"


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "elevenlabs.wav"
    path.write_bytes(make_wav(1.0))
    return path


def request(clip: Path, name: str = "alice vp1") -> VoiceRecord:
    return create_request(clip, "elevenlabs", MODEL, name)


def client(fake: FakeProviders, **env: str) -> ElevenLabsClient:
    made = provider_client(
        fake,
        "elevenlabs",
        env={**fake.env(), **env},
        seed=0,
        limits={"max_attempts": 3},
    )
    assert isinstance(made, ElevenLabsClient)
    return made


def test_create_sends_multipart_with_the_xi_api_key(fake: FakeProviders, clip: Path) -> None:
    el = client(fake)
    result = el.create_voice(request(clip))
    [add] = fake.requests_to("elevenlabs.add")
    assert add.header("xi-api-key") == fake.keys["elevenlabs"]
    assert add.header("Authorization") is None
    assert add.form["name"] == "alice vp1"
    assert add.form["remove_background_noise"] == "false"  # it can hurt clean audio
    assert json.loads(add.form["labels"])["target_model"] == MODEL
    assert add.files["files"][1] == clip.read_bytes()
    assert result.voice_id == fake.voices("elevenlabs")[0]["voice_id"]
    assert [v.voice_id for v in el.list_voices()] == [result.voice_id]  # premade voices are left out
    assert el.preview(result.voice_id, target_model=MODEL, text="Hi.")[:4] == b"RIFF"
    el.delete_voice(result.voice_id)
    el.delete_voice(result.voice_id)
    assert el.query_voice(result.voice_id) is None


def test_a_lost_create_is_outcome_unknown_and_found_by_name(fake: FakeProviders, clip: Path) -> None:
    el = client(fake)
    fake.inject("elevenlabs.add", Fault.drop(after_action=True))
    with pytest.raises(OutcomeUnknown):
        el.create_voice(request(clip))
    found = el.find_voice(request(clip), since="2020-01-01T00:00:00+00:00")
    assert found is not None and found.voice_id == fake.voices("elevenlabs")[0]["voice_id"]
    assert el.find_voice(request(clip, name="bob")) is None


def test_voice_limit_and_bad_key_are_mapped(clip: Path) -> None:
    with FakeProviders(quotas={"elevenlabs": 0}) as fake:
        with pytest.raises(ProviderError) as info:
            client(fake).create_voice(request(clip))
        assert (info.value.reason, info.value.provider_code) == ("provider_quota", "voice_limit_reached")
        wrong = "el-wrong-SECRET-77"
        with pytest.raises(ProviderError) as bad:
            client(fake, ELEVENLABS_API_KEY=wrong).list_voices()
        assert bad.value.reason == "provider_auth"
        assert wrong not in str(bad.value)
        assert wrong not in fake.seen_text()
