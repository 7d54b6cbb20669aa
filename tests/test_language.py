"""``--language`` (per run, per speaker in the speaker map, per speaker at submit): sent as CosyVoice
``language_hints``, Qwen-TTS ``language`` and MiniMax ``language_boost``, as each vendor documents, in the
request bodies the local fake receives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _cli import voiceprep
from fake_providers import FakeProviders, make_wav
from submit_fakes import make_run

from pipeline.batch.config import RunConfig
from pipeline.batch.runner import RunError, speaker_languages
from pipeline.enroll.providers.minimax import language_boost
from pipeline.enroll.submit import language_for, normalize_language, submit_run
from pipeline.errors import InvalidArgument

FAMILIES = ("cosyvoice", "qwen-tts", "minimax")


def _sent_languages(fake: FakeProviders) -> dict[str, list[object]]:
    """What each create carried as its language field, per family, in request order."""
    cosy = [r.json["input"].get("language_hints") for r in fake.requests_to("cosyvoice.create_voice")]
    qwen = [r.json["input"].get("language") for r in fake.requests_to("qwen.create")]
    mm = [r.json.get("language_boost") for r in fake.requests_to("minimax.clone")]
    return {"cosyvoice": cosy, "qwen-tts": qwen, "minimax": mm}


@pytest.fixture
def env(fake: FakeProviders, monkeypatch: pytest.MonkeyPatch) -> FakeProviders:
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    return fake


def test_one_language_goes_to_every_family_in_its_own_field(env: FakeProviders, tmp_path: Path) -> None:
    out = tmp_path / "out"
    make_run(out, speakers=("alice",), families=FAMILIES, audio=lambda i: make_wav(1.0 + i / 10))
    outcomes = submit_run(out, config=RunConfig(language="de"), settle_interval_s=0.01, settle_timeout_s=5.0)
    assert all(o.ok for o in outcomes), outcomes
    assert _sent_languages(env) == {"cosyvoice": [["de"]], "qwen-tts": ["de"], "minimax": ["German"]}


def test_the_speaker_map_and_submit_flags_choose_per_speaker(env: FakeProviders, tmp_path: Path) -> None:
    out = tmp_path / "out"
    make_run(
        out, speakers=("alice", "bob", "carol"), families=("qwen-tts",), audio=lambda i: make_wav(1 + i / 10)
    )
    run_json = {"config": {"language": "fr"}, "languages": {"alice": "zh", "bob": "ja"}}
    (out / "run.json").write_text(json.dumps(run_json))
    submit_run(out, config=RunConfig(), languages={"bob": "en-US"}, settle_interval_s=0.01)
    # alice: the speaker map; bob: the submit flag (region part dropped); carol: the run's --language
    assert sorted(_sent_languages(env)["qwen-tts"]) == ["en", "fr", "zh"]


def test_no_language_sends_no_field_and_an_unlisted_one_is_left_out(
    env: FakeProviders, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    make_run(
        out, speakers=("alice",), families=("cosyvoice", "minimax"), audio=lambda i: make_wav(1 + i / 10)
    )
    submit_run(out, config=RunConfig(), settle_interval_s=0.01, settle_timeout_s=5.0)
    assert _sent_languages(env) == {"cosyvoice": [None], "qwen-tts": [], "minimax": [None]}
    env.reset()
    other = tmp_path / "other"
    make_run(
        other, speakers=("bob",), families=("cosyvoice", "minimax"), audio=lambda i: make_wav(2 + i / 10)
    )
    outcomes = submit_run(
        other, config=RunConfig(language="xh"), settle_interval_s=0.01, settle_timeout_s=5.0
    )
    assert all(o.ok for o in outcomes)  # isiXhosa: listed by neither vendor, so not sent; the voices are made
    assert _sent_languages(env) == {"cosyvoice": [None], "qwen-tts": [], "minimax": [None]}


def test_language_codes_are_checked_and_mapped() -> None:
    assert normalize_language(" pt_BR ") == "pt-BR"
    assert normalize_language("auto") == "auto"
    with pytest.raises(InvalidArgument):
        normalize_language("English please")
    assert language_for("a", per_speaker={"a": "ko"}, default="en") == "ko"
    assert language_for("b", per_speaker={"a": "ko"}, default="en", run_default="fr") == "en"
    assert language_boost("zh-HK") == "Chinese,Yue" and language_boost("auto") == "auto"
    assert language_boost("xh") is None


def test_a_bad_language_is_refused_before_anything_is_sent(env: FakeProviders, tmp_path: Path) -> None:
    out = tmp_path / "out"
    make_run(out, speakers=("alice",), families=("qwen-tts",), audio=lambda i: make_wav(1.0))
    with pytest.raises(InvalidArgument, match="language"):
        submit_run(out, config=RunConfig(), languages={"alice": "not a language"})
    assert env.requests == []


def test_the_speaker_maps_fourth_column_is_the_language(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text(
        "path,speaker,reference,language\na.wav,alice,,en\nb.wav,alice,,en\nc.wav,bob,c.wav,zh\nd.wav,eve\n"
    )
    assert speaker_languages(path) == {"alice": "en", "bob": "zh"}
    path.write_text("a.wav,alice,,en\nb.wav,alice,,de\n")
    with pytest.raises(RunError, match="language"):
        speaker_languages(path)


def test_submit_language_and_region_flags_reach_the_requests(fake: FakeProviders, tmp_path: Path) -> None:
    out = tmp_path / "out"
    make_run(out, speakers=("alice", "bob"), families=("cosyvoice",), audio=lambda i: make_wav(1 + i / 10))
    env = {"DASHSCOPE_CN_API_KEY": fake.keys["dashscope"], "DASHSCOPE_BASE_URL": fake.dashscope_base_url}
    args = ("submit", "--out", out, "--region", "cn", "--language", "en", "--language", "bob=zh")
    done = voiceprep(*args, "--dry-run", "--json", env=env, drop=["*_API_KEY", "*_BASE_URL"])
    assert done.returncode == 0, done.stderr
    rows = {r["speaker"]: r for r in map(json.loads, done.stdout.splitlines())}
    hints = {who: r["requests"][-1]["body"]["input"]["language_hints"] for who, r in rows.items()}
    assert hints == {"alice": ["en"], "bob": ["zh"]}
    assert all("region cn" in r["note"] for r in rows.values())
    assert fake.requests == []  # a dry run sends nothing
    table = voiceprep(*args, "--dry-run", env=env, drop=["*_API_KEY", "*_BASE_URL"])
    assert table.returncode == 0 and "not set" not in table.stdout  # the cn key is the one that counts
    bad = voiceprep("submit", "--out", out, "--region", "eu", env=env, drop=["*_API_KEY", "*_BASE_URL"])
    assert bad.returncode == 2


def test_a_run_keeps_the_speaker_maps_languages_for_submit(tmp_path: Path) -> None:
    from _samples import MEMO, cut

    from pipeline.batch.config import load_config
    from pipeline.batch.runner import run

    cut(MEMO, tmp_path / "in" / "alice" / "memo.m4a", 12.5)
    speaker_map = tmp_path / "map.csv"
    speaker_map.write_text("path,speaker,reference,language\nalice/memo.m4a,alice,,en-GB\n")
    out = run(
        tmp_path / "in",
        tmp_path / "out",
        families=["minimax"],
        config=load_config(slow_measures=False, speaker_checks=False, language="de"),
        executor="serial",
        speaker_map=speaker_map,
    )
    info = json.loads((out / "run.json").read_text())
    assert info["languages"] == {"alice": "en-GB"} and info["config"]["language"] == "de"
