"""Files holding secrets are private from their creation on (issue 8 #13): the SQLite database and its
``-wal``/``-shm`` (bcrypt hashes, sealed secrets) used to be created 0644, the generated config was
written before its chmod, and an existing data directory kept 0755."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import pygarm.config
from pygarm.api.app import create_app
from pygarm.config import ensure_default_config
from tests.conftest import TEST_PASSPHRASE, initialize, make_settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


async def run_server_once(db_file: Path, *, first: bool = True) -> dict[str, int]:
    """Start the app on ``db_file``, initialize it, and return the modes of the SQLite files while it
    runs (``-wal`` and ``-shm`` exist only while connections are open)."""
    settings = make_settings(
        {"backend": "sqlite3", "passphrase": TEST_PASSPHRASE, "sqlite3": {"db_file": str(db_file)}}
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9997") as http:
            if first:
                await initialize(http)
            else:
                assert (await http.get("/api/v1/controller-info")).status_code == 401
        return {suffix: mode(Path(f"{db_file}{suffix}")) for suffix in ("", "-wal", "-shm")}


@pytest.mark.usefixtures("usual_umask")
async def test_a_new_database_and_its_wal_and_shm_are_created_0600(tmp_path: Path) -> None:
    assert await run_server_once(tmp_path / "garm.db") == {"": 0o600, "-wal": 0o600, "-shm": 0o600}


@pytest.mark.usefixtures("usual_umask")
async def test_existing_world_readable_database_files_are_tightened(tmp_path: Path) -> None:
    db_file = tmp_path / "garm.db"
    await run_server_once(db_file)
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{db_file}{suffix}")
        path.touch()
        path.chmod(0o644)
    assert await run_server_once(db_file, first=False) == {"": 0o600, "-wal": 0o600, "-shm": 0o600}


def test_generated_config_is_0600_from_its_first_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a umask of 0 and every later chmod of a file disabled, only the mode given at creation counts."""
    tightened: list[Path] = []
    real_chmod = Path.chmod

    def chmod(self: Path, file_mode: int, **kwargs: object) -> None:
        if self.is_dir():
            real_chmod(self, file_mode)
        else:
            tightened.append(self)

    monkeypatch.setattr(pygarm.config.Path, "chmod", chmod)
    monkeypatch.setattr(pygarm.config.os, "chmod", lambda *_args, **_kwargs: None, raising=False)
    previous = os.umask(0)
    try:
        created = ensure_default_config(tmp_path / "data")
    finally:
        os.umask(previous)
    assert created.created and tightened == []
    assert mode(created.path) == 0o600


@pytest.mark.usefixtures("usual_umask")
def test_an_existing_data_directory_is_tightened_to_0700(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    ensure_default_config(data_dir)
    assert mode(data_dir) == 0o700
    data_dir.chmod(0o755)  # a later start with the config already there tightens it too
    assert ensure_default_config(data_dir).created is False
    assert mode(data_dir) == 0o700


@pytest.mark.usefixtures("usual_umask")
def test_a_new_data_directory_is_0700(tmp_path: Path) -> None:
    created = ensure_default_config(tmp_path / "new" / "data")
    assert mode(created.path.parent) == 0o700
    assert mode(created.path) == 0o600


@pytest.mark.usefixtures("usual_umask")
def test_a_new_log_file_is_created_0600_like_garms(tmp_path: Path) -> None:
    """GARM's log writer (lumberjack) creates a new log file 0600; an existing one keeps its mode."""
    import logging

    from pygarm.logsetup import configure_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    log_file = tmp_path / "garm.log"
    settings = make_settings(
        {
            "backend": "sqlite3",
            "passphrase": TEST_PASSPHRASE,
            "sqlite3": {"db_file": str(tmp_path / "garm.db")},
        },
        logging={"log_file": str(log_file)},
    )
    try:
        configure_logging(settings)
        logging.getLogger("pygarm.test").warning("hello")
        assert mode(log_file) == 0o600 and "hello" in log_file.read_text()
        log_file.chmod(0o640)
        configure_logging(settings)
        assert mode(log_file) == 0o640
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:], root.level = saved
