"""Passwords longer than bcrypt's 72 bytes (found beside issue 8 #9): setting one answered 500 (bcrypt 5
raises ValueError; GARM's Go bcrypt refuses them too, also a 500), and logging in with one never matched,
where Go's ``CompareHashAndPassword`` reads the first 72 bytes (older Go versions hashed long passwords
that way, so such users exist in GARM databases). Also first-run values longer than their columns."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from pygarm.runner.auth import hash_password_sync
from pygarm.store.db import WriteTx
from pygarm.store.tables import users
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_USERNAME

TOO_LONG = {"error": "Bad Request", "details": "password is too long (at most 72 bytes)"}
LONG_STRONG = "Vq7#mZ2!pLx9@rT4-garm-" + "é" * 26  # strong, 48 characters, 74 bytes


async def test_first_run_with_a_password_over_72_bytes_is_400_and_creates_nobody(
    client: httpx.AsyncClient,
) -> None:
    body = {"username": ADMIN_USERNAME, "email": ADMIN_EMAIL, "password": LONG_STRONG, "full_name": "A"}
    response = await client.post("/api/v1/first-run", json=body)
    assert (response.status_code, response.json()) == (400, TOO_LONG)
    response = await client.post("/api/v1/first-run", json={**body, "password": ADMIN_PASSWORD})
    assert response.status_code == 200, response.text


async def test_changing_to_a_password_over_72_bytes_is_400_and_keeps_the_old_one(
    client: httpx.AsyncClient, admin_client: httpx.AsyncClient
) -> None:
    user_id = (await admin_client.get("/api/v1/users")).json()[0]["id"]
    response = await admin_client.put(f"/api/v1/users/{user_id}/password", json={"password": LONG_STRONG})
    assert (response.status_code, response.json()) == (400, TOO_LONG)
    login = await client.post(
        "/api/v1/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
    )
    assert login.status_code == 200


async def test_login_reads_the_first_72_bytes_like_go(
    app: FastAPI, client: httpx.AsyncClient, admin_token: str
) -> None:
    stored = "p" * 72  # what an older Go bcrypt kept of a longer password
    password_hash = hash_password_sync(stored)

    def set_hash(tx: WriteTx) -> None:
        tx.conn.execute(
            update(users).where(users.c.username == ADMIN_USERNAME).values(password=password_hash)
        )

    await app.state.ctx.store.db.write(set_hash)
    for password, status in ((stored + "-and-more", 200), (stored, 200), ("p" * 71, 401)):
        response = await client.post(
            "/api/v1/auth/login", json={"username": ADMIN_USERNAME, "password": password}
        )
        assert response.status_code == status, password


@pytest.mark.parametrize(
    ("field", "value", "details"),
    [
        ("email", "a" * 243 + "@example.com", "invalid email address"),
        ("full_name", "x" * 255, "full_name is too long (maximum 254 characters)"),
    ],
)
async def test_first_run_values_longer_than_their_column_are_400(
    client: httpx.AsyncClient, field: str, value: str, details: str
) -> None:
    """PostgreSQL refused the write (500); SQLite stored it. Both now answer 400 and create nobody."""
    body = {"username": ADMIN_USERNAME, "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "full_name": "A"}
    response = await client.post("/api/v1/first-run", json={**body, field: value})
    assert (response.status_code, response.json()) == (400, {"error": "Bad Request", "details": details})
    response = await client.post("/api/v1/first-run", json={**body, field: value[:254]})
    assert response.status_code == 200, response.text
