"""The ``voiceprep`` command as tests run it in this process, the environment of one run as a process, and JSON lines.

:func:`voiceprep` calls the console script's entry point (:func:`pipeline.cli.main.main`: the old option
spellings, the one-line errors and the exit codes included) in this process, with its own arguments,
environment and captured output, and gives what a shell would see, as a
:class:`subprocess.CompletedProcess` with text output. It pays no interpreter start-up or import per
call. What only a real process shows (bytes that C libraries write straight to file descriptor 2, a
process killed by a signal) is tested through the zygote of ``tests/_kill_zygote.py``, with the
environment :func:`process_env` gives.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from unittest import mock

WIDTH = "200"
"""``COLUMNS`` for every call: rich and typer lay out tables and help for this width, never wrapping."""


@contextlib.contextmanager
def _environment(env: Mapping[str, str] | None, drop: Iterable[str]) -> Iterator[None]:
    """``os.environ`` without the variables named in ``drop`` (exact names or ``*SUFFIX`` patterns) and
    with ``env`` added; restored afterwards."""
    with mock.patch.dict(os.environ):
        for name in list(os.environ):
            if any(name.endswith(p[1:]) if p.startswith("*") else name == p for p in drop):
                del os.environ[name]
        os.environ.update({"COLUMNS": WIDTH, **(env or {})})
        yield


def voiceprep(
    *args: str | Path, env: Mapping[str, str] | None = None, drop: Iterable[str] = ()
) -> subprocess.CompletedProcess[str]:
    """Run ``voiceprep ARGS`` in this process: exit code, standard output and standard error as text.

    ``env`` is added to the environment and ``drop`` removed from it (see :func:`_environment`) for the
    call only. Output written to file descriptors 1 and 2 by C code is not captured here.
    """
    from pipeline.cli.main import main

    argv = ["voiceprep", *map(str, args)]
    stdout, stderr = io.StringIO(), io.StringIO()
    code: Any = 0
    with (
        _environment(env, drop),
        mock.patch.object(sys, "argv", argv),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        try:
            main()
        except SystemExit as exc:  # main() always ends this way; the code as the shell would see it
            code = exc.code
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): printed, exit status 1
        stderr.write(f"{code}\n")
        code = 1
    return subprocess.CompletedProcess(argv, code, stdout.getvalue(), stderr.getvalue())


def process_env(env: Mapping[str, str] | None = None, drop: Iterable[str] = ()) -> dict[str, str]:
    """The environment for a ``voiceprep`` process: this one's, less ``drop``, plus ``env``."""
    with _environment(env, drop):
        return dict(os.environ)


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines text (blank lines skipped): ``--json`` output, ``*.jsonl`` files."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file (``recordings.jsonl``, ``clips.jsonl``), read with :mod:`json` alone."""
    return json_lines(path.read_text())
