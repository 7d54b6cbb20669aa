"""Whose voice: the dominant voice of a set of partial embeddings, and the stretches where another speaks.

Built on the CAM++ partial embeddings of :mod:`pipeline.analysis.speaker` (1.5 s each; GE2E's 1.6 s before
2026-12-08: every threshold here was measured again for CAM++). Three jobs:

1. **sampling a recording** (:func:`recording_partials`): partials over at most
   :data:`SAMPLE_SPEECH_S` of a recording's speech, taken in :data:`SAMPLE_CHUNK_S` pieces spread evenly
   over its speech segments (a long file costs the same as a one-minute one);
2. **the dominant voice** (:func:`dominant_voice`): of all the speech of recordings known to hold two
   voices taking turns (``longest``), the group with more speech (:func:`split_voices`); within it (else
   all of them), the partials are grouped around the partial with the
   most look-alikes (cosine >= :data:`PAIR_COSINE`); the group's mean, refined twice against its own
   members (cosine >= :data:`MEMBER_COSINE`), is the voice. Of a two-person interview that is the one who
   talks most; of a speaker's folder, the voice most of its speech shares. ``share`` says how much of the
   speech it holds;
3. **other voices** (:func:`other_voice_spans`): along a span, runs of at least :data:`MIN_RUN_PARTIALS`
   consecutive partials (about 2 s of speech, at the span's edges too) whose cosine to the speaker is below
   a threshold are another speaker. The speaker is taken **as heard in the recording** when known
   (:func:`recording_voice`: the plain mean of the recording's partials, recorded like the window, with
   the window's own partials left out: :meth:`Voice.without`) with the absolute :data:`HERE_COSINE`; else the speaker's voice with a relative threshold
   (:func:`other_voice_threshold`), because noise and reverberation lower a speaker's own similarity to a
   clean voice into the range of other voices (``benchmarks/voices_bench.py``, BENCHMARKS.md).

Why these numbers (BENCHMARKS.md, "CAM++ against GE2E" and "The switch to CAM++"): a clean partial against
its own speaker's mean scores 0.82 at the median and 0.66 at the 5th percentile (degraded: 0.52-0.55 at
the 5th percentile); against another speaker's, about 0.1 at the median and 0.21-0.42 at the 95th. Two
partials of one clean speaker score 0.58 at the median, 0.40 at the 5th percentile; of two speakers at most
0.37.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.analysis.base import ANALYSIS_RATE, merge_spans, runs
from pipeline.analysis.speaker import EMBEDDING_SIZE, PARTIAL_S, Partials, partial_embeddings, unit

if TYPE_CHECKING:
    from pipeline.analysis.base import Analysis

SAMPLE_SPEECH_S = 60.0
"""Most speech (seconds) of one recording embedded to know its voice."""
SPEAKER_SPEECH_S = 120.0
"""Speech (seconds) embedded per speaker in all: a speaker's files share it (:func:`speech_budget`)."""
FILE_MIN_SPEECH_S = 4.8
"""Least speech (seconds) embedded of one recording (three partials), however many files the speaker has."""
SAMPLE_CHUNK_S = 6.0
"""Speech is read in pieces of at most this length, spread evenly over the recording's speech segments."""
SAMPLE_STEP_S = PARTIAL_S
"""Partial spacing when sampling a recording: side by side, no overlap (each second heard once; the voice
is averaged over many partials anyway)."""
SPAN_STEP_S = 0.5
"""Partial spacing along a window checked for other voices (finer, so a 2 s turn holds whole partials)."""
TURN_STEP_S = 0.5
"""Partial spacing along a recording's speech for the speaker's turns (:func:`speaker_runs`). CAM++ hears
each second three times at 0.5 s (1.5 s partials); 1.0 s would halve that, but with one partial eroded
(:data:`TURN_ERODE_PARTIALS`) a turn then began 0.34 s inside a guest's turn (``tests/test_speaker_run.py``,
the interview opening with a jingle): not yet measured with more erosion."""
SCREEN_STEP_S = 1.0
"""Partial spacing of the first, coarse listen to a window (:func:`span_finding`)."""
SCREEN_TAIL_S = 1.8
"""The coarse listen also hears one partial over the last this many seconds of the window."""
SCREEN_MARGIN = 0.05
"""A coarse partial within this of the threshold sends the window to the fine listen."""
PAIR_COSINE = 0.40
"""Two partials of the same voice: cosine at least this (seeds the dominant group). CAM++ 1.5 s partials of
one clean reader pair at 0.40 at their 5th percentile; of two readers at most 0.37 (p99 0.27)."""
MEMBER_COSINE = 0.45
"""A partial belongs to the voice when its cosine to the voice's mean is at least this (own partials 0.66 at
their 5th percentile clean, 0.52-0.55 degraded; other speakers' 0.21-0.42 at their 95th)."""
OTHER_MARGIN = 0.30
"""Other voice: a partial this far below the median similarity of the voice's own partials ..."""
OTHER_COSINE_MAX = 0.30
"""... and never above this cosine: with CAM++ the threshold against the speaker's clean voice is this,
absolute (``voices_bench.py --model campplus``: >= 2 partials under 0.30 catch 98.1 %, plateau 0.27-0.31;
a degraded speaker's own partials stay above it, so no :data:`DEGRADED_DROP` is needed) ..."""
OTHER_COSINE_MIN = 0.30
"""... and at least this (GE2E needed a relative threshold between 0.40 and 0.62; CAM++ does not)."""
DEGRADED_DROP = 0.0
"""In a noisy or reverberant stretch (:func:`degraded`) the threshold against the speaker's (clean) voice
is this much lower. GE2E needed 0.15 (its own partials fell to 0.45-0.65 in street, dishes, rain, a
church); CAM++ keeps a degraded speaker's partials above :data:`OTHER_COSINE_MIN` (BENCHMARKS.md)."""
HERE_MIN_COSINE = 0.45
"""A recording's own voice stands for the speaker as heard there (the reference for other voices,
:func:`other_voice_spans`) only when it scores at least this against the speaker's voice (CAM++: one
speaker's files 0.68 or more against each other, even re-recorded nearest their own; different speakers at
most 0.54; GE2E needed 0.65)."""
HERE_COSINE = 0.36
"""Other voice against the speaker as heard in the recording: a partial under this cosine. Measured with
CAM++ (``voices_bench.py --pipeline-rule``: 216 windows with a 2-5 s turn of another voice, 144 without,
clean/noise/room), caught / false alarms on seed 0 and seed 1: 0.36 -> 99.1 % / 0.7 % and 97.7 % / 2.8 %;
0.39 -> 100 / 2.1 and 98.6 / 4.2; 0.42 -> 100 / 2.8 and 99.1 / 5.6; 0.45 -> 100 / 4.2 and 100 / 9.0 (every
false alarm in noise at 5-10 dB). Chosen on both seeds: the lowest measured, as seed 1's false alarms
rise faster than seed 0's. GE2E needed 0.67 (86 % / 4.2 % and 85 % / 9.7 %)."""
TWO_VOICES_COSINE = 0.50
"""A recording holds two voices when the centroids of its partials' two groups (:func:`two_voices`) are
under this cosine (CAM++: interviews <= 0.41; one speaker's 15 s >= 0.62 at the 2nd percentile; GE2E
needed 0.80). As a run samples a recording (``voices_bench.py --turns-cosine``, seed 0): the 36 interviews
-0.09 to 0.445 (median 0.09); 72 recordings of one voice (an interview's host or guest turns end to end,
25-80 s) 0.463 to 0.972, p2 0.55 (one under 0.50: a room's guest); 144 one-speaker 15 s windows p2 0.42, p5
0.51 (ten partials)..."""
TURNS_COSINE = 0.50
"""... or under this one for the partials along all of a recording whose sample held two voices
(:func:`split_voices` ``heard_two``). Along all the speech (partials every :data:`TURN_STEP_S`,
``voices_bench.py --turns-cosine``, seed 0): the 36 interviews -0.10 to 0.454 (up to 0.05 closer than their
sample); the 72 one-voice recordings 0.333, 0.533, 0.55, then 0.665 and up (p2 0.54; the one whose sample
held two voices 0.55); 144 one-speaker windows p2 0.60. Chosen midway between the interviews' highest and
one voice's p2, which is :data:`TWO_VOICES_COSINE` again: with CAM++ no interview needs ``heard_two``
(GE2E did: 0.85, an interview sampled at 0.78 came out at 0.80 along all of it)."""
MIN_RUN_PARTIALS = 2
"""Consecutive partials below the threshold that make an other-voice span (with 0.5 s steps: >= 2.1 s)."""
LEAVE_OUT_MIN_PARTIALS = 4
"""A recording's voice keeps a window's own partials when fewer than this many would be left without them
(a recording not much longer than the window: too few partials for a voice of its own)."""
EDGE_DROP = 0.05
"""A lone low partial at the start or end of a span (a turn cut by the window's edge, heard by one
partial) is another voice only this far under the threshold: at the threshold itself it tripled the false
alarms (0.7 % -> 6.2 %, ``voices_bench.py``)."""
DEGRADED_EDGE_DROP = 0.15
""":data:`EDGE_DROP` against the speaker as heard in the recording (``here``, the window left out of it:
:meth:`Voice.without`) in a degraded stretch (noise, a room), where the speaker's own lone partials fall
further: a lone partial at the edge is another voice there under 0.52. ``voices_bench.py --pipeline-rule``
with the leave-out: :data:`EDGE_DROP` everywhere 86.6 % caught, 6.2 % false alarms (room 14.6 %, clean
0 %); this drop when degraded 86.1 % / 4.2 %. A clean window keeps :data:`EDGE_DROP`: a real interview's
guest at a clean window's edge scores 0.54 against the host's voice there."""
MIN_HEARD_S = 1.0
"""Less speech than this (after pauses are cut) gives no partials worth comparing."""


@dataclass(frozen=True)
class Voice:
    """A voice: its unit ``vector`` and how its own partials score against it.

    ``own_median`` is the median cosine of the member partials to ``vector`` (a clean recording about 0.85,
    a noisy one lower); ``share`` the fraction of the partials it was built from that belong to it;
    ``partials`` how many those were. ``source`` says where it came from (``folder``, ``reference``,
    ``recording``). ``recordings`` holds, for a speaker's voice, the dominant voice of each of their
    recordings (by path): the speaker as heard in that recording's room and microphone. ``turns``, on
    such an entry of a recording of two voices, lists the speaker's own stretches ``(start_s, end_s)``
    (:func:`speaker_runs`): selection keeps to them (``None``: the whole recording is the speaker's).
    ``member_times`` and ``member_vectors``, on such an entry, are the sampled partials it is the mean of
    (``(start_s, end_s)`` in the recording's times, and their unit vectors): :meth:`without` leaves a
    window's own partials out of it (``None``: not known).
    """

    vector: np.ndarray
    own_median: float
    share: float
    partials: int
    source: str = "folder"
    recordings: dict[str, Voice] = field(default_factory=dict, compare=False)
    turns: tuple[tuple[float, float], ...] | None = field(default=None, compare=False)
    member_times: tuple[tuple[float, float], ...] | None = field(default=None, compare=False)
    member_vectors: np.ndarray | None = field(default=None, compare=False, repr=False)

    def without(self, start_s: float, end_s: float) -> Voice:
        """This voice with its member partials that overlap ``[start_s, end_s]`` left out (the mean of the
        rest), so a window is judged against the recording's voice without its own partials (another
        voice in the window would pull the voice towards itself). Itself when nothing overlaps, when its
        members are not known, or when fewer than :data:`LEAVE_OUT_MIN_PARTIALS` would be left."""
        if self.member_times is None or self.member_vectors is None or not self.member_times:
            return self
        times = np.asarray(self.member_times, dtype=np.float64).reshape(-1, 2)
        outside = (times[:, 1] <= start_s) | (times[:, 0] >= end_s)
        if outside.all() or int(outside.sum()) < LEAVE_OUT_MIN_PARTIALS:
            return self
        rest = np.asarray(self.member_vectors, dtype=np.float64)[outside]
        centre = unit(rest.mean(axis=0))
        return replace(
            self,
            vector=centre,
            own_median=float(np.median(rest @ centre)),
            member_times=None,
            member_vectors=None,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (the vectors rounded to 6 decimals)."""
        out: dict[str, Any] = {
            "vector": [round(float(v), 6) for v in self.vector],
            "own_median": round(self.own_median, 4),
            "share": round(self.share, 4),
            "partials": self.partials,
            "source": self.source,
        }
        if self.recordings:
            out["recordings"] = {p: v.to_dict() for p, v in sorted(self.recordings.items())}
        if self.turns is not None:
            out["turns"] = [[a, b] for a, b in self.turns]
        if self.member_times is not None and self.member_vectors is not None:
            out["member_times"] = [[round(a, 3), round(b, 3)] for a, b in self.member_times]
            out["member_vectors"] = np.round(self.member_vectors, 4).tolist()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Voice:
        """The inverse of :meth:`to_dict`."""
        return cls(
            vector=np.asarray(data["vector"], dtype=np.float64),
            own_median=float(data["own_median"]),
            share=float(data["share"]),
            partials=int(data["partials"]),
            source=str(data.get("source", "folder")),
            recordings={p: cls.from_dict(v) for p, v in (data.get("recordings") or {}).items()},
            turns=None
            if data.get("turns") is None
            else tuple((float(a), float(b)) for a, b in data["turns"]),
            member_times=None
            if data.get("member_times") is None
            else tuple((float(a), float(b)) for a, b in data["member_times"]),
            member_vectors=None
            if data.get("member_vectors") is None
            else np.asarray(data["member_vectors"], dtype=np.float64).reshape(-1, EMBEDDING_SIZE),
        )


def _densest_voice(v: np.ndarray, source: str) -> Voice:
    """The voice of the group around the partial with the most look-alikes (:data:`PAIR_COSINE`), its mean
    refined twice over the partials within :data:`MEMBER_COSINE` of it (``v``: unit partials, not empty)."""
    pairs = v @ v.T
    counts = (pairs >= PAIR_COSINE).sum(axis=1)
    seed = int(np.argmax(counts))
    members = pairs[seed] >= PAIR_COSINE
    centre = unit(v[members].mean(axis=0))
    for _ in range(2):
        sims = v @ centre
        new = sims >= MEMBER_COSINE
        if not new.any():
            break
        members = new
        centre = unit(v[members].mean(axis=0))
    sims = v @ centre
    members = sims >= MEMBER_COSINE
    own = sims[members] if members.any() else sims
    return Voice(
        vector=centre,
        own_median=float(np.median(own)),
        share=float(members.mean()),
        partials=int(v.shape[0]),
        source=source,
    )


def dominant_voice(
    vectors: np.ndarray,
    *,
    source: str = "folder",
    longest: bool = False,
    seconds: np.ndarray | None = None,
) -> Voice | None:
    """The voice most of ``vectors`` (unit partial embeddings, ``(n, EMBEDDING_SIZE)``) share; ``None`` for none.

    The densest voice (:func:`_densest_voice`: the partial with the most look-alikes within
    :data:`PAIR_COSINE`, its group refined twice within :data:`MEMBER_COSINE`). With ``longest`` (the
    partials are all the speech of recordings known to hold two voices taking turns) and two voices
    (:func:`split_voices`): the densest voice of the group heard longest (``seconds``: the speech each
    partial stands for, summed per group; default the same for all). The densest voice of all is not the
    longest heard: a studio guest's partials are more alike than a host's who talks 55 % of the time
    (``voices_bench.py``, sonnet-sms_male-clean). Not by default: a reading with a music bed under most
    of it splits into the voice under the bed and the clean voice, and the longer is the bed's.
    """
    v = np.asarray(vectors, dtype=np.float64).reshape(-1, EMBEDDING_SIZE)
    if v.shape[0] == 0:
        return None
    pair = split_voices(v) if longest else None
    if pair is None:
        return _densest_voice(v, source)
    nearer_a = v @ pair[0] >= v @ pair[1]
    weight = np.ones(v.shape[0]) if seconds is None else np.asarray(seconds, dtype=np.float64).reshape(-1)
    longest = nearer_a if float(weight[nearer_a].sum()) * 2 >= float(weight.sum()) else ~nearer_a
    found = _densest_voice(v[longest], source)
    members = longest & (v @ found.vector >= MEMBER_COSINE)
    return replace(found, share=float(members.mean()), partials=int(v.shape[0]))


def two_voices(vectors: np.ndarray, iterations: int = 10) -> tuple[np.ndarray, np.ndarray] | None:
    """Spherical 2-means of unit partials ``(n, EMBEDDING_SIZE)``: the two unit centroids, or ``None`` for fewer than
    four partials. Starts from the densest voice (:func:`_densest_voice`) and the mean of the 20 % of
    partials farthest from it."""
    v = np.asarray(vectors, dtype=np.float64).reshape(-1, EMBEDDING_SIZE)
    if v.shape[0] < 4:
        return None
    first = _densest_voice(v, "recording")
    sims = v @ first.vector
    far = sims <= np.quantile(sims, 0.2)
    a, b = first.vector, unit(v[far].mean(axis=0))
    for _ in range(iterations):
        nearer_a = v @ a >= v @ b
        if nearer_a.all() or not nearer_a.any():
            break
        a, b = unit(v[nearer_a].mean(axis=0)), unit(v[~nearer_a].mean(axis=0))
    return a, b


def split_voices(vectors: np.ndarray, *, heard_two: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
    """The two centroids (:func:`two_voices`) when partials ``(n, EMBEDDING_SIZE)`` hold two voices (centroids under
    :data:`TWO_VOICES_COSINE`), else ``None``. ``heard_two``: a sample of the same recording already held
    two voices (the partials are all of its speech, heard for its turns), so centroids under
    :data:`TURNS_COSINE` are enough: the two voices of an interview sampled at 0.78 can split at 0.80
    along all of it."""
    pair = two_voices(vectors)
    if pair is None:
        return None
    return pair if float(pair[0] @ pair[1]) < (TURNS_COSINE if heard_two else TWO_VOICES_COSINE) else None


def holds_two_voices(vectors: np.ndarray) -> bool:
    """True when partials ``(n, EMBEDDING_SIZE)`` hold two voices (:func:`split_voices`)."""
    return split_voices(vectors) is not None


def recording_voice(
    vectors: np.ndarray, speaker: Voice | None = None, *, times: np.ndarray | None = None
) -> Voice | None:
    """The speaker as heard in one recording, from its partials ``(n, EMBEDDING_SIZE)``: the plain mean of them
    (recorded like any window of it; a tight core of typical partials pushes a noisy speaker's own
    partials under :data:`HERE_COSINE`). When they hold two voices (:func:`split_voices`), the mean of the group nearer ``speaker`` (``None``: the bigger group).
    ``times`` (``(n, 2)``: each partial's start and end in the recording) keeps the members and their
    times on the voice, so a window can be left out of it (:meth:`Voice.without`)."""
    v = np.asarray(vectors, dtype=np.float64).reshape(-1, EMBEDDING_SIZE)
    if v.shape[0] == 0:
        return None
    members = np.ones(v.shape[0], dtype=bool)
    spans = None if times is None else np.asarray(times, dtype=np.float64).reshape(-1, 2)
    pair = split_voices(v)
    if pair is not None:
        nearer_a = v @ pair[0] >= v @ pair[1]
        if speaker is not None:
            pick_a = float(pair[0] @ speaker.vector) >= float(pair[1] @ speaker.vector)
        else:
            pick_a = int(nearer_a.sum()) >= int((~nearer_a).sum())
        members = nearer_a if pick_a else ~nearer_a
    centre = unit(v[members].mean(axis=0))
    keep_members = spans is not None and spans.shape[0] == v.shape[0]
    return Voice(
        vector=centre,
        own_median=float(np.median(v[members] @ centre)),
        share=float(members.mean()),
        partials=int(v.shape[0]),
        source="recording",
        member_times=tuple((float(a), float(b)) for a, b in spans[members]) if keep_members else None,
        member_vectors=v[members].copy() if keep_members else None,
    )


TURN_MARGIN = 0.10
"""A partial is the speaker's turn when its cosine to the speaker's group beats the other group's by this."""
TURN_ERODE_PARTIALS = 2
"""Partials dropped at each end of a run of the speaker's partials (1 s at :data:`TURN_STEP_S` 0.5 s: a
partial that straddles a turn change still leans to the speaker). Measured with GE2E (``voices_bench.py``
interviews, 36): margin 0.10 with 2 dropped gives a host-only longest run in 35/36 and no guest in any run;
0-1 dropped <= 75 %. That is for an edge between two voices, where a partial leans to the voice holding
most of it. Next to music or silence a partial leans to the voice however little of it is speech (CAM++,
the interview opening with a jingle, ``tests/test_speaker_run.py``: 0.1-0.3 s of the host after 1.2 s of
music scores 0.33 against the host's group, 0.07 against the other), so a turn began a partial before the
speech; such a partial does not belong to the voice (0.33 < :data:`MEMBER_COSINE` 0.45; with 0.6-0.8 s of
speech 0.57; the host's own partials 0.69-0.83): a run's edge partials under it are cut before the
erosion."""


def speaker_runs(
    partials: Partials,
    speaker: Voice | None = None,
    music: Sequence[Sequence[float]] = (),
    *,
    heard_two: bool = False,
) -> list[tuple[float, float]] | None:
    """Where only the speaker talks in a recording of two voices, from partials along it every
    :data:`TURN_STEP_S` (times in the recording): runs of partials of the speaker's group (:func:`two_voices`,
    the group nearer ``speaker``; ``None``: the bigger) by :data:`TURN_MARGIN`, each first cut back to
    partials that belong to the speaker's group (:data:`MEMBER_COSINE`; see :data:`TURN_ERODE_PARTIALS`),
    then shortened by :data:`TURN_ERODE_PARTIALS` at each end that borders other partials (not at the first or
    last partial heard there). ``None`` when the partials do not hold two voices
    (:func:`split_voices`; ``heard_two``: a sample of the recording already held two voices): then the
    whole recording is the speaker's.

    ``music`` lists the stretches ``(start_s, end_s, ...)`` of the recording in which music or singing is
    heard. A bed under part of a reading moves the partials there as a second voice would: when one group's
    partials lie in music (:data:`MUSIC_GROUP_SHARE` of them or more) and the other's do not, the groups are
    the bed and the voice, and the answer is ``None`` too (selection's music check then hears the bed)."""
    v = np.asarray(partials.vectors, dtype=np.float64).reshape(-1, EMBEDDING_SIZE)
    pair = split_voices(v, heard_two=heard_two)
    if pair is None:
        return None
    a, b = pair
    if speaker is not None:
        pick_a = float(a @ speaker.vector) >= float(b @ speaker.vector)
    else:
        pick_a = int((v @ a >= v @ b).sum()) * 2 >= v.shape[0]
    own, other = (a, b) if pick_a else (b, a)
    if _a_music_bed(partials, v @ own >= v @ other, music):
        return None
    mine = (v @ own) - (v @ other) > TURN_MARGIN
    belongs = v @ own >= MEMBER_COSINE
    edges = set(_piece_edges(partials))
    turns: list[tuple[float, float]] = []
    for first, end in _piecewise_runs(mine, partials):
        # An edge of the run that is the first or last partial heard there (the recording's, or a piece's
        # of one heard in pieces) borders no other voice: nothing to erode (a turn's partial leans to the
        # voice holding most of it only where a voice changes). Eroded there, the speaker's last second
        # was left outside every turn and selection took it for another voice.
        opens, closes = first in edges, end in edges
        while first < end and not belongs[first]:  # mostly not speech (music, noise, a pause): not the turn
            first, opens = first + 1, False
        while end > first and not belongs[end - 1]:
            end, closes = end - 1, False
        lo = first + (0 if opens else TURN_ERODE_PARTIALS)
        hi = end - 1 - (0 if closes else TURN_ERODE_PARTIALS)
        if hi >= lo:
            turns.append((round(float(partials.starts_s[lo]), 3), round(float(partials.ends_s[hi]), 3)))
    return turns


def _piece_edges(partials: Partials) -> list[int]:
    """Indices where the pieces of ``partials`` begin, and their count: a piece ends where the partials skip
    more than :data:`SAMPLE_MAX_GAP_S` of the recording (read in pieces)."""
    starts, ends = np.asarray(partials.starts_s), np.asarray(partials.ends_s)
    return [0, *(np.flatnonzero(starts[1:] > ends[:-1] + SAMPLE_MAX_GAP_S) + 1).tolist(), starts.size]


def _piecewise_runs(mask: np.ndarray, partials: Partials) -> list[tuple[int, int]]:
    """The runs ``(first, end)`` of ``True`` in ``mask`` (one per partial), broken at the pieces'
    edges (:func:`_piece_edges`: a run never spans speech that was not embedded)."""
    edges = _piece_edges(partials)
    out: list[tuple[int, int]] = []
    for lo, hi in itertools.pairwise(edges):
        out.extend((lo + int(a), lo + int(b)) for a, b in zip(*runs(mask[lo:hi]), strict=True))
    return out


MUSIC_GROUP_SHARE = 0.5
"""A group of partials is a music bed's when at least this share of them is centred in music
(:func:`speaker_runs`)."""


def _a_music_bed(partials: Partials, nearer_own: np.ndarray, music: Sequence[Sequence[float]]) -> bool:
    """True when one of the two groups of partials (``nearer_own`` and the rest) lies in ``music`` and the
    other does not."""
    if not len(music) or nearer_own.all() or not nearer_own.any():
        return False
    centres = (np.asarray(partials.starts_s) + np.asarray(partials.ends_s)) / 2.0
    heard = np.zeros(centres.size, dtype=bool)
    for span in music:
        heard |= (centres >= float(span[0])) & (centres < float(span[1]))
    shares = sorted((float(heard[nearer_own].mean()), float(heard[~nearer_own].mean())))
    return shares[1] >= MUSIC_GROUP_SHARE > shares[0]


def other_voice_threshold(voice: Voice, *, is_degraded: bool = False) -> float:
    """Cosine under which a partial is another voice: relative to the voice's own partials (module doc),
    :data:`DEGRADED_DROP` lower in a degraded stretch."""
    limit = float(np.clip(voice.own_median - OTHER_MARGIN, OTHER_COSINE_MIN, OTHER_COSINE_MAX))
    return max(OTHER_COSINE_MIN, limit - DEGRADED_DROP) if is_degraded else limit


def other_voice_spans(
    partials: Partials,
    voice: Voice,
    *,
    threshold: float | None = None,
    here: Voice | None = None,
    here_threshold: float | None = None,
    is_degraded: bool = False,
) -> tuple[float | None, list[list[float]]]:
    """The similarity of ``partials`` to ``voice`` (the mean of the partials, normalised, against it;
    ``None``: too little speech) and the other-voice spans ``[start_s, end_s]`` among them (module doc).

    ``here`` is the speaker as heard in the recording the partials come from (:func:`recording_voice`):
    when given, a partial is another voice when under ``here_threshold`` (default :data:`HERE_COSINE`)
    against it, so a room or microphone unlike the speaker's other recordings is not taken for another
    person; else when under ``threshold`` (default :func:`other_voice_threshold`) against ``voice``.
    ``is_degraded`` (a noisy or reverberant stretch) lowers the limit of a lone partial at an edge
    against ``here`` (:data:`DEGRADED_EDGE_DROP`).
    """
    if len(partials) == 0 or partials.heard_s < MIN_HEARD_S:
        return None, []
    limit = other_voice_threshold(voice) if threshold is None else threshold
    similarity = float(unit(partials.vectors.mean(axis=0)) @ voice.vector)
    low = _low(partials, voice, limit, here, here_threshold)
    edge_drop = DEGRADED_EDGE_DROP if here is not None and is_degraded else EDGE_DROP
    edge_low = _low(partials, voice, limit, here, here_threshold, margin=-edge_drop)
    heard = [
        (round(float(partials.starts_s[first]), 3), round(float(partials.ends_s[k - 1]), 3))
        for first, k in zip(*runs(low), strict=True)
        if k - first >= MIN_RUN_PARTIALS or (first == 0 and edge_low[0]) or (k == low.size and edge_low[-1])
    ]
    return round(similarity, 4), [list(span) for span in merge_spans(heard)]


def sample_spans(
    segments: list[tuple[float, float]], *, budget_s: float = SAMPLE_SPEECH_S, chunk_s: float = SAMPLE_CHUNK_S
) -> list[tuple[float, float]]:
    """Stretches holding ``budget_s`` of speech in all, in pieces of ``chunk_s`` spread evenly.

    The segments are laid end to end (speech time only); ``ceil(budget_s / chunk_s)`` pieces are
    placed at even steps along that line and mapped back to the recording's times. A piece that runs past
    the end of a segment goes on into the next ones; the parts of a piece are read as one stretch when the
    pause between them is shorter than :data:`SAMPLE_MAX_GAP_S` (the embedding cuts pauses short), else apart.
    """
    segs = [(float(a), float(b)) for a, b in segments if b > a]
    total = sum(b - a for a, b in segs)
    if total <= 0:
        return []
    if total <= budget_s:
        return merge_spans(segs, gap_s=SAMPLE_MAX_GAP_S)
    count = max(1, int(np.ceil(budget_s / chunk_s - 1e-9)))
    chunk = budget_s / count
    step = total / count
    edges = np.cumsum([0.0] + [b - a for a, b in segs])
    parts: list[tuple[float, float]] = []
    for k in range(count):
        lo = min(max((k + 0.5) * step - chunk / 2, 0.0), total - chunk)
        hi = lo + chunk
        first = int(np.searchsorted(edges, lo, side="right") - 1)
        for i in range(first, len(segs)):
            if edges[i] >= hi:
                break
            a, b = segs[i]
            parts.append((a + max(0.0, lo - edges[i]), a + min(b - a, hi - edges[i])))
    return [(float(a), float(b)) for a, b in merge_spans(parts, gap_s=SAMPLE_MAX_GAP_S) if b - a >= 0.5]


SAMPLE_MAX_GAP_S = 2.0
"""Parts of a sampled piece closer than this are read as one stretch (:func:`sample_spans`)."""


def join_partials(parts: list[Partials], *, offset_s: float = 0.0) -> Partials:
    """One :class:`Partials` of several, times moved by ``offset_s``."""
    if not parts:
        empty = np.zeros(0)
        return Partials(empty, empty, np.zeros((0, EMBEDDING_SIZE), dtype=np.float32), 0.0)
    return Partials(
        starts_s=np.concatenate([p.starts_s for p in parts]) + offset_s,
        ends_s=np.concatenate([p.ends_s for p in parts]) + offset_s,
        vectors=np.concatenate([p.vectors for p in parts]).astype(np.float32),
        heard_s=float(sum(p.heard_s for p in parts)),
    )


def recording_partials(
    source: str | Path, analysis: Analysis, *, budget_s: float = SAMPLE_SPEECH_S
) -> Partials:
    """Partials over at most ``budget_s`` of the speech of a recording already analysed (its speech
    segments and channel choice), read again piece by piece from ``source``."""
    from pipeline.audio.view import load_mono

    parts = []
    for a, b in sample_spans(analysis.speech_segments, budget_s=budget_s):
        audio, _, _ = load_mono(
            source, rate=ANALYSIS_RATE, start_s=a, end_s=b, choice=analysis.channel_choice, info=analysis.info
        )
        if audio.size < 0.5 * ANALYSIS_RATE:
            continue
        found = partial_embeddings(audio, step_s=SAMPLE_STEP_S)
        if found.heard_s >= MIN_HEARD_S:
            parts.append(Partials(found.starts_s + a, found.ends_s + a, found.vectors, found.heard_s))
    return join_partials(parts)


def _low(
    partials: Partials,
    voice: Voice,
    limit: float,
    here: Voice | None,
    here_threshold: float | None,
    margin: float = 0.0,
) -> np.ndarray:
    """Which partials are far from ``here`` (below ``here_threshold + margin``) when given, else from
    ``voice`` (below ``limit + margin``)."""
    if here is not None:
        here_limit = HERE_COSINE if here_threshold is None else here_threshold
        return np.asarray(partials.vectors @ here.vector, dtype=np.float64) < here_limit + margin
    return np.asarray(partials.vectors @ voice.vector, dtype=np.float64) < limit + margin


def span_finding(
    audio16k: np.ndarray,
    voice: Voice | None,
    *,
    offset_s: float = 0.0,
    threshold: float | None = None,
    here: Voice | None = None,
    here_threshold: float | None = None,
    is_degraded: bool = False,
) -> tuple[float | None, list[list[float]], Partials]:
    """Partials every :data:`SPAN_STEP_S` along a 16 kHz signal and what they say against ``voice``
    (``None``: the signal's own dominant voice): the similarity and other-voice spans of
    :func:`other_voice_spans`, and the partials. Times are ``offset_s`` plus the signal's; ``threshold``
    overrides :func:`other_voice_threshold`; ``here`` and ``here_threshold`` as in
    :func:`other_voice_spans`, and ``is_degraded``.

    Against a given voice the signal is first screened with partials every :data:`SCREEN_STEP_S`: when none
    comes within :data:`SCREEN_MARGIN` of the threshold (the usual window of one speaker) that is the
    answer, at about half the cost; else it is heard again every :data:`SPAN_STEP_S` for the spans.
    """
    if audio16k.size < 0.5 * ANALYSIS_RATE:
        return None, [], join_partials([])
    if voice is not None:
        coarse = partial_embeddings(audio16k, step_s=SCREEN_STEP_S)
        coarse = Partials(
            coarse.starts_s + offset_s, coarse.ends_s + offset_s, coarse.vectors, coarse.heard_s
        )
        limit = other_voice_threshold(voice) if threshold is None else threshold
        # The grid's last partial may stop up to a step before the end: one more over the last 1.8 s, so
        # a turn cut by the window's end is screened as the fine listen would hear it.
        tail_start = max(0, audio16k.size - round(SCREEN_TAIL_S * ANALYSIS_RATE))
        tail = partial_embeddings(audio16k[tail_start:], step_s=PARTIAL_S)
        screened = [coarse] + ([tail] if tail.heard_s >= MIN_HEARD_S else [])
        quiet = all(
            not _low(p, voice, limit, here, here_threshold, margin=SCREEN_MARGIN).any() for p in screened
        )
        if coarse.heard_s >= MIN_HEARD_S and quiet:
            similarity, spans = other_voice_spans(
                coarse,
                voice,
                threshold=limit,
                here=here,
                here_threshold=here_threshold,
                is_degraded=is_degraded,
            )
            return similarity, spans, coarse
    found = partial_embeddings(audio16k, step_s=SPAN_STEP_S)
    found = Partials(found.starts_s + offset_s, found.ends_s + offset_s, found.vectors, found.heard_s)
    if voice is None:
        voice = dominant_voice(found.vectors, source="recording") if found.heard_s >= MIN_HEARD_S else None
    if voice is None:
        return None, [], found
    similarity, spans = other_voice_spans(
        found, voice, threshold=threshold, here=here, here_threshold=here_threshold, is_degraded=is_degraded
    )
    return similarity, spans, found


# ------------------------------------------------------------------------------------------ the folder

SAME_COSINE = 0.60
"""A recording whose voice scores at least this against the speaker's is never a mismatch (CAM++: every
pair of different speakers' files measured scored at most 0.54; GE2E needed 0.80)."""
CLEAN_FLOOR = 0.50
"""A clean recording (:func:`degraded` is false) below this cosine to the speaker's voice is someone else
(CAM++: own files 0.68 or more against their speaker, other speakers' at most 0.54, most near 0.1; GE2E
needed 0.75)."""
DEGRADED_FLOOR = 0.30
"""A noisy, reverberant, clipped or band-limited recording only below this (CAM++ in the mixed folders of
``voices_bench.py``: a floor of 0.25 alone excludes 95.8 % of wrong files and no own file; GE2E 0.55)."""
FOLDER_MARGIN = 0.23
"""With three or more recordings, the limit is also kept this far under the median of the others: a
folder whose files all score low (all on one poor line) is judged against its own spread (CAM++: median -
c > 0.23 excludes every wrong file of the mixed folders with <= 2 % of own files; GE2E 0.15)."""


def speech_budget(files: int) -> float:
    """Seconds of speech to embed of each of a speaker's ``files`` recordings: :data:`SPEAKER_SPEECH_S`
    shared, at least :data:`FILE_MIN_SPEECH_S` and at most :data:`SAMPLE_SPEECH_S` each."""
    return float(np.clip(SPEAKER_SPEECH_S / max(files, 1), FILE_MIN_SPEECH_S, SAMPLE_SPEECH_S))


def degraded(metrics: dict[str, Any] | None) -> bool:
    """True when a recording's conditions lower its speaker similarity: SNR under 25 dB (or unknown),
    reverberant (``reverb_score`` 0.25 or more, or unknown), clipped (0.5 % of samples or more) or
    band-limited (under 6 kHz)."""
    m = metrics or {}
    snr, reverb = m.get("snr_db"), m.get("reverb_score")
    clipped, bandwidth = m.get("clipped_ratio") or 0.0, m.get("bandwidth_hz")
    return (
        snr is None
        or snr < 25.0
        or reverb is None
        or reverb >= 0.25
        or clipped >= 0.005
        or (bandwidth is not None and bandwidth < 6000.0)
    )


def degraded_stretch(snr_db: float | None, reverb_score: float | None) -> bool:
    """True when a stretch (a candidate window) was measured noisy (SNR under 20 dB) or reverberant
    (``reverb_score`` 0.25 or more); unknown values do not count (a window without pauses has no SNR)."""
    return (snr_db is not None and snr_db < 20.0) or (reverb_score is not None and reverb_score >= 0.25)


def mismatch_limit(similarity_of_others: list[float], *, is_degraded: bool) -> float:
    """The cosine to the speaker's voice under which a recording is someone else (module constants):
    :data:`CLEAN_FLOOR` or :data:`DEGRADED_FLOOR`, lowered to the median of the other recordings minus
    :data:`FOLDER_MARGIN` when there are at least two others, never above :data:`SAME_COSINE`."""
    limit = DEGRADED_FLOOR if is_degraded else CLEAN_FLOOR
    if len(similarity_of_others) >= 2:
        limit = min(limit, float(np.median(similarity_of_others)) - FOLDER_MARGIN)
    return min(limit, SAME_COSINE)


def mismatched(
    similarity: dict[str, float | None], conditions: dict[str, bool], *, reference: bool = False
) -> dict[str, float]:
    """The recordings (by path) that are someone else, each with the limit it fell under.

    ``similarity`` is each recording's own dominant voice against the speaker's (``None``: too little
    speech to tell, never a mismatch); ``conditions`` says which are :func:`degraded`. A speaker with one
    recording never mismatches; with two, each is judged against the fixed floors only (the voice is
    then that of the recording with more speech; ``--reference`` says otherwise). With ``reference`` (the
    voice was named, not learnt from these recordings) a single recording is judged too.
    """
    known = {p: s for p, s in similarity.items() if s is not None}
    if len(similarity) < 2 and not reference:
        return {}
    out: dict[str, float] = {}
    for path, value in known.items():
        others = [s for p, s in known.items() if p != path]
        limit = mismatch_limit(others, is_degraded=conditions.get(path, True))
        if value < limit:
            out[path] = round(limit, 4)
    return out
