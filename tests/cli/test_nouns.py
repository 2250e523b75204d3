"""Every noun's verbs through ``pygarm`` against a live server: endpoints, credentials, repositories,
organizations, enterprises, pools, runners, jobs, providers and users."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from pygarm.params.models import Job
from pygarm.store.instances import CreateInstanceParams
from tests.cli.conftest import Cli
from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME
from tests.live import LiveServer

PAT = "ghp_cli-test-token-never-printed"
WEBHOOK_SECRET = "cli-webhook-secret-never-printed"


def self_signed_pem(tmp_path: Path) -> tuple[Path, Path]:
    """A CA certificate and a PKCS#1 RSA key, as files (GHES CA bundle, GitHub App key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ghes.example.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "ca.pem", tmp_path / "app.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def add_pat_credentials(cli: Cli, name: str = "gh-pat", endpoint: str = "github.com") -> dict[str, Any]:
    result = cli("github", "credentials", "add", "--name", name, "--endpoint", endpoint, "--auth-type", "pat",
                 "--description", "cli test", "--format", "json", input=PAT + "\n")  # fmt: skip
    assert PAT not in result.output
    body: dict[str, Any] = json.loads(result.stdout)
    return body


def test_github_endpoints(cli: Cli, logged_in: LiveServer, tmp_path: Path) -> None:
    ca, _ = self_signed_pem(tmp_path)
    created = cli.json(
        "github", "endpoint", "create", "--name", "ghes", "--base-url", "https://ghes.example.com",
        "--api-base-url", "https://ghes.example.com/api/v3/", "--upload-url", "https://ghes.example.com/uploads/",
        "--description", "a GHES", "--ca-cert-path", str(ca),
    )  # fmt: skip
    assert created["name"] == "ghes" and created["ca_cert_bundle"]
    assert [e["name"] for e in cli.json("github", "endpoint", "list")] == ["github.com", "ghes"]
    assert "ghes.example.com" in cli("github", "endpoint", "ls").stdout
    assert cli.json("github", "endpoint", "show", "ghes")["description"] == "a GHES"
    updated = cli.json("github", "endpoint", "update", "ghes", "--description", "")
    assert updated["description"] == "" and updated["base_url"] == "https://ghes.example.com"
    cli("github", "endpoint", "delete", "ghes")
    assert [e["name"] for e in cli.json("github", "endpoint", "list")] == ["github.com"]
    assert (
        cli.fails("github", "endpoint", "delete", "github.com")
        == "error: Bad Request: invalid request (HTTP 400)"
    )
    line = cli.fails("github", "endpoint", "create", "--name", "x", "--base-url", "nope",
                     "--api-base-url", "https://x/", "--upload-url", "https://x/")  # fmt: skip
    assert "invalid base_url" in line


def test_github_credentials(cli: Cli, logged_in: LiveServer, tmp_path: Path) -> None:
    _, key = self_signed_pem(tmp_path)
    pat = add_pat_credentials(cli)
    assert pat["name"] == "gh-pat" and pat["auth-type"] == "pat"
    app = cli.json("github", "credentials", "add", "--name", "gh-app", "--endpoint", "github.com",
                   "--auth-type", "app", "--app-id", "1", "--app-installation-id", "2",
                   "--private-key-path", str(key))  # fmt: skip
    assert app["auth-type"] == "app"
    listed = cli.json("github", "credentials", "list")
    assert [c["name"] for c in listed] == ["gh-pat", "gh-app"]
    table = cli("github", "credentials", "list").stdout
    assert "gh-app" in table and PAT not in table
    shown = cli.json("github", "credentials", "show", str(pat["id"]))
    assert shown["description"] == "cli test"
    updated = cli("github", "credentials", "update", str(pat["id"]), "--description", "new",
                  "--pat-oauth-token", "-", "--format", "json", input="ghp_rotated\n")  # fmt: skip
    assert "ghp_rotated" not in updated.output and '"description": "new"' in updated.stdout
    line = cli.fails("github", "credentials", "update", str(app["id"]), "--pat-oauth-token", "x")
    assert "HTTP 400" in line
    line = cli.fails("github", "credentials", "add", "--name", "x", "--endpoint", "github.com",
                     "--auth-type", "app", "--app-id", "1")  # fmt: skip
    assert "needs --app-id" in line
    cli("github", "credentials", "delete", str(app["id"]))
    assert [c["name"] for c in cli.json("github", "credentials", "list")] == ["gh-pat"]


KINDS = [
    ("repo", "repository", ["--owner", "octo-org", "--name", "hello-world"], "octo-org/hello-world"),
    ("org", "organization", ["--name", "octo-org"], "octo-org"),
    ("enterprise", "enterprise", ["--name", "octo-ent"], "octo-ent"),
]


@pytest.mark.parametrize(("noun", "kind", "create_args", "display"), KINDS, ids=[k[0] for k in KINDS])
def test_entities(
    cli: Cli, logged_in: LiveServer, noun: str, kind: str, create_args: list[str], display: str
) -> None:
    add_pat_credentials(cli)
    result = cli(noun, "add", *create_args, "--credentials", "gh-pat", "--format", "json",
                 input=WEBHOOK_SECRET + "\n")  # fmt: skip
    assert WEBHOOK_SECRET not in result.output
    created = json.loads(result.stdout)
    assert created["credentials_name"] == "gh-pat" and created["pool_balancing_type"] == "roundrobin"
    assert [item["id"] for item in cli.json(noun, "list")] == [created["id"]]
    assert display.split("/")[-1] in cli(noun, "ls").stdout
    assert cli.json(noun, "show", created["id"])["id"] == created["id"]
    assert cli.json(noun, "show", display.upper())["id"] == created["id"]  # by name, case-insensitive
    updated = cli.json(noun, "update", display, "--pool-balancer-type", "pack")
    assert updated["pool_balancing_type"] == "pack"
    cli(noun, "update", created["id"], "--webhook-secret", "-", input="another-secret\n")
    assert "already exists" in cli.fails(noun, "add", *create_args, "--credentials", "gh-pat",
                                         "--webhook-secret", WEBHOOK_SECRET)  # fmt: skip
    assert cli.fails(noun, "show", "nope") == f"error: no {kind} named 'nope'"
    cli(noun, "delete", display)
    assert cli.json(noun, "list") == []


def test_pools(cli: Cli, logged_in: LiveServer) -> None:
    add_pat_credentials(cli)
    cli("repo", "add", "--owner", "octo-org", "--name", "hello-world", "--credentials", "gh-pat",
        "--webhook-secret", WEBHOOK_SECRET)  # fmt: skip
    pool = cli.json(
        "pool", "add", "--repo", "octo-org/hello-world", "--provider-name", "lxd_local",
        "--image", "ubuntu:22.04", "--flavor", "default", "--tags", "self-hosted, linux",
        "--max-runners", "3", "--min-idle-runners", "0", "--extra-specs", '{"disk": 20}',
        "--runner-group", "grp", "--priority", "5",
    )  # fmt: skip
    assert pool["repo_name"] == "octo-org/hello-world" and pool["extra_specs"] == {"disk": 20}
    assert sorted(tag["name"] for tag in pool["tags"]) == ["linux", "self-hosted"]
    assert pool["github-runner-group"] == "grp" and pool["priority"] == 5 and pool["enabled"] is False
    assert [p["id"] for p in cli.json("pool", "list", "--repo", "octo-org/hello-world")] == [pool["id"]]
    assert [p["id"] for p in cli.json("pool", "list")] == [pool["id"]]
    assert [p["id"] for p in cli.json("pool", "list", "--all")] == [pool["id"]]
    assert pool["id"] in cli("pool", "ls").stdout
    updated = cli.json("pool", "update", pool["id"], "--enabled", "--max-runners", "4", "--tags", "gpu")
    assert updated["enabled"] is True and updated["max_runners"] == 4
    assert [t["name"] for t in updated["tags"]] == ["gpu"]
    assert updated["image"] == "ubuntu:22.04" and updated["priority"] == 5  # untouched
    assert cli.json("pool", "update", pool["id"], "--disabled")["enabled"] is False
    shown = cli("pool", "show", pool["id"]).stdout
    assert "octo-org/hello-world" in shown and "lxd_local" in shown
    assert "give exactly one of" in cli.fails("pool", "add", "--provider-name", "x", "--image", "i",
                                              "--flavor", "f", "--tags", "t")  # fmt: skip
    assert "repo has pools defined" in cli.fails("repo", "delete", "octo-org/hello-world")
    cli("pool", "delete", pool["id"])
    assert cli.json("pool", "list") == []


def run_on_store(live: LiveServer, coro_factory: Any) -> Any:
    """Runners and jobs have no REST create: write them through the live server's store, as its pool
    managers and webhook handler would."""
    return asyncio.run(coro_factory(live.app.state.ctx.store))


def test_runners_jobs_providers(cli: Cli, logged_in: LiveServer) -> None:
    add_pat_credentials(cli)
    repo = cli.json("repo", "add", "--owner", "o", "--name", "r", "--credentials", "gh-pat",
                    "--webhook-secret", WEBHOOK_SECRET)  # fmt: skip
    pool = cli.json("pool", "add", "--repo", repo["id"], "--provider-name", "fake", "--image", "i",
                    "--flavor", "f", "--tags", "t")  # fmt: skip
    params = CreateInstanceParams(name="garm-cli01", status="running", runner_status="idle", os_type="linux")
    run_on_store(logged_in, lambda store: store.create_instance(pool["id"], params))
    for args in ([], [pool["id"]], ["--repo", "o/r"], ["--all"]):
        assert [i["name"] for i in cli.json("runner", "list", *args)] == ["garm-cli01"], args
    assert "garm-cli01" in cli("runner", "ls").stdout
    shown = cli.json("runner", "show", "garm-cli01")
    assert shown["status"] == "running" and shown["pool_id"] == pool["id"]
    assert "mutually exclusive" in cli.fails("runner", "list", pool["id"], "--all")
    assert "pool manager is not running" in cli.fails("runner", "delete", "garm-cli01")
    cli("runner", "delete", "garm-cli01", "--bypass-github-unauthorized", "--force-remove-runner")
    assert cli.json("runner", "show", "garm-cli01")["status"] == "pending_force_delete"

    job = Job(id=4242, run_id=1, action="queued", status="queued", name="build", repository_name="r",
              repository_owner="o", labels=["t"], repo_id=repo["id"])  # fmt: skip
    run_on_store(logged_in, lambda store: store.create_or_update_job(job))
    jobs = cli.json("job", "list")
    assert [(j["id"], j["name"], j["Labels"]) for j in jobs] == [(4242, "build", ["t"])]
    assert "o/r" in cli("job", "ls").stdout

    providers = cli.json("provider", "list")
    assert [p["name"] for p in providers] == ["lxd_local", "fake"]


def test_users(cli: Cli, logged_in: LiveServer) -> None:
    users = cli.json("user", "list")
    assert [u["username"] for u in users] == [ADMIN_USERNAME]
    assert cli.json("user", "show", ADMIN_USERNAME)["is_admin"] is True
    updated = cli.json("user", "update", ADMIN_USERNAME, "--full-name", "The Admin")
    assert updated["full_name"] == "The Admin"
    line = cli.fails("user", "update", users[0]["id"], "--disabled")
    assert "cannot disable the last enabled admin user" in line
    new_password = ADMIN_PASSWORD + "-rotated"
    result = cli("user", "set-password", ADMIN_USERNAME, input=new_password + "\n")
    assert new_password not in result.output
    # Older tokens stop working: the profile must log in again.
    assert "Authentication failed" in cli.fails("user", "list")
    cli("profile", "login", "-u", ADMIN_USERNAME, input=new_password + "\n")
    assert cli.json("user", "list")[0]["full_name"] == "The Admin"
