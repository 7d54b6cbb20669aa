"""Tests for pipeline.audio.scan: order, filtering, links, loops and unusable entries."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.audio import scan as scan_module
from pipeline.audio.scan import AUDIO_EXTENSIONS, InputFile, scan
from pipeline.errors import InvalidArgument


def touch(path: Path, content: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    for rel in (
        "b.wav",
        "a.MP3",
        "notes.txt",
        ".hidden.wav",
        ".git/objects/x.wav",
        "sub/z.flac",
        "sub/deeper/c.m4a",
        "sub/deeper/readme.md",
        "sub2/clip.webm",
        "a0/first.ogg",
    ):
        touch(root / rel)
    return root


def relpaths(items: list[InputFile]) -> list[str]:
    return [item.path for item in items]


def test_folder_scan_is_recursive_sorted_and_audio_only(tree: Path) -> None:
    items = list(scan([tree]))
    assert relpaths(items) == [
        "a.MP3",
        "a0/first.ogg",
        "b.wav",
        "sub/deeper/c.m4a",
        "sub/z.flac",
        "sub2/clip.webm",
    ]
    assert all(item.problem is None for item in items)
    assert all(item.source == str(tree / item.path) for item in items)


def test_order_is_stable_across_runs_and_inputs_keep_their_order(tree: Path, tmp_path: Path) -> None:
    other = touch(tmp_path / "other" / "o.wav").parent
    first = list(scan([other, tree]))
    assert first == list(scan([other, tree]))
    assert first[0].source == str(other / "o.wav") and first[0].path == "o.wav"
    assert first[1].source.startswith(str(tree))


def test_a_file_input_is_named_by_its_file_name_and_always_kept(tree: Path) -> None:
    items = list(scan([tree / "sub" / "z.flac", str(tree / "notes.txt")]))
    assert items == [
        InputFile(source=str(tree / "sub" / "z.flac"), path="z.flac"),
        InputFile(source=str(tree / "notes.txt"), path="notes.txt"),
    ]


def test_single_path_is_accepted_and_bad_inputs_are_rejected(tree: Path) -> None:
    assert relpaths(list(scan(tree / "sub"))) == ["deeper/c.m4a", "z.flac"]
    with pytest.raises(InvalidArgument, match="inputs"):
        scan([123])  # type: ignore[list-item]
    with pytest.raises(InvalidArgument, match="inputs"):
        scan([""])


def test_missing_input_is_reported_not_raised(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "x.wav"
    assert list(scan([missing])) == [InputFile(source=str(missing), path="x.wav", problem="not_found")]


def test_symlink_loop_is_reported_once_and_scan_terminates(tmp_path: Path) -> None:
    root = tmp_path / "in"
    touch(root / "a" / "x.wav")
    (root / "a" / "back").symlink_to(root, target_is_directory=True)  # in/a/back -> in
    (root / "self.wav").symlink_to(root / "self.wav")  # a link to itself: ELOOP
    items = list(scan([root]))
    assert [(i.path, i.problem) for i in items] == [
        ("a/back", "symlink_loop"),
        ("a/x.wav", None),
        ("self.wav", "symlink_loop"),
    ]


def test_links_are_followed_and_a_folder_reached_twice_is_listed_once(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    touch(shared / "s.wav")
    outside = touch(tmp_path / "elsewhere" / "e.mp3")
    root = tmp_path / "in"
    root.mkdir()
    (root / "link1").symlink_to(shared, target_is_directory=True)
    (root / "link2").symlink_to(shared, target_is_directory=True)
    (root / "e.mp3").symlink_to(outside)
    (root / "broken.wav").symlink_to(tmp_path / "gone.wav")
    items = list(scan([root]))
    assert [(i.path, i.problem) for i in items] == [
        ("broken.wav", "not_found"),
        ("e.mp3", None),
        ("link1/s.wav", None),
    ]
    assert items[1].source == str(root / "e.mp3")  # the path as found, not the resolved target


def test_unreadable_folder_and_file_become_items(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_scandir = os.scandir
    real_access = os.access
    locked_dir = tree / "sub"
    locked_file = tree / "b.wav"

    def scandir(path: object) -> object:
        if Path(str(path)) == locked_dir:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)  # type: ignore[arg-type]

    def access(path: object, mode: int, **kwargs: object) -> bool:
        return Path(str(path)) != locked_file and real_access(path, mode, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(scan_module.os, "scandir", scandir)
    monkeypatch.setattr(scan_module.os, "access", access)
    items = list(scan([tree]))
    problems = {i.path: i.problem for i in items}
    assert problems == {
        "a.MP3": None,
        "a0/first.ogg": None,
        "b.wav": "unreadable",
        "sub": "unreadable",
        "sub2/clip.webm": None,
    }


def test_special_files_are_skipped_in_folders_and_reported_when_named(tmp_path: Path) -> None:
    root = tmp_path / "in"
    touch(root / "ok.wav")
    os.mkfifo(root / "pipe.wav")
    assert relpaths(list(scan([root]))) == ["ok.wav"]
    assert [i.problem for i in scan([root / "pipe.wav"])] == ["unreadable"]


def test_audio_extensions_cover_the_required_suffixes() -> None:
    required = {
        "wav", "wave", "rf64", "w64", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff", "aifc", "m4a",
        "mp4", "m4b", "aac", "mov", "mkv", "mka", "webm", "amr", "3gp", "wma", "wmv", "caf", "au", "avi",
    }  # fmt: skip
    assert required <= AUDIO_EXTENSIONS
    assert all(ext == ext.lower() and not ext.startswith(".") for ext in AUDIO_EXTENSIONS)


def test_scan_lists_the_files_it_leaves_out_because_they_are_not_audio(tmp_path: Path) -> None:
    """Inside folders only audio names are kept; the regular files left out for that (not hidden ones) are
    listed in ``skipped`` so the caller can say so; a file named explicitly is never skipped."""
    (tmp_path / "alice").mkdir()
    for name in ("alice/a.wav", "alice/notes.txt", "alice/list.CSV", "README", ".DS_Store"):
        (tmp_path / name).write_bytes(b"x")
    skipped: list[str] = []
    found = [f.path for f in scan(tmp_path, skipped=skipped)]
    assert found == ["alice/a.wav"]
    assert sorted(Path(s).name for s in skipped) == ["README", "list.CSV", "notes.txt"]
    named: list[str] = []
    assert [f.path for f in scan(tmp_path / "alice" / "notes.txt", skipped=named)] == ["notes.txt"]
    assert named == []
