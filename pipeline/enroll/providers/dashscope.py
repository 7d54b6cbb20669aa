"""Alibaba Cloud Model Studio (DashScope) clients: CosyVoice (``voice-enrollment``) and Qwen-TTS
(``qwen-voice-enrollment``).

Every enrollment action is ``POST {base}/services/audio/tts/customization`` with
``{"model": <enrollment model>, "input": {"action": ..., ...}}`` (see ``../shared/docs/providers.md``).

CosyVoice needs the clip at a URL the service can fetch. Three ways (``audio_source``):

- ``"oss"`` (default in region ``cn``): DashScope's temporary storage, documented for China (Beijing) only. ``GET {base}/uploads?action=getPolicy&model=<target
  model>`` returns a signed form policy; the clip is POSTed to ``upload_host`` (without our key: it is a
  different host) under ``<upload_dir>/<sha256>.<ext>``; the create call sends ``oss://<key>`` with
  ``X-DashScope-OssResourceResolve: enable``. Needs nothing from the user, the file stays with the provider
  and expires after 48 h.
- ``"url_template"``: the user's own public storage, e.g.
  ``https://bucket.example.com/voices/{clip_sha256}.wav`` (fields ``clip_sha256``, ``speaker``, ``family``,
  ``filename``). The user uploads the clip there first.
- ``"data_uri"`` (default elsewhere): inline ``data:audio/wav;base64,...`` in ``url`` (accepted per the
  current voice-cloning guide; not confirmed by a live call).

Qwen-TTS always sends the clip inline as a data URI.

Creates are not idempotent (no idempotency key): a lost answer raises :class:`OutcomeUnknown` and
:meth:`find_voice` tells whether the voice was made. The key comes only from the environment: the region's ``DASHSCOPE_<REGION>_API_KEY``, else
``DASHSCOPE_API_KEY`` (:mod:`~pipeline.enroll.providers.regions`).
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import requests

from pipeline.enroll.providers.base import ProviderError, VoiceRecord
from pipeline.enroll.providers.common import VoiceProvider, created_since, newest
from pipeline.enroll.providers.dashscope_ws import cosyvoice_speech, is_realtime_model, qwen_realtime_speech
from pipeline.enroll.providers.http import (
    LOGGER_NAME,
    Interpret,
    audio_mime,
    data_uri,
    data_uri_size,
    elided,
    error_text,
    json_or_none,
    requiring,
    shown_request,
    status_error,
    unreadable,
)
from pipeline.enroll.providers.speech import SPEECH_SAMPLE_RATE, Speech, pcm_chunks, pcm_from_wav
from pipeline.errors import InvalidArgument

log = logging.getLogger(LOGGER_NAME)

CUSTOMIZATION_PATH = "services/audio/tts/customization"
UPLOADS_PATH = "uploads"
MULTIMODAL_PATH = "services/aigc/multimodal-generation/generation"
OSS_RESOLVE_HEADER = "X-DashScope-OssResourceResolve"
TEMPLATE_FIELDS = ("clip_sha256", "speaker", "family", "filename", "sha256")
"""Fields of ``audio_url_template``; ``sha256`` is the old name of ``clip_sha256`` (kept for one release)."""
AUDIO_SOURCES = ("oss", "url_template", "data_uri")
DEFAULT_AUDIO_SOURCE = {"cn": "oss", "intl": "data_uri"}
"""How CosyVoice gets the clip when nothing is configured: DashScope's temporary upload (``oss://``) is
documented for China (Beijing) only; elsewhere the clip goes inline as a Base64 data URI in ``url``, which
the current voice-cloning guide accepts for CosyVoice (see docs/providers.md for what is confirmed)."""
COSYVOICE_LANGUAGES = ("zh", "en", "fr", "de", "ja", "ko", "ru")
"""``language_hints`` values voiceprep sends CosyVoice: the languages its clone API lists for the v3
models (v2: zh, en); the list's first item is the one used."""
QWEN_LANGUAGES = ("zh", "en", "de", "it", "pt", "es", "ja", "ko", "fr", "ru")
"""``language`` values of a Qwen-TTS create (the languages its voice cloning lists)."""
COSYVOICE_SPEAK_LANGUAGES = ("zh", "en", "fr", "de", "ja", "ko", "ru", "pt", "th", "id", "vi")
"""``language_hints`` of a CosyVoice synthesis (``run-task`` parameters; an array of which only the first
item is used): the values the *CosyVoice client events* reference lists."""
QWEN_LANGUAGE_TYPES = {
    "zh": "Chinese",
    "en": "English",
    "de": "German",
    "it": "Italian",
    "pt": "Portuguese",
    "es": "Spanish",
    "ja": "Japanese",
    "ko": "Korean",
    "fr": "French",
    "ru": "Russian",
}
"""Language code -> ``language_type`` of a Qwen-TTS synthesis (HTTP ``input.language_type``, realtime
``session.language_type``; default ``Auto``): the values the *Qwen-TTS Realtime client events* reference
lists."""
COSYVOICE_STATUS = {"DEPLOYING": "deploying", "OK": "ready", "UNDEPLOYED": "rejected"}

_QUOTA_RE = re.compile(r"(?i)quota|(?:voice|voices).{0,40}(?:exceed|limit|upper bound|maximum)")
_QWEN_ID_RE = re.compile(r"qwen-tts-vc-(.+?)-voice-")  # the documented id shape; only used for display


DASHSCOPE_CODES = (
    ("InvalidApiKey", ("provider_auth", False)),
    ("Arrearage", ("provider_balance", False)),
    ("AccessDenied", ("provider_access", False)),
    ("Forbidden", ("provider_access", False)),
    ("Throttling", ("provider_rate_limited", True)),
    ("InternalError", ("provider_unavailable", True)),
    ("ServiceUnavailable", ("provider_unavailable", True)),
    ("SystemError", ("provider_unavailable", True)),
    ("RequestTimeOut", ("provider_unavailable", True)),
    ("audio", ("provider_rejected", False)),
    ("DataInspectionFailed", ("provider_rejected", False)),
)
"""``(code prefix, (reason, retryable))``, any case; the first match wins, then a quota code or message,
then the HTTP status (:func:`~pipeline.enroll.providers.http.status_error`)."""


def dashscope_error(status: int, code: str | None, message: str | None) -> ProviderError:
    """Map a DashScope error answer (HTTP status, ``code``, ``message``) to a :class:`ProviderError`."""
    c = code or ""
    text = error_text(status, c, message)
    known = next((rule for prefix, rule in DASHSCOPE_CODES if c.lower().startswith(prefix.lower())), None)
    if known is None and (
        _QUOTA_RE.search(c) or (status == 400 and _QUOTA_RE.search(message or "") and "voice" in text.lower())
    ):
        known = ("provider_quota", False)
    return status_error(status, text, code=c or None, known=known)


def _request_id_of(response: requests.Response) -> str | None:
    body = json_or_none(response)
    if isinstance(body, dict) and body.get("request_id"):
        return str(body["request_id"])
    return response.headers.get("X-Request-Id") or response.headers.get("x-dashscope-request-id")


def _interpret(response: requests.Response, maybe_acted: bool) -> dict[str, Any]:
    """Success: the JSON body (a dict). Failure: a mapped :class:`ProviderError`."""
    status = response.status_code
    body = json_or_none(response)
    if status == 200:
        if not isinstance(body, dict):
            raise unreadable("the answer was not readable JSON", status)
        if body.get("code") and "output" not in body:
            raise dashscope_error(status, str(body.get("code")), body.get("message"))
        return body
    code = body.get("code") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    if message is None and response.text and not isinstance(body, dict):
        message = response.text  # whole: the client redacts it before cutting it (never cut a key in two)
    raise dashscope_error(status, str(code) if code else None, message)


def _output(data: Any) -> dict[str, Any]:
    output = data.get("output") if isinstance(data, dict) else None
    return output if isinstance(output, dict) else {}


class _DashScopeClient(VoiceProvider):
    """What CosyVoice and Qwen share: key, base URL, the customization endpoint, paging."""

    provider = "dashscope"
    hosts: ClassVar[Mapping[str, str]] = {
        "intl": "https://dashscope-intl.aliyuncs.com/api/v1",
        "cn": "https://dashscope.aliyuncs.com/api/v1",
    }
    host_patterns: ClassVar[
        Mapping[str, tuple[str, ...]]
    ] = {  # with the per-workspace hosts {workspace}.{region}.maas.aliyuncs.com
        "intl": ("dashscope-intl.aliyuncs.com", "*.ap-southeast-1.maas.aliyuncs.com"),
        "cn": ("dashscope.aliyuncs.com", "*.cn-beijing.maas.aliyuncs.com"),
    }
    other_hosts = ("*.maas.aliyuncs.com",)  # workspaces of DashScope's other regions
    key_env = "DASHSCOPE_API_KEY"
    base_url_envs = ("DASHSCOPE_BASE_URL", "DASHSCOPE_HTTP_BASE_URL")  # voiceprep's, then the SDK's
    """Sources: Alibaba Cloud Model Studio "Base URL overview" and "Voice cloning HTTP API reference"
    (hosts, workspace hosts, "API keys are region-specific")."""
    _interpret = staticmethod(_interpret)
    _request_id_of = staticmethod(_request_id_of)
    enrollment_model = ""

    def __init__(self, *, page_size: int = 100, **kwargs: Any) -> None:
        """``page_size`` is the list page size.
        Other keywords: see :class:`~pipeline.enroll.providers.common.VoiceProvider`."""
        self.page_size = page_size
        super().__init__(**kwargs)

    # --- validation -------------------------------------------------------------------------------
    def _inline(self, record: VoiceRecord, content: bytes, *, shown: bool = False) -> tuple[str, int]:
        """The clip as a base64 data URI (elided when ``shown``, for a dry run) and its length; raises
        ``too_large`` over ``max_bytes``."""
        path = Path(record.clip_path or "")
        mime = audio_mime(path)
        size = data_uri_size(len(content), mime)
        if self.max_bytes is not None and size > self.max_bytes:
            raise ProviderError(
                "too_large",
                f"{path.name} is {size} characters as a base64 data URI; {self.family} accepts at most "
                f"{self.max_bytes}",
            )
        head = f"data:{mime};base64,"
        return (head + elided(size - len(head), "base64") if shown else data_uri(content, mime)), size

    # --- requests ---------------------------------------------------------------------------------
    def _enroll(
        self,
        action: str,
        fields: Mapping[str, Any],
        *,
        idempotent: bool = True,
        headers: Mapping[str, str] | None = None,
        interpret: Interpret | None = None,
        on_send: Callable[[], object] | None = None,
    ) -> tuple[Any, str | None]:
        body = {"model": self.enrollment_model, "input": {"action": action, **fields}}
        return self.request(
            "POST",
            CUSTOMIZATION_PATH,
            action=f"{self.family} {action}",
            json=body,
            idempotent=idempotent,
            headers=headers,
            interpret=interpret,
            on_send=on_send,
        )

    def _prepared_enroll(
        self,
        action: str,
        fields: Mapping[str, Any],
        *,
        headers: Mapping[str, str] | None = None,
        **sizes: int,
    ) -> dict[str, Any]:
        """The enrollment call :meth:`_enroll` would send, as a dry run shows it."""
        body = {"model": self.enrollment_model, "input": {"action": action, **fields}}
        headers = {"Content-Type": "application/json", **(headers or {})}
        return self.show("POST", CUSTOMIZATION_PATH, body, headers=headers, **sizes)

    def _synthesise(self, path: str, body: Mapping[str, Any], action: str) -> bytes:
        """The audio a synthesis call makes: fetched from ``output.audio.url``, or inline base64 (a data URI
        or bare) in ``output.audio.data``."""
        interpret = requiring(_interpret, "output", "audio")
        data, _ = self.request("POST", path, action=action, json=body, interpret=interpret)
        audio = _output(data)["audio"]
        audio = audio if isinstance(audio, dict) else {}
        if audio.get("url"):
            return self.download(str(audio["url"]))
        if not audio.get("data"):
            raise ProviderError(
                "provider_unavailable", f"{action}: the answer has no output.audio url or data"
            )
        try:
            return base64.b64decode(str(audio["data"]).split(",", 1)[-1], validate=True)
        except ValueError:
            raise ProviderError(
                "provider_unavailable", f"{action}: output.audio.data is not base64"
            ) from None

    def _all_pages(self, action: str, fields: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every item of a paged list action (``voice_list``), page_index from 0 until a page comes back
        empty (or repeats the previous one, or ``total_count`` is reached). A short page does not end
        the list: the service may cap the page size below the one asked for (no maximum is documented)."""
        items: list[dict[str, Any]] = []
        previous: list[Any] | None = None
        for page_index in range(10_000):
            data, _ = self._enroll(action, {**fields, "page_index": page_index, "page_size": self.page_size})
            output = _output(data)
            page = output.get("voice_list") or []
            if not isinstance(page, list):
                raise unreadable(f"{action}: voice_list is not a list")
            page = [item for item in page if isinstance(item, dict)]
            if not page or page == previous:
                break
            items.extend(page)
            previous = page
            total = output.get("total_count")
            if isinstance(total, int) and not isinstance(total, bool) and len(items) >= total:
                break
        return items


class CosyVoiceClient(_DashScopeClient):
    """CosyVoice voice cloning (``voice-enrollment``): create, list, query, delete, preview."""

    enrollment_model = "voice-enrollment"
    default_family = "cosyvoice"

    def __init__(
        self,
        *,
        audio_source: str | None = None,
        url_template: str | None = None,
        upload_model: str | None = None,
        enable_preprocess: bool | None = None,
        **kwargs: Any,
    ) -> None:
        """``audio_source``: ``oss``, ``url_template`` (needs ``url_template``) or ``data_uri``; default
        per region (:data:`DEFAULT_AUDIO_SOURCE`: ``oss`` in ``cn``, ``data_uri`` elsewhere).

        ``upload_model`` is the model the temporary upload is bound to (default: the record's target
        model, which is what working clients use). Other keywords: see :class:`_DashScopeClient`.
        """
        if audio_source not in (None, *AUDIO_SOURCES):
            raise InvalidArgument(
                f"audio_source must be one of {', '.join(AUDIO_SOURCES)} (got {audio_source!r})"
            )
        if (audio_source or ("url_template" if url_template else None)) == "url_template":
            if not url_template:
                raise InvalidArgument("url_template: required when audio_source is 'url_template'")
            _check_template(url_template)
        self.url_template = url_template
        self.upload_model = upload_model
        self.enable_preprocess = enable_preprocess
        super().__init__(**kwargs)
        self.audio_source = audio_source or (
            "url_template" if url_template else DEFAULT_AUDIO_SOURCE.get(self.region or "", "data_uri")
        )

    # --- audio URL ----------------------------------------------------------------------------------
    def audio_url(self, record: VoiceRecord) -> str:
        """The public URL of the clip for ``url_template`` mode (the user has uploaded it there)."""
        return (self.url_template or "").format_map(_template_fields(record))

    def upload_temporary(self, path: Path, *, sha256: str, model: str) -> tuple[str, list[str]]:
        """Upload ``path`` to DashScope temporary storage; return (``oss://<key>``, request ids)."""
        data, policy_id = self.request(
            "GET",
            UPLOADS_PATH,
            action="dashscope getPolicy",
            params={"action": "getPolicy", "model": model},
        )
        body = data if isinstance(data, dict) else {}
        policy = body.get("data") or body.get("output") or body
        needed = ("policy", "signature", "upload_dir", "upload_host", "oss_access_key_id")
        if not isinstance(policy, dict) or any(not policy.get(k) for k in needed):
            raise ProviderError("provider_bad_request", "getPolicy answered without an upload policy")
        key = f"{str(policy['upload_dir']).rstrip('/')}/{sha256}{path.suffix.lower() or '.wav'}"
        form = _oss_form(policy, key)
        files = {"file": (Path(key).name, path.read_bytes(), audio_mime(path))}
        self.request(
            "POST",
            str(policy["upload_host"]),
            action="dashscope temporary upload",
            authenticated=False,  # the upload host is OSS, not DashScope: our key never goes there
            data=form,
            files=files,
            interpret=_oss_interpret,
            request_id_of=_oss_request_id,
        )
        return f"oss://{key}", [policy_id] if policy_id else []

    def _resolve_audio(self, record: VoiceRecord, content: bytes) -> tuple[str, dict[str, str], list[str]]:
        """(url for the create call, extra headers, request ids) per ``audio_source``."""
        path = Path(record.clip_path or "")
        if self.audio_source == "url_template":
            return self.audio_url(record), {}, []
        if self.audio_source == "data_uri":
            return self._inline(record, content)[0], {}, []
        url, ids = self.upload_temporary(
            path, sha256=record.clip_sha256 or "", model=self.upload_model or record.target_model or ""
        )
        return url, {OSS_RESOLVE_HEADER: "enable"}, ids

    def language_not_sent(self, language: str | None) -> str | None:
        """See :meth:`VoiceProvider.language_not_sent` (``language_hints``: :data:`COSYVOICE_LANGUAGES`)."""
        return unlisted_language(language, COSYVOICE_LANGUAGES, "cosyvoice language_hints")

    def _create_fields(self, record: VoiceRecord, url: str, language: str | None) -> dict[str, Any]:
        fields: dict[str, Any] = {"target_model": record.target_model, "prefix": record.name, "url": url}
        code = vendor_language(language, COSYVOICE_LANGUAGES, "cosyvoice language_hints")
        if code:
            fields["language_hints"] = [code]
        if self.enable_preprocess is not None:
            fields["enable_preprocess"] = self.enable_preprocess
        return fields

    # --- VoiceProvider ------------------------------------------------------------------------------
    def prepare_create(
        self, record: VoiceRecord, *, preview_text: str | None = None, language: str | None = None
    ) -> list[dict[str, Any]]:
        """The requests :meth:`create_voice` would send (secrets and audio elided); sends nothing."""
        content = self.validate(record)
        sizes = {"audio_bytes": len(content)}
        headers: dict[str, str] = {}
        uploads: list[dict[str, Any]] = []
        if self.audio_source == "url_template":
            url = self.audio_url(record)
        elif self.audio_source == "data_uri":
            url, sizes["encoded_bytes"] = self._inline(record, content, shown=True)
        else:
            model = self.upload_model or record.target_model
            key = f"<upload_dir>/{record.clip_sha256}{Path(record.clip_path or '').suffix.lower() or '.wav'}"
            url, headers, sizes = f"oss://{key}", {OSS_RESOLVE_HEADER: "enable"}, {}
            form = {**_oss_form(_UNKNOWN_POLICY, key), "file": elided(len(content))}
            uploads = [
                self.show("GET", f"{UPLOADS_PATH}?action=getPolicy&model={model}", None),
                shown_request("POST", "<upload_host from getPolicy>", {}, form, audio_bytes=len(content)),
            ]
        fields = self._create_fields(record, url, language)
        return [*uploads, self._prepared_enroll("create_voice", fields, headers=headers, **sizes)]

    def create_voice(
        self,
        record: VoiceRecord,
        *,
        preview_text: str | None = None,
        language: str | None = None,
        on_send: Callable[[], object] | None = None,
    ) -> VoiceRecord:
        """Upload (per ``audio_source``) and create the voice once; it starts ``deploying``.

        Raises :class:`OutcomeUnknown` when the create call's answer is lost (then use :meth:`find_voice`).
        """
        content = self.validate(record)
        url, headers, ids = self._resolve_audio(record, content)
        data, request_id = self._enroll(
            "create_voice",
            self._create_fields(record, url, language),
            idempotent=False,
            headers=headers,
            interpret=requiring(_interpret, "output", "voice_id"),
            on_send=on_send,
        )
        voice_id = str(_output(data)["voice_id"])
        where = "inline" if url.startswith("data:") else url
        log.info(f"cosyvoice: created {voice_id} from {where} (request id {request_id})")
        ids += [request_id] if request_id else []
        return dataclasses.replace(record, voice_id=voice_id, status="deploying", request_ids=ids)

    def _item(self, item: Mapping[str, Any], voice_id: str | None = None) -> VoiceRecord:
        vid = str(voice_id or item.get("voice_id") or "")
        model, prefix = self.split_voice_id(vid)
        return self._remote(
            vid,
            COSYVOICE_STATUS.get(str(item.get("status") or "").upper(), "unknown"),
            target_model=str(item.get("target_model") or model or "") or None,
            created_at=item.get("gmt_create"),
            name=prefix,
        )

    def split_voice_id(self, voice_id: str) -> tuple[str | None, str | None]:
        """(target model, prefix) embedded in a CosyVoice voice id ``<target_model>-<prefix>-<unique>``."""
        for model in sorted(self.target_models, key=len, reverse=True):
            if voice_id.startswith(model + "-"):
                rest = voice_id[len(model) + 1 :]
                prefix = rest.split("-", 1)[0] if "-" in rest else None
                return model, prefix
        return None, None

    def find_voice(self, record: VoiceRecord, *, since: str | None = None) -> VoiceRecord | None:
        """The voice a lost create for ``record`` made: id ``<target_model>-<prefix>-...``, created at or
        after ``since``. The newest match when there are several."""
        start = f"{record.target_model}-{record.name}-"
        matches = [
            self._item(item)
            for item in self._all_pages("list_voice", {"prefix": record.name})
            if str(item.get("voice_id", "")).startswith(start)
            and created_since(item.get("gmt_create"), since)
        ]
        return newest(matches)

    def query_voice(self, voice_id: str) -> VoiceRecord | None:
        """The voice's state (``deploying``/``ready``/``rejected``), or None when it does not exist."""
        try:
            data, _ = self._enroll("query_voice", {"voice_id": voice_id})
        except ProviderError as err:
            if self._absent(err):
                return None
            raise
        return self._item(_output(data), voice_id)

    def list_voices(self) -> list[VoiceRecord]:
        """Every CosyVoice voice on the account (all pages)."""
        return [self._item(item) for item in self._all_pages("list_voice", {})]

    def delete_voice(self, voice_id: str) -> None:
        """Delete the voice; a voice that is already gone is not an error."""
        self._delete(lambda: self._enroll("delete_voice", {"voice_id": voice_id}), voice_id)

    def update_voice(
        self, voice_id: str, record: VoiceRecord, *, on_send: Callable[[], object] | None = None
    ) -> list[str]:
        """Enrol ``voice_id`` again from ``record``'s clip (``update_voice``: same id, new audio, fetched
        per ``audio_source`` like a create); returns the request ids. The voice goes back under review:
        poll it with :meth:`wait_until_settled`. Re-sending the same update is harmless (same id, same
        clip), so it is retried like a read."""
        content = self.validate(record)
        url, headers, ids = self._resolve_audio(record, content)
        _, request_id = self._enroll(
            "update_voice", {"voice_id": voice_id, "url": url}, headers=headers, on_send=on_send
        )
        log.info(f"cosyvoice: updated {voice_id} (request id {request_id})")
        return ids + ([request_id] if request_id else [])

    def speak(
        self,
        voice_id: str,
        *,
        target_model: str,
        text: str,
        sample_rate: int = SPEECH_SAMPLE_RATE,
        language: str | None = None,
    ) -> Speech:
        """Synthesise ``text`` over CosyVoice's WebSocket task protocol (the vendor's current pages say
        CosyVoice models take WebSocket only); see :mod:`~pipeline.enroll.providers.dashscope_ws`."""
        code = vendor_language(language, COSYVOICE_SPEAK_LANGUAGES, "cosyvoice synthesis language_hints")
        return cosyvoice_speech(
            self,
            voice_id,
            model=target_model,
            text=text,
            sample_rate=sample_rate,
            error_of=dashscope_error,
            language_hints=[code] if code else None,
        )

    def speech_language_not_sent(self, language: str | None) -> str | None:
        """See :meth:`VoiceProvider.speech_language_not_sent` (:data:`COSYVOICE_SPEAK_LANGUAGES`)."""
        return unlisted_language(language, COSYVOICE_SPEAK_LANGUAGES, "cosyvoice synthesis language_hints")


class QwenClient(_DashScopeClient):
    """Qwen-TTS voice cloning (``qwen-voice-enrollment``): create (inline data URI), list, delete, preview."""

    enrollment_model = "qwen-voice-enrollment"
    default_family = "qwen-tts"

    def language_not_sent(self, language: str | None) -> str | None:
        """See :meth:`VoiceProvider.language_not_sent` (``language``: :data:`QWEN_LANGUAGES`)."""
        return unlisted_language(language, QWEN_LANGUAGES, "qwen-tts language")

    def _create_fields(self, record: VoiceRecord, audio: str, language: str | None) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "target_model": record.target_model,
            "preferred_name": record.name,
            "audio": {"data": audio},
        }
        code = vendor_language(language, QWEN_LANGUAGES, "qwen-tts language")
        if code:
            fields["language"] = code
        return fields

    def prepare_create(
        self, record: VoiceRecord, *, preview_text: str | None = None, language: str | None = None
    ) -> list[dict[str, Any]]:
        """The create request (secrets and audio elided); sends nothing."""
        content = self.validate(record)
        shown, size = self._inline(record, content, shown=True)
        return [
            self._prepared_enroll(
                "create",
                self._create_fields(record, shown, language),
                audio_bytes=len(content),
                encoded_bytes=size,
            )
        ]

    def create_voice(
        self,
        record: VoiceRecord,
        *,
        preview_text: str | None = None,
        language: str | None = None,
        on_send: Callable[[], object] | None = None,
    ) -> VoiceRecord:
        """Create the voice once (ready at once). Raises :class:`OutcomeUnknown` when the answer is lost."""
        content = self.validate(record)
        data, request_id = self._enroll(
            "create",
            self._create_fields(record, self._inline(record, content)[0], language),
            idempotent=False,
            interpret=requiring(_interpret, "output", "voice"),
            on_send=on_send,
        )
        output = _output(data)
        voice_id = str(output["voice"])
        fallback = {k: output[k] for k in ("fallback_mode", "fallback_reason") if output.get(k) is not None}
        if fallback:  # the service made the voice a degraded way: recorded in the ledger, shown by `voices`
            log.warning(f"qwen-tts: {voice_id} was created in fallback mode: {fallback}")
        log.info(f"qwen-tts: created {voice_id} (request id {request_id})")
        ids = [request_id] if request_id else []
        return dataclasses.replace(
            record, voice_id=voice_id, status="ready", request_ids=ids, details=fallback
        )

    def _item(self, item: Mapping[str, Any]) -> VoiceRecord:
        voice_id = str(item.get("voice") or item.get("voice_id") or "")
        named = _QWEN_ID_RE.match(voice_id)
        return self._remote(
            voice_id,
            target_model=item.get("target_model"),
            created_at=item.get("gmt_create"),
            name=item.get("preferred_name") or (named.group(1) if named else None),
        )

    def list_voices(self) -> list[VoiceRecord]:
        """Every Qwen-TTS voice on the account (all pages)."""
        return [self._item(item) for item in self._all_pages("list", {})]

    def find_voice(self, record: VoiceRecord, *, since: str | None = None) -> VoiceRecord | None:
        """The voice a lost create made: ``preferred_name`` inside the voice id (as a ``-`` separated part,
        falling back to a substring), the same target model, created at or after ``since``."""
        name = (record.name or "").lower()
        candidates = [
            v
            for v in self.list_voices()
            if (v.target_model in (None, record.target_model)) and created_since(v.created_at, since)
        ]
        exact = [v for v in candidates if name in v.voice_id.lower().split("-")]
        matches = exact or [v for v in candidates if name in v.voice_id.lower()]
        return newest(matches)

    def delete_voice(self, voice_id: str) -> None:
        """Delete the voice; a voice that is already gone is not an error."""
        self._delete(lambda: self._enroll("delete", {"voice": voice_id}), voice_id)

    def speak(
        self,
        voice_id: str,
        *,
        target_model: str,
        text: str,
        sample_rate: int = SPEECH_SAMPLE_RATE,
        language: str | None = None,
    ) -> Speech:
        """Synthesise ``text``: over the realtime WebSocket for a realtime model (``qwen3-tts-vc-realtime-*``,
        which the HTTP endpoint refuses), else ``POST multimodal-generation`` (the WAV it returns, as PCM)."""
        code = vendor_language(language, tuple(QWEN_LANGUAGE_TYPES), "qwen-tts synthesis language_type")
        language_type = QWEN_LANGUAGE_TYPES[code] if code else None
        if is_realtime_model(target_model):
            return qwen_realtime_speech(
                self,
                voice_id,
                model=target_model,
                text=text,
                sample_rate=sample_rate,
                error_of=dashscope_error,
                language_type=language_type,
            )
        body: dict[str, Any] = {"model": target_model, "input": {"text": text, "voice": voice_id}}
        if language_type:
            body["input"]["language_type"] = language_type
        pcm, rate = pcm_from_wav(self._synthesise(MULTIMODAL_PATH, body, "qwen-tts speak"), "qwen-tts speak")
        return Speech(pcm_chunks(pcm), sample_rate=rate)

    def speech_language_not_sent(self, language: str | None) -> str | None:
        """See :meth:`VoiceProvider.speech_language_not_sent` (:data:`QWEN_LANGUAGE_TYPES`)."""
        return unlisted_language(language, tuple(QWEN_LANGUAGE_TYPES), "qwen-tts synthesis language_type")


# --- helpers ---------------------------------------------------------------------------------------


def vendor_language(language: str | None, allowed: tuple[str, ...], field: str) -> str | None:
    """The base language code (``pt-BR`` -> ``pt``) when the vendor lists it for ``field``, else None
    (``auto`` or an unlisted language: the field is left out and the service detects the language)."""
    if not language or language.lower() == "auto":
        return None
    code = language.lower().replace("_", "-").split("-")[0]
    if code not in allowed:
        log.warning(unlisted_language(language, allowed, field))
        return None
    return code


def unlisted_language(language: str | None, allowed: tuple[str, ...], field: str) -> str | None:
    """The line saying ``language`` is not sent as ``field`` (the vendor does not list it), or None when
    it is sent (or there is none)."""
    if not language or language.lower() == "auto":
        return None
    if language.lower().replace("_", "-").split("-")[0] in allowed:
        return None
    return (
        f"language {language} not sent: {field} lists only {', '.join(allowed)}; "
        "the service detects the language itself"
    )


def _template_fields(record: VoiceRecord) -> dict[str, str]:
    path = Path(record.clip_path or "")
    return {
        "clip_sha256": record.clip_sha256 or "",
        "sha256": record.clip_sha256 or "",
        "speaker": record.speaker or path.parent.name,
        "family": record.family,
        "filename": path.name,
    }


def _check_template(template: str) -> None:
    dummy = {name: "x" for name in TEMPLATE_FIELDS}
    try:
        url = template.format_map(dummy)
    except (KeyError, IndexError, ValueError) as exc:
        raise InvalidArgument(
            f"url_template: {template!r} uses an unknown field {exc} (fields: {', '.join(TEMPLATE_FIELDS[:4])})"
        ) from None
    if not url.startswith(("http://", "https://")):
        raise InvalidArgument(f"url_template: must be an http(s) URL (got {template!r})")
    if "{clip_sha256}" not in template and "{sha256}" not in template:
        log.warning("url_template has no {clip_sha256}: two different clips could map to the same URL")


_UNKNOWN_POLICY = dict.fromkeys(
    ("oss_access_key_id", "signature", "policy", "x_oss_object_acl", "x_oss_forbid_overwrite"),
    "<from getPolicy>",
)
"""What a dry run shows for the upload policy only ``getPolicy`` can give."""


def _oss_form(policy: Mapping[str, Any], key: str) -> dict[str, str]:
    """The OSS form fields, in the order OSS expects (``file`` is added last by requests)."""
    return {
        "OSSAccessKeyId": str(policy["oss_access_key_id"]),
        "Signature": str(policy["signature"]),
        "policy": str(policy["policy"]),
        "key": key,
        "x-oss-object-acl": str(policy.get("x_oss_object_acl") or "private"),
        "x-oss-forbid-overwrite": str(policy.get("x_oss_forbid_overwrite") or "true"),
        "success_action_status": "200",
    }


_XML_TAG = re.compile(r"<(Code|Message|RequestId)>([^<]*)</\1>")


def _oss_fields(response: requests.Response) -> dict[str, str]:
    return dict(_XML_TAG.findall(response.text or ""))


def _oss_request_id(response: requests.Response) -> str | None:
    return response.headers.get("x-oss-request-id") or _oss_fields(response).get("RequestId")


def _oss_interpret(response: requests.Response, maybe_acted: bool) -> None:
    """OSS upload: 200/204 is done; 409 FileAlreadyExists is done too (the key is the clip's sha256, so the
    object there is this clip, most likely from our own earlier attempt)."""
    status = response.status_code
    text = (response.text or "").strip()
    if status in (200, 201, 204):
        if not text or (text.startswith("<") and "<Error>" not in text):
            return None
        # a 200 whose body is not OSS's (a proxy, a truncated answer): not proof that the file is stored
        raise unreadable("temporary upload: unexpected answer")
    fields = _oss_fields(response)
    code = fields.get("Code")
    if status == 409 and code in (None, "FileAlreadyExists", "ObjectAlreadyExists"):
        return None
    message = f"temporary upload failed: {code or 'HTTP ' + str(status)}: {fields.get('Message', '')}".rstrip(
        ": "
    )
    raise status_error(status, message, code=code)
