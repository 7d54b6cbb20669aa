"""What a synthesis call gives back, whatever the protocol: :class:`Speech`, 16-bit mono PCM as it arrives.

Every client's ``speak`` (CosyVoice and Qwen realtime over WebSocket, Qwen non-realtime, MiniMax T2A and
ElevenLabs over HTTP) asks the service for raw 16-bit little-endian mono PCM where the protocol allows it and
turns a WAV answer into PCM where it does not, so the caller writes one format: a WAV file
(:func:`wav_header`) or raw PCM. The chunks are read lazily: the first ``next()`` is the first audio byte.

A stream that ends early (a ``task-failed`` event, a dropped connection, a read timeout) raises
:class:`SpeechInterrupted` from the iteration, carrying how many bytes had arrived: those bytes are a part,
never the whole, and must not be saved as a finished file.
"""

from __future__ import annotations

import io
import struct
import wave
from collections.abc import Callable, Iterator

from pipeline.enroll.providers.base import ProviderError

SPEECH_SAMPLE_RATE = 24000
"""The rate every ``speak`` asks for (each service below offers it)."""

SAMPLE_WIDTH = 2
"""Bytes per sample: 16-bit PCM."""


class SpeechInterrupted(ProviderError):
    """The audio stream stopped before the service said it was complete. ``received_bytes``: PCM bytes that
    had arrived (a part of the speech, not the whole)."""

    def __init__(self, error: ProviderError, received_bytes: int) -> None:
        super().__init__(
            error.reason,
            error.message,
            retryable=error.retryable,
            http_status=error.http_status,
            provider_code=error.provider_code,
            request_id=error.request_id,
        )
        self.received_bytes = received_bytes


class Speech:
    """A synthesis in progress: ``sample_rate`` (Hz) and the PCM chunks (``for chunk in speech``).

    ``chunks`` is a generator made by the client; iterating it reads the connection. ``request_id`` is the
    provider's id of the call (a task id, a session id, a trace id) when it gave one. Iterate once.
    """

    def __init__(
        self,
        chunks: Iterator[bytes],
        *,
        sample_rate: int,
        request_id: str | None = None,
        close: Callable[[], None] | None = None,
    ) -> None:
        self._chunks = chunks
        self.sample_rate = sample_rate
        self.request_id = request_id
        self._close = close
        self.received_bytes = 0

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._chunks:
                if chunk:
                    self.received_bytes += len(chunk)
                    yield chunk
        except SpeechInterrupted:
            raise
        except ProviderError as err:
            raise SpeechInterrupted(err, self.received_bytes) from None
        finally:
            self.close()

    def close(self) -> None:
        """Release the connection (idempotent); iterating to the end does it too."""
        close, self._close = self._close, None
        if close is not None:
            close()

    def read_all(self) -> bytes:
        """Every chunk joined (the whole speech, or :class:`SpeechInterrupted`)."""
        return b"".join(self)


def wav_header(n_bytes: int, sample_rate: int) -> bytes:
    """The 44-byte RIFF/WAVE header of ``n_bytes`` of 16-bit mono PCM at ``sample_rate`` (a streamed file
    is written with the largest sizes first and patched when the stream ends)."""
    riff = min(0xFFFFFFFF, 36 + n_bytes)
    return (
        b"RIFF"
        + struct.pack("<I", riff)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * SAMPLE_WIDTH, SAMPLE_WIDTH, 16)
        + b"data"
        + struct.pack("<I", min(0xFFFFFFFF, n_bytes))
    )


def wav_bytes(pcm: bytes, sample_rate: int) -> bytes:
    """A complete WAV file holding ``pcm`` (16-bit mono)."""
    return wav_header(len(pcm), sample_rate) + pcm


def pcm_from_wav(content: bytes, action: str) -> tuple[bytes, int]:
    """``(pcm, sample_rate)`` of a 16-bit mono WAV file a service returned; anything else raises
    ``ProviderError("provider_bad_request")`` naming what it was."""
    try:
        with wave.open(io.BytesIO(content), "rb") as w:
            if w.getsampwidth() != SAMPLE_WIDTH or w.getnchannels() != 1:
                raise ProviderError(
                    "provider_bad_request",
                    f"{action}: the audio is {w.getnchannels()} channel(s) of {8 * w.getsampwidth()}-bit "
                    "samples; 16-bit mono was expected",
                )
            return w.readframes(w.getnframes()), w.getframerate()
    except (wave.Error, EOFError) as exc:
        head = content[:4]
        raise ProviderError(
            "provider_bad_request", f"{action}: the answer is not a WAV file ({head!r}...: {exc})"
        ) from None


def pcm_chunks(pcm: bytes, size: int = 32768) -> Iterator[bytes]:
    """``pcm`` in pieces of ``size`` bytes (an answer that came whole, given to a streaming writer)."""
    for start in range(0, len(pcm), size):
        yield pcm[start : start + size]
