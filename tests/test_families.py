"""Tests for the family specs in pipeline/configs/families and their strict loader (pipeline.rules.families)."""

from __future__ import annotations

import copy
import math
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from pipeline.errors import SpecError, all_codes
from pipeline.rules.families import (
    FamilySpec,
    Gate,
    Limits,
    describe,
    families_dir,
    list_families,
    load_all,
    load_family,
)
from pipeline.rules.metrics import GATE_METRICS

REPO = Path(__file__).resolve().parents[1]
SPEC_DIR = REPO / "pipeline" / "configs" / "families"
EXPECTED = ["cosyvoice", "elevenlabs", "minimax", "qwen-tts"]


@pytest.fixture(scope="module")
def specs() -> dict[str, FamilySpec]:
    return load_all(SPEC_DIR)


def _raw(name: str) -> dict[str, Any]:
    with (SPEC_DIR / f"{name}.yaml").open(encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
    return data


def _write(tmp_path: Path, mutate: Callable[[dict[str, Any]], None], *, base: str = "cosyvoice") -> Path:
    """Copy a real spec into tmp_path as broken.yaml after applying ``mutate`` to its data."""
    data = copy.deepcopy(_raw(base))
    data["name"] = "broken"
    mutate(data)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _error(path: Path) -> str:
    with pytest.raises(SpecError) as info:
        load_family(path)
    return str(info.value)


# --------------------------------------------------------------------------- the shipped specs


def test_all_four_specs_load_from_the_default_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOICEPREP_FAMILIES_DIR", raising=False)
    assert families_dir() == SPEC_DIR
    assert list_families() == EXPECTED
    loaded = load_all()
    assert list(loaded) == EXPECTED
    for name, spec in loaded.items():
        assert spec.name == name
        assert spec.default_target_model == spec.target_models[0]


def test_qwen_limits_match_the_vendor_docs(specs: dict[str, FamilySpec]) -> None:
    lim = specs["qwen-tts"].limits
    assert lim.min_sample_rate.value == 24000
    assert lim.channels.value == [1]
    assert lim.first_channel_only.value is False
    assert lim.formats.value == ["wav", "mp3", "m4a"]
    assert lim.sample_formats.value == {"wav": ["PCM_16"]}
    assert lim.max_duration_s.value == 60
    assert lim.min_speech_run_s.value == 3
    assert lim.max_pause_s.value == 2
    assert lim.inline_base64.value is True
    assert lim.max_bytes.value == 10_000_000
    assert specs["qwen-tts"].name_rule.max_length == 16
    assert specs["qwen-tts"].enrollment_model == "qwen-voice-enrollment"


def test_cosyvoice_limits_match_the_vendor_docs(specs: dict[str, FamilySpec]) -> None:
    spec = specs["cosyvoice"]
    lim = spec.limits
    assert lim.first_channel_only.value is True
    assert lim.channels.value == [1, 2]
    assert lim.min_sample_rate.value == 16000
    assert lim.max_duration_s.value == 60
    rec = lim.recommended_duration_s.value
    assert rec is not None and (rec.min, rec.max) == (10, 20)
    assert lim.min_speech_run_s.value == 5
    assert lim.sample_formats.value == {"wav": ["PCM_16"]}
    assert spec.enrollment_model == "voice-enrollment"
    assert spec.quota.value == 1000
    assert spec.voice_expiry.value == 365
    assert spec.name_rule.matches("abc123")
    assert not spec.name_rule.matches("Abc")  # upper case is outside the narrow reading we use
    assert not spec.name_rule.matches("abcdefghij")  # 10 characters, over the 9 allowed


def test_minimax_limits_match_the_vendor_docs(specs: dict[str, FamilySpec]) -> None:
    spec = specs["minimax"]
    lim = spec.limits
    assert lim.min_duration_s.value == 10
    assert lim.max_duration_s.value == 300
    assert lim.max_bytes.value == 20_000_000
    assert lim.formats.value == ["mp3", "m4a", "wav"]
    assert lim.min_sample_rate.value is None  # not stated by the vendor
    assert spec.voice_expiry.value == 7
    assert spec.delivery.duration_s.aim == 30
    rule = spec.name_rule
    assert rule.matches("voiceprep-abc_123")
    assert not rule.matches("short1")  # 6 characters: the minimum is 8
    assert not rule.matches("1voiceprep")  # must start with a letter
    assert not rule.matches("voiceprep-")  # must not end with '-'
    assert not rule.matches("a" * 257)


def test_delivery_defaults_are_the_documented_choices(specs: dict[str, FamilySpec]) -> None:
    for spec in specs.values():
        d = spec.delivery
        assert (d.format, d.subtype, d.channels) == ("wav", "PCM_16", 1)
        assert (d.sample_rate, d.high_sample_rate, d.high_rate_above_hz) == (24000, 48000, 12000)
        assert (d.target_lufs, d.true_peak_max_dbtp, d.fade_s) == (-20, -1, 0.01)
        assert (d.edge_room_tone_s.min, d.edge_room_tone_s.max) == (0.1, 0.3)
        assert (d.pause_target_s.min, d.pause_target_s.max) == (0.4, 0.6)
        assert spec.limits.min_pause_s.value == 0.5
    for name in ("cosyvoice", "qwen-tts"):
        w = specs[name].delivery.duration_s
        assert (w.aim, w.min, w.max) == (15, 10, 20)


def test_every_sourced_item_resolves_to_a_dated_source(specs: dict[str, FamilySpec]) -> None:
    for spec in specs.values():
        items = [limit for _, limit in spec.limits.items()]
        items += [*spec.gates, spec.delivery, spec.name_rule, spec.voice_expiry, spec.quota]
        ids = [item.source for item in items] + [spec.models_source]
        for source_id in ids:
            src = spec.sources[source_id]
            assert isinstance(src.checked, date)
            assert (src.checked.year, src.checked.month) == (2026, 11)
            if source_id != "voiceprep":
                assert src.url is not None and src.url.startswith("https://")
        for item in items:
            if item.source == "voiceprep":
                assert item.why  # our own choices say why
        # vendor facts cite the vendor, never ourselves, for the headline limits
        assert spec.limits.max_duration_s.source != "voiceprep"
        assert spec.limits.formats.source != "voiceprep"


def test_gates_use_known_metrics_reasons_and_sane_thresholds(specs: dict[str, FamilySpec]) -> None:
    for spec in specs.values():
        by_metric = {g.metric: g for g in spec.gates}
        assert set(by_metric) <= set(GATE_METRICS)
        assert {g.reason for g in spec.gates} <= set(all_codes())
        snr, clip, ovrl = by_metric["snr_db"], by_metric["clipped_ratio"], by_metric["dnsmos_ovrl"]
        assert (snr.direction, snr.warn, snr.fail) == ("min", 25, 15)
        assert (clip.direction, clip.warn, clip.fail) == ("max", 0.0005, 0.005)
        assert (ovrl.warn, ovrl.fail) == (3.0, 2.3)
        assert by_metric["reverb_score"].direction == "max"
    assert next(g for g in specs["qwen-tts"].gates if g.metric == "bandwidth_hz").fail == 4200


def test_gate_verdicts_follow_direction_and_thresholds() -> None:
    low_is_bad = Gate(metric="snr_db", direction="min", warn=25, fail=15, reason="low_snr", source="x")
    assert [low_is_bad.verdict(v) for v in (30.0, 25.0, 24.9, 15.0, 14.9)] == [
        "pass",
        "pass",
        "warn",
        "warn",
        "fail",
    ]
    assert low_is_bad.verdict(None) is None
    assert low_is_bad.verdict(math.nan) is None
    high_is_bad = Gate(metric="clipped_ratio", direction="max", fail=0.005, reason="clipped", source="x")
    assert [high_is_bad.verdict(v) for v in (0.0, 0.005, 0.0051)] == ["pass", "pass", "fail"]


def test_largest_delivery_fits_the_upload_limit(specs: dict[str, FamilySpec]) -> None:
    # 20 s of PCM16 mono at 48 kHz = 1 920 000 bytes + 44 header; inline base64 is 4/3 of that, rounded up
    raw = 20 * 48000 * 2 + 44
    assert specs["qwen-tts"].max_delivery_bytes() == 4 * math.ceil(raw / 3) == 2_560_060
    # MiniMax uploads multipart: 60 s at 48 kHz, no base64
    assert specs["minimax"].max_delivery_bytes() == 60 * 48000 * 2 + 44
    for spec in specs.values():
        size, cap = spec.max_delivery_bytes(), spec.limits.max_bytes.value
        assert size is not None
        assert cap is None or size <= cap


def test_describe_rows_cover_every_limit_delivery_choice_and_gate(specs: dict[str, FamilySpec]) -> None:
    for spec in specs.values():
        rows = describe(spec)
        assert all(len(row) == 4 and all(isinstance(c, str) and c for c in row) for row in rows)
        by_group: dict[str, list[tuple[str, str, str, str]]] = {}
        for row in rows:
            by_group.setdefault(row[0], []).append(row)
        assert [r[1] for r in by_group["limits"]] == list(Limits.model_fields)
        assert len(by_group["gates"]) == len(spec.gates)
        for gate, row in zip(spec.gates, by_group["gates"], strict=True):
            assert row[1].startswith(gate.metric)
            assert gate.reason in row[1]
            assert row[3] == f"{gate.source} ({spec.sources[gate.source].checked.isoformat()})"
        for key, limit in spec.limits.items():
            row = next(r for r in by_group["limits"] if r[1] == key)
            assert row[3] == f"{limit.source} ({spec.sources[limit.source].checked.isoformat()})"
        assert {r[1] for r in by_group["delivery"]} >= {"sample_rate", "duration_s", "target_lufs", "fade_s"}
    qwen = {r[1]: r for r in describe(specs["qwen-tts"])}
    assert qwen["min_sample_rate"][2:] == ("24000 Hz", "qwen-clone-api (2026-11-26)")
    assert qwen["max_bytes"][2] == "10000000 bytes (10 MB)"
    assert qwen["bandwidth_hz (narrowband)"][2] == "warn if < 8.2 kHz, fail if < 4.2 kHz"
    # Ratios read as percentages, as in ``check`` and the report (not 0.0005).
    assert qwen["clipped_ratio (clipped)"][2] == "warn if > 0.05 %, fail if > 0.5 %"
    assert {r[1]: r for r in describe(specs["minimax"])}["min_sample_rate"][2] == "not stated"


def test_specs_are_frozen(specs: dict[str, FamilySpec]) -> None:
    with pytest.raises(pydantic.ValidationError):
        specs["qwen-tts"].limits.min_sample_rate.value = 8000  # type: ignore[misc]


def test_env_var_points_the_loader_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _raw("minimax")
    (tmp_path / "minimax.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    monkeypatch.setenv("VOICEPREP_FAMILIES_DIR", str(tmp_path))
    assert families_dir() == tmp_path
    assert list_families() == ["minimax"]
    assert load_family("minimax").limits.max_duration_s.value == 300


# --------------------------------------------------------------------------- strictness


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d.__setitem__("colour", "blue"))
    msg = _error(path)
    assert "broken.yaml: colour: unknown key" in msg
    assert "allowed: name, title" in msg


def test_unknown_nested_key(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d["limits"]["min_sample_rate"].__setitem__("vaule", 1))
    assert (
        "broken.yaml: limits.min_sample_rate.vaule: unknown key (allowed: source, note, why, value)"
        in _error(path)
    )
    path = _write(tmp_path, lambda d: d["delivery"].__setitem__("samplerate", 24000))
    assert "broken.yaml: delivery.samplerate: unknown key" in _error(path)


def test_wrong_type(tmp_path: Path) -> None:
    # a quoted number is a string, not an integer: strict mode refuses to coerce it
    path = _write(tmp_path, lambda d: d["limits"]["min_sample_rate"].__setitem__("value", "24000"))
    msg = _error(path)
    assert "broken.yaml: limits.min_sample_rate.value:" in msg
    assert "integer" in msg and "'24000'" in msg
    path = _write(tmp_path, lambda d: d.__setitem__("gates", {"metric": "snr_db"}))
    assert "broken.yaml: gates: " in _error(path)


def test_impossible_value_names_file_key_and_value(tmp_path: Path) -> None:
    path = _write(
        tmp_path, lambda d: d["limits"]["min_sample_rate"].__setitem__("value", -5), base="qwen-tts"
    )
    assert _error(path).endswith("broken.yaml: limits.min_sample_rate.value: must be > 0 (got -5)")
    path = _write(tmp_path, lambda d: d["limits"]["max_pause_s"].__setitem__("value", -1.0))
    assert "broken.yaml: limits.max_pause_s.value: must be > 0 (got -1.0)" in _error(path)


def test_min_greater_than_max(tmp_path: Path) -> None:
    path = _write(
        tmp_path, lambda d: d["delivery"].__setitem__("duration_s", {"aim": 15, "min": 20, "max": 10})
    )
    assert "broken.yaml: delivery.duration_s.min: must be <= max (got min 20 > max 10)" in _error(path)
    path = _write(
        tmp_path, lambda d: d["limits"]["recommended_duration_s"].__setitem__("value", {"min": 30, "max": 20})
    )
    assert "broken.yaml: limits.recommended_duration_s.value.min: must be <= max" in _error(path)
    path = _write(tmp_path, lambda d: d["limits"]["min_duration_s"].__setitem__("value", 400), base="minimax")
    assert (
        "broken.yaml: limits.min_duration_s.value: must be <= max_duration_s.value (got 400 > 300)"
        in _error(path)
    )


def test_a_range_that_needs_both_ends_or_an_aim_says_which_key_is_missing(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d["delivery"].__setitem__("duration_s", {"min": 10, "max": 20}))
    assert "broken.yaml: delivery.duration_s.aim: required key is missing" in _error(path)
    path = _write(tmp_path, lambda d: d["delivery"].__setitem__("pause_target_s", {"min": 0.4}))
    assert "broken.yaml: delivery.pause_target_s.max: required key is missing" in _error(path)
    path = _write(
        tmp_path, lambda d: d["delivery"].__setitem__("duration_s", {"aim": 25, "min": 10, "max": 20})
    )
    assert "broken.yaml: delivery.duration_s.aim: must lie within 10-20 s (got 25)" in _error(path)
    path = _write(
        tmp_path, lambda d: d["delivery"].__setitem__("duration_s", {"aim": 0, "min": 0, "max": 20})
    )
    assert "broken.yaml: delivery.duration_s.min: must be > 0 (got 0)" in _error(path)


def test_unknown_metric(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d["gates"][0].__setitem__("metric", "loudness"))
    msg = _error(path)
    assert "broken.yaml: gates[0].metric: unknown metric 'loudness'" in msg
    assert "snr_db" in msg  # lists the known names


def test_unknown_reason(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d["gates"][1].__setitem__("reason", "noisy"))
    assert "broken.yaml: gates[1].reason: unknown reason code 'noisy'" in _error(path)


def test_bad_source_id(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d["limits"]["max_bytes"].__setitem__("source", "nowhere"))
    msg = _error(path)
    assert "broken.yaml: limits.max_bytes.source: unknown source 'nowhere'" in msg
    assert "cosyvoice-clone-api" in msg
    path = _write(tmp_path, lambda d: d["gates"][2].__setitem__("source", "azure"))
    assert "broken.yaml: gates[2].source: unknown source 'azure'" in _error(path)


def test_yaml_syntax_error_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "syntax.yaml"
    path.write_text("name: syntax\nlimits:\n  formats: [wav, mp3\n  channels: 1\n", encoding="utf-8")
    msg = _error(path)
    assert "syntax.yaml: line 4" in msg
    assert "YAML syntax error" in msg


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("name: dup\ntitle: one\ntitle: two\n", encoding="utf-8")
    assert "dup.yaml: line 3, column 1: YAML syntax error: duplicate key 'title' (first at line 2)" in _error(
        path
    )


def test_warn_and_fail_inverted(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d["gates"][0].update(warn=15, fail=25))  # snr_db, direction min
    assert "broken.yaml: gates[0].fail: with direction min the fail threshold must be below warn" in _error(
        path
    )
    path = _write(tmp_path, lambda d: d["gates"][1].update(warn=0.005, fail=0.0005))  # clipped_ratio, max
    assert "broken.yaml: gates[1].fail: with direction max the fail threshold must be above warn" in _error(
        path
    )


def test_gate_without_thresholds_or_out_of_range(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d["gates"][0].update(warn=None, fail=None))
    assert "broken.yaml: gates[0].warn: a gate needs a warn or a fail threshold" in _error(path)
    path = _write(tmp_path, lambda d: d["gates"][1].update(warn=0.5, fail=2.0))  # a ratio cannot exceed 1
    assert "broken.yaml: gates[1].fail: clipped_ratio lies in [0, 1] (got 2)" in _error(path)


def test_own_choice_without_why(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d["limits"]["min_pause_s"].pop("why"))
    assert "broken.yaml: limits.min_pause_s.why: required when source is 'voiceprep'" in _error(path)


def test_delivery_must_obey_the_hard_limits(tmp_path: Path) -> None:
    def slow(d: dict[str, Any]) -> None:
        d["delivery"].update(sample_rate=22050, high_rate_above_hz=11025)

    path = _write(tmp_path, slow, base="qwen-tts")
    assert "broken.yaml: delivery.sample_rate: 22050 is below limits.min_sample_rate.value (24000)" in _error(
        path
    )
    path = _write(tmp_path, lambda d: d["delivery"].__setitem__("channels", 2), base="qwen-tts")
    assert "broken.yaml: delivery.channels: 2 is not in limits.channels.value [1]" in _error(path)
    path = _write(tmp_path, lambda d: d["delivery"].__setitem__("subtype", "FLOAT"))
    assert (
        "broken.yaml: delivery.subtype: 'FLOAT' is not in limits.sample_formats.value.wav ['PCM_16']"
        in _error(path)
    )
    # 20 s at 48 kHz PCM16 is 2 560 060 bytes once base64-encoded: over a 2 MB cap
    path = _write(tmp_path, lambda d: d["limits"]["max_bytes"].__setitem__("value", 2_000_000))
    assert "broken.yaml: delivery.duration_s.max: base64 of a 20 s clip" in _error(path)


def test_name_must_equal_the_file_stem(tmp_path: Path) -> None:
    data = _raw("cosyvoice")
    path = tmp_path / "renamed.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    assert "renamed.yaml: name: must equal the file name stem 'renamed' (got 'cosyvoice')" in _error(path)


def test_missing_key_and_empty_file(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d["limits"].pop("max_pause_s"))
    assert "broken.yaml: limits.max_pause_s: required key is missing" in _error(path)
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n", encoding="utf-8")
    assert "empty.yaml: the file is empty" in _error(empty)


def test_unknown_family_lists_the_available_names() -> None:
    with pytest.raises(SpecError) as info:
        load_family("elevenlabz", directory=SPEC_DIR)
    msg = str(info.value)
    assert "unknown family 'elevenlabz'" in msg
    assert "available: cosyvoice, elevenlabs, minimax, qwen-tts" in msg
    with pytest.raises(SpecError, match="unknown family"):
        load_family("Qwen TTS", directory=SPEC_DIR)


def test_family_names_are_matched_case_insensitively() -> None:
    assert load_family("Qwen-TTS", directory=SPEC_DIR).name == "qwen-tts"
    assert load_family(" MINIMAX ", directory=SPEC_DIR).name == "minimax"


def test_a_region_table_names_only_known_models_and_its_source(tmp_path: Path) -> None:
    unknown = _write(tmp_path, lambda d: d["regions"]["cn"].append("cosyvoice-v9"))
    assert "regions.cn" in _error(unknown)
    unsourced = _write(tmp_path, lambda d: d.pop("regions_source"))
    assert "regions_source" in _error(unsourced)
    dangling = _write(tmp_path, lambda d: d.update(regions_source="nowhere"))
    assert "regions_source" in _error(dangling)


def test_voice_expiry_and_quota_say_their_rule_in_words(tmp_path: Path) -> None:
    assert "voice_expiry.note" in _error(_write(tmp_path, lambda d: d["voice_expiry"].pop("note")))
    assert "quota" in _error(_write(tmp_path, lambda d: d["quota"].update(value=0)))


def test_an_unknown_family_suggests_the_closest_name_and_names_no_internal_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``unknown family 'qwen'`` named the package's spec folder and left the user to guess: it now asks
    ``did you mean qwen-tts?`` (a spelling too far from every name gets no guess); the folder is named only
    when it is the user's own (``VOICEPREP_FAMILIES_DIR``)."""
    from pipeline.rules.families import ENV_FAMILIES_DIR

    monkeypatch.delenv(ENV_FAMILIES_DIR, raising=False)
    for typed, meant in [("qwen", "qwen-tts"), ("elevenlabz", "elevenlabs"), ("Qwen TTS", "qwen-tts")]:
        with pytest.raises(SpecError) as info:
            load_family(typed)
        msg = str(info.value)
        assert f"did you mean {meant}?" in msg, msg
        assert "configs" not in msg and "pipeline" not in msg, msg
    with pytest.raises(SpecError) as info:
        load_family("zzzzzz")
    assert "did you mean" not in str(info.value) and "available: cosyvoice" in str(info.value)
    own = tmp_path / "my-families"
    own.mkdir()
    shutil.copy(SPEC_DIR / "qwen-tts.yaml", own)
    monkeypatch.setenv(ENV_FAMILIES_DIR, str(own))
    with pytest.raises(SpecError) as info:
        load_family("qwen")
    assert "my-families" in str(info.value) and "did you mean qwen-tts?" in str(info.value)
