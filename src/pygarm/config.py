"""Server configuration: GARM's TOML file, read with GARM's section and key names
(docs/garm-protocol.md#configuration).

An existing GARM ``config.toml`` starts pygarm as it is. pygarm adds ``backend = "postgresql"`` with
``[database.postgresql] dsn`` and optional ``[events]``, ``[pool_manager]`` and ``[login_limit]`` sections
for its own settings.
Everything is parsed into one typed :class:`Settings` object that the app factory receives explicitly;
nothing reads the file or the environment later.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
import string
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_PORT = 9997
DEFAULT_JWT_TTL = "8760h"
MIN_JWT_TTL_SECONDS = 24 * 3600
"""GARM raises any shorter ``time_to_live`` to 24 h (docs/garm-protocol.md#user-jwt)."""
PASSPHRASE_LENGTH = 32
"""GARM demands exactly 32 characters: the passphrase is an AES-256 key in its legacy seal format."""
MAX_COUNT_SETTING = 1_000_000
"""Upper bound of count settings (queue lengths, login limits): larger ones are surely typos, and beyond
``sys.maxsize`` they failed at run time (``deque(maxlen=...)`` overflows) instead of at start-up."""
PRIVATE_FILE_MODE = 0o600
"""Files holding secrets (the generated config, the SQLite database and its -wal/-shm)."""
PRIVATE_DIR_MODE = 0o700


class ConfigError(ValueError):
    """An invalid configuration: the message names the key and the rule, on one line."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="ignore")


class DefaultSection(_Section):
    callback_url: str = ""
    metadata_url: str = ""
    webhook_url: str = ""
    enable_webhook_management: bool = False
    log_file: str = ""
    enable_log_streamer: bool = False
    debug_server: bool = False


class LoggingSection(_Section):
    log_file: str = ""
    enable_log_streamer: bool | None = None
    log_level: Literal["debug", "info", "warn", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    log_source: bool = False


class TLSSection(_Section):
    certificate: str = ""
    key: str = ""


class APIServerSection(_Section):
    bind: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    use_tls: bool = False
    cors_origins: list[str] = Field(default_factory=list)
    tls: TLSSection = Field(default_factory=TLSSection)

    @field_validator("bind")
    @classmethod
    def _bind_is_ip(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError as exc:
            raise ValueError("must be an IP address literal") from exc
        return value

    @field_validator("port")
    @classmethod
    def _port_range(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise ValueError("must be between 1 and 65535")
        return value

    @model_validator(mode="after")
    def _tls_files(self) -> APIServerSection:
        if self.use_tls and not (self.tls.certificate and self.tls.key):
            raise ValueError("use_tls needs [apiserver.tls] certificate and key")
        return self


class JWTAuthSection(_Section):
    secret: str
    time_to_live: str = DEFAULT_JWT_TTL

    @field_validator("secret")
    @classmethod
    def _secret_not_empty(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("time_to_live")
    @classmethod
    def _ttl_parses(cls, value: str) -> str:
        parse_go_duration(value)
        return value

    @property
    def ttl_seconds(self) -> int:
        return max(MIN_JWT_TTL_SECONDS, int(parse_go_duration(self.time_to_live)))


class SQLiteSection(_Section):
    db_file: str = ""


class PostgreSQLSection(_Section):
    dsn: str = ""
    synchronous_commit: bool = True
    """False: the writer's commits do not wait for the WAL flush (docs/configuration.md)."""


class DatabaseSection(_Section):
    backend: Literal["sqlite3", "postgresql"] = "sqlite3"
    passphrase: str
    debug: bool = False
    sqlite3: SQLiteSection = Field(default_factory=SQLiteSection)
    postgresql: PostgreSQLSection = Field(default_factory=PostgreSQLSection)

    @field_validator("passphrase")
    @classmethod
    def _passphrase_length(cls, value: str) -> str:
        if len(value) != PASSPHRASE_LENGTH:
            raise ValueError(f"must be exactly {PASSPHRASE_LENGTH} characters")
        return value

    @model_validator(mode="after")
    def _backend_settings(self) -> DatabaseSection:
        if self.backend == "sqlite3":
            if not self.sqlite3.db_file:
                raise ValueError("[database.sqlite3] db_file is required for the sqlite3 backend")
            if not Path(self.sqlite3.db_file).is_absolute():
                raise ValueError("[database.sqlite3] db_file must be an absolute path")
        elif not self.postgresql.dsn:
            raise ValueError("[database.postgresql] dsn is required for the postgresql backend")
        return self

    @property
    def url(self) -> str:
        """The SQLAlchemy URL (stdlib sqlite3, or psycopg 3 for PostgreSQL)."""
        if self.backend == "sqlite3":
            return f"sqlite:///{self.sqlite3.db_file}"
        dsn = self.postgresql.dsn
        return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg://", dsn)


class ExternalProviderSection(_Section):
    config_file: str = ""
    provider_dir: str = ""
    provider_executable: str = ""
    environment_variables: list[str] = Field(default_factory=list)


class ProviderSection(_Section):
    name: str
    provider_type: Literal["external"]
    description: str = ""
    disable_jit_config: bool = False
    external: ExternalProviderSection = Field(default_factory=ExternalProviderSection)


class EventsSection(_Section):
    """pygarm's own change-log and websocket settings (not in GARM)."""

    retention: str = "168h"
    """How long change-log rows are kept (Go duration)."""
    queue_limit: int = Field(default=1024, ge=16, le=MAX_COUNT_SETTING)
    """Events buffered per subscriber before it is closed as too slow."""
    poll_interval: str = "2s"
    """How often the hub reads the change log as a safety net (other processes, lost wake-ups)."""
    ping_interval: str = "54s"
    """Server ping period (GARM: pongWait*9/10)."""
    ping_timeout: str = "60s"
    """Close a connection (1000) this long after it opened or last answered a ping (GARM: pongWait)."""

    @field_validator("retention", "poll_interval", "ping_interval", "ping_timeout")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_go_duration(value)
        return value


DEFAULT_METRICS_PERIOD_SECONDS = 60.0
"""GARM's ``appdefaults.DefaultMetricsUpdateInterval`` (garm@v0.1.5 util/appdefaults/appdefaults.go:32)."""


class MetricsSection(_Section):
    """GARM's ``[metrics]`` (garm@v0.1.5 config/config.go:627-661, docs/observability.md)."""

    enable: bool = False
    """Serve ``/metrics`` and run the collection loop; off, the route does not exist (Go's 404)."""
    disable_auth: bool = False
    """Serve ``/metrics`` without asking for the metrics token."""
    period: str | int = ""
    """How often the ``garm_*`` state families are re-collected: a Go duration string, or an integer of
    nanoseconds as Go's TOML decoder reads it; empty or zero means 60 s."""

    @field_validator("period", mode="before")
    @classmethod
    def _period(cls, value: object) -> str | int:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValueError("must be a Go duration string or an integer of nanoseconds")
        seconds = value / 1e9 if isinstance(value, int) else parse_go_duration(value) if value else 0.0
        if seconds < 0:
            raise ValueError("must not be negative")  # GARM panics at start (runner/metrics/metrics.go:30)
        return value

    @property
    def period_seconds(self) -> float:
        value = self.period
        seconds = value / 1e9 if isinstance(value, int) else parse_go_duration(value) if value else 0.0
        return seconds or DEFAULT_METRICS_PERIOD_SECONDS


class PoolManagerSection(_Section):
    """pygarm's ``[pool_manager]`` section: GARM's hard-coded pool-manager timings, as Go durations.

    The defaults are GARM v0.1.5's constants (docs/garm-protocol.md#pool-managers,
    docs/garm-protocol.md#job-queue); tests shorten them so that a whole runner lifecycle fits in seconds.
    GARM has no such section.
    """

    enabled: bool = True
    """Run pool managers at all; off, nothing creates or removes runners (tests of other layers)."""
    consolidate_interval: str = "5s"
    """Add-pending, delete-pending, min-idle, retry and job-queue passes (``PoolConsilitationInterval``)."""
    scale_down_interval: str = "1m"
    """Idle-runner reaping (``PoolScaleDownInterval``)."""
    reaper_interval: str = "5m"
    """Timed-out and orphaned runner cleanup (``PoolReapTimeoutInterval``)."""
    tools_interval: str = "5m"
    """Refresh of GitHub's runner downloads list (``PoolToolUpdateInterval``)."""
    backoff_interval: str = "1m"
    """How often a stopped manager's loops look again whether it runs (``BackoffTimer``)."""
    idle_runner_age: str = "2m"
    """An idle runner must be this old (since its last update) before scale-down removes it."""
    stale_job_age: str = "10m"
    """Queued jobs older than this (since creation) are deleted when scale-down removes runners."""
    job_lock_timeout: str = "10m"
    """A queued job still queued this long after its last update is unlocked and scheduled again."""
    orphan_runner_age: str = "5m"
    """Orphan cleanup leaves instances updated more recently than this alone (GARM's 5 minutes)."""
    provider_timeout: str = "10m"
    """Longest a provider executable may run before its process group is killed (GARM waits for ever)."""

    @field_validator(
        "consolidate_interval",
        "scale_down_interval",
        "reaper_interval",
        "tools_interval",
        "backoff_interval",
        "idle_runner_age",
        "stale_job_age",
        "job_lock_timeout",
        "orphan_runner_age",
        "provider_timeout",
    )
    @classmethod
    def _duration(cls, value: str) -> str:
        if parse_go_duration(value) <= 0:
            raise ValueError("must be a positive duration")
        return value


class LoginLimitSection(_Section):
    """pygarm's ``[login_limit]`` section: failed logins allowed per ``window`` before ``/auth/login``
    answers 429 with ``Retry-After`` (docs/compatibility.md). 0 turns a limit off. GARM has no limit.

    The address is the TCP peer's: behind a reverse proxy every client shares the proxy's address, so
    raise ``per_address`` (or set it to 0) there.
    """

    per_username: int = Field(default=10, ge=0, le=MAX_COUNT_SETTING)
    """Failed logins per login name (username or e-mail, any case), known or not."""
    per_address: int = Field(default=30, ge=0, le=MAX_COUNT_SETTING)
    """Failed logins per client address, whatever names they try."""
    window: str = "1m"
    """The sliding window both limits count in (Go duration)."""

    @field_validator("window")
    @classmethod
    def _duration(cls, value: str) -> str:
        if parse_go_duration(value) <= 0:
            raise ValueError("must be a positive duration")
        return value


class Settings(_Section):
    default: DefaultSection = Field(default_factory=DefaultSection)
    logging: LoggingSection = Field(default_factory=LoggingSection)
    apiserver: APIServerSection = Field(default_factory=APIServerSection)
    jwt_auth: JWTAuthSection
    database: DatabaseSection
    provider: list[ProviderSection] = Field(default_factory=list)
    events: EventsSection = Field(default_factory=EventsSection)
    pool_manager: PoolManagerSection = Field(default_factory=PoolManagerSection)
    login_limit: LoginLimitSection = Field(default_factory=LoginLimitSection)
    metrics: MetricsSection = Field(default_factory=MetricsSection)

    @property
    def log_streamer_enabled(self) -> bool:
        if self.logging.enable_log_streamer is not None:
            return self.logging.enable_log_streamer
        return self.default.enable_log_streamer


GO_MAX_DURATION_SECONDS = (2**63 - 1) / 1e9
"""Go's ``time.Duration`` is int64 nanoseconds: about 292 years."""
GO_MAX_DURATION_HOURS = int(GO_MAX_DURATION_SECONDS // 3600)
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_go_duration(text: str) -> float:
    """Parse a Go ``time.Duration`` string (``"24h"``, ``"1h30m"``, ``"54s"``) into seconds."""
    body = text.strip()
    sign = -1.0 if body.startswith("-") else 1.0
    body = body.lstrip("+-")
    if body == "0":
        return 0.0
    position, total = 0, 0.0
    for match in _DURATION_PART.finditer(body):
        if match.start() != position:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if not body or position != len(body):
        raise ValueError(f"invalid duration {text!r} (use Go syntax such as 24h, 1h30m, 54s)")
    if total > GO_MAX_DURATION_SECONDS:
        # Go's ParseDuration refuses it too (int64 nanoseconds); larger values overflowed datetime
        # arithmetic in the loops that use them (issue 8 #4).
        raise ValueError(f"invalid duration {text!r} (at most {GO_MAX_DURATION_HOURS}h)")
    return sign * total


def parse_settings(data: dict[str, Any]) -> Settings:
    """Validate parsed TOML, turning the first problem into one line that names the key and the rule."""
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"]) or "config"
        raise ConfigError(f"invalid config: {key}: {error['msg']}") from None


def load_settings(path: Path) -> Settings:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return parse_settings(data)


@dataclass(frozen=True)
class DefaultConfig:
    path: Path
    created: bool


def _random_secret(length: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def ensure_default_config(data_dir: Path) -> DefaultConfig:
    """Create (once) a config for a local server: random secrets, SQLite in ``data_dir``, 127.0.0.1:9997."""
    path = data_dir / "config.toml"
    data_dir.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    # pygarm's own data directory (config with secrets, the SQLite file): an existing one made with a
    # looser mode (an older pygarm, a plain mkdir) is tightened (issue 8 #13).
    if data_dir.stat().st_mode & 0o077:
        data_dir.chmod(PRIVATE_DIR_MODE)
    if path.exists():
        return DefaultConfig(path=path, created=False)
    text = f"""# Created by `pygarm serve`; GARM's config format (https://github.com/cloudbase/garm).
[default]
# Set these to URLs your runners can reach, or run `pygarm init`.
callback_url = ""
metadata_url = ""
webhook_url = ""

[logging]
enable_log_streamer = true
log_level = "info"

[apiserver]
bind = "127.0.0.1"
port = {DEFAULT_PORT}
use_tls = false

[jwt_auth]
secret = "{_random_secret(64)}"
time_to_live = "{DEFAULT_JWT_TTL}"

[database]
backend = "sqlite3"
passphrase = "{_random_secret(PASSPHRASE_LENGTH)}"
  [database.sqlite3]
  db_file = "{(data_dir / "garm.db").resolve()}"
"""
    write_private_file(path, text)
    return DefaultConfig(path=path, created=True)


def create_private_file(path: str | Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (an existing file keeps its mode), as GARM's
    log writer (lumberjack) creates its log file."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))


def write_private_file(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only from the first byte on (``O_EXCL``: never an existing
    file); writing first and tightening after would leave the secrets readable for a moment."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
