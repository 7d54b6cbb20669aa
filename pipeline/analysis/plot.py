"""Matplotlib figure of an analysis: waveform with speech shading, spectrogram, level and noise floor."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from pipeline.analysis.base import Analysis


def _shade_segments(ax, segments: list[tuple[float, float]], *, color: str = "tab:green") -> None:
    for start, end in segments:
        ax.axvspan(start, end, color=color, alpha=0.15, lw=0)


PLOT_MAX_RATE = 48000
"""The spectrogram shows the recording up to this rate (24 kHz): its own band, not the analysis view's 8 kHz."""


def frames_for_plot(analysis: Analysis, *, max_audio_s: float) -> tuple[np.ndarray | None, int]:
    """The analysed mono mix at the recording's own rate (at most :data:`PLOT_MAX_RATE`) for plotting, or
    ``None`` when the file is too long."""
    from pipeline.audio.view import load_mono

    duration = analysis.metrics.get("duration_s") or 0.0
    rate = min(analysis.sample_rate, PLOT_MAX_RATE)
    if duration > max_audio_s:
        return None, rate
    audio, rate, _ = load_mono(analysis.source, rate=rate, choice=analysis.channel_choice, info=analysis.info)
    return audio, rate


def plot_analysis(analysis: Analysis, *, max_audio_s: float) -> Figure:
    """Three stacked panels sharing the time axis.

    1. the waveform (or, for files longer than ``max_audio_s``, the frame level envelope) with speech
       segments shaded green and pauses over 2 s shaded red;
    2. the spectrogram at the recording's own rate, up to 48 kHz (omitted for long files);
    3. the 10 ms frame level in dBFS with the noise floor and the speech frames.
    """
    from matplotlib.figure import Figure

    metrics = analysis.metrics
    audio, rate = frames_for_plot(analysis, max_audio_s=max_audio_s)
    fig = Figure(figsize=(12, 7), constrained_layout=True)
    axes = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [1.2, 1.5, 1.0]})
    ax_wave, ax_spec, ax_level = axes
    times = analysis.frame_times

    if audio is not None and audio.size:
        t = np.arange(audio.size) / rate
        step = max(1, audio.size // 200_000)
        ax_wave.plot(t[::step], audio[::step], lw=0.4, color="tab:blue")
        ax_wave.set_ylim(-1.05, 1.05)
        ax_wave.set_ylabel("amplitude")
        ax_spec.specgram(audio, NFFT=512, Fs=rate, noverlap=256, cmap="magma", vmin=-130)
        ax_spec.set_ylabel("Hz")
    else:
        envelope = 10 ** (analysis.frame_db / 20)
        ax_wave.fill_between(times, -envelope, envelope, color="tab:blue", lw=0)
        ax_wave.set_ylabel("RMS envelope")
        ax_spec.text(0.5, 0.5, "spectrogram omitted for long files", ha="center", transform=ax_spec.transAxes)
    _shade_segments(ax_wave, analysis.speech_segments)
    for start, end in metrics.get("pauses") or []:
        if end - start > 2.0:
            ax_wave.axvspan(start, end, color="tab:red", alpha=0.2, lw=0)

    ax_level.plot(times, analysis.frame_db, lw=0.5, color="0.4", label="frame level")
    if analysis.speech_mask.any():
        ax_level.plot(
            times[analysis.speech_mask],
            analysis.frame_db[analysis.speech_mask],
            ".",
            ms=1,
            color="tab:green",
            label="speech",
        )
    floor = metrics.get("noise_floor_dbfs")
    if floor is not None:
        ax_level.axhline(floor, color="tab:red", lw=1, ls="--", label=f"noise floor {floor:.0f} dBFS")
    ax_level.set_ylabel("dBFS")
    ax_level.set_xlabel("time (s)")
    ax_level.set_ylim(max(-100.0, float(np.min(analysis.frame_db, initial=-100.0))) - 5, 5)
    ax_level.legend(loc="lower right", fontsize=8)

    snr = metrics.get("snr_db")
    title = f"{analysis.path}: speech {metrics.get('speech_s') or 0:.1f} s of {metrics.get('duration_s') or 0:.1f} s"
    if snr is not None:
        title += f", SNR {snr:.0f} dB"
    if metrics.get("bandwidth_class"):
        title += f", {metrics['bandwidth_class']} band"
    fig.suptitle(title, fontsize=10)
    return fig
