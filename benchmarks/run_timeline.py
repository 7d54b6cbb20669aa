"""When each task of one ``voiceprep run`` runs, in which worker, and what the main process does (issue 13).

Runs ``voiceprep run ARGS`` in this process with the process pool (spawn) and records, for every task,
its worker's pid, start, end and CPU seconds, and for the main process the run itself, ``load_run`` and
the report: what a second core can take and what stays serial. A task is timed by wrapping the one
function every task goes through in a worker (``pipeline.batch.executors._call``); spawned workers
import this file as their main module, so the wrapper runs there too. Times are seconds from the start.

Usage: ``python benchmarks/run_timeline.py IN --out OUT --jobs 2 --no-resume [--json FILE]`` (every
argument but ``--json`` goes to ``voiceprep run``; the executor must be ``processes``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

_T0 = float(os.environ.setdefault("VOICEPREP_TIMELINE_T0", str(time.time())))
_LOG = Path(os.environ.setdefault("VOICEPREP_TIMELINE_LOG", f"/tmp/voiceprep-timeline-{os.getpid()}.jsonl"))


def _record(**row: Any) -> None:
    row["pid"] = os.getpid()
    with _LOG.open("a") as fh:
        fh.write(json.dumps(row) + "\n")


def _label(fn: Any, item: Any) -> str:
    name = getattr(getattr(fn, "func", fn), "__name__", repr(fn))
    if isinstance(item, tuple) and item and isinstance(item[0], str | tuple):
        return f"{name} {item[0]}"  # stage 2: the family or families
    return f"{name} {getattr(item, 'path', '')}"


def timed_call(fn: Any, item: Any) -> Any:
    """``executors._call`` with the task's times and CPU recorded (runs in the worker)."""
    from pipeline.batch import executors

    start, cpu = time.time(), time.process_time()
    try:
        return executors.__dict__["_untimed_call"](fn, item)
    finally:
        end = time.time()
        _record(what=_label(fn, item), start=start - _T0, end=end - _T0, cpu=time.process_time() - cpu)


def _install() -> None:
    """Route every task through :func:`timed_call` (in this process and, through spawn, its workers)."""
    from pipeline.batch import executors

    if "_untimed_call" not in executors.__dict__:
        executors._untimed_call = executors._call  # type: ignore[attr-defined]
        executors._call = timed_call


def _timed_main(name: str, fn: Any) -> Any:
    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start, cpu = time.time(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            _record(
                what=f"main: {name}", start=start - _T0, end=time.time() - _T0, cpu=time.process_time() - cpu
            )

    return timed


def main() -> None:
    """Run the command with timers, then print the timeline (and write it with ``--json FILE``)."""
    args = sys.argv[1:]
    dest = None
    if "--json" in args:
        at = args.index("--json")
        dest, args = Path(args[at + 1]), args[:at] + args[at + 2 :]
    _LOG.unlink(missing_ok=True)
    import pipeline.cli.common
    import pipeline.report.results
    from pipeline.batch import runner
    from pipeline.cli import main as cli

    runner.run = _timed_main("run (stages 1-2)", runner.run)
    pipeline.report.results.load_run = _timed_main("load_run", pipeline.report.results.load_run)
    cli.write_report = _timed_main("report", pipeline.cli.common.write_report)
    sys.argv = ["voiceprep", "run", *args]
    with contextlib.suppress(SystemExit):  # the command's exit code is not the timeline's
        cli.main()
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.time() - _T0
    rows = sorted((json.loads(line) for line in _LOG.read_text().splitlines()), key=lambda r: r["start"])
    print(f"{'what':44} {'pid':>7} {'start':>6} {'end':>6} {'CPU s':>6}")
    for r in rows:
        print(f"{r['what'][:44]:44} {r['pid']:7d} {r['start']:6.1f} {r['end']:6.1f} {r['cpu']:6.2f}")
    main_cpu, worker_cpu = own.ru_utime + own.ru_stime, workers.ru_utime + workers.ru_stime
    print(f"wall {wall:.1f} s; CPU: main process {main_cpu:.1f} s, workers {worker_cpu:.1f} s")
    if dest is not None:
        summary = {"wall_s": wall, "main_cpu_s": main_cpu, "worker_cpu_s": worker_cpu, "events": rows}
        dest.write_text(json.dumps(summary, indent=1))


_install()  # also in spawned workers, which import this file as their main module

if __name__ == "__main__":
    main()
