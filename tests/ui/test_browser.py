"""The UI in a real browser: Debian's chromium driven by Playwright (from PyPI; its own browser
downloads are never used) against real servers on real ports.

`DOCKYARD_UI_SCREENSHOTS=1` also writes the screenshots into docs/ui/ (the README's pictures);
otherwise they go to the test's temp dir, so a test run leaves the tree as it was.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import require_tool
from tests.servers import ROOT
from tests.ui.conftest import PASSWORDS, Served
from tests.ui.images import APP_LAYER, OCI_MANIFEST, digest_of, put_manifest

pytestmark = pytest.mark.e2e

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package (pip install playwright)")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1100, "height": 720}
PHONE = {"width": 390, "height": 780}
# WCAG 2.x AA for body text.
MIN_CONTRAST = 4.5


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = require_tool("chromium")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    if os.environ.get("DOCKYARD_UI_SCREENSHOTS"):
        target = ROOT / "docs" / "ui"
        target.mkdir(parents=True, exist_ok=True)
        return target
    return tmp_path


def test_browse_home_repository_tag_layer(page: Any, open_registry: Served, shots: Path) -> None:
    page.goto(f"{open_registry.url}/")
    assert page.title() == "Test Yard"
    page.screenshot(path=str(shots / "home.png"))
    assert page.locator("#last-gc").inner_text() == "never"
    page.get_by_role("link", name="team/app", exact=True).click()
    page.wait_for_url("**/r/team/app")
    assert page.get_by_role("heading", level=1).inner_text() == "team/app"
    assert page.locator("#tags tbody tr").count() >= 3
    page.screenshot(path=str(shots / "repository.png"))
    page.get_by_role("link", name="1.0", exact=True).click()
    page.wait_for_url("**/r/team/app/-/manifest/1.0")
    assert page.get_by_role("heading", name="Layers").is_visible()
    assert page.get_by_role("heading", name="History").is_visible()
    assert page.get_by_role("heading", name="application/spdx+json").is_visible()
    layers = page.locator("section", has=page.get_by_role("heading", name="Layers"))
    layers.get_by_role("link").last.click()
    page.wait_for_url(f"**/blob/{digest_of(APP_LAYER)}?manifest=*")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Layer sha256:")
    assert "COPY server /bin/server" in page.locator(".facts").inner_text()
    # The raw JSON is there behind a <details>, opened by keyboard.
    page.go_back()
    summary = page.locator("summary", has_text="Manifest")
    summary.focus()
    page.keyboard.press("Enter")
    assert page.locator("pre.json").first.is_visible()


def test_filter_as_you_type(page: Any, open_registry: Served) -> None:
    page.goto(f"{open_registry.url}/")
    rows = page.locator("#repositories tbody th a")
    assert sorted(rows.all_inner_texts()) == ["team/app", "team/multi"]
    page.get_by_label("Filter repositories").press_sequentially("mul")
    page.wait_for_function("() => document.querySelectorAll('#repositories tbody tr').length === 1")
    assert rows.all_inner_texts() == ["team/multi"]
    assert page.url.endswith("?q=mul")  # the filtered view can be bookmarked
    page.get_by_label("Filter repositories").fill("")
    page.get_by_label("Filter repositories").press_sequentially("app")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#repositories tbody th a')].map(a => a.textContent).join() === 'team/app'"
    )
    # The tags of a repository filter the same way.
    page.goto(f"{open_registry.url}/r/team/app")
    page.get_by_label("Filter tags").press_sequentially("0")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#tags tbody th a')].map(a => a.textContent).join() === '0.9,1.0'"
    )
    page.get_by_label("Filter tags").fill("")
    page.get_by_label("Filter tags").press_sequentially("9")
    page.wait_for_function("() => document.querySelectorAll('#tags tbody tr').length === 1")
    assert page.locator("#tags tbody th a").all_inner_texts() == ["0.9"]


def test_copy_button_puts_the_pull_command_on_the_clipboard(browser: Any, open_registry: Served) -> None:
    context = browser.new_context(viewport=DESKTOP, permissions=["clipboard-read", "clipboard-write"])
    try:
        page = context.new_page()
        page.goto(f"{open_registry.url}/r/team/app")
        page.get_by_role("button", name="Copy docker pull command").click()
        expected = f"docker pull {open_registry.server.address}/team/app:latest"
        assert page.evaluate("() => navigator.clipboard.readText()") == expected
        page.get_by_role("button", name="Copy the digest of 1.0").click()
        assert page.evaluate("() => navigator.clipboard.readText()") == open_registry.fixture.app.digest
    finally:
        context.close()


def test_delete_with_confirmation(page: Any, open_registry: Served, shots: Path) -> None:
    url = open_registry.url
    with httpx.Client(base_url=url) as api:
        put_manifest(api, "team/app", "to-delete", open_registry.fixture.app_old.body, OCI_MANIFEST)
    page.goto(f"{url}/r/team/app")
    page.get_by_role("link", name="Delete tag to-delete").click()
    heading = page.get_by_role("heading", level=1)
    assert heading.inner_text() == "Delete tag team/app:to-delete?"
    assert "0.9" in page.locator("#stays").inner_text()  # the manifest stays, with its other tag
    page.screenshot(path=str(shots / "delete.png"))
    # Cancel deletes nothing.
    page.get_by_role("link", name="Cancel").click()
    assert "to-delete" in httpx.get(f"{url}/v2/team/app/tags/list").json()["tags"]
    page.get_by_role("link", name="Delete tag to-delete").click()
    page.get_by_role("button", name="Delete tag to-delete").click()
    page.wait_for_url("**/r/team/app?deleted=to-delete")
    assert page.get_by_role("status").inner_text() == "Deleted to-delete."
    assert "to-delete" not in httpx.get(f"{url}/v2/team/app/tags/list").json()["tags"]


def test_login_and_logout(page: Any, auth_registry: Served, shots: Path) -> None:
    page.goto(f"{auth_registry.url}/")
    assert "team/" not in page.content()  # anonymous: no private names anywhere in the page
    assert page.get_by_role("link", name="public/tools").is_visible()
    page.get_by_role("link", name="Log in").click()
    page.get_by_label("User name").fill("reader")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").inner_text() == "Wrong user name or password."
    page.screenshot(path=str(shots / "login.png"))
    page.get_by_label("User name").fill("reader")
    page.get_by_label("Password").fill(PASSWORDS["reader"])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{auth_registry.url}/")
    assert "Signed in as reader" in page.locator("header").inner_text()
    assert page.get_by_role("link", name="team/app", exact=True).is_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "dockyard_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("() => document.cookie") == ""  # the script cannot read the session
    page.get_by_role("link", name="team/app", exact=True).click()
    assert page.get_by_role("link", name=re.compile("^Delete")).count() == 0  # reader may not delete
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{auth_registry.url}/")
    assert "team/" not in page.content()
    assert page.get_by_role("link", name="Log in").is_visible()


def test_keyboard_navigation(page: Any, open_registry: Served) -> None:
    page.goto(f"{open_registry.url}/")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    # From the content, Tab reaches the filter and then the repositories; Enter follows the link.
    reached = []
    while "team/app" not in reached and len(reached) < 10:
        page.keyboard.press("Tab")
        reached.append(page.evaluate("() => document.activeElement.id || document.activeElement.textContent"))
    assert "q" in reached and reached[-1] == "team/app"
    page.keyboard.press("Enter")
    page.wait_for_url("**/r/team/app")


PAGES = ["/", "/r/team/app", "/r/team/app/-/manifest/1.0", "/r/team/multi/-/manifest/latest", "/login"]

_A11Y = """() => {
  const problems = [];
  if (!document.documentElement.lang) problems.push("no lang on <html>");
  const h1 = document.querySelectorAll("h1");
  if (h1.length !== 1) problems.push(`${h1.length} h1 headings`);
  let last = 0;
  for (const h of document.querySelectorAll("h1, h2, h3, h4, h5, h6")) {
    const level = Number(h.tagName[1]);
    if (level > last + 1) problems.push(`heading ${h.tagName} "${h.textContent}" skips a level`);
    last = level;
  }
  for (const input of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
    const labelled = (input.labels && input.labels.length) || input.getAttribute("aria-label");
    if (!labelled) problems.push(`unlabelled ${input.outerHTML}`);
  }
  for (const el of document.querySelectorAll("button, a[href]")) {
    const name = (el.getAttribute("aria-label") || el.textContent || "").trim();
    if (!name) problems.push(`nameless ${el.outerHTML}`);
  }
  for (const table of document.querySelectorAll("table")) {
    if (!table.querySelector("caption") && !table.getAttribute("aria-label")) problems.push("table without a caption");
  }
  return problems;
}"""


def test_accessibility_basics(page: Any, open_registry: Served) -> None:
    problems = {}
    for path in PAGES:
        page.goto(f"{open_registry.url}{path}")
        found = page.evaluate(_A11Y)
        if found:
            problems[path] = found
    assert problems == {}


def _luminance(rgb: tuple[float, float, float]) -> float:
    def channel(c: float) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _rgb(css: str) -> tuple[float, float, float]:
    found = re.match(r"rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)", css)
    assert found, css
    assert found.group(4) in (None, "1"), f"translucent colour {css}: contrast depends on what is below"
    return float(found.group(1)), float(found.group(2)), float(found.group(3))


# Every (text, background) pairing the stylesheet uses, read from the elements that show them.
_COLOURS = """() => {
  const style = (sel) => { const el = document.querySelector(sel); return el ? getComputedStyle(el) : null; };
  const background = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const bg = getComputedStyle(node).backgroundColor;
      if (bg !== "rgba(0, 0, 0, 0)" && bg !== "transparent") return bg;
    }
    return getComputedStyle(document.documentElement).backgroundColor;
  };
  const pairs = {};
  for (const [label, sel] of Object.entries({
    "body text": "main h1", "link": "main a[href]", "muted text": ".count", "table header": "thead th",
    "button": "button[type=submit]", "delete button": "a.danger", "breadcrumb": ".crumbs",
    "header brand": ".brand", "footer": ".bottom", "input": "input[type=search]", "notice": ".notice",
  })) {
    const el = document.querySelector(sel);
    if (el) pairs[label] = [getComputedStyle(el).color, background(el)];
  }
  return pairs;
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_both_themes_have_enough_contrast(browser: Any, open_registry: Served, scheme: str, shots: Path) -> None:
    context = browser.new_context(viewport=DESKTOP, color_scheme=scheme)
    try:
        page = context.new_page()
        seen: dict[str, float] = {}
        for path in ["/", "/r/team/app?deleted=x", "/r/team/app/-/manifest/1.0"]:
            page.goto(f"{open_registry.url}{path}")
            for label, (fg, bg) in page.evaluate(_COLOURS).items():
                seen[label] = min(seen.get(label, 99.0), contrast(_rgb(fg), _rgb(bg)))
        body = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        dark_bg = _luminance(_rgb(body)) < 0.2
        assert dark_bg == (scheme == "dark"), "the theme does not follow prefers-color-scheme"
        assert {"body text", "link", "muted text", "button", "delete button", "notice"} <= set(seen)
        low = {label: round(ratio, 2) for label, ratio in seen.items() if ratio < MIN_CONTRAST}
        assert low == {}
        page.goto(f"{open_registry.url}/r/team/app/-/manifest/1.0")
        page.screenshot(path=str(shots / f"manifest-{scheme}.png"))
    finally:
        context.close()


def test_usable_on_a_phone(browser: Any, open_registry: Served, shots: Path) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, color_scheme="dark")
    try:
        page = context.new_page()
        for path in PAGES[:4]:
            page.goto(f"{open_registry.url}{path}")
            # Nothing makes the page itself scroll sideways: wide tables scroll inside their box.
            overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} is {overflow}px wider than the phone"
        page.goto(f"{open_registry.url}/r/team/app")
        small = page.evaluate(
            "() => [...document.querySelectorAll('button, input[type=search]')]"
            ".filter(el => el.getClientRects().length && el.getBoundingClientRect().height < 24).length"
        )
        assert small == 0  # tap targets at least 24 px (WCAG 2.2 target size, minimum)
        page.screenshot(path=str(shots / "phone-repository.png"))
    finally:
        context.close()
