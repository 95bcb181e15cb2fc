"""The `proxy` config section and how names are routed to upstreams."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from registry.config import ConfigError, ProxyConfig, UpstreamConfig, load_config
from registry.proxy.evict import caches, parse_size
from registry.proxy.routing import Routing
from typedconfig import duration


def test_distributions_proxy_section_and_env_overrides_load(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "c.yml"
    path.write_text("proxy:\n  remoteurl: https://registry-1.docker.io\n  ttl: 24h\n")
    env = {"REGISTRY_PROXY_USERNAME": "bot", "REGISTRY_PROXY_PASSWORD": "s3cret"}
    with caplog.at_level(logging.WARNING):
        config = load_config(path, env)
    assert config.proxy == ProxyConfig(
        remoteurl="https://registry-1.docker.io", username="bot", password="s3cret", ttl=duration("24h")
    )
    assert "proxy" not in caplog.text  # implemented now: no "not implemented" warning
    only_env = load_config(None, {"REGISTRY_PROXY_REMOTEURL": "http://127.0.0.1:5001"})
    assert only_env.proxy is not None and only_env.proxy.remoteurl == "http://127.0.0.1:5001"
    assert load_config(None, {}).proxy is None


def test_upstreams_load_as_a_list(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text(
        "proxy:\n  upstreams:\n    - {prefix: hub, remoteurl: 'https://registry-1.docker.io', default: true}\n"
    )
    loaded = load_config(path, {})
    assert loaded.proxy is not None
    assert loaded.proxy.upstreams == [
        UpstreamConfig(prefix="hub", remoteurl="https://registry-1.docker.io", default=True)
    ]


def test_whole_registry_routing_maps_every_name() -> None:
    routing = Routing(ProxyConfig(remoteurl="https://registry-1.docker.io"))
    target = routing.prefixed("nginx")
    assert target is not None and target.remote == "library/nginx" and target.local == "nginx"
    target = routing.prefixed("grafana/grafana")
    assert target is not None and target.remote == "grafana/grafana"
    assert routing.refuses_push("anything/at/all")


def test_prefixed_upstreams_default_and_ns() -> None:
    routing = Routing(
        ProxyConfig(
            upstreams=[
                UpstreamConfig(prefix="dockerhub", remoteurl="https://registry-1.docker.io", default=True),
                UpstreamConfig(prefix="ghcr", remoteurl="https://ghcr.io"),
                UpstreamConfig(prefix="lan", remoteurl="http://10.0.0.5:5000"),
            ]
        )
    )
    hub = routing.prefixed("dockerhub/library/nginx")
    assert hub is not None and hub.upstream.prefix == "dockerhub" and hub.remote == "library/nginx"
    short = routing.prefixed("dockerhub/nginx")
    assert short is not None and short.remote == "library/nginx"  # Docker Hub's library/ rule
    ghcr = routing.prefixed("ghcr/owner/tool")
    assert ghcr is not None and ghcr.remote == "owner/tool"  # no library/ rule elsewhere
    assert routing.prefixed("team/app") is None and not routing.refuses_push("team/app")
    assert routing.refuses_push("ghcr/owner/tool")
    default = routing.unprefixed("library/nginx", None)
    assert default is not None and default.upstream.prefix == "dockerhub"
    assert default.local == "dockerhub/library/nginx"  # never confused with a local repository
    by_ns = routing.unprefixed("owner/tool", "ghcr.io")
    assert by_ns is not None and by_ns.upstream.prefix == "ghcr" and by_ns.local == "ghcr/owner/tool"
    by_host = routing.unprefixed("x/y", "10.0.0.5:5000")
    assert by_host is not None and by_host.upstream.prefix == "lan"
    hub_ns = routing.unprefixed("library/alpine", "docker.io")
    assert hub_ns is not None and hub_ns.upstream.prefix == "dockerhub"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (ProxyConfig(upstreams=[UpstreamConfig(remoteurl="https://b.example")]), "prefix"),
        (ProxyConfig(remoteurl="ftp://a.example"), "remoteurl"),
        (ProxyConfig(remoteurl="https://user:pw@a.example"), "credentials"),
        (
            ProxyConfig(
                upstreams=[
                    UpstreamConfig(prefix="a", remoteurl="https://a.example", default=True),
                    UpstreamConfig(prefix="b", remoteurl="https://b.example", default=True),
                ]
            ),
            "default",
        ),
        (
            ProxyConfig(
                upstreams=[
                    UpstreamConfig(prefix="a", remoteurl="https://a.example"),
                    UpstreamConfig(prefix="a", remoteurl="https://b"),
                ]
            ),
            "twice",
        ),
    ],
)
def test_bad_proxy_configs_are_refused(config: ProxyConfig, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Routing(config)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("proxy:\n  remoteurl: https://a.example\n  upstreams: [{prefix: b, remoteurl: 'https://b'}]\n", "not both"),
        ("proxy:\n  remoteurl: https://a.example\n  ttl: soon\n", r"proxy\.ttl"),
        ("proxy:\n  upstreams: [{prefix: b, remoteurl: 'https://b', timeout: x}]\n", r"proxy\.upstreams\[0\]\.timeout"),
    ],
)
def test_bad_proxy_sections_are_refused_at_load(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path, {})


def test_sizes_parse_and_a_bad_maxsize_is_refused() -> None:
    assert parse_size("200GiB") == 200 * 1024**3
    assert parse_size("500MB") == 500 * 1000**2
    assert parse_size("8MiB") == 8 * 1024**2
    assert parse_size("1048576") == 1048576
    with pytest.raises(ValueError):
        parse_size("lots")
    with pytest.raises(ConfigError, match=r"proxy\.upstreams\[0\]\.maxsize"):
        caches(ProxyConfig(upstreams=[UpstreamConfig(prefix="a", remoteurl="https://a.example", maxsize="big")]))
    assert caches(ProxyConfig(remoteurl="https://a.example", maxsize="1GB"))[0].maxsize == 10**9


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_refuses_a_bad_proxy_section_at_start(tmp_path: Path, workers: str) -> None:
    path = tmp_path / "c.yml"
    path.write_text("proxy:\n  remoteurl: ftp://user:pw@registry.example\n")
    result = subprocess.run(
        [sys.executable, "-m", "dockyard", "serve", str(path), "--workers", workers, "--port", "1"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
    )
    assert result.returncode == 2
    assert "proxy.remoteurl" in result.stderr and "Traceback" not in result.stderr
    assert "pw@" not in result.stderr


def test_a_proxy_on_read_only_storage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text(
        "proxy:\n  remoteurl: https://a.example\nstorage:\n  maintenance:\n    readonly:\n      enabled: true\n"
    )
    with pytest.raises(ConfigError, match="readonly"):
        load_config(path, {})
