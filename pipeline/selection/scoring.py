"""Score parts in [0, 1] and the weighted total that ranks candidate clips.

Each part maps one measurement to [0, 1] (1 = best) with a linear ramp between a "poor" and a "good"
value, named below; ``docs/selection.md`` gives the reasons for each number. The total is the weighted
mean of the parts that could be measured: a part that is ``NaN`` (not measurable, e.g. no DNSMOS in the
fast pass) is left out and the remaining weights are renormalised, so an unknown value neither helps
nor hurts. The SNR is the exception: unknown scores as doubtful (:data:`SNR_UNKNOWN_DB`). A window that
crosses a part boundary then pays :data:`CROSSING_PENALTY` (:func:`penalised`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pipeline.rules.families import FamilySpec

WEIGHTS: dict[str, float] = {
    "snr": 0.25,
    "dnsmos": 0.25,
    "clipping": 0.15,
    "reverb": 0.15,
    "duration": 0.05,
    "bandwidth": 0.05,
    "speech_ratio": 0.05,
    "stability": 0.05,
}
"""Weight of each part in the total (they sum to 1).

Duration is a tie-breaker between windows of like quality, never a reason to pad with poorer audio: at
0.10 it bought 10 s more of MiniMax clip for 4.7 dB of SNR, so a clean stretch shorter than the aim lost
to a longer window that ran into the noise or reverb around it (whose local reverb and bandwidth the fast
pass cannot see). ``benchmarks/selection_bench.py`` measures this; the freed 0.05 went to DNSMOS, the only
local measure of reverb and of noise that the VAD mistakes for speech.
"""

SNR_POOR_DB = 5.0
"""SNR (dB) scored 0: speech barely above the noise."""

SNR_GOOD_DB = 40.0
"""SNR (dB) scored 1: a quiet studio (Azure recommends 35 dB)."""

SNR_UNKNOWN_DB = 15.0
"""The SNR a window whose noise cannot be measured is scored as: doubtful (the families' fail level for
``low_snr``), never clean. Unlike the other parts it is not left out when unknown: a window of speech
with no pause and too little audio to follow the noise under it would otherwise rank on its other
parts as if it were clean."""

CLIP_EVENT_SCALE = 1.0
"""Clipping part is ``exp(-events / scale)``: one clipped event (an audible click) costs 63 %."""

BANDWIDTH_POOR_HZ = 4000.0
"""Effective bandwidth scored 0: telephone band."""

BANDWIDTH_GOOD_HZ = 12000.0
"""Effective bandwidth scored 1: everything a 24 kHz delivery can carry."""

SPEECH_RATIO_POOR = 0.5
"""Share of speech in the (shortened) window scored 0: half the clip is silence."""

SPEECH_RATIO_GOOD = 0.9
"""Share of speech scored 1: natural read speech with phrase gaps."""

LEVEL_IQR_GOOD_DB = 3.0
"""Spread of per-second speech levels scored 1: steady reading."""

LEVEL_IQR_POOR_DB = 12.0
"""Spread scored 0: the voice comes and goes (distance, gain riding, shouting)."""

DNSMOS_POOR_OVRL = 2.0
"""DNSMOS OVRL scored 0 (the gates fail clips under 2.3)."""

DNSMOS_GOOD_OVRL = 3.3
"""DNSMOS OVRL scored 1: clean read-speech corpora (LJSpeech 3.30, LibriTTS 3.25)."""


CROSSING_PENALTY = 0.05
"""Taken off the total of a window that crosses a part boundary (a long pause, a jump of the noise floor,
a change of bandwidth: :mod:`pipeline.selection.parts`).

The fast measures cannot hear everything (local reverb, noise the VAD takes for speech, clipping below the
recording's peak), so a window reaching over a boundary into a part that is worse in such a way scores
as well as the window that stays in the clean part, and non-maximum suppression then keeps only one of
the two: a clean stretch was lost that way (issue 8). Crossing has to earn its place by more than the
duration part can give (its weight, 0.05), so a window inside one part wins every near tie, and crossing
is still chosen when it is clearly better or when no part holds a clip on its own.
"""


def ramp(x: np.ndarray | float, lo: float, hi: float) -> np.ndarray:
    """Linear map of ``x`` from ``lo`` (0) to ``hi`` (1), clipped to [0, 1]; NaN stays NaN.

    ``lo > hi`` ramps downwards (smaller is better).
    """
    v = np.asarray(x, dtype=np.float64)
    return np.clip((v - lo) / (hi - lo), 0.0, 1.0)


def _known_or(x: np.ndarray | float, default: float) -> np.ndarray:
    """``x`` with NaN replaced by ``default``."""
    v = np.asarray(x, dtype=np.float64)
    return np.where(np.isnan(v), default, v)


def duration_part(duration_s: np.ndarray | float, spec: FamilySpec) -> np.ndarray:
    """1 at the family's aim, falling linearly to 0 at the far end of its duration window."""
    d = np.asarray(duration_s, dtype=np.float64)
    window = spec.delivery.duration_s
    reach = max(window.aim - window.min, window.max - window.aim, 1e-6)
    return np.clip(1.0 - np.abs(d - window.aim) / reach, 0.0, 1.0)


def parts(m: Mapping[str, Any], duration_s: np.ndarray | float, spec: FamilySpec) -> dict[str, np.ndarray]:
    """Every score part of measures ``m`` (``snr_db``, ``clipped_events``, ``reverb_score``, ``bandwidth_hz``,
    ``speech_ratio``, ``level_iqr_db``, ``dnsmos_ovrl``): arrays for many windows or one clip's scalars.
    A part is NaN where its measure is."""
    return {
        "snr": ramp(_known_or(m["snr_db"], SNR_UNKNOWN_DB), SNR_POOR_DB, SNR_GOOD_DB),
        "dnsmos": ramp(m["dnsmos_ovrl"], DNSMOS_POOR_OVRL, DNSMOS_GOOD_OVRL),
        "clipping": np.exp(-np.asarray(m["clipped_events"], dtype=np.float64) / CLIP_EVENT_SCALE),
        "reverb": 1.0 - np.clip(np.asarray(m["reverb_score"], dtype=np.float64), 0.0, 1.0),
        "duration": duration_part(duration_s, spec),
        "bandwidth": ramp(m["bandwidth_hz"], BANDWIDTH_POOR_HZ, BANDWIDTH_GOOD_HZ),
        "speech_ratio": ramp(m["speech_ratio"], SPEECH_RATIO_POOR, SPEECH_RATIO_GOOD),
        "stability": ramp(m["level_iqr_db"], LEVEL_IQR_POOR_DB, LEVEL_IQR_GOOD_DB),
    }


def total(score_parts: Mapping[str, np.ndarray | float]) -> np.ndarray:
    """Weighted mean of the parts that are given and not NaN (0 when none is)."""
    num: np.ndarray | float = 0.0
    den: np.ndarray | float = 0.0
    for name, weight in WEIGHTS.items():
        value = np.asarray(score_parts.get(name, np.nan), dtype=np.float64)
        known = ~np.isnan(value)
        num = num + np.where(known, value, 0.0) * weight
        den = den + known * weight
    num_a, den_a = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.where(den_a > 0, num_a / np.maximum(den_a, 1e-12), 0.0)


def penalised(score: np.ndarray | float, crossings: np.ndarray | float) -> np.ndarray:
    """``score`` less :data:`CROSSING_PENALTY` where a window crosses at least one part boundary (never
    below 0)."""
    penalty = CROSSING_PENALTY * (np.asarray(crossings) > 0)
    return np.maximum(np.asarray(score, dtype=np.float64) - penalty, 0.0)
