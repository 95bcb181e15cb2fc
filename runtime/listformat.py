"""Docker's `--format` for listing commands (ps, images, volume ls ...): a Go template per row, a
`table` prefix for a header and aligned columns, `json` for one JSON object a line.

Mirrors docker/cli's formatter: the words `\\t` and `\\n` in the format become a tab and a newline,
rows end in a newline, and a table goes through a tabwriter with minimum cell width 10 and
padding 3 (text/tabwriter: `NewWriter(out, 10, 1, 3, ' ', 0)`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from runtime.gotemplate import Template, TemplateError

__all__ = ["TemplateError", "render_rows", "tabwrite"]

MIN_WIDTH = 10
PADDING = 3


def tabwrite(text: str, min_width: int = MIN_WIDTH, padding: int = PADDING) -> str:
    """Go's text/tabwriter (no flags): a tab ends a cell; each column of consecutive lines that
    have that cell is as wide as its widest cell plus `padding`, at least `min_width`; the last
    cell of a line is not aligned."""
    lines = [line.split("\t") for line in text.split("\n")]
    widths: list[list[int]] = [[0] * (len(cells) - 1) for cells in lines]
    column = 0
    while True:
        active = [i for i, cells in enumerate(lines) if len(cells) - 1 > column]
        if not active:
            break
        run: list[int] = []
        for i in [*active, -2]:
            if run and i != run[-1] + 1:
                width = max(min_width, max(len(lines[j][column]) + padding for j in run))
                for j in run:
                    widths[j][column] = width
                run = []
            if i >= 0:
                run.append(i)
        column += 1
    out = []
    for cells, cell_widths in zip(lines, widths, strict=True):
        out.append("".join(c.ljust(w) for c, w in zip(cells, cell_widths, strict=False)) + cells[-1])
    return "\n".join(out)


def _prepare(fmt: str) -> tuple[str, bool]:
    table = fmt.startswith("table")
    if table:
        fmt = fmt[len("table") :]
    fmt = fmt.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    return fmt, table


def render_rows(
    fmt: str,
    rows: Iterable[Any],
    headers: Mapping[str, str],
    as_json: Callable[[Any], Mapping[str, Any]] | None = None,
) -> str:
    """All of a listing's output for `fmt`. `headers` names each field's column (Docker's header
    context); `as_json` gives the object printed by `--format json`."""
    rows = list(rows)
    if fmt == "json":
        convert = as_json or (lambda r: r)
        return "".join(json.dumps(convert(r), separators=(",", ":"), ensure_ascii=False) + "\n" for r in rows)
    source, table = _prepare(fmt)
    template = Template(source, missing_key="error")
    body = "".join(template.execute(r) + "\n" for r in rows)
    if not table:
        return body
    header = template.execute(_HeaderContext(headers))
    return tabwrite(header + "\n" + body)


class _HeaderContext(dict[str, Any]):
    """What a header row renders from: each field gives its column title; a method such as
    `.Label "x"` gives its title whatever the arguments."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        super().__init__()
        for key, title in headers.items():
            self[key] = _Title(title)


class _Title(str):
    def __call__(self, *_args: object) -> str:
        return str(self)
