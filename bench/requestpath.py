"""CPU of ``PUT /api/v1/pools/{id}`` inside the server process, without sockets (docs/performance.md).

Builds the app with ``create_app`` (SQLite, the config of ``bench/server.py``), runs its lifespan, prepares
a pool through ``httpx.ASGITransport``, then calls the ASGI app directly with N sequential PUTs and prints
the CPU per update of the event loop's thread and of the writer thread (from ``/proc/self/task``). CPU
time, unlike a rate, stays comparable while other work loads the machine; run two trees back to back
with ``PYTHONPATH=<tree>/src:<tree>`` to compare them.

    .venv/bin/python -m bench.requestpath [--updates 3000] [--profile]

``--profile`` adds a cProfile of the event loop's thread (thread CPU clock) and Python calls per PUT.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.server import ADMIN, free_port, write_config
from pygarm.api.app import create_app
from pygarm.config import load_settings

WARM_UP = 300


def thread_cpu_seconds() -> dict[int, float]:
    """User + system CPU of each thread of this process, by thread id."""
    tick = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[int(tid)] = (int(fields[11]) + int(fields[12])) / tick
    return seconds


async def prepare(app: Any) -> tuple[str, str]:
    """First run, login, credentials, a repository and its pool: the token and the pool's id."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench/api/v1") as http:
        (await http.post("/first-run", json=ADMIN)).raise_for_status()
        login = await http.post(
            "/auth/login", json={"username": ADMIN["username"], "password": ADMIN["password"]}
        )
        token = str(login.raise_for_status().json()["token"])
        http.headers["Authorization"] = f"Bearer {token}"
        credentials = {"oauth2_token": "not-a-real-token"}
        body = {"name": "bench", "description": "bench", "endpoint": "github.com", "auth_type": "pat"}
        (await http.post("/github/credentials", json={**body, "pat": credentials})).raise_for_status()
        repo = await http.post(
            "/repositories",
            json={"owner": "bench", "name": "repo", "credentials_name": "bench", "webhook_secret": "s3cr3t"},
        )
        pool = await http.post(
            f"/repositories/{repo.raise_for_status().json()['id']}/pools",
            json={"provider_name": "bench", "max_runners": 10, "min_idle_runners": 0, "image": "img-0",
                  "flavor": "small", "os_type": "linux", "os_arch": "amd64", "tags": ["bench"]},
        )  # fmt: skip
        return token, str(pool.raise_for_status().json()["id"])


async def put(app: Any, path: str, token: str, number: int) -> int:
    """One ``PUT`` straight into the ASGI app, as uvicorn would call it; returns the status."""
    body = b'{"image":"img-%d"}' % number
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 9997),
        "state": {},
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = 0

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # no disconnect while the request runs
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def run(directory: Path, updates: int, profile: bool) -> None:
    app = create_app(load_settings(write_config(directory, free_port(), "sqlite", "")))
    async with app.router.lifespan_context(app):
        token, pool_id = await prepare(app)
        path = f"/api/v1/pools/{pool_id}"
        for number in range(WARM_UP):
            assert await put(app, path, token, number) == 200
        profiler = cProfile.Profile(time.thread_time) if profile else None
        before, started = thread_cpu_seconds(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        for number in range(WARM_UP, WARM_UP + updates):
            assert await put(app, path, token, number) == 200
        if profiler is not None:
            profiler.disable()
        elapsed, after = time.perf_counter() - started, thread_cpu_seconds()
    loop_thread = threading.get_native_id()
    spent = {tid: after[tid] - before.get(tid, 0.0) for tid in after}
    loop_cpu = spent.pop(loop_thread, 0.0)
    others = sum(spent.values())
    print(f"== {updates} sequential PUT /api/v1/pools/{{id}} in-process (no sockets), SQLite")
    per_update = {name: value / updates * 1e3 for name, value in (("loop", loop_cpu), ("others", others))}
    print(
        f"   CPU per update: event loop thread {per_update['loop']:.3f} ms, other threads (the writer)"
        f" {per_update['others']:.3f} ms, total {sum(per_update.values()):.3f} ms;"
        f" wall {elapsed / updates * 1e3:.3f} ms"
    )
    if profiler is not None:
        stats = pstats.Stats(profiler)
        calls = sum(entry[1] for entry in stats.stats.values())  # type: ignore[attr-defined]
        print(f"   Python calls per update on the event loop thread: {calls / updates:.0f}")
        stats.sort_stats("cumulative").print_stats(40)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--updates", type=int, default=3000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pygarm-bench-") as tmp:
        asyncio.run(run(Path(tmp), args.updates, args.profile))


if __name__ == "__main__":
    main()
