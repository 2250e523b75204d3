"""The SQLite database and its ``-wal``/``-shm`` files are readable by their owner only (issue 8 #13).

They hold bcrypt hashes and sealed secrets; created with the process umask (0644 usually) anyone on the
machine could copy them. The database file is created ``0600`` before SQLite opens it, and SQLite gives
the ``-wal`` and ``-shm`` files it creates the mode of the database file. Existing files with a looser
mode are tightened (with one warning each). The directory is left as it is (it may be shared, such as
``/tmp``); a group- or world-readable one is reported once, since the files in it are private anyway.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

PRIVATE_FILE_MODE = 0o600
SIDE_FILES = ("-wal", "-shm", "-journal")


def sqlite_path(url: str) -> Path | None:
    """The file a ``sqlite://`` URL names; None for an in-memory database."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def secure_sqlite_files(url: str) -> None:
    """Create the database file ``0600`` if it does not exist yet; tighten what exists."""
    path = sqlite_path(url)
    if path is None:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        pass
    else:
        os.close(fd)  # an empty file is an empty SQLite database
    for candidate in (path, *(path.with_name(path.name + suffix) for suffix in SIDE_FILES)):
        _tighten(candidate)
    directory_mode = stat.S_IMODE(path.parent.stat().st_mode)
    if directory_mode & 0o077 and not directory_mode & stat.S_ISVTX:
        log.warning(
            "the database directory %s has mode %o; pygarm keeps its files there 0600, but 0700 is safer",
            path.parent,
            directory_mode,
        )


def _tighten(path: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        try:
            path.chmod(PRIVATE_FILE_MODE)
        except OSError as exc:
            log.warning("cannot make %s private (mode %o): %s", path, mode, exc)
            return
        log.warning("%s had mode %o; made it 0600 (it holds password hashes and sealed secrets)", path, mode)
