"""A committed change always has its event, even when the process dies right after the commit
(issue 3: "kill the server (SIGKILL) during a write load").

The server runs as a real child process. Writers update a pool through REST as fast as they can; the
server is SIGKILLed mid-load and started again on the same database. Every update that was answered
200 must be in the change log, and the log's last pool event must describe the pool's current state.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
from bench.server import ServerProcess, free_port, prepare, write_config

WRITERS = 4
LOAD_BEFORE_KILL_S = 1.5
IMAGE_NUMBER = re.compile(rb'"image":"img-(\d+)"')


def _pool_event_payloads(database: dict[str, Any]) -> list[bytes]:
    query = "SELECT payload FROM change_events WHERE entity_type = 'pool' ORDER BY seq"
    if database["backend"] == "sqlite3":
        with sqlite3.connect(database["sqlite3"]["db_file"]) as conn:
            return [bytes(row[0]) for row in conn.execute(query)]
    with psycopg.connect(database["postgresql"]["dsn"]) as conn:
        return [bytes(row[0]) for row in conn.execute(query)]


def _write_until_failure(
    base_url: str,
    headers: dict[str, str],
    pool_id: str,
    start: int,
    acknowledged: list[int],
    stop: threading.Event,
) -> None:
    number = start
    with httpx.Client(base_url=base_url, headers=headers, timeout=5) as http:
        while not stop.is_set():
            try:
                response = http.put(f"/api/v1/pools/{pool_id}", json={"image": f"img-{number}"})
            except httpx.TransportError:
                return
            if response.status_code == 200:
                acknowledged.append(number)
            number += WRITERS


def test_sigkill_during_writes_loses_no_committed_event(
    database_section: dict[str, Any], tmp_path: Path
) -> None:
    port = free_port()
    backend = "postgresql" if database_section["backend"] == "postgresql" else "sqlite"
    dsn = database_section.get("postgresql", {}).get("dsn", "")
    config = write_config(tmp_path, port, backend, dsn)
    if backend == "sqlite":
        database_section = {"backend": "sqlite3", "sqlite3": {"db_file": str(tmp_path / "garm.db")}}
    process = ServerProcess(config, port)
    try:
        server = process.start()
        prepare(server)
        acknowledged: list[int] = []
        stop = threading.Event()
        writers = [
            threading.Thread(
                target=_write_until_failure,
                args=(server.base_url, server.headers, server.pool_id, index + 1, acknowledged, stop),
            )
            for index in range(WRITERS)
        ]
        for writer in writers:
            writer.start()
        time.sleep(LOAD_BEFORE_KILL_S)
        process.kill()
        stop.set()
        for writer in writers:
            writer.join(timeout=10)
        assert len(acknowledged) > 50, "the load never got going"

        server = process.start()
        logged = {
            int(match.group(1))
            for payload in _pool_event_payloads(database_section)
            if (match := IMAGE_NUMBER.search(payload))
        }
        missing = sorted(set(acknowledged) - logged)
        assert not missing, f"{len(missing)} acknowledged updates have no event, e.g. {missing[:5]}"

        current = httpx.get(f"{server.base_url}/api/v1/pools/{server.pool_id}", headers=server.headers).json()
        last_logged = IMAGE_NUMBER.search(_pool_event_payloads(database_section)[-1])
        assert last_logged is not None
        assert current["image"] == f"img-{int(last_logged.group(1))}"
    finally:
        process.stop()
