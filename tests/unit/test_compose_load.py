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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("services:\n  web:\n    image: busybox\n    ports: 80\n", "services.web.ports contains an invalid type"),
        (
            "services:\n  web:\n    image: busybox\n    bogus: 1\n",
            "services.web Additional property bogus is not allowed",
        ),
        ("services:\n  web: {}\n", "Service web has neither an image nor a build context specified"),
    ],
)
def test_invalid_files_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ComposeError, match=message):
        load_project([_write(tmp_path, text)], "p", environ={})
