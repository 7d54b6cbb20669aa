"""The abuse suite: odd input a careless or hostile user gives ``voiceprep run`` (issue 11).

Every kind of odd input must end as a row with a status and a reason code (or be skipped as the scan
documents), with 0 crashes and 0 files of the user deleted or changed. One run over a folder holding
every odd input (:data:`KINDS`) is shared by most assertions; the output folder holds the user's own
files before that run (:data:`USER_FILES_IN_OUT`). The rest are cheap runs of their own: lock and
concurrency, stale clips, output folders inside inputs and the reverse. All use one family, no slow
measures and a serial executor; inputs are 3.5 s readings (rejected as too short, no render) except one
speaker with a ready clip.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import stat
import struct
import subprocess
import sys
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _cli import jsonl, process_env, voiceprep
from _corpus import corpus_file
from _dnsmos import dnsmos_once
from _kill_zygote import Zygote
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.batch import outputs
from pipeline.batch.config import load_config
from pipeline.batch.runner import RunError, _crash, folder_key, run, safe_name
from pipeline.errors import all_codes

FAMILY = "qwen-tts"
UMASK = 0o002
"""The umask of the shared run: every file it writes must be 0664 (what the umask allows), none 0600."""
SHORT = ("speech", "pra_cmu_arctic_us_aew_a0003.wav")  # 3.5 s: rejected as too short, nothing rendered
LONG = ("speech", "resem_librispeech_150-126107-0000.flac")  # 12.3 s: a ready qwen-tts clip


def _short() -> bytes:
    return corpus_file(*SHORT).read_bytes()


def _wav_with(data_size: int | None = None, rate: int | None = None, cut_to: int | None = None) -> bytes:
    """The short reading with its header made to lie: another data size, another sample rate, or cut."""
    raw = bytearray(_short())
    fmt = raw.index(b"fmt ")
    data = raw.index(b"data")
    if rate is not None:
        struct.pack_into("<I", raw, fmt + 12, rate)
    if data_size is not None:
        struct.pack_into("<I", raw, data + 4, data_size)
        struct.pack_into("<I", raw, 4, min(data_size + data - 8 + 8, 0xFFFFFFFF))
    return bytes(raw[:cut_to] if cut_to else raw)


def _fmt_field(offset: int, code: str, value: int) -> Callable[[], bytes]:
    """The short reading with one field of its ``fmt`` chunk replaced (offset from the chunk's data)."""

    def make() -> bytes:
        raw = bytearray(_short())
        struct.pack_into(code, raw, raw.index(b"fmt ") + 8 + offset, value)
        return bytes(raw)

    return make


def _file(rel: str | bytes, content: Callable[[], bytes] = _short) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        path = Path(os.fsdecode(os.path.join(os.fsencode(root), os.fsencode(rel))))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content())

    return make


def _symlink(rel: str, target: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).symlink_to(target)

    return make


def _fifo(root: Path) -> None:
    (root / "pipes").mkdir()
    os.mkfifo(root / "pipes" / "live.wav")


def _folder_named_wav(root: Path) -> None:
    (root / "folders" / "not_a_file.wav").mkdir(parents=True)


def _hardlink(root: Path) -> None:
    (root / "links").mkdir(exist_ok=True)
    (root / "links" / "original.wav").write_bytes(_short())
    os.link(root / "links" / "original.wav", root / "links" / "hardlink.wav")


def _deep(root: Path) -> None:
    deep = root / "deep" / Path(*[f"level{i}" for i in range(25)])
    deep.mkdir(parents=True)
    (deep / "bottom.wav").write_bytes(_short())


def _outside_link(root: Path) -> None:
    elsewhere = root.parent / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    (elsewhere / "far.wav").write_bytes(_short())
    (root / "faraway").symlink_to(elsewhere, target_is_directory=True)


def _loop(root: Path) -> None:
    (root / "loop").mkdir()
    (root / "loop" / "again").symlink_to("..", target_is_directory=True)


def _unreadable(root: Path) -> None:
    (root / "locked").mkdir()
    path = root / "locked" / "no_access.wav"
    path.write_bytes(_short())
    path.chmod(0)


KINDS: dict[str, tuple[Callable[[Path], None], str]] = {
    # name -> (what to put in IN, the row's path; "!path": the scan skips it, as documented: no row)
    # --- names ---
    "not UTF-8": (_file(b"bytes/caf\xe9.wav"), "bytes/caf\\xe9.wav"),
    "not UTF-8 folder": (_file(b"\xff\xfe/take.wav"), "\\xff\\xfe/take.wav"),
    "rich markup": (_file("[bold]x[.wav"), "[bold]x[.wav"),
    "rich closing tag": (_file("d[/]x/take.wav"), "d[/]x/take.wav"),
    "ANSI escape": (_file("\x1b[31mred\x1b[0m.wav"), "\x1b[31mred\x1b[0m.wav"),
    "newline": (_file("two\nlines.wav"), "two\nlines.wav"),
    "tab and CR": (_file("tab\there\r.wav"), "tab\there\r.wav"),
    "leading dash": (_file("-rf.wav"), "-rf.wav"),
    "shell words": (_file("$(whoami);rm -rf `id`.wav"), "$(whoami);rm -rf `id`.wav"),
    "quotes": (_file('it\'s "quoted".wav'), 'it\'s "quoted".wav'),
    "URL characters": (_file("a#b?c%20d&e=f.wav"), "a#b?c%20d&e=f.wav"),
    "backslash": (_file("back\\slash.wav"), "back\\slash.wav"),
    "HTML": (_file("<script>alert(1)</script>.wav"), "<script>alert(1)</script>.wav"),
    "long name": (_file("n" * 240 + ".wav"), "n" * 240 + ".wav"),
    "Chinese speaker 1": (_file("张伟/录音.wav"), "张伟/录音.wav"),
    "Chinese speaker 2": (_file("李娜/录音.wav"), "李娜/录音.wav"),
    "emoji": (_file("🎤 take.wav"), "🎤 take.wav"),
    "right-to-left override": (_file("evil\u202evaw.exe.wav"), "evil\u202evaw.exe.wav"),
    "zero-width": (_file("zero\u200bwidth.wav"), "zero\u200bwidth.wav"),
    "Windows device name": (_file("CON.wav"), "CON.wav"),
    "dots only": (_file("dots/...wav"), "!dots/...wav"),
    "upper-case extension": (_file("LOUD.WAV"), "LOUD.WAV"),
    "double extension": (_file("twice.wav.mp3"), "twice.wav.mp3"),
    "hidden file": (_file("bob/.hidden.wav"), "!bob/.hidden.wav"),
    "not audio by name": (_file("bob/notes.txt", lambda: b"hello"), "!bob/notes.txt"),
    # --- content ---
    "zero bytes": (_file("bob/empty.wav", lambda: b""), "bob/empty.wav"),
    "header only": (_file("bob/header.wav", lambda: _short()[:44]), "bob/header.wav"),
    "random bytes": (_file("bob/noise.wav", lambda: os.urandom(3000)), "bob/noise.wav"),
    "text as m4a": (_file("bob/text.m4a", lambda: b"not audio\n" * 100), "bob/text.m4a"),
    "huge by header": (_file("bob/huge.wav", lambda: _wav_with(data_size=0xFFFFFF00)), "bob/huge.wav"),
    "rate that lies": (_file("bob/rate.wav", lambda: _wav_with(rate=192_000 * 50)), "bob/rate.wav"),
    "zero rate": (_file("bob/zero_rate.wav", lambda: _wav_with(rate=0)), "bob/zero_rate.wav"),
    "truncated": (_file("bob/cut.wav", lambda: _wav_with(cut_to=2000)), "bob/cut.wav"),
    "wav named mp3": (_file("bob/really_wav.mp3"), "bob/really_wav.mp3"),
    "unknown codec tag": (_file("bob/codec.wav", _fmt_field(0, "<H", 0x1234)), "bob/codec.wav"),
    "zero channels": (_file("bob/no_channels.wav", _fmt_field(2, "<H", 0)), "bob/no_channels.wav"),
    "64 channels claimed": (_file("bob/many.wav", _fmt_field(2, "<H", 64)), "bob/many.wav"),
    "zero bits": (_file("bob/no_bits.wav", _fmt_field(14, "<H", 0)), "bob/no_bits.wav"),
    "odd block align": (_file("bob/align.wav", _fmt_field(12, "<H", 3)), "bob/align.wav"),
    "data before fmt": (
        _file("bob/late_fmt.wav", lambda: _short()[:12] + _short()[36:] + _short()[12:36]),
        "bob/late_fmt.wav",
    ),
    "mp3 of garbage frames": (
        _file("bob/garbage.mp3", lambda: b"\xff\xfb\x90\x00" * 2000),
        "bob/garbage.mp3",
    ),
    "ID3 tag only": (
        _file("bob/tag.mp3", lambda: b"ID3\x04\x00\x00\x00\x00\x00\x10" + b"\x00" * 16),
        "bob/tag.mp3",
    ),
    "same bytes twice": (_file("bob/copy.wav"), "bob/copy.wav"),
    # --- the file system ---
    "symlink to a file": (_symlink("bob/link.wav", "copy.wav"), "bob/link.wav"),
    "broken symlink": (_symlink("bob/dangling.wav", "nowhere.wav"), "bob/dangling.wav"),
    "symlink loop": (_loop, "loop/again"),
    "self-link": (_symlink("bob/self.wav", "self.wav"), "bob/self.wav"),
    "link to a folder outside": (_outside_link, "faraway/far.wav"),
    "hard link": (_hardlink, "links/hardlink.wav"),
    "deep nesting": (_deep, "deep/" + "/".join(f"level{i}" for i in range(25)) + "/bottom.wav"),
    "named pipe": (_fifo, "!pipes/live.wav"),
    "folder named .wav": (_folder_named_wav, "!folders/not_a_file.wav"),
    "no permission": (_unreadable, "locked/no_access.wav"),
    "empty speaker folder": (lambda root: (root / "nobody").mkdir(), "!nobody"),
}

USER_FILES_IN_OUT = {
    "clips/alice/my notes.txt": b"the user's own notes",
    "clips/someone/keep.wav": b"a user's wav where clips go",
    "rejected/keep.wav": b"a user's wav where rejected clips go",
    ".mine.tmp": b"a user's temp-looking file",
    ".report.html.1-abcdef012345.tmp": b"a temporary file of a live process (pid 1)",
    "clips/zed/recording.wav": None,  # the user's recording, read through IN/zed -> OUT/clips/zed
}


def _tree(root: Path) -> dict[str, str]:
    """sha256 (or link target) of everything under ``root``, not following links; paths as text."""
    found = {}
    for folder, dirs, files in os.walk(os.fsencode(root)):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            path = os.path.join(folder, name)
            rel = os.fsdecode(os.path.relpath(path, os.fsencode(root)))
            if os.path.islink(path):
                found[rel] = "-> " + os.fsdecode(os.readlink(path))
            elif stat.S_ISREG(os.lstat(path).st_mode):
                with open(path, "rb") as fh:
                    found[rel] = hashlib.sha256(fh.read()).hexdigest()
    return found


def _config_file(folder: Path) -> Path:
    path = folder / "run.yaml"
    path.write_text("slow_measures: false\nexecutor: serial\n")
    return path


@pytest.fixture(scope="module", autouse=True)
def _dnsmos_once() -> Iterator[None]:
    with dnsmos_once():
        yield


@pytest.fixture(scope="module")
def abused(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run over every kind of odd input, into an OUT holding the user's own files."""
    base = tmp_path_factory.mktemp("abuse")
    root, out = base / "in", base / "out"
    root.mkdir()
    for make, _ in KINDS.values():
        make(root)
    (root / "alice").mkdir()
    shutil.copyfile(corpus_file(*LONG), root / "alice" / "take.flac")
    for rel, content in USER_FILES_IN_OUT.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(_short() if content is None else content)
    (root / "zed").symlink_to(out / "clips" / "zed", target_is_directory=True)
    before_in, before_out = _tree(root), _tree(out)
    umask = os.umask(UMASK)  # a team's shared folder: group-writable files
    try:
        proc = voiceprep("run", root, "--out", out, "-f", FAMILY, "--config", _config_file(base))
    finally:
        os.umask(umask)
    (root / "locked" / "no_access.wav").chmod(0o644)
    return {
        "in": root,
        "out": out,
        "proc": proc,
        "before_in": before_in,
        "before_out": before_out,
        "recordings": jsonl(out / "recordings.jsonl"),
        "clips": jsonl(out / "clips.jsonl"),
        "run": json.loads((out / "run.json").read_text()),
    }


def test_the_run_over_every_odd_input_finishes_with_exit_0_and_a_report(abused: dict[str, Any]) -> None:
    proc = abused["proc"]
    assert proc.returncode == 0, proc.stderr
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
    assert (abused["out"] / "report.html").is_file()
    assert not (abused["out"] / "errors.log").exists()
    crashed = [r for r in abused["recordings"] + abused["clips"] if "internal_error" in r["reasons"]]
    assert crashed == []
    assert {"ready"} <= {c["status"] for c in abused["clips"] if c["speaker"] == "alice"}


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_odd_input_is_a_row_with_a_known_reason_or_documented_skip(
    kind: str, abused: dict[str, Any]
) -> None:
    _, path = KINDS[kind]
    rows = {r["path"]: r for r in abused["recordings"]}
    if path.startswith("!"):  # hidden, not audio by name, special files, empty folders
        assert not [p for p in rows if p.startswith(path[1:])]
        top = path[1:].split("/")[0]
        if not any(p.startswith(f"{top}/") for p in rows):
            assert top not in {c["speaker"] for c in abused["clips"]}
        return
    assert path in rows, sorted(rows)
    row = rows[path]
    assert row["status"] in {"ok", "failed"}
    assert set(row["reasons"]) <= set(all_codes()) - {"internal_error"}  # a data problem, never a crash
    if row["status"] == "failed":
        assert row["reasons"], row


def test_no_input_file_is_deleted_or_changed(abused: dict[str, Any]) -> None:
    assert _tree(abused["in"]) == abused["before_in"]


def test_no_file_of_the_user_in_out_is_deleted_or_changed(abused: dict[str, Any]) -> None:
    after = _tree(abused["out"])
    for rel in USER_FILES_IN_OUT:
        assert after.get(rel) == abused["before_out"][rel], rel


def test_a_speaker_folder_linked_into_out_is_reported_not_read(abused: dict[str, Any]) -> None:
    assert abused["run"]["inputs_inside_out"] == ["zed/recording.wav"]
    assert "inside the output folder and were not read: zed/recording.wav" in abused["proc"].stdout
    assert "zed" not in {r["speaker"] for r in abused["recordings"]}


def test_markup_prints_as_itself_and_escapes_never_reach_the_terminal(abused: dict[str, Any]) -> None:
    text = abused["proc"].stdout + abused["proc"].stderr
    text.encode("utf-8")  # a terminal that is strict UTF-8 can show it: no raw bytes of a bad name
    assert "[bold]x[" in text  # the speaker of `[bold]x[.wav`, in the table
    assert "\x1b" not in text and "\u202e" not in text
    assert "\\x1b[31mred\\x1b[0m" in text  # shown, not obeyed


def test_unicode_speakers_keep_their_names_and_stay_distinct(abused: dict[str, Any]) -> None:
    speakers = {c["speaker"] for c in abused["clips"]}
    assert {"张伟", "李娜"} <= speakers
    assert safe_name("张伟") == "张伟" and safe_name("李娜") == "李娜"
    assert safe_name("José María") == "José_María"


def test_manifests_report_and_clips_share_the_umask_mode(abused: dict[str, Any]) -> None:
    out = abused["out"]
    clip = next(c["clip"] for c in abused["clips"] if c["status"] == "ready")
    for rel in ("recordings.jsonl", "clips.jsonl", "run.json", "report.html", outputs.RECORD_NAME, clip):
        assert stat.S_IMODE((out / rel).stat().st_mode) == 0o666 & ~UMASK, rel


def test_the_record_of_outputs_lists_exactly_the_clips_of_the_manifest(abused: dict[str, Any]) -> None:
    record = outputs.load_record(abused["out"])
    listed = {c["clip"]: c["clip_sha256"] for c in abused["clips"] if c["clip"]}
    assert {k: v["sha256"] for k, v in record.items()} == listed
    assert not (abused["out"] / outputs.LOCK_NAME).exists()


# --------------------------------------------------------------------------------------------- reruns


@pytest.fixture
def rerun(abused: dict[str, Any], tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """A copy of the shared OUT, and a run into it over a small input (one short reading)."""
    out = tmp_path / "out"
    shutil.copytree(abused["out"], out, symlinks=True)
    root = tmp_path / "in"
    (root / "bob").mkdir(parents=True)
    (root / "bob" / "take.wav").write_bytes(_short())

    def again(*extra: str) -> subprocess.CompletedProcess[str]:
        return voiceprep("run", root, "--out", out, "-f", FAMILY, "--config", _config_file(tmp_path), *extra)

    again.out = out  # type: ignore[attr-defined]
    return again


def test_a_clip_no_longer_listed_is_removed_when_voiceprep_wrote_it(rerun: Any) -> None:
    out = rerun.out
    assert (out / "clips/alice/qwen-tts.wav").is_file()
    assert rerun().returncode == 0
    assert not (out / "clips/alice/qwen-tts.wav").exists()  # ours, no longer listed
    assert (out / "clips/alice/my notes.txt").read_bytes() == USER_FILES_IN_OUT["clips/alice/my notes.txt"]


def test_a_clip_the_user_edited_is_kept_when_no_longer_listed(rerun: Any) -> None:
    clip = rerun.out / "clips/alice/qwen-tts.wav"
    edited = clip.read_bytes() + b"user's edit"
    clip.write_bytes(edited)
    assert rerun().returncode == 0
    assert clip.read_bytes() == edited


def test_a_user_file_where_a_clip_goes_is_never_overwritten(abused: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(abused["out"], out, symlinks=True)
    (out / outputs.RECORD_NAME).unlink()
    (out / "clips.jsonl").write_text("")  # no proof at all that the clip there is voiceprep's
    clip = out / "clips/alice/qwen-tts.wav"
    clip.write_bytes(b"the user's own file")
    proc = voiceprep("run", abused["in"], "--out", out, "-f", FAMILY, "--config", _config_file(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert clip.read_bytes() == b"the user's own file"
    row = next(c for c in jsonl(out / "clips.jsonl") if c["speaker"] == "alice")
    assert (row["status"], row["reasons"]) == ("failed", ["output_in_the_way"])
    clip.rename(tmp_path / "moved away.wav")  # as the message says: move it and run again
    proc = voiceprep("run", abused["in"], "--out", out, "-f", FAMILY, "--config", _config_file(tmp_path))
    assert proc.returncode == 0, proc.stderr
    row = next(c for c in jsonl(out / "clips.jsonl") if c["speaker"] == "alice")
    assert row["status"] == "ready" and clip.is_file()


@pytest.mark.parametrize(
    "entry",
    [
        {"path": "../victim.wav", "intent": True},
        {"path": "clips/../../victim.wav", "intent": True},
        {"path": "notes.txt", "intent": True},
        {"path": "clips/escape/victim.wav", "intent": True},  # clips/escape is a link out of OUT
    ],
    ids=["parent", "dotdot inside", "outside the clip folders", "through a link"],
)
def test_a_tampered_record_cannot_make_a_run_delete_anything_else(rerun: Any, entry: dict[str, Any]) -> None:
    out = rerun.out
    victim = out.parent / "victim.wav"
    victim.write_bytes(b"precious")
    (out / "notes.txt").write_bytes(b"precious")
    (out / "clips" / "escape").symlink_to(out.parent, target_is_directory=True)
    with (out / outputs.RECORD_NAME).open("a") as fh:
        fh.write(json.dumps(entry) + "\n")
    assert rerun().returncode == 0
    assert victim.read_bytes() == b"precious" and (out / "notes.txt").read_bytes() == b"precious"


def test_an_output_folder_of_an_older_version_is_trusted_through_its_manifest(rerun: Any) -> None:
    (rerun.out / outputs.RECORD_NAME).unlink()  # as before the record existed: clips.jsonl is the proof
    assert rerun().returncode == 0
    assert not (rerun.out / "clips/alice/qwen-tts.wav").exists()


# --------------------------------------------------------------------------------------------- the lock


def _lock(out: Path, **holder: Any) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / outputs.LOCK_NAME).write_text(json.dumps(holder))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize(
    "holder",
    [
        {"pid": os.getppid(), "host": socket.gethostname(), "started": "2026-01-01T00:00:00Z"},
        {"pid": 1, "host": "another-host.example", "started": "2026-01-01T00:00:00Z"},
    ],
    ids=["live process here", "another host"],
)
def test_a_second_run_into_a_locked_out_stops_with_exit_4_and_touches_nothing(
    rerun: Any, holder: dict[str, Any]
) -> None:
    out = rerun.out
    _lock(out, **holder)
    before = _tree(out)
    proc = rerun()
    assert proc.returncode == 4
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(holder["pid"]) in lines[0] and holder["host"] in lines[0]
    assert _tree(out) == before


def test_no_resume_with_a_cache_linked_elsewhere_removes_only_the_link(rerun: Any, tmp_path: Path) -> None:
    elsewhere = tmp_path / "fast disk"
    shutil.move(rerun.out / ".cache", elsewhere)
    (rerun.out / ".cache").symlink_to(elsewhere, target_is_directory=True)
    before = _tree(elsewhere)
    assert rerun("--no-resume").returncode == 0
    assert _tree(elsewhere) == before
    assert not (rerun.out / ".cache").is_symlink()


def test_a_stale_lock_of_a_dead_process_is_taken_over(rerun: Any) -> None:
    _lock(rerun.out, pid=_dead_pid(), host=socket.gethostname(), started="2026-01-01T00:00:00Z")
    assert rerun().returncode == 0
    assert not (rerun.out / outputs.LOCK_NAME).exists()


def test_a_fresh_unreadable_lock_is_busy_an_old_one_stale(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / outputs.LOCK_NAME).write_text("")  # a run between creating and writing its lock
    with pytest.raises(outputs.OutputBusy), outputs.output_lock(out):
        pass
    os.utime(out / outputs.LOCK_NAME, (0, 0))
    with outputs.output_lock(out):
        assert json.loads((out / outputs.LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (out / outputs.LOCK_NAME).exists()


def test_the_lock_is_reentrant_in_its_thread_and_refuses_another_thread(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def take() -> None:
        with outputs.output_lock(out):
            pass

    out = tmp_path / "out"
    out.mkdir()
    with outputs.output_lock(out):
        with outputs.output_lock(out):  # the command holds it, the run takes it again
            pass
        assert (out / outputs.LOCK_NAME).exists()
        with ThreadPoolExecutor(1) as pool, pytest.raises(outputs.OutputBusy, match=str(os.getpid())):
            pool.submit(take).result()
    assert not (out / outputs.LOCK_NAME).exists()
    take()  # released: free again


def test_the_temp_sweep_removes_only_files_of_dead_processes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "clips" / "a").mkdir(parents=True)
    dead, live = _dead_pid(), os.getppid()
    names = {
        f".clips.jsonl.{dead}-0123456789ab.tmp": False,
        f".clips.jsonl.{live}-0123456789ab.tmp": True,
        f".write-test-{dead}": False,
        f".write-test-{live}": True,
        f".voiceprep.lock.{dead}-0123456789ab.stale": False,  # a stale lock taken aside, then SIGKILL
        f".voiceprep.lock.{live}-0123456789ab.stale": True,
        ".notes.stale": True,
        ".notes.tmp": True,  # not voiceprep's name
        "clips/a/.qwen-tts.wav.0123456789ab.tmp": False,  # an older version's name, where only run writes
        f"clips/a/.qwen-tts.wav.{live}-0123456789ab.tmp": True,
    }
    for rel in names:
        (out / rel).write_bytes(b"x")
    outputs.remove_temp_files(out)
    assert {rel: (out / rel).exists() for rel in names} == names


# --------------------------------------------------------------------------------------------- in and out


def test_out_inside_the_input_is_not_read_and_in_inside_out_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / ".cache" / "hashes").mkdir(parents=True)
    (out / "sub" / "bob").mkdir(parents=True)
    (out / "sub" / "bob" / "take.wav").write_bytes(_short())
    for source in (out, out / "sub"):
        proc = voiceprep("run", source, "--out", out, "-f", FAMILY, "--no-resume")
        assert proc.returncode == 3
        assert "inside it" in proc.stderr
        assert (out / ".cache" / "hashes").is_dir()  # --no-resume removed nothing
    with pytest.raises(RunError, match="inside it"):
        run(out / "sub", out, families=[FAMILY], config=load_config(slow_measures=False), executor="serial")


@pytest.mark.parametrize(
    ("names", "clash"),
    [
        (["Alice/a.wav", "alice/b.wav"], True),
        (["Zoë/a.wav", "Zoe\u0308/b.wav"], True),  # the same name, composed and decomposed
        (["ÉMILE/a.wav", "émile/b.wav"], True),
        (["张伟/a.wav", "李娜/b.wav"], False),
        (["Straße/a.wav", "STRASSE/b.wav"], True),  # casefold
    ],
)
def test_speaker_folders_collide_ignoring_case_and_are_refused_naming_both(
    tmp_path: Path, names: list[str], clash: bool
) -> None:
    keys = {folder_key(n.split("/")[0]) for n in names}
    assert (len(keys) == 1) is clash
    if not clash:
        return
    for rel in names:
        (tmp_path / "in" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / rel).write_bytes(b"x")
    proc = voiceprep("run", tmp_path / "in", "--out", tmp_path / "out", "-f", FAMILY)
    assert proc.returncode == 3 and "ignoring case" in proc.stderr
    assert not (tmp_path / "out" / "recordings.jsonl").exists()


def test_the_crash_logger_survives_a_name_that_is_not_utf8(tmp_path: Path) -> None:
    name = os.fsdecode(b"bob/caf\xe9.wav")
    fields = _crash(tmp_path, name, OSError(f"cannot open {name}"))
    log = (tmp_path / "errors.log").read_text(encoding="utf-8")
    assert "caf\\xe9.wav" in log and "caf\\xe9.wav" in fields["message"]
    json.dumps(fields, ensure_ascii=False).encode("utf-8")  # a row can be written


def test_a_run_started_while_another_writes_the_same_out_stops_and_the_first_is_intact(
    tmp_path: Path, zygote: Zygote
) -> None:
    """The issue's race for real: a second ``run`` into an OUT that a running process is writing (the first
    runs in a fork of the zygote, stopped right after it took the lock while the second runs)."""
    root, out = tmp_path / "in", tmp_path / "out"
    (root / "alice").mkdir(parents=True)
    shutil.copyfile(corpus_file(*LONG), root / "alice" / "take.flac")
    config = _config_file(tmp_path)
    args = ["run", str(root), "--out", str(out), "-f", FAMILY, "--config", str(config)]
    seconds: list[subprocess.CompletedProcess[str]] = []

    def second_run(first_pid: int) -> None:
        assert (out / outputs.LOCK_NAME).exists()
        second = voiceprep(*args)
        assert second.returncode == 4
        assert f"pid {first_pid}" in second.stderr
        seconds.append(second)

    at_lock = {"event": "link:after", "path": str(out / outputs.LOCK_NAME)}
    first = zygote.run(*args, env=process_env(), stop_at=at_lock, while_stopped=second_run, capture=True)
    assert len(seconds) == 1, "the second run did not run while the first held the lock"
    assert first["code"] == 0, first["stderr"]
    clip = next(c for c in jsonl(out / "clips.jsonl") if c["speaker"] == "alice")
    assert clip["status"] == "ready"
    assert hashlib.sha256((out / clip["clip"]).read_bytes()).hexdigest() == clip["clip_sha256"]


@pytest.mark.parametrize(
    "name",
    [
        "../../etc",
        "..",
        "/",
        "a/b",
        "C:\\evil",
        "nul",
        "LPT1.txt",
        "\x00\x1b[2J",
        " ",
        "[bold]x[",
        "-",
        "\u202e",
    ],
)
def test_a_hostile_speaker_name_gives_a_plain_folder_inside_clips(name: str) -> None:
    folder = safe_name(name)
    assert folder and "/" not in folder and "\\" not in folder and not folder.startswith(".")
    assert folder.split(".")[0].upper() not in {"CON", "PRN", "AUX", "NUL", "LPT1"}
    assert all(ch.isprintable() for ch in folder)


@pytest.mark.parametrize(
    "command",
    [
        ["probe"],
        ["probe", "--json"],
        ["analyze", "--no-dnsmos"],
        ["analyze", "--json", "--no-dnsmos"],
        ["check", "-f", FAMILY, "--no-dnsmos"],
        ["check", "-f", FAMILY, "--json", "--no-dnsmos"],
    ],
    ids=" ".join,
)
def test_the_inspection_commands_print_odd_names_as_utf8_text(
    command: list[str], abused: dict[str, Any]
) -> None:
    folders = [abused["in"] / os.fsdecode(b"bytes"), abused["in"] / "d[/]x", abused["in"] / "[bold]x[.wav"]
    proc = voiceprep(*command, *folders)
    assert proc.returncode in {0, 1}, proc.stderr
    text = proc.stdout + proc.stderr
    text.encode("utf-8")  # names that are not UTF-8 arrive escaped, not as raw bytes
    assert "caf\\xe9.wav" in text and "\x1b" not in text
    if "--json" in command:
        assert len([line for line in proc.stdout.splitlines() if line.startswith("{")]) >= 3
    else:
        assert "[bold]x[" in text and "d[/]x" in text


def test_explain_shows_a_speaker_with_escapes_in_its_name_as_text(abused: dict[str, Any]) -> None:
    proc = voiceprep("explain", "\x1b[31mred\x1b[0m", "--out", abused["out"])
    assert proc.returncode == 0, proc.stderr
    assert "\\x1b[31mred" in proc.stdout and "\x1b" not in proc.stdout
    assert len(proc.stdout.splitlines()) > 3  # its lines kept


def test_a_clip_folder_that_links_out_of_out_is_not_written_through(
    abused: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    shutil.copytree(abused["out"], out, symlinks=True)
    theirs = tmp_path / "users folder"
    theirs.mkdir()
    (theirs / "qwen-tts.wav").write_bytes(b"the user's file of the same name")
    shutil.rmtree(out / "clips" / "alice")
    (out / "clips" / "alice").symlink_to(theirs, target_is_directory=True)
    proc = voiceprep("run", abused["in"], "--out", out, "-f", FAMILY, "--config", _config_file(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert _tree(theirs) == {"qwen-tts.wav": hashlib.sha256(b"the user's file of the same name").hexdigest()}
    row = next(c for c in jsonl(out / "clips.jsonl") if c["speaker"] == "alice")
    assert (row["status"], row["reasons"]) == ("failed", ["output_in_the_way"])


def test_voices_list_and_show_print_names_from_the_ledger_as_text(tmp_path: Path) -> None:
    from pipeline.enroll.ledger import Ledger
    from pipeline.enroll.providers.base import VoiceRecord

    ledger = tmp_path / "voices.sqlite"
    record = VoiceRecord(
        provider="minimax",
        base_url="https://api.minimax.io",
        family="minimax",
        target_model="[bold]model[",
        name="\x1b[31mname",
        speaker="d[/]x [bold]y[",
        status="pending",
    )
    with Ledger(ledger) as led:
        row = led.begin(record)
    for command in (["voices", "list"], ["voices", "show", str(row.id)]):
        proc = voiceprep(*command, "--ledger", ledger)
        assert proc.returncode == 0, proc.stderr
        assert "d[/]x [bold]y[" in proc.stdout and "[bold]model[" in proc.stdout
        assert "\x1b" not in proc.stdout and "\\x1b[31mname" in proc.stdout


_ANY_NAME = st.text(
    st.characters(blacklist_categories=(), min_codepoint=0, max_codepoint=0x10FFFF), min_size=0, max_size=40
)
"""Any text, lone surrogates (the bytes of names that are not UTF-8) and control characters included."""


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=_ANY_NAME)
def test_any_name_gives_a_plain_clip_folder_and_prints_as_itself(name: str) -> None:
    from rich.console import Console

    from pipeline.cli.common import plain, shown

    folder = safe_name(name)
    assert folder and "/" not in folder and "\\" not in folder and not folder.startswith(".")
    folder.encode("utf-8")
    assert folder_key(name) == folder_key(safe_name(name))
    text = plain(name)
    text.encode("utf-8")
    bidi = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    assert not [ch for ch in text if unicodedata.category(ch) in {"Cc", "Cs", "Zl", "Zp"} or ch in bidi]
    for embedded, expected in ((shown(name), text), (f"[bold]x[/] {shown(name)}: ok", f"x {text}: ok")):
        console = Console(width=10_000, record=True, file=io.StringIO(), color_system=None, emoji=False)
        console.print(embedded, highlight=False, end="")  # alone (a table cell) and as the commands embed it
        assert console.export_text() == expected  # exactly the plain text: no markup obeyed
