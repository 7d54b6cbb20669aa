"""Check a clone against its speaker: does the new voice sound like the enrollment clip?

After a voice is created, voiceprep synthesises a short fixed text with it (the preview, so nothing is
synthesised twice) and compares that synthesis with the clip the voice was made from:

- ``similarity``: cosine of the CAM++ speaker embeddings (:func:`pipeline.analysis.speaker.embed`) of the
  whole synthesis and of the whole clip, both at 16 kHz mono;
- ``dnsmos_ovrl``: DNSMOS P.835 overall quality (1-5) of the synthesis (``None`` when it is under DNSMOS's
  minimum length or silent);
- the provider's own signals (Qwen's ``fallback_mode``) are already in the ledger row's ``details``.

The result goes into the row's ``details["clone_check"]`` (:func:`clone_check`); a similarity under
:data:`CLONE_SIMILARITY_MIN` flags the clone with the reason ``clone_dissimilar``.

**The threshold** (0.55) comes from this project's measurements of the same model on real recordings
(BENCHMARKS.md, "CAM++ against GE2E", ``benchmarks/speaker_bench.py --model campplus``: 31 files of 17
speakers): files of one speaker 0.68-0.98, different speakers at most 0.54 (most near 0.1). Under 0.55 a
synthesis is in the range of a different speaker and below every same-speaker pair measured. (GE2E, the
model until 2026-12-08, needed 0.70: its different speakers reached 0.79.) A synthesis is a different channel
from a recording (a codec, a vocoder, a short text), which lowers the cosine of a good clone too, so the
threshold sits at the low end; it is not yet confirmed against real services' clones.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.analysis.base import ANALYSIS_RATE

CLONE_SIMILARITY_MIN = 0.55
"""A clone whose synthesis is less similar than this to its enrollment clip is flagged (see the module)."""
CLONE_CHECK_KEY = "clone_check"
"""The key of the check in a ledger row's ``details``."""
DEFAULT_CHECK_TEXT = "Hello, this is my voice. I am reading a short sentence to check how it sounds."
"""What ``voices check`` synthesises for a voice never checked before (``submit`` uses its preview text)."""
DISSIMILAR_REASON = "clone_dissimilar"
"""The reason code of a flagged clone (:mod:`pipeline.errors`)."""


def load_16k(path: str | Path) -> np.ndarray:
    """Decode an audio file into the 16 kHz mono float32 analysis signal."""
    from pipeline.audio.io import read
    from pipeline.audio.resample import resample

    audio, rate = read(path)
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    return resample(mono, in_rate=rate, out_rate=ANALYSIS_RATE)


def clone_flag(similarity: float | None) -> str | None:
    """``clone_dissimilar`` when ``similarity`` is under :data:`CLONE_SIMILARITY_MIN`, else ``None``."""
    return DISSIMILAR_REASON if similarity is not None and similarity < CLONE_SIMILARITY_MIN else None


def check_clone(
    synthesis: str | Path,
    clip: str | Path,
    *,
    text: str,
    clip_sha256: str | None = None,
    now: _dt.datetime | None = None,
) -> dict[str, Any]:
    """Compare a synthesis made with a clone (``synthesis``, a file) with its enrollment ``clip`` (a file).

    Returns the check as the ledger stores it in ``details["clone_check"]``: ``similarity``, ``dnsmos_ovrl``
    (None under DNSMOS's minimum length), ``text``, ``checked_at``, ``threshold``, ``clip_sha256`` (the clip
    checked against, when given: a later submit does not check the same clip and text again) and, for a
    flagged clone only, ``flag`` (``clone_dissimilar``).

    Raises what decoding raises (:class:`~pipeline.errors.AudioReadError`) for a file that cannot be read.
    """
    from pipeline.analysis.dnsmos import dnsmos
    from pipeline.analysis.speaker import cosine, embed

    synth = load_16k(synthesis)
    similarity = float(cosine(embed(synth), embed(load_16k(clip))))
    ovrl = dnsmos(synth).metrics.get("dnsmos_ovrl")
    when = (now or _dt.datetime.now(_dt.UTC)).astimezone(_dt.UTC).isoformat(timespec="seconds")
    check: dict[str, Any] = {
        "similarity": round(similarity, 4),
        "dnsmos_ovrl": None if ovrl is None else round(ovrl, 3),
        "text": text,
        "checked_at": when,
        "threshold": CLONE_SIMILARITY_MIN,
        "clip_sha256": clip_sha256,
    }
    flag = clone_flag(similarity)
    if flag:
        check["flag"] = flag
    return check


def stored_check(details: dict[str, Any]) -> dict[str, Any] | None:
    """The clone check stored in a ledger row's ``details``, if any (a dict as :func:`check_clone` returns)."""
    check = details.get(CLONE_CHECK_KEY)
    return check if isinstance(check, dict) else None


def dissimilar_warning(similarity: float) -> str:
    """The warning line of a flagged clone: the reason code, the figure against the threshold, the hint."""
    from pipeline.errors import reason_hint

    return (
        f"{DISSIMILAR_REASON}: the preview is {similarity:.2f} similar to the enrollment clip (under "
        f"{CLONE_SIMILARITY_MIN:.2f}); {reason_hint(DISSIMILAR_REASON)}"
    )


def describe_check(check: dict[str, Any]) -> str:
    """One line for ``voices show``: similarity against the threshold, DNSMOS OVRL, the flag, the text, when."""
    similarity = check.get("similarity")
    ovrl = check.get("dnsmos_ovrl")
    parts = [
        f"similarity {similarity:.2f}" if isinstance(similarity, int | float) else "similarity -",
        f"(flag under {check.get('threshold', CLONE_SIMILARITY_MIN)})",
        f"DNSMOS OVRL {ovrl:.2f}" if isinstance(ovrl, int | float) else "DNSMOS OVRL -",
    ]
    if check.get("flag"):
        parts.append(f"FLAGGED {check['flag']}")
    parts.append(f"text {check.get('text')!r} at {check.get('checked_at')}")
    return ", ".join(parts)
