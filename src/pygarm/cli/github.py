"""``pygarm github endpoint ...`` and ``pygarm github credentials ...`` (garm-cli's nouns and flags).

A PAT is a secret: without ``--pat-oauth-token`` (or with ``--pat-oauth-token -``) it is prompted for
or read from stdin. An App's private key is read from ``--private-key-path``, never from the command
line. No output ever contains a token or a key: the wire models have no field for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from pygarm.cli._common import FormatOption, OutputFormat, client, fail, keep, read_secret
from pygarm.cli._typer import command, sub_app
from pygarm.cli.output import emit, print_fields, print_table
from pygarm.client import UNSET, Unset, make_request
from pygarm.params.github_requests import (
    CreateGithubCredentialsParams,
    CreateGithubEndpointParams,
    GithubAppParams,
    GithubPATParams,
)
from pygarm.params.models import GithubCredentials, GithubEndpoint

app = sub_app("Manage GitHub endpoints and credentials.")
endpoint_app = sub_app("Manage GitHub endpoints (github.com and GitHub Enterprise Server).")
credentials_app = sub_app("Manage GitHub credentials (a PAT or a GitHub App).")
app.add_typer(endpoint_app, name="endpoint")
app.add_typer(credentials_app, name="credentials")

NameArg = Annotated[str, typer.Argument(help="The endpoint name.")]
CredentialsIdArg = Annotated[int, typer.Argument(help="The credentials ID (see `github credentials list`).")]
DescriptionOption = Annotated[str | None, typer.Option("--description", help="A description.")]
BaseUrlOption = Annotated[str | None, typer.Option("--base-url", help="Base URL, e.g. https://github.com.")]
UploadUrlOption = Annotated[str | None, typer.Option("--upload-url", help="Upload URL of the endpoint.")]
ApiUrlOption = Annotated[str | None, typer.Option("--api-base-url", help="API base URL of the endpoint.")]
CaCertOption = Annotated[
    Path | None, typer.Option("--ca-cert-path", help="PEM CA bundle for a GHES endpoint.")
]
PatOption = Annotated[
    str | None,
    typer.Option(
        "--pat-oauth-token", help="The PAT; better left out (or '-'): it is then prompted or read from stdin."
    ),
]
AppIdOption = Annotated[int | None, typer.Option("--app-id", help="GitHub App ID.")]
InstallationOption = Annotated[int | None, typer.Option("--app-installation-id", help="App installation ID.")]
KeyPathOption = Annotated[
    Path | None, typer.Option("--private-key-path", help="App private key (PKCS#1 PEM).")
]


def _read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {what} {path}: {exc.strerror or exc}")


def endpoint_rows(ep: GithubEndpoint) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        ("Name", ep.name),
        ("Description", ep.description),
        ("Base URL", ep.base_url),
        ("Upload URL", ep.upload_base_url),
        ("API Base URL", ep.api_base_url),
    ]
    if ep.ca_cert_bundle:
        rows.append(("CA Cert Bundle", ep.ca_cert_bundle.decode("utf-8", "replace")))
    return rows


@command(endpoint_app, "list", "ls")
def endpoint_list(ctx: typer.Context, fmt: FormatOption = OutputFormat.table) -> None:
    """List the GitHub endpoints."""
    with client(ctx) as garm:
        items = garm.list_github_endpoints()
    emit(
        fmt,
        items,
        lambda: print_table(
            ("Name", "Base URL", "Description"), [(e.name, e.base_url, e.description) for e in items]
        ),
    )


@command(endpoint_app, "show", "get")
def endpoint_show(ctx: typer.Context, name: NameArg, fmt: FormatOption = OutputFormat.table) -> None:
    """Show one GitHub endpoint."""
    with client(ctx) as garm:
        item = garm.get_github_endpoint(name)
    emit(fmt, item, lambda: print_fields(endpoint_rows(item)))


@command(endpoint_app, "create", "add")
def endpoint_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Name of the endpoint.")],
    base_url: Annotated[str, typer.Option("--base-url", help="Base URL, e.g. https://ghes.example.com.")],
    api_base_url: Annotated[str, typer.Option("--api-base-url", help="API base URL.")],
    upload_url: Annotated[str, typer.Option("--upload-url", help="Upload URL.")],
    description: Annotated[str, typer.Option("--description", help="A description.")] = "",
    ca_cert_path: CaCertOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Create a GitHub (Enterprise Server) endpoint."""
    values: dict[str, Any] = {
        "name": name,
        "description": description,
        "base_url": base_url,
        "api_base_url": api_base_url,
        "upload_base_url": upload_url,
    }
    if ca_cert_path is not None:
        values["ca_cert_bundle"] = _read_file(ca_cert_path, "CA bundle")
    with client(ctx) as garm:
        item = garm.create_github_endpoint(make_request(CreateGithubEndpointParams, **values))
    emit(fmt, item, lambda: print_fields(endpoint_rows(item)))


@command(endpoint_app, "update")
def endpoint_update(
    ctx: typer.Context,
    name: NameArg,
    description: DescriptionOption = None,
    base_url: BaseUrlOption = None,
    upload_url: UploadUrlOption = None,
    api_base_url: ApiUrlOption = None,
    ca_cert_path: CaCertOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Change the given fields of an endpoint (github.com itself cannot be changed)."""
    bundle: bytes | Unset = UNSET if ca_cert_path is None else _read_file(ca_cert_path, "CA bundle")
    with client(ctx) as garm:
        item = garm.update_github_endpoint(
            name,
            description=keep(description),
            base_url=keep(base_url),
            upload_base_url=keep(upload_url),
            api_base_url=keep(api_base_url),
            ca_cert_bundle=bundle,
        )
    emit(fmt, item, lambda: print_fields(endpoint_rows(item)))


@command(endpoint_app, "delete", "remove", "rm")
def endpoint_delete(ctx: typer.Context, name: NameArg) -> None:
    """Delete an endpoint (refused while credentials use it)."""
    with client(ctx) as garm:
        garm.get_github_endpoint(name)  # GARM answers a delete of an unknown one with 200: 404 first
        garm.delete_github_endpoint(name)


def credentials_rows(c: GithubCredentials) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        ("ID", c.id),
        ("Name", c.name),
        ("Description", c.description),
        ("Base URL", c.base_url),
        ("API URL", c.api_base_url),
        ("Upload URL", c.upload_base_url),
        ("Type", c.auth_type),
        ("Endpoint", c.endpoint.name),
    ]
    rows += [("Repositories", f"{r.owner}/{r.name}") for r in c.repositories or []]
    rows += [("Organizations", o.name) for o in c.organizations or []]
    rows += [("Enterprises", e.name) for e in c.enterprises or []]
    return rows


@command(credentials_app, "list", "ls")
def credentials_list(ctx: typer.Context, fmt: FormatOption = OutputFormat.table) -> None:
    """List the GitHub credentials."""
    with client(ctx) as garm:
        items = garm.list_github_credentials()
    emit(
        fmt,
        items,
        lambda: print_table(
            ("ID", "Name", "Description", "Base URL", "Type", "Endpoint"),
            [(c.id, c.name, c.description, c.base_url, c.auth_type, c.endpoint.name) for c in items],
        ),
    )


@command(credentials_app, "show", "get")
def credentials_show(
    ctx: typer.Context, credentials_id: CredentialsIdArg, fmt: FormatOption = OutputFormat.table
) -> None:
    """Show one set of credentials and what uses them."""
    with client(ctx) as garm:
        item = garm.get_github_credentials(credentials_id)
    emit(fmt, item, lambda: print_fields(credentials_rows(item)))


def _app_params(
    app_id: int | None, installation_id: int | None, key_path: Path | None
) -> GithubAppParams | None:
    if app_id is None and installation_id is None and key_path is None:
        return None
    if app_id is None or installation_id is None or key_path is None:
        fail("a GitHub App needs --app-id, --app-installation-id and --private-key-path together")
    key = _read_file(key_path, "private key")
    return GithubAppParams(app_id=app_id, installation_id=installation_id, private_key_bytes=key)


@command(credentials_app, "add", "create")
def credentials_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Name of the credentials.")],
    endpoint: Annotated[str, typer.Option("--endpoint", help="The endpoint these credentials are for.")],
    auth_type: Annotated[str, typer.Option("--auth-type", help="pat or app.")],
    description: Annotated[str, typer.Option("--description", help="A description.")] = "",
    pat_oauth_token: PatOption = None,
    app_id: AppIdOption = None,
    app_installation_id: InstallationOption = None,
    private_key_path: KeyPathOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Add GitHub credentials: a PAT (prompted for) or an App (--app-id, --app-installation-id, key)."""
    params: dict[str, Any] = {
        "name": name,
        "description": description,
        "endpoint": endpoint,
        "auth_type": auth_type,
    }
    if auth_type == "pat":
        if app_id is not None or app_installation_id is not None or private_key_path is not None:
            fail("--auth-type pat takes no --app-* or --private-key-path options")
        params["pat"] = GithubPATParams(oauth2_token=read_secret("PAT", pat_oauth_token))
    elif auth_type == "app":
        if pat_oauth_token is not None:
            fail("--auth-type app takes no --pat-oauth-token")
        params["app"] = _app_params(app_id, app_installation_id, private_key_path) or fail(
            "--auth-type app needs --app-id, --app-installation-id and --private-key-path"
        )
    else:
        fail(f"invalid --auth-type {auth_type!r}: use pat or app")
    with client(ctx) as garm:
        item = garm.create_github_credentials(CreateGithubCredentialsParams.model_validate(params))
    emit(fmt, item, lambda: print_fields(credentials_rows(item)))


@command(credentials_app, "update")
def credentials_update(
    ctx: typer.Context,
    credentials_id: CredentialsIdArg,
    name: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    description: DescriptionOption = None,
    pat_oauth_token: Annotated[
        str | None, typer.Option("--pat-oauth-token", help="Replace the PAT; '-' prompts or reads stdin.")
    ] = None,
    app_id: AppIdOption = None,
    app_installation_id: InstallationOption = None,
    private_key_path: KeyPathOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Rename or describe credentials, or replace their secret (of the same type)."""
    app_params = _app_params(app_id, app_installation_id, private_key_path)
    if app_params is not None and pat_oauth_token is not None:
        fail("give either a new PAT or new App details, not both")
    pat = (
        UNSET
        if pat_oauth_token is None
        else GithubPATParams(oauth2_token=read_secret("PAT", pat_oauth_token))
    )
    with client(ctx) as garm:
        item = garm.update_github_credentials(
            credentials_id,
            name=keep(name),
            description=keep(description),
            pat=pat,
            app=keep(app_params),
        )
    emit(fmt, item, lambda: print_fields(credentials_rows(item)))


@command(credentials_app, "delete", "remove", "rm")
def credentials_delete(ctx: typer.Context, credentials_id: CredentialsIdArg) -> None:
    """Delete credentials (refused while a repository, organization or enterprise uses them)."""
    with client(ctx) as garm:
        garm.get_github_credentials(credentials_id)  # GARM's delete answers 200 for unknown IDs: 404 here
        garm.delete_github_credentials(credentials_id)
