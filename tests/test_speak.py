"""``voiceprep speak`` and the previews, end to end against the local fake: every family's voice from the
ledger, streamed and whole outputs equal, a stream cut short never written as whole, the first-audio time
reported, the ledger's ``last_used_at`` stamped, the key never shown, and submit's preview of a
realtime-bound voice and of a MiniMax voice made earlier."""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path
from typing import Any

import pytest
from _cli import voiceprep
from fake_providers import FakeProviders, Fault, create_request, make_wav, provider_client, speech_pcm
from submit_fakes import make_run

from pipeline.batch.config import RunConfig
from pipeline.enroll.ledger import Ledger, read_records
from pipeline.enroll.providers.base import VoiceRecord
from pipeline.enroll.providers.speech import SpeechInterrupted
from pipeline.enroll.speak import partial_path, speak
from pipeline.enroll.submit import UntrustedBaseUrl, submit_run
from pipeline.errors import InvalidArgument

TEXT = "Hello, this is my new voice."
VOICES = {  # family: (target model, name)
    "cosyvoice": ("cosyvoice-v3-plus", "ali1"),
    "qwen-tts": ("qwen3-tts-vc-realtime-2026-01-15", "alice_1"),
    "qwen-http": ("qwen3-tts-vc-2026-01-22", "alice_2"),
    "minimax": ("speech-2.8-hd", "vp_alice_0123456789"),
    "elevenlabs": ("eleven_multilingual_v2", "alice"),
}


@pytest.fixture
def env(fake: FakeProviders, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    return fake.env()


def make_voice(fake: FakeProviders, tmp_path: Path, kind: str, ledger: Path) -> VoiceRecord:
    """A voice of ``kind`` (a family, or ``qwen-http``: a non-realtime Qwen voice) made on the fake and
    recorded in ``ledger``; returns its row."""
    family = "qwen-tts" if kind == "qwen-http" else kind
    model, name = VOICES[kind]
    clip = tmp_path / f"{kind}.wav"
    clip.write_bytes(make_wav(12.0))
    client = provider_client(fake, family, **({"audio_source": "data_uri"} if family == "cosyvoice" else {}))
    made = client.create_voice(create_request(clip, family, model, name))
    if family == "cosyvoice":
        client.wait_until_settled(made.voice_id, timeout_s=60, interval_s=1)
    row = VoiceRecord(
        provider=client.provider,
        base_url=client.base_url,
        family=family,
        voice_id=made.voice_id,
        target_model=model,
        name=name,
        status="ready",
        origin="remote",
    )
    with Ledger(ledger) as db:
        return db.record_found(row)


def pcm_of(wav_bytes: bytes) -> tuple[bytes, int]:
    with wave.open(io.BytesIO(wav_bytes)) as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return w.readframes(w.getnframes()), w.getframerate()


@pytest.mark.parametrize("kind", list(VOICES))
def test_streamed_and_whole_outputs_are_the_same_speech(
    fake: FakeProviders, env: dict[str, str], tmp_path: Path, kind: str
) -> None:
    ledger = tmp_path / "voices.sqlite"
    row = make_voice(fake, tmp_path, kind, ledger)
    whole = speak(f"#{row.id}", TEXT, out=tmp_path / "whole.wav", ledger_path=ledger)
    streamed = speak(row.voice_id or "", TEXT, out=tmp_path / "streamed.wav", stream=True, ledger_path=ledger)
    raw = speak(row.name or "", TEXT, out=tmp_path / "streamed.pcm", stream=True, ledger_path=ledger)
    stdout = io.BytesIO()
    piped = speak(f"{row.id}", TEXT, out="-", stream=True, ledger_path=ledger, stdout=stdout)
    expected = speech_pcm(TEXT, 24000)
    assert (tmp_path / "whole.wav").read_bytes() == (tmp_path / "streamed.wav").read_bytes()
    assert pcm_of((tmp_path / "whole.wav").read_bytes()) == (expected, 24000)
    assert (tmp_path / "streamed.pcm").read_bytes() == expected == stdout.getvalue()
    assert not list(tmp_path.glob("*.partial"))
    for result in (whole, streamed, raw, piped):
        assert (result.voice.voice_id, result.voice.target_model, result.voice.id) == (
            row.voice_id,
            row.target_model,
            row.id,
        )
        assert result.audio_bytes == len(expected) and result.seconds == pytest.approx(
            len(expected) / 48000, abs=1e-3
        )
        assert result.first_audio_s is not None and 0 <= result.first_audio_s <= result.total_s
    assert streamed.streamed and not whole.streamed
    [after] = read_records(ledger)
    assert after.last_used_at is not None  # a real synthesis keeps the voice alive (MiniMax: 7 days)


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_a_stream_cut_short_is_never_written_as_whole(
    fake: FakeProviders, env: dict[str, str], tmp_path: Path, stream: bool
) -> None:
    ledger = tmp_path / "voices.sqlite"
    row = make_voice(fake, tmp_path, "cosyvoice", ledger)
    fake.inject("cosyvoice.ws", Fault.error("InternalError", "engine crashed"))
    out = tmp_path / "hello.wav"
    with pytest.raises(SpeechInterrupted) as info:
        speak(row.voice_id or "", TEXT, out=out, stream=stream, ledger_path=ledger)
    assert not out.exists()
    partial = partial_path(out)
    if stream:  # what arrived stays apart, named as a part
        assert partial.stat().st_size == 44 + 4800 and partial.name in info.value.message
    else:
        assert not partial.exists()
    assert read_records(ledger)[0].last_used_at is None


def test_a_voice_is_found_in_the_ledger_or_given_in_full(
    fake: FakeProviders, env: dict[str, str], tmp_path: Path
) -> None:
    ledger = tmp_path / "voices.sqlite"
    row = make_voice(fake, tmp_path, "minimax", ledger)
    bare = speak(row.voice_id or "", TEXT, out=tmp_path / "a.wav", family="minimax", model="speech-2.8-hd")
    assert bare.voice.id == 0 and bare.voice.base_url == fake.minimax_base_url
    assert bare.to_dict()["ledger_id"] is None
    with pytest.raises(InvalidArgument, match="both --family and --model"):
        speak(row.voice_id or "", TEXT, out=tmp_path / "b.wav", family="minimax")
    with pytest.raises(InvalidArgument, match="not a minimax model"):
        speak(row.voice_id or "", TEXT, out=tmp_path / "b.wav", family="minimax", model="speech-9")
    with pytest.raises(InvalidArgument, match="no voice in the ledger"):
        speak("nobody", TEXT, out=tmp_path / "b.wav", ledger_path=ledger)
    with pytest.raises(InvalidArgument, match=r"\.wav or \.pcm or \.raw"):
        speak(row.voice_id or "", TEXT, out=tmp_path / "b.mp3", ledger_path=ledger)
    with Ledger(ledger) as db:
        db.update(row.id, status="deleted")
    with pytest.raises(InvalidArgument, match="deleted"):
        speak(row.voice_id or "", TEXT, out=tmp_path / "b.wav", ledger_path=ledger)
    assert len(fake.requests_to("minimax.t2a")) == 1  # only the bare call reached the service


def test_a_ledger_row_elsewhere_is_not_contacted(
    fake: FakeProviders, env: dict[str, str], tmp_path: Path
) -> None:
    ledger = tmp_path / "voices.sqlite"
    row = VoiceRecord(
        provider="dashscope",
        base_url="https://evil.example/api/v1",
        family="cosyvoice",
        voice_id="cosyvoice-v3-plus-x-1",
        target_model="cosyvoice-v3-plus",
        status="ready",
        origin="remote",
    )
    with Ledger(ledger) as db:
        db.record_found(row)
    with pytest.raises(UntrustedBaseUrl):
        speak("cosyvoice-v3-plus-x-1", TEXT, out=tmp_path / "a.wav", ledger_path=ledger)
    assert fake.requests == []


def test_the_command_reports_the_first_audio_byte_and_never_the_key(
    fake: FakeProviders, env: dict[str, str], tmp_path: Path
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    row = make_voice(fake, tmp_path, "qwen-tts", run / "voices.sqlite")
    out = tmp_path / "hi.wav"
    plain = voiceprep("speak", str(row.id), TEXT, "--run", run, "--out", out, "--stream", env=env)
    assert plain.returncode == 0, plain.stderr
    assert "first audio byte after" in plain.stdout and row.voice_id in plain.stdout
    assert pcm_of(out.read_bytes())[0] == speech_pcm(TEXT, 24000)
    as_json = voiceprep("speak", row.voice_id, "Hi.", "--run", run, "--out", out, "--json", env=env)
    result = json.loads(as_json.stdout)
    voice_part = ["voice_id", "family", "target_model", "base_url", "ledger_id"]
    audio_part = ["out", "streamed", "sample_rate", "audio_bytes", "seconds", "first_audio_s", "total_s"]
    assert list(result) == [*voice_part, *audio_part, "request_id", "note"]  # the shape --json always had
    assert (result["voice_id"], result["ledger_id"]) == (row.voice_id, row.id)
    assert result["family"] == "qwen-tts" and result["streamed"] is False
    assert result["first_audio_s"] >= 0 and result["audio_bytes"] == len(speech_pcm("Hi.", 24000))
    key = fake.keys["dashscope"]
    fake.inject("qwen.realtime", Fault.error("InvalidParameter", f"rejected key {key}"))
    failed = voiceprep("speak", str(row.id), TEXT, "--run", run, "--out", tmp_path / "x.wav", env=env)
    assert failed.returncode == 1
    assert failed.stderr.count("\n") == 1 and "InvalidParameter" in failed.stderr
    unknown = voiceprep("speak", "nobody", TEXT, "--run", run, env=env)
    assert unknown.returncode == 2
    for proc in (plain, as_json, failed, unknown):
        assert key not in proc.stdout + proc.stderr


def _submit(fake: FakeProviders, out: Path, family: str, model: str, **kw: Any) -> list[VoiceRecord]:
    make_run(out, speakers=("alice",), families=(family,), audio=lambda i: make_wav(12.0))
    return submit_run(
        out,
        config=RunConfig(target_models={family: model}),
        preview_text="Hello there.",
        providers=lambda spec, url: provider_client(fake, spec.name, **kw),
        settle_timeout_s=60,
        settle_interval_s=1,
    )


def test_submit_previews_a_realtime_bound_voice(fake: FakeProviders, tmp_path: Path) -> None:
    [outcome] = _submit(fake, tmp_path, "qwen-tts", "qwen3-tts-vc-realtime-2026-01-15")
    assert outcome.status == "ready" and "preview failed" not in outcome.note
    preview = tmp_path / "clips" / "alice" / "qwen-tts.preview.wav"
    assert pcm_of(preview.read_bytes())[0] == speech_pcm("Hello there.", 24000)
    assert len(fake.requests_to("qwen.realtime")) == 1 and fake.requests_to("qwen.synthesize") == []


def test_submit_previews_a_minimax_voice_made_earlier(fake: FakeProviders, tmp_path: Path) -> None:
    _submit(fake, tmp_path, "minimax", "speech-2.8-hd")
    assert len(fake.requests_to("audio.download")) == 1  # the clone's own demo audio, free
    (tmp_path / "clips" / "alice" / "minimax.preview.wav").unlink()
    # Later, another process: the voice exists (the ledger says so), its demo_audio is long gone.
    [again] = submit_run(
        tmp_path,
        preview_text="Hello again.",
        providers=lambda spec, url: provider_client(fake, spec.name),
    )
    assert again.action == "reverified" and again.status == "ready", again.note
    preview = tmp_path / "clips" / "alice" / "minimax.preview.wav"
    assert pcm_of(preview.read_bytes())[0] == speech_pcm("Hello again.", 24000)
    assert len(fake.requests_to("minimax.t2a")) == 1
