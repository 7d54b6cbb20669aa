"""A local, stateful fake of the voice-cloning APIs voiceprep talks to, with injectable faults.

It speaks the contracts of ``../shared/docs/providers.md`` on one ``ThreadingHTTPServer`` bound to
127.0.0.1 (port 0, so tests never collide):

- DashScope (``{url}/api/v1``): ``POST services/audio/tts/customization`` for CosyVoice
  (``voice-enrollment``: create_voice, list_voice, query_voice, delete_voice) and Qwen-TTS
  (``qwen-voice-enrollment``: create, list, delete); ``GET uploads?action=getPolicy&model=``; an OSS-like
  form upload host (``{url}/oss-upload``); ``services/audio/tts/SpeechSynthesizer``;
  ``services/aigc/multimodal-generation/generation``.
- MiniMax (``{url}``): ``POST /v1/files/upload``, ``/v1/voice_clone``, ``/v1/get_voice``, ``/v1/delete_voice``.
- ElevenLabs (``{url}``): ``POST /v1/voices/add``, ``GET /v1/voices``, ``GET|DELETE /v1/voices/{id}``,
  ``POST /v1/text-to-speech/{id}``, ``POST /v1/text-to-speech/{id}/stream?output_format=pcm_<rate>``
  (``elevenlabs.tts_stream``: raw PCM in pieces).
- MiniMax synthesis: ``POST /v1/t2a_v2`` (``minimax.t2a``: hex audio, or server-sent events with
  ``stream: true``).
- DashScope's WebSockets on the same port (``tests/fake_websockets.py``): ``/api-ws/v1/inference``
  (``cosyvoice.ws``, CosyVoice's task protocol) and ``/api-ws/v1/realtime?model=`` (``qwen.realtime``).
  Every synthesis makes :func:`speech_pcm` of its text, so a test knows what to expect; streamed replies
  (:class:`Streamed`) take ``drop``/``error``/``delay`` faults mid-stream (after the first audio piece).
- Plain files: ``GET /audio/<token>`` (synthesised previews, demo audio) and ``GET /public/<name>``
  (what :meth:`FakeProviders.publish` stored: the "user's own bucket" for CosyVoice URL templates).

It really stores voices (per kind: ``cosyvoice``, ``qwen``, ``minimax``, ``elevenlabs``), checks the auth
header and request shapes strictly (unknown or missing fields get the provider's own 400-style error),
moves CosyVoice voices from ``DEPLOYING`` to ``OK`` (or ``UNDEPLOYED`` for audio marked bad) after
``deploy_polls`` queries, enforces quotas, and records every request.

Usage::

    from fake_providers import Fault, FakeProviders, make_wav

    # the ``fake`` fixture (tests/conftest.py) runs one server per test and, afterwards, asserts
    # ``not server.errors`` (no bug inside the fake itself)

    def test_x(fake, monkeypatch):
        for name, value in fake.env().items():      # DASHSCOPE_API_KEY, DASHSCOPE_BASE_URL, MINIMAX_...
            monkeypatch.setenv(name, value)
        fake.inject("cosyvoice.create_voice", Fault.drop(after_action=True))
        ...
        assert len(fake.voices("cosyvoice")) == 1
        assert fake.requests_to("cosyvoice.create_voice")[0].json["input"]["prefix"] == "abc"

API (all thread-safe):

- ``FakeProviders(*, dashscope_key=, minimax_key=, elevenlabs_key=, deploy_polls=2, quotas=None,
  echo_key_in_errors=True, qwen_audio_inline=False, now=None, region="cn", temporary_upload=None)``;
  ``start()``/``stop()`` or ``with``. One server is one region: ``region`` (``cn`` Beijing, ``intl``
  Singapore) picks the DashScope models it offers (:data:`REGION_MODELS`; others are refused with
  ``InvalidParameter`` "model not supported in this region", as the model list says) and whether the
  temporary upload (``getPolicy``) exists (``temporary_upload``; default: only in ``cn``, the one region
  the vendor documents it for; elsewhere ``getPolicy`` answers 403 ``AccessDenied``). ``page_cap``: the
  largest page the list actions return, whatever ``page_size`` asks (no maximum is documented).
  ``qwen_fallback = (mode, reason)``: Qwen creates answer with ``fallback_mode``/``fallback_reason`` (the
  service degraded the clone), as newer responses may.
  ``echo_key_in_errors`` makes auth errors quote the key that was presented (as careless vendors do), so
  tests can prove the client redacts it. ``now`` returns the server's UTC time (for ``gmt_create``).
- ``url``, ``dashscope_base_url``, ``minimax_base_url``, ``elevenlabs_base_url``, ``env()``.
- ``inject(endpoint, *faults)``: queue faults for an endpoint (each request to it pops one; see
  :data:`ENDPOINTS` and :class:`Fault`). ``pending_faults()`` shows what is left; ``clear_faults()`` drops them.
- ``mark_bad_audio(content_or_sha256)``: CosyVoice voices from it end ``UNDEPLOYED``; Qwen answers
  ``Audio.PreprocessError``; MiniMax answers 20132; ElevenLabs ``corrupted_file``.
- ``set_quota(kind, n)``: at most ``n`` voices of that kind (None: unlimited). Defaults: cosyvoice and qwen
  1000, elevenlabs 30, minimax unlimited (MiniMax publishes no quota; its over-quota answer here is 2038).
- ``publish(name, content) -> url``: serve a file at ``/public/<name>``.
- ``voices(kind)``: stored voices (copies of dicts: cosyvoice ``voice_id, prefix, target_model, status``;
  qwen ``voice, preferred_name, target_model``; minimax ``voice_id, created_time``; elevenlabs
  ``voice_id, name``); ``add_voice(kind, **fields)`` plants one directly (e.g. one the ledger lacks).
- Faults: ``Fault.http(status, retry_after=)``, ``Fault.throttle(retry_after=)``, ``Fault.error(code)``
  (provider error code; MiniMax in an HTTP 200), ``Fault.drop(after_action=True)``,
  ``Fault.delay(seconds, after_action=True)`` (give clients a short ``read_timeout_s``),
  ``Fault.malformed(after_action=True)``, ``Fault.quota()``, ``Fault.echo(shape)`` (an error quoting the
  presented key: :data:`ECHO_SHAPES`). ``later(s)`` is an HTTP date for Retry-After.
- :class:`FakeTime`: a fake ``sleep``/``clock``/``wall`` for clients, so retries cost no real time.
- ``fake_runtime(env, t=None, *, seed=1, **limits)``: the one test :class:`Runtime`: fake time, seeded
  jitter, ``env`` as the environment, and short retries (4 attempts, 2 s connect / 5 s read timeouts)
  unless ``limits`` say otherwise.
- ``provider_client(fake, family, t=None, *, env=None, seed=1, **options)``: ``make_provider`` aimed at the
  fake with :func:`fake_runtime`; ``create_request(clip, family, target_model, name, **fields)``.
- ``incomplete``: requests whose body stopped before its ``Content-Length`` (the client went away
  mid-upload): (method, path, bytes received, length); like a real server, the fake never acts on them.
- ``requests`` (list of :class:`Recorded`), ``requests_to(endpoint)``, ``clear_requests()``,
  ``seen_text(include_auth=False)``: everything the server received, auth header values left out unless
  asked; ``errors``: tracebacks of bugs inside the fake; ``reset()`` clears everything but the keys.
"""

from __future__ import annotations

import base64
import collections
import email.parser
import email.policy
import email.utils
import hashlib
import io
import json
import math
import random
import re
import struct
import threading
import traceback
import uuid
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from pipeline.enroll.providers import Runtime, VoiceProvider, VoiceRecord, make_provider

ENDPOINTS = (
    "cosyvoice.create_voice",
    "cosyvoice.list_voice",
    "cosyvoice.query_voice",
    "cosyvoice.delete_voice",
    "cosyvoice.update_voice",
    "qwen.create",
    "qwen.list",
    "qwen.delete",
    "dashscope.customization",  # a customization call whose model/action could not be read
    "dashscope.get_policy",
    "oss.upload",
    "cosyvoice.synthesize",
    "qwen.synthesize",
    "minimax.upload",
    "minimax.clone",
    "minimax.get_voice",
    "minimax.delete_voice",
    "elevenlabs.add",
    "elevenlabs.list",
    "elevenlabs.get",
    "elevenlabs.delete",
    "elevenlabs.tts",
    "elevenlabs.tts_stream",
    "minimax.t2a",
    "cosyvoice.ws",  # the CosyVoice WebSocket task protocol (tests/fake_websockets.py)
    "qwen.realtime",  # the Qwen realtime WebSocket
    "audio.download",
    "public.download",
    "unknown",
)

COSYVOICE_MODELS = (
    "cosyvoice-v3-plus",
    "cosyvoice-v3-flash",
    "cosyvoice-v3.5-plus",
    "cosyvoice-v3.5-flash",
    "cosyvoice-v2",
)
QWEN_MODELS = (
    "qwen3-tts-vc-2026-01-22",
    "qwen3-tts-vc-realtime-2026-01-15",
    "qwen3-tts-vc-realtime-2025-11-27",
)
REGION_MODELS: dict[str, tuple[str, ...]] = {
    "cn": COSYVOICE_MODELS + QWEN_MODELS,
    "intl": ("cosyvoice-v3-plus", "cosyvoice-v3-flash", *QWEN_MODELS),
}
"""The DashScope target models each region offers (the vendor's model list)."""
MINIMAX_MODELS = (
    "speech-2.8-hd",
    "speech-2.8-turbo",
    "speech-02-hd",
    "speech-02-turbo",
    "speech-2.6-hd",
    "speech-2.6-turbo",
)
ELEVENLABS_MODELS = ("eleven_multilingual_v2", "eleven_flash_v2_5")
ENROLLMENT_MODELS = ("voice-enrollment", "qwen-voice-enrollment")
KINDS = ("cosyvoice", "qwen", "minimax", "elevenlabs")

_COSY_PREFIX = re.compile(r"[a-z0-9]{1,9}")
_QWEN_NAME = re.compile(r"[A-Za-z0-9_]{1,16}")
_MINIMAX_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{6,254}[A-Za-z0-9]")
_DATA_URI = re.compile(r"data:(audio/(?:wav|x-wav|mpeg|mp3|mp4|m4a));base64,(.*)", re.S)
_MAX_DASHSCOPE_BYTES = 10_000_000
_MAX_MINIMAX_BYTES = 20_000_000


def make_wav(seconds: float = 1.0, *, rate: int = 24000, freq: float = 220.0) -> bytes:
    """A small mono PCM16 WAV (a sine), for clips and fake synthesis output."""
    n = max(1, int(seconds * rate))
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / rate))) for i in range(n)
    )
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return buf.getvalue()


def speech_pcm(text: str, rate: int = 24000) -> bytes:
    """The audio every fake synthesis makes for ``text``: 16-bit mono PCM at ``rate``, a tone whose pitch
    depends on the text and whose length grows with it (30 ms a character, 0.2 to 2 s), the same on every
    endpoint, so a test can tell what was synthesised and compare a streamed result with a whole one."""
    freq = 180.0 + int(hashlib.sha256(text.encode()).hexdigest()[:4], 16) % 300
    n = int(rate * min(2.0, max(0.2, 0.03 * len(text))))
    return b"".join(struct.pack("<h", int(6000 * math.sin(2 * math.pi * freq * i / rate))) for i in range(n))


def speech_wav(text: str, rate: int = 24000) -> bytes:
    """:func:`speech_pcm` as a WAV file."""
    return _pcm_wav(speech_pcm(text, rate), rate)


def _pcm_wav(pcm: bytes, rate: int) -> bytes:
    """16-bit mono ``pcm`` as a WAV file."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()


class FakeTime:
    """Injectable time for clients: ``sleep`` records the delay and advances ``clock``/``wall`` instantly.

    :func:`fake_runtime` passes ``sleep=t.sleep, clock=t.clock, wall=t.wall``; ``t.sleeps`` lists every wait.
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = 0.0
        self.epoch = start
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        """Record the wait and advance the clocks (never really sleeps)."""
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        """Monotonic seconds."""
        return self.now

    def wall(self) -> float:
        """Wall-clock seconds since the epoch (for Retry-After dates)."""
        return self.epoch + self.now


def fake_runtime(
    env: dict[str, str],
    t: FakeTime | None = None,
    *,
    seed: int = 1,
    rng: random.Random | None = None,
    **limits: Any,
) -> Runtime:
    """The test :class:`Runtime`: fake time (``t``, a new :class:`FakeTime` by default), a jitter source
    seeded with ``seed`` (or ``rng``), ``env`` as the environment, and short retries (4 attempts, 2 s
    connect / 5 s read timeouts) unless ``limits`` (``max_attempts``, ``read_timeout_s``...) say otherwise."""
    t = t or FakeTime()
    settings = {"max_attempts": 4, "connect_timeout_s": 2.0, "read_timeout_s": 5.0, **limits}
    jitter = rng if rng is not None else random.Random(seed)
    return Runtime(sleep=t.sleep, clock=t.clock, wall=t.wall, rng=jitter, environ=env, **settings)


def provider_client(
    fake: FakeProviders,
    family: str,
    t: FakeTime | None = None,
    *,
    env: dict[str, str] | None = None,
    seed: int = 1,
    limits: dict[str, Any] | None = None,
    **options: Any,
) -> VoiceProvider:
    """``make_provider(family)`` aimed at ``fake`` (in the fake's region) with :func:`fake_runtime` (``env``
    replaces ``fake.env()``; ``limits`` its retry limits); other ``options`` go to ``make_provider``."""
    runtime = fake_runtime(env if env is not None else fake.env(), t, seed=seed, **(limits or {}))
    options.setdefault("region", fake.region)
    return make_provider(family, runtime=runtime, **options)


def create_request(
    clip: Path, family: str, target_model: str, name: str, speaker: str | None = None
) -> VoiceRecord:
    """The :class:`VoiceRecord` to create from the clip file ``clip`` (its sha256 computed here)."""
    digest = hashlib.sha256(clip.read_bytes()).hexdigest()
    return VoiceRecord(
        family=family,
        target_model=target_model,
        name=name,
        clip_path=str(clip),
        clip_sha256=digest,
        speaker=speaker,
    )


ECHO_SHAPES = ("json", "text-cut", "html", "headers", "url", "partial", "request-id")
"""How :meth:`Fault.echo` quotes the key: in the provider's JSON error; a text body whose 200-character
cut falls inside the key; an HTML page; the request headers echoed back; a URL with ``?key=``; only the
key's first 20 characters; the request id (header and body)."""


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour. Build with the class methods; queue with :meth:`FakeProviders.inject`.

    ``after_action`` (drop, delay, malformed): the server first does the work (creates the voice...), then
    misbehaves, so the client loses the answer to a request that *did* succeed.
    """

    kind: str
    status: int = 0
    retry_after: str | None = None
    code: str | int | None = None
    message: str | None = None
    after_action: bool = False
    seconds: float = 0.0

    @classmethod
    def http(
        cls,
        status: int,
        *,
        retry_after: str | float | None = None,
        code: str | int | None = None,
        message: str | None = None,
    ) -> Fault:
        """Answer HTTP ``status`` in the provider's error shape, without acting (e.g. 500, 503)."""
        ra = None if retry_after is None else str(retry_after)
        return cls("http", status=status, retry_after=ra, code=code, message=message)

    @classmethod
    def throttle(cls, *, retry_after: str | float | None = None) -> Fault:
        """The provider's rate-limit answer (DashScope 429 Throttling.RateQuota, MiniMax 200 + 1002...)."""
        ra = None if retry_after is None else str(retry_after)
        return cls("throttle", retry_after=ra)

    @classmethod
    def error(
        cls,
        code: str | int,
        message: str | None = None,
        *,
        status: int | None = None,
        after_action: bool = False,
    ) -> Fault:
        """A provider error code: DashScope ``{"code": ...}`` (status from the code unless given), MiniMax
        HTTP 200 with ``base_resp.status_code``, ElevenLabs ``detail.status``. Without acting; with
        ``after_action``, a streamed synthesis (``minimax.t2a``) fails after its first audio piece."""
        return cls("error", code=code, message=message, status=status or 0, after_action=after_action)

    @classmethod
    def drop(cls, *, after_action: bool = True) -> Fault:
        """Close the connection without an answer (by default after doing the work)."""
        return cls("drop", after_action=after_action)

    @classmethod
    def delay(cls, seconds: float, *, after_action: bool = True) -> Fault:
        """Sleep ``seconds`` (longer than the client's read timeout) before answering. With
        ``after_action`` the work is done first; without, the late answer is a 503 and nothing is done."""
        return cls("delay", seconds=seconds, after_action=after_action)

    @classmethod
    def malformed(cls, *, after_action: bool = True) -> Fault:
        """Answer 200 with a truncated JSON body (by default after doing the work)."""
        return cls("malformed", after_action=after_action)

    @classmethod
    def echo(cls, shape: str, *, status: int = 400) -> Fault:
        """Answer ``status`` with an error that quotes the key the request presented, in one of
        :data:`ECHO_SHAPES` (a hostile or careless server), without acting."""
        if shape not in ECHO_SHAPES:
            raise ValueError(f"unknown echo shape {shape!r} (one of {', '.join(ECHO_SHAPES)})")
        return cls("echo", status=status, code=shape)

    @classmethod
    def quota(cls) -> Fault:
        """Answer as if the account's voice quota were used up."""
        return cls("quota")


@dataclass
class Recorded:
    """One request the server received, and what it did with it."""

    endpoint: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    field_order: list[str] = field(default_factory=list)
    status: int | None = None
    fault: str | None = None
    messages: list[Any] = field(default_factory=list)
    """WebSocket sessions: every frame the client sent (JSON text frames decoded, others as they came)."""

    def header(self, name: str) -> str | None:
        """A header's value, case-insensitively."""
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None

    def text(self, *, include_auth: bool = False) -> str:
        """Everything received as text (path, query, headers, body); auth header values left out."""
        secret = {"authorization", "xi-api-key"}
        heads = "\n".join(
            f"{k}: {v}" for k, v in self.headers.items() if include_auth or k.lower() not in secret
        )
        frames = "".join(f"\n{m if isinstance(m, str | bytes) else json.dumps(m)}" for m in self.messages)
        return f"{self.method} {self.path}?{self.query}\n{heads}\n\n" + self.body.decode("latin-1") + frames


@dataclass
class Streamed:
    """A reply body sent in ``pieces`` as they are "made" (a streamed synthesis), with ``length`` as its
    Content-Length (None: the end of the connection ends it). A fault queued for the endpoint strikes after
    the first piece: ``drop`` cuts the connection, ``error`` sends ``error_piece(fault)`` and stops, ``delay``
    waits before the first piece."""

    pieces: list[bytes]
    length: int | None = None
    error_piece: Callable[[Fault], bytes] | None = None
    fault: Fault | None = None


class _Reply:
    def __init__(
        self,
        status: int,
        payload: Any = None,
        *,
        headers: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> None:
        self.status = status
        self.payload = payload
        self.headers = headers or {}
        self.content_type = content_type


class _Refused(Exception):
    """An early answer (a 400-style refusal) raised by a request check and returned by :func:`_dispatch`."""

    def __init__(self, reply: _Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


class FakeProviders:
    """The fake server (see the module docstring)."""

    def __init__(
        self,
        *,
        dashscope_key: str = "sk-fake-dashscope-4f2a9c",
        minimax_key: str = "mm-fake-minimax-7d1e3b",
        elevenlabs_key: str = "el-fake-elevenlabs-5c8f0a",
        deploy_polls: int = 2,
        quotas: dict[str, int | None] | None = None,
        echo_key_in_errors: bool = True,
        qwen_audio_inline: bool = False,
        now: Callable[[], datetime] | None = None,
        region: str = "cn",
        temporary_upload: bool | None = None,
        page_cap: int | None = None,
    ) -> None:
        self.region = region
        self.page_cap = page_cap
        self.qwen_fallback: tuple[str, str] | None = None
        self.temporary_upload = region == "cn" if temporary_upload is None else temporary_upload
        self.keys = {"dashscope": dashscope_key, "minimax": minimax_key, "elevenlabs": elevenlabs_key}
        self.deploy_polls = deploy_polls
        self.echo_key_in_errors = echo_key_in_errors
        self.qwen_audio_inline = qwen_audio_inline
        self.voice_speech: dict[str, Callable[[str, int], bytes]] = {}
        """Synthesis overrides: a voice whose id contains a key speaks ``voice_speech[key](text, rate)``
        (16-bit mono PCM) instead of :func:`speech_pcm` (MiniMax synthesis and clone demo audio, ElevenLabs synthesis; clone
        checks)."""
        self._now = now or (lambda: datetime.now(UTC))
        self._default_quotas = {
            "cosyvoice": 1000,
            "qwen": 1000,
            "minimax": None,
            "elevenlabs": 30,
            **(quotas or {}),
        }
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.reset()

    # --- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> FakeProviders:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.block_on_close = False
        server.fake = self  # type: ignore[attr-defined]
        server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (cuts injected delays short) and release the port."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeProviders:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every voice, file, fault, quota change and recorded request (keys stay)."""
        with self._lock:
            self.store: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
            self.minimax_used_ids: set[str] = set()
            self.minimax_files: dict[int, dict[str, Any]] = {}
            self.oss_objects: dict[str, bytes] = {}
            self.policies: dict[str, dict[str, str]] = {}
            self.public: dict[str, bytes] = {}
            self.audio: dict[str, bytes] = {}
            self.bad_audio: set[str] = set()
            self.quotas: dict[str, int | None] = dict(self._default_quotas)
            self.faults: dict[str, collections.deque[Fault]] = collections.defaultdict(collections.deque)
            self.requests: list[Recorded] = []
            self.incomplete: list[tuple[str, str, int, int]] = []
            """Requests whose body ended before its Content-Length: (method, path, bytes, length); never acted on."""
            self.errors: list[str] = []
            self._counter = 0

    # --- configuration --------------------------------------------------------------------------------
    @property
    def dashscope_base_url(self) -> str:
        """The DashScope base URL (``.../api/v1``)."""
        return f"{self.url}/api/v1"

    @property
    def minimax_base_url(self) -> str:
        """The MiniMax base URL (paths start with ``/v1``)."""
        return self.url

    @property
    def elevenlabs_base_url(self) -> str:
        """The ElevenLabs base URL (paths start with ``/v1``)."""
        return self.url

    def speech_override(self, voice_id: str) -> Callable[[str, int], bytes] | None:
        """The :attr:`voice_speech` entry whose key ``voice_id`` contains, if any."""
        return next((make for key, make in self.voice_speech.items() if key in voice_id), None)

    def speech_of(self, voice_id: str, text: str, rate: int) -> bytes:
        """The PCM a synthesis with ``voice_id`` makes: a :attr:`voice_speech` override, else :func:`speech_pcm`."""
        make = self.speech_override(voice_id)
        return make(text, rate) if make else speech_pcm(text, rate)

    def env(self) -> dict[str, str]:
        """Environment variables that point voiceprep's clients at this server with valid keys."""
        return {
            "DASHSCOPE_API_KEY": self.keys["dashscope"],
            "DASHSCOPE_BASE_URL": self.dashscope_base_url,
            "MINIMAX_API_KEY": self.keys["minimax"],
            "MINIMAX_BASE_URL": self.minimax_base_url,
            "ELEVENLABS_API_KEY": self.keys["elevenlabs"],
            "ELEVENLABS_BASE_URL": self.elevenlabs_base_url,
        }

    def inject(self, endpoint: str, *faults: Fault) -> None:
        """Queue ``faults`` for ``endpoint`` (one of :data:`ENDPOINTS`), consumed one per request."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r} (known: {', '.join(ENDPOINTS)})")
        with self._lock:
            self.faults[endpoint].extend(faults)

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self.faults.clear()

    def pending_faults(self) -> dict[str, list[Fault]]:
        """Faults not consumed yet, per endpoint."""
        with self._lock:
            return {k: list(v) for k, v in self.faults.items() if v}

    def mark_bad_audio(self, content_or_sha256: bytes | str) -> None:
        """Make the service reject this audio (CosyVoice: ``UNDEPLOYED`` after review)."""
        sha = (
            content_or_sha256
            if isinstance(content_or_sha256, str)
            else hashlib.sha256(content_or_sha256).hexdigest()
        )
        with self._lock:
            self.bad_audio.add(sha)

    def set_quota(self, kind: str, n: int | None) -> None:
        """At most ``n`` voices of ``kind`` (``cosyvoice``, ``qwen``, ``minimax``, ``elevenlabs``)."""
        with self._lock:
            self.quotas[kind] = n

    def publish(self, name: str, content: bytes) -> str:
        """Serve ``content`` at ``/public/<name>`` (the user's own storage); return its URL."""
        with self._lock:
            self.public[name] = content
        return f"{self.url}/public/{name}"

    def voices(self, kind: str) -> list[dict[str, Any]]:
        """The stored voices of ``kind``, oldest first (copies)."""
        with self._lock:
            return [dict(v) for v in self.store[kind].values()]

    def add_voice(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Plant a voice directly (e.g. one the ledger does not know). Returns the stored record."""
        with self._lock:
            if kind == "cosyvoice":
                model, prefix = (
                    fields.get("target_model", COSYVOICE_MODELS[0]),
                    fields.get("prefix", "planted"),
                )
                record = self._new_cosy(model, prefix, fields.get("url", ""), "")
                record.update({k: v for k, v in fields.items() if k in record})
            elif kind == "qwen":
                record = self._new_qwen(
                    fields.get("target_model", QWEN_MODELS[0]), fields.get("preferred_name", "planted")
                )
            elif kind == "minimax":
                vid = fields["voice_id"]
                record = {
                    "voice_id": vid,
                    "created_time": self._now().strftime("%Y-%m-%d"),
                    "description": [],
                }
                self.store["minimax"][vid] = record
                self.minimax_used_ids.add(vid)
            else:
                record = self._new_eleven(fields.get("name", "planted"))
            return dict(record)

    def requests_to(self, endpoint: str) -> list[Recorded]:
        """The recorded requests to ``endpoint``, in order."""
        with self._lock:
            return [r for r in self.requests if r.endpoint == endpoint]

    def clear_requests(self) -> None:
        """Forget the recorded requests (state and faults stay)."""
        with self._lock:
            self.requests.clear()

    def seen_text(self, *, include_auth: bool = False) -> str:
        """Everything every request carried, as text; auth header values left out unless asked."""
        with self._lock:
            return "\n".join(r.text(include_auth=include_auth) for r in self.requests)

    # --- internals: state -----------------------------------------------------------------------------
    def _next(self) -> int:
        self._counter += 1
        return self._counter

    def _stamp(self) -> str:
        return self._now().astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")

    def _new_cosy(self, model: str, prefix: str, url: str, sha: str) -> dict[str, Any]:
        vid = f"{model}-{prefix}-{uuid.uuid4().hex[:16]}"
        stamp = self._stamp()
        record = {
            "voice_id": vid,
            "target_model": model,
            "prefix": prefix,
            "url": url,
            "audio_sha256": sha,
            "status": "DEPLOYING",
            "polls_left": self.deploy_polls,
            "final": "UNDEPLOYED" if sha in self.bad_audio else "OK",
            "gmt_create": stamp,
            "gmt_modified": stamp,
            "seq": self._next(),
        }
        self.store["cosyvoice"][vid] = record
        return record

    def _new_qwen(self, model: str, name: str, language: str | None = None) -> dict[str, Any]:
        now = self._now().astimezone(UTC)
        vid = f"qwen-tts-vc-{name}-voice-{now.strftime('%Y%m%d%H%M%S')}{now.microsecond // 1000:03d}-{uuid.uuid4().hex[:4]}"
        record = {
            "voice": vid,
            "target_model": model,
            "preferred_name": name,
            "language": language,
            "gmt_create": self._stamp(),
            "seq": self._next(),
        }
        self.store["qwen"][vid] = record
        return record

    def _new_eleven(self, name: str, labels: dict[str, Any] | None = None) -> dict[str, Any]:
        vid = uuid.uuid4().hex[:20]
        record = {
            "voice_id": vid,
            "name": name,
            "category": "cloned",
            "labels": labels or {},
            "created_at_unix": int(self._now().timestamp()),
            "seq": self._next(),
        }
        self.store["elevenlabs"][vid] = record
        return record

    def _over_quota(self, kind: str) -> bool:
        limit = self.quotas.get(kind)
        return limit is not None and len(self.store[kind]) >= limit

    def _audio_url(self, content: bytes, suffix: str = ".wav") -> str:
        token = uuid.uuid4().hex
        self.audio[token + suffix] = content
        return f"{self.url}/audio/{token}{suffix}"


# --- the request handler ------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeProviders/1.0"
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        return

    @property
    def fake(self) -> FakeProviders:
        return self.server.fake  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        if (self.headers.get("Upgrade") or "").lower() == "websocket":
            from fake_websockets import serve_websocket  # the realtime protocols (tests/fake_websockets.py)

            serve_websocket(self)
            return
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # --- plumbing ---------------------------------------------------------------------------------
    def _handle(self, method: str) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) < length:  # the client went away mid-body: an incomplete request is never acted on
            with fake._lock:
                fake.incomplete.append((method, parts.path, len(body), length))
            self.close_connection = True
            return
        rec = Recorded(
            endpoint="unknown",
            method=method,
            path=parts.path,
            query=dict(parse_qsl(parts.query)),
            headers=dict(self.headers.items()),
            body=body,
        )
        ctype = self.headers.get("Content-Type") or ""
        if ctype.startswith("application/json"):
            try:
                rec.json = json.loads(body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                rec.json = None
        elif ctype.startswith("multipart/form-data"):
            rec.form, rec.files, rec.field_order = _parse_multipart(ctype, body)
        route = _route(method, parts.path, rec)
        rec.endpoint = route
        with fake._lock:
            fake.requests.append(rec)
            queue = fake.faults.get(route)
            fault = queue.popleft() if queue else None
        rec.fault = fault.kind if fault else None
        try:
            if fault is not None and not fault.after_action:
                if self._cut_short(rec, fault):
                    return
                if fault.kind == "delay":
                    fake._stopping.wait(fault.seconds)
                    self._send(rec, _fault_reply(route, Fault.http(503), fake))
                    return
                if fault.kind == "echo":
                    self._send(rec, _echo_reply(route, fault, rec))
                    return
                self._send(rec, _fault_reply(route, fault, fake))
                return
            try:
                reply = _dispatch(route, rec, fake)
            except Exception:
                fake.errors.append(traceback.format_exc())
                reply = _Reply(500, {"code": "InternalError", "message": "bug in the fake server"})
            if fault is not None and isinstance(reply.payload, Streamed):  # the fault strikes mid-stream
                reply.payload.fault = fault
            elif fault is not None:  # after the work was done
                if self._cut_short(rec, fault):
                    return
                if fault.kind == "delay":
                    fake._stopping.wait(fault.seconds)
            self._send(rec, reply)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            pass

    def _cut_short(self, rec: Recorded, fault: Fault) -> bool:
        """Answer a ``drop`` (close without a reply) or ``malformed`` (truncated JSON) fault; True if it was one."""
        if fault.kind == "drop":
            rec.status = None
            self.close_connection = True
            return True
        if fault.kind == "malformed":
            self._send_raw(rec, 200, b'{"output": {"voice', "application/json")
            return True
        return False

    def _send(self, rec: Recorded, reply: _Reply) -> None:
        if isinstance(reply.payload, Streamed):
            self._send_streamed(rec, reply)
            return
        headers = dict(reply.headers)
        if isinstance(reply.payload, bytes):
            content, ctype = reply.payload, reply.content_type or "application/octet-stream"
        elif isinstance(reply.payload, str):
            content, ctype = reply.payload.encode("utf-8"), reply.content_type or "application/xml"
        elif reply.payload is None:
            content, ctype = b"", reply.content_type or "text/plain"
        else:
            content, ctype = json.dumps(reply.payload).encode("utf-8"), "application/json"
        self._send_raw(rec, reply.status, content, ctype, headers)

    def _send_streamed(self, rec: Recorded, reply: _Reply) -> None:
        """Send a :class:`Streamed` body piece by piece (flushed), applying its fault after the first piece
        (``delay``: before it): ``drop`` closes the connection there, ``error`` sends its error piece."""
        streamed: Streamed = reply.payload
        fault = streamed.fault
        rec.status = reply.status
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type or "application/octet-stream")
        if streamed.length is not None:
            self.send_header("Content-Length", str(streamed.length))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        for i, piece in enumerate(streamed.pieces):
            if i == 0 and fault is not None and fault.kind == "delay":
                self.fake._stopping.wait(fault.seconds)
            self.wfile.write(piece)
            self.wfile.flush()
            if i == 0 and fault is not None and fault.kind == "drop":
                self.close_connection = True
                return
            if i == 0 and fault is not None and fault.kind == "error" and streamed.error_piece is not None:
                self.wfile.write(streamed.error_piece(fault))
                return

    def _send_raw(
        self, rec: Recorded, status: int, content: bytes, ctype: str, headers: dict[str, str] | None = None
    ) -> None:
        rec.status = status
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(content)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(content)


def _parse_multipart(
    ctype: str, body: bytes
) -> tuple[dict[str, str], dict[str, tuple[str, bytes]], list[str]]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body
    )
    form: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    order: list[str] = []
    if not message.is_multipart():
        return form, files, order
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        name = str(name)
        order.append(name)
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            files[name] = (str(filename), payload)
        else:
            form[name] = payload.decode("utf-8", "replace")
    return form, files, order


def _route(method: str, path: str, rec: Recorded) -> str:
    if path == "/api/v1/services/audio/tts/customization" and method == "POST":
        body = rec.json if isinstance(rec.json, dict) else {}
        inp = body.get("input") if isinstance(body.get("input"), dict) else {}
        action = inp.get("action")
        kind = {"voice-enrollment": "cosyvoice", "qwen-voice-enrollment": "qwen"}.get(body.get("model"))
        name = f"{kind}.{action}"
        return name if kind and name in ENDPOINTS else "dashscope.customization"
    simple = {
        ("GET", "/api/v1/uploads"): "dashscope.get_policy",
        ("POST", "/oss-upload"): "oss.upload",
        ("POST", "/api/v1/services/audio/tts/SpeechSynthesizer"): "cosyvoice.synthesize",
        ("POST", "/api/v1/services/aigc/multimodal-generation/generation"): "qwen.synthesize",
        ("POST", "/v1/files/upload"): "minimax.upload",
        ("POST", "/v1/voice_clone"): "minimax.clone",
        ("POST", "/v1/get_voice"): "minimax.get_voice",
        ("POST", "/v1/delete_voice"): "minimax.delete_voice",
        ("POST", "/v1/t2a_v2"): "minimax.t2a",
        ("POST", "/v1/voices/add"): "elevenlabs.add",
        ("GET", "/v1/voices"): "elevenlabs.list",
    }
    if (method, path) in simple:
        return simple[(method, path)]
    if path.startswith("/v1/voices/") and method in ("GET", "DELETE"):
        return "elevenlabs.get" if method == "GET" else "elevenlabs.delete"
    if path.startswith("/v1/text-to-speech/") and path.endswith("/stream") and method == "POST":
        return "elevenlabs.tts_stream"
    if path.startswith("/v1/text-to-speech/") and method == "POST":
        return "elevenlabs.tts"
    if path.startswith("/audio/") and method == "GET":
        return "audio.download"
    if path.startswith("/public/") and method == "GET":
        return "public.download"
    return "unknown"


def _family(endpoint: str) -> str:
    head = endpoint.split(".", 1)[0]
    return {"cosyvoice": "dashscope", "qwen": "dashscope", "dashscope": "dashscope"}.get(head, head)


# --- provider error shapes ------------------------------------------------------------------------------


def _rid() -> str:
    return str(uuid.uuid4())


def _ds_error(status: int, code: str, message: str) -> _Reply:
    return _Reply(status, {"request_id": _rid(), "code": code, "message": message})


def _mm_error(code: int, message: str) -> _Reply:
    return _Reply(
        200,
        {"base_resp": {"status_code": code, "status_msg": message}},
        headers={"Trace-Id": uuid.uuid4().hex},
    )


def _el_error(status: int, code: str, message: str) -> _Reply:
    return _Reply(
        status, {"detail": {"status": code, "message": message}}, headers={"request-id": uuid.uuid4().hex}
    )


def _oss_error(status: int, code: str, message: str) -> _Reply:
    xml = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{uuid.uuid4().hex}</RequestId></Error>'
    return _Reply(status, xml, headers={"x-oss-request-id": uuid.uuid4().hex}, content_type="application/xml")


_DS_STATUS_CODES = {
    400: "InvalidParameter",
    401: "InvalidApiKey",
    403: "AccessDenied",
    404: "ModelNotFound",
    429: "Throttling.RateQuota",
    500: "InternalError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}
_MM_STATUS_CODES = {429: 1002, 500: 1000, 502: 1000, 503: 1033, 504: 1001}


def _ds_status_for(code: str) -> int:
    if code.startswith("Throttling"):
        return 429
    if code == "InvalidApiKey":
        return 401
    if code.startswith(("AccessDenied", "Arrearage")):
        return 403
    if code in ("InternalError", "SystemError"):
        return 500
    if code == "ServiceUnavailable":
        return 503
    return 400


def _quota_reply(endpoint: str) -> _Reply:
    family = _family(endpoint)
    if family == "elevenlabs":
        return _el_error(400, "voice_limit_reached", "You have reached your maximum amount of custom voices.")
    if family == "minimax":
        return _mm_error(2038, "voice quota used up")  # MiniMax publishes no quota error; unsure
    return _ds_error(
        400, "VoiceQuotaExceeded", "The number of voices has reached the upper limit of the account."
    )


def _fault_reply(endpoint: str, fault: Fault, fake: FakeProviders) -> _Reply:
    family = _family(endpoint)
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    if fault.kind == "quota":
        return _quota_reply(endpoint)
    if fault.kind == "throttle":
        if family == "minimax":
            reply = _mm_error(1002, "rate limit exceeded")
        elif family == "elevenlabs":
            reply = _el_error(429, "too_many_concurrent_requests", "Too many concurrent requests")
        elif family == "oss":
            reply = _oss_error(429, "TooManyRequests", "slow down")
        else:
            reply = _ds_error(
                429, "Throttling.RateQuota", "Requests rate limit exceeded, please try again later."
            )
        reply.headers.update(headers)
        return reply
    if fault.kind == "error":
        code = fault.code if fault.code is not None else ""
        message = fault.message or f"injected error {code}"
        if family == "minimax":
            reply = _mm_error(int(code), message)
            if fault.status:
                reply.status = fault.status
        elif family == "elevenlabs":
            reply = _el_error(fault.status or 400, str(code), message)
        elif family == "oss":
            reply = _oss_error(fault.status or 400, str(code), message)
        else:
            reply = _ds_error(fault.status or _ds_status_for(str(code)), str(code), message)
        reply.headers.update(headers)
        return reply
    # plain HTTP status in the provider's shape
    status = fault.status or 500
    message = fault.message or f"injected HTTP {status}"
    if family == "minimax":
        code = int(fault.code) if fault.code is not None else _MM_STATUS_CODES.get(status, 1000)
        reply = _Reply(
            status,
            {"base_resp": {"status_code": code, "status_msg": message}},
            headers={"Trace-Id": uuid.uuid4().hex},
        )
    elif family == "elevenlabs":
        reply = _el_error(status, str(fault.code or "system_busy"), message)
    elif family == "oss":
        reply = _oss_error(status, str(fault.code or "InternalError"), message)
    elif family in ("audio", "public", "unknown"):
        reply = _Reply(status, message.encode(), content_type="text/plain")
    else:
        reply = _ds_error(status, str(fault.code or _DS_STATUS_CODES.get(status, "Error")), message)
    reply.headers.update(headers)
    return reply


def _echo_reply(endpoint: str, fault: Fault, rec: Recorded) -> _Reply:
    """An error quoting the presented key in the shape ``fault.code`` (see :data:`ECHO_SHAPES`)."""
    presented = rec.header("Authorization") or rec.header("xi-api-key") or ""
    key = presented.split(" ", 1)[-1]
    status, shape, family = fault.status or 400, str(fault.code), _family(endpoint)
    heads = "\n".join(f"{k}: {v}" for k, v in rec.headers.items())
    rid = f"req-{key}"
    if shape == "json":
        message = f"The API key {key} is not valid for this request"
        if family == "minimax":
            return _Reply(status, {"base_resp": {"status_code": 2013, "status_msg": message}})
        if family == "elevenlabs":
            return _el_error(status, "invalid_request", message)
        return _ds_error(status, "InvalidParameter", message)
    if shape == "text-cut":
        body = "Error: bad request. " + "x" * (190 - len("Error: bad request. ")) + key + " tail"
        return _Reply(status, body.encode(), content_type="text/plain")
    if shape == "html":
        page = f"<html><body><h1>{status} Bad Request</h1><p>key=<b>{key}</b></p><pre>{heads}</pre></body></html>"
        return _Reply(status, page.encode(), content_type="text/html")
    if shape == "headers":
        return _Reply(status, f"You sent:\n{heads}\n".encode(), content_type="text/plain")
    if shape == "url":
        return _Reply(
            status,
            {
                "code": "Redirected",
                "message": f"retry at https://example.invalid/v1/x?key={key}&api_key={key}",
            },
        )
    if shape == "partial":
        return _ds_error(status, "InvalidParameter", f"Invalid key '{key[:20]}...'")
    # request-id: the key as the request id, in the headers and the body
    reply = _ds_error(status, "InvalidParameter", "bad request")
    reply.payload["request_id"] = rid
    reply.headers.update({"X-Request-Id": rid, "Trace-Id": rid, "request-id": rid})
    return reply


# --- dispatch and endpoint handlers ------------------------------------------------------------------------


def _dispatch(endpoint: str, rec: Recorded, fake: FakeProviders) -> _Reply:
    family = _family(endpoint)
    if family == "dashscope":
        denied = _auth_dashscope(rec, fake)
        if denied:
            return denied
    elif family == "minimax":
        denied = _auth_minimax(rec, fake)
        if denied:
            return denied
    elif family == "elevenlabs":
        denied = _auth_elevenlabs(rec, fake)
        if denied:
            return denied
    handler = _HANDLERS.get(endpoint)
    if handler is None:
        if family == "dashscope":
            return _ds_error(400, "InvalidParameter", "unknown model or action")
        return _Reply(404, {"error": "not found"})
    with fake._lock:
        try:
            return handler(rec, fake)
        except _Refused as refused:
            return refused.reply


def _presented(rec: Recorded, header: str, fake: FakeProviders) -> str:
    value = rec.header(header) or ""
    return f" (got {value!r})" if fake.echo_key_in_errors and value else ""


def _auth_dashscope(rec: Recorded, fake: FakeProviders) -> _Reply | None:
    if rec.header("Authorization") != f"Bearer {fake.keys['dashscope']}":
        return _ds_error(
            401, "InvalidApiKey", "Invalid API-key provided." + _presented(rec, "Authorization", fake)
        )
    return None


def _auth_minimax(rec: Recorded, fake: FakeProviders) -> _Reply | None:
    value = rec.header("Authorization")
    if not value:
        return _mm_error(1004, "login fail: Please carefully check the authorization header")
    if value != f"Bearer {fake.keys['minimax']}":
        return _mm_error(2049, "invalid api key" + _presented(rec, "Authorization", fake))
    return None


def _auth_elevenlabs(rec: Recorded, fake: FakeProviders) -> _Reply | None:
    if rec.header("xi-api-key") != fake.keys["elevenlabs"]:
        return _el_error(401, "invalid_api_key", "Invalid API key" + _presented(rec, "xi-api-key", fake))
    return None


def _bad(message: str) -> _Reply:
    return _ds_error(400, "InvalidParameter", message)


def _enroll_input(
    rec: Recorded, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The ``input`` of a customization call, which must hold ``required`` and may hold ``optional``
    (raises :class:`_Refused` with DashScope's 400 otherwise)."""
    if (rec.header("Content-Type") or "").split(";")[0] != "application/json":
        raise _Refused(_bad("Content-Type must be application/json"))
    body = rec.json
    if not isinstance(body, dict) or set(body) - {"model", "input", "parameters"}:
        raise _Refused(_bad("body must be {model, input}"))
    inp = body.get("input")
    if not isinstance(inp, dict):
        raise _Refused(_bad("Missing required parameter: input"))
    for name in required:
        if name not in inp or inp[name] in (None, ""):
            raise _Refused(_bad(f"Missing required parameter: input.{name}"))
    unknown = set(inp) - set(required) - set(optional) - {"action"}
    if unknown:
        raise _Refused(_bad(f"Unknown parameter: input.{sorted(unknown)[0]}"))
    return inp


def _paging(inp: dict[str, Any], cap: int | None = None) -> tuple[int, int]:
    index, size = inp.get("page_index", 0), inp.get("page_size", 10)
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise _Refused(_bad("page_index must be an integer >= 0"))
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 1000:
        raise _Refused(_bad("page_size must be an integer in [1, 1000]"))
    return index, min(size, cap) if cap else size


def _resolve_url(url: Any, rec: Recorded, fake: FakeProviders) -> bytes:
    """The audio bytes a CosyVoice ``url`` points to, as the service would fetch them."""
    if not isinstance(url, str) or not url:
        raise _Refused(_bad("Missing required parameter: input.url"))
    if url.startswith("oss://"):
        if (rec.header("X-DashScope-OssResourceResolve") or "").lower() != "enable":
            raise _Refused(_bad("oss:// resources need the header X-DashScope-OssResourceResolve: enable"))
        content = fake.oss_objects.get(url[len("oss://") :])
        if content is None:
            raise _Refused(_bad("download audio failed: the oss object does not exist"))
        return content
    match = _DATA_URI.fullmatch(url)
    if url.startswith("data:"):
        if not match:
            raise _Refused(_bad("url: unsupported data URI"))
        try:
            return base64.b64decode(match.group(2), validate=True)
        except ValueError:
            raise _Refused(_bad("url: the data URI is not valid base64")) from None
    if url.startswith(f"{fake.url}/public/"):
        content = fake.public.get(unquote(url[len(f"{fake.url}/public/") :]))
        if content is None:
            raise _Refused(_bad(f"download audio failed: {url} answered 404"))
        return content
    if url.startswith(("http://", "https://")):
        raise _Refused(_bad(f"download audio failed: {url} is not reachable"))
    raise _Refused(_bad("url: expected an http(s), oss:// or data: URL"))


def _cosy_create(rec: Recorded, fake: FakeProviders) -> _Reply:
    inp = _enroll_input(
        rec,
        ("target_model", "prefix", "url"),
        ("language_hints", "enable_preprocess", "max_prompt_audio_length"),
    )
    if inp["target_model"] not in COSYVOICE_MODELS:
        return _bad(f"target_model {inp['target_model']!r} is not supported")
    if inp["target_model"] not in REGION_MODELS[fake.region]:
        return _bad(f"target_model {inp['target_model']!r} is not supported in this region")
    if not isinstance(inp["prefix"], str) or not _COSY_PREFIX.fullmatch(inp["prefix"]):
        return _bad("prefix must be 1-9 lower case letters or digits")
    hints = inp.get("language_hints")
    if hints is not None and (not isinstance(hints, list) or not all(isinstance(h, str) for h in hints)):
        return _bad("language_hints must be a list of strings")
    if "enable_preprocess" in inp and not isinstance(inp["enable_preprocess"], bool):
        return _bad("enable_preprocess must be a boolean")
    content = _resolve_url(inp["url"], rec, fake)
    if not content or len(content) > _MAX_DASHSCOPE_BYTES:
        return _ds_error(400, "Audio.FileSizeExceed", "audio file is empty or larger than 10 MB")
    if fake._over_quota("cosyvoice"):
        return _quota_reply("cosyvoice.create_voice")
    record = fake._new_cosy(
        inp["target_model"], inp["prefix"], inp["url"][:200], hashlib.sha256(content).hexdigest()
    )
    return _Reply(
        200, {"output": {"voice_id": record["voice_id"]}, "usage": {"count": 1}, "request_id": _rid()}
    )


def _cosy_view(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record[k] for k in ("voice_id", "gmt_create", "gmt_modified", "status")}


def _cosy_list(rec: Recorded, fake: FakeProviders) -> _Reply:
    inp = _enroll_input(rec, optional=("prefix", "page_index", "page_size"))
    index, size = _paging(inp, fake.page_cap)
    prefix = inp.get("prefix")
    voices = sorted(fake.store["cosyvoice"].values(), key=lambda v: -v["seq"])  # newest first
    if prefix:
        voices = [v for v in voices if v["prefix"] == prefix]
    page = voices[index * size : (index + 1) * size]
    return _Reply(
        200, {"output": {"voice_list": [_cosy_view(v) for v in page]}, "usage": {}, "request_id": _rid()}
    )


def _cosy_get(inp: dict[str, Any], fake: FakeProviders) -> dict[str, Any]:
    vid = inp.get("voice_id")
    record = fake.store["cosyvoice"].get(vid) if isinstance(vid, str) else None
    if record is None:
        raise _Refused(_bad(f"The voice {vid} does not exist."))
    return record


def _cosy_query(rec: Recorded, fake: FakeProviders) -> _Reply:
    inp = _enroll_input(rec, ("voice_id",))
    record = _cosy_get(inp, fake)
    if record["status"] == "DEPLOYING":
        if record["polls_left"] > 0:
            record["polls_left"] -= 1
        else:
            record["status"] = record["final"]
            record["gmt_modified"] = fake._stamp()
    output = {k: record[k] for k in ("gmt_create", "gmt_modified", "target_model", "status")}
    output["resource_link"] = record["url"]
    return _Reply(200, {"output": output, "usage": {}, "request_id": _rid()})


def _cosy_update(rec: Recorded, fake: FakeProviders) -> _Reply:
    """``update_voice`` (``voice_id``, ``url``): the voice is enrolled again from the new audio, goes back to
    review (``DEPLOYING``) and keeps its id."""
    inp = _enroll_input(rec, ("voice_id", "url"))
    record = _cosy_get(inp, fake)
    content = _resolve_url(inp["url"], rec, fake)
    if not content or len(content) > _MAX_DASHSCOPE_BYTES:
        return _ds_error(400, "Audio.FileSizeExceed", "audio file is empty or larger than 10 MB")
    sha = hashlib.sha256(content).hexdigest()
    record.update(
        url=inp["url"][:200],
        audio_sha256=sha,
        status="DEPLOYING",
        polls_left=fake.deploy_polls,
        final="UNDEPLOYED" if sha in fake.bad_audio else "OK",
        gmt_modified=fake._stamp(),
    )
    return _Reply(200, {"output": {}, "usage": {}, "request_id": _rid()})


def _cosy_delete(rec: Recorded, fake: FakeProviders) -> _Reply:
    inp = _enroll_input(rec, ("voice_id",))
    record = _cosy_get(inp, fake)
    del fake.store["cosyvoice"][record["voice_id"]]
    return _Reply(200, {"output": {}, "usage": {}, "request_id": _rid()})


def _qwen_create(rec: Recorded, fake: FakeProviders) -> _Reply:
    inp = _enroll_input(rec, ("target_model", "preferred_name", "audio"), ("text", "language"))
    if inp["target_model"] not in QWEN_MODELS or inp["target_model"] not in REGION_MODELS[fake.region]:
        return _bad(f"target_model {inp['target_model']!r} is not supported")
    if not isinstance(inp["preferred_name"], str) or not _QWEN_NAME.fullmatch(inp["preferred_name"]):
        return _bad("preferred_name must be 1-16 letters, digits or '_'")
    audio = inp["audio"]
    if not isinstance(audio, dict) or set(audio) != {"data"} or not isinstance(audio["data"], str):
        return _bad("audio must be {data: <data URI or URL>}")
    data = audio["data"]
    if data.startswith("data:"):
        match = _DATA_URI.fullmatch(data)
        if not match or match.group(1) not in ("audio/wav", "audio/mpeg", "audio/mp4"):
            return _bad("audio.data: expected data:audio/wav|mpeg|mp4;base64,...")
        try:
            content = base64.b64decode(match.group(2), validate=True)
        except ValueError:
            return _bad("audio.data is not valid base64")
    else:
        content = _resolve_url(data, rec, fake)
    if not content or len(content) > _MAX_DASHSCOPE_BYTES:
        return _ds_error(400, "Audio.FileSizeExceed", "audio is empty or larger than 10 MB")
    if hashlib.sha256(content).hexdigest() in fake.bad_audio:
        return _ds_error(400, "Audio.PreprocessError", "Audio preprocess failed: no valid speech found.")
    if fake._over_quota("qwen"):
        return _quota_reply("qwen.create")
    record = fake._new_qwen(inp["target_model"], inp["preferred_name"], inp.get("language"))
    output = {"voice": record["voice"], "target_model": record["target_model"]}
    if fake.qwen_fallback is not None:
        output.update(fallback_mode=fake.qwen_fallback[0], fallback_reason=fake.qwen_fallback[1])
    return _Reply(200, {"output": output, "usage": {"count": 1}, "request_id": _rid()})


def _qwen_list(rec: Recorded, fake: FakeProviders) -> _Reply:
    inp = _enroll_input(rec, optional=("page_index", "page_size"))
    index, size = _paging(inp, fake.page_cap)
    voices = sorted(fake.store["qwen"].values(), key=lambda v: -v["seq"])
    page = [
        {
            "voice": v["voice"],
            "gmt_create": v["gmt_create"],
            "gmt_modified": v["gmt_create"],
            "target_model": v["target_model"],
            "language": v["language"],
        }
        for v in voices[index * size : (index + 1) * size]
    ]
    output = {"voice_list": page, "total_count": len(voices), "page_index": index, "page_size": size}
    return _Reply(200, {"output": output, "usage": {}, "request_id": _rid()})


def _qwen_delete(rec: Recorded, fake: FakeProviders) -> _Reply:
    inp = _enroll_input(rec, ("voice",))
    if inp["voice"] not in fake.store["qwen"]:
        return _bad(f"The voice {inp['voice']} does not exist.")
    del fake.store["qwen"][inp["voice"]]
    return _Reply(200, {"usage": {}, "request_id": _rid()})


def _get_policy(rec: Recorded, fake: FakeProviders) -> _Reply:
    if rec.query.get("action") != "getPolicy":
        return _bad("action must be getPolicy")
    model = rec.query.get("model", "")
    if not fake.temporary_upload:
        return _ds_error(403, "AccessDenied", "temporary file upload is not available in this region")
    if model not in COSYVOICE_MODELS + QWEN_MODELS + ENROLLMENT_MODELS:
        return _ds_error(404, "ModelNotFound", f"Model not exist: {model!r}")
    token = uuid.uuid4().hex
    upload_dir = f"dashscope-instant/{uuid.uuid4().hex}/{fake._now().strftime('%Y-%m-%d')}"
    policy = {
        "policy": base64.b64encode(json.dumps({"dir": upload_dir, "token": token}).encode()).decode(),
        "signature": hashlib.sha1(token.encode()).hexdigest(),
        "upload_dir": upload_dir,
        "upload_host": f"{fake.url}/oss-upload",
        "expire_in_seconds": 300,
        "max_file_size_mb": 100,
        "capacity_limit_mb": 999999999,
        "oss_access_key_id": "LTAI-fake-" + token[:8],
        "x_oss_object_acl": "private",
        "x_oss_forbid_overwrite": "true",
    }
    fake.policies[policy["policy"]] = {
        "model": model,
        "upload_dir": upload_dir,
        "signature": policy["signature"],
        "key_id": policy["oss_access_key_id"],
    }
    return _Reply(200, {"request_id": _rid(), "data": policy})


_OSS_FIELDS = (
    "OSSAccessKeyId",
    "Signature",
    "policy",
    "key",
    "x-oss-object-acl",
    "x-oss-forbid-overwrite",
    "success_action_status",
    "file",
)


def _oss_upload(rec: Recorded, fake: FakeProviders) -> _Reply:
    if rec.header("Authorization"):
        return _oss_error(
            400, "InvalidArgument", "Authorization header is not allowed with a POST policy upload"
        )
    if not (rec.header("Content-Type") or "").startswith("multipart/form-data"):
        return _oss_error(400, "InvalidArgument", "expected multipart/form-data")
    if set(rec.field_order) != set(_OSS_FIELDS) or len(rec.field_order) != len(_OSS_FIELDS):
        return _oss_error(
            400, "InvalidArgument", f"form fields must be {_OSS_FIELDS} (got {rec.field_order})"
        )
    if rec.field_order[-1] != "file" or "file" not in rec.files:
        return _oss_error(400, "InvalidArgument", "the file must be the last form field")
    issued = fake.policies.get(rec.form.get("policy", ""))
    if (
        issued is None
        or rec.form.get("Signature") != issued["signature"]
        or rec.form.get("OSSAccessKeyId") != issued["key_id"]
    ):
        return _oss_error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match")
    key = rec.form.get("key", "")
    if not key.startswith(issued["upload_dir"] + "/") or key.endswith("/"):
        return _oss_error(
            403, "AccessDenied", "Invalid according to Policy: key does not start with upload_dir"
        )
    if rec.form.get("success_action_status") != "200":
        return _oss_error(400, "InvalidArgument", "success_action_status must be 200")
    if rec.form.get("x-oss-forbid-overwrite") == "true" and key in fake.oss_objects:
        return _oss_error(409, "FileAlreadyExists", "The object you specified already exists")
    fake.oss_objects[key] = rec.files["file"][1]
    return _Reply(200, None, headers={"x-oss-request-id": uuid.uuid4().hex})


def _synth_input(rec: Recorded, allowed: set[str]) -> tuple[dict[str, Any] | None, _Reply | None]:
    body = rec.json
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("input"), dict)
        or not isinstance(body.get("model"), str)
    ):
        return None, _bad("body must be {model, input}")
    inp = body["input"]
    if set(inp) - allowed or not inp.get("text") or not inp.get("voice"):
        return None, _bad(f"input needs text and voice (allowed: {sorted(allowed)})")
    return body, None


def _cosy_synthesize(rec: Recorded, fake: FakeProviders) -> _Reply:
    body, err = _synth_input(rec, {"text", "voice", "format", "sample_rate"})
    if err:
        return err
    assert body is not None
    record = fake.store["cosyvoice"].get(body["input"]["voice"])
    if record is None:
        return _bad(f"The voice {body['input']['voice']} does not exist.")
    if record["status"] != "OK":
        return _bad(f"The voice is not ready (status {record['status']}).")
    if body["model"] != record["target_model"]:
        return _bad(f"The voice was created for {record['target_model']}, not {body['model']}.")
    url = fake._audio_url(make_wav(0.25))
    return _Reply(
        200,
        {
            "output": {"audio": {"url": url, "expires_at": 86400}},
            "usage": {"characters": len(body["input"]["text"])},
            "request_id": _rid(),
        },
    )


def _qwen_synthesize(rec: Recorded, fake: FakeProviders) -> _Reply:
    body, err = _synth_input(rec, {"text", "voice", "language_type"})
    if err:
        return err
    assert body is not None
    record = fake.store["qwen"].get(body["input"]["voice"])
    if record is None:
        return _bad(f"The voice {body['input']['voice']} does not exist.")
    if "-realtime" in body["model"]:  # the vendor: realtime models are not served over HTTP
        return _bad(f"Model {body['model']} does not support this API; use the realtime WebSocket.")
    if body["model"] != record["target_model"]:
        return _bad(f"The voice was created for {record['target_model']}, not {body['model']}.")
    wav = speech_wav(body["input"]["text"], 24000)
    audio: dict[str, Any] = {"id": uuid.uuid4().hex, "expires_at": 86400}
    if fake.qwen_audio_inline:
        audio["data"] = base64.b64encode(wav).decode()
    else:
        audio["url"] = fake._audio_url(wav)
    return _Reply(
        200, {"output": {"audio": audio, "finish_reason": "stop"}, "usage": {}, "request_id": _rid()}
    )


def _download(rec: Recorded, fake: FakeProviders) -> _Reply:
    name = rec.path[len("/audio/") :]
    content = fake.audio.get(name)
    if content is None:
        return _Reply(404, b"not found", content_type="text/plain")
    return _Reply(200, content, content_type="audio/wav")


def _public(rec: Recorded, fake: FakeProviders) -> _Reply:
    content = fake.public.get(unquote(rec.path[len("/public/") :]))
    if content is None:
        return _Reply(404, b"not found", content_type="text/plain")
    return _Reply(200, content, content_type="audio/wav")


def _mm_ok(payload: dict[str, Any]) -> _Reply:
    return _Reply(
        200,
        {**payload, "base_resp": {"status_code": 0, "status_msg": "success"}},
        headers={"Trace-Id": uuid.uuid4().hex},
    )


def _mm_json(rec: Recorded) -> tuple[dict[str, Any] | None, _Reply | None]:
    if (rec.header("Content-Type") or "").split(";")[0] != "application/json" or not isinstance(
        rec.json, dict
    ):
        return None, _mm_error(2013, "invalid params: expected a JSON object body")
    return rec.json, None


def _mm_upload(rec: Recorded, fake: FakeProviders) -> _Reply:
    if not (rec.header("Content-Type") or "").startswith("multipart/form-data"):
        return _mm_error(2013, "invalid params: expected multipart/form-data")
    if set(rec.form) != {"purpose"} or set(rec.files) != {"file"}:
        return _mm_error(
            2013, f"invalid params: expected purpose and file (got {sorted(rec.form) + sorted(rec.files)})"
        )
    if rec.form["purpose"] not in ("voice_clone", "prompt_audio"):
        return _mm_error(2013, f"invalid params: purpose {rec.form['purpose']!r}")
    filename, content = rec.files["file"]
    if not filename.lower().endswith((".mp3", ".m4a", ".wav")):
        return _mm_error(2013, "invalid params: file must be mp3, m4a or wav")
    if not content or len(content) > _MAX_MINIMAX_BYTES:
        return _mm_error(2013, "invalid params: file is empty or larger than 20 MB")
    file_id = 300000000000 + fake._next()
    fake.minimax_files[file_id] = {"filename": filename, "content": content, "purpose": rec.form["purpose"]}
    info = {
        "file_id": file_id,
        "bytes": len(content),
        "created_at": int(fake._now().timestamp()),
        "filename": filename,
        "purpose": rec.form["purpose"],
    }
    return _mm_ok({"file": info})


_MM_CLONE_FIELDS = {
    "file_id",
    "voice_id",
    "need_noise_reduction",
    "need_volume_normalization",
    "text",
    "model",
    "language_boost",
    "clone_prompt",
    "accuracy",
}


def _mm_clone(rec: Recorded, fake: FakeProviders) -> _Reply:
    body, err = _mm_json(rec)
    if err:
        return err
    assert body is not None
    if set(body) - _MM_CLONE_FIELDS or "file_id" not in body or "voice_id" not in body:
        return _mm_error(2013, f"invalid params: fields {sorted(body)}")
    file = (
        fake.minimax_files.get(body["file_id"])
        if isinstance(body["file_id"], int) and not isinstance(body["file_id"], bool)
        else None
    )
    if file is None or file["purpose"] != "voice_clone":
        return _mm_error(2013, "invalid params: file_id not found")
    vid = body["voice_id"]
    if not isinstance(vid, str) or not _MINIMAX_ID.fullmatch(vid):
        return _mm_error(2013, "invalid params: voice_id")
    for flag in ("need_noise_reduction", "need_volume_normalization"):
        if flag in body and not isinstance(body[flag], bool):
            return _mm_error(2013, f"invalid params: {flag} must be a boolean")
    if ("text" in body) != ("model" in body):
        return _mm_error(2013, "invalid params: text and model go together")
    if "model" in body and body["model"] not in MINIMAX_MODELS:
        return _mm_error(2013, f"invalid params: model {body['model']!r}")
    if vid in fake.minimax_used_ids:
        return _mm_error(2039, "voice id duplicate")
    if hashlib.sha256(file["content"]).hexdigest() in fake.bad_audio:
        return _mm_error(20132, "invalid samples: the audio could not be used")
    if fake._over_quota("minimax"):
        return _quota_reply("minimax.clone")
    fake.minimax_used_ids.add(vid)
    fake.store["minimax"][vid] = {
        "voice_id": vid,
        "created_time": fake._now().strftime("%Y-%m-%d"),
        "description": [],
        "file_id": body["file_id"],
        "seq": fake._next(),
    }
    override = fake.speech_override(vid)
    demo_wav = _pcm_wav(override(str(body.get("text")), 24000), 24000) if override else make_wav(0.25)
    demo = fake._audio_url(demo_wav) if "text" in body else ""
    return _mm_ok({"input_sensitive": False, "input_sensitive_type": 0, "demo_audio": demo})


def _mm_get_voice(rec: Recorded, fake: FakeProviders) -> _Reply:
    body, err = _mm_json(rec)
    if err:
        return err
    assert body is not None
    kind = body.get("voice_type")
    if set(body) != {"voice_type"} or kind not in (
        "system",
        "voice_cloning",
        "voice_generation",
        "music_generation",
        "all",
    ):
        return _mm_error(2013, "invalid params: voice_type")
    payload: dict[str, Any] = {}
    if kind in ("voice_cloning", "all"):
        payload["voice_cloning"] = [
            {"voice_id": v["voice_id"], "description": v["description"], "created_time": v["created_time"]}
            for v in sorted(fake.store["minimax"].values(), key=lambda v: v.get("seq", 0))
        ]
    if kind in ("system", "all"):
        payload["system_voice"] = [
            {"voice_id": "English_expressive_narrator", "voice_name": "Narrator", "description": []}
        ]
    return _mm_ok(payload)


def _mm_delete(rec: Recorded, fake: FakeProviders) -> _Reply:
    body, err = _mm_json(rec)
    if err:
        return err
    assert body is not None
    if set(body) != {"voice_type", "voice_id"} or body["voice_type"] != "voice_cloning":
        return _mm_error(2013, "invalid params: expected voice_type voice_cloning and voice_id")
    record = fake.store["minimax"].pop(body["voice_id"], None)
    if record is None:
        return _mm_error(2013, "invalid params: voice_id not exist")
    return _mm_ok({"voice_id": record["voice_id"], "created_time": record["created_time"]})


_EL_FIELDS = {"name", "remove_background_noise", "description", "labels"}


def _el_view(v: dict[str, Any]) -> dict[str, Any]:
    return {k: v[k] for k in ("voice_id", "name", "category", "labels", "created_at_unix")}


def _el_add(rec: Recorded, fake: FakeProviders) -> _Reply:
    if not (rec.header("Content-Type") or "").startswith("multipart/form-data"):
        return _el_error(422, "validation_error", "expected multipart/form-data")
    if set(rec.form) - _EL_FIELDS or not rec.form.get("name") or set(rec.files) != {"files"}:
        return _el_error(
            422, "validation_error", f"fields name and files are required (got {rec.field_order})"
        )
    if rec.form.get("remove_background_noise", "false") not in ("true", "false"):
        return _el_error(422, "validation_error", "remove_background_noise must be true or false")
    labels: dict[str, Any] = {}
    if "labels" in rec.form:
        try:
            labels = json.loads(rec.form["labels"])
        except ValueError:
            return _el_error(422, "validation_error", "labels must be a JSON object")
    content = rec.files["files"][1]
    if not content or hashlib.sha256(content).hexdigest() in fake.bad_audio:
        return _el_error(400, "corrupted_file", "The uploaded file could not be read as audio")
    if fake._over_quota("elevenlabs"):
        return _quota_reply("elevenlabs.add")
    record = fake._new_eleven(rec.form["name"], labels)
    return _Reply(
        200,
        {"voice_id": record["voice_id"], "requires_verification": False},
        headers={"request-id": uuid.uuid4().hex},
    )


def _el_list(rec: Recorded, fake: FakeProviders) -> _Reply:
    voices = [_el_view(v) for v in sorted(fake.store["elevenlabs"].values(), key=lambda v: v["seq"])]
    voices.append({"voice_id": "21m00Tcm4TlvDq8ikWAM", "name": "Rachel", "category": "premade", "labels": {}})
    return _Reply(200, {"voices": voices}, headers={"request-id": uuid.uuid4().hex})


def _el_get(rec: Recorded, fake: FakeProviders) -> _Reply:
    vid = unquote(rec.path[len("/v1/voices/") :])
    record = fake.store["elevenlabs"].get(vid)
    if record is None:
        return _el_error(404, "voice_not_found", f"A voice with id {vid} was not found.")
    return _Reply(200, _el_view(record))


def _el_delete(rec: Recorded, fake: FakeProviders) -> _Reply:
    vid = unquote(rec.path[len("/v1/voices/") :])
    if fake.store["elevenlabs"].pop(vid, None) is None:
        return _el_error(404, "voice_not_found", f"A voice with id {vid} was not found.")
    return _Reply(200, {"status": "ok"})


def _el_tts(rec: Recorded, fake: FakeProviders) -> _Reply:
    vid = unquote(rec.path[len("/v1/text-to-speech/") :])
    if vid not in fake.store["elevenlabs"]:
        return _el_error(404, "voice_not_found", f"A voice with id {vid} was not found.")
    body = rec.json
    if not isinstance(body, dict) or not body.get("text") or body.get("model_id") not in ELEVENLABS_MODELS:
        return _el_error(422, "validation_error", "text and a known model_id are required")
    return _Reply(200, make_wav(0.25), content_type="audio/mpeg")


_EL_PCM_RATES = (8000, 16000, 22050, 24000, 44100, 48000)


def _el_tts_stream(rec: Recorded, fake: FakeProviders) -> _Reply:
    """``POST /v1/text-to-speech/{id}/stream?output_format=pcm_<rate>``: raw PCM, in pieces."""
    vid = unquote(rec.path[len("/v1/text-to-speech/") : -len("/stream")])
    if vid not in fake.store["elevenlabs"]:
        return _el_error(404, "voice_not_found", f"A voice with id {vid} was not found.")
    body = rec.json
    if not isinstance(body, dict) or not body.get("text") or body.get("model_id") not in ELEVENLABS_MODELS:
        return _el_error(422, "validation_error", "text and a known model_id are required")
    if set(body) - {"text", "model_id", "language_code", "voice_settings", "seed"}:
        return _el_error(422, "validation_error", f"unknown fields {sorted(body)}")
    fmt = rec.query.get("output_format", "mp3_44100_128")
    rate = int(fmt.split("_")[1]) if fmt.startswith("pcm_") and fmt.split("_")[1].isdigit() else 0
    if rate not in _EL_PCM_RATES:
        return _el_error(422, "validation_error", f"this fake streams pcm_<rate> only (got {fmt})")
    pcm = fake.speech_of(vid, body["text"], rate)
    pieces = [pcm[i : i + 4800] for i in range(0, len(pcm), 4800)]
    return _Reply(
        200,
        Streamed(pieces, length=len(pcm)),
        content_type="audio/pcm",
        headers={"request-id": uuid.uuid4().hex},
    )


_MM_T2A_FIELDS = {
    "model",
    "text",
    "stream",
    "stream_options",
    "voice_setting",
    "audio_setting",
    "output_format",
    "language_boost",
    "pronunciation_dict",
    "timbre_weights",
    "voice_modify",
    "subtitle_enable",
}
_MM_RATES = (8000, 16000, 22050, 24000, 32000, 44100)


def _mm_sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _mm_t2a(rec: Recorded, fake: FakeProviders) -> _Reply:
    """``POST /v1/t2a_v2``: hex audio in one JSON answer, or with ``stream: true`` as server-sent events
    (``data.status`` 1 per chunk, 2 for the last, which carries the whole audio again unless
    ``stream_options.exclude_aggregated_audio``). Marks the voice as used (a real synthesis)."""
    body, err = _mm_json(rec)
    if err:
        return err
    assert body is not None
    if set(body) - _MM_T2A_FIELDS or not body.get("text") or body.get("model") not in MINIMAX_MODELS:
        return _mm_error(2013, f"invalid params: fields {sorted(body)}, model {body.get('model')!r}")
    voice = body.get("voice_setting") if isinstance(body.get("voice_setting"), dict) else {}
    vid = voice.get("voice_id")
    if vid not in fake.store["minimax"]:
        return _mm_error(2013, f"invalid params: voice_id {vid!r} does not exist")
    audio = body.get("audio_setting") if isinstance(body.get("audio_setting"), dict) else {}
    rate = audio.get("sample_rate", 32000)
    if audio.get("format", "mp3") != "pcm" or rate not in _MM_RATES or audio.get("channel", 1) != 1:
        return _mm_error(2013, "invalid params: this fake makes mono pcm at a documented sample_rate only")
    if body.get("output_format", "hex") != "hex":
        return _mm_error(2013, "invalid params: output_format must be hex here")
    fake.store["minimax"][vid]["last_used"] = fake._stamp()
    pcm = fake.speech_of(vid, body["text"], rate)
    extra = {"audio_length": len(pcm) * 500 // rate, "audio_sample_rate": rate, "audio_format": "pcm"}
    trace = {"Trace-Id": uuid.uuid4().hex}
    ok = {"status_code": 0, "status_msg": "success"}
    if not body.get("stream"):
        payload = {"data": {"audio": pcm.hex(), "status": 2}, "extra_info": extra, "base_resp": ok}
        return _Reply(200, payload, headers=trace)
    pieces = [
        _mm_sse({"data": {"audio": pcm[i : i + 4800].hex(), "status": 1}, "base_resp": ok})
        for i in range(0, len(pcm), 4800)
    ]
    exclude = (body.get("stream_options") or {}).get("exclude_aggregated_audio") is True
    last = {
        "data": {"audio": "" if exclude else pcm.hex(), "status": 2},
        "extra_info": extra,
        "base_resp": ok,
    }
    pieces.append(_mm_sse(last))

    def error_piece(fault: Fault) -> bytes:
        code = int(fault.code or 1000)
        return _mm_sse(
            {"base_resp": {"status_code": code, "status_msg": fault.message or f"injected {code}"}}
        )

    return _Reply(
        200, Streamed(pieces, error_piece=error_piece), content_type="text/event-stream", headers=trace
    )


_HANDLERS: dict[str, Callable[[Recorded, FakeProviders], _Reply]] = {
    "cosyvoice.create_voice": _cosy_create,
    "cosyvoice.list_voice": _cosy_list,
    "cosyvoice.query_voice": _cosy_query,
    "cosyvoice.delete_voice": _cosy_delete,
    "cosyvoice.update_voice": _cosy_update,
    "qwen.create": _qwen_create,
    "qwen.list": _qwen_list,
    "qwen.delete": _qwen_delete,
    "dashscope.get_policy": _get_policy,
    "oss.upload": _oss_upload,
    "cosyvoice.synthesize": _cosy_synthesize,
    "qwen.synthesize": _qwen_synthesize,
    "audio.download": _download,
    "public.download": _public,
    "minimax.upload": _mm_upload,
    "minimax.clone": _mm_clone,
    "minimax.get_voice": _mm_get_voice,
    "minimax.delete_voice": _mm_delete,
    "elevenlabs.add": _el_add,
    "elevenlabs.list": _el_list,
    "elevenlabs.get": _el_get,
    "elevenlabs.delete": _el_delete,
    "elevenlabs.tts": _el_tts,
    "elevenlabs.tts_stream": _el_tts_stream,
    "minimax.t2a": _mm_t2a,
}


def later(seconds: float) -> str:
    """An HTTP-date ``seconds`` from now (for ``Retry-After`` in date form)."""
    return email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=seconds), usegmt=True)
