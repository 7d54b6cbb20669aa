"""The fake provider server checked with a client nobody here wrote: the official dashscope SDK, installed
in a scratch environment (never a voiceprep dependency), creates, queries, lists and deletes a CosyVoice
voice and synthesises over both WebSocket protocols (CosyVoice's task protocol, Qwen realtime) against it.
Skipped only when the SDK cannot be installed (no package index). The scratch environment is kept in the
user's cache (``~/.cache/voiceprep-tests/dashscope-sdk-venv-VERSION``, the pinned release) and reused; ``VOICEPREP_DASHSCOPE_SDK_PYTHON``
names an interpreter that already has the SDK instead."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_providers import FakeProviders, create_request, make_wav, provider_client, speech_pcm

CLIENT = Path(__file__).with_name("_dashscope_sdk_client.py")
QWEN_RT = "qwen3-tts-vc-realtime-2026-01-15"
# The SDK release the fake was checked against: pinned so that a new release cannot change the test silently.
SDK = "dashscope==2.0.2"


def _sdk_venv() -> Path:
    """Where the scratch environment is kept between runs (building it costs most of a minute)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "voiceprep-tests" / f"dashscope-sdk-venv-{SDK.split('==')[1]}"


def _has_sdk(python: Path) -> bool:
    probe = [str(python), "-c", "import dashscope.audio.tts_v2, dashscope.audio.qwen_tts_realtime"]
    return python.is_file() and subprocess.run(probe, capture_output=True, timeout=60).returncode == 0


@pytest.fixture(scope="module")
def sdk_python() -> str:
    """A Python interpreter with the dashscope SDK (a scratch venv in the user's cache, built once under a
    lock), or a skip saying why there is none."""
    given = os.environ.get("VOICEPREP_DASHSCOPE_SDK_PYTHON")
    if given:
        return given
    venv = _sdk_venv()
    python = venv / "bin" / "python"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / "dashscope-sdk.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be building it
        if _has_sdk(python):
            return str(python)
        try:
            subprocess.run(
                [sys.executable, "-m", "venv", "--clear", str(venv)],
                check=True,
                capture_output=True,
                timeout=120,
            )
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", SDK],
                check=True,
                capture_output=True,
                timeout=300,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            pytest.skip(f"the dashscope SDK could not be installed: {exc} {detail[-300:]!r}")
    return str(python)


def test_the_official_sdk_speaks_both_protocols_with_the_fake(
    fake: FakeProviders, sdk_python: str, tmp_path: Path
) -> None:
    clip = make_wav(3.0)
    qwen = provider_client(fake, "qwen-tts")
    clip_path = tmp_path / "clip.wav"
    clip_path.write_bytes(clip)
    qwen_voice = qwen.create_voice(create_request(clip_path, "qwen-tts", QWEN_RT, "alice_1")).voice_id
    text = "Hello from a client nobody here wrote."
    config = {
        "text": text,
        "cosy_model": "cosyvoice-v3-plus",
        "clip_url": fake.publish("alice.wav", clip),
        "qwen_model": QWEN_RT,
        "qwen_voice": qwen_voice,
    }
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DASHSCOPE_API_KEY": fake.keys["dashscope"],
        "DASHSCOPE_HTTP_BASE_URL": fake.dashscope_base_url,
        "DASHSCOPE_WEBSOCKET_BASE_URL": fake.url.replace("http://", "ws://") + "/api-ws/v1/inference",
    }
    proc = subprocess.run(
        [sdk_python, str(CLIENT), json.dumps(config)], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["statuses"][0] == "DEPLOYING" and result["statuses"][-1] == "OK"
    assert result["voice"] in result["listed"]
    assert base64.b64decode(result["cosyvoice_pcm"]) == speech_pcm(text, 24000)
    assert base64.b64decode(result["qwen_pcm"]) == speech_pcm(text, 24000)
    assert result["qwen_events"][0] == "session.created" and result["qwen_events"][-1] == "session.finished"
    assert fake.voices("cosyvoice") == []  # deleted by the SDK
    [session] = fake.requests_to("cosyvoice.ws")
    assert session.messages[0]["header"]["action"] == "run-task"
