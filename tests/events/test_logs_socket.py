"""``/api/v1/ws/logs`` on a real server: it is closed when its user loses access, like the events socket
(docs/garm-protocol.md#websocket-connection), and no secret set through the API ever reaches it
(docs/garm-protocol.md#log-stream), even at debug level.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from pygarm.config import Settings
from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, make_settings
from tests.live import HTTP_TIMEOUT_S, LiveServer

DEADLINE_S = 10.0
NEW_PASSWORD = ADMIN_PASSWORD + "-rotated!"
PAT = "ghp_logstream_pat_c1f8e2a9"
NEW_PAT = "ghp_logstream_pat_rotated_77b0"
WEBHOOK_SECRET = "whsec-logstream-4e1d9b"
NEW_WEBHOOK_SECRET = "whsec-logstream-rotated-90aa"
WRONG_PASSWORD = "Wrong-login-attempt-5d2c!"
MARKER = "logs-socket-end-marker-31c7"
CLIENT_LOGGERS = ("websockets", "httpx", "httpcore", "uvicorn.error", "hpack")


@pytest.fixture
def debug_root_logger() -> Iterator[None]:
    """The broadcaster takes the root level when the app starts: debug shows the most."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    # The test's own clients run in the server's process: their per-frame debug lines (and uvicorn's)
    # would each become a frame of the log stream, and so on without end.
    quiet = {name: logging.getLogger(name) for name in CLIENT_LOGGERS}
    levels = {name: logger.level for name, logger in quiet.items()}
    for logger in quiet.values():
        logger.setLevel(logging.INFO)
    yield
    root.setLevel(level)
    for name, logger in quiet.items():
        logger.setLevel(levels[name])


@pytest.fixture
def settings(database_section: dict[str, Any], debug_root_logger: None) -> Settings:
    return make_settings(database_section, logging={"enable_log_streamer": True})


async def open_logs(live: LiveServer, token: str) -> ClientConnection:
    """Connect and return once the server has subscribed this socket (no fixed sleep)."""
    broadcaster = live.app.state.log_broadcaster
    before = broadcaster.subscriber_count
    ws = await connect(
        f"{live.ws_url}/api/v1/ws/logs", additional_headers={"Authorization": f"Bearer {token}"}
    )
    deadline = time.monotonic() + DEADLINE_S
    while broadcaster.subscriber_count <= before:
        assert time.monotonic() < deadline, "the logs socket was never subscribed"
        await asyncio.sleep(0.01)
    return ws


async def read_until_closed(ws: ClientConnection) -> int:
    """Read log lines until the server closes; the close code."""
    deadline = time.monotonic() + DEADLINE_S
    try:
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "the logs socket was not closed"
            await asyncio.wait_for(ws.recv(), remaining)
    except ConnectionClosed as closed:
        assert closed.rcvd is not None
        return closed.rcvd.code
    except TimeoutError:
        pytest.fail("the logs socket was not closed")


async def read_until_marker(ws: ClientConnection) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + DEADLINE_S
    while not lines or MARKER not in lines[-1]:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "the marker line never arrived"
        frame = await asyncio.wait_for(ws.recv(), remaining)
        lines.append(frame if isinstance(frame, str) else frame.decode())
    return lines


def api(live: LiveServer, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=HTTP_TIMEOUT_S,
        base_url=live.base_url + "/api/v1",
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_password_change_closes_that_users_logs_socket(live_admin: tuple[LiveServer, str]) -> None:
    """The access guard covers the logs socket too: a password change ends it (close 1000), and the old
    token can no longer open a new one."""
    live, token = live_admin
    ws = await open_logs(live, token)
    async with api(live, token) as http:
        me = (await http.get("/users")).json()[0]
        response = await http.put(f"/users/{me['id']}/password", json={"password": NEW_PASSWORD})
        assert response.status_code == 200, response.text
    assert await read_until_closed(ws) == 1000
    assert live.app.state.log_broadcaster.subscriber_count == 0


async def test_disabling_a_user_closes_its_logs_socket(live_admin: tuple[LiveServer, str]) -> None:
    live, token = live_admin
    second = await asyncio.wrap_future(live.call(_second_admin(live)))
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, base_url=live.base_url + "/api/v1") as http:
        login = await http.post("/auth/login", json={"username": "second", "password": ADMIN_PASSWORD})
        assert login.status_code == 200, login.text
    ws = await open_logs(live, login.json()["token"])
    async with api(live, token) as http:
        response = await http.put(f"/users/{second}", json={"enabled": False})
        assert response.status_code == 200, response.text
    assert await read_until_closed(ws) == 1000


async def _second_admin(live: LiveServer) -> str:
    from tests.api.test_users import insert_admin

    return await insert_admin(live.app, "second")


async def test_no_secret_set_through_the_api_reaches_the_log_stream(
    live_admin: tuple[LiveServer, str],
) -> None:
    """Passwords (login, failed login, password change), PATs and webhook secrets, created and rotated,
    and the tokens the server hands out: none appears in any line of the debug-level log stream."""
    live, token = live_admin
    second = await asyncio.wrap_future(live.call(_second_admin(live)))
    ws = await open_logs(live, token)
    async with api(live, token) as http:
        creds = await http.post(
            "/github/credentials",
            json={
                "name": "c1",
                "description": "d",
                "endpoint": "github.com",
                "auth_type": "pat",
                "pat": {"oauth2_token": PAT},
            },
        )
        assert creds.status_code == 200, creds.text
        rotated = await http.put(
            f"/github/credentials/{creds.json()['id']}", json={"pat": {"oauth2_token": NEW_PAT}}
        )
        assert rotated.status_code == 200, rotated.text
        repo = await http.post(
            "/repositories",
            json={"owner": "octo", "name": "s", "credentials_name": "c1", "webhook_secret": WEBHOOK_SECRET},
        )
        assert repo.status_code == 200, repo.text
        updated = await http.put(
            f"/repositories/{repo.json()['id']}", json={"webhook_secret": NEW_WEBHOOK_SECRET}
        )
        assert updated.status_code == 200, updated.text
        changed = await http.put(f"/users/{second}/password", json={"password": NEW_PASSWORD})
        assert changed.status_code == 200, changed.text
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, base_url=live.base_url + "/api/v1") as http:
        failed = await http.post("/auth/login", json={"username": ADMIN_USERNAME, "password": WRONG_PASSWORD})
        assert failed.status_code == 401
        login = await http.post("/auth/login", json={"username": "second", "password": NEW_PASSWORD})
        assert login.status_code == 200, login.text
    logging.getLogger("pygarm.tests").warning("%s", MARKER)  # the server shares this process
    lines = await read_until_marker(ws)
    await ws.close()
    secrets = [
        ADMIN_PASSWORD,
        NEW_PASSWORD,
        WRONG_PASSWORD,
        PAT,
        NEW_PAT,
        WEBHOOK_SECRET,
        NEW_WEBHOOK_SECRET,
        token,
        login.json()["token"],
    ]
    leaked = [(secret, line) for line in lines for secret in secrets if secret in line]
    assert leaked == []
    assert len(lines) > 1, "the requests above logged nothing at debug level"
