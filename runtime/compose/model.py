"""A typed model of the part of the Compose Specification Dockyard runs, as data: each key's type,
and for objects the keys allowed. `validate.py` walks a file against it.

No maintained PyPI package ships the spec's JSON schema for Python (compose-spec and
compose-pydantic wrap their own models, without Docker Compose's messages), so the model is here,
limited to the keys `dockyard compose` honours: any other key is refused, not ignored."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["TOP", "Any_", "Array", "Enum", "Mapping", "Record", "Scalar", "Type", "Union"]


@dataclass(frozen=True)
class Scalar:
    kind: str  # "string", "number", "boolean", "integer"
    pattern: str | None = None  # for strings: the form the value must have


@dataclass(frozen=True)
class Enum:
    values: tuple[str, ...]


@dataclass(frozen=True)
class Array:
    items: Type | None = None


@dataclass(frozen=True)
class Mapping:
    """An object with free keys; values of one type (None: anything)."""

    values: Type | None = None


@dataclass(frozen=True)
class Record:
    """An object with the named keys only (and `x-` extensions)."""

    fields: dict[str, Type] = field(default_factory=dict)
    nullable: bool = False


@dataclass(frozen=True)
class Union:
    options: tuple[Type, ...]


@dataclass(frozen=True)
class Any_:
    pass


Type = Scalar | Enum | Array | Mapping | Record | Union | Any_

STRING = Scalar("string")
NUMBER = Scalar("number")
BOOLEAN = Scalar("boolean")
SCALAR_VALUE = Union((STRING, NUMBER, BOOLEAN, Scalar("null")))
STRINGS = Array(STRING)
STRING_OR_LIST = Union((STRING, STRINGS))
LIST_OR_DICT = Union((Mapping(SCALAR_VALUE), Array(STRING)))
DURATION = Scalar("string", r"^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$")

PORT_STRING = re.compile(
    r"^((\[?[0-9a-fA-F.:]+\]?:)?(\d+(-\d+)?)?:)?\d+(-\d+)?(/(tcp|udp))?$",
)

PORTS = Array(
    Union(
        (
            NUMBER,
            Scalar("string", PORT_STRING.pattern),
            Record(
                {
                    "target": NUMBER,
                    "published": Union((NUMBER, STRING)),
                    "host_ip": STRING,
                    "protocol": Enum(("tcp", "udp")),
                    "mode": STRING,
                }
            ),
        )
    )
)

VOLUMES = Array(
    Union(
        (
            STRING,
            Record(
                {
                    "type": Enum(("bind", "volume")),
                    "source": STRING,
                    "target": STRING,
                    "read_only": BOOLEAN,
                }
            ),
        )
    )
)

BUILD = Union(
    (
        STRING,
        Record(
            {
                "context": STRING,
                "dockerfile": STRING,
                "args": LIST_OR_DICT,
                "target": STRING,
                "labels": LIST_OR_DICT,
            }
        ),
    )
)

HEALTHCHECK = Record(
    {
        "test": STRING_OR_LIST,
        "interval": DURATION,
        "timeout": DURATION,
        "retries": NUMBER,
        "start_period": DURATION,
        "disable": BOOLEAN,
    }
)

DEPENDS_ON = Union(
    (
        STRINGS,
        Mapping(Record({"condition": Enum(("service_started", "service_healthy", "service_completed_successfully"))})),
    )
)

SERVICE_NETWORKS = Union(
    (
        STRINGS,
        Mapping(Record({"aliases": STRINGS, "ipv4_address": STRING}, nullable=True)),
    )
)

SERVICE = Record(
    {
        "image": STRING,
        "build": BUILD,
        "command": STRING_OR_LIST,
        "entrypoint": STRING_OR_LIST,
        "environment": LIST_OR_DICT,
        "env_file": STRING_OR_LIST,
        "ports": PORTS,
        "expose": Array(Union((STRING, NUMBER))),
        "volumes": VOLUMES,
        "networks": SERVICE_NETWORKS,
        "depends_on": DEPENDS_ON,
        "links": STRINGS,
        "restart": STRING,
        "healthcheck": HEALTHCHECK,
        "container_name": STRING,
        "hostname": STRING,
        "working_dir": STRING,
        "user": STRING,
        "labels": LIST_OR_DICT,
        "dns": STRING_OR_LIST,
        "dns_search": STRING_OR_LIST,
        "extra_hosts": LIST_OR_DICT,
        "init": BOOLEAN,
        "read_only": BOOLEAN,
        "tmpfs": STRING_OR_LIST,
        "stop_grace_period": DURATION,
        "cap_add": STRINGS,
        "cap_drop": STRINGS,
        "privileged": BOOLEAN,
    }
)

NETWORK = Record(
    {
        "driver": Enum(("bridge",)),
        "internal": BOOLEAN,
        "labels": LIST_OR_DICT,
        "name": STRING,
        "external": BOOLEAN,
        "ipam": Record({"config": Array(Record({"subnet": STRING, "gateway": STRING}))}),
    },
    nullable=True,
)

VOLUME = Record(
    {"driver": Enum(("local",)), "labels": LIST_OR_DICT, "name": STRING, "external": BOOLEAN},
    nullable=True,
)

TOP = Record(
    {
        "version": STRING,
        "name": STRING,
        "services": Mapping(SERVICE),
        "networks": Mapping(NETWORK),
        "volumes": Mapping(VOLUME),
    }
)
