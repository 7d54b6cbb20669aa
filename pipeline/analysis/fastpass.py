"""The fast pass: one streaming decode of a recording yields every recording-level metric.

Each decoded block is seen twice: at the native rate and channel count (clipping, true peak, bandwidth,
DC offset and loudness are properties of the source) and as the 16 kHz mono analysis view (VAD, frame
energy, SNR, reverberation, DNSMOS), which is also high-passed as the render will (its *speech band*:
frame levels, the noise under the speech, SNR, rumble and hum). Memory is bounded by the number of 10 ms frames, not samples: a
one-hour file holds 360 000 frames of a few floats each.

The result is an :class:`~pipeline.analysis.base.Analysis`: metrics (the names used everywhere), the
reasons for every metric that could not be measured, per-frame arrays and the speech segments (what
``pipeline.analyze`` returns).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from pipeline.analysis.bandwidth import BandwidthMeter
from pipeline.analysis.base import ANALYSIS_RATE, FRAME_S, Analysis, speech_metrics, whole_frames
from pipeline.analysis.clipping import ClippingDetector
from pipeline.analysis.energy import DcOffsetMeter, FrameEnergy, SpeechBandFilter, frame_db, noise_floor_dbfs
from pipeline.analysis.loudness import LoudnessMeter, TruePeakMeter, amplitude_db
from pipeline.analysis.lowfreq import LowFrequencyMeter
from pipeline.analysis.music import CONTENT_METRICS, ContentMeter, content_metrics
from pipeline.analysis.noise import NoiseTracker
from pipeline.analysis.reverb import ReverbMeter
from pipeline.analysis.snr import MIN_SNR_FRAMES, WadaAccumulator, clean_speech_power, frame_noise, vad_snr_db
from pipeline.analysis.vad import WebRtcVad, segments_from_mask, speech_mask
from pipeline.audio import arguments
from pipeline.audio.io import DEFAULT_MAX_INPUT_S, AudioInfo
from pipeline.audio.mix import STRATEGIES, ChannelChoice, choose_channels, mix
from pipeline.audio.resample import StreamResampler
from pipeline.rules.metrics import FAST_PASS_METRICS

DNSMOS_WINDOW_S = 10.0
"""DNSMOS scores non-overlapping windows of this length (its model looks at 9.01 s)."""

DNSMOS_MIN_SPEECH_RATIO = 0.5
"""Windows with less speech than this are left out of the recording's DNSMOS average."""

CONTENT_NOT_MEASURED = (
    "not_measured: a run hears music and singing only in the windows it considers (the chosen clip's "
    "scores are in clips.jsonl); voiceprep analyze and check measure the whole file"
)
"""Why ``music_score`` and ``singing_score`` are null when the content meter was not asked for."""

DNSMOS_NOT_MEASURED = (
    "not_measured: DNSMOS was off for the whole file: voiceprep analyze --dnsmos and check --dnsmos score it "
    "(without the option, files up to 2 minutes); a run scores only the windows it considers (the chosen "
    "clip's scores are in clips.jsonl)"
)
"""Why the ``dnsmos_*`` metrics are null when DNSMOS was off: ``voiceprep run`` has no ``--dnsmos``, so the
hint names the commands that have it."""

REVERB_MIN_SNR_DB = 15.0
"""Below this SNR the decay-based reverb measures mistake noise for echo: they are reported as null."""


class FastPass:
    """Streaming accumulator: feed ``(native block, its mix, 16 kHz mono block)`` triples, then :meth:`finish`.

    ``native`` is ``(n, channels)`` float32 at ``sample_rate``; ``mono16k`` is the analysis view of the
    same audio (the two may be offset by the resampler's delay; their totals agree at the end).
    """

    def __init__(
        self,
        *,
        sample_rate: int,
        channels: int,
        choice: ChannelChoice,
        dnsmos: bool = False,
        content: bool = False,
        vad_aggressiveness: int = 2,
    ) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self.choice = choice
        self.native_frames = 0
        self._clipping = ClippingDetector(sample_rate=sample_rate, channels=channels)
        self._bandwidth = BandwidthMeter(sample_rate=sample_rate)
        # Loudness on the 16 kHz view (K-weighting at 16 kHz: within 0.05 LU of the full-band value for
        # speech, measured, at a third of the cost); peaks on the native samples, where they live.
        self._loudness = LoudnessMeter(sample_rate=ANALYSIS_RATE, channels=1, true_peak=False)
        self._peak = TruePeakMeter(channels=1)
        self._dc = DcOffsetMeter()
        self._band = SpeechBandFilter()
        self._energy = FrameEnergy()
        self._noise = NoiseTracker()
        self._lowfreq = LowFrequencyMeter()
        self._vad = WebRtcVad(aggressiveness=vad_aggressiveness)
        self._reverb = ReverbMeter(sample_rate=ANALYSIS_RATE)
        self._wada = WadaAccumulator()
        self._dnsmos = dnsmos
        self._dnsmos_rest = np.zeros(0, dtype=np.float32)  # the start of the next DNSMOS window
        self._dnsmos_start = 0.0
        self._dnsmos_windows: list[dict[str, float]] = []
        self._content = ContentMeter() if content else None

    def process(self, native: np.ndarray, mono: np.ndarray, mono16k: np.ndarray) -> None:
        """Measure one native block, its native-rate mix ``mono`` and its analysis-view counterpart."""
        self.process_aside(native, mono, mono16k)
        self.process_band(mono16k)

    def process_aside(self, native: np.ndarray, mono: np.ndarray, mono16k: np.ndarray) -> None:
        """The meters of :meth:`process` that share no state with :meth:`process_band`'s: the native-rate
        ones (clipping, bandwidth, true peak, DC), WebRTC VAD and reverberation (about 45 % of the work).

        Each of the two halves may run in its own thread (:func:`run_fast_pass` with ``threads=2``) as
        long as each sees the blocks in order: every meter then holds the state it would hold in one.
        """
        if native.shape[0]:
            self.native_frames += native.shape[0]
            self._clipping.process(native)
            self._bandwidth.process(mono)
            self._peak.process(mono[None, :])
            self._dc.process(mono)
        if mono16k.shape[0]:
            self._vad.process(mono16k)
            self._reverb.process(mono16k)

    def process_band(self, mono16k: np.ndarray) -> None:
        """The other meters of :meth:`process`: the speech band and what reads it, loudness, DNSMOS and
        the content meter (see :meth:`process_aside`)."""
        if mono16k.shape[0]:
            band = self._band.process(mono16k)
            self._energy.process(band)
            self._noise.process(band)
            self._lowfreq.process(mono16k, band)
            self._loudness.process(mono16k)
            self._wada.process(band)
            if self._dnsmos:
                self._feed_dnsmos(mono16k)
            if self._content is not None:
                self._content.process(mono16k)

    def _feed_dnsmos(self, mono16k: np.ndarray) -> None:
        window = round(DNSMOS_WINDOW_S * ANALYSIS_RATE)
        windows, self._dnsmos_rest = whole_frames(self._dnsmos_rest, mono16k, window)
        for audio in windows:
            self._score_dnsmos(audio)

    def _score_dnsmos(self, audio: np.ndarray) -> None:
        from pipeline.analysis.dnsmos import dnsmos

        scores = dnsmos(audio)
        start = self._dnsmos_start
        self._dnsmos_start += audio.shape[0] / ANALYSIS_RATE
        if scores.metrics.get("dnsmos_ovrl") is None:
            return
        self._dnsmos_windows.append(
            {
                "start_s": round(start, 3),
                "end_s": round(self._dnsmos_start, 3),
                "sig": scores.metrics["dnsmos_sig"],
                "bak": scores.metrics["dnsmos_bak"],
                "ovrl": scores.metrics["dnsmos_ovrl"],
            }
        )

    def finish(self, *, min_pause_s: float = 0.5) -> Analysis:
        """Compute every metric from what was accumulated."""
        m = Analysis()
        duration = self.native_frames / self.sample_rate
        m.put("duration_s", round(duration, 6))

        power = self._energy.finish()
        raw_vad = self._vad.finish()
        n = min(power.size, raw_vad.size)
        power, raw_vad = power[:n], raw_vad[:n]
        levels = frame_db(power)
        mask = speech_mask(levels, raw_vad) if n else np.zeros(0, dtype=bool)
        segments = segments_from_mask(mask)
        m.merge(speech_metrics(segments, duration_s=max(duration, n * FRAME_S), min_pause_s=min_pause_s))
        noise = frame_noise(power, mask, self._noise.finish(n))
        m.merge(vad_snr_db(power, mask, noise=noise))
        known = int(mask.sum()) >= MIN_SNR_FRAMES and not np.isnan(noise).any()
        m.merge(self._lowfreq.finish(speech_power=clean_speech_power(power, mask, noise) if known else None))
        m.merge(self._wada.finish())
        m.merge(noise_floor_dbfs(levels, mask))
        m.merge(self._reverb.finish(speech_mask=mask))
        snr = m.metrics.get("snr_db")
        if snr is not None and snr < REVERB_MIN_SNR_DB:
            why = (
                f"not_measured: the SNR ({snr:.0f} dB) is too low to tell room echo from noise "
                f"(needs {REVERB_MIN_SNR_DB:.0f} dB)"
            )
            m.put("rt60_s", None, why=why)
            m.put("reverb_score", None, why=why)
        m.merge(self._clipping.finish())
        m.merge(self._bandwidth.finish(speech_mask=mask))
        loudness = self._loudness.finish()
        m.put("lufs", loudness.metrics.get("lufs"), why=loudness.null_reasons.get("lufs"))
        m.put("true_peak_dbtp", amplitude_db(self._peak.peak))
        m.merge(self._dc.finish())
        m.metrics.pop("clip_level", None)
        m.null_reasons.pop("clip_level", None)

        if self._dnsmos:
            tail = self._dnsmos_rest
            if tail.size and (tail.size >= ANALYSIS_RATE * 2 or not self._dnsmos_windows):
                self._score_dnsmos(tail)
            self._put_dnsmos(m, mask)
        else:
            for key in ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"):
                m.put(key, None, why=DNSMOS_NOT_MEASURED)

        if self._content is not None:
            m.merge(content_metrics(self._content.frames(mask)))
        else:
            for key in CONTENT_METRICS:
                m.put(key, None, why=CONTENT_NOT_MEASURED)

        m.metrics["channel_choice"] = self.choice.to_dict()
        metrics = {name: m.metrics.get(name) for name in FAST_PASS_METRICS}
        metrics["pauses"] = m.metrics.get("pauses", [])
        for name in FAST_PASS_METRICS:
            if metrics[name] is None and name not in m.null_reasons:
                m.null_reasons[name] = "not_measured: no value"
        return Analysis(
            metrics=metrics,
            null_reasons={k: v for k, v in m.null_reasons.items() if metrics.get(k) is None},
            speech_mask=mask,
            frame_db=levels,
            noise_db=frame_db(noise).astype(np.float32),  # NaN (unknown) stays NaN
            speech_segments=segments,
            sample_rate=self.sample_rate,
            channels=self.channels,
            channel_choice=self.choice,
            dnsmos_windows=list(self._dnsmos_windows),
            block_bandwidth_hz=self._bandwidth.block_bandwidths(
                speech_mask=mask,
                noise_aware=self._bandwidth.noise_aware_cliff or self._bandwidth.peak_excess_cliff,
            ),
        )

    def _put_dnsmos(self, m: Analysis, mask: np.ndarray) -> None:
        """Average DNSMOS over the windows that hold enough speech (all windows when none does)."""
        windows = self._dnsmos_windows
        if not windows:
            for key in ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"):
                m.put(key, None, why="not_measured: too little audio for DNSMOS (needs about 1 s)")
            return
        speechy = []
        for w in windows:
            lo, hi = round(w["start_s"] / FRAME_S), round(w["end_s"] / FRAME_S)
            part = mask[lo:hi]
            w["speech_ratio"] = round(float(part.mean()), 3) if part.size else 0.0
            if w["speech_ratio"] >= DNSMOS_MIN_SPEECH_RATIO:
                speechy.append(w)
        chosen = speechy or windows
        for key in ("sig", "bak", "ovrl"):
            m.put(f"dnsmos_{key}", round(float(np.mean([w[key] for w in chosen])), 3))


def run_fast_pass(
    blocks: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
    *,
    sample_rate: int,
    channels: int,
    choice: ChannelChoice,
    dnsmos: bool = False,
    content: bool = False,
    min_pause_s: float = 0.5,
    vad_aggressiveness: int = 2,
    threads: int = 1,
) -> Analysis:
    """Feed ``(native block, its native-rate mix, 16 kHz mono)`` triples through a :class:`FastPass`.

    ``content`` adds the music and singing meter (:mod:`pipeline.analysis.music`; about 0.09 s of CPU per
    minute of audio): ``voiceprep analyze`` and ``check`` ask for it, a run's fast pass does not.
    ``threads=2`` runs :meth:`FastPass.process_aside` in a second thread, a block behind at most: for a
    core that would otherwise be idle (one long recording on two workers' cores); the result is the same.
    """
    fast = FastPass(
        sample_rate=sample_rate,
        channels=channels,
        choice=choice,
        dnsmos=dnsmos,
        content=content,
        vad_aggressiveness=vad_aggressiveness,
    )
    if threads < 2:
        for native, mono_native, mono16k in blocks:
            fast.process(native, mono_native, mono16k)
        return fast.finish(min_pause_s=min_pause_s)
    from concurrent.futures import Future, ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="voiceprep-meters") as aside:
        behind: Future[None] | None = None
        for native, mono_native, mono16k in blocks:
            ahead = aside.submit(fast.process_aside, native, mono_native, mono16k)  # one thread: in order
            fast.process_band(mono16k)
            if behind is not None:
                behind.result()  # raises what the other thread raised; bounds the blocks in flight to two
            behind = ahead
        if behind is not None:
            behind.result()
    return fast.finish(min_pause_s=min_pause_s)


def analyze_file(
    path: str | Path,
    *,
    channel_strategy: str = "best",
    dnsmos: bool = False,
    content: bool = False,
    min_pause_s: float = 0.5,
    start_s: float = 0.0,
    end_s: float | None = None,
    max_input_s: float | None = DEFAULT_MAX_INPUT_S,
    block_s: float = 4.0,
    choice: ChannelChoice | None = None,
    info: AudioInfo | None = None,
    vad_aggressiveness: int = 2,
    threads: int = 1,
) -> Analysis:
    """Run the fast pass over a file (or the window ``[start_s, end_s)`` of it) with one decode.

    ``threads=2`` measures in two threads beside the decoder's (:func:`run_fast_pass`), the same result.

    ``block_s`` is the decode block: 4 s keeps the blocks in flight (decoded, mixed, resampled, queued)
    to a few MB, measured as the best trade of memory against per-block overhead. ``info`` is the file's
    probe when the caller has it (it also names the audio stream; else the file's first is probed here).

    Raises :class:`pipeline.errors.AudioReadError` for files that cannot be read.
    """
    from pipeline.audio.view import AnalysisView

    view = AnalysisView(
        path,
        rate=ANALYSIS_RATE,
        channel_strategy=channel_strategy,
        block_s=block_s,
        start_s=start_s,
        end_s=end_s,
        max_input_s=max_input_s,
        choice=choice,
        info=info,
    )
    result = run_fast_pass(
        view.mixed_blocks(),
        sample_rate=view.info.sample_rate,
        channels=view.info.channels,
        choice=view.choice,
        dnsmos=dnsmos,
        content=content,
        min_pause_s=min_pause_s,
        vad_aggressiveness=vad_aggressiveness,
        threads=threads,
    )
    result.warnings = list(view.warnings)
    result.path = result.source = str(path)
    result.info = view.info
    return result


def _array_pairs(
    samples: np.ndarray, sample_rate: int, choice: ChannelChoice, block_s: float
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    resampler = StreamResampler(sample_rate, ANALYSIS_RATE)
    step = max(1, round(block_s * sample_rate))
    total = samples.shape[0]
    for start in range(0, total, step):
        block = samples[start : start + step]
        last = start + step >= total
        mono = mix(block, choice)
        yield block, mono, resampler.process(mono, last=last)


@arguments.renamed(strategy="channel_strategy")
def analyze_array(
    samples: np.ndarray,
    sample_rate: int,
    *,
    channel_strategy: str = "best",
    dnsmos: bool = False,
    content: bool = False,
    min_pause_s: float = 0.5,
    block_s: float = 10.0,
) -> Analysis:
    """Run the fast pass over samples in memory: ``(n,)`` or ``(n, channels)`` floats at ``sample_rate``.

    ``channel_strategy`` is ``best``, ``first`` or ``mean`` (the old name ``strategy=`` still works for one
    release, with a ``DeprecationWarning``).
    """
    x = arguments.signal("samples", samples).astype(np.float32, copy=False)
    x = x[:, None] if x.ndim == 1 else x
    sample_rate = arguments.integer("sample_rate", sample_rate, minimum=4000)
    arguments.one_of("channel_strategy", channel_strategy, STRATEGIES)
    arguments.number("min_pause_s", min_pause_s, strict=True)
    arguments.number("block_s", block_s, strict=True)
    choice = choose_channels(
        [x], channels=x.shape[1], sample_rate=sample_rate, channel_strategy=channel_strategy
    )
    return run_fast_pass(
        _array_pairs(x, sample_rate, choice, block_s),
        sample_rate=sample_rate,
        channels=x.shape[1],
        choice=choice,
        dnsmos=dnsmos,
        content=content,
        min_pause_s=min_pause_s,
    )
