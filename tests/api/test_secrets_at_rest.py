"""Secrets stay secret (docs/garm-protocol.md#secrets, docs/garm-protocol.md#sealing): no PAT, App private key
or password (plain or hashed) in any REST response or change-log payload, and no PAT, private key or plain
password anywhere in the database: not in any table, and, for SQLite, not in the raw bytes of the database
file and its WAL."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Connection, select

from pygarm.config import Settings
from pygarm.store.tables import metadata
from tests.api.github_helpers import all_change_payloads, app_body, b64, key_material, pat_body, store_of
from tests.conftest import ADMIN_PASSWORD

PAT_ONE = "ghp_FirstSecretTokenAAAAAAAAAAAAAAAAAAAA"
PAT_TWO = "ghp_SecondSecretTokenBBBBBBBBBBBBBBBBBBB"
NEW_PASSWORD = "Hq5!mRt8#wZx2@pLc7-rotated"
PLAIN_MARKER = "plain-description-marker-7f3a"
"""Stored in clear on purpose: proves each search really looks at column contents."""


def key_fragments() -> list[bytes]:
    """Recognizable pieces of the private key in every form it could leak in: a PEM body line, a run of
    its DER bytes, and a run of the base64 of the whole PEM (the form the request carries)."""
    material = key_material()
    pem_line = material.pkcs1_pem.splitlines()[5]
    request_form = b64(material.pkcs1_pem).encode()
    return [pem_line, material.der[100:140], request_form[200:260], base64.b64encode(material.der)[100:160]]


def secrets_in(data: bytes, needles: list[bytes]) -> list[bytes]:
    return [needle for needle in needles if needle in data]


async def exercise(http: httpx.AsyncClient) -> list[httpx.Response]:
    """Every route that takes or shows a secret: create, read, update and delete credentials of both
    kinds, and change the admin's password."""
    responses = []

    async def call(method: str, path: str, json: object = None) -> httpx.Response:
        response = await http.request(method, path, json=json)
        assert response.status_code < 300, (method, path, response.text)
        responses.append(response)
        return response

    body = pat_body(token=PAT_ONE, description=PLAIN_MARKER)
    pat = (await call("POST", "/api/v1/github/credentials", json=body)).json()
    await call("PUT", f"/api/v1/github/credentials/{pat['id']}", json={"pat": {"oauth2_token": PAT_TWO}})
    app_creds = (await call("POST", "/api/v1/github/credentials", json=app_body())).json()
    await call("PUT", f"/api/v1/github/credentials/{app_creds['id']}", json={"app": app_body()["app"]})
    doomed = (
        await call("POST", "/api/v1/github/credentials", json=pat_body(name="doomed", token=PAT_ONE))
    ).json()
    await call("DELETE", f"/api/v1/github/credentials/{doomed['id']}")
    for path in (
        "/api/v1/credentials",
        "/api/v1/github/credentials",
        f"/api/v1/github/credentials/{pat['id']}",
        f"/api/v1/github/credentials/{app_creds['id']}",
        "/api/v1/users",
    ):
        await call("GET", path)
    user_id = (await http.get("/api/v1/users")).json()[0]["id"]
    await call("PUT", f"/api/v1/users/{user_id}", json={"full_name": "Renamed"})
    await call("PUT", f"/api/v1/users/{user_id}/password", json={"password": NEW_PASSWORD})
    return responses


async def test_no_secret_in_responses_events_or_tables(admin_client: httpx.AsyncClient, app: FastAPI) -> None:
    """docs/garm-protocol.md#secrets: secrets are never serialized; docs/garm-protocol.md#sealing: credential
    payloads are sealed at rest."""
    responses = await exercise(admin_client)
    store = store_of(app)
    password_hash = (await store.get_user_credentials((await store.list_users())[0].id)).password_hash
    plain = [
        PAT_ONE.encode(),
        PAT_TWO.encode(),
        ADMIN_PASSWORD.encode(),
        NEW_PASSWORD.encode(),
        *key_fragments(),
    ]
    wire_needles = [*plain, password_hash.encode(), b"$2b$"]

    for response in responses:
        assert secrets_in(response.content, wire_needles) == [], response.request.url
    payloads = await all_change_payloads(app)
    assert len(payloads) >= 10
    for payload in payloads:
        assert secrets_in(payload, wire_needles) == [], payload[:80]

    def dump(conn: Connection) -> bytes:
        chunks = []
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    if isinstance(value, (bytes, memoryview)):
                        chunks.append(bytes(value))
                    elif value is not None:
                        chunks.append(str(value).encode())
        return b"\x00".join(chunks)

    everything = await store.db.read(dump)
    assert password_hash.encode() in everything and PLAIN_MARKER.encode() in everything  # real content
    assert secrets_in(everything, plain) == []
    # The sealed payloads still open to the latest secrets.
    secrets = {(await store.get_credentials_secret(i))[1].get("oauth2_token") for i in (1, 2)}
    assert PAT_TWO in secrets


@pytest.mark.parametrize("backend", ["sqlite"])  # a raw database file exists only for SQLite
async def test_no_secret_in_sqlite_file(
    admin_client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    """docs/garm-protocol.md#sealing: the raw SQLite database file (and its WAL, where fresh pages live) holds
    no PAT, key or plain password. The table dump above covers PostgreSQL."""
    assert settings.database.backend == "sqlite3"
    await exercise(admin_client)
    db_file = Path(settings.database.sqlite3.db_file)
    files = [path for path in (db_file, Path(f"{db_file}-wal")) if path.exists()]
    raw = b"".join(path.read_bytes() for path in files)
    assert PLAIN_MARKER.encode() in raw  # the search does look at real row content
    needles = [
        PAT_ONE.encode(),
        PAT_TWO.encode(),
        ADMIN_PASSWORD.encode(),
        NEW_PASSWORD.encode(),
        *key_fragments(),
    ]
    assert secrets_in(raw, needles) == []
