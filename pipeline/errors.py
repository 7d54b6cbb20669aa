"""Error types shared by the whole package.

Data problems (a corrupt file, a silent recording) are *data*: they carry a stable reason code from
:mod:`pipeline.reasons` and end up on a manifest row. Bugs are ordinary exceptions.
"""

from __future__ import annotations


class VoiceprepError(Exception):
    """Base class for every error voiceprep raises on purpose."""


class InvalidArgument(VoiceprepError, ValueError):
    """A caller passed a bad value; the message names the parameter and the value."""


class AudioReadError(VoiceprepError):
    """A file could not be read as audio.

    ``reason`` is a stable code such as ``decode_failed`` (see :mod:`pipeline.reasons`);
    ``message`` is one human sentence that never contains secrets.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message

    def __reduce__(self) -> tuple[type[AudioReadError], tuple[str, str]]:
        """Pickle by (reason, message), so the error crosses process and Dask worker boundaries."""
        return (type(self), (self.reason, self.message))


class SpecError(VoiceprepError):
    """A configuration or family spec file is invalid; the message names the file and the key."""
