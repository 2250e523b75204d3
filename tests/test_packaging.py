"""pygarm installs like any Python service: ``python -m build`` makes an sdist and, from it, a wheel that
holds every file of ``src/pygarm`` (migrations, dashboard assets, ``pygarm.testing``) and the LICENSE;
installed into a fresh virtualenv, its ``pygarm`` command runs and its migrations build a database.

Offline and fast: the build runs without isolation (the dev extras bring ``build`` and ``setuptools``),
and the fresh virtualenv reuses this one's dependencies through a ``.pth`` line instead of downloading
them; the wheel itself is installed with ``--no-deps``."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "pygarm"


def run(*args: str | Path, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=540
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build`` on a copy of the project (the build writes egg-info next to the sources)."""
    work = tmp_path_factory.mktemp("build")
    project = work / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, project / name)
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", work / "dist", project)
    return work / "dist"


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    (found,) = dist.glob("pygarm-*-py3-none-any.whl")
    return found


def source_files() -> set[str]:
    return {
        path.relative_to(SOURCE.parent).as_posix()
        for path in SOURCE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def test_build_makes_an_sdist_and_a_wheel(dist: Path) -> None:
    assert sorted(p.name for p in dist.iterdir()) == ["pygarm-0.1.0-py3-none-any.whl", "pygarm-0.1.0.tar.gz"]


def test_the_wheel_holds_every_file_of_the_package_and_the_license(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read("pygarm-0.1.0.dist-info/METADATA").decode()
        license_text = archive.read("pygarm-0.1.0.dist-info/licenses/LICENSE").decode()
        entry_points = archive.read("pygarm-0.1.0.dist-info/entry_points.txt").decode()
    missing = source_files() - names
    assert not missing, f"not in the wheel: {sorted(missing)}"
    assert {"pygarm/store/migrations/env.py", "pygarm/testing/fake_github.py"} <= names
    assert "License-Expression: Apache-2.0" in metadata
    assert license_text == (ROOT / "LICENSE").read_text()
    assert "pygarm = pygarm.cli.main:main" in entry_points


def test_license_is_the_apache_2_0_text_pyproject_names() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert 'license = "Apache-2.0"' in (ROOT / "pyproject.toml").read_text()
    assert text.lstrip().startswith("Apache License\n                           Version 2.0, January 2004")
    assert "END OF TERMS AND CONDITIONS" in text


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtualenv with the wheel installed; its dependencies come from this one."""
    target = tmp_path_factory.mktemp("venv") / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    run(base, "-m", "venv", "--without-pip", target)
    python = target / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").strip())
    # This venv's packages, after the new venv's own: the wheel's pygarm wins over the editable one
    # (a plain path line does not run the editable install's .pth hook).
    (site / "reuse-dev-venv.pth").write_text(sysconfig.get_path("purelib") + "\n")
    pip = (sys.executable, "-m", "pip", "--python", python)
    run(*pip, "install", "--no-deps", "--no-index", "--quiet", wheel)
    yield target


def test_installed_pygarm_runs_from_the_wheel(venv: Path) -> None:
    location = run(venv / "bin" / "python", "-c", "import pygarm; print(pygarm.__file__)").strip()
    assert Path(location).is_relative_to(venv), location
    version = "pygarm 0.1.0 (GARM v0.1.5 compatible)\n"
    assert run(venv / "bin" / "pygarm", "--version") == version
    assert run(venv / "bin" / "python", "-m", "pygarm", "--version") == version


def test_installed_migrations_build_a_database(venv: Path, tmp_path: Path) -> None:
    db = tmp_path / "garm.db"
    script = (
        "import sqlalchemy, pygarm.store.migrate as m;"
        f"m.upgrade_to_head(sqlalchemy.create_engine('sqlite:///{db}'));"
        "print(m.__file__)"
    )
    assert Path(run(venv / "bin" / "python", "-c", script).strip()).is_relative_to(venv)
    with sqlite3.connect(db) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert {"repositories", "pools", "instances", "change_events"} <= tables
    assert revision == ScriptDirectory(str(SOURCE / "store" / "migrations")).get_current_head()
