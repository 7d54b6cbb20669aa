"""MiniMax client against the local fake: upload + clone shapes, errors in HTTP 200 bodies, retries, the
2039 duplicate rule (a retried clone never makes a second voice), previews, list/delete, redaction."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fake_providers import FakeProviders, FakeTime, Fault, create_request, make_wav, provider_client

from pipeline.enroll.providers import MiniMaxClient, Runtime, VoiceRecord
from pipeline.enroll.providers.base import OutcomeUnknown, ProviderError
from pipeline.enroll.providers.http import LOGGER_NAME
from pipeline.enroll.providers.minimax import minimax_error
from pipeline.errors import InvalidArgument

MODEL = "speech-2.8-hd"
NAME = "vp_alice_0123456789"


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "alice" / "minimax.wav"
    path.parent.mkdir()
    path.write_bytes(make_wav(1.5))
    return path


def request(clip: Path, name: str = NAME) -> VoiceRecord:
    return create_request(clip, "minimax", MODEL, name)


def client(
    fake: FakeProviders, t: FakeTime | None = None, *, env: dict[str, str] | None = None, **kw: object
) -> MiniMaxClient:
    made = provider_client(fake, "minimax", t, env=env, seed=2, **kw)
    assert isinstance(made, MiniMaxClient)
    return made


def test_upload_and_clone_send_the_documented_requests(fake: FakeProviders, clip: Path) -> None:
    mm = client(fake)
    result = mm.create_voice(request(clip), preview_text="Hello there.", language="en")
    [upload] = fake.requests_to("minimax.upload")
    assert upload.header("Authorization") == f"Bearer {fake.keys['minimax']}"
    assert upload.form == {"purpose": "voice_clone"}
    assert upload.files["file"] == ("minimax.wav", clip.read_bytes())
    [clone] = fake.requests_to("minimax.clone")
    file_id = fake.voices("minimax")[0]["file_id"]
    assert clone.json == {
        "file_id": file_id,
        "voice_id": NAME,
        "text": "Hello there.",
        "model": MODEL,
        "language_boost": "English",
    }
    assert result.voice_id == NAME and result.status == "ready"
    assert len(result.request_ids) == 2  # Trace-Id of the upload and of the clone
    assert mm.preview(NAME, target_model=MODEL, text="Hello there.")[:4] == b"RIFF"
    assert fake.requests_to("audio.download")[0].header("Authorization") is None


def test_without_preview_text_the_clone_body_is_minimal_and_the_preview_is_a_t2a_synthesis(
    fake: FakeProviders, clip: Path
) -> None:
    mm = client(fake)
    mm.create_voice(request(clip))
    [clone] = fake.requests_to("minimax.clone")
    assert set(clone.json) == {"file_id", "voice_id"}
    assert mm.preview(NAME, target_model=MODEL, text="Hi")[:4] == b"RIFF"  # no demo_audio: T2A
    assert len(fake.requests_to("minimax.t2a")) == 1


@pytest.mark.parametrize(
    ("voice_id", "valid"),
    [
        ("vp_alice_0123456789", True),
        ("Abcdefgh", True),  # 8 characters
        ("Abcdefg", False),  # 7
        ("a" + "b" * 255, True),  # 256
        ("a" + "b" * 256, False),  # 257
        ("1abcdefgh", False),  # starts with a digit
        ("abcdefgh-", False),
        ("abcdefgh_", False),
        ("abc defgh", False),
        ("abc-de_fg9", True),
    ],
)
def test_voice_id_rules(fake: FakeProviders, clip: Path, voice_id: str, valid: bool) -> None:
    if not valid:
        with pytest.raises(InvalidArgument, match="voice_id"):
            client(fake).prepare_create(request(clip, name=voice_id))
        assert fake.requests == []
    else:
        assert len(client(fake).prepare_create(request(clip, name=voice_id))) == 2


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (1004, "provider_auth"),
        (2049, "provider_auth"),
        (1008, "provider_balance"),
        (1026, "provider_rejected"),
        (1043, "provider_rejected"),
        (2013, "provider_bad_request"),
        (20132, "provider_rejected"),
        (2037, "provider_rejected"),
        (2038, "provider_access"),
        (2042, "provider_access"),
    ],
)
def test_errors_in_http_200_are_mapped_and_not_retried(
    fake: FakeProviders, clip: Path, code: int, reason: str
) -> None:
    fake.inject("minimax.clone", Fault.error(code))
    with pytest.raises(ProviderError) as info:
        client(fake).create_voice(request(clip))
    assert (info.value.reason, info.value.provider_code, info.value.retryable) == (reason, str(code), False)
    assert info.value.http_status == 200
    assert info.value.request_id  # the Trace-Id header
    assert len(fake.requests_to("minimax.clone")) == 1
    assert fake.voices("minimax") == []


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1033, 1039])
def test_transient_codes_are_retried(fake: FakeProviders, clip: Path, code: int) -> None:
    t = FakeTime()
    fake.inject("minimax.clone", Fault.error(code), Fault.error(code))
    result = client(fake, t).create_voice(request(clip))
    assert result.voice_id == NAME
    assert len(fake.requests_to("minimax.clone")) == 3
    assert len(t.sleeps) == 2
    assert len(fake.voices("minimax")) == 1


def test_rate_limiting_that_never_ends_is_provider_rate_limited(fake: FakeProviders, clip: Path) -> None:
    fake.inject("minimax.get_voice", *[Fault.throttle()] * 4)
    with pytest.raises(ProviderError) as info:
        client(fake).list_voices()
    assert (info.value.reason, info.value.retryable) == ("provider_rate_limited", True)
    assert len(fake.requests_to("minimax.get_voice")) == 4


@pytest.mark.parametrize(
    "fault", [Fault.drop(), Fault.delay(1.0), Fault.malformed()], ids=["drop", "timeout", "malformed"]
)
def test_a_lost_clone_is_retried_and_2039_means_it_worked(
    fake: FakeProviders, clip: Path, fault: Fault, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    fake.inject("minimax.clone", fault)
    result = client(fake, limits={"read_timeout_s": 0.3}).create_voice(request(clip))
    clones = fake.requests_to("minimax.clone")
    assert len(clones) == 2
    assert clones[0].json["voice_id"] == clones[1].json["voice_id"] == NAME  # same id both times
    assert [v["voice_id"] for v in fake.voices("minimax")] == [NAME]  # one voice, not two
    assert result.voice_id == NAME
    assert "confirmed by a duplicate answer" in caplog.text


def test_giving_up_after_a_lost_clone_is_outcome_unknown_and_find_voice_settles_it(
    fake: FakeProviders, clip: Path
) -> None:
    mm = client(fake, limits={"max_attempts": 3})
    fake.inject("minimax.clone", Fault.drop(after_action=True), Fault.throttle(), Fault.throttle())
    with pytest.raises(OutcomeUnknown):
        mm.create_voice(request(clip))
    found = mm.find_voice(request(clip))
    assert found is not None and found.voice_id == NAME
    assert mm.find_voice(request(clip, name="vp_nobody_000000")) is None


def test_a_first_attempt_2039_is_success_only_if_the_voice_is_there(
    fake: FakeProviders, clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    mm = client(fake)
    fake.add_voice("minimax", voice_id=NAME)  # e.g. made by a run that died before writing its ledger
    result = mm.create_voice(request(clip))
    assert result.voice_id == NAME and "already existed" in caplog.text
    assert len(fake.voices("minimax")) == 1
    mm.delete_voice(NAME)
    with pytest.raises(ProviderError) as info:  # used and deleted: MiniMax never gives an id back
        mm.create_voice(request(clip))
    assert (info.value.reason, info.value.provider_code) == ("provider_bad_request", "2039")
    assert "new name" in info.value.message
    assert fake.voices("minimax") == []


def test_a_lost_upload_is_retried(fake: FakeProviders, clip: Path) -> None:
    fake.inject("minimax.upload", Fault.drop(after_action=True), Fault.http(502))
    mm = client(fake)
    mm.create_voice(request(clip))
    assert len(fake.requests_to("minimax.upload")) == 3
    assert len(fake.voices("minimax")) == 1


def test_list_query_and_delete(fake: FakeProviders, clip: Path) -> None:
    mm = client(fake)
    fake.add_voice("minimax", voice_id="planted_voice_1")
    mm.create_voice(request(clip))
    assert sorted(v.voice_id for v in mm.list_voices()) == sorted(["planted_voice_1", NAME])
    assert fake.requests_to("minimax.get_voice")[0].json == {"voice_type": "voice_cloning"}
    assert mm.query_voice(NAME).status == "ready"  # type: ignore[union-attr]
    assert mm.wait_until_settled(NAME, timeout_s=1, interval_s=1).voice_id == NAME
    mm.delete_voice(NAME)
    assert fake.requests_to("minimax.delete_voice")[0].json == {
        "voice_type": "voice_cloning",
        "voice_id": NAME,
    }
    mm.delete_voice(NAME)  # already gone
    assert mm.query_voice(NAME) is None
    with pytest.raises(ProviderError, match="voice_gone"):
        mm.wait_until_settled(NAME, timeout_s=1, interval_s=1)


def test_bad_audio_is_rejected(fake: FakeProviders, clip: Path) -> None:
    fake.mark_bad_audio(clip.read_bytes())
    with pytest.raises(ProviderError) as info:
        client(fake).create_voice(request(clip))
    assert (info.value.reason, info.value.provider_code) == ("provider_rejected", "20132")


def test_base_url_and_key_come_from_the_environment() -> None:
    env = {"MINIMAX_API_KEY": "mm-0123456789"}
    assert MiniMaxClient(runtime=Runtime(environ=env)).base_url == "https://api.minimax.io"
    assert (
        MiniMaxClient(
            runtime=Runtime(environ={**env, "MINIMAX_BASE_URL": "https://api.minimaxi.com/v1/"})
        ).base_url
        == "https://api.minimaxi.com"
    )
    assert (
        MiniMaxClient(runtime=Runtime(environ=env), base_url="http://127.0.0.1:9").base_url
        == "http://127.0.0.1:9"
    )
    with pytest.raises(ProviderError) as info:
        MiniMaxClient(runtime=Runtime(environ={}))
    assert info.value.reason == "missing_api_key" and "MINIMAX_API_KEY" in info.value.message


def test_http_errors_and_the_code_table() -> None:
    assert minimax_error(1002, "slow down").retryable is True
    assert minimax_error(99999, None).reason == "provider_bad_request"
    assert "MiniMax 2049" in minimax_error(2049, "invalid api key").message


def test_the_key_never_leaks(fake: FakeProviders, clip: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    wrong = "mm-wrong-SECRET-5522aa"
    mm = client(fake, env={**fake.env(), "MINIMAX_API_KEY": wrong})
    with pytest.raises(ProviderError) as info:  # the fake echoes the presented header in its 2049 answer
        mm.create_voice(request(clip))
    assert info.value.reason == "provider_auth"
    assert wrong not in str(info.value)
    assert "***" in info.value.message  # the echoed key was there, and was blanked
    good = client(fake)
    fake.inject("minimax.clone", Fault.throttle())
    good.create_voice(request(clip))
    for key in (wrong, fake.keys["minimax"]):
        assert all(key not in rec.getMessage() for rec in caplog.records)
        assert key not in fake.seen_text()
        assert key not in repr(good)
