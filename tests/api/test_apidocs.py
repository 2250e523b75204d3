"""``/docs`` and ``/redoc`` work offline: every URL the pages reference is on the server itself, and the
server answers each of them from the installed package."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from pygarm.api.app import create_app
from tests.conftest import TEST_PASSPHRASE, make_settings

URL_ATTRIBUTE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'""")
SCRIPT_URLS = re.compile(r"""(?:url|openapi_url)["']?\s*:\s*["']([^"']+)["']|spec-url=["']([^"']+)["']""")
EXPECTED_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app without its lifespan: the pages need no database."""
    settings = make_settings(
        {"backend": "sqlite3", "passphrase": TEST_PASSPHRASE, "sqlite3": {"db_file": str(tmp_path / "x.db")}}
    )
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9997") as client:
        yield client


def referenced_urls(html: str) -> set[str]:
    found = set()
    for pattern in (URL_ATTRIBUTE, SCRIPT_URLS):
        for match in pattern.finditer(html):
            found.add(next(group for group in match.groups() if group))
    return found


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png"}),
    ],
)
async def test_page_references_only_same_origin_urls_that_are_served(
    http: httpx.AsyncClient, page: str, assets: set[str]
) -> None:
    response = await http.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "://" not in html.replace("http://www.w3.org", ""), "an absolute URL: loads from elsewhere"
    assert "fonts.googleapis" not in html and "cdn.jsdelivr" not in html
    urls = referenced_urls(html)
    assert {f"/docs-assets/{name}" for name in assets} <= urls
    assert "/openapi.json" in urls
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        served = await http.get(url)
        assert served.status_code == 200, url
        suffix = Path(url).suffix
        assert EXPECTED_TYPES[suffix] in served.headers["content-type"], url
        assert len(served.content) > 1000, url


async def test_swagger_validator_badge_is_off(http: httpx.AsyncClient) -> None:
    """Swagger UI would otherwise ask validator.swagger.io about the spec."""
    assert '"validatorUrl": null' in (await http.get("/docs")).text


async def test_unknown_asset_is_a_plain_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/docs-assets/nope.js")
    assert response.status_code == 404 and response.text == "404 page not found\n"
