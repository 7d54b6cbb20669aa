"""``voiceprep submit`` and ``voiceprep voices ...``: thin typer wrappers over :mod:`pipeline.enroll.submit` and
:mod:`pipeline.enroll.voices`.

Registered by the main CLI with::

    from pipeline.cli.voices import submit_command, voices_app
    app.command("submit")(submit_command)
    app.add_typer(voices_app, name="voices")

Exit codes (:mod:`pipeline.cli.common`), as they apply here:
    0  every clip ends with a usable voice (``ready``, or ``deploying`` = under review); a clean dry run
    1  the command ran but something needs attention: a create failed or was rejected, a voice's state is
       ``unknown``, a dry run found a problem, the ledger is busy, the user declined a delete; a **partial
       submit**: some families had no API key (skipped; one line per variable says how to enable them)
    2  usage: unknown family/speaker/model, no ``clips.jsonl`` or ledger, bad option, **no API key for any
       family in scope** (one line naming the environment variable(s) to set; nothing attempted)
    3  internal error (a bug)
    4  another voiceprep process (a ``run``, another ``submit``) holds ``OUT/.voiceprep.lock`` of the run
       folder a writer (``submit``, ``voices sync``/``update``/``delete``) would change; one line names it
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pipeline.cli.common import (
    EXIT_BUSY,
    EXIT_FAILURES,
    EXIT_OK,
    EXIT_USAGE,
    Families,
    Preview,
    Region,
    RunFolder,
    fail,
    make_console,
    plain,
    region_choice,
    shown,  # names and provider messages, printed as themselves
    write_report,
)
from pipeline.errors import VoiceprepError

if TYPE_CHECKING:
    from pipeline.enroll.providers.base import VoiceRecord

__all__ = ["submit_command", "voices_app"]

voices_app = typer.Typer(
    help="List, show, update, delete and sync the cloned voices recorded in the voice ledger.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_STATUS_STYLE = {
    "ready": "green",
    "deploying": "cyan",
    "pending": "yellow",
    "unknown": "bold yellow",
    "rejected": "red",
    "failed": "red",
    "gone": "dim",
    "deleted": "dim",
    "skipped": "yellow",
    "dry-run": "blue",
}


@contextmanager
def _errors() -> Iterator[None]:
    """Turn the expected errors into one line and an exit code (a missing key, a bad value: 2); a
    provider's message is scrubbed of keys once more."""
    from pipeline.batch.outputs import OutputBusy
    from pipeline.enroll.ledger import LedgerBusy, scrub
    from pipeline.enroll.providers.base import ProviderError

    try:
        yield
    except OutputBusy as exc:  # a run (or another writer) holds OUT/.voiceprep.lock: as `run` says it
        raise fail(f"cannot write: {exc}", EXIT_BUSY) from None
    except LedgerBusy as exc:
        raise fail(str(exc), EXIT_FAILURES) from None
    except ProviderError as exc:
        if exc.reason == "missing_api_key":
            raise fail(exc.message, EXIT_USAGE) from None
        raise fail(scrub(f"{exc.reason}: {exc.message}"), EXIT_FAILURES) from None
    except VoiceprepError as exc:
        raise fail(str(exc), EXIT_USAGE) from None


def _pairs(values: Sequence[str] | None, option: str, *, single_key: str | None = None) -> dict[str, str]:
    """``KEY=VALUE`` options as a dict; a bare ``VALUE`` is allowed when ``single_key`` says for what."""
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep:
            if single_key is None:
                raise typer.BadParameter(f"{option} takes NAME=VALUE (got {item!r})")
            key, value = single_key, item
        if not key or not value:
            raise typer.BadParameter(f"{option} takes NAME=VALUE (got {item!r})")
        out[key.strip()] = value.strip()
    return out


def _ledger_path(out_dir: Path | None, ledger: Path | None, config: Path | None) -> Path:
    """``--ledger``, else the config's ``ledger``, else ``OUT/voices.sqlite``."""
    from pipeline.batch.config import load_config
    from pipeline.enroll.ledger import default_ledger_path

    if ledger is not None:
        return ledger
    configured = load_config(config).ledger if config is not None else None
    return default_ledger_path(out_dir or Path("out"), configured)


def _audio_options(cfg: Any, source: str | None, template: str | None) -> dict[str, str | None]:
    """How CosyVoice fetches a clip (``audio_source``, ``audio_url_template`` of a RunConfig):
    ``--audio-source``/``--audio-url-template``, else ``cfg``'s (None: the region's default)."""
    chosen = source or cfg.audio_source
    url_template = template or cfg.audio_url_template
    if template and source is None:
        chosen = "url_template"
    if chosen is not None and chosen not in {"oss", "url_template", "data_uri"}:
        raise typer.BadParameter(f"--audio-source must be oss, url_template or data_uri, got {chosen!r}")
    if chosen == "url_template" and not url_template:
        raise typer.BadParameter("--audio-source url_template needs --audio-url-template (or the config's)")
    return {"audio_source": chosen, "audio_url_template": url_template if chosen == "url_template" else None}


# --------------------------------------------------------------------------------------------- submit


def _print_outcomes(outcomes: Sequence[VoiceRecord], out_dir: Path, console: Console) -> None:
    """Print submit outcomes as a table (speaker, family, target model, voice id, status, note); previews
    are named relative to ``out_dir`` (``preview kept: PATH`` for one an earlier submit made)."""
    from pipeline.enroll.submit import PREVIEW_KEPT

    table = Table(header_style="bold", title="voices", title_justify="left")
    for col in ("speaker", "family", "target model", "voice id", "status", "note"):
        table.add_column(col, no_wrap=col in {"voice id", "status"})
    for o in outcomes:
        style = _STATUS_STYLE.get(o.status, "white")
        note = o.note or (o.last_error or {}).get("message", "")
        if o.reason and o.reason not in note:
            note = f"{o.reason}: {note}" if note else o.reason
        if o.preview_path:
            preview = Path(o.preview_path)
            for folder in (out_dir, out_dir.resolve()):
                preview = preview.relative_to(folder) if preview.is_relative_to(folder) else preview
            if note.endswith(PREVIEW_KEPT):  # made by an earlier submit, not synthesised again
                note = f"{note}: {preview.as_posix()}"
            else:
                note = f"{note}; preview {preview.as_posix()}" if note else f"preview {preview.as_posix()}"
        what = o.action if o.action not in {"created", "dry-run", o.status} else ""
        table.add_row(
            shown(o.speaker or "-"),
            o.family,
            shown(o.target_model or "-"),
            shown(o.voice_id or (f"({o.name})" if o.name else "-")),
            f"[{style}]{o.status}[/]" + (f" [dim]{what}[/]" if what else ""),
            shown(note or ""),
        )
    console.print(table)


def _print_dry_run(outcomes: Sequence[VoiceRecord], console: Console, region: str | None = None) -> None:
    from pipeline.enroll.ledger import scrub
    from pipeline.enroll.submit import unset_key_env

    for o in outcomes:
        head = f"[bold]{shown(o.speaker)}/{o.family}[/] -> {shown(o.target_model)} as {shown(o.name or '-')}"
        console.print(head, highlight=False)
        if o.note:
            console.print(f"  {o.note}", markup=False, highlight=False)
        for req in o.requests:
            console.print_json(scrub(json.dumps(req)), indent=2)  # built masked; scrub is the second guard
        for p in o.problems:
            console.print(f"  [red]x[/] {shown(p)}", highlight=False)
    from pipeline.enroll.providers import region_of

    bad = sum(1 for o in outcomes if o.problems)
    keyless = sorted(
        {
            env
            for o in outcomes
            if (env := unset_key_env(o.provider, region_of(o.provider, o.base_url or "") or region))
        }
    )
    _print_warnings_of(outcomes, console)
    unset = f"; a real submit needs {', '.join(keyless)} (not set)" if keyless else ""
    console.print(f"dry run: {len(outcomes)} clips, {bad} with problems; nothing was sent or written{unset}")


def submit_command(
    out_dir: RunFolder = Path("out"),
    family: Families = None,
    speaker: Annotated[
        list[str] | None,
        typer.Option("--speaker", help="Speaker (repeatable; default: all).", show_default=False),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Build and validate the requests; send and write nothing.")
    ] = False,
    preview: Preview = None,
    target_model: Annotated[
        list[str] | None,
        typer.Option(
            "--target-model",
            help="FAMILY=MODEL (repeatable; MODEL alone with one --family).",
            show_default=False,
        ),
    ] = None,
    base_url: Annotated[
        list[str] | None,
        typer.Option(
            "--base-url",
            help="FAMILY=URL or PROVIDER=URL: the region (default: env or config).",
            show_default=False,
        ),
    ] = None,
    ledger: Annotated[
        Path | None,
        typer.Option("--ledger", help="Voice ledger (default: OUT/voices.sqlite).", show_default=False),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="A voiceprep.yaml (ledger, models).", show_default=False)
    ] = None,
    audio_source: Annotated[
        str | None,
        typer.Option(
            "--audio-source",
            help="How CosyVoice fetches the clip: oss (DashScope temporary upload, default), "
            "url_template (your public storage), data_uri.",
            show_default=False,
        ),
    ] = None,
    audio_url_template: Annotated[
        str | None,
        typer.Option(
            "--audio-url-template",
            help="Public URL of each clip, e.g. https://bucket.example.com/vp/{clip_sha256}.wav "
            "(fields: clip_sha256, speaker, family, filename); you upload the clips there yourself.",
            show_default=False,
        ),
    ] = None,
    region: Region = None,
    language: Annotated[
        list[str] | None,
        typer.Option(
            "--language",
            help="LANG (every voice) or SPEAKER=LANG (repeatable), e.g. en, zh: sent as CosyVoice "
            "language_hints, Qwen language, MiniMax language_boost (default: the run's speaker map).",
            show_default=False,
        ),
    ] = None,
    settle_timeout: Annotated[
        float, typer.Option("--settle-timeout", min=0.0, help="Seconds to wait for a voice under review.")
    ] = 300.0,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", min=0.1, help="Seconds between review polls.")
    ] = 10.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per outcome instead of a table.")
    ] = False,
) -> None:
    """Submit a run's ready clips, record each voice in the ledger and update clips.jsonl.

    Example: voiceprep submit --out out/ --family qwen-tts --dry-run
    """
    from pipeline.batch.config import load_config
    from pipeline.enroll.submit import submit_run

    single = family[0] if family and len(family) == 1 else None
    cfg = load_config(config)  # read once: models, regions, audio source and ledger all come from it
    languages = _pairs([v for v in language or [] if "=" in v], "--language")
    every = [v for v in language or [] if "=" not in v]
    if len(every) > 1:
        raise typer.BadParameter("--language takes one LANG for every voice, and SPEAKER=LANG per speaker")
    flags = {
        "region": region_choice(region) or cfg.region,
        "language": every[0] if every else cfg.language,
        "target_models": {**cfg.target_models, **_pairs(target_model, "--target-model", single_key=single)},
        "base_urls": {**cfg.base_urls, **_pairs(base_url, "--base-url")},
        "ledger": str(ledger) if ledger is not None else cfg.ledger,
        **_audio_options(cfg, audio_source, audio_url_template),
    }
    err = make_console(stderr=True)
    with _errors():
        outcomes = submit_run(
            out_dir,
            family,
            speaker,
            config=cfg.model_copy(update=flags),
            dry_run=dry_run,
            preview_text=preview,
            settle_timeout_s=settle_timeout,
            settle_interval_s=poll_interval,
            progress=lambda msg: err.print(msg, markup=False, highlight=False),
            languages=languages,
        )
    out = make_console()
    if as_json:
        from pipeline.enroll.ledger import scrub

        for o in outcomes:
            row = {**o.to_dict(), "ok": o.ok}
            # The requests are built masked; scrub() is the second guard (any *_API_KEY value, bearer tokens).
            print(scrub(json.dumps(row, ensure_ascii=False)), flush=True)
    elif not outcomes:
        out.print("nothing to submit: no ready or submitted clips match")
    elif dry_run:
        _print_dry_run(outcomes, out, flags["region"])
    else:
        _print_outcomes(outcomes, Path(out_dir), out)
        _print_keyless(outcomes, out)
        _print_warnings_of(outcomes, out)
        unknown = [o for o in outcomes if o.status == "unknown"]
        if unknown:
            from pipeline.enroll.submit import ABSENT_CHECKS, ABSENT_SETTLE_S

            out.print(
                f"[bold yellow]{len(unknown)} voice(s) in state unknown[/]: a create may have made them; voiceprep "
                f"creates them again only once {ABSENT_CHECKS} searches, {ABSENT_SETTLE_S / 60:g} minutes or more "
                "after the request, found nothing. Run `voiceprep voices sync` or `voiceprep submit` later."
            )
        write_report(Path(out_dir), existing_only=True)
    raise typer.Exit(EXIT_OK if all(o.ok for o in outcomes) else EXIT_FAILURES)


def _print_warnings_of(outcomes: Sequence[VoiceRecord], console: Console) -> None:
    """One line per outcome warning (a language the vendor does not list, left out): speaker/family: text."""
    for o in outcomes:
        for w in o.warnings:
            line = plain(f"warning: {o.speaker or '-'}/{o.family}: {w}")
            console.print(line, markup=False, highlight=False, soft_wrap=True)


def _print_keyless(outcomes: Sequence[VoiceRecord], console: Console) -> None:
    """One line per missing key: the families it skipped, how many clips, and how to enable them."""
    by_message: dict[str, list[VoiceRecord]] = {}
    for o in outcomes:
        if o.status == "skipped" and o.reason == "missing_api_key" and o.last_error:
            by_message.setdefault(o.last_error["message"], []).append(o)
    for message, skipped in by_message.items():
        families = ", ".join(sorted({o.family for o in skipped}))
        line = f"skipped {families} ({len(skipped)} clip(s)): {message}, then run `voiceprep submit` again"
        console.print(line, markup=False, highlight=False)


# --------------------------------------------------------------------------------------------- voices

_OutOpt = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Run folder whose ledger to use (default: out).", show_default=False),
]
_LedgerOpt = Annotated[
    Path | None, typer.Option("--ledger", help="Voice ledger file (overrides --out).", show_default=False)
]
_ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="A voiceprep.yaml naming a shared ledger.", show_default=False)
]
_VoiceArg = Annotated[
    str, typer.Argument(help="Ledger row id (12 or #12), voice id, or name.", show_default=False)
]


def _print_warnings(warnings: Sequence[Any], usage: Sequence[str], console: Console) -> None:
    for line in usage:
        console.print(line, highlight=False)
    for kind, message, _ in warnings:
        console.print(f"[yellow]warning[/] ({kind}) {shown(message)}", highlight=False)


@voices_app.command("list")
def voices_list(
    out_dir: _OutOpt = None,
    ledger: _LedgerOpt = None,
    config: _ConfigOpt = None,
    provider: Annotated[
        str | None, typer.Option("--provider", help="dashscope, minimax or elevenlabs.", show_default=False)
    ] = None,
    family: Annotated[
        str | None,
        typer.Option("--family", "-f", metavar="FAMILY", help="Only this family.", show_default=False),
    ] = None,
    status: Annotated[
        list[str] | None,
        typer.Option("--status", help="Only these statuses (repeatable).", show_default=False),
    ] = None,
    remote: Annotated[bool, typer.Option("--remote", help="Also ask each provider for its list.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per voice.")] = False,
    region: Region = None,
) -> None:
    """List the voices in the ledger, with quota usage and expiry warnings.

    Example: voiceprep voices list --out out/ --remote
    """
    from pipeline.batch.config import load_config
    from pipeline.enroll.check import dissimilar_warning, stored_check
    from pipeline.enroll.voices import expires_at, list_voices

    path = _ledger_path(out_dir, ledger, config)
    with _errors():
        listing = list_voices(
            path,
            provider=provider,
            family=family,
            statuses=status,
            remote=remote,
            region=region_choice(region) or load_config(config).region,
        )
    out = make_console()
    if as_json:
        for r, rv in listing.entries:
            row = r.to_dict() if r else {"family": rv.family, "base_url": rv.base_url}  # type: ignore[union-attr]
            row["in_ledger"] = r is not None
            row["expires_at"] = expires_at(r) if r else None
            remote_fields = (
                "voice_id",
                "status",
                "target_model",
                "created_at",
                "name",
            )  # what providers tell
            row["remote"] = None if rv is None else {k: getattr(rv, k) for k in remote_fields}
            print(json.dumps(row, ensure_ascii=False), flush=True)
        raise typer.Exit(EXIT_OK)
    table = Table(header_style="bold")
    cols = ["row", "speaker", "family", "target model", "voice id", "status", "created", "checked"]
    checked_clones = any(r is not None and stored_check(r.details) for r, _ in listing.entries)
    if checked_clones:  # the column appears once a clone check was made (submit with previews)
        cols.append("clone")
    if remote:
        cols.append("remote")
    for col in cols:
        table.add_column(col, no_wrap=col in {"voice id", "status"})
    for r, rv in listing.entries:
        if r is None:
            assert rv is not None
            cells = ["-", "-", rv.family, shown(rv.target_model or "-"), shown(rv.voice_id or "-")]
            cells += ["[yellow]not in ledger[/]", rv.created_at or "-", "-"]
            cells += ["-"] if checked_clones else []
        else:
            style = _STATUS_STYLE.get(r.status, "white")
            cells = [
                f"#{r.id}",
                shown(r.speaker or "-"),
                r.family,
                shown(r.target_model or "-"),
                shown(r.voice_id or f"({r.name})"),
            ]
            status_cell = f"[{style}]{r.status}[/]"
            if r.details.get("fallback_mode"):  # the service degraded the clone (Qwen)
                status_cell += f" [yellow]fallback: {shown(str(r.details['fallback_mode']))}[/]"
            cells += [status_cell, (r.created_at or "")[:19], (r.last_checked_at or "-")[:19]]
            if checked_clones:
                cells.append(_clone_cell(stored_check(r.details)))
        if remote:
            cells.append(shown(rv.status) if rv else ("[red]not listed[/]" if r and r.voice_id else "-"))
        table.add_row(*cells)
    out.print(table)
    _print_warnings(listing.warnings, listing.usage, out)
    warned = {w[2].id for w in listing.warnings if w[0] in {"expiring", "expired"}}
    for r, _ in listing.entries:  # short expiry rules (MiniMax: 7 days unused) are shown for every voice
        when = expires_at(r) if r is not None and r.id not in warned else None
        if r is not None and when and r.details.get("expires_unless_used_by"):
            out.print(
                f"{shown(r.voice_id or '')}: deleted by {r.family} after {when[:19]} unless a real synthesis "
                "uses it (a preview does not count)",
                markup=False,
                highlight=False,
            )
    for r, _ in listing.entries:  # a clone that does not sound like its speaker: reason code and hint
        check = stored_check(r.details) if r is not None else None
        if r is not None and check and check.get("flag") and isinstance(check.get("similarity"), int | float):
            line = f"warning: #{r.id} {r.voice_id or r.name or ''}: {dissimilar_warning(check['similarity'])}"
            out.print(line, markup=False, highlight=False, soft_wrap=True)
    for n in listing.notes:
        out.print(f"note: {n}", markup=False, highlight=False)
    raise typer.Exit(EXIT_OK)


def _clone_cell(check: dict[str, Any] | None) -> str:
    """The ``clone`` column: the speaker similarity of the clone check, red and marked when flagged."""
    if not check or not isinstance(check.get("similarity"), int | float):
        return "-"
    text = f"{check['similarity']:.2f}"
    return f"[red]{text} {check['flag']}[/]" if check.get("flag") else text


@voices_app.command("show")
def voices_show(
    ident: _VoiceArg,
    out_dir: _OutOpt = None,
    ledger: _LedgerOpt = None,
    config: _ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="The row as JSON.")] = False,
) -> None:
    """Show one voice: every ledger field, its expiry rule, and the target model synthesis must use.

    Example: voiceprep voices show cosyvoice-vp-alice-1a2b --out out/
    """
    from pipeline.enroll.ledger import read_versions
    from pipeline.enroll.voices import describe_voice, expires_at, model_reminder, show_voice

    path = _ledger_path(out_dir, ledger, config)
    with _errors():
        record = show_voice(path, ident)
        versions = read_versions(path, record.id)
    if as_json:
        extra = {"reminder": model_reminder(record), "versions": versions, "expires_at": expires_at(record)}
        print(json.dumps({**record.to_dict(), **extra}, ensure_ascii=False))
        raise typer.Exit(EXIT_OK)
    out = make_console()
    table = Table(show_header=False, box=None)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in describe_voice(record, versions=versions):
        table.add_row(key, shown(value))
    out.print(table)
    raise typer.Exit(EXIT_OK)


@voices_app.command("check")
def voices_check(
    ident: _VoiceArg,
    out_dir: _OutOpt = None,
    ledger: _LedgerOpt = None,
    config: _ConfigOpt = None,
    text: Annotated[
        str | None,
        typer.Option(
            "--text", help="What to synthesise (default: the last check's text).", show_default=False
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The check as JSON.")] = False,
    region: Region = None,
) -> None:
    """Check a clone again: synthesise a short text with it and compare it with its enrollment clip.

    Speaker similarity (GE2E cosine) and DNSMOS OVRL go into the ledger (details.clone_check); a clone
    under the threshold is flagged clone_dissimilar (exit 1). A real synthesis: it may be billed.

    Example: voiceprep voices check 3 --out out/
    """
    from pipeline.batch.config import load_config
    from pipeline.enroll.check import describe_check, dissimilar_warning
    from pipeline.enroll.speak import check_voice

    cfg = load_config(config)
    path = _ledger_path(out_dir, ledger, config)
    with _errors():
        row, result = check_voice(
            path, ident, text=text, base_urls=cfg.base_urls, region=region_choice(region) or cfg.region
        )
    if as_json:
        print(json.dumps({"id": row.id, "voice_id": row.voice_id, **result}, ensure_ascii=False))
    else:
        out = make_console()
        out.print(f"#{row.id} {row.voice_id}: {describe_check(result)}", markup=False, highlight=False)
        if result.get("flag"):
            out.print(f"warning: {dissimilar_warning(result['similarity'])}", markup=False, highlight=False)
    raise typer.Exit(EXIT_FAILURES if result.get("flag") else EXIT_OK)


@voices_app.command("delete")
def voices_delete(
    ident: _VoiceArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    out_dir: _OutOpt = None,
    ledger: _LedgerOpt = None,
    config: _ConfigOpt = None,
    region: Region = None,
) -> None:
    """Delete a voice at its provider and mark it deleted in the ledger (asks first unless --yes).

    Example: voiceprep voices delete cosyvoice-vp-alice-1a2b --out out/ --yes
    """
    from pipeline.batch.config import load_config
    from pipeline.enroll.voices import delete_voice, show_voice

    path = _ledger_path(out_dir, ledger, config)
    with _errors():
        record = show_voice(path, ident)
    if not yes:
        what = record.voice_id or f"ledger row #{record.id} (no voice id)"
        where = f" at {record.base_url}" if record.voice_id else " from the ledger"
        if not typer.confirm(
            f"Delete {what} ({record.family}, {record.speaker or '-'}){where}?", default=False
        ):
            raise fail("nothing deleted", EXIT_FAILURES)
    with _errors():
        where = region_choice(region) or load_config(config).region
        after = delete_voice(path, f"#{record.id}", region=where, out_dir=out_dir)
    make_console().print(
        f"#{after.id} {after.voice_id or ''}: {after.status} ({after.note})", highlight=False
    )
    raise typer.Exit(EXIT_OK)


@voices_app.command("update")
def voices_update(
    ident: _VoiceArg,
    clip: Annotated[
        Path,
        typer.Option("--clip", help="The new enrollment clip (e.g. a better take).", show_default=False),
    ],
    out_dir: _OutOpt = None,
    ledger: _LedgerOpt = None,
    config: _ConfigOpt = None,
    region: Region = None,
    audio_source: Annotated[
        str | None,
        typer.Option(
            "--audio-source", help="oss, url_template or data_uri (default: per region).", show_default=False
        ),
    ] = None,
    settle_timeout: Annotated[
        float, typer.Option("--settle-timeout", min=0.0, help="Seconds to wait for the review.")
    ] = 300.0,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", min=0.1, help="Seconds between review polls.")
    ] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="The row after, as JSON.")] = False,
) -> None:
    """Re-enrol a CosyVoice voice from a new clip under the same voice id, then wait until it is OK; the
    ledger records the clip each version was made from (`voices show`).

    Example: voiceprep voices update cosyvoice-v3-plus-ali1a2b-xxxx --clip better.wav --out out/
    """
    from pipeline.batch.config import load_config
    from pipeline.enroll.voices import update_voice

    cfg = load_config(config)
    options = _audio_options(cfg, audio_source, None)
    err = make_console(stderr=True)
    with _errors():
        after = update_voice(
            _ledger_path(out_dir, ledger, config),
            ident,
            clip,
            region=region_choice(region) or cfg.region,
            audio_source=options["audio_source"],
            url_template=options["audio_url_template"],
            settle_timeout_s=settle_timeout,
            settle_interval_s=poll_interval,
            progress=lambda msg: err.print(msg, markup=False, highlight=False),
            out_dir=out_dir,
        )
    if as_json:
        print(json.dumps({**after.to_dict(), "ok": after.ok}, ensure_ascii=False))
    else:
        make_console().print(f"#{after.id} {after.voice_id}: {after.note}", markup=False, highlight=False)
    raise typer.Exit(EXIT_OK if after.status in {"ready", "deploying"} else EXIT_FAILURES)


@voices_app.command("sync")
def voices_sync(
    out_dir: _OutOpt = None,
    ledger: _LedgerOpt = None,
    config: _ConfigOpt = None,
    family: Families = None,
    provider: Annotated[
        str | None, typer.Option("--provider", help="Only this provider.", show_default=False)
    ] = None,
    base_url: Annotated[
        list[str] | None, typer.Option("--base-url", help="FAMILY=URL or PROVIDER=URL.", show_default=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON.")] = False,
    region: Region = None,
) -> None:
    """Reconcile the ledger with each provider: status changes, voices gone, voices the ledger did not know.

    Example: voiceprep voices sync --out out/
    """
    from pipeline.batch.config import load_config
    from pipeline.enroll.voices import sync_voices, warning_json

    cfg = load_config(config)
    urls = {**cfg.base_urls, **_pairs(base_url, "--base-url")}
    with _errors():
        report = sync_voices(
            _ledger_path(out_dir, ledger, config),
            families=family,
            provider=provider,
            base_urls=urls or None,
            region=region_choice(region) or cfg.region,
            out_dir=out_dir,
        )
    if as_json:
        print(
            json.dumps(
                {
                    "changes": [
                        {
                            "ledger_id": after.id,
                            "family": after.family,
                            "voice_id": after.voice_id,
                            "before": before.status,
                            "after": after.status,
                            "note": note,
                        }
                        for before, after, note in report.changes
                    ],
                    "recorded": [r.to_dict() for r in report.recorded],
                    "notes": report.notes,
                    "warnings": [warning_json(w) for w in report.warnings],
                    "checked": report.checked,
                },
                ensure_ascii=False,
            )
        )
    else:
        out = make_console()
        for fam, base, n in report.checked:
            out.print(f"{fam} at {base}: {n} voices listed", highlight=False)
        for before, after, note in report.changes:
            out.print(
                f"#{after.id} {after.voice_id or '-'} ({after.family}): {before.status} -> {after.status}: {note}",
                highlight=False,
            )
        for r in report.recorded:
            out.print(
                f"#{r.id} {r.voice_id} ({r.family}): on the account but not made by voiceprep; recorded as remote",
                highlight=False,
            )
        if not report.changes and not report.recorded:
            out.print("the ledger matches the providers")
        for n in report.notes:
            out.print(f"note: {n}", markup=False, highlight=False)
        _print_warnings(report.warnings, [], out)
    raise typer.Exit(EXIT_FAILURES if report.notes else EXIT_OK)
