"""The HTML report: built from hand-written manifests (known answers), from a real small run, and its parts.

Most tests build one synthetic run folder whose rows say exactly what the page must show: four
recordings (one real LibriSpeech file, a generated take under a speaker whose name needs escaping, two
unreadable files), five clips covering every status, and no ledger. Pages are parsed with the standard
library's HTML parser, never compared with an earlier output.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import numpy as np
import pytest
import soundfile as sf
from _corpus import corpus_file
from _samples import MEMO as PHONE_MEMO
from _samples import SAMPLES, cut
from _signals import tone

import pipeline.report
from pipeline.audio.io import probe
from pipeline.batch.manifest import ClipRow, RecordingRow, write_rows
from pipeline.errors import InvalidArgument
from pipeline.report import media, plots
from pipeline.report.build import build_report
from pipeline.report.data import counts, speaker_cards
from pipeline.report.results import load_run
from pipeline.rules.metrics import limit_text, seconds, value_text

ROOT = Path(__file__).resolve().parents[1]
MEMO = "resem_librispeech_1246-124548-0000.flac"  # 14.38 s of read speech, 16 kHz mono

WEIRD = '<b>"Zoë" & co</b>'  # a speaker name that must be escaped everywhere
WEIRD_TAKE = f"{WEIRD}/take <1>.wav"
WEIRD_DIR = "b_Zoë_co_b"  # its clip folder (pipeline.batch.runner.safe_name)


# --------------------------------------------------------------------------------------------- parsing


class Node:
    """One element of a parsed page."""

    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node] = []
        self.parts: list[str] = []

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def text(self) -> str:
        return "".join(self.parts + [c.text() for c in self.children])

    def iter(self) -> list[Node]:
        out = [self]
        for c in self.children:
            out += c.iter()
        return out

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Node]:
        return [
            n
            for n in self.iter()[1:]
            if (tag is None or n.tag == tag)
            and (cls is None or cls in n.classes)
            and all(n.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def find(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Node:
        found = self.find_all(tag, cls, **attrs)
        assert found, f"no <{tag} class={cls} {attrs}>"
        return found[0]


VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.cur = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.cur.children.append(Node(tag, {k: v or "" for k, v in attrs}, self.cur))

    def handle_endtag(self, tag: str) -> None:
        node = self.cur
        while node.parent is not None and node.tag != tag:
            node = node.parent
        if node.parent is not None:
            self.cur = node.parent

    def handle_data(self, data: str) -> None:
        self.cur.parts.append(data)


def parse(path: Path) -> Node:
    builder = _TreeBuilder()
    builder.feed(path.read_text(encoding="utf-8"))
    return builder.root


# --------------------------------------------------------------------------------------------- a run


def _tone(path: Path, seconds: float, *, rate: int = 24000, freq: float = 440.0, amp: float = 0.3) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(freq, seconds, rate, amp, dtype=np.float32), rate, subtype="PCM_16")
    return path


def _check(rule: str, value: Any, limit: Any, op: str, unit: str, verdict: str, reason: str | None = None,
           hint: str | None = None, group: str = "gate") -> dict[str, Any]:  # fmt: skip
    return {
        "rule": rule, "group": group, "value": value, "limit": limit, "op": op, "unit": unit,
        "verdict": verdict, "reason": reason, "message": f"{rule} {value} ({verdict})", "hint": hint,
    }  # fmt: skip


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_run(tmp: Path) -> Path:
    """A run folder written by hand; every value below is what the page must show."""
    src = tmp / "in"
    out = tmp / "out"
    (src / "ann").mkdir(parents=True)
    shutil.copyfile(corpus_file("speech", MEMO), src / "ann" / "memo.flac")
    _tone(src / WEIRD_TAKE, 3.0, rate=16000)
    out.mkdir()
    recordings = [
        RecordingRow(
            path="ann/memo.flac", speaker="ann", sha256="a" * 64, status="ok",
            probe={"format": "flac", "sample_rate": 16000, "channels": 1, "duration_s": 14.38},
            metrics={"duration_s": 14.38, "snr_db": 12.0, "reverb_score": 0.1, "clipped_ratio": 0.0,
                     "bandwidth_hz": 7800.0, "bandwidth_class": "wide", "lufs": -23.0, "dnsmos_ovrl": None,
                     "pauses": [[5.0, 7.5], [9.0, 9.6]], "clipped_events": [1.0]},
            null_reasons={"dnsmos_ovrl": "not_measured: DNSMOS was not requested"},
        ),
        RecordingRow(path="ann/broken.m4a", speaker="ann", status="failed", reasons=["decode_failed"],
                     message="neither libsndfile nor FFmpeg recognise the data"),
        RecordingRow(path=WEIRD_TAKE, speaker=WEIRD, sha256="b" * 64, status="ok",
                     probe={"duration_s": 3.0}, metrics={"duration_s": 3.0, "pauses": []}),
        RecordingRow(path="dan/only.mp3", speaker="dan", status="failed", reasons=["empty"],
                     message="no samples could be decoded"),
    ]  # fmt: skip
    ann_ready = _tone(out / "clips" / "ann" / "cosyvoice.wav", 4.0)
    ann_rejected = _tone(out / "rejected" / "ann" / "qwen-tts.wav", 4.0, freq=220.0)
    ann_submitted = _tone(out / "clips" / "ann" / "minimax.wav", 5.0, freq=330.0)
    weird_ready = _tone(out / "clips" / WEIRD_DIR / "cosyvoice.wav", 3.0, freq=550.0)

    def plan(path: str, start: float, end: float, source: Path) -> dict[str, Any]:
        return {
            "pieces": [{"path": path, "source": str(source), "start_s": start, "end_s": end}],
            "duration_s": end - start,
            "score": 0.8,
            "measures": {"snr_db": 20.5, "dnsmos_ovrl": 3.1, "reverb_score": 0.12},
            "assembled": False,
        }

    memo = src / "ann" / "memo.flac"
    clips = [
        ClipRow(
            speaker="ann", family="cosyvoice", status="ready", reasons=["low_quality"],
            clip="clips/ann/cosyvoice.wav", segments=[{"path": "ann/memo.flac", "start_s": 2.0, "end_s": 6.0}],
            duration_s=4.0, sample_rate=24000, metrics={"bandwidth_hz": 7800.0, "snr_db": 30.0},
            checks=[
                _check("max_duration_s", 4.0, 60.0, "<=", "s", "pass", group="limit"),
                _check("gate:snr_db", 30.0, 25.0, ">=", "dB", "pass"),
                _check("gate:dnsmos_ovrl", 2.9, 3.0, ">=", "", "warn", "low_quality", "re-record in better conditions"),
            ],
            alternatives=[plan("ann/memo.flac", 8.0, 12.0, memo)],
            plan=plan("ann/memo.flac", 2.0, 6.0, memo), clip_sha256=_sha(ann_ready),
        ),
        ClipRow(
            speaker="ann", family="qwen-tts", status="rejected", reasons=["low_snr"],
            message="every candidate failed its re-check; the best is kept under rejected/",
            clip="rejected/ann/qwen-tts.wav", segments=[{"path": "ann/memo.flac", "start_s": 2.0, "end_s": 6.0}],
            duration_s=4.0, sample_rate=24000,
            checks=[_check("gate:snr_db", 12.0, 15.0, ">=", "dB", "fail", "low_snr",
                           "record in a quieter place, closer to the mic")],
            clip_sha256=_sha(ann_rejected),
        ),
        ClipRow(
            speaker="ann", family="minimax", status="submitted", clip="clips/ann/minimax.wav",
            segments=[{"path": "ann/memo.flac", "start_s": 1.0, "end_s": 6.0}], duration_s=5.0,
            checks=[_check("gate:snr_db", 31.0, 25.0, ">=", "dB", "pass")],
            voice_id="vp-ann-001", target_model="speech-2.8-hd", clip_sha256=_sha(ann_submitted),
        ),
        ClipRow(
            speaker=WEIRD, family="cosyvoice", status="ready", clip=f"clips/{WEIRD_DIR}/cosyvoice.wav",
            segments=[{"path": WEIRD_TAKE, "start_s": 0.2, "end_s": 2.8}], duration_s=3.0,
            checks=[_check("gate:snr_db", 40.0, 25.0, ">=", "dB", "pass")],
            plan=plan(WEIRD_TAKE, 0.2, 2.8, src / WEIRD_TAKE), clip_sha256=_sha(weird_ready),
        ),
        ClipRow(speaker="dan", family="cosyvoice", status="failed", reasons=["empty"],
                message="no recording of this speaker could be read"),
    ]  # fmt: skip
    write_rows(out / "recordings.jsonl", recordings)
    write_rows(out / "clips.jsonl", clips)
    run_json = {"families": ["cosyvoice", "qwen-tts", "minimax"], "input": str(src), "seconds": 1.5}
    (out / "run.json").write_text(json.dumps(run_json))
    return out


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Node]:
    """The synthetic run with its report built once (tests must not change it)."""
    out = make_run(tmp_path_factory.mktemp("synthetic"))
    page = build_report(out)
    return out, parse(page)


def _card(doc: Node, speaker: str) -> Node:
    cards = [
        c for c in doc.find_all("details", cls="speaker-card") if c.attrs["data-speaker"] == speaker.lower()
    ]
    assert len(cards) == 1, speaker
    return cards[0]


def _block(doc: Node, speaker: str, family: str) -> Node:
    return _card(doc, speaker).find("section", cls="clip-block", data_family=family)


# --------------------------------------------------------------------------------------------- the page


def test_header_counts_come_from_the_manifests(synthetic: tuple[Path, Node]) -> None:
    _, doc = synthetic
    counts = {
        n.attrs["id"]: n.text() for n in doc.find_all("b") if n.attrs.get("id", "").startswith("count-")
    }
    assert counts == {
        "count-recordings": "4",
        "count-hours": "17.4 s",  # 14.38 s + 3 s of readable audio
        "count-speakers": "3",
        "count-ready": "2",
        "count-submitted": "1",
        "count-rejected": "1",
        "count-failed": "1",
    }
    table = {
        row.attrs["data-family"]: {td.attrs["data-status"]: int(td.text()) for td in row.find_all("td")}
        for row in doc.find("table", cls="family-counts").find_all("tr")
        if "data-family" in row.attrs
    }
    assert table["cosyvoice"] == {"ready": 2, "submitted": 0, "rejected": 0, "failed": 1}
    assert table["qwen-tts"] == {"ready": 0, "submitted": 0, "rejected": 1, "failed": 0}
    assert table["minimax"] == {"ready": 0, "submitted": 1, "rejected": 0, "failed": 0}


def test_matrix_cells_show_status_verdict_and_top_reason_and_link_to_the_clip(
    synthetic: tuple[Path, Node],
) -> None:
    _, doc = synthetic
    rows = {
        r.attrs["data-speaker"]: r
        for r in doc.find("table", cls="matrix").find_all("tr")
        if "data-speaker" in r.attrs
    }
    assert set(rows) == {"ann", WEIRD.lower(), "dan"}
    cells = {td.attrs["data-family"]: td for td in rows["ann"].find_all("td") if "data-family" in td.attrs}
    assert (
        "status-cell-ready" in cells["cosyvoice"].classes
        and "verdict-cell-warn" in cells["cosyvoice"].classes
    )
    assert cells["cosyvoice"].find(cls="top-reason").text() == "low_quality"
    assert "status-cell-rejected" in cells["qwen-tts"].classes
    assert cells["qwen-tts"].find(cls="top-reason").text() == "low_snr"
    assert "status-cell-submitted" in cells["minimax"].classes
    target = cells["qwen-tts"].find("a").attrs["href"]
    assert target == "#" + _block(doc, "ann", "qwen-tts").attrs["id"]
    # dan has only a cosyvoice row: the other families are empty cells
    assert [td.text().strip() for td in rows["dan"].find_all("td", cls="none")] == ["—", "—"]


def test_every_speaker_has_a_card_with_one_block_per_clip_row(synthetic: tuple[Path, Node]) -> None:
    _, doc = synthetic
    cards = doc.find_all("details", cls="speaker-card")
    assert sorted(c.find(cls="spk-name").text() for c in cards) == sorted(["ann", WEIRD, "dan"])
    assert [b.attrs["data-family"] for b in _card(doc, "ann").find_all("section", cls="clip-block")] == [
        "cosyvoice",
        "qwen-tts",
        "minimax",
    ]
    assert "worst-rejected" in _card(doc, "ann").classes
    assert "worst-failed" in _card(doc, "dan").classes


def test_badges_carry_the_verdict_of_each_check(synthetic: tuple[Path, Node]) -> None:
    _, doc = synthetic
    badges = _block(doc, "ann", "cosyvoice").find_all("span", cls="metric")
    by_label = {b.find(cls="m-label").text(): b for b in badges}
    # gates are badges, a passing hard limit outside the chosen few is not
    assert set(by_label) == {"SNR", "DNSMOS OVRL"}
    assert "verdict-pass" in by_label["SNR"].classes
    assert by_label["SNR"].find("b").text() == "30 dB"
    assert by_label["SNR"].find(cls="m-limit").text() == "≥ 25 dB"
    assert "verdict-warn" in by_label["DNSMOS OVRL"].classes
    # hovering a gate says what the metric means for the clone, not only its value
    assert "a clone copies the noise and distortion" in by_label["DNSMOS OVRL"].attrs["title"]
    rejected = _block(doc, "ann", "qwen-tts")
    assert ["verdict-fail" in b.classes for b in rejected.find_all("span", cls="metric")] == [True]
    checks = rejected.find("details", cls="checks")
    assert "open" in checks.attrs  # a failing clip shows its checks open
    assert "record in a quieter place, closer to the mic" in checks.text()


def test_reasons_show_message_and_fix(synthetic: tuple[Path, Node]) -> None:
    _, doc = synthetic
    items = _block(doc, "ann", "qwen-tts").find("ul", cls="reasons").find_all("li")
    assert len(items) == 1 and "verdict-fail" in items[0].classes
    assert "background noise is high relative to speech" in items[0].text()
    assert "Fix: record in a quieter place" in items[0].text()
    warn = _block(doc, "ann", "cosyvoice").find("ul", cls="reasons").find("li")
    assert "verdict-warn" in warn.classes


def test_audio_players_link_the_clips_relative_to_the_page(synthetic: tuple[Path, Node]) -> None:
    out, doc = synthetic
    srcs = {
        (b.attrs["data-family"], _speaker_of(b)): [
            a.attrs["src"] for a in b.find_all("audio", cls="clip-audio")
        ]
        for b in doc.find_all("section", cls="clip-block")
    }
    assert srcs[("cosyvoice", "ann")] == ["clips/ann/cosyvoice.wav"]
    assert srcs[("qwen-tts", "ann")] == ["rejected/ann/qwen-tts.wav"]
    assert srcs[("cosyvoice", WEIRD)] == [f"clips/{quote(WEIRD_DIR)}/cosyvoice.wav"]  # a URL: ë encoded
    assert srcs[("cosyvoice", "dan")] == []  # failed: no clip
    for audio in doc.find_all("audio"):
        assert (out / unquote(audio.attrs["src"])).is_file()


def _speaker_of(node: Node) -> str:
    while "speaker-card" not in node.classes:
        assert node.parent is not None
        node = node.parent
    return node.find(cls="spk-name").text()


def test_source_excerpt_is_the_used_span_with_context(synthetic: tuple[Path, Node]) -> None:
    out, doc = synthetic
    excerpts = _block(doc, "ann", "cosyvoice").find_all("audio", cls="source-audio")
    assert len(excerpts) == 1
    src = unquote(excerpts[0].attrs["src"])
    assert src.startswith("report_files/src-") and src.endswith(".mp3")
    info = probe(out / src)
    # segment 2-6 s of a 14.38 s file, 3 s of context each side, clamped at 0: 0-9 s
    assert info.duration_s == pytest.approx(9.0, abs=0.06)
    assert info.sample_rate == 16000 and info.channels == 1
    # the same span in another family's clip reuses the same file
    again = _block(doc, "ann", "qwen-tts").find("audio", cls="source-audio").attrs["src"]
    assert again == excerpts[0].attrs["src"]


def test_waveform_shows_pauses_clipping_and_lanes_linking_to_clips(synthetic: tuple[Path, Node]) -> None:
    _, doc = synthetic
    figure = next(
        f for f in _card(doc, "ann").find_all("figure", cls="source") if "ann/memo.flac" in f.text()
    )
    svg = figure.find("svg", cls="waveform")
    pauses = svg.find_all("rect", cls="pause")
    assert len(pauses) == 2
    assert ["pause-long" in p.classes for p in pauses] == [True, False]  # 2.5 s is over 2 s, 0.6 s is not
    assert len(svg.find_all("line", cls="clip-tick")) == 1
    links = {a.attrs["href"] for a in svg.find_all("a")}
    assert links == {"#" + _block(doc, "ann", f).attrs["id"] for f in ("cosyvoice", "qwen-tts", "minimax")}
    assert len(svg.find_all("rect", cls="use-alt")) == 1  # cosyvoice's alternative at 8-12 s
    lanes = {r.find("title").text().split()[0]: r.classes for r in svg.find_all("rect", cls="use-chosen")}
    assert "lane-rejected" in lanes["qwen-tts"] and "lane-submitted" in lanes["minimax"]
    assert svg.find("path", cls="wave").attrs["d"].startswith("M")


def test_recording_metrics_are_coloured_against_the_family_gates(synthetic: tuple[Path, Node]) -> None:
    _, doc = synthetic
    row = next(
        r
        for r in _card(doc, "ann").find("table", cls="recordings").find_all("tr")
        if "ann/memo.flac" in r.text()
    )
    cells = row.find_all("td")
    snr = next(c for c in cells if c.text() == "12 dB")
    # 12 dB is under the fail threshold of the cosyvoice spec's SNR gate (15 dB)
    assert "verdict-fail" in snr.classes and "cosyvoice" in snr.attrs["title"]
    # No recording of ann has a DNSMOS score (a run scores only windows): no column of dashes, one note.
    table = _card(doc, "ann").find("table", cls="recordings")
    headers = [h.text() for h in table.find("thead").find_all("th")]
    assert "DNSMOS" not in headers and len(cells) == len(headers)
    assert "DNSMOS: not measured on whole recordings" in _card(doc, "ann").text()
    # Reverb is a 0-1 score with no unit: its header says so.
    assert headers[cells.index(snr) + 1] == "reverb (0-1)"


def test_failed_recordings_are_listed_with_reason_message_and_hint(synthetic: tuple[Path, Node]) -> None:
    _, doc = synthetic
    rows = doc.find("section", id="failed").find_all("tr", cls="failed-row")
    got = {r.find("td", cls="path").text(): r.text() for r in rows}
    assert set(got) == {"ann/broken.m4a", "dan/only.mp3"}
    assert "decode_failed" in got["ann/broken.m4a"]
    assert "neither libsndfile nor FFmpeg recognise the data" in got["ann/broken.m4a"]
    assert "re-export the recording from its source" in got["ann/broken.m4a"]


def test_voice_id_from_clips_jsonl_is_shown_when_there_is_no_ledger(synthetic: tuple[Path, Node]) -> None:
    _, doc = synthetic
    voices = _block(doc, "ann", "minimax").find("table", cls="voices")
    assert "vp-ann-001" in voices.text() and "from clips.jsonl" in voices.text()
    assert "speech-2.8-hd" in voices.text()


def test_everything_from_data_is_escaped(synthetic: tuple[Path, Node]) -> None:
    out, doc = synthetic
    raw = (out / "report.html").read_text(encoding="utf-8")
    assert WEIRD not in raw and "<1>" not in raw
    assert "&lt;b&gt;&#34;Zoë&#34; &amp; co&lt;/b&gt;" in raw
    assert _card(doc, WEIRD).find(cls="spk-name").text() == WEIRD
    figure = _card(doc, WEIRD).find("figure", cls="source")
    assert figure.find(cls="path").text() == WEIRD_TAKE


def test_page_is_self_contained(synthetic: tuple[Path, Node]) -> None:
    out, doc = synthetic
    raw = (out / "report.html").read_text(encoding="utf-8")
    assert "http://" not in raw and "https://" not in raw
    for node in doc.iter():
        for attr in ("src", "href", "xlink:href"):
            value = node.attrs.get(attr)
            if value is None:
                continue
            assert value.startswith(("#", "data:")) or not re.match(r"^[a-z][a-z0-9+.-]*:", value), value
    assert not doc.find_all("link", rel="stylesheet") and all(
        "src" not in s.attrs for s in doc.find_all("script")
    )


def test_content_security_policy_allows_exactly_the_inline_script(synthetic: tuple[Path, Node]) -> None:
    _, doc = synthetic
    csp = doc.find("meta", http_equiv="Content-Security-Policy").attrs["content"]
    scripts = doc.find_all("script")
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].text().encode("utf-8")).digest()).decode()
    assert f"'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp and "img-src data:" in csp


def test_same_clip_bytes_are_drawn_once(tmp_path: Path) -> None:
    out = make_run(tmp_path)
    rows = [json.loads(line) for line in (out / "clips.jsonl").read_text().splitlines()]
    copy = dict(rows[0], family="qwen-tts", status="ready", clip="clips/ann/qwen-tts.wav", reasons=[])
    shutil.copyfile(out / "clips/ann/cosyvoice.wav", out / "clips/ann/qwen-tts.wav")
    rows[1] = copy
    write_rows(out / "clips.jsonl", rows)
    doc = parse(build_report(out))
    first, second = _block(doc, "ann", "cosyvoice"), _block(doc, "ann", "qwen-tts")
    assert len(first.find_all("svg", cls="spectrogram")) == 1
    assert second.find_all("svg", cls="spectrogram") == []
    assert second.find("a").attrs["href"] == "#" + first.attrs["id"]
    assert second.find("audio", cls="clip-audio").attrs["src"] == "clips/ann/qwen-tts.wav"


def test_ledger_voices_are_shown_with_their_status(tmp_path: Path) -> None:
    from pipeline.enroll.ledger import Ledger, VoiceRecord

    out = make_run(tmp_path)
    row = next(
        json.loads(line) for line in (out / "clips.jsonl").read_text().splitlines() if '"minimax"' in line
    )
    with Ledger(out / "voices.sqlite") as ledger:
        rec = ledger.begin(VoiceRecord(
            provider="minimax", base_url="http://127.0.0.1:1", family="minimax", target_model="speech-2.8-hd",
            name="annvoice", clip_sha256=row["clip_sha256"], clip_path=row["clip"], speaker="ann",
        ))  # fmt: skip
        ledger.update(rec.id, status="ready", voice_id="vp-ann-001")
        older = ledger.begin(VoiceRecord(
            provider="minimax", base_url="http://127.0.0.1:1", family="minimax", target_model="speech-2.8-hd",
            name="annold", clip_sha256="0" * 64, speaker="ann",
        ))  # fmt: skip
        ledger.update(older.id, status="gone", voice_id="vp-ann-000")
    raw = build_report(out).read_text(encoding="utf-8")
    doc = parse(out / "report.html")
    rows = _block(doc, "ann", "minimax").find("table", cls="voices").find_all("tr", cls="voice")
    got = {r.find("code").text(): r for r in rows}
    assert set(got) == {"vp-ann-001", "vp-ann-000"}
    assert got["vp-ann-001"].find(cls="voice-status").text() == "ready"
    assert "this clip" in got["vp-ann-001"].text() and "an earlier clip" in got["vp-ann-000"].text()
    assert "from clips.jsonl" not in _block(doc, "ann", "minimax").text()
    assert "127.0.0.1" not in raw  # the provider's base URL is not shown


def test_report_elsewhere_links_back_into_the_run(tmp_path: Path) -> None:
    out = make_run(tmp_path)
    (tmp_path / "pages").mkdir()
    page = build_report(out, dest=tmp_path / "pages" / "r.html")
    assert not (out / "report.html").exists()
    doc = parse(page)
    audio = _block(doc, "ann", "cosyvoice").find_all("audio")
    assert [a.attrs["src"].split("/")[:2] for a in audio] == [["..", "out"], ["..", "out"]]
    for a in audio:
        assert (page.parent / unquote(a.attrs["src"])).is_file()


def test_rebuild_removes_stale_excerpts_only(tmp_path: Path) -> None:
    out = make_run(tmp_path)
    build_report(out)
    files = out / "report_files"
    kept = sorted(p.name for p in files.iterdir())
    (files / "src-0000000000deadbeef00.mp3").write_bytes(b"old")
    (files / "notes.txt").write_text("mine")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    killed_mid_write = f".{kept[0]}.{int(dead.stdout)}-0123456789ab.tmp"  # a build killed mid-write
    (files / killed_mid_write).write_bytes(b"half an excerpt")
    (files / f".{kept[0]}.{os.getppid()}-0123456789ab.tmp").write_bytes(b"a live writer's")
    build_report(out)
    assert sorted(p.name for p in files.iterdir()) == sorted(
        [*kept, "notes.txt", f".{kept[0]}.{os.getppid()}-0123456789ab.tmp"]
    )


def test_many_players_are_not_preloaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = make_run(tmp_path)
    preloads = {
        a.attrs["preload"] for a in parse(build_report(out)).find_all("audio") if "preload" in a.attrs
    }
    assert preloads == {"metadata"}
    monkeypatch.setattr(pipeline.report.build, "PRELOAD_LIMIT", 2)
    preloads = {a.attrs["preload"] for a in parse(build_report(out)).find_all("audio")}
    assert preloads == {"none"}


def test_missing_sources_and_clips_become_notes(tmp_path: Path) -> None:
    out = make_run(tmp_path)
    shutil.rmtree(tmp_path / "in")
    (out / "clips" / "ann" / "cosyvoice.wav").unlink()
    doc = parse(build_report(out))
    block = _block(doc, "ann", "cosyvoice")
    assert block.find_all("audio") == []
    assert "clips/ann/cosyvoice.wav is missing" in block.text()
    assert "source ann/memo.flac not found" in block.text()
    assert "no longer where the run read it" in _card(doc, "ann").text()


def test_bad_arguments_name_the_value(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="does not exist"):
        build_report(tmp_path / "nope")
    with pytest.raises(InvalidArgument, match="not a voiceprep run folder"):
        build_report(tmp_path)
    out = make_run(tmp_path)
    with pytest.raises(InvalidArgument, match="its folder does not exist"):
        build_report(out, dest=tmp_path / "missing" / "r.html")


def test_speaker_cards_read_no_audio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.audio.io as io

    out = make_run(tmp_path)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("load_run() and speaker_cards() must not read audio")

    monkeypatch.setattr(io, "AudioReader", refuse)
    monkeypatch.setattr(io, "read", refuse)
    res = load_run(out)
    speakers = speaker_cards(res)
    assert [s.name for s in speakers] == sorted(["ann", WEIRD, "dan"])
    assert counts(res, speakers)["by_status"] == {"ready": 2, "rejected": 1, "submitted": 1, "failed": 1}


# --------------------------------------------------------------------------------------------- a real run


def test_report_of_a_real_run_matches_its_manifests(tmp_path: Path) -> None:
    from pipeline.batch.config import load_config
    from pipeline.batch.manifest import read_rows
    from pipeline.batch.runner import run

    src = tmp_path / "in" / "alice"
    cut(PHONE_MEMO, src / "phone_memo.m4a", 12.5)  # a 12 s clip: a quick DNSMOS re-check
    shutil.copyfile(SAMPLES / "alice" / "broken.m4a", src / "broken.m4a")
    out = tmp_path / "out"
    run(
        tmp_path / "in",
        out,
        families=["cosyvoice"],
        config=load_config(slow_measures=False),
        executor="serial",
    )
    doc = parse(build_report(out))
    (clip,) = read_rows(out / "clips.jsonl")
    block = _block(doc, "alice", "cosyvoice")
    assert f"status-block-{clip['status']}" in block.classes
    assert block.find("audio", cls="clip-audio").attrs["src"] == clip["clip"]
    checks = block.find("table", cls="checks-table").find_all("tr")[1:]
    assert len(checks) == len(clip["checks"])
    assert [("check-" + c["verdict"]) in r.classes for c, r in zip(clip["checks"], checks, strict=True)] == [
        True
    ] * len(checks)
    (seg,) = clip["segments"]
    lane = _card(doc, "alice").find("svg", cls="waveform").find("rect", cls="use-chosen")
    assert seg["start_s"] < seg["end_s"] and lane.find("title").text().startswith("cosyvoice clip:")
    assert [r.find("td", cls="path").text() for r in doc.find_all("tr", cls="failed-row")] == [
        "alice/broken.m4a"
    ]


# --------------------------------------------------------------------------------------------- the parts


def test_envelope_holds_min_and_max_per_column(tmp_path: Path) -> None:
    rate = 8000
    x = np.concatenate([np.full(rate, 0.25), np.full(rate, -0.5)]).astype(np.float32)
    path = tmp_path / "steps.wav"
    sf.write(path, x, rate, subtype="FLOAT")
    lo, hi = media.envelope(path, duration_s=2.0, columns=4)
    np.testing.assert_allclose(hi, [0.25, 0.25, -0.5, -0.5])
    np.testing.assert_allclose(lo, [0.25, 0.25, -0.5, -0.5])


def test_envelope_of_regions_leaves_the_rest_unread(tmp_path: Path) -> None:
    rate = 8000
    x = np.zeros(30 * rate, dtype=np.float32)
    x[10 * rate : 12 * rate] = 0.5
    path = tmp_path / "long.wav"
    sf.write(path, x, rate, subtype="FLOAT")
    _, hi = media.envelope(path, duration_s=30.0, columns=30, regions=[(9.0, 13.0)])
    assert np.isnan(hi[:9]).all() and np.isnan(hi[13:]).all()
    np.testing.assert_allclose(hi[9:13], [0.0, 0.5, 0.5, 0.0])


def test_regions_for_long_sources_are_widened_and_merged() -> None:
    assert media.regions_for(200.0, [(10.0, 20.0)]) is None
    assert media.regions_for(1000.0, [(100.0, 110.0), (112.0, 120.0), (500.0, 510.0)]) == [
        (97.0, 123.0),
        (497.0, 513.0),
    ]
    assert media.regions_for(1000.0, [(0.5, 2.0)]) == [(0.0, 5.0)]


def test_excerpt_span_adds_context_and_caps_the_length() -> None:
    assert media.excerpt_span(2.0, 6.0, 14.38) == (0.0, 9.0)
    assert media.excerpt_span(10.0, 12.0, 13.0) == (7.0, 13.0)
    start, end = media.excerpt_span(100.0, 400.0, 500.0)
    assert (start, end) == (99.0, 99.0 + media.EXCERPT_MAX_S)


def test_excerpt_of_a_48k_stereo_source_is_32k_stereo_and_keeps_the_band(tmp_path: Path) -> None:
    """Faster sources are encoded at :data:`media.EXCERPT_RATE`: both channels kept, a 6 kHz tone in the
    second channel still there at its level, the first channel's silence still silence."""
    rate = 48000
    voice = tone(6000.0, 4.0, rate, 0.5)
    stereo = np.stack([np.zeros_like(voice), voice], axis=1).astype(np.float32)
    source = tmp_path / "src.wav"
    sf.write(source, stereo, rate)
    target = media.write_excerpt(source, tmp_path / "src-x.mp3", start_s=0.5, end_s=3.5)
    info = probe(target)
    assert info.sample_rate == media.EXCERPT_RATE and info.channels == 2
    assert info.duration_s == pytest.approx(3.0, abs=0.06)
    from pipeline.audio.io import read

    data, _ = read(target)
    middle = data[len(data) // 4 : 3 * len(data) // 4]
    assert float(np.sqrt(np.mean(middle[:, 1] ** 2))) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)
    assert float(np.max(np.abs(middle[:, 0]))) < 0.01


def test_spectrogram_puts_a_tone_in_its_band(tmp_path: Path) -> None:
    path = _tone(tmp_path / "tone.wav", 2.0, rate=24000, freq=3100.0, amp=0.5)
    db, rate, duration = media.spectrogram(path, columns=50, rows=64)
    assert db.shape == (64, 50) and rate == 24000 and duration == pytest.approx(2.0)
    # 64 bands of 187.5 Hz: 3100 Hz lies in band 16 (3000-3187.5 Hz)
    assert set(np.argmax(db, axis=0).tolist()) == {16}


def test_waveform_svg_escapes_and_links() -> None:
    uses = [
        {"family": "fam<1>", "kind": "chosen", "rank": 0, "start_s": 1.0, "end_s": 2.0},
        {"family": "fam<1>", "kind": "alternative", "rank": 1, "start_s": 3.0, "end_s": 4.0},
    ]
    svg = str(
        plots.waveform_svg(
            None, duration_s=5.0, families=["fam<1>"], uses=uses, anchors={"fam<1>": 'x"y'}, label="a<b"
        )
    )
    assert "fam<1>" not in svg and "fam&lt;1&gt;" in svg
    assert 'href="#x&#34;y"' in svg and 'aria-label="a&lt;b"' in svg
    assert svg.count('class="use use-chosen"') == 1 and svg.count('class="use use-alt"') == 1


def test_histogram_svg_is_inline_ready_and_url_free() -> None:
    svg = str(
        plots.histogram_svg(
            [(20.0, "ready"), (30.0, "ready"), (10.0, "rejected")],
            metric="snr_db",
            title="SNR",
            gates={25.0: ["a"]},
        )
    )
    assert svg.startswith('<svg class="histogram"') and svg.rstrip().endswith("</svg>")
    assert "http" not in svg and "<metadata" not in svg and "<?xml" not in svg
    empty = str(plots.histogram_svg([], metric="snr_db", title="SNR"))
    assert "no values" in empty and "<svg" not in empty


@pytest.mark.parametrize(
    ("rule", "value", "unit", "text"),
    [
        ("gate:snr_db", 43.2806, "dB", "43.28 dB"),
        ("gate:clipped_ratio", 0.0005, "", "0.05 %"),
        ("gate:clipped_ratio", 0.02, "", "2 %"),
        ("gate:bandwidth_hz", 10500.0, "Hz", "10.5 kHz"),
        ("sample_rate", 24000, "Hz", "24 kHz"),
        ("max_bytes", 1043900, "bytes", "1.04 MB"),
        ("recommended_duration_s", 16.31, "s", "16.3 s"),
        ("gate:dnsmos_ovrl", 2.996, "", "2.996"),
        ("format", "wav", "", "wav"),
        ("channels", [1, 2], "", "1, 2"),
    ],
)
def test_values_are_written_for_people(rule: str, value: Any, unit: str, text: str) -> None:
    assert value_text(rule, value, unit) == text


def test_limits_read_naturally() -> None:
    assert limit_text("gate:snr_db", ">=", 25.0, "dB") == "≥ 25 dB"
    # a range of seconds reads as the check's own message writes it (range_text)
    assert limit_text("recommended_duration_s", "in", [10.0, 20.0], "s") == "10-20 s"
    assert limit_text("recommended_duration_s", "in", [30.0, None], "s") == "at least 30 s"
    assert limit_text("format", "in", ["wav", "mp3"], "") == "in wav, mp3"
    assert seconds(198.5) == "3:18" and seconds(3725) == "1:02:05" and seconds(None) == "—"


def test_reuse_keeps_a_page_built_from_the_same_results_and_rebuilds_after_a_change(tmp_path: Path) -> None:
    out = make_run(tmp_path)
    page = build_report(out, reuse=True)
    first = page.read_bytes()
    page.write_bytes(first + b"<!-- marker -->")  # to see whether the next call rewrites it
    run = json.loads((out / "run.json").read_text())
    run["seconds"] = 999.0  # a resumed run: other times, same results
    (out / "run.json").write_text(json.dumps(run))
    build_report(out, reuse=True)
    assert page.read_bytes().endswith(b"<!-- marker -->")
    build_report(out)  # without reuse: always built
    assert not page.read_bytes().endswith(b"<!-- marker -->")
    page.write_bytes(first + b"<!-- marker -->")
    rows = [json.loads(line) for line in (out / "clips.jsonl").read_text().splitlines()]
    rows[0]["reasons"] = ["low_snr"]
    (out / "clips.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    build_report(out, reuse=True)
    assert not page.read_bytes().endswith(b"<!-- marker -->")


def test_one_speaker_is_counted_in_the_singular(tmp_path: Path) -> None:
    """The speaker filter's count reads ``1 speaker`` for a one-speaker run (it read ``1 speakers``)."""
    out = make_run(tmp_path)
    for name in ("recordings.jsonl", "clips.jsonl"):
        rows = [json.loads(line) for line in (out / name).read_text().splitlines()]
        write_rows(out / name, [r for r in rows if r["speaker"] == "ann"])
    assert parse(build_report(out)).find(id="shown-count").text().strip() == "1 speaker"
