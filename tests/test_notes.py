"""pipeline.audio.notes: decoder messages become bounded notes, never terminal output; fd 2 is always given
back; threads keep their own notes; other text written to fd 2 meanwhile is passed on."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import av.logging
import pytest
import soundfile as sf

from pipeline.audio import io, notes
from pipeline.audio.view import AnalysisView

ROOT = Path(__file__).resolve().parents[1]
ILLEGAL = "Illegal Audio-MPEG-Header"


def _stderr_id() -> tuple[int, int]:
    st = os.fstat(2)
    return st.st_dev, st.st_ino


def _messages(entries: list[dict]) -> list[str]:
    return [e["message"] for e in entries]


def test_the_damaged_mp3_really_makes_mpg123_print_to_fd2(damaged_mp3: Path, capfd) -> None:
    """Without voiceprep's capture (libsndfile directly), the chatter lands on the terminal."""
    data, _ = sf.read(damaged_mp3)
    err = capfd.readouterr().err
    assert f"Note: {ILLEGAL} 0x00000000" in err and "Note: Trying to resync..." in err
    assert len(data) == 549045  # every frame decodes: the zeros are skipped


def test_decoding_turns_the_chatter_into_notes(damaged_mp3: Path, capfd) -> None:
    before = _stderr_id()
    with notes.collect() as collected:
        data, _ = io.read(damaged_mp3)
    assert len(data) == 549045
    assert capfd.readouterr().err == ""
    assert _stderr_id() == before
    entries = collected.entries()
    assert _messages(entries) == [
        f"Note: {ILLEGAL} 0x00000000 at offset 62694.",
        "Note: Trying to resync...",
        "Note: Skipped 200 bytes in input.",
    ]
    assert all(e["count"] >= 1 for e in entries)
    with notes.collect() as clean:
        io.read(ROOT / "data/samples/bob/long_pause.mp3")  # an intact MP3: nothing to say
    assert not clean and capfd.readouterr().err == ""


def test_the_prefetch_threads_notes_reach_the_consumers_collector(damaged_mp3: Path, capfd) -> None:
    with notes.collect() as collected:
        assert sum(len(block) for block in AnalysisView(damaged_mp3)) > 0  # decoded in a prefetch thread
    assert any(ILLEGAL in m for m in _messages(collected.entries()))
    assert ILLEGAL not in capfd.readouterr().err


def test_nested_collectors_hand_their_notes_on(damaged_mp3: Path) -> None:
    with notes.collect() as outer:
        with notes.collect() as inner:
            io.read(damaged_mp3)
            assert inner and not outer  # the innermost collects
        assert outer.entries() == inner.entries()  # handed on when closed


def test_outside_a_collector_notes_go_to_the_debug_log(damaged_mp3: Path, capfd, caplog) -> None:
    with caplog.at_level(logging.DEBUG, logger="pipeline.audio.notes"):
        io.read(damaged_mp3)
    assert any(ILLEGAL in r.getMessage() for r in caplog.records)
    assert ILLEGAL not in capfd.readouterr().err


def test_threads_decoding_at_once_keep_their_own_notes(damaged_mp3: Path, capfd) -> None:
    clean = ROOT / "data/samples/bob/long_pause.mp3"
    with notes.collect() as alone:
        io.read(damaged_mp3)
    before = _stderr_id()
    results: dict[tuple[str, int], list[dict]] = {}
    failures: list[BaseException] = []

    def decode(name: str, path: Path, turn: int) -> None:
        try:
            with notes.collect() as mine:
                io.read(path)
            results[name, turn] = mine.entries()
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [
        threading.Thread(target=decode, args=(name, path, turn))
        for turn in range(3)
        for name, path in (("damaged", damaged_mp3), ("clean", clean))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert len(results) == 6
    for (name, _), entries in results.items():
        assert entries == (alone.entries() if name == "damaged" else []), name
    assert _stderr_id() == before
    assert capfd.readouterr().err == ""


def test_other_text_on_fd2_is_passed_on_unchanged(capfd) -> None:
    def step() -> None:
        os.write(2, b"Traceback (most recent call last):\n  File 'x.py', line 1\nbinascii.Error: boom\n")
        os.write(2, b"analysing 3/10\r")  # another thread's progress bar, then decoder lines
        os.write(2, b"Note: Trying to resync...\n[src/libmpg123/parse.c:wetwork():1349] error: Giving up\n")

    with notes.collect() as collected:
        notes.captured(step)()
    err = capfd.readouterr().err
    assert (
        err
        == "Traceback (most recent call last):\n  File 'x.py', line 1\nbinascii.Error: boom\nanalysing 3/10\r"
    )
    assert _messages(collected.entries()) == ["Note: Trying to resync...", "error: Giving up"]


@pytest.mark.parametrize("error", [ValueError("real bug"), KeyboardInterrupt()])
def test_fd2_is_given_back_when_a_step_raises(error: BaseException, capfd) -> None:
    before = _stderr_id()

    def step() -> None:
        os.write(2, b"Note: Skipped 200 bytes in input.\n")
        raise error

    with notes.collect() as collected, pytest.raises(type(error)):
        notes.captured(step)()
    assert _stderr_id() == before
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"
    assert _messages(collected.entries()) == ["Note: Skipped 200 bytes in input."]
    assert notes.captured(lambda: 7)() == 7  # the lock was released


def _python(code: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=120
    )


def test_a_real_errors_traceback_is_printed(damaged_mp3: Path) -> None:
    proc = _python(f"""
        from pipeline.audio import io, notes
        def step():
            io.read({str(damaged_mp3)!r})
            raise RuntimeError("a real bug")
        notes.captured(step)()
    """)
    assert "Traceback (most recent call last)" in proc.stderr and "RuntimeError: a real bug" in proc.stderr
    assert ILLEGAL not in proc.stderr


def test_a_traceback_printed_while_another_thread_decodes_is_not_lost() -> None:
    """The main thread dies while a daemon thread is inside a captured step: its traceback still shows."""
    proc = _python("""
        import threading, time
        from pipeline.audio import notes
        inside = threading.Event()
        def step():
            inside.set()
            time.sleep(30)
        threading.Thread(target=notes.captured(step), daemon=True).start()
        inside.wait()
        raise RuntimeError("main thread failed")
    """)
    assert proc.returncode == 1
    assert "RuntimeError: main thread failed" in proc.stderr


def test_notes_are_bounded_and_group_messages_that_differ_in_numbers() -> None:
    collection = notes.DecodeNotes()
    for offset in range(10):  # one kind: only the numbers differ
        collection.add(f"Note: Illegal Audio-MPEG-Header 0x0000000{offset} at offset {1000 + offset}.\n")
    for kind in range(40):
        collection.add(f"error: problem kind {'x' * kind} " + "long " * 60)
    entries = collection.entries()
    assert len(entries) == notes.MAX_KINDS + 1
    assert entries[0] == {
        "message": "Note: Illegal Audio-MPEG-Header 0x00000000 at offset 1000.",
        "count": 10,
    }
    assert entries[-1] == {"message": notes.OTHER, "count": 40 - (notes.MAX_KINDS - 1)}
    assert sum(e["count"] for e in entries) == 50
    assert all(len(e["message"]) <= notes.MAX_MESSAGE_CHARS for e in entries)
    merged = notes.DecodeNotes()
    merged.merge(entries)
    assert merged.entries() == entries


def test_describe_is_one_short_line() -> None:
    entries = [
        {"message": f"Note: {ILLEGAL} 0x00000000 at offset 39996.", "count": 2},
        {"message": "Note: Trying to resync...", "count": 2},
        {"message": "Note: Skipped 200 bytes in input.", "count": 1},
    ]
    line = notes.describe(entries)
    assert line == f"{ILLEGAL} 0x00000000 at offset 39996 (x2); Trying to resync... (x2); 1 more"
    assert notes.describe([]) == ""


def test_ffmpeg_lines_are_notes_whether_printed_by_ffmpeg_or_logged_by_pyav(capfd, caplog) -> None:
    try:
        av.logging.restore_default_callback()  # FFmpeg prints to fd 2 itself: "[mp3float @ 0x...] ..."
        with notes.collect() as printed:
            notes.captured(av.logging.log)(av.logging.ERROR, "mp3float", "Header missing\n")
        av.logging.set_level(av.logging.VERBOSE)  # PyAV hands FFmpeg's lines to Python logging
        with notes.collect() as logged, caplog.at_level(logging.DEBUG, logger="libav"):
            notes.captured(av.logging.log)(
                av.logging.WARNING, "aac", "channel element 0.0 is not allocated\n"
            )
            notes.captured(av.logging.log)(av.logging.INFO, "aac", "an info line\n")
    finally:
        av.logging.set_level(None)  # PyAV's default: FFmpeg silent
    assert _messages(printed.entries()) == ["mp3float: Header missing"]
    assert _messages(logged.entries()) == ["aac: channel element 0.0 is not allocated"]
    assert [r.getMessage() for r in caplog.records if r.name == "libav.aac"] == ["an info line"]
    assert capfd.readouterr().err == ""
