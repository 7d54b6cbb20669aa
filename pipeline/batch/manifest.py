"""Run outputs: the row models of ``recordings.jsonl`` and ``clips.jsonl``, JSONL I/O, fingerprints.

Manifests are JSON Lines so they can be appended one row at a time and read while a run is going:

- :func:`append_row` writes one whole line per call (one ``write``, then flush and fsync), under a lock, so
  threads of one process never interleave and a crash leaves at most a torn *last* line.
- :func:`read_rows` skips such a torn last line; a bad line anywhere else is an error (:class:`ManifestError`).
- :func:`write_rows` rewrites a whole file atomically (temporary name, fsync, rename) at the end of a run.
- :func:`read_run_json` reads the run's ``run.json`` (the runner writes it at the end of a run).

Every value goes through :func:`to_jsonable` on the way out: numpy scalars and arrays become Python numbers
and lists, ``NaN`` and ``±inf`` become ``null`` (a metric that cannot be computed is ``null`` plus a reason,
never NaN), paths become POSIX strings. Unknown types are a ``TypeError``, never a silent ``str()``.

The manifests are read as tables (and exported as Parquet/CSV) by :func:`pipeline.report.results.load_run`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any, Literal, TypeVar, overload

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.audio.io import atomic_write_bytes
from pipeline.errors import VoiceprepError

try:  # POSIX only: also keeps appends from several processes (e.g. a second run by mistake) whole
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

SCHEMA_VERSION = 2
"""Version of the row layout written by this code; bump when a field changes meaning or is removed.
2: a clip's hash is ``clip_sha256`` (1: ``sha256``), a plan's spans only ``pieces`` (1: also ``segments``)."""

RECORDINGS_FILE = "recordings.jsonl"
CLIPS_FILE = "clips.jsonl"
RUN_FILE = "run.json"

T = TypeVar("T", bound=BaseModel)


class ManifestError(VoiceprepError):
    """A manifest file is damaged somewhere other than a torn last line, or a row does not fit its model."""


# --------------------------------------------------------------------------------------------------
# plain data
# --------------------------------------------------------------------------------------------------


def to_jsonable(obj: Any) -> Any:
    """Return ``obj`` as plain JSON data: dicts with ``str`` keys, lists, str, int, float, bool, None.

    numpy scalars and arrays, tuples, sets (sorted), paths (POSIX), dataclasses and pydantic models are
    converted; ``NaN`` and ``±inf`` become ``None``.

    Raises:
        TypeError: for a value of any other type (naming the type).
    """
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, np.ndarray):
        return [to_jsonable(x) for x in obj.tolist()]
    if isinstance(obj, Mapping):
        return {_key(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(x) for x in obj]
    if isinstance(obj, set | frozenset):
        items = [to_jsonable(x) for x in obj]
        return sorted(items, key=lambda x: json.dumps(x, sort_keys=True))
    if isinstance(obj, BaseModel):
        return to_jsonable(obj.model_dump(mode="python"))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, PurePath):
        return obj.as_posix()
    raise TypeError(f"cannot store a value of type {type(obj).__module__}.{type(obj).__qualname__} as JSON")


def _key(k: Any) -> str:
    if isinstance(k, str):
        return k
    if isinstance(k, bool | int | float | np.generic | PurePath):
        v = to_jsonable(k)
        return json.dumps(v) if not isinstance(v, str) else v
    raise TypeError(f"cannot use a key of type {type(k).__qualname__} in JSON")


def canonical_json(obj: Any) -> str:
    """``obj`` as compact JSON with keys sorted at every level: equal data gives equal text.

    Floats are written as Python writes them (shortest repr that round-trips), not rounded; numpy values
    are converted first (``np.float32(0.1)`` is written as the float64 it really is). ``NaN`` becomes ``null``.
    """
    return json.dumps(
        to_jsonable(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def fingerprint(obj: Any) -> str:
    """SHA-256 hex digest of :func:`canonical_json` (UTF-8): a stable key for configs and results."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------------
# row models
# --------------------------------------------------------------------------------------------------


_ROW_CONFIG = ConfigDict(extra="allow")
"""Both row models: a field a later version adds is kept (and shown as a column), never refused."""


def _plain(cls: type[BaseModel], data: Any) -> Any:
    """Rows are made JSON-clean on entry (numpy values, NaN): a row never holds what JSON cannot say."""
    return to_jsonable(data) if isinstance(data, Mapping) else data


class RecordingRow(BaseModel):
    """One input file: who it belongs to, what it is, what was measured and whether that worked.

    ``path`` is relative to the input root (POSIX). ``sha256`` (of the file's bytes) is ``None`` when the
    bytes could not be read. ``message`` says what went wrong without naming the file (``path`` does).
    ``error_type`` names the exception class when a stage crashed (a bug, not a data problem).
    """

    model_config = _ROW_CONFIG
    _plain = model_validator(mode="before")(_plain)

    schema_version: int = SCHEMA_VERSION
    path: str
    speaker: str
    sha256: str | None = None
    status: Literal["ok", "failed"] = "ok"
    reasons: list[str] = Field(default_factory=list)
    message: str = ""
    probe: dict[str, Any] = Field(default_factory=dict)
    """format, codec, sample_rate, channels, duration_s, bytes, sample_format."""
    metrics: dict[str, Any] | None = None
    null_reasons: dict[str, str] = Field(default_factory=dict)
    speech_segments: list[list[float]] = Field(default_factory=list)
    """``[start_s, end_s]`` of every speech segment the fast pass found (for plots and the report)."""
    decode_notes: list[dict[str, str | int]] = Field(default_factory=list)
    """What libsndfile/FFmpeg said while voiceprep read the file, as ``{"message": str, "count": int}``
    (the few most frequent kinds, and one ``(other decoder messages)`` entry counting the rest): the file
    decoded, but may be damaged there (:mod:`pipeline.audio.notes`)."""
    used_in: list[str] = Field(default_factory=list)
    """The families whose chosen window (the clip, ready or rejected) takes speech from this file: an
    ``ok`` recording with none was usable but lost to another (``voiceprep explain`` says why)."""
    error_type: str | None = None


class ClipRow(BaseModel):
    """One (speaker, family) outcome: the clip, where its audio came from, and how it was judged.

    ``clip`` is relative to the output folder (``None`` when no clip was written); ``clip_sha256`` is the
    hash of its bytes. ``segments`` lists the source spans ``{path, start_s, end_s}`` in the clip, in clip
    order (edge room tone included); ``plan`` and each of ``alternatives`` are the windows the selector
    scored, their speech spans under ``pieces``. ``render`` says what rendering did (gain, loudness,
    denoising, pauses shortened). ``key`` is the content/config fingerprint that produced the row (resume
    compares it). ``voice_id``, ``target_model`` and ``preview`` (a voice preview's file, relative to the
    output folder) stay ``None`` until submission. ``other_voices_avoided`` (``[path, start_s, end_s]``)
    is where another voice was heard in every window that fits, for a row rejected with ``other_voices``
    and no plan (a plan carries the same in its ``measures``). A row of schema 1 is read into this layout.
    """

    model_config = _ROW_CONFIG

    schema_version: int = SCHEMA_VERSION
    speaker: str
    family: str
    status: Literal["ready", "rejected", "failed", "submitted"]
    reasons: list[str] = Field(default_factory=list)
    message: str = ""
    clip: str | None = None
    clip_sha256: str | None = None
    segments: list[dict[str, Any]] = Field(default_factory=list)
    duration_s: float | None = None
    sample_rate: int | None = None
    assembled: bool = False
    metrics: dict[str, Any] = Field(default_factory=dict)
    checks: list[dict[str, Any]] = Field(default_factory=list)
    alternatives: list[dict[str, Any]] = Field(default_factory=list)
    voice_id: str | None = None
    target_model: str | None = None
    key: str = ""
    plan: dict[str, Any] | None = None
    render: dict[str, Any] | None = None
    error_type: str | None = None
    preview: str | None = None
    other_voices_avoided: list[list[Any]] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        data = _plain(cls, data)
        if isinstance(data, dict) and data.get("schema_version") == 1:
            data.update(schema_version=SCHEMA_VERSION, clip_sha256=data.pop("sha256", None))
            for plan in [data.get("plan"), *(data.get("alternatives") or [])]:
                if isinstance(plan, dict):  # segments are the same spans as pieces (or all there is)
                    plan.setdefault("pieces", plan.pop("segments", []))
        return data


# --------------------------------------------------------------------------------------------------
# JSONL I/O
# --------------------------------------------------------------------------------------------------

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    key = os.path.realpath(path)
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


def _line(row: BaseModel | Mapping[str, Any]) -> str:
    """The row as one JSON line, keys in field order."""
    return json.dumps(to_jsonable(row), ensure_ascii=False, allow_nan=False) + "\n"


def _repair_tail(fd: int) -> None:
    """Make the file end at a line boundary before appending (called with the file locked).

    A file that does not end with a newline was cut mid-write by a crash: the fragment is dropped so the
    next row starts a clean line. A last line that *is* complete JSON but lacks the newline (edited by
    hand) is kept and terminated.
    """
    size = os.fstat(fd).st_size
    if size == 0:
        return
    if os.pread(fd, 1, size - 1) == b"\n":
        return
    start = size
    chunk = 65536
    while start > 0:
        lo = max(0, start - chunk)
        buf = os.pread(fd, start - lo, lo)
        nl = buf.rfind(b"\n")
        if nl >= 0:
            start = lo + nl + 1
            break
        start = lo
    tail = os.pread(fd, size - start, start)
    try:
        json.loads(tail)
    except ValueError:
        os.ftruncate(fd, start)
    else:
        os.write(fd, b"\n")


def append_row(path: Path, row: BaseModel | Mapping[str, Any]) -> None:
    """Append one row as one JSON line to ``path`` (created if missing), then flush and fsync.

    Safe against concurrent calls from threads of one process (a lock per file) and, on POSIX, from other
    processes (``flock``). The line is written with a single ``write`` on an ``O_APPEND`` descriptor, so a
    crash leaves at most a torn last line; the next append removes such a fragment first.

    Raises:
        TypeError: the row holds a value that cannot be JSON (see :func:`to_jsonable`).
    """
    data = _line(row).encode("utf-8")
    path = Path(path)
    with _lock_for(path):
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)  # the umask decides, as for clips
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            _repair_tail(fd)
            view = memoryview(data)
            while view:  # one write in practice; loop only guards against a short write
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the flock


@overload
def read_rows(path: Path, model: None = None) -> list[dict[str, Any]]: ...
@overload
def read_rows(path: Path, model: type[T]) -> list[T]: ...


def read_rows(path: Path, model: type[T] | None = None) -> list[T] | list[dict[str, Any]]:
    """Read a JSONL manifest: a list of dicts, or of ``model`` instances when a model is given.

    A missing file reads as no rows (a run that has not written anything yet). Blank lines are ignored.
    An unparsable *last* line is a write torn by a crash (or still in progress) and is skipped.

    Raises:
        ManifestError: an unparsable line before the last one, a line that is not a JSON object, or a
            row that does not validate against ``model`` (the message names the file and line).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = raw.split(b"\n")
    last = max((i for i, ln in enumerate(lines) if ln.strip()), default=-1)
    rows: list[Any] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as exc:
            if number - 1 == last:
                break  # torn last line
            raise ManifestError(f"{path}:{number}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise ManifestError(f"{path}:{number}: a row must be a JSON object, got {type(data).__name__}")
        if model is None:
            rows.append(data)
            continue
        try:
            rows.append(model.model_validate(data))
        except ValueError as exc:  # pydantic.ValidationError is a ValueError
            raise ManifestError(f"{path}:{number}: does not fit {model.__name__}: {exc}") from exc
    return rows


def write_rows(path: Path, rows: Iterable[BaseModel | Mapping[str, Any]]) -> None:
    """Write all ``rows`` to ``path`` as JSONL, atomically: readers see the old file or the new, never half."""
    data = "".join(_line(r) for r in rows).encode("utf-8")
    path = Path(path)
    with _lock_for(path):
        atomic_write_bytes(path, lambda fh: fh.write(data))


def read_run_json(path: Path) -> dict[str, Any]:
    """``run.json`` as a dict; ``{}`` when it does not exist (yet: a first run writes it at the end).

    Raises:
        VoiceprepError: the file cannot be read.
        ManifestError: it is not a JSON object (or not text).
    """
    try:
        text = path.read_bytes()  # decoded by json.loads: bytes that are not UTF-8 are "not valid JSON"
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise VoiceprepError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: must hold a JSON object, got {type(data).__name__}")
    return data


__all__: Sequence[str] = (
    "CLIPS_FILE",
    "RECORDINGS_FILE",
    "RUN_FILE",
    "SCHEMA_VERSION",
    "ClipRow",
    "ManifestError",
    "RecordingRow",
    "append_row",
    "canonical_json",
    "fingerprint",
    "read_rows",
    "read_run_json",
    "to_jsonable",
    "write_rows",
)
