"""Channel strategies: how a multi-channel recording becomes the mono signal voiceprep analyses and delivers.

CosyVoice listens only to channel 0 of a stereo file, and a plain average can cancel an anti-phase pair, so
voiceprep measures the channels and decides on the numbers (:func:`choose_channels`).

Strategies:

``first``
    Channel 0, whatever it holds (what CosyVoice itself would hear).
``mean``
    The average of all channels.
``best`` (default)
    Measured choice, in this order:

    1. **Silent channels are dropped.** A channel is silent when its RMS level is below
       :data:`SILENT_LEVEL_DBFS` or more than :data:`SILENT_RELATIVE_DB` below the loudest channel. If every
       channel is silent (a very quiet file) only the relatively silent ones are dropped (reason
       ``all_silent``).
    2. **Noisier channels are dropped.** Each channel's SNR is estimated as its speech level (95th
       percentile of 20 ms frame RMS) minus its noise floor (10th percentile). A channel is noisier than the
       cleanest remaining one when its SNR is more than :data:`NOISIER_SNR_DB` worse, or when its speech
       level is within :data:`SIMILAR_SPEECH_DB` and its noise floor more than :data:`NOISIER_FLOOR_DB`
       higher.
    3. **Anti-phase is caught.** If the mean of the remaining channels is more than :data:`ANTI_PHASE_LOSS_DB`
       below the loudest of them *and* the loss comes from cancellation (the cross terms are negative), two
       channels that are strongly anti-correlated (:data:`ANTI_PHASE_CORRELATION`) at similar levels
       (:data:`SIMILAR_LEVEL_DB`) are combined as an inverted mean (the quieter one flipped); otherwise the
       loudest channel is used alone.
    4. Otherwise the mean of the remaining channels (reason ``channels_similar`` when nothing was dropped).

More than two channels follow the same steps: silent and noisier channels are dropped, the rest are averaged,
and cancellation among them falls back to the loudest one. A 4-channel Ambisonic B-format file (W, X, Y, Z,
like the room responses in ``shared/data/rir``) is *not* decoded as such: nothing in a WAV file says it is
B-format, so its channels are treated as four microphones. The figure-of-eight X/Y/Z channels can be
anti-phase to W, in which case step 3 keeps the loudest channel (usually W) rather than a cancelled mean.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.audio import io
from pipeline.audio.io import AudioInfo

STRATEGIES: tuple[str, ...] = ("first", "mean", "best")
"""Accepted values of ``channel_strategy``."""

DIGITAL_SILENCE_DBFS = -120.0
"""Floor for every level in dBFS: digital silence is reported as this, never as -inf."""

SILENT_LEVEL_DBFS = -60.0
"""A channel whose RMS level is below this is silent (dBFS)."""

SILENT_RELATIVE_DB = 40.0
"""A channel more than this many dB below the loudest channel is silent."""

NOISIER_SNR_DB = 6.0
"""A channel whose estimated SNR is worse than the cleanest channel's by more than this is noisier (dB)."""

NOISIER_FLOOR_DB = 10.0
"""At similar speech level, a noise floor higher by more than this makes a channel noisier (dB)."""

SIMILAR_SPEECH_DB = 6.0
"""Speech levels within this many dB count as similar for the noise-floor rule."""

ANTI_PHASE_LOSS_DB = 6.0
"""The mean losing more than this against the loudest channel (through cancellation) is anti-phase (dB)."""

ANTI_PHASE_CORRELATION = 0.7
"""An anti-phase pair is combined as an inverted mean only if its correlation is at or below minus this."""

SIMILAR_LEVEL_DB = 6.0
"""Channel levels within this many dB count as similar for the inverted mean."""

FRAME_S = 0.02
"""Frame length (seconds) of the frame RMS used for noise floor and speech level."""

NOISE_PERCENTILE = 10.0
"""Percentile of frame RMS taken as the noise floor."""

SPEECH_PERCENTILE = 95.0
"""Percentile of frame RMS taken as the speech level."""

EXAMINE_WINDOWS = 12
"""Most windows :func:`examine_channels` reads from a long file."""

EXAMINE_WINDOW_S = 5.0
"""Target length of each examined window (seconds): ``max_seconds`` is split into windows of about this
length, or into :data:`EXAMINE_WINDOWS` longer ones when it exceeds that many."""


def _db(power: Any) -> Any:
    """Power (mean square, a number or an array) to dBFS, floored at :data:`DIGITAL_SILENCE_DBFS`."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 10.0 * np.log10(power)
    floor = DIGITAL_SILENCE_DBFS
    return np.maximum(np.nan_to_num(out, nan=floor, neginf=floor, posinf=floor), floor)


def _r(value: float) -> float:
    """Round a dB value for the detail sentences and dictionaries."""
    return round(float(value), 2)


@dataclass(frozen=True)
class ChannelChoice:
    """How to turn a block of ``(n, channels)`` samples into mono (``mono = block @ weights``), and the
    measurements of the channels it was decided on.

    ``method`` is one of ``mono``, ``first``, ``mean``, ``channel``, ``inverted_mean``; ``reason`` one of
    ``mono_input``, ``requested``, ``first_channel_silent``, ``channel_silent``, ``channel_noisier``,
    ``anti_phase``, ``channels_similar``, ``all_silent``. ``stats`` is what was measured, as the manifests
    show it: per channel ``level_dbfs`` (RMS), ``noise_floor_dbfs``, ``speech_level_dbfs`` (dBFS, floored
    at -120) and ``snr_db`` (speech level minus noise floor); ``correlation`` of channels 0 and 1 and
    ``mean_loss_db``, the plain mean's level against the loudest channel (``None`` when a channel is silent
    or constant); ``seconds_examined``. ``stats`` is ``None`` when nothing was measured (mono input, or
    ``first``/``mean`` chosen without samples).
    """

    strategy: str
    method: str
    weights: tuple[float, ...]
    reason: str
    detail: str
    first_channel_silent: bool
    stats: dict[str, Any] | None

    @property
    def channels(self) -> int:
        """Number of input channels this choice applies to."""
        return len(self.weights)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for manifests."""
        return {**asdict(self), "weights": list(self.weights)}


class _StatsAccumulator:
    """Running sums for :func:`_measure`; frames of :data:`FRAME_S` carry over block edges."""

    def __init__(self, channels: int, frame: int) -> None:
        self.channels = channels
        self.frame = frame
        self.count = 0
        self.sums = np.zeros(channels)
        self.power = np.zeros((channels, channels))
        self.frame_db: list[np.ndarray] = []
        self.rest = np.zeros((0, channels))

    def add(self, block: np.ndarray) -> None:
        x = block.astype(np.float64)  # a copy: the zeros below go in place
        # Decoders hand over finite samples (io zeroes a float file's NaN and inf); checking first spares
        # nan_to_num's four passes (half of examining a stereo recording's 60 s).
        if not np.isfinite(x).all():
            np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        self.count += x.shape[0]
        self.sums += x.sum(axis=0)
        self.power += x.T @ x
        if self.rest.shape[0]:
            x = np.concatenate([self.rest, x], axis=0)
        whole = (x.shape[0] // self.frame) * self.frame
        if whole:
            frames = x[:whole].reshape(-1, self.frame, self.channels)
            self.frame_db.append(_db(np.mean(frames**2, axis=1)))
        self.rest = x[whole:]

    def finish(self, sample_rate: int) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
        """:attr:`ChannelChoice.stats`, the power matrix (mean of ``x_i * x_j``: the level of any mix of the
        channels) and the channel means (with it, the correlation of any pair)."""
        n = max(self.count, 1)
        power = self.power / n
        means = self.sums / n
        levels = tuple(_db(float(power[i, i])) for i in range(self.channels))
        if self.frame_db:
            frame_db = np.concatenate(self.frame_db, axis=0)
        elif self.rest.shape[0]:  # shorter than one frame: the partial frame is all there is
            frame_db = _db(np.mean(self.rest**2, axis=0, keepdims=True))
        else:
            frame_db = np.full((1, self.channels), DIGITAL_SILENCE_DBFS)
        noise = [_r(v) for v in np.percentile(frame_db, NOISE_PERCENTILE, axis=0)]
        speech = [_r(v) for v in np.percentile(frame_db, SPEECH_PERCENTILE, axis=0)]
        correlation = None
        mean_loss = None
        if self.channels >= 2:
            correlation = _pearson(power, means, levels, 0, 1)
            loudest = max(levels)
            if loudest >= SILENT_LEVEL_DBFS:
                weights = np.full(self.channels, 1.0 / self.channels)
                mean_loss = _r(_db(float(weights @ power @ weights)) - loudest)
        stats = {
            "level_dbfs": [_r(v) for v in levels],
            "noise_floor_dbfs": noise,
            "speech_level_dbfs": speech,
            "correlation": correlation,
            "mean_loss_db": mean_loss,
            "seconds_examined": round(self.count / sample_rate, 4),
            "snr_db": [round(s - f, 2) for s, f in zip(speech, noise, strict=True)],
        }
        return stats, power, means


def _pearson(power: np.ndarray, means: np.ndarray, levels: Sequence[float], i: int, j: int) -> float | None:
    """Pearson correlation of channels i and j from second moments; None if either is silent or constant."""
    if levels[i] < SILENT_LEVEL_DBFS or levels[j] < SILENT_LEVEL_DBFS:
        return None
    var_i = power[i, i] - means[i] ** 2
    var_j = power[j, j] - means[j] ** 2
    if var_i <= 0.0 or var_j <= 0.0:
        return None
    cov = power[i, j] - means[i] * means[j]
    return round(float(np.clip(cov / math.sqrt(var_i * var_j), -1.0, 1.0)), 4)


def _measure(blocks: Iterable[np.ndarray], sample_rate: int) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Measure every channel over ``blocks`` (see :meth:`_StatsAccumulator.finish`).

    Levels are RMS over all samples; noise floor and speech level are the :data:`NOISE_PERCENTILE` and
    :data:`SPEECH_PERCENTILE` percentiles of :data:`FRAME_S` frame RMS. Memory grows with the number of
    frames, not samples. Non-finite samples count as zero. ``blocks`` holds at least one (maybe empty) block.
    """
    acc: _StatsAccumulator | None = None
    for block in blocks:
        arr = block[:, None] if block.ndim == 1 else block
        acc = acc or _StatsAccumulator(arr.shape[1], max(1, round(FRAME_S * sample_rate)))
        acc.add(arr)
    assert acc is not None, "measuring channels needs at least one block"
    return acc.finish(sample_rate)


def _active_channels(levels: Sequence[float]) -> tuple[list[int], bool]:
    """Channels that are not silent, and whether every channel was silent (then the relative rule only)."""
    loudest = max(levels)
    audible = [i for i, lv in enumerate(levels) if lv >= loudest - SILENT_RELATIVE_DB]
    active = [i for i in audible if levels[i] >= SILENT_LEVEL_DBFS]
    return (active, False) if active else (audible, True)


def _weights_for(
    channels: int, members: list[int], signs: dict[int, float] | None = None
) -> tuple[float, ...]:
    w = [0.0] * channels
    for i in members:
        w[i] = (signs or {}).get(i, 1.0) / len(members)
    return tuple(w)


def _names(indices: list[int]) -> str:
    label = "channel" if len(indices) == 1 else "channels"
    return f"{label} {', '.join(str(i) for i in indices)}"


def _is(indices: list[int]) -> str:
    return "is" if len(indices) == 1 else "are"


def choose_channels(
    blocks: Iterable[np.ndarray] | None,
    *,
    channels: int,
    sample_rate: int = 0,
    channel_strategy: str = "best",
) -> ChannelChoice:
    """Measure the ``channels`` channels of ``blocks`` (``(n, channels)`` samples at ``sample_rate``, at
    least one block, maybe empty) and decide how to mix them to mono, following ``channel_strategy`` (see
    the module docstring).

    Mono input is not measured. ``blocks`` may be None (nothing measured) for mono input and for
    ``first``/``mean``; then ``first_channel_silent`` is False. ``best`` on more than one channel needs them.
    """
    if channels == 1:
        return ChannelChoice(channel_strategy, "mono", (1.0,), "mono_input", "the input is mono", False, None)
    if blocks is None:
        assert channel_strategy != "best", "the best channel mix needs the samples"
        return _requested(None, channels, channel_strategy, False)
    stats, power, means = _measure(blocks, sample_rate)
    levels = stats["level_dbfs"]
    active, all_silent = _active_channels(levels)
    first_silent = 0 not in active
    if channel_strategy != "best":
        return _requested(stats, channels, channel_strategy, first_silent)
    dropped_silent = [i for i in range(channels) if i not in active]
    notes: list[str] = []
    if all_silent:
        notes.append(f"every channel is below {SILENT_LEVEL_DBFS:.0f} dBFS (loudest {max(levels):.0f} dBFS)")
    if dropped_silent:
        where = ", ".join(f"{levels[i]:.0f}" for i in dropped_silent)
        notes.append(f"{_names(dropped_silent)} {_is(dropped_silent)} silent ({where} dBFS)")
    kept, noisier = _drop_noisier(stats, active)
    if noisier:
        snr = stats["snr_db"]
        where = ", ".join(f"{snr[i]:.0f}" for i in noisier)
        best = max(kept, key=lambda i: snr[i])
        notes.append(
            f"{_names(noisier)} {_is(noisier)} noisier (SNR {where} dB vs {snr[best]:.0f} dB on channel {best})"
        )
    if all_silent:
        reason = "all_silent"
    elif dropped_silent:
        reason = "first_channel_silent" if first_silent else "channel_silent"
    elif noisier:
        reason = "channel_noisier"
    else:
        reason = "channels_similar"
    anti = _anti_phase(levels, power, means, kept)
    if anti is not None:
        method, weights, sentence = anti
        notes.append(sentence)
        reason = "anti_phase" if reason == "channels_similar" else reason
    elif len(kept) == 1:
        method, weights = "channel", _weights_for(channels, kept)
        notes.append(f"using channel {kept[0]}")
    else:
        method, weights = "mean", _weights_for(channels, kept)
        if not notes:
            notes.append(f"channels have similar level and noise ({_level_list(levels)})")
        notes.append(f"using the mean of {_names(kept)}")
    detail = "; ".join(notes)
    return ChannelChoice("best", method, weights, reason, detail, first_silent, stats)


def _level_list(levels: Sequence[float]) -> str:
    return ", ".join(f"{lv:.0f}" for lv in levels) + " dBFS"


def _requested(
    stats: dict[str, Any] | None, channels: int, strategy: str, first_silent: bool
) -> ChannelChoice:
    if strategy == "first":
        method, weights, what = "first", _weights_for(channels, [0]), "using channel 0 as requested"
    else:
        method, weights, what = "mean", _weights_for(channels, list(range(channels))), "using the mean"
        what += " as requested"
    detail = what
    if stats is not None:
        detail += f" (levels {_level_list(stats['level_dbfs'])})"
    if first_silent:
        detail += "; channel 0 is silent, so a service that reads only channel 0 hears nothing"
    return ChannelChoice(strategy, method, weights, "requested", detail, first_silent, stats)


def _drop_noisier(stats: dict[str, Any], active: list[int]) -> tuple[list[int], list[int]]:
    """Split ``active`` into (kept, noisier) against the channel with the best estimated SNR."""
    snr, speech, floor = stats["snr_db"], stats["speech_level_dbfs"], stats["noise_floor_dbfs"]
    best = max(active, key=lambda i: (snr[i], -i))
    kept: list[int] = []
    noisier: list[int] = []
    for i in active:
        worse_snr = snr[best] - snr[i] > NOISIER_SNR_DB
        similar_speech = abs(speech[i] - speech[best]) <= SIMILAR_SPEECH_DB
        higher_floor = floor[i] - floor[best] > NOISIER_FLOOR_DB
        (noisier if worse_snr or (similar_speech and higher_floor) else kept).append(i)
    return kept, noisier


def _anti_phase(
    levels: Sequence[float], power: np.ndarray, means: np.ndarray, kept: list[int]
) -> tuple[str, tuple[float, ...], str] | None:
    """If the mean of ``kept`` cancels, return (method, weights, sentence) for the fix; else None."""
    if len(kept) < 2:
        return None
    channels = len(levels)
    weights = np.asarray(_weights_for(channels, kept))
    loudest = max(kept, key=lambda i: (levels[i], -i))
    loss = _db(float(weights @ power @ weights)) - levels[loudest]
    cross = power[np.ix_(kept, kept)]
    if loss >= -ANTI_PHASE_LOSS_DB or float(cross.sum() - np.trace(cross)) >= 0.0:  # no cancellation
        return None
    head = f"the mean of {_names(kept)} is {-loss:.0f} dB below channel {loudest} (anti-phase)"
    if len(kept) == 2:
        other = kept[0] if kept[1] == loudest else kept[1]
        corr = _pearson(power, means, levels, loudest, other)
        similar = abs(levels[loudest] - levels[other]) <= SIMILAR_LEVEL_DB
        if corr is not None and corr <= -ANTI_PHASE_CORRELATION and similar:
            weights = _weights_for(channels, kept, {other: -1.0})
            sentence = (
                f"{head}; correlation {corr:.2f} at similar levels, so using the mean "
                f"with channel {other} inverted"
            )
            return "inverted_mean", weights, sentence
        why = f"correlation {corr:.2f}" if corr is not None else "correlation unknown"
        if not similar:
            why += f", levels differ by {abs(levels[loudest] - levels[other]):.0f} dB"
        return "channel", _weights_for(channels, [loudest]), f"{head}; {why}, so using channel {loudest}"
    return "channel", _weights_for(channels, [loudest]), f"{head}; using channel {loudest}"


def examine_channels(
    path: str | Path,
    *,
    channel_strategy: str = "best",
    max_seconds: float = 60.0,
    start_s: float = 0.0,
    end_s: float | None = None,
    info: AudioInfo | None = None,
) -> ChannelChoice:
    """Probe ``path`` (unless ``info``, which also names the stream, is given), measure its channels over
    a bounded sample, and choose.

    Mono files are not read. For a multi-channel file the range ``[start_s, end_s)`` is measured whole
    when it is at most ``max_seconds`` long; otherwise up to :data:`EXAMINE_WINDOWS` windows totalling
    ``max_seconds`` are read at evenly spaced centres across the range, so the cost does not grow with the
    file's length. When the file's length is unknown, the first ``max_seconds`` of the range are measured.
    Every strategy is measured (not only ``best``) so ``first_channel_silent`` is known.
    """
    if info is None:
        info = io.probe(path, hash=False)
    if info.channels == 1:
        return choose_channels(None, channels=1, channel_strategy=channel_strategy)
    # A range past the end decodes nothing: measure it as silence rather than fail.
    empty = np.zeros((0, info.channels), dtype=np.float32)
    start = float(start_s)
    stop = info.duration_s
    if end_s is not None:
        stop = float(end_s) if stop is None else min(float(end_s), stop)
    with io.AudioReader(path, max_input_s=None, info=info) as reader:
        if stop is None or stop - start <= max_seconds:
            # Never read more than max_seconds, even if the header understates the length.
            until = start + max_seconds if end_s is None else min(float(end_s), start + max_seconds)
            blocks = reader.blocks(start_s=start, end_s=until)
        else:
            blocks = _sample_windows(reader, start, stop, max_seconds)
        return choose_channels(
            chain([empty], blocks),
            channels=info.channels,
            sample_rate=info.sample_rate,
            channel_strategy=channel_strategy,
        )


def _sample_windows(
    reader: io.AudioReader, start: float, stop: float, max_seconds: float
) -> Iterable[np.ndarray]:
    count = min(EXAMINE_WINDOWS, max(1, math.ceil(max_seconds / EXAMINE_WINDOW_S)))
    window = max_seconds / count
    span = stop - start
    for k in range(count):
        centre = start + span * (k + 0.5) / count
        lo = max(start, centre - window / 2)
        parts = list(reader.blocks(start_s=lo, end_s=min(stop, lo + window)))
        if parts:
            yield parts[0] if len(parts) == 1 else np.concatenate(parts)


def mix(block: np.ndarray, choice: ChannelChoice) -> np.ndarray:
    """Apply ``choice`` to ``block`` (``(n, channels)``, or ``(n,)`` for mono) and return ``(n,)`` float32."""
    arr = block[:, None] if block.ndim == 1 else block
    used = [(i, np.float32(w)) for i, w in enumerate(choice.weights) if w != 0.0]
    if not used:
        return np.zeros(arr.shape[0], dtype=np.float32)
    first, weight = used[0]
    if len(used) == 1 and weight == 1.0:
        return np.ascontiguousarray(arr[:, first], dtype=np.float32)
    # A loop over columns is several times faster than a (n, c) @ (c,) matmul for a handful of channels.
    out = np.multiply(arr[:, first], weight, dtype=np.float32)
    for i, w in used[1:]:
        out += np.multiply(arr[:, i], w, dtype=np.float32)
    return out
