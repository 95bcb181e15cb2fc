"""The README and docs/ hold together: every relative link names a file that exists and, with a
#fragment, a heading in it; every config they show loads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from registry.config import load_config

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", page.read_text(), flags=re.S), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, fragment = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name} links to {target}, which does not exist"
        if fragment:
            assert fragment in _anchors(linked), f"{page.name} links to {target}: no such heading"


def test_the_docs_pages_are_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        assert f"(docs/{page.name})" in readme, f"docs/{page.name} is not linked from the README"


def _config_examples() -> list[tuple[str, str]]:
    """Every YAML config in the pages: ```yaml blocks (but access-rules files) and heredocs into a .yml file."""
    found = []
    for page in PAGES:
        text = page.read_text()
        blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
        blocks += re.findall(r"> \S+\.yml <<'YAML'\n(.*?)^YAML$", text, flags=re.S | re.M)
        for block in blocks:
            if not re.match(r"(groups|admins|rules):", block):
                found.append((f"{page.relative_to(ROOT)}: {block.splitlines()[0]}", block))
    return found


@pytest.mark.parametrize(("where", "text"), _config_examples(), ids=[w for w, _ in _config_examples()])
def test_documented_configs_load(where: str, text: str, tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(text)
    load_config(path, {})
