"""The demo recordings (``data/samples``) and shorter copies of recordings, cut when a test runs.

An end-to-end run spends most of its time re-checking the clips it renders (DNSMOS on every clip), and a
clip is as long as its family allows of the speech it is cut from. DNSMOS scores 10 s windows and a tail
of 2 s or more, which it tiles to 9 s and scores every second: a 15.5 s clip takes 3 segments, a
14.4 s one 10, a 10-12.5 s one 1 or 2. A test whose point is not a long recording therefore feeds the
runner the first seconds of one (:func:`cut`): same container, codec, sample rate and channels, the
same audio up to the cut, and a clip of 10-12.5 s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "samples"
"""The demo recordings (``data/README.md`` describes each)."""
EXPECTED: dict[str, Any] = json.loads((SAMPLES / "EXPECTED.json").read_text())
"""What the demo recordings are and what a run makes of them (``data/samples/EXPECTED.json``)."""
MEMO = SAMPLES / "alice" / "phone_memo.m4a"
"""Alice's clean phone memo: 53 s of continuous reading, AAC in M4A, 44.1 kHz mono."""

_MUXERS = {".m4a": "ipod", ".mp4": "mp4", ".mp3": "mp3"}
"""Compressed formats, cut by copying their packets (no re-encoding), and their FFmpeg muxers."""


def cut(source: Path, target: Path, seconds: float) -> float:
    """Write the first ``seconds`` of ``source`` to ``target`` (made with its folder); return how many
    seconds ``target`` holds, counted here (not by the pipeline's probe).

    Compressed formats (:data:`_MUXERS`) are cut by copying whole packets with PyAV, so the codec and its
    settings are the original's and the audio is the original's up to the cut (which falls on the
    first packet boundary at or after ``seconds``). PCM and float files that libsndfile reads (WAV, FLAC)
    are rewritten with the original's format and subtype: the same samples.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    muxer = _MUXERS.get(source.suffix.lower())
    if muxer is None:
        info = sf.info(str(source))
        if not info.subtype.startswith("PCM_") and info.subtype not in {"FLOAT", "DOUBLE"}:
            raise ValueError(f"{source}: {info.subtype} is not PCM or float; cutting it would re-encode it")
        as_read = "float64" if info.subtype in {"FLOAT", "DOUBLE"} else "int32"  # integers: no rescaling
        frames = round(seconds * info.samplerate)
        data, rate = sf.read(str(source), frames=frames, dtype=as_read, always_2d=True)
        sf.write(str(target), data, rate, format=info.format, subtype=info.subtype)
        return data.shape[0] / rate
    held = 0
    with av.open(str(source)) as original, av.open(str(target), "w", format=muxer) as copy:
        stream = original.streams.audio[0]
        copied = copy.add_stream_from_template(stream)
        for packet in original.demux(stream):
            if packet.dts is None:  # the demuxer's end-of-stream marker
                continue
            if packet.pts * stream.time_base >= seconds:
                break
            held += packet.duration
            packet.stream = copied
            copy.mux(packet)
        time_base = stream.time_base  # read while the file is open (newer PyAV refuses it after closing)
    return float(held * time_base)


CONVERSATION_HOST = (
    "resem_librispeech_3080-5032-0006.flac",
    "resem_librispeech_3080-5032-0007.flac",
    "resem_librispeech_3080-5032-0009.flac",
)
"""LibriSpeech reader 3080, the host of :func:`conversation`."""
CONVERSATION_GUEST = "resem_librispeech_196-122150-0000.flac"
"""LibriSpeech reader 196, the guest of :func:`conversation`."""


def conversation(speech: Any) -> tuple[Any, list[tuple[float, float]]]:
    """A two-person interview made of real turns, at 16 kHz: 44 s of the host (reader 3080's recordings end
    to end) with the guest (reader 196) answering for 3.0 s after 14 s and 2.5 s after 28 s of it.

    ``speech(name)`` gives a recording of the corpus's ``speech`` folder as a 16 kHz mono array. Returns
    the signal and the guest's turns ``(start_s, end_s)``; the host talks everywhere else.
    """
    import numpy as np

    host = np.concatenate([speech(n) for n in CONVERSATION_HOST])
    guest = speech(CONVERSATION_GUEST)
    s = 16000
    parts = [
        host[: 14 * s],
        guest[: 3 * s],
        host[14 * s : 28 * s],
        guest[4 * s : 13 * s // 2],
        host[28 * s : 44 * s],
    ]
    turns, t = [], 0.0
    for k, part in enumerate(parts):
        if k in (1, 3):
            turns.append((t, t + part.size / s))
        t += part.size / s
    return np.concatenate(parts), turns


INTERVIEW_HOST_TURNS_S = (7.0, 6.0, 8.5, 5.5, 9.0, 6.5)
"""The host's turns in :func:`interview`, in seconds (every window of 10 s or more holds a guest turn)."""
INTERVIEW_GUEST_TURNS_S = (4.0, 3.5, 4.5, 3.0, 5.0)
"""The guest's answers between them, in seconds."""


def interview(speech: Any) -> tuple[Any, list[tuple[float, float]]]:
    """A two-person interview of short turns, at 16 kHz: the host (reader 3080, as in :func:`conversation`)
    talks for :data:`INTERVIEW_HOST_TURNS_S` and the guest (reader 196) answers for
    :data:`INTERVIEW_GUEST_TURNS_S` between them (taken in turn along the guest's recording, wrapping).

    Returns the signal and the guest's turns ``(start_s, end_s)``; the host talks everywhere else.
    """
    import numpy as np

    host = np.concatenate([speech(n) for n in CONVERSATION_HOST])
    guest = speech(CONVERSATION_GUEST)
    s = 16000
    parts, turns = [], []
    h = g = 0
    t = 0.0
    for k, seconds in enumerate(INTERVIEW_HOST_TURNS_S):
        n = round(seconds * s)
        parts.append(host[h : h + n])
        h, t = h + n, t + seconds
        if k < len(INTERVIEW_GUEST_TURNS_S):
            n = round(INTERVIEW_GUEST_TURNS_S[k] * s)
            if g + n > guest.size:
                g = 0
            parts.append(guest[g : g + n])
            turns.append((t, t + INTERVIEW_GUEST_TURNS_S[k]))
            g, t = g + n, t + INTERVIEW_GUEST_TURNS_S[k]
    return np.concatenate(parts), turns
