"""GE2E speaker embeddings (256 numbers): the pipeline's model before CAM++, kept for comparison.

:mod:`pipeline.analysis.speaker` hands out CAM++ (:mod:`pipeline.analysis.campplus`) since 2026-12-08;
this module stays until the switch is measured, then goes (BENCHMARKS.md, "CAM++ against GE2E"). The model is Resemblyzer's pretrained GE2E voice encoder (Resemblyzer 0.1.4, Apache-2.0; the weights are
converted from its wheel by ``scripts/convert_speaker_model.py`` into the ONNX graph ``models/ge2e.onnx``,
licence in ``models/ge2e-LICENSE.txt``): a 3-layer LSTM over 40 mel bands and a linear layer with a ReLU,
trained with the GE2E loss to put one speaker's utterances close together. What Resemblyzer does around
the network is reproduced here in numpy (its ``audio.py``, ``hparams.py`` and ``voice_encoder.py``):

1. **preprocessing** (:func:`pipeline.analysis.speaker.preprocess`, shared with CAM++): the span is turned up (never down) to -30 dBFS RMS, then pauses
   are shortened: WebRTC VAD (aggressiveness 3) on 30 ms windows, smoothed over 8 windows, each speech
   run widened by 3 windows on each side; everything else is cut out, so a long pause shrinks to about
   0.2 s. It also returns where each kept sample came from, so partial embeddings keep
   the times of the original signal;
2. **mel front-end** (:func:`mel_spectrogram`): power (not log) mel spectrogram, 25 ms Hann window
   (400 samples), 10 ms hop (160), 40 Slaney-normalised mel bands from 0 to 8 kHz, frames centred with
   zero padding (what ``librosa.feature.melspectrogram`` does in librosa 0.10+);
3. **partials**: the network sees 1.6 s (160 frames) at a time; a span gives one partial every
   ``step_s`` (:func:`partial_frames`), the last one zero-padded when it is at least 75 % covered;
4. **the network**: the LSTM's last hidden state of the top layer, linear, ReLU, L2-normalised (every
   partial embedding has unit length and no negative component, so cosines lie in [0, 1]);
5. **an utterance** (:func:`embed`): the mean of its partial embeddings, L2-normalised; Resemblyzer's
   ``embed_utterance`` uses one partial every 0.77 s (``rate=1.3``), the default here.

The network runs in onnxruntime (one session per process, one thread, created on first use), all partials
of a span in one batch. Cost and accuracy on real recordings: ``benchmarks/speaker_bench.py`` and
BENCHMARKS.md.

Public API: :func:`embed` (one vector for a span of the 16 kHz analysis signal), :func:`partial_embeddings`
(vectors along a span with their times), :func:`cosine` (similarity of vectors).
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np

from pipeline.analysis.base import ANALYSIS_RATE
from pipeline.analysis.embedding import Partials, cosine, preprocess, raise_volume
from pipeline.audio.arguments import number, signal
from pipeline.errors import InvalidArgument

__all__ = [
    "EMBEDDING_SIZE",
    "MODEL_PATH",
    "MODEL_SHA256",
    "PARTIAL_S",
    "cosine",
    "embed",
    "partial_embeddings",
]

MODEL_PATH = Path(__file__).resolve().parent / "models" / "ge2e.onnx"
"""The converted Resemblyzer weights shipped with the package."""
MODEL_SHA256 = "fd2657001aad1e28cb1ec3c2a08faac2cdd9300cd41f28094cbf096bfac6e0aa"
"""sha256 of :data:`MODEL_PATH` as ``scripts/convert_speaker_model.py`` writes it (checked on loading)."""

N_FFT = 400
"""Samples per analysis window (25 ms at 16 kHz)."""
HOP = 160
"""Samples between frames (10 ms)."""
MEL_BANDS = 40
PARTIAL_FRAMES = 160
"""Frames per partial utterance (1.6 s)."""
PARTIAL_S = PARTIAL_FRAMES * HOP / ANALYSIS_RATE
EMBEDDING_SIZE = 256
UTTERANCE_STEP_S = 0.77
"""Partial spacing of :func:`embed`: Resemblyzer's ``embed_utterance(rate=1.3)`` (round(16000 / 1.3 / 160) = 77 frames)."""
MIN_COVERAGE = 0.75
"""The last partial is kept (zero-padded) when at least this share of it holds signal."""
BATCH = 8
"""Partials per onnxruntime call. Its LSTM holds about 2 MB per partial of the batch (+21 MB at 8, +56 MB at
32, measured) for little speed: 8.9 ms per partial at 8, 8.4 at 16, 13 one at a time."""
MEL_CHUNK = 1000
"""Frames per FFT block of :func:`mel_spectrogram` (10 s of signal)."""

_LOCK = threading.Lock()
_MODEL: _Ge2e | None = None


def slaney_mel_filterbank(
    *, sample_rate: int = ANALYSIS_RATE, n_fft: int = N_FFT, n_mels: int = MEL_BANDS
) -> np.ndarray:
    """Mel filterbank ``(n_mels, n_fft // 2 + 1)``, 0 Hz to Nyquist: the Slaney mel scale, area-normalised.

    The same matrix as ``librosa.filters.mel(sr=..., n_fft=..., n_mels=...)`` with its defaults.
    """
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0

    def hz_to_mel(hz: np.ndarray) -> np.ndarray:
        hz = np.asarray(hz, dtype=np.float64)
        linear = hz / f_sp
        log = min_log_mel + np.log(np.maximum(hz, min_log_hz) / min_log_hz) / logstep
        return np.where(hz >= min_log_hz, log, linear)

    def mel_to_hz(mel: np.ndarray) -> np.ndarray:
        linear = f_sp * mel
        log = min_log_hz * np.exp(logstep * (np.maximum(mel, min_log_mel) - min_log_mel))
        return np.where(mel >= min_log_mel, log, linear)

    fft_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = mel_to_hz(np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(sample_rate / 2)), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


_MEL_BASIS = slaney_mel_filterbank()
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann


def mel_spectrogram(audio16k: np.ndarray) -> np.ndarray:
    """Power mel spectrogram ``(1 + n // 160, 40)`` of a 16 kHz signal, frames centred (zero-padded edges)."""
    x = np.asarray(audio16k, dtype=np.float32)
    padded = np.pad(x, N_FFT // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    mel = np.empty((frames.shape[0], MEL_BANDS), dtype=np.float32)
    for first in range(0, frames.shape[0], MEL_CHUNK):  # bounded memory for long spans
        spectrum = np.fft.rfft(frames[first : first + MEL_CHUNK] * _WINDOW, axis=1)
        mel[first : first + MEL_CHUNK] = (spectrum.real**2 + spectrum.imag**2) @ _MEL_BASIS.T
    return mel


def partial_frames(n_samples: int, step_s: float, min_coverage: float = MIN_COVERAGE) -> list[int]:
    """First mel frame of each 1.6 s partial over ``n_samples`` samples, one every ``step_s`` (Resemblyzer's slicing).

    Always at least one partial; the last is dropped when less than ``min_coverage`` of it holds signal.
    """
    frame_step = round(step_s * ANALYSIS_RATE / HOP)
    if not 0 < frame_step <= PARTIAL_FRAMES:
        raise InvalidArgument(f"step_s must be between 0.01 and {PARTIAL_S:g} s, got {step_s!r}")
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + frame_step + 1), frame_step))
    coverage = (n_samples - starts[-1] * HOP) / (PARTIAL_FRAMES * HOP)
    if coverage < min_coverage and len(starts) > 1:
        starts.pop()
    return starts


class _Ge2e:
    """The GE2E network in onnxruntime: batches of ``(160, 40)`` mel partials -> unit 256-vectors."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort  # imported lazily, as for the other models

        with path.open("rb") as model_file:
            digest = hashlib.file_digest(model_file, "sha256").hexdigest()
        if digest != MODEL_SHA256:
            raise RuntimeError(f"{path} has sha256 {digest}, expected {MODEL_SHA256}: reinstall voiceprep")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.enable_cpu_mem_arena = False  # each run's tensors go back to the system
        self._session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, mels: np.ndarray) -> np.ndarray:
        """Unit-length embeddings ``(batch, 256)`` of mel partials ``(batch, frames, 40)``."""
        frames_first = np.ascontiguousarray(mels.transpose(1, 0, 2), dtype=np.float32)
        (raw,) = self._session.run(None, {"mels": frames_first})
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        return raw / np.where(norms > 0, norms, 1)


def _model() -> _Ge2e:
    global _MODEL
    with _LOCK:
        if _MODEL is None:
            _MODEL = _Ge2e(MODEL_PATH)
        return _MODEL


def _span(audio16k: np.ndarray, start_s: float | None, end_s: float | None) -> tuple[np.ndarray, int]:
    x = signal("audio16k", audio16k, mono=True)
    first = 0 if start_s is None else round(number("start_s", start_s) * ANALYSIS_RATE)
    stop = x.size if end_s is None else round(number("end_s", end_s) * ANALYSIS_RATE)
    stop = min(stop, x.size)
    if stop <= first:
        raise InvalidArgument(f"the span [{start_s}, {end_s}) s holds no samples of a {x.size}-sample signal")
    return x[first:stop], first


def _partials(
    audio16k: np.ndarray, step_s: float, trim_pauses: bool
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(partial embeddings, index of each sample of the model's input in ``audio16k``, partial start frames)."""
    if trim_pauses:
        wav, kept = preprocess(audio16k)
    else:
        wav, kept = raise_volume(audio16k), np.arange(audio16k.size)
    starts = partial_frames(wav.size, step_s)
    padded_size = (starts[-1] + PARTIAL_FRAMES) * HOP
    if padded_size >= wav.size:
        wav = np.pad(wav, (0, padded_size - wav.size))
    mel = mel_spectrogram(wav)
    model = _model()
    vectors = []
    for first in range(0, len(starts), BATCH):
        batch = np.stack([mel[s : s + PARTIAL_FRAMES] for s in starts[first : first + BATCH]])
        vectors.append(model(batch))
    return np.concatenate(vectors), kept, starts


def embed(
    audio16k: np.ndarray,
    start_s: float | None = None,
    end_s: float | None = None,
    *,
    step_s: float = UTTERANCE_STEP_S,
    trim_pauses: bool = True,
) -> np.ndarray:
    """The speaker embedding (unit 256-vector) of ``[start_s, end_s)`` of a 16 kHz mono signal.

    Resemblyzer's ``preprocess_wav`` + ``embed_utterance``: partials every ``step_s`` (0.77 s, its
    ``rate=1.3``) averaged and L2-normalised. ``trim_pauses=False`` keeps the pauses (volume only).
    """
    span, _ = _span(audio16k, start_s, end_s)
    vectors, _, _ = _partials(span, number("step_s", step_s, strict=True), trim_pauses)
    mean = vectors.mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def partial_embeddings(
    audio16k: np.ndarray,
    start_s: float | None = None,
    end_s: float | None = None,
    *,
    step_s: float = 0.5,
    trim_pauses: bool = True,
) -> Partials:
    """Embeddings of 1.6 s partials every ``step_s`` along ``[start_s, end_s)`` of a 16 kHz mono signal.

    With ``trim_pauses`` (Resemblyzer's preprocessing) the partials are laid over the speech with long
    pauses cut short, so a partial may span more than 1.6 s of the signal; its times say which part.
    """
    span, offset = _span(audio16k, start_s, end_s)
    vectors, kept, starts = _partials(span, number("step_s", step_s, strict=True), trim_pauses)
    heard_s = kept.size / ANALYSIS_RATE
    if kept.size == 0:  # nothing but silence: the partial is all padding; place it over the span
        kept = np.arange(span.size)
    first = np.array([min(s * HOP, kept.size - 1) for s in starts])
    last = np.array([min((s + PARTIAL_FRAMES) * HOP, kept.size) - 1 for s in starts])
    starts_s = (offset + kept[first]) / ANALYSIS_RATE
    ends_s = (offset + kept[np.maximum(last, first)] + 1) / ANALYSIS_RATE
    return Partials(starts_s=starts_s, ends_s=ends_s, vectors=vectors, heard_s=heard_s)
