"""``voiceprep explain``: why each recording of a speaker was or was not used, from hand-written manifests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _cli import voiceprep

from pipeline.batch.manifest import ClipRow, RecordingRow, write_rows
from pipeline.errors import InvalidArgument
from pipeline.report.explain import explain
from pipeline.report.results import load_run


def _plan(path: str, start: float, end: float, score: float, **parts: float) -> dict[str, Any]:
    return {
        "pieces": [{"path": path, "start_s": start, "end_s": end}],
        "duration_s": end - start,
        "score": score,
        "score_parts": {"snr": 1.0, "clipping": 1.0, "dnsmos": 0.8, **parts},
        "assembled": False,
    }


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One speaker, five recordings: chosen, runner-up (clipped), too short alone, noisy, unreadable."""
    out = tmp_path_factory.mktemp("explain")
    ok = {"format": "wav", "sample_rate": 16000, "channels": 1}
    recordings = [
        RecordingRow(path="ann/good.wav", speaker="ann", status="ok", probe=ok,
                     metrics={"duration_s": 16.0, "snr_db": 35.0}),
        RecordingRow(path="ann/clipped.wav", speaker="ann", status="ok", probe=ok,
                     metrics={"duration_s": 14.0, "snr_db": 33.0}),
        RecordingRow(path="ann/take1.wav", speaker="ann", status="ok", probe=ok,
                     metrics={"duration_s": 4.0, "snr_db": 30.0}),
        RecordingRow(path="ann/street.wav", speaker="ann", status="ok", probe=ok,
                     metrics={"duration_s": 18.0, "snr_db": 4.0}),
        RecordingRow(path="ann/broken.m4a", speaker="ann", status="failed", reasons=["decode_failed"],
                     message="neither libsndfile nor FFmpeg recognise the data"),
        *[RecordingRow(path=f"bo/take{i}.wav", speaker="bo", status="ok", probe=ok,
                       metrics={"duration_s": 5.0, "snr_db": 30.0}) for i in (1, 2, 3)],
        RecordingRow(path="cy/only.wav", speaker="cy", status="ok", probe=ok,
                     metrics={"duration_s": 6.0, "snr_db": 30.0}),
        RecordingRow(path="di/talk.wav", speaker="di", status="ok", probe=ok,
                     metrics={"duration_s": 30.0, "snr_db": 30.0}),
    ]  # fmt: skip
    joined = _plan("bo/take1.wav", 0.2, 4.8, 0.9)
    joined["pieces"].append({"path": "bo/take2.wav", "start_s": 0.3, "end_s": 4.9})
    joined["assembled"] = True
    clips = [
        ClipRow(
            speaker="ann",
            family="qwen-tts",
            status="ready",
            duration_s=15.0,
            plan=_plan("ann/good.wav", 0.5, 15.5, 0.93),
            alternatives=[_plan("ann/clipped.wav", 0.4, 13.9, 0.71, clipping=0.0)],
        ),
        ClipRow(speaker="bo", family="qwen-tts", status="ready", duration_s=10.2, plan=joined),
        ClipRow(speaker="cy", family="qwen-tts", status="rejected", reasons=["too_short"]),
        ClipRow(speaker="di", family="qwen-tts", status="rejected", reasons=["other_voices"]),
    ]
    write_rows(out / "recordings.jsonl", recordings)
    write_rows(out / "clips.jsonl", clips)
    (out / "run.json").write_text(json.dumps({"families": ["qwen-tts"], "input": str(out / "in")}))
    return out


def _line(text: str, path: str) -> str:
    (line,) = [ln for ln in text.splitlines() if ln.strip().startswith(path + ":")]
    return line


def test_every_recording_says_why_it_was_or_was_not_used(run_dir: Path) -> None:
    text = explain(load_run(run_dir), "ann")
    assert text.splitlines()[0] == "ann: 5 recordings, 4 readable"
    assert "qwen-tts: ready, 15.00 s from ann/good.wav 0.50-15.50 s (score 0.93)" in text
    assert "used in the clip" in _line(text, "ann/good.wav")
    assert "runner-up #1" in _line(text, "ann/clipped.wav")
    # The runner-up's line names the score part it lost on (clipping), not the parts where it tied.
    (runner_up,) = [ln for ln in text.splitlines() if ln.strip().startswith("#1 ")]
    assert "lost on clipping 0.00 vs 1.00" in runner_up and "snr" not in runner_up
    assert "too short alone (4.0 s" in _line(text, "ann/take1.wav")
    street = _line(text, "ann/street.wav")
    assert "usable, not chosen" in street and "snr_db 4" in street and "fail" in street
    assert "not readable (decode_failed" in _line(text, "ann/broken.m4a")


def test_takes_say_whether_they_were_joined_or_had_nothing_to_join(run_dir: Path) -> None:
    results = load_run(run_dir)
    joined = explain(results, "bo")
    assert "from bo/take1.wav 0.20-4.80 s + bo/take2.wav 0.30-4.90 s" in joined
    assert "used in the clip" in _line(joined, "bo/take2.wav")
    assert "the joined clip reached its length" in _line(joined, "bo/take3.wav")
    alone = explain(results, "cy")
    assert alone.splitlines()[0] == "cy: 1 recording, 1 readable"
    assert "no other recording to join it with" in _line(alone, "cy/only.wav")


def test_a_recording_with_no_window_kept_says_why_from_the_clip_row(run_dir: Path) -> None:
    # Another voice in every window: no plan was kept, so there is no score to have been below.
    line = _line(explain(load_run(run_dir), "di"), "di/talk.wav")
    assert "(other_voices)" in line and "scored below" not in line


def test_family_filter_and_unknown_names(run_dir: Path) -> None:
    results = load_run(run_dir)
    assert "qwen-tts: ready" in explain(results, "ann", "Qwen-TTS")
    with pytest.raises(InvalidArgument, match="speakers: ann, bo, cy"):
        explain(results, "bob")
    with pytest.raises(InvalidArgument, match="families: qwen-tts"):
        explain(results, "ann", "minimax")


def test_cli_prints_the_explanation_and_one_line_errors(run_dir: Path) -> None:
    done = voiceprep("explain", "ann", "--out", run_dir)
    assert done.returncode == 0, done.stderr
    assert "runner-up #1" in done.stdout
    wrong = voiceprep("explain", "bob", "--out", run_dir)
    assert wrong.returncode == 2
    assert wrong.stderr.strip().splitlines() == [wrong.stderr.strip()] and "speaker 'bob'" in wrong.stderr


def test_a_rejection_without_a_check_still_gives_its_reason_and_fix(run_dir: Path) -> None:
    """No window made the clip (selection's reasons, no check carries them): each reason is given with its
    hint, as a failing check would be, and only once."""
    from pipeline.errors import reason_hint

    text = explain(load_run(run_dir), "cy")
    assert f"fail too_short -> {reason_hint('too_short')}" in text
    assert text.count("fail too_short") == 1
    assert "fail" not in explain(load_run(run_dir), "ann").split("recordings:")[0]  # ready: nothing to fix
