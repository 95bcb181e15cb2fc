"""The Go-template subset behind `--format`, and the table writer: pure, no root. Expected
strings are what Go's text/template and text/tabwriter print for the same data."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.gotemplate import Template, TemplateError, render
from runtime.listformat import render_rows, tabwrite

DATA: dict[str, Any] = {
    "Id": "0123456789abcdef",
    "State": {"Status": "exited", "Running": False, "Pid": 0, "ExitCode": 3},
    "Config": {
        "Cmd": ["sh", "-c", "exit 3"],
        "Entrypoint": None,
        "Labels": {"com.example.role": "web", "tier": "front"},
        "ExposedPorts": {"80/tcp": {}},
    },
    "Mounts": [{"Destination": "/data", "RW": True}, {"Destination": "/cache", "RW": False}],
    "Size": 1.5,
}

CASES = [
    ("{{.Id}}", "0123456789abcdef"),
    ("{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}", "exited 3 false"),
    ("{{json .Config.Cmd}}", '["sh","-c","exit 3"]'),
    ("{{json .State}}", '{"Status":"exited","Running":false,"Pid":0,"ExitCode":3}'),
    ("{{json .Config.Entrypoint}}", "null"),
    ("{{.Config.Cmd}}", "[sh -c exit 3]"),
    ("{{.Config.Labels}}", "map[com.example.role:web tier:front]"),
    ("{{.Config.ExposedPorts}}", "map[80/tcp:map[]]"),
    ("{{.Missing}}", "<no value>"),
    ('{{index .Config.Labels "com.example.role"}}', "web"),
    ("{{index .Config.Cmd 2}}", "exit 3"),
    ("{{(index .Mounts 1).Destination}}", "/cache"),
    ("{{range .Mounts}}{{.Destination}}:{{.RW}} {{end}}", "/data:true /cache:false "),
    ("{{range $i, $m := .Mounts}}{{$i}}={{$m.Destination}};{{end}}", "0=/data;1=/cache;"),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}},{{end}}", "com.example.role=web,tier=front,"),
    ("{{range .Nothing}}x{{else}}empty{{end}}", "empty"),
    ('{{if eq .State.Status "running"}}up{{else if eq .State.ExitCode 3}}three{{else}}other{{end}}', "three"),
    ("{{if not .State.Running}}stopped{{end}}", "stopped"),
    ("{{if and .Id .State.Running}}a{{else}}b{{end}}", "b"),
    ("{{with .State}}{{.Status}}{{end}}{{with .Nothing}}never{{end}}", "exited"),
    ("{{$id := .Id}}{{range .Mounts}}{{$id}}{{end}}", "0123456789abcdef0123456789abcdef"),
    ("{{range .Mounts}}{{$.Id}}{{end}}", "0123456789abcdef0123456789abcdef"),
    ('{{join .Config.Cmd " "}}', "sh -c exit 3"),
    ('{{split "a,b,c" ","}}', "[a b c]"),
    ('{{upper .State.Status}} {{lower "AB"}} {{title "hello world"}}', "EXITED ab Hello World"),
    ("{{.State.Status | upper}}", "EXITED"),
    ("{{truncate .Id 4}}", "0123"),
    ('{{printf "%s=%d|%5s|%-4s|" .State.Status .State.ExitCode "ab" "c"}}', "exited=3|   ab|c   |"),
    ("{{len .Mounts}} {{len .Config.Labels}}", "2 2"),
    ("{{.Size}}", "1.5"),
    ('a {{- " b " -}} c', "a b c"),
    ("x{{/* a comment */}}y", "xy"),
    ("{{println .Id}}", "0123456789abcdef\n"),
    ("{{`raw \\n`}}", "raw \\n"),
]


@pytest.mark.parametrize(("source", "expected"), CASES, ids=[c[0] for c in CASES])
def test_renders_like_go(source: str, expected: str) -> None:
    assert render(source, DATA) == expected


@pytest.mark.parametrize(
    "source",
    ["{{.Id", "{{if .Id}}x", "{{end}}", '{{nosuch "x"}}', "{{index .Config.Cmd 9}}", '{{define "x"}}{{end}}'],
)
def test_errors(source: str) -> None:
    with pytest.raises(TemplateError):
        render(source, DATA)


def test_missing_key_error_option() -> None:
    assert Template("{{.Missing}}").execute(DATA) == "<no value>"
    with pytest.raises(TemplateError, match='map has no entry for key "Missing"'):
        Template("{{.State.Missing}}", missing_key="error").execute(DATA)
    assert Template('{{index .Config.Labels "nope"}}|', missing_key="error").execute(DATA) == "|"


def test_methods_take_arguments() -> None:
    row = {"Label": lambda key: {"tier": "front"}.get(key, "")}
    assert Template('{{.Label "tier"}}|{{.Label "x"}}').execute(row) == "front|"


def test_tabwriter_pads_to_width_plus_three_at_least_ten() -> None:
    text = "CONTAINER ID\tIMAGE\tNAMES\nabc\tbusybox-with-long-name\tx\n"
    assert tabwrite(text) == (
        "CONTAINER ID   IMAGE                    NAMES\nabc            busybox-with-long-name   x\n"
    )


def test_table_format_has_a_header_from_the_header_context() -> None:
    rows = [{"ID": "abc", "Names": "one"}, {"ID": "defghij", "Names": "two"}]
    out = render_rows("table {{.ID}}\\t{{.Names}}", rows, {"ID": "CONTAINER ID", "Names": "NAMES"})
    assert out == "CONTAINER ID   NAMES\nabc            one\ndefghij        two\n"
    assert render_rows("{{.ID}}", rows, {}) == "abc\ndefghij\n"
    assert render_rows("json", rows, {}) == '{"ID":"abc","Names":"one"}\n{"ID":"defghij","Names":"two"}\n'


def test_omitted_struct_field_is_its_zero_value_not_an_error() -> None:
    from runtime.gotemplate import GoStruct

    host = {"HostConfig": GoStruct({"Privileged": False}, {"Tmpfs": None})}
    strict = Template("{{json .HostConfig.Tmpfs}} {{.HostConfig.Privileged}}", missing_key="error")
    assert strict.execute(host) == "null false"
    with pytest.raises(TemplateError, match='map has no entry for key "Nope"'):
        Template("{{.HostConfig.Nope}}", missing_key="error").execute(host)
    assert "Tmpfs" not in json.dumps(host)
