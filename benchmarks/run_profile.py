"""Where the time of one ``voiceprep run`` goes, stage by stage (issue 13): CPU seconds per stage.

Runs ``voiceprep run IN --out OUT --executor serial --no-resume`` in this process (every task inline, so
each stage's CPU is this process's) with the stage functions wrapped by timers of CPU time
(``time.process_time``); a wrapped function called inside another wrapped one is counted in both, so
the indented rows are parts of the row above them. Few calls are wrapped (hundreds, not millions), so
the timers cost nothing measurable, unlike ``cProfile``, which slows the Python-heavy meters several
times over. The process's peak resident memory is read as each stage returns ("peak MB so far"). Pin
it to one core (``taskset -c 0``) to match the benchmark of record.

Usage: ``python benchmarks/run_profile.py IN OUT [--family F ...] [--json FILE]``
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

STAGES: tuple[tuple[str, str, str, int], ...] = (
    # (label, module, attribute "Class.method" or "function", indent)
    ("fast pass (one recording)", "pipeline.batch.runner", "analyze_recording", 0),
    ("sha256 of the input", "pipeline.batch.runner", "_file_sha256", 1),
    ("meters per block (decode thread too)", "pipeline.analysis.fastpass", "FastPass.process", 1),
    ("meters (finish)", "pipeline.analysis.fastpass", "FastPass.finish", 1),
    ("speaker voices (learn)", "pipeline.batch.runner", "_learn_voices", 0),
    ("clip stage (all families)", "pipeline.batch.runner", "make_clip", 0),
    ("selection (choose)", "pipeline.selection.select", "choose", 1),
    ("speaker checks of plans", "pipeline.selection.voices", "annotate", 2),
    ("content pre-check", "pipeline.selection.slow", "heard_content", 2),
    ("slow pass (finish)", "pipeline.selection.slow", "finish", 2),
    ("read pieces", "pipeline.selection.plan", "read_piece", 3),
    ("Silero edges", "pipeline.selection.slow", "refine_piece", 3),
    ("music and singing", "pipeline.selection.slow", "content_of", 3),
    ("DNSMOS of plans", "pipeline.selection.slow", "dnsmos_of", 3),
    ("render", "pipeline.render.clip", "render", 1),
    ("re-check", "pipeline.analysis.inspection", "check", 1),
    ("manifests (rows written)", "pipeline.batch.manifest", "write_rows", 0),
    ("report", "pipeline.cli.common", "write_report", 0),
    ("DNSMOS model runs (all)", "pipeline.analysis.dnsmos", "_P835Model.score_segment", 0),
)

_totals: dict[str, list[float]] = {}
"""Per stage: CPU seconds, calls, and the process's peak RSS (MB) when its last call returned."""


def _wrap(label: str, fn: Any) -> Any:
    """``fn`` with its CPU time and calls added to ``_totals[label]`` (re-entrant calls counted once)."""
    depth = [0]

    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        depth[0] += 1
        t0 = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            depth[0] -= 1
            row = _totals.setdefault(label, [0.0, 0, 0.0])
            row[1] += 1
            if depth[0] == 0:
                row[0] += time.process_time() - t0
                row[2] = max(row[2], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)

    return timed


def install() -> None:
    """Wrap every function of :data:`STAGES` where it is defined and where it was imported by name."""
    for label, module_name, attr, _ in STAGES:
        module = importlib.import_module(module_name)
        owner_name, _, name = attr.rpartition(".")
        owner = getattr(module, owner_name) if owner_name else module
        original = getattr(owner, name)
        wrapped = _wrap(label, original)
        setattr(owner, name, wrapped)
        if not owner_name:  # also where other modules imported it at load time
            for other in list(sys.modules.values()):
                if (
                    getattr(other, "__name__", "").startswith("pipeline")
                    and getattr(other, name, None) is original
                ):
                    setattr(other, name, wrapped)


def main() -> None:
    """Run, print the table, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inp", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--family", action="append", default=[])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    import pipeline.cli.main as cli  # imports every stage the run needs, so the wraps land

    for module in ("pipeline.analysis.fastpass", "pipeline.selection.slow", "pipeline.selection.voices"):
        importlib.import_module(module)
    install()
    argv = ["run", str(args.inp), "--out", str(args.out), "--executor", "serial", "--no-resume"]
    argv += [a for f in args.family for a in ("--family", f)]
    try:
        cli.app(argv, prog_name="voiceprep")
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    total_cpu, wall = time.process_time() - t_cpu, time.perf_counter() - t_wall
    rows = []
    print(f"{'stage':40} {'CPU s':>7} {'share':>6} {'calls':>6} {'peak MB so far':>14}")
    for label, _, _, indent in STAGES:
        cpu, calls, peak = _totals.get(label, [0.0, 0, 0.0])
        rows.append(
            {"stage": label, "indent": indent, "cpu_s": round(cpu, 3), "calls": calls, "peak_mb": peak}
        )
        print(f"{'  ' * indent + label:40} {cpu:7.2f} {cpu / total_cpu:6.1%} {calls:6d} {peak:14.0f}")
    print(f"{'whole process (imports included)':40} {total_cpu:7.2f} {1:6.0%}   (wall {wall:.1f} s)")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "cpu_s": total_cpu, "wall_s": wall}, indent=2) + "\n")


if __name__ == "__main__":
    main()
