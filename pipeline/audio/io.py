"""Audio file I/O: probe a file, stream-decode it in bounded blocks, read a window, write atomically.

Two decoding backends. libsndfile (through ``soundfile``) is tried first: WAV in all its flavours, RF64,
W64, FLAC, OGG Vorbis/Opus, MP3, AIFF. When libsndfile cannot open or decode a file, FFmpeg (through
PyAV, ``av``) takes over: M4A/AAC, ALAC, Opus in WebM, the audio of MP4/MOV/MKV/WebM, AMR, WMA, ...

Every data problem is raised as :class:`~pipeline.errors.AudioReadError` with a stable reason code from
:mod:`pipeline.errors`; bad arguments to the public functions raise :class:`~pipeline.errors.InvalidArgument`
(checked once, at the public function; the private helpers trust their inputs). Float files with NaN or
infinite samples decode with those samples as 0. What the decoders print while probing and decoding is
kept as notes (:mod:`pipeline.audio.notes`), never written to the terminal. See ``docs/audio-io.md`` for
the formats, the measured window-read accuracy and the reason codes.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import itertools
import math
import os
import re
import secrets
import stat
import struct
import weakref
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import numpy as np
import soundfile as sf

from pipeline.audio.arguments import as_path, integer, number, renamed, signal
from pipeline.audio.notes import captured, captured_steps
from pipeline.errors import AudioReadError, InvalidArgument, reason_message

__all__ = [
    "DEFAULT_MAX_INPUT_S",
    "PROBE_FIELDS",
    "AudioInfo",
    "AudioReader",
    "atomic_write_bytes",
    "probe",
    "probe_row",
    "read",
    "read_window",
    "write",
]

PathArg = str | os.PathLike[str]

DEFAULT_MAX_INPUT_S: float = 4 * 3600.0
"""Inputs longer than this (from the header) are refused with ``too_long`` unless the caller says otherwise."""

_SF_CHUNK = 65536  # frames per libsndfile read call
_SALVAGE_STEP = 256  # frames per read when recovering the good part of a corrupt libsndfile stream
_PREROLL_S = 0.5  # decode this much before a seek target; covers AAC/MP3/Opus/Vorbis decoder warm-up
_MAX_CHANNELS = 256  # more than this in a header is corruption for voice recordings, not a real file
_MAX_CONSECUTIVE_PACKET_ERRORS = 64  # give up on an FFmpeg stream after this many bad packets in a row
_TIMING_FRAMES = 24  # frames decoded from the start to measure timestamp rounding
_ANCHOR_FRAMES = 8  # frames after a seek whose timestamps are combined to place the decoded audio
_REACH_MAX_FRAMES = 256  # probe's end check gives up (unknown) after decoding this many frames
_TRUNCATED_RATIO = 0.9  # "clearly short": below 90 % of the promised frames ...
_TRUNCATED_MIN_S = 0.5  # ... and more than 0.5 s short
_TOO_LONG_SLACK_S = 1.0  # a lying header may overrun max_input_s by this much before decoding stops
_SF_ERRORS = (RuntimeError, OSError, ValueError, TypeError, OverflowError, MemoryError)


@functools.cache
def _av() -> Any:
    """PyAV, imported on first use: 16 MB and 0.06 s that a process reading and writing only what
    libsndfile handles (WAV, FLAC, ...) never needs."""
    import av

    return av


@functools.cache
def _av_errors() -> tuple[type[BaseException], ...]:
    """What an FFmpeg call may raise on a bad file (an ``except`` evaluates it only when one is raised)."""
    return (_av().FFmpegError, OSError, ValueError, TypeError, EOFError, UnicodeDecodeError, MemoryError)


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header (and its first decoded frame) says about one of its audio streams.

    ``frames`` and ``duration_s`` come from the header or stream metadata and are ``None`` only when the
    container states no length and none can be derived from its packet timestamps. ``sample_format`` is
    ``pcm8``/``pcm16``/``pcm24``/``pcm32``/``float32``/``float64`` for PCM and lossless codecs and the
    decoder's output format (e.g. ``fltp``) for lossy ones. ``warnings`` holds ``truncated`` when the
    stream cannot be decoded up to (nearly) the length its header states.
    """

    path: str
    format: str
    codec: str
    sample_rate: int
    channels: int
    frames: int | None
    duration_s: float | None
    sample_format: str
    bytes: int
    sha256: str | None
    backend: str
    stream_index: int
    audio_streams: int
    warnings: tuple[str, ...] = ()


PROBE_FIELDS = ("format", "codec", "sample_rate", "channels", "duration_s", "sample_format", "bytes")
"""What a probe tells about a file, in :class:`AudioInfo`'s order: the ``probe`` of a recording's manifest
row, the columns of ``voiceprep probe`` (whose rows add ``sha256``) and of the report's tables."""


def _stream_args(path: object, stream_index: object, max_input_s: object) -> tuple[Path, int, float | None]:
    """The checked (path, stream_index, max_input_s) arguments every public reader takes."""
    limit = None if max_input_s is None else number("max_input_s", max_input_s, strict=True)
    return as_path("path", path), integer("stream_index", stream_index, minimum=0), limit


# --------------------------------------------------------------------------------------------------------
# file checks, hashing, truncation
# --------------------------------------------------------------------------------------------------------


def _fail(code: str, path: Path, detail: str) -> AudioReadError:
    return AudioReadError(code, f"{path}: {detail}")


def _check_file(path: Path) -> int:
    """Return the file size; raise ``not_found``/``unreadable``/``empty`` for files that cannot be used."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        detail = "broken symbolic link" if os.path.islink(path) else "no such file or folder"
        raise _fail("not_found", path, detail) from None
    except OSError as exc:
        detail = (
            "symbolic link loop" if exc.errno == errno.ELOOP else f"cannot stat the file ({exc.strerror})"
        )
        raise _fail("unreadable", path, detail) from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise _fail("unreadable", path, f"is {kind}")
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise _fail("unreadable", path, f"cannot open the file ({exc.strerror or exc})") from None
    if st.st_size == 0:
        raise _fail("empty", path, "the file has zero bytes")
    return st.st_size


def sha256_file(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes, read in chunks; AudioReadError ``unreadable`` on failure."""
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError as exc:
        raise _fail("unreadable", Path(path), f"cannot read the file ({exc.strerror or exc})") from None


def _enough_frames(expected: int, sample_rate: int) -> int:
    """Frames a decode must reach not to count as ``truncated``: 90 % of ``expected``, or all but 0.5 s."""
    return math.ceil(min(_TRUNCATED_RATIO * expected, expected - _TRUNCATED_MIN_S * sample_rate))


def _declared_frames(path: Path, frames: int) -> int | None:
    """Frames a WAV's ``data`` chunk or an AIFF's ``COMM`` chunk promises; ``None`` for other files.

    libsndfile silently shortens such files to what is there (``frames``), so the header is the only way
    to notice one that was cut short. WAV sizes ``0`` and ``0xFFFFFFFF`` mean "length unknown" (an
    unfinished or streamed recording), not a promise.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            riff = head[:4] == b"RIFF" and head[8:12] == b"WAVE"
            if not riff and not (head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC")):
                return None
            for _ in range(64):  # a handful of chunks come before the audio; bound the walk anyway
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return None
                chunk_id, size = chunk[:4], struct.unpack("<I" if riff else ">I", chunk[4:])[0]
                if chunk_id == b"COMM":
                    body = fh.read(6)
                    return int(struct.unpack(">I", body[2:])[0]) if len(body) == 6 else None
                if chunk_id == b"data":  # scaled from bytes: right for every codec a WAV may hold
                    present = os.fstat(fh.fileno()).st_size - fh.tell()
                    return frames * size // max(present, 1) if present < size < 0xFFFFFFFF else frames
                fh.seek(size + (size & 1), os.SEEK_CUR)
    except OSError:
        return None
    return None


# --------------------------------------------------------------------------------------------------------
# libsndfile backend: probe
# --------------------------------------------------------------------------------------------------------

_SF_FORMAT_NAMES = {"WAV": "wav", "WAVEX": "wav", "AIFF": "aiff", "OGG": "ogg", "MP3": "mp3"}
_BIG_ENDIAN_FORMATS = {"AIFF", "AU", "CAF"}
# subtype -> (codec, sample_format); lossy codecs report the format FFmpeg's decoder produces for them.
_SF_SUBTYPES = {
    "PCM_S8": ("pcm_s8", "pcm8"),
    "PCM_U8": ("pcm_u8", "pcm8"),
    "PCM_16": ("pcm_s16{e}", "pcm16"),
    "PCM_24": ("pcm_s24{e}", "pcm24"),
    "PCM_32": ("pcm_s32{e}", "pcm32"),
    "FLOAT": ("pcm_f32{e}", "float32"),
    "DOUBLE": ("pcm_f64{e}", "float64"),
    "VORBIS": ("vorbis", "fltp"),
    "OPUS": ("opus", "fltp"),
    "MPEG_LAYER_I": ("mp1", "fltp"),
    "MPEG_LAYER_II": ("mp2", "fltp"),
    "MPEG_LAYER_III": ("mp3", "fltp"),
    "ULAW": ("pcm_mulaw", "s16"),
    "ALAW": ("pcm_alaw", "s16"),
    "IMA_ADPCM": ("adpcm_ima", "s16"),
    "MS_ADPCM": ("adpcm_ms", "s16"),
    "GSM610": ("gsm", "s16"),
    "ALAC_16": ("alac", "pcm16"),
    "ALAC_20": ("alac", "pcm24"),
    "ALAC_24": ("alac", "pcm24"),
    "ALAC_32": ("alac", "pcm32"),
}


def _sf_names(sf_format: str, subtype: str) -> tuple[str, str, str]:
    """Map libsndfile's (format, subtype) to our (format, codec, sample_format) names."""
    codec, sample_format = _SF_SUBTYPES.get(subtype, (subtype.lower(), "s16"))
    codec = (
        "flac" if sf_format == "FLAC" else codec.format(e="be" if sf_format in _BIG_ENDIAN_FORMATS else "le")
    )
    return _SF_FORMAT_NAMES.get(sf_format, sf_format.lower()), codec, sample_format


_PCM16_SCALE = np.float32(1.0 / 32768.0)
"""libsndfile's 16-bit to float scale: every ``int16 * 2**-15`` is exact in float32, so reading 16-bit PCM as
integers and scaling them gives its float32 samples bit for bit (``tests/test_io*.py`` compare)."""


def _probe_soundfile(path: Path, size: int, stream_index: int, max_input_s: float | None) -> AudioInfo | None:
    """Probe with libsndfile; ``None`` when libsndfile cannot use the file (FFmpeg gets a try)."""
    try:
        with sf.SoundFile(str(path)) as fh:
            rate, channels, frames = fh.samplerate, fh.channels, fh.frames
            # An unfinished WAV (data size 0) looks empty to libsndfile; FFmpeg reads such files to the end
            # (and names the one audio stream of a file asked for another).
            if rate <= 0 or not 0 < channels <= _MAX_CHANNELS or frames <= 0 or stream_index != 0:
                return None
            if max_input_s is not None and frames / rate > max_input_s:
                raise _fail(
                    "too_long", path, f"{frames / rate:.1f} s is longer than the maximum {max_input_s:g} s"
                )
            if len(fh.read(min(1024, frames), dtype="float32", always_2d=True)) == 0:
                return None
            fmt, codec, sample_format = _sf_names(fh.format, fh.subtype)
    except _SF_ERRORS:
        return None
    return AudioInfo(
        path=str(path),
        format=fmt,
        codec=codec,
        sample_rate=int(rate),
        channels=int(channels),
        frames=int(frames),
        duration_s=frames / rate,
        sample_format=sample_format,
        bytes=size,
        sha256=None,
        backend="soundfile",
        stream_index=0,
        audio_streams=1,
    )


# --------------------------------------------------------------------------------------------------------
# FFmpeg (PyAV) backend
# --------------------------------------------------------------------------------------------------------

_MOV_BRANDS = {"m4a": "m4a", "m4b": "m4a", "m4p": "m4a", "qt": "mov"}
# MP4/MOV state the length to the sample (edit lists): FFmpeg removes AAC priming itself but leaves the
# encoder's tail padding, which that length cuts off. Other containers' lengths are estimates, never a cut.
_SAMPLE_EXACT_FORMATS = {*_MOV_BRANDS.values(), "mp4", "3gp", "3g2"}
_PCM_CODEC = re.compile(r"^pcm_([suf])(8|16|24|32|64)")
_LOSSLESS_CODECS = {"alac", "flac", "wavpack", "tta", "ape", "mlp", "truehd"}
_DECODED_BITS = {"u8": "pcm8", "s16": "pcm16", "s32": "pcm32"}


def _av_open(path: Path) -> Any:
    return _av().open(str(path), mode="r", metadata_errors="ignore")


def _av_format_name(container: Any, path: Path) -> str:
    names = str(container.format.name).split(",")
    if "mov" in names or "mp4" in names:
        brand = str(container.metadata.get("major_brand", "")).strip().lower()
        if brand in _MOV_BRANDS:
            return _MOV_BRANDS[brand]
        return next((name for name in ("3g2", "3gp") if brand.startswith(name)), "mp4")
    if "matroska" in names:
        # The EBML header near the start names the DocType: "webm" or "matroska".
        with contextlib.suppress(OSError), open(path, "rb") as fh:
            return "webm" if b"webm" in fh.read(64) else "matroska"
        return "matroska"
    return names[0]


def _av_lossless_bits(codec: str, extradata: bytes | None) -> int | None:
    """Bits per sample that ALAC and FLAC state in their setup data."""
    data = extradata or b""
    if codec == "alac" and len(data) >= 24:
        return data[17] if len(data) >= 36 and data[4:8] == b"alac" else data[5]
    start = 8 if data[:4] == b"fLaC" else 0
    if codec == "flac" and len(data) >= 34:
        return (((data[start + 12] & 1) << 4) | (data[start + 13] >> 4)) + 1
    return None


def _av_sample_format(codec: str, extradata: bytes | None, decoded: str) -> str:
    match = _PCM_CODEC.match(codec)
    if match:
        kind, bits = match.groups()
        if kind == "f":
            return "float32" if bits == "32" else "float64"
        return f"pcm{bits}" if bits != "64" else decoded
    if codec not in _LOSSLESS_CODECS:
        return decoded
    bits = _av_lossless_bits(codec, extradata)
    if bits is None:
        return _DECODED_BITS.get(decoded.rstrip("p"), decoded)
    return "pcm16" if bits <= 16 else "pcm24" if bits <= 24 else "pcm32"


def _av_header_duration(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(Fraction(stream.duration) * Fraction(stream.time_base))
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000
    return None


def _av_scan_duration(path: Path, stream_position: int) -> float | None:
    """Length from packet timestamps, demuxing without decoding (for containers that state no length)."""
    try:
        with _av_open(path) as container:
            stream = container.streams.audio[stream_position]
            first = last = None
            for packet in container.demux(stream):
                if packet.pts is not None:
                    first = packet.pts if first is None else min(first, packet.pts)
                    last = max(last or first, packet.pts + (packet.duration or 0))
    except _av_errors():
        return None
    if first is None or last is None or stream.time_base is None or last <= first:
        return None
    return float(Fraction(last - first) * Fraction(stream.time_base))


def _av_frames(container: Any, stream: Any, errors: list[int]) -> Iterator[Any]:
    """Decoded frames (with samples) of one stream, skipping packets FFmpeg rejects as the ffmpeg tool does.

    ``errors[0]`` counts the rejected packets; decoding stops after too many in a row or when demuxing fails.
    """
    consecutive = 0
    packets = container.demux(stream)
    while consecutive <= _MAX_CONSECUTIVE_PACKET_ERRORS:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except _av_errors():
            errors[0] += 1
            return
        try:
            decoded = stream.decode(packet)
        except _av_errors():
            errors[0] += 1
            consecutive += 1
            continue
        consecutive = 0
        yield from (frame for frame in decoded if frame.samples > 0)


def _placed(
    frames: Iterator[Any], origin: int, time_base: Fraction, sample_rate: int, count: int
) -> tuple[int, Iterator[Any]] | None:
    """Where the next frame starts (samples after the timestamp ``origin``) and the frames from it.

    Each of the next ``count`` frames' timestamp, less the samples before it, estimates the same position;
    their median is robust to per-frame tick rounding. ``None`` when timestamps are missing.
    """
    kept: list[Any] = []
    estimates: list[int] = []
    counted = 0
    for frame in itertools.islice(frames, count):
        if frame.pts is None:
            return None
        estimates.append(round((frame.pts - origin) * time_base * sample_rate) - counted)
        counted += frame.samples
        kept.append(frame)
    if not kept:
        return None
    return int(np.median(estimates).round()), itertools.chain(kept, frames)


def _av_decodes_to(path: Path, stream_index: int, frames: int) -> bool:
    """Whether FFmpeg decodes the stream up to frame ``frames`` (counted from its first decoded frame).

    Seeks 0.5 s before it and decodes a few packets: a cut file has none there. A stream that cannot be
    opened or seeked, or has no timestamps, gives ``True`` (unknown is not truncated; the reader checks).
    """
    try:
        with _av_open(path) as container:
            stream = container.streams.audio[stream_index]
            first = next(_av_frames(container, stream, [0]), None)
            if first is None or first.pts is None or frames <= _PREROLL_S * first.sample_rate:
                return True
            rate, time_base = first.sample_rate, Fraction(stream.time_base)
            target = first.pts + int((Fraction(frames, rate) - Fraction(_PREROLL_S)) / time_base)
            container.seek(target, stream=stream, backward=True)
            for count, frame in enumerate(_av_frames(container, stream, [0])):
                position = (
                    round((frame.pts - first.pts) * time_base * rate) if frame.pts is not None else frames
                )
                if count > _REACH_MAX_FRAMES or position + frame.samples >= frames:
                    return True
    except (*_av_errors(), IndexError):
        return True
    return False


def _no_stream_detail(container: Any, audio_streams: int, stream_index: int) -> str:
    """Why a file has no audio stream ``stream_index``, in words: what FFmpeg read it as when it has no
    audio at all (a text file reads as a "Tele-typewriter" video), else how many audio streams it has."""
    if audio_streams:
        return (
            f"it has {audio_streams} audio stream(s) (numbered from 0); stream {stream_index} was asked for"
        )
    kinds = Counter(str(getattr(s, "type", None) or "unknown") for s in container.streams)
    held = ", ".join(f"{n} {kind} stream{'s' if n > 1 else ''}" for kind, n in sorted(kinds.items()))
    fmt = getattr(container.format, "long_name", None) or getattr(container.format, "name", "?")
    return f"no sound in it: FFmpeg reads it as {fmt} with {held or 'no streams'} and no audio"


def _probe_av(path: Path, size: int, stream_index: int, max_input_s: float | None) -> AudioInfo:
    try:
        container = _av_open(path)
    except _av_errors():
        raise _fail("decode_failed", path, "neither libsndfile nor FFmpeg recognise the data") from None
    with container:
        audio = list(container.streams.audio)
        if stream_index >= len(audio):
            raise _fail("no_audio_stream", path, _no_stream_detail(container, len(audio), stream_index))
        stream = audio[stream_index]
        codec_context = stream.codec_context  # None when FFmpeg has no decoder for the stream
        if codec_context is None or codec_context.codec is None:
            raise _fail("unsupported", path, "FFmpeg has no decoder for this audio stream")
        codec_name = str(codec_context.codec.canonical_name)
        # A demuxer picked by the file name alone (random bytes named .flac) leaves these at 0.
        header_ok = int(codec_context.sample_rate or 0) > 0 and int(codec_context.channels or 0) > 0
        duration_s = _av_header_duration(container, stream) or _av_scan_duration(path, stream_index)
        if max_input_s is not None and duration_s is not None and duration_s > max_input_s:
            raise _fail("too_long", path, f"{duration_s:.1f} s is longer than the maximum {max_input_s:g} s")
        errors = [0]
        first = next(_av_frames(container, stream, errors), None)
        if first is None:
            if errors[0] or not header_ok:
                raise _fail("decode_failed", path, f"FFmpeg could not decode the {codec_name} stream")
            raise _fail("empty", path, "the audio stream holds no samples")
        sample_rate, channels = int(first.sample_rate), int(first.layout.nb_channels)
        if sample_rate <= 0 or not 0 < channels <= _MAX_CHANNELS:
            raise _fail("decode_failed", path, f"implausible stream: {sample_rate} Hz, {channels} channels")
        frames = None if duration_s is None else round(duration_s * sample_rate)
        if frames == 0:
            frames, duration_s = None, None  # the header says 0 but a frame decoded: the header is wrong
        return AudioInfo(
            path=str(path),
            format=_av_format_name(container, path),
            codec=codec_name,
            sample_rate=sample_rate,
            channels=channels,
            frames=frames,
            duration_s=duration_s,
            sample_format=_av_sample_format(codec_name, codec_context.extradata, first.format.name),
            bytes=size,
            sha256=None,
            backend="av",
            stream_index=stream_index,
            audio_streams=len(audio),
        )


@renamed(max_duration_s="max_input_s")
def probe(
    path: PathArg,
    *,
    stream_index: int = 0,
    max_input_s: float | None = DEFAULT_MAX_INPUT_S,
    hash: bool = True,
) -> AudioInfo:
    """Describe one audio stream of a file from its header, its first frame and a check of its end.

    Raises :class:`AudioReadError` with reason ``not_found``, ``unreadable``, ``empty``, ``decode_failed``,
    ``no_audio_stream``, ``unsupported`` or ``too_long`` (the latter from the header, before decoding).
    ``sha256`` is the digest of the file's bytes, streamed in 1 MiB chunks, or ``None`` when ``hash=False``.
    ``max_input_s`` is the longest input accepted (``None``: no limit); the old name ``max_duration_s``
    still works for one release, with a ``DeprecationWarning``.
    """
    p, index, limit = _stream_args(path, stream_index, max_input_s)
    info = _probe(p, index, limit)
    return replace(info, path=os.fspath(path), sha256=sha256_file(p) if hash else None)


@captured
def _probe(path: Path, stream_index: int, max_input_s: float | None) -> AudioInfo:
    size = _check_file(path)
    info = _probe_soundfile(path, size, stream_index, max_input_s) or _probe_av(
        path, size, stream_index, max_input_s
    )
    if info.frames is None:
        return info
    # libsndfile takes a WAV's or AIFF's length from the file size; other header lengths (FLAC's STREAMINFO,
    # an MP3's Xing tag, MP4, Matroska) are checked by decoding near the end (FFmpeg: no scan of an MP3).
    declared = _declared_frames(path, info.frames) if info.backend == "soundfile" else None
    enough = _enough_frames(declared or info.frames, info.sample_rate)
    cut = info.frames < enough if declared else not _av_decodes_to(path, info.stream_index, enough)
    return replace(info, warnings=("truncated",)) if cut else info


# --------------------------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------------------------


def _frame_to_array(frame: Any) -> np.ndarray:
    """An FFmpeg audio frame as a (samples, channels) float32 array, whatever its sample format."""
    data = frame.to_ndarray()
    channels = int(frame.layout.nb_channels)
    data = data.T if frame.format.is_planar else data.reshape(-1, channels)
    kind = frame.format.name.rstrip("p")
    if kind in ("flt", "dbl"):
        return np.ascontiguousarray(data, dtype=np.float32)
    if kind == "u8":
        return np.ascontiguousarray((data.astype(np.float32) - 128.0) / 128.0)
    bits = {"s16": 15, "s32": 31, "s64": 63}.get(kind)
    if bits is None:
        raise AudioReadError("unsupported", f"unknown decoded sample format {frame.format.name!r}")
    return np.ascontiguousarray(data.astype(np.float64) * (2.0**-bits), dtype=np.float32)


_Blocks = Generator[np.ndarray, None, None]


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


class AudioReader:
    """Streaming decoder for one audio stream of a file; use as a context manager.

    ``blocks()`` yields float32 arrays of shape ``(n, channels)``; memory is bounded by the block size.
    ``frames_read`` counts frames yielded so far (over all ``blocks()`` calls); ``warnings`` starts with the
    probe's and collects reason codes noticed while reading, such as ``truncated`` when decoding ended
    clearly short (below 90 % and more than 0.5 s short) of the header's length. What decoded is always
    kept. Given ``info`` (the file's probe) it reads the stream the probe describes; ``stream_index`` and
    ``max_input_s`` are for the probe it makes otherwise (``max_input_s`` also stops a lying header).
    """

    @renamed(max_duration_s="max_input_s")
    def __init__(
        self,
        path: PathArg,
        *,
        stream_index: int = 0,
        max_input_s: float | None = DEFAULT_MAX_INPUT_S,
        info: AudioInfo | None = None,
    ) -> None:
        self._path, index, self._max_input_s = _stream_args(path, stream_index, max_input_s)
        self.info: AudioInfo = info or _probe(self._path, index, self._max_input_s)
        self.frames_read: int = 0
        self.warnings: list[str] = list(self.info.warnings)
        self._open: weakref.WeakSet[_Blocks] = weakref.WeakSet()
        self._closed = False

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the files of unfinished ``blocks()`` iterators; later ``blocks()`` raise ``InvalidArgument``."""
        self._closed = True
        for blocks in list(self._open):
            with contextlib.suppress(ValueError):  # running in another thread: it closes itself
                blocks.close()

    def blocks(
        self, *, block_frames: int = 65536, start_s: float = 0.0, end_s: float | None = None
    ) -> Iterator[np.ndarray]:
        """Yield the frames ``[round(start_s*sr), round(end_s*sr))`` as blocks of ``block_frames`` frames.

        Every block has exactly ``block_frames`` frames except the last. ``end_s=None`` reads to the end.
        """
        if self._closed:
            raise InvalidArgument("blocks() called on a closed AudioReader")
        block_frames = integer("block_frames", block_frames)
        start = number("start_s", start_s)
        end = None if end_s is None else number("end_s", end_s, minimum=start)
        sr = self.info.sample_rate
        blocks = captured_steps(
            self._blocks(round(start * sr), None if end is None else round(end * sr), block_frames)
        )
        self._open.add(blocks)
        return blocks

    def _blocks(self, start: int, end: int | None, block_frames: int) -> _Blocks:
        sr = self.info.sample_rate
        limit = None if self._max_input_s is None else round((self._max_input_s + _TOO_LONG_SLACK_S) * sr)
        errors = [0]
        # libsndfile misplaces Vorbis seeks that land in the last Ogg pages; FFmpeg's Vorbis decoder gives
        # the same samples (within float32 rounding) and seeks exactly.
        vorbis_seek = self.info.codec == "vorbis" and start > _PREROLL_S * sr
        if self.info.backend == "soundfile" and not vorbis_seek:
            source = self._sf_chunks(start, end, max(block_frames, 4096), errors)
        else:
            source = self._av_chunks(start, end, errors)
        floats = self.info.sample_format.startswith("float")
        pending: list[np.ndarray] = []
        position, waiting = start, 0
        try:
            for data in source:
                position += len(data)
                if limit is not None and position > limit:
                    raise _fail("too_long", self._path, "decoding ran past max_input_s; the header lied")
                if floats and not np.isfinite(data).all():
                    data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
                pending.append(data)
                waiting += len(data)
                if waiting >= block_frames:
                    buffer, full = _joined(pending), waiting - waiting % block_frames
                    for offset in range(0, full, block_frames):
                        self.frames_read += block_frames
                        yield buffer[offset : offset + block_frames]
                    # Nothing left over is nothing to join: an empty remainder kept here made the next
                    # block a copy (np.concatenate of it and the next chunk: 1.5 MB per 4 s of 48 kHz stereo).
                    pending, waiting = ([buffer[full:]] if waiting > full else []), waiting - full
            if waiting:
                self.frames_read += waiting
                yield _joined(pending)
        finally:
            source.close()
        if position == start and start == 0 and errors[0]:
            raise _fail("decode_failed", self._path, "no audio could be decoded")
        if self.info.frames is not None:
            expected = (self.info.frames if end is None else min(end, self.info.frames)) - start
            if position - start < _enough_frames(expected, sr) and "truncated" not in self.warnings:
                self.warnings.append("truncated")

    def _sf_chunks(self, start: int, end: int | None, chunk: int, errors: list[int]) -> _Blocks:
        """Read with libsndfile. After a read or seek error the file is opened again and read on from
        where it failed in small steps (salvage), to keep every good frame; a second error ends it."""
        # libsndfile's MP3 and Opus seeks land on the right sample but the decoder needs warm-up
        # (MP3's bit reservoir); decoding from 0.5 s earlier and dropping it gives exact windows.
        lossy = self.info.sample_format == "fltp"
        position = max(start - round(_PREROLL_S * self.info.sample_rate), 0) if lossy else start
        salvaging = False
        while True:
            try:
                handle = sf.SoundFile(str(self._path))
            except _SF_ERRORS:
                if salvaging:
                    return
                raise _fail("decode_failed", self._path, "libsndfile can no longer open the file") from None
            with handle:
                pcm16 = handle.subtype == "PCM_16"
                try:
                    if not salvaging and (start >= handle.frames or (end is not None and end <= start)):
                        return
                    handle.seek(position)
                    while end is None or position < end:
                        want = chunk if end is None else min(chunk, end - position)
                        if pcm16:  # libsndfile's own float conversion, five times faster in numpy
                            pcm = handle.read(want, dtype="int16", always_2d=True)
                            data = np.multiply(pcm, _PCM16_SCALE, dtype=np.float32)
                        else:
                            data = handle.read(want, dtype="float32", always_2d=True)
                        skip = max(start - position, 0)
                        position += len(data)
                        if skip < len(data):
                            yield data[skip:]
                        if len(data) < want:
                            return
                    return
                except _SF_ERRORS:
                    if salvaging:
                        return
                    errors[0] += 1
                    salvaging, chunk, position = True, _SALVAGE_STEP, max(position, start)

    @functools.cached_property
    def _av_timing(self) -> tuple[int, int] | None:
        """Anchor for timestamp-based seeking: (pts of sample 0, rounding bias in frames), or ``None``.

        Sample 0 is the first frame a full decode yields. Containers with millisecond ticks (Matroska,
        WebM, ASF) round every timestamp to the tick; the median difference between the timestamps and
        the counted sample positions of the first frames is that rounding, and is removed from positions
        computed after a seek.
        """
        try:
            with _av_open(self._path) as container:
                stream = container.streams.audio[self.info.stream_index]
                frames = _av_frames(container, stream, [0])
                first = next(frames, None)
                if first is None or first.pts is None or stream.time_base is None:
                    return None
                time_base = Fraction(stream.time_base)
                placed = _placed(frames, first.pts, time_base, self.info.sample_rate, _TIMING_FRAMES)
        except _av_errors():
            return None
        return int(first.pts), 0 if placed is None else placed[0] - first.samples

    def _av_start(self, start: int, errors: list[int]) -> tuple[Any, Iterator[Any], int]:
        """An open container, its decoded frames and the sample position of the first of them.

        A window starting after 0.5 s seeks to 0.5 s before it. The first frame after the seek is dropped:
        it is decoder warm-up, and some decoders trim it as if it began the stream; the following frames
        are placed by their timestamps. Missing timestamps, a failed seek or one that overshoots the
        window: the stream is decoded from the beginning instead.
        """
        sr = self.info.sample_rate
        timing = self._av_timing if start > _PREROLL_S * sr else None
        while True:
            try:
                container = _av_open(self._path)
            except _av_errors():
                raise _fail("decode_failed", self._path, "FFmpeg can no longer open the file") from None
            stream = container.streams.audio[self.info.stream_index]
            frames = _av_frames(container, stream, errors)
            if timing is None:
                return container, frames, 0
            (origin, bias), time_base = timing, Fraction(stream.time_base)
            try:
                container.seek(
                    origin + int((Fraction(start, sr) - Fraction(_PREROLL_S)) / time_base),
                    stream=stream,
                    backward=True,
                )
                next(frames, None)
                placed = _placed(frames, origin, time_base, sr, _ANCHOR_FRAMES)
            except _av_errors():
                placed = None
            if placed is not None and placed[0] - bias <= start:
                return container, placed[1], placed[0] - bias
            container.close()
            timing = None

    def _av_chunks(self, start: int, end: int | None, errors: list[int]) -> _Blocks:
        sr, channels = self.info.sample_rate, self.info.channels
        container, frames, position = self._av_start(start, errors)
        with container:
            stop = self.info.frames if self.info.format in _SAMPLE_EXACT_FORMATS else None
            if end is not None:
                stop = end if stop is None else min(stop, end)
            for frame in frames:
                data = _frame_to_array(frame)
                if frame.sample_rate != sr or data.shape[1] != channels:
                    detail = f"the stream changes format mid-way ({frame.sample_rate} Hz, {data.shape[1]} ch)"
                    raise _fail("unsupported", self._path, detail)
                low = max(start - position, 0)
                high = len(data) if stop is None else min(stop - position, len(data))
                if high > low:
                    yield data[low:high]
                position += len(data)
                if stop is not None and position >= stop:
                    break


def read_window(
    path: PathArg, *, start_s: float, end_s: float | None, stream_index: int = 0
) -> tuple[np.ndarray, int]:
    """Return frames ``[round(start_s*sr), round(end_s*sr))`` as float32 ``(n, channels)`` and the rate.

    Sample-exact for PCM, FLAC, MP3 and OGG (libsndfile seeks exactly). For FFmpeg-decoded formats the
    decoder starts from the seek point before ``start_s`` and the window is cut by timestamps; the
    accuracy measured per container is in ``docs/audio-io.md``. A window past the end is empty.
    """
    limit = None if end_s is not None else DEFAULT_MAX_INPUT_S
    with AudioReader(path, stream_index=stream_index, max_input_s=limit) as reader:
        parts = list(reader.blocks(block_frames=_SF_CHUNK, start_s=start_s, end_s=end_s))
        empty = np.zeros((0, reader.info.channels), dtype=np.float32)
        return _joined(parts) if parts else empty, reader.info.sample_rate


def read(path: PathArg, *, stream_index: int = 0) -> tuple[np.ndarray, int]:
    """Decode a whole (short) file into a float32 ``(n, channels)`` array; return it and the sample rate."""
    return read_window(path, start_s=0.0, end_s=None, stream_index=stream_index)


@renamed(max_duration_s="max_input_s")
def probe_row(
    path: PathArg, *, stream_index: int = 0, max_input_s: float | None = DEFAULT_MAX_INPUT_S
) -> dict[str, Any]:
    """A JSON-friendly probe result for ``voiceprep probe --json``; never raises for data problems.

    ``status`` is ``"ok"`` or ``"failed"``; ``reasons`` lists reason codes (an ok row may carry warnings
    such as ``truncated``); fields that are unknown after a failure are ``None``.
    """
    row: dict[str, Any] = {"path": os.fspath(path), "status": "failed", "reasons": [], "message": None}
    row.update(dict.fromkeys((*PROBE_FIELDS, "sha256")))
    try:
        info = probe(path, stream_index=stream_index, max_input_s=max_input_s, hash=True)
    except AudioReadError as exc:
        row.update(reasons=[exc.reason], message=exc.message)
        if exc.reason not in ("not_found", "unreadable"):
            with contextlib.suppress(OSError, AudioReadError):
                row.update(bytes=os.stat(path).st_size, sha256=sha256_file(Path(path)))
        return row
    message = "; ".join(reason_message(code) for code in info.warnings) or None
    row.update(status="ok", reasons=list(info.warnings), message=message)
    row.update({name: getattr(info, name) for name in (*PROBE_FIELDS, "sha256")})
    return row


# --------------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------------

# format -> (backend, container or libsndfile format, default subtype)
_WRITE_FORMATS: dict[str, tuple[str, str, str]] = {
    "wav": ("soundfile", "WAV", "PCM_16"),
    "wavex": ("soundfile", "WAVEX", "PCM_16"),
    "rf64": ("soundfile", "RF64", "PCM_16"),
    "w64": ("soundfile", "W64", "PCM_16"),
    "aiff": ("soundfile", "AIFF", "PCM_16"),
    "flac": ("soundfile", "FLAC", "PCM_16"),
    "ogg": ("soundfile", "OGG", "VORBIS"),
    "mp3": ("av", "mp3", "MP3"),
    "m4a": ("av", "ipod", "AAC"),
    "opus": ("av", "opus", "OPUS"),
}
_SUFFIX_ALIASES = {"wave": "wav", "aif": "aiff", "oga": "ogg"}
# av subtype -> (FFmpeg encoder, encoder sample format or None for the encoder's default)
_AV_SUBTYPES: dict[str, dict[str, tuple[str, str | None]]] = {
    "mp3": {"MP3": ("libmp3lame", None)},
    "m4a": {
        "AAC": ("aac", None),
        "ALAC": ("alac", "s16p"),
        "ALAC_16": ("alac", "s16p"),
        "ALAC_24": ("alac", "s32p"),
    },
    "opus": {"OPUS": ("libopus", None)},
}
_FLOAT_SUBTYPES = {
    "FLOAT",
    "DOUBLE",
    "VORBIS",
    "OPUS",
    "MPEG_LAYER_III",
    "MP3",
    "AAC",
}  # not clipped to [-1, 1]
_MAX_WRITE_CHANNELS = 64


def atomic_write_bytes(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(file_object)`` on a hidden temporary file next to ``path``, fsync it, rename it over
    ``path`` and fsync the folder; on any error the temporary file is removed and ``path`` is untouched.

    The temporary file is ``.<name>.<pid>-<hex>.tmp``: the pid says whose it is, so a sweep after a kill
    removes only the files of processes that are gone (``pipeline.batch.outputs``)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "x+b") as fh:  # readable too: encoders may read back what they wrote (MP4 faststart)
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # not every platform/filesystem lets a directory be fsynced
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _write_av(
    fh: BinaryIO,
    data: np.ndarray,
    rate: int,
    fmt: str,
    subtype: str,
    bitrate: int | None,
    mp3_quality: int | None = None,
) -> None:
    """Encode ``data`` with FFmpeg into ``fh`` as one frame (PyAV cuts it into the encoder's frames)."""
    encoder, sample_format = _AV_SUBTYPES[fmt][subtype]
    layout = {1: "mono", 2: "stereo"}.get(data.shape[1], f"{data.shape[1]}c")
    options = {"movflags": "+faststart"} if fmt == "m4a" else {}
    codec_options = {} if mp3_quality is None else {"compression_level": str(mp3_quality)}
    with _av().open(fh, mode="w", format=_WRITE_FORMATS[fmt][1], options=options) as out:
        stream = out.add_stream(encoder, rate=rate, options=codec_options)
        stream.layout = layout
        if sample_format is not None:
            stream.format = sample_format
        if bitrate is not None:
            stream.bit_rate = bitrate
        planar = np.ascontiguousarray(data.T, dtype=np.float32)
        frame = _av().AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
        frame.sample_rate, frame.time_base, frame.pts = rate, Fraction(1, rate), 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)


def write(
    path: PathArg,
    data: np.ndarray,
    sample_rate: int,
    *,
    format: str | None = None,
    subtype: str | None = None,
    bitrate: int | None = None,
    mp3_quality: int | None = None,
) -> Path:
    """Write float audio ``(n,)`` or ``(n, channels)`` to ``path`` atomically and return the path.

    ``format`` (default: from the suffix) is one of wav, wavex, rf64, w64, aiff, flac, ogg (Vorbis; libsndfile
    subtypes apply, default PCM_16 for PCM containers), mp3 (libmp3lame), m4a (subtype AAC, ALAC/ALAC_16 or
    ALAC_24) or opus (Ogg Opus). ``bitrate`` in bits per second applies to mp3, m4a/AAC and opus only.
    ``mp3_quality`` (mp3 only) is LAME's quality setting, 0 (best, slowest) to 9 (fastest); ``None``
    keeps LAME's default.
    Data are clipped to [-1, 1] for integer sample formats. The file is written to a hidden temporary name
    in the same folder, fsynced and renamed over ``path``; on any error the temporary file is removed.
    """
    p = as_path("path", path)
    suffix = p.suffix.lower().lstrip(".")
    fmt = _SUFFIX_ALIASES.get(suffix, suffix) if format is None else str(format).lower()
    if fmt not in _WRITE_FORMATS:
        given = f"cannot be inferred from the suffix of {p}" if format is None else f"{format!r} is unknown"
        raise InvalidArgument(f"format {given}; name one of {list(_WRITE_FORMATS)}")
    array = signal("data", data)
    array = array[:, None] if array.ndim == 1 else array
    channels = array.shape[1]
    if not 1 <= channels <= (2 if fmt == "mp3" else _MAX_WRITE_CHANNELS):
        raise InvalidArgument(
            f"data must have 1..{_MAX_WRITE_CHANNELS} channels (mp3: 2), got shape {array.shape}"
        )
    sample_rate = integer("sample_rate", sample_rate)
    if not p.parent.is_dir():
        raise InvalidArgument(f"path: the folder of {p} does not exist")
    backend, container_format, default_subtype = _WRITE_FORMATS[fmt]
    chosen = str(default_subtype if subtype is None else subtype).upper()
    if bitrate is not None and integer("bitrate", bitrate, minimum=1000) > 1_000_000:
        raise InvalidArgument(f"bitrate must be at most 1000000 bits per second, got {bitrate!r}")

    if mp3_quality is not None:
        if fmt != "mp3":
            raise InvalidArgument(f"mp3_quality applies to mp3 only, not format={fmt!r}")
        integer("mp3_quality", mp3_quality, minimum=0)
        if mp3_quality > 9:
            raise InvalidArgument(f"mp3_quality must be 0..9, got {mp3_quality!r}")
    if backend == "soundfile":
        if bitrate is not None:
            raise InvalidArgument(f"bitrate applies to mp3, m4a and opus only, not format={fmt!r}")
        if not sf.check_format(container_format, chosen):
            raise InvalidArgument(f"subtype {subtype!r} is not valid for format={fmt!r}")
    else:
        if chosen not in _AV_SUBTYPES[fmt]:
            raise InvalidArgument(
                f"subtype must be one of {sorted(_AV_SUBTYPES[fmt])} for {fmt}, got {subtype!r}"
            )
        encoder = _AV_SUBTYPES[fmt][chosen][0]
        if bitrate is not None and encoder == "alac":
            raise InvalidArgument(f"bitrate does not apply to the lossless subtype {chosen!r}")
        rates = _av().Codec(encoder, "w").audio_rates
        if rates and sample_rate not in rates:
            raise InvalidArgument(
                f"sample_rate {sample_rate} is not supported by {encoder}; use one of {sorted(rates)}"
            )
    if chosen not in _FLOAT_SUBTYPES:
        array = np.clip(array, -1.0, 1.0)

    def encode(fh: BinaryIO) -> None:
        try:
            if backend == "soundfile":
                sf.write(fh, array, sample_rate, format=container_format, subtype=chosen)
            else:
                _write_av(fh, array, sample_rate, fmt, chosen, bitrate, mp3_quality)
        except (_av().FFmpegError, RuntimeError, ValueError) as exc:
            raise InvalidArgument(
                f"could not encode {fmt} (subtype={chosen}, sample_rate={sample_rate}, "
                f"channels={channels}): {exc}"
            ) from exc

    atomic_write_bytes(p, encode)
    return p
