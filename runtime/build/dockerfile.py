"""The Dockerfile parser, with BuildKit's reading rules (frontend/dockerfile/parser):

- parser directives (`# syntax=...`, `# escape=\\` or `` ` ``) only before anything else: the first comment
  that is not a directive, blank line or instruction ends them; a directive given twice is an error;
- a line ending in the escape character continues on the next; comment lines are dropped wherever they are,
  blank lines inside a continuation are skipped; continued text is joined without a separator;
- `--name=value` flags after the keyword, checked against the instruction's own;
- heredocs (`RUN <<EOF`, `COPY <<EOF /dest`): the lines after the instruction up to the delimiter;
- RUN, CMD, ENTRYPOINT, SHELL, COPY, ADD and VOLUME take a JSON array of strings (exec form) or text;
  ENV and LABEL take `key=value` pairs (or the old `KEY value`), ARG `name[=default]` words.

Errors name the line: `dockerfile parse error on line 3: unknown instruction: RUNN`. Variables are not
substituted here: that needs the build's state (shellwords.expand, at dispatch)."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field

__all__ = ["KEYWORDS", "Dockerfile", "DockerfileError", "Heredoc", "Instruction", "parse", "parse_line"]

KEYWORDS = frozenset(
    {
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "RUN",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    }
)
_FLAGS: dict[str, frozenset[str]] = {
    "FROM": frozenset({"platform"}),
    "RUN": frozenset({"network", "mount", "security"}),
    "COPY": frozenset({"from", "chown", "chmod", "link", "parents", "exclude"}),
    "ADD": frozenset({"chown", "chmod", "link", "checksum", "keep-git-dir", "exclude"}),
    "HEALTHCHECK": frozenset({"interval", "timeout", "start-period", "start-interval", "retries"}),
}
_JSON_FORMS = frozenset({"RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"})
_DIRECTIVE_RE = re.compile(r"^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$")
_KNOWN_DIRECTIVES = frozenset({"syntax", "escape", "check"})
_HEREDOC_KEYWORDS = frozenset({"RUN", "COPY", "ADD"})
_HEREDOC_RE = re.compile(r"<<(-?)([\"']?)([a-zA-Z0-9_][a-zA-Z0-9_.-]*)\2")
_FLAG_RE = re.compile(r"--([a-zA-Z][a-zA-Z0-9-]*)(?:=((?:\"[^\"]*\"|'[^']*'|\S)*))?(?:\s+|$)")


class DockerfileError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"dockerfile parse error on line {line}: {message}" if line else message)
        self.line = line
        self.reason = message


@dataclass(frozen=True)
class Heredoc:
    name: str
    content: str
    expand: bool  # the delimiter was not quoted


@dataclass(frozen=True)
class Instruction:
    """One instruction. `args` are raw (quotes and variables still in them): JSON elements in exec form,
    else the words the instruction's grammar gives (ENV/LABEL: key, value, key, value, ...)."""

    keyword: str
    args: tuple[str, ...]
    line: int
    original: str
    flags: tuple[tuple[str, str], ...] = ()
    json: bool = False
    # HEALTHCHECK CMD/NONE and ONBUILD: the instruction inside.
    sub: Instruction | None = None
    heredocs: tuple[Heredoc, ...] = ()

    def flag(self, name: str, default: str | None = None) -> str | None:
        for key, value in reversed(self.flags):
            if key == name:
                return value
        return default

    def __str__(self) -> str:
        return self.original


@dataclass(frozen=True)
class Dockerfile:
    instructions: tuple[Instruction, ...]
    escape: str = "\\"
    syntax: str = ""
    warnings: tuple[str, ...] = field(default=())


# --- reading lines -----------------------------------------------------------------------------------------


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def _directives(lines: list[str]) -> tuple[dict[str, str], int]:
    """The parser directives at the top and how many lines they take."""
    found: dict[str, str] = {}
    for index, raw in enumerate(lines):
        match = _DIRECTIVE_RE.match(raw.strip("\r"))
        if match is None or match.group(1).lower() not in _KNOWN_DIRECTIVES:
            return found, index
        key = match.group(1).lower()
        if key in found:
            raise DockerfileError(index + 1, f"only one {key} parser directive can be used")
        found[key] = match.group(2)
    return found, len(lines)


def _continues(line: str, escape: str) -> tuple[str, bool]:
    stripped = line.rstrip(" \t")
    if stripped.endswith(escape):
        return stripped[: -len(escape)], True
    return line, False


def parse(text: str) -> Dockerfile:
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    directives, _ = _directives(lines)
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise DockerfileError(1, f"invalid escape token {escape!r} does not match ` or \\")
    instructions: list[Instruction] = []
    warnings: list[str] = []
    i = 0
    while i < len(lines):
        raw = lines[i].rstrip("\r")
        i += 1
        if _is_comment(raw) or not raw.strip():
            continue
        start = i
        line, more = _continues(raw.lstrip(), escape)
        while more and i < len(lines):
            nxt = lines[i].rstrip("\r")
            i += 1
            if _is_comment(nxt):
                continue
            if not nxt.strip():
                warnings.append(f"line {i}: empty continuation line (it will be an error in future releases)")
                continue
            part, more = _continues(nxt, escape)
            line += part
        if not line.strip():
            continue
        ins = parse_line(line, start, escape)
        if ins.keyword in _HEREDOC_KEYWORDS:
            heredocs, i = _read_heredocs(ins, lines, i)
            if heredocs:
                ins = dataclasses.replace(ins, heredocs=heredocs)
        instructions.append(ins)
    _check_order(instructions)
    if not instructions:
        raise DockerfileError(0, "the Dockerfile has no instructions (file with no instructions)")
    return Dockerfile(tuple(instructions), escape, directives.get("syntax", ""), tuple(warnings))


def _read_heredocs(ins: Instruction, lines: list[str], i: int) -> tuple[tuple[Heredoc, ...], int]:
    """The bodies of the `<<NAME` (`<<-NAME` strips leading tabs, a quoted NAME is not expanded) markers of
    RUN, COPY and ADD: the lines after the instruction up to one that is NAME alone."""
    heredocs: list[Heredoc] = []
    for match in _HEREDOC_RE.finditer(ins.original):
        strip_tabs, quote, name = match.group(1) == "-", match.group(2), match.group(3)
        body: list[str] = []
        while True:
            if i >= len(lines):
                raise DockerfileError(ins.line, f"unterminated heredoc {name!r}: no line {name} after it")
            raw = lines[i].rstrip("\r")
            i += 1
            text = raw.lstrip("\t") if strip_tabs else raw
            if text == name:
                break
            body.append(text + "\n")
        heredocs.append(Heredoc(name, "".join(body), expand=not quote))
    return tuple(heredocs), i


def _check_order(instructions: list[Instruction]) -> None:
    seen_from = False
    for ins in instructions:
        if ins.keyword == "FROM":
            seen_from = True
        elif ins.keyword != "ARG" and not seen_from:
            raise DockerfileError(
                ins.line, f"{ins.keyword}: no build stage in current context (a FROM must come first)"
            )


# --- one instruction ---------------------------------------------------------------------------------------


def _split_flags(keyword: str, rest: str, line: int) -> tuple[list[tuple[str, str]], str]:
    flags: list[tuple[str, str]] = []
    while rest.startswith("--"):
        if rest == "--" or rest.startswith("-- "):
            rest = rest[2:].lstrip()
            break
        match = _FLAG_RE.match(rest)
        if match is None:
            break
        name, value = match.group(1), match.group(2)
        if name not in _FLAGS.get(keyword, frozenset()):
            raise DockerfileError(line, f"unknown flag: --{name}")
        if value is None:
            value = "true"
        flags.append((name, _unquote(value)))
        rest = rest[match.end() :]
    return flags, rest


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _json_array(rest: str) -> list[str] | None:
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except ValueError:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return value


def _words(rest: str, escape: str) -> list[str]:
    """BuildKit's parseWords: split at whitespace outside quotes, quotes and escapes kept in the words."""
    words: list[str] = []
    word, quote, in_word, i = "", "", False, 0
    while i < len(rest):
        ch = rest[i]
        if not quote and ch.isspace():
            if in_word:
                words.append(word)
                word, in_word = "", False
            i += 1
            continue
        in_word = True
        if ch == escape and i + 1 < len(rest) and quote != "'":
            word += ch + rest[i + 1]
            i += 2
            continue
        if quote and ch == quote:
            quote = ""
        elif not quote and ch in "\"'":
            quote = ch
        word += ch
        i += 1
    if in_word:
        words.append(word)
    return words


def _name_values(keyword: str, rest: str, line: int, escape: str) -> list[str]:
    words = _words(rest, escape)
    if not words:
        raise DockerfileError(line, f"{keyword} requires at least one argument")
    if "=" not in words[0]:
        parts = re.split(r"\s+", rest.strip(), maxsplit=1)
        if len(parts) < 2:
            raise DockerfileError(line, f"{keyword} must have two arguments")
        return [parts[0], parts[1]]
    pairs: list[str] = []
    for word in words:
        if "=" not in word:
            raise DockerfileError(line, f"Syntax error - can't find = in {word!r}. Must be of the form: name=value")
        key, _, value = word.partition("=")
        if not key:
            raise DockerfileError(line, f"{keyword} names must not be empty")
        pairs += [key, value]
    return pairs


def parse_line(line: str, number: int, escape: str = "\\") -> Instruction:
    """One instruction, continuations already joined; `number` is its first line."""
    original = line.strip()
    keyword, _, rest = original.partition(" ")
    if "\t" in keyword:
        keyword, _, more = keyword.partition("\t")
        rest = more + " " + rest
    keyword = keyword.upper()
    rest = rest.strip()
    if keyword not in KEYWORDS:
        raise DockerfileError(number, f"unknown instruction: {original.split()[0]}")
    flags, rest = _split_flags(keyword, rest, number)
    return _parse_args(keyword, rest, number, escape, original, flags)


def _parse_args(
    keyword: str, rest: str, number: int, escape: str, original: str, flags: list[tuple[str, str]]
) -> Instruction:
    def make(args: list[str], as_json: bool = False, sub: Instruction | None = None) -> Instruction:
        return Instruction(keyword, tuple(args), number, original, tuple(flags), as_json, sub)

    if keyword == "ONBUILD":
        inner = rest.strip()
        if not inner:
            raise DockerfileError(number, "ONBUILD requires at least one argument")
        sub = parse_line(inner, number, escape)
        if sub.keyword == "ONBUILD":
            raise DockerfileError(number, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if sub.keyword in ("FROM", "MAINTAINER"):
            raise DockerfileError(number, f"{sub.keyword} isn't allowed as an ONBUILD trigger")
        return make([inner], sub=sub)
    if keyword == "HEALTHCHECK":
        kind, _, cmd = rest.partition(" ")
        kind = kind.upper()
        if kind == "NONE":
            if cmd.strip() or flags:
                raise DockerfileError(number, "HEALTHCHECK NONE takes no arguments")
            return make(["NONE"])
        if kind != "CMD":
            raise DockerfileError(number, "HEALTHCHECK requires CMD (or NONE)")
        cmd = cmd.strip()
        if not cmd:
            raise DockerfileError(number, "HEALTHCHECK CMD requires a command")
        array = _json_array(cmd)
        return make(["CMD", *(array if array is not None else [cmd])], as_json=array is not None)
    if keyword in ("ENV", "LABEL"):
        return make(_name_values(keyword, rest, number, escape))
    if keyword == "ARG":
        words = _words(rest, escape)
        if not words:
            raise DockerfileError(number, "ARG requires at least one argument")
        return make(words)
    if keyword in _JSON_FORMS:
        array = _json_array(rest)
        if keyword == "SHELL" and array is None:
            raise DockerfileError(number, "SHELL requires the arguments to be in JSON form")
        if array is not None:
            args, as_json = array, True
        elif keyword in ("COPY", "ADD", "VOLUME"):
            args, as_json = rest.split(), False
        else:
            args, as_json = ([rest] if rest else []), False
        if keyword in ("COPY", "ADD") and len(args) < 2:
            raise DockerfileError(
                number,
                f"{keyword} requires at least two arguments, but only one was provided. "
                "Destination could not be determined.",
            )
        if keyword in ("RUN", "VOLUME", "SHELL") and not args:
            raise DockerfileError(number, f"{keyword} requires at least one argument")
        return make(args, as_json)
    if keyword in ("WORKDIR", "USER", "STOPSIGNAL", "MAINTAINER"):
        if not rest:
            raise DockerfileError(number, f"{keyword} requires exactly one argument")
        if keyword in ("WORKDIR", "STOPSIGNAL") and len(_words(rest, escape)) != 1:
            raise DockerfileError(number, f"{keyword} requires exactly one argument")
        return make([rest])
    if keyword == "FROM":
        words = rest.split()
        if len(words) not in (1, 3) or (len(words) == 3 and words[1].upper() != "AS"):
            raise DockerfileError(number, "FROM requires either one or three arguments")
        return make(words)
    # EXPOSE
    words = rest.split()
    if not words:
        raise DockerfileError(number, f"{keyword} requires at least one argument")
    return make(words)
