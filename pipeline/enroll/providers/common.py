"""The contract every provider client meets (:class:`VoiceProvider`), and what the vendor clients
(:mod:`~pipeline.enroll.providers.dashscope`, :mod:`~pipeline.enroll.providers.minimax`,
:mod:`~pipeline.enroll.providers.elevenlabs`) share: construction (base URL, key, :class:`HttpClient`), ``repr``,
clip and model checks, review polling, signed-URL downloads, and matching remote voices by id, name and
creation time.

Each vendor module keeps its own contract (endpoints, bodies, error codes); this module knows none of it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from pipeline.enroll.providers.base import ProviderError, VoiceRecord
from pipeline.enroll.providers.http import (
    HttpClient,
    Interpret,
    RequestIdOf,
    Runtime,
    download_interpret,
    read_api_key,
    resolve_base_url,
)
from pipeline.errors import InvalidArgument

_NAIVE_SLACK = dt.timedelta(hours=14)  # provider times without a zone: allow any offset from UTC
_NOT_FOUND_RE = re.compile(
    r"(?i)not\s+(?:be\s+)?(?:exist|found)|does\s*n[o']t\s+exist|no\s+such|unknown\s+voice"
)


class VoiceProvider:
    """One family's client (CosyVoice, Qwen-TTS, MiniMax...): family, base URL, key, retries, limits, the
    HTTP layer, and the calls submit, sync and delete make.

    A subclass sets the class attributes (``provider``, ``key_env``, ``base_url_env``,
    ``default_base_url``, ``default_family``, how the key is sent) and its module's interpreter and
    request-id reader (``_interpret``, ``_request_id_of``, as static methods); its own ``__init__`` takes
    its vendor options and passes the rest here.
    ``require_key=False`` builds a client without a key (``--dry-run``); any network call then raises
    ``missing_api_key``.
    """

    provider: ClassVar[str] = ""
    """``dashscope``, ``minimax`` or ``elevenlabs``."""
    key_env: ClassVar[str] = ""
    base_url_env: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    default_family: ClassVar[str] = ""
    name_pattern: ClassVar[str] = ""
    """The vendor's rule for voice names."""
    name_field: ClassVar[str] = "name"
    """What the vendor calls the name (``prefix``, ``preferred_name``, ``voice_id``...), for messages."""
    auth_header: ClassVar[str] = "Authorization"
    auth_scheme: ClassVar[str | None] = "Bearer"
    _interpret: Interpret  # set with staticmethod(...) by each vendor class
    _request_id_of: RequestIdOf

    def __init__(
        self,
        *,
        family: str | None = None,
        base_url: str | None = None,
        target_models: Sequence[str] = (),
        max_bytes: int | None = None,
        runtime: Runtime | None = None,
        require_key: bool = True,
        max_download_bytes: int = 50_000_000,
    ) -> None:
        self.runtime = runtime or Runtime()
        env = self.runtime.environ
        self.family = family or self.default_family
        self._name_re = re.compile(self.name_pattern)
        self.base_url = self._normalise_base_url(
            resolve_base_url(base_url, env_name=self.base_url_env, default=self.default_base_url, environ=env)
        )
        self.target_models = tuple(target_models)
        self.max_bytes = max_bytes
        self.max_download_bytes = max_download_bytes
        self.http = HttpClient(
            provider=self.provider,
            base_url=self.base_url,
            api_key=read_api_key(self.key_env, env),
            key_env=self.key_env,
            interpret=self._interpret,
            request_id_of=self._request_id_of,
            auth_header=self.auth_header,
            auth_scheme=self.auth_scheme,
            runtime=self.runtime,
            family=self.family,
        )
        if require_key:
            self.http.require_key()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(family={self.family!r}, base_url={self.base_url!r})"

    @staticmethod
    def _normalise_base_url(base_url: str) -> str:
        """The resolved base URL as the client stores it (a subclass may strip a suffix)."""
        return base_url

    def validate(self, record: VoiceRecord) -> bytes:
        """Check the record's name, model and clip before anything is sent; return the clip's bytes.

        Raises :class:`InvalidArgument` for a name outside the vendor's rule (``name_pattern``), a model
        not in ``target_models`` or a missing clip, and ``ProviderError("too_large")`` over ``max_bytes``.
        """
        if not self._name_re.fullmatch(record.name or ""):
            raise InvalidArgument(
                f"name: {record.name!r} does not match {self._name_re.pattern} ({self.family} {self.name_field})"
            )
        if self.target_models and record.target_model not in self.target_models:
            raise InvalidArgument(
                f"target_model: {record.target_model!r} is not a {self.family} model "
                f"(known: {', '.join(self.target_models)})"
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
        content, _ = self.http.request(
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

    def prepare_create(
        self, record: VoiceRecord, *, preview_text: str | None = None, language: str | None = None
    ) -> list[dict[str, Any]]:
        """The requests ``create_voice`` would send, as :func:`~pipeline.enroll.providers.http.shown_request`
        gives them (secrets and audio elided); sends nothing."""
        raise NotImplementedError

    def create_voice(
        self, record: VoiceRecord, *, preview_text: str | None = None, language: str | None = None
    ) -> VoiceRecord:
        """Create the voice ``record`` describes, once; answer ``record`` with ``voice_id``, ``status`` and
        ``request_ids``. Raises :class:`OutcomeUnknown` when the answer to the create call itself was lost;
        never re-sends a create that may have succeeded (MiniMax may, since a duplicate id is answered with
        2039 and no second voice). ``preview_text`` asks for a preview where the create call makes it."""
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

    def preview(self, voice_id: str, *, target_model: str, text: str) -> bytes:
        """Synthesise ``text`` with the voice and return the audio file's bytes."""
        raise NotImplementedError

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
