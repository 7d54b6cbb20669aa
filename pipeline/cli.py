"""The ``voiceprep`` command line: thin wrappers that parse, call the library and print with rich.

Exit codes (documented in the README):
    0  everything asked for succeeded (no file failed, no verdict is ``fail``)
    1  the command ran, but at least one file failed or one verdict is ``fail``
    2  usage error: bad option, unknown family, invalid configuration
    3  internal error (a bug): the message says so; ``--debug`` shows the traceback
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pipeline.errors import VoiceprepError

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3

app = typer.Typer(
    name="voiceprep",
    help="Turn raw voice recordings into enrollment-ready clips for cloud voice cloning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
families_app = typer.Typer(help="List the model families and show their rules.", no_args_is_help=False)
app.add_typer(families_app, name="families")

_state = {"debug": False}
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    """voiceprep: prepare voice recordings for cloud voice cloning."""
    _state["debug"] = debug


def _fmt(value: object, digits: int = 2) -> str:
    """Format a table cell: ``-`` for missing values, rounded floats."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


@app.command()
def probe(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (searched recursively).")],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line instead of a table.")
    ] = False,
    stream: Annotated[int, typer.Option("--stream", min=0, help="Which audio stream of a container.")] = 0,
    max_duration: Annotated[
        float, typer.Option("--max-duration", min=0.0, help="Longest input accepted, in seconds.")
    ] = 4 * 3600.0,
) -> None:
    """Read each file's header: format, codec, rate, channels, duration, size and sha256."""
    from pipeline.audio.io import probe_row
    from pipeline.audio.scan import scan

    rows: list[dict] = []
    for item in scan(paths):
        if item.problem is not None:
            from pipeline.reasons import reason

            row = {
                "path": str(item.path),
                "status": "failed",
                "reasons": [item.problem],
                "message": reason(item.problem).message,
            }
        else:
            row = probe_row(item.path, stream_index=stream, max_duration_s=max_duration)
        rows.append(row)
        if as_json:
            print(json.dumps(row, ensure_ascii=False), flush=True)
    if not rows:
        err.print("voiceprep: no audio files found in " + ", ".join(str(p) for p in paths))
        raise typer.Exit(EXIT_FAILURES)
    failed = sum(1 for r in rows if r.get("status") != "ok")
    if not as_json:
        _print_probe_table(rows)
        summary = f"{len(rows)} files: {len(rows) - failed} ok, {failed} failed"
        out.print(summary, style="bold red" if failed else "bold green")
    raise typer.Exit(EXIT_FAILURES if failed else EXIT_OK)


def _print_probe_table(rows: list[dict]) -> None:
    table = Table(show_lines=False, header_style="bold")
    for col in ("file", "status", "format", "codec", "rate", "ch", "duration", "sample fmt", "size", "note"):
        table.add_column(col, justify="right" if col in {"rate", "ch", "duration", "size"} else "left")
    for r in rows:
        ok = r.get("status") == "ok"
        reasons = ", ".join(r.get("reasons") or [])
        note = reasons if ok else f"{reasons}: {r.get('message') or ''}"
        duration = r.get("duration_s")
        table.add_row(
            str(r.get("path")),
            "[green]ok[/]" if ok else "[red]failed[/]",
            _fmt(r.get("format")),
            _fmt(r.get("codec")),
            _fmt(r.get("sample_rate")),
            _fmt(r.get("channels")),
            "-" if duration is None else f"{duration:.2f} s",
            _fmt(r.get("sample_format")),
            _human_bytes(r.get("bytes")),
            note,
        )
    out.print(table)


@families_app.callback(invoke_without_command=True)
def families_list(ctx: typer.Context) -> None:
    """List the model families voiceprep knows (``voiceprep families show NAME`` for the rules)."""
    if ctx.invoked_subcommand is not None:
        return
    from pipeline.families import load_all

    specs = load_all()
    table = Table(header_style="bold")
    for col in ("family", "service", "provider", "rate (min)", "duration (hard)", "aim", "max size"):
        table.add_column(col)
    for name, spec in specs.items():
        lim, dlv = spec.limits, spec.delivery
        table.add_row(
            name,
            spec.title,
            spec.provider,
            _fmt(getattr(getattr(lim, "min_sample_rate", None), "value", None)),
            f"{_fmt(lim.min_duration_s.value, 0)}-{_fmt(lim.max_duration_s.value, 0)} s",
            f"{_fmt(dlv.duration_aim_s, 0)} s",
            _human_bytes(getattr(getattr(lim, "max_bytes", None), "value", None)),
        )
    out.print(table)


@families_app.command("show")
def families_show(name: Annotated[str, typer.Argument(help="Family name, e.g. qwen-tts.")]) -> None:
    """Print every rule of one family: limits, delivery choices and quality gates, with sources."""
    from pipeline.families import describe, load_family

    spec = load_family(name)
    out.print(f"[bold]{spec.name}[/]: {spec.title} (provider {spec.provider})")
    table = Table(header_style="bold")
    for col in ("group", "rule", "value", "source"):
        table.add_column(col)
    for group, rule, value, source in describe(spec):
        table.add_row(group, rule, value, source)
    out.print(table)


def main() -> None:
    """Console-script entry point: run the app, turning errors into one line and an exit code."""
    debug = "--debug" in sys.argv[1:]
    try:
        result = app(standalone_mode=False)
    except SystemExit:
        raise
    except VoiceprepError as exc:
        if debug:
            raise
        err.print(f"voiceprep: error: {exc}", markup=False, highlight=False)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        err.print("voiceprep: interrupted")
        sys.exit(130)
    except Exception as exc:  # a bug: one line unless --debug
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(EXIT_USAGE)
        if isinstance(exc, click.exceptions.Abort):
            err.print("voiceprep: aborted")
            sys.exit(EXIT_USAGE)
        if debug:
            raise
        err.print(
            f"voiceprep: internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
            markup=False,
            highlight=False,
        )
        sys.exit(EXIT_INTERNAL)
    sys.exit(result if isinstance(result, int) else EXIT_OK)


if __name__ == "__main__":
    main()
