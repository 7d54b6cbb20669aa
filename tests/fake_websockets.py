"""The WebSocket half of the fake provider server (:mod:`fake_providers`): DashScope's two realtime
synthesis protocols, on the same host and port as the HTTP API, as the vendor's pages describe them.

- ``/api-ws/v1/inference`` (endpoint ``cosyvoice.ws``): CosyVoice's task protocol. ``run-task`` (checked
  field by field: ``header.action/task_id/streaming=duplex``, ``payload.task_group=audio``, ``task=tts``,
  ``function=SpeechSynthesizer``, ``model``, ``input={}``, ``parameters`` with ``text_type=PlainText``,
  ``voice``, ``format``, ``sample_rate``) is answered ``task-started``; ``continue-task`` texts are
  buffered; ``finish-task`` makes the audio: ``result-generated`` events with binary frames of PCM between
  them, then ``task-finished``. A voice that does not exist, is not ``OK`` or belongs to another model is
  answered ``task-failed`` (``header.error_code``/``error_message``).
- ``/api-ws/v1/realtime?model=...`` (endpoint ``qwen.realtime``): Qwen realtime. ``session.created`` first;
  ``session.update`` (voice of that model) -> ``session.updated``; ``input_text_buffer.append`` /
  ``commit`` -> ``input_text_buffer.committed``, ``response.created``, ``response.audio.delta`` (base64
  PCM) ..., ``response.audio.done``, ``response.done``; ``session.finish`` -> ``session.finished``. Errors
  are ``{"type": "error", "error": {"code", "message"}}``.

The handshake checks the ``Authorization`` header (401 with DashScope's JSON error otherwise). Faults
queued with ``FakeProviders.inject("cosyvoice.ws" | "qwen.realtime", ...)``: ``Fault.http(status, retry_after=)`` refuses
the handshake (with its ``Retry-After``); ``Fault.error(code, message)`` fails the task after the first audio frame (``task-failed`` /
``error``); ``Fault.drop()`` drops the connection after the first audio frame; ``Fault.delay(s)`` waits
``s`` seconds before the first audio frame (a slow first chunk). The audio is
:func:`fake_providers.speech_pcm` of the text, so a test knows what to expect.

Built on the ``websockets`` library's sans-I/O server protocol over the HTTP handler's own socket.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import json
import socket
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fake_providers import QWEN_MODELS, FakeProviders, Fault, Recorded, speech_pcm
from websockets.frames import Opcode
from websockets.server import ServerProtocol

CHUNK_BYTES = 4800
"""Audio frame size (100 ms of 24 kHz 16-bit mono)."""
COSY_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
COSY_PARAMETERS = {
    "text_type",
    "voice",
    "format",
    "sample_rate",
    "volume",
    "rate",
    "pitch",
    "enable_ssml",
    "language_hints",
    "seed",
    "bit_rate",
    "instruction",
    "type",
}
QWEN_SESSION = {
    "voice",
    "mode",
    "response_format",
    "sample_rate",
    "language_type",
    "speech_rate",
    "volume",
    "pitch_rate",
    "bit_rate",
    "enable_tn",
    "instructions",
    "optimize_instructions",
}


class _Closed(Exception):
    """The client closed the connection (or it broke)."""


class Peer:
    """One accepted WebSocket connection, spoken to through ``websockets``' sans-I/O protocol."""

    def __init__(self, sock: socket.socket, raw_request: bytes) -> None:
        self.sock = sock
        self.protocol = ServerProtocol(max_size=4 * 1024 * 1024)
        self.protocol.receive_data(raw_request)
        [request] = self.protocol.events_received()
        self.protocol.send_response(self.protocol.accept(request))
        self._flush()
        self._pending: collections.deque[str | bytes] = collections.deque()

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)

    def recv(self, timeout: float = 10.0) -> str | bytes:
        """The next message the client sent (raises :class:`_Closed` when it closed)."""
        while not self._pending:
            self.sock.settimeout(timeout)
            try:
                data = self.sock.recv(65536)
            except OSError:
                raise _Closed from None
            if not data:
                raise _Closed
            self.protocol.receive_data(data)
            for frame in self.protocol.events_received():
                if frame.opcode == Opcode.TEXT:
                    self._pending.append(frame.data.decode("utf-8"))
                elif frame.opcode == Opcode.BINARY:
                    self._pending.append(bytes(frame.data))
                elif frame.opcode == Opcode.CLOSE:
                    self._flush()
                    raise _Closed
            self._flush()  # pongs and close replies
        return self._pending.popleft()

    def send_json(self, message: dict[str, Any]) -> None:
        self.protocol.send_text(json.dumps(message).encode("utf-8"))
        self._flush()

    def send_binary(self, data: bytes) -> None:
        self.protocol.send_binary(data)
        self._flush()

    def close(self) -> None:
        """A clean close (1000)."""
        try:
            self.protocol.send_close(1000)
            self._flush()
        except OSError:
            pass

    def drop(self) -> None:
        """Cut the TCP connection without a close frame (a dropped socket)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)


def _raw_request(handler: Any) -> bytes:
    heads = "".join(f"{name}: {value}\r\n" for name, value in handler.headers.items())
    return handler.raw_requestline + heads.encode("latin-1") + b"\r\n"


def _refuse(
    handler: Any, rec: Recorded, status: int, code: str, message: str, retry_after: str | None = None
) -> None:
    body = json.dumps({"request_id": str(uuid.uuid4()), "code": code, "message": message}).encode()
    rec.status = status
    handler.protocol_version = "HTTP/1.1"  # a WebSocket client reads only HTTP/1.1 answers
    handler.send_response(status)
    if retry_after is not None:
        handler.send_header("Retry-After", retry_after)
    handler.send_header("Connection", "close")
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def serve_websocket(handler: Any) -> None:
    """Serve one WebSocket request the HTTP handler received (see the module docstring)."""
    fake: FakeProviders = handler.fake
    handler.close_connection = True
    parts = urlsplit(handler.path)
    endpoint = {"/api-ws/v1/inference": "cosyvoice.ws", "/api-ws/v1/realtime": "qwen.realtime"}.get(
        parts.path, "unknown"
    )
    rec = Recorded(
        endpoint=endpoint,
        method="GET",
        path=parts.path,
        query=dict(parse_qsl(parts.query)),
        headers=dict(handler.headers.items()),
        body=b"",
    )
    with fake._lock:
        fake.requests.append(rec)
        queue = fake.faults.get(endpoint)
        fault = queue.popleft() if queue else None
    rec.fault = fault.kind if fault else None
    if endpoint == "unknown":
        _refuse(handler, rec, 404, "NotFound", f"no WebSocket service at {parts.path}")
        return
    if fault is not None and fault.kind == "http":
        code, message = str(fault.code or "InternalError"), fault.message or "injected"
        _refuse(handler, rec, fault.status, code, message, fault.retry_after)
        return
    scheme, _, token = (handler.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or token != fake.keys["dashscope"]:  # the scheme is case-insensitive
        _refuse(handler, rec, 401, "InvalidApiKey", "Invalid API-key provided.")
        return
    handler.wfile.flush()
    peer = Peer(handler.connection, _raw_request(handler))
    rec.status = 101
    session = _cosyvoice if endpoint == "cosyvoice.ws" else _qwen_realtime
    try:
        session(peer, rec, fake, fault)
    except _Closed:
        pass
    except Exception:
        import traceback

        fake.errors.append(traceback.format_exc())


def _received(peer: Peer, rec: Recorded) -> Any:
    message = peer.recv()
    try:
        decoded: Any = json.loads(message) if isinstance(message, str) else message
    except ValueError:
        decoded = message
    rec.messages.append(decoded)
    return decoded


def _stream(
    peer: Peer, fake: FakeProviders, fault: Fault | None, pcm: bytes, send_chunk: Any, fail: Any
) -> bool:
    """Send ``pcm`` in frames with ``send_chunk``, applying the fault; False when the fault ended the stream."""
    chunks = [pcm[i : i + CHUNK_BYTES] for i in range(0, len(pcm), CHUNK_BYTES)]
    for i, chunk in enumerate(chunks):
        if i == 0 and fault is not None and fault.kind == "delay":
            fake._stopping.wait(fault.seconds)
        send_chunk(chunk)
        if i == 0 and fault is not None and fault.kind == "drop":
            peer.drop()
            return False
        if i == 0 and fault is not None and fault.kind == "error":
            fail(str(fault.code), fault.message or f"injected error {fault.code}")
            return False
    return True


# --------------------------------------------------------------------------------------------- CosyVoice


def _task_event(
    task_id: str, event: str, payload: dict[str, Any] | None = None, **header: Any
) -> dict[str, Any]:
    return {
        "header": {"task_id": task_id, "event": event, "attributes": {}, **header},
        "payload": payload or {},
    }


def _cosy_problem(message: Any, fake: FakeProviders) -> str | None:
    """What is wrong with a run-task message (None when it is right)."""
    if not isinstance(message, dict) or set(message) != {"header", "payload"}:
        return "a run-task message is {header, payload}"
    header, payload = message["header"], message["payload"]
    if (
        not isinstance(header, dict)
        or header.get("action") != "run-task"
        or header.get("streaming") != "duplex"
    ):
        return "header must be {action: run-task, task_id, streaming: duplex}"
    if not isinstance(header.get("task_id"), str) or not header["task_id"]:
        return "header.task_id is required"
    if not isinstance(payload, dict):
        return "payload must be an object"
    fixed = {"task_group": "audio", "task": "tts", "function": "SpeechSynthesizer"}
    if any(payload.get(k) != v for k, v in fixed.items()) or payload.get("input") != {}:
        return "payload must hold task_group audio, task tts, function SpeechSynthesizer, input {}"
    params = payload.get("parameters")
    if not isinstance(params, dict) or set(params) - COSY_PARAMETERS:
        return f"parameters: unknown fields {sorted(set(params or {}) - COSY_PARAMETERS)}"
    if params.get("text_type") != "PlainText" or not params.get("voice"):
        return "parameters need text_type PlainText and voice"
    if params.get("format", "mp3") not in ("pcm", "wav", "mp3", "opus"):
        return f"format {params.get('format')!r} is not supported"
    if params.get("format") not in ("pcm", "wav"):
        return "this fake makes pcm and wav only"
    if params.get("sample_rate", 22050) not in COSY_RATES:
        return f"sample_rate {params.get('sample_rate')} is not supported"
    record = fake.store["cosyvoice"].get(params["voice"])
    if record is None:
        return f"The voice {params['voice']} does not exist."
    if record["status"] != "OK":
        return f"The voice is not ready (status {record['status']})."
    if payload.get("model") != record["target_model"]:
        return f"The voice was created for {record['target_model']}, not {payload.get('model')}."
    return None


def _cosyvoice(peer: Peer, rec: Recorded, fake: FakeProviders, fault: Fault | None) -> None:
    start = _received(peer, rec)
    task_id = (
        start["header"]["task_id"]
        if isinstance(start, dict) and isinstance(start.get("header"), dict)
        else ""
    )
    with fake._lock:
        problem = _cosy_problem(start, fake)
    if problem:
        failed = _task_event(
            str(task_id), "task-failed", error_code="InvalidParameter", error_message=problem
        )
        peer.send_json(failed)
        peer.close()
        return
    params = start["payload"]["parameters"]
    rate, fmt = int(params.get("sample_rate", 22050)), params.get("format")
    peer.send_json(_task_event(task_id, "task-started"))
    texts: list[str] = []
    while True:
        message = _received(peer, rec)
        header = message.get("header") if isinstance(message, dict) else None
        action = header.get("action") if isinstance(header, dict) else None
        if not isinstance(header, dict) or header.get("task_id") != task_id:
            peer.send_json(
                _task_event(
                    task_id, "task-failed", error_code="InvalidParameter", error_message="task_id mismatch"
                )
            )
            peer.close()
            return
        if action == "continue-task":
            text = (message.get("payload") or {}).get("input", {}).get("text")
            if not isinstance(text, str) or not text:
                peer.send_json(
                    _task_event(
                        task_id,
                        "task-failed",
                        error_code="InvalidParameter",
                        error_message="input.text is required",
                    )
                )
                peer.close()
                return
            texts.append(text)
        elif action == "finish-task":
            break
    text = "".join(texts)
    pcm = speech_pcm(text, rate)
    if fmt == "wav":
        from pipeline.enroll.providers.speech import wav_header

        pcm = wav_header(len(pcm), rate) + pcm
    sentence = {"sentence": {"index": 0, "words": []}}
    peer.send_json(
        _task_event(
            task_id,
            "result-generated",
            {"output": {**sentence, "type": "sentence-begin", "original_text": text}},
        )
    )

    def send_chunk(chunk: bytes) -> None:
        peer.send_json(
            _task_event(task_id, "result-generated", {"output": {**sentence, "type": "sentence-synthesis"}})
        )
        peer.send_binary(chunk)

    def fail(code: str, message: str) -> None:
        peer.send_json(_task_event(task_id, "task-failed", error_code=code, error_message=message))
        peer.close()

    if _stream(peer, fake, fault, pcm, send_chunk, fail):
        peer.send_json(
            _task_event(task_id, "result-generated", {"output": {**sentence, "type": "sentence-end"}})
        )
        peer.send_json(
            _task_event(task_id, "task-finished", {"output": {}, "usage": {"characters": len(text)}})
        )
        peer.close()


# --------------------------------------------------------------------------------------------- Qwen realtime


def _qwen_realtime(peer: Peer, rec: Recorded, fake: FakeProviders, fault: Fault | None) -> None:
    model = rec.query.get("model", "")
    session_id = f"sess_{uuid.uuid4().hex[:12]}"

    def event(kind: str, **fields: Any) -> None:
        peer.send_json({"event_id": f"event_{uuid.uuid4().hex[:12]}", "type": kind, **fields})

    def error(code: str, message: str) -> None:
        event("error", error={"type": "invalid_request_error", "code": code, "message": message})

    if model not in QWEN_MODELS or "-realtime" not in model:
        error("invalid_value", f"Model not found or not a realtime model: {model!r}")
        peer.close()
        return
    config = {"voice": "Cherry", "mode": "server_commit", "response_format": "pcm", "sample_rate": 24000}
    event(
        "session.created", session={"object": "realtime.session", "model": model, "id": session_id, **config}
    )
    buffer: list[str] = []
    while True:
        message = _received(peer, rec)
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "session.update":
            update = message.get("session")
            if not isinstance(update, dict) or set(update) - QWEN_SESSION:
                error("invalid_value", f"session: unknown fields {sorted(set(update or {}) - QWEN_SESSION)}")
                continue
            with fake._lock:
                voice = fake.store["qwen"].get(update.get("voice", config["voice"]))
            if voice is None or voice["target_model"] != model:
                error("invalid_value", f"voice {update.get('voice')!r} does not exist for {model}")
                continue
            if update.get("response_format", "pcm") != "pcm" or update.get("mode", "server_commit") not in (
                "commit",
                "server_commit",
            ):
                error("invalid_value", "response_format must be pcm and mode commit or server_commit")
                continue
            config.update(update)
            event("session.updated", session={"id": session_id, **config})
        elif kind == "input_text_buffer.append":
            buffer.append(str(message.get("text") or ""))
        elif kind == "input_text_buffer.commit" or (kind == "session.finish" and buffer):
            text, buffer = "".join(buffer), []
            if kind == "input_text_buffer.commit":
                event("input_text_buffer.committed", item_id=f"item_{uuid.uuid4().hex[:8]}")
            response_id = f"resp_{uuid.uuid4().hex[:12]}"
            event("response.created", response={"id": response_id, "status": "in_progress"})

            def send_chunk(chunk: bytes, response_id: str = response_id) -> None:
                event("response.audio.delta", response_id=response_id, delta=base64.b64encode(chunk).decode())

            def fail(code: str, message: str) -> None:
                error(code, message)
                peer.close()

            if not _stream(peer, fake, fault, speech_pcm(text, int(config["sample_rate"])), send_chunk, fail):
                return
            event("response.audio.done", response_id=response_id)
            event(
                "response.done",
                response={"id": response_id, "status": "completed", "usage": {"characters": len(text)}},
            )
            if kind == "session.finish":
                event("session.finished")
                peer.close()
                return
        elif kind == "session.finish":
            event("session.finished")
            peer.close()
            return
        else:
            error("invalid_value", f"unknown event type {kind!r}")
