"""Submit's edges: a kill or a lost answer before the create itself is sent (during a provider's
preparatory upload) makes no ``unknown`` voice; submit and ``voices`` writers take the run folder's lock."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_providers import FakeProviders, FakeTime, fake_runtime, make_wav
from submit_fakes import FakeCloud, Killed, make_providers, make_run

from pipeline.enroll.ledger import read_voices
from pipeline.enroll.providers import make_provider
from pipeline.enroll.submit import submit_run
from pipeline.rules.families import load_family


def _ledger(out: Path) -> list[dict]:
    return read_voices(out / "voices.sqlite")


def _wav(i: int) -> bytes:
    return make_wav(1.0 + 0.1 * i, freq=200.0 + 30 * i)


@pytest.fixture
def server(fake: FakeProviders, monkeypatch: pytest.MonkeyPatch) -> FakeProviders:
    """The local fake server, its keys and base URLs in the environment."""
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    return fake


UPLOADS = {  # family -> (client options, a piece of the preparatory request's URL, the create endpoint)
    "cosyvoice": ({"audio_source": "oss"}, "/oss-upload", "cosyvoice.create_voice"),
    "minimax": ({}, "/v1/files/upload", "minimax.clone"),
}


def _dying_in_upload(fake: FakeProviders, family: str, t: FakeTime):
    """The real client of ``family`` on the fake server, whose process "dies" while its preparatory
    upload is on the wire (before the create itself is sent)."""
    options, marker, _ = UPLOADS[family]
    client = make_provider(load_family(family), runtime=fake_runtime(fake.env(), t), **options)
    send = client.session.request

    def request(method: str, url: str, **kwargs: object):
        if marker in url:
            raise Killed(f"killed while uploading to {url}")
        return send(method, url, **kwargs)

    client.session.request = request  # type: ignore[method-assign]
    return client


@pytest.mark.parametrize("family", sorted(UPLOADS))
def test_a_kill_during_the_upload_leaves_a_voice_retried_at_once(
    tmp_path: Path, server: FakeProviders, family: str
) -> None:
    make_run(tmp_path, speakers=["alice"], families=[family], audio=_wav)
    t = FakeTime()
    with pytest.raises(Killed):
        submit_run(tmp_path, settle_interval_s=1, providers={family: _dying_in_upload(server, family, t)})
    [row] = _ledger(tmp_path)
    assert (row["status"], row["sent_at"]) == ("pending", None)  # never sent: not unknown
    assert server.requests_to(UPLOADS[family][2]) == []
    options = UPLOADS[family][0]
    healthy = make_provider(load_family(family), runtime=fake_runtime(server.env(), t), **options)
    outs = submit_run(tmp_path, settle_interval_s=1, providers={family: healthy})
    assert [(o.action, o.status) for o in outs] == [("created", "ready")], [o.note for o in outs]
    [row] = _ledger(tmp_path)
    assert row["status"] == "ready" and len(server.requests_to(UPLOADS[family][2])) == 1


def test_a_lost_upload_answer_is_not_created_and_retryable_at_once(tmp_path: Path) -> None:
    make_run(tmp_path, speakers=["alice"], families=["cosyvoice"])
    cloud = FakeCloud()
    [out] = submit_run(tmp_path, providers=make_providers(cloud, ["cosyvoice"], faults=["upload_lost"]))
    assert (out.status, out.reason) == ("failed", "not_created")
    [row] = _ledger(tmp_path)
    assert row["sent_at"] is None and not cloud.voices
    outs = submit_run(
        tmp_path, providers=make_providers(cloud, ["cosyvoice"])
    )  # no 10-minute wait, no search needed
    assert [(o.action, o.status) for o in outs] == [("created", "ready")]
    assert len(cloud.voices) == 1


def test_a_crash_during_the_upload_is_retried_without_a_search(tmp_path: Path) -> None:
    make_run(tmp_path, speakers=["alice"], families=["minimax"])
    cloud = FakeCloud()
    with pytest.raises(Killed):
        submit_run(tmp_path, providers=make_providers(cloud, ["minimax"], faults=["upload_crash"]))
    outs = submit_run(tmp_path, providers=make_providers(cloud, ["minimax"]))
    assert [(o.action, o.status) for o in outs] == [("created", "ready")]
    assert [c for c in cloud.calls if c[0] == "find"] == []  # nothing to reconcile: never sent
    assert len(cloud.voices) == 1
