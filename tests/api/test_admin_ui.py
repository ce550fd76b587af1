"""The admin page in real headless Chromium, against a real server on loopback."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from agents.prestart import prepare
from tests.conftest import LiveServer, make_settings

KEY = "ui-admin-key"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path_factory.mktemp("ui"), admin_key=KEY)
    prepare(settings, progress=False)
    with LiveServer(settings) as server:
        yield server


@pytest.fixture(scope="module")
def page(server: LiveServer) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page()
        yield page
        browser.close()


def test_admin_ui_lists_adds_disables_and_removes_experts(server: LiveServer, page) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    page.goto(f"{server.url}/admin/ui/")
    page.fill("#api-key", "wrong")
    page.click("#key-form button")
    expect(page.locator("#status")).to_contain_text("valid admin API key")

    page.fill("#api-key", KEY)
    page.click("#key-form button")
    expect(page.locator("#status")).to_have_text("connected")
    expect(page.locator("#experts tbody tr")).to_have_count(3)
    expect(page.locator('tr[data-name="math-lora"]')).to_contain_text("lora")

    page.fill('#add-form [name="name"]', "ui-expert")
    page.fill('#add-form [name="skills"]', "poetry, haiku")
    page.fill('#add-form [name="exemplars"]', "write a haiku about rain\ncompose a sonnet")
    page.click("#add-form button")
    expect(page.locator("#status")).to_have_text("added ui-expert")
    expect(page.locator('tr[data-name="ui-expert"]')).to_contain_text("poetry, haiku")

    page.fill('#add-form [name="name"]', "ui-expert")
    page.click("#add-form button")
    expect(page.locator("#status")).to_contain_text("already exists")

    page.fill('#route-form [name="query"]', "write a haiku about the moon")
    page.click("#route-form button")
    expect(page.locator("#route-result")).to_contain_text('"name": "ui-expert"')

    page.locator('tr[data-name="ui-expert"] input[type="checkbox"]').uncheck()
    expect(page.locator("#status")).to_have_text("ui-expert disabled")
    page.locator('tr[data-name="ui-expert"] button').click()
    expect(page.locator("#status")).to_have_text("removed ui-expert")
    expect(page.locator("#experts tbody tr")).to_have_count(3)
    page.screenshot(path=str(server_screenshot_path()))


def server_screenshot_path():  # type: ignore[no-untyped-def]
    from core.settings import REPO_ROOT

    out = REPO_ROOT / ".cache" / "admin-ui.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    return out
