"""A process that imports voiceprep once, then forks one child per command and lets it die by ``SIGKILL``
(or stop) at a chosen point (``tests/test_kill.py``; test_run's kill test; a command as a process of its
own in test_cli and test_abuse).

Killing ``voiceprep`` at 20+ points costs 20+ processes; most of a fresh process's time is imports, so
this one imports every ``pipeline`` module once (no model is loaded: nothing that starts threads), draws
one histogram (matplotlib's first figure loads its fonts: 0.4 s a child would pay again) and forks. The
DNSMOS scores a child computes come back to the zygote (``tests/_dnsmos.py``), so a window of the same
samples is scored once for all the children forked after it (the re-check of the same clip, again and
again). Each child counts the *events* of its command, in order, and kills itself with ``SIGKILL`` at the
event numbered ``kill_at`` (1-based), so a kill point is deterministic:

* ``replace:before`` / ``replace:after``: ``os.replace`` of a temporary file (every atomic write of
  voiceprep: manifests, cache entries, clips, the report, the record of outputs), before or after the
  rename (the file complete under its temporary name, or in place but the folder not yet synced);
* ``link:*`` / ``rename:*``: the lock file's hard link (taking ``OUT/.voiceprep.lock``) and rename (taking a
  stale one away);
* ``http:before`` / ``http:after``: an HTTP request (``requests``' adapter) before it is sent, or after its
  answer was read in full and before the caller sees it: the provider acted, nothing was recorded yet.

Protocol: one JSON object per line on stdin, ``{"argv": [...], "env": {...}, "cwd": ..., "kill_at": ...,
"stop_at": ..., "clock_ahead_s": seconds or null, "log": path, "stdout": path or null, "stderr": path or
null}``. ``kill_at`` and ``stop_at`` are an event number, a pattern (the n-th event of a label on a matching
file: :func:`_install`) or null; at ``stop_at`` the child stops itself (``SIGSTOP``), the zygote answers
``{"pid", "stopped": true}`` and continues it on the next line it reads. ``clock_ahead_s`` sets the voice
ledger's clock ahead (the command run that much later); ``stdout``/``stderr`` are the command's own files
(else both go to ``log``). One JSON line back per command: ``{"pid", "signal", "code", "events"}``, where
``events`` lists the labels of the events the child passed (complete only when it was not killed). The
modules a child that was not killed imported are then imported here too, for the next children.

Tests talk to it through :class:`Zygote` (the ``zygote`` fixture of ``tests/conftest.py``: one per test
process).
"""

from __future__ import annotations

import fnmatch
import importlib
import json
import os
import pickle
import pkgutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

Point = int | dict[str, Any] | None
"""An event of a command: its number, a pattern (:func:`_install`), or none."""


def _preload() -> None:
    """Import every ``pipeline`` module and the HTTP stack (imports start no threads)."""
    sys.path.insert(0, str(ROOT))
    import requests.adapters  # noqa: F401

    import pipeline

    for info in pkgutil.walk_packages(pipeline.__path__, "pipeline."):
        importlib.import_module(info.name)


def _warm_up() -> None:
    """Pay once, here, what every child would pay on its first call: matplotlib's first figure; and keep
    DNSMOS scores by their samples (:func:`_dnsmos.remember`)."""
    import _dnsmos

    from pipeline.report.plots import histogram_svg

    histogram_svg([(20.0, "ready"), (10.0, "rejected")], metric="snr_db", title="SNR", gates={15.0: ["x"]})
    _dnsmos.remember()


def _import_all(names: list[str]) -> None:
    """Import the modules a child imported lazily (plots, the report's encoders...), so that the next
    children find them loaded; a module that cannot be imported on its own is skipped."""
    for name in names:
        if name not in sys.modules:
            try:
                importlib.import_module(name)
            except Exception:  # a private module imported only by its package
                continue


def _install(kill_at: Point, stop_at: Point, seen: list[str]) -> None:
    """Count events (see the module docstring); ``SIGKILL`` this process at event ``kill_at`` and
    ``SIGSTOP`` it at ``stop_at``: a number, or ``{"event": label, "path": pattern, "nth": n}``, the n-th
    event of that label whose file matches the :mod:`fnmatch` pattern (``"*/.cache/clips/*.json"``)."""
    import requests.adapters

    matched = {"kill": 0, "stop": 0}

    def reached(point: Point, which: str, label: str, path: Any) -> bool:
        if not isinstance(point, dict):
            return len(seen) == point
        if label == point["event"] and fnmatch.fnmatch(os.fspath(path), point["path"]):
            matched[which] += 1
            return matched[which] == point.get("nth", 1)
        return False

    def event(label: str, path: Any = "") -> None:
        seen.append(label)
        if reached(kill_at, "kill", label, path):
            os.kill(os.getpid(), signal.SIGKILL)
        if reached(stop_at, "stop", label, path):
            os.kill(os.getpid(), signal.SIGSTOP)  # until the zygote sends SIGCONT

    real_replace, real_link, real_rename = os.replace, os.link, os.rename
    real_send = requests.adapters.HTTPAdapter.send

    def replace(src: Any, dst: Any, **kw: Any) -> None:
        counted = str(src).endswith(".tmp")
        if counted:
            event("replace:before", dst)
        real_replace(src, dst, **kw)
        if counted:
            event("replace:after", dst)

    def link(src: Any, dst: Any, **kw: Any) -> None:
        event("link:before", dst)
        real_link(src, dst, **kw)
        event("link:after", dst)

    def rename(src: Any, dst: Any, **kw: Any) -> None:
        event("rename:before", dst)
        real_rename(src, dst, **kw)
        event("rename:after", dst)

    def send(self: Any, request: Any, *args: Any, **kw: Any) -> Any:
        event("http:before", request.url)
        response = real_send(self, request, *args, **kw)
        _ = response.content  # read the answer in full: the provider has acted and answered
        event("http:after", request.url)
        return response

    os.replace, os.link, os.rename = replace, link, rename  # type: ignore[assignment]
    requests.adapters.HTTPAdapter.send = send  # type: ignore[method-assign]


def _advance_clock(seconds: float) -> None:
    """Set the voice ledger's clock ``seconds`` ahead (a command run that much later)."""
    import datetime as dt

    import pipeline.enroll.ledger
    import pipeline.enroll.voices

    real = pipeline.enroll.ledger.utc_now

    def later() -> dt.datetime:
        return real() + dt.timedelta(seconds=seconds)

    pipeline.enroll.ledger.utc_now = pipeline.enroll.voices.utc_now = later


def _child(job: dict[str, Any], events_file: Path) -> None:
    """Run one command in this (forked) process; never returns."""
    import _dnsmos

    code = 70
    seen: list[str] = []
    loaded = set(sys.modules)
    try:
        os.environ.clear()
        os.environ.update(job["env"])
        os.chdir(job["cwd"])
        for fd, name in ((1, "stdout"), (2, "stderr")):  # the command's own files, else the shared log
            target = os.open(job.get(name) or job["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(target, fd)
        sys.argv = ["voiceprep", *job["argv"]]
        if job.get("clock_ahead_s"):
            _advance_clock(job["clock_ahead_s"])
        _install(job.get("kill_at"), job.get("stop_at"), seen)
        from pipeline.cli.main import main

        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        imported = sorted(set(sys.modules) - loaded)
        events_file.with_suffix(".pickle").write_bytes(pickle.dumps(_dnsmos.scores()))
        events_file.write_text(json.dumps({"events": seen, "imported": imported}))
        os._exit(code)


class Zygote:
    """This module as a process: :meth:`run` one ``voiceprep`` command in a fork of it."""

    def __init__(self, log: Path, env: dict[str, str]) -> None:
        """Start it with ``env``; the commands' output goes to ``log``, their working folder is its folder."""
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )

    def run(
        self,
        *argv: str | Path,
        env: dict[str, str],
        kill_at: Point = None,
        later_s: float = 0.0,
        capture: bool = False,
        stop_at: Point = None,
        while_stopped: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """Run ``voiceprep ARGV`` with ``env``; killed at event ``kill_at`` when given (a number or a pattern:
        :func:`_install`); ``later_s`` seconds later by the voice ledger's clock. Its status and events, and
        with ``capture`` what it wrote to file descriptors 1 and 2 (``stdout``, ``stderr``: text), the C
        libraries' writes included; else its output goes to the log. With ``stop_at``, the command is
        stopped (``SIGSTOP``) at that event while ``while_stopped(pid)`` runs, then goes on."""
        streams = {
            name: self.log.with_name(f"{name}-{uuid.uuid4().hex}.txt") for name in ("stdout", "stderr")
        }
        job = {
            "argv": [str(a) for a in argv],
            "env": env,
            "cwd": str(self.log.parent),
            "kill_at": kill_at,
            "stop_at": stop_at,
            "clock_ahead_s": later_s,
            "log": str(self.log),
            **({name: str(path) for name, path in streams.items()} if capture else {}),
        }
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        assert answer, f"the zygote died; see {self.log}"
        result = json.loads(answer)
        if result.get("stopped"):
            try:
                assert while_stopped is not None
                while_stopped(result["pid"])
            finally:
                self.proc.stdin.write("{}\n")  # go on
                self.proc.stdin.flush()
                answer = self.proc.stdout.readline()
            assert answer, f"the zygote died; see {self.log}"
            result = json.loads(answer)
        if capture:
            for name, path in streams.items():
                result[name] = path.read_text(errors="replace") if path.exists() else ""
                path.unlink(missing_ok=True)
        return result

    def close(self) -> None:
        """End the zygote (it ends when its stdin closes)."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def main() -> None:
    """Serve commands from stdin until it closes."""
    import _dnsmos

    _preload()
    _warm_up()
    for number, line in enumerate(sys.stdin):
        job = json.loads(line)
        events_file = Path(job["log"]).with_name(f".events-{os.getpid()}-{number}.json")
        pid = os.fork()
        if pid == 0:
            _child(job, events_file)
        _, status = os.waitpid(pid, os.WUNTRACED)
        if os.WIFSTOPPED(status):  # at its stop_at event: the test acts, then says go on
            print(json.dumps({"pid": pid, "stopped": True}), flush=True)
            sys.stdin.readline()
            os.kill(pid, signal.SIGCONT)
            _, status = os.waitpid(pid, 0)
        told = json.loads(events_file.read_text()) if events_file.exists() else {"events": None}
        events_file.unlink(missing_ok=True)
        scores = events_file.with_suffix(".pickle")
        if scores.exists():
            _dnsmos.learn(pickle.loads(scores.read_bytes()))
            scores.unlink()
        _import_all(told.get("imported", []))
        result = {
            "pid": pid,
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "events": told["events"],
        }
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
