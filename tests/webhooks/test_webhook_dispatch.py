"""``/webhooks``: the pre-checks and dispatch of docs/garm-protocol.md#webhook-routes,
docs/garm-protocol.md#webhook-dispatch with GARM's exact answers, and the ``job/create`` a ``queued`` delivery
produces (docs/garm-protocol.md#handling-a-job, docs/garm-protocol.md#end-to-end step 7,
docs/garm-protocol.md#job)."""

from __future__ import annotations

import orjson
import pytest

from pygarm.params.gojson import ZERO_UUID
from tests.api.entity_support import JOB_KEYS, ChangeLog
from tests.webhooks.conftest import LABELS, World, job_payload, send, sign

NOT_AUTHORIZED = {"error": "Not Authorized", "details": ""}


def _empty_200(response: object) -> None:
    assert getattr(response, "status_code") == 200, getattr(response, "text")  # noqa: B009
    assert getattr(response, "content") == b""  # noqa: B009


async def test_queued_records_job_create_with_garm_payload(world: World) -> None:
    """docs/garm-protocol.md#end-to-end step 7: one ``job/create`` with ``status:"queued"``, ``LockedBy`` zero
    UUID, ``repo_id`` set; the payload is what ``GET /api/v1/jobs`` shows, in docs/garm-protocol.md#job key
    order."""
    log = ChangeLog(world.app)
    await log.mark()
    response = await send(world.http, job_payload(world, "queued", 1001))
    _empty_200(response)
    assert response.headers["content-type"] == "application/json"
    change = await log.single("job", "create")
    job = orjson.loads(change.payload)
    assert list(job) == JOB_KEYS
    assert job["id"] == 1001
    assert job["run_id"] == 55
    assert (job["action"], job["status"], job["conclusion"], job["name"]) == ("queued", "queued", "", "build")
    assert job["StartedAt"] == "2024-05-01T10:00:00Z"
    assert job["CompletedAt"] == "0001-01-01T00:00:00Z"
    assert (job["runner_id"], job["runner_name"], job["runner_group_id"], job["runner_group_name"]) == (
        0,
        "",
        0,
        "",
    )
    assert (job["RepositoryName"], job["RepositoryOwner"], job["Labels"]) == ("hello", "octo", LABELS)
    assert job["repo_id"] == world.repo_id
    assert job["LockedBy"] == ZERO_UUID
    listed = (await world.http.get("/api/v1/jobs")).json()
    assert orjson.dumps(listed[0]) == change.payload


@pytest.mark.parametrize("path", ["/webhooks", "/webhooks/", "/webhooks/{id}", "/webhooks/{id}/"])
async def test_every_route_form_dispatches(world: World, path: str) -> None:
    """docs/garm-protocol.md#webhook-routes: four paths; with a controller ID, only this controller's is
    processed."""
    log = ChangeLog(world.app)
    await log.mark()
    _empty_200(
        await send(world.http, job_payload(world, "queued", 1002), path=path.format(id=world.controller_id))
    )
    await log.single("job", "create")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_any_method_is_accepted(world: World, method: str) -> None:
    log = ChangeLog(world.app)
    await log.mark()
    _empty_200(await send(world.http, job_payload(world, "queued", 1003), method=method))
    await log.single("job", "create")


async def test_foreign_controller_id_is_ignored(world: World) -> None:
    log = ChangeLog(world.app)
    await log.mark()
    for path in ("/webhooks/another-controller", "/webhooks/00000000-0000-0000-0000-000000000000/"):
        _empty_200(await send(world.http, job_payload(world, "queued", 1004), path=path))
    assert await log.new() == []


@pytest.mark.parametrize("event", ["ping", "push", "", None, "WORKFLOW_JOB"])
async def test_other_events_are_ignored(world: World, event: str | None) -> None:
    """docs/garm-protocol.md#webhook-routes step 2: only ``workflow_job`` is handled (exact value); even a
    body that is not JSON gets 200."""
    log = ChangeLog(world.app)
    await log.mark()
    _empty_200(await send(world.http, b"{not json", event=event, signature=""))
    assert await log.new() == []


async def test_event_header_name_is_case_insensitive(world: World) -> None:
    log = ChangeLog(world.app)
    await log.mark()
    body = orjson.dumps(job_payload(world, "queued", 1005))
    response = await world.http.post(
        "/webhooks",
        content=body,
        headers={
            "x-github-event": "workflow_job",
            "X-GITHUB-HOOK-INSTALLATION-TARGET-TYPE": "repository",
            "x-hub-signature-256": sign(body),
        },
    )
    _empty_200(response)
    await log.single("job", "create")


async def test_wrong_signature_is_401_and_records_nothing(world: World) -> None:
    log = ChangeLog(world.app)
    await log.mark()
    payload = job_payload(world, "queued", 1006)
    for signature in (
        sign(b"another body"),
        sign(orjson.dumps(payload), secret="wrong"),
        "sha256=",
        "sha256=ABC",
        sign(b"x") + "=" + sign(b"x")[7:],  # split at the first "=" only (garm@v0.1.5 runner/runner.go:571)
    ):
        response = await send(world.http, payload, signature=signature)
        assert response.status_code == 401
        assert response.json() == NOT_AUTHORIZED
    assert await log.new() == []
    assert (await world.http.get("/api/v1/jobs")).json() == []


def _last_hex_digit_flipped(signature: str) -> str:
    return signature[:-1] + ("0" if signature[-1] != "0" else "1")


@pytest.mark.parametrize("algorithm", ["sha256", "sha1"])
async def test_signature_wrong_only_in_its_last_hex_digit_is_401(world: World, algorithm: str) -> None:
    """Every hex digit of the digest is checked, the last one included (a prefix compare would pass)."""
    log = ChangeLog(world.app)
    await log.mark()
    payload = job_payload(world, "queued", 1010)
    body = orjson.dumps(payload)
    good = sign(body, algorithm=algorithm)
    for signature in (_last_hex_digit_flipped(good), good[:-1], good + "0"):
        response = await send(world.http, body, signature=signature)
        assert response.status_code == 401, signature
        assert response.json() == NOT_AUTHORIZED
    assert await log.new() == []
    _empty_200(await send(world.http, body, signature=good))  # the same body, signed right, is taken
    await log.single("job", "create")


async def test_missing_signature_is_401(world: World) -> None:
    log = ChangeLog(world.app)
    await log.mark()
    response = await send(world.http, job_payload(world, "queued", 1007), signature="")
    assert response.status_code == 401
    assert response.json() == NOT_AUTHORIZED
    assert await log.new() == []


async def test_sha1_signature_is_accepted(world: World) -> None:
    """docs/garm-protocol.md#webhook-dispatch step 4: ``sha1=`` values are accepted in
    ``X-Hub-Signature-256``."""
    log = ChangeLog(world.app)
    await log.mark()
    body = orjson.dumps(job_payload(world, "queued", 1008))
    _empty_200(await send(world.http, body, signature=sign(body, algorithm="sha1")))
    await log.single("job", "create")


@pytest.mark.parametrize(
    ("signature", "details"),
    [
        ("deadbeef", "invalid signature format"),
        ("md5=abc", "unknown signature type"),
        ("SHA256=ab", "unknown signature type"),
    ],
)
async def test_malformed_signature_is_400(world: World, signature: str, details: str) -> None:
    response = await send(world.http, job_payload(world, "queued", 1009), signature=signature)
    assert response.status_code == 400
    assert response.json() == {"error": "Bad Request", "details": details}


async def test_unknown_repository_is_ignored(world: World) -> None:
    """docs/garm-protocol.md#webhook-dispatch step 3: an entity GARM does not manage is 200, even with a bad
    signature (no secret to check)."""
    log = ChangeLog(world.app)
    await log.mark()
    payload = job_payload(world, "queued", 1010)
    payload["repository"]["name"] = "unmanaged"
    _empty_200(await send(world.http, payload, signature="sha256=00"))
    assert await log.new() == []


async def test_repository_lookup_ignores_case(world: World) -> None:
    log = ChangeLog(world.app)
    await log.mark()
    payload = job_payload(world, "queued", 1011)
    payload["repository"]["owner"]["login"] = "OCTO"
    payload["repository"]["name"] = "Hello"
    _empty_200(await send(world.http, payload))
    job = orjson.loads((await log.single("job", "create")).payload)
    assert (job["RepositoryOwner"], job["RepositoryName"]) == ("OCTO", "Hello")


async def test_unknown_host_is_404(world: World) -> None:
    """docs/garm-protocol.md#webhook-dispatch step 2: ``scheme://host`` of ``html_url`` must equal an
    endpoint's ``base_url`` exactly."""
    for html_url in (
        "https://elsewhere.example.com/octo/hello/actions/runs/1",
        f"http://localhost:{world.github.port}/octo/hello",
        f"HTTP://127.0.0.1:{world.github.port}/octo/hello".replace("HTTP", "https"),
    ):
        response = await send(world.http, job_payload(world, "queued", 1012, html_url=html_url))
        assert response.status_code == 404
        assert response.json() == {"error": "Not Found", "details": "no endpoint found for job"}


async def test_github_com_endpoint_without_that_repository_is_ignored(world: World) -> None:
    """docs/garm-protocol.md#webhook-dispatch: an ``html_url`` on the built-in ``github.com`` endpoint, but no
    such repo there → 200."""
    log = ChangeLog(world.app)
    await log.mark()
    payload = job_payload(
        world, "queued", 1013, html_url="https://github.com/octo/hello/actions/runs/1/job/2"
    )
    _empty_200(await send(world.http, payload))
    assert await log.new() == []


@pytest.mark.parametrize("html_url", ["", "relative/path", "http://host:port/x", "https://github.com:x/"])
async def test_unparsable_html_url_is_400(world: World, html_url: str) -> None:
    """GARM answers 500 here (docs/compatibility.md): the route is unauthenticated, so it is a 400."""
    response = await send(world.http, job_payload(world, "queued", 1014, html_url=html_url))
    assert response.status_code == 400
    assert response.json() == {"error": "Bad Request", "details": "invalid job url"}


async def test_empty_body_is_missing_job_data(world: World) -> None:
    response = await send(world.http, b"", signature="")
    assert response.status_code == 400
    assert response.json() == {"error": "Bad Request", "details": "missing job data"}


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b'"text"', b'{"workflow_job": {"id": "abc"}}', b'{"workflow_job": {"id": 1.5}}'],
)
async def test_undecodable_body_is_invalid_request(world: World, body: bytes) -> None:
    response = await send(world.http, body)
    assert response.status_code == 400
    assert response.json() == {"error": "Bad Request", "details": "invalid request"}


@pytest.mark.parametrize("target", ["team", "Repository", "", None])
async def test_unknown_target_type_is_400(world: World, target: str | None) -> None:
    response = await send(world.http, job_payload(world, "queued", 1015), target=target)
    assert response.status_code == 400
    assert response.json() == {
        "error": "Bad Request",
        "details": f"cannot handle hook target type {target or ''}",
    }


async def test_unknown_organization_and_enterprise_are_ignored(world: World) -> None:
    log = ChangeLog(world.app)
    await log.mark()
    payload = job_payload(world, "queued", 1016)
    payload["organization"] = {"login": "octo"}
    payload["enterprise"] = {"slug": "octo"}
    for target in ("organization", "business"):
        _empty_200(await send(world.http, payload, target=target))
    assert await log.new() == []


async def test_job_without_matching_pool_is_not_recorded(world: World) -> None:
    """docs/garm-protocol.md#handling-a-job step 3: a new job is recorded only if an enabled pool's tags cover
    all its labels."""
    log = ChangeLog(world.app)
    await log.mark()
    for labels in (["self-hosted", "gpu"], []):
        _empty_200(await send(world.http, job_payload(world, "queued", 1017, labels=labels)))
    assert await log.new() == []


async def test_oversized_body_is_refused_before_anything_else(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pygarm refuses bodies over GitHub's 25 MB cap (lowered here) without buffering them."""
    from pygarm.api import webhooks

    monkeypatch.setattr(webhooks, "MAX_BODY_BYTES", 1024)
    log = ChangeLog(world.app)
    await log.mark()
    payload = job_payload(world, "queued", 1018, name="x" * 2048)
    response = await send(world.http, payload)
    assert (response.status_code, response.json()["details"]) == (400, "invalid request")
    assert await log.new() == []
    _empty_200(await send(world.http, job_payload(world, "queued", 1018)))
