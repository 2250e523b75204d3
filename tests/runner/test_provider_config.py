"""Provider configuration: executable resolution, load-time checks and the pass-through rule
(docs/garm-protocol.md#provider-configuration, docs/garm-protocol.md#provider-execution)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pygarm.runner.providers import ExternalProviderConfig, passthrough_environment, resolve_executable

from .conftest import TEST_PROVIDER


def test_passthrough_selects_by_prefix_and_never_garm() -> None:
    """docs/garm-protocol.md#provider-execution: name prefixes select variables; ``GARM*`` names are never
    passed; order is prefix order."""
    environ = {
        "PATH": "/bin",
        "AWS_KEY": "k",
        "GARM_X": "no",
        "GARMISH": "no",
        "AWS_REGION": "r",
        "LAB_A": "a",
    }
    assert list(passthrough_environment(["LAB_", "AWS_"], environ).items()) == [
        ("LAB_A", "a"),
        ("AWS_KEY", "k"),
        ("AWS_REGION", "r"),
    ]
    assert passthrough_environment(["GARM"], environ) == {}
    assert passthrough_environment([], environ) == {}


def test_passthrough_duplicate_match_keeps_last_position() -> None:
    """Go's exec keeps the last of duplicate entries; the value is the same either way."""
    environ = {"AWS_A": "1", "LAB_B": "2"}
    assert list(passthrough_environment(["AWS_", "LAB_", "AWS"], environ)) == ["LAB_B", "AWS_A"]


def test_resolve_executable() -> None:
    """docs/garm-protocol.md#provider-configuration: ``provider_executable`` wins over ``provider_dir``."""
    assert resolve_executable("/opt/p", "/dir") == "/opt/p"
    assert resolve_executable("", "/dir") == "/dir/garm-external-provider"


def test_validate_accepts_the_test_provider(tmp_path: Path) -> None:
    config_file = tmp_path / "c.json"
    config_file.write_text("{}")
    ExternalProviderConfig(
        name="p", provider_executable=str(TEST_PROVIDER), config_file=str(config_file)
    ).validate()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"provider_executable": "relative/bin"}, "executable path must be an absolute path"),
        ({"config_file": "relative.toml"}, "path to config file must be an absolute path"),
        ({"config_file": "/nonexistent/c.toml"}, "failed to access config file /nonexistent/c.toml"),
        ({"provider_executable": "/nonexistent/bin"}, "checking provider executable"),
        ({"name": ""}, "missing provider name"),
    ],
)
def test_validate_rejects(changes: dict[str, str], message: str) -> None:
    """docs/garm-protocol.md#provider-configuration: GARM refuses to start with these provider configs."""
    values = {"name": "p", "provider_executable": str(TEST_PROVIDER), **changes}
    with pytest.raises(ValueError, match=message):
        ExternalProviderConfig(**values).validate()  # type: ignore[arg-type]


def test_validate_rejects_non_executable(tmp_path: Path) -> None:
    script = tmp_path / "p"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    with pytest.raises(ValueError, match="is not executable"):
        ExternalProviderConfig(name="p", provider_executable=str(script)).validate()
