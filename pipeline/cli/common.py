"""What every ``voiceprep`` command shares: exit codes, the rich consoles and the one-line error.

Exit codes (documented in the README and ``voiceprep --help``):
    0  everything asked for succeeded
    1  the command ran, but something needs attention (a file failed, a verdict is ``fail``, a create
       was rejected, a voice's state is unknown, the user declined)
    2  usage or configuration error (bad option, unknown family, invalid config, a missing API key)
    3  internal error (a bug): the message says so; ``--debug`` shows the traceback
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3

# The options several commands take, declared once (one name and one help text per concept).
Paths = Annotated[
    list[Path], typer.Argument(help="Files or folders (searched recursively).", show_default=False)
]
Families = Annotated[
    list[str] | None,
    typer.Option(
        "--family", "-f", metavar="FAMILY", help="Family (repeatable; default: all).", show_default=False
    ),
]
Dnsmos = Annotated[
    bool | None,
    typer.Option(
        "--dnsmos/--no-dnsmos", help="Run DNSMOS (default: on files up to 2 minutes).", show_default=False
    ),
]
Export = Annotated[
    list[str] | None,
    typer.Option("--export", help="Also write parquet and/or csv tables.", show_default=False),
]
RunFolder = Annotated[Path, typer.Option("--out", "-o", help="The run's output folder.")]
Preview = Annotated[
    str | None,
    typer.Option(
        "--preview", help="Synthesise this text with each voice (saved next to the clip).", show_default=False
    ),
]


def make_console(*, stderr: bool = False) -> Console:
    """A rich console; when output is not a terminal (a pipe, CI), a wide fixed width so lines do not wrap."""
    probe = Console(stderr=stderr)
    return Console(stderr=stderr, width=None if probe.is_terminal else 160)


def fail(message: str, code: int) -> typer.Exit:
    """Print ``voiceprep: MESSAGE`` on stderr as plain text and return the exit to raise."""
    make_console(stderr=True).print(f"voiceprep: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


state = {"debug": False}
"""Set by the ``--debug`` option: show tracebacks instead of one-line errors."""


def write_report(out_dir: Path, *, existing_only: bool = False) -> None:
    """Write ``OUT/report.html`` after a command that changed the run (with ``existing_only``, only when a
    page is already there: refresh it); a report that fails never fails the command."""
    from pipeline.report.build import REPORT_FILE, build_report

    if existing_only and not (out_dir / REPORT_FILE).is_file():
        return
    try:
        path = build_report(out_dir, reuse=True)
    except Exception as exc:
        if state["debug"]:
            raise
        make_console(stderr=True).print(
            f"voiceprep: the report could not be written ({type(exc).__name__}: {exc}); "
            f"try `voiceprep --debug report --out {out_dir}`",
            markup=False,
            highlight=False,
        )
        return
    make_console().print(f"report: {path}", markup=False, highlight=False)
