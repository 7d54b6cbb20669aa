"""What the fast pass leaves behind for selection: per-recording frame features, cached on disk.

A :class:`RecordingFeatures` is small (a few floats per 10 ms frame) and content-addressed by the
recording's sha256, so a resumed run never decodes a file twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # importing the fast pass pulls in scipy.signal (a second); a cached run needs none of it
    from pipeline.analysis.fastpass import Analysis

FEATURES_VERSION = 3
"""Bumped whenever the stored layout or the meaning of a feature changes."""


@dataclass
class RecordingFeatures:
    """One recording as selection sees it.

    ``path`` is the posix path relative to the input root (what manifests show); ``source`` is where
    to read the audio. ``frame_db`` (levels of the speech band: the view above the render's high-pass),
    ``speech_mask`` and ``noise_db`` (the noise under each frame, NaN where unknown) are on the shared
    10 ms grid of the 16 kHz mono analysis view; ``channel_weights`` are the mix used for that view
    (render reuses them).
    """

    path: str
    source: str
    speaker: str
    sha256: str
    duration_s: float
    sample_rate: int
    channels: int
    channel_weights: tuple[float, ...]
    frame_db: np.ndarray
    speech_mask: np.ndarray
    segments: list[tuple[float, float]]
    clipped_events: list[float]
    metrics: dict[str, Any]
    dnsmos_windows: list[dict[str, float]] = field(default_factory=list)
    block_bandwidth_hz: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Effective bandwidth (Hz) of each ``BLOCK_S`` stretch; NaN where a block has too little speech."""
    noise_db: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """The fast pass's noise level under each frame (dBFS; empty: derived from the pauses)."""

    @classmethod
    def from_fast_pass(
        cls,
        result: Analysis,
        *,
        path: str,
        source: str,
        speaker: str,
        sha256: str,
    ) -> RecordingFeatures:
        """Keep what selection needs from a fast-pass result."""
        metrics = dict(result.metrics)
        return cls(
            path=path,
            source=source,
            speaker=speaker,
            sha256=sha256,
            duration_s=float(metrics.get("duration_s") or 0.0),
            sample_rate=result.sample_rate,
            channels=result.channels,
            channel_weights=tuple(float(w) for w in result.channel_choice.weights),
            frame_db=np.asarray(result.frame_db, dtype=np.float32),
            speech_mask=np.asarray(result.speech_mask, dtype=bool),
            segments=[(float(s), float(e)) for s, e in result.speech_segments],
            clipped_events=[float(t) for t in (metrics.get("clipped_events") or [])],
            metrics=metrics,
            dnsmos_windows=list(result.dnsmos_windows),
            block_bandwidth_hz=np.asarray(result.block_bandwidth_hz, dtype=np.float32),
            noise_db=np.asarray(result.noise_db, dtype=np.float32),
        )

    def save(self, path: Path) -> None:
        """Write to ``path`` (an ``.npz``) atomically: the arrays as arrays, the rest as JSON ``meta``."""
        from pipeline.audio.io import atomic_write_bytes

        meta = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _ARRAYS}
        blob = np.frombuffer(json.dumps({"version": FEATURES_VERSION, **meta}).encode(), dtype=np.uint8)
        arrays = {name: np.asarray(getattr(self, name), dtype=dtype) for name, dtype in _ARRAYS.items()}
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, lambda fh: np.savez_compressed(fh, **arrays, meta=blob))

    @classmethod
    def load(cls, path: Path) -> RecordingFeatures:
        """Read what :meth:`save` wrote; ``ValueError`` for another version or a damaged file."""
        with np.load(path) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            version = meta.pop("version", None)
            if version != FEATURES_VERSION:
                raise ValueError(f"{path}: features version {version} != {FEATURES_VERSION}")
            meta["channel_weights"] = tuple(meta["channel_weights"])
            meta["segments"] = [(float(s), float(e)) for s, e in meta["segments"]]
            return cls(**meta, **{name: data[name].astype(dtype) for name, dtype in _ARRAYS.items()})


_ARRAYS = {
    "frame_db": np.float32,
    "speech_mask": bool,
    "block_bandwidth_hz": np.float32,
    "noise_db": np.float32,
}
"""The fields :meth:`RecordingFeatures.save` stores as arrays, with their dtype."""
