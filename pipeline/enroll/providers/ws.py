"""WebSocket sessions for realtime synthesis: where the socket goes, opening it safely, reading it with a
timeout, and turning every failure into one redacted :class:`ProviderError`.

Where (the official dashscope SDK's convention, :func:`dashscope_websocket_url`): ``DASHSCOPE_WEBSOCKET_BASE_URL``
when set, else the host of the client's HTTP base URL with ``/api-ws/v1/inference`` (``wss`` for ``https``,
``ws`` for ``http``); Qwen's realtime socket is the same host with ``/api-ws/v1/realtime?model=<model>``.

The key goes in the handshake's ``Authorization`` header, and only to a host the key may go to: the
client's own base URL (scheme ``ws``/``wss`` read as ``http``/``https``), the configured
``DASHSCOPE_WEBSOCKET_BASE_URL``, or a documented host of the provider (the same rule as
:func:`pipeline.enroll.providers.allowed_base_url`, :mod:`~pipeline.enroll.providers.hosts`). Opening is retried like an HTTP request (connection
refused, timeouts, handshake 408/429/5xx), with the client's :class:`~pipeline.enroll.providers.http.Runtime`
limits, waiting what a refused handshake's ``Retry-After`` says (seconds or an HTTP date, up to
``retry_after_cap_s``) instead of the jittered backoff; nothing is retried once audio has started to flow (the caller has it already).

Uses the ``websockets`` library's synchronous client (a maintained implementation of RFC 6455).
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pipeline.enroll.providers.base import ProviderError
from pipeline.enroll.providers.hosts import host_allowed
from pipeline.enroll.providers.http import (
    LOGGER_NAME,
    USER_AGENT,
    backoff_delay,
    parse_retry_after,
    shorten,
)

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection

    from pipeline.enroll.providers.common import VoiceProvider

log = logging.getLogger(LOGGER_NAME)

WEBSOCKET_URL_ENV = "DASHSCOPE_WEBSOCKET_BASE_URL"
"""The dashscope SDK's variable for the WebSocket base URL (its default: the HTTP host, ``/api-ws/v1/inference``)."""
INFERENCE_PATH = "/api-ws/v1/inference"
REALTIME_PATH = "/api-ws/v1/realtime"
MAX_FRAME_BYTES = 16 * 1024 * 1024
"""The largest frame read (audio frames are a few kB; a 16 MB cap bounds memory)."""

HandshakeError = Callable[[int, bytes], ProviderError]
"""``error(status, body)``: the provider's error for a refused handshake (its JSON body read as its API's)."""

_WS_TO_HTTP = {"ws": "http", "wss": "https"}
_HTTP_TO_WS = {"http": "ws", "https": "wss"}


def dashscope_websocket_url(
    http_base_url: str,
    *,
    realtime_model: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The WebSocket URL for a DashScope client whose HTTP base URL is ``http_base_url``.

    ``DASHSCOPE_WEBSOCKET_BASE_URL`` (in ``environ``) when set, else ``ws(s)://<host>/api-ws/v1/inference``.
    With ``realtime_model`` the Qwen realtime socket: the same host with ``/api-ws/v1/realtime?model=...``.
    """
    configured = ((environ or {}).get(WEBSOCKET_URL_ENV) or "").strip().rstrip("/")
    if configured:
        base = configured
    else:
        parts = urllib.parse.urlsplit(http_base_url)
        base = f"{_HTTP_TO_WS.get(parts.scheme, 'wss')}://{parts.netloc}{INFERENCE_PATH}"
    if realtime_model is None:
        return base
    parts = urllib.parse.urlsplit(base)
    path = parts.path
    if path.endswith(INFERENCE_PATH):
        path = path[: -len(INFERENCE_PATH)] + REALTIME_PATH
    elif not path.endswith(REALTIME_PATH):
        path = REALTIME_PATH
    query = urllib.parse.urlencode({"model": realtime_model})
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def as_http(url: str) -> str:
    """``url`` with a ``ws``/``wss`` scheme read as ``http``/``https`` (how the host rule sees a socket)."""
    parts = urllib.parse.urlsplit(url)
    scheme = _WS_TO_HTTP.get(parts.scheme, parts.scheme)
    return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path, parts.query, ""))


def websocket_allowed(client: VoiceProvider, url: str, configured: tuple[str, ...] = ()) -> bool:
    """Whether ``client``'s key may go to the socket ``url``: the client's base URL's origin, a configured
    WebSocket base URL's, or a documented host of its provider (https/wss, port 443)."""
    if urllib.parse.urlsplit(url).scheme not in _WS_TO_HTTP:
        return False
    return host_allowed(as_http(url), [client.base_url, *map(as_http, configured)], client.documented_hosts())


def _shown(url: str) -> str:
    """``url`` without its query (a model name is harmless, but nothing else belongs in a message)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def open_websocket(
    client: VoiceProvider,
    url: str,
    *,
    action: str,
    handshake_error: HandshakeError,
    configured: tuple[str, ...] = (),
) -> ClientConnection:
    """Open the socket ``url`` with ``client``'s key and limits, retrying what may succeed later.

    Raises ``ProviderError``: ``provider_bad_request`` for a host the key may not go to (nothing is sent),
    ``missing_api_key``, the provider's mapped error for a refused handshake (``handshake_error``), or
    ``provider_unavailable`` when every attempt failed to connect.
    """
    from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI
    from websockets.sync.client import connect

    client.require_key()
    if not websocket_allowed(client, url, configured):
        raise ProviderError(
            "provider_bad_request",
            client.redact(
                f"{action}: {_shown(url)} is not {client.base_url} nor a documented {client.provider} host: "
                "the key is not sent there"
            ),
        )
    rt = client.runtime
    headers = {**client.auth_headers()}
    start = rt.clock()
    attempt = 0
    while True:
        attempt += 1
        retry_after: float | None = None
        try:
            conn = connect(
                url,
                additional_headers=headers,
                user_agent_header=USER_AGENT,
                open_timeout=rt.connect_timeout_s,
                close_timeout=2.0,
                max_size=MAX_FRAME_BYTES,
                compression=None,
                ping_interval=None,
            )
            # A connection is its own context manager (websockets 17 warns when one is used without
            # entering it); it is left with close_quietly() once the speech is read.
            return conn.__enter__()
        except InvalidStatus as exc:
            status = exc.response.status_code
            error = handshake_error(status, bytes(exc.response.body or b""))
            retry_after = parse_retry_after(exc.response.headers.get("Retry-After"), now=rt.wall())
            error = ProviderError(
                error.reason,
                shorten(client.redact(f"{action}: handshake refused: {error.message}")),
                retryable=error.retryable,
                http_status=status,
                provider_code=client.redact(error.provider_code) if error.provider_code else None,
                request_id=client.redact(error.request_id) if error.request_id else None,
            )
        except InvalidURI as exc:
            raise ProviderError(
                "provider_bad_request", client.redact(f"{action}: invalid URL: {exc}")
            ) from None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            what = "timed out" if isinstance(exc, TimeoutError) else "connection failed"
            log.debug(client.redact(f"{action}: attempt {attempt} {what}: {exc!r}"))
            detail = f"{_shown(url)} {what} ({type(exc).__name__})"
            error = ProviderError(
                "provider_unavailable", client.redact(f"{action}: {detail}"), retryable=True
            )
        if not error.retryable:
            raise error
        elapsed = rt.clock() - start
        # the server's Retry-After is waited exactly, up to the cap, as the HTTP retries do
        delay = (
            min(retry_after, rt.retry_after_cap_s) if retry_after is not None else backoff_delay(attempt, rt)
        )
        if attempt >= rt.max_attempts or elapsed + delay >= rt.deadline_s:
            raise ProviderError(
                error.reason,
                f"{error.message} (gave up after {attempt} attempts)",
                retryable=True,
                http_status=error.http_status,
                provider_code=error.provider_code,
            )
        log.warning(client.redact(f"{error.message}; retrying in {delay:.2f} s"))
        rt.sleep(delay)


def receive(client: VoiceProvider, conn: ClientConnection, *, action: str, received: int) -> str | bytes:
    """The next frame of ``conn`` within the client's read timeout. A timeout or a connection that closes
    raises ``provider_unavailable`` naming how much audio had arrived (``received`` bytes)."""
    from websockets.exceptions import ConnectionClosed

    timeout = client.runtime.read_timeout_s
    try:
        return conn.recv(timeout=timeout)
    except TimeoutError:
        what = f"no message for {timeout:g} s"
        abort = getattr(conn, "close_socket", None)  # a silent peer: no closing handshake to wait for
        if abort is not None:
            abort()
    except ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd is not None else None
        what = "the connection was dropped" if code in (None, 1006) else f"the connection closed ({code})"
    raise ProviderError(
        "provider_unavailable",
        client.redact(f"{action}: {what} before the end of the audio ({received} bytes had arrived)"),
        retryable=True,
    )


def send_json(
    client: VoiceProvider, conn: ClientConnection, message: Mapping[str, Any], *, action: str
) -> None:
    """Send one JSON text frame; a closed connection raises ``provider_unavailable``."""
    import json

    from websockets.exceptions import ConnectionClosed

    try:
        conn.send(json.dumps(message, ensure_ascii=False))
    except (ConnectionClosed, OSError) as exc:
        raise ProviderError(
            "provider_unavailable",
            client.redact(f"{action}: the connection closed while sending ({type(exc).__name__})"),
            retryable=True,
        ) from None


def close_quietly(conn: ClientConnection) -> None:
    """Close ``conn``; a connection that is already gone is not an error."""
    try:
        conn.close()
    except Exception:  # closing is best effort: the socket may be dead already
        log.debug("closing a websocket failed", exc_info=True)
