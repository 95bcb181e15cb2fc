"""The Dockerfile parser, the variable substitution and the .dockerignore rules, against the behaviour
BuildKit's parser, shell lexer and moby's patternmatcher document (pure functions, no build)."""

from __future__ import annotations

import pytest

from runtime.build.dockerfile import DockerfileError, parse
from runtime.build.ignore import IgnoreRules
from runtime.build.shellwords import ExpandError, expand, expand_words

ENV = {"A": "a", "EMPTY": "", "SPACED": "x  y"}


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("$A", "a"),
        ("${A}b", "ab"),
        ("$MISSING-", "-"),
        ("${MISSING:-default}", "default"),
        ("${EMPTY:-default}", "default"),
        ("${EMPTY-default}", ""),
        ("${MISSING-default}", "default"),
        ("${A:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${MISSING+alt}", ""),
        ("${MISSING:-${A}x}", "ax"),
        ("'$A'", "$A"),
        ('"$A"', "a"),
        ('"\\$A"', "$A"),
        ('"a\\b"', "a\\b"),
        ("\\$A", "$A"),
        ("a\\ b", "a b"),
        ("$", "$"),
        ('"quoted \\"inner\\""', 'quoted "inner"'),
    ],
)
def test_substitution(word: str, expected: str) -> None:
    assert expand(word, ENV) == expected


def test_words_split_on_unquoted_whitespace_and_expanded_values() -> None:
    assert expand_words('one "two three" $SPACED', ENV) == ["one", "two three", "x", "y"]
    assert expand_words('"$SPACED"', ENV) == ["x  y"]


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("${A", "missing '}'"),
        ("${:}", "bad substitution"),
        ("${MISSING:?must be set}", "MISSING: must be set"),
        ("${A:%x}", "unsupported modifier"),
        ("'open", "matching single-quote"),
        ('"open', "matching double-quote"),
    ],
)
def test_substitution_errors(word: str, message: str) -> None:
    with pytest.raises(ExpandError, match=message):
        expand(word, ENV)


def test_escape_directive_backtick() -> None:
    assert expand("a`$b", {}, escape="`") == "a$b"


def test_continuations_comments_and_json_forms() -> None:
    df = parse(
        "# syntax=docker/dockerfile:1\n"
        "# escape=\\\n"
        "\n"
        "FROM busybox AS base\n"
        "RUN echo a \\\n"
        "# a comment inside the continuation\n"
        "    b\n"
        '  CMD ["echo", "exec form"]\n'
        "ENTRYPOINT echo shell form\n"
        'ENV A=1 B="two words" C=three\\ words\n'
        "ENV OLD legacy form value\n"
        "COPY --from=base --chown=1:2 a b /dest/\n"
        "LABEL a=b\n"
    )
    assert df.syntax == "docker/dockerfile:1"
    keywords = [i.keyword for i in df.instructions]
    assert keywords == ["FROM", "RUN", "CMD", "ENTRYPOINT", "ENV", "ENV", "COPY", "LABEL"]
    run = df.instructions[1]
    assert run.args == ("echo a     b",) and run.line == 5 and not run.json
    assert df.instructions[2].args == ("echo", "exec form") and df.instructions[2].json
    assert df.instructions[4].args == ("A", "1", "B", '"two words"', "C", "three\\ words")
    assert df.instructions[5].args == ("OLD", "legacy form value")
    copy = df.instructions[6]
    assert copy.flag("from") == "base" and copy.flag("chown") == "1:2" and copy.args == ("a", "b", "/dest/")
    assert [i.line for i in df.instructions] == [4, 5, 8, 9, 10, 11, 12, 13]


def test_backtick_escape_continues_lines() -> None:
    df = parse("# escape=`\nFROM scratch\nRUN dir c:\\ `\n  && echo done\n")
    assert df.escape == "`"
    assert df.instructions[1].args == ("dir c:\\   && echo done",)


def test_a_directive_after_a_comment_is_a_comment() -> None:
    df = parse("# hello\n# escape=`\nFROM scratch\n")
    assert df.escape == "\\"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("FROM scratch\nRUNN echo\n", 2, "unknown instruction: RUNN"),
        ("FROM scratch\n\nCOPY onlyone\n", 3, "COPY requires at least two arguments"),
        ("FROM a b\n", 1, "FROM requires either one or three arguments"),
        ("RUN echo\n", 1, "no build stage"),
        ("FROM scratch\nSHELL /bin/bash -c\n", 2, "SHELL requires the arguments to be in JSON form"),
        ("FROM scratch\nENV A=1 B\n", 2, "can't find ="),
        ("FROM scratch\nCOPY --nope=1 a b\n", 2, "unknown flag: --nope"),
        ("FROM scratch\nONBUILD ONBUILD RUN x\n", 2, "Chaining ONBUILD"),
        ("# escape=x\nFROM scratch\n", 1, "invalid escape token"),
        ("# escape=\\\n# escape=`\nFROM scratch\n", 2, "only one escape parser directive"),
    ],
)
def test_errors_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(DockerfileError) as caught:
        parse(text)
    assert caught.value.line == line
    assert message in str(caught.value)
    assert f"line {line}" in str(caught.value)


def test_healthcheck_and_onbuild_keep_their_inner_instruction() -> None:
    df = parse('FROM scratch\nHEALTHCHECK --interval=5s CMD ["true"]\nHEALTHCHECK NONE\nONBUILD run echo hi\n')
    health = df.instructions[1]
    assert health.args == ("CMD", "true") and health.json and health.flag("interval") == "5s"
    assert df.instructions[2].args == ("NONE",)
    onbuild = df.instructions[3]
    assert onbuild.sub is not None and onbuild.sub.keyword == "RUN"


def test_heredoc_bodies_follow_their_instruction() -> None:
    df = parse(
        "FROM x\nRUN <<EOF\necho a\n# not a comment here\nEOF\n"
        'COPY <<-"A" <<b.txt /d/\n\tone $X\n\tA\nb\nb.txt\nRUN true\n'
    )
    run, copy, last = df.instructions[1:]
    assert run.heredocs[0].content == "echo a\n# not a comment here\n"
    assert [(h.name, h.content, h.expand) for h in copy.heredocs] == [("A", "one $X\n", False), ("b.txt", "b\n", True)]
    assert last.line == 11
    with pytest.raises(DockerfileError, match="unterminated heredoc"):
        parse("FROM x\nRUN <<EOF\necho\n")


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        ("*.pyc", "a.pyc", True),
        ("*.pyc", "sub/a.pyc", False),  # * never crosses /
        ("**/*.pyc", "sub/deep/a.pyc", True),
        ("**/*.pyc", "a.pyc", True),
        ("secret", "secret/key", True),  # a parent matches
        ("secret\n!secret/keep", "secret/keep", False),
        ("secret\n!secret/keep", "secret/other", True),
        ("/abs/path", "abs/path", True),
        ("./dot/../clean", "clean", True),
        ("# comment\n\n  spaced  ", "spaced", True),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("[a-c]x", "bx", True),
        ("[!a-c]x", "bx", False),
        ("docs/**", "docs/a/b", True),
        ("*\n!keep*", "keeper", False),
        ("file.txt", "filextxt", False),  # . is literal
    ],
)
def test_dockerignore_rules(patterns: str, path: str, excluded: bool) -> None:
    assert IgnoreRules.parse(patterns).excluded(path) is excluded
