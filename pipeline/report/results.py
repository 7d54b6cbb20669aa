"""A run folder as pandas tables: :func:`load_run` reads ``OUT`` into a :class:`RunResults`.

Only the files a run wrote are read (``recordings.jsonl``, ``clips.jsonl``, ``run.json``, the ledger);
nothing is measured again. A run that is still going can be loaded: its manifests are read as they are
(a half-written last line is skipped) and ``run.json`` may not exist yet (``.run`` is then ``{}``).

Column convention, the same for every table here and stable (the same columns in the same order with the
same dtypes whatever the run holds, even no rows at all):

- row fields keep their manifest names: ``speaker``, ``status``, ``reasons``, ``duration_s``...;
- nested dicts are spread with a dot, as in ``voiceprep run --export`` and
  :func:`pipeline.batch.manifest.to_dataframe`: ``probe.sample_rate``, ``metrics.snr_db``,
  ``score_parts.snr``. Every public metric has its ``metrics.*`` column even when no row measured it
  (a failed recording's metrics are all missing);
- columns that are not stored in the manifests have plain names and are listed in
  :data:`DERIVED_COLUMNS`: ``source`` and ``clip_path`` (absolute paths), ``failed_rules`` and
  ``warned_rules`` (the rules whose check gave ``fail`` / ``warn``), ``score`` (the selection score of the
  chosen window);
- missing values are ``NaN`` in float and text columns and ``<NA>`` in integer columns (``Int64``);
  lists and dicts (``reasons``, ``checks``, ``metrics.channel_choice``...) stay Python objects;
- a field a later version adds to the manifests comes after these columns, with an inferred dtype.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.batch.manifest import (
    CLIPS_FILE,
    RECORDINGS_FILE,
    ClipRow,
    ManifestError,
    RecordingRow,
    read_rows,
    to_dataframe,
    to_jsonable,
)
from pipeline.errors import InvalidArgument, VoiceprepError
from pipeline.rules.metrics import pandas_dtypes

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

RUN_FILE = "run.json"

_F, _I, _S, _B, _O = "float", "int", "text", "bool", "object"

PROBE_COLUMNS: dict[str, str] = {
    "format": _S,
    "codec": _S,
    "sample_rate": _I,
    "channels": _I,
    "duration_s": _F,
    "bytes": _I,
    "sample_format": _S,
}
"""Probe keys (``probe.<key>`` columns of :attr:`RunResults.recordings`) and their kind."""

METRIC_COLUMNS: dict[str, str] = dict(pandas_dtypes())
"""The metrics (:data:`pipeline.rules.metrics.METRICS`, in report order) as ``metrics.<name>`` columns, and their kind."""

SCORE_PARTS: tuple[str, ...] = (
    "snr",
    "dnsmos",
    "clipping",
    "reverb",
    "duration",
    "bandwidth",
    "speech_ratio",
    "stability",
)
"""The parts of a window's selection score, each in [0, 1] (``score_parts.<part>`` in :meth:`~RunResults.windows`)."""

DERIVED_COLUMNS: dict[str, str] = {
    "source": "recordings: absolute path of the input file (NaN while run.json is not written yet)",
    "clip_path": "clips: absolute path of the clip file (under clips/ or rejected/); NaN when none was made",
    "failed_rules": "clips: rules whose check gave 'fail' (a clip rejected before rendering has no checks)",
    "warned_rules": "clips: rules whose check gave 'warn'",
    "score": "clips: selection score of the chosen window, in [0, 1] (NaN when no window was chosen)",
}
"""Columns computed by :func:`load_run` that the manifests do not store."""


def _columns(prefix: str, kinds: Mapping[str, str]) -> list[tuple[str, str]]:
    return [(f"{prefix}.{name}", kind) for name, kind in kinds.items()]


RECORDING_SCHEMA: tuple[tuple[str, str], ...] = (
    ("schema_version", _I),
    ("path", _S),
    ("source", _S),
    ("speaker", _S),
    ("sha256", _S),
    ("status", _S),
    ("reasons", _O),
    ("message", _S),
    *_columns("probe", PROBE_COLUMNS),
    *_columns("metrics", METRIC_COLUMNS),
    ("null_reasons", _O),
    ("speech_segments", _O),
    ("error_type", _S),
    ("seconds", _F),
)
"""Leading columns of :attr:`RunResults.recordings`, in order, with their kind."""

CLIP_SCHEMA: tuple[tuple[str, str], ...] = (
    ("schema_version", _I),
    ("speaker", _S),
    ("family", _S),
    ("status", _S),
    ("reasons", _O),
    ("message", _S),
    ("clip", _S),
    ("clip_path", _S),
    ("sha256", _S),
    ("segments", _O),
    ("duration_s", _F),
    ("sample_rate", _I),
    ("assembled", _B),
    *_columns("metrics", METRIC_COLUMNS),
    ("checks", _O),
    ("failed_rules", _O),
    ("warned_rules", _O),
    ("alternatives", _O),
    ("score", _F),
    ("plan", _O),
    ("render", _O),
    ("voice_id", _S),
    ("target_model", _S),
    ("key", _S),
)
"""Leading columns of :attr:`RunResults.clips`, in order, with their kind."""

CHECK_SCHEMA: tuple[tuple[str, str], ...] = (
    ("speaker", _S),
    ("family", _S),
    ("status", _S),
    ("rule", _S),
    ("group", _S),
    ("verdict", _S),
    ("value", _O),
    ("limit", _O),
    ("op", _S),
    ("unit", _S),
    ("reason", _S),
    ("message", _S),
    ("hint", _S),
)
"""Columns of :attr:`RunResults.checks` (one row per check of each clip)."""

SEGMENT_SCHEMA: tuple[tuple[str, str], ...] = (
    ("speaker", _S),
    ("family", _S),
    ("status", _S),
    ("order", _I),
    ("path", _S),
    ("source", _S),
    ("start_s", _F),
    ("end_s", _F),
    ("duration_s", _F),
)
"""Columns of :attr:`RunResults.segments` (one row per source span of each clip, in clip order)."""

WINDOW_SCHEMA: tuple[tuple[str, str], ...] = (
    ("speaker", _S),
    ("family", _S),
    ("status", _S),
    ("rank", _I),
    ("chosen", _B),
    ("score", _F),
    ("duration_s", _F),
    ("longest_run_s", _F),
    ("max_pause_s", _F),
    ("assembled", _B),
    ("segments", _O),
    *[(f"score_parts.{p}", _F) for p in SCORE_PARTS],
)
"""Leading columns of :meth:`RunResults.windows`; the ``measures.*`` columns follow (they depend on the
run's settings, e.g. no DNSMOS without the slow measures)."""


# ------------------------------------------------------------------------------------------ columns


def _text_dtype() -> Any:
    import pandas as pd

    # pandas 3 has a real string dtype with NaN for missing; pandas 2's "str" would turn None into "None".
    return "str" if int(pd.__version__.split(".", 1)[0]) >= 3 else object


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


def _frame(flat_rows: Sequence[Mapping[str, Any]], schema: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """A table whose leading columns follow ``schema``; other keys follow in order of appearance."""
    import pandas as pd

    known = [name for name, _ in schema]
    extras: dict[str, None] = {}
    for row in flat_rows:
        for name in row:
            if name not in extras and name not in known:
                extras[name] = None
    data = {name: _column([r.get(name) for r in flat_rows], kind) for name, kind in schema}
    if extras:
        # to_dataframe gives the extras the manifest's own dtype rules (ints stay ints, ...).
        rest = to_dataframe([{k: r.get(k) for k in extras} for r in flat_rows], flatten=False)
        data.update({k: rest[k] for k in extras})
    columns = known + list(extras)
    return pd.DataFrame(data, columns=columns, index=pd.RangeIndex(len(flat_rows)))


def _spread(row: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """``row`` with each dict field in ``fields`` replaced by ``<field>.<key>`` entries."""
    names = set(fields)
    flat: dict[str, Any] = {}
    for name, value in row.items():
        if name in names:
            if isinstance(value, Mapping):
                for key, inner in value.items():
                    flat[f"{name}.{key}"] = inner
            elif value is not None:
                flat[name] = value  # not a dict: kept whole so nothing is lost
        else:
            flat[name] = value
    return flat


def _verdict_rules(checks: Any, verdict: str) -> list[str]:
    if not isinstance(checks, list):
        return []
    return [str(c.get("rule")) for c in checks if isinstance(c, Mapping) and c.get("verdict") == verdict]


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
    """``recordings.jsonl`` as plain dicts, in file order."""
    clip_rows: list[dict[str, Any]] = field(repr=False)
    """``clips.jsonl`` as plain dicts, in file order."""
    ledger_path: Path = field(repr=False)
    """Where :attr:`voices` reads the ledger from."""

    # ----------------------------------------------------------------------------------- tables

    @cached_property
    def recordings(self) -> pd.DataFrame:
        """One row per input file (columns: :data:`RECORDING_SCHEMA`).

        A failed recording (``status == "failed"``) has its ``reasons`` and ``message`` and missing
        metrics. ``source`` is the absolute path of the input file.
        """
        flat = []
        for row in self.recording_rows:
            d = _spread(row, ("probe", "metrics"))
            d["source"] = self._source(row.get("path"))
            flat.append(d)
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
            d = _spread(row, ("metrics",))
            clip = row.get("clip")
            d["clip_path"] = str(self.out_dir / clip) if clip else None
            d["failed_rules"] = _verdict_rules(row.get("checks"), "fail")
            d["warned_rules"] = _verdict_rules(row.get("checks"), "warn")
            plan = row.get("plan")
            d["score"] = plan.get("score") if isinstance(plan, Mapping) else None
            flat.append(d)
        return _frame(flat, CLIP_SCHEMA)

    @cached_property
    def checks(self) -> pd.DataFrame:
        """Every check of every clip, one row each (columns: :data:`CHECK_SCHEMA`), in clip order.

        ``value`` and ``limit`` keep their types (a number, a name, a list of accepted values).
        ``checks.query("verdict != 'pass'")`` lists every problem with its ``message`` and ``hint``.
        """
        flat = []
        for row in self.clip_rows:
            for check in row.get("checks") or []:
                d = {k: row.get(k) for k in ("speaker", "family", "status")}
                d.update({k: v for k, v in check.items() if k not in d})
                flat.append(d)
        return _frame(flat, CHECK_SCHEMA)

    @cached_property
    def segments(self) -> pd.DataFrame:
        """The source spans each clip was cut from, in clip order (columns: :data:`SEGMENT_SCHEMA`).

        These are the spans in the clip file, edge room tone included; :meth:`windows` gives the speech
        spans the selector chose between.
        """
        flat = []
        for row in self.clip_rows:
            for order, seg in enumerate(row.get("segments") or []):
                start, end = seg.get("start_s"), seg.get("end_s")
                flat.append(
                    {
                        "speaker": row.get("speaker"),
                        "family": row.get("family"),
                        "status": row.get("status"),
                        "order": order,
                        "path": seg.get("path"),
                        "source": self._source(seg.get("path")),
                        "start_s": start,
                        "end_s": end,
                        "duration_s": None if start is None or end is None else end - start,
                    }
                )
        return _frame(flat, SEGMENT_SCHEMA)

    @cached_property
    def voices(self) -> pd.DataFrame:
        """The voice ledger: one row per voice, as :func:`pipeline.enroll.ledger.read_voices` gives them.

        The ledger is ``OUT/voices.sqlite`` or the shared ledger the run's config names (a shared ledger
        holds the voices of other runs too). Columns are the fields of :class:`pipeline.enroll.ledger.VoiceRecord`
        (``provider``, ``family``, ``target_model``, ``voice_id``, ``clip_sha256``, ``speaker``, ``status``,
        times, ``request_ids``, ``last_error``...), also when there is no ledger yet (no rows). Join with
        :attr:`clips` on ``["sha256", "family"]`` = ``["clip_sha256", "family"]`` (two families can get
        byte-identical clips).

        Raises:
            pipeline.enroll.ledger.LedgerError: the ledger file is damaged.
        """
        import dataclasses

        import pandas as pd

        from pipeline.enroll.ledger import VoiceRecord, read_voices

        columns = [f.name for f in dataclasses.fields(VoiceRecord)]
        df = to_dataframe([to_jsonable(r) for r in read_voices(self.ledger_path)], flatten=False)
        for name in columns:
            if name not in df.columns:
                df[name] = pd.Series([None] * len(df), dtype=object, index=df.index)
        return df[[*columns, *(c for c in df.columns if c not in columns)]]

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
        measures it was scored on, and ``segments``, a list of ``{path, source, start_s, end_s}`` speech
        spans (several when the clip joins takes). The chosen window is the best-scoring one that passed
        the family's rules; runners-up are kept as the run's ``alternatives`` setting says.

        Raises:
            InvalidArgument: ``speaker`` or ``family`` is not in this run.
        """
        if speaker is not None and speaker not in {r.get("speaker") for r in self.clip_rows}:
            raise InvalidArgument(f"speaker {speaker!r} has no clips in {self.out_dir}")
        families = set(self._families(family)) if family is not None else None
        flat = []
        for row in self.clip_rows:
            if speaker is not None and row.get("speaker") != speaker:
                continue
            if families is not None and row.get("family") not in families:
                continue
            plans = [row.get("plan"), *(row.get("alternatives") or [])]
            for rank, plan in enumerate(p for p in plans if isinstance(p, Mapping)):
                flat.append(self._window(row, plan, rank))
        return _frame(flat, WINDOW_SCHEMA)

    def clip_file(self, speaker: str, family: str) -> Path:
        """The clip file of (``speaker``, ``family``): under ``clips/``, or ``rejected/`` for a rejected one.

        Raises:
            InvalidArgument: there is no such row in this run.
            VoiceprepError: the row has no clip (nothing could be cut) or its file is gone.
        """
        row = self._clip_row(speaker, family)
        clip = row.get("clip")
        if not clip:
            reasons = ", ".join(row.get("reasons") or []) or "no reason recorded"
            raise VoiceprepError(f"{speaker}/{family} has no clip (status {row.get('status')}: {reasons})")
        path = self.out_dir / clip
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
        return dict(self._clip_row(speaker, family))

    def export(self, fmt: str) -> list[Path]:
        """Write ``recordings.<fmt>`` and ``clips.<fmt>`` (``parquet`` or ``csv``) into the run folder.

        The same tables as ``voiceprep run --export`` (:func:`pipeline.batch.manifest.export`), read from the
        manifests as they are now. Returns the written paths.
        """
        from pipeline.batch.manifest import export

        return export(self.out_dir, fmt=fmt)

    def to_parquet(self) -> list[Path]:
        """:meth:`export` as Parquet."""
        return self.export("parquet")

    def to_csv(self) -> list[Path]:
        """:meth:`export` as CSV."""
        return self.export("csv")

    def __repr__(self) -> str:
        failed = sum(r.get("status") == "failed" for r in self.recording_rows)
        by_status = Counter(str(row.get("status")) for row in self.clip_rows)
        clips = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())) or "none"
        return (
            f"RunResults({str(self.out_dir)!r}: {len(self.recording_rows)} recordings ({failed} failed), "
            f"{len(self.clip_rows)} clips ({clips}))"
        )

    # ----------------------------------------------------------------------------------- internals

    @cached_property
    def _recorded_sources(self) -> dict[str, Path]:
        return recorded_sources(self.clip_rows)

    def _source(self, path: Any) -> str | None:
        """The absolute path of an input file from its path relative to the run's input (see
        :func:`locate_source`), or ``None`` when it cannot be found any more."""
        if not isinstance(path, str):
            return None
        found = locate_source(path, self.run.get("input"), self._recorded_sources)
        return None if found is None else str(found)

    def _families(self, family: str | Sequence[str]) -> list[str]:
        names = [family] if isinstance(family, str) else list(family)
        wrong = [n for n in names if not isinstance(n, str)]
        if wrong:
            raise InvalidArgument(f"family must be a name or a list of names, got {wrong[0]!r}")
        in_run = {r.get("family") for r in self.clip_rows} | set(self.run.get("families") or [])
        unknown = [n for n in names if n not in in_run]
        if unknown:
            from pipeline.rules.families import list_families

            unknown = [n for n in unknown if n not in list_families()]
        if unknown:
            shown = ", ".join(sorted(str(f) for f in in_run)) or "none yet"
            raise InvalidArgument(f"family {unknown[0]!r} is not a known family (this run has: {shown})")
        return names

    def _clip_row(self, speaker: str, family: str) -> Mapping[str, Any]:
        for row in self.clip_rows:
            if row.get("speaker") == speaker and row.get("family") == family:
                return row
        raise InvalidArgument(f"no clip row for speaker {speaker!r} and family {family!r} in {self.out_dir}")

    def _window(self, row: Mapping[str, Any], plan: Mapping[str, Any], rank: int) -> dict[str, Any]:
        pieces = plan.get("pieces") or plan.get("segments") or []
        segments = []
        for p in pieces:
            source = self._source(p.get("path"))
            segments.append(
                {
                    "path": p.get("path"),
                    "source": source,
                    "start_s": p.get("start_s"),
                    "end_s": p.get("end_s"),
                }
            )
        d: dict[str, Any] = {
            "speaker": row.get("speaker"),
            "family": row.get("family"),
            "status": row.get("status"),
            "rank": rank,
            "chosen": rank == 0,
            "score": plan.get("score"),
            "duration_s": plan.get("duration_s"),
            "longest_run_s": plan.get("longest_run_s"),
            "max_pause_s": plan.get("max_pause_s"),
            "assembled": bool(plan.get("assembled", len(segments) > 1)),
            "segments": segments,
        }
        for part, value in (plan.get("score_parts") or {}).items():
            d[f"score_parts.{part}"] = value
        for key, value in (plan.get("measures") or {}).items():
            d[f"measures.{key}"] = value
        return d


# ------------------------------------------------------------------------------------------ loading


def recorded_sources(clip_rows: Iterable[Mapping[str, Any]]) -> dict[str, Path]:
    """Relative recording path -> the absolute file the run's clip plans say it was read from."""
    found: dict[str, Path] = {}
    for row in clip_rows:
        for plan in [row.get("plan") or {}, *(row.get("alternatives") or [])]:
            for piece in plan.get("pieces") or []:
                rel, src = piece.get("path"), piece.get("source")
                if isinstance(rel, str) and isinstance(src, str):
                    found.setdefault(rel, Path(src))
    return found


def locate_source(rel: str, run_input: Any, recorded: Mapping[str, Path] | None = None) -> Path | None:
    """The one rule for finding the input file behind a manifest path ``rel`` (relative to the run's input).

    Tried in order: the absolute path the run's clip plans recorded for it (``recorded``, from
    :func:`recorded_sources`), the run's input folder joined with ``rel``, and the run's input itself when
    the run was over a single file (it names that file by its file name). The first that is a file now
    wins; ``None`` when none is (the input was moved or deleted).
    """
    candidates = []
    if recorded and rel in recorded:
        candidates.append(recorded[rel])
    if isinstance(run_input, str):
        root = Path(run_input)
        candidates.append(root / rel)
        if root.name == rel:
            candidates.append(root)
    return next((path for path in candidates if path.is_file()), None)


def _read_run_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
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


def _ledger_path(out: Path, run: Mapping[str, Any], ledger: str | Path | None) -> Path:
    from pipeline.enroll.ledger import default_ledger_path, run_ledger_path

    return (default_ledger_path(out, ledger) if ledger else run_ledger_path(out, run)).resolve()


def load_run(out_dir: str | Path, *, ledger: str | Path | None = None) -> RunResults:
    """Read a run folder (``voiceprep run IN --out OUT``) into a :class:`RunResults`.

    Works on a finished run, on one that is still writing (a half-written last manifest line is
    skipped; ``run.json`` may be missing) and on runs with failed recordings or clips. ``ledger``
    overrides where the voice ledger is read from (default: the run config's shared ledger, else
    ``OUT/voices.sqlite``).

    Raises:
        InvalidArgument: ``out_dir`` does not exist, is not a folder, or holds none of
            ``recordings.jsonl``, ``clips.jsonl`` and ``run.json``.
        ManifestError: a manifest or ``run.json`` is damaged (the message names the file and line).
    """
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
    run = _read_run_json(out / RUN_FILE)
    return RunResults(
        out_dir=out,
        run=run,
        recording_rows=to_jsonable(read_rows(out / RECORDINGS_FILE, RecordingRow)),
        clip_rows=to_jsonable(read_rows(out / CLIPS_FILE, ClipRow)),
        ledger_path=_ledger_path(out, run, ledger),
    )


__all__ = [
    "CHECK_SCHEMA",
    "CLIP_SCHEMA",
    "DERIVED_COLUMNS",
    "METRIC_COLUMNS",
    "PROBE_COLUMNS",
    "RECORDING_SCHEMA",
    "SCORE_PARTS",
    "SEGMENT_SCHEMA",
    "WINDOW_SCHEMA",
    "RunResults",
    "load_run",
]
