"""What every ``voiceprep`` command shares: exit codes, the rich consoles and the one-line error.

Exit codes (documented in the README and ``voiceprep --help``):
    0  everything asked for succeeded
    1  the command ran, but something needs attention (a file failed, a verdict is ``fail``, a create
       was rejected, a voice's state is unknown, the user declined)
    2  usage or configuration error (bad option, unknown family, invalid config, a missing API key)
    3  the run could not proceed (output folder unwritable, no input), or an internal error (a bug): the
       message says so; ``--debug`` shows the traceback
    4  the output folder is in use: another voiceprep run holds its lock (``OUT/.voiceprep.lock``)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console

from pipeline.errors import encodable

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_BUSY = 4

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""Characters that move the cursor, colour the terminal or reorder text: shown, never obeyed."""


def plain(value: object, *, lines: bool = False) -> str:
    """User-supplied text (a path, a speaker name, a message quoting them) as it may reach a terminal:
    control characters and bytes that are not UTF-8 shown as ``\\xNN`` / ``\\uNNNN`` escapes
    (``lines=True``: a text of several lines, its line breaks kept)."""
    text = encodable(str(value))
    if lines:
        return "\n".join(plain(line) for line in text.split("\n"))
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def print_json(row: object) -> None:
    """One JSON line on stdout (``--json``): UTF-8 text, names that are not UTF-8 escaped (see
    :func:`encodable`), control characters escaped by JSON itself."""
    import json

    print(encodable(json.dumps(row, ensure_ascii=False, default=str)), flush=True)


_BRACKET = re.compile(r"(\\*)\[")
_TAG_AT = re.compile(r"\[[a-z#/@][^[]*?]")
"""What rich reads as a tag (``rich.markup.RE_TAGS`` without its backslashes)."""


def shown(value: object) -> str:
    """:func:`plain`, escaped for rich markup: ``[bold]x[`` and ``\\[`` print as themselves inside
    marked-up text (followed by text or by the end of the string, not directly by a tag).

    ``rich.markup.escape`` escapes only brackets that start a tag; rich also turns ``\\[`` into ``[`` in
    plain text, so a backslash before any other bracket is doubled here too.
    """
    text = plain(value)

    def bracket(match: re.Match[str]) -> str:
        backslashes = match.group(1)
        if _TAG_AT.match(text, match.end() - 1):
            return f"{backslashes}{backslashes}\\["  # a tag: an odd number of backslashes escapes it
        return f"{backslashes}\\[" if backslashes else "["  # rich drops one backslash before a bracket

    return _BRACKET.sub(bracket, text)


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
    typer.Option(
        "--export",
        click_type=click.Choice(("parquet", "csv")),
        metavar="TEXT",
        help="Also write parquet and/or csv tables.",
        show_default=False,
    ),
]
RunFolder = Annotated[Path, typer.Option("--out", "-o", help="The run's output folder.")]
Preview = Annotated[
    str | None,
    typer.Option(
        "--preview", help="Synthesise this text with each voice (saved next to the clip).", show_default=False
    ),
]

Region = Annotated[
    str | None,
    typer.Option(
        "--region",
        help="intl (Singapore / global hosts) or cn (China, Beijing / mainland hosts): picks each "
        "provider's host, key variable and the models offered (default: config, base URL, else intl).",
        show_default=False,
    ),
]
"""``--region`` of every command that talks to a provider (checked by :func:`region_choice`)."""


def region_choice(value: str | None) -> str | None:
    """``--region`` checked (``intl``, ``cn``; any case) or None."""
    if value is None:
        return None
    if value.strip().lower() not in {"intl", "cn"}:
        raise typer.BadParameter(f"--region must be intl or cn (got {value!r})")
    return value.strip().lower()


def make_console(*, stderr: bool = False) -> Console:
    """A rich console; when output is not a terminal (a pipe, CI), a wide fixed width so lines do not wrap."""
    probe = Console(stderr=stderr)
    # emoji=False: a name holding `:smile:` prints as itself (voiceprep's own text uses no emoji codes)
    return Console(stderr=stderr, width=None if probe.is_terminal else 160, emoji=False)


def fail(message: str, code: int) -> typer.Exit:
    """Print ``voiceprep: MESSAGE`` on stderr as plain text and return the exit to raise."""
    make_console(stderr=True).print(
        f"voiceprep: {plain(message)}", markup=False, highlight=False, soft_wrap=True
    )
    return typer.Exit(code)


state = {"debug": False}
"""Set by the ``--debug`` option: show tracebacks instead of one-line errors."""


def write_report(out_dir: Path, *, existing_only: bool = False) -> None:
    """Write ``OUT/report.html`` after a command that changed the run (with ``existing_only``, only when a
    page is already there: refresh it), under ``OUT/.voiceprep.lock`` like every writer of OUT (the
    command may hold it already); a report that fails, or a run that holds OUT meanwhile (it writes the
    report itself), never fails the command: one line says so."""
    from pipeline.batch.outputs import OutputBusy, output_lock
    from pipeline.report.build import REPORT_FILE, build_report

    if existing_only and not (out_dir / REPORT_FILE).is_file():
        return
    try:
        with output_lock(out_dir):
            path = build_report(out_dir, reuse=True)
    except OutputBusy as exc:
        make_console(stderr=True).print(
            plain(f"voiceprep: the report was not refreshed: {exc}"), markup=False, highlight=False
        )
        return
    except Exception as exc:
        if state["debug"]:
            raise
        make_console(stderr=True).print(
            plain(
                f"voiceprep: the report could not be written ({type(exc).__name__}: {exc}); "
                f"try `voiceprep --debug report --out {out_dir}`"
            ),
            markup=False,
            highlight=False,
        )
        return
    make_console().print(f"report: {plain(path)}", markup=False, highlight=False)
