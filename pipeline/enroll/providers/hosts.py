"""Where a key may go: the one host rule every request (HTTP or WebSocket) of a provider client obeys.

A key is sent only to the origin (scheme, host, port) of a base URL the user configured (flag, config
file, environment variable), or over https to one of the provider's documented hosts (``fnmatch``
patterns such as ``*.maas.aliyuncs.com``, port 443). :func:`pipeline.enroll.providers.allowed_base_url`
applies it per provider; :mod:`~pipeline.enroll.providers.ws` applies it to sockets (``ws``/``wss`` read
as ``http``/``https``).
"""

from __future__ import annotations

import fnmatch
import urllib.parse
from collections.abc import Iterable


def origin(url: str) -> tuple[str, str, int | None] | None:
    """``(scheme, host, port)`` of an http(s) URL (default ports filled in), or None."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower().rstrip("."), port


def host_allowed(url: str, configured: Iterable[str], documented_hosts: Iterable[str]) -> bool:
    """Whether a key may be sent to ``url``: the origin of a ``configured`` base URL, or https on port 443
    to a host matching one of ``documented_hosts``."""
    where = origin(url)
    if where is None:
        return False
    if any(origin(c) == where for c in configured if c):
        return True
    scheme, host, port = where
    return scheme == "https" and port == 443 and any(fnmatch.fnmatchcase(host, p) for p in documented_hosts)
