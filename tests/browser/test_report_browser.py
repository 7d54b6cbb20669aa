"""The demo run's report in a real browser (headless Chromium over chromedriver): cards, colours, audio,
console, network. Run with ``make test-browser``; the screenshot lands in ``out/ci-artifacts/report.png``.

Expected values come from the demo data (its speaker folders, the family specs) and from the run's own
manifests, never from an earlier report.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "samples"
ARTIFACTS = ROOT / "out" / "ci-artifacts"
LOCAL = ("file:", "data:")
Browser = Any  # conftest.Browser, handed out by the fixtures


def _rows(out: Path, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / name).read_text().splitlines() if line.strip()]


def _rgb(css: str) -> tuple[int, ...]:
    inside = css[css.index("(") + 1 : css.index(")")]
    return tuple(round(float(v)) for v in inside.split(",")[:3])


def test_screenshot_is_saved_as_a_ci_artifact(report_visit: dict[str, Any]) -> None:
    shot = ARTIFACTS / "report.png"
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width == 1400 and 1500 <= height <= 2000  # the window is 1400 x 2000; the viewport a bit less


def test_every_speaker_has_a_card_with_every_family(page: Browser, demo_run: Path) -> None:
    from pipeline.rules.families import list_families

    speakers = sorted(p.name for p in SAMPLES.iterdir() if p.is_dir())
    assert speakers == ["alice", "bob", "carol", "dave"]
    cards = page.run(
        "return Array.from(document.querySelectorAll('details.speaker-card')).map(c => ["
        "c.querySelector('.spk-name').textContent,"
        "Array.from(c.querySelectorAll('section.clip-block')).map(b => b.dataset.family)])"
    )
    assert sorted(name for name, _ in cards) == speakers
    for _, families in cards:
        assert sorted(families) == sorted(list_families())
    rows = page.run(
        "return Array.from(document.querySelectorAll('table.matrix tbody tr')).map(r => r.dataset.speaker)"
    )
    assert sorted(rows) == speakers


def test_badges_are_coloured_by_verdict(page: Browser) -> None:
    styles = page.run(
        "return Array.from(document.querySelectorAll('.badge.verdict, .badge.metric, .badge.status')).map(e => "
        "[Array.from(e.classList).filter(c => /^(verdict|status)-/.test(c))[0], getComputedStyle(e).backgroundColor])"
    )
    colours: dict[str, set[tuple[int, ...]]] = {}
    for cls, bg in styles:
        colours.setdefault(cls, set()).add(_rgb(bg))
    # the legend holds one badge of every kind, so all seven classes are present
    assert {"verdict-pass", "verdict-warn", "verdict-fail", "status-ready", "status-rejected"} <= set(colours)
    for cls, seen in colours.items():
        assert len(seen) == 1, f"{cls} has several colours: {seen}"
    (p,), (w,), (f,) = colours["verdict-pass"], colours["verdict-warn"], colours["verdict-fail"]
    assert len({p, w, f}) == 3
    assert p[1] > p[0] and p[1] > p[2]  # green
    assert f[0] > f[1] and f[0] > f[2]  # red
    assert w[0] > w[2] and w[1] > w[2]  # amber
    (ready,), (rejected,) = colours["status-ready"], colours["status-rejected"]
    assert ready[1] > ready[0] and rejected[0] > rejected[1]


def test_metric_badges_follow_the_checks_in_clips_jsonl(page: Browser, demo_run: Path) -> None:
    blocks = page.run(
        "return Array.from(document.querySelectorAll('section.clip-block')).map(b => ["
        "b.closest('details.speaker-card').querySelector('.spk-name').textContent, b.dataset.family,"
        "Array.from(b.querySelectorAll('.badge.metric')).map(x => Array.from(x.classList)"
        ".filter(c => c.startsWith('verdict-'))[0].slice(8)),"
        "b.querySelectorAll('table.checks-table tbody tr').length])"
    )
    seen = {(speaker, family): (badges, n_checks) for speaker, family, badges, n_checks in blocks}
    for row in _rows(demo_run, "clips.jsonl"):
        badges, n_checks = seen[(row["speaker"], row["family"])]
        assert n_checks == len(row["checks"])
        gates = [c["verdict"] for c in row["checks"] if c["group"] == "gate"]
        problems = sorted(c["verdict"] for c in row["checks"] if c["verdict"] != "pass")
        assert sorted(v for v in badges if v != "pass") == problems
        assert len(badges) >= len(gates)


def test_audio_elements_have_a_playable_source(report_visit: dict[str, Any], demo_run: Path) -> None:
    audio = report_visit["audio"]
    assert audio, "the report has no audio players"
    for a in audio:
        assert a["error"] is None, a
        assert a["readyState"] >= 1 and a["duration"] > 0, a
        assert a["canPlay"] in ("maybe", "probably"), a
        assert a["currentSrc"].startswith("file://"), a
    clips = {r["clip"]: r["duration_s"] for r in _rows(demo_run, "clips.jsonl") if r.get("clip")}
    players = {a["src"]: a["duration"] for a in audio if "clip-audio" in a["cls"]}
    assert set(players) == set(clips)
    for src, duration in players.items():
        assert duration == pytest.approx(clips[src], abs=0.05)
    assert any("source-audio" in a["cls"] for a in audio)


def test_no_console_errors(report_visit: dict[str, Any]) -> None:
    errors = [e for e in report_visit["console"] if e.get("level") == "SEVERE"]
    assert errors == []


def test_no_request_leaves_the_machine(report_visit: dict[str, Any], demo_run: Path) -> None:
    assert report_visit["resources"] and all(u.startswith(LOCAL) for u in report_visit["resources"])
    requests = report_visit["requests"]
    assert all(u.startswith(LOCAL) for u in requests), [u for u in requests if not u.startswith(LOCAL)]
    # the log did see the page's own loads (so an external one would have shown too)
    clip_urls = {
        (demo_run / r["clip"]).resolve().as_uri() for r in _rows(demo_run, "clips.jsonl") if r.get("clip")
    }
    assert clip_urls <= set(requests)
    assert report_visit["netlog_page"] == []


def test_the_checks_would_catch_an_external_request(tmp_path: Path, visit: Any) -> None:
    """Negative control: the same detectors on a page that does reach out (to a closed local port)."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><head><title>bad</title></head><body>"
        '<img src="http://127.0.0.1:9/pixel.png"><script>console.error("boom")</script></body></html>'
    )
    state = visit(tmp_path, bad.resolve().as_uri())
    assert "http://127.0.0.1:9/pixel.png" in state["requests"]
    assert "http://127.0.0.1:9/pixel.png" in state["resources"]
    assert state["netlog_page"] == ["http://127.0.0.1:9/pixel.png"]
    messages = [e["message"] for e in state["console"] if e["level"] == "SEVERE"]
    assert any("boom" in m for m in messages) and any("pixel.png" in m for m in messages)


def test_filter_box_and_matrix_links(page: Browser) -> None:
    visible = (
        "return Array.from(document.querySelectorAll('details.speaker-card')).filter(c => !c.hidden)"
        ".map(c => c.dataset.speaker)"
    )
    page.run(
        "const f = document.getElementById('filter'); f.value = 'BO'; f.dispatchEvent(new Event('input'));"
    )
    assert page.run(visible) == ["bob"]
    assert page.run("return document.getElementById('shown-count').textContent") == "1 of 4 speakers"
    page.run(
        "const f = document.getElementById('filter'); f.value = ''; f.dispatchEvent(new Event('input'));"
    )
    assert page.run(visible) == ["alice", "bob", "carol", "dave"]
    # a matrix cell opens the speaker's card and scrolls its clip into view
    state = page.run(
        "document.querySelectorAll('details.speaker-card').forEach(d => { d.open = false; });"
        "const a = document.querySelector('table.matrix tbody tr[data-speaker=\"carol\"] td.cell a');"
        "a.click();"
        "const target = document.getElementById(a.getAttribute('href').slice(1));"
        "return [target.closest('details.speaker-card').open, target.closest('details.speaker-card').dataset.speaker,"
        "target.getBoundingClientRect().top];"
    )
    assert state[0] is True and state[1] == "carol"
    assert 0 <= state[2] < 200
    page.screenshot(ARTIFACTS / "report-card.png")
