"""Which modules a fresh interpreter has loaded after running some code (for the lazy-import tests)."""

from __future__ import annotations

import subprocess
import sys


def loaded_after(code: str, *modules: str) -> list[bool]:
    """Run ``code`` in a fresh Python and say, for each of ``modules``, whether it is in ``sys.modules``.

    ``code`` may print: its output is discarded except the final line this helper adds.
    """
    probe = f"{code}\nimport sys\nprint(' '.join(str(m in sys.modules) for m in {list(modules)!r}))\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return [word == "True" for word in out.stdout.splitlines()[-1].split()]
