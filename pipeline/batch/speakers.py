"""The speaker's voice of a run: one per speaker, and the recordings that are someone else.

Between analysing every file and selecting clips, the runner learns each speaker's voice:

1. **each recording's partials** (:func:`recording_partials`, one executor task per readable file):
   partial embeddings (:mod:`pipeline.analysis.speaker`) over part of its speech
   (:func:`pipeline.analysis.voice.speech_budget`: 120 s per speaker shared by its files, 4.8-60 s each), read again from the source, with their times (a
   window is left out of its recording's voice: :meth:`~pipeline.analysis.voice.Voice.without`), cached under
   ``OUT/.cache/voices/`` keyed by the file's sha256, the budget, the speaker model and the analysis settings;
2. **the speaker's voice** (:func:`decide`): the dominant voice of all of the speaker's partials
   (:func:`~pipeline.analysis.voice.dominant_voice`), or the voice of a reference recording when one is
   named (``--reference``, or a ``reference`` column in ``--speaker-map``: :func:`reference_voice`);
3. **the wrong speaker** (:func:`decide`): each recording's own dominant voice against the speaker's;
   those under the limit of :func:`~pipeline.analysis.voice.mismatched` are ``speaker_mismatch``: kept in
   ``recordings.jsonl`` with the reason, left out of selection;
4. **the speaker's turns** (:func:`turn_partials`, :func:`with_turns`): a recording whose partials hold two
   voices (an interview) is embedded again along its speech every
   :data:`~pipeline.analysis.voice.TURN_STEP_S` (all of it, or :data:`TURN_SPEECH_S` of it in long pieces
   spread over a longer one: :func:`turn_stretches`; cached beside its partials) and the speaker's own
   stretches (:func:`~pipeline.analysis.voice.speaker_runs`) become the ``turns`` of its entry in the
   voice's ``recordings``: selection keeps to them, and joins them when no single window is the speaker's.
   A voice learnt from the recordings (not named) is decided again (:func:`decide`) from all the speech
   of its recordings of two voices as heard for their turns (:func:`heard_speech`, :func:`speech_pool`):
   the voice heard longest there is the speaker's, which a 60 s sample of an interview can get wrong.
   Where music or singing is heard is measured along too: a bed under part of a reading splits its
   partials into two groups as a second voice would, and gives no turns (a jingle in an interview does).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.analysis.voice import Voice

if TYPE_CHECKING:
    from pipeline.analysis.speaker import Partials

MAX_CLUSTER_PARTIALS = 400
"""At most this many partials (evenly taken from all of a speaker's) are grouped for the voice."""
REFERENCE_MAX_S = 90.0
"""Seconds of a reference recording read (from its start) to learn its voice."""


@dataclass(frozen=True)
class VoiceTask:
    """One readable recording to embed: where its audio and cached analysis are, where its partials go, and
    how much of its speech: ``budget_s`` seconds sampled (:func:`recording_partials`), or ``None`` for all
    of it every :data:`~pipeline.analysis.voice.TURN_STEP_S` (:func:`turn_partials`, for its turns)."""

    path: str
    source: str
    analysis_file: str
    cache_file: str
    budget_s: float | None = None


def _load(path: Path) -> np.ndarray | None:
    try:
        with np.load(path) as data:
            return data["vectors"].astype(np.float32)
    except (OSError, ValueError, KeyError):
        return None


def _save(path: Path, **arrays: Any) -> None:
    """Write ``arrays`` to the cache file ``path`` (``.npz``) atomically."""
    from pipeline.audio.io import atomic_write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, lambda fh: np.savez(fh, **arrays))


def _save_partials(path: Path, found: Partials, **extra: Any) -> None:
    """Cache partials with their times (and ``extra`` arrays beside them)."""
    _save(
        path,
        vectors=np.asarray(found.vectors, dtype=np.float32),
        starts_s=np.asarray(found.starts_s, dtype=np.float64),
        ends_s=np.asarray(found.ends_s, dtype=np.float64),
        heard_s=np.float64(found.heard_s),
        **extra,
    )


def _read_partials(data: Any) -> Partials:
    """The partials of an opened cache file written by :func:`_save_partials`."""
    from pipeline.analysis.speaker import Partials

    return Partials(
        starts_s=data["starts_s"].astype(np.float64),
        ends_s=data["ends_s"].astype(np.float64),
        vectors=data["vectors"].astype(np.float32),
        heard_s=float(data["heard_s"]),
    )


TURN_CHUNK_S = 60.0
"""The speech of a recording is read and embedded this many seconds at a time (bounded memory)."""
TURN_SPEECH_S = 120.0
"""Most speech (seconds) of a recording embedded for its turns: a longer one is heard in
:data:`TURN_PIECE_S` pieces spread evenly over its speech, and selection keeps to the speaker's turns
inside them (embed only what a decision needs: a 60-minute interview embedded along all its speech cost
3.5 times the rest of its run; 180 s with GE2E, 120 s since CAM++, which costs about twice as much per
second heard)."""
TURN_PIECE_S = 60.0
"""Speech (seconds) of each piece heard for the turns of a long recording (several windows' worth)."""


def turn_stretches(segments: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The stretches of a recording embedded for its turns, at most :data:`TURN_CHUNK_S` each: from its
    first to its last speech segment when it holds at most :data:`TURN_SPEECH_S` of speech, else pieces of
    :data:`TURN_PIECE_S` spread evenly over its speech (:func:`~pipeline.analysis.voice.sample_spans`)."""
    from pipeline.analysis import voice

    segs = [(float(a), float(b)) for a, b in segments if b > a]
    if not segs:
        return []
    if sum(b - a for a, b in segs) <= TURN_SPEECH_S:
        spans = [(segs[0][0], segs[-1][1])]
    else:
        spans = voice.sample_spans(segs, budget_s=TURN_SPEECH_S, chunk_s=TURN_PIECE_S)
    out: list[tuple[float, float]] = []
    for start, end in spans:
        out.extend((float(a), min(float(a) + TURN_CHUNK_S, end)) for a in np.arange(start, end, TURN_CHUNK_S))
    return out


def cached_partials(task: VoiceTask) -> Partials | None:
    """The cached partials of a recording (their times too), or ``None`` when they must be computed (a
    cache written before the times were kept is computed again)."""
    try:
        with np.load(task.cache_file) as data:
            return _read_partials(data)
    except (OSError, ValueError, KeyError):
        return None


def recording_partials(task: VoiceTask) -> Partials:
    """Executor task: embed part of a recording's speech (its cached analysis says where) and cache it with
    the partials' times (so a window can be left out of the recording's voice)."""
    from pipeline.analysis import voice
    from pipeline.analysis.base import Analysis
    from pipeline.audio.memory import release_free_memory

    rec = Analysis.load(Path(task.analysis_file))
    budget_s = voice.SAMPLE_SPEECH_S if task.budget_s is None else task.budget_s
    found = voice.recording_partials(task.source, rec, budget_s=budget_s)
    _save_partials(Path(task.cache_file), found)
    release_free_memory()
    return found


def cached_turn_partials(task: VoiceTask) -> tuple[Partials, list[list[float]]] | None:
    """The cached partials along a recording's speech and its music stretches (:func:`turn_partials`), or
    ``None``."""
    try:
        with np.load(task.cache_file) as data:
            return _read_partials(data), data["music"].astype(np.float64).reshape(-1, 2).tolist()
    except (OSError, ValueError, KeyError):
        return None


def turn_partials(task: VoiceTask) -> tuple[Partials, list[list[float]]]:
    """Executor task: partials every :data:`~pipeline.analysis.voice.TURN_STEP_S` along the speech of a
    recording (:func:`turn_stretches`: all of it, or :data:`TURN_SPEECH_S` in pieces when longer; times in
    the recording; every other one inside a run of one voice, :func:`pipeline.analysis.listen.turn_partials`)
    and the stretches ``[start_s, end_s]`` in which music or singing is heard
    (:func:`~pipeline.analysis.music.content_metrics`' ``music_spans``), both cached."""
    from pipeline.analysis import listen, voice
    from pipeline.analysis.base import ANALYSIS_RATE, Analysis
    from pipeline.analysis.speaker import PartialGrid, Partials, partial_grid
    from pipeline.audio.memory import release_free_memory
    from pipeline.audio.view import load_mono

    rec = Analysis.load(Path(task.analysis_file))
    grids: list[tuple[float, PartialGrid]] = []
    music: list[list[float]] = []
    for a, b in turn_stretches(rec.speech_segments):
        audio, _, _ = load_mono(
            task.source, rate=ANALYSIS_RATE, start_s=a, end_s=b, choice=rec.channel_choice, info=rec.info
        )
        if audio.size < ANALYSIS_RATE:
            continue
        music.extend([a + lo, a + hi] for lo, hi, _ in _music_spans(audio, rec, a))
        grid = partial_grid(audio, step_s=voice.TURN_STEP_S)
        if grid.heard_s >= voice.MIN_HEARD_S:
            grids.append((a, grid))
    # every other place first, every place only where a turn's edge could move (listen.turn_partials)
    found = listen.turn_partials([grid for _, grid in grids])
    joined = voice.join_partials(
        [
            Partials(p.starts_s + a, p.ends_s + a, p.vectors, p.heard_s)
            for (a, _), p in zip(grids, found, strict=True)
        ]
    )
    _save_partials(Path(task.cache_file), joined, music=np.asarray(music, dtype=np.float64).reshape(-1, 2))
    release_free_memory()
    return joined, music


def two_voice_recordings(voice: Voice, partials: dict[str, np.ndarray]) -> list[str]:
    """The recordings (by path) of the speaker's ``voice`` whose sampled partials hold two voices."""
    from pipeline.analysis.voice import holds_two_voices

    return [p for p in sorted(voice.recordings) if p in partials and holds_two_voices(partials[p])]


def heard_speech(
    partials: dict[str, np.ndarray], along: dict[str, tuple[Partials, list[list[float]]]]
) -> dict[str, tuple[np.ndarray, float]] | None:
    """What a learnt voice is decided from (:func:`decide` ``heard``) once the recordings of two voices were
    heard along their speech (``along``, :func:`turn_partials`): their partials along it, each standing
    for :data:`~pipeline.analysis.voice.TURN_STEP_S` of speech, and the others' samples (each partial
    :data:`~pipeline.analysis.voice.SAMPLE_STEP_S`). Which voice talks longest in an interview whose host
    talks 54-56 % of the time is told by all its partials: a sample of 60 s, or one partial in four of all
    its speech, got it wrong (``voices_bench.py``: sonnet-sms_male-clean, libri3080-aew-clean). A
    recording whose two groups are a music bed and the voice (no turns) keeps its sample; ``None`` when no
    recording holds turns (nothing to decide again)."""
    from pipeline.analysis.voice import SAMPLE_STEP_S, TURN_STEP_S, speaker_runs

    out = {p: (x, SAMPLE_STEP_S) for p, x in partials.items()}
    turns = False
    for path, (found, music) in along.items():
        if path in out and len(found) and speaker_runs(found, None, music, heard_two=True) is not None:
            out[path] = (np.asarray(found.vectors, dtype=np.float32), TURN_STEP_S)
            turns = True
    return out if turns else None


def speech_pool(
    partials: dict[str, np.ndarray],
    times: dict[str, np.ndarray],
    along: dict[str, tuple[Partials, list[list[float]]]],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The partials (and their times) each recording's own voice is heard from (:func:`decide`) once the
    recordings of two voices were heard along their speech (``along``, :func:`turn_partials`): for those,
    the partials along it taken every :data:`~pipeline.analysis.voice.SAMPLE_STEP_S` (spaced as a sample
    is, a bounded number kept on the voice's entry); for the others their sample. A sample of 60 s of an
    interview can hold more of the guest than of a host who talks 55 % of the time."""
    from pipeline.analysis.voice import SAMPLE_STEP_S

    vectors, spans = dict(partials), dict(times)
    for path, (found, _) in along.items():
        if path not in vectors or not len(found):
            continue
        keep, last = [], -np.inf
        for k, start in enumerate(np.asarray(found.starts_s, dtype=np.float64)):
            if start >= last + SAMPLE_STEP_S - 1e-6:
                keep.append(k)
                last = start
        vectors[path] = np.asarray(found.vectors, dtype=np.float32)[keep]
        spans[path] = np.stack([np.asarray(found.starts_s)[keep], np.asarray(found.ends_s)[keep]], axis=1)
    return vectors, spans


def _music_spans(audio16k: np.ndarray, rec: Any, start_s: float) -> list[list[Any]]:
    """Where music or singing is heard in ``audio16k`` (16 kHz, from ``start_s`` of the recording ``rec``):
    ``[start_s, end_s, kind]`` in the audio's own times."""
    from pipeline.analysis.music import content_frames, content_metrics, speech_mask_at

    mask = speech_mask_at(rec.speech_mask, start_s, audio16k.size)
    return list(content_metrics(content_frames(audio16k, mask)).metrics["music_spans"])


def with_turns(voice: Voice, along: dict[str, tuple[Partials, list[list[float]]]]) -> Voice:
    """``voice`` with the speaker's turns (:func:`~pipeline.analysis.voice.speaker_runs`) on the entry of
    each recording in ``along`` (its partials along all its speech and its music stretches) that holds two
    voices (its sample did: ``heard_two``; a music bed under part of it is not a second voice)."""
    from pipeline.analysis.voice import speaker_runs

    recordings = dict(voice.recordings)
    for path, (partials, music) in along.items():
        if path not in recordings:
            continue
        runs = speaker_runs(partials, voice, music, heard_two=True)
        if runs is not None:
            recordings[path] = replace(recordings[path], turns=tuple(runs))
    return replace(voice, recordings=recordings)


def reference_voice(source: str | Path, cache_dir: Path, sha256: str) -> Voice | None:
    """The dominant voice of the first :data:`REFERENCE_MAX_S` seconds of a reference recording (cached by
    its sha256 and the speaker model's name: another model's vectors are never reused); ``None`` when it
    holds too little speech."""
    from pipeline.analysis import voice
    from pipeline.analysis.base import ANALYSIS_RATE
    from pipeline.analysis.speaker import EMBEDDING_SIZE, MODEL_NAME, partial_embeddings
    from pipeline.audio.view import load_mono

    cache = cache_dir / "voices" / f"reference-{MODEL_NAME}-{sha256}.npz"
    vectors = _load(cache)
    if vectors is None:
        audio, _, _ = load_mono(source, rate=ANALYSIS_RATE, end_s=REFERENCE_MAX_S)
        found = partial_embeddings(audio, step_s=voice.SAMPLE_STEP_S) if audio.size >= ANALYSIS_RATE else None
        vectors = (
            found.vectors
            if found is not None and found.heard_s >= voice.MIN_HEARD_S
            else np.zeros((0, EMBEDDING_SIZE))
        )
        _save(cache, vectors=np.asarray(vectors, dtype=np.float32))
    return voice.dominant_voice(vectors, source="reference")


def _evenly(count: int, limit: int) -> np.ndarray:
    """Indices of at most ``limit`` of ``count`` items, evenly spread."""
    if count <= limit:
        return np.arange(count)
    return np.linspace(0, count - 1, limit).round().astype(int)


def decide(
    partials: dict[str, np.ndarray],
    metrics: dict[str, dict[str, Any] | None],
    reference: Voice | None = None,
    times: dict[str, np.ndarray] | None = None,
    heard: dict[str, tuple[np.ndarray, float]] | None = None,
) -> tuple[Voice | None, dict[str, float | None], dict[str, float]]:
    """The voice of one speaker from the partials of each of their recordings (by path; ``None``: too
    little speech), each recording's similarity to it (``None``: too little speech to tell) and the
    recordings that are someone else, with the limit each fell under (``metrics`` gives each one's
    conditions, see :func:`~pipeline.analysis.voice.degraded`). ``reference``: the voice named for the
    speaker. ``times`` (by path, ``(n, 2)``: each partial's start and end) go on the recordings' entries,
    so selection can leave a window's own partials out (:meth:`~pipeline.analysis.voice.Voice.without`).
    ``heard`` (by path): the partials the voice is learnt from instead, each recording's with the seconds
    of speech one partial stands for (:func:`heard_speech`): the voice heard longest in them, and of each
    recording the voice heard longest in its own (``partials`` then only give the recordings' entries)."""
    from pipeline.analysis import voice as v

    longest = heard is not None  # the voice heard longest, of each recording too (not of a music bed's)
    learn = heard if heard is not None else {p: (x, v.SAMPLE_STEP_S) for p, x in partials.items()}
    nonempty = [p for p in sorted(learn) if learn[p][0].shape[0]]
    if reference is not None:
        speaker_voice: Voice | None = reference
    elif nonempty:
        pooled = np.concatenate([learn[p][0] for p in nonempty])
        seconds = np.concatenate([np.full(learn[p][0].shape[0], learn[p][1]) for p in nonempty])
        keep = _evenly(pooled.shape[0], MAX_CLUSTER_PARTIALS)
        speaker_voice = v.dominant_voice(pooled[keep], longest=longest, seconds=seconds[keep])
    else:
        speaker_voice = None
    if speaker_voice is None:
        return None, dict.fromkeys(partials), {}
    similarity: dict[str, float | None] = {}
    own_voices: dict[str, Voice] = {}
    for path in sorted(partials):
        # each recording's own voice is heard from what the speaker's is (a recording of two voices: all its
        # speech; its thinned pool can tie the two voices, 33/33 partials for a host talking 55 %)
        own_partials = learn[path][0] if path in learn else partials[path]
        own = (
            v.dominant_voice(own_partials, source="recording", longest=longest)
            if own_partials.shape[0]
            else None
        )
        similarity[path] = None if own is None else round(float(own.vector @ speaker_voice.vector), 4)
        if own is not None:
            own_voices[path] = own
    conditions = {p: v.degraded(metrics.get(p)) for p in partials}
    mismatched = v.mismatched(similarity, conditions, reference=reference is not None)
    # Selection hears each recording's windows against the speaker and against the speaker as heard there
    # (when that is clearly the speaker: a noisy file whose own dominant voice is a guest must not hide him).
    # The speaker as heard there is the plain mean of the recording's partials (of the speaker's group when
    # it holds two voices), recorded like its windows (analysis.voice.recording_voice).
    keep: dict[str, Voice] = {}
    for p in own_voices:
        if p in mismatched or (similarity[p] or 0.0) < v.HERE_MIN_COSINE:
            continue
        here = v.recording_voice(partials[p], speaker_voice, times=(times or {}).get(p))
        if here is not None and float(here.vector @ speaker_voice.vector) >= v.HERE_MIN_COSINE:
            keep[p] = here
    speaker_voice = replace(speaker_voice, recordings=keep)
    return speaker_voice, similarity, mismatched
