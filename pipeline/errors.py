"""What can go wrong, shared by every stage: error types and the stable reason codes.

Data problems (a corrupt file, a silent recording) are *data*: they carry a stable reason code (the table
below: part of the public contract, used by manifests, reports and tests; each code has a one-line human
message and a fix hint; codes are never renamed, new ones may be added) and end up on a manifest row.
Bugs are ordinary exceptions. This module imports nothing of voiceprep, so every stage may import it.
"""

from __future__ import annotations


class VoiceprepError(Exception):
    """Base class for every error voiceprep raises on purpose."""


class InvalidArgument(VoiceprepError, ValueError):
    """A caller passed a bad value; the message names the parameter and the value."""


class AudioReadError(VoiceprepError):
    """A file could not be read as audio.

    ``reason`` is a stable code such as ``decode_failed`` (see :func:`reason_message`);
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


# --- reason codes --------------------------------------------------------------------------------------


_REASONS: dict[str, tuple[str, str]] = {
    # --- reading input ---
    "not_found": ("the file does not exist", "check the path"),
    "unreadable": ("the file cannot be opened (permissions?)", "check the file's permissions"),
    "empty": ("the file has no audio samples", "re-export the recording; the file is empty"),
    "decode_failed": ("the file is not audio or is corrupt", "re-export the recording from its source"),
    "no_audio_stream": ("the container has no audio stream", "pick a file that has sound"),
    "unsupported": ("the format or codec is not supported", "convert it to WAV or FLAC first"),
    "too_long": ("the input is longer than the configured maximum", "cut the file or raise max_input_s"),
    "truncated": (
        "decoding ended well before the length the header promised",
        "the file is probably cut short; re-copy or re-export it",
    ),
    "symlink_loop": ("a symbolic link points back into itself", "remove the looping link"),
    # --- writing output ---
    "output_in_the_way": (
        "a file voiceprep did not write is where the clip would go (or its folder leads out of OUT)",
        "move that file or link out of OUT/clips or OUT/rejected and run again",
    ),
    # --- hard limits of the services ---
    "bad_format": ("the service does not accept this file format", "deliver WAV PCM16, MP3 or M4A"),
    "bad_sample_format": ("the service does not accept this sample format", "re-encode as 16-bit PCM"),
    "rate_too_low": ("the sample rate is below the service's minimum", "record or export at 24 kHz or more"),
    "not_mono": ("the service needs a mono file", "mix down to mono (voiceprep does this when rendering)"),
    "first_channel_silent": (
        "the first channel is silent, and the service listens only to the first channel",
        "swap the channels or mix down to mono",
    ),
    "too_short": (
        "the clip is shorter than the service accepts",
        "use a longer recording, or put several takes of the speaker in one folder (run joins takes that match)",
    ),
    "too_long_clip": ("the clip is longer than the service accepts", "trim it (voiceprep run does this)"),
    "too_large": ("the file is larger than the service accepts", "shorten the clip or use a smaller format"),
    "no_continuous_speech": (
        "there is not enough unbroken speech",
        "record a few sentences spoken without stopping",
    ),
    "pause_too_long": ("a pause is longer than the service allows", "shorten the pause or cut around it"),
    # --- quality gates ---
    "low_snr": (
        "background noise is high relative to speech",
        "record in a quieter place, closer to the mic",
    ),
    "rumble": (
        "loud low-frequency noise (rumble, wind, traffic, air conditioning, handling) under the voice",
        "voiceprep's render removes it with its high-pass; to submit the file as it is, high-pass it first",
    ),
    "hum": (
        "mains hum reaches into the voice band (its harmonics lie above the render's high-pass)",
        "a high-pass cannot remove it: move away from power cables and dimmers, record on battery, or fix "
        "the ground loop",
    ),
    "reverberant": ("the room echo is strong", "record in a smaller, furnished room, closer to the mic"),
    "clipped": ("the recording is clipped (distorted peaks)", "lower the input gain and record again"),
    "narrowband": (
        "the audio's band is narrower than the service needs (telephone, or a 16 kHz recording upsampled)",
        "record or export at 44.1 or 48 kHz with a microphone, not over the phone or at 16 kHz",
    ),
    "low_quality": (
        "the predicted listener rating (DNSMOS) is low: the clone would copy the noise or distortion",
        "re-record in a quiet room close to the mic, or give a cleaner recording",
    ),
    "too_quiet": ("the recording is very quiet", "record closer to the mic or raise the gain"),
    "too_loud": ("the recording is very loud", "lower the gain"),
    "music": (
        "music is present in the background",
        "use a stretch without music, or record again with the music off",
    ),
    "singing": ("the voice is singing, not speaking", "give a recording of normal speech, not a song"),
    "multiple_speakers": ("more than one voice is present", "use a recording of one speaker only"),
    "other_voices": (
        "another voice speaks in the audio (an interviewer, a guest, someone in the room)",
        "cut the other voice out, or give a stretch where only this speaker talks",
    ),
    "speaker_mismatch": (
        "this recording's voice does not match the rest of the speaker's recordings",
        "move it to its own speaker folder, or name the right voice with --reference",
    ),
    "no_speech": ("no speech was detected", "check that the file contains speech"),
    "not_measured": ("the value could not be measured", "see the message for why"),
    "internal_error": ("voiceprep failed on this input (a bug)", "re-run with --debug and report it"),
    # --- submitting to providers ---
    "missing_api_key": ("no API key is set for this provider", "export the environment variable it names"),
    "provider_auth": ("the provider refused the API key", "check the key and that it belongs to this region"),
    "provider_access": (
        "the account may not use this model or feature",
        "enable it in the provider's console",
    ),
    "provider_balance": ("the account has no balance left", "top up the account"),
    "provider_quota": ("the account's voice quota is used up", "delete unused voices (voiceprep voices)"),
    "provider_rate_limited": (
        "the provider kept rate-limiting the requests",
        "wait a minute and submit again",
    ),
    "provider_unavailable": (
        "the provider did not answer in time",
        "try again later; nothing was duplicated",
    ),
    "provider_bad_request": ("the provider rejected the request as invalid", "see the message; report it"),
    "provider_rejected": (
        "the provider rejected the audio",
        "pick another clip or re-record; see the message",
    ),
    "outcome_unknown": (
        "a create request was sent but its answer was lost, and the provider's list did not settle it",
        "run `voiceprep voices sync` later; voiceprep will not create a second voice meanwhile",
    ),
    "clone_dissimilar": (
        "a synthesis with the new voice does not sound like its enrollment clip (speaker similarity under "
        "the threshold)",
        "re-record, choose another clip, or try another target model; listen to the preview",
    ),
    "voice_gone": ("the provider no longer has this voice (expired or deleted)", "submit the clip again"),
}
"""Reason code -> (what it means, what to do about it)."""


def reason_message(code: str) -> str:
    """What ``code`` means, in one human sentence; unknown codes raise ``KeyError``."""
    return _REASONS[code][0]


def reason_hint(code: str) -> str:
    """What to do about ``code``; unknown codes raise ``KeyError``."""
    return _REASONS[code][1]


def without_path(message: str, path: object) -> str:
    """``message`` without the ``"<path>: "`` a read error starts with, for where the file is named already
    (a manifest row's ``path``, the verdict line above it)."""
    return message.removeprefix(f"{path}: ")


def all_codes() -> list[str]:
    """All known reason codes, in a stable order."""
    return list(_REASONS)


def encodable(text: str) -> str:
    """``text`` with the bytes of a file name that are not UTF-8 (lone surrogates in Python) written as
    ``\\xNN``, so that any UTF-8 output (a manifest, a log, the terminal) can carry it; valid text is
    returned unchanged."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that is not an escaped byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
