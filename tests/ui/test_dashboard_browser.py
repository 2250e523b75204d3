"""The dashboard in a real browser: Debian's headless ``chromium`` driven by Playwright (no browser download).

A user signs in through the form, creates a repository and a pool with the CLI and sees both appear
without a reload, restarts the server and sees the page resume (its websocket reconnects with ``since=``,
the document is never requested again), and filters the event log. Screenshots of each page land in
``$PYGARM_TEST_ARTIFACTS`` (default: the test's temporary directory).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pygarm.client import Profile, ProfileFile
from pygarm.config import Settings
from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, make_settings
from tests.live import HTTP_TIMEOUT_S, LiveServer, free_port, run_live_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRE_BROWSER = os.environ.get("PYGARM_REQUIRE_BROWSER") == "1"
PYGARM = str(Path(sys.executable).parent / "pygarm")
APPEAR_S = 1.0
"""A change made with the CLI shows on the page within this long after the command returned."""


@pytest.fixture
def chromium() -> str:
    if CHROMIUM is None:
        reason = "Debian's chromium is not installed (.ci/run installs it with apt)"
        if REQUIRE_BROWSER:
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("PYGARM_TEST_ARTIFACTS", tmp_path / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def backend() -> str:
    return "sqlite"  # the page only speaks HTTP and websockets; both backends serve them alike


@pytest.fixture
def settings(database_section: dict[str, Any], tmp_path: Path) -> Settings:
    provider = {
        "name": "fake",
        "provider_type": "external",
        "external": {"provider_executable": str(Path(sys.executable).parent / "pygarm-test-provider")},
    }
    return make_settings(database_section, provider=[provider])


class Site:
    """A live pygarm that can be restarted on the same port and database, and a CLI profile for it."""

    def __init__(self, settings: Settings, home: Path) -> None:
        self.settings = settings
        self.port = free_port()
        self.home = home
        self._running: Any = None
        self.live: LiveServer | None = None

    def start(self) -> LiveServer:
        self._running = run_live_server(self.settings, port=self.port)
        self.live = self._running.__enter__()
        return self.live

    def stop(self) -> None:
        if self._running is not None:
            self._running.__exit__(None, None, None)
            self._running = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> str:
        env = {**os.environ, "HOME": str(self.home)}
        env.pop("PYGARM_PROFILE", None)
        done = subprocess.run([PYGARM, *args], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"pygarm {' '.join(args)}: {done.stderr}"
        return done.stdout


@pytest.fixture
def site(settings: Settings, tmp_path: Path) -> Iterator[Site]:
    import httpx

    from tests.conftest import initialize

    running = Site(settings, tmp_path / "home")
    running.start()
    try:

        async def init() -> str:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, base_url=running.url) as http:
                return await initialize(http)

        import asyncio

        token = asyncio.run(init())
        profiles = ProfileFile.load(running.home / ".local/share/garm-cli/config.toml")
        profiles.add(Profile(name="local", base_url=running.url, bearer_token=token))
        profiles.save()
        yield running
    finally:
        running.stop()


def test_dashboard_live_resume_and_event_log(chromium: str, site: Site, artifacts: Path) -> None:
    from playwright.sync_api import Page, expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        page: Page = browser.new_page(viewport={"width": 1400, "height": 900})
        documents: list[str] = []
        page.on("request", lambda r: documents.append(r.url) if r.resource_type == "document" else None)
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(ws.url))

        # Sign in: a wrong password first, then the right one.
        page.goto(site.url + "/ui/")
        page.fill("#username", ADMIN_USERNAME)
        page.fill("#password", "not the password")
        page.click("#sign-in")
        expect(page.locator("#login-error")).to_be_visible()
        page.fill("#username", ADMIN_USERNAME)
        page.fill("#password", ADMIN_PASSWORD)
        page.click("#sign-in")
        expect(page.locator("#status")).to_have_text("live", timeout=10_000)
        cookies = {c["name"]: c for c in page.context.cookies()}
        assert cookies["pygarm_session"]["httpOnly"] is True
        assert cookies["pygarm_session"]["sameSite"] == "Strict"
        page.screenshot(path=str(artifacts / "overview-empty.png"))

        # Created with the CLI, shown within a second, without a reload.
        loaded = len(documents)
        site.cli("github", "credentials", "add", "--name", "gh", "--endpoint", "github.com",
                 "--auth-type", "pat", "--pat-oauth-token", "ghp_dashboard")  # fmt: skip
        site.cli("repo", "add", "--owner", "octo", "--name", "dash", "--credentials", "gh",
                 "--webhook-secret", "s3cret-dashboard")  # fmt: skip
        expect(page.locator("#overview-repository")).to_contain_text("octo/dash", timeout=APPEAR_S * 1000)
        site.cli("pool", "add", "--repo", "octo/dash", "--provider-name", "fake", "--image", "ubuntu:22.04",
                 "--flavor", "small", "--tags", "linux,dash", "--enabled")  # fmt: skip
        expect(page.locator("#overview-pools")).to_contain_text("octo/dash", timeout=APPEAR_S * 1000)
        expect(page.locator("#count-pool")).to_have_text("1")
        expect(page.locator("#latest-events")).to_contain_text("pool")
        assert len(documents) == loaded, f"the page reloaded: {documents}"
        page.screenshot(path=str(artifacts / "overview.png"), full_page=True)
        for name in ("endpoints", "credentials", "entities", "pools", "runners", "jobs"):
            page.goto(f"{site.url}/ui/#/{name}")
            expect(page.locator("nav a.active")).to_have_attribute("href", f"#/{name}")
            page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
        expect(page.locator("#credentials")).to_have_count(0)  # on the jobs page now
        page.goto(f"{site.url}/ui/#/pools")
        expect(page.locator("#pools")).to_contain_text("fake")

        # Restart the server: the page resumes from where it was, and never reloads.
        before_restart = len(documents)
        site.stop()
        expect(page.locator("#status")).to_contain_text("reconnecting", timeout=10_000)
        site.start()
        expect(page.locator("#status")).to_contain_text("resumed", timeout=15_000)
        site.cli("repo", "add", "--owner", "octo", "--name", "after-restart", "--credentials", "gh",
                 "--webhook-secret", "s3cret-restart")  # fmt: skip
        page.goto(f"{site.url}/ui/#/entities")
        expect(page.locator("#entities-repository")).to_contain_text("octo/after-restart", timeout=5_000)
        assert len(documents) == before_restart, f"the page reloaded: {documents}"
        events_sockets = [url for url in sockets if "/api/v1/ws/events" in url]
        assert "snapshot=true" in events_sockets[0]
        assert "since=" in events_sockets[-1] and "snapshot" not in events_sockets[-1], events_sockets

        # The event log shows only what its filter selects.
        page.goto(f"{site.url}/ui/#/events")
        page.check('input[name="type"][value="pool"]')
        page.click("#apply-filter")
        expect(page.locator("#filter-text")).to_contain_text('"entity-type":"pool"')
        expect(page.locator("#filter-status")).to_contain_text("active after seq", timeout=5_000)
        pool_id = json.loads(site.cli("pool", "list", "--all", "--format", "json"))[0]["id"]
        site.cli("repo", "add", "--owner", "octo", "--name", "not-in-log", "--credentials", "gh",
                 "--webhook-secret", "s3cret-log")  # fmt: skip
        site.cli("pool", "update", pool_id, "--max-runners", "7")
        expect(page.locator("#frames .frame")).to_have_count(1, timeout=5_000)
        frame = page.locator("#frames .frame").first.text_content() or ""
        assert (
            '"entity-type":"pool"' in frame and '"operation":"update"' in frame and '"max_runners":7' in frame
        )
        page.screenshot(path=str(artifacts / "event-log.png"), full_page=True)
        browser.close()
