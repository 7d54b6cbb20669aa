"""The voice record every part of enroll speaks in, and the errors the provider clients raise.

Only :mod:`pipeline.enroll.providers` talks to the network. The submit logic (:mod:`pipeline.enroll.submit`) and the
ledger (:mod:`pipeline.enroll.ledger`) see providers through
:class:`~pipeline.enroll.providers.common.VoiceProvider` alone, so they can be tested against an in-memory fake
and the real clients against a local HTTP server that speaks the vendors' contracts.

Statuses are normalised to the ledger's vocabulary: ``deploying`` (under review, CosyVoice), ``ready``,
``rejected`` (the provider refused the audio, e.g. CosyVoice ``UNDEPLOYED``) and ``unknown``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.errors import VoiceprepError


def normalize_base_url(url: str) -> str:
    """The one form of a base URL, used to store, compare and call it: without a trailing ``/``."""
    return url.rstrip("/")


@dataclass(frozen=True)
class VoiceRecord:
    """One voice: a ledger row, the voice a create is asked to make, a voice as a provider lists it, or
    what a command did with one.

    A ledger row has its ``id`` (from 1); a voice not (yet) in the ledger has id 0. To create, a record
    carries ``family``, ``target_model``, ``name`` (the provider-side name: CosyVoice ``prefix``, Qwen
    ``preferred_name``, MiniMax ``voice_id``, derived deterministically by the caller so a retried create can
    be recognised), ``clip_path`` and ``clip_sha256``; the create answers the same record with ``voice_id``,
    ``status`` and ``request_ids`` filled in. A provider's listing gives ``provider``, ``base_url``,
    ``family``, ``voice_id``, ``status``, ``target_model``, ``created_at`` and ``name`` (``origin`` remote).
    ``sources`` and ``request_ids`` are lists; ``last_error`` is ``{reason, message}``. ``details`` holds
    what a provider said about the voice beyond its status (Qwen ``fallback_mode``/``fallback_reason``: the
    service degraded the clone; MiniMax ``expires_after_days`` for a clone not yet used in a synthesis).

    The last fields (:data:`COMMAND_FIELDS`, not stored in the ledger) say what the command that returned
    the record did with the voice: ``action`` (submit: ``created``, ``existing`` (a voice already held the
    clip), ``reverified`` (a ``submitted`` clip was checked), ``reconciled`` (an unresolved row was asked
    about), ``skipped``, ``dry-run``; ``voices delete``: ``delete``), ``note`` (what happened, in words),
    for a dry run the ``requests`` it would send and the ``problems`` it found, and ``warnings``: what
    the user should know although nothing failed (a language the vendor does not list, left out). ``status`` may then
    also be ``skipped``, ``dry-run`` or ``submitted`` (a dry run over a submitted clip).
    """

    id: int = 0
    provider: str = ""
    base_url: str = ""
    family: str = ""
    target_model: str | None = None
    voice_id: str | None = None
    name: str | None = None
    clip_sha256: str | None = None
    clip_path: str | None = None
    speaker: str | None = None
    sources: list[str] = field(default_factory=list)
    enrollment_key: str | None = None
    status: str = "pending"
    origin: str = "submit"
    owner: str | None = None
    sent_at: str | None = None
    created_at: str | None = None
    updated_at: str = ""
    last_checked_at: str | None = None
    last_used_at: str | None = None
    request_ids: list[str] = field(default_factory=list)
    last_error: dict[str, str] | None = None
    preview_path: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    action: str | None = None
    note: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON-ready data; the :data:`COMMAND_FIELDS` only when a command filled them."""
        data = asdict(self)
        return data if self.action else {k: v for k, v in data.items() if k not in COMMAND_FIELDS}

    @property
    def reason(self) -> str | None:
        """The reason code of ``last_error`` (``None`` without an error)."""
        return (self.last_error or {}).get("reason")

    @property
    def ok(self) -> bool:
        """True when nothing needs the user's attention: a usable voice (``ready``, or ``deploying`` =
        under review); for a dry run, no problem found; for a reconciled row, a known state."""
        if self.action == "dry-run":
            return not self.problems
        if self.action == "reconciled":
            return self.status not in {"unknown", "pending"}
        return self.status in {"ready", "deploying"}

    @property
    def unresolved(self) -> bool:
        """True when the remote state is not known (``unknown``, or ``pending`` after the request was sent)."""
        return self.status == "unknown" or (self.status == "pending" and self.sent_at is not None)

    @property
    def retryable(self) -> bool:
        """True when a create may be tried again with this row (``failed``, or ``pending`` never sent)."""
        return self.status == "failed" or (self.status == "pending" and self.sent_at is None)


COMMAND_FIELDS = ("action", "note", "requests", "problems", "warnings")
"""The fields of :class:`VoiceRecord` that a command fills and the ledger does not store."""


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


class MissingApiKey(ProviderError):
    """The environment variable holding a provider's API key is not set. ``env_var`` names it;
    ``env_vars`` names every one missing when several providers were in scope (:meth:`every`)."""

    def __init__(
        self,
        env_var: str,
        *,
        provider: str,
        family: str | None = None,
        alternatives: Sequence[str] = (),
        region: str | None = None,
    ) -> None:
        what = f"{family} voices" if family else f"voices at {provider}"
        others = [a for a in alternatives if a != env_var]
        nor = f" (nor {' or '.join(others)})" if others else ""
        key = f"your {provider} key" + (f" for region {region}" if region and others else "")
        super().__init__(
            "missing_api_key",
            f"{env_var} is not set{nor}: export {env_var}=<{key}> to manage {what}",
        )
        self.env_var = env_var
        self.env_vars = [env_var]
        self.provider = provider

    @classmethod
    def every(cls, missing: Sequence[MissingApiKey]) -> MissingApiKey:
        """One error naming every missing variable (each once), so the user sets them all in one go."""
        unique = list({e.env_var: e for e in missing}.values())
        combined = unique[0]
        if len(unique) > 1:
            combined = cls(unique[0].env_var, provider=unique[0].provider)
            combined.env_vars = [e.env_var for e in unique]
            combined.message = "; ".join(e.message for e in unique)
            combined.args = (f"{combined.reason}: {combined.message}",)
        return combined


class OutcomeUnknown(ProviderError):
    """A create request may have reached the provider but its answer was lost (timeout, dropped
    connection, unreadable body). The caller must reconcile with the provider's list before retrying."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__("outcome_unknown", message, retryable=True, request_id=request_id)
