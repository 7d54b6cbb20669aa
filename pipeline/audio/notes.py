"""Decoder notes: what libsndfile's mpg123 and FFmpeg say while decoding, captured instead of printed.

mpg123 (inside libsndfile) writes lines such as ``Note: Illegal Audio-MPEG-Header 0x00000000 at offset
39996.`` straight to the process's file descriptor 2, below Python, and FFmpeg does the same when its
default log callback is in place; PyAV, when its logging is switched on, sends FFmpeg's lines to Python
logging instead. :func:`captured` and :func:`captured_steps` wrap the decode calls of :mod:`pipeline.audio.io`
so that both kinds end up in a :class:`DecodeNotes` (a short, bounded list of distinct messages with a
count each) rather than on the terminal.

**Which notes go where.** :func:`collect` opens a collector for the code inside it (and for threads
started with a copy of its context, as :func:`pipeline.audio.prefetch.prefetch` does); decoder lines
captured there are added to it (a nested collector hands its notes on to the outer one when it closes).
Outside every collector the notes go to the ``pipeline.audio.notes`` logger at DEBUG level: never raw.

**How file descriptor 2 is captured, and why this way.** While a decode call runs, fd 2 is pointed
(``dup2``) at a temporary file of the process, then restored; the file is read, emptied and its lines
sorted. fd 2 belongs to the whole process, so two threads swapping it at once would restore each other's
descriptor and mix their messages up: a process-wide lock serialises the captured calls. A call is one
decode *step* (a probe, or one block of ``AudioReader.blocks()``), never held across a ``yield`` to the
consumer, so the lock only serialises the decoding itself, in threads of one process (worker processes
each have their own fd 2 and lock), and cannot deadlock with the prefetch thread. A temporary file rather
than a pipe: a pipe needs a reader thread, or a decoder that prints more than the pipe holds blocks
forever; a file needs neither. Anything written to fd 2 during a step that is not a decoder line (a
Python traceback or a progress bar from another thread) is written on to the real fd 2 as it was, when the
step ends; if the interpreter exits while a step is still running in a daemon thread, an ``atexit`` hook
restores fd 2 and passes that text on. fd 2 is restored on every exit from a step, exceptions and
``KeyboardInterrupt`` included, so a real error's traceback is printed by Python after the restore.
Limits: a step that crashes the process (a segfault in a decoder) takes what it had captured with it;
at most 4 MiB written during one step is read (the rest is dropped). The cost and the measured slowdown
are in ``docs/audio-io.md``.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Generator, Iterator
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

__all__ = [
    "MAX_KINDS",
    "MAX_MESSAGE_CHARS",
    "OTHER",
    "DecodeNotes",
    "captured",
    "captured_steps",
    "collect",
    "describe",
]

MAX_KINDS = 5
"""Distinct messages given per collection (the most frequent); the others are counted under :data:`OTHER`."""
MAX_MESSAGE_CHARS = 160
"""A message is cut to this many characters."""
OTHER = "(other decoder messages)"
"""The message of the entry that counts the messages not given on their own."""

_TRACKED_KINDS = 32  # distinct messages counted on their own; later new ones go straight to OTHER
_MAX_CAPTURE_BYTES = 4 << 20  # read at most this much of one step's capture
_LOG = logging.getLogger(__name__)

# One decoder line: mpg123's source location ("[src/libmpg123/parse.c:wetwork():1349] error: ..."),
# FFmpeg's context ("[mp3float @ 0x55d0c2a1b2c0] Header missing") or mpg123's "Note:"/"Warning:"/"Error:".
# Matched anywhere (another thread's text may precede it on the line), up to the end of its line; not after a
# letter or a dot, so Python's "UserWarning: ..." or "binascii.Error: ..." is passed on, not taken.
_DECODER_LINE = re.compile(
    r"(?:\[[^\]\n]*\.c:[^\]\n]*\] ?|\[[\w.:-]+ @ (?:0x)?[0-9a-fA-F]+\] ?|(?<![A-Za-z_.])(?:Note|Warning|Error): )"
    r"[^\n]*\n?"
)
_LOCATION = re.compile(r"^\[[^\]]*\.c:[^\]]*\] ?")
_CONTEXT = re.compile(r"^\[([\w.:-]+) @ (?:0x)?[0-9a-fA-F]+\] ?")
_NUMBERS = re.compile(r"0x[0-9a-fA-F]+|\d+")


def _clean(message: str) -> str:
    """A decoder line as a note: mpg123's source location dropped, FFmpeg's ``[name @ 0x..]`` as ``name:``."""
    message = _CONTEXT.sub(r"\1: ", _LOCATION.sub("", message.strip()))
    message = " ".join(message.split())
    return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 3] + "..."


class DecodeNotes:
    """Distinct decoder messages with a count each, bounded in size.

    Messages that differ only in their numbers (offsets, byte counts, addresses) are one kind, shown as
    the first one seen. :meth:`entries` gives the :data:`MAX_KINDS` most frequent kinds and one
    :data:`OTHER` entry counting the rest. Safe to add to from several threads.
    """

    def __init__(self) -> None:
        """An empty collection."""
        self._kinds: dict[str, list[Any]] = {}  # kind -> [first message, count], in the order first seen
        self._other = 0
        self._lock = threading.RLock()

    def add(self, message: str, count: int = 1) -> None:
        """Count ``count`` more occurrences of ``message`` (cleaned and cut to :data:`MAX_MESSAGE_CHARS`)."""
        text = _clean(message)
        if not text:
            return
        kind = _NUMBERS.sub("#", text)
        with self._lock:
            if kind in self._kinds:
                self._kinds[kind][1] += count
            elif len(self._kinds) < _TRACKED_KINDS and text != OTHER:
                self._kinds[kind] = [text, count]
            else:
                self._other += count

    def merge(self, entries: list[dict[str, Any]]) -> None:
        """Add the entries of another collection (as :meth:`entries` gives them)."""
        for entry in entries:
            self.add(str(entry["message"]), int(entry["count"]))

    def entries(self) -> list[dict[str, Any]]:
        """``[{"message": str, "count": int}, ...]``: most frequent first (ties: first seen), at most
        :data:`MAX_KINDS`, then an :data:`OTHER` entry when anything else was counted."""
        with self._lock:
            ranked = sorted(self._kinds.values(), key=lambda kind: -kind[1])  # stable: ties stay in order
            other = self._other + sum(count for _, count in ranked[MAX_KINDS:])
        kept = [{"message": text, "count": count} for text, count in ranked[:MAX_KINDS]]
        return kept + ([{"message": OTHER, "count": other}] if other else [])

    def __bool__(self) -> bool:
        """True once anything was added."""
        return bool(self._kinds) or self._other > 0


def describe(entries: list[dict[str, Any]], *, limit: int = 2) -> str:
    """One line for a terminal: the first ``limit`` messages with their counts, and how many more kinds.

    E.g. ``Illegal Audio-MPEG-Header 0x00000000 at offset 39996 (x2); Trying to resync... (x2); 1 more``
    (mpg123's ``Note:`` and a closing full stop left out); empty for no entries.
    """
    shown = []
    for entry in entries[:limit]:
        text = str(entry["message"]).removeprefix("Note: ")
        text = text[:-1] if text.endswith(".") and not text.endswith("..") else text
        shown.append(f"{text} (x{entry['count']})" if entry["count"] > 1 else text)
    more = len(entries) - limit
    return "; ".join(shown) + (f"; {more} more" if more > 0 else "")


# ------------------------------------------------------------------------------------------ collectors

_COLLECTOR: ContextVar[DecodeNotes | None] = ContextVar("voiceprep_decode_notes", default=None)


@contextlib.contextmanager
def collect() -> Iterator[DecodeNotes]:
    """Collect the decoder notes of the decodes run inside this block (and in threads that copy its
    context); on leaving, they are also handed to the enclosing collector, if any."""
    notes = DecodeNotes()
    token = _COLLECTOR.set(notes)
    try:
        yield notes
    finally:
        _COLLECTOR.reset(token)
        outer = _COLLECTOR.get()
        if outer is not None and notes:
            outer.merge(notes.entries())


P = ParamSpec("P")
R = TypeVar("R")


def _deliver(messages: list[str]) -> None:
    notes = _COLLECTOR.get()
    for message in messages:
        if notes is not None:
            notes.add(message)
        else:
            _LOG.debug("decoder: %s", message.strip())


# ------------------------------------------------------------------------------------- fd 2 capture

_LOCK = threading.Lock()
_LOCAL = threading.local()  # .busy: this thread is inside a captured step (nested steps pass through)
_SINK: dict[str, int] = {}  # "pid", "fd": this process's capture file
_ACTIVE: tuple[int, int] | None = None  # (saved fd 2, capture file) while a step runs


def _sink() -> int | None:
    """This process's capture file (created once, already unlinked); ``None`` when none can be made."""
    if _SINK.get("pid") != os.getpid():  # a forked child must not share its parent's file offset
        try:
            fd, name = tempfile.mkstemp(prefix="voiceprep-stderr-")
        except OSError:
            return None
        os.unlink(name)
        _SINK.update(pid=os.getpid(), fd=fd)
    return _SINK["fd"]


def _drain(sink: int) -> bytes:
    """What the capture file holds, and empty it."""
    size = os.fstat(sink).st_size
    if not size:
        return b""
    os.lseek(sink, 0, os.SEEK_SET)
    data = os.read(sink, min(size, _MAX_CAPTURE_BYTES))
    os.ftruncate(sink, 0)
    os.lseek(sink, 0, os.SEEK_SET)
    return data


def _sort(data: bytes) -> tuple[list[str], bytes]:
    """Split captured bytes into decoder lines and everything else (kept byte for byte)."""
    text = data.decode("latin-1")  # one character per byte: the rest is passed on unchanged
    messages, rest, position = [], [], 0
    for match in _DECODER_LINE.finditer(text):
        rest.append(text[position : match.start()])
        messages.append(match.group().encode("latin-1").decode("utf-8", "replace"))
        position = match.end()
    rest.append(text[position:])
    return messages, "".join(rest).encode("latin-1")


def _pass_on(data: bytes) -> None:
    """Write what was not a decoder line to the (restored) fd 2."""
    with contextlib.suppress(OSError):
        while data:
            data = data[os.write(2, data) :]


def _call(fn: Callable[[], R]) -> R:
    """Run ``fn()`` with fd 2 and PyAV's log captured into the current collector (see the module text)."""
    if getattr(_LOCAL, "busy", False):  # a step inside a step (or a finaliser run by one): it captures
        return fn()
    _LOCAL.busy = True
    messages: list[str] = []
    logs: list[tuple[int, str, str]] = []
    try:
        with _LOCK, _pyav_capture() as logs:
            return _swapped(fn, messages)
    finally:  # notes are delivered after the lock is released
        _LOCAL.busy = False
        _deliver(messages + _av_messages(logs))


def _saved_stderr() -> int:
    """A copy of fd 2 to restore it from, or -1 (fd 2 closed, no descriptors left: run uncaptured)."""
    with contextlib.suppress(AttributeError, OSError, ValueError):
        sys.stderr.flush()  # Python's own pending text belongs before the swap
    try:
        return os.dup(2)
    except OSError:
        return -1


def _swapped(fn: Callable[[], R], messages: list[str]) -> R:
    """``fn()`` with fd 2 pointed at the capture file (under ``_LOCK``); decoder lines go to ``messages``."""
    global _ACTIVE
    sink = _sink()
    saved = -1 if sink is None else _saved_stderr()
    if sink is None or saved < 0:
        return fn()
    try:
        _ACTIVE = (saved, sink)
        os.dup2(sink, 2)
        return fn()
    finally:
        os.dup2(saved, 2)
        _ACTIVE = None
        os.close(saved)
        with contextlib.suppress(OSError):
            found, rest = _sort(_drain(sink))
            messages.extend(found)
            _pass_on(rest)


def _pyav_capture() -> contextlib.AbstractContextManager[list[tuple[int, str, str]]]:
    """PyAV's log capture, when PyAV is loaded (:mod:`pipeline.audio.io` imports it only for FFmpeg's
    formats); before that nothing can have turned its logging on, and FFmpeg writes to fd 2, captured."""
    pyav_logging = sys.modules.get("av.logging")
    if pyav_logging is None:
        return contextlib.nullcontext([])
    return pyav_logging.Capture()


def _av_messages(logs: list[tuple[int, str, str]]) -> list[str]:
    """PyAV's captured FFmpeg lines (only there when PyAV logging is on): warnings and errors become notes,
    the rest goes back to the ``libav`` loggers as PyAV would have sent it."""
    notes: list[str] = []
    if not logs:
        return notes
    import av.logging

    for level, name, message in logs:
        if level <= av.logging.WARNING:
            notes.append(f"{name}: {message}" if name else message)
        else:
            logging.getLogger(f"libav.{name or 'generic'}").log(
                av.logging.adapt_level(level), message.strip()
            )
    return notes


@atexit.register
def _restore_at_exit() -> None:
    """The interpreter is exiting while a daemon thread is inside a step: give fd 2 back and pass on what
    was written to it meanwhile (a traceback printed at exit, for one)."""
    active = _ACTIVE
    if active is None:
        return
    with contextlib.suppress(OSError):
        os.dup2(active[0], 2)
        _pass_on(_sort(_drain(active[1]))[1])


def _after_fork() -> None:
    global _LOCK, _ACTIVE
    _LOCK, _ACTIVE = threading.Lock(), None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def captured(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator for a decode function: its decoder messages become notes instead of terminal output."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return _call(lambda: fn(*args, **kwargs))

    return wrapper


_END = object()

T = TypeVar("T")


def captured_steps(steps: Generator[T, None, None]) -> Generator[T, None, None]:
    """``steps`` with each step (the work up to its next item) captured; the capture is not held while
    the consumer has the item. Closing this generator closes ``steps`` (captured too)."""
    try:
        while True:
            item = _call(lambda: next(steps, _END))
            if item is _END:
                return
            yield item  # type: ignore[misc]
    finally:
        _call(steps.close)
