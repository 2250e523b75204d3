"""CLI fixtures: a private ``$HOME`` (so garm-cli profiles never touch the real one) and a runner that
invokes ``pygarm`` in-process against a live server."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
import typer.main
import typer.testing
from typer.testing import CliRunner, Result

from pygarm.cli.main import app
from pygarm.client import Profile, ProfileFile
from pygarm.config import Settings
from tests.conftest import make_settings
from tests.live import LiveServer

PROFILE = "test"
PROVIDERS = [
    {"name": "lxd_local", "provider_type": "external", "description": "local"},
    {"name": "fake", "provider_type": "external"},
]
"""``[[provider]]`` entries of the live server, so that pools can be created."""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("PYGARM_PROFILE", "PYGARM_FORMAT", "APPDATA"):
        monkeypatch.delenv(name, raising=False)
    return home


class Cli:
    """``cli("repo", "list")`` runs ``pygarm repo list`` and, by default, insists on exit code 0."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, ok: bool = True) -> Result:
        result = self.runner.invoke(app, list(args), input=input)
        if ok:
            assert result.exit_code == 0, (
                f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return result

    def json(self, *args: str, input: str | None = None) -> Any:
        return json.loads(self(*args, "--format", "json", input=input).stdout)

    def fails(self, *args: str, input: str | None = None) -> str:
        """Run a command that must fail; returns its one stderr line."""
        result = self(*args, input=input, ok=False)
        assert result.exit_code == 1, (
            f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
        )
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        return lines[0]


_pygarm_command = functools.cache(typer.main.get_command)
"""``CliRunner.invoke`` turns the typer app into its click command on every call: 70 % of a CLI
test's CPU (typer reads every command's signature). ``pygarm`` itself does it once per process; the
tests do it once per test process, and reuse the command, which keeps no state between calls."""


@pytest.fixture
def cli(home: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setattr(typer.testing, "_get_command", _pygarm_command)
    return Cli()


@pytest.fixture
def logged_in(live_admin: tuple[LiveServer, str], home: Path) -> LiveServer:
    """A live, initialized server and an active garm-cli profile for it."""
    live, token = live_admin
    profiles = ProfileFile.load()
    profiles.add(Profile(PROFILE, live.base_url, token))
    profiles.save()
    return live


@pytest.fixture
def settings(database_section: dict[str, Any]) -> Settings:
    """The live server of the CLI tests knows two providers, so pools can be created."""
    return make_settings(database_section, provider=PROVIDERS)
