"""The contract between selection and rendering: which spans of which recordings make a clip.

Selection (:mod:`pipeline.selection.select`) produces :class:`ClipPlan` objects; rendering (:mod:`pipeline.render.clip`)
turns one plan into a file. Times are seconds in the *source* recording's timeline. Both read a piece's
audio as :class:`PieceAudio` (the slow pass at 16 kHz, the renderer at its working rate).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from pipeline.errors import InvalidArgument


@dataclass(frozen=True)
class Piece:
    """One span of one recording, from the start of its first word to the end of its last.

    ``start_s``/``end_s`` lie on speech boundaries (never inside a word); the renderer adds room tone
    before and after from the bounding pauses. ``long_pauses`` are pauses inside the span longer than
    the family allows: the renderer shortens each to the family's ``pause_target_s`` by cutting at its
    quietest part. ``channel_weights`` is the channel mix the analysis used (mono = block @ weights).
    """

    path: str
    source: str
    start_s: float
    end_s: float
    channel_weights: tuple[float, ...]
    long_pauses: tuple[tuple[float, float], ...] = ()
    lead_room_s: float = 0.0
    """Silence available before ``start_s`` (s) inside the recording, up to the previous speech."""
    tail_room_s: float = 0.0
    """Silence available after ``end_s`` (s) inside the recording, up to the next speech."""

    @property
    def span_s(self) -> float:
        """``end_s - start_s``."""
        return self.end_s - self.start_s

    def to_dict(self) -> dict[str, Any]:
        """Plain data for manifests."""
        d = asdict(self)
        d["channel_weights"] = list(self.channel_weights)
        d["long_pauses"] = [list(p) for p in self.long_pauses]
        return d


@dataclass
class PieceAudio:
    """A piece's mono samples with some of the silence around it: ``x[k]`` lies at ``t0 + k / rate`` s."""

    piece: Piece
    x: np.ndarray
    t0: float
    rate: int

    def at(self, t: float) -> int:
        """Index of the sample at source time ``t``, within the samples read."""
        return min(max(round((t - self.t0) * self.rate), 0), self.x.shape[0])

    def time(self, index: int) -> float:
        """Source time (s) of sample ``index``."""
        return self.t0 + index / self.rate

    def cut(self, start_s: float, end_s: float) -> np.ndarray:
        """Samples of ``[start_s, end_s)``, within the samples read."""
        a = self.at(start_s)
        return self.x[a : max(self.at(end_s), a)]

    @property
    def start(self) -> int:
        """Index of the piece's ``start_s``."""
        return self.at(self.piece.start_s)

    @property
    def end(self) -> int:
        """Index of the piece's ``end_s``."""
        return self.at(self.piece.end_s)

    @cached_property
    def cumsq(self) -> np.ndarray:
        """Prefix sums of ``x**2`` with a leading 0: the energy of any stretch in O(1)."""
        return np.concatenate([[0.0], np.cumsum(self.x * self.x)])


def read_piece(piece: Piece, *, lead_s: float, tail_s: float, rate: int | None = None) -> PieceAudio:
    """The piece's samples mixed to mono with its ``channel_weights``, from ``lead_s`` before its start to
    ``tail_s`` after its end, at ``rate`` (``None``: the file's own rate)."""
    from pipeline.audio import io
    from pipeline.audio.resample import resample

    t0 = max(0.0, piece.start_s - lead_s)
    data, native = io.read_window(piece.source, start_s=t0, end_s=piece.end_s + tail_s)
    weights = np.asarray(piece.channel_weights, dtype=np.float32)
    if data.shape[1] != weights.size:
        raise InvalidArgument(
            f"piece {piece.path}: channel_weights has {weights.size} entries, the file has "
            f"{data.shape[1]} channel(s)"
        )
    mono = np.ascontiguousarray(data @ weights, dtype=np.float32)
    rate = native if rate is None else rate
    return PieceAudio(piece, resample(mono, in_rate=native, out_rate=rate), t0, rate)


@dataclass
class ClipPlan:
    """A candidate clip: its pieces in clip order, the expected result and how it scored.

    ``duration_s`` is the expected length of the rendered clip (pieces after pause shortening, plus
    joins and edge room tone); ``longest_run_s`` and ``max_pause_s`` are the expected speech figures
    after shortening, judged with the family's ``min_pause_s``.
    """

    family: str
    speaker: str
    pieces: list[Piece]
    duration_s: float
    longest_run_s: float
    max_pause_s: float
    score: float
    score_parts: dict[str, float] = field(default_factory=dict)
    measures: dict[str, Any] = field(default_factory=dict)
    """Window-level measurements used for scoring (snr_db, dnsmos_ovrl, ...)."""

    @property
    def assembled(self) -> bool:
        """True when the clip joins more than one piece."""
        return len(self.pieces) > 1

    def to_dict(self) -> dict[str, Any]:
        """Plain data for manifests (``alternatives`` and debugging)."""
        return {
            "family": self.family,
            "speaker": self.speaker,
            "assembled": self.assembled,
            "pieces": [p.to_dict() for p in self.pieces],
            "segments": [{"path": p.path, "start_s": p.start_s, "end_s": p.end_s} for p in self.pieces],
            "duration_s": round(self.duration_s, 3),
            "longest_run_s": round(self.longest_run_s, 3),
            "max_pause_s": round(self.max_pause_s, 3),
            "score": round(self.score, 4),
            "score_parts": {k: round(v, 4) for k, v in self.score_parts.items()},
            "measures": self.measures,
        }
