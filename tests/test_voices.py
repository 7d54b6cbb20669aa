"""``voices`` list/show/delete/sync and the expiry/quota warnings, and the ``submit``/``voices`` commands
through typer's CliRunner (with the in-memory provider standing in for the HTTP clients)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import typer
from fake_providers import FakeProviders, make_wav
from submit_fakes import BASE_URL, SECRET, FakeCloud, FakeProvider, make_providers, make_run
from typer.testing import CliRunner

from pipeline.batch.manifest import read_rows
from pipeline.cli.voices import submit_command, voices_app
from pipeline.enroll import submit as submit_mod
from pipeline.enroll.ledger import Ledger, read_voices
from pipeline.enroll.providers.base import VoiceRecord
from pipeline.enroll.submit import submit_run
from pipeline.enroll.voices import (
    delete_voice,
    describe_voice,
    expiry_warn_days,
    list_voices,
    quota_usage,
    show_voice,
    sync_voices,
    voice_warnings,
)
from pipeline.errors import InvalidArgument

NOW = dt.datetime(2026, 12, 10, 12, 0, tzinfo=dt.UTC)


def _wav(i: int) -> bytes:
    return make_wav(1.0 + 0.1 * i, freq=200.0 + 30 * i)


def _row(
    family: str, status: str = "ready", *, days_old: float = 0.0, used_days_ago: float | None = None, **kw
):
    provider = {"cosyvoice": "dashscope", "qwen-tts": "dashscope", "minimax": "minimax"}[family]
    row = {
        "id": kw.pop("id", 1),
        "provider": provider,
        "base_url": BASE_URL,
        "family": family,
        "target_model": None,
        "voice_id": kw.pop("voice_id", f"{family}-v"),
        "name": "n",
        "clip_sha256": None,
        "clip_path": None,
        "speaker": "alice",
        "status": status,
        "created_at": (NOW - dt.timedelta(days=days_old)).isoformat(),
        "last_used_at": None
        if used_days_ago is None
        else (NOW - dt.timedelta(days=used_days_ago)).isoformat(),
    }
    row.update(kw)
    return VoiceRecord(**row)


def _submitted(tmp_path: Path, families=("cosyvoice", "minimax"), speakers=("alice", "bob")):
    make_run(tmp_path, speakers=speakers, families=families)
    cloud = FakeCloud()
    providers = make_providers(cloud, families)
    outs = submit_run(tmp_path, settle_interval_s=1, settle_timeout_s=5, providers=providers)
    assert all(o.status == "ready" for o in outs)
    return cloud, providers


# ------------------------------------------------------------------------------------------------ warnings


def test_minimax_expiry_warnings() -> None:
    assert expiry_warn_days(7) == 3 and expiry_warn_days(365) == 30
    fresh = voice_warnings([_row("minimax", days_old=3.5)], now=NOW)
    assert fresh == []
    [(kind, message, _)] = voice_warnings([_row("minimax", days_old=5.0)], now=NOW)
    assert kind == "expiring" and "expires in about 2.0 days" in message
    [(kind, message, _)] = voice_warnings([_row("minimax", days_old=8.0)], now=NOW)
    assert kind == "expired" and "7 days since creation" in message
    # a known recent use restarts the clock
    assert voice_warnings([_row("minimax", days_old=30.0, used_days_ago=1.0)], now=NOW) == []
    # deleted or gone voices do not expire any more
    assert voice_warnings([_row("minimax", "deleted", days_old=30.0)], now=NOW) == []


def test_alibaba_expiry_after_a_year() -> None:
    assert voice_warnings([_row("cosyvoice", days_old=300)], now=NOW) == []
    [(kind, message, _)] = voice_warnings([_row("qwen-tts", days_old=345)], now=NOW)
    assert kind == "expiring" and "about 20.0 days" in message
    [(kind, message, _)] = voice_warnings([_row("cosyvoice", days_old=400)], now=NOW)
    assert kind == "expired"


def test_quota_usage_and_warning_at_80_percent() -> None:
    rows = [_row("cosyvoice", id=i, voice_id=f"v{i}", days_old=1) for i in range(799)]
    rows += [_row("cosyvoice", "deleted", id=900 + i, voice_id=f"d{i}") for i in range(50)]
    assert quota_usage(rows) == [f"cosyvoice at {BASE_URL}: 799 voices of 1000 (ledger)"]
    assert [w for w in voice_warnings(rows, now=NOW) if w[0] == "quota"] == []
    rows.append(_row("cosyvoice", "unknown", id=5000, voice_id=None))
    [(_, q, _)] = [w for w in voice_warnings(rows, now=NOW) if w[0] == "quota"]
    assert "800 of 1000 voices used" in q
    # the provider's own count wins when it was asked
    assert quota_usage(rows[:3], remote_counts={("cosyvoice", BASE_URL): 950}) == [
        f"cosyvoice at {BASE_URL}: 950 voices of 1000 (provider)"
    ]
    # MiniMax publishes no limit: no quota warning however many
    many = [_row("minimax", id=i, voice_id=f"m{i}") for i in range(50)]
    assert [w for w in voice_warnings(many, now=NOW) if w[0] == "quota"] == []


def test_unresolved_rows_are_warned_about() -> None:
    [(kind, message, _)] = voice_warnings([_row("qwen-tts", "unknown", voice_id=None, id=7)], now=NOW)
    assert kind == "unresolved" and "row 7" in message and "voices sync" in message


# ------------------------------------------------------------------------------------------------ list/show


def test_list_and_show(tmp_path: Path) -> None:
    _submitted(tmp_path)
    ledger = tmp_path / "voices.sqlite"
    listing = list_voices(ledger)
    assert len(listing.entries) == 4 and all(r is not None and rv is None for r, rv in listing.entries)
    assert listing.usage == [
        f"cosyvoice at {BASE_URL}: 2 voices of 1000 (ledger)",
        f"minimax at {BASE_URL}: 2 voices (no published limit) (ledger)",
    ]
    assert [r.family for r, _ in list_voices(ledger, family="minimax").entries] == ["minimax", "minimax"]
    assert len(list_voices(ledger, provider="dashscope").entries) == 2
    assert list_voices(ledger, statuses=["gone"]).entries == []
    with pytest.raises(InvalidArgument, match="status must be one of"):
        list_voices(ledger, statuses=["done"])
    nothing_yet = list_voices(tmp_path / "nope.sqlite")  # a run with nothing submitted: empty, not an error
    assert nothing_yet.entries == [] and "no voice ledger yet" in nothing_yet.notes[0]
    assert not (tmp_path / "nope.sqlite").exists()  # listing never creates a ledger
    mistyped = list_voices(tmp_path / "no-such-run" / "voices.sqlite")  # a wrong --out: says so
    assert mistyped.entries == [] and "does not exist" in mistyped.notes[0]
    assert "nothing was submitted" not in mistyped.notes[0] and not (tmp_path / "no-such-run").exists()

    first = listing.entries[0][0]
    assert show_voice(ledger, str(first.id)) == first
    assert show_voice(ledger, f"#{first.id}") == first
    assert show_voice(ledger, first.voice_id) == first
    assert show_voice(ledger, first.name) == first
    with pytest.raises(InvalidArgument, match="no voice in the ledger matches"):
        show_voice(ledger, "nobody")
    text = dict(describe_voice(first))
    assert text["target_model"] == "cosyvoice-v3-plus"
    assert "must use the exact target model 'cosyvoice-v3-plus'" in text["reminder"]
    assert text["expiry"].startswith("deleted after one year without use")


def test_list_remote_merges_the_providers_view(tmp_path: Path) -> None:
    cloud, providers = _submitted(tmp_path, families=("minimax",))
    cloud.voices.pop(next(iter(cloud.voices)))  # one expired
    FakeProvider(cloud, "minimax").create_voice(  # one made outside voiceprep
        VoiceRecord(family="minimax", target_model="speech-2.8-hd", name="someone_else1")
    )
    listing = list_voices(tmp_path / "voices.sqlite", remote=True, providers=providers)
    in_ledger = [(r, rv) for r, rv in listing.entries if r is not None]
    assert sorted(rv is None for _, rv in in_ledger) == [False, True]
    [foreign] = [rv for r, rv in listing.entries if r is None]
    assert foreign is not None and foreign.voice_id == "someone_else1" and foreign.family == "minimax"
    assert listing.usage == [f"minimax at {BASE_URL}: 2 voices (no published limit) (provider)"]
    assert len(read_voices(tmp_path / "voices.sqlite")) == 2  # read-only: nothing recorded


# ------------------------------------------------------------------------------------------------ delete


def test_delete_at_provider_then_ledger_then_resubmit(tmp_path: Path) -> None:
    cloud, providers = _submitted(tmp_path, families=("minimax",), speakers=("alice",))
    [row] = read_voices(tmp_path / "voices.sqlite")
    after = delete_voice(tmp_path / "voices.sqlite", row["voice_id"], providers=providers)
    assert after.status == "deleted" and after.note == f"deleted at {BASE_URL}"
    assert cloud.voices == {} and [c[0] for c in cloud.calls][-1] == "delete"
    calls = len(cloud.calls)
    again = delete_voice(tmp_path / "voices.sqlite", row["voice_id"], providers=providers)
    assert again.status == "deleted" and again.note == "already deleted" and len(cloud.calls) == calls
    # the next submit sees the deleted row, frees the clip, and a further submit makes a new voice
    [o] = submit_run(tmp_path, providers=providers)
    assert o.status == "deleted" and "submit again" in o.note
    [o] = submit_run(tmp_path, providers=providers)
    assert o.action == "created" and o.voice_id != row["voice_id"]
    assert len(cloud.voices) == 1


def test_delete_a_row_without_voice_is_local(tmp_path: Path) -> None:
    make_run(tmp_path, speakers=["alice"], families=["qwen-tts"])
    cloud = FakeCloud()
    providers = make_providers(cloud, ["qwen-tts"], faults=["lost_before"])
    [o] = submit_run(tmp_path, providers=providers)
    assert o.status == "unknown"
    calls = len(cloud.calls)
    after = delete_voice(tmp_path / "voices.sqlite", str(o.id), providers=providers)
    assert after.status == "deleted"
    assert "voices sync" in after.note and len(cloud.calls) == calls
    [o2] = submit_run(tmp_path, providers=providers)  # the clip may now be submitted again
    assert o2.action == "created" and o2.status == "ready" and o2.name != o.name


# ------------------------------------------------------------------------------------------------ sync


def test_sync_changes_gone_and_unknown_voices(tmp_path: Path) -> None:
    make_run(tmp_path, speakers=["alice", "bob", "cho"], families=["cosyvoice"])
    cloud = FakeCloud()
    providers = {
        "cosyvoice": FakeProvider(cloud, "cosyvoice", review_polls=2, faults=["ok", "ok", "lost_after"])
    }
    outs = submit_run(tmp_path, settle_timeout_s=0, settle_interval_s=1, providers=providers)
    assert [o.status for o in outs] == [
        "deploying",
        "deploying",
        "deploying",
    ]  # cho: found after the lost answer
    ledger = tmp_path / "voices.sqlite"
    with Ledger(ledger) as led:  # simulate cho's row left unresolved by a crash
        cho = next(r for r in led.rows() if r.speaker == "cho")
        led.update(cho.id, status="unknown")
        led._conn.execute("UPDATE voices SET voice_id = NULL WHERE id = ?", (cho.id,))
    voices = {v.name: v for v in cloud.voices.values()}
    alice_v = next(v for n, v in voices.items() if n.startswith("ali"))
    bob_v = next(v for n, v in voices.items() if n.startswith("bob"))
    alice_v.status = "ready"
    cloud.voices.pop(bob_v.voice_id)
    FakeProvider(cloud, "cosyvoice", review_polls=0).create_voice(
        VoiceRecord(family="cosyvoice", target_model="cosyvoice-v2", name="foreign1")
    )
    report = sync_voices(ledger, providers=providers)
    changes = {(before.status, after.status) for before, after, _ in report.changes}
    assert changes == {("deploying", "ready"), ("deploying", "gone"), ("unknown", "deploying")}
    assert [r.voice_id for r in report.recorded] == [
        v.voice_id for v in cloud.voices.values() if v.name == "foreign1"
    ]
    assert report.recorded[0].origin == "remote" and report.recorded[0].status == "ready"
    assert report.checked == [("cosyvoice", BASE_URL, 3)]
    rows = read_voices(ledger)
    assert {r["voice_id"] for r in rows if r["status"] != "gone"} == set(cloud.voices)
    # idempotent: a second sync finds nothing new
    again = sync_voices(ledger, providers=providers)
    assert again.changes == [] and again.recorded == [] and again.notes == []
    # a deleted row whose voice is still listed is reported
    with Ledger(ledger) as led:
        led.update(next(r.id for r in led.rows() if r.voice_id == alice_v.voice_id), status="deleted")
    assert any("still listed" in n for n in sync_voices(ledger, providers=providers).notes)


def test_sync_of_a_foreign_region_is_a_note(tmp_path: Path) -> None:
    _submitted(tmp_path, families=("minimax",), speakers=("alice",))
    with Ledger(tmp_path / "voices.sqlite") as led:  # a voice in the global region (a documented host)
        led._conn.execute("UPDATE voices SET base_url = 'https://api.minimax.io'")
    other = {"minimax": FakeProvider(FakeCloud(), "minimax", base_url="https://api.minimaxi.com")}
    report = sync_voices(tmp_path / "voices.sqlite", providers=other)
    assert report.checked == [] and "serves https://api.minimaxi.com" in report.notes[0]


# ------------------------------------------------------------------------------------------------ CLI


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("submit")(submit_command)
    app.add_typer(voices_app, name="voices")
    return app


@pytest.fixture
def fake_env(monkeypatch: pytest.MonkeyPatch) -> FakeCloud:
    """Clients from the in-memory account, made through `make_provider` as submit calls it, with keys in the environment."""
    cloud = FakeCloud()
    monkeypatch.setenv("DASHSCOPE_API_KEY", SECRET)
    monkeypatch.setenv("MINIMAX_API_KEY", SECRET)
    made: dict[str, FakeProvider] = {}

    def factory(spec, *, base_url=None, require_key=True, **options):
        if spec.name not in made:
            made[spec.name] = FakeProvider(cloud, spec.name, review_polls=0, base_url=base_url or BASE_URL)
        return made[spec.name]

    monkeypatch.setattr(submit_mod, "make_provider", factory)
    return cloud


def test_cli_submit_list_show_delete_sync(tmp_path: Path, fake_env: FakeCloud) -> None:
    make_run(tmp_path, speakers=["alice"], families=["cosyvoice", "minimax"])
    runner = CliRunner()
    app = _app()
    r = runner.invoke(app, ["submit", "--out", str(tmp_path), "--preview", "Hello."])
    assert r.exit_code == 0, r.output
    assert "cosyvoice-v3-plus" in r.stdout and "speech-2.8-hd" in r.stdout and "ready" in r.stdout
    assert "clips/alice/minimax.preview.wav" in r.stdout
    assert len(fake_env.voices) == 2

    r = runner.invoke(app, ["voices", "list", "--out", str(tmp_path), "--json"])
    assert r.exit_code == 0
    listed = [json.loads(line) for line in r.stdout.splitlines()]
    assert sorted(x["voice_id"] for x in listed) == sorted(fake_env.voices)

    r = runner.invoke(app, ["voices", "list", "--out", str(tmp_path)])
    assert r.exit_code == 0 and "cosyvoice at https://fake.example/api/v1: 1 voices of 1000" in r.stdout

    mm = next(x for x in listed if x["family"] == "minimax")
    r = runner.invoke(app, ["voices", "show", mm["voice_id"], "--out", str(tmp_path)])
    assert r.exit_code == 0 and "exact target model 'speech-2.8-hd'" in r.stdout

    r = runner.invoke(app, ["voices", "delete", mm["voice_id"], "--out", str(tmp_path)], input="n\n")
    assert r.exit_code == 1 and "nothing deleted" in r.stderr and mm["voice_id"] in fake_env.voices
    r = runner.invoke(app, ["voices", "delete", mm["voice_id"], "--out", str(tmp_path), "--yes"])
    assert r.exit_code == 0 and "deleted" in r.stdout and mm["voice_id"] not in fake_env.voices

    r = runner.invoke(app, ["voices", "sync", "--out", str(tmp_path)])
    assert r.exit_code == 0 and "the ledger matches the providers" in r.stdout

    everything = r.output + "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*.jsonl"))
    assert SECRET not in everything


def test_cli_dry_run_prints_requests_without_secrets(tmp_path: Path, fake_env: FakeCloud) -> None:
    make_run(tmp_path, speakers=["alice"], families=["cosyvoice"])
    r = CliRunner().invoke(_app(), ["submit", "--out", str(tmp_path), "--dry-run"])
    assert r.exit_code == 0, r.output
    assert '"Authorization": "***"' in r.stdout and "<audio elided>" in r.stdout
    assert "nothing was sent or written" in r.stdout
    assert fake_env.calls == [] and not (tmp_path / "voices.sqlite").exists()
    assert SECRET not in r.output
    assert "a real submit needs" not in r.stdout  # the key is set


def test_cli_dry_run_says_which_keys_a_real_submit_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_run(tmp_path, speakers=["alice"], families=["cosyvoice", "minimax"])
    for name in ("DASHSCOPE_API_KEY", "MINIMAX_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    r = CliRunner().invoke(_app(), ["submit", "--out", str(tmp_path), "--dry-run"])
    assert r.exit_code == 0, r.output  # a dry run needs no key
    summary = r.stdout.strip().splitlines()[-1]
    assert "a real submit needs DASHSCOPE_API_KEY, MINIMAX_API_KEY (not set)" in summary, summary


def test_cli_missing_key_is_one_line_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_run(tmp_path, speakers=["alice"], families=["minimax"])
    monkeypatch.delenv("MINIMAX_API_KEY", raising=False)
    r = CliRunner().invoke(_app(), ["submit", "--out", str(tmp_path)])
    assert r.exit_code == 2
    assert r.stderr.strip().splitlines() == [
        "voiceprep: MINIMAX_API_KEY is not set: export MINIMAX_API_KEY=<your minimax key> to manage minimax voices"
    ]
    assert not (tmp_path / "voices.sqlite").exists()


def test_cli_unknown_outcome_exits_1(
    tmp_path: Path, fake_env: FakeCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_run(tmp_path, speakers=["alice"], families=["qwen-tts"])

    def lossy(spec, *, base_url=None, require_key=True, **options):
        return FakeProvider(fake_env, spec.name, faults=["lost_before"])

    monkeypatch.setattr(submit_mod, "make_provider", lossy)
    r = CliRunner().invoke(_app(), ["submit", "--out", str(tmp_path)])
    assert r.exit_code == 1 and "unknown" in r.stdout and "voices sync" in r.stdout
    assert [x["status"] for x in read_rows(tmp_path / "clips.jsonl")] == ["ready"]


def test_cli_usage_errors_exit_2(tmp_path: Path, fake_env: FakeCloud) -> None:
    make_run(tmp_path, speakers=["alice"], families=["minimax"])
    app, runner = _app(), CliRunner()
    r = runner.invoke(app, ["submit", "--out", str(tmp_path), "--target-model", "minimax=speech-9"])
    assert r.exit_code == 2 and "not a minimax model" in r.stderr
    r = runner.invoke(app, ["submit", "--out", str(tmp_path), "--target-model", "speech-02-hd"])
    assert r.exit_code == 2  # a bare model needs exactly one --family
    r = runner.invoke(
        app, ["submit", "--out", str(tmp_path), "-f", "minimax", "--target-model", "speech-02-hd", "--json"]
    )
    assert r.exit_code == 0 and json.loads(r.stdout)["target_model"] == "speech-02-hd"
    r = runner.invoke(app, ["voices", "show", "x", "--ledger", str(tmp_path / "none.sqlite")])
    assert r.exit_code == 2 and "no voice ledger" in r.stderr
    r = runner.invoke(app, ["voices", "list", "--ledger", str(tmp_path / "none.sqlite")])
    assert r.exit_code == 0 and "nothing was submitted" in r.stdout


# ------------------------------------------------------------------------------------------------ end to end
# The real HTTP clients against the local fake server, configured only through the environment, as a
# user would: DASHSCOPE_API_KEY / DASHSCOPE_BASE_URL / MINIMAX_API_KEY / MINIMAX_BASE_URL.


@pytest.fixture
def server(fake: FakeProviders, monkeypatch: pytest.MonkeyPatch) -> FakeProviders:
    """The local fake server (``fake``), its keys and base URLs in the environment."""
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    return fake


def test_e2e_cli_workflow(tmp_path: Path, server: FakeProviders) -> None:
    make_run(tmp_path, speakers=["alice", "bob"], families=["cosyvoice", "qwen-tts", "minimax"], audio=_wav)
    app, runner = _app(), CliRunner()
    r = runner.invoke(app, ["submit", "--out", str(tmp_path), "--dry-run"])
    assert r.exit_code == 0 and server.requests == []
    r = runner.invoke(
        app, ["submit", "--out", str(tmp_path), "--poll-interval", "0.1", "--settle-timeout", "5"]
    )
    assert r.exit_code == 0, r.output
    ids = {
        kind: [v.get("voice_id") or v.get("voice") for v in server.voices(kind)]
        for kind in ("cosyvoice", "qwen", "minimax")
    }
    assert all(len(v) == 2 for v in ids.values())

    # changes behind voiceprep's back: one voice expired, one made elsewhere
    with server._lock:
        server.store["minimax"].pop(ids["minimax"][0])
    foreign = server.add_voice("qwen", preferred_name="handmade")["voice"]
    r = runner.invoke(app, ["voices", "list", "--out", str(tmp_path), "--remote"])
    assert r.exit_code == 0 and "not in ledger" in r.stdout and "not listed" in r.stdout
    r = runner.invoke(app, ["voices", "sync", "--out", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert [(c["voice_id"], c["before"], c["after"]) for c in report["changes"]] == [
        (ids["minimax"][0], "ready", "gone")
    ]
    assert [x["voice_id"] for x in report["recorded"]] == [foreign]

    r = runner.invoke(app, ["voices", "delete", ids["cosyvoice"][1], "--out", str(tmp_path), "--yes"])
    assert r.exit_code == 0, r.output
    assert [v["voice_id"] for v in server.voices("cosyvoice")] == ids["cosyvoice"][:1]
    assert len(server.requests_to("cosyvoice.delete_voice")) == 1

    statuses = sorted(
        (x["family"], x["status"], x["origin"]) for x in read_voices(tmp_path / "voices.sqlite")
    )
    assert statuses == [
        ("cosyvoice", "deleted", "submit"),
        ("cosyvoice", "ready", "submit"),
        ("minimax", "gone", "submit"),
        ("minimax", "ready", "submit"),
        ("qwen-tts", "ready", "remote"),
        ("qwen-tts", "ready", "submit"),
        ("qwen-tts", "ready", "submit"),
    ]
    # the next submit frees the clips whose voices are gone or deleted (and makes nothing yet)
    r = runner.invoke(app, ["submit", "--out", str(tmp_path), "--json"])
    assert r.exit_code == 1
    freed = {
        (c["speaker"], c["family"]) for c in read_rows(tmp_path / "clips.jsonl") if c["status"] == "ready"
    }
    assert freed == {("alice", "minimax"), ("bob", "cosyvoice")}
    keys = [v for k, v in server.env().items() if k.endswith("_API_KEY")]
    seen = r.output + "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*.jsonl"))
    seen_db = b"".join(p.read_bytes() for p in tmp_path.glob("voices.sqlite*"))
    assert not any(k in seen or k.encode() in seen_db for k in keys)


@pytest.mark.parametrize("folder", ["out#1", "what?x=1", "50% off", "naïve 张伟"])
def test_cli_list_finds_the_ledger_in_an_odd_folder(
    tmp_path: Path, folder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / folder
    _submitted(out, families=("minimax",), speakers=("alice",))
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    r = CliRunner().invoke(_app(), ["voices", "list", "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    assert [json.loads(line)["speaker"] for line in r.stdout.splitlines()] == ["alice"]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no stray database in the cwd


# ------------------------------------------------------------------------------------------------ hosts
# A ledger is data: the key goes only to hosts the user configured or the providers' documented hosts.


def _plant(ledger_path: Path, base_url: str, *, status: str, voice_id: str | None = None) -> int:
    """A minimax ledger row at ``base_url`` (``unknown`` rows were sent; others carry ``voice_id``)."""
    with Ledger(ledger_path) as ledger:
        row = ledger.begin(
            VoiceRecord(
                provider="minimax",
                base_url=base_url,
                family="minimax",
                target_model="speech-2.8-hd",
                name=f"vp_evil_{status}",
                clip_sha256=status * 8,
                speaker="mallory",
            )
        )
        ledger.mark_sent(row.id)
        return ledger.update(row.id, status=status, voice_id=voice_id).id


@pytest.fixture
def evil() -> FakeProviders:
    """A second server, not configured anywhere: only a tampered ledger row names it."""
    with FakeProviders() as other:
        yield other


@pytest.mark.parametrize("status", ["unknown", "ready"])
def test_sync_never_sends_the_key_to_a_host_read_from_the_ledger(
    tmp_path: Path, server: FakeProviders, evil: FakeProviders, status: str
) -> None:
    ledger = tmp_path / "voices.sqlite"
    _plant(ledger, evil.minimax_base_url, status=status, voice_id=None if status == "unknown" else "vp_x")
    report = sync_voices(ledger, families=["minimax"])
    assert evil.requests == []
    assert any(evil.minimax_base_url in note and "not contacted" in note for note in report.notes), (
        report.notes
    )
    assert [r["status"] for r in read_voices(ledger)] == [status]  # left as it was
    assert report.checked == [("minimax", server.minimax_base_url, 0)]  # the configured host still is


def test_delete_and_list_remote_never_contact_a_host_read_from_the_ledger(
    tmp_path: Path, server: FakeProviders, evil: FakeProviders
) -> None:
    ledger = tmp_path / "voices.sqlite"
    row_id = _plant(ledger, evil.minimax_base_url, status="ready", voice_id="vp_x")
    with pytest.raises(InvalidArgument, match="not contacted"):
        delete_voice(ledger, str(row_id))
    listed = list_voices(ledger, remote=True)
    assert evil.requests == [] and any("not contacted" in n for n in listed.notes)
    assert [r["status"] for r in read_voices(ledger)] == ["ready"]


def test_a_documented_host_or_the_configured_one_is_allowed(tmp_path: Path, server: FakeProviders) -> None:
    from pipeline.enroll.providers import allowed_base_url

    configured = [server.minimax_base_url]
    assert allowed_base_url("minimax", "https://api.minimaxi.com", configured)
    assert allowed_base_url("minimax", server.minimax_base_url + "/v1", configured)
    assert allowed_base_url("dashscope", "https://ws1.cn-beijing.maas.aliyuncs.com/api/v1", [])
    assert not allowed_base_url("minimax", "http://api.minimax.io", [])  # documented hosts: https only
    assert not allowed_base_url("minimax", "https://api.minimax.io.evil.example", [])
    assert not allowed_base_url("minimax", "https://dashscope.aliyuncs.com/api/v1", [])  # another provider's
    assert not allowed_base_url(
        "dashscope", server.minimax_base_url.replace("127.0.0.1", "localhost"), configured
    )


def test_cli_reports_a_ledger_row_pointing_elsewhere(
    tmp_path: Path, server: FakeProviders, evil: FakeProviders
) -> None:
    ledger = tmp_path / "voices.sqlite"
    row_id = _plant(ledger, evil.minimax_base_url, status="ready", voice_id="vp_x")
    app, runner = _app(), CliRunner()
    r = runner.invoke(app, ["voices", "sync", "--out", str(tmp_path)])
    assert r.exit_code == 1 and "not contacted" in r.output  # reported, and the sync says it is incomplete
    r = runner.invoke(app, ["voices", "delete", str(row_id), "--out", str(tmp_path), "--yes"])
    assert r.exit_code == 2 and "not contacted" in r.stderr
    assert evil.requests == []
