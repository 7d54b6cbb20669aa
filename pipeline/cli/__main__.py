"""``python -m pipeline.cli``: the ``voiceprep`` command, for a checkout that is not installed."""

import sys

from pipeline.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
