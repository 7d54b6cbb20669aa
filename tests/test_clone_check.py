"""The clone check: after create, the preview synthesis is compared with the enrollment clip (speaker
similarity, DNSMOS OVRL), stored in the ledger's ``details.clone_check``, shown by ``voices list/show``,
and a clone unlike its speaker is flagged (``clone_dissimilar``). Against the local fake server, whose
synthesis for one voice is its own clip's audio and for another an unrelated speaker's recording."""

from __future__ import annotations

import io
import json
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from _cli import voiceprep
from _corpus import corpus_file
from fake_providers import FakeProviders, FakeTime, fake_runtime
from submit_fakes import make_run

from pipeline.audio.resample import resample
from pipeline.enroll.check import CLONE_SIMILARITY_MIN, DISSIMILAR_REASON, check_clone, clone_flag, load_16k
from pipeline.enroll.ledger import read_voices
from pipeline.enroll.providers import make_provider
from pipeline.enroll.submit import submit_run
from pipeline.errors import reason_hint

CLIP_SOURCE = ("speech", "coqui_ljspeech_LJ001-0001.wav")  # LJ Speech, a woman, about 10 s
OTHER_SPEAKER = ("speech", "sms_speech-male.wav")  # a man: not the clip's speaker
TEXT = "Hello there."


def _pcm16(audio: np.ndarray, rate: int) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def _wav_bytes(audio: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(_pcm16(audio, rate))
    return buf.getvalue()


def _speech(source: tuple[str, str], seconds: float):
    """A synthesis override: the first ``seconds`` of ``source``, resampled to the rate asked for."""
    audio16k = load_16k(corpus_file(*source))[: int(seconds * 16000)]

    def make(text: str, rate: int) -> bytes:
        return _pcm16(resample(audio16k, in_rate=16000, out_rate=rate), rate)

    return make


def test_flag_threshold() -> None:
    assert clone_flag(CLONE_SIMILARITY_MIN - 0.01) == DISSIMILAR_REASON
    assert clone_flag(CLONE_SIMILARITY_MIN) is None and clone_flag(None) is None
    assert "re-record" in reason_hint(DISSIMILAR_REASON)


def test_check_of_files(tmp_path: Path) -> None:
    clip = corpus_file(*CLIP_SOURCE)
    same = tmp_path / "same.wav"  # the clip's own first 4 s at 24 kHz: what a perfect clone would say
    same.write_bytes(_wav_bytes(resample(load_16k(clip)[:64000], in_rate=16000, out_rate=24000), 24000))
    other = tmp_path / "other.wav"
    other.write_bytes(_wav_bytes(load_16k(corpus_file(*OTHER_SPEAKER))[:64000], 16000))
    good = check_clone(same, clip, text=TEXT)
    bad = check_clone(other, clip, text=TEXT)
    assert good["similarity"] > 0.85 and "flag" not in good
    assert bad["similarity"] < CLONE_SIMILARITY_MIN and bad["flag"] == DISSIMILAR_REASON
    assert good["dnsmos_ovrl"] is not None and 1.0 <= good["dnsmos_ovrl"] <= 5.0
    stored = bad
    assert (
        stored["flag"] == DISSIMILAR_REASON
        and stored["text"] == TEXT
        and good["threshold"] == CLONE_SIMILARITY_MIN
    )


@pytest.fixture
def server(fake: FakeProviders, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProviders]:
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    yield fake


def test_submit_checks_each_clone_and_flags_the_unlike_one(
    tmp_path: Path, server: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip_audio = load_16k(corpus_file(*CLIP_SOURCE))
    clip24k = resample(clip_audio, in_rate=16000, out_rate=24000)
    clips = [_wav_bytes(clip24k * gain, 24000) for gain in (1.0, 0.9)]  # one clip each, two files
    make_run(tmp_path, speakers=("alice", "bob"), families=("minimax",), audio=lambda i: clips[i])
    server.voice_speech["alice"] = _speech(CLIP_SOURCE, 4.0)  # alice's voice says her own clip
    server.voice_speech["bob"] = _speech(OTHER_SPEAKER, 4.0)  # bob's voice sounds like someone else
    t = FakeTime()

    def factory(spec, base_url):
        return make_provider(spec, base_url=base_url, runtime=fake_runtime(server.env(), t))

    outs = {o.speaker: o for o in submit_run(tmp_path, preview_text=TEXT, providers=factory)}
    assert {s: (o.action, o.status) for s, o in outs.items()} == {s: ("created", "ready") for s in outs}
    assert not server.requests_to("minimax.t2a")  # the check reuses the preview (the clone's demo audio)
    checks = {r["speaker"]: r["details"]["clone_check"] for r in read_voices(tmp_path / "voices.sqlite")}
    assert checks["alice"]["similarity"] > 0.85 and "flag" not in checks["alice"]
    assert checks["bob"]["similarity"] < CLONE_SIMILARITY_MIN and checks["bob"]["flag"] == DISSIMILAR_REASON
    assert checks["alice"]["text"] == TEXT and checks["alice"]["dnsmos_ovrl"] is not None
    assert not outs["alice"].warnings
    assert [w.split(":")[0] for w in outs["bob"].warnings] == [DISSIMILAR_REASON]

    listed = voiceprep("voices", "list", "--out", tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "clone" in listed.stdout and DISSIMILAR_REASON in listed.stdout
    warned = [line for line in listed.stdout.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "bob" in warned[0]
    rows = [
        json.loads(line)
        for line in voiceprep("voices", "list", "--out", tmp_path, "--json").stdout.splitlines()
    ]
    assert {r["speaker"]: "flag" in r["details"]["clone_check"] for r in rows} == {
        "alice": False,
        "bob": True,
    }
    shown = voiceprep("voices", "show", outs["bob"].voice_id or "", "--out", tmp_path)
    assert shown.returncode == 0 and "FLAGGED" in shown.stdout and "similarity" in shown.stdout

    from pipeline.report.build import build_report

    page = build_report(tmp_path).read_text()
    assert page.count("clone check: similarity") == 2 and page.count("unlike its clip") == 1

    # `voices check` re-runs the check through a real synthesis (MiniMax T2A), with the last check's text
    again = voiceprep("voices", "check", outs["alice"].voice_id or "", "--out", tmp_path, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["similarity"] > 0.85 and json.loads(again.stdout)["text"] == TEXT
    assert [r.json["text"] for r in server.requests_to("minimax.t2a")] == [TEXT]
    flagged = voiceprep(
        "voices", "check", outs["bob"].voice_id or "", "--out", tmp_path, "--text", "Another one."
    )
    assert flagged.returncode == 1 and DISSIMILAR_REASON in flagged.stdout
    bob = next(r for r in read_voices(tmp_path / "voices.sqlite") if r["speaker"] == "bob")
    assert bob["details"]["clone_check"]["text"] == "Another one." and bob["last_used_at"]

    # A second submit previews again; alice's clip was checked with this text already: not again.
    import pipeline.enroll.submit as submit_module

    made = []
    counting = submit_module.check_clone
    monkeypatch.setattr(submit_module, "check_clone", lambda *a, **k: made.append(a) or counting(*a, **k))
    again_outs = {o.speaker: o for o in submit_run(tmp_path, preview_text=TEXT, providers=factory)}
    assert len(made) == 1 and not again_outs["alice"].warnings  # bob's last check had another text
    assert [w.split(":")[0] for w in again_outs["bob"].warnings] == [DISSIMILAR_REASON]


def test_a_preview_that_cannot_be_decoded_is_said_not_scored(tmp_path: Path) -> None:
    from submit_fakes import FakeCloud, FakeProvider

    make_run(tmp_path, speakers=["alice"], families=["minimax"])
    mp3 = b"ID3\x04\x00" + bytes(100)  # a preview nobody can decode
    providers = {"minimax": FakeProvider(FakeCloud(), "minimax", preview_bytes=mp3)}
    (out,) = submit_run(tmp_path, ["minimax"], preview_text=TEXT, providers=providers)  # type: ignore[arg-type]
    assert out.status == "ready" and out.preview_path
    assert [w.split(":")[0] for w in out.warnings] == ["clone check not made"]
    (row,) = read_voices(tmp_path / "voices.sqlite")
    assert "clone_check" not in row["details"]


def test_voices_check_takes_the_region_of_a_voice_at_a_host_of_no_region(tmp_path: Path) -> None:
    """``--region`` picks the key variable (and documented host) as in every other provider command: a
    voice at a host that names no region (a proxy, this fake server) is checked with the region's key."""
    clip24k = resample(load_16k(corpus_file(*CLIP_SOURCE)), in_rate=16000, out_rate=24000)
    make_run(tmp_path, speakers=["alice"], families=["minimax"], audio=lambda i: _wav_bytes(clip24k, 24000))
    with FakeProviders(region="cn") as server:
        server.voice_speech["alice"] = _speech(CLIP_SOURCE, 4.0)
        env = {"MINIMAX_CN_API_KEY": server.keys["minimax"], "MINIMAX_BASE_URL": server.minimax_base_url}
        drop = ["*_API_KEY", "*_BASE_URL"]
        made = voiceprep("submit", "--out", tmp_path, "--region", "cn", "--json", env=env, drop=drop)
        assert made.returncode == 0, made.stdout + made.stderr
        voice_id = json.loads(made.stdout.splitlines()[0])["voice_id"]

        checked = voiceprep(
            "voices", "check", voice_id, "--out", tmp_path, "--region", "cn", "--json", env=env, drop=drop
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert json.loads(checked.stdout)["similarity"] > 0.85
        assert len(server.requests_to("minimax.t2a")) == 1
        # The same voice in the default region (intl) needs that region's key: none is set, nothing is sent.
        keyless = voiceprep("voices", "check", voice_id, "--out", tmp_path, "--json", env=env, drop=drop)
        assert keyless.returncode == 2 and "MINIMAX_API_KEY is not set" in keyless.stderr
        assert (
            voiceprep("voices", "check", voice_id, "--out", tmp_path, "--region", "eu", env=env).returncode
            == 2
        )
        assert len(server.requests_to("minimax.t2a")) == 1
        # `speak` takes the same option.
        wav = tmp_path / "hello.wav"
        spoken = voiceprep("speak", voice_id, "Hi.", "--run", tmp_path, "--out", wav, env=env, drop=drop)
        assert spoken.returncode == 2 and not wav.exists()
        spoken = voiceprep(
            "speak", voice_id, "Hi.", "--run", tmp_path, "--out", wav, "--region", "cn", env=env, drop=drop
        )
        assert spoken.returncode == 0 and wav.is_file(), spoken.stderr
        assert len(server.requests_to("minimax.t2a")) == 2
