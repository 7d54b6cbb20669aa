"""Rendering a ClipPlan into a delivered clip (``pipeline.render.clip``), on real recordings.

Plans are built here by hand from fast-pass segments, following the selection contract in
``pipeline/selection/plan.py``: a piece runs from its first word to its last, ``lead_room_s``/``tail_room_s`` reach
to the neighbouring speech (or the file's edge), and the expected duration counts each long pause and
each join as the middle of ``pause_target_s`` and each clip edge as the middle of ``edge_room_tone_s``.
Loudness and true peak are checked with independent meters (pyloudnorm, 4x ``resample_poly``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
from _corpus import corpus_file
from _samples import EXPECTED, SAMPLES
from scipy import signal

from pipeline.analysis.fastpass import analyze_file
from pipeline.analysis.inspection import check
from pipeline.audio.io import probe, read, read_window
from pipeline.audio.resample import resample
from pipeline.errors import InvalidArgument
from pipeline.render.clip import RenderResult, render
from pipeline.rules.families import FamilySpec, load_family
from pipeline.selection.plan import ClipPlan, Piece

REPO = Path(__file__).resolve().parents[1]
FAMILIES = ("cosyvoice", "qwen-tts", "minimax")


# ------------------------------------------------------------------------------------------------ helpers


def _mid(span) -> float:
    return (span.min + span.max) / 2


def _piece(
    source: Path,
    *,
    segments: list[tuple[float, float]] | None = None,
    first: int = 0,
    last: int = -1,
    long_pauses: tuple[tuple[float, float], ...] = (),
    weights: tuple[float, ...] | None = None,
) -> Piece:
    """A piece from segment ``first`` to segment ``last`` of ``source`` (fast-pass segments by default)."""
    info = probe(source)
    if segments is None or weights is None:
        fast = analyze_file(source)
        segments = fast.speech_segments if segments is None else segments
        weights = tuple(fast.channel_choice.weights) if weights is None else weights
    last = last % len(segments)
    start, end = segments[first][0], segments[last][1]
    lead = start - (segments[first - 1][1] if first > 0 else 0.0)
    tail = (segments[last + 1][0] if last + 1 < len(segments) else info.duration_s) - end
    return Piece(
        path=source.name,
        source=str(source),
        start_s=start,
        end_s=end,
        channel_weights=weights,
        long_pauses=long_pauses,
        lead_room_s=max(0.0, lead),
        tail_room_s=max(0.0, tail),
    )


def _plan(pieces: list[Piece], spec: FamilySpec, **measures) -> ClipPlan:
    """A plan with the expected duration of the selection contract."""
    d = spec.delivery
    speech = sum(
        p.span_s - sum(e - s for s, e in p.long_pauses) + len(p.long_pauses) * _mid(d.pause_target_s)
        for p in pieces
    )
    duration = speech + (len(pieces) - 1) * _mid(d.pause_target_s) + 2 * _mid(d.edge_room_tone_s)
    return ClipPlan(
        family=spec.name,
        speaker="test",
        pieces=pieces,
        duration_s=duration,
        longest_run_s=0.0,
        max_pause_s=0.0,
        score=0.0,
        measures=dict(measures),
    )


def _mono(path: Path) -> tuple[np.ndarray, int]:
    data, rate = sf.read(str(path), dtype="float64", always_2d=True)
    assert data.shape[1] == 1
    return data[:, 0], rate


def _rms_db(x: np.ndarray) -> float:
    return 10 * math.log10(max(float(np.mean(np.square(x))), 1e-20))


def _true_peak_dbtp(x: np.ndarray) -> float:
    return 20 * math.log10(float(np.max(np.abs(signal.resample_poly(x, 4, 1)))))


def _low_band_share_db(x: np.ndarray, rate: int, *, below_hz: float = 50.0) -> float:
    freqs, psd = signal.welch(x - x.mean(), fs=rate, nperseg=rate // 2)
    return 10 * math.log10(psd[freqs < below_hz].sum() / psd.sum())


def _offset_s(clip16: np.ndarray, source: Path, start_s: float, end_s: float) -> tuple[float, float]:
    """Where the source span sits in the 16 kHz clip (s) and the normalised correlation there."""
    data, rate = read_window(source, start_s=start_s, end_s=end_s)
    ref = resample(data.mean(axis=1), in_rate=rate, out_rate=16000).astype(np.float64)
    corr = signal.correlate(clip16, ref, mode="valid", method="fft")
    cumsq = np.concatenate([[0.0], np.cumsum(clip16**2)])
    energy = cumsq[ref.size :] - cumsq[: -ref.size]
    norm = corr / (np.linalg.norm(ref) * np.sqrt(np.maximum(energy, 1e-20)))
    k = int(np.argmax(norm))
    return k / 16000, float(norm[k])


@pytest.fixture(scope="module")
def cosy() -> FamilySpec:
    return load_family("cosyvoice")


@pytest.fixture(scope="module")
def speech() -> Path:
    """The folder of the speech recordings read here (the repository's small corpus holds all of them)."""
    return corpus_file("speech", "resem_librispeech_3080-5032-0006.flac").parent


@pytest.fixture(scope="module")
def main_case(speech: Path, cosy: FamilySpec, tmp_path_factory) -> tuple[ClipPlan, RenderResult]:
    """LibriSpeech 3080-5032-0006 (16 kHz FLAC, 16.5 s): one piece from first to last word."""
    plan = _plan([_piece(speech / "resem_librispeech_3080-5032-0006.flac")], cosy)
    out = tmp_path_factory.mktemp("main") / "clip.wav"
    return plan, render(plan, cosy, out)


# ------------------------------------------------------------------------------------------------ format


def test_delivered_file_matches_the_family(main_case, cosy: FamilySpec) -> None:
    plan, result = main_case
    info = probe(result.path)
    assert info.format.lower() == "wav"
    assert info.sample_format == "pcm16"
    assert info.channels == 1
    assert info.sample_rate == result.sample_rate == 24000  # 16 kHz source: the base rate
    # The renderer keeps each edge pair and each join on a fixed budget, so the only difference from
    # the plan is sample rounding (well under 1 ms).
    assert abs(info.duration_s - plan.duration_s) < 0.02
    assert abs(result.duration_s - plan.duration_s) < 0.001
    x, rate = _mono(result.path)
    lufs = pyloudnorm.Meter(rate).integrated_loudness(x)
    assert abs(lufs - cosy.delivery.target_lufs) < 0.5
    assert _true_peak_dbtp(x) <= cosy.delivery.true_peak_max_dbtp
    assert result.true_peak_dbtp is not None and result.true_peak_dbtp <= cosy.delivery.true_peak_max_dbtp
    assert abs(float(np.mean(x))) < 1e-4
    # the source spans: one piece, with 0.1-0.3 s of its own room tone at each end
    piece = plan.pieces[0]
    [span] = result.segments
    assert span["path"] == piece.path
    assert 0.1 - 1e-3 <= piece.start_s - span["start_s"] <= 0.3 + 1e-3
    assert 0.1 - 1e-3 <= span["end_s"] - piece.end_s <= 0.3 + 1e-3


def test_edges_are_faded_room_tone_and_no_word_is_cut(main_case, cosy: FamilySpec) -> None:
    plan, result = main_case
    x, rate = _mono(result.path)
    n50 = round(0.05 * rate)
    speech_db = cosy.delivery.target_lufs  # the clip's speech sits near its integrated loudness
    assert _rms_db(x[:n50]) < speech_db - 25
    assert _rms_db(x[-n50:]) < speech_db - 25
    assert abs(x[0]) < 1e-3 and abs(x[-1]) < 1e-3
    fade = round(cosy.delivery.fade_s * rate)
    assert np.max(np.abs(x[: fade // 4])) <= np.max(np.abs(x[fade : 2 * fade])) + 1e-4
    fast = analyze_file(result.path)
    assert fast.speech_segments, "the rendered clip has speech"
    assert fast.speech_segments[0][0] >= 0.05
    assert fast.speech_segments[-1][1] <= result.duration_s - 0.05
    # every word of the source span is there: the rendered speech spans what the source spans
    span_source = plan.pieces[0].span_s
    span_clip = fast.speech_segments[-1][1] - fast.speech_segments[0][0]
    assert abs(span_clip - span_source) < 0.1


def test_dc_and_hum_below_50_hz_are_removed(speech: Path, cosy: FamilySpec, tmp_path: Path) -> None:
    source = speech / "resem_librispeech_3080-5032-0006.flac"
    x, rate = read(source)
    t = np.arange(x.shape[0]) / rate
    dirty = x[:, 0].astype(np.float64) + 0.02 * np.sin(2 * np.pi * 30.0 * t) + 0.05
    path = tmp_path / "hum_dc.wav"
    sf.write(str(path), dirty, rate, subtype="FLOAT")
    segments = analyze_file(source).speech_segments  # the speech did not move; hum and DC only confuse a VAD
    plan = _plan([_piece(path, segments=segments, weights=(1.0,))], cosy)
    result = render(plan, cosy, tmp_path / "out.wav")
    y, out_rate = _mono(result.path)
    assert abs(float(np.mean(y))) < 1e-4
    before = _low_band_share_db(dirty, rate)
    after = _low_band_share_db(y, out_rate)
    assert before > -20  # the hum is strong in the source
    assert after < before - 30


# ------------------------------------------------------------------------------------------------ padding


def test_speech_at_file_start_is_padded_with_own_room_tone(
    speech: Path, cosy: FamilySpec, tmp_path: Path
) -> None:
    source = speech / "resem_librispeech_3080-5032-0007.flac"
    segments = analyze_file(source).speech_segments
    x, rate = read(source)
    cut_at = segments[0][0]  # the first word starts at sample 0 of the trimmed file
    trimmed = tmp_path / "trimmed.wav"
    sf.write(str(trimmed), x[round(cut_at * rate) :, 0], rate, subtype="PCM_16")
    shifted = [(max(0.0, s - cut_at), e - cut_at) for s, e in segments]
    piece = _piece(trimmed, segments=shifted, weights=(1.0,))
    assert piece.lead_room_s == 0.0
    plan = _plan([piece], cosy)
    first = render(plan, cosy, tmp_path / "a.wav", seed=3)
    assert any("before the first word" in note and "padded" in note for note in first.notes)
    assert abs(first.duration_s - plan.duration_s) < 0.001
    y, out_rate = _mono(first.path)
    n50 = round(0.05 * out_rate)
    assert _rms_db(y[:n50]) < cosy.delivery.target_lufs - 25
    lead = round(0.1 * out_rate)
    assert np.count_nonzero(y[n50 // 2 : lead]) > 0.9 * (lead - n50 // 2), "padding is room tone, not zeros"
    assert analyze_file(first.path).speech_segments[0][0] >= 0.05
    again = render(plan, cosy, tmp_path / "b.wav", seed=3)
    assert first.path.read_bytes() == again.path.read_bytes()


# ------------------------------------------------------------------------------------------------ pauses


@pytest.fixture(scope="module")
def long_pause_case(speech: Path, cosy: FamilySpec, tmp_path_factory) -> tuple[ClipPlan, RenderResult, float]:
    """LibriSpeech 1246-124548-0000 with 3 s of its own room tone inserted in its first pause."""
    source = speech / "resem_librispeech_1246-124548-0000.flac"
    # its words (the VAD may also mark a breath of a few frames before the first one)
    segments = [(s, e) for s, e in analyze_file(source).speech_segments if e - s >= 0.1]
    x, rate = read(source)
    x = x[:, 0].astype(np.float64)
    # the recording's room tone: its quietest 0.25 s, mirrored back and forth (no seams) to 3 s
    width, hop = round(0.25 * rate), round(0.01 * rate)
    power = np.convolve(x**2, np.ones(width), mode="valid")[::hop]
    k = int(np.argmin(power)) * hop
    tone = x[k : k + width]
    room = np.concatenate([tone if i % 2 == 0 else tone[::-1] for i in range(13)])[: 3 * rate]
    pause_start, pause_end = segments[0][1], segments[1][0]
    split = round((pause_start + pause_end) / 2 * rate)
    folder = tmp_path_factory.mktemp("pause")
    path = folder / "long_pause.wav"
    sf.write(str(path), np.concatenate([x[:split], room, x[split:]]), rate, subtype="PCM_16")
    moved = [(s, e) if e <= pause_start else (s + 3.0, e + 3.0) for s, e in segments]
    long_pause = (pause_start, pause_end + 3.0)
    piece = _piece(path, segments=moved, weights=(1.0,), long_pauses=(long_pause,))
    plan = _plan([piece], cosy)
    result = render(plan, cosy, folder / "clip.wav")
    # where the shortened pause starts in the clip: after the lead room tone and the first run
    lead = piece.start_s - result.segments[0]["start_s"]
    return plan, result, lead + (pause_start - piece.start_s)


def test_long_pause_is_shortened_to_the_target(long_pause_case, cosy: FamilySpec) -> None:
    plan, result, pause_at = long_pause_case
    assert result.pauses_shortened == 1
    assert len(result.segments) == 2  # the pause's middle was cut out
    assert abs(result.duration_s - plan.duration_s) < 0.001
    fast = analyze_file(result.path, min_pause_s=0.2)
    assert fast.metrics["max_pause_s"] <= 0.7
    gaps = [(a[1], b[0]) for a, b in zip(fast.speech_segments, fast.speech_segments[1:], strict=False)]
    near = [b - a for a, b in gaps if abs(a - pause_at) < 0.15]
    assert near and 0.35 <= near[0] <= 0.65
    cosy_check = check(result.path, "cosyvoice", dnsmos=False)
    [max_pause] = [c for c in cosy_check.checks if c.rule == "max_pause_s"]
    assert max_pause.verdict == "pass"


def test_shortened_pause_has_no_click(long_pause_case) -> None:
    _, result, pause_at = long_pause_case
    x, rate = _mono(result.path)
    start = round((pause_at + 0.1) * rate)
    stop = round((pause_at + 0.4) * rate)
    hop = round(0.005 * rate)
    levels = [_rms_db(x[i : i + hop]) for i in range(start, stop - hop, hop)]
    assert max(levels) < float(np.median(levels)) + 10


def test_limiter_keeps_true_peak_without_clipping(speech: Path, cosy: FamilySpec, tmp_path: Path) -> None:
    source = speech / "resem_librispeech_3080-5032-0006.flac"
    segments = analyze_file(source).speech_segments
    x, rate = read(source)
    x = x[:, 0].astype(np.float64)
    at = round((segments[0][0] + 1.0) * rate)
    x[at : at + 16] = 0.95 * np.hanning(16)  # a 1 ms click at -0.4 dBFS, 3 dB above the speech peaks
    path = tmp_path / "click.wav"
    sf.write(str(path), x, rate, subtype="FLOAT")
    result = render(_plan([_piece(path, segments=segments, weights=(1.0,))], cosy), cosy, tmp_path / "o.wav")
    y, out_rate = _mono(result.path)
    assert _true_peak_dbtp(y) <= cosy.delivery.true_peak_max_dbtp
    assert abs(pyloudnorm.Meter(out_rate).integrated_loudness(y) - cosy.delivery.target_lufs) < 0.5
    top = np.max(np.abs(y))
    assert np.count_nonzero(np.abs(y) >= top * 0.9977) < 3  # within 0.02 dB of the top: no flat plateau
    assert any("limiter" in note for note in result.notes)


def test_limiter_in_place_gives_the_plain_expressions() -> None:
    """The limiter computes its gain in one array (memory); the samples are those of the plain formulas."""
    from scipy.ndimage import maximum_filter1d, minimum_filter1d, uniform_filter1d

    from pipeline.audio import filters
    from pipeline.render import clip

    rng = np.random.default_rng(3)
    rate = 48000
    x = 0.3 * rng.standard_normal(3 * rate)  # longer than several envelope blocks
    x[rate : rate + 48] = 0.99  # a burst the limiter must pull down
    before = x.copy()
    ceiling_db = -1.3
    over = maximum_filter1d(np.abs(filters.upsample_poly(x, 4)), size=9, mode="nearest")[::4]
    need = np.minimum(1.0, 10.0 ** (ceiling_db / 20.0) / np.maximum(np.maximum(over, np.abs(x)), 1e-12))
    h = round(clip.LIMITER_RAMP_S * rate)
    gain = minimum_filter1d(need, size=4 * h + 1, mode="nearest")
    gain = uniform_filter1d(
        uniform_filter1d(gain, size=2 * h + 1, mode="nearest"), size=2 * h + 1, mode="nearest"
    )
    y, reduction = clip._limit(x, rate, ceiling_db)
    assert np.array_equal(y, x * gain)
    assert reduction == float(20.0 * np.log10(gain.min())) < -1.0
    assert np.array_equal(x, before)  # the input is not touched


def test_limiter_with_a_scaled_envelope_matches_the_envelope_of_the_scaled_clip() -> None:
    """The loudness loop scales one envelope per try: the same limiting as the scaled clip's own envelope
    (equal up to float rounding; the PCM16 samples of the clips are the same)."""
    from pipeline.render import clip

    rng = np.random.default_rng(4)
    rate = 48000
    x = 0.2 * rng.standard_normal(2 * rate)
    x[rate : rate + 48] = 0.9
    scale = 10.0 ** (4.7 / 20.0)
    direct, reduction = clip._limit(x * scale, rate, -1.3)
    scaled, reduction_scaled = clip._limit(
        x * scale, rate, -1.3, envelope=clip._peak_envelope(x), scale=scale
    )
    assert reduction < -1.0
    assert reduction_scaled == pytest.approx(reduction, abs=1e-9)
    assert np.max(np.abs(scaled - direct)) < 1e-12
    assert np.array_equal(np.round(scaled * 32767), np.round(direct * 32767))


# ------------------------------------------------------------------------------------------------ assembly


def test_assembly_keeps_order_and_joins_with_room_tone(
    speech: Path, cosy: FamilySpec, tmp_path: Path
) -> None:
    files = [
        speech / "pra_cmu_arctic_us_aew_a0001.wav",  # 16 kHz WAV
        speech / "sms_speech-female.wav",  # 44.1 kHz WAV
        speech / "rtvc_vctk_p240_00000.mp3",  # 24 kHz MP3, speech to the file's last sample
    ]
    pieces = [_piece(f) for f in files]
    plan = _plan(pieces, cosy)
    result = render(plan, cosy, tmp_path / "joined.wav")
    assert abs(result.duration_s - plan.duration_s) < 0.001
    assert [s["path"] for s in result.segments] == [f.name for f in files]
    # the MP3 has speech up to its last sample: its room tone after the last word is a padded copy
    assert any(n.startswith("rtvc_vctk_p240_00000.mp3") and "after the last word" in n for n in result.notes)
    joined = f"pieces at 16000 and 24000 and 44100 Hz were joined at 44100 Hz; the clip is delivered at {result.sample_rate} Hz"
    assert result.notes[0] == joined  # the note names the rate of the clip, not only the working rate
    clip, rate = _mono(result.path)
    clip16 = resample(clip, in_rate=rate, out_rate=16000).astype(np.float64)
    found = [_offset_s(clip16, Path(p.source), p.start_s, p.end_s) for p in pieces]
    assert all(score > 0.9 for _, score in found)
    offsets = [at for at, _ in found]
    assert offsets == sorted(offsets)
    assert 0.1 - 0.002 <= offsets[0] <= 0.3 + 0.002
    for k in range(len(pieces) - 1):
        join = offsets[k + 1] - (offsets[k] + pieces[k].span_s)
        assert 0.4 <= join <= 0.6, f"join {k}: {join:.3f} s"


# ------------------------------------------------------------------------------------------------ rate


def test_full_band_source_goes_out_at_the_high_rate(speech: Path, cosy: FamilySpec, tmp_path: Path) -> None:
    piece = _piece(speech / "sms_speech-male.wav")  # 44.1 kHz, content to about 20 kHz
    measured = render(_plan([piece], cosy), cosy, tmp_path / "a.wav")
    assert measured.sample_rate == 48000
    assert probe(measured.path).sample_rate == 48000
    told = render(_plan([piece], cosy, bandwidth_hz=7000.0), cosy, tmp_path / "b.wav")
    assert told.sample_rate == 24000  # the caller's recording-level measure decides


def test_16k_source_goes_out_at_24k_for_qwen(speech: Path, tmp_path: Path) -> None:
    qwen = load_family("qwen-tts")
    piece = _piece(speech / "librosa_libri1_198-209-0000.ogg")
    result = render(_plan([piece], qwen), qwen, tmp_path / "q.wav")
    assert result.sample_rate == probe(result.path).sample_rate == 24000


# ------------------------------------------------------------------------------------------------ channels


def test_channel_weights_pick_the_speaking_channel(cosy: FamilySpec, tmp_path: Path) -> None:
    source = SAMPLES / "alice" / "stereo_left_silent.wav"
    piece = _piece(source, weights=(0.0, 1.0))
    result = render(_plan([piece], cosy), cosy, tmp_path / "right.wav")
    y, rate = _mono(result.path)
    assert abs(pyloudnorm.Meter(rate).integrated_loudness(y) - cosy.delivery.target_lufs) < 0.5
    assert result.gain_db < 20  # the right channel is at a normal level; the left is near -92 dBFS
    wrong = Piece(**{**piece.to_dict(), "channel_weights": (1.0,), "long_pauses": ()})
    with pytest.raises(InvalidArgument, match="channel_weights"):
        render(_plan([wrong], cosy), cosy, tmp_path / "bad.wav")


# ------------------------------------------------------------------------------------------------ denoise


@pytest.fixture(scope="module")
def short_piece(speech: Path) -> Piece:
    """Words of LibriSpeech 3080-5032-0006 making a 9.1-9.9 s clip: one DNSMOS segment (~0.4 s each)."""
    source = speech / "resem_librispeech_3080-5032-0006.flac"
    segments = analyze_file(source).speech_segments
    fits = [
        (i, j)
        for i in range(len(segments))
        for j in range(i, len(segments))
        if 9.1 <= segments[j][1] - segments[i][0] + 0.4 <= 9.9
    ]
    assert fits, segments
    return _piece(source, segments=segments, first=fits[0][0], last=fits[0][1], weights=(1.0,))


def test_no_denoising_when_the_spec_forbids_it(main_case, cosy: FamilySpec, tmp_path: Path) -> None:
    plan, result = main_case
    assert cosy.delivery.denoise_allowed is False
    assert result.denoised is False and result.dnsmos_before is None and result.dnsmos_after is None
    forbidden = render(plan, cosy, tmp_path / "off.wav", denoise=False)
    assert forbidden.path.read_bytes() == result.path.read_bytes()


def test_denoise_on_clean_speech_keeps_the_original(
    short_piece: Piece, cosy: FamilySpec, tmp_path: Path
) -> None:
    plan = _plan([short_piece], cosy)
    tried = render(plan, cosy, tmp_path / "tried.wav", denoise=True)
    plain = render(plan, cosy, tmp_path / "plain.wav", denoise=False)
    assert tried.denoised is False
    for scores in (tried.dnsmos_before, tried.dnsmos_after):
        assert scores is not None and set(scores) == {"sig", "bak", "ovrl"}
        assert all(1.0 <= v <= 5.0 for v in scores.values())
    assert tried.dnsmos_before["ovrl"] > 3.0  # clean read speech
    assert tried.path.read_bytes() == plain.path.read_bytes()


def test_denoise_is_kept_when_dnsmos_improves(short_piece: Piece, cosy: FamilySpec, tmp_path: Path) -> None:
    x, rate = read(short_piece.source)
    noise, noise_rate = read(corpus_file("noise", "pra_doing_the_dishes.wav"))
    assert noise_rate == rate
    x, noise = x[:, 0].astype(np.float64), noise[: x.shape[0], 0].astype(np.float64)
    noise *= math.sqrt(np.mean(x**2) / np.mean(noise**2) / 10 ** (5 / 10))  # 5 dB SNR over the file
    path = tmp_path / "noisy.wav"
    sf.write(str(path), x + noise, rate, subtype="FLOAT")
    piece = Piece(
        **{**short_piece.to_dict(), "source": str(path), "channel_weights": (1.0,), "long_pauses": ()}
    )
    allowed = cosy.model_copy(update={"delivery": cosy.delivery.model_copy(update={"denoise_allowed": True})})
    plan = _plan([piece], allowed)
    cleaned = render(plan, allowed, tmp_path / "cleaned.wav")  # denoise=None follows the spec
    assert cleaned.denoised is True
    assert cleaned.dnsmos_after["ovrl"] >= cleaned.dnsmos_before["ovrl"] + 0.1
    assert cleaned.dnsmos_after["sig"] >= cleaned.dnsmos_before["sig"]
    plain = render(plan, allowed, tmp_path / "plain.wav", denoise=False)
    floor = [np.percentile(analyze_file(r.path).frame_db, 10) for r in (cleaned, plain)]
    assert floor[0] < floor[1] - 3


# ------------------------------------------------------------------------------------------------ writing


def test_write_is_atomic_and_replaces(main_case, cosy: FamilySpec, tmp_path: Path) -> None:
    plan, _ = main_case
    out = tmp_path / "clip.wav"
    out.write_bytes(b"not audio at all")
    result = render(plan, cosy, out)
    assert result.path == out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.wav"]
    assert probe(out).sample_rate == 24000


def test_bad_arguments_name_the_value(main_case, cosy: FamilySpec, tmp_path: Path) -> None:
    plan, _ = main_case
    empty = ClipPlan(**{**plan.__dict__, "pieces": []})
    with pytest.raises(InvalidArgument, match="empty"):
        render(empty, cosy, tmp_path / "x.wav")
    with pytest.raises(InvalidArgument, match="denoise"):
        render(plan, cosy, tmp_path / "x.wav", denoise="yes")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="folder"):
        render(plan, cosy, tmp_path / "missing" / "x.wav")
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------------------------ checks


@pytest.mark.parametrize("family", FAMILIES)
def test_rendered_clip_passes_the_hard_limits(speech: Path, family: str, tmp_path: Path) -> None:
    spec = load_family(family)
    plan = _plan([_piece(speech / "resem_librispeech_3080-5032-0006.flac")], spec)
    result = render(plan, spec, tmp_path / f"{family}.wav")
    verdict = check(result.path, spec, dnsmos=False)
    limits = [c for c in verdict.checks if c.group == "limit"]
    assert limits, "the check ran its hard limits"
    assert [c.rule for c in limits if c.verdict == "fail"] == []


def test_data_samples_long_pause_renders_within_the_rules(cosy: FamilySpec, tmp_path: Path) -> None:
    source = SAMPLES / "bob" / "long_pause.mp3"
    made = EXPECTED["files"]["bob/long_pause.mp3"]
    true_start, true_end = made["degradation"]["pause_span_s"]
    fast = analyze_file(source)
    limit = cosy.limits.max_pause_s.value
    [pause] = [(a, b) for a, b in fast.metrics["pauses"] if b - a > limit]
    assert true_start - 0.2 <= pause[0] and pause[1] <= true_end + 0.2  # the pause the file was made with
    assert "pause_too_long" in check(source, cosy, dnsmos=False).reasons
    plan = _plan([_piece(source, segments=fast.speech_segments, long_pauses=(pause,))], cosy)
    result = render(plan, cosy, tmp_path / "bob.wav")
    assert result.pauses_shortened == 1
    assert abs(result.duration_s - plan.duration_s) < 0.001
    verdict = check(result.path, cosy, dnsmos=False)
    # The hand-made plan (not chosen by selection) is shorter than the clips run makes: only that may fail.
    assert plan.duration_s < cosy.delivery.duration_s.min
    assert [c.rule for c in verdict.checks if c.verdict == "fail"] == ["clip_min_duration_s"]
