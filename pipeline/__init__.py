"""voiceprep: turn raw voice recordings into enrollment-ready clips for cloud voice cloning.

The public API is small::

    import pipeline
    a = pipeline.analyze("memo.m4a")            # measure: a.metrics, a.segments, a.frames, a.plot()
    r = pipeline.check("memo.m4a", "qwen-tts")  # judge as the service would: r.verdict, r.checks
    rs = pipeline.check_families("memo.m4a", ["qwen-tts", "minimax"])  # one result per family
    spec = pipeline.load_family("cosyvoice")    # the family's rules
    out = pipeline.run("recordings/", "out/", families=["cosyvoice"])  # a whole folder, as `voiceprep run`
    res = pipeline.load_run(out)                # res.recordings, res.clips, res.voices (pandas)

Everything is imported lazily so ``import pipeline`` stays fast in worker processes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from pipeline.analysis.inspection import Analysis, analyze, check, check_families
    from pipeline.audio.io import probe
    from pipeline.batch.runner import run
    from pipeline.report.results import RunResults, load_run
    from pipeline.rules.checks import CheckResult
    from pipeline.rules.families import FamilySpec, list_families, load_family
    from pipeline.rules.families import FamilySpec as Family

_LAZY = {
    "analyze": ("pipeline.analysis.inspection", "analyze"),
    "check": ("pipeline.analysis.inspection", "check"),
    "check_families": ("pipeline.analysis.inspection", "check_families"),
    "Analysis": ("pipeline.analysis.inspection", "Analysis"),
    "CheckResult": ("pipeline.rules.checks", "CheckResult"),
    "FamilySpec": ("pipeline.rules.families", "FamilySpec"),
    "Family": ("pipeline.rules.families", "FamilySpec"),
    "load_family": ("pipeline.rules.families", "load_family"),
    "list_families": ("pipeline.rules.families", "list_families"),
    "probe": ("pipeline.audio.io", "probe"),
    "load_run": ("pipeline.report.results", "load_run"),
    "RunResults": ("pipeline.report.results", "RunResults"),
    "run": ("pipeline.batch.runner", "run"),
}

__all__ = [
    "Analysis",
    "CheckResult",
    "Family",
    "FamilySpec",
    "RunResults",
    "__version__",
    "analyze",
    "check",
    "check_families",
    "list_families",
    "load_family",
    "load_run",
    "probe",
    "run",
]


def __getattr__(name: str) -> Any:
    """Import public names on first use."""
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        value = getattr(importlib.import_module(module_name), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
