"""What a real pool-manager run hands the provider executable: exactly the environment of
docs/garm-protocol.md#provider-environment and the ``BootstrapInstance`` of
docs/garm-protocol.md#bootstrapinstance (keys, order, ``null``s), with a valid instance JWT
(docs/garm-protocol.md#instance-token)."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest

from pygarm.config import Settings
from pygarm.runner.instance_token import InstanceTokenService
from pygarm.testing.fake_github import DEFAULT_TOOLS
from tests.conftest import CONTROLLER_URLS
from tests.lifecycle.support import Garm, ProviderFiles, eventually, only_instance

pytestmark = pytest.mark.timeout(60)

BOOTSTRAP_KEYS = [
    "name",
    "tools",
    "repo_url",
    "callback-url",
    "metadata-url",
    "instance-token",
    "ssh-keys",
    "extra_specs",
    "github-runner-group",
    "ca-cert-bundle",
    "arch",
    "os_type",
    "flavor",
    "image",
    "labels",
    "pool_id",
    "user_data_options",
    "jit_config_enabled",
]
CLAIM_KEYS = ["id", "name", "provider_id", "scope", "entity", "create_attempt", "iss", "exp"]
TOKEN_LIFETIME = (20 + 5) * 60  # pool runner_bootstrap_timeout (default 20 min) + GARM's 5-min reap interval


@pytest.mark.provider_env(TEST_PROVIDER_NOTE="passed through", UNRELATED_VAR="not passed")
async def test_provider_gets_garms_environment_and_stdin(
    garm: Garm, provider_files: ProviderFiles, settings: Settings
) -> None:
    await garm.github_setup()
    repo = await garm.create_repo()
    await eventually(lambda: garm.repo_running(repo["id"]), what="running")
    pool = await garm.create_pool(repo["id"], min_idle_runners=1, extra_specs={"foo": "bar"})

    async def create_call() -> dict[str, Any] | None:
        found = provider_files.invocations("CreateInstance")
        return found[0] if found else None

    create = await eventually(create_call, what="CreateInstance")
    controller = await garm.call("GET", "/controller")
    controller_id = controller["controller_id"]
    assert create["argv"][1:] == []  # no arguments, only the program
    assert create["environ"] == [
        ["GARM_COMMAND", "CreateInstance"],
        ["GARM_CONTROLLER_ID", controller_id],
        ["GARM_POOL_ID", pool["id"]],
        ["GARM_PROVIDER_CONFIG_FILE", str(provider_files.config_file)],
        ["TEST_PROVIDER_NOTE", "passed through"],
    ]
    assert not create["stdin"].endswith("\n")
    bootstrap = json.loads(create["stdin"])
    assert list(bootstrap) == BOOTSTRAP_KEYS
    instances = [await only_instance(garm, pool["id"], "running")]  # the create has been recorded too
    name = instances[0]["name"]
    assert bootstrap == {
        "name": name,
        "tools": DEFAULT_TOOLS,
        "repo_url": f"{garm.github_base_url}/octo/hello",
        "callback-url": CONTROLLER_URLS["callback_url"],
        "metadata-url": CONTROLLER_URLS["metadata_url"],
        "instance-token": bootstrap["instance-token"],
        "ssh-keys": None,
        "extra_specs": {"foo": "bar"},
        "github-runner-group": "",
        "ca-cert-bundle": None,
        "arch": "amd64",
        "os_type": "linux",
        "flavor": "small",
        "image": "ubuntu:22.04",
        "labels": None,
        "pool_id": pool["id"],
        "user_data_options": {
            "disable_updates_on_boot": False,
            "extra_packages": None,
            "enable_boot_debug": False,
        },
        "jit_config_enabled": True,
    }
    token = bootstrap["instance-token"]
    claims = InstanceTokenService(settings.jwt_auth.secret).verify(token)
    assert (claims.name, claims.pool_id, claims.scope, claims.entity, claims.create_attempt) == (
        name,
        pool["id"],
        "repository",
        "octo/hello",
        0,
    )
    assert claims.id == instances[0]["id"]
    assert claims.expires_at is not None and abs(claims.expires_at - time.time() - TOKEN_LIFETIME) < 30
    assert list(jwt.decode(token, options={"verify_signature": False})) == CLAIM_KEYS

    await garm.call("DELETE", f"/instances/{name}?bypassGHUnauthorized=true")

    async def delete_call() -> dict[str, Any] | None:
        found = provider_files.invocations("DeleteInstance")
        return found[0] if found else None

    delete = await eventually(delete_call, what="DeleteInstance")
    assert delete["stdin"] == ""
    assert delete["environ"] == [
        ["GARM_COMMAND", "DeleteInstance"],
        ["GARM_CONTROLLER_ID", controller_id],
        ["GARM_INSTANCE_ID", f"prov-{name}"],
        ["GARM_PROVIDER_CONFIG_FILE", str(provider_files.config_file)],
        ["TEST_PROVIDER_NOTE", "passed through"],
    ]
