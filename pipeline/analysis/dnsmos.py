"""DNSMOS P.835 (SIG, BAK, OVRL) for a 16 kHz mono window, with the models shipped in ``speechmos``.

The ``speechmos`` wheel carries Microsoft's DNSMOS ONNX models (MIT licence) inside the package, so
nothing is downloaded. Its own ``dnsmos.run`` also computes the P.808 score (a librosa mel spectrogram
per segment, slow on first use), opens its sessions with onnxruntime's default thread pool (one thread
per core: a process pool of N workers would run N x cores threads) and, through a float rounding in its
segment arithmetic, silently skips every 1 s hop from the eighth on (inputs of 17 s or more). This
module therefore runs the P.835 model itself:

* the same model file (``dnsmos_models/sig_bak_ovr.onnx``, found without importing ``speechmos.dnsmos``,
  which imports ``requests``: 14 MB and 0.1 s per process for nothing here) and the same calibration
  polynomials (``personalized=False``: :data:`CALIBRATION`, the coefficients of
  ``speechmos.dnsmos.DNSMOS.get_polyfit_val``; ``tests/test_dnsmos.py`` checks they give its values);
* the same segmentation: input shorter than 9.01 s is tiled by doubling, then 9.01 s segments every
  1 s are scored and the calibrated scores averaged (integer sample arithmetic, so every hop counts);
* one onnxruntime session per process, created lazily, with ``intra_op_num_threads=1`` by default
  (see :func:`configure`); :func:`warm_up` pays the session start-up once per worker.

No P.808 score is computed. Input shorter than 1 s gives ``None`` with a ``not_measured`` reason, and a
silent window (RMS below -60 dBFS) gives ``None`` with a ``no_speech`` reason: the model scores digital
silence around OVRL 1.8 / BAK 3.5, a number that means nothing.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort

from pipeline.analysis.base import ANALYSIS_RATE, Analysis
from pipeline.audio.arguments import integer, signal

SEGMENT_SAMPLES = 144160
"""Samples per scored segment: 9.01 s at 16 kHz, the model's fixed input length."""

HOP_SAMPLES = ANALYSIS_RATE
"""Hop between scored segments: 1 s."""

MIN_INPUT_S = 1.0
"""Shorter input is not scored."""

SILENCE_DBFS = -60.0
"""A window whose RMS is below this level is treated as silent and not scored."""

METRICS = ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")
"""Names of the values :func:`dnsmos` returns."""


def _speechmos_folder() -> Path:
    """The installed ``speechmos`` package's folder (its modules are not imported)."""
    spec = importlib.util.find_spec("speechmos")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the speechmos package (it ships the DNSMOS model) is not installed")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


MODEL_PATH = _speechmos_folder() / "dnsmos_models" / "sig_bak_ovr.onnx"
"""The P.835 model file inside the installed ``speechmos`` package."""

CALIBRATION = (
    np.poly1d([-0.08397278, 1.22083953, 0.0052439]),
    np.poly1d([-0.13166888, 1.60915514, -0.39604546]),
    np.poly1d([-0.06766283, 1.11546468, 0.04602535]),
)
"""The polynomials mapping the model's raw (SIG, BAK, OVRL) to calibrated scores: speechmos's
``DNSMOS.get_polyfit_val`` with ``is_personalized_MOS=False``, coefficient for coefficient."""


class _P835Model:
    """The P.835 session of speechmos's scorer, opened with explicit thread settings."""

    def __init__(self, model_path: Path, *, intra_op_num_threads: int, inter_op_num_threads: int) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_num_threads
        options.inter_op_num_threads = inter_op_num_threads
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Without the arena each run's tensors go back to the system: peak memory 266 -> 190 MB per
        # process (measured), for about 15 % more time per segment.
        options.enable_cpu_mem_arena = False
        self.onnx_sess = ort.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def score_segment(self, segment: np.ndarray) -> tuple[float, float, float]:
        """Calibrated (SIG, BAK, OVRL) of one 9.01 s segment."""
        raw = self.onnx_sess.run(None, {"input_1": segment[np.newaxis, :].astype(np.float32)})[0][0]
        sig, bak, ovrl = (poly(value) for poly, value in zip(CALIBRATION, raw[:3], strict=True))
        return float(sig), float(bak), float(ovrl)


_lock = threading.Lock()
_threads = {"intra_op_num_threads": 1, "inter_op_num_threads": 1}
_model: _P835Model | None = None


def configure(*, intra_op_num_threads: int = 1, inter_op_num_threads: int = 1) -> None:
    """Set onnxruntime's thread counts for this process; an open session is reopened on next use.

    Keep ``intra_op_num_threads=1`` under a process pool (one model per worker); raise it for a single
    process scoring many windows.
    """
    integer("intra_op_num_threads", intra_op_num_threads)
    integer("inter_op_num_threads", inter_op_num_threads)
    global _model
    with _lock:
        wanted = {"intra_op_num_threads": intra_op_num_threads, "inter_op_num_threads": inter_op_num_threads}
        if wanted != _threads:
            _threads.update(wanted)
            _model = None


def _get_model() -> _P835Model:
    global _model
    with _lock:
        if _model is None:
            if not MODEL_PATH.is_file():
                raise FileNotFoundError(
                    f"the DNSMOS model is missing from the speechmos package: {MODEL_PATH}"
                )
            _model = _P835Model(MODEL_PATH, **_threads)
        return _model


def warm_up() -> None:
    """Open the session and score one short noise window, so the first real window is not slow."""
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(SEGMENT_SAMPLES) * 0.01).astype(np.float32)
    _get_model().score_segment(noise)


def segments(audio16k: np.ndarray) -> list[np.ndarray]:
    """The 9.01 s segments DNSMOS scores for ``audio16k``: tile short input by doubling, hop 1 s."""
    audio = np.asarray(audio16k, dtype=np.float32)
    while audio.shape[0] < SEGMENT_SAMPLES:
        audio = np.concatenate([audio, audio])
    # As speechmos counts: int() truncates toward zero, so 9.x s of input gives one segment.
    count = int(audio.shape[0] // ANALYSIS_RATE - SEGMENT_SAMPLES / ANALYSIS_RATE) + 1
    out = []
    for index in range(count):
        start = index * HOP_SAMPLES
        segment = audio[start : start + SEGMENT_SAMPLES]
        if segment.shape[0] == SEGMENT_SAMPLES:
            out.append(segment)
    return out


def dnsmos(audio16k: np.ndarray) -> Analysis:
    """DNSMOS P.835 ``dnsmos_sig``, ``dnsmos_bak``, ``dnsmos_ovrl`` (1-5) of a 16 kHz mono window.

    ``audio16k`` is float in [-1, 1] (samples beyond are clipped to it, as resampling can overshoot).
    Windows under :data:`MIN_INPUT_S` or silent (RMS below :data:`SILENCE_DBFS`) give ``None`` plus a
    reason. The first call in a process opens the model (see :func:`warm_up`).
    """
    audio = signal("audio16k", audio16k, mono=True)
    result = Analysis()
    if audio.shape[0] < MIN_INPUT_S * ANALYSIS_RATE:
        why = f"not_measured: {audio.shape[0] / ANALYSIS_RATE:.2f} s of audio, DNSMOS needs {MIN_INPUT_S:g} s"
        for name in METRICS:
            result.put(name, None, why=why)
        return result
    audio = np.clip(audio.astype(np.float32), -1.0, 1.0)
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    if rms <= 10.0 ** (SILENCE_DBFS / 20.0):
        why = f"no_speech: the window is silent (RMS below {SILENCE_DBFS:g} dBFS)"
        for name in METRICS:
            result.put(name, None, why=why)
        return result
    model = _get_model()
    scores = np.array([model.score_segment(segment) for segment in segments(audio)], dtype=np.float64)
    means = scores.mean(axis=0)
    for name, value in zip(METRICS, means, strict=True):
        result.put(name, float(value))
    return result
