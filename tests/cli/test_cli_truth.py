"""What the CLI prints and returns is what happened: pool tables as garm-cli lays them out, deletes of
unknown IDs fail with the server's 404."""

from __future__ import annotations

import uuid

import pytest

from tests.cli.conftest import Cli
from tests.cli.test_nouns import WEBHOOK_SECRET, add_pat_credentials
from tests.live import LiveServer

pytestmark = pytest.mark.slow


def table(stdout: str) -> list[dict[str, str]]:
    """The rows of a rich table as ``{column: cell}``."""
    lines = [line for line in stdout.splitlines() if line.startswith(("┃", "│"))]
    header, *rows = ([cell.strip() for cell in line.strip("┃│").split(line[0])] for line in lines)
    return [dict(zip(header, row, strict=True)) for row in rows]


def test_pool_list_columns_and_tag_order(cli: Cli, logged_in: LiveServer) -> None:
    add_pat_credentials(cli)
    cli("repo", "add", "--owner", "octo-org", "--name", "hello-world", "--credentials", "gh-pat",
        "--webhook-secret", WEBHOOK_SECRET)  # fmt: skip
    cli("org", "add", "--name", "octo-org", "--credentials", "gh-pat", "--webhook-secret", WEBHOOK_SECRET)
    common = ["--provider-name", "fake", "--image", "ubuntu:22.04", "--flavor", "small"]
    repo_pool = cli.json(
        "pool", "add", "--repo", "octo-org/hello-world", *common, "--tags", "zeta,self-hosted,alpha"
    )
    org_pool = cli.json("pool", "add", "--org", "octo-org", *common, "--tags", "linux", "--priority", "3")
    server_order = [tag["name"] for tag in repo_pool["tags"]]
    assert server_order != sorted(server_order)  # so that a sorted table would be caught

    rows = {row["ID"]: row for row in table(cli("pool", "list").stdout)}
    assert list(table(cli("pool", "list").stdout)[0]) == [
        "ID", "Image", "Flavor", "Tags", "Belongs to", "Level", "Enabled", "Runner Prefix", "Priority",
    ]  # fmt: skip
    assert rows[repo_pool["id"]]["Belongs to"] == "octo-org/hello-world"
    assert rows[repo_pool["id"]]["Level"] == "repo"
    assert rows[repo_pool["id"]]["Tags"] == " ".join(server_order)
    assert rows[org_pool["id"]]["Belongs to"] == "octo-org"
    assert rows[org_pool["id"]]["Level"] == "org"
    assert rows[org_pool["id"]]["Priority"] == "3" and rows[org_pool["id"]]["Runner Prefix"] == "garm"

    shown = {row["Field"]: row["Value"] for row in table(cli("pool", "show", repo_pool["id"]).stdout)}
    assert shown["Belongs to"] == "octo-org/hello-world" and shown["Level"] == "repo"
    assert shown["Tags"] == ", ".join(server_order)


def test_deleting_an_unknown_id_fails_with_404(cli: Cli, logged_in: LiveServer) -> None:
    unknown = str(uuid.uuid4())
    not_found = "error: Not Found: not found (HTTP 404)"
    for args in (
        ("github", "endpoint", "delete", "no-such-endpoint"),
        ("github", "credentials", "delete", "999"),
        ("repo", "delete", unknown),
        ("org", "delete", unknown),
        ("enterprise", "delete", unknown),
        ("pool", "delete", unknown),
        ("runner", "delete", "no-such-runner"),
    ):
        assert cli.fails(*args).startswith("error: Not Found"), args
    assert cli.fails("pool", "rm", unknown) == not_found
    assert "does not exist" in cli.fails("profile", "delete", "no-such-profile")
