"""ElevenLabs Instant Voice Cloning client (optional fourth family): create, list, query, delete, preview.

``POST {base}/v1/voices/add`` (multipart: ``name``, ``files``, optional ``remove_background_noise``,
``description``, ``labels``) returns ``{"voice_id", "requires_verification"}``. The key goes in the
``xi-api-key`` header and comes only from ``ELEVENLABS_API_KEY``. The service assigns the voice id, so a
create is not idempotent: a lost answer raises :class:`OutcomeUnknown`, and :meth:`find_voice` looks for a
cloned voice with the record's name.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import requests

from pipeline.enroll.providers.base import ProviderError, VoiceRecord
from pipeline.enroll.providers.common import VoiceProvider, created_since, newest
from pipeline.enroll.providers.http import (
    LOGGER_NAME,
    audio_mime,
    elided,
    error_text,
    json_or_none,
    requiring,
    status_error,
    unreadable,
)
from pipeline.enroll.providers.speech import SPEECH_SAMPLE_RATE, Speech

log = logging.getLogger(LOGGER_NAME)


# detail.status: (reason, retryable)
ELEVENLABS_STATUSES: dict[str, tuple[str, bool]] = {
    "invalid_api_key": ("provider_auth", False),
    "missing_permissions": ("provider_access", False),
    "quota_exceeded": ("provider_balance", False),
    "voice_limit_reached": ("provider_quota", False),
    "too_many_concurrent_requests": ("provider_rate_limited", True),
    "system_busy": ("provider_unavailable", True),
    "corrupted_file": ("provider_rejected", False),
    "duplicate_files": ("provider_rejected", False),
    "invalid_file": ("provider_rejected", False),
}


def _detail(body: Any) -> tuple[str | None, str | None]:
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        return detail.get("status"), detail.get("message")
    if isinstance(detail, list) and detail:  # validation errors (422)
        first = detail[0]
        if isinstance(first, dict):
            return "validation_error", str(first.get("msg") or first)
    if isinstance(detail, str):
        return None, detail
    return None, None


def _interpret(response: requests.Response, maybe_acted: bool) -> Any:
    status = response.status_code
    body = json_or_none(response)
    if 200 <= status < 300:
        if body is None and response.content:
            raise unreadable("the answer was not readable JSON", status)
        return body if body is not None else {}
    code, message = _detail(body)
    text = error_text(status, code, message)
    raise status_error(status, text, code=code, known=ELEVENLABS_STATUSES.get(code or ""))


def _request_id_of(response: requests.Response) -> str | None:
    return response.headers.get("request-id") or response.headers.get("x-trace-id")


class ElevenLabsClient(VoiceProvider):
    """ElevenLabs Instant Voice Cloning (``provider = "elevenlabs"``)."""

    provider = "elevenlabs"
    hosts: ClassVar[Mapping[str, str]] = {
        "intl": "https://api.elevenlabs.io",
        "cn": "https://api.elevenlabs.io",
    }  # one host everywhere
    host_patterns: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "intl": ("api.elevenlabs.io",),
        "cn": ("api.elevenlabs.io",),
    }
    other_hosts = (  # checked against the vendor's docs: docs/providers.md "Allowed hosts"
        "api.us.elevenlabs.io",
        "api.eu.residency.elevenlabs.io",
        "api.in.residency.elevenlabs.io",
        "api.sg.residency.elevenlabs.io",
    )
    key_env = "ELEVENLABS_API_KEY"
    base_url_envs = ("ELEVENLABS_BASE_URL",)
    """Sources: ElevenLabs API reference "Servers" list and its *Data residency* guide (EU and India
    isolated environments, each with its own API key)."""
    default_family = "elevenlabs"
    auth_header = "xi-api-key"
    auth_scheme = None
    _interpret = staticmethod(_interpret)
    _request_id_of = staticmethod(_request_id_of)

    def __init__(self, *, remove_background_noise: bool = False, **kwargs: Any) -> None:
        """``remove_background_noise`` goes to voices/add (off: it can hurt clean audio). Other keywords:
        see :class:`~pipeline.enroll.providers.common.VoiceProvider`."""
        self.remove_background_noise = remove_background_noise
        super().__init__(**kwargs)

    def _form(self, record: VoiceRecord) -> dict[str, str]:
        sha = record.clip_sha256 or ""
        labels = {"voiceprep_sha256": sha[:16], "target_model": record.target_model}
        return {
            "name": record.name or "",
            "remove_background_noise": "true" if self.remove_background_noise else "false",
            "description": f"voiceprep clip {sha[:12]}",
            "labels": json.dumps(labels, sort_keys=True),
        }

    def prepare_create(
        self, record: VoiceRecord, *, preview_text: str | None = None, language: str | None = None
    ) -> list[dict[str, Any]]:
        """The voices/add request (secrets and audio elided); sends nothing."""
        content = self.validate(record)
        path = Path(record.clip_path or "")
        files = f"{path.name} ({audio_mime(path)}) " + elided(len(content))
        body = {**self._form(record), "files": files}
        return [self.show("POST", "v1/voices/add", body, audio_bytes=len(content))]

    def create_voice(
        self,
        record: VoiceRecord,
        *,
        preview_text: str | None = None,
        language: str | None = None,
        on_send: Callable[[], object] | None = None,
    ) -> VoiceRecord:
        """Create the voice once; a lost answer raises :class:`OutcomeUnknown`."""
        content = self.validate(record)
        path = Path(record.clip_path or "")
        data, request_id = self.request(
            "POST",
            "v1/voices/add",
            action="elevenlabs voices/add",
            data=self._form(record),
            files={"files": (path.name, content, audio_mime(path))},
            idempotent=False,
            interpret=requiring(_interpret, "voice_id"),
            on_send=on_send,
        )
        if data.get("requires_verification"):
            log.warning(f"elevenlabs: voice {data['voice_id']} requires verification before use")
        ids = [request_id] if request_id else []
        return dataclasses.replace(record, voice_id=str(data["voice_id"]), status="ready", request_ids=ids)

    def _item(self, item: Mapping[str, Any]) -> VoiceRecord:
        created = item.get("created_at_unix")
        if isinstance(created, int | float):
            created = dt.datetime.fromtimestamp(created, dt.UTC).isoformat()
        return self._remote(
            str(item.get("voice_id")),
            created_at=created if isinstance(created, str) else None,
            name=item.get("name"),
        )

    def list_voices(self) -> list[VoiceRecord]:
        """The account's cloned voices (``category == "cloned"``)."""
        data, _ = self.request("GET", "v1/voices", action="elevenlabs list voices")
        voices = data.get("voices") if isinstance(data, dict) else None
        return [
            self._item(v)
            for v in voices or []
            if isinstance(v, dict) and v.get("voice_id") and v.get("category", "cloned") == "cloned"
        ]

    def query_voice(self, voice_id: str) -> VoiceRecord | None:
        """The voice, or None when it does not exist."""
        try:
            data, _ = self.request(
                "GET", f"v1/voices/{urllib.parse.quote(voice_id, safe='')}", action="elevenlabs get voice"
            )
        except ProviderError as err:
            if self._absent(err):
                return None
            raise
        return self._item(data)

    def find_voice(self, record: VoiceRecord, *, since: str | None = None) -> VoiceRecord | None:
        """A cloned voice named ``record.name`` created at or after ``since`` (the newest)."""
        return newest(
            v for v in self.list_voices() if v.name == record.name and created_since(v.created_at, since)
        )

    def delete_voice(self, voice_id: str) -> None:
        """Delete the voice; a voice that is already gone is not an error."""
        path = f"v1/voices/{urllib.parse.quote(voice_id, safe='')}"
        self._delete(lambda: self.request("DELETE", path, action="elevenlabs delete voice"), voice_id)

    def speech_language_not_sent(self, language: str | None) -> str | None:
        """See :meth:`VoiceProvider.speech_language_not_sent`: ``language_code`` is never sent."""
        return _no_language_code(self.family, language)

    def speak(
        self,
        voice_id: str,
        *,
        target_model: str,
        text: str,
        sample_rate: int = SPEECH_SAMPLE_RATE,
        language: str | None = None,
    ) -> Speech:
        """Stream speech (``POST /v1/text-to-speech/{voice_id}/stream?output_format=pcm_<rate>``): raw 16-bit
        PCM as it is made. ``language`` is not sent (:meth:`speech_language_not_sent`)."""
        action = "elevenlabs speak"
        response, request_id = self.request(
            "POST",
            f"v1/text-to-speech/{urllib.parse.quote(voice_id, safe='')}/stream",
            action=action,
            json={"text": text, "model_id": target_model},
            params={"output_format": f"pcm_{sample_rate}"},
            stream=True,
            interpret=_stream_interpret,
            request_id_of=_request_id_of,
        )
        return Speech(
            _pcm_pieces(response, action),
            sample_rate=sample_rate,
            request_id=request_id,
            close=response.close,
        )


def _no_language_code(family: str, language: str | None) -> str | None:
    if not language or language.lower() == "auto":
        return None
    return (
        f"language {language} not sent: {family} takes language_code only on some models and refuses "
        "the request on the others, so voiceprep leaves it out (the model reads the language from the text)"
    )


def _stream_interpret(response: requests.Response, maybe_acted: bool) -> requests.Response:
    """A 200 is returned open (the audio is read as it comes); an error answer is read and raised."""
    if response.status_code == 200:
        return response
    _interpret(response, maybe_acted)
    raise status_error(response.status_code, f"elevenlabs answered HTTP {response.status_code}")


def _pcm_pieces(response: requests.Response, action: str) -> Iterator[bytes]:
    try:
        yield from response.iter_content(chunk_size=4800)
    except requests.exceptions.RequestException as exc:
        raise ProviderError(
            "provider_unavailable", f"{action}: the stream broke ({type(exc).__name__})", retryable=True
        ) from None
