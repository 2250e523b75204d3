"""The dashboard's login form and session cookie (api/ui.py): what the cookie may and may not do.

The cookie stands in for ``Authorization: Bearer`` on safe REST methods and websocket handshakes from the
same origin; never on a write, never cross-origin, and never when an ``Authorization`` header is present
(GARM's behaviour for every GARM client is unchanged).
"""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME

HOST = "127.0.0.1:9997"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def sign_in(client: httpx.AsyncClient, password: str = ADMIN_PASSWORD) -> httpx.Response:
    body = f"username={ADMIN_USERNAME}&password={password}"
    return await client.post("/ui/login", content=body, headers=FORM)


@pytest.fixture
async def session(client: httpx.AsyncClient, admin_token: str) -> str:
    response = await sign_in(client)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("pygarm_session=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    token = str(response.cookies["pygarm_session"])
    client.cookies.clear()  # each test says when it sends the cookie
    return token


async def test_login_page_until_signed_in_then_dashboard(client: httpx.AsyncClient, session: str) -> None:
    anonymous = await client.get("/ui/")
    assert anonymous.status_code == 200
    assert 'action="/ui/login"' in anonymous.text
    assert anonymous.headers["content-security-policy"].startswith("default-src 'self'")
    client.cookies.set("pygarm_session", session)
    signed_in = await client.get("/ui/")
    assert 'src="/ui/assets/app.js"' in signed_in.text
    asset = await client.get("/ui/assets/app.js")
    assert asset.status_code == 200 and "snapshot=true" in asset.text


async def test_wrong_password_sets_no_cookie(client: httpx.AsyncClient, admin_token: str) -> None:
    response = await sign_in(client, "wrong")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/?failed=1"
    assert "set-cookie" not in response.headers


async def test_login_form_is_bounded_and_same_origin(client: httpx.AsyncClient, admin_token: str) -> None:
    big = await client.post("/ui/login", content="username=a&password=" + "x" * 5000, headers=FORM)
    assert big.status_code == 413
    foreign = await client.post(
        "/ui/login",
        content=f"username={ADMIN_USERNAME}&password={ADMIN_PASSWORD}",
        headers={**FORM, "Origin": "http://evil.example"},
    )
    assert foreign.status_code == 403 and "set-cookie" not in foreign.headers


async def test_cookie_reads_but_never_writes(client: httpx.AsyncClient, session: str) -> None:
    with_header = await client.get("/api/v1/controller", headers={"Authorization": f"Bearer {session}"})
    client.cookies.set("pygarm_session", session)
    read = await client.get("/api/v1/controller")
    assert read.status_code == 200 and read.json() == with_header.json()
    write = await client.put("/api/v1/controller", json={"minimum_job_age_backoff": 7})
    assert write.status_code == 401
    assert write.json() == {"error": "Authentication failed", "details": ""}  # GARM's answer without a token
    assert (await client.get("/api/v1/controller")).json() == with_header.json()


async def test_cookie_refused_cross_origin_and_ignored_beside_a_header(
    client: httpx.AsyncClient, session: str
) -> None:
    client.cookies.set("pygarm_session", session)
    foreign = await client.get("/api/v1/repositories", headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 401
    same = await client.get("/api/v1/repositories", headers={"Origin": f"http://{HOST}"})
    assert same.status_code == 200
    bad_header = await client.get("/api/v1/repositories", headers={"Authorization": "Bearer not-a-token"})
    assert bad_header.status_code == 401, "a header is judged alone, as in GARM"


async def test_logout_clears_the_cookie(client: httpx.AsyncClient, session: str) -> None:
    client.cookies.set("pygarm_session", session)
    response = await client.post("/ui/logout")
    assert response.status_code == 303
    assert response.headers["set-cookie"].startswith('pygarm_session=""')
