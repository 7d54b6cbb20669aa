"""Run by ``tests/test_fake_against_sdk.py`` in a scratch environment holding the official dashscope SDK
(never voiceprep's): it drives the fake server with a client nobody here wrote. Argument: a JSON object with
``text``, the CosyVoice ``cosy_model`` and ``clip_url``, and the Qwen realtime ``qwen_model``/``qwen_voice``;
the key and the addresses come from the SDK's own environment variables. Prints one JSON object."""

import base64
import json
import sys
import threading
import time

import dashscope
from dashscope.audio.qwen_tts_realtime import AudioFormat as RealtimeFormat
from dashscope.audio.qwen_tts_realtime import QwenTtsRealtime, QwenTtsRealtimeCallback
from dashscope.audio.tts_v2 import AudioFormat, SpeechSynthesizer, VoiceEnrollmentService

cfg = json.loads(sys.argv[1])
out = {}

enrollment = VoiceEnrollmentService()
voice = enrollment.create_voice(target_model=cfg["cosy_model"], prefix="sdk", url=cfg["clip_url"])
statuses = []
for _ in range(10):
    statuses.append(enrollment.query_voice(voice)["status"])
    if statuses[-1] != "DEPLOYING":
        break
    time.sleep(0.05)
out["voice"], out["statuses"] = voice, statuses
out["listed"] = [v["voice_id"] for v in enrollment.list_voices(prefix="sdk", page_index=0, page_size=10)]

synthesizer = SpeechSynthesizer(
    model=cfg["cosy_model"], voice=voice, format=AudioFormat.PCM_24000HZ_MONO_16BIT
)
out["cosyvoice_pcm"] = base64.b64encode(synthesizer.call(cfg["text"]) or b"").decode()


class Collect(QwenTtsRealtimeCallback):
    def __init__(self) -> None:
        self.done = threading.Event()
        self.pcm = b""
        self.events = []

    def on_event(self, message) -> None:
        self.events.append(message["type"])
        if message["type"] == "response.audio.delta":
            self.pcm += base64.b64decode(message["delta"])
        if message["type"] in ("session.finished", "error"):
            self.done.set()

    def on_close(self, close_status_code, close_msg) -> None:
        self.done.set()


collect = Collect()
realtime_url = dashscope.base_websocket_api_url.replace("/inference", "/realtime")
realtime = QwenTtsRealtime(model=cfg["qwen_model"], callback=collect, url=realtime_url)
realtime.connect()
realtime.update_session(voice=cfg["qwen_voice"], response_format=RealtimeFormat.PCM_24000HZ_MONO_16BIT)
realtime.append_text(cfg["text"])
realtime.finish()
collect.done.wait(10)
out["qwen_pcm"], out["qwen_events"] = base64.b64encode(collect.pcm).decode(), collect.events

enrollment.delete_voice(voice)
print(json.dumps(out))
