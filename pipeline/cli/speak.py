"""``voiceprep speak``: synthesise text with a cloned voice (a thin typer wrapper over :mod:`pipeline.enroll.speak`).

Registered by the main CLI next to ``submit`` and ``voices``. Exit codes: 0 the audio is whole; 1 the
service refused or the stream broke (one line: the provider's code and message, redacted; a streamed file
cut short stays ``<file>.partial``); 2 usage (unknown voice, bad option, no key).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.common import EXIT_OK, Region, make_console, plain, region_choice

__all__ = ["speak_command"]


def speak_command(
    voice: Annotated[
        str,
        typer.Argument(
            help="Ledger row id (12 or #12), voice id or name; a bare voice id with --family and --model.",
            show_default=False,
        ),
    ],
    text: Annotated[str, typer.Argument(help="What the voice says.", show_default=False)],
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="A .wav (or raw .pcm) file; - writes raw 16-bit mono PCM to stdout. Default: VOICE_ID.wav.",
            show_default=False,
        ),
    ] = None,
    stream: Annotated[
        bool,
        typer.Option("--stream", help="Write the audio as it arrives (a file: FILE.partial until whole)."),
    ] = False,
    family: Annotated[
        str | None,
        typer.Option(
            "--family",
            "-f",
            metavar="FAMILY",
            help="With --model: a voice not in the ledger.",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="The voice's target model (with --family).", show_default=False),
    ] = None,
    run: Annotated[
        Path | None,
        typer.Option(
            "--run", help="Run folder whose ledger holds the voice (default: out).", show_default=False
        ),
    ] = None,
    ledger: Annotated[
        Path | None, typer.Option("--ledger", help="Voice ledger file (overrides --run).", show_default=False)
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="A voiceprep.yaml (ledger, base_urls).", show_default=False),
    ] = None,
    base_url: Annotated[
        list[str] | None,
        typer.Option(
            "--base-url", help="FAMILY=URL or PROVIDER=URL (a voice not in the ledger).", show_default=False
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="The result as one JSON object (on stderr with --out -).")
    ] = False,
    language: Annotated[
        str | None,
        typer.Option(
            "--language",
            help="The text's language (en, zh, pt-BR...): CosyVoice language_hints, Qwen language_type, "
            "MiniMax language_boost; not sent where the protocol does not list it (a note says so).",
            show_default=False,
        ),
    ] = None,
    region: Region = None,
) -> None:
    """Synthesise TEXT with a cloned voice (every family; realtime models over their WebSocket).

    Example: voiceprep speak 3 "Hello, this is my new voice." --out hello.wav --stream
    """
    from pipeline.batch.config import load_config
    from pipeline.cli.voices import _errors, _ledger_path, _pairs
    from pipeline.enroll.speak import STDOUT, speak

    cfg = load_config(config)
    path = _ledger_path(run, ledger, config)
    target = out or f"{''.join(c if c.isalnum() or c in '-_.' else '_' for c in voice)}.wav"
    err = make_console(stderr=True)
    with _errors():
        result = speak(
            voice,
            text,
            out=target,
            stream=stream,
            ledger_path=path if path.is_file() or not (family and model) else None,
            family=family,
            model=model,
            base_urls={**cfg.base_urls, **_pairs(base_url, "--base-url")},
            language=language,
            region=region_choice(region) or cfg.region,
        )
    to_stdout = target == STDOUT
    if as_json:
        line = json.dumps(result.to_dict(), ensure_ascii=False)
        if to_stdout:
            err.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            print(line, flush=True)
        raise typer.Exit(EXIT_OK)
    first = f"{result.first_audio_s:.3f} s" if result.first_audio_s is not None else "-"
    line = (
        f"{result.seconds:.2f} s of audio from {plain(result.voice.voice_id or '')} "
        f"({result.voice.family}, {result.voice.target_model or ''}) "
        f"-> {'stdout' if to_stdout else plain(result.out)}; first audio byte after {first}, "
        f"done after {result.total_s:.3f} s"
    )
    console = err if to_stdout else make_console()
    console.print(line, markup=False, highlight=False, soft_wrap=True)
    if result.note:
        console.print(f"note: {plain(result.note)}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_OK)
