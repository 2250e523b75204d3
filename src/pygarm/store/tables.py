"""SQLAlchemy Core tables: the one module that declares the schema (Alembic compares against it).

The schema follows ``garm@v0.1.5 database/sql/models.go`` with two portable choices: case-insensitive
uniqueness uses a lower-cased ``*_key`` column instead of SQLite's ``COLLATE NOCASE``, so the same
constraints hold on PostgreSQL; UUIDs are stored as their canonical strings. Columns holding secrets
(``webhook_secret``, ``payload``, ``jit_configuration``) contain only sealed bytes (``store/crypto.py``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

UUID_LEN = 36


def _timestamps() -> list[Column[object]]:
    return [
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    ]


controller = Table(
    "controller",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("controller_id", String(UUID_LEN), nullable=False),
    Column("callback_url", Text, nullable=False, default=""),
    Column("metadata_url", Text, nullable=False, default=""),
    Column("webhook_base_url", Text, nullable=False, default=""),
    Column("minimum_job_age_backoff", Integer, nullable=False, default=30),
    *_timestamps(),
)

users = Table(
    "users",
    metadata,
    Column("id", String(UUID_LEN), primary_key=True),
    Column("username", String(64), nullable=False),
    Column("username_key", String(64), nullable=False, unique=True),
    Column("email", String(254), nullable=False),
    Column("email_key", String(254), nullable=False, unique=True),
    Column("full_name", String(254), nullable=False, default=""),
    Column("password", String(60), nullable=False),
    Column("generation", Integer, nullable=False, default=0),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("enabled", Boolean, nullable=False, default=True),
    *_timestamps(),
)

github_endpoints = Table(
    "github_endpoints",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("name_key", String(64), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("api_base_url", Text, nullable=False, default=""),
    Column("upload_base_url", Text, nullable=False, default=""),
    Column("base_url", Text, nullable=False, default=""),
    Column("ca_cert_bundle", LargeBinary, nullable=True),
    *_timestamps(),
)

github_credentials = Table(
    "github_credentials",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),
    Column("name_key", String(64), nullable=False),
    Column("user_id", String(UUID_LEN), ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    Column("description", Text, nullable=False, default=""),
    Column("auth_type", String(16), nullable=False, index=True),
    Column("payload", LargeBinary, nullable=False),
    Column("endpoint_name", String(64), ForeignKey("github_endpoints.name"), nullable=False, index=True),
    *_timestamps(),
    UniqueConstraint("name_key", "user_id", name="uq_github_credentials_name_user"),
)


def _entity_table(name: str, *name_columns: Column[object]) -> Table:
    """Repositories, organizations and enterprises share GARM's shape: one definition, three tables."""
    key_columns = [column.name for column in name_columns if column.name.endswith("_key")]
    return Table(
        name,
        metadata,
        Column("id", String(UUID_LEN), primary_key=True),
        *name_columns,
        Column("credentials_name", String(64), nullable=False, default=""),
        Column(
            "credentials_id",
            Integer,
            ForeignKey("github_credentials.id", ondelete="SET NULL"),
            nullable=True,
            index=True,
        ),
        Column("webhook_secret", LargeBinary, nullable=False),
        Column("pool_balancer_type", String(64), nullable=False, default=""),
        Column("endpoint_name", String(64), ForeignKey("github_endpoints.name"), nullable=False, index=True),
        *_timestamps(),
        UniqueConstraint(*key_columns, "endpoint_name", name=f"uq_{name}_name_endpoint"),
    )


repositories = _entity_table(
    "repositories",
    Column("owner", String(255), nullable=False),
    Column("owner_key", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("name_key", String(255), nullable=False),
)
organizations = _entity_table(
    "organizations",
    Column("name", String(255), nullable=False),
    Column("name_key", String(255), nullable=False),
)
enterprises = _entity_table(
    "enterprises",
    Column("name", String(255), nullable=False),
    Column("name_key", String(255), nullable=False),
)

pools = Table(
    "pools",
    metadata,
    Column("id", String(UUID_LEN), primary_key=True),
    Column("provider_name", String(255), nullable=False),
    Column("runner_prefix", String(64), nullable=False, default="garm"),
    Column("max_runners", Integer, nullable=False),
    Column("min_idle_runners", Integer, nullable=False),
    Column("runner_bootstrap_timeout", Integer, nullable=False),
    Column("image", Text, nullable=False),
    Column("flavor", Text, nullable=False),
    Column("os_type", String(16), nullable=False),
    Column("os_arch", String(16), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("extra_specs", Text, nullable=True),
    Column("github_runner_group", Text, nullable=False, default=""),
    Column("priority", Integer, nullable=False, default=0),
    Column("repo_id", String(UUID_LEN), ForeignKey("repositories.id"), nullable=True, index=True),
    Column("org_id", String(UUID_LEN), ForeignKey("organizations.id"), nullable=True, index=True),
    Column("enterprise_id", String(UUID_LEN), ForeignKey("enterprises.id"), nullable=True, index=True),
    *_timestamps(),
)

tags = Table(
    "tags",
    metadata,
    Column("id", String(UUID_LEN), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
)

pool_tags = Table(
    "pool_tags",
    metadata,
    Column("pool_id", String(UUID_LEN), ForeignKey("pools.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", String(UUID_LEN), ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, nullable=False, default=0),
)

instances = Table(
    "instances",
    metadata,
    Column("id", String(UUID_LEN), primary_key=True),
    Column("provider_id", String(255), nullable=True, unique=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("agent_id", BigInteger, nullable=False, default=0),
    Column("os_type", String(16), nullable=False, default=""),
    Column("os_arch", String(16), nullable=False, default=""),
    Column("os_name", String(255), nullable=False, default=""),
    Column("os_version", String(255), nullable=False, default=""),
    Column("status", String(32), nullable=False, default=""),
    Column("runner_status", String(32), nullable=False, default=""),
    Column("callback_url", Text, nullable=False, default=""),
    Column("metadata_url", Text, nullable=False, default=""),
    Column("provider_fault", LargeBinary, nullable=True),
    Column("create_attempt", Integer, nullable=False, default=0),
    Column("token_fetched", Boolean, nullable=False, default=False),
    Column("jit_configuration", LargeBinary, nullable=True),
    Column("github_runner_group", Text, nullable=False, default=""),
    Column("aditional_labels", Text, nullable=True),
    Column("pool_id", String(UUID_LEN), ForeignKey("pools.id"), nullable=False, index=True),
    *_timestamps(),
)

instance_addresses = Table(
    "instance_addresses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "instance_id",
        String(UUID_LEN),
        ForeignKey("instances.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("address", String(255), nullable=False),
    Column("type", String(16), nullable=False),
)

instance_status_messages = Table(
    "instance_status_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "instance_id",
        String(UUID_LEN),
        ForeignKey("instances.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("event_type", String(32), nullable=False),
    Column("event_level", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

workflow_jobs = Table(
    "workflow_jobs",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("run_id", BigInteger, nullable=False, default=0),
    Column("action", String(254), nullable=False, default="", index=True),
    Column("conclusion", String(64), nullable=False, default=""),
    Column("status", String(64), nullable=False, default=""),
    Column("name", Text, nullable=False, default=""),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("completed_at", DateTime(timezone=True), nullable=True),
    Column("github_runner_id", BigInteger, nullable=False, default=0),
    Column("runner_name", String(255), nullable=False, default=""),
    Column("instance_id", String(UUID_LEN), nullable=True, index=True),
    Column("runner_group_id", BigInteger, nullable=False, default=0),
    Column("runner_group_name", String(255), nullable=False, default=""),
    Column("repository_name", String(255), nullable=False, default=""),
    Column("repository_owner", String(255), nullable=False, default=""),
    Column("labels", Text, nullable=True),
    Column("repo_id", String(UUID_LEN), nullable=True, index=True),
    Column("org_id", String(UUID_LEN), nullable=True, index=True),
    Column("enterprise_id", String(UUID_LEN), nullable=True, index=True),
    Column("locked_by", String(UUID_LEN), nullable=False, default="00000000-0000-0000-0000-000000000000"),
    *_timestamps(),
)

change_events = Table(
    "change_events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("entity_type", String(32), nullable=False),
    Column("operation", String(16), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_change_events_created_at", "created_at"),
    sqlite_autoincrement=True,
)
"""The change log: one row per committed mutation, written in the mutation's own transaction.

``sqlite_autoincrement`` stops SQLite from reusing the sequence number of a pruned row, so ``seq``
never goes backwards even after retention deletes the newest rows.
"""

change_log_state = Table(
    "change_log_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("pruned_through", BigInteger, nullable=False, default=0),
)
"""One row: the highest ``seq`` that retention has deleted. A client resuming from an older ``seq``
cannot be served from the log, and is told so instead of silently missing changes."""

leader_leases = Table(
    "leader_leases",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("holder", String(255), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("status", Text, nullable=True),
)
"""Replicas on one PostgreSQL (``runner/leadership.py``): who runs each background job (a pool manager
per entity, each fleet-wide loop) until when, by the database clock. ``status`` is what the holder
publishes about the job (a pool manager's ``pool_manager_status``) for the other replicas' REST
answers. Unused on SQLite (one process)."""

replicas = Table(
    "replicas",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
"""One heartbeat row per live replica: the count of live replicas gives each one its fair share of
``leader_leases``. Rows are deleted on shutdown; rows of crashed replicas expire and are removed later."""
