"""Configuration (issue 2 item 2, docs/garm-protocol.md#configuration): GARM's TOML starts pygarm as it is; a
bad config is one clear line naming the key and the rule, with exit code 2; no ``--config`` creates a local
default."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pygarm.config import ConfigError, ensure_default_config, load_settings, parse_go_duration

GARM_CONFIG = """
[default]
callback_url = "https://garm.example.com/api/v1/callbacks"
metadata_url = "https://garm.example.com/api/v1/metadata"
webhook_url = "https://garm.example.com/webhooks"
enable_webhook_management = true

[logging]
enable_log_streamer = true
log_format = "text"
log_level = "info"
log_source = false

[metrics]
enable = true
disable_auth = false

[jwt_auth]
secret = ")9gk_4A6KrXz9D2u`0@MPea*sd6W`%@5MAWpWWJ3P3EqW~qB!!(Vd$FhNc*eU4vG"
time_to_live = "8760h"

[apiserver]
  bind = "0.0.0.0"
  port = 9997
  use_tls = false
  cors_origins = ["*"]
  [apiserver.tls]
    certificate = ""
    key = ""

[database]
  backend = "sqlite3"
  passphrase = "shreotsinWadquidAitNefayctowUrph"
  [database.sqlite3]
    db_file = "/etc/garm/garm.db"

[[provider]]
  name = "lxd_local"
  provider_type = "external"
  description = "Local LXD installation"
  [provider.external]
    provider_executable = "/opt/garm/providers.d/garm-provider-lxd"
    config_file = "/etc/garm/garm-provider-lxd.toml"
    environment_variables = ["LXD_"]

[[github]]
  name = "gh_token"
  description = "github token"
  auth_type = "pat"
  [github.pat]
  oauth2_token = "super secret token"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_a_garm_config_loads_as_it_is(tmp_path: Path) -> None:
    """GARM's own sections and keys, including ones pygarm does not use ([metrics], [[github]])."""
    settings = load_settings(write(tmp_path, GARM_CONFIG))
    assert settings.apiserver.bind == "0.0.0.0" and settings.apiserver.port == 9997
    assert settings.database.url == "sqlite:////etc/garm/garm.db"
    assert settings.jwt_auth.ttl_seconds == 8760 * 3600
    assert settings.provider[0].external.environment_variables == ["LXD_"]
    assert settings.log_streamer_enabled and settings.default.enable_webhook_management


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'bind = "0.0.0.0"',
            'bind = "localhost"',
            "apiserver.bind: Value error, must be an IP address literal",
        ),
        ("port = 9997", "port = 70000", "apiserver.port: Value error, must be between 1 and 65535"),
        (
            'passphrase = "shreotsinWadquidAitNefayctowUrph"',
            'passphrase = "short"',
            "database.passphrase: Value error, must be exactly 32 characters",
        ),
        (
            'time_to_live = "8760h"',
            'time_to_live = "a year"',
            "jwt_auth.time_to_live: Value error, invalid duration",
        ),
        (
            'provider_type = "external"',
            'provider_type = "lxd"',
            "provider.0.provider_type: Input should be 'external'",
        ),
        ('db_file = "/etc/garm/garm.db"', 'db_file = "garm.db"', "must be an absolute path"),
    ],
)
def test_invalid_config_names_the_key_and_the_rule(tmp_path: Path, old: str, new: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, GARM_CONFIG.replace(old, new)))
    text = str(raised.value)
    assert message in text and "\n" not in text


def test_postgresql_backend_takes_a_dsn(tmp_path: Path) -> None:
    config = GARM_CONFIG.replace('backend = "sqlite3"', 'backend = "postgresql"').replace(
        "[database.sqlite3]",
        '[database.postgresql]\n    dsn = "postgres://garm@db.example.com/garm"\n  [database.x]',
    )
    assert (
        load_settings(write(tmp_path, config)).database.url == "postgresql+psycopg://garm@db.example.com/garm"
    )


def test_go_durations() -> None:
    assert parse_go_duration("1h30m") == 5400 and parse_go_duration("54s") == 54
    assert parse_go_duration("500ms") == 0.5 and parse_go_duration("0") == 0
    for bad in ("", "10", "1d", "h"):
        with pytest.raises(ValueError):
            parse_go_duration(bad)


def test_default_config_has_random_secrets_and_private_permissions(tmp_path: Path) -> None:
    first = ensure_default_config(tmp_path / "a")
    second = ensure_default_config(tmp_path / "b")
    assert first.created and ensure_default_config(tmp_path / "a").created is False
    one, two = load_settings(first.path), load_settings(second.path)
    assert one.jwt_auth.secret != two.jwt_auth.secret
    assert one.database.passphrase != two.database.passphrase and len(one.database.passphrase) == 32
    assert one.apiserver.bind == "127.0.0.1" and one.apiserver.port == 9997
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600


@pytest.mark.slow  # a pygarm process
def test_serve_with_an_invalid_config_exits_2_with_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, GARM_CONFIG.replace("port = 9997", "port = 0"))
    result = subprocess.run(
        [sys.executable, "-m", "pygarm.cli.main", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "pygarm: invalid config: apiserver.port: Value error, must be between 1 and 65535"
    ]


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.slow  # a pygarm process
def test_serve_without_config_creates_one_and_starts(tmp_path: Path) -> None:
    """`pygarm serve` alone: a config in the data directory, SQLite, 127.0.0.1:9997."""
    assert _port_free(9997), "something else listens on 127.0.0.1:9997"
    env = {**os.environ, "PYGARM_DATA_DIR": str(tmp_path / "data")}
    process = subprocess.Popen(
        [sys.executable, "-m", "pygarm.cli.main", "serve"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get("http://127.0.0.1:9997/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        assert (tmp_path / "data" / "config.toml").exists() and (tmp_path / "data" / "garm.db").exists()
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert f"created config {tmp_path / 'data' / 'config.toml'}" in stderr
