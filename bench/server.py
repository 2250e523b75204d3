"""Start a pygarm server in its own process for benchmarks, and prepare what the benchmarks update.

The server runs in a separate process (as in production) so that the load generator and the server do
not share an interpreter; on a 2-core machine each gets roughly one core.
"""

from __future__ import annotations

import os
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

ADMIN = {"username": "admin", "email": "admin@example.com", "password": "Vq7#mZ2!pLx9@rT4-garm-bench"}
STARTUP_TIMEOUT_S = float(os.environ.get("PYGARM_BENCH_STARTUP_S", "60"))


def raise_fd_limit() -> None:
    """Thousands of sockets need more than the usual soft limit of 1024 descriptors."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class BenchServer:
    base_url: str
    ws_url: str
    pid: int
    token: str = ""
    pool_id: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")


def write_config(directory: Path, port: int, backend: str, postgres_dsn: str) -> Path:
    provider = directory / "provider.sh"
    provider.write_text("#!/bin/sh\nexit 0\n")
    provider.chmod(0o755)
    if backend == "postgresql":
        database = f'backend = "postgresql"\n  [database.postgresql]\n  dsn = "{postgres_dsn}"\n'
    else:
        database = f'backend = "sqlite3"\n  [database.sqlite3]\n  db_file = "{directory / "garm.db"}"\n'
    path = directory / "config.toml"
    path.write_text(
        f"""[default]
callback_url = "http://127.0.0.1:{port}/api/v1/callbacks"
metadata_url = "http://127.0.0.1:{port}/api/v1/metadata"
webhook_url = "http://127.0.0.1:{port}/webhooks"

[logging]
log_level = "warn"

[apiserver]
bind = "127.0.0.1"
port = {port}

[jwt_auth]
secret = "{secrets.token_hex(32)}"
time_to_live = "24h"

[pool_manager]
enabled = false

[events]
queue_limit = 100000

[database]
passphrase = "{secrets.token_hex(16)}"
{database}
[[provider]]
name = "bench"
provider_type = "external"
description = "does nothing"
  [provider.external]
  provider_executable = "{provider}"
  config_file = "/dev/null"
"""
    )
    return path


class ServerProcess:
    """``pygarm serve --config FILE`` as a child process that can be killed and started again."""

    def __init__(self, config: Path, port: int, python: str = sys.executable) -> None:
        """``python``: the interpreter that runs the server (another checkout's venv runs its code)."""
        self.config = config
        self.python = python
        self.server = BenchServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", 0)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> BenchServer:
        log = open(self.config.parent / "server.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [self.python, "-m", "pygarm.cli.main", "serve", "--config", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        self.server.pid = self.process.pid
        _wait_until_up(self.server, self.process)
        return self.server

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@contextmanager
def postgres_schema(postgres_dsn: str) -> Iterator[str]:
    """A fresh schema for one run; yields the DSN that uses it."""
    schema = f"bench_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in postgres_dsn else "?"
    try:
        yield f"{postgres_dsn}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@contextmanager
def bench_server(backend: str = "sqlite", postgres_dsn: str = "") -> Iterator[BenchServer]:
    """Run ``pygarm serve`` in a child process, initialized, with one repository pool to update."""
    raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="pygarm-bench-") as tmp, ExitStack() as stack:
        if backend == "postgresql":
            postgres_dsn = stack.enter_context(postgres_schema(postgres_dsn))
        port = free_port()
        process = ServerProcess(write_config(Path(tmp), port, backend, postgres_dsn), port)
        try:
            server = process.start()
            prepare(server)
            yield server
        finally:
            process.stop()


def _wait_until_up(server: BenchServer, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("server exited during start-up")
        try:
            if httpx.get(server.base_url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not start")


def prepare(server: BenchServer, github_url: str = "", pat: str = "not-a-real-token") -> None:
    """Admin, credentials, repository ``bench/repo`` and a disabled pool; with ``github_url``, the
    credentials belong to a new endpoint there (GARM's pool manager then talks to that fake GitHub)."""
    endpoint = "github.com"
    with httpx.Client(base_url=server.base_url + "/api/v1", timeout=30) as http:
        http.post("/first-run", json=ADMIN).raise_for_status()
        login = http.post("/auth/login", json={"username": ADMIN["username"], "password": ADMIN["password"]})
        server.token = login.raise_for_status().json()["token"]
        http.headers.update(server.headers)
        urls = {  # GARM v0.1.5 answers 409 urls_required to everything else until these are set
            "metadata_url": f"{server.base_url}/api/v1/metadata",
            "callback_url": f"{server.base_url}/api/v1/callbacks",
            "webhook_url": f"{server.base_url}/webhooks",
        }
        http.put("/controller", json=urls).raise_for_status()
        if github_url:
            endpoint = "fake-github"
            http.post(
                "/github/endpoints",
                json={
                    "name": endpoint,
                    "description": "pygarm's fake GitHub",
                    "api_base_url": github_url + "/",
                    "upload_base_url": github_url + "/",
                    "base_url": github_url,
                },
            ).raise_for_status()
        http.post(
            "/github/credentials",
            json={
                "name": "bench",
                "description": "bench",
                "endpoint": endpoint,
                "auth_type": "pat",
                "pat": {"oauth2_token": pat},
            },
        ).raise_for_status()
        repo = http.post(
            "/repositories",
            json={"owner": "bench", "name": "repo", "credentials_name": "bench", "webhook_secret": "s3cr3t"},
        ).raise_for_status()
        pool = http.post(
            f"/repositories/{repo.json()['id']}/pools",
            json={
                "provider_name": "bench",
                "max_runners": 10,
                "min_idle_runners": 0,
                "image": "img-0",
                "flavor": "small",
                "os_type": "linux",
                "os_arch": "amd64",
                "tags": ["bench"],
                "enabled": False,
            },
        ).raise_for_status()
        server.pool_id = pool.json()["id"]
