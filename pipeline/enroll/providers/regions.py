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
(``--base-url``, the config's ``base_urls``), the environment (the client class's ``base_url_envs``:
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

Each client class holds its provider's table (class attributes ``hosts``, ``host_patterns``,
``other_hosts``, ``key_env``, ``base_url_envs``; :class:`~pipeline.enroll.providers.common.VoiceProvider`)
and answers from it (``http_base_url``, ``region_of``, ``region_key_envs``, ``documented_hosts``); the
package's :func:`~pipeline.enroll.providers.http_base_url`, ``region_of`` and ``region_at`` ask the class
of a provider named. This module holds the regions' names.
"""

from __future__ import annotations

from pipeline.errors import InvalidArgument

__all__ = ["DEFAULT_REGION", "REGIONS", "REGION_NAMES", "check_region"]

REGIONS: tuple[str, ...] = ("intl", "cn")
DEFAULT_REGION = "intl"
REGION_NAMES = {"intl": "international (Singapore)", "cn": "China (Beijing)"}
"""How messages name a region."""


def check_region(region: str | None) -> str | None:
    """``region`` if it is one voiceprep knows (``intl``, ``cn``) or None; raises :class:`InvalidArgument`."""
    if region is None:
        return None
    value = region.strip().lower()
    if value not in REGIONS:
        raise InvalidArgument(f"region must be one of {', '.join(REGIONS)} (got {region!r})")
    return value
