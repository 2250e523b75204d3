"""``pygarm pool add|list|show|update|delete`` with garm-cli's flags.

``add`` and ``list`` take one of ``--repo``, ``--org``, ``--enterprise`` (an ID or a unique name);
``list`` without one (or with ``--all``) lists every pool. ``update`` sends only the options given, so
``--min-idle-runners 0`` or ``--disabled`` change a value while everything else stays as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from pygarm.cli._common import (
    FormatOption,
    OutputFormat,
    at_most_one,
    client,
    exactly_one,
    fail,
    keep,
    split_list,
)
from pygarm.cli._typer import command, sub_app
from pygarm.cli.entities import ENTERPRISE, ORGANIZATION, REPOSITORY, Kind, resolve
from pygarm.cli.output import emit, print_fields, print_table
from pygarm.client import UNSET, GarmClient, make_request
from pygarm.params.entity_requests import CreatePoolParams
from pygarm.params.models import Pool

app = sub_app("Manage runner pools of repositories, organizations and enterprises.")

PoolIdArg = Annotated[str, typer.Argument(help="The pool ID.")]
RepoOption = Annotated[str | None, typer.Option("--repo", "-r", help="Repository ID or owner/name.")]
OrgOption = Annotated[str | None, typer.Option("--org", "-o", help="Organization ID or name.")]
EnterpriseOption = Annotated[str | None, typer.Option("--enterprise", "-e", help="Enterprise ID or name.")]
ExtraSpecsOption = Annotated[
    str | None, typer.Option("--extra-specs", help="JSON passed to the provider for this pool.")
]
ExtraSpecsFileOption = Annotated[
    Path | None, typer.Option("--extra-specs-file", help="A file holding the extra specs JSON.")
]

KINDS = {"repo": REPOSITORY, "org": ORGANIZATION, "enterprise": ENTERPRISE}


def owner_of(pool: Pool) -> tuple[str, str]:
    """``(belongs to, level)``: the name of the entity a pool belongs to and its kind, as garm-cli's
    "Belongs to" and "Level" columns (``garm@v0.1.5 cmd/garm-cli/cmd/pool.go:478``)."""
    if pool.repo_id:
        return pool.repo_name or pool.repo_id, "repo"
    if pool.org_id:
        return pool.org_name or pool.org_id, "org"
    if pool.enterprise_id:
        return pool.enterprise_name or pool.enterprise_id, "enterprise"
    return "", ""


def pool_tags(pool: Pool) -> list[str]:
    """The labels in the order the server returns them, as garm-cli prints them."""
    return [tag.name for tag in pool.tags or []]


def pool_rows(pool: Pool) -> list[tuple[str, Any]]:
    name, level = owner_of(pool)
    rows: list[tuple[str, Any]] = [
        ("ID", pool.id),
        ("Provider Name", pool.provider_name),
        ("Priority", pool.priority),
        ("Image", pool.image),
        ("Flavor", pool.flavor),
        ("OS Type", pool.os_type),
        ("OS Architecture", pool.os_arch),
        ("Max Runners", pool.max_runners),
        ("Min Idle Runners", pool.min_idle_runners),
        ("Runner Bootstrap Timeout", pool.runner_bootstrap_timeout),
        ("Tags", ", ".join(pool_tags(pool))),
        ("Belongs to", name),
        ("Level", level),
        ("Enabled", pool.enabled),
        ("Runner Prefix", pool.runner_prefix),
        ("Extra specs", orjson.dumps(pool.extra_specs).decode() if pool.extra_specs else ""),
        ("GitHub Runner Group", pool.github_runner_group),
    ]
    rows += [("Instances", f"{i.name} ({i.id})") for i in pool.instances or []]
    return rows


def print_pools(pools: list[Pool]) -> None:
    print_table(
        ("ID", "Image", "Flavor", "Tags", "Belongs to", "Level", "Enabled", "Runner Prefix", "Priority"),
        [
            (
                p.id,
                p.image,
                p.flavor,
                " ".join(pool_tags(p)),
                *owner_of(p),
                p.enabled,
                p.runner_prefix,
                p.priority,
            )
            for p in pools
        ],
    )


def extra_specs(value: str | None, path: Path | None) -> Any:
    """The extra specs JSON from ``--extra-specs`` or ``--extra-specs-file`` (``UNSET`` when neither)."""
    if value is not None and path is not None:
        fail("--extra-specs and --extra-specs-file are mutually exclusive")
    if path is not None:
        try:
            value = path.read_text()
        except OSError as exc:
            fail(f"cannot read {path}: {exc.strerror or exc}")
    if value is None:
        return UNSET
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        fail(f"extra specs are not valid JSON: {exc}")


def _entity(garm: GarmClient, repo: str | None, org: str | None, enterprise: str | None) -> tuple[Kind, str]:
    flag = exactly_one(repo=repo, org=org, enterprise=enterprise)
    kind = KINDS[flag]
    ref = {"repo": repo, "org": org, "enterprise": enterprise}[flag]
    assert ref is not None
    return kind, resolve(garm, kind, ref)


@command(app, "list", "ls")
def list_pools(
    ctx: typer.Context,
    repo: RepoOption = None,
    org: OrgOption = None,
    enterprise: EnterpriseOption = None,
    all_: Annotated[bool, typer.Option("--all", "-a", help="All pools (the default).")] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """List the pools of one repository, organization or enterprise, or all pools."""
    chosen = at_most_one(repo=repo, org=org, enterprise=enterprise, all=all_)
    with client(ctx) as garm:
        if chosen in (None, "all"):
            pools = garm.list_pools()
        else:
            kind, entity_id = _entity(garm, repo, org, enterprise)
            pools = kind.call(garm, "list_{one}_pools")(entity_id)
    emit(fmt, pools, lambda: print_pools(pools))


@command(app, "show", "get")
def show(ctx: typer.Context, pool_id: PoolIdArg, fmt: FormatOption = OutputFormat.table) -> None:
    """Show one pool."""
    with client(ctx) as garm:
        pool = garm.get_pool(pool_id)
    emit(fmt, pool, lambda: print_fields(pool_rows(pool)))


@command(app, "add", "create")
def add(
    ctx: typer.Context,
    provider_name: Annotated[
        str, typer.Option("--provider-name", help="The provider that creates the runners.")
    ],
    image: Annotated[str, typer.Option("--image", help="Provider-specific image for the runners.")],
    flavor: Annotated[str, typer.Option("--flavor", help="Provider-specific flavor (size) of the runners.")],
    tags: Annotated[str, typer.Option("--tags", help="Comma-separated labels of the runners.")],
    repo: RepoOption = None,
    org: OrgOption = None,
    enterprise: EnterpriseOption = None,
    max_runners: Annotated[int, typer.Option("--max-runners", min=0, help="Most runners at once.")] = 5,
    min_idle_runners: Annotated[
        int, typer.Option("--min-idle-runners", min=0, help="Idle runners kept.")
    ] = 1,
    os_type: Annotated[str, typer.Option("--os-type", help="linux or windows.")] = "linux",
    os_arch: Annotated[str, typer.Option("--os-arch", help="amd64, arm or arm64.")] = "amd64",
    enabled: Annotated[bool, typer.Option("--enabled/--disabled", help="Create runners right away.")] = False,
    runner_prefix: Annotated[str, typer.Option("--runner-prefix", help="Runner name prefix.")] = "",
    runner_bootstrap_timeout: Annotated[
        int, typer.Option("--runner-bootstrap-timeout", min=0, help="Minutes for a runner to join GitHub.")
    ] = 20,
    extra_specs_json: ExtraSpecsOption = None,
    extra_specs_file: ExtraSpecsFileOption = None,
    runner_group: Annotated[str, typer.Option("--runner-group", help="GitHub runner group.")] = "",
    priority: Annotated[int, typer.Option("--priority", min=0, help="Higher wins among matching pools.")] = 0,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Add a pool to a repository, organization or enterprise."""
    values: dict[str, Any] = {
        "provider_name": provider_name,
        "image": image,
        "flavor": flavor,
        "tags": split_list(tags),
        "max_runners": max_runners,
        "min_idle_runners": min_idle_runners,
        "os_type": os_type,
        "os_arch": os_arch,
        "enabled": enabled,
        "runner_prefix": runner_prefix,
        "runner_bootstrap_timeout": runner_bootstrap_timeout,
        "github_runner_group": runner_group,
        "priority": priority,
    }
    specs = extra_specs(extra_specs_json, extra_specs_file)
    if specs is not UNSET:
        values["extra_specs"] = specs
    params = make_request(CreatePoolParams, **values)
    with client(ctx) as garm:
        kind, entity_id = _entity(garm, repo, org, enterprise)
        pool: Pool = kind.call(garm, "create_{one}_pool")(entity_id, params)
    emit(fmt, pool, lambda: print_fields(pool_rows(pool)))


@command(app, "update")
def update(
    ctx: typer.Context,
    pool_id: PoolIdArg,
    image: Annotated[str | None, typer.Option("--image")] = None,
    flavor: Annotated[str | None, typer.Option("--flavor")] = None,
    tags: Annotated[str | None, typer.Option("--tags", help="Comma-separated; replaces all labels.")] = None,
    max_runners: Annotated[int | None, typer.Option("--max-runners", min=0)] = None,
    min_idle_runners: Annotated[int | None, typer.Option("--min-idle-runners", min=0)] = None,
    os_type: Annotated[str | None, typer.Option("--os-type")] = None,
    os_arch: Annotated[str | None, typer.Option("--os-arch")] = None,
    enabled: Annotated[bool | None, typer.Option("--enabled/--disabled")] = None,
    runner_prefix: Annotated[str | None, typer.Option("--runner-prefix")] = None,
    runner_bootstrap_timeout: Annotated[int | None, typer.Option("--runner-bootstrap-timeout", min=0)] = None,
    extra_specs_json: ExtraSpecsOption = None,
    extra_specs_file: ExtraSpecsFileOption = None,
    runner_group: Annotated[str | None, typer.Option("--runner-group")] = None,
    priority: Annotated[int | None, typer.Option("--priority", min=0)] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Change the given settings of a pool; runners that exist already are not recreated."""
    with client(ctx) as garm:
        pool = garm.update_pool(
            pool_id,
            image=keep(image),
            flavor=keep(flavor),
            tags=UNSET if tags is None else split_list(tags),
            max_runners=keep(max_runners),
            min_idle_runners=keep(min_idle_runners),
            os_type=keep(os_type),
            os_arch=keep(os_arch),
            enabled=keep(enabled),
            runner_prefix=keep(runner_prefix),
            runner_bootstrap_timeout=keep(runner_bootstrap_timeout),
            extra_specs=extra_specs(extra_specs_json, extra_specs_file),
            github_runner_group=keep(runner_group),
            priority=keep(priority),
        )
    emit(fmt, pool, lambda: print_fields(pool_rows(pool)))


@command(app, "delete", "remove", "rm", "del")
def delete(ctx: typer.Context, pool_id: PoolIdArg) -> None:
    """Delete a pool (refused while it has runners)."""
    with client(ctx) as garm:
        garm.get_pool(pool_id)  # GARM answers a delete of an unknown pool with 200: fail with its 404
        garm.delete_pool(pool_id)
