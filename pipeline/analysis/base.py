"""Shared conventions for analysers: the frame grid, speech runs and pauses, and the :class:`Analysis`
that holds what was measured.

Every streaming analyser in :mod:`pipeline.analysis` follows one shape::

    meter = SomeMeter(sample_rate=16000)
    for block in blocks:
        meter.process(block)
    measured = meter.finish(...)   # an Analysis holding that meter's metrics

The fast pass merges the meters' results into the :class:`Analysis` of the recording. A metric that
cannot be computed is stored as ``None`` with a reason (never NaN or infinity).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # kept out of the import: a cached run reads features without audio or plotting code
    import pandas as pd
    from matplotlib.figure import Figure

    from pipeline.audio.io import AudioInfo
    from pipeline.audio.mix import ChannelChoice

ANALYSIS_RATE = 16000
"""Sample rate of the mono analysis view (Hz)."""

FRAME_S = 0.01
"""Hop and length of one analysis frame (seconds): 10 ms, 160 samples at 16 kHz."""

FRAME_SAMPLES = round(ANALYSIS_RATE * FRAME_S)

FEATURES_VERSION = 4
"""Bumped whenever the layout :meth:`Analysis.save` writes, or the meaning of a stored value, changes."""

PLOT_AUDIO_MAX_S = 20 * 60.0
"""``Analysis.plot`` re-reads the audio for the waveform and spectrogram up to this duration."""


def fit_mask(mask: np.ndarray, n: int) -> np.ndarray:
    """A per-frame ``mask`` as a bool array of ``n`` frames: cut, or padded with False (non-speech)."""
    out = np.zeros(n, dtype=bool)
    m = min(n, mask.shape[0])
    out[:m] = mask[:m]
    return out


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start indices and (exclusive) end indices of the runs of ``True`` in a 1-D bool array."""
    m = np.asarray(mask, dtype=bool)
    if m.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    padded = np.concatenate([[False], m, [False]]).astype(np.int8)
    diff = np.diff(padded)
    return np.flatnonzero(diff == 1), np.flatnonzero(diff == -1)


def whole_frames(rest: np.ndarray, block: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The complete ``size``-sample frames of ``rest`` followed by ``block``, as rows, and the samples
    left over for the next block (the carry of every streaming framer on the grid)."""
    x = np.concatenate([rest, block]) if rest.size else block
    whole = (x.shape[0] // size) * size
    return x[:whole].reshape(-1, size), x[whole:].copy()


# --------------------------------------------------------------------------------------------------------
# speech runs and pauses
# --------------------------------------------------------------------------------------------------------
#
# A *run* is a stretch of speech whose internal silences are all shorter than ``min_pause_s`` (breaths and
# the gaps between words belong to the run). A *pause* is a silence of at least ``min_pause_s`` between two
# runs. Silence before the first and after the last speech is neither.

Span = tuple[float, float]

LONG_PAUSE_S = 2.0
"""Pauses longer than this are counted in ``pauses_over_2s``."""


def runs_and_pauses(segments: Sequence[Span], *, min_pause_s: float = 0.5) -> tuple[list[Span], list[Span]]:
    """Group speech segments into runs and list the pauses between the runs.

    ``segments`` are sorted, non-overlapping ``(start_s, end_s)`` spans (as
    :func:`pipeline.analysis.vad.segments_from_mask` gives).
    Gaps shorter than ``min_pause_s`` join their neighbours into one run; every gap of ``min_pause_s`` or
    more is a pause ``(start_s, end_s)``. Both lists are in time order; ``len(pauses) == len(runs) - 1``
    whenever there is speech.
    """
    runs = merge_spans(segments, gap_s=min_pause_s)
    return runs, [(before[1], after[0]) for before, after in itertools.pairwise(runs)]


def merge_spans(spans: Iterable[Sequence[float]], *, gap_s: float = 0.0) -> list[Span]:
    """``(start_s, end_s)`` spans of one timeline in time order, those that overlap, touch or lie closer
    than ``gap_s`` merged into one. Spans of several timelines (recordings, kinds of content) are merged
    one timeline at a time."""
    merged: list[Span] = []
    for start, end in sorted((float(a), float(b)) for a, b in spans):
        if merged and (start <= merged[-1][1] or start - merged[-1][1] < gap_s):
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def speech_metrics(segments: Sequence[Span], *, duration_s: float, min_pause_s: float = 0.5) -> Analysis:
    """Summarise speech segments of a recording of ``duration_s`` seconds.

    Keys: ``speech_s`` (total speech), ``speech_ratio`` (``speech_s / duration_s``), ``longest_run_s``,
    ``max_pause_s`` (0.0 with a single run; ``None`` with reason ``no_speech`` when there is no speech),
    ``pauses_over_2s`` (pauses longer than 2 s) and ``pauses`` (list of ``[start_s, end_s]``).
    """
    duration = float(duration_s)
    runs, pauses = runs_and_pauses(segments, min_pause_s=min_pause_s)
    speech_s = sum(end - start for start, end in segments)
    out = Analysis()
    out.put("speech_s", round(speech_s, 6))
    if duration > 0.0:
        out.put("speech_ratio", round(min(1.0, speech_s / duration), 6))
    else:
        out.put("speech_ratio", None, why="empty: the recording has zero duration")
    out.put("longest_run_s", round(max((end - start for start, end in runs), default=0.0), 6))
    if not runs:
        out.put("max_pause_s", None, why="no_speech: no speech was detected")
    else:
        out.put("max_pause_s", round(max((end - start for start, end in pauses), default=0.0), 6))
    out.put("pauses_over_2s", sum(1 for start, end in pauses if end - start > LONG_PAUSE_S))
    out.put("pauses", [[round(start, 6), round(end, 6)] for start, end in pauses])
    return out


@dataclass
class Analysis:
    """What was measured of a recording (or of a window of it, or by one meter).

    ``metrics`` uses the public metric names; ``null_reasons`` says why each ``None`` metric is missing.
    A meter's result holds only its own metrics; the fast pass's (what ``pipeline.analyze`` returns and
    what selection reads, cached by the runner with :meth:`save` and :meth:`load`) holds them all and the
    rest: ``speech_segments`` are the ``(start_s, end_s)`` speech runs (:attr:`segments` as a DataFrame);
    ``frame_db`` and ``speech_mask`` are on the shared 10 ms grid of the 16 kHz mono analysis view, mixed
    with ``channel_choice`` (render reuses its weights). ``block_bandwidth_hz`` is the effective bandwidth of
    each :data:`~pipeline.analysis.bandwidth.BLOCK_S` stretch (NaN: too little speech), so selection can
    tell a band-limited stretch. ``sample_rate`` and ``channels`` are the source's. ``source`` is where the
    audio is read, ``path`` the name manifests show (relative to the run's input; else the file as given),
    ``speaker`` whose recording it is (set by the runner) and ``info`` the file's probe.
    """

    metrics: dict[str, Any] = field(default_factory=dict)
    null_reasons: dict[str, str] = field(default_factory=dict)
    speech_mask: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    frame_db: np.ndarray = field(default_factory=lambda: np.zeros(0))
    speech_segments: list[tuple[float, float]] = field(default_factory=list)
    sample_rate: int = 0
    channels: int = 0
    channel_choice: ChannelChoice | None = None
    dnsmos_windows: list[dict[str, float]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    noise_db: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """The noise level (dBFS) under each frame, in the speech band (:func:`~pipeline.analysis.snr.frame_noise`:
    the pauses near it, else the noise followed under the speech); NaN where it cannot be told."""
    block_bandwidth_hz: np.ndarray = field(default_factory=lambda: np.zeros(0))
    path: str = ""
    source: str = ""
    speaker: str = ""
    info: AudioInfo | None = None

    def put(self, name: str, value: Any, *, why: str | None = None) -> None:
        """Store ``value`` under ``name``; NaN/inf/None become ``None`` with ``why`` recorded.

        ``why`` should read like ``"not_measured: fewer than 0.4 s of audio"`` (a reason code, a colon, a
        human explanation).
        """
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        if value is None:
            self.metrics[name] = None
            self.null_reasons[name] = why or "not_measured: no value"
            return
        self.metrics[name] = value
        self.null_reasons.pop(name, None)

    def merge(self, other: Analysis) -> Analysis:
        """Add another result's metrics into this one (``other`` wins on conflicts) and return self."""
        for name, value in other.metrics.items():
            self.put(name, value, why=other.null_reasons.get(name))
        return self

    @property
    def frame_times(self) -> np.ndarray:
        """Start time (s) of each 10 ms frame."""
        return np.arange(self.speech_mask.size) * FRAME_S

    @property
    def segments(self) -> pd.DataFrame:
        """Speech segments as a DataFrame with ``start_s``, ``end_s`` and ``duration_s``."""
        import pandas as pd

        df = pd.DataFrame(self.speech_segments or None, columns=["start_s", "end_s"], dtype=float)
        df["duration_s"] = df["end_s"] - df["start_s"]
        return df

    @property
    def frames(self) -> pd.DataFrame:
        """Per-10 ms-frame arrays: ``time_s``, ``level_db`` (dBFS) and ``speech`` (bool)."""
        import pandas as pd

        return pd.DataFrame(
            {"time_s": self.frame_times, "level_db": self.frame_db, "speech": self.speech_mask}
        )

    def speech_metrics(self, *, min_pause_s: float) -> dict[str, Any]:
        """Runs and pauses re-derived from the segments with another ``min_pause_s`` (cheap)."""
        from pipeline.audio import arguments

        arguments.number("min_pause_s", min_pause_s, strict=True)
        duration_s = self.metrics["duration_s"]
        return speech_metrics(self.speech_segments, duration_s=duration_s, min_pause_s=min_pause_s).metrics

    def plot(self, *, max_audio_s: float = PLOT_AUDIO_MAX_S) -> Figure:
        """A matplotlib figure: waveform with speech shaded, spectrogram, frame level with noise floor."""
        from pipeline.analysis.plot import plot_analysis

        return plot_analysis(self, max_audio_s=max_audio_s)

    def save(self, path: Path) -> None:
        """Write to ``path`` (an ``.npz``) atomically: the frame arrays as float32/bool arrays (a few bytes
        per 10 ms), the rest as JSON (not the probe ``info``, which the runner keeps in the recording's
        row)."""
        from pipeline.audio.io import atomic_write_bytes

        meta = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in (*_ARRAYS, "info")}
        meta["channel_choice"] = None if self.channel_choice is None else self.channel_choice.to_dict()
        blob = np.frombuffer(json.dumps({"version": FEATURES_VERSION, **meta}).encode(), dtype=np.uint8)
        arrays = {name: np.asarray(getattr(self, name), dtype=dtype) for name, dtype in _ARRAYS.items()}
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, lambda fh: np.savez_compressed(fh, **arrays, meta=blob))

    @classmethod
    def load(cls, path: Path) -> Analysis:
        """Read what :meth:`save` wrote; ``ValueError`` for another version or a damaged file."""
        from pipeline.audio.mix import ChannelChoice

        with np.load(path) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            version = meta.pop("version", None)
            if version != FEATURES_VERSION:
                raise ValueError(f"{path}: features version {version} != {FEATURES_VERSION}")
            if (choice := meta["channel_choice"]) is not None:
                meta["channel_choice"] = ChannelChoice(**{**choice, "weights": tuple(choice["weights"])})
            meta["speech_segments"] = [(float(s), float(e)) for s, e in meta["speech_segments"]]
            return cls(**meta, **{name: data[name].astype(dtype) for name, dtype in _ARRAYS.items()})


_ARRAYS = {
    "frame_db": np.float32,
    "speech_mask": bool,
    "block_bandwidth_hz": np.float32,
    "noise_db": np.float32,
}
"""The fields :meth:`Analysis.save` stores as arrays, with their dtype."""
