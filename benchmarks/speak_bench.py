"""Time to the first audio byte of ``voiceprep speak`` over loopback, beside a bare client (issue 12).

Starts the test suite's fake provider server (``tests/fake_providers.py``, which answers at once: no
synthesis time), makes one CosyVoice and one Qwen realtime voice on it, then alternates, ``--runs`` times
each: a **bare** ``websockets`` client speaking the same protocol with nothing else (the floor), and
voiceprep's :func:`pipeline.enroll.speak.speak_voice` (client, host rule, retries, redaction, the
``Speech`` stream, the progressive WAV writer). Both are timed from before the connection opens to the
first audio byte; the difference of the medians is voiceprep's own overhead (target: at most 50 ms).

Prints a table and writes ``benchmarks/results/speak_bench.json``.

Usage: ``python benchmarks/speak_bench.py [--runs 20]``
"""

from __future__ import annotations

import argparse
import base64
import json
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "tests"))  # the fake server lives with the tests

TEXT = "Hello, this is my new voice."
COSY = "cosyvoice-v3-plus"
QWEN_RT = "qwen3-tts-vc-realtime-2026-01-15"


def bare_cosyvoice(ws_base: str, key: str, voice: str) -> float:
    """Seconds to the first audio frame with a bare websockets client (CosyVoice's task protocol)."""
    from websockets.sync.client import connect

    t0 = time.perf_counter()
    with connect(
        f"{ws_base}/api-ws/v1/inference", additional_headers={"Authorization": f"Bearer {key}"}
    ) as ws:
        head = {"task_id": uuid.uuid4().hex, "streaming": "duplex"}
        task = {"task_group": "audio", "task": "tts", "function": "SpeechSynthesizer", "model": COSY}
        params = {"text_type": "PlainText", "voice": voice, "format": "pcm", "sample_rate": 24000}
        ws.send(
            json.dumps(
                {
                    "header": {"action": "run-task", **head},
                    "payload": {**task, "parameters": params, "input": {}},
                }
            )
        )
        while json.loads(ws.recv())["header"]["event"] != "task-started":
            pass
        ws.send(
            json.dumps(
                {"header": {"action": "continue-task", **head}, "payload": {**task, "input": {"text": TEXT}}}
            )
        )
        ws.send(json.dumps({"header": {"action": "finish-task", **head}, "payload": {"input": {}}}))
        while not isinstance(ws.recv(), bytes):
            pass
        first = time.perf_counter() - t0
        while True:  # read to the end, as voiceprep does
            message = ws.recv()
            if isinstance(message, str) and json.loads(message)["header"]["event"] == "task-finished":
                return first


def bare_qwen(ws_base: str, key: str, voice: str) -> float:
    """Seconds to the first audio delta with a bare websockets client (Qwen realtime)."""
    from websockets.sync.client import connect

    def event(kind: str, **fields: Any) -> str:
        return json.dumps({"event_id": f"event_{uuid.uuid4().hex}", "type": kind, **fields})

    t0 = time.perf_counter()
    url = f"{ws_base}/api-ws/v1/realtime?model={QWEN_RT}"
    with connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        while json.loads(ws.recv())["type"] != "session.created":
            pass
        session = {"voice": voice, "mode": "commit", "response_format": "pcm", "sample_rate": 24000}
        ws.send(event("session.update", session=session))
        while json.loads(ws.recv())["type"] != "session.updated":
            pass
        ws.send(event("input_text_buffer.append", text=TEXT))
        ws.send(event("input_text_buffer.commit"))
        first = None
        while True:
            data = json.loads(ws.recv())
            if data["type"] == "response.audio.delta" and first is None:
                base64.b64decode(data["delta"])
                first = time.perf_counter() - t0
            if data["type"] == "response.done":
                ws.send(event("session.finish"))
                assert first is not None
                return first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    from fake_providers import FakeProviders, create_request, make_wav, provider_client

    from pipeline.enroll.providers import Runtime, make_provider
    from pipeline.enroll.providers.base import VoiceRecord
    from pipeline.enroll.speak import speak_voice

    rows = []
    with FakeProviders() as fake, tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.wav"
        clip.write_bytes(make_wav(3.0))
        cosy = provider_client(fake, "cosyvoice", audio_source="data_uri")
        cosy_voice = cosy.create_voice(create_request(clip, "cosyvoice", COSY, "bench")).voice_id
        cosy.wait_until_settled(cosy_voice, timeout_s=60, interval_s=1)
        qwen_voice = (
            provider_client(fake, "qwen-tts")
            .create_voice(create_request(clip, "qwen-tts", QWEN_RT, "bench_1"))
            .voice_id
        )
        key, ws_base = fake.keys["dashscope"], fake.url.replace("http://", "ws://")
        cases: list[tuple[str, str, str, str, Callable[[str, str, str], float]]] = [
            ("cosyvoice", COSY, "cosyvoice", cosy_voice, bare_cosyvoice),
            ("qwen realtime", QWEN_RT, "qwen-tts", qwen_voice, bare_qwen),
        ]
        for name, model, family, voice_id, bare in cases:
            client = make_provider(family, runtime=Runtime(environ=fake.env(), clock=time.perf_counter))
            voice = VoiceRecord(family=family, voice_id=voice_id, target_model=model)
            floor, ours = [], []
            for _ in range(args.runs):
                floor.append(bare(ws_base, key, voice_id))
                result = speak_voice(client, voice, TEXT, out=Path(tmp) / "out.wav", stream=True)
                ours.append(result.first_audio_s or 0.0)
            row = {
                "protocol": name,
                "runs": args.runs,
                "bare_median_ms": round(1000 * statistics.median(floor), 2),
                "voiceprep_median_ms": round(1000 * statistics.median(ours), 2),
            }
            row["overhead_ms"] = round(row["voiceprep_median_ms"] - row["bare_median_ms"], 2)
            rows.append(row)
    print(
        f"{'protocol':<15} {'bare client':>12} {'voiceprep':>10} {'overhead':>9}   (median ms to the first audio byte)"
    )
    for r in rows:
        print(
            f"{r['protocol']:<15} {r['bare_median_ms']:>12.1f} {r['voiceprep_median_ms']:>10.1f} {r['overhead_ms']:>9.1f}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
    }
    (RESULTS / "speak_bench.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
