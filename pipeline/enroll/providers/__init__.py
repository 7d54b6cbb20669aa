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

Every client is a :class:`~pipeline.enroll.providers.common.VoiceProvider`: create, find, list, delete, and
``speak`` (synthesis streamed as 16-bit PCM, :mod:`~pipeline.enroll.providers.speech`: CosyVoice and Qwen
realtime models over DashScope's WebSockets, :mod:`~pipeline.enroll.providers.dashscope_ws` on
:mod:`~pipeline.enroll.providers.ws`; the others over HTTP), with ``preview`` built on it. Where a key may go:
:mod:`~pipeline.enroll.providers.hosts`. See ``docs/providers.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pipeline.enroll.providers.base import OutcomeUnknown, ProviderError, VoiceRecord
from pipeline.enroll.providers.common import VoiceProvider
from pipeline.enroll.providers.dashscope import CosyVoiceClient, QwenClient
from pipeline.enroll.providers.elevenlabs import ElevenLabsClient
from pipeline.enroll.providers.hosts import host_allowed
from pipeline.enroll.providers.http import LOGGER_NAME, Redactor, Runtime
from pipeline.enroll.providers.minimax import MiniMaxClient
from pipeline.enroll.providers.regions import DEFAULT_REGION, REGIONS, check_region
from pipeline.errors import InvalidArgument

if TYPE_CHECKING:
    from pipeline.rules.families import FamilySpec

__all__ = [
    "DEFAULT_REGION",
    "LOGGER_NAME",
    "REGIONS",
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
    "allowed_base_url",
    "api_key_env",
    "api_key_envs",
    "base_url_envs",
    "check_region",
    "http_base_url",
    "make_provider",
    "region_at",
    "region_of",
]

_CLIENTS: dict[tuple[str, str | None], type[VoiceProvider]] = {
    ("dashscope", "voice-enrollment"): CosyVoiceClient,
    ("dashscope", "qwen-voice-enrollment"): QwenClient,
    ("minimax", None): MiniMaxClient,
    ("elevenlabs", None): ElevenLabsClient,
}
"""The client of each (provider, enrollment model); the class names its key and base URL variables."""


def _client_class(provider: str) -> type[VoiceProvider]:
    """A client class of ``provider`` (they share its key and base-URL variables)."""
    known = {p: cls for (p, _), cls in _CLIENTS.items()}
    if provider not in known:
        raise InvalidArgument(f"provider: unknown provider {provider!r} (known: {', '.join(known)})")
    return known[provider]


def api_key_env(provider: str, region: str | None = None) -> str:
    """The environment variable that holds ``provider``'s API key (``dashscope`` → ``DASHSCOPE_API_KEY``);
    with ``region`` ``cn``, the region's own variable (``DASHSCOPE_CN_API_KEY``, read before the plain one)."""
    envs = api_key_envs(provider, region)
    return envs[0] if region == "cn" else envs[-1]


def api_key_envs(provider: str, region: str | None = None) -> tuple[str, ...]:
    """Every variable ``provider``'s key for ``region`` is read from, first set wins."""
    return _client_class(provider).region_key_envs(check_region(region) or DEFAULT_REGION)


def base_url_envs(provider: str) -> tuple[str, ...]:
    """Every variable that may name ``provider``'s host, first set wins (``DASHSCOPE_BASE_URL``, then the
    dashscope SDK's ``DASHSCOPE_HTTP_BASE_URL``)."""
    return _client_class(provider).base_url_envs


def http_base_url(
    provider: str,
    region: str | None = None,
    *,
    base_url: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The HTTP base URL of ``provider`` in ``region`` (:meth:`VoiceProvider.http_base_url`); e.g.
    ``http_base_url("dashscope", "cn")`` is ``https://dashscope.aliyuncs.com/api/v1`` unless
    ``DASHSCOPE_BASE_URL``/``DASHSCOPE_HTTP_BASE_URL`` say otherwise."""
    return _client_class(provider).http_base_url(region, base_url=base_url, environ=environ)


def region_of(provider: str, url: str) -> str | None:
    """The region whose documented host of ``provider`` ``url`` is on, or None (:meth:`VoiceProvider.region_of`)."""
    return _client_class(provider).region_of(url)


def region_at(provider: str, url: str, region: str | None = None) -> str:
    """The region of a client of ``provider`` at ``url`` (as :func:`http_base_url` chose it): the region
    whose documented host ``url`` is on, else ``region`` (the one asked for), else :data:`DEFAULT_REGION`."""
    return region_of(provider, url) or check_region(region) or DEFAULT_REGION


def allowed_base_url(provider: str, url: str, configured: Iterable[str]) -> bool:
    """Whether ``provider``'s key may be sent to ``url``: an https URL on one of the provider's documented
    hosts (``documented_hosts()`` of its clients), or the origin (scheme, host, port) of a base URL the user
    configured (``configured``: flag, config file, environment variable). A URL read from a data file (a
    ledger row) must pass this before any client is made for it (:func:`~.hosts.host_allowed`)."""
    known = {p for p, _ in _CLIENTS}
    patterns = _client_class(provider).documented_hosts() if provider in known else ()
    return host_allowed(url, configured, patterns)


def make_provider(
    family_spec: FamilySpec | str,
    *,
    audio_source: str | None = None,
    url_template: str | None = None,
    region: str | None = None,
    **options: Any,
) -> VoiceProvider:
    """The client for a family (a :class:`FamilySpec` or a family name).

    ``audio_source``/``url_template`` (how the service fetches the clip: ``oss`` by default; see
    :mod:`pipeline.enroll.providers.dashscope`) apply to CosyVoice, the one family that reads its audio
    from a URL; the others upload the clip in the request and ignore them, so a run's audio options can
    be passed to every family's client. ``region`` (``intl``/``cn``; default: the base URL's region, else
    ``intl``) picks the documented host and key variable (:mod:`~pipeline.enroll.providers.regions`) and
    the models the client accepts (the spec's ``regions`` table). ``options`` go to the client: ``base_url`` (over the environment
    variable, :func:`base_url_envs`, and the default host), ``require_key=False`` for ``--dry-run``
    (``prepare_create`` works; any network call raises ``missing_api_key``), ``runtime`` (time,
    randomness, sessions, the environment and the retry limits: tests), ``page_size``... Raises
    ``ProviderError("missing_api_key")`` naming the variable when the key is missing and required.
    """
    from pipeline.rules.families import load_family

    spec = load_family(family_spec) if isinstance(family_spec, str) else family_spec
    cls = _CLIENTS.get((spec.provider, spec.enrollment_model if spec.provider == "dashscope" else None))
    if cls is None:
        raise InvalidArgument(
            f"family {spec.name!r}: no client for provider {spec.provider!r} and enrollment_model "
            f"{spec.enrollment_model!r} (known: {', '.join(f'{p}/{m}' for p, m in _CLIENTS)})"
        )
    if cls is CosyVoiceClient:
        options.update(audio_source=audio_source, url_template=url_template)
    max_bytes = spec.limits.max_bytes.value
    limits = {"max_bytes": int(max_bytes) if max_bytes is not None else None}
    rules = {"name_rule": spec.name_rule, "target_models": tuple(spec.target_models), **limits}
    client = cls(family=spec.name, region=region, **{**rules, **options})
    if spec.regions is not None:  # the client's region is known now (flag, base URL, default)
        client.region_models = tuple(spec.models_in(client.region))
    return client
