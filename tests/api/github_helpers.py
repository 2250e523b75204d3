"""Helpers for the endpoint, credentials, users and secrets tests: the change log, key material and rows
that other stores will write later (entities), inserted directly so these tests don't depend on them."""

from __future__ import annotations

import base64
import datetime
import functools
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from fastapi import FastAPI
from sqlalchemy import insert

from pygarm.store.db import WriteTx
from pygarm.store.store import Store
from pygarm.store.tables import enterprises, organizations, repositories


def store_of(app: FastAPI) -> Store:
    store: Store = app.state.ctx.store
    return store


@dataclass(frozen=True)
class LoggedChange:
    entity_type: str
    operation: str
    payload: bytes


async def last_seq(app: FastAPI) -> int:
    return await store_of(app).db.last_seq()


async def changes_since(app: FastAPI, seq: int) -> list[LoggedChange]:
    """The ``change_events`` rows committed after ``seq``, in order."""
    changes = await store_of(app).db.read_changes_after(seq, 10_000)
    return [LoggedChange(c.entity_type.value, c.operation.value, c.payload) for c in changes]


async def all_change_payloads(app: FastAPI) -> list[bytes]:
    return [change.payload for change in await changes_since(app, 0)]


@dataclass(frozen=True)
class KeyMaterial:
    pkcs1_pem: bytes
    pkcs8_pem: bytes
    der: bytes
    cert_pem: bytes


@functools.cache
def key_material() -> KeyMaterial:
    """One RSA key (PKCS#1 and PKCS#8 PEM) and a self-signed certificate, built once per test session."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    none = serialization.NoEncryption()
    pkcs1 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, none
    )
    pkcs8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, none)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL, none)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ghes.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return KeyMaterial(pkcs1, pkcs8, der, cert.public_bytes(serialization.Encoding.PEM))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def ghes_endpoint_body(name: str = "ghes", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "description": "GitHub Enterprise Server",
        "api_base_url": "https://ghes.example.com/api/v3/",
        "upload_base_url": "https://ghes.example.com/api/uploads/",
        "base_url": "https://ghes.example.com",
        "ca_cert_bundle": b64(key_material().cert_pem),
    }
    body.update(overrides)
    return body


def pat_body(
    name: str = "pat-creds", token: str = "ghp_test_token_0123456789", **overrides: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "description": "a PAT",
        "endpoint": "github.com",
        "auth_type": "pat",
        "pat": {"oauth2_token": token},
    }
    body.update(overrides)
    return body


def app_body(name: str = "app-creds", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "description": "an App",
        "endpoint": "github.com",
        "auth_type": "app",
        "app": {"app_id": 1234, "installation_id": 5678, "private_key_bytes": b64(key_material().pkcs1_pem)},
    }
    body.update(overrides)
    return body


async def insert_entity_rows(
    app: FastAPI, credentials_id: int, endpoint_name: str = "github.com"
) -> dict[str, str]:
    """One repository, organization and enterprise using ``credentials_id``, written straight to the
    tables (the entity store is another part's job). Returns their ids by kind."""
    ids = {
        "repository": str(uuid.uuid4()),
        "organization": str(uuid.uuid4()),
        "enterprise": str(uuid.uuid4()),
    }
    sealer = store_of(app).sealer

    def write(tx: WriteTx) -> None:
        common = {
            "credentials_id": credentials_id,
            "webhook_secret": sealer.seal(b"hook-secret"),
            "pool_balancer_type": "",
            "endpoint_name": endpoint_name,
            "created_at": tx.now,
            "updated_at": tx.now,
        }
        tx.conn.execute(
            insert(repositories).values(
                id=ids["repository"], owner="Octo", owner_key="octo", name="Hello", name_key="hello", **common
            )
        )
        tx.conn.execute(
            insert(organizations).values(id=ids["organization"], name="OctoOrg", name_key="octoorg", **common)
        )
        tx.conn.execute(
            insert(enterprises).values(
                id=ids["enterprise"],
                name="OctoEnt",
                name_key="octoent",
                **{**common, "pool_balancer_type": "pack"},
            )
        )

    await store_of(app).db.write(write)
    return ids
