"""The voiceprep command as a user runs it: output, JSON lines, exit codes, one-line errors."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from _cli import json_lines, process_env, voiceprep
from _corpus import corpus_file
from _kill_zygote import Zygote
from _samples import SAMPLES


def test_probe_json_reports_every_sample_and_the_broken_one() -> None:
    proc = voiceprep("probe", SAMPLES, "--json")
    assert proc.returncode == 1  # one file failed
    rows = json_lines(proc.stdout)
    audio = [
        p for p in SAMPLES.rglob("*") if p.is_file() and p.suffix in {".wav", ".mp3", ".m4a", ".flac", ".ogg"}
    ]
    assert len(rows) == len(audio)
    by_name = {Path(r["path"]).name: r for r in rows}
    assert by_name["broken.m4a"]["status"] == "failed"
    assert by_name["broken.m4a"]["reasons"] == ["decode_failed"]
    memo = by_name["phone_memo.m4a"]
    assert (memo["status"], memo["codec"], memo["sample_rate"], memo["channels"]) == ("ok", "aac", 44100, 1)
    expected_keys = {
        "path", "status", "reasons", "message", "format", "codec", "sample_rate", "channels",
        "duration_s", "sample_format", "bytes", "sha256",
    }  # fmt: skip
    assert all(expected_keys <= set(r) for r in rows)


def test_probe_table_summarises_and_explains_failures() -> None:
    proc = voiceprep("probe", SAMPLES / "alice")
    assert proc.returncode == 1
    assert "phone_memo.m4a" in proc.stdout
    assert "decode_failed" in proc.stdout
    assert "1 failed" in proc.stdout


def test_probe_missing_path_is_a_failed_row() -> None:
    proc = voiceprep("probe", "does/not/exist.wav", "--json")
    assert proc.returncode == 1
    assert json_lines(proc.stdout)[0]["reasons"] == ["not_found"]


def test_families_list_and_show() -> None:
    proc = voiceprep("families")
    assert proc.returncode == 0
    for name in ("cosyvoice", "qwen-tts", "minimax"):
        assert name in proc.stdout
    show = voiceprep("families", "show", "qwen-tts")
    assert show.returncode == 0
    assert "24000 Hz" in show.stdout and "min_speech_run_s" in show.stdout


def test_unknown_family_is_a_one_line_usage_error() -> None:
    proc = voiceprep("check", corpus_file("speech", "sms_speech-male.wav"), "--family", "nope")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "unknown family 'nope'" in proc.stderr


def test_check_json_and_exit_codes() -> None:
    fail = voiceprep("check", SAMPLES / "bob" / "long_pause.mp3", "-f", "cosyvoice", "--json", "--no-dnsmos")
    assert fail.returncode == 1
    (row,) = json_lines(fail.stdout)
    assert set(row) >= {"path", "family", "verdict", "checks", "metrics", "probe"}
    assert row["verdict"] == "fail" and "pause_too_long" in row["reasons"]
    pause = next(c for c in row["checks"] if c["rule"] == "max_pause_s")
    assert pause["limit"] == 2 and pause["value"] > 2 and pause["hint"]

    ok = voiceprep("check", corpus_file("speech", "sms_speech-male.wav"), "-f", "minimax", "--no-dnsmos")
    # 5.6 s is below MiniMax's 10 s minimum: a fail with its reason and hint in the human output.
    assert ok.returncode == 1
    assert "FAIL" in ok.stdout and "too_short" in ok.stdout and "fix:" in ok.stdout


def test_a_fail_line_names_its_warnings_as_warnings(tmp_path: Path) -> None:
    import numpy as np
    import soundfile as sf

    # 25 s of real speech in two channels: Qwen-TTS fails it for the channels and warns for the length.
    x, sr = sf.read(corpus_file("speech", "resem_librispeech_3080-5032-0006.flac"), dtype="float32")
    speech = np.tile(x, int(np.ceil(25 * sr / len(x))))[: 25 * sr]
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([speech, speech], axis=1), sr, subtype="PCM_16")
    proc = voiceprep("check", path, "-f", "qwen-tts", "--no-dnsmos")
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("FAIL")]
    failing, warned = line[line.rindex("(") + 1 : -1].split("; warn: ")
    assert proc.returncode == 1 and "not_mono" in failing.split(", "), line
    assert "too_long_clip" in warned.split(", ") and "too_long_clip" not in failing, line


def test_check_passes_exit_zero(tmp_path: Path) -> None:
    import numpy as np
    import soundfile as sf
    import soxr

    # Three real utterances of one speaker, joined with short gaps, 48 kHz PCM16 mono: a valid MiniMax clip.
    parts = []
    for name in ("resem_librispeech_3080-5032-0006.flac",):
        x, sr = sf.read(corpus_file("speech", name), dtype="float32")
        parts.append(soxr.resample(x, sr, 48000))
    clip = np.concatenate(parts).astype(np.float32)
    path = tmp_path / "clip.wav"
    sf.write(path, clip, 48000, subtype="PCM_16")
    proc = voiceprep("check", path, "-f", "minimax", "--no-dnsmos", "--json")
    (row,) = json_lines(proc.stdout)
    hard = [c for c in row["checks"] if c["group"] == "limit" and c["verdict"] == "fail"]
    assert hard == []
    assert proc.returncode == (1 if row["verdict"] == "fail" else 0)


def test_analyze_json_and_debug_traceback(tmp_path: Path) -> None:
    proc = voiceprep("analyze", SAMPLES / "alice" / "clipped.flac", "--json", "--no-dnsmos")
    assert proc.returncode == 0
    (row,) = json_lines(proc.stdout)
    assert row["status"] == "ok"
    assert row["metrics"]["clipped_ratio"] > 0.005
    broken = voiceprep("analyze", SAMPLES / "alice" / "broken.m4a", "--no-dnsmos")
    assert broken.returncode == 1 and "decode_failed" in broken.stdout
    bad_option = voiceprep("analyze", SAMPLES / "alice" / "clipped.flac", "--channels", "left")
    assert bad_option.returncode == 2 and "Traceback" not in bad_option.stderr


def test_debug_shows_the_error_itself_and_is_forgotten_by_the_next_command() -> None:
    from pipeline.errors import SpecError

    with pytest.raises(SpecError, match="no-such-family"):  # the traceback's error, not one line
        voiceprep("--debug", "families", "show", "no-such-family")
    after = voiceprep("families", "show", "no-such-family")
    assert after.returncode == 2 and after.stderr.count("\n") == 1 and "no-such-family" in after.stderr


def test_run_with_an_invalid_config_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("jobs: -3\n")
    proc = voiceprep("run", SAMPLES / "bob", "--out", tmp_path / "out", "--config", bad)
    assert proc.returncode == 2  # as for `submit --config` and as the README says
    assert proc.stderr.strip().count("\n") == 0 and "jobs" in proc.stderr
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("top_candidate: 4\n")  # misspelt key: strict config
    proc = voiceprep("run", SAMPLES / "bob", "--out", tmp_path / "out", "--config", unknown)
    assert proc.returncode == 2 and "top_candidate" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_analyze_runs_dnsmos_on_short_files_unless_told_not_to() -> None:
    take = SAMPLES / "bob" / "takes" / "take_2.m4a"  # 4.3 s: well under the 2 minutes
    (scored,) = json_lines(voiceprep("analyze", take, "--json").stdout)
    assert 1.0 <= scored["metrics"]["dnsmos_ovrl"] <= 5.0
    (skipped,) = json_lines(voiceprep("analyze", take, "--json", "--no-dnsmos").stdout)
    assert skipped["metrics"]["dnsmos_ovrl"] is None
    assert skipped["null_reasons"]["dnsmos_ovrl"].startswith("not_measured")


def test_old_option_spellings_still_work_but_are_not_advertised() -> None:
    clip = SAMPLES / "alice" / "clipped.flac"
    new = voiceprep("analyze", clip, "--json", "--no-dnsmos", "--channel-strategy", "first")
    old = voiceprep("analyze", clip, "--json", "--no-dnsmos", "--channels", "first")
    assert new.returncode == old.returncode == 0
    assert json_lines(new.stdout) == json_lines(old.stdout)
    help_text = voiceprep("analyze", "--help").stdout
    assert "--channel-strategy" in help_text and "--channels" not in help_text
    probe_new = voiceprep("probe", SAMPLES / "alice" / "clipped.flac", "--json", "--max-input", "1")
    probe_old = voiceprep("probe", SAMPLES / "alice" / "clipped.flac", "--json", "--max-duration", "1")
    assert probe_new.returncode == probe_old.returncode == 1
    assert json_lines(probe_new.stdout)[0]["reasons"] == json_lines(probe_old.stdout)[0]["reasons"]
    assert "--max-duration" not in voiceprep("probe", "--help").stdout


def test_report_takes_out_like_run_and_still_accepts_the_old_positional(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    row = {
        "path": "a/x.wav",
        "speaker": "a",
        "status": "failed",
        "reasons": ["decode_failed"],
        "message": "bad",
    }
    (out / "recordings.jsonl").write_text(json.dumps(row) + "\n")
    proc = voiceprep("report", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert (out / "report.html").is_file() and "a/x.wav" in (out / "report.html").read_text()
    (out / "report.html").unlink()
    old = voiceprep("report", out)
    assert old.returncode == 0, old.stderr
    assert (out / "report.html").is_file()
    usage = next(line for line in voiceprep("report", "--help").stdout.splitlines() if "Usage:" in line)
    assert usage.split()[-1] == "[OPTIONS]"  # the old positional OUT is accepted, not advertised


COMMANDS = [
    ["run"], ["check"], ["analyze"], ["probe"], ["report"], ["explain"], ["submit"], ["speak"], ["families"],
    ["families", "show"], ["voices", "list"], ["voices", "show"], ["voices", "delete"], ["voices", "sync"],
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_help_reads_like_the_readme(command: list[str]) -> None:
    text = voiceprep(*command, "--help").stdout
    assert "Usage:" in text
    assert f"Example: voiceprep {' '.join(command)}" in " ".join(text.split()), (
        "each command shows an example"
    )
    for noise in ("<bool>", "<str>", "<list[", "<path>", "[default: None]", "{paths}"):
        assert noise not in text, f"{' '.join(command)} --help shows {noise!r}"


def test_analyze_says_what_runs_and_pauses_count() -> None:
    """speech_s can be below longest_run_s (a run absorbs gaps under 0.5 s): the table says so beside them."""
    proc = voiceprep("analyze", SAMPLES / "bob" / "takes" / "take_1.m4a", "--no-dnsmos")
    assert proc.returncode == 0, proc.stderr
    assert "shorter gaps count as part of the run" in _analyze_row(proc.stdout, "longest_run_s")
    assert "gaps between words excluded" in _analyze_row(proc.stdout, "speech_s")


def _analyze_row(stdout: str, metric: str) -> str:
    """The text of one metric's row of the ``analyze`` table, its wrapped note lines joined."""
    lines = stdout.splitlines()
    first = next(k for k, line in enumerate(lines) if line.split("│")[0].strip() == metric)
    row = [lines[first]]
    for line in lines[first + 1 :]:
        if line.split("│")[0].strip():
            break
        row.append(line)
    return " ".join(" ".join(part.split("│")[-1].split()) for part in row)


def test_analyze_fits_a_100_column_terminal_and_names_a_shared_note_once() -> None:
    """The note column wraps within 100 columns (the output here is not a terminal: 160 wide); the three
    DNSMOS scores, not measured for one reason, give it once; reverb says it is a 0-1 score."""
    proc = voiceprep("analyze", SAMPLES / "bob" / "takes" / "take_1.m4a", "--no-dnsmos")
    assert proc.returncode == 0, proc.stderr
    assert max(len(line.rstrip()) for line in proc.stdout.splitlines()) <= 100
    assert proc.stdout.count("DNSMOS was off") == 1
    assert _analyze_row(proc.stdout, "dnsmos_ovrl").endswith("as dnsmos_sig")
    assert "0-1" in _analyze_row(proc.stdout, "reverb_score")


ILLEGAL = "Illegal Audio-MPEG-Header"


def test_decoder_chatter_is_a_note_in_check_and_analyze_never_raw(damaged_mp3: Path, zygote: Zygote) -> None:
    # Processes of their own (forks of the zygote): mpg123 writes to file descriptor 2, which only a
    # process's stderr shows.
    env = process_env()
    check = zygote.run(
        "check", damaged_mp3, "-f", "qwen-tts", "-f", "minimax", "--no-dnsmos", env=env, capture=True
    )
    analyze = zygote.run("analyze", damaged_mp3, "--no-dnsmos", env=env, capture=True)
    for proc in (check, analyze):
        assert proc["code"] in {0, 1}, proc["stderr"]
        assert ILLEGAL not in proc["stderr"]
        lines = [line for line in proc["stdout"].splitlines() if ILLEGAL in line]
        assert len(lines) == 1 and lines[0].startswith("  decoder notes: ")  # one line per file
    as_json = voiceprep("check", damaged_mp3, "-f", "qwen-tts", "-f", "minimax", "--no-dnsmos", "--json")
    rows = json_lines(as_json.stdout)
    assert len(rows) == 2 and all(ILLEGAL in row["decode_notes"][0]["message"] for row in rows)


def test_run_counts_recordings_with_decoder_notes_and_keeps_them_on_the_row(
    tmp_path: Path, damaged_mp3: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in" / "dave").mkdir(parents=True)
    damaged_mp3.rename(tmp_path / "in" / "dave" / "market.mp3")
    out = tmp_path / "out"
    proc = voiceprep("run", tmp_path / "in", "--out", out, "-f", "qwen-tts", "--jobs", "1")
    raw = capfd.readouterr()  # what reached file descriptors 1 and 2 directly (the decoders, the workers)
    assert proc.returncode == 0, proc.stderr
    assert "1 recording had decoder notes (see decode_notes in recordings.jsonl)" in proc.stdout
    assert ILLEGAL not in proc.stdout + proc.stderr + raw.out + raw.err
    (row,) = json_lines((out / "recordings.jsonl").read_text())
    assert row["decode_notes"][0]["message"] == f"Note: {ILLEGAL} 0x00000000 at offset 62694."
    assert row["decode_notes"][0]["count"] >= 1
    assert json.loads((out / "run.json").read_text())["counts"]["recordings_with_decode_notes"] == 1


def test_the_run_summary_reads_short_runs_in_minutes_and_seconds() -> None:
    from pipeline.rules.metrics import audio_length

    # A 15 s run printed "0.00 h of audio". The run summary and the report's header write it alike.
    assert [audio_length(s) for s in (9000.0, 900.0, 15.0, 43200.0)] == ["2.5 h", "15:00", "15 s", "12 h"]


def test_a_run_with_a_rejected_clip_names_the_explain_command_that_says_why(tmp_path: Path) -> None:
    """The summary counts in the singular for one (``1 recording``, ``1 clip``) and, when a clip is not ready,
    prints a ``voiceprep explain`` command that works as printed."""
    out = tmp_path / "out"
    proc = voiceprep("run", SAMPLES / "dave", "--out", out, "-f", "qwen-tts", "--jobs", "1")
    assert proc.returncode == 0, proc.stderr
    assert "1 recording (" in proc.stdout and "1 clip:" in proc.stdout
    (line,) = [line for line in proc.stdout.splitlines() if "voiceprep explain" in line]
    command = shlex.split(line.split(": ", 1)[1])
    assert command[:2] == ["voiceprep", "explain"]
    explained = voiceprep(*command[1:])
    assert explained.returncode == 0, explained.stderr
    assert "rejected" in explained.stdout and "qwen-tts" in explained.stdout


def test_check_says_an_unreadable_file_once_for_all_families(tmp_path: Path) -> None:
    """A file problem (missing, not audio) is the same for every family: one verdict line naming them all,
    the file named once; ``--json`` keeps one row per file and family."""
    text = tmp_path / "notes.txt"
    text.write_text("not a recording\n" * 20)
    for path in (tmp_path / "missing.wav", text):
        rows = json_lines(voiceprep("check", path, "-f", "qwen-tts", "-f", "minimax", "--json").stdout)
        assert [r["family"] for r in rows] == ["qwen-tts", "minimax"]
        (code,) = rows[0]["reasons"]
        assert rows[1]["reasons"] == [code] and code in ("not_found", "no_audio_stream", "decode_failed")
        proc = voiceprep("check", path, "-f", "qwen-tts", "-f", "minimax", "--no-dnsmos")
        assert proc.returncode == 1
        (verdict,) = [line for line in proc.stdout.splitlines() if line.startswith("FAIL")]
        assert "qwen-tts, minimax" in verdict and code in verdict
        assert proc.stdout.count(str(path)) == 1


def test_analyze_names_an_unreadable_file_once(tmp_path: Path) -> None:
    """``analyze``'s failure line names the file, then the reader's message without the file's name again
    (it printed ``x.wav: failed (decode_failed): x.wav: ...``), as ``check`` does; ``--json`` keeps it."""
    text = tmp_path / "notes.txt"
    text.write_text("not a recording\n" * 20)
    proc = voiceprep("analyze", text, "--no-dnsmos")
    assert proc.returncode == 1
    (line,) = [line for line in proc.stdout.splitlines() if "failed" in line]
    assert line.startswith(f"{text}: failed (") and proc.stdout.count(str(text)) == 1
    (row,) = json_lines(voiceprep("analyze", text, "--json", "--no-dnsmos").stdout)
    assert row["message"].startswith(f"{text}: ")


def test_python_m_pipeline_cli_is_the_voiceprep_command() -> None:
    """A checkout that is not installed runs as ``python -m pipeline.cli`` (it said "cannot be directly
    executed")."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "families"], capture_output=True, text=True, env=process_env()
    )
    assert proc.returncode == 0, proc.stderr
    assert "qwen-tts" in proc.stdout


def test_check_fails_a_recording_too_short_for_the_clip_run_makes_as_run_rejects_it(tmp_path: Path) -> None:
    """``check`` gave dave's 6.8 s note only a warning for qwen-tts (the vendor states no minimum) while
    ``run`` rejected it (qwen-tts clips are 10-20 s): a file too short alone for the family's clip fails in
    both, with the same reason code and hint."""
    from pipeline.errors import reason_hint

    note = SAMPLES / "dave" / "voice_note.m4a"
    (checked,) = json_lines(voiceprep("check", note, "-f", "qwen-tts", "--no-dnsmos", "--json").stdout)
    out = tmp_path / "out"
    assert voiceprep("run", note, "--out", out, "-f", "qwen-tts", "--jobs", "1").returncode == 0
    (clip,) = json_lines((out / "clips.jsonl").read_text())
    assert clip["status"] == "rejected" and "too_short" in clip["reasons"]
    assert checked["verdict"] == "fail"
    failing = [c for c in checked["checks"] if c["verdict"] == "fail"]
    assert [c["reason"] for c in failing] == ["too_short"]
    assert failing[0]["hint"] == reason_hint("too_short")
    assert checked["reasons"][0] == "too_short"


def test_a_piped_run_prints_a_plain_progress_line_per_recording_and_clip_on_stderr(tmp_path: Path) -> None:
    """With stderr not a terminal (a pipe, a log file) the progress bar is off; a run printed nothing until
    it ended. Now each finished recording and clip is one plain line on stderr, and stdout keeps only the
    summary."""
    import shutil

    (tmp_path / "in" / "bob").mkdir(parents=True)
    total = 3
    for n in range(1, total + 1):
        shutil.copy(SAMPLES / "bob" / "takes" / f"take_{n}.m4a", tmp_path / "in" / "bob")
    proc = voiceprep("run", tmp_path / "in", "--out", tmp_path / "out", "-f", "qwen-tts", "--jobs", "1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    analysed = [line for line in lines if line.startswith("analysed ")]
    assert [line.split()[1] for line in analysed] == [f"{i}/{total}" for i in range(1, total + 1)]
    assert any(line.startswith("clip 1/1: ") and "bob/qwen-tts" in line for line in lines), lines
    assert "\x1b[" not in proc.stderr  # plain text, no cursor moves or colours
    assert not any(line.startswith(("analysed ", "clip ")) for line in proc.stdout.splitlines())


def test_a_run_says_how_many_input_files_it_skipped_as_not_audio_and_records_them(tmp_path: Path) -> None:
    """A run ignored .txt and .csv files in its input without a word: the summary counts them by suffix and
    run.json records them (``inputs_not_audio``); the output folder's own files are not counted."""
    import shutil

    (tmp_path / "in" / "dave").mkdir(parents=True)
    shutil.copy(SAMPLES / "dave" / "voice_note.m4a", tmp_path / "in" / "dave")
    for name in ("dave/transcript.txt", "dave/notes.txt", "speakers.csv"):
        (tmp_path / "in" / name).write_text("not audio\n")
    out = tmp_path / "in" / "out"  # inside the input: its report and manifests must not count
    first = voiceprep("run", tmp_path / "in", "--out", out, "-f", "qwen-tts", "--jobs", "1")
    assert first.returncode == 0, first.stderr
    proc = voiceprep("run", tmp_path / "in", "--out", out, "-f", "qwen-tts", "--jobs", "1")
    assert proc.returncode == 0, proc.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["inputs_not_audio"] == {".csv": 1, ".txt": 2}
    (line,) = [line for line in proc.stdout.splitlines() if "not audio" in line]
    assert line.startswith("3 files skipped") and "2 .txt" in line and "1 .csv" in line


def test_an_unknown_family_on_the_command_line_suggests_the_name_meant() -> None:
    for command in (("check", SAMPLES / "dave"), ("families", "show")):
        proc = voiceprep(*command, *(["-f"] if command[0] == "check" else []), "qwen")
        assert proc.returncode == 2, proc.stdout + proc.stderr
        (line,) = proc.stderr.strip().splitlines()
        assert "did you mean qwen-tts?" in line and "configs/families" not in line
