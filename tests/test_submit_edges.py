"""Submit's edges: a kill or a lost answer before the create itself is sent (during a provider's
preparatory upload) makes no ``unknown`` voice; submit and ``voices`` writers take the run folder's lock;
``voices update`` records the update before sending it, so a crash or a lost answer is known."""

from __future__ import annotations

import hashlib
import json
import socket
import sqlite3
import time
from pathlib import Path

import pytest
from _cli import voiceprep
from fake_providers import FakeProviders, FakeTime, Fault, fake_runtime, make_wav, provider_client
from submit_fakes import FakeCloud, Killed, make_providers, make_run

from pipeline.batch.outputs import LOCK_NAME, OutputBusy
from pipeline.enroll.ledger import read_records, read_versions, read_voices
from pipeline.enroll.providers import make_provider
from pipeline.enroll.providers.base import ProviderError
from pipeline.enroll.submit import submit_run
from pipeline.enroll.voices import update_voice, voice_warnings
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


# ------------------------------------------------------------------------------------------------ the OUT lock


def _held_by_another_run(out: Path) -> None:
    """``OUT/.voiceprep.lock`` as a live run of this host holds it (pid 1 is always alive)."""
    holder = {"pid": 1, "host": socket.gethostname(), "started": "2026-12-07T00:00:00Z"}
    (out / LOCK_NAME).write_text(json.dumps(holder))


def _cli(*args: str | Path, env: dict[str, str]):
    return voiceprep(*args, env=env, drop=["*_API_KEY", "*_BASE_URL"])


def test_submit_waits_for_no_run_it_stops_at_the_run_lock(tmp_path: Path) -> None:
    make_run(tmp_path, speakers=["alice"], families=["minimax"])
    cloud = FakeCloud()
    _held_by_another_run(tmp_path)
    with pytest.raises(OutputBusy):
        submit_run(tmp_path, providers=make_providers(cloud, ["minimax"]))
    assert not cloud.calls and not (tmp_path / "voices.sqlite").exists()
    dry = submit_run(tmp_path, dry_run=True, providers=make_providers(cloud, ["minimax"]))
    assert [o.action for o in dry] == ["dry-run"]  # a dry run writes nothing: no lock needed
    (tmp_path / LOCK_NAME).unlink()
    assert [o.status for o in submit_run(tmp_path, providers=make_providers(cloud, ["minimax"]))] == ["ready"]
    assert not (tmp_path / LOCK_NAME).exists()  # released


def test_ledger_writers_stop_with_exit_4_while_a_run_holds_the_folder(
    tmp_path: Path, server: FakeProviders
) -> None:
    make_run(tmp_path, speakers=["alice"], families=["minimax"], audio=_wav)
    env = server.env()
    assert _cli("submit", "--out", tmp_path, env=env).returncode == 0
    [row] = _ledger(tmp_path)
    _held_by_another_run(tmp_path)
    before = len(server.requests)
    for args in (
        ("submit", "--out", tmp_path),
        ("voices", "sync", "--out", tmp_path),
        ("voices", "delete", "1", "--out", tmp_path, "--yes"),
        ("voices", "delete", "1", "--ledger", tmp_path / "voices.sqlite", "--yes"),  # the ledger's folder
        ("voices", "update", "1", "--clip", tmp_path / "clips/alice/minimax.wav", "--out", tmp_path),
    ):
        done = _cli(*args, env=env)
        assert done.returncode == 4, (args, done.stdout, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "pid 1" in done.stderr, done.stderr
    assert len(server.requests) == before  # nothing was sent
    assert _ledger(tmp_path) == [row]
    for args in (("voices", "list", "--out", tmp_path), ("voices", "show", "1", "--out", tmp_path)):
        assert _cli(*args, env=env).returncode == 0  # readers need no lock
    spoken = _cli("speak", "1", "Hello.", "--run", tmp_path, "--out", tmp_path / "hi.wav", env=env)
    assert spoken.returncode == 0, spoken.stderr
    assert _ledger(tmp_path)[0]["last_used_at"]  # its stamp is one UPDATE, safe beside a writer


def test_speak_succeeds_when_the_ledger_is_busy(
    tmp_path: Path, server: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_run(tmp_path, speakers=["alice"], families=["minimax"], audio=_wav)
    env = server.env()
    assert _cli("submit", "--out", tmp_path, env=env).returncode == 0
    monkeypatch.setattr("pipeline.enroll.speak.STAMP_BUSY_TIMEOUT_S", 0.2)
    writer = sqlite3.connect(tmp_path / "voices.sqlite", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process in the middle of a ledger transaction
    try:
        spoken = _cli("speak", "1", "Hello.", "--run", tmp_path, "--out", tmp_path / "hi.wav", env=env)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert spoken.returncode == 0, spoken.stderr
    assert (tmp_path / "hi.wav").read_bytes()[:4] == b"RIFF"
    assert "last_used_at not stamped" in spoken.stdout
    assert _ledger(tmp_path)[0]["last_used_at"] is None


# ------------------------------------------------------------------------------------------------ voices update


def _cosyvoice_voice(out: Path, fake: FakeProviders) -> tuple[Path, object]:
    """A run with one ready CosyVoice voice made on the fake server; returns (ledger, its row)."""
    make_run(out, speakers=("alice",), families=("cosyvoice",), audio=lambda i: make_wav(1.0 + i / 10))
    outs = submit_run(out, settle_interval_s=0.01, settle_timeout_s=5.0, providers={"cosyvoice": _cosy(fake)})
    assert [o.status for o in outs] == ["ready"], [o.note for o in outs]
    [row] = read_records(out / "voices.sqlite")
    return out / "voices.sqlite", row


def _cosy(fake: FakeProviders):
    return provider_client(fake, "cosyvoice", FakeTime())


class _KillAfterUpdate:
    """A real client whose process "dies" right after the provider answered an update."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def update_voice(self, voice_id, record, **options):
        self.inner.update_voice(voice_id, record, **options)
        raise Killed("killed before the ledger recorded the new version")


def test_a_crash_after_an_update_leaves_it_recorded_and_a_rerun_settles_it(
    tmp_path: Path, server: FakeProviders
) -> None:
    ledger, row = _cosyvoice_voice(tmp_path / "out", server)
    better = tmp_path / "better.wav"
    better.write_bytes(make_wav(2.0, freq=300.0))
    sha = hashlib.sha256(better.read_bytes()).hexdigest()
    dying = {"cosyvoice": _KillAfterUpdate(_cosy(server))}
    with pytest.raises(Killed):
        update_voice(ledger, row.voice_id, better, providers=dying, settle_interval_s=0.01)
    [after] = read_records(ledger)
    assert after.clip_sha256 == row.clip_sha256 and len(read_versions(ledger, row.id)) == 1
    pending = after.details["pending_update"]  # the re-run knows: the voice may be made from either clip
    assert (pending["clip_sha256"], pending["clip_path"]) == (sha, str(better.resolve()))
    warned = [m for kind, m, r in voice_warnings([after]) if kind == "unresolved"]
    assert len(warned) == 1 and str(better.resolve()) in warned[0]
    settled = update_voice(
        ledger, row.voice_id, better, providers={"cosyvoice": _cosy(server)}, settle_interval_s=0.01
    )
    assert (settled.status, settled.clip_sha256) == ("ready", sha)
    assert "pending_update" not in settled.details
    assert [v["clip_sha256"] for v in read_versions(ledger, row.id)] == [row.clip_sha256, sha]
    assert not [w for w in voice_warnings(read_records(ledger)) if w[0] == "unresolved"]


def test_an_update_whose_answers_are_lost_stays_recorded_and_a_refused_one_does_not(
    tmp_path: Path, server: FakeProviders
) -> None:
    ledger, row = _cosyvoice_voice(tmp_path / "out", server)
    better = tmp_path / "better.wav"
    better.write_bytes(make_wav(2.0, freq=300.0))
    server.inject("cosyvoice.update_voice", *[Fault.drop(after_action=True)] * 4)  # every attempt
    with pytest.raises(ProviderError) as lost:
        update_voice(ledger, row.voice_id, better, providers={"cosyvoice": _cosy(server)})
    assert "again" in lost.value.message
    [after] = read_records(ledger)
    assert after.details["pending_update"]["clip_path"] == str(better.resolve())
    assert after.clip_sha256 == row.clip_sha256  # not claimed either way
    server.clear_faults()
    server.inject("cosyvoice.update_voice", Fault.error("InvalidParameter", "bad url", status=400))
    other = tmp_path / "other.wav"
    other.write_bytes(make_wav(2.5, freq=250.0))
    with pytest.raises(ProviderError):
        update_voice(ledger, row.voice_id, other, providers={"cosyvoice": _cosy(server)})
    [after] = read_records(ledger)  # refused: the earlier unanswered update is still the one recorded
    assert after.details["pending_update"]["clip_path"] == str(better.resolve())


# ------------------------------------------------------------------------------------------------ languages

FAMILIES = ("cosyvoice", "qwen-tts", "minimax")


def test_a_language_a_vendor_does_not_list_is_reported_once_per_speaker_and_family(
    tmp_path: Path, server: FakeProviders
) -> None:
    make_run(tmp_path, speakers=["alice", "bob"], families=FAMILIES, audio=_wav)
    env = server.env()
    langs = ("--language", "alice=sw", "--language", "bob=pt-BR")  # Swahili: no vendor lists it
    done = _cli("submit", "--out", tmp_path, "--json", "--poll-interval", "0.1", *langs, env=env)
    assert done.returncode == 0, done.stderr
    rows = {(r["speaker"], r["family"]): r for r in map(json.loads, done.stdout.splitlines())}
    for family in FAMILIES:
        [warning] = rows["alice", family]["warnings"]
        assert "sw" in warning and "not sent" in warning
    # pt is listed by Qwen and MiniMax (sent), not by CosyVoice
    assert [len(rows["bob", f]["warnings"]) for f in FAMILIES] == [1, 0, 0]
    assert server.requests_to("qwen.create")[1].json["input"]["language"] == "pt"
    assert "language" not in server.requests_to("qwen.create")[0].json["input"]
    # the table: one line per speaker and family; a dry run says the same before anything is sent
    make_run(tmp_path / "again", speakers=["alice"], families=FAMILIES, audio=lambda i: _wav(i + 7))
    dry = _cli("submit", "--out", tmp_path / "again", "--language", "sw", "--dry-run", env=env)
    table = _cli("submit", "--out", tmp_path / "again", "--language", "sw", "--poll-interval", "0.1", env=env)
    for shown in (dry, table):
        assert shown.returncode == 0, (shown.stdout, shown.stderr)
        lines = [line for line in shown.stdout.splitlines() if line.startswith("warning: alice/")]
        assert sorted(line.split(":")[1].strip() for line in lines) == sorted(f"alice/{f}" for f in FAMILIES)


SPOKEN = {  # kind: (endpoint, where the language went, what "pt-BR" becomes)
    "cosyvoice": (
        "cosyvoice.ws",
        lambda r: r.messages[0]["payload"]["parameters"].get("language_hints"),
        ["pt"],
    ),
    "qwen-tts": (
        "qwen.realtime",
        lambda r: next(m for m in r.messages if m["type"] == "session.update")["session"].get(
            "language_type"
        ),
        "Portuguese",
    ),
    "qwen-http": ("qwen.synthesize", lambda r: r.json["input"].get("language_type"), "Portuguese"),
    "minimax": ("minimax.t2a", lambda r: r.json.get("language_boost"), "Portuguese"),
    "elevenlabs": ("elevenlabs.tts_stream", lambda r: r.json.get("language_code"), None),
}


@pytest.mark.parametrize("kind", sorted(SPOKEN))
def test_speak_sends_the_language_where_the_protocol_takes_it(
    tmp_path: Path, server: FakeProviders, kind: str
) -> None:
    from test_speak import make_voice

    from pipeline.enroll.speak import speak

    ledger = tmp_path / "voices.sqlite"
    row = make_voice(server, tmp_path, kind, ledger)
    endpoint, sent, expected = SPOKEN[kind]
    done = speak(str(row.id), "Olá.", out=tmp_path / "a.wav", ledger_path=ledger, language="pt-BR")
    assert sent(server.requests_to(endpoint)[-1]) == expected
    assert ("not sent" in done.note) == (expected is None)  # ElevenLabs: said, never sent
    unlisted = speak(str(row.id), "Habari.", out=tmp_path / "b.wav", ledger_path=ledger, language="sw")
    assert sent(server.requests_to(endpoint)[-1]) is None and "language sw not sent" in unlisted.note
    plain = speak(str(row.id), "Hi.", out=tmp_path / "c.wav", ledger_path=ledger)
    assert sent(server.requests_to(endpoint)[-1]) is None and plain.note == ""


def test_speak_language_on_the_command_line(tmp_path: Path, server: FakeProviders) -> None:
    from test_speak import make_voice

    ledger = tmp_path / "voices.sqlite"
    row = make_voice(server, tmp_path, "minimax", ledger)
    base = ("speak", str(row.id), "Hi.", "--ledger", ledger, "--out", tmp_path / "hi.wav")
    unlisted = _cli(*base, "--language", "sw", env=server.env())
    assert unlisted.returncode == 0, unlisted.stderr
    notes = [line for line in unlisted.stdout.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "language sw not sent" in notes[0]
    assert _cli(*base, "--language", "not a language!", env=server.env()).returncode == 2
    assert _cli(*base, "--language", "es", env=server.env()).returncode == 0
    assert server.requests_to("minimax.t2a")[-1].json["language_boost"] == "Spanish"


def test_a_kill_while_a_multipart_create_is_going_out_is_retried_at_once(
    tmp_path: Path, server: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.enroll.providers import common

    make_run(tmp_path, speakers=["alice"], families=["elevenlabs"], audio=lambda i: make_wav(12.0))
    real_read = common._SentBeforeLastBlock.read
    calls: list[int] = []

    def dying_read(self, size=-1):  # the process dies with part of the multipart body sent
        calls.append(size)
        if len(calls) == 2:
            raise Killed("killed while the voices/add body was going out")
        return real_read(self, size)

    monkeypatch.setattr(common._SentBeforeLastBlock, "read", dying_read)
    client = make_provider(load_family("elevenlabs"), runtime=fake_runtime(server.env(), FakeTime()))
    with pytest.raises(Killed):
        submit_run(tmp_path, providers={"elevenlabs": client})
    [row] = _ledger(tmp_path)
    assert (row["status"], row["sent_at"]) == ("pending", None)  # the body never arrived whole
    for _ in range(500):  # the server thread sees the connection end on its own schedule
        if server.incomplete:
            break
        time.sleep(0.01)
    assert server.voices("elevenlabs") == []
    assert [(m, path) for m, path, got, length in server.incomplete if got < length] == [
        ("POST", "/v1/voices/add")
    ]
    monkeypatch.setattr(common._SentBeforeLastBlock, "read", real_read)
    healthy = make_provider(load_family("elevenlabs"), runtime=fake_runtime(server.env(), FakeTime()))
    outs = submit_run(tmp_path, providers={"elevenlabs": healthy})
    assert [(o.action, o.status) for o in outs] == [("created", "ready")], [o.note for o in outs]
    [row] = _ledger(tmp_path)
    assert row["sent_at"] is not None and [v["voice_id"] for v in server.voices("elevenlabs")] == [
        row["voice_id"]
    ]
    # the body went out whole and unchanged: the fake parsed the same multipart fields
    [add] = [r for r in server.requests_to("elevenlabs.add") if r.status == 200]
    assert (
        add.form["name"] == row["name"]
        and add.files["files"][1] == (tmp_path / "clips/alice/elevenlabs.wav").read_bytes()
    )


def test_the_report_refresh_after_a_submit_waits_for_no_run_and_writes_nothing_under_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.cli.common import write_report

    make_run(tmp_path, speakers=["alice"], families=["minimax"])
    (tmp_path / "report.html").write_text("the page a run is about to replace")
    _held_by_another_run(tmp_path)
    write_report(tmp_path, existing_only=True)  # what `submit` calls once its voices are recorded
    assert (tmp_path / "report.html").read_text() == "the page a run is about to replace"
    assert "not refreshed" in capsys.readouterr().err
