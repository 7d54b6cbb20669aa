"""DashScope's two realtime synthesis protocols, over :mod:`~pipeline.enroll.providers.ws`.

**CosyVoice task protocol** (``wss://<host>/api-ws/v1/inference``; vendor pages "CosyVoice client events" and
"CosyVoice server-side events"; the dashscope SDK's ``audio/tts_v2/speech_synthesizer.py``). Client frames
are JSON ``{"header": {"action", "task_id", "streaming": "duplex"}, "payload": {...}}``:
``run-task`` (payload ``task_group: audio``, ``task: tts``, ``function: SpeechSynthesizer``, ``model``,
``input: {}``, ``parameters: {text_type: PlainText, voice, format, sample_rate}``), then ``continue-task``
(``input: {text}``), then ``finish-task`` (``input: {}``). The server answers ``task-started``, then
``result-generated`` events (sentence metadata) with the audio as **binary frames** between them, then
``task-finished``, or ``task-failed`` with ``header.error_code`` and ``header.error_message``.

**Qwen realtime** (``wss://<host>/api-ws/v1/realtime?model=<model>``; vendor pages "Qwen-TTS-Realtime client
events" / "server events"; the SDK's ``audio/qwen_tts_realtime/qwen_tts_realtime.py``). Every frame is JSON
with a ``type``. The server opens with ``session.created``; the client sends ``session.update``
(``session: {voice, mode: commit, response_format: pcm, sample_rate}``), ``input_text_buffer.append``
(``text``) and ``input_text_buffer.commit``; the server sends ``response.audio.delta`` (``delta``: base64
PCM) until ``response.done``; the client ends with ``session.finish`` (answered ``session.finished``).
Errors come as ``{"type": "error", "error": {"code", "message"}}``.

Both yield 16-bit mono PCM (:class:`~pipeline.enroll.providers.speech.Speech`).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from pipeline.enroll.providers.base import ProviderError
from pipeline.enroll.providers.http import LOGGER_NAME
from pipeline.enroll.providers.speech import Speech
from pipeline.enroll.providers.ws import (
    WEBSOCKET_URL_ENV,
    close_quietly,
    dashscope_websocket_url,
    open_websocket,
    receive,
    send_json,
)

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection

    from pipeline.enroll.providers.common import VoiceProvider

log = logging.getLogger(LOGGER_NAME)

REALTIME_MARK = "-realtime"
"""Qwen target models whose name holds this are realtime-only (``qwen3-tts-vc-realtime-...``): the HTTP
synthesis endpoint refuses them."""

ErrorOf = Callable[[int, str | None, str | None], ProviderError]
"""``error_of(status, code, message)``: DashScope's error mapping
(:func:`pipeline.enroll.providers.dashscope.dashscope_error`), given by the client."""


def is_realtime_model(model: str | None) -> bool:
    """Whether ``model`` is a realtime-only model (spoken to over the realtime WebSocket)."""
    return REALTIME_MARK in (model or "")


class _Socket:
    """One synthesis socket: the client (key, limits, redaction), the open connection, what it is doing
    (``action``, for messages), how DashScope codes read (``error_of``) and the audio bytes received."""

    def __init__(self, client: VoiceProvider, url: str, action: str, error_of: ErrorOf) -> None:
        self.client, self.action, self.error_of = client, action, error_of
        env = client.runtime.environ
        configured = tuple(v for v in [(env.get(WEBSOCKET_URL_ENV) or "").strip()] if v)
        self.conn: ClientConnection = open_websocket(
            client, url, action=action, handshake_error=self._handshake_error, configured=configured
        )
        self.received = 0

    def _handshake_error(self, status: int, body: bytes) -> ProviderError:
        try:
            data = json.loads(body.decode("utf-8")) if body else None
        except (UnicodeDecodeError, ValueError):
            data = None
        if isinstance(data, dict):
            return self.error_of(status, data.get("code"), data.get("message"))
        return self.error_of(status, None, body.decode("utf-8", "replace") or None)

    def send(self, message: dict[str, Any]) -> None:
        send_json(self.client, self.conn, message, action=self.action)

    def frame(self) -> str | bytes:
        return receive(self.client, self.conn, action=self.action, received=self.received)

    def json(self, frame: str | bytes) -> dict[str, Any]:
        try:
            data = json.loads(frame)
        except (ValueError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict):
            raise ProviderError(
                "provider_unavailable", f"{self.action}: an unreadable message", retryable=True
            )
        return data

    def failed(self, code: Any, message: Any, request_id: Any = None) -> ProviderError:
        """A ``task-failed``/``error`` event as a mapped, redacted error (its code read like an HTTP
        answer's code)."""
        redact = self.client.redact
        err = self.error_of(400, str(code) if code else None, str(message) if message else None)
        text = f"{self.action}: {code or 'error'}: {message or 'no message'}"
        if self.received:
            text += f" ({self.received} bytes of audio had arrived)"
        return ProviderError(
            err.reason,
            redact(text),
            retryable=err.retryable,
            provider_code=redact(err.provider_code) if err.provider_code else None,
            request_id=redact(str(request_id)) if request_id else None,
        )

    def close(self) -> None:
        close_quietly(self.conn)


# --------------------------------------------------------------------------------------------- CosyVoice


def cosyvoice_speech(
    client: VoiceProvider,
    voice_id: str,
    *,
    model: str,
    text: str,
    sample_rate: int,
    error_of: ErrorOf,
    language_hints: list[str] | None = None,
) -> Speech:
    """Synthesise ``text`` with a CosyVoice voice over the task protocol; the task has started when this
    returns (a ``task-failed`` before it raises here), and the audio streams from the :class:`Speech`."""
    url = dashscope_websocket_url(client.base_url, environ=client.runtime.environ)
    task_id = uuid.uuid4().hex
    header = {"task_id": task_id, "streaming": "duplex"}
    task = {"task_group": "audio", "task": "tts", "function": "SpeechSynthesizer", "model": model}
    sock = _Socket(client, url, "cosyvoice speak", error_of)
    try:
        parameters = {
            "text_type": "PlainText",
            "voice": voice_id,
            "format": "pcm",
            "sample_rate": sample_rate,
        }
        if language_hints:
            parameters["language_hints"] = language_hints
        sock.send(
            {
                "header": {"action": "run-task", **header},
                "payload": {**task, "parameters": parameters, "input": {}},
            }
        )
        while True:
            frame = sock.frame()
            if isinstance(frame, str) and _cosy_event(sock, frame) == "task-started":
                break  # (no audio comes before the task starts: a binary frame here is ignored)
        sock.send(
            {"header": {"action": "continue-task", **header}, "payload": {**task, "input": {"text": text}}}
        )
        sock.send({"header": {"action": "finish-task", **header}, "payload": {"input": {}}})
    except BaseException:
        sock.close()
        raise
    return Speech(_cosy_audio(sock), sample_rate=sample_rate, request_id=task_id, close=sock.close)


def _cosy_event(sock: _Socket, frame: str | bytes) -> str:
    """The event of a server text frame; ``task-failed`` raises its code and message."""
    data = sock.json(frame)
    head = data.get("header") if isinstance(data.get("header"), dict) else {}
    event = str(head.get("event") or "")
    if event == "task-failed":
        raise sock.failed(head.get("error_code"), head.get("error_message"), head.get("task_id"))
    return event


def _cosy_audio(sock: _Socket) -> Iterator[bytes]:
    while True:
        frame = sock.frame()
        if isinstance(frame, bytes):
            sock.received += len(frame)
            yield frame
        elif _cosy_event(sock, frame) == "task-finished":
            return


# --------------------------------------------------------------------------------------------- Qwen realtime


def _event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": f"event_{uuid.uuid4().hex}", "type": kind, **fields}


def qwen_realtime_speech(
    client: VoiceProvider,
    voice_id: str,
    *,
    model: str,
    text: str,
    sample_rate: int,
    error_of: ErrorOf,
    language_type: str | None = None,
) -> Speech:
    """Synthesise ``text`` with a Qwen voice bound to a realtime model over the realtime WebSocket (commit
    mode); the session is configured when this returns, and the audio streams from the :class:`Speech`."""
    url = dashscope_websocket_url(client.base_url, realtime_model=model, environ=client.runtime.environ)
    sock = _Socket(client, url, "qwen-tts speak (realtime)", error_of)
    try:
        while (created := _qwen_event(sock, sock.frame()))["type"] != "session.created":
            pass
        session = created.get("session") if isinstance(created.get("session"), dict) else {}
        session_id = str(session.get("id") or "") or None
        config = {"voice": voice_id, "mode": "commit", "response_format": "pcm", "sample_rate": sample_rate}
        if language_type:
            config["language_type"] = language_type
        sock.send(_event("session.update", session=config))
        while _qwen_event(sock, sock.frame())["type"] != "session.updated":
            pass
        sock.send(_event("input_text_buffer.append", text=text))
        sock.send(_event("input_text_buffer.commit"))
    except BaseException:
        sock.close()
        raise
    return Speech(_qwen_audio(sock), sample_rate=sample_rate, request_id=session_id, close=sock.close)


def _qwen_event(sock: _Socket, frame: str | bytes) -> dict[str, Any]:
    """A server event (a dict with ``type``); an ``error`` event raises its code and message."""
    data = sock.json(frame)
    kind = str(data.get("type") or "")
    if kind == "error":
        error = data.get("error") if isinstance(data.get("error"), dict) else {}
        raise sock.failed(error.get("code"), error.get("message"))
    data["type"] = kind
    return data


def _qwen_audio(sock: _Socket) -> Iterator[bytes]:
    while True:
        data = _qwen_event(sock, sock.frame())
        kind = data["type"]
        if kind == "response.audio.delta":
            try:
                chunk = base64.b64decode(str(data.get("delta") or ""), validate=True)
            except (binascii.Error, ValueError):
                raise ProviderError(
                    "provider_unavailable",
                    f"{sock.action}: response.audio.delta is not base64",
                    retryable=True,
                ) from None
            sock.received += len(chunk)
            yield chunk
        elif kind == "response.done":
            response = data.get("response") if isinstance(data.get("response"), dict) else {}
            if response.get("status") not in (None, "completed"):
                raise ProviderError(
                    "provider_unavailable",
                    f"{sock.action}: the response ended {response.get('status')!r} "
                    f"({sock.received} bytes had arrived)",
                    retryable=True,
                )
            sock.send(_event("session.finish"))
            _until_finished(sock)
            return


def _until_finished(sock: _Socket) -> None:
    """Read up to ``session.finished`` (the audio is whole already: a late error only goes to the log)."""
    try:
        while _qwen_event(sock, sock.frame())["type"] != "session.finished":
            pass
    except ProviderError as err:
        log.debug(f"{sock.action}: after the audio: {err.message}")
