"""Submit a run's ready clips to the cloning services, without ever losing or duplicating a voice.

:func:`submit_run` is ``voiceprep submit OUT``. In order:

1. read ``OUT/clips.jsonl`` and pick the ``ready`` clips (to create) and the ``submitted`` ones (to
   re-verify with the provider, never to re-create) of the chosen families and speakers;
2. check that every provider in scope has its API key (else :class:`MissingApiKey`, before anything else);
3. under the ledger's writer lock, **reconcile** every unresolved ledger row of those families (``pending``
   after the request was sent, ``unknown``) with the provider's list *before any create*;
4. per clip: reuse the ledger row that already holds the clip (``ready``: nothing to do; ``deploying``:
   wait for the review; ``unknown``: shown, never resubmitted; ``failed`` or never-sent ``pending``:
   retried with the same name), or write the intent, commit the "sent" marker, create, record the outcome;
   a lost answer (:class:`~pipeline.enroll.providers.base.OutcomeUnknown`) is settled with ``find_voice``;
5. optionally synthesise a preview with each ready voice (``clips/<speaker>/<family>.preview.<ext>``);
6. rewrite ``clips.jsonl`` atomically (``status: submitted``, ``voice_id``, ``target_model``).

:class:`SubmitOptions` carries the settings (the run configuration's ``ledger``, ``target_models``,
``base_urls`` and audio source, and the command's flags); ``providers`` is the one test seam (clients by
family, or a factory). ``dry_run`` builds the exact requests (:meth:`VoiceProvider.prepare_create`) and
validates names, sizes and models; it sends nothing, writes nothing and opens the ledger read-only.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.audio.io import atomic_write_bytes, sha256_file
from pipeline.batch.config import RunConfig
from pipeline.batch.manifest import CLIPS_FILE, ClipRow, read_rows, write_rows
from pipeline.enroll.ledger import (
    DEAD_STATUSES,
    LIVE_STATUSES,
    UNRESOLVED_STATUSES,
    Ledger,
    LedgerConflict,
    default_ledger_path,
    ledger_lock,
    parse_stored_time,
    read_voices,
    record_from_dict,
    scrub,
)
from pipeline.enroll.providers import api_key_env, make_provider
from pipeline.enroll.providers.base import (
    MissingApiKey,
    OutcomeUnknown,
    ProviderError,
    VoiceProvider,
    VoiceRecord,
    normalize_base_url,
)
from pipeline.errors import InvalidArgument
from pipeline.rules.families import FamilySpec, list_families, load_family

__all__ = [
    "FIND_SLACK_S",
    "STOP_REASONS",
    "MissingApiKey",
    "ProviderPool",
    "Providers",
    "SubmitOptions",
    "SubmitOutcome",
    "reconcile_row",
    "resolve_target_model",
    "submit_run",
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


def _quiet(message: str) -> None:
    """The default progress callback: says nothing."""


@dataclass(frozen=True)
class SubmitOptions:
    """How a submit runs.

    ``config`` gives the run configuration's submit settings: ``ledger`` (default ``OUT/voices.sqlite``),
    ``target_models`` (family -> model; default the spec's ``default_target_model``), ``base_urls`` (region
    by family or provider name), ``audio_source`` and ``audio_url_template`` (how CosyVoice fetches a clip).
    ``dry_run`` builds and validates the requests only: no request, no ledger write, no manifest change.
    ``preview_text`` is synthesised with every ready voice (``clips/<speaker>/<family>.preview.<ext>``).
    ``settle_timeout_s``/``settle_interval_s``: how long and how often to poll a voice under review;
    ``lock_timeout_s``: how long to wait for another process holding the ledger; ``progress`` is called
    with one-line notes while working (e.g. waiting for a review).
    """

    config: RunConfig = field(default_factory=RunConfig)
    dry_run: bool = False
    preview_text: str | None = None
    settle_timeout_s: float = 300.0
    settle_interval_s: float = 10.0
    lock_timeout_s: float = 10.0
    progress: Callable[[str], None] = _quiet


# --------------------------------------------------------------------------------------------- outcome


@dataclass
class SubmitOutcome:
    """What happened to one clip (or one reconciled ledger row) in a submit.

    ``status`` is the ledger status (``ready``, ``deploying``, ``rejected``, ``failed``, ``unknown``,
    ``pending``, ``gone``, ``deleted``) or ``skipped`` / ``dry-run``. ``action`` says what voiceprep did:
    ``created``, ``existing`` (a voice already held the clip), ``reverified`` (a ``submitted`` clip was
    checked), ``reconciled`` (an unresolved row was asked about), ``skipped`` or ``dry-run``.
    """

    speaker: str | None
    family: str
    target_model: str | None
    status: str
    action: str
    name: str | None = None
    voice_id: str | None = None
    reason: str | None = None
    message: str = ""
    clip: str | None = None
    ledger_id: int | None = None
    preview: str | None = None
    problems: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing needs the user's attention for this clip."""
        if self.action == "dry-run":
            return not self.problems
        if self.action == "reconciled":
            return self.status not in {"unknown", "pending"}
        return self.status in {"ready", "deploying"}


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


class ProviderPool:
    """Gives the client for a family (and region), made once per (family, region).

    Args:
        providers: the test seam (:data:`Providers`); default: real clients from the environment, which
            raise :class:`MissingApiKey` when a key is not set (unless ``require_key`` is False).
        base_urls: the region by family or provider name (family wins).
        require_key: ``False`` for a dry run: keys are not needed and clients can only prepare requests.
        options: passed to the default factory (``audio_source``, ``url_template`` for CosyVoice).
    """

    def __init__(
        self,
        providers: Providers | None = None,
        *,
        base_urls: Mapping[str, str] | None = None,
        require_key: bool = True,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.injected = providers is not None
        """True when the clients come from the test seam, not from the environment."""
        if providers is None:
            extra = {k: v for k, v in (options or {}).items() if v is not None}
            self._factory: ProviderFactory = lambda spec, url: make_provider(
                spec, base_url=url, require_key=require_key, **extra
            )
        elif isinstance(providers, Mapping):
            self._factory = lambda spec, url: _given(providers, spec)
        else:
            self._factory = providers
        self._base_urls = dict(base_urls or {})
        self._cache: dict[tuple[str, str | None], VoiceProvider] = {}

    def get(self, spec: FamilySpec, base_url: str | None = None) -> VoiceProvider:
        """The client for ``spec`` at ``base_url`` (``None``: the configured or default region).

        Raises:
            MissingApiKey: the family's key is not in the environment.
            InvalidArgument: the seam lacks the family, or its client serves another region than ``base_url``.
        """
        chosen = base_url or self._base_urls.get(spec.name) or self._base_urls.get(spec.provider)
        wanted = normalize_base_url(chosen) if chosen else None
        key = (spec.name, wanted)
        if key not in self._cache:
            client = self._factory(spec, wanted)
            if wanted is not None and client.base_url != wanted:
                raise InvalidArgument(
                    f"the {spec.name} client serves {client.base_url}, not {wanted} (a voice lives in one region)"
                )
            self._cache[key] = client
        return self._cache[key]


def _given(providers: Mapping[str, VoiceProvider], spec: FamilySpec) -> VoiceProvider:
    client = providers.get(spec.name)
    if client is None:
        raise InvalidArgument(f"no provider client given for family {spec.name!r}")
    return client


# --------------------------------------------------------------------------------------------- reconcile


def _since(row: VoiceRecord) -> str | None:
    t = parse_stored_time(row.sent_at or row.created_at)
    if t is None:
        return None
    return (t - _dt.timedelta(seconds=FIND_SLACK_S)).isoformat(timespec="seconds")


def reconcile_row(ledger: Ledger, row: VoiceRecord, provider: VoiceProvider) -> tuple[VoiceRecord, str]:
    """Ask the provider about one unresolved row and record the answer; returns ``(row after, note)``.

    A match becomes the voice's real status with its id. No match: a ``pending`` row whose request was
    sent becomes ``unknown`` (never retried by itself); an ``unknown`` row stays so. A ``pending`` row that
    was never sent is left for :func:`submit_run` to retry. A provider error leaves the row as it is.
    """
    if row.status == "pending" and row.sent_at is None:
        return row, "the create request was never sent; it may be retried"
    try:
        found = provider.find_voice(row, since=_since(row))
    except ProviderError as exc:
        return row, f"could not ask the provider ({exc.reason}): {scrub(exc.message)}"
    if found is not None:
        try:
            after = _apply_remote(ledger, row, found)
        except LedgerConflict as exc:  # the match belongs to another row: leave this one for the user
            return row, f"the provider's match {found.voice_id} is claimed elsewhere: {exc}"
        return after, f"found remotely as {found.voice_id} ({found.status})"
    if row.status == "pending":
        after = ledger.update(
            row.id,
            status="unknown",
            checked=True,
            error=("outcome_unknown", "the create request was sent but the provider does not list the voice"),
        )
        return after, "the provider does not list it; left unknown (never resubmitted automatically)"
    return ledger.update(row.id, checked=True), "still not listed by the provider"


def _apply_remote(ledger: Ledger, row: VoiceRecord, remote: VoiceRecord) -> VoiceRecord:
    status = remote.status
    error = (
        ("provider_rejected", "the provider rejected the voice after review")
        if status == "rejected"
        else None
    )
    return ledger.update(
        row.id,
        status=status,
        voice_id=remote.voice_id,
        checked=True,
        error=error,
        clear_error=error is None,
    )


# --------------------------------------------------------------------------------------------- dry run


def _size_problems(spec: FamilySpec, size: int, prepared: Sequence[Mapping[str, Any]]) -> list[str]:
    problems = []
    limit = spec.limits.max_bytes.value
    if limit is None:
        return problems
    if size > limit:
        problems.append(f"too_large: the clip is {size} bytes; {spec.name} takes at most {limit}")
    if spec.limits.inline_base64.value:
        encoded = 4 * math.ceil(size / 3)
        if encoded > limit:
            problems.append(
                f"too_large: base64 of the clip is {encoded} bytes; {spec.name} takes at most {limit}"
            )
    for p in prepared:
        if p["encoded_bytes"] > limit:
            problems.append(
                f"too_large: the request carries {p['encoded_bytes']} encoded bytes; at most {limit}"
            )
    return problems


# --------------------------------------------------------------------------------------------- the run


def _sources(clip: ClipRow) -> list[str]:
    seen: list[str] = []
    for seg in clip.segments:
        p = seg.get("path")
        if isinstance(p, str) and p not in seen:
            seen.append(p)
    return seen


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


class _Run:
    """State of one submit: the ledger, the providers, the options, pending manifest changes."""

    def __init__(
        self,
        out_dir: Path,
        ledger: Ledger | None,
        pool: ProviderPool,
        specs: Mapping[str, FamilySpec],
        options: SubmitOptions,
    ) -> None:
        self.out_dir = out_dir
        self.ledger = ledger
        self.pool = pool
        self.specs = specs
        self.models = {
            f: resolve_target_model(spec, options.config.target_models) for f, spec in specs.items()
        }
        self.options = options
        self.preview_text = options.preview_text
        self.progress = options.progress
        self.changes: dict[tuple[str, str], dict[str, Any]] = {}
        self.stopped: dict[str, str] = {}  # family -> reason that stops further creates

    # -- helpers
    def change(self, clip: ClipRow, **updates: Any) -> None:
        self.changes.setdefault((clip.speaker, clip.family), {}).update(updates)

    def outcome(self, clip: ClipRow | None, row: VoiceRecord | None, **kw: Any) -> SubmitOutcome:
        base: dict[str, Any] = {
            "speaker": clip.speaker if clip else (row.speaker if row else None),
            "family": clip.family if clip else (row.family if row else ""),
            "target_model": row.target_model if row else None,
            "status": row.status if row else "skipped",
            "action": "skipped",
            "name": row.name if row else None,
            "voice_id": row.voice_id if row else None,
            "clip": clip.clip if clip else None,
            "ledger_id": row.id if row else None,
        }
        if row is not None and row.last_error and row.status in {"failed", "rejected", "unknown", "pending"}:
            base["reason"] = row.last_error.get("reason")
            base["message"] = row.last_error.get("message", "")
        base.update(kw)
        return SubmitOutcome(**base)

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
        if row.status != "deploying" or not row.voice_id:
            return row
        self.progress(
            f"{row.family} {row.speaker}: {row.voice_id} is under review; "
            f"waiting up to {self.options.settle_timeout_s:g} s"
        )
        try:
            remote = provider.wait_until_settled(
                row.voice_id,
                timeout_s=self.options.settle_timeout_s,
                interval_s=self.options.settle_interval_s,
            )
        except ProviderError as exc:
            assert self.ledger is not None
            return self.ledger.update(row.id, error=(exc.reason, exc.message))
        assert self.ledger is not None
        return _apply_remote(self.ledger, row, remote)

    def finish(
        self,
        clip: ClipRow,
        provider: VoiceProvider,
        row: VoiceRecord,
        action: str,
        message: str | None = None,
    ) -> SubmitOutcome:
        """Wait for a voice under review, bring the clip in line, make the preview, and report."""
        assert self.ledger is not None
        row = self.settle(provider, row)
        self.mark_clip(clip, row)
        kw: dict[str, Any] = {"action": action} if message is None else {"action": action, "message": message}
        if not self.preview_text or row.status != "ready" or not row.voice_id:
            return self.outcome(clip, row, **kw)
        try:
            data = provider.preview(row.voice_id, target_model=row.target_model or "", text=self.preview_text)
        except ProviderError as exc:
            return self.outcome(
                clip, row, **{**kw, "message": f"preview failed ({exc.reason}): {scrub(exc.message)}"}
            )
        rel = Path("clips") / clip.speaker / f"{clip.family}.preview.{_audio_ext(data)}"
        target = self.out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, lambda fh: fh.write(data))
        self.ledger.update(row.id, preview_path=str(target))
        self.change(clip, preview=rel.as_posix())
        return self.outcome(clip, row, **kw, preview=rel.as_posix())

    # -- phases
    def reconcile(self, families: Sequence[str]) -> list[SubmitOutcome]:
        assert self.ledger is not None
        outcomes = []
        for family in families:
            spec = self.specs[family]
            for row in self.ledger.rows(provider=spec.provider, family=family, statuses=UNRESOLVED_STATUSES):
                if not row.unresolved:
                    continue
                try:
                    provider = self.pool.get(spec, row.base_url)
                except InvalidArgument as exc:
                    outcomes.append(self.outcome(None, row, action="reconciled", message=str(exc)))
                    continue
                after, note = reconcile_row(self.ledger, row, provider)
                after = self.settle(provider, after)
                outcomes.append(self.outcome(None, after, action="reconciled", message=note))
        return outcomes

    def reverify(self, clip: ClipRow) -> SubmitOutcome:
        assert self.ledger is not None
        spec = self.specs[clip.family]
        if not clip.voice_id:
            return self.outcome(clip, None, message="submitted without a voice id; left as is")
        row = self.ledger.by_voice_id(provider=spec.provider, voice_id=clip.voice_id)
        if row is not None and row.status in DEAD_STATUSES:
            self.change(clip, status="ready", voice_id=None, target_model=None)
            return self.outcome(
                clip,
                row,
                action="reverified",
                message=f"the voice is {row.status}; submit again to make a new one",
            )
        try:
            provider = self.pool.get(spec, row.base_url if row else None)
            remote = provider.query_voice(clip.voice_id)
        except InvalidArgument as exc:
            return self.outcome(clip, row, action="reverified", message=str(exc))
        except ProviderError as exc:
            return self.outcome(
                clip,
                row,
                action="reverified",
                reason=exc.reason,
                message=f"could not check: {scrub(exc.message)}",
            )
        if remote is None:
            if row is None:
                return self.outcome(
                    clip,
                    None,
                    status="unknown",
                    action="reverified",
                    voice_id=clip.voice_id,
                    message=f"not in the ledger and {provider.base_url} does not know it; clips.jsonl left as is",
                )
            gone = self.ledger.update(
                row.id, status="gone", checked=True, error=("voice_gone", "the provider no longer has it")
            )
            reasons = [r for r in clip.reasons if r != "voice_gone"] + ["voice_gone"]
            self.change(clip, status="ready", voice_id=None, target_model=None, reasons=reasons)
            return self.outcome(
                clip,
                gone,
                action="reverified",
                reason="voice_gone",
                message="submit again to make a new voice",
            )
        if row is None:
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
        else:
            row = _apply_remote(self.ledger, row, remote)
        return self.finish(clip, provider, row, "reverified")

    def missing_clip(self, clip: ClipRow, model: str) -> SubmitOutcome | None:
        """The ``not_found`` failure when the clip's file is gone, else None."""
        if clip.clip and (self.out_dir / clip.clip).is_file():
            return None
        return self.outcome(
            clip,
            None,
            target_model=model,
            status="failed",
            reason="not_found",
            message=f"clip file {clip.clip} is missing",
        )

    def slot(
        self, clip: ClipRow, known: Sequence[VoiceRecord]
    ) -> tuple[Path, str, VoiceProvider, list[VoiceRecord], VoiceRecord | None]:
        """The clip's file and sha256, its family's client, the ``known`` rows of that provider, and the one
        holding the clip's slot (:func:`_holder`) in the client's region."""
        spec = self.specs[clip.family]
        clip_path = self.out_dir / (clip.clip or "")
        provider, sha = self.pool.get(spec), sha256_file(clip_path)
        rows = [r for r in known if r.provider == spec.provider]
        return clip_path, sha, provider, rows, _holder(rows, self.models[clip.family], sha, provider.base_url)

    def submit(self, clip: ClipRow) -> SubmitOutcome:
        assert self.ledger is not None
        spec = self.specs[clip.family]
        model = self.models[clip.family]
        if clip.family in self.stopped:
            return self.outcome(
                clip,
                None,
                target_model=model,
                reason=self.stopped[clip.family],
                message="not tried: an earlier create of this family failed the same way",
            )
        missing = self.missing_clip(clip, model)
        if missing is not None:
            return missing
        clip_path, sha, provider, rows, row = self.slot(clip, self.ledger.rows(provider=spec.provider))
        if row is not None:
            if row.status in {"ready", "deploying"}:
                return self.finish(clip, provider, row, "existing")
            if row.status == "rejected":
                self.mark_clip(clip, row)
                return self.outcome(clip, row, action="existing")
            if row.unresolved:
                return self.outcome(
                    clip,
                    row,
                    action="skipped",
                    reason="outcome_unknown",
                    message="an earlier create may have made this voice; run `voiceprep voices sync` (never resubmitted)",
                )
            # otherwise row.retryable: retry with the same row and name
        else:
            name = _next_name(spec, clip, sha, model, rows)
            try:
                row = self.ledger.begin(
                    self.new_voice(clip, name, clip_path.resolve(), sha, provider.base_url)
                )
            except LedgerConflict as exc:
                return self.outcome(clip, None, target_model=model, message=str(exc))
        return self.create(clip, provider, row)

    def new_voice(self, clip: ClipRow, name: str, path: Path, sha: str, base_url: str) -> VoiceRecord:
        """The record of the voice to make from ``clip`` (what the ledger's intent and the request hold)."""
        return VoiceRecord(
            provider=self.specs[clip.family].provider,
            base_url=base_url,
            family=clip.family,
            target_model=self.models[clip.family],
            name=name,
            clip_sha256=sha,
            clip_path=str(path),
            speaker=clip.speaker,
            sources=_sources(clip),
            enrollment_key=clip.key or None,
        )

    def create(self, clip: ClipRow, provider: VoiceProvider, row: VoiceRecord) -> SubmitOutcome:
        assert self.ledger is not None
        row = self.ledger.mark_sent(row.id)
        request = dataclasses.replace(row, clip_path=row.clip_path or str(self.out_dir / (clip.clip or "")))
        self.progress(f"{clip.family} {clip.speaker}: creating {request.name} for {request.target_model}")
        try:
            result = provider.create_voice(request, preview_text=self.preview_text)
        except InvalidArgument as exc:  # the client refused the request before sending it
            row = self.ledger.update(row.id, status="failed", error=("provider_bad_request", str(exc)))
            return self.outcome(clip, row, action="created")
        except OutcomeUnknown as exc:
            row = self.ledger.update(row.id, request_ids=[exc.request_id], error=(exc.reason, exc.message))
            row, note = reconcile_row(self.ledger, row, provider)
            return self.finish(clip, provider, row, "created", f"the answer was lost; {note}")
        except ProviderError as exc:
            status = "rejected" if exc.reason == "provider_rejected" else "failed"
            row = self.ledger.update(
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
        )
        return self.finish(clip, provider, row, "created")

    def dry_run(self, clip: ClipRow, known: list[VoiceRecord]) -> SubmitOutcome:
        spec = self.specs[clip.family]
        model = self.models[clip.family]
        if clip.status == "submitted":
            return self.outcome(
                clip,
                None,
                target_model=model,
                voice_id=clip.voice_id,
                status="submitted",
                action="dry-run",  # nothing needs attention: a dry run over a submitted clip exits 0
                message="already submitted; would re-verify",
            )
        missing = self.missing_clip(clip, model)
        if missing is not None:
            return missing
        clip_path, sha, provider, rows, row = self.slot(clip, known)
        if row is not None and not row.retryable:
            return self.outcome(
                clip,
                row,
                action="dry-run",
                status="dry-run",
                message=f"ledger row {row.id} ({row.status}) holds this clip; nothing would be created",
            )
        name = row.name if row is not None else _next_name(spec, clip, sha, model, rows)
        problems: list[str] = []
        if not spec.name_rule.matches(name or ""):
            problems.append(f"the name {name!r} does not match {spec.name_rule.pattern}")
        request = self.new_voice(clip, name or "", clip_path, sha, provider.base_url)
        try:
            prepared = list(provider.prepare_create(request, preview_text=self.preview_text))
        except ProviderError as exc:
            prepared = []
            problems.append(f"{exc.reason}: {scrub(exc.message)}")
        except InvalidArgument as exc:
            prepared = []
            problems.append(f"provider_bad_request: {scrub(str(exc))}")
        problems += _size_problems(spec, clip_path.stat().st_size, prepared)
        return self.outcome(
            clip,
            None,
            target_model=model,
            status="dry-run",
            action="dry-run",
            name=name,
            requests=prepared,
            problems=problems,
            message=f"{len(prepared)} request(s), base URL {provider.base_url}" + self.key_note(spec),
        )

    def key_note(self, spec: FamilySpec) -> str:
        env = None if self.pool.injected else unset_key_env(spec)
        return f"; {env} is not set: a real submit would stop" if env else ""

    def write_manifest(self) -> None:
        if not self.changes:
            return
        path = self.out_dir / CLIPS_FILE
        rows = read_rows(path, ClipRow)  # re-read: keep what others wrote meanwhile
        out = []
        for r in rows:
            upd = self.changes.get((r.speaker, r.family))
            out.append(ClipRow.model_validate({**r.model_dump(mode="python"), **upd}) if upd else r)
        write_rows(path, out)
        self.changes.clear()


def unset_key_env(spec: FamilySpec) -> str | None:
    """The environment variable holding ``spec``'s provider key when it is not set (``None`` when it is)."""
    env = api_key_env(spec.provider)
    return None if os.environ.get(env) else env


def submit_run(
    out_dir: Path,
    families: Iterable[str] | None = None,
    speakers: Iterable[str] | None = None,
    options: SubmitOptions | None = None,
    providers: Providers | None = None,
) -> list[SubmitOutcome]:
    """Submit the ``ready`` clips of the run in ``out_dir`` and re-verify its ``submitted`` ones.

    Args:
        out_dir: a run's output folder (holds ``clips.jsonl``).
        families, speakers: restrict to these (default: all in the run).
        options: the settings (:class:`SubmitOptions`; default: the configuration's defaults, no dry run).
        providers: the test seam (:data:`Providers`); default: clients made from the environment.

    Returns:
        One :class:`SubmitOutcome` per reconciled ledger row (first), then per selected clip.

    Raises:
        InvalidArgument: no ``clips.jsonl``, an unknown family/speaker/target model, bad settle times.
        MissingApiKey: a provider in scope has no key (raised before any request or ledger write).
        pipeline.enroll.ledger.LedgerBusy: another process holds the ledger.
    """
    out_dir = Path(out_dir)
    options = options or SubmitOptions()
    if options.settle_timeout_s < 0 or options.settle_interval_s <= 0:
        raise InvalidArgument(
            "settle_timeout_s must be >= 0 and settle_interval_s > 0 "
            f"(got {options.settle_timeout_s}, {options.settle_interval_s})"
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
    cfg = options.config
    pool = ProviderPool(
        providers,
        base_urls=cfg.base_urls,
        require_key=not options.dry_run,
        options={
            "audio_source": cfg.audio_source,
            "url_template": cfg.audio_url_template if cfg.audio_source == "url_template" else None,
        },
    )
    ledger_file = default_ledger_path(out_dir, cfg.ledger)
    run = _Run(out_dir, None, pool, specs, options)  # resolves the target models before anything is asked
    missing: list[MissingApiKey] = []
    for f in in_scope:  # every key is looked at before any request or ledger write
        try:
            pool.get(specs[f])
        except MissingApiKey as exc:
            missing.append(exc)
    if missing:
        raise MissingApiKey.every(missing)
    if options.dry_run:
        known = [record_from_dict(d) for d in read_voices(ledger_file)]
        return [run.dry_run(c, known) for c in chosen]
    if not chosen:
        return []
    outcomes: list[SubmitOutcome] = []
    with ledger_lock(ledger_file, timeout_s=options.lock_timeout_s), Ledger(ledger_file) as ledger:
        run.ledger = ledger
        try:
            outcomes += run.reconcile(in_scope)
            for clip in chosen:
                outcomes.append(run.reverify(clip) if clip.status == "submitted" else run.submit(clip))
        finally:
            run.write_manifest()
    return outcomes
