import os
import time
from pathlib import Path

import pytest

from auth.config import AccessConfig, AccessRuleConfig
from auth.rules import ANONYMOUS, RuleSet, RuleSource, load_rules_file
from auth.scopes import Scope
from typedconfig import ConfigError

CFG = AccessConfig(
    groups={"team-a": ["alice", "bob"], "team-b": ["carol"], "ops": ["erin"]},
    admins=["group:ops", "user:root"],
    rules=[
        AccessRuleConfig(["team-a/*"], ["group:team-a"], ["pull", "push", "delete"]),
        AccessRuleConfig(["team-b/*"], ["group:team-b"], ["push"]),
        AccessRuleConfig(["public/*"], ["anonymous"], ["pull"]),
        AccessRuleConfig(["public/*"], ["user:carol"], ["push"]),
        AccessRuleConfig(["{user}/*"], ["authenticated"], ["*"]),
    ],
)


@pytest.fixture
def rules():
    return RuleSet.from_config(CFG)


def test_group_rights(rules):
    alice = rules.identity("alice")
    assert alice.groups == frozenset({"team-a"})
    assert rules.actions(alice, "repository", "team-a/app") == {"pull", "push", "delete"}
    assert rules.actions(alice, "repository", "team-a/deep/app") == {"pull", "push", "delete"}
    assert rules.actions(alice, "repository", "team-b/app") == frozenset()
    assert rules.actions(alice, "repository", "team-ab/app") == frozenset()


def test_push_brings_pull(rules):
    assert rules.actions(rules.identity("carol"), "repository", "team-b/x") == {"pull", "push"}


def test_anonymous_rights_are_everyones(rules):
    assert rules.actions(ANONYMOUS, "repository", "public/x") == {"pull"}
    assert rules.actions(ANONYMOUS, "repository", "team-a/x") == frozenset()
    assert rules.actions(rules.identity("alice"), "repository", "public/x") == {"pull"}
    assert rules.actions(rules.identity("carol"), "repository", "public/x") == {"pull", "push"}


def test_user_placeholder(rules):
    assert rules.actions(rules.identity("dave"), "repository", "dave/tool") == {"pull", "push", "delete"}
    assert rules.actions(rules.identity("dave"), "repository", "alice/tool") == frozenset()
    assert rules.actions(ANONYMOUS, "repository", "{user}/tool") == frozenset()


def test_admins(rules):
    for who in ("erin", "root"):
        identity = rules.identity(who)
        assert identity.admin
        assert rules.actions(identity, "repository", "team-b/secret") == {"pull", "push", "delete"}
    assert not rules.identity("alice").admin


def test_catalog_is_open_and_unknown_types_closed(rules):
    assert rules.allows(ANONYMOUS, "registry", "catalog", "*")
    assert not rules.allows(rules.identity("root"), "registry", "other", "*")
    assert rules.actions(rules.identity("root"), "plugin", "x") == frozenset()


def test_grant_is_intersection(rules):
    alice = rules.identity("alice")
    assert rules.grant(alice, Scope("repository", "team-a/x", ("pull", "push"))) == Scope(
        "repository", "team-a/x", ("pull", "push")
    )
    assert rules.grant(alice, Scope("repository", "public/x", ("pull", "push"))) == Scope(
        "repository", "public/x", ("pull",)
    )
    assert rules.grant(alice, Scope("repository", "team-b/x", ("pull",))) is None
    assert rules.grant(alice, Scope("repository", "team-a/x", ("*",))) == Scope("repository", "team-a/x", ("*",))
    carol = rules.identity("carol")
    assert rules.grant(carol, Scope("repository", "team-b/x", ("*",))) is None
    assert rules.grant(ANONYMOUS, Scope("registry", "catalog", ("*",))) == Scope("registry", "catalog", ("*",))


def test_default_rules_are_distributions():
    rules = RuleSet.default()
    assert rules.actions(rules.identity("anyone"), "repository", "x/y") == {"pull", "push", "delete"}
    assert rules.actions(ANONYMOUS, "repository", "x/y") == frozenset()
    assert RuleSource.from_config(None).current().rules == rules.rules


def test_glob_characters_in_user_name_are_literal():
    rules = RuleSet.from_config(AccessConfig(rules=[AccessRuleConfig(["{user}/*"], ["authenticated"], ["pull"])]))
    # A user named like a glob must not reach other users' repositories.
    assert not rules.allows(rules.identity("a*"), "repository", "abc/x", "pull")
    assert rules.allows(rules.identity("a*"), "repository", "a*/x", "pull")


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (AccessConfig(rules=[AccessRuleConfig(["x"], ["alice"], ["pull"])]), "user:NAME"),
        (AccessConfig(rules=[AccessRuleConfig(["x"], ["group:nope"], ["pull"])]), "unknown group"),
        (AccessConfig(rules=[AccessRuleConfig(["x"], ["anonymous"], ["read"])]), "unknown action"),
        (AccessConfig(rules=[AccessRuleConfig([], ["anonymous"], ["pull"])]), "needs repositories"),
        (AccessConfig(groups={"g": "alice"}), "list of user names"),
        (AccessConfig(admins=["bob"]), "user:NAME"),
    ],
)
def test_bad_rules(cfg, message):
    with pytest.raises(ConfigError, match=message):
        RuleSet.from_config(cfg)


def test_rules_file_reloads_and_survives_typos(tmp_path, caplog):
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - {repositories: ['a/*'], who: [anonymous], actions: [pull]}\n")
    source = RuleSource.from_config(AccessConfig(path=str(path)))
    source._check_every = 0
    assert source.current().allows(ANONYMOUS, "repository", "a/x", "pull")
    path.write_text("rules:\n  - {repositories: ['b/*'], who: [anonymous], actions: [pull]}\n")
    os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert source.current().allows(ANONYMOUS, "repository", "b/x", "pull")
    assert not source.current().allows(ANONYMOUS, "repository", "a/x", "pull")
    path.write_text("rules: [ {repositories: [c], who: [nobody:x], actions: [pull]} ]\n")
    os.utime(path, ns=(time.time_ns() + 2 * 10**9, time.time_ns() + 2 * 10**9))
    assert source.current().allows(ANONYMOUS, "repository", "b/x", "pull")
    assert "keeping the previous access rules" in caplog.text


def test_rules_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_rules_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_rules_file(bad)
    bad.write_text("rulez: []\n")
    with pytest.raises(ConfigError, match="unknown config key"):
        load_rules_file(bad)
    with pytest.raises(ConfigError, match="either path or inline"):
        RuleSource.from_config(AccessConfig(path=str(bad), admins=["user:x"]))


DOCS = Path(__file__).resolve().parents[2] / "docs" / "auth.md"


def _documented_example() -> str:
    """The worked example of docs/auth.md: the YAML block after "A worked example"."""
    text = DOCS.read_text()
    after = text[text.index("A worked example") :]
    return after.split("```yaml\n", 1)[1].split("```", 1)[0]


def test_the_documented_example_does_what_the_docs_say(tmp_path):
    path = tmp_path / "access.yaml"
    path.write_text(_documented_example())
    rules = load_rules_file(path)
    alice, bob, carol, erin = (rules.identity(u) for u in ("alice", "bob", "carol", "erin"))
    assert rules.actions(alice, "repository", "web/site") == {"pull", "push"}
    assert rules.actions(alice, "repository", "data/etl") == {"pull"}
    assert rules.actions(carol, "repository", "data/etl") == {"pull", "push", "delete"}
    assert rules.actions(ANONYMOUS, "repository", "public/base") == {"pull"}
    assert rules.actions(ANONYMOUS, "repository", "web/site") == frozenset()
    assert rules.actions(bob, "repository", "bob/tool") == {"pull", "push", "delete"}
    assert rules.actions(bob, "repository", "alice/tool") == frozenset()
    assert rules.actions(erin, "repository", "anything/at/all") == {"pull", "push", "delete"}
