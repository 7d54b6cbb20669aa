"""The run configuration file: read like a family spec (one reader), strict, explained key by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.batch.config import load_config
from pipeline.errors import SpecError


def test_defaults_then_the_file_then_the_overrides(tmp_path: Path) -> None:
    user = tmp_path / "voiceprep.yaml"
    user.write_text("top_candidates: 5\nalternatives: 1\n")
    cfg = load_config(user, alternatives=0, jobs=None)
    assert (cfg.top_candidates, cfg.alternatives, cfg.channel_strategy) == (5, 0, "best")
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    assert load_config(empty) == load_config()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("top_candidate: 4\n", "top_candidate: unknown key (allowed: max_input_s, channel_strategy"),
        ("jobs: 1\njobs: 2\n", "line 2, column 1: YAML syntax error: duplicate key 'jobs' (first at line 1)"),
        ("jobs: -3\n", "jobs: must be >= 0 (got -3)"),
        ("- jobs\n", "the top level must be a mapping of keys (got list)"),
    ],
)
def test_a_bad_file_is_refused_naming_the_file_and_the_key(tmp_path: Path, text: str, expected: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(SpecError) as info:
        load_config(bad)
    assert str(info.value).startswith(str(bad)) and expected in str(info.value)
