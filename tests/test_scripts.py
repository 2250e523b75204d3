"""``scripts/_venv.sh``: ``./scripts/serve`` and ``./scripts/test`` reinstall the package only when
``pyproject.toml`` changed (or extras are asked for that the last install lacks), so starting is fast."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ensure(project: Path, extras: str) -> list[str]:
    """Run ``ensure_venv extras`` in ``project`` with a stand-in python; return the pip calls it made."""
    log = project / "pip.log"
    log.unlink(missing_ok=True)
    subprocess.run(
        ["bash", "-c", f'source "{ROOT}/scripts/_venv.sh" && ensure_venv "{extras}"'],
        cwd=project,
        check=True,
    )
    return log.read_text().splitlines() if log.exists() else []


def make_project(tmp_path: Path) -> Path:
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\necho "$*" >> "{tmp_path}/pip.log"\n')
    python.chmod(0o755)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    return tmp_path


def test_installs_once_then_only_when_pyproject_changes(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    upgrade = "-m pip install --quiet --upgrade pip"
    assert ensure(project, "dev") == [
        upgrade,
        "-m pip install --quiet -e .[dev]",
    ]
    assert ensure(project, "dev") == []
    assert ensure(project, "") == [], "a dev install serves ./scripts/serve as it is"
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\nversion = '2'\n")
    assert ensure(project, "") == [upgrade, "-m pip install --quiet -e ."]
    assert ensure(project, "") == []
    assert ensure(project, "dev")[-1] == "-m pip install --quiet -e .[dev]", "dev extras missing: install"
