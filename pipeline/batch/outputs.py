"""What a run may touch in its output folder: one writer at a time, and only files it can prove it wrote.

**The lock.** ``OUT/.voiceprep.lock`` holds the pid and host of the run writing ``OUT`` (JSON). It is
created atomically (written under a temporary name, then hard-linked into place, which fails when the
name exists); a second run finds it and stops with :class:`OutputBusy` naming the holder. A lock whose
holder is a process of this host that no longer exists (a run killed with SIGKILL) is stale and taken
over; a lock of another host is never taken over (voiceprep cannot see that host's processes).

**The record of outputs.** ``OUT/.voiceprep-outputs.jsonl`` lists every clip file voiceprep wrote under
``clips/`` and ``rejected/``: ``{"path", "sha256", "bytes"}`` once written, ``{"path", "intent": true}``
just before it is written (so a file left by a run killed mid-render is still known). A file is *ours*
when the record names it and, if the record has its hash, the bytes on disk still have that hash. Only
such files are ever deleted or overwritten; a user's own file in these folders (or one that was
edited since) is left alone. An output folder made before the record existed is seeded from its
``clips.jsonl`` (a clip listed there with its hash).

**Temporary files.** Outputs are written as ``.<name>.<pid>-<hex>.tmp`` and renamed
(:func:`pipeline.audio.io.atomic_write_bytes`); the start-up sweep removes only those whose process is
gone (and the older ``.<name>.<hex>.tmp`` form inside the folders only a run writes), and so does a stale
lock that a run killed while taking it over left under its aside name (``.voiceprep.lock.<pid>-<hex>.stale``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.audio.io import atomic_write_bytes, sha256_file
from pipeline.batch.manifest import append_row
from pipeline.errors import VoiceprepError

LOCK_NAME = ".voiceprep.lock"
RECORD_NAME = ".voiceprep-outputs.jsonl"
RUN_FOLDERS = (".cache", "clips", "rejected")
"""The folders of OUT that only ``run`` writes (under the lock)."""
CLIP_FOLDERS = ("clips", "rejected")
"""The folders of OUT whose files the record describes: nothing elsewhere is ever deleted by it."""

_TEMP = re.compile(r"^\..+\.(?:(?P<pid>\d+)-)?[0-9a-zA-Z]{6,32}\.tmp$")
_WRITE_TEST = re.compile(r"^\.write-test-(?P<pid>\d+)$")
_LOCK_ASIDE = re.compile(rf"^{re.escape(LOCK_NAME)}\.(?P<pid>\d+)-[0-9a-f]{{12}}\.stale$")
"""A stale lock taken aside by the run recovering it (:func:`output_lock`), left when that run is killed."""
_UNREADABLE_LOCK_STALE_S = 60.0
"""A lock file that holds no readable holder (its writer died between create and write) is stale after this."""


_HELD: dict[str, int] = {}
"""The locks this process holds: the lock file's real path -> the thread holding it."""


class OutputBusy(VoiceprepError):
    """Another voiceprep run holds the output folder's lock (exit code 4 on the command line)."""


# --------------------------------------------------------------------------------------------- processes


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists on this host (one we may not signal counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError among them: the process exists
        return True
    return True


# --------------------------------------------------------------------------------------------- the lock


def _holder_text() -> str:
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started})


def _create_exclusive(path: Path, text: str) -> bool:
    """Create ``path`` holding ``text``, atomically; False when it already exists."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp")
    tmp.write_text(text)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError as exc:  # a file system without hard links: exclusive create, then write
        if exc.errno not in {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV}:
            raise
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; ``None`` when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _is_stale(path: Path, holder: dict[str, Any] | None) -> bool:
    if holder is None:
        try:
            age = time.time() - path.stat().st_mtime
        except OSError:
            return True  # gone meanwhile: try again
        return age > _UNREADABLE_LOCK_STALE_S
    pid = holder.get("pid")
    same_host = holder.get("host") == socket.gethostname()
    return same_host and isinstance(pid, int) and pid != os.getpid() and not pid_alive(pid)


def _describe(holder: dict[str, Any] | None) -> str:
    if holder is None:
        return "a run that is starting"
    return f"pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('started')}"


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold ``OUT/.voiceprep.lock`` for the block: raise :class:`OutputBusy` when another run holds it.

    A stale lock (its process, on this host, is gone) is replaced. The lock is removed at the end when it
    is still ours. Re-entrant within one thread (the command holds it over the run, the report and the
    submit; the run takes it again); another thread of this process is refused like another process.
    """
    path = Path(out) / LOCK_NAME
    key = os.path.realpath(path)
    if _HELD.get(key) == threading.get_ident():
        yield
        return
    mine = _holder_text()
    for _ in range(5):
        if _create_exclusive(path, mine):
            break
        holder = read_json_object(path)
        if not _is_stale(path, holder):
            raise OutputBusy(
                f"{out} is being written by another voiceprep run ({_describe(holder)}); wait for it "
                f"to finish, or delete {path} if no run is active"
            )
        # Take the stale lock away under a name of our own, so two runs recovering it at once cannot
        # both remove the one a third run just created.
        aside = path.with_name(f"{LOCK_NAME}.{os.getpid()}-{secrets.token_hex(6)}.stale")
        with contextlib.suppress(FileNotFoundError):
            os.rename(path, aside)
            if read_json_object(aside) != holder:  # it was replaced meanwhile: put the new one back
                with contextlib.suppress(OSError):
                    os.link(aside, path)
            aside.unlink(missing_ok=True)
    else:
        raise OutputBusy(f"{out}: could not take the lock {path}")
    _HELD[key] = threading.get_ident()
    try:
        yield
    finally:
        del _HELD[key]
        with contextlib.suppress(OSError):
            if path.read_text() == mine:
                path.unlink()


# --------------------------------------------------------------------------------------------- temp files


def remove_temp_files(out: Path) -> list[Path]:
    """Delete the temporary files of voiceprep processes that are gone; return what was deleted.

    Call with the lock held. Only voiceprep's own names are considered (``.<name>.<pid>-<hex>.tmp``,
    ``.write-test-<pid>``, ``.voiceprep.lock.<pid>-<hex>.stale``): at the top of OUT (which ``report`` and
    ``submit`` also write) only those whose process is gone; in the folders only ``run`` writes, also the
    names of older versions.
    """
    removed = _sweep(Path(out).glob(".*"), run_only=False)
    for folder in RUN_FOLDERS:
        base = Path(out) / folder
        if base.is_dir() and not base.is_symlink():
            removed += _sweep(_files_below(base), run_only=True)
    return removed


def remove_dead_temp_files(folder: Path) -> list[Path]:
    """Delete the temporary files (voiceprep's names, see :func:`remove_temp_files`) directly in ``folder``
    whose process is gone: what a writer of that folder killed mid-write left. Return what was deleted."""
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return []
    return _sweep(folder.glob(".*"), run_only=False)


def _sweep(paths: Iterable[Path], *, run_only: bool) -> list[Path]:
    """Delete those of ``paths`` that are temporary files of voiceprep processes that are gone (with
    ``run_only``, also the pid-less names of older versions); return what was deleted."""
    removed: list[Path] = []
    for path in paths:
        match = _TEMP.match(path.name) or _WRITE_TEST.match(path.name) or _LOCK_ASIDE.match(path.name)
        if match is None or path.is_symlink() or not path.is_file():
            continue
        pid = match.group("pid")
        if pid is None and not run_only:
            continue
        if pid is not None and int(pid) != os.getpid() and pid_alive(int(pid)):
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def _files_below(base: Path) -> Iterator[Path]:
    """Hidden files under ``base``, not following links to folders (a link may lead out of OUT)."""
    for root, _dirs, files in os.walk(base, followlinks=False):
        for name in files:
            if name.startswith("."):
                yield Path(root) / name


# --------------------------------------------------------------------------------------------- the record


def load_record(out: Path) -> dict[str, dict[str, Any]]:
    """The record of outputs: path (relative to OUT, posix) -> its last entry.

    Without a record, the clips a previous run listed in ``clips.jsonl`` with their hash.
    """
    path = Path(out) / RECORD_NAME
    entries: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a torn last line
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                if entry.get("intent") and entries.get(entry["path"], {}).get("sha256"):
                    entry = {**entries[entry["path"]], "intent": True}  # either bytes may be there now
                entries[entry["path"]] = entry
        return entries
    manifest = Path(out) / "clips.jsonl"
    with contextlib.suppress(OSError):
        for line in manifest.read_text(encoding="utf-8", errors="replace").splitlines():
            with contextlib.suppress(ValueError, AttributeError):
                row = json.loads(line)
                clip, sha = row.get("clip"), row.get("clip_sha256") or row.get("sha256")
                if isinstance(clip, str) and isinstance(sha, str):
                    entries[clip] = {"path": clip, "sha256": sha}
    return entries


def keep_record(out: Path) -> None:
    """Write the record now if there is none (an output folder of a version before the record): the
    clips its ``clips.jsonl`` lists with their hash, before the run rewrites that manifest."""
    path = Path(out) / RECORD_NAME
    if path.exists():
        return
    lines = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in load_record(out).values())
    atomic_write_bytes(path, lambda fh: fh.write(lines.encode("utf-8")))


def _in_clip_folders(out: Path, rel: str) -> bool:
    """True when ``rel`` names a file under ``OUT/clips`` or ``OUT/rejected`` and stays there once links
    are followed: a record or manifest that was tampered with cannot point anywhere else."""
    parts = PurePosixPath(rel).parts
    if not parts or parts[0] not in CLIP_FOLDERS or ".." in parts or PurePosixPath(rel).is_absolute():
        return False
    base = os.path.realpath(Path(out) / parts[0])
    return os.path.realpath(Path(out) / rel).startswith(base + os.sep)


def is_ours(out: Path, rel: str, record: dict[str, dict[str, Any]]) -> bool:
    """True when the file ``OUT/rel`` is one voiceprep wrote and nobody changed since (see the module doc).

    A path that does not exist is not ours (nothing to delete); a link is never ours, nor is anything
    outside ``OUT/clips`` and ``OUT/rejected``.
    """
    entry = record.get(rel)
    path = Path(out) / rel
    if entry is None or not _in_clip_folders(out, rel) or path.is_symlink() or not path.is_file():
        return False
    if entry.get("intent"):
        return True  # written (or being written) by a run that may have been killed before recording it
    size = entry.get("bytes")
    if isinstance(size, int) and path.stat().st_size != size:
        return False
    return sha256_file(path) == entry.get("sha256")


def may_write(out: Path, target: Path) -> bool:
    """True when a clip may be written at ``target``: its folder is inside OUT (not a link leading out),
    and nothing is there or what is there is ours."""
    if not Path(target).parent.resolve().is_relative_to(Path(out).resolve()):
        return False
    rel = Path(target).relative_to(out).as_posix()
    return not os.path.lexists(target) or is_ours(out, rel, load_record(out))


def note_intent(out: Path, target: Path) -> None:
    """Record that ``target`` is about to be written (called by the task that writes it)."""
    rel = Path(target).relative_to(out).as_posix()
    append_row(Path(out) / RECORD_NAME, {"path": rel, "intent": True})


def remove_unlisted(out: Path, keep: dict[str, str | None]) -> list[str]:
    """Delete the files voiceprep wrote that ``keep`` (path -> sha256 of the bytes a row describes) no
    longer lists; rewrite the record to ``keep``.

    A recorded file that was changed since (its hash differs) or replaced by a link is left where it is
    and forgotten. Returns the paths deleted (relative to OUT).
    """
    out = Path(out)
    record = load_record(out)
    removed = []
    for rel in sorted(set(record) - set(keep)):
        if is_ours(out, rel, record):
            (out / rel).unlink()
            removed.append(rel)
    lines = []
    for rel, sha in sorted(keep.items()):
        path = out / rel
        if path.is_file() and not path.is_symlink():
            entry = {"path": rel, "sha256": sha or sha256_file(path), "bytes": path.stat().st_size}
            lines.append(json.dumps(entry, ensure_ascii=False))
    text = "".join(line + "\n" for line in lines)
    atomic_write_bytes(out / RECORD_NAME, lambda fh: fh.write(text.encode("utf-8")))
    return removed
