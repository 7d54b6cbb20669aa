"""The shared HTTP layer: redaction, Retry-After, full-jitter backoff, deadline, lost answers, logging; and a
hypothesis property over fault schedules for the three create flows (never a duplicate voice)."""

from __future__ import annotations

import email.utils
import logging
import random
import socket
from pathlib import Path

import pytest
import requests
from fake_providers import FakeProviders, FakeTime, Fault, create_request, fake_runtime, make_wav
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.enroll.providers import VoiceRecord, make_provider
from pipeline.enroll.providers.base import OutcomeUnknown, ProviderError
from pipeline.enroll.providers.common import VoiceProvider
from pipeline.enroll.providers.http import (
    LOGGER_NAME,
    Redactor,
    Runtime,
    backoff_delay,
    failed_before_sending,
    parse_retry_after,
    status_error,
)

KEY = "sk-unit-SECRET-4471-key"


class MaxRng(random.Random):
    """A jitter source that always draws the upper bound, so backoff waits are known exactly."""

    def uniform(self, a: float, b: float) -> float:
        return b


def plain(response: requests.Response, maybe_acted: bool) -> bytes:
    status = response.status_code
    if status == 200:
        return response.content
    raise status_error(status, f"HTTP {status}")


class Plain(VoiceProvider):
    """A bare client of the shared HTTP layer: answers are their bytes, request ids from ``X-Request-Id``."""

    provider = "dashscope"
    key_env = "DASHSCOPE_API_KEY"
    _interpret = staticmethod(plain)
    _request_id_of = staticmethod(lambda r: r.headers.get("X-Request-Id"))


def client(
    url: str, t: FakeTime, *, key: str | None = KEY, rng: random.Random | None = None, **policy: float
) -> Plain:
    settings_ = {
        "base_delay_s": 1.0,
        "max_delay_s": 8.0,
        "retry_after_cap_s": 30.0,
        "deadline_s": 120.0,
        "connect_timeout_s": 2.0,
        "read_timeout_s": 2.0,
    }
    settings_.update(policy)
    env = {"DASHSCOPE_API_KEY": key} if key else {}
    runtime = fake_runtime(env, t, rng=rng or MaxRng(), **settings_)
    return Plain(base_url=url, runtime=runtime, require_key=False)


@pytest.fixture
def public(fake: FakeProviders) -> str:
    """A published file's path on the fake (``GET /public/a.bin`` answers ``hello``)."""
    fake.publish("a.bin", b"hello")
    return "public/a.bin"


# --- pure helpers -------------------------------------------------------------------------------------


def test_redactor_removes_keys_bearer_tokens_and_auth_headers() -> None:
    r = Redactor([KEY])
    assert r(f"failed with key {KEY}!") == "failed with key ***!"
    assert r("url?api_key=whatever123&x=1") == "url?api_key=***&x=1"
    assert r("Authorization: Bearer abc.def-123 rest") == "Authorization: Bearer *** rest"
    assert r("sent 'Bearer zzz999' twice") == "sent 'Bearer ***' twice"
    assert r('{"xi-api-key": "el-123456"}') == '{"xi-api-key": "***"}'
    assert Redactor(["ab/cd+ef=="])("token=ab%2Fcd%2Bef%3D%3D.") == "token=***."  # URL-encoded form
    assert (
        r("nothing secret here: voice cosyvoice-v2-abc-1") == "nothing secret here: voice cosyvoice-v2-abc-1"
    )
    assert KEY not in repr(r)


def test_parse_retry_after_seconds_and_http_dates() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after("7", now=now) == 7.0
    assert parse_retry_after(" 2.5 ", now=now) == 2.5
    assert parse_retry_after("-3", now=now) == 0.0
    assert parse_retry_after(email.utils.formatdate(now + 20, usegmt=True), now=now) == 20.0
    assert parse_retry_after(email.utils.formatdate(now - 20, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after("inf", now=now) is None
    assert parse_retry_after(None, now=now) is None


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    highest = Runtime(base_delay_s=1.0, max_delay_s=8.0, rng=MaxRng())
    assert [backoff_delay(k, highest) for k in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    seeded = Runtime(base_delay_s=1.0, max_delay_s=8.0, rng=random.Random(3))
    draws = [backoff_delay(k, seeded) for k in range(1, 200)]
    assert all(0.0 <= d <= min(8.0, 2.0 ** (k - 1)) for k, d in zip(range(1, 200), draws, strict=True))
    assert len({round(d, 6) for d in draws}) > 150  # jittered, not a fixed ladder
    again = Runtime(base_delay_s=1.0, max_delay_s=8.0, rng=random.Random(3))
    assert draws == [backoff_delay(k, again) for k in range(1, 200)]  # deterministic given the seed


# --- retries against the fake server ------------------------------------------------------------------


def test_retry_after_is_honoured_in_seconds_and_dates(fake: FakeProviders, public: str) -> None:
    t = FakeTime()
    http = client(fake.url, t)
    date = email.utils.formatdate(t.wall() + 9.5 + 12, usegmt=True)  # 12 s after the third answer
    fake.inject(
        "public.download",
        Fault.http(429, retry_after="7"),
        Fault.http(503, retry_after="2.5"),
        Fault.http(503, retry_after=date),
    )
    assert http.request("GET", public, action="get", authenticated=False)[0] == b"hello"
    assert len(fake.requests_to("public.download")) == 4
    assert t.sleeps == [7.0, 2.5, pytest.approx(12.0, abs=1.0)]


def test_retry_after_is_capped(fake: FakeProviders, public: str) -> None:
    t = FakeTime()
    fake.inject("public.download", Fault.http(429, retry_after="3600"))
    data, _ = client(fake.url, t, retry_after_cap_s=30.0).request(
        "GET", public, action="get", authenticated=False
    )
    assert data == b"hello"
    assert t.sleeps == [30.0]


def test_backoff_without_retry_after_doubles(fake: FakeProviders, public: str) -> None:
    t = FakeTime()
    fake.inject("public.download", Fault.http(500), Fault.http(502), Fault.http(503))
    client(fake.url, t).request("GET", public, action="get", authenticated=False)
    assert t.sleeps == [1.0, 2.0, 4.0]


def test_gives_up_after_max_attempts_with_the_mapped_reason(fake: FakeProviders, public: str) -> None:
    t = FakeTime()
    fake.inject("public.download", *[Fault.http(503)] * 10)
    with pytest.raises(ProviderError) as info:
        client(fake.url, t, max_attempts=4).request("GET", public, action="get", authenticated=False)
    assert info.value.reason == "provider_unavailable"
    assert info.value.retryable is True
    assert info.value.http_status == 503
    assert "4 attempts" in info.value.message
    assert len(fake.requests_to("public.download")) == 4
    assert t.sleeps == [1.0, 2.0, 4.0]


def test_the_deadline_stops_waiting(fake: FakeProviders, public: str) -> None:
    t = FakeTime()
    fake.inject("public.download", *[Fault.http(429, retry_after="4")] * 10)
    with pytest.raises(ProviderError) as info:
        client(fake.url, t, deadline_s=10.0, max_attempts=50).request(
            "GET", public, action="get", authenticated=False
        )
    assert info.value.reason == "provider_rate_limited"
    assert "deadline" in info.value.message
    assert t.sleeps == [4.0, 4.0]  # a third wait would end at 12 s > 10 s
    assert len(fake.requests_to("public.download")) == 3


def test_bad_requests_are_not_retried(fake: FakeProviders, public: str) -> None:
    t = FakeTime()
    fake.inject("public.download", Fault.http(400))
    with pytest.raises(ProviderError) as info:
        client(fake.url, t).request("GET", public, action="get", authenticated=False)
    assert info.value.reason == "provider_bad_request"
    assert info.value.retryable is False
    assert t.sleeps == []
    assert len(fake.requests_to("public.download")) == 1


@pytest.mark.parametrize(
    "fault", [Fault.drop(), Fault.delay(1.0), Fault.http(500)], ids=["drop", "timeout", "500"]
)
def test_a_lost_answer_to_a_non_idempotent_call_is_outcome_unknown(
    fake: FakeProviders, public: str, fault: Fault
) -> None:
    t = FakeTime()
    http = client(fake.url, t, read_timeout_s=0.25)
    fake.inject("public.download", fault)
    with pytest.raises(OutcomeUnknown) as info:
        http.request("GET", public, action="create", authenticated=False, idempotent=False)
    assert info.value.reason == "outcome_unknown"
    assert "not re-sent" in info.value.message
    assert len(fake.requests_to("public.download")) == 1  # never re-sent
    assert t.sleeps == []


@pytest.mark.parametrize(
    "fault", [Fault.drop(), Fault.delay(1.0), Fault.http(500)], ids=["drop", "timeout", "500"]
)
def test_a_lost_answer_to_an_idempotent_call_is_retried(
    fake: FakeProviders, public: str, fault: Fault
) -> None:
    t = FakeTime()
    http = client(fake.url, t, read_timeout_s=0.25)
    fake.inject("public.download", fault)
    assert http.request("GET", public, action="list", authenticated=False)[0] == b"hello"
    assert len(fake.requests_to("public.download")) == 2


def test_a_non_idempotent_call_is_resent_when_the_provider_did_not_act(
    fake: FakeProviders, public: str
) -> None:
    t = FakeTime()
    fake.inject("public.download", Fault.http(429), Fault.http(408))
    data, _ = client(fake.url, t).request(
        "GET", public, action="create", authenticated=False, idempotent=False
    )
    assert data == b"hello"
    assert t.sleeps == [1.0, 2.0]


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_connection_refused_is_retried_even_for_creates() -> None:
    t = FakeTime()
    http = client(f"http://127.0.0.1:{_closed_port()}", t, max_attempts=3)
    with pytest.raises(ProviderError) as info:
        http.request("POST", "create", action="create", idempotent=False)
    assert not isinstance(info.value, OutcomeUnknown)  # nothing was sent: safe to say "not created"
    assert info.value.reason == "provider_unavailable"
    assert t.sleeps == [1.0, 2.0]
    with pytest.raises(requests.exceptions.ConnectionError) as exc:
        requests.get(f"http://127.0.0.1:{_closed_port()}/", timeout=1)
    assert failed_before_sending(exc.value)


def test_an_idempotent_create_that_gives_up_after_a_lost_answer_is_outcome_unknown(
    fake: FakeProviders, public: str
) -> None:
    t = FakeTime()
    fake.inject("public.download", Fault.drop(), Fault.http(429), Fault.http(429))
    with pytest.raises(OutcomeUnknown):
        client(fake.url, t, max_attempts=3).request(
            "GET", public, action="clone", authenticated=False, creates=True
        )
    fake.inject("public.download", Fault.http(429), Fault.http(429), Fault.http(429))
    with pytest.raises(ProviderError) as info:  # nothing may have acted: a plain, retryable error
        client(fake.url, t, max_attempts=3).request(
            "GET", public, action="clone", authenticated=False, creates=True
        )
    assert not isinstance(info.value, OutcomeUnknown)
    assert info.value.reason == "provider_rate_limited"


def test_the_key_is_sent_only_in_the_auth_header_and_never_logged(
    fake: FakeProviders, public: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    t = FakeTime()
    http = client(fake.url, t)
    fake.inject("public.download", Fault.http(503), Fault.http(400, message=f"bad key {KEY}"))
    with pytest.raises(ProviderError):
        http.request("GET", public, action="get")
    messages = [rec.getMessage() for rec in caplog.records]
    assert any("retrying in 1.00 s" in m for m in messages)
    assert all(KEY not in m for m in messages)
    assert [r.header("Authorization") for r in fake.requests] == [f"Bearer {KEY}"] * 2
    assert KEY not in fake.seen_text()  # nowhere but the auth header
    assert KEY not in repr(http)
    http.request("GET", public, action="get", authenticated=False)
    assert fake.requests[-1].header("Authorization") is None


def test_a_missing_key_stops_before_any_request(fake: FakeProviders, public: str) -> None:
    http = client(fake.url, FakeTime(), key=None)
    with pytest.raises(ProviderError) as info:
        http.request("GET", public, action="get")
    assert info.value.reason == "missing_api_key"
    assert "DASHSCOPE_API_KEY" in info.value.message
    assert fake.requests == []


# --- property: any fault schedule ends in success, a mapped error or OutcomeUnknown, never a duplicate ----

FAULTS = {
    "throttle": Fault.throttle(),
    "throttle_ra": Fault.throttle(retry_after="3"),
    "http500": Fault.http(500),
    "http503": Fault.http(503),
    "drop_after": Fault.drop(after_action=True),
    "drop_before": Fault.drop(after_action=False),
    "malformed_after": Fault.malformed(after_action=True),
    "malformed_before": Fault.malformed(after_action=False),
}
FLOWS = {
    # family: (target model, name, create endpoint, upload endpoint or None, server kind, name field)
    "cosyvoice": (
        "cosyvoice-v3-plus",
        "prop1",
        "cosyvoice.create_voice",
        "oss.upload",
        "cosyvoice",
        "prefix",
    ),
    "qwen-tts": ("qwen3-tts-vc-2026-01-22", "prop_1", "qwen.create", None, "qwen", "preferred_name"),
    "minimax": ("speech-2.8-hd", "PropVoice01", "minimax.clone", "minimax.upload", "minimax", "voice_id"),
}


@pytest.fixture(scope="module")
def shared_fake():
    with FakeProviders() as server:
        yield server


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "clip.wav"
    path.write_bytes(make_wav(1.0))
    return path


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    family=st.sampled_from(sorted(FLOWS)),
    schedule=st.lists(st.sampled_from(sorted(FAULTS)), max_size=5),
    upload_schedule=st.lists(st.sampled_from(sorted(FAULTS)), max_size=2),
)
def test_fault_schedules_never_duplicate_a_voice(
    shared_fake: FakeProviders, clip: Path, family: str, schedule: list[str], upload_schedule: list[str]
) -> None:
    fake = shared_fake
    fake.reset()
    model, name, create_ep, upload_ep, kind, name_field = FLOWS[family]
    provider = make_provider(family, runtime=fake_runtime(fake.env(), seed=0))
    request = create_request(clip, family, model, name)
    fake.inject(create_ep, *[FAULTS[f] for f in schedule])
    if upload_ep:
        fake.inject(upload_ep, *[FAULTS[f] for f in upload_schedule])
    try:
        outcome: object = provider.create_voice(request)
    except ProviderError as err:
        outcome = err
    fake.clear_faults()
    made = [v for v in fake.voices(kind) if v[name_field] == name]
    assert len(made) <= 1, f"duplicate voices {made}"
    id_field = "voice" if kind == "qwen" else "voice_id"
    if isinstance(outcome, VoiceRecord):
        assert [v[id_field] for v in made] == [outcome.voice_id]
    elif isinstance(outcome, OutcomeUnknown):
        found = provider.find_voice(request, since=None)
        assert (found.voice_id if found else None) == (made[0][id_field] if made else None)
    else:
        assert isinstance(outcome, ProviderError)
        assert outcome.reason in ("provider_rate_limited", "provider_unavailable"), outcome
        assert outcome.retryable
        assert made == []  # a plain error promises that nothing was created
    assert not fake.errors


def test_the_key_is_never_sent_to_another_origin_than_the_base_url(fake: FakeProviders, public: str) -> None:
    c = client(fake.url, FakeTime())
    with FakeProviders() as other:
        other.publish("a.bin", b"hello")
        for url in (f"{other.url}/{public}", f"{fake.url.replace('127.0.0.1', 'localhost')}/{public}"):
            with pytest.raises(ProviderError, match="the key is not sent there"):
                c.request("GET", url, action="get")
        assert other.requests == []
        assert c.request("GET", f"{other.url}/{public}", action="get", authenticated=False)[0] == b"hello"
    assert fake.requests == []
    assert c.request("GET", f"{fake.url}/{public}", action="get")[0] == b"hello"  # its own origin: fine
