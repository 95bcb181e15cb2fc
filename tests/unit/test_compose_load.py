"""Compose files: v1 and v2 forms, interpolation from the environment and .env, key-naming errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.compose.project import container_name, load_project
from runtime.compose.validate import ComposeError


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "docker-compose.yml"
    path.write_text(text)
    return str(path)


def test_v2_with_interpolation_and_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TAG=1.36\n")
    f = _write(
        tmp_path,
        "version: '3'\nservices:\n  web:\n    image: busybox:${TAG}\n    environment: [A=1, B]\n"
        "    networks: [front]\n    depends_on: [db]\n  db:\n    image: ${DB:-redis}\nnetworks:\n  front: {}\n",
    )
    project = load_project([f], "My-App", environ={})
    assert project.name == "myapp"
    web = project.services()["web"]
    assert web["image"] == "busybox:1.36"
    assert web["environment"] == {"A": "1", "B": None}
    assert web["networks"] == {"front": None}
    assert web["depends_on"] == {"db": {"condition": "service_started"}}
    assert project.services()["db"]["image"] == "redis"
    assert container_name(project.name, "web") == "myapp_web_1"


def test_v1_form_without_services(tmp_path: Path) -> None:
    f = _write(tmp_path, "web:\n  image: busybox\n  links: [db]\ndb:\n  image: busybox\n")
    assert set(load_project([f], "p", environ={}).services()) == {"web", "db"}


# docker-compose 1.29's words for each (Debian's, recorded from `docker-compose config`).
INVALID = [
    (
        "services:\n  web:\n    image: busybox\n    ports: 80\n",
        "The Compose file './docker-compose.yml' is invalid because:\n"
        "services.web.ports contains an invalid type, it should be an array",
    ),
    (
        "services:\n  web:\n    imagee: busybox\n",
        "The Compose file './docker-compose.yml' is invalid because:\n"
        "Unsupported config option for services.web: 'imagee'",
    ),
    (
        "web:\n  image: busybox\n  imagee: x\n",
        "The Compose file './docker-compose.yml' is invalid because:\nUnsupported config option for web: 'imagee'",
    ),
    (
        "services:\n  web:\n    image: 5\n",
        "The Compose file './docker-compose.yml' is invalid because:\n"
        "services.web.image contains an invalid type, it should be a string",
    ),
    (
        "services:\n  web:\n    image: busybox\n    environment: 5\n",
        "The Compose file './docker-compose.yml' is invalid because:\n"
        "services.web.environment contains an invalid type, it should be an object, or an array",
    ),
    (
        "services:\n  web:\n    image: busybox\n    networks: 5\n",
        "The Compose file './docker-compose.yml' is invalid because:\n"
        "services.web.networks contains an invalid type, it should be an array, or an object",
    ),
    (
        "services:\n  web:\n    image: busybox\n    command: 5\n",
        "The Compose file './docker-compose.yml' is invalid because:\n"
        "services.web.command contains an invalid type, it should be a string, or an array",
    ),
    (
        "services:\n  web:\n    image: busybox\n    ports: ['a:b']\n",
        "The Compose file './docker-compose.yml' is invalid because:\n"
        "services.web.ports contains an invalid type, it should be a number, or an object",
    ),
    (
        "services:\n  web:\n    image: busybox\n    healthcheck:\n      tst: x\n",
        "The Compose file './docker-compose.yml' is invalid because:\n"
        "services.web.healthcheck value 'tst' does not match any of the regexes: '^x-'",
    ),
    (
        "services:\n  web:\n    image: busybox\n    depends_on: {db: {condition: bogus}}\n  db:\n    image: busybox\n",
        "The Compose file './docker-compose.yml' is invalid because:\n"
        'services.web.depends_on.db.condition contains "bogus", which is an invalid type, it should be a '
        "service_started, service_healthy, or a service_completed_successfully",
    ),
    (
        "services:\n  web: {}\n",
        "The Compose file is invalid because:\n"
        "Service web has neither an image nor a build context specified. At least one must be provided.",
    ),
    ("services:\n  web: 3\n", "In file './docker-compose.yml', services 'web' must be a mapping not a number."),
    (
        "services:\n  web:\n    image: busybox\n    depends_on: [db]\n",
        "Service 'web' depends on service 'db' which is undefined.",
    ),
    (
        "services:\n  web:\n    image: busybox\n    links: [db]\n",
        "Service 'web' has a link to service 'db' which is undefined.",
    ),
    (
        "version: '3'\nservices:\n  web:\n    image: busybox\n    volumes: ['nope:/x']\n",
        'Named volume "nope:/x:rw" is used in service "web" but no declaration was found in the volumes section.',
    ),
]


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_invalid_files_name_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str) -> None:
    _write(tmp_path, text)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ComposeError) as info:
        load_project([], "p", environ={})
    assert str(info.value) == message


def test_undefined_network_and_cycle(tmp_path: Path) -> None:
    f = _write(tmp_path, "services:\n  web:\n    image: busybox\n    networks: [nope]\n")
    with pytest.raises(ComposeError, match='Service "web" uses an undefined network "nope"'):
        load_project([f], "p", environ={})
    f = _write(
        tmp_path,
        "services:\n  a:\n    image: busybox\n    depends_on: [b]\n  b:\n    image: busybox\n    depends_on: [a]\n",
    )
    with pytest.raises(ComposeError, match="Circular dependency between a and b"):
        load_project([f], "p", environ={})


def test_start_order_follows_depends_on_and_links(tmp_path: Path) -> None:
    f = _write(
        tmp_path,
        "services:\n  web:\n    image: busybox\n    depends_on: [api]\n  api:\n    image: busybox\n"
        "    links: ['db:database']\n  db:\n    image: busybox\n",
    )
    project = load_project([f], "p", environ={})
    assert project.order() == ["db", "api", "web"]
    assert project.order(["api"]) == ["db", "api"]
