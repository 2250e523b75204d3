"""pygarm's user management routes (GARM v0.1.5 has none; docs/users.md), in GARM's style:
docs/garm-protocol.md#user shapes, docs/garm-protocol.md#user-jwt token rules, docs/garm-protocol.md#first-run
password strength, docs/garm-protocol.md#error-mapping error mapping."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert

from pygarm.runner.auth import hash_password_sync
from pygarm.store.db import WriteTx
from pygarm.store.tables import users
from tests.api.github_helpers import changes_since, last_seq, store_of
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_USERNAME

USER_KEYS = ["id", "created_at", "updated_at", "email", "username", "full_name", "enabled", "is_admin"]
NEW_PASSWORD = "Zr8!kWq3#vNp6@tYc2-new-pass"
BASE = "/api/v1/users"


async def admin_id(http: httpx.AsyncClient) -> str:
    listed = (await http.get(BASE)).json()
    return str(listed[0]["id"])


async def insert_admin(app: FastAPI, username: str, *, enabled: bool = True) -> str:
    """A second admin, written straight to the table: no route creates users besides first-run."""
    user_id = str(uuid.uuid4())
    password_hash = hash_password_sync(ADMIN_PASSWORD)

    def write(tx: WriteTx) -> None:
        tx.conn.execute(
            insert(users).values(
                id=user_id,
                username=username,
                username_key=username,
                email=f"{username}@example.com",
                email_key=f"{username}@example.com",
                full_name="",
                password=password_hash,
                generation=0,
                is_admin=True,
                enabled=enabled,
                created_at=tx.now,
                updated_at=tx.now,
            )
        )

    await store_of(app).db.write(write)
    return user_id


async def test_list_and_get(admin_client: httpx.AsyncClient) -> None:
    """docs/garm-protocol.md#user ``User`` key order, no password hash or generation; both path forms
    (docs/garm-protocol.md#auth-chains)."""
    for path in (BASE, BASE + "/"):
        response = await admin_client.get(path)
        assert response.status_code == 200
        listed = response.json()
        assert len(listed) == 1 and list(listed[0]) == USER_KEYS
        assert listed[0]["username"] == ADMIN_USERNAME and listed[0]["is_admin"] is True
        assert "$2b$" not in response.text and "generation" not in response.text
    user_id = listed[0]["id"]
    response = await admin_client.get(f"{BASE}/{user_id}/")
    assert response.status_code == 200
    assert response.json() == listed[0]


async def test_get_errors(admin_client: httpx.AsyncClient) -> None:
    """docs/garm-protocol.md#error-mapping: a path id that is not a UUID → 400 ``invalid request``; an unknown
    user → 404."""
    response = await admin_client.get(BASE + "/not-a-uuid")
    assert response.status_code == 400
    assert response.json() == {"error": "Bad Request", "details": "invalid request"}
    for method in ("GET", "PUT"):
        response = await admin_client.request(method, f"{BASE}/{uuid.uuid4()}", json={"full_name": "x"})
        assert response.status_code == 404
        assert response.json() == {"error": "Not Found", "details": "user not found"}
    response = await admin_client.put(f"{BASE}/{uuid.uuid4()}/password", json={"password": NEW_PASSWORD})
    assert response.status_code == 404


async def test_update_full_name_emits_user_update(admin_client: httpx.AsyncClient, app: FastAPI) -> None:
    """One ``user/update`` event whose payload is the REST GET body; absent/null fields stay as they are."""
    user_id = await admin_id(admin_client)
    seq = await last_seq(app)
    response = await admin_client.put(f"{BASE}/{user_id}", json={"full_name": "Ada Admin", "enabled": None})
    assert response.status_code == 200
    body = response.json()
    assert list(body) == USER_KEYS
    assert body["full_name"] == "Ada Admin" and body["enabled"] is True
    get = await admin_client.get(f"{BASE}/{user_id}")
    assert get.content == response.content
    changes = await changes_since(app, seq)
    assert [(c.entity_type, c.operation) for c in changes] == [("user", "update")]
    assert changes[0].payload + b"\n" == get.content
    # The caller's token still works: only a password change invalidates tokens.
    assert (await admin_client.get(BASE)).status_code == 200


@pytest.mark.parametrize(
    ("content", "details"),
    [
        (b"{nope", "invalid request"),
        (b'{"enabled": "no"}', "invalid request"),
        (b'{"full_name": "' + b"x" * 255 + b'"}', "full_name is too long (maximum 254 characters)"),
        (b'{"password": "password1"}', "password is too weak"),
    ],
)
async def test_update_errors(
    admin_client: httpx.AsyncClient, app: FastAPI, content: bytes, details: str
) -> None:
    """docs/garm-protocol.md#error-mapping, docs/garm-protocol.md#first-run: undecodable bodies, over-long
    names and weak passwords → 400, no event."""
    user_id = await admin_id(admin_client)
    seq = await last_seq(app)
    response = await admin_client.put(f"{BASE}/{user_id}", content=content)
    assert response.status_code == 400
    assert response.json() == {"error": "Bad Request", "details": details}
    assert await changes_since(app, seq) == []


async def test_last_enabled_admin_cannot_be_disabled(admin_client: httpx.AsyncClient, app: FastAPI) -> None:
    """Disabling the only enabled admin would lock everyone out: 400 with a clear message, no event."""
    user_id = await admin_id(admin_client)
    await insert_admin(app, "dormant", enabled=False)  # a disabled admin does not count
    seq = await last_seq(app)
    response = await admin_client.put(f"{BASE}/{user_id}", json={"enabled": False})
    assert response.status_code == 400
    assert response.json() == {
        "error": "Bad Request",
        "details": "cannot disable the last enabled admin user",
    }
    assert await changes_since(app, seq) == []
    assert (await admin_client.get(f"{BASE}/{user_id}")).json()["enabled"] is True


async def test_disable_with_another_admin(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient, app: FastAPI
) -> None:
    """With a second enabled admin, disabling works; the disabled user's tokens stop working
    (docs/garm-protocol.md#user-jwt) and it cannot log in (docs/garm-protocol.md#login); re-enabling restores
    both."""
    first_id = await admin_id(admin_client)
    second_id = await insert_admin(app, "second")
    response = await client.post(
        "/api/v1/auth/login", json={"username": "second", "password": ADMIN_PASSWORD}
    )
    second = {"Authorization": f"Bearer {response.json()['token']}"}
    response = await admin_client.put(f"{BASE}/{first_id}", json={"enabled": False})
    assert response.status_code == 200 and response.json()["enabled"] is False
    response = await admin_client.get(BASE)
    assert response.status_code == 401
    assert response.json() == {"error": "Authentication failed", "details": ""}
    login = {"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
    assert (await client.post("/api/v1/auth/login", json=login)).status_code == 401
    response = await client.put(f"{BASE}/{second_id}", json={"enabled": False}, headers=second)
    assert response.status_code == 400
    response = await client.put(f"{BASE}/{first_id}", json={"enabled": True}, headers=second)
    assert response.status_code == 200 and response.json()["enabled"] is True
    assert (await admin_client.get(BASE)).status_code == 200


async def test_change_password(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient, app: FastAPI
) -> None:
    """A new password (zxcvbn 4, docs/garm-protocol.md#first-run) bumps the generation: older tokens → 401
    (docs/garm-protocol.md#user-jwt); the old password no longer logs in, the new one does; one
    ``user/update`` event without any hash in it."""
    user_id = await admin_id(admin_client)
    response = await admin_client.put(f"{BASE}/{user_id}/password", json={"password": "password1"})
    assert response.status_code == 400
    assert response.json() == {"error": "Bad Request", "details": "password is too weak"}
    seq = await last_seq(app)
    response = await admin_client.put(f"{BASE}/{user_id}/password/", json={"password": NEW_PASSWORD})
    assert response.status_code == 200
    assert list(response.json()) == USER_KEYS
    changes = await changes_since(app, seq)
    assert [(c.entity_type, c.operation) for c in changes] == [("user", "update")]
    assert changes[0].payload + b"\n" == response.content
    assert b"$2b$" not in changes[0].payload and NEW_PASSWORD.encode() not in changes[0].payload
    assert (await admin_client.get(BASE)).status_code == 401
    old = await client.post(
        "/api/v1/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
    )
    assert old.status_code == 401
    new = await client.post("/api/v1/auth/login", json={"username": ADMIN_EMAIL, "password": NEW_PASSWORD})
    assert new.status_code == 200
    headers = {"Authorization": f"Bearer {new.json()['token']}"}
    assert (await client.get(f"{BASE}/{user_id}", headers=headers)).status_code == 200


async def test_password_through_update_route(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """``PUT /users/{id}`` also accepts ``password``, in the same transaction as the other fields."""
    user_id = await admin_id(admin_client)
    response = await admin_client.put(f"{BASE}/{user_id}", json={"password": NEW_PASSWORD, "full_name": "N"})
    assert response.status_code == 200 and response.json()["full_name"] == "N"
    new = await client.post("/api/v1/auth/login", json={"username": ADMIN_USERNAME, "password": NEW_PASSWORD})
    assert new.status_code == 200


async def test_password_route_errors(admin_client: httpx.AsyncClient) -> None:
    """Bad id → 400; undecodable body → 400 ``invalid request``; an empty password is too weak."""
    user_id = await admin_id(admin_client)
    response = await admin_client.put(BASE + "/x/password", json={"password": NEW_PASSWORD})
    assert response.status_code == 400 and response.json()["details"] == "invalid request"
    response = await admin_client.put(f"{BASE}/{user_id}/password", json={"password": 12})
    assert response.status_code == 400 and response.json()["details"] == "invalid request"
    response = await admin_client.put(f"{BASE}/{user_id}/password", json={})
    assert response.status_code == 400 and response.json()["details"] == "password is too weak"


async def test_routes_require_admin_token(admin_client: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    """The users routes sit on GARM's ``apiRouter`` chain (docs/garm-protocol.md#auth-chains): no token →
    401."""
    some_id = str(uuid.uuid4())
    for method, path in [
        ("GET", BASE),
        ("GET", f"{BASE}/{some_id}"),
        ("PUT", f"{BASE}/{some_id}"),
        ("PUT", f"{BASE}/{some_id}/password"),
    ]:
        response = await client.request(method, path)
        assert response.status_code == 401, (method, path)
