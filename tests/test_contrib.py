"""``contrib/``: the Dockerfile, the compose file with PostgreSQL, the systemd unit and their example
configs agree with each other and with pygarm; the unit's ``ExecStart`` really serves ``/healthz``.

No container runtime runs here: the Dockerfile and the compose file are parsed and checked (instructions,
paths, ports, users); the unit is checked by ``systemd-analyze verify`` and its command is run."""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from pygarm.config import ConfigError, load_settings, parse_go_duration
from tests.live import free_port

ROOT = Path(__file__).resolve().parents[1]
CONTRIB = ROOT / "contrib"
CONTAINER_CONFIG = "/etc/garm/config.toml"
FILLED = {
    'secret = ""': 'secret = "a0c4b8d2e6f1a3b5c7d9e0f2a4b6c8d0e1f3a5b7c9d2e4f6a8b0c1d3e5f7a9b2"',
    'passphrase = "CHANGE-ME"': 'passphrase = "Yq3vT8kP2mW6zR1xN5bH9cJ4fL7dS0gA"',
}


def instructions(path: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of a Dockerfile: comments dropped, continuation lines joined."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "a continuation line at the end"
    parsed = []
    for line in logical:
        word, _, rest = line.partition(" ")
        parsed.append((word.upper(), rest.strip()))
    return parsed


def final_stage(parsed: list[tuple[str, str]]) -> list[tuple[str, str]]:
    start = max(i for i, (word, _) in enumerate(parsed) if word == "FROM")
    return parsed[start:]


def exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), arguments
    return value


def filled(text: str) -> str:
    for placeholder, value in FILLED.items():
        assert placeholder in text
        text = text.replace(placeholder, value)
    return text


# --- Dockerfile ---------------------------------------------------------------------------------------


def test_dockerfile_builds_from_pinned_images_and_copies_what_exists() -> None:
    parsed = instructions(CONTRIB / "Dockerfile")
    assert parsed[0][0] == "FROM"
    known = {"FROM", "WORKDIR", "COPY", "RUN", "USER", "VOLUME", "EXPOSE", "HEALTHCHECK", "STOPSIGNAL",
             "ENTRYPOINT", "CMD", "ENV", "ARG", "LABEL"}  # fmt: skip
    assert {word for word, _ in parsed} <= known
    for word, arguments in parsed:
        if word == "FROM":
            image = arguments.split()[0]
            assert ":" in image and not image.endswith(":latest"), f"unpinned base image {image}"
        elif word == "COPY" and not arguments.startswith("--from="):
            *sources, _ = arguments.split()
            for source in sources:  # relative to the build context, the repository root
                assert (ROOT / source).exists(), source
        elif word == "RUN" and "pip install" in arguments:
            assert "--no-cache-dir" in arguments, arguments
    assert not any(word == "ADD" for word, _ in parsed)


def test_dockerfile_runs_pygarm_serve_unprivileged() -> None:
    stage = dict(final_stage(instructions(CONTRIB / "Dockerfile")))
    assert stage["USER"] not in ("root", "0")
    assert exec_form(stage["ENTRYPOINT"]) + exec_form(stage["CMD"]) == [
        "pygarm", "serve", "--config", CONTAINER_CONFIG,
    ]  # fmt: skip
    assert stage["STOPSIGNAL"] == "SIGTERM"
    port = int(stage["EXPOSE"])
    assert port == load_settings_text((CONTRIB / "config.compose.toml").read_text()).apiserver.port
    health = stage["HEALTHCHECK"]
    probe = exec_form(health[health.index("CMD") + 3 :].strip())
    assert f"http://127.0.0.1:{port}/healthz" in probe[-1]


def load_settings_text(text: str, tmp: Path | None = None) -> Any:
    path = (tmp or Path(os.environ.get("TMPDIR", "/tmp"))) / f"pygarm-contrib-{os.getpid()}.toml"
    path.write_text(filled(text))
    try:
        return load_settings(path)
    finally:
        path.unlink()


# --- compose ------------------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((CONTRIB / "compose.yaml").read_text())
    return document


def test_compose_builds_this_dockerfile_and_waits_for_postgres() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "pygarm"}
    pygarm, postgres = services["pygarm"], services["postgres"]
    context = (CONTRIB / pygarm["build"]["context"]).resolve()
    assert context == ROOT and (context / pygarm["build"]["dockerfile"]).resolve() == CONTRIB / "Dockerfile"
    assert pygarm["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert ":" in postgres["image"] and not postgres["image"].endswith(":latest")
    assert pygarm["command"] == ["serve", "--config", CONTAINER_CONFIG]
    assert f"./config.toml:{CONTAINER_CONFIG}:ro" in pygarm["volumes"]
    assert all("ports" not in service for name, service in services.items() if name != "pygarm")


def test_compose_config_matches_the_services() -> None:
    services = compose()["services"]
    settings = load_settings_text((CONTRIB / "config.compose.toml").read_text())
    assert settings.database.backend == "postgresql" and settings.apiserver.bind == "0.0.0.0"
    dsn = urlsplit(settings.database.postgresql.dsn)
    environment = services["postgres"]["environment"]
    assert dsn.hostname == "postgres" and dsn.port == 5432
    assert dsn.username == environment["POSTGRES_USER"] and dsn.path == "/" + environment["POSTGRES_DB"]
    assert environment["POSTGRES_PASSWORD"].startswith("${PYGARM_DB_PASSWORD:?")  # never a literal
    (published,) = services["pygarm"]["ports"]
    host, host_port, container_port = published.split(":")
    assert host == "127.0.0.1" and int(container_port) == settings.apiserver.port == int(host_port)


@pytest.mark.parametrize("name", ["config.compose.toml", "config.systemd.toml"])
def test_an_unedited_example_config_refuses_to_start(name: str, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    shutil.copy(CONTRIB / name, path)
    with pytest.raises(ConfigError, match=r"jwt_auth\.secret: .*must not be empty"):
        load_settings(path)
    path.write_text((CONTRIB / name).read_text().replace('secret = ""', 'secret = "x"'))
    with pytest.raises(ConfigError, match=r"database\.passphrase: .*exactly 32 characters"):
        load_settings(path)


# --- systemd ------------------------------------------------------------------------------------------


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read(CONTRIB / "pygarm.service")
    return parser


def test_unit_file_runs_pygarm_as_a_service_user() -> None:
    parsed = unit()
    assert parsed.sections() == ["Unit", "Service", "Install"]
    service = parsed["Service"]
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).is_absolute() and argv[0].endswith("/bin/pygarm")
    assert argv[1:] == ["serve", "--config", "/etc/garm/config.toml"]
    assert service["User"] == "garm" and service["KillSignal"] == "SIGTERM"
    assert service["Restart"] == "on-failure"
    assert parsed["Install"]["WantedBy"] == "multi-user.target"
    settings = load_settings_text((CONTRIB / "config.systemd.toml").read_text())
    db_dir = Path(settings.database.sqlite3.db_file).parent
    assert db_dir == Path("/var/lib") / service["StateDirectory"]  # the one writable place


def unit_with_this_pygarm(tmp_path: Path, config: Path) -> Path:
    pygarm = Path(sys.executable).with_name("pygarm")
    text = (CONTRIB / "pygarm.service").read_text()
    text = text.replace("/opt/pygarm/bin/pygarm", str(pygarm)).replace("/etc/garm/config.toml", str(config))
    path = tmp_path / "pygarm.service"
    path.write_text(text)
    return path


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_unit_file_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    path = unit_with_this_pygarm(tmp_path, tmp_path / "config.toml")
    result = subprocess.run(
        ["systemd-analyze", "verify", path.name], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stderr


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_exec_start_serves_healthz_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    text = filled((CONTRIB / "config.systemd.toml").read_text())
    text = text.replace("/var/lib/garm/garm.db", str(tmp_path / "garm.db"))
    text = re.sub(r"(?m)^port = 9997", f"port = {port}", text)
    config = tmp_path / "config.toml"
    config.write_text(text)
    service = configparser.ConfigParser(interpolation=None)
    service.optionxform = str  # type: ignore[assignment,method-assign]
    service.read(unit_with_this_pygarm(tmp_path, config))
    argv = shlex.split(service["Service"]["ExecStart"])
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 180  # imports alone take 15 s on a busy 2-core machine
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "pygarm did not answer in time"
                time.sleep(0.1)
        assert response.status_code == 200 and response.json() == {"status": "ok"}
        process.send_signal(getattr(signal, service["Service"]["KillSignal"]))
        code = process.wait(timeout=parse_go_duration(service["Service"]["TimeoutStopSec"]))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code == 0
    assert (tmp_path / "garm.db").stat().st_mode & 0o077 == 0
