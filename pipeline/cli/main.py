"""The ``voiceprep`` command line: thin wrappers that parse, call the library and print with rich.

Exit codes: :mod:`pipeline.cli.common`.
"""

from __future__ import annotations

import contextlib
import shlex
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from rich.table import Table

from pipeline.cli.common import (
    EXIT_BUSY,
    EXIT_FAILURES,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_USAGE,
    Dnsmos,
    Export,
    Families,
    Paths,
    Preview,
    RunFolder,
    fail,
    make_console,
    plain,
    print_json,
    shown,
    state,
    write_report,
)
from pipeline.cli.speak import speak_command
from pipeline.cli.voices import submit_command, voices_app
from pipeline.errors import VoiceprepError

if TYPE_CHECKING:
    from pipeline.audio.scan import InputFile
    from pipeline.report.results import RunResults
    from pipeline.rules.checks import CheckResult

app = typer.Typer(
    name="voiceprep",
    help="Turn raw voice recordings into enrollment-ready clips for cloud voice cloning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
families_app = typer.Typer(
    help="List the model families and show their rules.\n\nExample: voiceprep families show qwen-tts",
    no_args_is_help=False,
)
app.add_typer(families_app, name="families")


out = make_console()
err = make_console(stderr=True)


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    """voiceprep: prepare voice recordings for cloud voice cloning."""
    state["debug"] = debug


def _scan(paths: list[Path]) -> list[InputFile]:
    """The files named or found under folders (a missing path is kept, with its problem); exits 1 when
    there are none."""
    from pipeline.audio.scan import scan

    items = list(scan(paths))
    if not items:
        raise fail("no audio files found in " + ", ".join(str(p) for p in paths), EXIT_FAILURES)
    return items


@app.command()
def probe(
    paths: Paths,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line instead of a table.")
    ] = False,
    stream: Annotated[int, typer.Option("--stream", min=0, help="Which audio stream of a container.")] = 0,
    max_input: Annotated[
        float, typer.Option("--max-input", min=0.0, help="Longest input accepted, in seconds.")
    ] = 4 * 3600.0,
    old_max_input: Annotated[
        float | None, typer.Option("--max-duration", min=0.0, hidden=True, show_default=False)
    ] = None,
) -> None:
    """Read each file's header: format, codec, rate, channels, duration, size and sha256.

    Example: voiceprep probe recordings/ --json
    """
    from pipeline.audio.io import probe_row

    rows: list[dict] = []
    for item in _scan(paths):
        if item.problem is not None:
            from pipeline.errors import reason_message

            row = {
                "path": item.source,
                "status": "failed",
                "reasons": [item.problem],
                "message": reason_message(item.problem),
            }
        else:
            row = probe_row(
                item.source,
                stream_index=stream,
                max_input_s=max_input if old_max_input is None else old_max_input,
            )
        rows.append(row)
        if as_json:
            print_json(row)
    failed = sum(1 for r in rows if r.get("status") != "ok")
    if not as_json:
        _print_probe_table(rows)
        summary = f"{len(rows)} files: {len(rows) - failed} ok, {failed} failed"
        out.print(summary, style="bold red" if failed else "bold green")
    raise typer.Exit(EXIT_FAILURES if failed else EXIT_OK)


_PROBE_HEADERS = {
    "sample_rate": "rate",
    "channels": "ch",
    "duration_s": "duration",
    "sample_format": "sample fmt",
    "bytes": "size",
}
"""Headers of ``voiceprep probe``'s table that differ from the probe field's name (numbers right-aligned)."""


def _print_probe_table(rows: list[dict]) -> None:
    from pipeline.audio.io import PROBE_FIELDS
    from pipeline.rules.metrics import unit_of, value_text

    table = Table(show_lines=False, header_style="bold")
    table.add_column("file", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for key in PROBE_FIELDS:
        numeric = key in {"sample_rate", "channels", "duration_s", "bytes"}
        header = _PROBE_HEADERS.get(key, key)
        table.add_column(header, justify="right" if numeric else "left", no_wrap=True)
    table.add_column("note")
    for r in rows:
        status = "[green]ok[/]" if r.get("status") == "ok" else "[red]failed[/]"
        cells = [value_text(key, r.get(key), unit_of(key)) for key in PROBE_FIELDS]
        table.add_row(shown(r.get("path")), status, *cells, ", ".join(r.get("reasons") or []))
    out.print(table)
    for r in rows:
        if r.get("status") != "ok" or r.get("reasons"):
            codes = ", ".join(r.get("reasons") or [])
            line = f"  {plain(r.get('path'))}: {codes}: {plain(r.get('message') or '')}"
            out.print(line, highlight=False, markup=False)


CHANNEL_STRATEGIES = ("best", "first", "mean")
"""``--channel-strategy`` (:data:`pipeline.audio.mix.STRATEGIES`, named here so the CLI starts without numpy)."""


@app.command()
def analyze(
    paths: Paths,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    dnsmos: Dnsmos = None,
    channel_strategy: Annotated[
        str,
        typer.Option(
            "--channel-strategy",
            click_type=click.Choice(CHANNEL_STRATEGIES),
            help="Which channel(s) to hear: best, first or mean.",
            metavar="STRATEGY",
        ),
    ] = "best",
    old_channel_strategy: Annotated[
        str | None,
        typer.Option(
            "--channels", click_type=click.Choice(CHANNEL_STRATEGIES), hidden=True, show_default=False
        ),
    ] = None,
) -> None:
    """Measure each recording: speech, runs and pauses, SNR, reverb, clipping, bandwidth, loudness.

    Example: voiceprep analyze memo.m4a --channel-strategy first
    """
    from pipeline.analysis.inspection import analyze as analyze_one
    from pipeline.audio.notes import collect
    from pipeline.errors import AudioReadError, reason_message, without_path
    from pipeline.rules.metrics import FAST_PASS_METRICS, METRICS, span_text, value_text

    channel_strategy = old_channel_strategy or channel_strategy
    failed = 0
    for path, problem in [(item.source, item.problem) for item in _scan(paths)]:
        row: dict = {"path": path}
        with collect() as notes:  # what the decoders say about this file: one tidy line, never raw
            try:
                if problem is not None:
                    raise AudioReadError(problem, reason_message(problem))
                a = analyze_one(path, dnsmos=dnsmos, channel_strategy=channel_strategy)
                row.update(
                    status="ok",
                    reasons=a.warnings,
                    message="",
                    metrics=a.metrics,
                    null_reasons=a.null_reasons,
                )
            except AudioReadError as exc:
                failed += 1
                row.update(status="failed", reasons=[exc.reason], message=exc.message, metrics=None)
        row["decode_notes"] = notes.entries()
        if as_json:
            print_json(row)
            continue
        if row["status"] != "ok":
            message = without_path(row["message"], path)  # the line names the file
            out.print(f"{shown(path)}: [red]failed[/] ({row['reasons'][0]}): {shown(message)}")
            _print_decode_notes(row["decode_notes"])
            continue
        table = Table(
            title=shown(path),
            title_justify="left",
            header_style="bold",
            show_edge=False,
            width=min(out.width, ANALYZE_WIDTH),
        )
        table.add_column("metric", no_wrap=True)
        table.add_column("value", justify="right", no_wrap=True)
        table.add_column("note", ratio=1)
        said: dict[str, str] = {}  # a note already given (the three DNSMOS scores share theirs): named once
        for name in FAST_PASS_METRICS:
            value = row["metrics"].get(name)
            note = METRICS[name].definition if value is not None else row["null_reasons"].get(name, "")
            if note and note in said:
                note = f"as {said[note]}"
            elif note:
                said[note] = name
            table.add_row(name, value_text(name, value), note)
        if "other_voice_s" in row["metrics"]:  # listened for (files up to 2 minutes)
            value = row["metrics"]["other_voice_s"]
            spans = row["metrics"].get("other_voice_spans") or []
            where = ", ".join(span_text(a, b) for a, b in spans)
            note = f"another voice at {where}" if spans else row["null_reasons"].get("other_voice_s", "")
            table.add_row("other_voice_s", value_text("other_voice_s", value), note or "one voice only")
        out.print(table)
        if row["reasons"]:
            out.print(f"  warnings: {', '.join(row['reasons'])}")
        _print_decode_notes(row["decode_notes"])
    raise typer.Exit(EXIT_FAILURES if failed else EXIT_OK)


def _print_decode_notes(entries: list[dict[str, Any]]) -> None:
    """One line of what the decoders said about a file (``check``, ``analyze``), if anything."""
    from pipeline.audio.notes import describe

    if entries:
        out.print(f"  decoder notes: {describe(entries)}", markup=False, highlight=False)


ANALYZE_WIDTH = 100
"""The widest ``analyze`` table (columns): its notes wrap to fit a 100-column terminal or log, however wide
the console is (160 when the output is not a terminal)."""

_VERDICT_STYLE = {"pass": "bold green", "warn": "bold yellow", "fail": "bold red"}


@app.command()
def check(
    paths: Paths,
    family: Families = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per file and family.")] = False,
    dnsmos: Dnsmos = None,
) -> None:
    """Judge each file as it is, as the service would receive it: verdict, reasons, fix hints.

    Example: voiceprep check memo.m4a --family qwen-tts --family minimax
    """
    from pipeline.analysis.inspection import check_families
    from pipeline.audio.notes import collect
    from pipeline.errors import reason_message
    from pipeline.rules.checks import failed_read
    from pipeline.rules.families import list_families, load_family

    specs = [load_family(name) for name in (family or list_families())]
    any_fail = False
    for path, problem in [(item.source, item.problem) for item in _scan(paths)]:
        with collect() as notes:  # what the decoders say about this file: one tidy line, never raw
            if problem is not None:
                results = [failed_read(path, s.name, problem, reason_message(problem)) for s in specs]
            else:
                results = check_families(path, specs, dnsmos=dnsmos)
        decode_notes = notes.entries()
        unreadable = bool(results) and all(_is_unreadable(r) for r in results)
        for index, result in enumerate(results):
            any_fail = any_fail or result.verdict == "fail"
            if as_json:
                row = {**result.to_dict(), "decode_notes": decode_notes}
                print_json(row)
                continue
            if unreadable:  # one file problem, the same for every family: said once, naming them all
                if index == 0:
                    _print_check(result, families=[r.family for r in results])
                continue
            _print_check(result)
        if not as_json:
            _print_decode_notes(decode_notes)
    raise typer.Exit(EXIT_FAILURES if any_fail else EXIT_OK)


def _is_unreadable(result: CheckResult) -> bool:
    """The file itself could not be read (missing, no sound, corrupt): its one check is ``readable``."""
    return [c.rule for c in result.checks] == ["readable"] and result.verdict == "fail"


def _print_check(result: CheckResult, families: list[str] | None = None) -> None:
    """One file's verdict for its family (or for ``families``, when the verdict is the same for each)."""
    from pipeline.errors import without_path

    style = _VERDICT_STYLE[result.verdict]
    # The verdict's own codes first; a FAIL's warnings are named as such (not read as failures).
    failing = list(dict.fromkeys(c.reason for c in result.problems if c.reason and c.verdict == "fail"))
    warning = [r for r in result.reasons if r not in failing]
    parts = [", ".join(failing)] if failing else []
    if warning:
        parts.append(("warn: " if failing else "") + ", ".join(warning))
    reasons = f" ({'; '.join(parts)})" if parts else ""
    out.print(
        f"[{style}]{result.verdict.upper():4}[/] {shown(result.path)} [dim]for[/] "
        f"{', '.join(families or [result.family])}{reasons}"
    )
    for c in result.problems:
        mark = "[red]x[/]" if c.verdict == "fail" else "[yellow]![/]"
        message = without_path(c.message, result.path)  # the line above names the file
        out.print(f"     {mark} {shown(message)}", highlight=False)
        if c.hint:
            out.print(f"       [dim]fix: {c.hint}[/]", highlight=False)


@app.command("run")
def run_command(
    input_path: Annotated[
        Path, typer.Argument(help="A folder (one subfolder per speaker) or a file.", show_default=False)
    ],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("out"),
    family: Families = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="Workers (default: cores).", show_default=False)
    ] = None,
    executor: Annotated[
        str | None,
        typer.Option(
            "--executor",
            click_type=click.Choice(("serial", "processes", "dask")),
            metavar="TEXT",
            help="serial, processes (default) or dask.",
            show_default=False,
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler", help="Dask scheduler address (with --executor dask).", show_default=False
        ),
    ] = None,
    no_resume: Annotated[bool, typer.Option("--no-resume", help="Ignore cached results.")] = False,
    config: Annotated[
        Path | None, typer.Option("--config", help="A voiceprep.yaml with settings.", show_default=False)
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 unless every clip is ready.")] = False,
    speaker: Annotated[
        str | None,
        typer.Option("--speaker", help="Treat the whole input as this one speaker.", show_default=False),
    ] = None,
    speaker_map: Annotated[
        Path | None,
        typer.Option(
            "--speaker-map",
            help=(
                "CSV with columns path, speaker[, reference[, language]] overriding the folders (reference: the speaker's "
                "voice; language: sent when the voice is made)."
            ),
            show_default=False,
        ),
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(
            "--reference",
            help="A recording of the speaker alone: their voice (default: the dominant voice of their files).",
            show_default=False,
        ),
    ] = None,
    export: Export = None,
    submit: Annotated[
        bool, typer.Option("--submit", help="Then submit the ready clips (as `voiceprep submit --out OUT`).")
    ] = False,
    preview: Preview = None,
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            help="intl or cn: the providers' region for --submit (hosts, keys, models offered).",
            show_default=False,
        ),
    ] = None,
    language: Annotated[
        str | None,
        typer.Option(
            "--language",
            help="The speakers' language (en, zh...), sent when the voices are made; per speaker: the "
            "speaker map's 4th column.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Pick, render and re-check the best enrollment clip per speaker and family.

    Example: voiceprep run recordings/ --out out/ --family qwen-tts --jobs 2
    """
    from pipeline.batch.config import load_config
    from pipeline.batch.outputs import OutputBusy, output_lock
    from pipeline.batch.runner import RunError, prepare_output, run
    from pipeline.rules.families import load_family

    if scheduler is not None and executor not in {None, "dask"}:
        raise typer.BadParameter("--scheduler needs --executor dask")
    from pipeline.errors import SpecError

    try:
        cfg = load_config(config, region=region and region.strip().lower(), language=language)
    except SpecError as exc:  # an invalid configuration is a usage error (2), as for every command
        raise fail(f"invalid configuration: {exc}", EXIT_USAGE) from None
    for name in family or cfg.families:  # an unknown family is a usage error before OUT is made
        load_family(name)
    kind = "dask" if scheduler is not None and executor is None else executor
    preloading = _preload_report()
    with contextlib.ExitStack() as held:  # the lock, over the run, its report and --submit
        try:
            held.enter_context(output_lock(prepare_output(input_path, out_dir)))
            with _run_progress() as progress:
                written = run(
                    input_path,
                    out_dir,
                    families=family,
                    config=cfg,
                    executor=kind,
                    jobs=jobs,
                    scheduler=scheduler,
                    resume=not no_resume,
                    speaker=speaker,
                    speaker_map=speaker_map,
                    reference=reference,
                    progress=progress,
                )
        except OutputBusy as exc:
            raise fail(f"cannot run: {exc}", EXIT_BUSY) from None
        except RunError as exc:
            raise fail(f"cannot run: {exc}", EXIT_INTERNAL) from None
        preloading.join()  # done long before; after it, this thread imports nothing it is importing
        from pipeline.report.results import load_run

        results = load_run(written)
        for fmt in export or []:
            results.export(fmt)
        _print_run_summary(results, written)
        all_ready = all(c["status"] in {"ready", "submitted"} for c in results.clip_rows)
        code = EXIT_FAILURES if strict and not all_ready else EXIT_OK
        if submit:
            code = max(code, _submit_after_run(written, family, preview, config, cfg.region, cfg.language))
        write_report(written)
    raise typer.Exit(code)


def _preload_report() -> threading.Thread:
    """Import the report's libraries in a thread while the run works (:func:`pipeline.report.build.preload`):
    the report is built at the end, when every worker is done. A daemon thread: a run that fails early
    does not wait for it."""

    def preload() -> None:
        from pipeline.report.build import preload

        preload()

    thread = threading.Thread(target=preload, name="voiceprep-report-preload", daemon=True)
    thread.start()
    return thread


@app.command("report")
def report_command(
    out_dir: RunFolder = Path("out"),
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", help="Where to write the page (default: OUT/report.html).", show_default=False
        ),
    ] = None,
    export: Export = None,
) -> None:
    """Rebuild the HTML quality report of a run from its manifests and voice ledger (no re-analysis).

    Example: voiceprep report --out out/ --export parquet
    """
    from pipeline.batch.outputs import OutputBusy, output_lock
    from pipeline.report.build import build_report

    try:
        with output_lock(out_dir) if out_dir.is_dir() else contextlib.nullcontext():
            path = build_report(out_dir, dest=output)
    except OutputBusy as exc:
        raise fail(f"cannot write the report: {exc}", EXIT_BUSY) from None
    if export:
        from pipeline.report.results import load_run

        results = load_run(out_dir)
        for fmt in export:
            for written in results.export(fmt):
                out.print(f"wrote {plain(written)}", markup=False, highlight=False)
    out.print(f"report: {plain(path)}", markup=False, highlight=False)


@app.command("explain")
def explain_command(
    speaker: Annotated[
        str, typer.Argument(help="The speaker (the folder name under the run's input).", show_default=False)
    ],
    family: Annotated[
        str | None,
        typer.Argument(
            metavar="[FAMILY]",
            help="Only this family (default: every family of the run).",
            show_default=False,
        ),
    ] = None,
    out_dir: RunFolder = Path("out"),
) -> None:
    """Why a speaker's clip is what it is: the chosen window, the runners-up and what they lost on, and
    every recording of the speaker with why it was or was not used.

    Example: voiceprep explain alice qwen-tts --out out/
    """
    from pipeline.report.explain import explain
    from pipeline.report.results import load_run

    text = plain(explain(load_run(out_dir), speaker, family), lines=True)
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def _submit_after_run(
    out_dir: Path,
    family: list[str] | None,
    preview: str | None,
    config: Path | None,
    region: str | None = None,
    language: str | None = None,
) -> int:
    """``voiceprep submit OUT`` after a run; returns its exit code."""
    try:
        submit_command(
            out_dir=out_dir,
            family=family,
            preview=preview,
            config=config,
            region=region,
            language=[language] if language else None,
        )
    except typer.Exit as done:
        return int(done.exit_code)
    return EXIT_OK


def _tally(show: Callable[[str, dict[str, float], Any], None]) -> Callable[[str, dict], None]:
    """The runner's ``progress`` callback: keeps the tallies (``files`` and ``clips`` done, their ``_total``,
    ``audio_s`` analysed) and hands each event, the tallies and the event's row to ``show``, a renderer."""
    tally = {"files": 0, "files_total": 0, "clips": 0, "clips_total": 0, "audio_s": 0.0}

    def on_event(event: str, data: dict) -> None:
        row = data.get("row")
        if event == "start":
            tally["files_total"] = int(data["files"])
        elif event == "recording":
            tally["files"] += 1
            tally["audio_s"] += float((row.probe or {}).get("duration_s") or 0.0)
        elif event == "clips":
            tally["clips_total"] = int(data["total"])
        elif event == "clip":
            tally["clips"] += 1
        show(event, tally, row)

    return on_event


@contextlib.contextmanager
def _run_progress() -> Iterator[Callable[[str, dict], None]]:
    """The runner's ``progress`` callback (:func:`_tally`) with its renderer: on a terminal stderr a rich
    progress bar (files, hours of audio, rate, ETA); else (a pipe, a log file) one plain line per finished
    recording (``analysed 3/12 recordings: alice/memo.m4a (ok; 1:05 of audio so far)``) and per finished
    clip (``clip 2/8: alice/qwen-tts ready``), so a long run shows that it is alive."""
    from pipeline.rules.metrics import audio_length

    if not err.is_terminal:

        def write(event: str, n: dict[str, float], row: Any) -> None:
            if event == "recording":
                line = (
                    f"analysed {n['files']}/{n['files_total']} recordings: {row.path} "
                    f"({row.status}; {audio_length(n['audio_s'])} of audio so far)"
                )
            elif event == "clip":
                line = f"clip {n['clips']}/{n['clips_total']}: {row.speaker}/{row.family} {row.status}"
            else:
                return
            err.print(plain(line), markup=False, highlight=False, soft_wrap=True)

        yield _tally(write)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )
    tasks: dict[str, Any] = {}
    started = time.perf_counter()

    def draw(event: str, n: dict[str, float], row: Any) -> None:
        if event == "start":
            tasks["files"] = bar.add_task("analysing", total=n["files_total"], info="")
        elif event == "recording" and "files" in tasks:
            rate = n["audio_s"] / max(time.perf_counter() - started, 1e-6)
            info = f"{audio_length(n['audio_s'])} of audio, {rate:.0f}x real time"
            bar.update(tasks["files"], completed=n["files"], info=info)
        elif event == "clips":
            tasks["clips"] = bar.add_task("clips    ", total=n["clips_total"], info="")
        elif event == "clip" and "clips" in tasks:
            info = shown(f"{row.speaker}/{row.family}: {row.status}")
            bar.update(tasks["clips"], completed=n["clips"], info=info)

    with bar:
        yield _tally(draw)


_STATUS_STYLE = {"ready": "green", "submitted": "green", "rejected": "yellow", "failed": "red"}


def _print_run_summary(results: RunResults, out_dir: Path) -> None:
    """The speakers x families table, the counts and where the outputs are (``out_dir`` as given)."""
    from pipeline.rules.metrics import audio_length, counted

    clips = results.clip_rows
    families = sorted({c["family"] for c in clips})
    speakers = sorted({c["speaker"] for c in clips} | {r["speaker"] for r in results.recording_rows})
    by_key = {(c["speaker"], c["family"]): c for c in clips}
    table = Table(title="clips per speaker and family", title_justify="left", header_style="bold")
    table.add_column("speaker")
    for fam in families:
        table.add_column(fam)
    for who in speakers:
        cells = []
        for fam in families:
            c = by_key.get((who, fam))
            if c is None:
                cells.append("-")
                continue
            status, reasons = c["status"], c["reasons"]
            style = _STATUS_STYLE.get(status, "white")
            if not reasons:
                top = ""
            elif status in {"ready", "submitted"}:
                top = f" [yellow]warn: {reasons[0]}[/]"  # ready, with a quality warning
            else:
                top = f" ({reasons[0]})"
            dur = f" {c['duration_s']:.1f}s" if c["duration_s"] and status == "ready" else ""
            cells.append(f"[{style}]{status}[/]{dur}{top}")
        table.add_row(shown(who), *cells)
    out.print(table)
    counts = results.run["counts"]
    failed = [r for r in results.recording_rows if r["status"] != "ok"]
    out.print(
        f"{counted(counts['recordings'], 'recording')} ({audio_length(counts['audio_hours'] * 3600)} of audio), "
        f"{counts['recordings_failed']} failed; {counted(len(clips), 'clip')}: "
        + ", ".join(f"{n} {s}" for s, n in sorted(Counter(c["status"] for c in clips).items()))
        + f"; {results.run['seconds']:.1f} s"
    )
    for r in failed:
        out.print(
            f"  [red]failed[/] {shown(r['path'])}: {', '.join(r['reasons'])}: {shown(r['message'])}",
            highlight=False,
        )
    for r in results.recording_rows:
        if r["status"] == "ok" and "speaker_mismatch" in r["reasons"]:
            out.print(
                f"  [yellow]left out[/] {shown(r['path'])}: speaker_mismatch: {shown(r['message'])}",
                highlight=False,
            )
    noted = counts.get("recordings_with_decode_notes", 0)
    if noted:
        line = f"{counted(noted, 'recording')} had decoder notes (see decode_notes in recordings.jsonl)"
        out.print(line, highlight=False)
    not_audio = results.run.get("inputs_not_audio") or {}
    if not_audio:
        from pipeline.batch.runner import not_audio_text

        out.print(not_audio_text(not_audio), markup=False, highlight=False)
    inside = results.run.get("inputs_inside_out") or []
    if inside:
        names = ", ".join(plain(p) for p in inside[:3]) + (
            f" and {len(inside) - 3} more" if len(inside) > 3 else ""
        )
        out.print(
            f"{len(inside)} input files are inside the output folder and were not read: {names}",
            markup=False,
            highlight=False,
        )
    not_ready = [c for c in clips if c["status"] in {"rejected", "failed"}]
    if not_ready:
        first = not_ready[0]
        who, where = shlex.quote(plain(first["speaker"])), shlex.quote(plain(str(out_dir)))
        command = f"voiceprep explain {who} {first['family']} --out {where}"
        out.print(f"why a clip is not ready: {command}", markup=False, highlight=False)
    out.print(f"outputs in {shown(out_dir)}/ (clips/, recordings.jsonl, clips.jsonl, run.json)")


@families_app.callback(invoke_without_command=True)
def families_list(ctx: typer.Context) -> None:
    """List the model families voiceprep knows (``voiceprep families show NAME`` for the rules).

    Example: voiceprep families show qwen-tts
    """
    if ctx.invoked_subcommand is not None:
        return
    from pipeline.rules.families import load_all
    from pipeline.rules.metrics import range_text, value_text

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
            value_text("min_sample_rate", lim.min_sample_rate.value, "Hz"),
            range_text(lim.min_duration_s.value, lim.max_duration_s.value, "s"),
            f"{value_text('aim_s', dlv.duration_s.aim)} ({range_text(dlv.duration_s.min, dlv.duration_s.max)})",
            value_text("max_bytes", lim.max_bytes.value),
        )
    out.print(table)


@families_app.command("show")
def families_show(
    name: Annotated[str, typer.Argument(help="Family name, e.g. qwen-tts.", show_default=False)],
) -> None:
    """Print every rule of one family: limits, delivery choices and quality gates, with sources.

    Example: voiceprep families show cosyvoice
    """
    from pipeline.rules.families import describe, load_family

    spec = load_family(name)
    out.print(f"[bold]{spec.name}[/]: {spec.title} (provider {spec.provider})")
    table = Table(header_style="bold")
    for col in ("group", "rule", "value", "source"):
        table.add_column(col)
    for group, rule, value, source in describe(spec):
        table.add_row(group, rule, value, source)
    out.print(table)


# ``submit``, ``voices ...`` (:mod:`pipeline.cli.voices`) and ``speak`` (:mod:`pipeline.cli.speak`): the network edge's CLI, listed last.
app.command("submit")(submit_command)
app.command("speak")(speak_command)
app.add_typer(voices_app, name="voices")


OLD_POSITIONAL_OUT = ("report", "submit")
"""Commands that took the run folder as a positional OUT before they took ``--out`` like ``run``."""


def accept_old_spellings(argv: list[str]) -> list[str]:
    """``voiceprep report OUT ...`` as ``voiceprep report --out OUT ...`` (the old spelling, kept for one
    release without being shown in the help)."""
    for i, word in enumerate(argv):
        if word.startswith("-"):
            continue
        if word in OLD_POSITIONAL_OUT and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            return [*argv[: i + 1], "--out", *argv[i + 1 :]]
        break
    return argv


def main() -> None:
    """Console-script entry point: run the app, turning errors into one line and an exit code."""
    state["debug"] = False  # until the app's callback reads --debug
    try:
        result = app(args=accept_old_spellings(sys.argv[1:]), standalone_mode=False)
    except VoiceprepError as exc:
        if state["debug"]:
            raise
        sys.exit(fail(f"error: {exc}", EXIT_USAGE).exit_code)
    except KeyboardInterrupt:
        err.print("voiceprep: interrupted")
        sys.exit(130)
    except Exception as exc:  # a bug: one line unless --debug
        # typer vendors its own click, so usage errors are recognised by shape, not by class.
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(EXIT_USAGE)
        if type(exc).__name__ == "Abort":
            err.print("voiceprep: aborted")
            sys.exit(EXIT_USAGE)
        if state["debug"]:
            raise
        internal = f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)"
        sys.exit(fail(internal, EXIT_INTERNAL).exit_code)
    sys.exit(result if isinstance(result, int) else EXIT_OK)


if __name__ == "__main__":
    main()
