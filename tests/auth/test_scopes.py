import pytest

from auth.base import Access
from auth.scopes import Scope, ScopeError, format_scopes, parse_scope, parse_scopes, scopes_for


def test_parse_simple():
    assert parse_scope("repository:team/app:pull,push") == Scope("repository", "team/app", ("pull", "push"))


def test_name_with_host_and_port():
    assert parse_scope("repository:localhost:5000/app:pull") == Scope("repository", "localhost:5000/app", ("pull",))


def test_resource_class_is_ignored():
    assert parse_scope("repository(plugin):x/y:pull").type == "repository"


def test_catalog_and_empty_actions():
    assert parse_scope("registry:catalog:*") == Scope("registry", "catalog", ("*",))
    assert parse_scope("repository:a:") == Scope("repository", "a", ())


@pytest.mark.parametrize(
    "text",
    [
        "",
        "repository",
        "repository:a",
        ":a:pull",
        "Repo:a:pull",
        "repository:a b:pull",
        "repository:a:PULL",
        "repository::pull",
    ],
)
def test_malformed(text):
    with pytest.raises(ScopeError):
        parse_scope(text)


def test_parse_scopes_merges_repeats_and_spaces():
    got = parse_scopes(["repository:a:pull", "repository:a:push repository:b:pull", "repository:a:pull"])
    assert got == [Scope("repository", "a", ("pull", "push")), Scope("repository", "b", ("pull",))]


def test_too_many_scopes():
    with pytest.raises(ScopeError):
        parse_scopes([" ".join(f"repository:r{i}:pull" for i in range(100))])


def test_format_from_accesses():
    accesses = [Access("repository", "a", "pull"), Access("repository", "a", "push"), Access("repository", "b", "pull")]
    assert format_scopes(scopes_for(accesses)) == "repository:a:pull,push repository:b:pull"
