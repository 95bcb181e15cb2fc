"""The subset of Go's text/template that `docker ... --format` users write, over Python data.

Supported: text and `{{ }}` actions with `{{-`/`-}}` trimming and `{{/* comments */}}`; fields
(`.A.B`, `$`, `$x.A`), string/number/bool/nil literals, parenthesised pipelines, `|` pipes;
`if`/`else if`/`else`, `range` (with `$i, $v :=` and `else`), `with`, variable declarations and
assignment; Go's functions `and or not len index print printf println eq ne lt le gt ge slice`
and Docker's `json split join title lower upper pad truncate`.

Values print as Go's fmt prints decoded JSON: lists `[a b]`, maps `map[k:v]` with sorted keys, a
missing key `<no value>`, nil inside a composite `<nil>`. A callable value is a method: `{{.Label
"k"}}` calls it with the arguments."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runtime.gotemplate_funcs import FUNCTIONS, NO_VALUE, GoMap, GoStruct, TemplateError, go_string, truth

__all__ = ["GoMap", "GoStruct", "Template", "TemplateError", "go_string", "render"]


# --- lexing ----------------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<decl>:=)
  | (?P<assign>=)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\]|\\.)+')
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F_]+|(?:\d[\d_]*)?\.?\d[\d_]*(?:[eE][-+]?\d+)?))
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
  | (?P<dot>\.)
  | (?P<variable>\$[A-Za-z0-9_]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<pipe>\|)
  | (?P<comma>,)
    """,
    re.VERBOSE,
)


@dataclass
class _Tok:
    kind: str
    text: str
    end: int = 0


def _lex_action(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise TemplateError(f"unexpected {text[pos]!r} in command")
        kind = m.lastgroup or ""
        if kind == "field" and tokens and tokens[-1].kind in ("rparen", "variable") and pos == tokens[-1].end:
            kind = "chain"
        tok = _Tok(kind, m.group(), m.end())
        if kind != "space":
            tokens.append(tok)
        pos = m.end()
    return tokens


# --- the tree --------------------------------------------------------------------------------------------------


@dataclass
class _Operand:
    kind: str  # field, dot, variable, ident, literal, pipeline
    value: Any
    chain: tuple[str, ...] = ()


@dataclass
class _Command:
    operands: list[_Operand]


@dataclass
class _Pipeline:
    commands: list[_Command]
    variables: list[str] = field(default_factory=list)
    declare: bool = True


@dataclass
class _Text:
    text: str


@dataclass
class _Action:
    pipeline: _Pipeline


@dataclass
class _Branch:
    kind: str  # if, range, with
    pipeline: _Pipeline
    body: list[Any]
    otherwise: list[Any]


_KEYWORDS = {"if", "range", "with", "else", "end", "define", "template", "block", "break", "continue"}


class _Parser:
    def __init__(self, source: str) -> None:
        self.items = self._split(source)
        self.pos = 0
        self.pending: list[_Tok] = []  # the tokens of the {{else}} or {{end}} that ended a list

    @staticmethod
    def _split(source: str) -> list[tuple[str, str]]:
        """("text", s) and ("action", inner) items, trim markers applied."""
        items: list[tuple[str, str]] = []
        pos = 0
        trim_next = False
        while True:
            start = source.find("{{", pos)
            text = source[pos:] if start < 0 else source[pos:start]
            if trim_next:
                text = text.lstrip(" \t\r\n")
            if start < 0:
                if text:
                    items.append(("text", text))
                return items
            inner_start = start + 2
            if source[inner_start : inner_start + 2] in ("- ", "-\t", "-\n"):
                text = text.rstrip(" \t\r\n")
                inner_start += 1
            if text:
                items.append(("text", text))
            inner_start_stripped = source[inner_start:].lstrip()
            if inner_start_stripped.startswith("/*"):
                close = source.find("*/", inner_start)
                if close < 0:
                    raise TemplateError("unclosed comment")
                end = source.find("}}", close)
            else:
                end = _find_close(source, inner_start)
            if end < 0:
                raise TemplateError("unclosed action")
            inner = source[inner_start:end]
            trim_next = False
            if inner.endswith((" -", "\t-", "\n-")):
                inner = inner[:-1]
                trim_next = True
            if not inner.strip().startswith("/*"):
                items.append(("action", inner))
            pos = end + 2

    def parse(self) -> list[Any]:
        nodes, stop = self._list()
        if stop is not None:
            raise TemplateError(f"unexpected {{{{{stop}}}}}")
        return nodes

    def _list(self) -> tuple[list[Any], str | None]:
        """Nodes up to an `else`/`end` at this level, and which one stopped it (None at the end)."""
        nodes: list[Any] = []
        while self.pos < len(self.items):
            kind, content = self.items[self.pos]
            self.pos += 1
            if kind == "text":
                nodes.append(_Text(content))
                continue
            tokens = _lex_action(content)
            if not tokens:
                raise TemplateError("missing value for command")
            head = tokens[0]
            if head.kind == "ident" and head.text in ("end", "else"):
                self.pending = tokens
                return nodes, head.text
            if head.kind == "ident" and head.text in ("if", "range", "with"):
                nodes.append(self._branch(head.text, tokens[1:]))
                continue
            if head.kind == "ident" and head.text in _KEYWORDS:
                raise TemplateError(f"{{{{{head.text}}}}} is not supported")
            nodes.append(_Action(_parse_pipeline(tokens)))
        return nodes, None

    def _branch(self, kind: str, tokens: list[_Tok]) -> _Branch:
        pipeline = _parse_pipeline(tokens, allow_two=kind == "range")
        body, stop = self._list()
        otherwise: list[Any] = []
        if stop is None:
            raise TemplateError(f"unexpected EOF: {{{{{kind}}}}} without {{{{end}}}}")
        if stop == "else":
            rest = self.pending[1:]
            if rest and rest[0].kind == "ident" and rest[0].text in ("if", "with") and kind in ("if", "with"):
                # {{else if x}} is {{else}}{{if x}}...{{end}} sharing this branch's {{end}}.
                otherwise = [self._branch(rest[0].text, rest[1:])]
                return _Branch(kind, pipeline, body, otherwise)
            otherwise, stop = self._list()
            if stop != "end":
                raise TemplateError(f"expected {{{{end}}}} after {{{{else}}}} of {{{{{kind}}}}}")
        return _Branch(kind, pipeline, body, otherwise)


def _find_close(source: str, start: int) -> int:
    """The `}}` closing the action that starts at `start`, skipping string literals."""
    pos = start
    while pos < len(source):
        ch = source[pos]
        if ch in "\"'":
            pos += 1
            while pos < len(source) and source[pos] != ch:
                pos += 2 if source[pos] == "\\" else 1
        elif ch == "`":
            pos = source.find("`", pos + 1)
            if pos < 0:
                return -1
        elif source.startswith("}}", pos):
            return pos
        pos += 1
    return -1


def _parse_pipeline(tokens: list[_Tok], allow_two: bool = False) -> _Pipeline:
    variables: list[str] = []
    declare = True
    # `$x :=`, `$x =`, or (range only) `$i, $v :=`
    if tokens and tokens[0].kind == "variable":
        if len(tokens) > 1 and tokens[1].kind in ("decl", "assign"):
            variables, declare, tokens = [tokens[0].text], tokens[1].kind == "decl", tokens[2:]
        elif (
            allow_two
            and len(tokens) > 3
            and tokens[1].kind == "comma"
            and tokens[2].kind == "variable"
            and tokens[3].kind in ("decl", "assign")
        ):
            variables, declare, tokens = [tokens[0].text, tokens[2].text], tokens[3].kind == "decl", tokens[4:]
    commands: list[_Command] = []
    current: list[_Operand] = []
    pos = 0
    while pos < len(tokens):
        tok = tokens[pos]
        if tok.kind == "pipe":
            if not current:
                raise TemplateError("missing command before |")
            commands.append(_Command(current))
            current = []
            pos += 1
            continue
        operand, pos = _parse_operand(tokens, pos)
        current.append(operand)
    if not current:
        raise TemplateError("missing value for command")
    commands.append(_Command(current))
    return _Pipeline(commands, variables, declare)


def _parse_operand(tokens: list[_Tok], pos: int) -> tuple[_Operand, int]:
    tok = tokens[pos]
    pos += 1
    if tok.kind == "lparen":
        depth, end = 1, pos
        while end < len(tokens) and depth:
            depth += {"lparen": 1, "rparen": -1}.get(tokens[end].kind, 0)
            end += 1
        if depth:
            raise TemplateError("unclosed left paren")
        operand = _Operand("pipeline", _parse_pipeline(tokens[pos : end - 1]))
        pos = end
    elif tok.kind == "field":
        operand = _Operand("field", None, tuple(tok.text[1:].split(".")))
    elif tok.kind == "dot":
        operand = _Operand("dot", None)
    elif tok.kind == "variable":
        operand = _Operand("variable", tok.text)
    elif tok.kind == "ident":
        if tok.text in ("true", "false"):
            operand = _Operand("literal", tok.text == "true")
        elif tok.text == "nil":
            operand = _Operand("literal", None)
        else:
            operand = _Operand("ident", tok.text)
    elif tok.kind == "string":
        operand = _Operand("literal", json.loads(tok.text))
    elif tok.kind == "raw":
        operand = _Operand("literal", tok.text[1:-1])
    elif tok.kind == "char":
        operand = _Operand("literal", ord(json.loads('"' + tok.text[1:-1] + '"')))
    elif tok.kind == "number":
        text = tok.text.replace("_", "")
        try:
            operand = _Operand("literal", int(text, 0))
        except ValueError:
            operand = _Operand("literal", float(text))
    else:
        raise TemplateError(f"unexpected {tok.text!r} in operand")
    if pos < len(tokens) and tokens[pos].kind == "chain":
        operand.chain = tuple(tokens[pos].text[1:].split("."))
        pos += 1
    return operand, pos


# --- execution -------------------------------------------------------------------------------------------------


class _Scope:
    def __init__(self, root: Any) -> None:
        self.frames: list[dict[str, Any]] = [{"$": root}]

    def lookup(self, name: str) -> Any:
        for frame in reversed(self.frames):
            if name in frame:
                return frame[name]
        raise TemplateError(f"undefined variable: {name}")

    def assign(self, name: str, value: Any, declare: bool) -> None:
        if declare:
            self.frames[-1][name] = value
            return
        for frame in reversed(self.frames):
            if name in frame:
                frame[name] = value
                return
        raise TemplateError(f"undefined variable: {name}")


def _field(value: Any, name: str, args: Sequence[Any] = (), strict: bool = False) -> Any:
    if isinstance(value, GoStruct) and name not in value and name in value.zero:
        result = value.zero[name]
    elif isinstance(value, Mapping):
        if strict and name not in value and not isinstance(value, GoMap):
            raise TemplateError(f'map has no entry for key "{name}"')
        result = value.get(name, NO_VALUE)
    elif value is None or value is NO_VALUE:
        raise TemplateError(f"nil pointer evaluating .{name}")
    elif hasattr(value, name):
        result = getattr(value, name)
    else:
        raise TemplateError(f"can't evaluate field {name} in type {type(value).__name__}")
    if callable(result):
        return result(*args)
    if args:
        raise TemplateError(f"{name} has arguments but cannot be invoked as function")
    return result


def _chain(value: Any, names: Sequence[str], args: Sequence[Any] = (), strict: bool = False) -> Any:
    for i, name in enumerate(names):
        value = _field(value, name, args if i == len(names) - 1 else (), strict)
    return value


class Template:
    def __init__(
        self, source: str, functions: Mapping[str, Callable[..., Any]] | None = None, missing_key: str = "default"
    ) -> None:
        """`missing_key` is Go's option: "default" prints `<no value>`, "error" stops, as Docker's
        CLI does for a field its data does not have."""
        if missing_key not in ("default", "error"):
            raise ValueError(f"unknown missingkey option {missing_key!r}")
        self.strict = missing_key == "error"
        self.source = source
        self.functions = {**FUNCTIONS, **(functions or {})}
        self.nodes = _Parser(source).parse()

    def execute(self, data: Any) -> str:
        out: list[str] = []
        self._run(self.nodes, data, _Scope(data), out)
        return "".join(out)

    def _run(self, nodes: list[Any], dot: Any, scope: _Scope, out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, _Text):
                out.append(node.text)
            elif isinstance(node, _Action):
                value = self._pipeline(node.pipeline, dot, scope)
                if not node.pipeline.variables:
                    out.append(go_string(value))
            else:
                self._branch(node, dot, scope, out)

    def _branch(self, node: _Branch, dot: Any, scope: _Scope, out: list[str]) -> None:
        scope.frames.append({})
        try:
            if node.kind == "range":
                self._range(node, dot, scope, out)
                return
            value = self._pipeline(node.pipeline, dot, scope, bind=node.kind != "range")
            if truth(value):
                self._run(node.body, value if node.kind == "with" else dot, scope, out)
            else:
                self._run(node.otherwise, dot, scope, out)
        finally:
            scope.frames.pop()

    def _range(self, node: _Branch, dot: Any, scope: _Scope, out: list[str]) -> None:
        value = self._pipeline(node.pipeline, dot, scope, bind=False)
        if isinstance(value, Mapping):
            pairs: list[tuple[Any, Any]] = [(k, value[k]) for k in sorted(value)]
        elif isinstance(value, (list, tuple)):
            pairs = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            pairs = [(i, i) for i in range(value)]
        elif value is None or value is NO_VALUE:
            pairs = []
        else:
            raise TemplateError(f"range can't iterate over {go_string(value)}")
        if not pairs:
            self._run(node.otherwise, dot, scope, out)
            return
        names = node.pipeline.variables
        for key, item in pairs:
            if len(names) == 2:
                scope.assign(names[0], key, node.pipeline.declare)
                scope.assign(names[1], item, node.pipeline.declare)
            elif names:
                scope.assign(names[0], item, node.pipeline.declare)
            self._run(node.body, item, scope, out)

    def _pipeline(self, pipeline: _Pipeline, dot: Any, scope: _Scope, bind: bool = True) -> Any:
        value: Any = NO_VALUE
        for i, command in enumerate(pipeline.commands):
            value = self._command(command, dot, scope, value if i else NO_VALUE, piped=i > 0)
        if bind and pipeline.variables:
            scope.assign(pipeline.variables[0], value, pipeline.declare)
        return value

    def _command(self, command: _Command, dot: Any, scope: _Scope, piped_value: Any, piped: bool) -> Any:
        head, rest = command.operands[0], command.operands[1:]
        args = [self._operand(o, dot, scope) for o in rest]
        if piped:
            args.append(piped_value)
        if head.kind == "ident":
            func = self.functions.get(head.value)
            if func is None:
                raise TemplateError(f'function "{head.value}" not defined')
            try:
                result = func(*args)
            except TemplateError:
                raise
            except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
                raise TemplateError(f"error calling {head.value}: {exc}") from None
            return _chain(result, head.chain, (), self.strict) if head.chain else result
        if head.kind == "field":
            return _chain(dot, head.chain, args, self.strict)
        if head.kind == "variable" and head.chain:
            return _chain(scope.lookup(head.value), head.chain, args, self.strict)
        if args:
            raise TemplateError(f"can't give argument to non-function {head.value or '.'}")
        return self._operand(head, dot, scope)

    def _operand(self, operand: _Operand, dot: Any, scope: _Scope) -> Any:
        if operand.kind == "field":
            return _chain(dot, operand.chain, (), self.strict)
        if operand.kind == "dot":
            value = dot
        elif operand.kind == "variable":
            value = scope.lookup(operand.value)
        elif operand.kind == "literal":
            value = operand.value
        elif operand.kind == "pipeline":
            value = self._pipeline(operand.value, dot, scope)
        elif operand.kind == "ident":
            func = self.functions.get(operand.value)
            if func is None:
                raise TemplateError(f'function "{operand.value}" not defined')
            value = func()
        else:
            raise TemplateError(f"unexpected operand {operand.kind}")
        return _chain(value, operand.chain, (), self.strict) if operand.chain else value


def render(source: str, data: Any) -> str:
    return Template(source).execute(data)
