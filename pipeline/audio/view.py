"""The streaming mono analysis view of a recording, and one-shot mono loads of short windows.

:class:`AnalysisView` decodes a file block by block, mixes each block to mono with the file's
:class:`~pipeline.audio.mix.ChannelChoice`, and resamples it (16 kHz by default) with a streaming soxr
filter, so memory is bounded by the block size whatever the recording's length. :func:`load_mono` does the
same for a short window in one go; both give the same samples for the same range and choice.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipeline.audio import io
from pipeline.audio.io import AudioInfo
from pipeline.audio.mix import ChannelChoice, choose_channels, examine_channels, mix
from pipeline.audio.prefetch import prefetch
from pipeline.audio.resample import StreamResampler, resample

ANALYSIS_RATE = 16000
"""Default rate of the analysis view (Hz)."""

EXAMINE_MAX_S = 60.0
"""Most audio (seconds) examined to choose the channels; a longer range is sampled (see examine_channels)."""


class AnalysisView:
    """Mono float32 blocks of a recording at ``rate`` Hz, decoded and resampled as a stream.

    Iterating yields the mono blocks (empty ones are skipped); :meth:`mixed_blocks` yields each native
    block together with its mono mix and view. Every iteration decodes the file again from ``start_s``.
    The channels are chosen once, in the constructor, with ``channel_strategy`` over the same range (or
    ``choice`` is taken as given, e.g. to render with the choice the analysis used). ``warnings`` collects
    the reader's warnings (such as ``truncated``) after an iteration. Its callers (the fast pass, selection,
    the report) pass checked arguments; ``info`` is the file's probe when the caller has it (it also says
    which audio stream is read; without it the file's first audio stream is probed).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        rate: int = ANALYSIS_RATE,
        channel_strategy: str = "best",
        block_s: float = 10.0,
        start_s: float = 0.0,
        end_s: float | None = None,
        max_input_s: float | None = io.DEFAULT_MAX_INPUT_S,
        choice: ChannelChoice | None = None,
        info: AudioInfo | None = None,
    ) -> None:
        """Probe ``path`` (unless ``info`` is given) and choose its channels; decoding starts when iterated."""
        self.info = info or io.probe(path, max_input_s=max_input_s, hash=False)
        self.path = Path(path)
        self.rate = int(rate)
        self.block_s = float(block_s)
        self.start_s = float(start_s)
        self.end_s = None if end_s is None else float(end_s)
        self.max_input_s = max_input_s
        if choice is None:
            choice = examine_channels(
                self.path,
                channel_strategy=channel_strategy,
                max_seconds=EXAMINE_MAX_S,
                start_s=self.start_s,
                end_s=self.end_s,
                info=self.info,
            )
        self.choice = choice
        self.warnings: list[str] = []

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield mono float32 blocks at :attr:`rate` (lengths vary by the resampler's delay)."""
        for _, _, mono in self.mixed_blocks():
            if mono.shape[0]:
                yield mono

    def mixed_blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Yield ``(native block (n, channels), its native-rate mono mix, mono block at rate)`` from one decode.

        The mix is computed once and serves both the resampler and analysers that need the native rate.
        A view block may be shorter or longer than its native block by the resampler's delay; the last
        triple carries the flushed tail, so the view lengths add up to the whole resampled range.
        """
        resampler = StreamResampler(self.info.sample_rate, self.rate)
        block_frames = max(1, round(self.block_s * self.info.sample_rate))
        reader = io.AudioReader(self.path, max_input_s=self.max_input_s, info=self.info)
        pending: np.ndarray | None = None
        try:
            with reader:
                blocks = prefetch(
                    reader.blocks(block_frames=block_frames, start_s=self.start_s, end_s=self.end_s)
                )
                # Hold one block back so the final one can be sent with last=True and carry the tail.
                for block in blocks:
                    if pending is not None:
                        mono = mix(pending, self.choice)
                        yield pending, mono, resampler.process(mono)
                    pending = block
                if pending is not None:
                    mono = mix(pending, self.choice)
                    yield pending, mono, resampler.process(mono, last=True)
        finally:
            self.warnings.extend(w for w in reader.warnings if w not in self.warnings)


def load_mono(
    path: str | Path,
    *,
    rate: int | None = None,
    channel_strategy: str = "best",
    start_s: float = 0.0,
    end_s: float | None = None,
    choice: ChannelChoice | None = None,
    info: AudioInfo | None = None,
) -> tuple[np.ndarray, int, ChannelChoice]:
    """Read ``[start_s, end_s)`` of ``path``, mix it to mono and resample it to ``rate`` (None: native).

    Meant for short windows such as clips: the whole window is held in memory. The channels are chosen
    from the window itself with ``channel_strategy`` (sampled as :func:`examine_channels` does when the
    window is longer than :data:`EXAMINE_MAX_S`), unless ``choice`` is given. ``info`` is the file's probe
    when the caller has it (it names the audio stream; else the first). Returns ``(mono float32, rate,
    choice)``.
    """
    stream_index = 0 if info is None else info.stream_index
    data, native_rate = io.read_window(path, start_s=float(start_s), end_s=end_s, stream_index=stream_index)
    if choice is None and data.shape[1] > 1 and data.shape[0] <= EXAMINE_MAX_S * native_rate:
        choice = choose_channels(  # a short window: measure it in memory
            [data], channels=data.shape[1], sample_rate=native_rate, channel_strategy=channel_strategy
        )
    elif choice is None:  # mono, or a long window that examine_channels samples
        choice = examine_channels(
            path,
            channel_strategy=channel_strategy,
            max_seconds=EXAMINE_MAX_S,
            start_s=float(start_s),
            end_s=end_s,
            info=info,
        )
    mono = mix(data, choice)
    out_rate = native_rate if rate is None else int(rate)
    return resample(mono, in_rate=native_rate, out_rate=out_rate), out_rate, choice
