"""The `dockyard` command table (dockyard/commands.py) against the parsers the modules register,
and the imports each side's commands cost."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from dockyard.__main__ import build_parser
from dockyard.commands import COMMANDS

SERVER_ONLY = {"starlette", "uvicorn", "yaml", "registry", "auth", "prometheus_client", "jinja2"}


def _registered(modules: list[str]) -> dict[str, str | None]:
    parser = build_parser(modules)
    (subparsers,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {action.dest: action.help for action in subparsers._choices_actions}


def test_the_table_lists_every_command_the_two_sides_register_with_its_help() -> None:
    table = {command.name: command.help for command in COMMANDS}
    assert _registered(["registry.cli", "runtime.cli"]) == table


def test_each_command_is_registered_by_the_module_the_table_names() -> None:
    for module in {command.module for command in COMMANDS}:
        registered = _registered([module])
        for command in COMMANDS:
            if command.module == module:
                assert registered.get(command.name) == command.help, (command.name, module)


def test_names_are_unique() -> None:
    names = [command.name for command in COMMANDS]
    assert len(names) == len(set(names))


def _modules_after(argv: list[str]) -> set[str]:
    script = (
        "import json, sys\n"
        "from dockyard.__main__ import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write('\\nMODULES ' + json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    return set(json.loads(result.stderr.rsplit("MODULES ", 1)[1]))


def test_help_imports_no_command_module() -> None:
    loaded = _modules_after(["--help"])
    assert not {name for name in loaded if name.split(".")[0] in SERVER_ONLY | {"runtime", "asyncio"}}


def test_runtime_commands_load_neither_the_server_nor_an_event_loop() -> None:
    loaded = _modules_after(["run", "--help"])
    assert "runtime.commands.containers" in loaded
    assert not {"runtime.cli", "runtime.commands.images", "runtime.commands.groups"} & loaded
    assert not {name for name in loaded if name.split(".")[0] in SERVER_ONLY | {"asyncio", "httpx"}}


def test_server_commands_do_not_load_the_runtime() -> None:
    loaded = _modules_after(["gc", "--help"])
    assert "registry.cli" in loaded
    assert not {name for name in loaded if name.split(".")[0] == "runtime"}
