"""``/api/v1/callbacks`` and ``/api/v1/metadata`` (docs/garm-protocol.md#instance-facing-endpoints,
docs/garm-protocol.md#lifecycle): the instance token checks with GARM's 401, the callbacks' single
``instance/update``, the JIT files and service files, the CA bundle, and the one-shot registration token from
the fake GitHub."""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson
import pytest
from cryptography import x509

from pygarm.runner.instance_token import InstanceTokenService
from pygarm.runner.metadata import certificate_bundle
from tests.api.entity_support import ChangeLog
from tests.api.github_helpers import key_material
from tests.conftest import TEST_JWT_SECRET
from tests.webhooks.conftest import World, bearer, instance_token, make_instance

RUNNER = "garm-inst0001"
AUTH_FAILED = {"error": "Authentication failed", "details": ""}
NOT_AUTHORIZED = {"error": "Not Authorized", "details": ""}
JIT = {
    ".runner": base64.b64encode(b'{"agentId": 17}').decode(),
    ".credentials": base64.b64encode(b"credentials-file").decode(),
    ".credentials_rsaparams": base64.b64encode(b"\x00\x01binary").decode(),
}


async def _callback(world: World, path: str, body: dict[str, Any], token: str) -> Any:
    return await world.http.post(path, content=orjson.dumps(body), headers=bearer(token))


async def test_runner_reports_until_idle_then_token_dies(world: World) -> None:
    """docs/garm-protocol.md#end-to-end step 10: installing (1 message), system-info (os_name), idle (2
    messages); then 401."""
    await make_instance(world, RUNNER, jit=JIT)
    token = instance_token(world, RUNNER)
    log = ChangeLog(world.app)
    await log.mark()

    response = await _callback(
        world, "/api/v1/callbacks/status", {"status": "installing", "message": "downloading tools"}, token
    )
    assert (response.status_code, response.content, response.headers["content-type"]) == (
        200,
        b"",
        "application/json",
    )
    change = await log.single("instance", "update")
    instance = orjson.loads(change.payload)
    assert instance["runner_status"] == "installing"
    assert [(m["message"], m["event_type"], m["event_level"]) for m in instance["status_messages"]] == [
        ("downloading tools", "status", "info")
    ]
    assert change.payload + b"\n" == (await world.http.get(f"/api/v1/instances/{RUNNER}")).content

    body: dict[str, Any] = {"os_name": "Ubuntu", "os_version": "22.04", "agent_id": None}
    assert (await _callback(world, "/api/v1/callbacks/system-info/", body, token)).status_code == 200
    instance = orjson.loads((await log.single("instance", "update")).payload)
    assert (instance["os_name"], instance["os_version"], instance["agent_id"]) == ("Ubuntu", "22.04", 0)

    body2: dict[str, Any] = {"status": "idle", "message": "runner successfully installed", "agent_id": 777}
    assert (await _callback(world, "/api/v1/callbacks/status/", body2, token)).status_code == 200
    instance = orjson.loads((await log.single("instance", "update")).payload)
    assert (instance["runner_status"], instance["agent_id"], len(instance["status_messages"])) == (
        "idle",
        777,
        2,
    )

    for path in ("/api/v1/metadata/credentials/runner", "/api/v1/metadata/system/cert-bundle"):
        response = await world.http.get(path, headers=bearer(token))
        assert (response.status_code, response.json()) == (401, AUTH_FAILED)
    response = await _callback(world, "/api/v1/callbacks/status", {"status": "installing"}, token)
    assert (response.status_code, response.json()) == (401, AUTH_FAILED)
    assert await log.new() == []


async def test_system_info_without_fields_changes_nothing(world: World) -> None:
    await make_instance(world, RUNNER)
    token = instance_token(world, RUNNER)
    log = ChangeLog(world.app)
    await log.mark()
    for body in ({}, {"os_name": "", "agent_id": None}):
        assert (await _callback(world, "/api/v1/callbacks/system-info", body, token)).status_code == 200
    assert await log.new() == []
    assert (
        await _callback(world, "/api/v1/callbacks/system-info", {"agent_id": 0}, token)
    ).status_code == 200
    await log.single("instance", "update")


@pytest.mark.parametrize("path", ["/api/v1/callbacks/status", "/api/v1/callbacks/system-info"])
@pytest.mark.parametrize("body", [b"", b"{oops", b'{"agent_id": "seven"}', b"[]"])
async def test_undecodable_callback_is_invalid_request(world: World, path: str, body: bytes) -> None:
    await make_instance(world, RUNNER)
    response = await world.http.post(path, content=body, headers=bearer(instance_token(world, RUNNER)))
    assert (response.status_code, response.json()) == (
        400,
        {"error": "Bad Request", "details": "invalid request"},
    )


async def test_status_is_stored_verbatim(world: World) -> None:
    """docs/garm-protocol.md#runner-status: any string is a runner status (``failed``, or anything else a
    runner sends)."""
    await make_instance(world, RUNNER)
    body = {"status": "something-odd", "message": "m"}
    assert (
        await _callback(world, "/api/v1/callbacks/status", body, instance_token(world, RUNNER))
    ).status_code == 200
    assert (await world.http.get(f"/api/v1/instances/{RUNNER}")).json()["runner_status"] == "something-odd"


async def test_authentication_failures_are_all_the_same_401(world: World) -> None:
    """docs/garm-protocol.md#instance-auth: header shape, signature, expiry, instance, runner status, create
    attempt, instance status."""
    await make_instance(world, RUNNER)
    await make_instance(world, "garm-idle", runner_status="idle")
    await make_instance(world, "garm-retried", create_attempt=1)
    for status in ("pending_create", "pending_delete", "error", "deleting"):
        await make_instance(world, f"garm-{status}", status=status)
    good = instance_token(world, RUNNER)
    expired = InstanceTokenService(TEST_JWT_SECRET, clock=lambda: time.time() - 3600).mint(
        instance_id="",
        instance_name=RUNNER,
        pool_id=world.pool_id,
        scope="repository",
        entity="octo/hello",
        create_attempt=0,
        bootstrap_timeout_minutes=20,
    )
    headers: list[dict[str, str]] = [
        {},
        {"Authorization": ""},
        {"Authorization": good},
        {"Authorization": f"Bearer  {good}"},
        {"Authorization": f"Bearer {good} extra"},
        bearer(instance_token(world, RUNNER, secret="a-different-secret-" + "x" * 32)),
        bearer(expired),
        bearer(instance_token(world, "garm-nonexistent")),
        bearer(instance_token(world, "")),
        bearer(instance_token(world, "garm-idle")),
        bearer(instance_token(world, "garm-retried", create_attempt=0)),
        *(
            bearer(instance_token(world, f"garm-{s}"))
            for s in ("pending_create", "pending_delete", "error", "deleting")
        ),
    ]
    for header in headers:
        response = await world.http.get("/api/v1/metadata/system/cert-bundle", headers=header)
        assert (response.status_code, response.json()) == (401, AUTH_FAILED), header
    assert (
        await world.http.get("/api/v1/metadata/system/cert-bundle", headers=bearer(good))
    ).status_code == 200
    retried = bearer(instance_token(world, "garm-retried", create_attempt=1))
    assert (await world.http.get("/api/v1/metadata/system/cert-bundle", headers=retried)).status_code == 200
    # The first word is not checked (GARM splits on a single space and takes the second part).
    other_scheme = {"Authorization": f"Token {good}"}
    assert (
        await world.http.get("/api/v1/metadata/system/cert-bundle", headers=other_scheme)
    ).status_code == 200


async def test_jit_files_and_service_files(world: World) -> None:
    """docs/garm-protocol.md#metadata: ``.<file>`` from the JIT map, base64-decoded, as an ``octet-stream``
    attachment; service name and systemd unit as ``text/plain``."""
    await make_instance(world, RUNNER, runner_status="installing", jit=JIT)
    auth = bearer(instance_token(world, RUNNER))
    for name, content in (("runner", b'{"agentId": 17}'), ("credentials_rsaparams", b"\x00\x01binary")):
        response = await world.http.get(f"/api/v1/metadata/credentials/{name}/", headers=auth)
        assert response.status_code == 200
        assert response.content == content
        assert response.headers["content-type"] == "octet-stream"
        assert response.headers["content-disposition"] == f"attachment; filename=.{name}"
        assert response.headers["content-length"] == str(len(content))
    response = await world.http.get("/api/v1/metadata/credentials/missing", headers=auth)
    assert (response.status_code, response.json()) == (404, {"error": "Not Found", "details": "not found"})

    response = await world.http.get("/api/v1/metadata/system/service-name", headers=auth)
    assert (response.status_code, response.headers["content-type"]) == (200, "text/plain")
    assert response.text == f"actions.runner.octo-hello.{RUNNER}"

    response = await world.http.get("/api/v1/metadata/systemd/unit-file?runAsUser=ubuntu", headers=auth)
    assert response.headers["content-type"] == "text/plain"
    assert response.text == (
        "[Unit]\n"
        f"Description=GitHub Actions Runner (actions.runner.octo-hello.{RUNNER})\n"
        "After=network.target\n\n"
        "[Service]\n"
        "ExecStart=/home/ubuntu/actions-runner/runsvc.sh\n"
        "User=runner\n"
        "WorkingDirectory=/home/ubuntu/actions-runner\n"
        "KillMode=process\nKillSignal=SIGTERM\nTimeoutStopSec=5min\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    default = await world.http.get("/api/v1/metadata/systemd/unit-file/", headers=auth)
    assert "ExecStart=/home/runner/actions-runner/runsvc.sh\n" in default.text
    escaped = await world.http.get("/api/v1/metadata/systemd/unit-file?runAsUser=a%2Bb%3C", headers=auth)
    assert "WorkingDirectory=/home/a&#43;b&lt;/actions-runner\n" in escaped.text


async def test_jit_endpoints_refuse_runners_without_jit(world: World) -> None:
    """docs/garm-protocol.md#other-scenarios (c): ``credentials/*``, ``service-name`` (and the unit file) are
    401 for a non-JIT runner."""
    await make_instance(world, RUNNER)
    auth = bearer(instance_token(world, RUNNER))
    for path in ("credentials/runner", "system/service-name", "systemd/unit-file"):
        response = await world.http.get(f"/api/v1/metadata/{path}", headers=auth)
        assert (response.status_code, response.json()) == (401, NOT_AUTHORIZED), path


async def test_registration_token_is_fetched_once(world: World) -> None:
    """docs/garm-protocol.md#other-scenarios (c): raw token body with ``Content-Type: application/json`` and
    one ``instance/update`` with the ``fetchToken`` message; the fake GitHub saw the PAT; a second fetch is
    401."""
    await make_instance(world, RUNNER)
    auth = bearer(instance_token(world, RUNNER))
    log = ChangeLog(world.app)
    await log.mark()
    response = await world.http.get("/api/v1/metadata/runner-registration-token/", headers=auth)
    assert (response.status_code, response.content) == (200, b"FAKE-REG-TOKEN")
    assert response.headers["content-type"] == "application/json"
    instance = orjson.loads((await log.single("instance", "update")).payload)
    assert [(m["message"], m["event_type"], m["event_level"]) for m in instance["status_messages"]] == [
        ("runner registration token was retrieved", "fetchToken", "info")
    ]
    calls = world.github.fake.calls_to("POST", "/repos/octo/hello/actions/runners/registration-token")
    assert len(calls) == 1
    assert calls[0].headers["authorization"] == "Bearer ghp_fake"
    response = await world.http.get("/api/v1/metadata/runner-registration-token", headers=auth)
    assert (response.status_code, response.json()) == (401, NOT_AUTHORIZED)
    assert await log.new() == []


async def test_registration_token_refused_to_jit_runner_and_github_failure_is_500(world: World) -> None:
    await make_instance(world, RUNNER, jit=JIT)
    response = await world.http.get(
        "/api/v1/metadata/runner-registration-token", headers=bearer(instance_token(world, RUNNER))
    )
    assert (response.status_code, response.json()) == (401, NOT_AUTHORIZED)

    await make_instance(world, "garm-nojit")
    world.github.fake.inject_error("POST", "registration-token$", 503, times=1)
    auth = bearer(instance_token(world, "garm-nojit"))
    response = await world.http.get("/api/v1/metadata/runner-registration-token", headers=auth)
    assert (response.status_code, response.json()) == (500, {"error": "Server error", "details": ""})
    assert (
        await world.http.get("/api/v1/metadata/runner-registration-token", headers=auth)
    ).status_code == 200


async def test_cert_bundle(world: World) -> None:
    """docs/garm-protocol.md#metadata: ``null`` without a CA bundle; ``{serial: base64 PEM}`` with the
    endpoint's bundle."""
    await make_instance(world, RUNNER)
    auth = bearer(instance_token(world, RUNNER))
    response = await world.http.get("/api/v1/metadata/system/cert-bundle/", headers=auth)
    assert (response.status_code, response.content) == (200, b'{"root_certificates":null}\n')

    pem = key_material().cert_pem
    update = {"ca_cert_bundle": base64.b64encode(pem).decode()}
    assert (await world.http.put("/api/v1/github/endpoints/fakegh", json=update)).status_code == 200
    response = await world.http.get("/api/v1/metadata/system/cert-bundle", headers=auth)
    serial = str(x509.load_pem_x509_certificate(pem).serial_number)
    assert response.json() == {"root_certificates": {serial: base64.b64encode(pem).decode()}}


def test_certificate_bundle_rules() -> None:
    """GARM's ``RootCertificateBundle``: PEM re-encoded per serial, keys sorted; a non-certificate
    block empties the map."""
    pem = key_material().cert_pem
    assert certificate_bundle(None).root_certificates is None
    assert certificate_bundle(b"no pem here").root_certificates == {}
    garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    assert certificate_bundle(pem + garbage).root_certificates == {}
    bundle = certificate_bundle(b"junk before\n" + pem + pem)
    assert list((bundle.root_certificates or {}).values()) == [pem]
