"""The contract every provider client meets (:class:`VoiceProvider`), and what the vendor clients
(:mod:`~pipeline.enroll.providers.dashscope`, :mod:`~pipeline.enroll.providers.minimax`,
:mod:`~pipeline.enroll.providers.elevenlabs`) share: construction (base URL, key), the HTTP calls (:meth:`VoiceProvider.request`: retries, redaction, lost answers), ``repr``,
clip and model checks, review polling, signed-URL downloads, and matching remote voices by id, name and
creation time.

Each vendor module keeps its own contract (endpoints, bodies, error codes); this module knows none of it.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import logging
import os
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import requests

from pipeline.enroll.providers.base import (
    MissingApiKey,
    OutcomeUnknown,
    ProviderError,
    VoiceRecord,
    normalize_base_url,
)
from pipeline.enroll.providers.http import (
    LOGGER_NAME,
    NOT_ACTED_STATUSES,
    REDACTED,
    USER_AGENT,
    Interpret,
    Redactor,
    RequestIdOf,
    Runtime,
    backoff_delay,
    download_interpret,
    failed_before_sending,
    parse_retry_after,
    safe_request_id,
    shorten,
    shown_request,
)
from pipeline.enroll.providers.regions import DEFAULT_REGION, REGION_NAMES, check_region
from pipeline.enroll.providers.speech import SPEECH_SAMPLE_RATE, Speech, wav_bytes
from pipeline.errors import InvalidArgument

if TYPE_CHECKING:
    from pipeline.rules.families import NameRule

log = logging.getLogger(LOGGER_NAME)

_NAIVE_SLACK = dt.timedelta(hours=14)  # provider times without a zone: allow any offset from UTC
_NOT_FOUND_RE = re.compile(
    r"(?i)not\s+(?:be\s+)?(?:exist|found)|does\s*n[o']t\s+exist|no\s+such|unknown\s+voice"
)


def _same_origin(url: str, base_url: str) -> bool:
    """Whether ``url`` has the scheme, host and port of ``base_url`` (where the key may go)."""
    a, b = urllib.parse.urlsplit(url), urllib.parse.urlsplit(base_url)
    try:
        return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)
    except ValueError:  # a port that is not a number
        return False


class VoiceProvider:
    """One family's client (CosyVoice, Qwen-TTS, MiniMax...): family, base URL, key, retries, limits, the
    HTTP layer, and the calls submit, sync and delete make.

    A subclass sets the class attributes (``provider``, its hosts and key variables per region,
    ``default_family``, how the key is sent) and its module's interpreter and request-id reader
    (``_interpret``, ``_request_id_of``, as static methods); its own ``__init__`` takes its vendor options
    and passes the rest here.
    ``require_key=False`` builds a client without a key (``--dry-run``); any network call then raises
    ``missing_api_key``. A client resolves its host (:meth:`http_base_url`), ``region`` (:meth:`region_of`)
    and key variables (``key_envs``, :meth:`region_key_envs`) from its class's table
    (:mod:`~pipeline.enroll.providers.regions` for the rules); ``region_models`` (the family spec's models
    for that region, set by ``make_provider``) makes :meth:`validate` refuse any other model before
    anything is sent.
    """

    provider: ClassVar[str] = ""
    """``dashscope``, ``minimax`` or ``elevenlabs``."""
    hosts: ClassVar[Mapping[str, str]] = {}
    """Region -> the documented default base URL."""
    host_patterns: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    """Region -> ``fnmatch`` patterns of that region's documented hosts (https only)."""
    other_hosts: ClassVar[tuple[str, ...]] = ()
    """Documented hosts of no region voiceprep names: the key may go there, the region is not inferred."""
    key_env: ClassVar[str] = ""
    """The plain key variable (read after the region's own ``<PROVIDER>_<REGION>_API_KEY``)."""
    base_url_envs: ClassVar[tuple[str, ...]] = ()
    """The variables that may name the host, first set wins."""
    default_family: ClassVar[str] = ""
    auth_header: ClassVar[str] = "Authorization"
    auth_scheme: ClassVar[str | None] = "Bearer"
    max_download_bytes: ClassVar[int] = 50_000_000
    """The largest audio answer (a download, a synthesis) read."""
    _interpret: Interpret  # set with staticmethod(...) by each vendor class
    _request_id_of: RequestIdOf

    def __init__(
        self,
        *,
        family: str | None = None,
        base_url: str | None = None,
        name_rule: NameRule | None = None,
        target_models: Sequence[str] = (),
        max_bytes: int | None = None,
        runtime: Runtime | None = None,
        require_key: bool = True,
        region: str | None = None,
        region_models: Sequence[str] | None = None,
    ) -> None:
        self.runtime = runtime or Runtime()
        env = self.runtime.environ
        self.family = family or self.default_family
        self.name_rule = name_rule
        url = self.http_base_url(region, base_url=base_url, environ=env)
        self.base_url = self._normalise_base_url(url)
        self.region: str | None = self.region_of(url) or check_region(region) or DEFAULT_REGION
        key_envs = self.region_key_envs(self.region)
        self.target_models = tuple(target_models)
        self.region_models = tuple(region_models) if region_models is not None else None
        self.max_bytes = max_bytes
        # the key comes only from here: the region's own variable, then the provider's plain one
        self.key_envs = key_envs
        self._api_key = next((k for name in key_envs if (k := (env.get(name) or "").strip())), None)
        self.redact = Redactor([self._api_key])
        self.session = self.runtime.session()
        if require_key:
            self.require_key()

    # --- hosts and keys per region (the rules: pipeline.enroll.providers.regions) --------------------
    @classmethod
    def region_key_envs(cls, region: str) -> tuple[str, ...]:
        """The variables a key for ``region`` is read from, first set wins (the region's own, then plain)."""
        if len(set(cls.hosts.values())) <= 1:  # one host everywhere: one key
            return (cls.key_env,)
        return (cls.key_env.replace("_API_KEY", f"_{region.upper()}_API_KEY"), cls.key_env)

    @classmethod
    def documented_hosts(cls) -> tuple[str, ...]:
        """The provider's own API hosts (``fnmatch`` patterns, https only, any region): where a key may
        always go."""
        return tuple(p for ps in cls.host_patterns.values() for p in ps) + cls.other_hosts

    @classmethod
    def region_of(cls, url: str) -> str | None:
        """The region whose documented host ``url`` is on (https only), or None (a proxy, a test server, a
        documented host of a region voiceprep does not name). ElevenLabs' one host answers None: it is in
        every region."""
        try:
            parts = urllib.parse.urlsplit(url.strip())
        except ValueError:
            return None
        if parts.scheme != "https" or not parts.hostname:
            return None
        host = parts.hostname.lower().rstrip(".")
        found = {
            r
            for r, patterns in cls.host_patterns.items()
            if any(fnmatch.fnmatchcase(host, p) for p in patterns)
        }
        return found.pop() if len(found) == 1 else None

    @classmethod
    def http_base_url(
        cls,
        region: str | None = None,
        *,
        base_url: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> str:
        """The HTTP base URL in ``region`` (the order: :mod:`~pipeline.enroll.providers.regions`): ``base_url``,
        else the first of ``base_url_envs`` set (one naming the documented host of another region than
        the one asked for is skipped with a warning), else the region's documented host.

        Raises:
            InvalidArgument: an unknown region, a base URL that is not an http(s) URL, or an explicit
                ``base_url`` on the documented host of another region than ``region``.
        """
        env = os.environ if environ is None else environ
        asked = check_region(region)
        chosen: tuple[str, str] | None = None
        if base_url:
            chosen = (base_url, "base_url")
        else:
            for name in cls.base_url_envs:
                value = (env.get(name) or "").strip()
                if not value:
                    continue
                found = cls.region_of(value)
                if asked is not None and found is not None and found != asked:
                    log.warning(
                        f"{name} names the {REGION_NAMES[found]} host but the region asked for is "
                        f"{REGION_NAMES[asked]}: {name} is not used"
                    )
                    continue
                chosen = (value, name)
                break
        if chosen is None:
            return normalize_base_url(cls.hosts[asked or DEFAULT_REGION])
        url, source = chosen
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            example = cls.hosts.get(DEFAULT_REGION, "https://host/path")
            raise InvalidArgument(f"{source}: expected an http(s) URL such as {example} (got {url!r})")
        found = cls.region_of(url)
        if asked is not None and found is not None and found != asked:
            raise InvalidArgument(
                f"base_url {url} is the {REGION_NAMES[found]} host of {cls.provider}, but the region is "
                f"{asked} ({REGION_NAMES[asked]}): a voice and its key live in one region"
            )
        return normalize_base_url(url)

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(family={self.family!r}, base_url={self.base_url!r}, region={self.region!r})"

    # --- HTTP: every call goes through request() ---------------------------------------------------
    def require_key(self) -> None:
        """Raise :class:`MissingApiKey` (``missing_api_key``) naming the environment variable when no key is set."""
        if self._api_key is None:
            default_region = self.region in (None, "intl")  # named as before regions: the plain variable
            raise MissingApiKey(
                self.key_envs[-1] if default_region else self.key_envs[0],
                provider=self.provider,
                family=self.family,
                alternatives=() if default_region else self.key_envs,
                region=self.region,
            )

    def url(self, path: str) -> str:
        """``base_url`` joined with ``path`` (absolute URLs pass through)."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def show(
        self, method: str, path: str, body: Any, *, headers: Mapping[str, str] | None = None, **sizes: int
    ) -> dict[str, Any]:
        """The request to ``path`` as a dry run shows it (:func:`shown_request`: ``audio_bytes``,
        ``encoded_bytes``), with the key header masked."""
        headers = {**self.auth_headers(redacted=True), **(headers or {})}
        return shown_request(method, self.url(path), headers, body, redact=self.redact, **sizes)

    def auth_headers(self, *, redacted: bool = False) -> dict[str, str]:
        """The header that carries the key (``***`` in place of the key when ``redacted``)."""
        secret = REDACTED if redacted or self._api_key is None else self._api_key
        value = f"{self.auth_scheme} {secret}" if self.auth_scheme else secret
        return {self.auth_header: value}

    def request(
        self,
        method: str,
        url: str,
        *,
        action: str,
        idempotent: bool = True,
        creates: bool = False,
        authenticated: bool = True,
        interpret: Interpret | None = None,
        request_id_of: RequestIdOf | None = None,
        json: Any = None,
        data: Any = None,
        files: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        on_send: Callable[[], object] | None = None,
    ) -> tuple[Any, str | None]:
        """Send the request with retries; return ``(interpreted data, the provider's request id)`` or raise.

        Raises :class:`ProviderError` (mapped reason, redacted message) or :class:`OutcomeUnknown` (see the
        module docstring for when). Files must be given as bytes so a retry can re-send them. With
        ``stream`` the body is not read before ``interpret`` sees the response (a streamed synthesis:
        its interpreter returns the open response for a good answer, and reads the body of a bad one).
        ``on_send`` is called once, just before the **last block of the request's body** is handed to the
        socket (:class:`_SentBeforeLastBlock`): a create passes the caller's "sent" hook here. Whatever
        failed before it (an upload, a refused URL, a kill while a large multipart or inline-audio body
        was still going out) left the server without a whole request, so it cannot have acted; from the
        hook on, it may have. An attempt that fails before the hook fires is retried with the hook armed.
        """
        if authenticated:
            self.require_key()
        interpret = interpret or self._interpret
        request_id_of = request_id_of or self._request_id_of
        full_url = self.url(url)
        host = urllib.parse.urlsplit(full_url).netloc
        if authenticated and not _same_origin(full_url, self.base_url):  # an absolute URL from an answer
            raise ProviderError(
                "provider_bad_request",
                self.redact(f"{action}: {host} is not {self.base_url}: the key is not sent there"),
            )
        send_headers = {"User-Agent": USER_AGENT, **(headers or {})}
        if authenticated:
            send_headers.update(self.auth_headers())
        rt = self.runtime
        start = rt.clock()
        attempt = 0
        maybe_acted = False
        while True:
            attempt += 1
            retry_after: float | None = None
            t0 = rt.clock()
            hook = None
            if on_send is not None:

                def hook(send: Callable[[], object] = on_send) -> None:
                    nonlocal on_send
                    on_send = None  # fired: a later attempt sends without it
                    send()

            try:
                response = self._send(
                    method,
                    full_url,
                    headers=send_headers,
                    json=json,
                    data=data,
                    files=files,
                    params=params,
                    timeout=(rt.connect_timeout_s, rt.read_timeout_s),
                    stream=stream,
                    before_last_block=hook,
                )
            except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
                raise ProviderError(
                    "provider_bad_request", self.redact(f"{action}: invalid URL {full_url}: {exc}")
                ) from None
            except requests.exceptions.RequestException as exc:
                what = "timed out" if isinstance(exc, requests.exceptions.Timeout) else "connection failed"
                detail = f"{method} {host} {what} ({type(exc).__name__})"
                log.debug(self.redact(f"{action}: attempt {attempt} {what}: {exc}"))
                if isinstance(exc, requests.exceptions.SSLError):
                    raise ProviderError(
                        "provider_unavailable", self.redact(f"{action}: {detail}: {exc}")
                    ) from None
                if not failed_before_sending(exc):
                    if not idempotent:
                        raise self._unknown(action, detail, None) from None
                    maybe_acted = True
                error = ProviderError("provider_unavailable", detail, retryable=True)
            else:
                request_id = self._redacted_id(safe_request_id(request_id_of, response))
                log.debug(
                    self.redact(
                        f"{action}: {method} {full_url} -> {response.status_code} "
                        f"in {rt.clock() - t0:.2f} s (attempt {attempt}, request id {request_id})"
                    )
                )
                try:
                    value = interpret(response, maybe_acted)
                except OutcomeUnknown as err:
                    detail = shorten(self.redact(err.message))  # the server's text: redact, then cut
                    raise self._unknown(action, detail, err.request_id or request_id) from None
                except ProviderError as err:
                    error = self._copy(
                        err,
                        shorten(self.redact(err.message)),  # the server's text: redact first, then cut
                        http_status=err.http_status if err.http_status is not None else response.status_code,
                        provider_code=self.redact(err.provider_code)
                        if err.provider_code is not None
                        else None,
                        request_id=err.request_id or request_id,
                    )
                    if not error.retryable:
                        final = self._copy(error, f"{action}: {error.message}")
                        log.info(final.message)
                        raise final from None
                    acted = not (
                        response.status_code in NOT_ACTED_STATUSES or error.reason == "provider_rate_limited"
                    )
                    if acted:
                        if not idempotent:
                            raise self._unknown(action, error.message, error.request_id) from None
                        maybe_acted = True
                    retry_after = parse_retry_after(response.headers.get("Retry-After"), now=rt.wall())
                else:
                    return value, request_id
            # a retryable failure: wait and try again, or give up
            elapsed = rt.clock() - start
            if retry_after is not None:
                delay = min(retry_after, rt.retry_after_cap_s)
            else:
                delay = backoff_delay(attempt, rt)
            out_of_attempts = attempt >= rt.max_attempts
            out_of_time = elapsed + delay >= rt.deadline_s
            if out_of_attempts or out_of_time:
                why = f"{attempt} attempts" if out_of_attempts else f"the {rt.deadline_s:g} s deadline"
                detail = f"{error.message} (gave up after {why}, {elapsed:.1f} s)"
                if creates and maybe_acted:
                    raise self._unknown(
                        action, detail, error.request_id, lost="an earlier attempt may have created it"
                    )
                final = self._copy(error, f"{action}: {detail}")
                log.warning(final.message)
                raise final from None
            log.warning(
                self.redact(
                    f"{action}: {error.message}; retrying in {delay:.2f} s "
                    f"(attempt {attempt + 1} of {rt.max_attempts})"
                )
            )
            rt.sleep(delay)

    def _send(
        self,
        method: str,
        url: str,
        *,
        before_last_block: Callable[[], object] | None,
        timeout: tuple[float, float],
        stream: bool,
        **parts: Any,
    ) -> requests.Response:
        """One attempt through the session, as ``Session.request`` makes it (redirects never followed);
        with ``before_last_block`` the prepared body is sent through :class:`_SentBeforeLastBlock`."""
        if before_last_block is None:
            return self.session.request(
                method, url, timeout=timeout, allow_redirects=False, stream=stream, **parts
            )
        request = requests.Request(
            method.upper(),
            url,
            headers=parts.get("headers"),
            json=parts.get("json"),
            data=parts.get("data") or {},
            files=parts.get("files"),
            params=parts.get("params") or {},
        )
        prepared = self.session.prepare_request(request)
        if isinstance(prepared.body, bytes | bytearray):
            prepared.body = _SentBeforeLastBlock(bytes(prepared.body), before_last_block)  # type: ignore[assignment]
        else:  # no body, or one requests keeps as text (a form): nothing large to wait for
            before_last_block()
        settings = self.session.merge_environment_settings(prepared.url, {}, stream, None, None)
        return self.session.send(prepared, timeout=timeout, allow_redirects=False, **settings)

    def _unknown(
        self,
        action: str,
        detail: str,
        request_id: str | None,
        *,
        lost: str = "the request may have been processed, so it is not re-sent",
    ) -> OutcomeUnknown:
        message = self.redact(f"{action}: {detail}; {lost}")
        log.warning(message)
        return OutcomeUnknown(message, request_id=self._redacted_id(request_id))

    def _redacted_id(self, request_id: str | None) -> str | None:
        """A request id as the server gave it, unless it carries the key (a hostile server): redacted."""
        return self.redact(request_id) if request_id else None

    def _copy(self, err: ProviderError, message: str, **changes: Any) -> ProviderError:
        """``err`` with ``message`` (redacted) and ``changes`` to its other fields."""
        fields = {
            "retryable": err.retryable,
            "http_status": err.http_status,
            "provider_code": err.provider_code,
            "request_id": err.request_id,
            **changes,
        }
        fields["request_id"] = self._redacted_id(fields["request_id"])
        return ProviderError(err.reason, self.redact(message), **fields)

    @staticmethod
    def _normalise_base_url(base_url: str) -> str:
        """The resolved base URL as the client stores it (a subclass may strip a suffix)."""
        return base_url

    def validate(self, record: VoiceRecord) -> bytes:
        """Check the record's name, model and clip before anything is sent; return the clip's bytes.

        Raises :class:`InvalidArgument` for a name outside the family spec's ``name_rule``, a model not in
        ``target_models`` (both as :func:`~pipeline.enroll.providers.make_provider` gives them from the spec)
        or a missing clip, and ``ProviderError("too_large")`` over ``max_bytes``.
        """
        rule = self.name_rule
        if rule is not None and not rule.matches(record.name or ""):
            raise InvalidArgument(
                f"name: {record.name!r} is not a {self.family} {rule.field} ({rule.pattern}, "
                f"{rule.min_length}-{rule.max_length} characters)"
            )
        if self.target_models and record.target_model not in self.target_models:
            raise InvalidArgument(
                f"target_model: {record.target_model!r} is not a {self.family} model "
                f"(known: {', '.join(self.target_models)})"
            )
        if self.region_models is not None and record.target_model not in self.region_models:
            raise InvalidArgument(
                region_refusal(self.family, record.target_model, self.region, self.region_models)
            )
        path = Path(record.clip_path or "")
        if not path.is_file():
            raise InvalidArgument(f"clip_path: {path} is not a file")
        content = path.read_bytes()
        if self.max_bytes is not None and len(content) > self.max_bytes:
            raise ProviderError(
                "too_large",
                f"{path.name} is {len(content)} bytes; {self.family} accepts at most {self.max_bytes}",
            )
        return content

    def download(self, url: str) -> bytes:
        """Fetch an audio file the provider handed out (a signed URL: sent without our key)."""
        content, _ = self.request(
            "GET",
            url,
            action=f"{self.family} download",
            authenticated=False,
            interpret=download_interpret(self.max_download_bytes),
            request_id_of=lambda r: None,
        )
        return content

    def _remote(
        self,
        voice_id: str,
        status: str = "ready",
        *,
        target_model: str | None = None,
        created_at: str | None = None,
        name: str | None = None,
    ) -> VoiceRecord:
        """A voice as this provider reports it (not in the ledger: id 0, origin ``remote``)."""
        return VoiceRecord(
            provider=self.provider,
            base_url=self.base_url,
            family=self.family,
            voice_id=voice_id,
            status=status,
            target_model=target_model,
            created_at=created_at,
            name=name,
            origin="remote",
        )

    def language_not_sent(self, language: str | None) -> str | None:
        """Why ``language`` will not be sent with a create (a language the vendor does not list for its
        language field: the field is left out and the service detects the language), or None when it is
        sent, or when there is nothing to send (no language, ``auto``, or a create without a language field)."""
        return None

    def prepare_create(
        self, record: VoiceRecord, *, preview_text: str | None = None, language: str | None = None
    ) -> list[dict[str, Any]]:
        """The requests ``create_voice`` would send, as :func:`~pipeline.enroll.providers.http.shown_request`
        gives them (secrets and audio elided); sends nothing."""
        raise NotImplementedError

    def create_voice(
        self,
        record: VoiceRecord,
        *,
        preview_text: str | None = None,
        language: str | None = None,
        on_send: Callable[[], object] | None = None,
    ) -> VoiceRecord:
        """Create the voice ``record`` describes, once; answer ``record`` with ``voice_id``, ``status`` and
        ``request_ids``. Raises :class:`OutcomeUnknown` when the answer to the create call itself was lost;
        never re-sends a create that may have succeeded (MiniMax may, since a duplicate id is answered with
        2039 and no second voice). ``preview_text`` asks for a preview where the create call makes it.

        ``on_send`` is called exactly when the create request itself is about to go out (through
        :meth:`request`), after any preparatory work (a temporary upload, a file upload, reading and
        checking the clip). Only from then on can the create's outcome be unknown: a failure or a kill
        before it means no voice was made."""
        raise NotImplementedError

    def find_voice(self, record: VoiceRecord, *, since: str | None = None) -> VoiceRecord | None:
        """The remote voice a lost create for ``record`` made, if any (matched by name and time)."""
        raise NotImplementedError

    def list_voices(self) -> list[VoiceRecord]:
        """Every voice of this family's kind on the account (all pages)."""
        raise NotImplementedError

    def delete_voice(self, voice_id: str) -> None:
        """Delete the voice; deleting a voice that is already gone is not an error."""
        raise NotImplementedError

    def speak(
        self,
        voice_id: str,
        *,
        target_model: str,
        text: str,
        sample_rate: int = SPEECH_SAMPLE_RATE,
        language: str | None = None,
    ) -> Speech:
        """Synthesise ``text`` with the voice and its ``target_model``: 16-bit mono PCM that streams as it
        arrives (:class:`~pipeline.enroll.providers.speech.Speech`). The call is made (connected, task
        started) when this returns; a failure then raises ``ProviderError``, one while reading
        :class:`~pipeline.enroll.providers.speech.SpeechInterrupted`. ``language`` (a language code) goes
        in the synthesis protocol's own language field when it lists the language
        (:meth:`speech_language_not_sent` says when it does not)."""
        raise NotImplementedError

    def speech_language_not_sent(self, language: str | None) -> str | None:
        """Why :meth:`speak` will not send ``language`` (the protocol has no such field, or does not list
        the language), or None when it is sent or there is none. Default: the synthesis takes no language."""
        if not language or language.lower() == "auto":
            return None
        return f"language {language} not sent: {self.family} synthesis takes no language from voiceprep"

    def preview(self, voice_id: str, *, target_model: str, text: str) -> bytes:
        """Synthesise ``text`` with the voice (through :meth:`speak`, so every voice can be heard, realtime
        models included) and return a WAV file's bytes."""
        speech = self.speak(voice_id, target_model=target_model, text=text)
        return wav_bytes(speech.read_all(), speech.sample_rate)

    def update_voice(
        self, voice_id: str, record: VoiceRecord, *, on_send: Callable[[], object] | None = None
    ) -> list[str]:
        """Enrol the voice again from ``record``'s clip, keeping its id; returns request ids. Only CosyVoice
        documents this (``update_voice``); the others raise :class:`InvalidArgument`. ``on_send`` is called
        just before the update request itself goes out (after any upload), as for :meth:`create_voice`."""
        raise InvalidArgument(
            f"{self.family} cannot re-enrol a voice under the same id (only cosyvoice documents "
            "update_voice); submit the clip as a new voice"
        )

    @staticmethod
    def _absent(err: ProviderError) -> bool:
        """Whether ``err`` says the voice asked about does not exist (404, or a refusal saying so)."""
        return err.http_status == 404 or (
            err.reason == "provider_bad_request" and bool(_NOT_FOUND_RE.search(err.message))
        )

    def _delete(self, send: Callable[[], object], voice_id: str) -> None:
        """Send a delete; "no such voice", or a refusal for a voice the account no longer lists, is success
        (the voice is gone either way)."""
        try:
            send()
        except ProviderError as err:
            gone = self._absent(err) or (
                err.reason == "provider_bad_request" and self.query_voice(voice_id) is None
            )
            if not gone:
                raise

    def query_voice(self, voice_id: str) -> VoiceRecord | None:
        """The voice from the account's list, or None (vendors with a query call override this)."""
        return next((v for v in self.list_voices() if v.voice_id == voice_id), None)

    def wait_until_settled(self, voice_id: str, *, timeout_s: float, interval_s: float) -> VoiceRecord:
        """Poll :meth:`query_voice` every ``interval_s`` until ``ready``/``rejected`` or ``timeout_s`` passes
        (then the last state, ``deploying``); a voice that is ready when created takes one look-up. A voice
        that disappears raises ``voice_gone``."""
        start = self.runtime.clock()
        while True:
            voice = self.query_voice(voice_id)
            if voice is None:
                raise ProviderError("voice_gone", f"{voice_id} does not exist any more")
            if voice.status != "deploying" or self.runtime.clock() - start + interval_s > timeout_s:
                return voice
            self.runtime.sleep(interval_s)


class _SentBeforeLastBlock:
    """A request body the transport reads block by block (``Content-Length`` stays the prepared one, so
    nothing changes on the wire), calling ``hook`` just before it hands over the body's last bytes.

    Until then the server holds an incomplete request and cannot act on it; a process killed (or a
    connection lost) while earlier blocks were going out therefore never made what the request asks for.
    The hook fires at most once; a body that is read again (a retry) sends without it.
    """

    def __init__(self, body: bytes, hook: Callable[[], object]) -> None:
        self._body = memoryview(body)
        self._pos = 0
        self._hook: Callable[[], object] | None = hook

    def __len__(self) -> int:
        return len(self._body)

    def read(self, size: int | None = -1) -> bytes:
        """The next ``size`` bytes (all that is left for a negative or None ``size``)."""
        rest = len(self._body) - self._pos
        n = rest if size is None or size < 0 else min(size, rest)
        if n == rest and self._hook is not None:  # these are the last bytes: from here it may act
            hook, self._hook = self._hook, None
            hook()
        chunk = bytes(self._body[self._pos : self._pos + n])
        self._pos += n
        return chunk


def region_refusal(family: str, model: str | None, region: str | None, offered: Sequence[str]) -> str:
    """The one line that refuses ``model`` in ``region``, naming the models the region offers."""
    where = f"{region} ({REGION_NAMES.get(region or '', region)})"
    models = ", ".join(offered) or "none"
    return f"{family}: target model {model} is not offered in region {where}; that region offers {models}"


def newest(voices: Iterable[VoiceRecord]) -> VoiceRecord | None:
    """The most recently created of ``voices`` (by ``created_at`` as text), or None when there are none."""
    ordered = sorted(voices, key=lambda v: str(v.created_at or ""))
    return ordered[-1] if ordered else None


def parse_provider_time(text: str | None) -> dt.datetime | None:
    """A provider or ledger timestamp as a datetime (naive when it carries no zone); None if unparseable."""
    if not text:
        return None
    value = str(text).strip().replace("Z", "+00:00")
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        pass
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y%m%d%H%M%S", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(value, fmt)
        except ValueError:
            continue
    return None


def created_since(created: str | None, since: str | None) -> bool:
    """Whether a voice created at ``created`` may come from a request made at ``since`` or later.

    A naive provider time is compared with a 14-hour allowance (its zone is not documented); an unknown
    time never excludes a voice (the name match is what identifies it).
    """
    if since is None:
        return True
    since_t, created_t = parse_provider_time(since), parse_provider_time(created)
    if since_t is None or created_t is None:
        return True
    if since_t.tzinfo is not None:
        since_t = since_t.astimezone(dt.UTC).replace(tzinfo=None)
    slack = dt.timedelta(0)
    if created_t.tzinfo is not None:
        created_t = created_t.astimezone(dt.UTC).replace(tzinfo=None)
    else:
        slack = _NAIVE_SLACK
    # a minute of clock skew between our clock and the provider's on top
    return created_t >= since_t - slack - dt.timedelta(minutes=1)
