"""``pygarm repo|org|enterprise add|list|show|update|delete``: the three entity kinds share one code path.

GARM serves the same routes for each kind, so one factory builds each sub-app; only the collection,
the name (``owner/name`` for a repository) and the create model differ. Where a command takes an ID,
a name works too (``pygarm repo show octo/hello``): it is looked up in the list, and an ambiguous name
(the same name on two endpoints) is an error that lists the IDs.

The webhook secret is a secret: ``add`` prompts for it (or reads stdin) when ``--webhook-secret`` is
left out; ``update --webhook-secret -`` does the same.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from pygarm.cli._common import FormatOption, OutputFormat, client, fail, keep, read_secret
from pygarm.cli._typer import command, sub_app
from pygarm.cli.output import emit, print_fields, print_table
from pygarm.client import UNSET, GarmClient, make_request
from pygarm.params.entity_requests import CreateEnterpriseParams, CreateOrgParams, CreateRepoParams
from pygarm.params.models import Enterprise, Organization, Repository

Entity = Repository | Organization | Enterprise


@dataclass(frozen=True)
class Kind:
    noun: str
    """``repository``, ``organization``, ``enterprise``: for messages."""
    method: str
    """The client's method suffix: ``repository`` → ``list_repositories`` / ``get_repository`` ..."""
    plural: str

    def call(self, garm: GarmClient, template: str) -> Callable[..., Any]:
        """The client method named by ``template``: ``"get_{one}"`` → ``garm.get_repository``."""
        method: Callable[..., Any] = getattr(garm, template.format(one=self.method, plural=self.plural))
        return method


REPOSITORY = Kind("repository", "repository", "repositories")
ORGANIZATION = Kind("organization", "organization", "organizations")
ENTERPRISE = Kind("enterprise", "enterprise", "enterprises")


def display_name(item: Entity) -> str:
    return f"{item.owner}/{item.name}" if isinstance(item, Repository) else item.name


def resolve(garm: GarmClient, kind: Kind, ref: str) -> str:
    """An ID as is; otherwise the ID of the one entity with that (case-insensitive) name."""
    try:
        uuid.UUID(ref)
        return ref
    except ValueError:
        pass
    items: list[Entity] = kind.call(garm, "list_{plural}")()
    matches = [item for item in items if display_name(item).casefold() == ref.casefold()]
    if not matches:
        fail(f"no {kind.noun} named {ref!r}")
    if len(matches) > 1:
        ids = ", ".join(f"{m.id} ({m.endpoint.name})" for m in matches)
        fail(f"{ref!r} names several {kind.plural}: {ids}; use an ID")
    return matches[0].id


def entity_rows(item: Entity) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [("ID", item.id)]
    if isinstance(item, Repository):
        rows.append(("Owner", item.owner))
    rows += [
        ("Name", item.name),
        ("Endpoint", item.endpoint.name),
        ("Pool balancer type", item.pool_balancing_type),
        ("Credentials", item.credentials_name or item.credentials.name),
        ("Pool manager running", item.pool_manager_status.running),
    ]
    if not item.pool_manager_status.running and item.pool_manager_status.failure_reason:
        rows.append(("Failure reason", item.pool_manager_status.failure_reason))
    rows += [("Pools", pool.id) for pool in item.pool or []]
    return rows


def print_entities(items: list[Entity]) -> None:
    repo = any(isinstance(item, Repository) for item in items)
    columns = ["ID", *(["Owner"] if repo else []), "Name", "Endpoint", "Credentials name", "Pool mgr running"]
    rows = [
        [
            item.id,
            *([item.owner] if isinstance(item, Repository) else []),
            item.name,
            item.endpoint.name,
            item.credentials_name or item.credentials.name,
            item.pool_manager_status.running,
        ]
        for item in items
    ]
    print_table(columns, rows)


IdArg = Annotated[str, typer.Argument(help="The ID (or unique name) to act on.")]
CredentialsOption = Annotated[
    str, typer.Option("--credentials", help="Credentials name (see `github credentials list`).")
]
BalancerOption = Annotated[
    str, typer.Option("--pool-balancer-type", help="How jobs are spread over pools: roundrobin or pack.")
]
SecretOption = Annotated[
    str | None,
    typer.Option(
        "--webhook-secret", help="Webhook secret; better left out (or '-'): prompted or read from stdin."
    ),
]


def make_app(kind: Kind) -> typer.Typer:
    """The sub-app for one entity kind."""
    app = sub_app(f"Manage {kind.plural} for which pygarm maintains runner pools.")

    @command(app, "list", "ls")
    def list_(ctx: typer.Context, fmt: FormatOption = OutputFormat.table) -> None:
        with client(ctx) as garm:
            items = kind.call(garm, "list_{plural}")()
        emit(fmt, items, lambda: print_entities(items))

    list_.__doc__ = f"List {kind.plural}."

    @command(app, "show", "get")
    def show(ctx: typer.Context, ref: IdArg, fmt: FormatOption = OutputFormat.table) -> None:
        with client(ctx) as garm:
            item = kind.call(garm, "get_{one}")(resolve(garm, kind, ref))
        emit(fmt, item, lambda: print_fields(entity_rows(item)))

    show.__doc__ = f"Show one {kind.noun} with its pools."

    @command(app, "update")
    def update(
        ctx: typer.Context,
        ref: IdArg,
        credentials: Annotated[
            str | None, typer.Option("--credentials", help="New credentials name.")
        ] = None,
        webhook_secret: Annotated[
            str | None,
            typer.Option("--webhook-secret", help="New webhook secret; '-' prompts or reads stdin."),
        ] = None,
        pool_balancer_type: Annotated[
            str | None, typer.Option("--pool-balancer-type", help="roundrobin or pack.")
        ] = None,
        fmt: FormatOption = OutputFormat.table,
    ) -> None:
        if credentials is None and webhook_secret is None and pool_balancer_type is None:
            fail("nothing to update: give --credentials, --webhook-secret or --pool-balancer-type")
        secret = UNSET if webhook_secret is None else read_secret("Webhook secret", webhook_secret)
        with client(ctx) as garm:
            item = kind.call(garm, "update_{one}")(
                resolve(garm, kind, ref),
                credentials_name=keep(credentials),
                webhook_secret=secret,
                pool_balancer_type=keep(pool_balancer_type),
            )
        emit(fmt, item, lambda: print_fields(entity_rows(item)))

    update.__doc__ = f"Change a {kind.noun}'s credentials, webhook secret or pool balancer type."

    @command(app, "delete", "remove", "rm", "del")
    def delete(
        ctx: typer.Context,
        ref: IdArg,
        keep_webhook: Annotated[
            bool, typer.Option("--keep-webhook", help="Leave the webhook installed on GitHub.")
        ] = False,
    ) -> None:
        with client(ctx) as garm:
            kind.call(garm, "delete_{one}")(resolve(garm, kind, ref), keep_webhook=keep_webhook)

    delete.__doc__ = f"Delete a {kind.noun} (refused while it has pools)."
    return app


repo_app = make_app(REPOSITORY)
org_app = make_app(ORGANIZATION)
enterprise_app = make_app(ENTERPRISE)


@command(repo_app, "add", "create")
def repo_add(
    ctx: typer.Context,
    owner: Annotated[
        str, typer.Option("--owner", help="The owner (user or organization) of the repository.")
    ],
    name: Annotated[str, typer.Option("--name", help="The name of the repository.")],
    credentials: CredentialsOption,
    webhook_secret: SecretOption = None,
    pool_balancer_type: BalancerOption = "roundrobin",
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Add a repository."""
    secret = read_secret("Webhook secret", webhook_secret)
    params = make_request(
        CreateRepoParams,
        owner=owner,
        name=name,
        credentials_name=credentials,
        webhook_secret=secret,
        pool_balancer_type=pool_balancer_type,
    )
    with client(ctx) as garm:
        item = garm.create_repository(params)
    emit(fmt, item, lambda: print_fields(entity_rows(item)))


def _add_named(
    kind: Kind, app: typer.Typer, model: type[CreateOrgParams] | type[CreateEnterpriseParams]
) -> None:
    @command(app, "add", "create")
    def add(
        ctx: typer.Context,
        name: Annotated[str, typer.Option("--name", help="The name on GitHub.")],
        credentials: CredentialsOption,
        webhook_secret: SecretOption = None,
        pool_balancer_type: BalancerOption = "roundrobin",
        fmt: FormatOption = OutputFormat.table,
    ) -> None:
        secret = read_secret("Webhook secret", webhook_secret)
        params = make_request(
            model,
            name=name,
            credentials_name=credentials,
            webhook_secret=secret,
            pool_balancer_type=pool_balancer_type,
        )
        with client(ctx) as garm:
            item = kind.call(garm, "create_{one}")(params)
        emit(fmt, item, lambda: print_fields(entity_rows(item)))

    add.__doc__ = f"Add an {kind.noun}."


_add_named(ORGANIZATION, org_app, CreateOrgParams)
_add_named(ENTERPRISE, enterprise_app, CreateEnterpriseParams)
