"""The external provider executor against the executable test provider
(docs/garm-protocol.md#external-providers)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from pygarm.params.provider import BootstrapInstance, RunnerApplicationDownload
from pygarm.runner.providers import Command, Provider, ProviderError

from .conftest import CONTROLLER_ID, POOL_ID, ProviderHarness


def bootstrap(name: str = "garm-abc", **changes: object) -> BootstrapInstance:
    values: dict[str, object] = {
        "name": name,
        "tools": [RunnerApplicationDownload(os="linux", architecture="x64", download_url="https://x/r.tgz")],
        "repo_url": "http://127.0.0.1:18080/octo/hello",
        "callback_url": "http://127.0.0.1:19997/api/v1/callbacks",
        "metadata_url": "http://127.0.0.1:19997/api/v1/metadata",
        "instance_token": "eyJ.instance.token",
        "arch": "amd64",
        "os_type": "linux",
        "flavor": "small",
        "image": "ubuntu:22.04",
        "pool_id": POOL_ID,
        "jit_config_enabled": True,
    }
    values.update(changes)
    return BootstrapInstance.model_validate(values)


def passthrough(harness: ProviderHarness) -> list[list[str]]:
    """What docs/garm-protocol.md#provider-execution passes through for prefixes ``TEST_PROVIDER_`` then
    ``LAB_``, in that order."""
    env = harness.environ
    return [[k, env[k]] for k in env if k.startswith("TEST_PROVIDER_")] + [["LAB_TEST", "lab-value"]]


def test_external_provider_satisfies_protocol(provider_harness: ProviderHarness) -> None:
    assert isinstance(provider_harness.provider(), Provider)
    assert provider_harness.provider().as_params().model_dump() == {
        "name": "fake",
        "type": "external",
        "description": "test provider",
    }


async def test_create_environment_is_exact(provider_harness: ProviderHarness) -> None:
    """docs/garm-protocol.md#provider-environment: replaced environment, GARM order, pool ID, then
    pass-through; no PATH/HOME, no GARM_* extras."""
    await provider_harness.provider().create_instance(bootstrap())
    record = provider_harness.last_invocation()
    assert record["command"] == "CreateInstance"
    assert record["environ"] == [
        ["GARM_COMMAND", "CreateInstance"],
        ["GARM_CONTROLLER_ID", CONTROLLER_ID],
        ["GARM_POOL_ID", POOL_ID],
        ["GARM_PROVIDER_CONFIG_FILE", ""],
        *passthrough(provider_harness),
    ]
    assert record["argv"][1:] == []  # docs/garm-protocol.md#provider-execution: no arguments


async def test_create_stdin_is_the_bootstrap_json(provider_harness: ProviderHarness) -> None:
    """docs/garm-protocol.md#bootstrapinstance: the stdin bytes are exactly the compact BootstrapInstance
    JSON, key order and types included."""
    params = bootstrap()
    await provider_harness.provider().create_instance(params)
    stdin = provider_harness.last_invocation()["stdin"]
    assert stdin.encode() == params.to_json()
    decoded = json.loads(stdin)
    assert list(decoded) == [
        "name", "tools", "repo_url", "callback-url", "metadata-url", "instance-token", "ssh-keys",
        "github-runner-group", "ca-cert-bundle", "arch", "os_type", "flavor", "image", "labels", "pool_id",
        "user_data_options", "jit_config_enabled",
    ]  # fmt: skip
    assert decoded["ssh-keys"] is None and decoded["labels"] is None and decoded["ca-cert-bundle"] is None
    assert decoded["jit_config_enabled"] is True
    assert decoded["user_data_options"] == {
        "disable_updates_on_boot": False,
        "extra_packages": None,
        "enable_boot_debug": False,
    }


@pytest.mark.parametrize(
    ("command", "target_key"),
    [
        (Command.DELETE_INSTANCE, "GARM_INSTANCE_ID"),
        (Command.GET_INSTANCE, "GARM_INSTANCE_ID"),
        (Command.START_INSTANCE, "GARM_INSTANCE_ID"),
        (Command.STOP_INSTANCE, "GARM_INSTANCE_ID"),
        (Command.LIST_INSTANCES, "GARM_POOL_ID"),
        (Command.REMOVE_ALL_INSTANCES, None),
    ],
)
async def test_environment_per_command(
    provider_harness: ProviderHarness, command: Command, target_key: str | None
) -> None:
    """docs/garm-protocol.md#provider-environment table: which variable each command gets, in which position;
    stdin is empty (docs/garm-protocol.md#provider-commands)."""
    provider = provider_harness.provider()
    await provider.create_instance(bootstrap())
    calls = {
        Command.DELETE_INSTANCE: lambda: provider.delete_instance("prov-garm-abc"),
        Command.GET_INSTANCE: lambda: provider.get_instance("prov-garm-abc"),
        Command.START_INSTANCE: lambda: provider.start_instance("prov-garm-abc"),
        Command.STOP_INSTANCE: lambda: provider.stop_instance("prov-garm-abc"),
        Command.LIST_INSTANCES: lambda: provider.list_instances(POOL_ID),
        Command.REMOVE_ALL_INSTANCES: provider.remove_all_instances,
    }
    await calls[command]()
    record = provider_harness.last_invocation()
    target = {"GARM_INSTANCE_ID": "prov-garm-abc", "GARM_POOL_ID": POOL_ID}
    expected = [["GARM_COMMAND", command.value], ["GARM_CONTROLLER_ID", CONTROLLER_ID]]
    if target_key is not None:
        expected.append([target_key, target[target_key]])
    expected += [["GARM_PROVIDER_CONFIG_FILE", ""], *passthrough(provider_harness)]
    assert record["command"] == command.value
    assert record["environ"] == expected
    assert record["stdin"] == ""


async def test_config_file_is_passed_verbatim(provider_harness: ProviderHarness, tmp_path: Path) -> None:
    """docs/garm-protocol.md#provider-configuration, docs/garm-protocol.md#provider-environment:
    ``config_file`` goes in GARM_PROVIDER_CONFIG_FILE; knobs may live in it."""
    config = tmp_path / "provider.json"
    config.write_text(json.dumps({"create_status": "stopped"}))
    provider_harness.config_file = str(config)
    instance = await provider_harness.provider().create_instance(bootstrap())
    assert instance.status == "stopped"
    assert ["GARM_PROVIDER_CONFIG_FILE", str(config)] in provider_harness.last_invocation()["environ"]


async def test_full_lifecycle(provider_harness: ProviderHarness) -> None:
    """docs/garm-protocol.md#minimal-provider: create → list → stop/start → get → delete by name → delete
    again is success (exit 30)."""
    provider = provider_harness.provider()
    created = await provider.create_instance(bootstrap())
    assert (created.provider_id, created.name, created.status) == ("prov-garm-abc", "garm-abc", "running")
    assert created.addresses is not None and created.addresses[0].address == "10.0.0.5"
    assert [i.name for i in await provider.list_instances(POOL_ID)] == ["garm-abc"]
    assert await provider.list_instances("other-pool") == []
    await provider.stop_instance("prov-garm-abc")
    assert (await provider.get_instance("prov-garm-abc")).status == "stopped"
    await provider.start_instance("prov-garm-abc")
    assert (await provider.get_instance("prov-garm-abc")).status == "running"
    # docs/garm-protocol.md#provider-environment: by name when there is no provider ID
    await provider.delete_instance("garm-abc")
    await provider.delete_instance("garm-abc")  # now exits 30: still success
    assert await provider.list_instances(POOL_ID) == []


async def test_create_failure_message_matches_garm(provider_harness: ProviderHarness) -> None:
    """docs/garm-protocol.md#provider-errors: non-zero exit → ProviderError with stdout+stderr in GARM's exact
    format."""
    provider_harness.knob("fail_create", "simulated failure")
    provider_harness.knob("stderr", "")
    provider = provider_harness.provider()
    with pytest.raises(ProviderError) as caught:
        await provider.create_instance(bootstrap())
    assert str(caught.value) == (
        f"provider binary {provider.executable} returned error: provider binary failed with stdout: ; "
        "stderr: simulated failure\n: exit status 1"
    )
    assert caught.value.exit_code == 1
    assert caught.value.stderr == b"simulated failure\n"
    assert "eyJ.instance.token" not in str(caught.value)  # stdin never appears in errors


async def test_exit_30_is_success_only_for_delete(provider_harness: ProviderHarness) -> None:
    """docs/garm-protocol.md#provider-errors: 30 on DeleteInstance is "already gone"; 30 elsewhere and 31 on
    delete are errors."""
    provider_harness.knob("exit_codes", "DeleteInstance=30,StartInstance=30")
    provider = provider_harness.provider()
    await provider.delete_instance("anything")
    with pytest.raises(ProviderError, match=r": exit status 30$"):
        await provider.start_instance("anything")
    provider_harness.knob("exit_codes", "DeleteInstance=31")
    with pytest.raises(ProviderError, match=r": exit status 31$"):
        await provider_harness.provider().delete_instance("anything")


async def test_stderr_is_ignored_on_success(provider_harness: ProviderHarness) -> None:
    """docs/garm-protocol.md#provider-execution: on success only stdout is parsed."""
    provider_harness.knob("stderr", "warning: noisy provider\n")
    instance = await provider_harness.provider().create_instance(bootstrap())
    assert instance.provider_id == "prov-garm-abc"


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (
            "booting...\n{}",
            "failed to decode response from binary: invalid character 'b' looking for beginning",
        ),
        ("", "failed to decode response from binary: unexpected end of JSON input"),
        ('{"name":"n","status":"running"}', "failed to validate result: missing provider ID"),
        ('{"provider_id":"p","status":"running"}', "failed to validate result: missing instance name"),
        (
            '{"provider_id":"p","name":"n","status":"active"}',
            "failed to validate result: invalid status returned (active)",
        ),
    ],
)
async def test_create_output_errors(provider_harness: ProviderHarness, output: str, message: str) -> None:
    """docs/garm-protocol.md#providerinstance, docs/garm-protocol.md#provider-errors: decode and validation
    failures keep GARM's texts."""
    provider_harness.knob("output_CreateInstance", output)
    with pytest.raises(ProviderError) as caught:
        await provider_harness.provider().create_instance(bootstrap())
    assert str(caught.value).startswith(message)


async def test_create_error_status_is_returned_not_raised(provider_harness: ProviderHarness) -> None:
    """docs/garm-protocol.md#provider-errors: a valid result with ``status: error`` is stored as-is, with its
    fault."""
    provider_harness.knob(
        "output_CreateInstance", '{"provider_id":"p","name":"n","status":"error","provider_fault":"Ym9vbQ=="}'
    )
    instance = await provider_harness.provider().create_instance(bootstrap())
    assert (instance.status, instance.provider_fault) == ("error", b"boom")


async def test_one_bad_list_element_fails_the_list(provider_harness: ProviderHarness) -> None:
    """docs/garm-protocol.md#minimal-provider item 4: every element must validate, or the whole call fails."""
    provider_harness.knob(
        "output_ListInstances",
        '[{"provider_id":"a","name":"a","status":"running"},{"provider_id":"b","name":"b"}]',
    )
    with pytest.raises(ProviderError, match=r"^failed to validate result: invalid status returned \(\)$"):
        await provider_harness.provider().list_instances(POOL_ID)


async def test_missing_executable_reports_exec_failure(
    provider_harness: ProviderHarness, tmp_path: Path
) -> None:
    """docs/garm-protocol.md#provider-execution: an exec failure is reported like Go's ``fork/exec`` error."""
    missing = str(tmp_path / "nope")
    with pytest.raises(ProviderError) as caught:
        await provider_harness.provider(executable=missing).delete_instance("x")
    assert str(caught.value) == (
        f"provider binary {missing} returned error: provider binary failed with stdout: ; stderr: : "
        f"fork/exec {missing}: no such file or directory"
    )


async def test_not_executable_reports_permission_denied(
    provider_harness: ProviderHarness, tmp_path: Path
) -> None:
    script = tmp_path / "provider.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    os.chmod(script, stat.S_IRUSR | stat.S_IWUSR)
    if os.access(script, os.X_OK):  # root can execute anything with an x bit; without one it cannot
        pytest.skip("running as a user that can execute non-executable files")
    with pytest.raises(ProviderError, match=r"fork/exec .*: permission denied$"):
        await provider_harness.provider(executable=str(script)).delete_instance("x")


async def test_killed_by_signal_is_reported_like_go(
    provider_harness: ProviderHarness, tmp_path: Path
) -> None:
    """docs/garm-protocol.md#provider-execution: a signal death reads ``signal: killed`` as Go's
    ``ProcessState`` prints it."""
    script = tmp_path / "provider.sh"
    script.write_text("#!/bin/sh\nkill -9 $$\n")
    script.chmod(0o755)
    with pytest.raises(ProviderError, match=r": signal: killed$") as caught:
        await provider_harness.provider(executable=str(script)).delete_instance("x")
    assert caught.value.exit_code == -9


async def test_provider_that_ignores_stdin_is_fine(provider_harness: ProviderHarness, tmp_path: Path) -> None:
    """docs/garm-protocol.md#provider-execution: a provider may exit without reading stdin (Go ignores the
    broken pipe)."""
    script = tmp_path / "provider.sh"
    script.write_text('#!/bin/sh\necho \'{"provider_id":"p","name":"n","status":"running"}\'\n')
    script.chmod(0o755)
    big = bootstrap(extra_specs={"blob": "x" * 1_000_000})  # larger than a pipe buffer
    instance = await provider_harness.provider(executable=str(script)).create_instance(big)
    assert instance.provider_id == "p"
