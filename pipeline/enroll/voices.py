"""Manage the voices in the ledger: list, show, delete, sync with the providers, expiry and quota warnings.

Library side of ``voiceprep voices``; the command line lives in :mod:`pipeline.cli.voices`.

``sync`` compares the ledger with each provider's list, per family and region (base URL):

* unresolved rows (``pending`` after sending, ``unknown``) are asked about first (``find_voice``);
* rows whose voice the provider still lists take its status (``deploying`` -> ``ready``/``rejected``);
* rows whose voice is no longer listed, *and* that ``query_voice`` confirms missing, become ``gone``;
* voices on the account that the ledger does not know are **recorded** as rows with ``origin: remote``
  (their status from the provider, no clip), so quotas count them, ``voices delete`` can remove them, and
  "no remote voice the ledger does not know" holds after every sync. ``submit`` never touches such rows.

``sync``, ``update`` and ``delete`` write the ledger under :func:`~pipeline.enroll.ledger.writer_lock`: the
run folder's ``OUT/.voiceprep.lock`` (``out_dir``, and the ledger's own folder when it is a run folder),
then the ledger's lock; ``list`` and ``show`` only read.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from pipeline.enroll.check import CLONE_CHECK_KEY, describe_check
from pipeline.enroll.ledger import (
    DEAD_STATUSES,
    PENDING_UPDATE,
    STATUSES,
    UNRESOLVED_STATUSES,
    Ledger,
    parse_stored_time,
    read_records,
    utc_now,
    writer_lock,
)
from pipeline.enroll.providers.base import ProviderError, VoiceRecord
from pipeline.enroll.providers.common import VoiceProvider
from pipeline.enroll.submit import (
    ABSENT_SETTLE_S,
    Providers,
    UntrustedBaseUrl,
    apply_remote,
    client_getter,
    reconcile_row,
)
from pipeline.errors import InvalidArgument, SpecError
from pipeline.rules.families import FamilySpec, load_family

__all__ = [
    "QUOTA_WARN_FRACTION",
    "VoiceReport",
    "VoiceWarning",
    "delete_voice",
    "describe_voice",
    "expires_at",
    "expiry_warn_days",
    "list_voices",
    "model_reminder",
    "quota_usage",
    "show_voice",
    "sync_voices",
    "update_voice",
    "voice_warnings",
    "warning_json",
]

QUOTA_WARN_FRACTION = 0.8
"""Warn when an account holds this share of its voice quota."""

_COUNTED = ("pending", "deploying", "ready", "rejected", "unknown")
"""Statuses that (may) occupy a slot of the provider's quota."""
_EXPIRING = ("deploying", "ready")


@cache
def _spec(family: str) -> FamilySpec | None:
    try:
        return load_family(family)
    except SpecError:
        return None


# --------------------------------------------------------------------------------------------- warnings


VoiceWarning = tuple[str, str, VoiceRecord]
"""``(kind, message, row)``: something the user should act on. ``kind``: ``expiring``, ``expired``,
``quota`` (then ``row`` is one row of the account: the warning is about its family and base URL) or
``unresolved``."""


def warning_json(warning: VoiceWarning) -> dict[str, Any]:
    """A warning as plain data: kind, family, provider, base URL, message, and the voice it is about."""
    kind, message, r = warning
    account = {"kind": kind, "family": r.family, "provider": r.provider, "base_url": r.base_url}
    quota = kind == "quota"
    return {
        **account,
        "message": message,
        "voice_id": None if quota else r.voice_id,
        "ledger_id": None if quota else r.id,
    }


def expiry_warn_days(unused_days: int) -> float:
    """How early to warn before a voice expires unused: 3 days for short rules (MiniMax 7 days), else 30."""
    return 3.0 if unused_days <= 30 else 30.0


def _usage(
    records: Sequence[VoiceRecord], remote_counts: Mapping[tuple[str, str], int] | None
) -> list[tuple[VoiceRecord, int, int | None, str]]:
    """Per account and family, ``(a record of it, voices used, the family's quota, counted from)``."""
    accounts: dict[tuple[str, str, str], list[VoiceRecord]] = {}
    for r in records:
        accounts.setdefault((r.provider, r.family, r.base_url), []).append(r)
    out = []
    for (_, family, base), rows in sorted(accounts.items()):
        spec, remote = _spec(family), (remote_counts or {}).get((family, base))
        used = sum(r.status in _COUNTED for r in rows) if remote is None else remote
        out.append(
            (
                rows[0],
                used,
                spec.quota.value if spec else None,
                "ledger" if remote is None else "provider",
            )
        )
    return out


def quota_usage(
    rows: Sequence[VoiceRecord],
    *,
    remote_counts: Mapping[tuple[str, str], int] | None = None,
) -> list[str]:
    """One line per (family, base URL): the voices held, from the ledger or from
    ``remote_counts[(family, base_url)]`` (a provider's list) where given, against ``quota.value``."""
    return [
        f"{r.family} at {r.base_url}: {used} voices "
        f"{f'of {limit}' if limit else '(no published limit)'} ({counted_from})"
        for r, used, limit, counted_from in _usage(rows, remote_counts)
    ]


def voice_warnings(
    records: Sequence[VoiceRecord],
    *,
    now: _dt.datetime | None = None,
    remote_counts: Mapping[tuple[str, str], int] | None = None,
) -> list[VoiceWarning]:
    """Expiry, quota and unresolved-row warnings for the ledger rows.

    Expiry follows the family spec's ``voice_expiry.value`` (MiniMax 7, Alibaba 365), counted from
    ``last_used_at`` when known, else from ``created_at`` (voiceprep cannot see synthesis use).
    """
    now = now or utc_now()
    out: list[VoiceWarning] = []

    def warn(kind: str, r: VoiceRecord, message: str) -> None:
        out.append((kind, message, r))

    for r in records:
        spec = _spec(r.family)
        basis = parse_stored_time(r.last_used_at) or parse_stored_time(r.created_at)
        if r.status in _EXPIRING and spec is not None and spec.voice_expiry.value and basis is not None:
            days = spec.voice_expiry.value
            left = days - (now - basis).total_seconds() / 86400.0
            what = "last use" if r.last_used_at else "creation"
            if left <= 0:
                warn(
                    "expired",
                    r,
                    f"{r.voice_id}: {days} days since {what}; {spec.name} deletes voices unused that long "
                    "(run `voiceprep voices sync`)",
                )
            elif left <= expiry_warn_days(days):
                warn(
                    "expiring",
                    r,
                    f"{r.voice_id}: expires in about {left:.1f} days unless used in a synthesis "
                    f"({spec.voice_expiry.note})",
                )
        pending = r.details.get(PENDING_UPDATE)
        if isinstance(pending, dict) and r.status not in DEAD_STATUSES:
            warn(
                "unresolved",
                r,
                f"row {r.id} ({r.voice_id}): an update to {pending.get('clip_path')} was sent at "
                f"{pending.get('sent_at')} and never answered, so the voice may be made from either clip; "
                f"run `voiceprep voices update {r.id} --clip {pending.get('clip_path')}` again to settle it",
            )
        if r.unresolved:
            warn(
                "unresolved",
                r,
                f"row {r.id} ({r.speaker}, {r.name}): a create may have made a voice; it is not resubmitted "
                "until proven absent (run `voiceprep voices sync` later)",
            )
    for r, used, limit, _ in _usage(records, remote_counts):
        if limit and used >= QUOTA_WARN_FRACTION * limit:
            warn(
                "quota",
                r,
                f"{r.family} at {r.base_url}: {used} of {limit} voices used; "
                "delete unused ones (`voiceprep voices delete`)",
            )
    return out


# --------------------------------------------------------------------------------------------- list / show


@dataclass
class VoiceReport:
    """What ``voices list`` or ``voices sync`` found.

    ``entries`` (list): ``(ledger row, the provider's view)``, the view None without ``--remote`` or when
    the provider does not list the voice, the row None for a voice only the provider lists. ``changes``
    (sync): ``(row before, row after, why)``; ``recorded`` (sync): voices added from the providers' lists.
    ``checked``: ``(family, base_url, voices listed)`` per account asked. ``usage``: quota lines (list);
    ``warnings`` (:data:`VoiceWarning`); ``notes`` (e.g. a provider not reached).
    """

    entries: list[tuple[VoiceRecord | None, VoiceRecord | None]] = field(default_factory=list)
    changes: list[tuple[VoiceRecord, VoiceRecord, str]] = field(default_factory=list)
    recorded: list[VoiceRecord] = field(default_factory=list)
    checked: list[tuple[str, str, int]] = field(default_factory=list)
    usage: list[str] = field(default_factory=list)
    warnings: list[VoiceWarning] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def remote_counts(self) -> dict[tuple[str, str], int]:
        """Voices listed per (family, base URL) asked."""
        return {(family, base): n for family, base, n in self.checked}


def _require_ledger(path: Path) -> None:
    if not Path(path).is_file():
        raise InvalidArgument(
            f"no voice ledger at {path} (name the run folder that holds it, or the ledger file with --ledger)"
        )


def _filter(
    records: Sequence[VoiceRecord],
    *,
    provider: str | None,
    family: str | None,
    statuses: Sequence[str] | None,
) -> list[VoiceRecord]:
    if statuses:
        bad = [s for s in statuses if s not in STATUSES]
        if bad:
            raise InvalidArgument(f"status must be one of {', '.join(STATUSES)} (got {', '.join(bad)})")
    return [
        r
        for r in records
        if (provider is None or r.provider == provider)
        and (family is None or r.family == family)
        and (not statuses or r.status in statuses)
    ]


def list_voices(
    ledger_path: Path,
    *,
    provider: str | None = None,
    family: str | None = None,
    statuses: Sequence[str] | None = None,
    remote: bool = False,
    providers: Providers | None = None,
    now: _dt.datetime | None = None,
    region: str | None = None,
) -> VoiceReport:
    """The ledger's voices (read-only), with warnings; ``remote`` merges each provider's own list
    (``region``: the region of an address the ledger holds that has none of its own).

    With ``remote``, every (family, region) in the selection is asked for its list: ledger rows gain the
    provider's view, and voices only the provider has are added as entries without a record. Nothing is
    written (``voices sync`` records the differences).

    A run with nothing submitted has no ledger yet: that is an empty listing with a note, not an error.

    Raises:
        InvalidArgument: a bad status filter.
        pipeline.enroll.submit.MissingApiKey: ``remote`` and a provider's key is not set.
    """
    records = read_records(ledger_path)  # [] when the ledger does not exist yet
    chosen = _filter(records, provider=provider, family=family, statuses=statuses)
    report = VoiceReport(entries=[(r, None) for r in chosen])
    if not Path(ledger_path).is_file():
        folder = Path(ledger_path).parent
        if folder.is_dir():
            report.notes.append(f"no voice ledger yet at {ledger_path}: nothing was submitted from this run")
        else:  # a mistyped --out: say so rather than "nothing was submitted"
            report.notes.append(
                f"no voice ledger at {ledger_path}: the folder {folder} does not exist "
                "(--out is the output folder of a run)"
            )
    if remote:
        pool = client_getter(providers, region=region)
        targets = {
            (r.family, r.base_url) for r in _filter(records, provider=provider, family=family, statuses=None)
        }
        by_key = {(r.family, r.base_url, r.voice_id): i for i, r in enumerate(chosen) if r.voice_id}
        known = {(r.base_url, r.voice_id) for r in records if r.voice_id}
        for spec, client in _clients(pool, targets, report.notes, "not asked"):
            fam, base = spec.name, client.base_url
            try:
                listed = client.list_voices()
            except ProviderError as exc:
                report.notes.append(f"{fam} at {base}: could not list ({exc.reason}): {exc.message}")
                continue
            report.checked.append((fam, base, len(listed)))
            for rv in listed:
                i = by_key.get((fam, base, rv.voice_id))
                if i is not None:
                    report.entries[i] = (chosen[i], rv)
                elif (base, rv.voice_id) not in known:
                    report.entries.append((None, dataclasses.replace(rv, family=fam, base_url=base)))
    counts = report.remote_counts
    report.usage = quota_usage([r for r in records if family in (None, r.family)], remote_counts=counts)
    report.warnings = [
        w
        for w in voice_warnings(records, now=now, remote_counts=counts)
        if family in (None, w[2].family) and provider in (None, w[2].provider)
    ]
    return report


def _one(records: Sequence[VoiceRecord], ident: str) -> VoiceRecord:
    """The row ``ident`` names: a row id (``12`` or ``#12``), else a voice id, else a name."""
    text = ident.strip()
    rows = [r for r in records if text.lstrip("#").isdigit() and r.id == int(text.lstrip("#"))]
    rows = rows or [r for r in records if r.voice_id == text] or [r for r in records if r.name == text]
    if not rows:
        raise InvalidArgument(f"no voice in the ledger matches {ident!r} (a row id, voice id or name)")
    if len(rows) > 1:
        ids = ", ".join(f"#{r.id}" for r in rows)
        raise InvalidArgument(f"{ident!r} matches several ledger rows ({ids}); give the row id")
    return rows[0]


def show_voice(ledger_path: Path, ident: str) -> VoiceRecord:
    """The ledger row named by ``ident`` (row id ``12``/``#12``, voice id, or name); read-only.

    Raises:
        InvalidArgument: no ledger, no match, or several matches.
    """
    _require_ledger(ledger_path)
    return _one(read_records(ledger_path), ident)


def model_reminder(record: VoiceRecord) -> str:
    """The one-line reminder that synthesis must use the voice's exact target model."""
    if not record.target_model:
        return "the target model of this voice is not known: ask the provider before using it"
    return (
        f"synthesis with {record.voice_id or 'this voice'} must use the exact target model "
        f"{record.target_model!r}; another model will refuse the voice"
    )


def describe_voice(
    record: VoiceRecord,
    *,
    now: _dt.datetime | None = None,
    versions: Sequence[Mapping[str, Any]] = (),
) -> list[tuple[str, str]]:
    """``(field, text)`` pairs for ``voices show``: every field, the provider's signals (``details``, e.g.
    Qwen's fallback), each version's clip, and the expiry and the target-model reminder last."""
    now = now or utc_now()
    pairs: list[tuple[str, str]] = [("row", f"#{record.id}")]
    for key in (
        "voice_id",
        "status",
        "provider",
        "base_url",
        "family",
        "target_model",
        "name",
        "speaker",
        "origin",
        "clip_path",
        "clip_sha256",
        "enrollment_key",
        "created_at",
        "sent_at",
        "updated_at",
        "last_checked_at",
        "last_used_at",
        "preview_path",
    ):
        value = getattr(record, key)
        pairs.append((key, "-" if value in (None, "") else str(value)))
    pairs.append(("sources", ", ".join(record.sources) or "-"))
    pairs.append(("request_ids", ", ".join(record.request_ids) or "-"))
    err = record.last_error
    pairs.append(("last_error", f"{err.get('reason')}: {err.get('message')}" if err else "-"))
    for key, value in sorted(record.details.items()):
        if key == CLONE_CHECK_KEY and isinstance(value, dict):
            pairs.append((key, describe_check(value)))
        else:
            pairs.append((key, str(value)))
    for v in versions:
        clip = f"{v.get('clip_path') or '-'} (sha256 {str(v.get('clip_sha256') or '-')[:12]})"
        pairs.append((f"version {v.get('version')}", f"{v.get('created_at')}: {v.get('note') or ''} {clip}"))
    spec = _spec(record.family)
    if spec is not None:
        expiry = spec.voice_expiry.note or ""
        warns = [m for k, m, _ in voice_warnings([record], now=now) if k in {"expiring", "expired"}]
        when = expires_at(record)
        expiry += f"; deleted after {when} unless used" if when else ""
        pairs.append(("expiry", f"{expiry}" + (f" ({warns[0]})" if warns else "")))
    pairs.append(("reminder", model_reminder(record)))
    return pairs


# --------------------------------------------------------------------------------------------- delete


def delete_voice(
    ledger_path: Path,
    ident: str,
    *,
    providers: Providers | None = None,
    region: str | None = None,
    out_dir: Path | None = None,
) -> VoiceRecord:
    """Delete the voice at its provider, then mark its ledger row ``deleted``; returns the row after, with
    ``action`` ``delete`` and a ``note`` saying what was done.

    A row without a voice id (``failed``, never-sent ``pending``, or ``unknown``) is only marked ``deleted``
    in the ledger: that lets ``submit`` make the clip's voice again (under a new name). If an ``unknown``
    row did make a voice after all, the next ``voices sync`` records it as a ``remote`` voice.

    Raises:
        InvalidArgument: no ledger, no match, several matches, or no spec for the row's family.
        ProviderError: the provider refused the delete (the row is left unchanged).
    """
    _require_ledger(ledger_path)
    with writer_lock(ledger_path, out_dir), Ledger(ledger_path) as ledger:
        row = _one(ledger.rows(), ident)
        if row.status == "deleted":
            return dataclasses.replace(row, action="delete", note="already deleted")
        if not row.voice_id:
            note = "no voice id: marked deleted in the ledger only"
            if row.unresolved:
                note += "; if a voice was made after all, `voiceprep voices sync` will record it"
            return dataclasses.replace(ledger.update(row.id, status="deleted"), action="delete", note=note)
        spec = _spec(row.family)
        if spec is None:
            raise InvalidArgument(f"no family spec for {row.family!r}: cannot pick its provider client")
        client_getter(providers, region=region)(spec, row.base_url).delete_voice(row.voice_id)
        after = ledger.update(row.id, status="deleted", checked=True)
        return dataclasses.replace(after, action="delete", note=f"deleted at {row.base_url}")


# --------------------------------------------------------------------------------------------- update


def update_voice(
    ledger_path: Path,
    ident: str,
    clip: Path,
    *,
    providers: Providers | None = None,
    region: str | None = None,
    audio_source: str | None = None,
    url_template: str | None = None,
    settle_timeout_s: float = 300.0,
    settle_interval_s: float = 10.0,
    progress: Callable[[str], None] = lambda message: None,
    out_dir: Path | None = None,
) -> VoiceRecord:
    """Enrol a CosyVoice voice again from ``clip``, keeping its id (``update_voice``), record the new
    version (the clip it was made from) in the ledger, and wait for the review as ``submit`` does
    (``ready``, ``rejected``, or still ``deploying`` when ``settle_timeout_s`` passes). Returns the row
    after, with ``action`` ``update`` and a ``note``.

    Raises:
        InvalidArgument: no ledger, no match, several matches, no voice id, a family that cannot update
            (only CosyVoice documents it), a missing clip, or a clip the family's rules refuse.
        ProviderError: the provider refused the update (the row and its versions are left unchanged), or
            gave no usable answer (retryable: the update may have taken effect; the row keeps it recorded
            as ``details.pending_update`` until an update of the voice is answered).

    The update is recorded as sent (``details.pending_update``: the clip and the time) just before its
    request goes out, and settled in the same transaction that records the new version; a crash in
    between leaves the record, which ``show``, ``list`` and ``sync`` report and the next ``update``
    settles (CosyVoice's ``update_voice`` is safe to repeat: same id, same clip).
    """
    from pipeline.audio.io import sha256_file

    _require_ledger(ledger_path)
    clip = Path(clip)
    if not clip.is_file():
        raise InvalidArgument(f"clip: {clip} is not a file")
    if settle_timeout_s < 0 or settle_interval_s <= 0:
        raise InvalidArgument("settle_timeout_s must be >= 0 and settle_interval_s > 0")
    with writer_lock(ledger_path, out_dir), Ledger(ledger_path) as ledger:
        row = _one(ledger.rows(), ident)
        if not row.voice_id or row.status in ("deleted", "gone", "failed", "pending", "unknown"):
            raise InvalidArgument(
                f"#{row.id} ({row.status}) has no live voice to update; submit the clip as a new voice"
            )
        spec = _spec(row.family)
        if spec is None:
            raise InvalidArgument(f"no family spec for {row.family!r}: cannot pick its provider client")
        options = {"audio_source": audio_source, "url_template": url_template}
        client = client_getter(providers, region=region, **options)(spec, row.base_url)
        sha, clip_path = sha256_file(clip), str(clip.resolve())
        earlier = row.details.get(PENDING_UPDATE)
        if isinstance(earlier, dict):
            same = "this clip" if earlier.get("clip_sha256") == sha else f"clip {earlier.get('clip_path')}"
            progress(
                f"{row.voice_id}: an update to {same} was sent at {earlier.get('sent_at')} and never "
                "answered; sending this one (an update is safe to repeat)"
            )
        request = dataclasses.replace(row, clip_path=clip_path, clip_sha256=sha)
        voice_id = row.voice_id

        sent: list[bool] = []

        def on_send() -> None:  # from here the voice may be re-enrolled from this clip
            ledger.mark_update_sent(row.id, clip_sha256=sha, clip_path=clip_path)
            sent.append(True)

        try:
            ids = client.update_voice(voice_id, request, on_send=on_send)
        except ProviderError as exc:
            if not sent:  # failed before the update went out (an upload): nothing changed remotely
                raise
            if exc.retryable:  # it may have acted (a lost answer, gave up on 5xx): the record stays
                ledger.update(
                    row.id, error=(exc.reason, f"update to {clip.name}: outcome unknown: {exc.message}")
                )
                raise ProviderError(
                    exc.reason,
                    f"{exc.message}; the update may or may not have taken effect: run `voiceprep voices "
                    f"update {row.id} --clip {clip}` again (repeating it is safe)",
                    retryable=True,
                    http_status=exc.http_status,
                    provider_code=exc.provider_code,
                    request_id=exc.request_id,
                ) from None
            if isinstance(earlier, dict):  # refused: what an earlier unanswered update left stays known
                ledger.update(row.id, details={PENDING_UPDATE: earlier})
            else:
                ledger.settle_update(row.id)  # refused: the voice keeps its clip
            raise
        row = ledger.add_version(row.id, clip_sha256=sha, clip_path=clip_path, request_ids=ids)
        row = ledger.update(row.id, status="deploying", request_ids=ids, checked=True, clear_error=True)
        progress(f"{row.voice_id}: updated; waiting up to {settle_timeout_s:g} s for the review")
        try:
            remote = client.wait_until_settled(
                row.voice_id, timeout_s=settle_timeout_s, interval_s=settle_interval_s
            )
        except ProviderError as exc:
            row = ledger.update(row.id, error=(exc.reason, exc.message))
            return dataclasses.replace(
                row, action="update", note=f"updated; could not check it: {exc.message}"
            )
        row = apply_remote(ledger, row, remote)
        version = len(ledger.versions(row.id))
        note = f"version {version} from {clip.name}: {row.status}"
        return dataclasses.replace(row, action="update", note=note)


def expires_at(record: VoiceRecord) -> str | None:
    """When the provider deletes the voice if nothing uses it: ``details.expires_unless_used_by`` (MiniMax,
    set when the clone is made), else the family's ``voice_expiry`` counted from the last use, else from
    creation; None for a voice that is not live or a family without a rule."""
    if record.status not in _EXPIRING:
        return None
    given = record.details.get("expires_unless_used_by")
    if given and not record.last_used_at:
        return str(given)
    spec = _spec(record.family)
    basis = parse_stored_time(record.last_used_at) or parse_stored_time(record.created_at)
    if spec is None or not spec.voice_expiry.value or basis is None:
        return None
    return (basis + _dt.timedelta(days=spec.voice_expiry.value)).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------- sync


def sync_voices(
    ledger_path: Path,
    *,
    families: Sequence[str] | None = None,
    provider: str | None = None,
    providers: Providers | None = None,
    base_urls: Mapping[str, str] | None = None,
    now: _dt.datetime | None = None,
    absent_settle_s: float = ABSENT_SETTLE_S,
    region: str | None = None,
    out_dir: Path | None = None,
) -> VoiceReport:
    """Reconcile the ledger with every provider's list (see the module docstring for the rules).

    Accounts asked: every (family, base URL) in the ledger (filtered by ``families`` / ``provider``),
    plus the configured region of each family named in ``families`` (``region``, ``base_urls``: to find
    voices on a new account).

    Raises:
        InvalidArgument: an unknown family, or no ledger and no ``families``.
        pipeline.enroll.submit.MissingApiKey: a provider to ask has no key (before any request).
    """
    ledger_path = Path(ledger_path)
    if not families:
        _require_ledger(ledger_path)
    specs_named = {f: load_family(f) for f in families or ()}
    pool = client_getter(providers, base_urls=base_urls, region=region)
    report = VoiceReport()
    with writer_lock(ledger_path, out_dir), Ledger(ledger_path) as ledger:
        records = ledger.rows()
        targets: set[tuple[str, str | None]] = {
            (r.family, r.base_url)
            for r in records
            if (not families or r.family in families) and (provider is None or r.provider == provider)
        }
        targets |= {(f, None) for f, s in specs_named.items() if provider is None or s.provider == provider}
        for spec, client in _clients(pool, targets, report.notes, "not synced"):
            _sync_one(ledger, spec, client, report, absent_settle_s)
        report.warnings = voice_warnings(ledger.rows(), now=now, remote_counts=report.remote_counts)
    return report


def _clients(
    pool: Callable[..., VoiceProvider],
    targets: Iterable[tuple[str, str | None]],
    notes: list[str],
    skipped: str,
) -> list[tuple[FamilySpec, VoiceProvider]]:
    """The client of each (family, base URL) to ask, once per account (``None``: the configured region).

    A family without a spec, or a region its client does not serve, becomes a note. Raises
    :class:`~pipeline.enroll.providers.base.MissingApiKey` before any request.
    """
    clients: list[tuple[FamilySpec, VoiceProvider]] = []
    for fam, base in sorted(targets, key=lambda t: (t[0], t[1] or "")):
        spec = _spec(fam)
        if spec is None:
            notes.append(f"{fam}: no family spec; {skipped}")
            continue
        try:
            client = pool(spec, base)
        except UntrustedBaseUrl as exc:
            notes.append(str(exc))  # names the family and the address
            continue
        except InvalidArgument as exc:
            notes.append(f"{fam} at {base}: {exc}")
            continue
        if all((s.name, c.base_url) != (spec.name, client.base_url) for s, c in clients):
            clients.append((spec, client))
    return clients


def _sync_one(
    ledger: Ledger, spec: FamilySpec, client: VoiceProvider, report: VoiceReport, absent_settle_s: float
) -> None:
    base = client.base_url

    def change(before: VoiceRecord, after: VoiceRecord, note: str) -> None:
        if before.status != after.status or before.voice_id != after.voice_id:
            report.changes.append((before, after, note))

    for row in ledger.rows(family=spec.name, base_url=base, statuses=UNRESOLVED_STATUSES):
        if row.unresolved:
            after = reconcile_row(ledger, row, client, absent_settle_s=absent_settle_s)
            change(row, after, after.note)
    try:
        listed = client.list_voices()
    except ProviderError as exc:
        report.notes.append(f"{spec.name} at {base}: could not list ({exc.reason}): {exc.message}")
        return
    report.checked.append((spec.name, base, len(listed)))
    remote = {rv.voice_id: rv for rv in listed}
    for row in ledger.rows(family=spec.name, base_url=base):
        if not row.voice_id or (row.status in UNRESOLVED_STATUSES and row.voice_id not in remote):
            continue
        rv = remote.get(row.voice_id)
        if row.status == "deleted":
            if rv is not None:
                report.notes.append(
                    f"{row.voice_id} is deleted in the ledger but still listed; run `voiceprep voices delete {row.id}`"
                )
            continue
        if rv is None:
            if row.status == "gone":
                continue
            try:
                rv = client.query_voice(row.voice_id)
            except ProviderError as exc:
                report.notes.append(f"{row.voice_id}: not listed, and could not be queried ({exc.reason})")
                continue
        after = apply_remote(ledger, row, rv)
        if rv is None:
            change(row, after, "no longer at the provider (expired or deleted elsewhere)")
        else:
            change(row, after, "listed again" if row.status == "gone" else f"provider says {rv.status}")
    for rv in listed:
        if ledger.by_voice_id(provider=spec.provider, voice_id=rv.voice_id or "", base_url=base) is None:
            found = dataclasses.replace(
                rv, provider=spec.provider, base_url=base, family=spec.name, origin="remote"
            )
            report.recorded.append(ledger.record_found(found))
