"""Fixtures for the browser tests: a fresh demo run with its report, and headless Chromium over WebDriver.

The WebDriver client is a few calls over ``requests`` (already a dependency) to the Debian ``chromedriver``
at ``/usr/bin/chromedriver``, so no Selenium (and no Selenium Manager that might download a driver) is
involved. Chromium runs headless with a fresh profile, no sandbox, no GPU and no background networking; a
NetLog of everything the browser did on the network is written for the tests to inspect.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "samples"
ARTIFACTS = ROOT / "out" / "ci-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WebDriverError(RuntimeError):
    """chromedriver answered with an error."""


class Browser:
    """A minimal W3C WebDriver session: open a page, run scripts, take screenshots, read logs."""

    def __init__(self, *, profile: Path, netlog: Path, window: tuple[int, int] = (1400, 2000)) -> None:
        self.port = _free_port()
        self.driver = subprocess.Popen(
            [str(CHROMEDRIVER), f"--port={self.port}", "--allowed-ips=127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.http = requests.Session()
        self.http.trust_env = False  # never route the localhost driver through a proxy from the environment
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.http.get(f"{self.base}/status", timeout=2).json()["value"]["ready"]:
                    break
            except (requests.RequestException, ValueError, KeyError):
                pass
            if time.monotonic() > deadline or self.driver.poll() is not None:
                self.driver.kill()
                raise WebDriverError("chromedriver did not start")
            time.sleep(0.1)
        args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-domain-reliability",
            "--disable-client-side-phishing-detection",
            "--no-pings",
            "--metrics-recording-only",
            # Hermetic: no name resolves and every http(s) request goes to a closed local port, so nothing
            # can leave the machine even by mistake; attempts still show in the logs the tests read.
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=http://127.0.0.1:9",
            "--proxy-bypass-list=<-loopback>",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-dev-shm-usage",
            "--autoplay-policy=no-user-gesture-required",
            f"--user-data-dir={profile}",
            f"--window-size={window[0]},{window[1]}",
            f"--log-net-log={netlog}",
            "--net-log-capture-mode=Default",
        ]
        caps = {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": str(CHROMIUM),
                "args": args,
                "perfLoggingPrefs": {"enableNetwork": True, "enablePage": False},
            },
            "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"},
        }
        try:
            value = self._call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})
        except BaseException:
            self.driver.kill()
            raise
        self.session = value["sessionId"]

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        r = self.http.request(method, f"{self.base}{path}", json=body, timeout=120)
        data = r.json()
        if r.status_code != 200:
            raise WebDriverError(f"{method} {path}: {data.get('value')}")
        return data["value"]

    def _s(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._call(method, f"/session/{self.session}{path}", body)

    def get(self, url: str) -> None:
        """Navigate and wait for the page load."""
        self._s("POST", "/url", {"url": url})

    def run(self, script: str, *args: Any) -> Any:
        """Run a synchronous script (``return`` its value)."""
        return self._s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def run_async(self, script: str, *args: Any) -> Any:
        """Run an asynchronous script; it calls ``arguments[arguments.length - 1](value)`` when done."""
        return self._s("POST", "/execute/async", {"script": script, "args": list(args)})

    def set_timeouts(self, *, script_ms: int) -> None:
        """The script timeout for :meth:`run_async`."""
        self._s("POST", "/timeouts", {"script": script_ms})

    def screenshot(self, path: Path) -> Path:
        """Save a PNG of the viewport."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self._s("GET", "/screenshot")))
        return path

    def log(self, kind: str) -> list[dict[str, Any]]:
        """Entries of a chromedriver log (``browser`` or ``performance``) since the last call."""
        return list(self._s("POST", "/se/log", {"type": kind}))

    def quit(self) -> None:
        """End the session (the browser writes its NetLog) and stop chromedriver."""
        try:
            self._s("DELETE", "")
        finally:
            self.driver.terminate()
            try:
                self.driver.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.driver.kill()


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OUT of a fresh ``voiceprep run data/samples`` (every family) with its report built."""
    from pipeline.batch.config import load_config
    from pipeline.batch.runner import run
    from pipeline.report.build import build_report

    out = tmp_path_factory.mktemp("demo") / "out"
    run(SAMPLES, out, config=load_config(slow_measures=False), jobs=2)
    build_report(out)
    return out


LOAD_AUDIO = """
const done = arguments[arguments.length - 1];
const els = Array.from(document.querySelectorAll('audio'));
const type = (el) => el.currentSrc.endsWith('.mp3') ? 'audio/mpeg' : 'audio/wav';
const result = (el) => ({
  cls: el.className, src: el.getAttribute('src'), currentSrc: el.currentSrc, readyState: el.readyState,
  duration: el.duration, error: el.error ? el.error.code : null, canPlay: el.canPlayType(type(el)),
});
Promise.all(els.map((el) => new Promise((resolve) => {
  if (el.readyState >= 1 || el.error) { resolve(result(el)); return; }
  el.addEventListener('loadedmetadata', () => resolve(result(el)), {once: true});
  el.addEventListener('error', () => resolve(result(el)), {once: true});
  el.preload = 'metadata';
  el.load();
}))).then(done);
"""
"""Make every audio element load its metadata (the page may say ``preload="none"``) and report its state."""

RESOURCES = (
    "return performance.getEntriesByType('navigation').map(e => e.name)"
    ".concat(performance.getEntriesByType('resource').map(e => e.name));"
)


def open_page(browser: Browser, url: str) -> dict[str, Any]:
    """Open ``url``, load every audio element, open every speaker card, and collect what the page did:
    audio states, console entries, the requests the page made (performance log), Performance API entries."""
    browser.get(url)
    browser.set_timeouts(script_ms=60_000)
    audio = browser.run_async(LOAD_AUDIO)
    browser.run("document.querySelectorAll('details').forEach((d) => { d.open = true; });")
    time.sleep(0.5)  # let opened cards lay out and paint before the logs are read
    return {
        "audio": audio,
        "console": browser.log("browser"),
        "requests": page_requests(browser.log("performance"), url),
        "resources": browser.run(RESOURCES),
    }


def page_requests(entries: list[dict[str, Any]], url: str) -> list[str]:
    """URLs the page at ``url`` requested, from chromedriver's performance log (DevTools Network events).

    Requests of other documents (the browser's own new-tab page, for one) are left out.
    """
    urls = []
    for entry in entries:
        message = json.loads(entry["message"])["message"]
        if message.get("method") != "Network.requestWillBeSent":
            continue
        params = message["params"]
        if params.get("documentURL", "").split("#")[0] == url.split("#")[0]:
            urls.append(params["request"]["url"])
    return urls


def netlog_page_requests(path: Path) -> tuple[list[str], int]:
    """(URLs of network requests that pages at ``file://`` started, number of all URL requests) in a NetLog.

    Chromium logs a request of a ``file://`` document with initiator ``null`` and a ``file://`` network
    isolation key; its own background requests (update checks and the like) say ``not an origin``.
    """
    text = path.read_text(encoding="utf-8", errors="replace").rstrip()
    if not text.endswith("}"):  # a log cut short (the browser was killed): close the events list
        text = text.rstrip().rstrip(",") + "]}"
    data = json.loads(text)
    start_job = data["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    page, total = [], 0
    for event in data.get("events", []):
        if event.get("type") != start_job:
            continue
        total += 1
        params = event.get("params") or {}
        if params.get("initiator") == "null" or "file://" in str(params.get("network_isolation_key", "")):
            page.append(str(params.get("url")))
    return page, total


def run_browser(tmp: Path, url: str, *, screenshot: Path | None = None) -> dict[str, Any]:
    """Open ``url`` in a fresh headless Chromium, collect :func:`open_page`, then close the browser and
    add the page's requests from its NetLog (written completely only when the browser exits)."""
    netlog = tmp / "netlog.json"
    browser = Browser(profile=tmp / "profile", netlog=netlog)
    try:
        state = open_page(browser, url)
        if screenshot is not None:
            browser.run("window.scrollTo(0, 0);")
            browser.screenshot(screenshot)
    finally:
        browser.quit()
    state["netlog_page"], state["netlog_total"] = netlog_page_requests(netlog)
    return state


@pytest.fixture(scope="session")
def report_visit(tmp_path_factory: pytest.TempPathFactory, demo_run: Path) -> dict[str, Any]:
    """One complete visit of the demo report: audio states, logs, requests, NetLog; screenshot saved to
    ``out/ci-artifacts/report.png``."""
    assert CHROMIUM.is_file() and CHROMEDRIVER.is_file(), (
        "needs the Debian packages chromium and chromium-driver"
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    url = (demo_run / "report.html").resolve().as_uri()
    return run_browser(tmp_path_factory.mktemp("visit"), url, screenshot=ARTIFACTS / "report.png")


@pytest.fixture(scope="session")
def page(tmp_path_factory: pytest.TempPathFactory, demo_run: Path) -> Iterator[Browser]:
    """A browser on the demo report, for tests that inspect or click the page."""
    work = tmp_path_factory.mktemp("page")
    browser = Browser(profile=work / "profile", netlog=work / "netlog.json")
    try:
        browser.get((demo_run / "report.html").resolve().as_uri())
        yield browser
    finally:
        browser.quit()


@pytest.fixture(scope="session")
def visit() -> Any:
    """:func:`run_browser`: ``visit(tmp_dir, url) -> state`` in a fresh browser."""
    return run_browser
