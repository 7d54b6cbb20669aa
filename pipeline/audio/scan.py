"""Find the input files of a run: files and folders, recursively, in a stable order.

Symbolic links are followed, but a link that leads back into a folder being walked is reported once as
``symlink_loop`` instead of being walked forever. Entries that cannot be used (missing, unreadable) become
items with a ``problem`` reason code so that the runner can record them; scanning never raises for them.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.audio.arguments import as_path

__all__ = ["AUDIO_EXTENSIONS", "InputFile", "scan"]

AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {
        # PCM and lossless containers
        "wav", "wave", "bwf", "rf64", "w64", "aif", "aiff", "aifc", "caf", "au", "snd", "flac", "alac",
        "wv", "ape", "tta",
        # lossy audio
        "mp3", "mp2", "ogg", "oga", "opus", "spx", "m4a", "m4b", "aac", "adts", "wma", "amr", "awb",
        "ac3", "eac3", "mka", "weba",
        # video containers whose audio track we can use
        "mp4", "m4v", "mov", "qt", "3gp", "3g2", "mkv", "webm", "avi", "wmv", "asf", "flv", "ts", "mts",
        "mpg", "mpeg", "vob",
    }
)  # fmt: skip
"""Lower-case file suffixes (without the dot) of the files :func:`scan` keeps inside folders."""


@dataclass(frozen=True)
class InputFile:
    """One input file: found by :func:`scan`, given its speaker by the runner.

    ``source`` is where to read it (as found; the runner resolves it); ``path`` is the posix path relative
    to the input it was found under (a file given directly: its name), what manifests show; ``problem`` is
    a reason code (``not_found``, ``unreadable``, ``symlink_loop``) when the entry cannot be used;
    ``sha256`` is the hash of its bytes once the runner has read them.
    """

    source: str
    path: str
    speaker: str = ""
    problem: str | None = None
    sha256: str | None = None


def _is_audio_name(name: str) -> bool:
    _, dot, suffix = name.rpartition(".")
    return bool(dot) and suffix.lower() in AUDIO_EXTENSIONS


def _stat(path: Path) -> tuple[os.stat_result | None, str | None]:
    """``os.stat`` following links, or the reason code why it failed."""
    try:
        return os.stat(path), None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None, "symlink_loop"
        if isinstance(exc, FileNotFoundError | NotADirectoryError):
            return None, "not_found"
        return None, "unreadable"


def _file_item(path: Path, relpath: str) -> InputFile:
    problem = None if os.access(path, os.R_OK) else "unreadable"
    return InputFile(source=str(path), path=relpath, problem=problem)


def _walk(
    folder: Path,
    relparts: tuple[str, ...],
    ancestors: set[tuple[int, int]],
    visited: set[tuple[int, int]],
    skipped: list[str] | None = None,
) -> Iterator[InputFile]:
    try:
        with os.scandir(folder) as it:
            names = sorted(entry.name for entry in it)
    except OSError as exc:
        problem = "not_found" if isinstance(exc, FileNotFoundError) else "unreadable"
        yield InputFile(source=str(folder), path="/".join(relparts) or ".", problem=problem)
        return
    for name in names:
        if name.startswith("."):
            continue
        path = folder / name
        relpath = "/".join((*relparts, name))
        info, problem = _stat(path)
        if info is None:
            if problem == "symlink_loop" or _is_audio_name(name):
                yield InputFile(source=str(path), path=relpath, problem=problem)
            continue
        if stat.S_ISDIR(info.st_mode):
            key = (info.st_dev, info.st_ino)
            if key in ancestors:
                yield InputFile(source=str(path), path=relpath, problem="symlink_loop")
                continue
            if key in visited:
                continue  # the same folder reached again through another link: its files are already listed
            visited.add(key)
            ancestors.add(key)
            try:
                yield from _walk(path, (*relparts, name), ancestors, visited, skipped)
            finally:
                ancestors.discard(key)
        elif stat.S_ISREG(info.st_mode) and _is_audio_name(name):
            yield _file_item(path, relpath)
        elif stat.S_ISREG(info.st_mode) and skipped is not None:
            skipped.append(str(path))


def scan(
    inputs: Iterable[str | os.PathLike[str]], *, skipped: list[str] | None = None
) -> Iterator[InputFile]:
    """Yield the files found under ``inputs`` (files or folders), recursively and in a stable order.

    Inputs are handled in the given order; inside a folder, entries are sorted by name and walked depth
    first. Hidden entries (names starting with ``.``) are skipped and so are special files (pipes,
    devices). Inside folders only names whose suffix is in :data:`AUDIO_EXTENSIONS` are kept; a file named
    explicitly is always yielded. Links are followed; a folder reached twice
    is listed once. A single ``str`` or path is accepted as one input.

    ``skipped``, when given, receives (as the walk reaches them) the paths of the regular files left out
    inside folders because their names are not audio (``notes.txt``), so a caller can say so.
    """
    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    return _scan([as_path("inputs", item) for item in inputs], skipped)


def _scan(inputs: list[Path], skipped: list[str] | None = None) -> Iterator[InputFile]:
    visited: set[tuple[int, int]] = set()
    for path in inputs:
        info, problem = _stat(path)
        if info is None:
            yield InputFile(source=str(path), path=path.name, problem=problem)
        elif stat.S_ISDIR(info.st_mode):
            key = (info.st_dev, info.st_ino)
            if key in visited:
                continue
            visited.add(key)
            yield from _walk(path, (), {key}, visited, skipped)
        elif stat.S_ISREG(info.st_mode):
            yield _file_item(path, path.name)
        else:
            yield InputFile(source=str(path), path=path.name, problem="unreadable")
