"""The voice ledger: a SQLite registry of every cloned voice voiceprep made, tried to make, or found.

One row per voice (or per attempt to make one). The protocol that keeps voices from being lost or
duplicated (see ``docs/submit.md``):

1. :meth:`Ledger.begin` writes the *intent* (status ``pending``) in its own committed transaction;
2. :meth:`Ledger.mark_sent` commits the "sent" marker (``sent_at``) just before the create call starts;
3. the outcome (``ready``, ``deploying``, ``rejected``, ``failed``, ``unknown``) is written after the call.

A crash between 2 and 3 leaves ``pending`` with ``sent_at`` set: the next ``submit`` (or ``voices sync``)
asks the provider before anything is retried. A ``pending`` row *without* ``sent_at`` never reached the
network and may be retried as is.

The unique key ``(provider, target_model, clip_sha256, name)`` stops a second row (and so a second voice) for
the same clip, model and name; a partial unique index on ``(provider, base_url, voice_id)`` stops two rows
from claiming one remote voice.

The database runs in WAL mode with ``synchronous=FULL`` (an intent must be on disk before the network call)
and a busy timeout, so several processes may read and write it; writers that must not interleave (two
``submit`` runs on one ledger) also hold :func:`ledger_lock`. Times are UTC ISO 8601 strings. Secrets never
reach the ledger: every stored message goes through :func:`scrub`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.enroll.providers.base import COMMAND_FIELDS, VoiceRecord, normalize_base_url
from pipeline.enroll.providers.common import parse_provider_time
from pipeline.enroll.providers.http import scrub
from pipeline.errors import VoiceprepError

try:  # POSIX only; on other systems the lock is a no-op and SQLite's own locking remains
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "COLUMNS",
    "DEAD_STATUSES",
    "LEDGER_FILE",
    "LIVE_STATUSES",
    "LOCK_TIMEOUT_S",
    "ORIGINS",
    "SCHEMA_VERSION",
    "STATUSES",
    "UNRESOLVED_STATUSES",
    "Ledger",
    "LedgerBusy",
    "LedgerConflict",
    "LedgerError",
    "VoiceRecord",
    "default_ledger_path",
    "ledger_lock",
    "parse_stored_time",
    "read_records",
    "read_versions",
    "read_voices",
    "scrub",
    "utc_now",
    "writer_lock",
]

LEDGER_FILE = "voices.sqlite"
SCHEMA_VERSION = 2
"""1: the ``voices`` table. 2: ``voices.details`` (provider signals, e.g. Qwen's fallback) and the
``voice_versions`` table (the clip each version of a voice was made from: ``voices update``); a schema-1
ledger is migrated when opened for writing, its rows getting version 1 from their own clip."""

STATUSES: tuple[str, ...] = (
    "pending",
    "deploying",
    "ready",
    "rejected",
    "failed",
    "unknown",
    "deleted",
    "gone",
)
LIVE_STATUSES: tuple[str, ...] = ("pending", "deploying", "ready", "rejected", "failed", "unknown")
"""A row in one of these holds the clip's slot in its region: no new voice is made for that clip."""
UNRESOLVED_STATUSES: tuple[str, ...] = ("pending", "unknown")
"""Rows whose remote state is not known: reconciled with the provider before any create."""
DEAD_STATUSES: tuple[str, ...] = ("deleted", "gone")
ORIGINS: tuple[str, ...] = ("submit", "remote", "manifest")
"""``submit``: made by voiceprep; ``remote``: found on the account by ``voices sync``; ``manifest``: a voice
named in a ``clips.jsonl`` that the ledger did not hold (a lost or different ledger)."""

COLUMNS = tuple(f.name for f in dataclasses.fields(VoiceRecord) if f.name not in COMMAND_FIELDS)
"""The ``voices`` table's columns: the fields of :class:`VoiceRecord` but the command's, in order."""

_STATUS_SQL = ", ".join(f"'{s}'" for s in STATUSES)
_ORIGIN_SQL = ", ".join(f"'{s}'" for s in ORIGINS)

_SCHEMA_V1 = f"""
CREATE TABLE voices (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    provider        TEXT NOT NULL,
    base_url        TEXT NOT NULL,
    family          TEXT NOT NULL,
    target_model    TEXT,
    voice_id        TEXT,
    name            TEXT,
    clip_sha256     TEXT,
    clip_path       TEXT,
    speaker         TEXT,
    sources         TEXT NOT NULL DEFAULT '[]',
    enrollment_key  TEXT,
    status          TEXT NOT NULL CHECK (status IN ({_STATUS_SQL})),
    origin          TEXT NOT NULL DEFAULT 'submit' CHECK (origin IN ({_ORIGIN_SQL})),
    owner           TEXT,
    sent_at         TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    last_checked_at TEXT,
    last_used_at    TEXT,
    request_ids     TEXT NOT NULL DEFAULT '[]',
    last_error      TEXT,
    preview_path    TEXT,
    UNIQUE (provider, target_model, clip_sha256, name)
);
CREATE UNIQUE INDEX voices_remote_id ON voices (provider, base_url, voice_id) WHERE voice_id IS NOT NULL;
CREATE INDEX voices_clip ON voices (provider, target_model, clip_sha256);
CREATE INDEX voices_status ON voices (status);
"""

_MIGRATE_V2 = """
ALTER TABLE voices ADD COLUMN details TEXT NOT NULL DEFAULT '{}';
CREATE TABLE voice_versions (
    voice_row    INTEGER NOT NULL REFERENCES voices (id),
    version      INTEGER NOT NULL,
    clip_sha256  TEXT,
    clip_path    TEXT,
    created_at   TEXT NOT NULL,
    request_ids  TEXT NOT NULL DEFAULT '[]',
    note         TEXT,
    PRIMARY KEY (voice_row, version)
);
INSERT INTO voice_versions (voice_row, version, clip_sha256, clip_path, created_at, request_ids, note)
    SELECT id, 1, clip_sha256, clip_path, created_at, request_ids, 'created'
    FROM voices WHERE clip_sha256 IS NOT NULL OR clip_path IS NOT NULL;
"""
"""Schema 1 -> 2 (run in the transaction that checks the version)."""


class LedgerError(VoiceprepError):
    """The ledger file cannot be used (damaged, or written by a newer voiceprep)."""


class LedgerConflict(LedgerError):
    """A row with the same (provider, target model, clip sha256, name) or remote voice id already exists."""


class LedgerBusy(LedgerError):
    """Another process holds the ledger's submit lock for longer than the wait allowed."""


# --------------------------------------------------------------------------------------------- helpers


def utc_now() -> _dt.datetime:
    """The current time in UTC (timezone-aware)."""
    return _dt.datetime.now(_dt.UTC)


def _iso(t: _dt.datetime) -> str:
    return t.astimezone(_dt.UTC).isoformat(timespec="milliseconds")


def parse_stored_time(text: str | None) -> _dt.datetime | None:
    """A stored time as an aware UTC datetime (naive text is read as UTC); ``None`` when unparsable."""
    t = parse_provider_time(text)
    if t is None:
        return None
    return t.replace(tzinfo=_dt.UTC) if t.tzinfo is None else t.astimezone(_dt.UTC)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def default_ledger_path(out_dir: Path, configured: str | Path | None = None) -> Path:
    """The ledger to use: ``configured`` (a shared ledger from the config or a flag) or ``OUT/voices.sqlite``."""
    return Path(configured).expanduser() if configured else Path(out_dir) / LEDGER_FILE


def run_ledger_path(out_dir: Path, run: Mapping[str, Any] | None) -> Path:
    """The ledger of the run in ``out_dir``: the one its ``run.json`` settings name, else ``OUT/voices.sqlite``.

    ``run`` is the parsed ``run.json`` (missing or malformed parts mean the default).
    """
    config = run.get("config") if isinstance(run, Mapping) else None
    configured = config.get("ledger") if isinstance(config, Mapping) else None
    return default_ledger_path(out_dir, configured if isinstance(configured, str | Path) else None)


def _decode(row: sqlite3.Row | Sequence[Any], names: Sequence[str]) -> dict[str, Any]:
    """A stored row as :class:`VoiceRecord` fields: the JSON columns (lists, the error) parsed, damage
    read as empty."""
    data = dict(zip(names, row, strict=True))
    for key in ("sources", "request_ids"):
        if key in data:
            try:
                value = json.loads(data[key] or "[]")
            except ValueError:
                value = []
            data[key] = value if isinstance(value, list) else []
    if "details" in data:
        try:
            details = json.loads(data["details"] or "{}")
        except ValueError:
            details = {}
        data["details"] = details if isinstance(details, dict) else {}
    if "last_error" in data:
        try:
            err = json.loads(data["last_error"]) if data["last_error"] else None
        except ValueError:
            err = {"reason": "internal_error", "message": str(data["last_error"])}
        data["last_error"] = err if isinstance(err, dict) or err is None else None
    return data


# ---------------------------------------------------------------------------------------------- lock


LOCK_TIMEOUT_S = 10.0
"""How long a submit, sync or delete waits for another process holding the ledger's writer lock."""


@contextlib.contextmanager
def ledger_lock(path: Path, *, timeout_s: float | None = None) -> Iterator[None]:
    """Hold the ledger's writer lock (``<ledger>.lock``, ``flock``) for a whole submit, sync or delete.

    Raises:
        LedgerBusy: another process held it for more than ``timeout_s`` seconds (default
            :data:`LOCK_TIMEOUT_S`; the message names its pid).
    """
    timeout_s = LOCK_TIMEOUT_S if timeout_s is None else timeout_s
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            deadline = time.monotonic() + max(0.0, timeout_s)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
                        raise LedgerBusy(
                            f"the voice ledger {path} is in use by {holder}; wait for it to finish"
                        ) from None
                    time.sleep(0.05)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"voiceprep pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the flock


PENDING_UPDATE = "pending_update"
"""The ``details`` key of an update sent but not yet answered (see :meth:`Ledger.mark_update_sent`)."""

RUN_FOLDER_MARKERS = ("clips.jsonl", "run.json")
"""Files that make a folder a run folder (``voiceprep run``'s OUT): its writers hold ``OUT/.voiceprep.lock``."""


def _run_folder(folder: Path | None) -> Path | None:
    if folder is None or not folder.is_dir():
        return None
    return folder if any((folder / name).exists() for name in RUN_FOLDER_MARKERS) else None


@contextlib.contextmanager
def writer_lock(ledger_path: Path, out_dir: Path | None = None) -> Iterator[None]:
    """Everything a ledger writer (``submit``, ``voices sync``/``update``/``delete``) must hold, in order:
    the output-folder lock ``OUT/.voiceprep.lock`` that ``voiceprep run`` takes (of ``out_dir``, and of
    the folder holding the ledger when that is a run folder: :data:`RUN_FOLDER_MARKERS`), then the
    ledger's own :func:`ledger_lock`. So a submit never interleaves with a run writing the same folder
    (``clips.jsonl``, previews, the ledger), and two writers of a run's ledger never interleave.
    Re-entrant in one thread (``run --submit`` holds the folder's lock already).

    Raises:
        pipeline.batch.outputs.OutputBusy: another process holds a run folder's lock (exit 4 on the
            command line, as for ``run``).
        LedgerBusy: another process held the ledger's lock for longer than :data:`LOCK_TIMEOUT_S`.
    """
    from pipeline.batch.outputs import output_lock

    folders = [f for f in (_run_folder(out_dir), _run_folder(Path(ledger_path).parent)) if f is not None]
    unique = list({os.path.realpath(f): f for f in folders}.values())
    with contextlib.ExitStack() as held:
        for folder in unique:
            held.enter_context(output_lock(folder))
        held.enter_context(ledger_lock(ledger_path))
        yield


# ---------------------------------------------------------------------------------------------- ledger


class Ledger:
    """A connection to one ledger file; use as a context manager.

    Args:
        path: the SQLite file (created with its folder when missing).
        busy_timeout_s: how long a write waits for another process's transaction.
        clock: returns the current aware time (tests inject a fixed clock).

    Raises:
        LedgerError: the file is not a ledger or was written by a newer voiceprep.
    """

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_s: float = 30.0,
        clock: Callable[[], _dt.datetime] | None = None,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock or utc_now
        try:
            self._conn = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            self._ensure_schema()
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"{self.path}: not a usable voice ledger ({exc})") from None

    # -- lifecycle
    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def now(self) -> str:
        """The ledger clock's current time as stored text."""
        return _iso(self._clock())

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _ensure_schema(self) -> None:
        with self._write() as c:
            c.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = c.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                for statement in (_SCHEMA_V1 + _MIGRATE_V2).split(";"):
                    if statement.strip():
                        c.execute(statement)
                c.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            elif int(row[0]) == 1:  # an older ledger: add what schema 2 adds, keep every row
                for statement in _MIGRATE_V2.split(";"):
                    if statement.strip():
                        c.execute(statement)
                c.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
            elif int(row[0]) > SCHEMA_VERSION:
                raise LedgerError(
                    f"{self.path}: written by a newer voiceprep (schema {row[0]}, this one knows "
                    f"{SCHEMA_VERSION}); upgrade voiceprep"
                )

    # -- reading
    def _select(self, where: str = "", params: Sequence[Any] = ()) -> list[VoiceRecord]:
        sql = f"SELECT {', '.join(COLUMNS)} FROM voices {where} ORDER BY id"
        return [VoiceRecord(**_decode(r, COLUMNS)) for r in self._conn.execute(sql, tuple(params))]

    def get(self, row_id: int) -> VoiceRecord | None:
        """The row with this id, or ``None``."""
        rows = self._select("WHERE id = ?", (row_id,))
        return rows[0] if rows else None

    def rows(
        self,
        *,
        provider: str | None = None,
        family: str | None = None,
        base_url: str | None = None,
        voice_id: str | None = None,
        statuses: Sequence[str] | None = None,
    ) -> list[VoiceRecord]:
        """Rows matching every filter given, oldest first."""
        clauses, params = [], []
        for column, value in (("provider", provider), ("family", family), ("voice_id", voice_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if base_url is not None:
            clauses.append("base_url = ?")
            params.append(normalize_base_url(base_url))
        if statuses is not None:
            clauses.append(f"status IN ({', '.join('?' for _ in statuses)})")
            params.extend(statuses)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return self._select(where, params)

    def by_voice_id(self, *, provider: str, voice_id: str, base_url: str | None = None) -> VoiceRecord | None:
        """The row holding this remote voice id (in ``base_url`` when given, else in any region)."""
        rows = self.rows(provider=provider, base_url=base_url, voice_id=voice_id)
        return rows[0] if rows else None

    def begin(self, record: VoiceRecord) -> VoiceRecord:
        """Record the intent to create ``record``'s voice (status ``pending``, no ``sent_at``), committed at once.

        Stores its provider, base URL, family, target model, name, clip (sha256, path), speaker, sources and
        enrollment key.

        Raises:
            LedgerConflict: a row for the same (provider, target model, clip sha256, name) exists.
        """
        return self._insert(
            dataclasses.replace(
                record, voice_id=None, status="pending", origin="submit", owner=_owner(), sent_at=None
            )
        )

    def _insert(self, record: VoiceRecord, *, checked: bool = False) -> VoiceRecord:
        """Store ``record`` as a new row (id, ``created_at`` and ``updated_at`` given here); one transaction."""
        now = self.now()
        values = {
            **record.to_dict(),
            "base_url": normalize_base_url(record.base_url),
            "created_at": now,
            "updated_at": now,
            "last_checked_at": now if checked else record.last_checked_at,
        }
        columns = COLUMNS[1:]
        encoded = [
            json.dumps(v) if isinstance(v := values[k], list | dict) else v for k in columns
        ]  # lists, error
        try:
            with self._write() as c:
                cur = c.execute(
                    f"INSERT INTO voices ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
                    encoded,
                )
                row_id = int(cur.lastrowid or 0)
                if record.clip_sha256 or record.clip_path:  # the clip the voice is (to be) made from
                    c.execute(
                        "INSERT INTO voice_versions (voice_row, version, clip_sha256, clip_path, created_at, "
                        "request_ids, note) VALUES (?, 1, ?, ?, ?, '[]', 'created')",
                        (row_id, record.clip_sha256, record.clip_path, now),
                    )
        except sqlite3.IntegrityError:
            raise LedgerConflict(
                f"a ledger row for {record.provider} {record.target_model} clip {(record.clip_sha256 or '')[:12]} "
                f"name {record.name!r} already exists"
            ) from None
        return self._must(row_id)

    def mark_sent(self, row_id: int) -> VoiceRecord:
        """Commit the "sent" marker: from now on the create may have reached the provider."""
        now = self.now()
        with self._write() as c:
            c.execute(
                "UPDATE voices SET status = 'pending', sent_at = ?, owner = ?, updated_at = ?, last_error = NULL"
                " WHERE id = ?",
                (now, _owner(), now, row_id),
            )
        return self._must(row_id)

    def update(
        self,
        row_id: int,
        *,
        status: str | None = None,
        voice_id: str | None = None,
        request_ids: Sequence[str | None] = (),
        error: tuple[str, str] | None = None,
        error_details: Mapping[str, Any] | None = None,
        clear_error: bool = False,
        checked: bool = False,
        preview_path: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> VoiceRecord:
        """Change one row in one transaction; ``request_ids`` are appended (deduplicated); ``details`` are
        merged into the stored ones (a ``None`` value removes a key).

        ``error`` is ``(reason, message)``; the message is scrubbed of secrets; ``error_details`` (plain
        JSON values, e.g. the unknown-outcome rule's ``absent_checks``) are stored with it. ``checked`` stamps
        ``last_checked_at`` (the provider was just asked about this voice). A ``voice_id`` held by a
        ``remote``-origin row (a voice ``voices sync`` found before this row was reconciled) moves here.

        Raises:
            LedgerConflict: ``voice_id`` already belongs to another row made by voiceprep.
        """
        now = self.now()
        given = {"status": status, "voice_id": voice_id, "preview_path": preview_path}
        sets: dict[str, Any] = {"updated_at": now, **{k: v for k, v in given.items() if v is not None}}
        if error is not None or clear_error:
            stored = error and {"reason": error[0], "message": scrub(error[1]), **(error_details or {})}
            sets["last_error"] = stored and json.dumps(stored)
        if checked:
            sets["last_checked_at"] = now
        with self._write() as c:
            current = c.execute(
                "SELECT provider, base_url, request_ids FROM voices WHERE id = ?", (row_id,)
            ).fetchone()
            if voice_id is not None:
                other = c.execute(
                    "SELECT id, origin FROM voices WHERE provider = ? AND base_url = ? AND voice_id = ? AND id != ?",
                    (current[0], current[1], voice_id, row_id),
                ).fetchone()
                if other is not None and other[1] != "remote":
                    raise LedgerConflict(f"voice {voice_id} already belongs to ledger row {other[0]}")
                if other is not None:
                    c.execute("DELETE FROM voices WHERE id = ?", (other[0],))
            if details:
                old = c.execute("SELECT details FROM voices WHERE id = ?", (row_id,)).fetchone()
                kept = _decode((old[0],), ("details",))["details"]
                kept.update(details)
                sets["details"] = json.dumps({k: v for k, v in kept.items() if v is not None}, sort_keys=True)
            merged = json.loads(current[2] or "[]")
            merged += [x for x in dict.fromkeys(str(i) for i in request_ids if i) if x not in merged]
            if request_ids:
                sets["request_ids"] = json.dumps(merged)
            try:
                c.execute(
                    f"UPDATE voices SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?",
                    [*sets.values(), row_id],
                )
            except sqlite3.IntegrityError as exc:
                raise LedgerConflict(f"ledger row {row_id}: {exc}") from None
        return self._must(row_id)

    def mark_used(self, row_id: int) -> VoiceRecord:
        """Stamp ``last_used_at``: the voice was just used in a synthesis (``voiceprep speak``), which is what
        keeps a voice from expiring unused (MiniMax: 7 days)."""
        now = self.now()
        with self._write() as c:
            c.execute("UPDATE voices SET last_used_at = ?, updated_at = ? WHERE id = ?", (now, now, row_id))
        return self._must(row_id)

    def versions(self, row_id: int) -> list[dict[str, Any]]:
        """The versions of a row's voice, oldest first: ``{version, clip_sha256, clip_path, created_at,
        request_ids, note}`` (version 1 is the clip it was created from)."""
        return _versions(self._conn, row_id)

    def mark_update_sent(self, row_id: int, *, clip_sha256: str, clip_path: str) -> VoiceRecord:
        """Commit, just before a ``voices update`` request goes out, that the row's voice may be enrolled
        from another clip: ``details.pending_update`` = ``{clip_sha256, clip_path, sent_at}``. Until
        :meth:`add_version` (the update answered) or :meth:`settle_update` (refused) settles it, the row's
        clip is not known for sure: a crash in between leaves the record, and the next ``voices update``,
        ``show``, ``list`` and ``sync`` say so."""
        pending = {"clip_sha256": clip_sha256, "clip_path": clip_path, "sent_at": self.now()}
        return self.update(row_id, details={PENDING_UPDATE: pending})

    def settle_update(self, row_id: int) -> VoiceRecord:
        """Drop the row's pending update: the provider refused it, so the voice keeps its recorded clip."""
        return self.update(row_id, details={PENDING_UPDATE: None})

    def add_version(
        self,
        row_id: int,
        *,
        clip_sha256: str,
        clip_path: str,
        request_ids: Sequence[str | None] = (),
        note: str = "",
    ) -> VoiceRecord:
        """Record that the row's voice was enrolled again (``voices update``) from another clip: a new
        version, and the row's ``clip_sha256``/``clip_path`` become that clip's, and the update recorded as
        sent (``details.pending_update``, :meth:`mark_update_sent`) is settled; one transaction.

        Raises:
            LedgerConflict: another row already holds this clip for the same model and name.
        """
        now = self.now()
        ids = [str(i) for i in request_ids if i]
        try:
            with self._write() as c:
                last = c.execute(
                    "SELECT COALESCE(MAX(version), 0) FROM voice_versions WHERE voice_row = ?", (row_id,)
                ).fetchone()[0]
                c.execute(
                    "INSERT INTO voice_versions (voice_row, version, clip_sha256, clip_path, created_at, "
                    "request_ids, note) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (row_id, int(last) + 1, clip_sha256, clip_path, now, json.dumps(ids), note or "updated"),
                )
                old = c.execute("SELECT details FROM voices WHERE id = ?", (row_id,)).fetchone()
                details = _decode((old[0] if old else "{}",), ("details",))["details"]
                details.pop(PENDING_UPDATE, None)
                c.execute(
                    "UPDATE voices SET clip_sha256 = ?, clip_path = ?, details = ?, updated_at = ? WHERE id = ?",
                    (clip_sha256, clip_path, json.dumps(details, sort_keys=True), now, row_id),
                )
        except sqlite3.IntegrityError as exc:
            raise LedgerConflict(
                f"ledger row {row_id}: another row holds clip {clip_sha256[:12]} ({exc})"
            ) from None
        return self._must(row_id)

    def record_found(self, voice: VoiceRecord) -> VoiceRecord:
        """Add a row for a voice that exists remotely but had no row (``voice.origin``: ``remote`` or
        ``manifest``), stamped as created and checked now.

        Returns the existing row instead when one already holds the voice id in that region.
        """
        existing = self.by_voice_id(
            provider=voice.provider, voice_id=voice.voice_id or "", base_url=voice.base_url
        )
        return existing or self._insert(voice, checked=True)

    def _must(self, row_id: int) -> VoiceRecord:
        return self._select("WHERE id = ?", (row_id,))[0]


def _versions(conn: sqlite3.Connection, row_id: int) -> list[dict[str, Any]]:
    has = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'voice_versions'"
    ).fetchone()
    if not has:
        return []
    names = ("version", "clip_sha256", "clip_path", "created_at", "request_ids", "note")
    cur = conn.execute(
        f"SELECT {', '.join(names)} FROM voice_versions WHERE voice_row = ? ORDER BY version", (row_id,)
    )
    return [_decode(r, names) for r in cur.fetchall()]


def read_versions(path: Path, row_id: int) -> list[dict[str, Any]]:
    """The versions of ledger row ``row_id`` (see :meth:`Ledger.versions`), read-only; ``[]`` for a
    ledger without any (schema 1, not yet migrated) or no such row."""
    path = Path(path)
    if not path.is_file():
        return []
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
    try:
        return _versions(conn, row_id)
    except sqlite3.DatabaseError as exc:
        raise LedgerError(f"{path}: not a readable voice ledger ({exc})") from None
    finally:
        conn.close()


def read_voices(path: Path) -> list[dict[str, Any]]:
    """Every ledger row as a plain dict (oldest first), read-only; ``[]`` when the file does not exist.

    Used by the report and ``load_run``; never creates or changes the ledger.
    """
    path = Path(path)
    if not path.is_file():
        return []
    try:
        # as_uri() percent-encodes '#', '?', '%', spaces and non-ASCII: the URI names exactly this file
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
    except sqlite3.OperationalError:
        return []
    try:
        has_table = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'voices'"
        ).fetchone()
        if not has_table:
            return []
        cur = conn.execute("SELECT * FROM voices ORDER BY id")
        names = [d[0] for d in cur.description]
        rows = [_decode(r, names) for r in cur.fetchall()]
    except sqlite3.DatabaseError as exc:
        raise LedgerError(f"{path}: not a readable voice ledger ({exc})") from None
    finally:
        conn.close()
    for row in rows:  # scrubbed again: a ledger written by an older voiceprep may hold part of a key
        error = row.get("last_error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            row["last_error"] = {**error, "message": scrub(error["message"])}
    return rows


def read_records(path: Path) -> list[VoiceRecord]:
    """:func:`read_voices` as :class:`VoiceRecord` rows (columns a newer ledger added are left out)."""
    return [VoiceRecord(**{k: d[k] for k in COLUMNS if k in d}) for d in read_voices(path)]
