"""Regions: which host, which key variable, for each provider in each region (``intl`` or ``cn``).

The vendors run separate regions with separate accounts: a DashScope key from Singapore does not work in
Beijing, a MiniMax global key does not work on the mainland host. voiceprep names two regions:

=========  ========================================================  =======================================
region     DashScope (CosyVoice, Qwen-TTS)                            MiniMax
=========  ========================================================  =======================================
``intl``   ``https://dashscope-intl.aliyuncs.com/api/v1`` (Singapore)  ``https://api.minimax.io`` (global)
``cn``     ``https://dashscope.aliyuncs.com/api/v1`` (Beijing)         ``https://api.minimaxi.com`` (mainland)
=========  ========================================================  =======================================

ElevenLabs has one public host in both. The base URL of a client is, in order: the ``base_url`` given
(``--base-url``, the config's ``base_urls``), the environment (:attr:`ProviderRegions.base_url_envs`:
voiceprep's own ``DASHSCOPE_BASE_URL``, then the dashscope SDK's ``DASHSCOPE_HTTP_BASE_URL``), then the
region's documented host. Per-workspace DashScope hosts ``{workspace}.{cn-beijing|ap-southeast-1}
.maas.aliyuncs.com`` are recognised, with their region, when the user sets one.

When a region is asked for explicitly and an environment variable names the documented host of the
*other* region, the region wins (the variable was most likely set for another tool) and a warning is
logged; an explicit ``base_url`` that contradicts the region is an error. An address of no known region (a
proxy, a test server) takes the region asked for, else :data:`DEFAULT_REGION`.

Keys: the region's own variable first (``DASHSCOPE_CN_API_KEY``, ``DASHSCOPE_INTL_API_KEY``,
``MINIMAX_CN_API_KEY``, ``MINIMAX_INTL_API_KEY``), then the provider's plain one (``DASHSCOPE_API_KEY``...).
All end in ``_API_KEY``, so the ledger's scrubber knows them.

:func:`http_base_url` is the one call that finds a provider's HTTP host (the clients, the realtime WebSocket
client), :func:`region_at` the region of a client at it; the dashscope SDK's WebSocket variable is :data:`DASHSCOPE_WEBSOCKET_BASE_URL_ENV`.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.enroll.providers.base import normalize_base_url
from pipeline.enroll.providers.http import LOGGER_NAME
from pipeline.errors import InvalidArgument

__all__ = [
    "DASHSCOPE_WEBSOCKET_BASE_URL_ENV",
    "DEFAULT_REGION",
    "PROVIDER_REGIONS",
    "REGIONS",
    "REGION_NAMES",
    "ProviderRegions",
    "check_region",
    "http_base_url",
    "region_at",
    "region_of",
]

log = logging.getLogger(LOGGER_NAME)

REGIONS: tuple[str, ...] = ("intl", "cn")
DEFAULT_REGION = "intl"
REGION_NAMES = {"intl": "international (Singapore)", "cn": "China (Beijing)"}
"""How messages name a region."""

DASHSCOPE_WEBSOCKET_BASE_URL_ENV = "DASHSCOPE_WEBSOCKET_BASE_URL"
"""The dashscope SDK's WebSocket override (default: the HTTP host with ``/api-ws/v1/inference``); read by
the realtime client, not here."""


@dataclass(frozen=True)
class ProviderRegions:
    """One provider's regional endpoints.

    ``hosts``: region -> documented default base URL; ``host_patterns``: region -> ``fnmatch`` patterns
    of that region's documented hosts (https only); ``other_hosts``: documented hosts of no region voiceprep
    names (other DashScope regions): the key may go there, the region is not inferred; ``key_env``: the
    plain key variable; ``base_url_envs``: the base-URL variables, first set wins.
    """

    provider: str
    hosts: Mapping[str, str]
    host_patterns: Mapping[str, tuple[str, ...]]
    key_env: str
    base_url_envs: tuple[str, ...]
    other_hosts: tuple[str, ...] = ()

    def key_envs(self, region: str) -> tuple[str, ...]:
        """The variables a key for ``region`` is read from, first set wins (the region's own, then plain)."""
        if len(set(self.hosts.values())) == 1:  # one host everywhere: one key
            return (self.key_env,)
        own = self.key_env.replace("_API_KEY", f"_{region.upper()}_API_KEY")
        return (own, self.key_env)

    def documented_patterns(self) -> tuple[str, ...]:
        """Every documented host pattern of the provider (any region)."""
        return tuple(p for ps in self.host_patterns.values() for p in ps) + self.other_hosts


PROVIDER_REGIONS: dict[str, ProviderRegions] = {
    "dashscope": ProviderRegions(
        provider="dashscope",
        hosts={
            "intl": "https://dashscope-intl.aliyuncs.com/api/v1",
            "cn": "https://dashscope.aliyuncs.com/api/v1",
        },
        host_patterns={
            "intl": ("dashscope-intl.aliyuncs.com", "*.ap-southeast-1.maas.aliyuncs.com"),
            "cn": ("dashscope.aliyuncs.com", "*.cn-beijing.maas.aliyuncs.com"),
        },
        key_env="DASHSCOPE_API_KEY",
        base_url_envs=("DASHSCOPE_BASE_URL", "DASHSCOPE_HTTP_BASE_URL"),
        other_hosts=("*.maas.aliyuncs.com",),
    ),
    "minimax": ProviderRegions(
        provider="minimax",
        hosts={"intl": "https://api.minimax.io", "cn": "https://api.minimaxi.com"},
        host_patterns={"intl": ("api.minimax.io",), "cn": ("api.minimaxi.com",)},
        key_env="MINIMAX_API_KEY",
        base_url_envs=("MINIMAX_BASE_URL",),
    ),
    "elevenlabs": ProviderRegions(
        provider="elevenlabs",
        hosts={"intl": "https://api.elevenlabs.io", "cn": "https://api.elevenlabs.io"},
        host_patterns={"intl": ("api.elevenlabs.io",), "cn": ("api.elevenlabs.io",)},
        key_env="ELEVENLABS_API_KEY",
        base_url_envs=("ELEVENLABS_BASE_URL",),
        other_hosts=(  # checked against the vendor's docs: docs/providers.md "Allowed hosts"
            "api.us.elevenlabs.io",
            "api.eu.residency.elevenlabs.io",
            "api.in.residency.elevenlabs.io",
            "api.sg.residency.elevenlabs.io",
        ),
    ),
}
"""Sources: Alibaba Cloud Model Studio "Base URL overview" and "Voice cloning HTTP API reference" (hosts,
workspace hosts, "API keys are region-specific"); MiniMax platform docs (global and mainland hosts);
ElevenLabs API reference "Servers" list (``api.elevenlabs.io``, ``api.us.elevenlabs.io``,
``api.{eu,in,sg}.residency.elevenlabs.io``) and its *Data residency* guide (EU and India isolated
environments, each with its own API key)."""


def check_region(region: str | None) -> str | None:
    """``region`` if it is one voiceprep knows (``intl``, ``cn``) or None; raises :class:`InvalidArgument`."""
    if region is None:
        return None
    value = region.strip().lower()
    if value not in REGIONS:
        raise InvalidArgument(f"region must be one of {', '.join(REGIONS)} (got {region!r})")
    return value


def _regions(provider: str) -> ProviderRegions:
    if provider not in PROVIDER_REGIONS:
        known = ", ".join(PROVIDER_REGIONS)
        raise InvalidArgument(f"provider: unknown provider {provider!r} (known: {known})")
    return PROVIDER_REGIONS[provider]


def _host(url: str) -> str | None:
    try:
        parts = urllib.parse.urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme != "https" or not parts.hostname:
        return None
    return parts.hostname.lower().rstrip(".")


def region_of(provider: str, url: str) -> str | None:
    """The region whose documented host ``url`` is on (https only), or None (a proxy, a test server, a
    documented host of a region voiceprep does not name). ElevenLabs' one host answers None: it is in
    every region."""
    table = _regions(provider)
    host = _host(url)
    if host is None:
        return None
    found = {
        r
        for r, patterns in table.host_patterns.items()
        if any(fnmatch.fnmatchcase(host, p) for p in patterns)
    }
    return found.pop() if len(found) == 1 else None


def http_base_url(
    provider: str,
    region: str | None = None,
    *,
    base_url: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The HTTP base URL of ``provider`` in ``region`` (see the module docstring for the order): ``base_url``,
    else the environment overrides, else the documented host; e.g. ``http_base_url("dashscope", "cn")`` is
    ``https://dashscope.aliyuncs.com/api/v1`` unless ``DASHSCOPE_BASE_URL``/``DASHSCOPE_HTTP_BASE_URL`` say
    otherwise. :func:`region_at` gives the region a client at that address is in.

    Raises:
        InvalidArgument: an unknown region or provider, a base URL that is not an http(s) URL, or an
            explicit ``base_url`` on the documented host of another region than ``region``.
    """
    table = _regions(provider)
    env = os.environ if environ is None else environ
    asked = check_region(region)
    chosen: tuple[str, str] | None = None
    if base_url:
        chosen = (base_url, "base_url")
    else:
        for name in table.base_url_envs:
            value = (env.get(name) or "").strip()
            if not value:
                continue
            found = region_of(provider, value)
            if asked is not None and found is not None and found != asked:
                log.warning(
                    f"{name} names the {REGION_NAMES[found]} host but the region asked for is "
                    f"{REGION_NAMES[asked]}: {name} is not used"
                )
                continue
            chosen = (value, name)
            break
    if chosen is None:
        return normalize_base_url(table.hosts[asked or DEFAULT_REGION])
    url, source = chosen
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidArgument(
            f"{source}: expected an http(s) URL such as {table.hosts[DEFAULT_REGION]} (got {url!r})"
        )
    found = region_of(provider, url)
    if asked is not None and found is not None and found != asked:
        raise InvalidArgument(
            f"base_url {url} is the {REGION_NAMES[found]} host of {provider}, but the region is "
            f"{asked} ({REGION_NAMES[asked]}): a voice and its key live in one region"
        )
    return normalize_base_url(url)


def region_at(provider: str, url: str, region: str | None = None) -> str:
    """The region of a client of ``provider`` at ``url`` (as :func:`http_base_url` chose it): the region
    whose documented host ``url`` is on, else ``region`` (the one asked for), else :data:`DEFAULT_REGION`."""
    return region_of(provider, url) or check_region(region) or DEFAULT_REGION
