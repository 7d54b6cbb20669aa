"""Run configuration: ``pipeline/configs/voiceprep.yaml`` defaults, overridden by a user file and CLI flags.

Strict: unknown keys, wrong types and impossible values are errors naming the file and the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pipeline.rules import settings_file

DEFAULTS_PATH = Path(__file__).resolve().parents[1] / "configs" / "voiceprep.yaml"
"""The run defaults, shipped in the package (a wheel carries them)."""


class RunConfig(BaseModel):
    """Settings of a run; see ``pipeline/configs/voiceprep.yaml`` for what each one means."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_input_s: float = Field(default=4 * 3600, gt=0)
    channel_strategy: Literal["best", "first", "mean"] = "best"
    vad_aggressiveness: int = Field(default=2, ge=0, le=3)
    families: list[str] = Field(default_factory=list)
    top_candidates: int = Field(default=3, ge=1, le=50)
    alternatives: int = Field(default=2, ge=0, le=10)
    slow_measures: bool = True
    speaker_checks: bool = True
    executor: Literal["serial", "processes", "dask"] = "processes"
    jobs: int = Field(default=0, ge=0)
    ledger: str | None = None
    target_models: dict[str, str] = Field(default_factory=dict)
    base_urls: dict[str, str] = Field(default_factory=dict)
    region: Literal["intl", "cn"] | None = None
    language: str | None = None
    audio_source: Literal["oss", "url_template", "data_uri"] | None = None
    audio_url_template: str | None = None

    def fingerprint_fields(self, stage: Literal["analysis", "selection"]) -> dict[str, Any]:
        """The settings that change a recording's analysis or a clip's selection and rendering (a change
        redoes that stage; the other settings don't)."""
        return self.model_dump(include=set(_STAGE_SETTINGS[stage]))


_STAGE_SETTINGS = {
    "analysis": ("max_input_s", "channel_strategy", "vad_aggressiveness"),
    "selection": ("top_candidates", "alternatives", "slow_measures", "speaker_checks"),
}


def load_config(path: str | Path | None = None, **overrides: Any) -> RunConfig:
    """Defaults, then the user's file (if any), then ``overrides`` whose value is not ``None``.

    Raises :class:`~pipeline.errors.SpecError` naming the file and the key (unknown keys, duplicate keys,
    wrong types and impossible values are all errors).
    """
    merged: dict[str, Any] = {}
    shown = "settings"
    for source in (DEFAULTS_PATH, None if path is None else Path(path)):
        if source is not None and (source != DEFAULTS_PATH or source.exists()):
            merged.update(settings_file.read_mapping(source, empty_ok=True))
            shown = settings_file.display(source)
    merged.update({k: v for k, v in overrides.items() if v is not None})
    return settings_file.validate(RunConfig, merged, shown)
