"""Known answers of the selection-benchmark recordings (benchmarks/corpus.py, ``selection_item``).

The benchmark scores where ``voiceprep run`` takes its clip against each recording's clean stretch, so
these tests check that the clean stretch really is untouched and the rest really is degraded as stated:
noise at the asked SNR, clipping at the asked ratio, nothing above 4 kHz when band-limited, reverb tails,
long pauses of the stated lengths, and the layout (position, lengths, continuous run). The truths are
recomputed here from the samples and the speech mask, not read back from the builder.
"""

from __future__ import annotations

import itertools
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from _benchmarks import load_corpus
from scipy import signal

ROOT = Path(__file__).resolve().parents[1]


corpus = load_corpus()

# Indices in selection_plan(): config k // 3, position k % 3 (start, middle, end).
NOISE_START = 0  # exercise bike at 5 dB, clean stretch at the start
NOISE_PAUSES_MIDDLE = 4  # dishes at 0 dB and two long pauses, clean stretch in the middle
REVERB_START = 12  # synthetic room, T60 0.8 s
CLIP_START = 21  # 1 % clipped
CLIP_PAUSES_END = 26  # 3 % clipped and three long pauses, clean stretch at the end
BAND_END = 32  # VCTK (full band) band-limited to 4 kHz outside the clean stretch


@cache
def item(index: int, degrade: bool = True):
    return corpus.selection_item(index, degrade=degrade)


def _frame_power(x: np.ndarray, rate: int) -> np.ndarray:
    """Mean square per 10 ms frame, computed here (rates in the corpus are multiples of 100 Hz)."""
    flen = rate // 100
    n = len(x) // flen
    return (np.asarray(x[: n * flen], dtype=np.float64).reshape(n, flen) ** 2).mean(axis=1)


def _region(n: int, rate: int, lo_s: float, hi_s: float) -> slice:
    return slice(max(round(lo_s * rate), 0), min(round(hi_s * rate), n))


def _degraded_samples(it, *, margin_s: float = 0.02) -> np.ndarray:
    """Per-sample bool: inside a degraded span, at least ``margin_s`` from its ends (past the crossfade)."""
    n, rate = len(it.samples), it.sample_rate
    out = np.zeros(n, dtype=bool)
    for lo, hi in it.truth["degraded_spans_s"]:
        lo_m = lo + margin_s if lo > 0 else 0.0
        hi_m = hi - margin_s if hi < n / rate - 1e-6 else n / rate
        out[_region(n, rate, lo_m, hi_m)] = True
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    m = np.concatenate([[0], mask.astype(np.int8), [0]])
    d = np.diff(m)
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def test_plan_uses_every_configuration_at_every_position() -> None:
    plan = corpus.selection_plan()
    assert len(plan) == 36 == len(corpus.SELECTION_CONFIGS) * 3
    pairs = {(p["degradation"], p["position"]) for p in plan}
    assert len(pairs) == 36
    assert len({p["name"] for p in plan}) == 36
    assert {p["rate"] for p in plan} == {44100, 48000}
    # Each configuration meets three different voices.
    for c in range(12):
        assert len({p["voice"] for p in plan[3 * c : 3 * c + 3]}) == 3
    quick = [plan[k] for k in corpus.SELECTION_QUICK]
    assert len(quick) == 8
    assert {p["position"] for p in quick} == {"start", "middle", "end"}
    kinds = " ".join(p["degradation"] for p in quick)
    assert all(k in kinds for k in ("noise", "reverb", "clip", "band"))


@pytest.mark.parametrize(
    "index", [NOISE_START, NOISE_PAUSES_MIDDLE, REVERB_START, CLIP_START, CLIP_PAUSES_END, BAND_END]
)
def test_layout_truths(index: int) -> None:
    it = item(index)
    t = it.truth
    rate = it.sample_rate
    duration = len(it.samples) / rate
    assert rate in (44100, 48000)
    assert t["duration_s"] == pytest.approx(duration, abs=1e-3)
    assert 60.0 <= duration <= 120.0
    lo, hi = t["clean_span_s"]
    assert 16.0 <= hi - lo <= 30.0
    mask = t["speech_mask"]
    # The clean span runs from a speech onset to a speech offset of the mask.
    assert mask[round(lo / 0.01)] and not mask[round(lo / 0.01) - 1]
    assert mask[round(hi / 0.01) - 1] and not mask[round(hi / 0.01)]
    # The undegraded region reaches 0.5 s of silence past the clean speech on a degraded side, and the
    # file's edge otherwise; the degraded spans are exactly the rest.
    r_lo, r_hi = t["clean_region_s"]
    position = it.params["position"]
    if position == "start":
        assert r_lo == 0.0 and r_hi == pytest.approx(hi + 0.5, abs=0.011)
    elif position == "end":
        assert r_hi == pytest.approx(duration, abs=1e-3) and r_lo == pytest.approx(lo - 0.5, abs=0.011)
    else:
        assert r_lo == pytest.approx(lo - 0.5, abs=0.011) and r_hi == pytest.approx(hi + 0.5, abs=0.011)
        assert r_lo >= 10.0 and duration - r_hi >= 10.0
    for a, b in [(r_lo, lo), (hi, r_hi)]:
        assert not mask[round(a / 0.01) : round(b / 0.01)].any()
    spans = sorted([*t["degraded_spans_s"], [r_lo, r_hi]])
    assert spans[0][0] == 0.0 and spans[-1][1] == pytest.approx(duration, abs=1e-3)
    assert all(a[1] == pytest.approx(b[0]) for a, b in itertools.pairwise(spans))
    # An unbroken run of at least 6 s (silences under 0.5 s belong to the run) inside the clean speech.
    clean = mask[round(lo / 0.01) : round(hi / 0.01)].copy()
    runs = _runs(clean)
    for (_, e), (s, _) in itertools.pairwise(runs):
        if s - e < 50:
            clean[e:s] = True
    assert max(e - s for s, e in _runs(clean)) * 0.01 >= 6.0


@pytest.mark.parametrize("index", [NOISE_PAUSES_MIDDLE, CLIP_PAUSES_END])
def test_long_pauses_lie_in_the_degraded_part(index: int) -> None:
    it = item(index)
    t = it.truth
    wanted = it.truth["config"]["long_pauses"]
    gaps = [
        (s, e) for (_, s), (e, _) in zip(_runs(t["speech_mask"]), _runs(t["speech_mask"])[1:], strict=False)
    ]
    long = [(s * 0.01, e * 0.01) for s, e in gaps if e - s >= 200]
    # As many as asked, or one per gap of the degraded part when it has fewer (long utterances).
    assert len(long) == len(t["long_pauses_s"]) and 1 <= len(long) <= wanted
    for (a, b), (ta, tb) in zip(long, t["long_pauses_s"], strict=True):
        assert 2.5 - 0.011 <= b - a <= 4.0 + 0.011
        assert (a, b) == pytest.approx((ta, tb), abs=0.011)
        assert b <= t["clean_region_s"][0] or a >= t["clean_region_s"][1]
    # Between the clean speech and its neighbours: one 1.0 s gap.
    lo, hi = t["clean_span_s"]
    for s, e in gaps:
        if e * 0.01 == pytest.approx(lo) or s * 0.01 == pytest.approx(hi):
            assert (e - s) * 0.01 == pytest.approx(1.0, abs=0.011)


def test_clean_stretch_is_untouched_and_the_noise_has_the_asked_snr() -> None:
    noisy, dry = item(NOISE_START), item(NOISE_START, False)
    rate = noisy.sample_rate
    assert noisy.params == {**dry.params}
    gain = noisy.truth["output_gain"]
    x = dry.samples.astype(np.float64)
    y = noisy.samples.astype(np.float64) / gain
    lo, hi = noisy.truth["clean_region_s"]
    inside = _region(len(x), rate, lo, hi - 0.02)  # the crossfade is centred on the boundary, 10 ms each side
    np.testing.assert_allclose(y[inside], x[inside], atol=2e-7)  # float32 rounding only
    residual = y - x
    deg = _degraded_samples(noisy)
    # SNR = mean power of the dry speech frames in the degraded part / mean power of what was added there.
    speech_frames = noisy.truth["speech_mask"][: len(_frame_power(x, rate))]
    frame_deg = _frame_power(deg.astype(np.float64), rate) >= 1.0
    ps = _frame_power(x, rate)[speech_frames & frame_deg].mean()
    pn = np.mean(residual[deg] ** 2)
    assert 10 * np.log10(ps / pn) == pytest.approx(5.0, abs=0.05)
    # and the clean part holds no added noise at all.
    assert np.max(np.abs(residual[inside])) < 1e-6


def test_clipping_only_outside_the_clean_stretch() -> None:
    it = item(CLIP_START)
    y = it.samples.astype(np.float64)
    level = corpus.CLIP_LEVEL
    at_level = np.abs(y) >= np.float32(level)
    deg = _degraded_samples(it, margin_s=0.0)
    assert at_level[deg].mean() == pytest.approx(0.01, rel=0.1)
    lo, hi = it.truth["clean_region_s"]
    clean = _region(len(y), it.sample_rate, lo, hi - 0.01)
    assert not at_level[clean].any()
    assert np.max(np.abs(y[clean])) < 0.9 * level
    # Flat tops: the clipped samples come in runs (a converter clipping), not isolated peaks.
    runs = _runs(at_level)
    assert np.mean([e - s for s, e in runs]) >= 2.0


def test_band_limit_removes_everything_above_4k_outside_only() -> None:
    it = item(BAND_END)
    assert it.params["voice"] == "vctk_p286"  # full band: real content above 4 kHz to remove
    y, rate = it.samples.astype(np.float64), it.sample_rate
    lo, hi = it.truth["clean_region_s"]
    parts = {"degraded": y[_region(len(y), rate, 1.0, lo - 1.0)], "clean": y[_region(len(y), rate, lo, hi)]}
    ratio = {}
    for name, x in parts.items():
        f, p = signal.welch(x, rate, nperseg=4096)
        ratio[name] = 10 * np.log10(p[(f > 4300) & (f < 12000)].sum() / p[(f > 200) & (f < 3800)].sum())
    assert ratio["degraded"] < -60.0
    assert ratio["clean"] > -30.0


def test_reverb_tails_follow_the_degraded_speech_only() -> None:
    wet, dry = item(REVERB_START), item(REVERB_START, False)
    rate = wet.sample_rate
    assert wet.truth["t60_s"] == 0.8
    pw = 10 * np.log10(_frame_power(wet.samples, rate) / wet.truth["output_gain"] ** 2 + 1e-20)
    pd = 10 * np.log10(_frame_power(dry.samples, rate) + 1e-20)
    _lo, hi = wet.truth["clean_region_s"]
    rises_out, rises_in = [], []
    for _start, end, clean in wet.truth["utterances"]:
        tail = slice(round((end + 0.05) / 0.01), round((end + 0.2) / 0.01))
        if end + 0.25 >= len(pw) * 0.01:
            continue
        (rises_in if clean and end + 0.2 < hi else rises_out).append(float(np.median(pw[tail] - pd[tail])))
    assert rises_out and rises_in
    # After a degraded utterance the room keeps ringing above the dry silence (this voice's own room tone
    # is only about 25 dB under its speech); after a clean one the silence is the dry one.
    assert np.median(rises_out) > 3.0
    assert np.max(np.abs(rises_in)) < 0.1


def test_items_are_deterministic() -> None:
    again = corpus.selection_item(NOISE_START)
    np.testing.assert_array_equal(again.samples, item(NOISE_START).samples)
    assert again.truth["clean_span_s"] == item(NOISE_START).truth["clean_span_s"]
    other = item(NOISE_PAUSES_MIDDLE)
    assert other.name != again.name and len(other.samples) != len(again.samples)


def test_bad_index_is_named() -> None:
    with pytest.raises(corpus.InvalidArgument, match="index"):
        corpus.selection_item(36)


# --------------------------------------------------------------------------- sessions (issue 8)


@cache
def session(index: int, degrade: bool = True):
    return corpus.session_item(index, degrade=degrade)


def test_session_plan_covers_what_the_issue_asks() -> None:
    plan = corpus.session_plan()
    assert len(plan) == corpus.SESSION_COUNT == 12 and plan[0]["name"].startswith("ses00_issue8")
    drawn = plan[1:]
    assert {len(p["parts"]) for p in drawn} == set(range(4, 9))
    targets = [p["target_s"] for p in drawn]
    assert min(targets) == 60.0 and max(targets) == 300.0
    positions = set()
    for p in drawn:
        configs = [part["config"] for part in p["parts"]]
        clean = [k for k, c in enumerate(configs) if not c]
        assert len(clean) == 1
        positions.add("first" if clean[0] == 0 else "last" if clean[0] == len(configs) - 1 else "inside")
        continuous = [c for c in configs if c.get("noise") in corpus.SESSION_CONTINUOUS and "room" not in c]
        assert any(0.0 <= c["snr_db"] <= 5.0 for c in continuous)
    assert positions == {"first", "inside", "last"}
    assert {p["index"] for p in plan if p["index"] in corpus.SESSION_QUICK} == set(corpus.SESSION_QUICK)


def _speech_gaps_between_parts(truth: dict) -> list[float]:
    parts = truth["parts"]
    return [b["speech_span_s"][0] - a["speech_span_s"][1] for a, b in itertools.pairwise(parts)]


def test_issue8_session_known_answers() -> None:
    it, dry = session(0), session(0, False)
    t, rate = it.truth, it.sample_rate
    assert [p["label"] for p in t["parts"]] == [
        "noise-typing-3dB",
        "reverb-st_margarets_church",
        "clean",
        "clip-3pct",
        "noise-white-0dB",
    ]
    assert _speech_gaps_between_parts(t) == pytest.approx([1.2] * 4, abs=0.011)
    y, x = it.samples.astype(np.float64) / t["output_gain"], dry.samples.astype(np.float64)
    # The clean part is the dry recording (float32 rounding only); every other part is not.
    lo, hi = t["clean_region_s"]
    inside = _region(len(x), rate, lo + 0.02, hi - 0.02)
    np.testing.assert_allclose(y[inside], x[inside], atol=3e-7)
    for k, part in enumerate(t["parts"]):
        a, b = part["region_s"]
        region = _region(len(x), rate, a + 0.02, b - 0.02)
        if k != t["clean_part"]:
            assert np.max(np.abs(y[region] - x[region])) > 1e-3
    # White noise at 0 dB: the dry speech power of the part over the power of what was added.
    a, b = t["parts"][4]["region_s"]
    region = _region(len(x), rate, a + 0.02, b)
    frames = _frame_power(x, rate)
    speech = t["speech_mask"][: len(frames)] & (np.arange(len(frames)) * 0.01 >= a + 0.02)
    snr = 10 * np.log10(frames[speech].mean() / np.mean((y[region] - x[region]) ** 2))
    assert snr == pytest.approx(0.0, abs=0.1)
    # 3 % clipped at a plateau below the recording's peak (why the fast pass cannot see it).
    clip = t["parts"][3]
    assert clip["clipped_ratio"] == pytest.approx(0.03, rel=0.05)
    assert clip["clip_level"] < 0.5 * np.max(np.abs(it.samples))


def test_a_drawn_session_keeps_its_layout() -> None:
    index = 3  # seven parts, five minutes, the clean one third
    it, dry = session(index), session(index, False)
    t, rate = it.truth, it.sample_rate
    assert len(t["parts"]) == 7 and 270.0 <= t["duration_s"] <= 330.0
    assert all(1.0 - 0.011 <= g <= 1.5 + 0.011 for g in _speech_gaps_between_parts(t))
    lo, hi = t["clean_span_s"]
    assert 16.0 <= hi - lo <= 30.0
    # Each part holds from the middle of the gap before it to the middle of the gap after it.
    for part in t["parts"]:
        a, b = part["region_s"]
        s_on, s_off = part["speech_span_s"]
        assert (a == 0.0 or 0.5 - 0.011 <= s_on - a <= 0.75 + 0.011) and s_off <= b
    # The voice's utterances recur under several conditions.
    used = [u for p in t["parts"] for u in p["utterances"]]
    assert len(used) > len(set(used))
    y, x = it.samples.astype(np.float64) / t["output_gain"], dry.samples.astype(np.float64)
    r_lo, r_hi = t["clean_region_s"]
    inside = _region(len(x), rate, r_lo + 0.02, r_hi - 0.02)
    np.testing.assert_allclose(y[inside], x[inside], atol=3e-7)
