"""MiniMax voice cloning client: upload (``purpose=voice_clone``), clone, list (``get_voice``), delete.

MiniMax answers most errors with HTTP 200 and a non-zero ``base_resp.status_code``; those are mapped to
reason codes here, and the ones that mean "later" (1000, 1001, 1002, 1033, 1039, 1041, 2045) are retried.
A clone that no real synthesis uses within 7 days is deleted by MiniMax: the record's ``details`` carry
``expires_unless_used_by``.

The client chooses the voice id (the record's ``name``, derived from the enrollment key by the caller), so
a clone is safe to re-send: if an earlier attempt whose answer was lost did create the voice, the retry is
answered 2039 (duplicate id) and counts as success, with no second voice. A 2039 on the first attempt means
the id existed before this call: if the account lists it, it is this clip's voice from an earlier run and
is returned; otherwise the id was used and deleted (MiniMax never reuses ids) and the create fails.

Previews come from the clone call itself (``text`` + ``model`` → ``demo_audio`` URL) when this client made
the voice with a preview text; any other voice (one created earlier) is heard through :meth:`speak`, a T2A
synthesis (``POST /v1/t2a_v2``, streamed as server-sent events of hex PCM): a real synthesis, which bills
the clone fee on a voice's first use and is what keeps a voice from being deleted after 7 days unused.
The key comes only from ``MINIMAX_API_KEY``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import requests

from pipeline.enroll.providers.base import ProviderError, VoiceRecord
from pipeline.enroll.providers.common import VoiceProvider
from pipeline.enroll.providers.http import (
    LOGGER_NAME,
    audio_mime,
    elided,
    json_or_none,
    requiring,
    status_error,
    unreadable,
)
from pipeline.enroll.providers.speech import SPEECH_SAMPLE_RATE, Speech, pcm_chunks

log = logging.getLogger(LOGGER_NAME)

UPLOAD_PATH = "v1/files/upload"
CLONE_PATH = "v1/voice_clone"
GET_VOICE_PATH = "v1/get_voice"
DELETE_VOICE_PATH = "v1/delete_voice"
T2A_PATH = "v1/t2a_v2"
VOICE_TYPE = "voice_cloning"

# code: (reason, retryable, meaning)
MINIMAX_CODES: dict[int, tuple[str, bool, str]] = {
    1000: ("provider_unavailable", True, "unknown error"),
    1001: ("provider_unavailable", True, "timeout"),
    1002: ("provider_rate_limited", True, "rate limit"),
    1004: ("provider_auth", False, "authentication failed"),
    1008: ("provider_balance", False, "insufficient balance"),
    1026: ("provider_rejected", False, "sensitive input"),
    1033: ("provider_unavailable", True, "system error"),
    1039: ("provider_rate_limited", True, "token limit"),
    1043: ("provider_rejected", False, "transcript check failed"),
    2013: ("provider_bad_request", False, "invalid parameters"),
    20132: ("provider_rejected", False, "invalid samples or voice id"),
    2037: ("provider_rejected", False, "audio duration out of range"),
    2038: ("provider_access", False, "voice cloning is not enabled for this account"),
    2039: ("provider_bad_request", False, "voice id already exists"),
    2042: ("provider_access", False, "no access to this voice"),
    2049: ("provider_auth", False, "invalid API key"),
    1041: ("provider_rate_limited", True, "connection limit (too many concurrent requests)"),
    2045: ("provider_rate_limited", True, "rate growth limit (requests rose too fast; steady the pace)"),
    2048: ("provider_bad_request", False, "prompt audio too long (the clone prompt audio must be under 8 s)"),
    2056: ("provider_quota", False, "usage limit exceeded (wait for the next 5-hour window)"),
}
"""Sources: MiniMax "Error Codes" (https://platform.minimax.io/docs/api-reference/errorcode): 1041 conn
limit, 2045 rate growth limit ("avoid sudden increases"), 2048 prompt audio too long (< 8 s), 2056 usage
limit exceeded ("wait for the resource release in the next 5-hour window"); the retryable ones are retried
with the usual backoff."""
UNUSED_EXPIRY_DAYS = 7
"""MiniMax deletes a cloned voice that no real synthesis (a preview does not count) used within 7 days."""
DUPLICATE_CODE = 2039

LANGUAGE_BOOST = {
    "auto": "auto",
    "zh": "Chinese",
    "yue": "Chinese,Yue",
    "zh-hk": "Chinese,Yue",
    "en": "English",
    "ar": "Arabic",
    "ru": "Russian",
    "es": "Spanish",
    "fr": "French",
    "pt": "Portuguese",
    "de": "German",
    "tr": "Turkish",
    "nl": "Dutch",
    "uk": "Ukrainian",
    "vi": "Vietnamese",
    "id": "Indonesian",
    "ja": "Japanese",
    "it": "Italian",
    "ko": "Korean",
    "th": "Thai",
    "pl": "Polish",
    "ro": "Romanian",
    "el": "Greek",
    "cs": "Czech",
    "fi": "Finnish",
    "hi": "Hindi",
    "bg": "Bulgarian",
    "da": "Danish",
    "he": "Hebrew",
    "ms": "Malay",
    "fa": "Persian",
    "sk": "Slovak",
    "sv": "Swedish",
    "hr": "Croatian",
    "fil": "Filipino",
    "hu": "Hungarian",
    "no": "Norwegian",
    "nb": "Norwegian",
    "sl": "Slovenian",
    "ca": "Catalan",
    "nn": "Nynorsk",
    "ta": "Tamil",
    "af": "Afrikaans",
}
"""Language code -> ``language_boost`` value (the voice_clone API's documented enum: ``auto``,
``Chinese``, ``Chinese,Yue``, ``English``...). A code outside it is not sent (logged)."""


def language_boost(language: str | None) -> str | None:
    """The ``language_boost`` value for a language code (``en`` -> ``English``, ``zh-HK`` ->
    ``Chinese,Yue``), or None (no language, or one MiniMax does not list)."""
    if not language:
        return None
    code = language.lower().replace("_", "-")
    boost = LANGUAGE_BOOST.get(code) or LANGUAGE_BOOST.get(code.split("-")[0])
    if boost is None:
        log.warning(f"minimax: language {language!r} is not one language_boost lists; not sent")
    return boost


def minimax_error(code: int, message: str | None, *, http_status: int | None = None) -> ProviderError:
    """Map a non-zero ``base_resp.status_code`` to a :class:`ProviderError`."""
    reason, retryable, meaning = MINIMAX_CODES.get(code, ("provider_bad_request", False, "error"))
    text = f"MiniMax {code} ({meaning})" + (f": {message}" if message else "")
    return ProviderError(reason, text, retryable=retryable, http_status=http_status, provider_code=str(code))


def _request_id_of(response: requests.Response) -> str | None:
    rid = response.headers.get("Trace-Id") or response.headers.get("trace-id")
    if rid:
        return rid
    body = json_or_none(response)
    if isinstance(body, dict) and body.get("trace_id"):
        return str(body["trace_id"])
    return None


def _base_resp(body: Any) -> tuple[int, str | None]:
    base = body.get("base_resp") if isinstance(body, dict) else None
    if not isinstance(base, dict):
        return 0, None
    try:
        code = int(base.get("status_code") or 0)
    except (TypeError, ValueError):
        code = 1000
    return code, base.get("status_msg")


def _interpret(response: requests.Response, maybe_acted: bool) -> dict[str, Any]:
    """Success: the JSON body. Failure (HTTP or ``base_resp``): a mapped :class:`ProviderError`."""
    status = response.status_code
    body = json_or_none(response)
    code, message = _base_resp(body)
    if code in MINIMAX_CODES or (status == 200 and code):
        raise minimax_error(code, message, http_status=status)
    if status != 200:
        raise status_error(status, f"MiniMax answered HTTP {status}" + (f": {message}" if message else ""))
    if not isinstance(body, dict):
        raise unreadable("the answer was not readable JSON", status)
    return body


def _clone_interpret(response: requests.Response, maybe_acted: bool) -> dict[str, Any]:
    """2039 (duplicate id) becomes ``{"_duplicate": "ours"}`` when an earlier attempt may have made the voice,
    ``{"_duplicate": "before"}`` when the id existed before this call."""
    try:
        return _interpret(response, maybe_acted)
    except ProviderError as err:
        if err.provider_code == str(DUPLICATE_CODE):
            return {"_duplicate": "ours" if maybe_acted else "before"}
        raise


class MiniMaxClient(VoiceProvider):
    """MiniMax voice cloning (``provider = "minimax"``); see the module docstring."""

    provider = "minimax"
    hosts: ClassVar[Mapping[str, str]] = {"intl": "https://api.minimax.io", "cn": "https://api.minimaxi.com"}
    host_patterns: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "intl": ("api.minimax.io",),
        "cn": ("api.minimaxi.com",),
    }
    key_env = "MINIMAX_API_KEY"
    base_url_envs = ("MINIMAX_BASE_URL",)
    """Sources: MiniMax platform docs (global and mainland hosts)."""
    default_family = "minimax"
    _interpret = staticmethod(_interpret)
    _request_id_of = staticmethod(_request_id_of)

    def __init__(
        self,
        *,
        need_noise_reduction: bool | None = None,
        need_volume_normalization: bool | None = None,
        **kwargs: Any,
    ) -> None:
        """``need_noise_reduction``/``need_volume_normalization`` go to the clone call when set. Other
        keywords (``family``, ``base_url``, ``target_models``, ``max_bytes``, ``runtime``, ``require_key``):
        see :class:`~pipeline.enroll.providers.common.VoiceProvider`."""
        self.need_noise_reduction = need_noise_reduction
        self.need_volume_normalization = need_volume_normalization
        self._demo_audio: dict[str, str] = {}
        super().__init__(**kwargs)

    @staticmethod
    def _normalise_base_url(base_url: str) -> str:
        """MiniMax paths start with ``v1/``: a base URL given with ``/v1`` loses it."""
        return base_url[: -len("/v1")] if base_url.endswith("/v1") else base_url

    def language_not_sent(self, language: str | None) -> str | None:
        """See :meth:`VoiceProvider.language_not_sent` (``language_boost``: :data:`LANGUAGE_BOOST`)."""
        if not language or language.lower() == "auto":
            return None
        code = language.lower().replace("_", "-")
        if LANGUAGE_BOOST.get(code) or LANGUAGE_BOOST.get(code.split("-")[0]):
            return None
        return (
            f"language {language} not sent: minimax language_boost lists no such language "
            f"({len(LANGUAGE_BOOST)} codes, e.g. en, zh, es); the service detects the language itself"
        )

    def speech_language_not_sent(self, language: str | None) -> str | None:
        """See :meth:`VoiceProvider.speech_language_not_sent`: T2A takes the same ``language_boost``."""
        return self.language_not_sent(language)

    def _clone_body(
        self, record: VoiceRecord, file_id: Any, preview_text: str | None, language: str | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"file_id": file_id, "voice_id": record.name}
        if self.need_noise_reduction is not None:
            body["need_noise_reduction"] = self.need_noise_reduction
        if self.need_volume_normalization is not None:
            body["need_volume_normalization"] = self.need_volume_normalization
        if preview_text:
            body["text"] = preview_text
            body["model"] = record.target_model
        boost = language_boost(language)
        if boost:
            body["language_boost"] = boost
        return body

    # --- VoiceProvider ------------------------------------------------------------------------------
    def prepare_create(
        self, record: VoiceRecord, *, preview_text: str | None = None, language: str | None = None
    ) -> list[dict[str, Any]]:
        """The upload and clone requests (secrets and audio elided); sends nothing."""
        content = self.validate(record)
        path = Path(record.clip_path or "")
        file = f"{path.name} ({audio_mime(path)}) " + elided(len(content))
        return [
            self.show(
                "POST", UPLOAD_PATH, {"purpose": "voice_clone", "file": file}, audio_bytes=len(content)
            ),
            self.show(
                "POST",
                CLONE_PATH,
                self._clone_body(record, "<file_id from upload>", preview_text, language),
                headers={"Content-Type": "application/json"},
            ),
        ]

    def upload(self, path: Path) -> tuple[Any, str | None]:
        """Upload a clip with ``purpose=voice_clone``; return (file_id, request id)."""
        path = Path(path)
        data, request_id = self.request(
            "POST",
            UPLOAD_PATH,
            action="minimax upload",
            data={"purpose": "voice_clone"},
            files={"file": (path.name, path.read_bytes(), audio_mime(path))},
            interpret=requiring(_interpret, "file", "file_id"),
        )
        return data["file"]["file_id"], request_id

    def create_voice(
        self,
        record: VoiceRecord,
        *,
        preview_text: str | None = None,
        language: str | None = None,
        on_send: Callable[[], object] | None = None,
    ) -> VoiceRecord:
        """Upload and clone under ``record.name``; see the module docstring for 2039 handling. With
        ``preview_text`` the clone call also makes the preview :meth:`preview` then fetches.

        Raises :class:`OutcomeUnknown` only when the clone gave up after an attempt whose answer was lost.
        """
        self.validate(record)
        name = record.name or ""
        file_id, upload_id = self.upload(Path(record.clip_path or ""))
        data, request_id = self.request(
            "POST",
            CLONE_PATH,
            action="minimax voice_clone",
            json=self._clone_body(record, file_id, preview_text, language),
            idempotent=True,  # the id is ours: a duplicate is answered 2039, never made twice
            creates=True,
            interpret=_clone_interpret,
            on_send=on_send,
        )
        if data.get("_duplicate") == "before" and self.query_voice(name) is None:
            raise ProviderError(
                "provider_bad_request",
                f"voice id {name} was used before and is gone (MiniMax never reuses an id, even "
                "after deletion): submit under a new name",
                provider_code=str(DUPLICATE_CODE),
                request_id=request_id,
            )
        if data.get("demo_audio"):
            self._demo_audio[name] = str(data["demo_audio"])
        how = {"before": "already existed", "ours": "confirmed by a duplicate answer"}.get(
            data.get("_duplicate")
        )
        log.info(f"minimax: voice {name} ready (request id {request_id})" + (f", {how}" if how else ""))
        ids = [i for i in (upload_id, request_id) if i]
        made = dt.datetime.fromtimestamp(self.runtime.wall(), dt.UTC)
        expiry = (made + dt.timedelta(days=UNUSED_EXPIRY_DAYS)).isoformat(timespec="seconds")
        details = {"expires_unless_used_by": expiry} if how != "already existed" else {}
        return dataclasses.replace(record, voice_id=name, status="ready", request_ids=ids, details=details)

    def list_voices(self) -> list[VoiceRecord]:
        """Every cloned voice on the account (``get_voice`` with ``voice_type: voice_cloning``)."""
        data, _ = self.request(
            "POST", GET_VOICE_PATH, action="minimax get_voice", json={"voice_type": VOICE_TYPE}
        )
        items = data.get(VOICE_TYPE) or []
        if not isinstance(items, list):
            raise unreadable("get_voice: voice_cloning is not a list")
        return [
            self._remote(
                str(item["voice_id"]), created_at=item.get("created_time"), name=str(item["voice_id"])
            )
            for item in items
            if isinstance(item, dict) and item.get("voice_id")
        ]

    def find_voice(self, record: VoiceRecord, *, since: str | None = None) -> VoiceRecord | None:
        """The voice with id ``record.name`` (ids are unique, so ``since`` is not needed)."""
        return self.query_voice(record.name or "")

    def delete_voice(self, voice_id: str) -> None:
        """Delete the voice; a voice that is already gone is not an error."""
        body = {"voice_type": VOICE_TYPE, "voice_id": voice_id}
        self._delete(
            lambda: self.request("POST", DELETE_VOICE_PATH, action="minimax delete_voice", json=body),
            voice_id,
        )

    def preview(self, voice_id: str, *, target_model: str, text: str) -> bytes:
        """The clone call's ``demo_audio`` for a voice this client created with ``preview_text`` (free);
        for any other voice a T2A synthesis (:meth:`speak`), as a WAV file."""
        url = self._demo_audio.get(voice_id)
        if url:
            return self.download(url)
        return super().preview(voice_id, target_model=target_model, text=text)

    def speak(
        self,
        voice_id: str,
        *,
        target_model: str,
        text: str,
        sample_rate: int = SPEECH_SAMPLE_RATE,
        language: str | None = None,
    ) -> Speech:
        """T2A v2 (``POST /v1/t2a_v2``, ``stream: true``): the audio arrives as server-sent events, each
        ``data.audio`` hex PCM (``data.status`` 1), the last ``data.status`` 2; a stream that ends without
        that last event, or carries a non-zero ``base_resp``, was cut short."""
        body = {
            "model": target_model,
            "text": text,
            "stream": True,
            "stream_options": {"exclude_aggregated_audio": True},
            "voice_setting": {"voice_id": voice_id, "speed": 1, "vol": 1, "pitch": 0},
            "audio_setting": {"sample_rate": sample_rate, "format": "pcm", "channel": 1},
            "output_format": "hex",
        }
        boost = language_boost(language) if language and language.lower() != "auto" else None
        if boost:
            body["language_boost"] = boost
        answer, trace = self.request(
            "POST",
            T2A_PATH,
            action="minimax t2a",
            json=body,
            stream=True,
            interpret=_t2a_interpret,
            request_id_of=lambda r: r.headers.get("Trace-Id") or r.headers.get("trace-id"),
        )
        if isinstance(answer, bytes):  # a whole answer (the service did not stream)
            return Speech(pcm_chunks(answer), sample_rate=sample_rate, request_id=trace)
        return Speech(self._events(answer), sample_rate=sample_rate, request_id=trace, close=answer.close)

    def _events(self, response: requests.Response) -> Iterator[bytes]:
        action = "minimax t2a"
        try:
            for line in response.iter_lines():
                if not line.startswith(b"data:"):
                    continue  # blank separators, comments, other SSE fields
                try:
                    event = json.loads(line[len(b"data:") :])
                except ValueError:
                    raise unreadable(f"{action}: an unreadable event") from None
                code, message = _base_resp(event)
                if code:
                    err = minimax_error(code, message)
                    raise ProviderError(
                        err.reason, self.redact(f"{action}: {err.message}"), provider_code=err.provider_code
                    )
                data = event.get("data") if isinstance(event, dict) else None
                data = data if isinstance(data, dict) else {}
                if data.get("status") == 2:  # the last event (its audio, if any, is the whole again)
                    return
                yield _hex_audio(data.get("audio"), action)
        except requests.exceptions.RequestException as exc:
            raise ProviderError(
                "provider_unavailable", f"{action}: the stream broke ({type(exc).__name__})", retryable=True
            ) from None
        raise ProviderError(
            "provider_unavailable",
            f"{action}: the stream ended before its last event (status 2)",
            retryable=True,
        )


def _hex_audio(value: Any, action: str) -> bytes:
    try:
        return bytes.fromhex(str(value or ""))
    except ValueError:
        raise unreadable(f"{action}: data.audio is not hex") from None


def _t2a_interpret(response: requests.Response, maybe_acted: bool) -> requests.Response | bytes:
    """An event stream is returned open; anything else is read: an error (HTTP or ``base_resp``) raises, a
    whole JSON answer gives its audio."""
    if response.status_code == 200 and "event-stream" in response.headers.get("Content-Type", ""):
        return response
    body = _interpret(response, maybe_acted)  # reads the body; raises the mapped error
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    if not data.get("audio"):
        raise unreadable("t2a: the answer has no data.audio", response.status_code)
    return _hex_audio(data["audio"], "minimax t2a")
