import stat
from types import SimpleNamespace

import pytest
import yaml

from auth import AccessController
from auth.base import AnonymousController
from auth.basic import HtpasswdController
from auth.bearer import TokenController
from auth.factory import open_controller as open_for
from auth.keys import generate, private_pem
from registry.config import Config, ConfigError, load_config


def open_controller(config: Config) -> AccessController:
    return open_for(config.auth, config.auth_context)


def config(tmp_path, data):
    path = tmp_path / "c.yml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path, {})


def fake_request(host="registry.lan:5000", scheme="https"):
    return SimpleNamespace(
        url=SimpleNamespace(scheme=scheme), headers={"host": host}, scope={"server": ("127.0.0.1", 5000)}
    )


def test_modes(tmp_path):
    assert isinstance(open_controller(config(tmp_path, {})), AnonymousController)
    c = open_controller(config(tmp_path, {"auth": {"htpasswd": {"path": str(tmp_path / "h")}}}))
    assert isinstance(c, HtpasswdController) and c.routes == []
    data = {"storage": {"filesystem": {"rootdirectory": str(tmp_path / "data")}}, "auth": {"tokenserver": None}}
    c = open_controller(config(tmp_path, data))
    assert isinstance(c, TokenController)
    assert sorted(r.path for r in c.routes) == ["/auth/jwks.json", "/auth/token"]
    key = tmp_path / "data" / "dockyard" / "token" / "key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert c.service == "dockyard"
    assert c.realm(fake_request()) == "https://registry.lan:5000/auth/token"


def test_configured_key_and_external_issuer(tmp_path):
    key = tmp_path / "signing.pem"
    key.write_bytes(private_pem(generate("RS256")))
    data = {"storage": {"s3": {"bucket": "b"}}, "auth": {"tokenserver": {"key": str(key)}}}
    assert isinstance(open_controller(config(tmp_path, data)), TokenController)
    data = {"storage": {"s3": {"bucket": "b"}}, "auth": {"tokenserver": {}}}
    with pytest.raises(ConfigError, match=r"tokenserver\.key is required"):
        open_controller(config(tmp_path, data))
    jwks = tmp_path / "jwks.json"
    with pytest.raises(ConfigError, match="no key to verify"):
        open_controller(config(tmp_path, {"auth": {"token": {"realm": "https://a/t"}}}))
    jwks.write_text('{"keys": []}')
    with pytest.raises(ConfigError, match="cannot load"):
        open_controller(config(tmp_path, {"auth": {"token": {"realm": "https://a/t", "jwks": str(jwks)}}}))
    jwks.write_text("not json")
    with pytest.raises(ConfigError, match="cannot load"):
        open_controller(config(tmp_path, {"auth": {"token": {"realm": "https://a/t", "jwks": str(jwks)}}}))
    jwks.write_text('{"keys": "x"}')
    with pytest.raises(ConfigError, match="cannot load"):
        open_controller(config(tmp_path, {"auth": {"token": {"realm": "https://a/t", "jwks": str(jwks)}}}))
    bundle = tmp_path / "missing.pem"
    with pytest.raises(ConfigError, match="cannot load"):
        open_controller(config(tmp_path, {"auth": {"token": {"realm": "https://a/t", "rootcertbundle": str(bundle)}}}))


def test_external_issuer_realms(tmp_path):
    from cryptography.hazmat.primitives import serialization

    from auth.keys import self_signed

    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(self_signed(generate("ES256"), "ext").public_bytes(serialization.Encoding.PEM))
    token = {"rootcertbundle": str(bundle), "service": "reg", "issuer": "ext"}
    with pytest.raises(ConfigError, match="realm is required"):
        open_controller(config(tmp_path, {"auth": {"token": token}}))
    c = open_controller(config(tmp_path, {"auth": {"token": token | {"realm": "https://auth.lan/token"}}}))
    assert isinstance(c, TokenController) and c.routes == []
    assert c.realm(fake_request()) == "https://auth.lan/token"
    c = open_controller(
        config(tmp_path, {"auth": {"token": token | {"realm": "https://auth.lan/token", "autoredirect": True}}})
    )
    assert c.realm(fake_request("other.lan:443")) == "https://other.lan:443/token"


def test_bad_settings(tmp_path):
    with pytest.raises(ConfigError, match=r"htpasswd\.path"):
        open_controller(config(tmp_path, {"auth": {"htpasswd": {}}}))
    data = {"storage": {"inmemory": None}, "auth": {"tokenserver": {}, "token": {"signingalgorithms": ["HS256"]}}}
    with pytest.raises(ConfigError, match="HS256"):
        open_controller(config(tmp_path, data))
    data = {"storage": {"inmemory": None}, "auth": {"tokenserver": {"expiration": "soon"}}}
    with pytest.raises(ConfigError, match="expiration"):
        open_controller(config(tmp_path, data))
    data = {
        "auth": {
            "htpasswd": {"path": "x"},
            "access": {"rules": [{"repositories": ["a"], "who": ["bob"], "actions": ["pull"]}]},
        }
    }
    with pytest.raises(ConfigError, match="user:NAME"):
        open_controller(config(tmp_path, data))
    with pytest.raises(ConfigError, match="not one of"):
        config(tmp_path, {"auth": {"tokenserver": {"algorithm": "HS256"}}})
