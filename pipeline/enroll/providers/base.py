"""The contract every provider client meets, and the errors they raise.

Only :mod:`pipeline.enroll.providers` talks to the network. The submit logic (:mod:`pipeline.enroll.submit`) and the
ledger (:mod:`pipeline.enroll.ledger`) see providers through :class:`VoiceProvider` alone, so they can be tested
against an in-memory fake and the real clients against a local HTTP server that speaks the vendors'
contracts.

Statuses are normalised to the ledger's vocabulary: ``deploying`` (under review, CosyVoice), ``ready``,
``rejected`` (the provider refused the audio, e.g. CosyVoice ``UNDEPLOYED``) and ``unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pipeline.errors import VoiceprepError

REMOTE_STATUSES = ("deploying", "ready", "rejected", "unknown")


def normalize_base_url(url: str) -> str:
    """The one form of a base URL, used to store, compare and call it: without a trailing ``/``."""
    return url.rstrip("/")


@dataclass(frozen=True)
class CreateRequest:
    """Everything needed to create one voice from one rendered clip.

    ``name`` is the provider-side name: the CosyVoice ``prefix``, the Qwen ``preferred_name`` or the
    MiniMax ``voice_id`` (which the client chooses). It is derived deterministically from the enrollment
    key by the caller, so a retried create can be recognised.
    """

    family: str
    target_model: str
    name: str
    clip_path: Path
    clip_sha256: str
    language: str | None = None
    preview_text: str | None = None
    speaker: str | None = None


@dataclass(frozen=True)
class CreateResult:
    """What a successful create returned."""

    voice_id: str
    status: str
    request_ids: tuple[str, ...] = ()
    preview_url: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RemoteVoice:
    """One voice as the provider lists or describes it."""

    voice_id: str
    status: str
    target_model: str | None = None
    created_at: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class PreparedRequest:
    """A request as it would be sent, for ``--dry-run``: secrets and audio already elided."""

    method: str
    url: str
    headers: dict[str, str]
    body: Any
    audio_bytes: int = 0
    encoded_bytes: int = 0


class ProviderError(VoiceprepError):
    """A provider call failed for good (after any retries).

    ``reason`` is a code from :mod:`pipeline.errors` (``provider_auth``, ``provider_quota``,
    ``provider_rejected``...). ``message`` never contains a secret. ``retryable`` says whether the same
    call could succeed later (rate limits, outages), which the submit logic reports to the user.
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        retryable: bool = False,
        http_status: int | None = None,
        provider_code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.retryable = retryable
        self.http_status = http_status
        self.provider_code = provider_code
        self.request_id = request_id


class OutcomeUnknown(ProviderError):
    """A create request may have reached the provider but its answer was lost (timeout, dropped
    connection, unreadable body). The caller must reconcile with the provider's list before retrying."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__("outcome_unknown", message, retryable=True, request_id=request_id)


class VoiceProvider(Protocol):
    """One family's client (CosyVoice, Qwen-TTS, MiniMax...)."""

    provider: str
    """``dashscope``, ``minimax`` or ``elevenlabs``."""
    family: str
    base_url: str

    def prepare_create(self, request: CreateRequest) -> list[PreparedRequest]:
        """The requests ``create_voice`` would send, with secrets and audio elided; sends nothing."""
        ...

    def create_voice(self, request: CreateRequest) -> CreateResult:
        """Create the voice once. Raises :class:`OutcomeUnknown` when the answer to the create call itself
        was lost; never re-sends a create that may have succeeded (MiniMax may, since a duplicate id is
        answered with 2039 and no second voice)."""
        ...

    def find_voice(self, request: CreateRequest, *, since: str | None = None) -> RemoteVoice | None:
        """The remote voice a lost create for ``request`` made, if any (matched by name and time)."""
        ...

    def query_voice(self, voice_id: str) -> RemoteVoice | None:
        """The voice's current state, or None when the provider does not have it."""
        ...

    def list_voices(self) -> list[RemoteVoice]:
        """Every voice of this family's kind on the account (all pages)."""
        ...

    def wait_until_settled(self, voice_id: str, *, timeout_s: float, interval_s: float) -> RemoteVoice:
        """Poll until the voice leaves ``deploying`` or the timeout passes (then status ``deploying``)."""
        ...

    def delete_voice(self, voice_id: str) -> None:
        """Delete the voice; deleting a voice that is already gone is not an error."""
        ...

    def preview(self, voice_id: str, *, target_model: str, text: str) -> bytes:
        """Synthesise ``text`` with the voice and return the audio file's bytes."""
        ...
