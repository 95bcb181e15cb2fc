"""Values and functions of the Go-template subset (runtime/gotemplate.py): how Go's fmt prints
decoded JSON, Go's truth, and the functions of text/template and Docker's CLI."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["FUNCTIONS", "NO_VALUE", "GoMap", "TemplateError", "go_string", "truth"]


class TemplateError(Exception):
    pass


class GoMap(dict[str, Any]):
    """Data that is a map in Go (labels, port maps), not a struct: a missing key is never an
    error, even under missingkey=error, because Docker evaluates it on a typed map first."""


class GoStruct(dict[str, Any]):
    """A Go struct written with `omitempty` fields: those left out of its JSON (absent keys) still
    evaluate in a template, to their zero value, as Go's struct fields do."""

    def __init__(self, data: dict[str, Any], zero: dict[str, Any]) -> None:
        super().__init__(data)
        self.zero = zero


class _NoValue:
    """Go's invalid reflect.Value: what a missing map key yields."""

    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE = _NoValue()

# --- printing --------------------------------------------------------------------------------------------------


def go_string(value: Any, top: bool = True) -> str:
    """`fmt.Sprint(value)` for decoded-JSON-like data."""
    if value is NO_VALUE:
        return "<no value>"
    if value is None:
        return "<no value>" if top else "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_string(value[k], False)}" for k in sorted(value)) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_string(v, False) for v in value) + "]"
    return str(value)


def _go_float(value: float) -> str:
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    return text.replace("e+0", "e+").replace("e-0", "e-")


def truth(value: Any) -> bool:
    if value is NO_VALUE or value is None:
        return False
    if isinstance(value, (bool, int, float, str, list, tuple, Mapping)):
        return bool(value)
    return True


# --- functions -------------------------------------------------------------------------------------------------


def _json(value: Any) -> str:
    # Docker's `json`: encoding/json without HTML escaping.
    return json.dumps(None if value is NO_VALUE else value, separators=(",", ":"), ensure_ascii=False)


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, Mapping):
            # The zero value of a map of strings (Docker's labels), which `index` returns for a missing key.
            value = value.get(key, "")
        elif isinstance(value, (list, tuple, str)):
            if not isinstance(key, int) or not 0 <= key < len(value):
                raise TemplateError(f"error calling index: index out of range: {key}")
            value = value[key]
        elif value is None or value is NO_VALUE:
            raise TemplateError("error calling index: index of untyped nil")
        else:
            raise TemplateError(f"error calling index: can't index item of type {type(value).__name__}")
    return value


def _slice(value: Any, *bounds: int) -> Any:
    if len(bounds) > 2:
        raise TemplateError("error calling slice: too many slice indexes")
    return value[slice(*bounds)] if bounds else value


def _compare(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        if isinstance(a, bool) != isinstance(b, bool) or isinstance(a, str) != isinstance(b, str):
            raise TemplateError("incompatible types for comparison")
        return op(a, b)

    return compare


def _eq(a: Any, *others: Any) -> bool:
    if not others:
        raise TemplateError("missing argument for comparison")
    return any(a == b for b in others)


def _printf(fmt: str, *args: Any) -> str:
    values = iter(args)

    def one(m: re.Match[str]) -> str:
        flags, width, verb = m.group(1), m.group(2), m.group(3)
        if verb == "%":
            return "%"
        try:
            value = next(values)
        except StopIteration:
            return f"%!{verb}(MISSING)"
        if verb in ("v", "s"):
            text = go_string(value)
        elif verb == "q":
            text = json.dumps(go_string(value), ensure_ascii=False)
        elif verb == "d":
            text = str(int(value))
        elif verb == "t":
            text = go_string(bool(value))
        elif verb == "x":
            text = value.encode().hex() if isinstance(value, str) else format(int(value), "x")
        elif verb == "f":
            text = f"{float(value):.{int(width.partition('.')[2] or 6)}f}"
            width = width.partition(".")[0]
        else:
            text = go_string(value)
        size = int(width) if width and width.isdigit() else 0
        return text.ljust(size) if "-" in flags else text.rjust(size)

    return re.sub(r"%([-+# 0]*)(\d*(?:\.\d+)?)([a-zA-Z%])", one, fmt)


def _print(*args: Any) -> str:
    # fmt.Sprint: a space between operands when neither is a string.
    out = ""
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_string(arg)
    return out


def _truncate(text: str, length: int) -> str:
    return text[:length]


def _title(text: str) -> str:
    return re.sub(r"(^|[^\w'])(\w)", lambda m: m.group(1) + m.group(2).upper(), text)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "and": lambda *a: next((x for x in a if not truth(x)), a[-1]),
    "or": lambda *a: next((x for x in a if truth(x)), a[-1]),
    "not": lambda a: not truth(a),
    "len": lambda a: len(a),
    "index": _index,
    "slice": _slice,
    "print": _print,
    "printf": _printf,
    "println": lambda *a: " ".join(go_string(x) for x in a) + "\n",
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "lt": _compare(lambda a, b: a < b),
    "le": _compare(lambda a, b: a <= b),
    "gt": _compare(lambda a, b: a > b),
    "ge": _compare(lambda a, b: a >= b),
    "json": _json,
    "split": lambda s, sep: s.split(sep),
    "join": lambda items, sep: sep.join(go_string(i, False) for i in items),
    "title": _title,
    "lower": lambda s: s.lower(),
    "upper": lambda s: s.upper(),
    "pad": lambda s, before, after: " " * before + s + " " * after,
    "truncate": _truncate,
}
