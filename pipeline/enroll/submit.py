"""Submit a run's ready clips to the cloning services, without ever losing or duplicating a voice.

:func:`submit_run` is ``voiceprep submit --out OUT``. In order:

1. read ``OUT/clips.jsonl`` and pick the ``ready`` clips (to create) and the ``submitted`` ones (to
   re-verify with the provider, never to re-create) of the chosen families and speakers;
2. check which providers in scope have their API key: families without one are skipped (each clip
   answered ``skipped``, reason ``missing_api_key``); with no key at all, :class:`MissingApiKey` before
   anything else;
3. under the ledger's writer lock, **reconcile** every unresolved ledger row of those families (``pending``
   after the request was sent, ``unknown``) with the provider's list *before any create*;
4. per clip: reuse the ledger row that already holds the clip (``ready``: nothing to do; ``deploying``:
   wait for the review; ``unknown``: shown, not resubmitted until proven absent (:func:`reconcile_row`); ``failed`` or never-sent ``pending``:
   retried with the same name), or write the intent, commit the "sent" marker, create, record the outcome;
   a lost answer (:class:`~pipeline.enroll.providers.base.OutcomeUnknown`) is settled with ``find_voice``;
5. optionally synthesise a preview with each ready voice (``clips/<speaker>/<family>.preview.<ext>``),
   unless an earlier submit made one with the same text from the voice's current clip and it is still on
   disk (:func:`kept_preview`: the note says ``preview kept``; a MiniMax synthesis is billed);
6. rewrite ``clips.jsonl`` atomically (``status: submitted``, ``voice_id``, ``target_model``).

The run configuration gives the ledger, target models, regions and audio source; ``providers`` is the one
test seam (clients by family, or a factory). A dry run follows the same path up to the create, then builds
the exact requests (:meth:`VoiceProvider.prepare_create`) instead: it sends nothing, writes nothing and
opens the ledger read-only. Every clip's outcome is its :class:`VoiceRecord` with ``action`` and ``note``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.audio.io import atomic_write_bytes, sha256_file
from pipeline.batch.config import RunConfig
from pipeline.batch.manifest import CLIPS_FILE, RUN_FILE, ClipRow, read_rows, read_run_json, write_rows
from pipeline.enroll.check import CLONE_CHECK_KEY, check_clone, dissimilar_warning, stored_check
from pipeline.enroll.ledger import (
    DEAD_STATUSES,
    LIVE_STATUSES,
    UNRESOLVED_STATUSES,
    Ledger,
    LedgerConflict,
    default_ledger_path,
    parse_stored_time,
    read_records,
    scrub,
    writer_lock,
)
from pipeline.enroll.providers import (
    allowed_base_url,
    api_key_env,
    base_url_envs,
    http_base_url,
    make_provider,
    region_at,
    region_of,
)
from pipeline.enroll.providers.base import (
    MissingApiKey,
    OutcomeUnknown,
    ProviderError,
    VoiceRecord,
    normalize_base_url,
)
from pipeline.enroll.providers.common import VoiceProvider, region_refusal
from pipeline.errors import InvalidArgument, VoiceprepError
from pipeline.rules.families import FamilySpec, list_families, load_family

__all__ = [
    "ABSENT_CHECKS",
    "ABSENT_SETTLE_S",
    "FIND_SLACK_S",
    "PREVIEW_KEPT",
    "PREVIEW_KEY",
    "STOP_REASONS",
    "MissingApiKey",
    "Providers",
    "UntrustedBaseUrl",
    "apply_remote",
    "client_getter",
    "kept_preview",
    "language_for",
    "normalize_language",
    "reconcile_row",
    "resolve_target_model",
    "submit_run",
    "unset_key_env",
    "voice_name",
]

ProviderFactory = Callable[[FamilySpec, str | None], VoiceProvider]
"""``factory(spec, base_url_or_None) -> VoiceProvider``; ``None`` lets the client pick (env, default)."""

Providers = Mapping[str, VoiceProvider] | ProviderFactory
"""The test seam of submit and ``voices``: the clients by family name, or a :data:`ProviderFactory`.
Without it, clients are made from the environment by :func:`pipeline.enroll.providers.make_provider`."""

STOP_REASONS = frozenset({"provider_auth", "provider_access", "provider_balance", "provider_quota"})
"""Create failures that will fail again for every clip: the rest of that family is skipped."""

FIND_SLACK_S = 600.0
"""``find_voice(since=...)`` gets the "sent" time minus this much, to absorb clock skew with the provider."""

ABSENT_CHECKS = 3
"""The unknown-outcome rule: a voice whose create may have reached the provider is proven absent when this
many separate searches (the one right after the lost answer, then one per ``submit`` or ``voices sync``)
found no voice of that name, the last at least :data:`ABSENT_SETTLE_S` after the request was sent."""

ABSENT_SETTLE_S = 600.0
"""Seconds after the create request was sent before "not listed" can prove a voice absent (longer than any
provider's list takes to show a new voice)."""

_PROBLEM_STATUSES = frozenset({"failed", "rejected", "unknown", "pending"})
"""Statuses whose ``last_error`` an outcome shows."""


def _quiet(message: str) -> None:
    """The default progress callback: says nothing."""


# --------------------------------------------------------------------------------------------- names


_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(data: bytes, width: int) -> str:
    n = int.from_bytes(data, "big")
    out = []
    for _ in range(width):
        n, r = divmod(n, 36)
        out.append(_B36[r])
    return "".join(out)


def voice_name(
    spec: FamilySpec, *, speaker: str, clip_sha256: str, target_model: str, generation: int = 0
) -> str:
    """The provider-side name for a clip: deterministic in (clip bytes, target model, generation).

    CosyVoice ``prefix`` (``[a-z0-9]{1,9}``): 3 letters of the speaker + 6 base-36 hash characters; Qwen
    ``preferred_name`` (16 of ``[A-Za-z0-9_]``): ``<speaker6>_<hash9>``; MiniMax ``voice_id`` and others:
    ``vp_<speaker-slug>_<hash10>``. ``generation`` is bumped only when earlier voices of the clip are gone or
    deleted (MiniMax never reuses an id, even after deletion).

    Raises:
        InvalidArgument: the name does not satisfy the family's ``name_rule`` (a family with an unusual rule).
    """
    if generation < 0:
        raise InvalidArgument(f"generation must be >= 0 (got {generation})")
    digest = hashlib.sha256(f"{clip_sha256}\n{target_model}\n{generation}".encode()).digest()
    code = _base36(digest[:12], 16)
    alnum = re.sub(r"[^a-z0-9]+", "", speaker.lower())
    rule = spec.name_rule
    if rule.field == "prefix":
        head = alnum[:3] or "v"
        name = head + code[: max(1, rule.max_length - len(head))]
    elif rule.field == "preferred_name":
        head = alnum[:6] or "v"
        name = f"{head}_{code[: max(1, rule.max_length - len(head) - 1)]}"
    else:
        slug = re.sub(r"[^a-z0-9]+", "-", speaker.lower()).strip("-")[:40].strip("-")
        name = f"vp_{slug}_{code[:10]}" if slug else f"vp_{code[:10]}"
    name = name[: rule.max_length]
    if not rule.matches(name):
        raise InvalidArgument(
            f"cannot derive a {rule.field} for family {spec.name}: {name!r} does not match {rule.pattern} "
            f"({rule.min_length}-{rule.max_length} characters)"
        )
    return name


def _next_name(spec: FamilySpec, clip: ClipRow, sha: str, model: str, rows: Sequence[VoiceRecord]) -> str:
    """The first name of the clip's generations that no row of the provider (``rows``) uses yet."""
    taken = {r.name for r in rows}
    for generation in range(1000):
        name = voice_name(
            spec, speaker=clip.speaker, clip_sha256=sha, target_model=model, generation=generation
        )
        if name not in taken:
            return name
    raise InvalidArgument(f"no free {spec.name_rule.field} for clip {sha[:12]} after 1000 generations")


def _holder(rows: Sequence[VoiceRecord], model: str, sha: str, base_url: str) -> VoiceRecord | None:
    """The newest row that holds the clip's slot for ``model`` in the region ``base_url`` (a live status)."""
    live = [
        r
        for r in rows
        if (r.target_model, r.clip_sha256, r.base_url) == (model, sha, base_url) and r.status in LIVE_STATUSES
    ]
    return live[-1] if live else None


def resolve_target_model(spec: FamilySpec, target_models: Mapping[str, str] | None = None) -> str:
    """The target model for ``spec``: ``target_models[family]`` when given, else the spec's default.

    Raises:
        InvalidArgument: the model is not one the family spec lists (a voice only works with its model).
    """
    model = (target_models or {}).get(spec.name) or spec.default_target_model or spec.target_models[0]
    if model not in spec.target_models:
        raise InvalidArgument(
            f"target model {model!r} is not a {spec.name} model (known: {', '.join(spec.target_models)})"
        )
    return model


# --------------------------------------------------------------------------------------------- providers


class UntrustedBaseUrl(InvalidArgument):
    """A base URL read from data (a ledger row) that is neither configured nor a documented host of its
    provider: the row is reported and skipped, and nothing (least of all the key) is sent there."""


def client_getter(
    providers: Providers | None = None,
    *,
    base_urls: Mapping[str, str] | None = None,
    require_key: bool = True,
    region: str | None = None,
    **options: Any,
) -> Callable[..., VoiceProvider]:
    """``get(spec, base_url=None)``: the client for a family in a region, made once per (family, region).

    ``providers`` is the test seam (:data:`Providers`); by default clients come from the environment and
    raise :class:`MissingApiKey` when a key is not set (unless ``require_key`` is False: a dry run).
    ``base_url=None`` means the region ``base_urls`` gives by family or provider name (family wins), else
    the client's default. ``region`` (``intl``/``cn``) is the region asked for: a base URL read from data
    keeps the region of its documented host (a row made in Beijing is managed in Beijing), an address of
    no known region takes ``region``. ``options`` not None go to the default factory (``audio_source``...).
    ``get`` raises :class:`InvalidArgument` when the seam lacks the family or its client serves another
    region than the one asked for, and :class:`UntrustedBaseUrl` (before any client is made for it) when
    ``base_url``, which callers read from ledger rows, is not a host the key may go to
    (:func:`~pipeline.enroll.providers.allowed_base_url`: configured by flag, config or environment, or
    documented by the provider).
    """
    if providers is None:
        extra = {k: v for k, v in options.items() if v is not None}

        def factory(spec: FamilySpec, url: str | None) -> VoiceProvider:
            where = (region_of(spec.provider, url) if url else None) or region
            return make_provider(spec, base_url=url, require_key=require_key, region=where, **extra)

    elif isinstance(providers, Mapping):

        def factory(spec: FamilySpec, url: str | None) -> VoiceProvider:
            if spec.name not in providers:
                raise InvalidArgument(f"no provider client given for family {spec.name!r}")
            return providers[spec.name]

    else:
        factory = providers
    urls = dict(base_urls or {})
    made: dict[tuple[str, str | None], VoiceProvider] = {}

    def check_host(spec: FamilySpec, url: str) -> None:
        """Refuse a base URL read from data unless the key may go there (:func:`allowed_base_url`)."""
        envs = base_url_envs(spec.provider)
        env = "/".join(envs)
        configured = [urls.get(spec.name), urls.get(spec.provider), *(os.environ.get(e) for e in envs)]
        if allowed_base_url(spec.provider, url, [c for c in configured if c]):
            return
        if allowed_base_url(spec.provider, url, [get(spec).base_url]):  # the configured region's client
            return
        raise UntrustedBaseUrl(
            f"{spec.name} at {url}: not contacted: the key goes only to a host you configured "
            f"(--base-url, the config's base_urls, {env}) or a documented {spec.provider} host; "
            "this address was read from the ledger"
        )

    def get(spec: FamilySpec, base_url: str | None = None) -> VoiceProvider:
        if base_url is not None:  # read from a ledger row or a manifest: data, not configuration
            check_host(spec, base_url)
        chosen = base_url or urls.get(spec.name) or urls.get(spec.provider)
        wanted = normalize_base_url(chosen) if chosen else None
        if (spec.name, wanted) not in made:
            client = factory(spec, wanted)
            if wanted is not None and client.base_url != wanted:
                raise InvalidArgument(
                    f"the {spec.name} client serves {client.base_url}, not {wanted} (a voice lives in one region)"
                )
            made[spec.name, wanted] = client
        return made[spec.name, wanted]

    return get


def _no_key(exc: MissingApiKey) -> tuple[str, str]:
    """The error a clip skipped for ``exc`` shows: the same for every family of that provider."""
    return exc.reason, f"{exc.env_var} is not set: export {exc.env_var}=<your {exc.provider} key>"


def unset_key_env(provider: str, region: str | None = None) -> str | None:
    """The environment variable holding ``provider``'s key (in ``region``) when no key is set (``None``
    when one is)."""
    from pipeline.enroll.providers import api_key_envs

    if any(os.environ.get(e) for e in api_key_envs(provider, region)):
        return None
    return api_key_env(provider, region)


_LANGUAGE_RE = re.compile(r"^(?:auto|[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*)$")


def normalize_language(language: str | None) -> str | None:
    """A language tag as voiceprep passes it on (``en``, ``zh``, ``pt-BR``; ``auto``), or None.

    Raises:
        InvalidArgument: not a language tag (ISO 639 code, optionally with a region).
    """
    if language is None or not language.strip():
        return None
    value = language.strip().replace("_", "-")
    if not _LANGUAGE_RE.fullmatch(value):
        raise InvalidArgument(f"language must be a language code such as en, zh or pt-BR (got {language!r})")
    head, _, tail = value.partition("-")
    return head.lower() + (f"-{tail}" if tail else "")


def language_for(
    speaker: str,
    *,
    per_speaker: Mapping[str, str] | None = None,
    default: str | None = None,
    run_per_speaker: Mapping[str, str] | None = None,
    run_default: str | None = None,
) -> str | None:
    """The language of ``speaker``'s voice: the submit's per-speaker choice, the run's speaker map, the
    submit's default (``--language``, the config's ``language``), then the run's ``--language``."""
    for table in (per_speaker, run_per_speaker):
        if table and table.get(speaker):
            return normalize_language(table[speaker])
    return normalize_language(default) or normalize_language(run_default)


# --------------------------------------------------------------------------------------------- reconcile


def _since(row: VoiceRecord) -> str | None:
    t = parse_stored_time(row.sent_at or row.created_at)
    if t is None:
        return None
    return (t - _dt.timedelta(seconds=FIND_SLACK_S)).isoformat(timespec="seconds")


def reconcile_row(
    ledger: Ledger, row: VoiceRecord, provider: VoiceProvider, *, absent_settle_s: float = ABSENT_SETTLE_S
) -> VoiceRecord:
    """Ask the provider about one unresolved row and record the answer; returns the row after, with
    ``action`` ``reconciled`` and a ``note`` saying what was found.

    A match becomes the voice's real status with its id. No match: the search is counted (``absent_checks``
    in ``last_error``); once :data:`ABSENT_CHECKS` searches found nothing and ``absent_settle_s`` have
    passed since the request was sent, the voice is proven absent: the row becomes ``failed`` (reason
    ``not_created``) and its clip may be retried under the same name. Until then a sent ``pending`` row
    becomes ``unknown`` and an ``unknown`` row stays so (not resubmitted). A ``pending`` row that was
    never sent is left for :func:`submit_run` to retry. A provider error leaves the row as it is (and is
    not counted).
    """

    def done(after: VoiceRecord, note: str) -> VoiceRecord:
        return dataclasses.replace(after, action="reconciled", note=note)

    if row.status == "pending" and row.sent_at is None:
        return done(row, "the create request was never sent; it may be retried")
    try:
        found = provider.find_voice(row, since=_since(row))
    except ProviderError as exc:
        return done(row, f"could not ask the provider ({exc.reason}): {scrub(exc.message)}")
    if found is not None:
        try:
            after = apply_remote(ledger, row, found)
        except LedgerConflict as exc:  # the match belongs to another row: leave this one for the user
            return done(row, f"the provider's match {found.voice_id} is claimed elsewhere: {exc}")
        return done(after, f"found remotely as {found.voice_id} ({found.status})")
    previous = row.last_error or {}
    checks = int(previous.get("absent_checks") or 0) + 1
    sent = parse_stored_time(row.sent_at or row.created_at)
    now = parse_stored_time(ledger.now())
    waited = (now - sent).total_seconds() if sent and now else 0.0
    if checks >= ABSENT_CHECKS and waited >= absent_settle_s:
        message = (
            f"not listed by the provider on {checks} searches over {waited:.0f} s since the request was sent: "
            "the create never took effect"
        )
        after = ledger.update(row.id, status="failed", checked=True, error=("not_created", message))
        return done(
            after, "proven absent (never created); the clip will be submitted again under the same name"
        )
    error = ("outcome_unknown", "the create request was sent but the provider does not list the voice")
    after = ledger.update(
        row.id, status="unknown", checked=True, error=error, error_details={"absent_checks": checks}
    )
    left = f"{checks} of {ABSENT_CHECKS} searches found nothing"
    if checks >= ABSENT_CHECKS:
        left += f"; proven absent {absent_settle_s - waited:.0f} s from now"
    return done(after, f"the provider does not list it ({left}); left unknown, not resubmitted yet")


def apply_remote(ledger: Ledger, row: VoiceRecord, remote: VoiceRecord | None) -> VoiceRecord:
    """Record what the provider says about ``row``'s voice, checked now: ``remote`` (its view: status and
    id), or ``None`` when the provider does not have the voice any more (``gone``)."""
    if remote is None:
        return ledger.update(
            row.id, status="gone", checked=True, error=("voice_gone", "the provider no longer has it")
        )
    rejected = remote.status == "rejected"
    return ledger.update(
        row.id,
        status=remote.status,
        voice_id=remote.voice_id,
        checked=True,
        error=("provider_rejected", "the provider rejected the voice after review") if rejected else None,
        clear_error=not rejected,
    )


# --------------------------------------------------------------------------------------------- previews

PREVIEW_KEY = "preview"
"""The key in a ledger row's ``details`` of what its preview file was made from: ``text``,
``clip_sha256`` (the voice's enrollment clip then) and ``sha256`` (the preview file's bytes)."""

PREVIEW_KEPT = "preview kept"
"""An outcome's note when the voice's earlier preview was kept instead of synthesised again."""


def kept_preview(row: VoiceRecord, text: str) -> Path | None:
    """The preview file an earlier submit made for ``row``'s voice, when it still says ``text`` with the
    voice as it is: the file exists and, as far as the row records them (``details["preview"]``; for a
    row from before that record, the clone check's clip), it was made from this text and the voice's
    current clip and still holds the bytes written. ``None``: synthesise a new preview."""
    if not row.preview_path:
        return None
    path = Path(row.preview_path)
    if not path.is_file():
        return None
    made = row.details.get(PREVIEW_KEY)
    if not isinstance(made, dict):  # a preview made before the record: the clone check's clip, if any
        made = {"clip_sha256": (stored_check(row.details) or {}).get("clip_sha256")}
    if made.get("text") is not None and made["text"] != text:
        return None
    if made.get("clip_sha256") and row.clip_sha256 and made["clip_sha256"] != row.clip_sha256:
        return None
    if made.get("sha256") and made["sha256"] != sha256_file(path):
        return None
    return path.resolve()


# --------------------------------------------------------------------------------------------- helpers


def _size_problems(spec: FamilySpec, size: int, prepared: Sequence[Mapping[str, Any]]) -> list[str]:
    """The clip's sizes over the family's ``max_bytes``: raw, base64 (families that may send it inline)
    and as each prepared request carries it."""
    limit = spec.limits.max_bytes.value
    sizes = [("the clip", size)]
    if spec.limits.inline_base64.value:
        sizes.append(("base64 of the clip", 4 * math.ceil(size / 3)))
    sizes += [("the request's encoded audio", p["encoded_bytes"]) for p in prepared]
    return [
        f"too_large: {what} is {n} bytes; {spec.name} takes at most {limit}"
        for what, n in sizes
        if limit is not None and n > limit
    ]


def _sources(clip: ClipRow) -> list[str]:
    return list(dict.fromkeys(p for seg in clip.segments if isinstance(p := seg.get("path"), str)))


def _audio_ext(data: bytes) -> str:
    if data[:4] == b"RIFF":
        return "wav"
    if data[:4] == b"fLaC":
        return "flac"
    if data[:4] == b"OggS":
        return "ogg"
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "mp3"
    if data[4:8] == b"ftyp":
        return "m4a"
    return "bin"


def _validate_names(values: Iterable[str] | None, known: Sequence[str], what: str) -> list[str] | None:
    if values is None:
        return None
    chosen = list(dict.fromkeys(values))
    unknown = [v for v in chosen if v not in known]
    if unknown:
        raise InvalidArgument(
            f"unknown {what} {', '.join(map(repr, unknown))} (in this run: {', '.join(known) or 'none'})"
        )
    return chosen


# --------------------------------------------------------------------------------------------- the run


class _Run:
    """One submit: its settings, the ledger (``None`` in a dry run, which reads ``known`` instead), the
    clients, and the ``clips.jsonl`` changes still to be written."""

    def __init__(
        self,
        out_dir: Path,
        specs: Mapping[str, FamilySpec],
        target_models: Mapping[str, str],
        client: Callable[..., VoiceProvider],
        *,
        dry_run: bool,
        preview_text: str | None,
        settle_s: tuple[float, float],
        absent_settle_s: float = ABSENT_SETTLE_S,
        progress: Callable[[str], None],
        language_of: Callable[[str], str | None] = lambda speaker: None,
    ) -> None:
        self.out_dir = out_dir
        self.language_of = language_of
        self.specs = specs
        self.models = {f: resolve_target_model(spec, target_models) for f, spec in specs.items()}
        self.client = client
        self.dry_run = dry_run
        self.preview_text = preview_text
        self.settle_timeout_s, self.settle_interval_s = settle_s
        self.absent_settle_s = absent_settle_s
        self.progress = progress
        self.ledger: Ledger | None = None
        self.known: list[VoiceRecord] = []
        self.changes: dict[tuple[str, str], dict[str, Any]] = {}
        self.stopped: dict[str, str] = {}  # family -> reason that stops further creates

    # -- helpers
    def change(self, clip: ClipRow, **updates: Any) -> None:
        self.changes.setdefault((clip.speaker, clip.family), {}).update(updates)

    def outcome(
        self,
        clip: ClipRow | None,
        row: VoiceRecord | None,
        *,
        action: str = "skipped",
        note: str = "",
        error: tuple[str, str] | None = None,
        **fields: Any,
    ) -> VoiceRecord:
        """What this submit did with a voice: its ledger row (without one, a record of ``clip``, status
        ``skipped``) with ``action``, ``note`` and the error to show: ``error`` (reason, message), else the
        row's own while its status is a problem."""
        if row is None:
            assert clip is not None
            row = VoiceRecord(
                provider=self.specs[clip.family].provider,
                family=clip.family,
                speaker=clip.speaker,
                target_model=clip.target_model or self.models[clip.family],
                clip_path=str(self.out_dir / clip.clip) if clip.clip else None,
                status="skipped",
            )
        shown = row.last_error if row.status in _PROBLEM_STATUSES else None
        if error is not None:
            shown = {"reason": error[0], "message": scrub(error[1])}
        return dataclasses.replace(row, action=action, note=note, last_error=shown, **fields)

    def mark_clip(self, clip: ClipRow, row: VoiceRecord) -> None:
        """Bring the clip row in line with its ledger row."""
        if row.status in {"ready", "deploying"} and row.voice_id:
            self.change(clip, status="submitted", voice_id=row.voice_id, target_model=row.target_model)
        elif row.status == "rejected":
            reasons = [r for r in clip.reasons if r != "provider_rejected"] + ["provider_rejected"]
            message = (row.last_error or {}).get("message") or "the provider rejected the audio"
            self.change(
                clip,
                status="rejected",
                reasons=reasons,
                message=message,
                voice_id=row.voice_id,
                target_model=row.target_model,
            )

    def settle(self, provider: VoiceProvider, row: VoiceRecord) -> VoiceRecord:
        """Wait for a voice under review (``deploying``) to be decided, and record the verdict."""
        assert self.ledger is not None
        if row.status != "deploying" or not row.voice_id:
            return row
        self.progress(
            f"{row.family} {row.speaker}: {row.voice_id} is under review; "
            f"waiting up to {self.settle_timeout_s:g} s"
        )
        try:
            remote = provider.wait_until_settled(
                row.voice_id, timeout_s=self.settle_timeout_s, interval_s=self.settle_interval_s
            )
        except ProviderError as exc:
            return self.ledger.update(row.id, error=(exc.reason, exc.message))
        return apply_remote(self.ledger, row, remote)

    def finish(
        self, clip: ClipRow, provider: VoiceProvider, row: VoiceRecord, action: str, note: str = ""
    ) -> VoiceRecord:
        """Wait for a voice under review, bring the clip in line, make the preview, and report."""
        assert self.ledger is not None
        row = self.settle(provider, row)
        self.mark_clip(clip, row)
        warnings: list[str] = []
        if self.preview_text and row.status == "ready" and row.voice_id:
            kept = kept_preview(row, self.preview_text)
            if kept is not None:  # made by an earlier submit: a synthesis may be billed (MiniMax T2A)
                note = "; ".join(n for n in (note, PREVIEW_KEPT) if n)
                if kept.is_relative_to(self.out_dir.resolve()):
                    self.change(clip, preview=kept.relative_to(self.out_dir.resolve()).as_posix())
                row, problem = self.check(row, kept, clip)
                warnings += [problem] if problem else []
                return self.outcome(clip, row, action=action, note=note, warnings=warnings)
            try:
                data = provider.preview(
                    row.voice_id, target_model=row.target_model or "", text=self.preview_text
                )
            except ProviderError as exc:
                note = f"preview failed ({exc.reason}): {scrub(exc.message)}"
            else:
                rel = Path("clips") / clip.speaker / f"{clip.family}.preview.{_audio_ext(data)}"
                target = (self.out_dir / rel).resolve()
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(target, lambda fh: fh.write(data))
                made = {
                    "text": self.preview_text,
                    "clip_sha256": row.clip_sha256,
                    "sha256": sha256_file(target),
                }
                row = self.ledger.update(row.id, preview_path=str(target), details={PREVIEW_KEY: made})
                self.change(clip, preview=rel.as_posix())
                row, problem = self.check(row, target, clip)
                if problem:
                    warnings.append(problem)
        return self.outcome(clip, row, action=action, note=note, warnings=warnings)

    def check(self, row: VoiceRecord, synthesis: Path, clip: ClipRow) -> tuple[VoiceRecord, str | None]:
        """Compare the preview ``synthesis`` with the voice's enrollment clip and store the result in the
        row's ``details["clone_check"]``; returns the row and the warning of a flagged (or uncheckable) clone."""
        assert self.ledger is not None and self.preview_text
        done = stored_check(row.details)
        if done and done.get("text") == self.preview_text and done.get("clip_sha256") == row.clip_sha256:
            # Checked already against this clip with this text (an earlier submit): the answer stands.
            return row, dissimilar_warning(done["similarity"]) if done.get("flag") else None
        clip_path = Path(row.clip_path) if row.clip_path else self.out_dir / (clip.clip or "")
        try:
            result = check_clone(synthesis, clip_path, text=self.preview_text, clip_sha256=row.clip_sha256)
        except (VoiceprepError, OSError, ValueError) as exc:
            return row, f"clone check not made: {scrub(str(exc))}"
        row = self.ledger.update(row.id, details={CLONE_CHECK_KEY: result})
        return row, dissimilar_warning(result["similarity"]) if result.get("flag") else None

    # -- phases
    def reconcile(self, families: Sequence[str]) -> list[VoiceRecord]:
        """Ask the providers about every unresolved ledger row of ``families`` (before any create)."""
        assert self.ledger is not None
        outcomes = []
        for family in families:
            spec = self.specs[family]
            for row in self.ledger.rows(provider=spec.provider, family=family, statuses=UNRESOLVED_STATUSES):
                if not row.unresolved:
                    continue
                try:
                    provider = self.client(spec, row.base_url)
                except InvalidArgument as exc:
                    outcomes.append(self.outcome(None, row, action="reconciled", note=str(exc)))
                    continue
                after = reconcile_row(self.ledger, row, provider, absent_settle_s=self.absent_settle_s)
                settled = self.settle(provider, after)
                outcomes.append(self.outcome(None, settled, action="reconciled", note=after.note))
        return outcomes

    def reverify(self, clip: ClipRow) -> VoiceRecord:
        """Check a ``submitted`` clip's voice with its provider (never re-created)."""
        if self.dry_run:  # nothing needs attention: a dry run over a submitted clip exits 0
            status = {"status": "submitted", "voice_id": clip.voice_id}
            return self.outcome(
                clip, None, action="dry-run", note="already submitted; would re-verify", **status
            )
        assert self.ledger is not None
        spec = self.specs[clip.family]
        if not clip.voice_id:
            return self.outcome(clip, None, note="submitted without a voice id; left as is")
        row = self.ledger.by_voice_id(provider=spec.provider, voice_id=clip.voice_id)
        if row is not None and row.status in DEAD_STATUSES:
            self.change(clip, status="ready", voice_id=None, target_model=None)
            note = f"the voice is {row.status}; submit again to make a new one"
            return self.outcome(clip, row, action="reverified", note=note)
        try:
            provider = self.client(spec, row.base_url if row else None)
            remote = provider.query_voice(clip.voice_id)
        except InvalidArgument as exc:
            return self.outcome(clip, row, action="reverified", note=str(exc))
        except ProviderError as exc:
            error = (exc.reason, f"could not check: {exc.message}")
            return self.outcome(clip, row, action="reverified", error=error)
        if remote is None and row is None:
            note = f"not in the ledger and {provider.base_url} does not know it; clips.jsonl left as is"
            return self.outcome(
                clip, None, action="reverified", note=note, status="unknown", voice_id=clip.voice_id
            )
        if row is not None:
            row = apply_remote(self.ledger, row, remote)
        if row is not None and row.status == "gone":
            reasons = [r for r in clip.reasons if r != "voice_gone"] + ["voice_gone"]
            self.change(clip, status="ready", voice_id=None, target_model=None, reasons=reasons)
            error = ("voice_gone", "submit again to make a new voice")
            return self.outcome(clip, row, action="reverified", error=error)
        if row is None:
            assert remote is not None
            found = dataclasses.replace(
                remote,
                provider=spec.provider,
                base_url=provider.base_url,
                family=clip.family,
                name=None,
                origin="manifest",
                target_model=remote.target_model or clip.target_model,
                speaker=clip.speaker,
                clip_path=str(self.out_dir / clip.clip) if clip.clip else None,
            )
            row = self.ledger.record_found(found)
        return self.finish(clip, provider, row, "reverified")

    def submit(self, clip: ClipRow) -> VoiceRecord:
        """Create a ``ready`` clip's voice, or report the ledger row that already holds the clip; a dry run
        goes the same way and prepares the requests instead of writing and sending them."""
        spec, model = self.specs[clip.family], self.models[clip.family]
        if clip.family in self.stopped:
            what = "not tried: an earlier create of this family failed the same way"
            return self.outcome(clip, None, error=(self.stopped[clip.family], what))
        clip_path = self.out_dir / (clip.clip or "")
        if not clip.clip or not clip_path.is_file():
            error = ("not_found", f"clip file {clip.clip} is missing")
            return self.outcome(clip, None, status="failed", error=error)
        provider, sha = self.client(spec), sha256_file(clip_path)
        rows = [r for r in (self.ledger.rows() if self.ledger else self.known) if r.provider == spec.provider]
        row = _holder(rows, model, sha, provider.base_url)
        if row is not None and not row.retryable:  # the clip's voice exists (or may): never a second one
            if self.dry_run:
                note = f"ledger row {row.id} ({row.status}) holds this clip; nothing would be created"
                return self.outcome(clip, row, action="dry-run", note=note, status="dry-run")
            if row.status == "rejected":
                self.mark_clip(clip, row)
                return self.outcome(clip, row, action="existing")
            if row.unresolved:
                what = "an earlier create may have made this voice; not resubmitted until proven absent (run `voiceprep voices sync` later)"
                return self.outcome(clip, row, error=("outcome_unknown", what))
            return self.finish(clip, provider, row, "existing")
        request = VoiceRecord(  # a failed or never-sent row is retried under its name
            provider=spec.provider,
            base_url=provider.base_url,
            family=clip.family,
            target_model=model,
            name=row.name if row is not None else _next_name(spec, clip, sha, model, rows),
            clip_sha256=sha,
            clip_path=str(clip_path.resolve()),
            speaker=clip.speaker,
            sources=_sources(clip),
            enrollment_key=clip.key or None,
        )
        unsent = provider.language_not_sent(self.language_of(clip.speaker))
        warnings = [unsent] if unsent else []  # said once per speaker and family, in the table and --json
        if self.dry_run:
            return self.prepare(spec, provider, request, warnings)
        assert self.ledger is not None
        if row is None:
            try:
                row = self.ledger.begin(request)
            except LedgerConflict as exc:
                return self.outcome(clip, None, note=str(exc))
        created = self.create(clip, provider, row)
        return dataclasses.replace(created, warnings=[*warnings, *created.warnings])

    def prepare(
        self, spec: FamilySpec, provider: VoiceProvider, request: VoiceRecord, warnings: Sequence[str] = ()
    ) -> VoiceRecord:
        """The dry run's outcome: the requests a create would send, and what would fail."""
        problems: list[str] = []
        try:
            prepared = list(
                provider.prepare_create(
                    request, preview_text=self.preview_text, language=self.language_of(request.speaker or "")
                )
            )
        except (ProviderError, InvalidArgument) as exc:  # ProviderError reads "reason: message"
            prepared = []
            problems.append(
                scrub(str(exc) if isinstance(exc, ProviderError) else f"provider_bad_request: {exc}")
            )
        problems += _size_problems(spec, Path(request.clip_path or "").stat().st_size, prepared)
        env = unset_key_env(spec.provider, provider.region)
        note = f"{len(prepared)} request(s), base URL {provider.base_url} (region {provider.region})"
        note += f"; {env} is not set: a real submit would skip this family" if env else ""
        return dataclasses.replace(
            request,
            status="dry-run",
            action="dry-run",
            note=note,
            requests=prepared,
            problems=problems,
            warnings=list(warnings),
        )

    def create(self, clip: ClipRow, provider: VoiceProvider, row: VoiceRecord) -> VoiceRecord:
        """Create the voice, committing the "sent" marker the moment the client sends the create itself
        (its ``on_send`` hook, after any upload), and record the outcome. A lost answer after that is
        reconciled; a failure (or a kill) before it leaves a row that is retried at once."""
        ledger = self.ledger
        assert ledger is not None
        request = dataclasses.replace(row, clip_path=row.clip_path or str(self.out_dir / (clip.clip or "")))
        self.progress(f"{clip.family} {clip.speaker}: creating {request.name} for {request.target_model}")
        sent: list[VoiceRecord] = []

        def on_send() -> None:
            if not sent:
                sent.append(ledger.mark_sent(row.id))

        try:
            result = provider.create_voice(
                request,
                preview_text=self.preview_text,
                language=self.language_of(request.speaker or ""),
                on_send=on_send,
            )
        except InvalidArgument as exc:  # the client refused the request before sending it
            row = ledger.update(row.id, status="failed", error=("provider_bad_request", str(exc)))
            return self.outcome(clip, row, action="created")
        except OutcomeUnknown as exc:
            if not sent:  # lost before the create went out (e.g. the upload's answer): nothing was made
                message = f"the create was never sent: {exc.message}"
                row = ledger.update(
                    row.id, status="failed", request_ids=[exc.request_id], error=("not_created", message)
                )
                return self.outcome(clip, row, action="created")
            row = ledger.update(row.id, request_ids=[exc.request_id], error=(exc.reason, exc.message))
            row = reconcile_row(ledger, row, provider, absent_settle_s=self.absent_settle_s)
            return self.finish(clip, provider, row, "created", f"the answer was lost; {row.note}")
        except ProviderError as exc:
            status = "rejected" if exc.reason == "provider_rejected" else "failed"
            row = ledger.update(
                row.id, status=status, request_ids=[exc.request_id], error=(exc.reason, exc.message)
            )
            if exc.reason in STOP_REASONS:
                self.stopped[clip.family] = exc.reason
            self.mark_clip(clip, row)
            return self.outcome(clip, row, action="created")
        row = self.ledger.update(
            row.id,
            status=result.status,
            voice_id=result.voice_id,
            request_ids=result.request_ids,
            checked=True,
            clear_error=True,
            details=result.details or None,
        )
        note = ""
        if row.details.get("fallback_mode"):
            note = f"made in fallback mode {row.details['fallback_mode']}: {row.details.get('fallback_reason') or 'no reason given'}"
        return self.finish(clip, provider, row, "created", note)

    def write_manifest(self) -> None:
        """Apply the clip changes to ``clips.jsonl`` (re-read first: keep what others wrote meanwhile)."""
        if not self.changes:
            return
        path = self.out_dir / CLIPS_FILE
        out = []
        for r in read_rows(path, ClipRow):
            upd = self.changes.get((r.speaker, r.family))
            out.append(ClipRow.model_validate({**r.model_dump(mode="python"), **upd}) if upd else r)
        write_rows(path, out)
        self.changes.clear()


def submit_run(
    out_dir: Path,
    families: Iterable[str] | None = None,
    speakers: Iterable[str] | None = None,
    *,
    config: RunConfig | None = None,
    dry_run: bool = False,
    preview_text: str | None = None,
    settle_timeout_s: float = 300.0,
    settle_interval_s: float = 10.0,
    absent_settle_s: float = ABSENT_SETTLE_S,
    progress: Callable[[str], None] = _quiet,
    providers: Providers | None = None,
    languages: Mapping[str, str] | None = None,
) -> list[VoiceRecord]:
    """Submit the ``ready`` clips of the run in ``out_dir`` and re-verify its ``submitted`` ones.

    Args:
        out_dir: a run's output folder (holds ``clips.jsonl``).
        families, speakers: restrict to these (default: all in the run).
        config: the run configuration's submit settings: ``ledger`` (default ``OUT/voices.sqlite``),
            ``target_models`` (family -> model; default the spec's ``default_target_model``), ``base_urls``
            (by family or provider name), ``region`` (``intl``/``cn``: documented hosts, key variables
            and the models offered), ``language`` (of every voice, unless given per speaker),
            ``audio_source`` and ``audio_url_template`` (how CosyVoice fetches a clip; default per
            region). Default: the defaults.
        dry_run: build and check the requests only: no request, no ledger write, no manifest change.
        preview_text: synthesised with every ready voice (``clips/<speaker>/<family>.preview.<ext>``),
            except a voice whose earlier preview of this text is still on disk (:func:`kept_preview`).
        settle_timeout_s, settle_interval_s: how long and how often to poll a voice under review.
        absent_settle_s: the unknown-outcome rule's wait (:data:`ABSENT_SETTLE_S`; see :func:`reconcile_row`).
        progress: called with one-line notes while working (e.g. waiting for a review).
        providers: the test seam (:data:`Providers`); default: clients made from the environment.
        languages: speaker -> language, over the run's speaker map (``OUT/run.json``); see
            :func:`language_for`. Sent as CosyVoice ``language_hints``, Qwen ``language``, MiniMax
            ``language_boost``.

    Returns:
        The voice of each reconciled ledger row (first), then of each selected clip, as a
        :class:`VoiceRecord` with ``action`` and ``note`` (``ok``: nothing needs attention).

    Raises:
        InvalidArgument: no ``clips.jsonl``, an unknown family/speaker/target model, bad settle times, a
            bad language, or a target model the family's region does not offer (one line naming the
            model, the region and the models it offers; raised before any upload or ledger write).
        MissingApiKey: no family in scope has its key (raised before any request or ledger write). When
            only some lack one, the others are submitted and each clip of a keyless family is answered
            ``skipped`` with ``last_error`` ``missing_api_key`` (its message names the variable to set).
        pipeline.enroll.ledger.LedgerBusy: another process holds the ledger.
        pipeline.batch.outputs.OutputBusy: another process (a ``voiceprep run``, another submit) holds
            ``OUT/.voiceprep.lock`` (:func:`~pipeline.enroll.ledger.writer_lock`).
    """
    out_dir = Path(out_dir)
    cfg = config or RunConfig()
    if settle_timeout_s < 0 or settle_interval_s <= 0:
        raise InvalidArgument(
            "settle_timeout_s must be >= 0 and settle_interval_s > 0 "
            f"(got {settle_timeout_s}, {settle_interval_s})"
        )
    clips_path = out_dir / CLIPS_FILE
    if not clips_path.is_file():
        raise InvalidArgument(
            f"out_dir: {clips_path} does not exist (run `voiceprep run IN --out {out_dir}` first)"
        )
    clips = read_rows(clips_path, ClipRow)
    run_families = sorted({c.family for c in clips})
    fams = (
        _validate_names(families, sorted(set(run_families) | set(list_families())), "family") or run_families
    )
    spk = _validate_names(speakers, sorted({c.speaker for c in clips}), "speaker")
    chosen = [
        c
        for c in clips
        if c.family in fams and (spk is None or c.speaker in spk) and c.status in {"ready", "submitted"}
    ]
    in_scope = sorted({c.family for c in chosen})
    specs = {f: load_family(f) for f in in_scope}
    client = client_getter(
        providers,
        base_urls=cfg.base_urls,
        require_key=not dry_run,
        region=cfg.region,
        audio_source=cfg.audio_source,
        url_template=cfg.audio_url_template if cfg.audio_source == "url_template" else None,
    )
    try:  # a damaged run.json only loses the run's languages and settings
        run_info = read_run_json(out_dir / RUN_FILE)
    except VoiceprepError:
        run_info = {}
    run_languages = run_info.get("languages") if isinstance(run_info.get("languages"), dict) else {}
    run_config = run_info.get("config") if isinstance(run_info.get("config"), dict) else {}
    chosen_languages = {k: normalize_language(v) or "" for k, v in (languages or {}).items()}
    normalize_language(cfg.language)
    for who in sorted({c.speaker for c in chosen}):  # a bad language is a usage error before anything
        language_for(
            who,
            per_speaker=chosen_languages,
            default=cfg.language,
            run_per_speaker=run_languages,
            run_default=run_config.get("language"),
        )
    run = _Run(
        out_dir,
        specs,
        cfg.target_models,
        client,
        dry_run=dry_run,
        preview_text=preview_text,
        settle_s=(settle_timeout_s, settle_interval_s),
        absent_settle_s=absent_settle_s,
        progress=progress,
        language_of=lambda who: language_for(
            who,
            per_speaker=chosen_languages,
            default=cfg.language,
            run_per_speaker=run_languages,
            run_default=run_config.get("language"),
        ),
    )
    missing: dict[str, MissingApiKey] = {}
    regions: dict[str, str | None] = {}
    for f in in_scope:  # every key is looked at before any request or ledger write
        try:
            regions[f] = client(specs[f]).region
        except MissingApiKey as exc:
            missing[f] = exc
            urls = cfg.base_urls
            url = urls.get(f) or urls.get(specs[f].provider)
            provider = specs[f].provider
            regions[f] = region_at(provider, http_base_url(provider, cfg.region, base_url=url), cfg.region)
    creating = {c.family for c in chosen if c.status == "ready"}
    refused = [
        region_refusal(f, run.models[f], regions[f], specs[f].models_in(regions[f]))
        for f in in_scope
        if f in creating and run.models[f] not in specs[f].models_in(regions[f])
    ]
    if refused:  # before any upload, ledger write or create
        raise InvalidArgument("; ".join(refused))
    if missing and len(missing) == len(in_scope):  # nothing could be attempted: a setup problem
        raise MissingApiKey.every(list(missing.values()))
    keyless = [c for c in chosen if c.family in missing]
    chosen = [c for c in chosen if c.family not in missing]
    skipped = [run.outcome(c, None, error=_no_key(missing[c.family])) for c in keyless]
    ledger_file = default_ledger_path(out_dir, cfg.ledger)
    if dry_run:
        run.known = read_records(ledger_file)
        return [run.reverify(c) if c.status == "submitted" else run.submit(c) for c in chosen]
    if not chosen:
        return skipped
    with writer_lock(ledger_file, out_dir), Ledger(ledger_file) as ledger:
        run.ledger = ledger
        try:
            outcomes = run.reconcile([f for f in in_scope if f not in missing])
            outcomes += [run.reverify(c) if c.status == "submitted" else run.submit(c) for c in chosen]
        finally:
            run.write_manifest()
    return outcomes + skipped
