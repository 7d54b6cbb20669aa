"""What the fast pass leaves behind for selection: per-recording frame features, cached on disk.

A :class:`RecordingFeatures` is small (a few floats per 10 ms frame) and content-addressed by the
recording's sha256, so a resumed run never decodes a file twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.analysis.base import FRAME_S

if TYPE_CHECKING:  # importing the fast pass pulls in scipy.signal (a second); a cached run needs none of it
    from pipeline.analysis.fastpass import Analysis

FEATURES_VERSION = 2
"""Bumped whenever the stored layout or the meaning of a feature changes."""


@dataclass
class RecordingFeatures:
    """One recording as selection sees it.

    ``path`` is the posix path relative to the input root (what manifests show); ``source`` is where
    to read the audio. ``frame_db`` and ``speech_mask`` are on the shared 10 ms grid of the 16 kHz mono
    analysis view; ``channel_weights`` are the mix used for that view (render reuses them).
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

    @property
    def frame_s(self) -> float:
        """Length of one frame (s)."""
        return FRAME_S

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
        )

    def save(self, path: Path) -> None:
        """Write to ``path`` (an ``.npz``) atomically."""
        meta = {
            "version": FEATURES_VERSION,
            "path": self.path,
            "source": self.source,
            "speaker": self.speaker,
            "sha256": self.sha256,
            "duration_s": self.duration_s,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "channel_weights": list(self.channel_weights),
            "segments": [list(s) for s in self.segments],
            "clipped_events": self.clipped_events,
            "metrics": self.metrics,
            "dnsmos_windows": self.dnsmos_windows,
        }
        from pipeline.audio.io import atomic_write_bytes

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(
            path,
            lambda fh: np.savez_compressed(
                fh,
                frame_db=self.frame_db,
                speech_mask=self.speech_mask,
                block_bandwidth_hz=np.asarray(self.block_bandwidth_hz, dtype=np.float32),
                meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            ),
        )

    @classmethod
    def load(cls, path: Path) -> RecordingFeatures:
        """Read what :meth:`save` wrote; ``ValueError`` for another version or a damaged file."""
        with np.load(path) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            if meta.get("version") != FEATURES_VERSION:
                raise ValueError(f"{path}: features version {meta.get('version')} != {FEATURES_VERSION}")
            return cls(
                path=meta["path"],
                source=meta["source"],
                speaker=meta["speaker"],
                sha256=meta["sha256"],
                duration_s=meta["duration_s"],
                sample_rate=meta["sample_rate"],
                channels=meta["channels"],
                channel_weights=tuple(meta["channel_weights"]),
                frame_db=data["frame_db"].astype(np.float32),
                speech_mask=data["speech_mask"].astype(bool),
                segments=[(float(s), float(e)) for s, e in meta["segments"]],
                clipped_events=list(meta["clipped_events"]),
                metrics=meta["metrics"],
                dnsmos_windows=meta["dnsmos_windows"],
                block_bandwidth_hz=data["block_bandwidth_hz"].astype(np.float32),
            )
