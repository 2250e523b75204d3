"""``pygarm runner list|show|delete``, ``pygarm job list`` and ``pygarm provider list``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from pygarm.cli._common import FormatOption, OutputFormat, at_most_one, client, fail
from pygarm.cli._typer import command, sub_app
from pygarm.cli.entities import ENTERPRISE, ORGANIZATION, REPOSITORY, resolve
from pygarm.cli.output import cell, emit, print_fields, print_table
from pygarm.params.models import Instance, Job

runner_app = sub_app("List, show and delete runners (instances).")
job_app = sub_app("List the jobs recorded from GitHub webhooks.")
provider_app = sub_app("List the providers configured on the server.")

NameArg = Annotated[str, typer.Argument(help="The runner name.")]


def instance_rows(inst: Instance) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        ("ID", inst.id),
        ("Provider ID", inst.provider_id),
        ("Name", inst.name),
        ("Agent ID", inst.agent_id),
        ("OS Type", inst.os_type),
        ("OS Architecture", inst.os_arch),
        ("OS Name", inst.os_name),
        ("OS Version", inst.os_version),
        ("Status", inst.status),
        ("Runner Status", inst.runner_status),
        ("Pool ID", inst.pool_id),
    ]
    rows += [("Addresses", address.address) for address in inst.addresses or []]
    if inst.provider_fault:
        rows.append(("Provider Fault", inst.provider_fault.decode("utf-8", "replace")))
    rows += [
        ("Status Updates", f"{cell(message.created_at)}: {message.message}")
        for message in inst.status_messages or []
    ]
    return rows


@command(runner_app, "list", "ls")
def runner_list(
    ctx: typer.Context,
    pool_id: Annotated[str | None, typer.Argument(help="List the runners of this pool.")] = None,
    repo: Annotated[str | None, typer.Option("--repo", "-r", help="Repository ID or owner/name.")] = None,
    org: Annotated[str | None, typer.Option("--org", "-o", help="Organization ID or name.")] = None,
    enterprise: Annotated[
        str | None, typer.Option("--enterprise", "-e", help="Enterprise ID or name.")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", "-a", help="All runners (the default).")] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """List runners of a pool, a repository, an organization, an enterprise, or all of them."""
    chosen = at_most_one(repo=repo, org=org, enterprise=enterprise, all=all_)
    if pool_id and chosen:
        fail("specifying a pool ID and any of [all org repo enterprise] are mutually exclusive")
    with client(ctx) as garm:
        if pool_id:
            items = garm.list_pool_instances(pool_id)
        elif repo:
            items = garm.list_repository_instances(resolve(garm, REPOSITORY, repo))
        elif org:
            items = garm.list_organization_instances(resolve(garm, ORGANIZATION, org))
        elif enterprise:
            items = garm.list_enterprise_instances(resolve(garm, ENTERPRISE, enterprise))
        else:
            items = garm.list_instances()
    emit(
        fmt,
        items,
        lambda: print_table(
            ("Nr", "Name", "Status", "Runner Status", "Pool ID"),
            [(index, i.name, i.status, i.runner_status, i.pool_id) for index, i in enumerate(items, start=1)],
        ),
    )


@command(runner_app, "show", "get")
def runner_show(ctx: typer.Context, name: NameArg, fmt: FormatOption = OutputFormat.table) -> None:
    """Show one runner with its addresses and status messages."""
    with client(ctx) as garm:
        inst = garm.get_instance(name)
    emit(fmt, inst, lambda: print_fields(instance_rows(inst)))


@command(runner_app, "delete", "remove", "rm", "del")
def runner_delete(
    ctx: typer.Context,
    name: NameArg,
    force_remove_runner: Annotated[
        bool, typer.Option("--force-remove-runner", "-f", help="Ignore provider errors while removing it.")
    ] = False,
    bypass_github_unauthorized: Annotated[
        bool,
        typer.Option(
            "--bypass-github-unauthorized",
            "-b",
            help="Go on when GitHub rejects the credentials (may orphan it).",
        ),
    ] = False,
) -> None:
    """Mark a runner for removal; the pool manager removes it from GitHub and the provider."""
    with client(ctx) as garm:
        garm.delete_instance(
            name, force_remove=force_remove_runner, bypass_github_unauthorized=bypass_github_unauthorized
        )


def job_row(job: Job) -> tuple[Any, ...]:
    return (
        job.id,
        job.name,
        job.status,
        job.conclusion,
        job.runner_name,
        f"{job.repository_owner}/{job.repository_name}",
        " ".join(job.labels or []),
        job.locked_by,
    )


@command(job_app, "list", "ls")
def job_list(ctx: typer.Context, fmt: FormatOption = OutputFormat.table) -> None:
    """List the jobs GARM has seen."""
    with client(ctx) as garm:
        jobs = garm.list_jobs()
    emit(
        fmt,
        jobs,
        lambda: print_table(
            (
                "ID",
                "Name",
                "Status",
                "Conclusion",
                "Runner Name",
                "Repository",
                "Requested Labels",
                "Locked by",
            ),
            [job_row(job) for job in jobs],
        ),
    )


@command(provider_app, "list", "ls")
def provider_list(ctx: typer.Context, fmt: FormatOption = OutputFormat.table) -> None:
    """List the providers runners can be created with."""
    with client(ctx) as garm:
        providers = garm.list_providers()
    emit(
        fmt,
        providers,
        lambda: print_table(
            ("Name", "Description", "Type"), [(p.name, p.description, p.type) for p in providers]
        ),
    )
