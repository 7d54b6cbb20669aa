"""Stage 9, cli: the ``voiceprep`` command. Thin: parse, call the library, print with rich.

Takes: the command line. Gives: ``voiceprep probe|analyze|check|families|run|report|submit|voices``
(:mod:`~pipeline.cli.main`, :mod:`~pipeline.cli.voices`); console, error and exit-code conventions in
:mod:`~pipeline.cli.common`. Exit codes: 0 success, 1 the input was judged and some of it failed,
2 usage or configuration error, 3 the run could not proceed or an unexpected error (a bug; ``--debug``
shows the traceback), 4 the output folder is in use by another run.
May import: every stage.
"""
