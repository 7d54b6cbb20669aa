"""Regions (``--region intl|cn``): documented hosts and key variables per region, the environment
overrides (voiceprep's and the dashscope SDK's), per-workspace hosts, the per-region model table (a model
the region does not offer is refused before anything is uploaded), the default CosyVoice audio path per
region, and the hosts the key may go to. Every request goes to the local fake (one server per region)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from fake_providers import FakeProviders, create_request, fake_runtime, make_wav, provider_client
from submit_fakes import make_run

from pipeline.batch.config import RunConfig, load_config
from pipeline.enroll.providers import (
    allowed_base_url,
    api_key_env,
    api_key_envs,
    http_base_url,
    make_provider,
    region_at,
    region_of,
)
from pipeline.enroll.providers.base import MissingApiKey
from pipeline.enroll.submit import submit_run
from pipeline.errors import InvalidArgument
from pipeline.rules.families import load_family

INTL = "https://dashscope-intl.aliyuncs.com/api/v1"
CN = "https://dashscope.aliyuncs.com/api/v1"
WS_CN = "https://ws123.cn-beijing.maas.aliyuncs.com/api/v1"
WS_INTL = "https://ws123.ap-southeast-1.maas.aliyuncs.com/api/v1"


# --- hosts and keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "region", "url", "keys"),
    [
        ("dashscope", "intl", INTL, ("DASHSCOPE_INTL_API_KEY", "DASHSCOPE_API_KEY")),
        ("dashscope", "cn", CN, ("DASHSCOPE_CN_API_KEY", "DASHSCOPE_API_KEY")),
        ("minimax", "intl", "https://api.minimax.io", ("MINIMAX_INTL_API_KEY", "MINIMAX_API_KEY")),
        ("minimax", "cn", "https://api.minimaxi.com", ("MINIMAX_CN_API_KEY", "MINIMAX_API_KEY")),
        ("elevenlabs", "cn", "https://api.elevenlabs.io", ("ELEVENLABS_API_KEY",)),
    ],
)
def test_each_region_has_its_documented_host_and_key_variables(
    provider: str, region: str, url: str, keys: tuple[str, ...]
) -> None:
    assert http_base_url(provider, region, environ={}) == url
    assert region_at(provider, url, region) == region
    assert api_key_envs(provider, region) == keys


def test_the_default_region_is_intl_and_a_documented_host_names_its_region() -> None:
    assert http_base_url("dashscope", environ={}) == INTL
    assert region_at("dashscope", http_base_url("dashscope", base_url=CN, environ={})) == "cn"
    assert (
        region_at("elevenlabs", "https://api.elevenlabs.io") == "intl"
    )  # one host: the region asked, else intl
    assert region_at("elevenlabs", "https://api.elevenlabs.io", "cn") == "cn"
    assert region_at("dashscope", "http://127.0.0.1:8080/api/v1", "cn") == "cn"  # a test server: as asked
    assert region_of("dashscope", WS_CN) == "cn" and region_of("dashscope", WS_INTL) == "intl"
    assert region_of("dashscope", "http://127.0.0.1:8080/api/v1") is None  # a test server: no region
    assert region_of("minimax", "https://api.minimaxi.com/v1") == "cn"


def test_environment_overrides_voiceprep_first_then_the_dashscope_sdk() -> None:
    sdk = {"DASHSCOPE_HTTP_BASE_URL": WS_CN}
    assert http_base_url("dashscope", environ=sdk) == WS_CN
    assert region_at("dashscope", WS_CN) == "cn"  # the workspace host says its region
    both = {**sdk, "DASHSCOPE_BASE_URL": "http://127.0.0.1:9/api/v1"}
    assert http_base_url("dashscope", "cn", environ=both) == "http://127.0.0.1:9/api/v1"
    assert http_base_url("dashscope", base_url=INTL, environ=both) == INTL  # a flag wins


def test_an_explicit_region_wins_over_a_variable_set_for_the_other_region(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="voiceprep.providers"):
        url = http_base_url("dashscope", "intl", environ={"DASHSCOPE_HTTP_BASE_URL": WS_CN})
    assert (url, region_at("dashscope", url, "intl")) == (INTL, "intl")
    assert "DASHSCOPE_HTTP_BASE_URL" in caplog.text
    with pytest.raises(InvalidArgument, match="region"):  # two explicit choices that contradict
        http_base_url("dashscope", "intl", base_url=CN, environ={})
    with pytest.raises(InvalidArgument, match="region must be one of"):
        http_base_url("dashscope", "eu", environ={})


def test_the_key_is_the_regions_own_variable_first_then_the_plain_one(fake: FakeProviders) -> None:
    env = {"DASHSCOPE_BASE_URL": fake.dashscope_base_url, "DASHSCOPE_API_KEY": "sk-plain"}
    client = make_provider(
        "cosyvoice", region="cn", runtime=fake_runtime({**env, "DASHSCOPE_CN_API_KEY": "sk-cn"})
    )
    assert client.auth_headers() == {"Authorization": "Bearer sk-cn"}
    assert make_provider("cosyvoice", region="cn", runtime=fake_runtime(env)).auth_headers()[
        "Authorization"
    ] == ("Bearer sk-plain")
    with pytest.raises(MissingApiKey) as missing:
        make_provider("cosyvoice", region="cn", runtime=fake_runtime({"DASHSCOPE_INTL_API_KEY": "sk-intl"}))
    assert missing.value.env_var == "DASHSCOPE_CN_API_KEY" and "DASHSCOPE_API_KEY" in missing.value.message
    assert api_key_env("dashscope", "cn") == "DASHSCOPE_CN_API_KEY"
    assert api_key_env("dashscope") == "DASHSCOPE_API_KEY"


def test_each_regions_key_goes_only_to_that_regions_server(tmp_path: Path) -> None:
    with (
        FakeProviders(region="cn", dashscope_key="sk-cn-1") as cn,
        FakeProviders(region="intl", dashscope_key="sk-intl-2") as intl,
    ):
        env = {"DASHSCOPE_CN_API_KEY": "sk-cn-1", "DASHSCOPE_INTL_API_KEY": "sk-intl-2"}
        clip = tmp_path / "a.wav"
        clip.write_bytes(make_wav(1.0))
        for server, region in ((cn, "cn"), (intl, "intl")):
            client = make_provider(
                "qwen-tts", region=region, base_url=server.dashscope_base_url, runtime=fake_runtime(env)
            )
            made = client.create_voice(
                create_request(clip, "qwen-tts", "qwen3-tts-vc-2026-01-22", f"{region}_1")
            )
            assert made.status == "ready"
        assert {r.header("Authorization") for r in cn.requests} == {"Bearer sk-cn-1"}
        assert {r.header("Authorization") for r in intl.requests} == {"Bearer sk-intl-2"}


def test_the_key_may_go_to_documented_and_configured_hosts_only() -> None:
    assert allowed_base_url("dashscope", WS_CN, [])
    assert allowed_base_url("dashscope", "https://dashscope.aliyuncs.com/api/v1", [])
    assert allowed_base_url("minimax", "https://api.minimaxi.com", [])
    assert not allowed_base_url("dashscope", "https://dashscope.aliyuncs.com.evil.example/api/v1", [])
    assert not allowed_base_url("dashscope", "http://dashscope.aliyuncs.com/api/v1", [])  # https only
    assert allowed_base_url("dashscope", "http://127.0.0.1:9/api/v1", ["http://127.0.0.1:9/api/v1"])


ELEVENLABS_HOSTS = (  # the API reference's server list (see docs/providers.md, "Allowed hosts")
    "https://api.elevenlabs.io",
    "https://api.us.elevenlabs.io",
    "https://api.eu.residency.elevenlabs.io",
    "https://api.in.residency.elevenlabs.io",
    "https://api.sg.residency.elevenlabs.io",
)


@pytest.mark.parametrize("url", ELEVENLABS_HOSTS)
def test_every_documented_elevenlabs_host_may_take_the_key(url: str) -> None:
    assert allowed_base_url("elevenlabs", url, [])
    assert not allowed_base_url("elevenlabs", url.replace("https:", "http:"), [])


def test_undocumented_elevenlabs_residency_hosts_are_refused() -> None:
    for url in (
        "https://api.xx.residency.elevenlabs.io",
        "https://api.eu.elevenlabs.io",
        "https://eu.residency.elevenlabs.io",
    ):
        assert not allowed_base_url("elevenlabs", url, [])


# --- the model table --------------------------------------------------------------------------------------


def test_the_family_specs_carry_the_vendors_model_list_per_region() -> None:
    cosy, qwen = load_family("cosyvoice"), load_family("qwen-tts")
    assert cosy.models_in("intl") == ["cosyvoice-v3-plus", "cosyvoice-v3-flash"]
    assert {"cosyvoice-v3.5-plus", "cosyvoice-v3.5-flash", "cosyvoice-v2"} <= set(cosy.models_in("cn"))
    for region in ("intl", "cn"):
        assert "qwen3-tts-vc-realtime-2025-11-27" in qwen.models_in(region)
    assert load_family("minimax").models_in("cn") == load_family("minimax").target_models  # no table


def test_the_client_refuses_a_model_its_region_does_not_offer_before_sending(
    fake: FakeProviders, tmp_path: Path
) -> None:
    clip = tmp_path / "a.wav"
    clip.write_bytes(make_wav(1.0))
    client = provider_client(fake, "cosyvoice", region="intl", audio_source="data_uri")
    with pytest.raises(InvalidArgument) as refused:
        client.create_voice(create_request(clip, "cosyvoice", "cosyvoice-v2", "abc"))
    assert "cosyvoice-v2" in str(refused.value) and "intl" in str(refused.value)
    assert "cosyvoice-v3-plus" in str(refused.value)
    assert fake.requests == []


def _clips_env(fake: FakeProviders) -> dict[str, str]:
    return {"DASHSCOPE_API_KEY": fake.keys["dashscope"], "DASHSCOPE_BASE_URL": fake.dashscope_base_url}


def test_submit_refuses_a_model_outside_the_region_before_any_upload_or_ledger_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeProviders(region="intl") as intl:
        for name, value in _clips_env(intl).items():
            monkeypatch.setenv(name, value)
        out = tmp_path / "out"
        make_run(out, speakers=("alice",), families=("cosyvoice",), audio=lambda i: make_wav(1.0))
        cfg = RunConfig(region="intl", target_models={"cosyvoice": "cosyvoice-v2"})
        with pytest.raises(InvalidArgument) as refused:
            submit_run(out, config=cfg)
        message = str(refused.value)
        assert "\n" not in message
        assert all(word in message for word in ("cosyvoice-v2", "intl", "cosyvoice-v3-flash"))
        assert intl.requests == []
        assert not (out / "voices.sqlite").exists()
        with pytest.raises(InvalidArgument):  # a dry run says the same
            submit_run(out, config=cfg, dry_run=True)


@pytest.mark.parametrize(("region", "upload"), [("cn", True), ("intl", False)])
def test_the_default_cosyvoice_audio_path_works_in_each_region(
    region: str, upload: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeProviders(region=region) as server:
        for name, value in _clips_env(server).items():
            monkeypatch.setenv(name, value)
        out = tmp_path / "out"
        make_run(out, speakers=("alice",), families=("cosyvoice",), audio=lambda i: make_wav(1.0))
        [outcome] = submit_run(
            out, config=load_config(region=region), settle_interval_s=0.01, settle_timeout_s=5.0
        )
        assert outcome.status == "ready", outcome
        [create] = server.requests_to("cosyvoice.create_voice")
        url = create.json["input"]["url"]
        assert url.startswith("oss://" if upload else "data:audio/wav;base64,")
        assert bool(server.requests_to("dashscope.get_policy")) is upload


def test_the_intl_fake_has_no_temporary_upload_so_oss_fails_there(
    fake: FakeProviders, tmp_path: Path
) -> None:
    clip = tmp_path / "a.wav"
    clip.write_bytes(make_wav(1.0))
    with FakeProviders(region="intl") as intl:
        client = provider_client(intl, "cosyvoice", audio_source="oss")
        with pytest.raises(Exception, match=r"provider_access|AccessDenied"):
            client.create_voice(create_request(clip, "cosyvoice", "cosyvoice-v3-plus", "abc"))
        assert intl.requests_to("cosyvoice.create_voice") == []


def test_region_and_language_come_from_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "voiceprep.yaml"
    path.write_text("region: cn\nlanguage: zh\n")
    cfg = load_config(path)
    assert (cfg.region, cfg.language, cfg.audio_source) == ("cn", "zh", None)
    assert json.loads(cfg.model_dump_json())["region"] == "cn"


def test_a_ledger_rows_host_keeps_its_region_and_the_sdk_variable_counts_as_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline.enroll.submit import UntrustedBaseUrl, client_getter

    for name in ("DASHSCOPE_BASE_URL", "DASHSCOPE_HTTP_BASE_URL", "DASHSCOPE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DASHSCOPE_CN_API_KEY", "sk-cn")
    spec = load_family("cosyvoice")
    get = client_getter(region="intl", require_key=False)
    beijing = get(spec, CN)  # a row made in Beijing is managed in Beijing, with the Beijing key
    assert (beijing.region, beijing.auth_headers()["Authorization"]) == ("cn", "Bearer sk-cn")
    proxy = "http://127.0.0.1:9/api/v1"
    with pytest.raises(UntrustedBaseUrl):
        get(spec, proxy)
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", proxy)  # set for the dashscope SDK: configured by the user
    assert client_getter(region="intl", require_key=False)(spec, proxy).base_url == proxy
