"""Provider clients: the only part of voiceprep that talks to the network.

``make_provider(spec)`` returns the client for a family spec (``pipeline/configs/families/*.yaml``):

=================  ===================  ==================================  ============================
family             provider             client                              key / base URL variables
=================  ===================  ==================================  ============================
cosyvoice          dashscope            :class:`CosyVoiceClient`            DASHSCOPE_API_KEY / _BASE_URL
qwen-tts           dashscope            :class:`QwenClient`                 DASHSCOPE_API_KEY / _BASE_URL
minimax            minimax              :class:`MiniMaxClient`              MINIMAX_API_KEY / _BASE_URL
elevenlabs         elevenlabs           :class:`ElevenLabsClient`           ELEVENLABS_API_KEY / _BASE_URL
=================  ===================  ==================================  ============================

Every client meets :class:`~pipeline.enroll.providers.base.VoiceProvider`. See ``docs/providers.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline.enroll.providers.base import (
    OutcomeUnknown,
    ProviderError,
    VoiceProvider,
    VoiceRecord,
)
from pipeline.enroll.providers.dashscope import CosyVoiceClient, QwenClient
from pipeline.enroll.providers.elevenlabs import ElevenLabsClient
from pipeline.enroll.providers.http import LOGGER_NAME, Redactor, Runtime
from pipeline.enroll.providers.minimax import MiniMaxClient
from pipeline.errors import InvalidArgument

if TYPE_CHECKING:
    from pipeline.rules.families import FamilySpec

__all__ = [
    "LOGGER_NAME",
    "CosyVoiceClient",
    "ElevenLabsClient",
    "MiniMaxClient",
    "OutcomeUnknown",
    "ProviderError",
    "QwenClient",
    "Redactor",
    "Runtime",
    "VoiceProvider",
    "VoiceRecord",
    "api_key_env",
    "base_url_env",
    "make_provider",
]

_CLIENTS = {c.provider: c for c in (CosyVoiceClient, MiniMaxClient, ElevenLabsClient)}
"""One client class per provider: where its key and base URL variables are named."""
_DASHSCOPE_CLIENTS = {"voice-enrollment": CosyVoiceClient, "qwen-voice-enrollment": QwenClient}


def _client_class(provider: str) -> type[CosyVoiceClient | MiniMaxClient | ElevenLabsClient]:
    try:
        return _CLIENTS[provider]
    except KeyError:
        raise InvalidArgument(
            f"provider: unknown provider {provider!r} (known: {', '.join(_CLIENTS)})"
        ) from None


def api_key_env(provider: str) -> str:
    """The environment variable that holds ``provider``'s API key (``dashscope`` → ``DASHSCOPE_API_KEY``)."""
    return _client_class(provider).key_env


def base_url_env(provider: str) -> str:
    """The environment variable that overrides ``provider``'s base URL (``DASHSCOPE_BASE_URL``...)."""
    return _client_class(provider).base_url_env


def make_provider(
    family_spec: FamilySpec | str,
    *,
    base_url: str | None = None,
    audio_source: str | None = None,
    url_template: str | None = None,
    runtime: Runtime | None = None,
    require_key: bool = True,
    **options: Any,
) -> VoiceProvider:
    """The client for a family (a :class:`FamilySpec` or a family name).

    ``base_url`` overrides the environment variable (:func:`base_url_env`) and the default host.
    ``audio_source``/``url_template`` (how the service fetches the clip: ``oss`` by default; see
    :mod:`pipeline.enroll.providers.dashscope`) apply to CosyVoice, the one family that reads its audio
    from a URL; the others upload the clip in the request and ignore them, so a run's audio options can
    be passed to every family's client. ``require_key=False`` builds a client without a key, for
    ``--dry-run`` (``prepare_create`` works; any network call raises ``missing_api_key``). ``runtime``
    replaces time, randomness, sessions, the environment and the retry limits (tests). Other ``options`` go
    to the client (``page_size``...). Raises ``ProviderError("missing_api_key")`` naming the variable when the key is
    missing and ``require_key``.
    """
    from pipeline.rules.families import load_family

    spec = load_family(family_spec) if isinstance(family_spec, str) else family_spec
    max_bytes = spec.limits.max_bytes.value
    common: dict[str, Any] = {
        "family": spec.name,
        "base_url": base_url,
        "target_models": tuple(spec.target_models),
        "max_bytes": int(max_bytes) if max_bytes is not None else None,
        "runtime": runtime,
        "require_key": require_key,
        **options,
    }
    if spec.provider == "dashscope":
        cls = _DASHSCOPE_CLIENTS.get(spec.enrollment_model or "")
        if cls is None:
            raise InvalidArgument(
                f"enrollment_model: {spec.enrollment_model!r} of family {spec.name!r} is not supported "
                f"(known: {', '.join(_DASHSCOPE_CLIENTS)})"
            )
        audio = {"audio_source": audio_source, "url_template": url_template} if cls is CosyVoiceClient else {}
        return cls(name_pattern=spec.name_rule.pattern, **audio, **common)
    if spec.provider == "minimax":
        return MiniMaxClient(**common)
    if spec.provider == "elevenlabs":
        return ElevenLabsClient(**common)
    raise InvalidArgument(f"provider: unknown provider {spec.provider!r} in family {spec.name!r}")
