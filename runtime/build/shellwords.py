"""Variable substitution and word splitting in Dockerfile arguments, as BuildKit's shell lexer does
(frontend/dockerfile/shell/lex.go): single quotes are literal, double quotes allow `$` expansions and
escape only `"`, `$` and the escape character, an unquoted escape character takes the next one literally.

Expansions: `$NAME`, `${NAME}`, `${NAME:-word}` (word when unset or empty), `${NAME-word}` (when unset),
`${NAME:+word}` (word when set and not empty), `${NAME+word}` (when set), `${NAME:?message}` and
`${NAME?message}` (an error naming the variable). An unset variable expands to nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["ExpandError", "expand", "expand_heredoc", "expand_words"]

_EOF = ""


class ExpandError(ValueError):
    pass


@dataclass
class _Words:
    """Words as the lexer finds them: whitespace outside quotes splits, quoted text never does."""

    words: list[str] = field(default_factory=list)
    current: str = ""
    in_word: bool = False

    def add_char(self, ch: str) -> None:
        if ch.isspace() and self.in_word:
            self.words.append(self.current)
            self.current, self.in_word = "", False
        elif not ch.isspace():
            self.add_raw(ch)

    def add_raw(self, text: str) -> None:
        self.in_word = True
        self.current += text

    def add_expanded(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def result(self) -> list[str]:
        return [*self.words, self.current] if self.in_word else list(self.words)


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str, raw: bool = False) -> None:
        self.text, self.pos, self.env, self.escape = text, 0, env, escape
        self.raw = raw  # quotes and escapes are text (heredoc bodies): only $ expands
        self.used: set[str] = set()

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else _EOF

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch

    def process(self, stop: str = _EOF) -> tuple[str, _Words]:
        result: list[str] = []
        words = _Words()
        while True:
            ch = self.peek()
            if ch == _EOF:
                if stop:
                    raise ExpandError("syntax error: missing '}'")
                break
            if stop and ch == stop:
                self.next()
                break
            if self.raw and ch != "$":
                text = self.next()
                if text == self.escape and self.peek() == "$":
                    text = self.next()
                words.add_raw(text)
            elif ch == "'":
                text = self.single_quote()
                words.add_raw(text)
            elif ch == '"':
                text = self.double_quote()
                words.add_raw(text)
            elif ch == "$":
                text = self.dollar()
                words.add_expanded(text)
            else:
                text = self.next()
                if text == self.escape:
                    text = self.next()
                    if text == _EOF:
                        break
                    words.add_raw(text)
                else:
                    words.add_char(text)
            result.append(text)
        return "".join(result), words

    def single_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.next()
            if ch == _EOF:
                raise ExpandError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.peek()
            if ch == _EOF:
                raise ExpandError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.escape and self.peek() in ('"', "$", self.escape) and self.peek() != _EOF:
                ch = self.next()
            out.append(ch)

    def name(self) -> str:
        ch = self.peek()
        if ch.isdigit() or (ch and ch in "$#*@!?-"):
            # A positional or special parameter: one character.
            return self.next()
        start = self.pos
        while self.peek() and (self.peek().isalnum() or self.peek() == "_"):
            self.pos += 1
        return self.text[start : self.pos]

    def lookup(self, name: str) -> str | None:
        self.used.add(name)
        return self.env.get(name)

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            return self.lookup(name) or ""
        self.next()
        if self.peek() in (_EOF, "{", "}", ":"):
            if self.peek() == _EOF:
                raise ExpandError("syntax error: missing '}'")
            raise ExpandError("syntax error: bad substitution")
        name = self.name()
        value = self.lookup(name)
        ch = self.next()
        if ch == _EOF:
            raise ExpandError("syntax error: missing '}'")
        if ch == "}":
            return value or ""
        if ch == ":":
            modifier = self.next()
            word, _ = self.process("}")
            if modifier == "-":
                return word if not value else value
            if modifier == "+":
                return word if value else ""
            if modifier == "?":
                if not value:
                    raise ExpandError(f"{name}: {word or 'is not allowed to be unset'}")
                return value
            raise ExpandError(f"unsupported modifier ({modifier}) in substitution")
        if ch in ("-", "+", "?"):
            word, _ = self.process("}")
            if ch == "-":
                return word if value is None else value
            if ch == "+":
                return word if value is not None else ""
            if value is None:
                raise ExpandError(f"{name}: {word or 'is not allowed to be unset'}")
            return value
        raise ExpandError(f"unsupported modifier ({ch}) in substitution")


def expand(word: str, env: Mapping[str, str], escape: str = "\\", used: set[str] | None = None) -> str:
    """One word with quotes removed and variables substituted (ENV values, WORKDIR, USER, ...)."""
    lexer = _Lexer(word, env, escape)
    text, _ = lexer.process()
    if used is not None:
        used |= lexer.used
    return text


def expand_heredoc(text: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """A heredoc body with an unquoted delimiter: variables substituted, quotes and escapes left as they are
    (BuildKit's raw-quotes lexer); an escaped `$` stays a `$`."""
    text_out, _ = _Lexer(text, env, escape, raw=True).process()
    return text_out


def expand_words(text: str, env: Mapping[str, str], escape: str = "\\", used: set[str] | None = None) -> list[str]:
    """`text` substituted and split into words (whitespace outside quotes, and in expanded values)."""
    lexer = _Lexer(text, env, escape)
    _, words = lexer.process()
    if used is not None:
        used |= lexer.used
    return words.result()
