"""Speak with a cloned voice: the library side of ``voiceprep speak``.

:func:`speak` finds the voice (a ledger row by row id, voice id or name, which gives its provider, region
and target model; or a bare voice id with ``family`` and ``model``), makes the family's client for the
voice's region (only a host the key may go to: :func:`~pipeline.enroll.submit.client_getter`), calls the
client's ``speak`` (CosyVoice and Qwen realtime over WebSocket, the rest over HTTP; see
:mod:`pipeline.enroll.providers`) and writes the audio:

- to a ``.wav`` file (or raw ``.pcm``): whole at the end (atomically), or with ``stream`` progressively to
  ``<file>.partial`` as the chunks arrive (WAV header patched and the file renamed when the service says
  the audio is complete). Audio cut short (a failed task, a dropped socket) never gets the file's name: it
  stays ``<file>.partial`` and the error says how many bytes it holds;
- to standard output as raw 16-bit mono PCM (``out="-"``), chunk by chunk with ``stream``.

The time from the call to the first audio byte is measured (``first_audio_s``) with the client's clock. A
synthesis with a ledger voice stamps its ``last_used_at`` (a real synthesis is what keeps a MiniMax voice
from expiring).
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pipeline.audio.io import atomic_write_bytes
from pipeline.enroll.check import CLONE_CHECK_KEY, DEFAULT_CHECK_TEXT, check_clone, stored_check
from pipeline.enroll.ledger import Ledger, LedgerError, read_records, writer_lock
from pipeline.enroll.providers.base import ProviderError, VoiceRecord
from pipeline.enroll.providers.common import VoiceProvider
from pipeline.enroll.providers.speech import SAMPLE_WIDTH, Speech, SpeechInterrupted, wav_header
from pipeline.enroll.submit import Providers, client_getter, normalize_language
from pipeline.enroll.voices import show_voice
from pipeline.errors import InvalidArgument
from pipeline.rules.families import load_family

__all__ = ["OUTPUT_SUFFIXES", "SpeakResult", "find_voice_row", "speak", "speak_voice", "stamp_used"]

OUTPUT_SUFFIXES = (".wav", ".pcm", ".raw")
"""What ``out`` may end in: a WAV file, or raw 16-bit mono PCM."""
STDOUT = "-"
_UNUSABLE = frozenset({"deleted", "gone", "failed", "rejected"})


@dataclass(frozen=True)
class SpeakResult:
    """What one synthesis did: the ``voice`` it spoke with (its ``base_url`` the host the call went to; its
    ``id`` 0 for a voice not in the ledger), where the audio went (``out``: a path, or ``-`` for standard
    output), the audio (``sample_rate``, ``audio_bytes`` of PCM, ``seconds``), and the times from the
    call: ``first_audio_s`` (first audio byte) and ``total_s`` (the last). ``request_id``: the provider's
    id of the call. ``note``: what went wrong around a whole synthesis (the ledger's ``last_used_at``
    could not be stamped), or empty."""

    voice: VoiceRecord
    out: str
    streamed: bool
    sample_rate: int
    audio_bytes: int
    seconds: float
    first_audio_s: float | None
    total_s: float
    request_id: str | None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON-ready data (``speak --json``): the voice's ids, then the synthesis."""
        v = self.voice
        said = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "voice"}
        ids = {"voice_id": v.voice_id or "", "family": v.family, "target_model": v.target_model or ""}
        return {**ids, "base_url": v.base_url, "ledger_id": v.id or None, **said}


def find_voice_row(ledger_path: Path, ident: str) -> VoiceRecord:
    """The ledger row ``ident`` names (row id ``12``/``#12``, voice id, or name), usable for synthesis.

    Raises:
        InvalidArgument: no ledger, no or several matches, a row without a voice id or target model, or a
            voice that is deleted, gone, failed or rejected.
    """
    row = show_voice(ledger_path, ident)
    if not row.voice_id:
        raise InvalidArgument(f"ledger row #{row.id} ({row.status}) has no voice id: nothing to speak with")
    if row.status in _UNUSABLE:
        raise InvalidArgument(f"{row.voice_id} is {row.status} in the ledger: it cannot speak")
    if not row.target_model:
        raise InvalidArgument(f"{row.voice_id}: its target model is not known; give --family and --model")
    return row


def _voice(
    ident: str, ledger_path: Path | None, family: str | None, model: str | None
) -> tuple[VoiceRecord, bool]:
    """The voice to speak with and whether it is a ledger row."""
    if family or model:
        if not (family and model):
            raise InvalidArgument(
                "give both --family and --model (or neither, to read the voice from the ledger)"
            )
        spec = load_family(family)
        if model not in spec.target_models:
            raise InvalidArgument(
                f"model {model!r} is not a {family} model (known: {', '.join(spec.target_models)})"
            )
        known = [r for r in read_records(ledger_path) if r.voice_id == ident] if ledger_path else []
        row = next((r for r in known if r.family == family), None)
        if row is not None:
            return dataclasses.replace(row, target_model=model), True
        return VoiceRecord(provider=spec.provider, family=family, voice_id=ident, target_model=model), False
    if ledger_path is None:
        raise InvalidArgument("no ledger: give --ledger (or a run folder), or --family and --model")
    return find_voice_row(ledger_path, ident), True


def _check_out(out: Path | str) -> None:
    if str(out) == STDOUT:
        return
    if Path(out).suffix.lower() not in OUTPUT_SUFFIXES:
        raise InvalidArgument(
            f"--out {out}: write a {' or '.join(OUTPUT_SUFFIXES)} file, or - for raw PCM on stdout"
        )
    if Path(out).is_dir():
        raise InvalidArgument(f"--out {out} is a folder")


def speak(
    ident: str,
    text: str,
    *,
    out: Path | str,
    stream: bool = False,
    ledger_path: Path | None = None,
    family: str | None = None,
    model: str | None = None,
    base_urls: Mapping[str, str] | None = None,
    providers: Providers | None = None,
    stdout: BinaryIO | None = None,
    language: str | None = None,
    region: str | None = None,
) -> SpeakResult:
    """Synthesise ``text`` with the voice ``ident`` and write it to ``out`` (see the module docstring).

    Args:
        ident: a ledger row id, voice id or name; with ``family`` and ``model``, a bare voice id.
        text: what to say.
        out: a ``.wav``/``.pcm`` path, or ``"-"`` for raw PCM on ``stdout`` (default ``sys.stdout.buffer``).
        stream: write the audio as it arrives (else once it is complete).
        ledger_path: the voice ledger (needed without ``family``/``model``).
        base_urls: regions by family or provider name (a voice from the ledger keeps its own region).
        providers: the test seam (:data:`~pipeline.enroll.submit.Providers`).
        language: the text's language (``en``, ``pt-BR``...), sent in the synthesis protocol's own field
            (CosyVoice ``language_hints``, Qwen ``language_type``, MiniMax ``language_boost``) when it
            lists it; otherwise left out and said in the result's ``note``.
        region: ``intl`` or ``cn``: the region (host, key variable) of a voice whose address names none
            (a proxy, a voice not in the ledger); a voice at a documented host keeps that host's region.

    Raises:
        InvalidArgument: a bad voice, option, language or output path (nothing sent).
        ProviderError: the service refused or failed (``SpeechInterrupted`` once audio had started).
        MissingApiKey: the provider's key is not set.
    """
    if not text.strip():
        raise InvalidArgument("text: nothing to say")
    language = normalize_language(language)
    _check_out(out)
    voice, in_ledger = _voice(ident, ledger_path, family, model)
    spec = load_family(voice.family)
    client = client_getter(providers, base_urls=base_urls, region=region)(spec, voice.base_url or None)
    result = speak_voice(client, voice, text, out=out, stream=stream, stdout=stdout, language=language)
    if in_ledger and ledger_path is not None and voice.id:
        note = stamp_used(ledger_path, voice.id)
        result = dataclasses.replace(result, note="; ".join(n for n in (result.note, note) if n))
    return result


STAMP_BUSY_TIMEOUT_S = 5.0
"""How long :func:`stamp_used` waits for another process's ledger transaction before giving up."""


def stamp_used(ledger_path: Path, row_id: int) -> str:
    """Stamp the row's ``last_used_at`` after a whole synthesis; returns "" or why it could not be done.

    Safe beside any other writer without taking their locks: one single-column ``UPDATE`` in its own
    SQLite transaction (nothing read and written back, so it never undoes a concurrent ``submit`` or
    ``voices sync``), waiting at most :data:`STAMP_BUSY_TIMEOUT_S` for a busy ledger. The audio is already
    whole, so a ledger that is busy, read-only or damaged never fails the command: it is reported instead.
    """
    try:
        with Ledger(ledger_path, busy_timeout_s=STAMP_BUSY_TIMEOUT_S) as ledger:
            ledger.mark_used(row_id)
    except (LedgerError, sqlite3.Error, OSError) as exc:
        return f"last_used_at not stamped in {ledger_path.name}: {exc}"
    return ""


def speak_voice(
    client: VoiceProvider,
    voice: VoiceRecord,
    text: str,
    *,
    out: Path | str,
    stream: bool = False,
    stdout: BinaryIO | None = None,
    language: str | None = None,
) -> SpeakResult:
    """Synthesise ``text`` with ``voice`` through ``client`` and write it to ``out``; the part of
    :func:`speak` after the voice and client are known (tests and benchmarks call it with a client of
    their own). ``language``: see :func:`speak`."""
    _check_out(out)
    clock: Callable[[], float] = client.runtime.clock
    start = clock()
    given = {"language": language} if language else {}  # a client of its own may take no language
    speech: Speech = client.speak(
        voice.voice_id or "", target_model=voice.target_model or "", text=text, **given
    )
    first: list[float] = []

    def timed(chunks: Iterable[bytes]) -> Iterable[bytes]:
        for chunk in chunks:
            if not first:
                first.append(clock() - start)
            yield chunk

    if str(out) == STDOUT:
        size = _to_stream(stdout or sys.stdout.buffer, timed(speech), stream)
    elif stream:
        size = _stream_to_file(Path(out), timed(speech), speech)
    else:
        pcm = b"".join(timed(speech))
        data = wav_header(len(pcm), speech.sample_rate) + pcm if _is_wav(out) else pcm
        atomic_write_bytes(Path(out), lambda fh: fh.write(data))
        size = len(pcm)
    return SpeakResult(
        voice=dataclasses.replace(voice, base_url=client.base_url),
        out=str(out),
        streamed=stream,
        sample_rate=speech.sample_rate,
        audio_bytes=size,
        seconds=round(size / (SAMPLE_WIDTH * speech.sample_rate), 3),
        first_audio_s=round(first[0], 4) if first else None,
        total_s=round(clock() - start, 4),
        request_id=speech.request_id,
        note=(client.speech_language_not_sent(language) or "") if language else "",
    )


def _is_wav(out: Path | str) -> bool:
    return Path(out).suffix.lower() == ".wav"


def _to_stream(fh: BinaryIO, chunks: Iterable[bytes], stream: bool) -> int:
    """Raw PCM to ``fh``: each chunk as it comes (flushed) with ``stream``, else all at the end."""
    if not stream:
        pcm = b"".join(chunks)
        fh.write(pcm)
        fh.flush()
        return len(pcm)
    size = 0
    for chunk in chunks:
        fh.write(chunk)
        fh.flush()
        size += len(chunk)
    return size


def partial_path(out: Path) -> Path:
    """Where a streamed file is written until its audio is complete."""
    return out.with_name(out.name + ".partial")


def _stream_to_file(out: Path, chunks: Iterable[bytes], speech: Speech) -> int:
    """Write the chunks to ``<out>.partial`` as they arrive (a WAV header with the largest sizes first),
    then patch the header and give the file its name. Cut short: the ``.partial`` file stays, and the
    :class:`SpeechInterrupted` error names it."""
    tmp = partial_path(out)
    wav = _is_wav(out)
    size = 0
    try:
        with open(tmp, "wb") as fh:
            if wav:
                fh.write(wav_header(0xFFFFFFFF - 36, speech.sample_rate))
            for chunk in chunks:
                fh.write(chunk)
                fh.flush()
                size += len(chunk)
            if wav:
                fh.seek(0)
                fh.write(wav_header(size, speech.sample_rate))
            fh.flush()
            os.fsync(fh.fileno())
    except SpeechInterrupted as err:
        note = f"; the {size} bytes that arrived are in {tmp.name} (not a whole synthesis)"
        raise _with_message(err, err.message + note) from None
    os.replace(tmp, out)
    return size


def _with_message(err: SpeechInterrupted, message: str) -> SpeechInterrupted:
    """``err`` with another message."""
    base = ProviderError(
        err.reason,
        message,
        retryable=err.retryable,
        http_status=err.http_status,
        provider_code=err.provider_code,
        request_id=err.request_id,
    )
    return SpeechInterrupted(base, err.received_bytes)


def check_voice(
    ledger_path: Path,
    ident: str,
    *,
    text: str | None = None,
    base_urls: Mapping[str, str] | None = None,
    providers: Providers | None = None,
    region: str | None = None,
) -> tuple[VoiceRecord, dict[str, Any]]:
    """Re-run the clone check of a ledger voice: synthesise ``text`` with it (through :func:`speak`, so
    every family works; a real synthesis, which stamps ``last_used_at``), compare the audio with the
    voice's enrollment clip (:func:`~pipeline.enroll.check.check_clone`) and store the result in the row's
    ``details["clone_check"]``. ``text`` defaults to the text of the last check, else
    :data:`~pipeline.enroll.check.DEFAULT_CHECK_TEXT`. ``base_urls`` and ``region``: as :func:`speak`
    takes them. Returns the updated row and the check.

    Raises:
        InvalidArgument: the voice cannot speak, or its enrollment clip is not on disk (nothing sent).
        ProviderError: the synthesis failed.
    """
    row = find_voice_row(ledger_path, ident)
    clip = Path(row.clip_path) if row.clip_path else None
    if clip is None or not clip.is_file():
        raise InvalidArgument(
            f"{row.voice_id}: its enrollment clip ({row.clip_path or 'not recorded'}) is not on disk"
        )
    said = text or (stored_check(row.details) or {}).get("text") or DEFAULT_CHECK_TEXT
    with tempfile.TemporaryDirectory(prefix="voiceprep-check-") as folder:
        synthesis = Path(folder) / "check.wav"
        speak(
            str(row.id),
            said,
            out=synthesis,
            ledger_path=ledger_path,
            base_urls=base_urls,
            providers=providers,
            region=region,
        )
        result = check_clone(synthesis, clip, text=said, clip_sha256=row.clip_sha256)
    with writer_lock(ledger_path), Ledger(ledger_path) as ledger:
        row = ledger.update(row.id, details={CLONE_CHECK_KEY: result})
    return row, result
