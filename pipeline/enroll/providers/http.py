"""The small HTTP layer every provider client shares: timeouts, retries, redaction, request ids.

Every provider client (:class:`~pipeline.enroll.providers.common.VoiceProvider`) sends through its
``request`` on a :class:`requests.Session`, with what this module gives. Each call names an ``action``
(for messages and logs) and says whether re-sending it is harmless:

- ``idempotent=True`` (reads, deletes, uploads, MiniMax clones with a client-chosen id): connection errors,
  timeouts, 408, 409, 429, 5xx, unreadable bodies and the provider codes that mean the same are retried with
  exponential backoff and full jitter, honouring ``Retry-After`` up to a cap, within a total deadline.
- ``idempotent=False`` (DashScope creates): a failure that proves the provider did not act (a connect error
  before anything was sent, 408, 429, throttling codes) is retried the same way; anything after the request
  may have been acted on (read timeout, dropped connection, 5xx, unreadable body) raises
  :class:`~pipeline.enroll.providers.base.OutcomeUnknown` at once, so the caller reconciles instead of re-sending.

``creates=True`` marks an idempotent create (MiniMax clone): if it gives up after an attempt that may have
acted, it raises :class:`OutcomeUnknown` too, never a plain error that would read as "nothing was made".

Every message, log line and exception passes through a :class:`Redactor`: the key itself, ``Bearer ...``,
``Authorization`` and ``xi-api-key`` values become ``***``. Logging goes to ``voiceprep.providers``.
Time, randomness, sessions, the environment and the retry limits come from one :class:`Runtime`, so tests
run instantly and deterministically.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import logging
import math
import os
import random
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3.exceptions

from pipeline.enroll.providers.base import ProviderError

LOGGER_NAME = "voiceprep.providers"
log = logging.getLogger(LOGGER_NAME)
log.addHandler(logging.NullHandler())  # a library stays quiet unless the application configures logging


def _user_agent() -> str:
    try:
        from importlib.metadata import version

        return f"voiceprep/{version('voiceprep')}"
    except Exception:  # not installed as a distribution (a source checkout)
        return "voiceprep"


USER_AGENT = _user_agent()

RETRYABLE_STATUSES = frozenset({408, 409, 429})
"""Besides every 5xx: the statuses a later identical request may succeed on."""

NOT_ACTED_STATUSES = frozenset({408, 429})
"""Statuses that prove the provider did not act on the request (so even a create may be re-sent)."""

REDACTED = "***"
"""What every secret becomes in text."""
MIN_FRAGMENT = 8
"""A run of this many characters of a known key, anywhere in a text, is redacted (a cut or partly echoed key)."""
MAX_MESSAGE_CHARS = 400
"""Error messages are cut to this many characters, always after redaction (:func:`shorten`)."""
# A key-like field name on its own (not the tail of a word such as ``InvalidApiKey``), then ``:``/``=``,
# then a value that is not a plain word (a secret has digits or symbols; ``Invalid`` is not one) nor a
# ``<placeholder>`` (``export X_API_KEY=<your key>`` is advice, not a secret).
_FIELD_RE = re.compile(
    r"(?i)(?<![a-z0-9])((?:x[-_])?(?:xi-)?api[-_]?key|authorization|access[-_]?key|secret|signature|token)"
    r"(['\"]?\s*[:=]\s*['\"]?)(?!bearer\b|\*\*\*|<)(?![a-z]+(?:[\s'\",;}&.]|$))[^\s'\",;}&]+"
)
_BEARER_RE = re.compile(r"(?i)\b(bearer|basic)\s+(?!\*\*\*)[^\s'\",;}&]+")


class Redactor:
    """Removes secrets from text: every run of >= :data:`MIN_FRAGMENT` characters of a known key (so a key
    cut short or echoed in part goes too), ``Bearer <token>`` and the values of key-like fields and headers
    (``Authorization``, ``xi-api-key``, ``api_key=``, ``token``, ``signature``...)."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: list[str] = []
        self._grams: set[str] = set()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Also redact ``secret`` (and its URL-encoded forms) from now on; short strings are ignored."""
        if not secret or len(secret) < 4:
            return
        for form in {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}:
            if form not in self._secrets:
                self._secrets.append(form)
            self._grams.update(form[i : i + MIN_FRAGMENT] for i in range(len(form) - MIN_FRAGMENT + 1))
        self._secrets.sort(key=len, reverse=True)

    def _fragments(self, text: str) -> str:
        """``text`` with every run of characters covered by key n-grams replaced by ``***``."""
        if not self._grams or len(text) < MIN_FRAGMENT:
            return text
        spans: list[list[int]] = []
        for i in range(len(text) - MIN_FRAGMENT + 1):
            if text[i : i + MIN_FRAGMENT] in self._grams:
                if spans and i <= spans[-1][1]:
                    spans[-1][1] = i + MIN_FRAGMENT
                else:
                    spans.append([i, i + MIN_FRAGMENT])
        if not spans:
            return text
        parts, last = [], 0
        for start, end in spans:
            parts += [text[last:start], REDACTED]
            last = end
        return "".join([*parts, text[last:]])

    def __call__(self, text: object) -> str:
        """``text`` as a string with every secret replaced by ``***``."""
        out = str(text)
        for secret in self._secrets:
            out = out.replace(secret, REDACTED)
        out = self._fragments(out)
        out = _FIELD_RE.sub(lambda m: m.group(1) + m.group(2) + REDACTED, out)
        return _BEARER_RE.sub(lambda m: f"{m.group(1)} {REDACTED}", out)

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"


def shorten(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters (with ``...``). Only ever call it on text already redacted:
    a cut made first could leave part of a key that the redaction no longer recognises."""
    return text if len(text) <= limit else text[: max(0, limit - 3)] + "..."


def scrub(text: str) -> str:
    """``text`` as :class:`Redactor` leaves it, also without the value of any environment variable whose
    name ends in ``_API_KEY``: the second guard on every message voiceprep stores or prints."""
    return Redactor(v for k, v in os.environ.items() if k.endswith("_API_KEY"))(text)


@dataclass(frozen=True)
class Runtime:
    """Everything the provider clients take from the world, in one object tests replace as a whole.

    Time (``sleep``; ``clock``, monotonic; ``wall``, for ``Retry-After`` dates), randomness (``rng``, the
    backoff jitter), connections (``session``, a :class:`requests.Session` factory), the environment keys and
    base URLs are read from (``environ``), and how hard to try, in seconds: ``max_attempts`` counts the first
    try; a wait is ``uniform(0, min(max_delay_s, base_delay_s * 2**k))`` (full jitter) unless the answer
    carried ``Retry-After``, which is waited exactly, up to ``retry_after_cap_s``; no wait and no new attempt
    goes past ``deadline_s`` from the call's start.
    """

    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    rng: random.Random = field(default_factory=random.Random)
    session: Callable[[], requests.Session] = requests.Session
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    max_attempts: int = 6
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    retry_after_cap_s: float = 60.0
    deadline_s: float = 180.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0


Interpret = Callable[[requests.Response, bool], Any]
"""``interpret(response, maybe_acted)``: the data of a good answer, else raise :class:`ProviderError`.
``maybe_acted`` is True when an earlier attempt of this call may have reached the provider and been acted on."""
RequestIdOf = Callable[[requests.Response], str | None]


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta seconds or an HTTP date); None if absent/bad.

    ``now`` is the wall-clock time (``time.time()``) an HTTP date is measured from; a date in the past is 0.
    """
    text = str(value or "").strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.replace(tzinfo=when.tzinfo or dt.UTC).timestamp() - now  # RFC 9110 dates are GMT
    return max(0.0, seconds) if math.isfinite(seconds) else None


def backoff_delay(attempt: int, runtime: Runtime) -> float:
    """The full-jitter wait after failed attempt number ``attempt`` (1-based)."""
    ceiling = min(runtime.max_delay_s, runtime.base_delay_s * (2 ** max(0, attempt - 1)))
    return runtime.rng.uniform(0.0, ceiling)


def failed_before_sending(exc: BaseException) -> bool:
    """True when ``exc`` proves nothing reached the server (connect refused, DNS, connect timeout)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ProxyError | requests.exceptions.SSLError):
        return True
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError):
            return True
        if isinstance(item, urllib3.exceptions.MaxRetryError):
            todo.append(item.reason)
        if isinstance(item, BaseException):
            todo.extend(a for a in item.args if isinstance(a, BaseException))
            todo.append(item.__cause__)
            todo.append(item.__context__)
    return False


_STATUS_REASONS = {
    401: "provider_auth",
    402: "provider_balance",
    403: "provider_access",
    429: "provider_rate_limited",
}


def status_error(
    status: int, message: str, *, code: str | None = None, known: tuple[str, bool] | None = None
) -> ProviderError:
    """The error for an answer with HTTP ``status``: ``known`` ``(reason, retryable)`` when the provider's own
    ``code`` says more, else from the status: 401 auth, 402 balance, 403 access, 429 rate limited, 408, 409
    and 5xx unavailable (all four retryable: a later identical request may succeed), else bad request."""
    if known is None:
        retryable = status in RETRYABLE_STATUSES or status >= 500
        known = (
            _STATUS_REASONS.get(status, "provider_unavailable" if retryable else "provider_bad_request"),
            retryable,
        )
    return ProviderError(known[0], message, retryable=known[1], http_status=status, provider_code=code)


def error_text(status: int, code: str | None, message: str | None) -> str:
    """``code: message (HTTP status)``, with as much of it as the answer gave."""
    text = f"{code}: {message}" if code and message else (message or code or f"HTTP {status}")
    return f"{text} (HTTP {status})"


def unreadable(message: str, status: int | None = None) -> ProviderError:
    """The error for an answer without what it must carry (not JSON, a field missing): retryable, and for a
    create that may have acted it reads as a lost answer."""
    return ProviderError("provider_unavailable", message, retryable=True, http_status=status)


def requiring(interpret: Interpret, *path: str) -> Interpret:
    """``interpret``, and the data must hold a value at ``path`` (``"output", "voice_id"``), else it is
    :func:`unreadable`."""

    def checked(response: requests.Response, maybe_acted: bool) -> Any:
        data = value = interpret(response, maybe_acted)
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None or value == "":
            raise unreadable(f"the answer lacks {'.'.join(path)}", response.status_code)
        return data

    return checked


def json_or_none(response: requests.Response) -> Any:
    """The response's JSON body, or None when it is empty or not JSON."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def safe_request_id(request_id_of: RequestIdOf, response: requests.Response) -> str | None:
    """The provider's request id of ``response``, or None (a request id is a nicety: never an error)."""
    try:
        rid = request_id_of(response)
    except Exception:  # a request id is a nicety; never let it break a call
        return None
    return str(rid) if rid else None


def download_interpret(max_bytes: int, errors: Interpret | None = None) -> Interpret:
    """An interpreter for audio answers (downloads, synthesis): 200 with a non-empty body up to ``max_bytes``;
    another status is read by ``errors`` (the provider's error reader) when given."""

    def interpret(response: requests.Response, maybe_acted: bool) -> bytes:
        if response.status_code != 200:
            if errors is not None:
                errors(response, maybe_acted)
            raise status_error(response.status_code, f"download answered HTTP {response.status_code}")
        if not response.content:
            raise unreadable("download returned no bytes")
        if len(response.content) > max_bytes:
            raise ProviderError(
                "provider_bad_request", f"download is {len(response.content)} bytes (limit {max_bytes})"
            )
        return response.content

    return interpret


# --- configuration and audio helpers shared by the provider modules ---

AUDIO_MIME = {
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".mp4": "audio/mp4",
    ".flac": "audio/flac",
}


def audio_mime(path: os.PathLike[str] | str) -> str:
    """The MIME type providers expect for an audio file, from its suffix (WAV when unknown)."""
    return AUDIO_MIME.get(os.path.splitext(str(path))[1].lower(), "audio/wav")


def data_uri(content: bytes, mime: str) -> str:
    """``data:<mime>;base64,<...>`` for ``content``."""
    return f"data:{mime};base64," + base64.b64encode(content).decode("ascii")


def data_uri_size(n_bytes: int, mime: str) -> int:
    """The length in characters of the data URI of ``n_bytes`` bytes (base64 is 4/3 of the bytes, padded)."""
    return len(f"data:{mime};base64,") + 4 * ((n_bytes + 2) // 3)


SECRET_HEADERS = frozenset(
    {"authorization", "xi-api-key", "x-api-key", "api-key", "proxy-authorization", "cookie"}
)
"""Headers whose values are secrets: shown as ``***``."""


def shown_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: Any,
    *,
    audio_bytes: int = 0,
    encoded_bytes: int = 0,
    redact: Callable[[str], str] | None = None,
    max_chars: int = 400,
) -> dict[str, Any]:
    """A request as it would be sent, as plain data for ``--dry-run``: secret headers ``***``, every string
    passed through ``redact``, long strings (audio) and bytes elided. ``audio_bytes``: the clip's size;
    ``encoded_bytes``: its size as sent when encoded in the request (base64), else 0."""
    redact = redact or Redactor()

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            text = redact(value)
            return text if len(text) <= max_chars else f"<{len(text)} characters elided>"
        if isinstance(value, Mapping):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if isinstance(value, bytes | bytearray):
            return f"<{len(value)} bytes elided>"
        return value

    return {
        "method": method,
        "url": clean(url),
        "headers": {k: (REDACTED if k.lower() in SECRET_HEADERS else clean(v)) for k, v in headers.items()},
        "body": clean(body),
        "audio_bytes": audio_bytes,
        "encoded_bytes": encoded_bytes,
    }


def elided(n_bytes: int, what: str = "audio") -> str:
    """The placeholder shown instead of audio in dry-run bodies."""
    return f"<{what}: {n_bytes} bytes elided>"
