"""A run folder as pandas tables: :func:`load_run` reads ``OUT`` into a :class:`RunResults`.

This is the one reader of a run folder: ``recordings.jsonl``, ``clips.jsonl``, ``run.json`` and the voice
ledger are read here and nowhere else (the HTML report and ``voiceprep run --export`` read through it).
Nothing is measured again. A run that is still going can be loaded: its manifests are read as they are
(a half-written last line is skipped) and ``run.json`` may not exist yet (``.run`` is then ``{}``).

Column convention, the same for every table here and stable (the same columns in the same order with the
same dtypes whatever the run holds, even no rows at all):

- row fields keep their manifest names and follow the manifest row's field order: ``speaker``,
  ``status``, ``reasons``, ``duration_s``...; column types come from the row models' type hints;
- nested dicts are spread with a dot: ``probe.sample_rate``, ``metrics.snr_db``, ``score_parts.snr``.
  Every metric of :data:`pipeline.rules.metrics.METRICS` has its ``metrics.*`` column even when no row
  measured it (a failed recording's metrics are all missing);
- columns that are not stored in the manifests have plain names, follow the field they come from and
  are listed in :data:`DERIVED_COLUMNS`: ``source`` and ``clip_path`` (absolute paths), ``failed_rules``
  and ``warned_rules`` (the rules whose check gave ``fail`` / ``warn``), ``score`` (the selection score
  of the chosen window);
- missing values are ``NaN`` in float and text columns and ``<NA>`` in integer columns (``Int64``);
  lists and dicts (``reasons``, ``checks``, ``metrics.channel_choice``...) stay Python objects;
- a field a later version adds to the manifests comes after these columns, with an inferred dtype.

:meth:`RunResults.export` writes the ``recordings`` and ``clips`` tables (without the derived columns)
as Parquet or CSV: that is ``voiceprep run --export``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pipeline.audio.io import PROBE_FIELDS, AudioInfo, atomic_write_bytes
from pipeline.batch.manifest import (
    CLIPS_FILE,
    RECORDINGS_FILE,
    RUN_FILE,
    ClipRow,
    RecordingRow,
    read_rows,
    read_run_json,
    to_jsonable,
)
from pipeline.errors import InvalidArgument, VoiceprepError
from pipeline.rules.checks import Check
from pipeline.rules.metrics import pandas_dtypes
from pipeline.selection.scoring import WEIGHTS

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

EXPORT_FORMATS: tuple[str, ...] = ("parquet", "csv")

_F, _I, _S, _B, _O = "float", "int", "text", "bool", "object"


def _kind(hint: Any) -> str:
    """The column kind of a type hint: ``str`` (and literals of text) text, ``int``, ``float``, ``bool``;
    ``X | None`` is ``X``'s kind; anything else (lists, dicts, ``Any``) stays ``object``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0] if len(args) == 1 else Any
    if typing.get_origin(hint) is Literal:
        hint = type(typing.get_args(hint)[0])
    return {str: _S, int: _I, float: _F, bool: _B}.get(hint, _O)


def _kinds(cls: type) -> dict[str, str]:
    """``{field: column kind}`` of a pydantic model or a dataclass, in field order."""
    if hasattr(cls, "model_fields"):
        hints = {name: f.annotation for name, f in cls.model_fields.items()}
    else:
        resolved = typing.get_type_hints(cls)
        hints = {f.name: resolved[f.name] for f in dataclasses.fields(cls)}
    return {name: _kind(hint) for name, hint in hints.items()}


def _columns(
    model: type, spread: Mapping[str, Mapping[str, str]], after: Mapping[str, Mapping[str, str]]
) -> dict[str, str]:
    """The columns of a manifest table: ``model``'s fields in order, each field named in ``spread``
    replaced by its ``<field>.<key>`` columns, and the columns in ``after[field]`` right after it."""
    out: dict[str, str] = {}
    for name, kind in _kinds(model).items():
        if name in spread:
            out.update({f"{name}.{key}": k for key, k in spread[name].items()})
        else:
            out[name] = kind
        out.update(after.get(name, {}))
    return out


PROBE_COLUMNS: dict[str, str] = {key: _kinds(AudioInfo)[key] for key in PROBE_FIELDS}
"""Probe keys (``probe.<key>`` columns of :attr:`RunResults.recordings`) and their kind."""

METRIC_COLUMNS: dict[str, str] = dict(pandas_dtypes())
"""The metrics (:data:`pipeline.rules.metrics.METRICS`, in report order) as ``metrics.<name>`` columns, and their kind."""

SCORE_PARTS: tuple[str, ...] = tuple(WEIGHTS)
"""The parts of a window's selection score, each in [0, 1] (``score_parts.<part>`` in :meth:`~RunResults.windows`)."""

DERIVED_COLUMNS: dict[str, str] = {
    "source": "recordings: absolute path of the input file (NaN while run.json is not written yet)",
    "clip_path": "clips: absolute path of the clip file (under clips/ or rejected/); NaN when none was made",
    "failed_rules": "clips: rules whose check gave 'fail' (a clip rejected before rendering has no checks)",
    "warned_rules": "clips: rules whose check gave 'warn'",
    "score": "clips: selection score of the chosen window, in [0, 1] (NaN when no window was chosen)",
}
"""Columns computed by :func:`load_run` that the manifests do not store."""

RECORDING_SCHEMA: dict[str, str] = _columns(
    RecordingRow, {"probe": PROBE_COLUMNS, "metrics": METRIC_COLUMNS}, {"path": {"source": _S}}
)
"""Leading columns of :attr:`RunResults.recordings`, in order, with their kind."""

CLIP_SCHEMA: dict[str, str] = _columns(
    ClipRow,
    {"metrics": METRIC_COLUMNS},
    {
        "clip": {"clip_path": _S},
        "checks": {"failed_rules": _O, "warned_rules": _O},
        "alternatives": {"score": _F},
    },
)
"""Leading columns of :attr:`RunResults.clips`, in order, with their kind."""

_PLAN_SPREAD = ("score_parts", "measures")

_CLIP_KEY = {name: CLIP_SCHEMA[name] for name in ("speaker", "family", "status")}

CHECK_SCHEMA: dict[str, str] = {**_CLIP_KEY, **_kinds(Check)}
"""Columns of :attr:`RunResults.checks` (one row per check of each clip)."""

SEGMENT_SCHEMA: dict[str, str] = {
    **_CLIP_KEY,
    **{"order": _I, "path": _S, "source": _S, "start_s": _F, "end_s": _F, "duration_s": _F},
}
"""Columns of :attr:`RunResults.segments` (one row per source span of each clip, in clip order)."""

WINDOW_SCHEMA: dict[str, str] = {
    **_CLIP_KEY,
    **{"rank": _I, "chosen": _B, "score": _F, "duration_s": _F, "longest_run_s": _F, "max_pause_s": _F},
    **{"assembled": _B, "pieces": _O},
    **{f"score_parts.{part}": _F for part in SCORE_PARTS},
}
"""Leading columns of :meth:`RunResults.windows`; the ``measures.*`` columns follow (they depend on the
run's settings, e.g. no DNSMOS without the slow measures)."""


# ------------------------------------------------------------------------------------------ columns


def _text_dtype() -> Any:
    import pandas as pd

    # pandas 3 has a real string dtype with NaN for missing; pandas 2's "str" would turn None into "None".
    return "str" if int(pd.__version__.split(".", 1)[0]) >= 3 else object


def _infer(values: list[Any]) -> str:
    """The kind of a column no schema names, from its values (mixed or nested values stay ``object``)."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return _B
    if not present or any(isinstance(v, bool) for v in present):
        return _O
    if all(isinstance(v, int) for v in present):
        return _I
    if all(isinstance(v, int | float) for v in present):
        return _F
    return _S if all(isinstance(v, str) for v in present) else _O


def _column(values: list[Any], kind: str) -> pd.Series:
    """One column of the given kind; a value that does not fit the kind leaves the column ``object``."""
    import numpy as np
    import pandas as pd

    try:
        if kind == _F:
            return pd.Series([np.nan if v is None else float(v) for v in values], dtype="float64")
        if kind == _I:
            if any(isinstance(v, float) and not float(v).is_integer() for v in values if v is not None):
                raise TypeError("not whole numbers")
            return pd.Series(pd.array(values, dtype="Int64"))
        if kind == _S and all(v is None or isinstance(v, str) for v in values):
            return pd.Series(values, dtype=_text_dtype())
        if kind == _B and all(v is None or isinstance(v, bool) for v in values):
            return pd.Series([bool(v) for v in values], dtype=bool)
    except (TypeError, ValueError):
        pass
    return pd.Series(values, dtype=object)


def _frame(flat_rows: Sequence[Mapping[str, Any]], schema: Mapping[str, str]) -> pd.DataFrame:
    """A table whose leading columns follow ``schema``; other keys follow in order of appearance."""
    import pandas as pd

    kinds = dict(schema)
    for row in flat_rows:
        for name in row:
            kinds.setdefault(name, "")
    data = {}
    for name, kind in kinds.items():
        values = [r.get(name) for r in flat_rows]
        data[name] = _column(values, kind or _infer(values))
    return pd.DataFrame(data, columns=list(kinds), index=pd.RangeIndex(len(flat_rows)))


def _spread(row: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """``row`` with each dict field in ``fields`` replaced by ``<field>.<key>`` entries."""
    flat: dict[str, Any] = {}
    for name, value in row.items():
        if name in fields and isinstance(value, Mapping):
            flat.update({f"{name}.{key}": inner for key, inner in value.items()})
        elif name not in fields or value is not None:
            flat[name] = value  # a spread field that is not a dict is kept whole so nothing is lost
    return flat


def _verdict_rules(checks: list[dict[str, Any]], verdict: str) -> list[str]:
    return [str(c.get("rule")) for c in checks if c.get("verdict") == verdict]


def _cell_text(value: Any) -> Any:
    """A CSV cell: lists and dicts as JSON text, the rest as it is."""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    return value


def _arrow_table(df: pd.DataFrame) -> Any:
    """Column by column: native Arrow types where pyarrow can type the values, JSON text otherwise."""
    import pyarrow as pa

    def writable(t: pa.DataType) -> bool:
        # Parquet cannot store a struct without fields (e.g. a column of empty dicts).
        if pa.types.is_struct(t):
            return t.num_fields > 0 and all(writable(t.field(i).type) for i in range(t.num_fields))
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            return writable(t.value_type)
        return not pa.types.is_map(t)

    arrays = []
    for name in df.columns:
        if df[name].dtype != object:
            arrays.append(pa.Array.from_pandas(df[name]))
            continue
        values = [
            None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v for v in df[name]
        ]
        array = None
        if not any(isinstance(v, dict) for v in values):  # dicts have per-row keys: JSON text is clearer
            try:
                array = pa.array(values)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
                array = None
        if array is None or not writable(array.type):
            text = [
                v if v is None or isinstance(v, str) else json.dumps(to_jsonable(v), ensure_ascii=False)
                for v in values
            ]
            array = pa.array(text, type=pa.string())
        arrays.append(array)
    return pa.Table.from_arrays(arrays, names=[str(c) for c in df.columns])


# ------------------------------------------------------------------------------------------ results


@dataclass(frozen=True, eq=False)
class RunResults:
    """The outputs of one run, read by :func:`load_run`, as pandas tables and a few helpers.

    The manifests are read once, when the object is made; call :func:`load_run` again to see rows a
    running run has written since. Tables are built on first use and are the same object afterwards
    (copy before changing one in place).
    """

    out_dir: Path
    """The run folder (absolute)."""
    run: dict[str, Any]
    """``run.json``: config and its fingerprint, versions, timings, counts (``{}`` until a run finishes)."""
    recording_rows: list[dict[str, Any]] = field(repr=False)
    """``recordings.jsonl`` as plain dicts (every field of :class:`~pipeline.batch.manifest.RecordingRow`), in file order."""
    clip_rows: list[dict[str, Any]] = field(repr=False)
    """``clips.jsonl`` as plain dicts (every field of :class:`~pipeline.batch.manifest.ClipRow`), in file order."""
    ledger_path: Path = field(repr=False)
    """Where :attr:`voices` reads the ledger from."""

    @cached_property
    def families(self) -> list[str]:
        """The run's families: those ``run.json`` names, in its order, then any other a clip row names."""
        names = [f for f in self.run.get("families") or [] if isinstance(f, str)]
        return names + list(dict.fromkeys(r["family"] for r in self.clip_rows if r["family"] not in names))

    # ----------------------------------------------------------------------------------- tables

    @cached_property
    def recordings(self) -> pd.DataFrame:
        """One row per input file (columns: :data:`RECORDING_SCHEMA`).

        A failed recording (``status == "failed"``) has its ``reasons`` and ``message`` and missing
        metrics. ``source`` is the absolute path of the input file.
        """
        flat = [
            _spread({**row, "source": self._source(row["path"])}, ("probe", "metrics"))
            for row in self.recording_rows
        ]
        return _frame(flat, RECORDING_SCHEMA)

    @cached_property
    def clips(self) -> pd.DataFrame:
        """One row per (speaker, family) (columns: :data:`CLIP_SCHEMA`).

        ``status`` is ``ready``, ``rejected``, ``failed`` or ``submitted``; ``reasons`` says why.
        ``failed_rules`` / ``warned_rules`` summarise ``checks`` (e.g. ``["gate:snr_db"]``), so
        ``clips[clips.failed_rules.str.len() == 0]`` keeps the clips no check failed. ``clip_path`` is the
        absolute path of the clip (rejected clips are kept under ``rejected/``).
        """
        flat = []
        for row in self.clip_rows:
            derived = {
                "clip_path": str(self.out_dir / row["clip"]) if row["clip"] else None,
                "failed_rules": _verdict_rules(row["checks"], "fail"),
                "warned_rules": _verdict_rules(row["checks"], "warn"),
                "score": (row["plan"] or {}).get("score"),
            }
            flat.append(_spread({**row, **derived}, ("metrics",)))
        return _frame(flat, CLIP_SCHEMA)

    @cached_property
    def checks(self) -> pd.DataFrame:
        """Every check of every clip, one row each (columns: :data:`CHECK_SCHEMA`), in clip order.

        ``value`` and ``limit`` keep their types (a number, a name, a list of accepted values).
        ``checks.query("verdict != 'pass'")`` lists every problem with its ``message`` and ``hint``.
        """
        return _frame(self._per_clip(lambda row: row["checks"]), CHECK_SCHEMA)

    @cached_property
    def segments(self) -> pd.DataFrame:
        """The source spans each clip was cut from, in clip order (columns: :data:`SEGMENT_SCHEMA`).

        These are the spans in the clip file, edge room tone included; :meth:`windows` gives the speech
        spans the selector chose between.
        """
        flat = self._per_clip(
            lambda row: [
                {"order": order, **seg, "source": self._source(seg.get("path"))}
                for order, seg in enumerate(row["segments"])
            ]
        )
        table = _frame(flat, SEGMENT_SCHEMA)
        table["duration_s"] = table["end_s"] - table["start_s"]
        return table

    @cached_property
    def voice_rows(self) -> list[dict[str, Any]]:
        """The voice ledger's rows as plain dicts, oldest first (``[]`` when there is no ledger yet).

        Raises:
            pipeline.enroll.ledger.LedgerError: the ledger file is damaged.
        """
        from pipeline.enroll.ledger import read_voices

        return read_voices(self.ledger_path)

    @cached_property
    def voices(self) -> pd.DataFrame:
        """The voice ledger: one row per voice, as :func:`pipeline.enroll.ledger.read_voices` gives them.

        The ledger is ``OUT/voices.sqlite`` or the shared ledger the run's config names (a shared ledger
        holds the voices of other runs too). Columns are the fields of :class:`pipeline.enroll.ledger.VoiceRecord`
        (``provider``, ``family``, ``target_model``, ``voice_id``, ``clip_sha256``, ``speaker``, ``status``,
        times, ``request_ids``, ``last_error``...), also when there is no ledger yet (no rows). Join with
        :attr:`clips` on ``["clip_sha256", "family"]`` (two families can get byte-identical clips).

        Raises:
            pipeline.enroll.ledger.LedgerError: the ledger file is damaged.
        """
        from pipeline.enroll.ledger import COLUMNS, VoiceRecord

        return _frame(self.voice_rows, {k: v for k, v in _kinds(VoiceRecord).items() if k in COLUMNS})

    # ----------------------------------------------------------------------------------- helpers

    def ready_clips(self, family: str | Sequence[str] | None = None) -> pd.DataFrame:
        """The rows of :attr:`clips` with ``status == "ready"`` (not yet submitted), of ``family`` if given.

        Raises:
            InvalidArgument: ``family`` names a family that is neither in this run nor known.
        """
        clips = self.clips
        keep = clips["status"] == "ready"
        if family is not None:
            keep &= clips["family"].isin(self._families(family))
        return clips[keep]

    def windows(self, speaker: str | None = None, family: str | Sequence[str] | None = None) -> pd.DataFrame:
        """Why a window was chosen: the chosen window (``rank`` 0) and the runners-up of each clip.

        One row per window (columns: :data:`WINDOW_SCHEMA`, then ``measures.*``): its selection
        ``score`` (the weighted mean of the ``score_parts.*``, each in [0, 1], 1 = best), the window-level
        measures it was scored on, and ``pieces``, the plan's ``{path, source, start_s, end_s}`` speech
        spans as in ``clips.jsonl`` (several when the clip joins takes; :attr:`segments` has the spans the
        render actually cut, room tone included). The chosen window is the best-scoring one that passed
        the family's rules; runners-up are kept as the run's ``alternatives`` setting says.

        Raises:
            InvalidArgument: ``speaker`` or ``family`` is not in this run.
        """
        if speaker is not None and speaker not in {r["speaker"] for r in self.clip_rows}:
            raise InvalidArgument(f"speaker {speaker!r} has no clips in {self.out_dir}")
        families = set(self._families(family)) if family is not None else None

        def windows_of(row: Mapping[str, Any]) -> list[dict[str, Any]]:
            if (speaker is not None and row["speaker"] != speaker) or (
                families is not None and row["family"] not in families
            ):
                return []
            plans = [p for p in (row["plan"], *row["alternatives"]) if isinstance(p, Mapping)]
            out = []
            for rank, plan in enumerate(plans):
                pieces = [
                    {
                        "path": p.get("path"),
                        "source": self._source(p.get("path")),
                        "start_s": p.get("start_s"),
                        "end_s": p.get("end_s"),
                    }
                    for p in plan.get("pieces") or []
                ]
                out.append(
                    {
                        "rank": rank,
                        "chosen": rank == 0,
                        **{k: plan.get(k) for k in ("score", "duration_s", "longest_run_s", "max_pause_s")},
                        "assembled": bool(plan.get("assembled", len(pieces) > 1)),
                        "pieces": pieces,
                        **_spread({k: plan.get(k) for k in _PLAN_SPREAD}, _PLAN_SPREAD),
                    }
                )
            return out

        return _frame(self._per_clip(windows_of), WINDOW_SCHEMA)

    def clip_file(self, speaker: str, family: str) -> Path:
        """The clip file of (``speaker``, ``family``): under ``clips/``, or ``rejected/`` for a rejected one.

        Raises:
            InvalidArgument: there is no such row in this run.
            VoiceprepError: the row has no clip (nothing could be cut) or its file is gone.
        """
        row = self.clip_row(speaker, family)
        if not row["clip"]:
            reasons = ", ".join(row["reasons"]) or "no reason recorded"
            raise VoiceprepError(f"{speaker}/{family} has no clip (status {row['status']}: {reasons})")
        path = self.out_dir / row["clip"]
        if not path.is_file():
            raise VoiceprepError(f"{path}: the clip file of {speaker}/{family} is missing")
        return path

    def clip_audio(self, speaker: str, family: str) -> tuple[np.ndarray, int]:
        """The clip's samples and rate: float32, 1-D for mono, ``(n, channels)`` otherwise.

        ``IPython.display.Audio(data, rate=rate)`` plays a mono clip as it is.

        Raises:
            InvalidArgument: there is no such row in this run.
            VoiceprepError: the row has no clip, or the file cannot be read.
        """
        from pipeline.audio.io import read

        data, rate = read(self.clip_file(speaker, family))
        return (data[:, 0] if data.shape[1] == 1 else data), rate

    def clip_row(self, speaker: str, family: str) -> dict[str, Any]:
        """The ``clips.jsonl`` row of (``speaker``, ``family``) as a dict (checks, plan, alternatives...).

        Raises:
            InvalidArgument: there is no such row in this run.
        """
        for row in self.clip_rows:
            if row["speaker"] == speaker and row["family"] == family:
                return dict(row)
        raise InvalidArgument(f"no clip row for speaker {speaker!r} and family {family!r} in {self.out_dir}")

    def export(self, fmt: str) -> list[Path]:
        """Write ``recordings.<fmt>`` and ``clips.<fmt>`` (``parquet`` or ``csv``) into the run folder.

        The tables are :attr:`recordings` and :attr:`clips` without the :data:`DERIVED_COLUMNS` (what the
        manifests hold, as this object read them); ``voiceprep run --export`` writes the same. CSV: list
        and dict cells are JSON text, a missing value is an empty cell. Parquet: list columns keep a list
        type when pyarrow can type them (``reasons``, ``segments``); dict and mixed-type columns are JSON
        text. Files are written atomically. Returns the written paths.

        Raises:
            InvalidArgument: ``fmt`` is not one of :data:`EXPORT_FORMATS`.
        """
        if fmt not in EXPORT_FORMATS:
            raise InvalidArgument(f"fmt must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
        written = []
        for stem, table in (("recordings", self.recordings), ("clips", self.clips)):
            df = table.drop(columns=[c for c in DERIVED_COLUMNS if c in table.columns])
            target = self.out_dir / f"{stem}.{fmt}"
            if fmt == "csv":
                text = df.map(_cell_text).to_csv(index=False, lineterminator="\n")
                atomic_write_bytes(target, lambda fh, t=text: fh.write(t.encode("utf-8")))
            else:
                import pyarrow.parquet as pq

                arrow = _arrow_table(df)
                atomic_write_bytes(target, lambda fh, t=arrow: pq.write_table(t, fh))
            written.append(target)
        return written

    def __repr__(self) -> str:
        failed = sum(r["status"] == "failed" for r in self.recording_rows)
        by_status = Counter(row["status"] for row in self.clip_rows)
        clips = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())) or "none"
        return (
            f"RunResults({str(self.out_dir)!r}: {len(self.recording_rows)} recordings ({failed} failed), "
            f"{len(self.clip_rows)} clips ({clips}))"
        )

    # ----------------------------------------------------------------------------------- internals

    def _per_clip(
        self, items: Callable[[Mapping[str, Any]], Sequence[Mapping[str, Any]]]
    ) -> list[dict[str, Any]]:
        """The rows of a per-clip table: each item of each clip row, after the clip's key columns."""
        return [{**{k: row[k] for k in _CLIP_KEY}, **item} for row in self.clip_rows for item in items(row)]

    @cached_property
    def _recorded_sources(self) -> dict[str, Path]:
        """Relative recording path -> the absolute file the run's clip plans say it was read from."""
        found: dict[str, Path] = {}
        for row in self.clip_rows:
            for plan in (row["plan"] or {}, *row["alternatives"]):
                for piece in plan.get("pieces") or []:
                    rel, src = piece.get("path"), piece.get("source")
                    if isinstance(rel, str) and isinstance(src, str):
                        found.setdefault(rel, Path(src))
        return found

    def _source(self, path: Any) -> str | None:
        """The one rule for finding the input file behind a manifest path (relative to the run's input).

        Tried in order: the absolute path the run's clip plans recorded for it, the run's input folder
        joined with ``path``, and the run's input itself when the run was over a single file (it names
        that file by its file name). The first that is a file now wins; ``None`` when none is (the input
        was moved or deleted).
        """
        if not isinstance(path, str):
            return None
        candidates = [self._recorded_sources[path]] if path in self._recorded_sources else []
        run_input = self.run.get("input")
        if isinstance(run_input, str):
            candidates.append(Path(run_input) / path)
            if Path(run_input).name == path:
                candidates.append(Path(run_input))
        return next((str(c) for c in candidates if c.is_file()), None)

    def _families(self, family: str | Sequence[str]) -> list[str]:
        names = [family] if isinstance(family, str) else list(family)
        wrong = [n for n in names if not isinstance(n, str)]
        if wrong:
            raise InvalidArgument(f"family must be a name or a list of names, got {wrong[0]!r}")
        in_run = set(self.families)
        unknown = [n for n in names if n not in in_run]
        if unknown:
            from pipeline.rules.families import list_families

            unknown = [n for n in unknown if n not in list_families()]
        if unknown:
            shown = ", ".join(sorted(str(f) for f in in_run)) or "none yet"
            raise InvalidArgument(f"family {unknown[0]!r} is not a known family (this run has: {shown})")
        return names


# ------------------------------------------------------------------------------------------ loading


def load_run(out_dir: str | Path, *, ledger: str | Path | None = None) -> RunResults:
    """Read a run folder (``voiceprep run IN --out OUT``) into a :class:`RunResults`.

    Works on a finished run, on one that is still writing (a half-written last manifest line is
    skipped; ``run.json`` may be missing) and on runs with failed recordings or clips. ``ledger``
    overrides where the voice ledger is read from (default: the run config's shared ledger, else
    ``OUT/voices.sqlite``).

    Raises:
        InvalidArgument: ``out_dir`` does not exist, is not a folder, or holds none of
            ``recordings.jsonl``, ``clips.jsonl`` and ``run.json``.
        ManifestError: a manifest or ``run.json`` is damaged, or a row does not fit its model (an
            unknown layout; the message names the file and line).
    """
    from pipeline.enroll.ledger import default_ledger_path, run_ledger_path

    if not isinstance(out_dir, str | Path):
        raise InvalidArgument(f"out_dir must be a path, got {type(out_dir).__name__}")
    out = Path(out_dir).expanduser()
    if not out.exists():
        raise InvalidArgument(f"out_dir {str(out)!r} does not exist")
    if not out.is_dir():
        raise InvalidArgument(f"out_dir {str(out)!r} is not a folder")
    names = (RECORDINGS_FILE, CLIPS_FILE, RUN_FILE)
    if not any((out / name).is_file() for name in names):
        raise InvalidArgument(
            f"out_dir {str(out)!r} is not a voiceprep run folder (it has no {', '.join(names)})"
        )
    out = out.resolve()
    run = read_run_json(out / RUN_FILE)
    return RunResults(
        out_dir=out,
        run=run,
        recording_rows=to_jsonable(read_rows(out / RECORDINGS_FILE, RecordingRow)),
        clip_rows=to_jsonable(read_rows(out / CLIPS_FILE, ClipRow)),
        ledger_path=(default_ledger_path(out, ledger) if ledger else run_ledger_path(out, run)).resolve(),
    )


__all__ = [
    "CHECK_SCHEMA",
    "CLIP_SCHEMA",
    "DERIVED_COLUMNS",
    "EXPORT_FORMATS",
    "METRIC_COLUMNS",
    "PROBE_COLUMNS",
    "RECORDING_SCHEMA",
    "SCORE_PARTS",
    "SEGMENT_SCHEMA",
    "WINDOW_SCHEMA",
    "RunResults",
    "load_run",
]
