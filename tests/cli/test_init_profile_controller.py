"""``pygarm init``, ``profile ...`` and ``controller ...`` against a live server."""

from __future__ import annotations

from pathlib import Path

from pygarm.client import GarmClient, Profile, ProfileFile
from tests.cli.conftest import PROFILE, Cli
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_USERNAME
from tests.live import LiveServer


def test_init_non_interactive_sets_up_everything(cli: Cli, live_server: LiveServer, home: Path) -> None:
    """garm-cli init's flags: first-run, login, profile saved and active, controller URLs defaulted."""
    out = cli.json(
        "init", "--name", "local", "--url", live_server.base_url + "/",
        "--username", ADMIN_USERNAME, "--email", ADMIN_EMAIL, "--full-name", "Admin",
        "--password", ADMIN_PASSWORD,
    )  # fmt: skip
    assert out["user"]["username"] == ADMIN_USERNAME and out["user"]["is_admin"] is True
    base = live_server.base_url
    assert (
        out["controller"]["metadata_url"],
        out["controller"]["callback_url"],
        out["controller"]["webhook_url"],
    ) == (
        f"{base}/api/v1/metadata",
        f"{base}/api/v1/callbacks",
        f"{base}/webhooks",
    )
    profile = ProfileFile.load().require()
    assert (profile.name, profile.base_url) == ("local", base)
    text = (home / ".local/share/garm-cli/config.toml").read_text()
    assert 'active_manager = "local"' in text and ADMIN_PASSWORD not in text
    with GarmClient.from_profile() as garm:  # the saved token works
        assert garm.get_controller().metadata_url == f"{base}/api/v1/metadata"


def test_init_reads_the_password_from_stdin_and_custom_urls(cli: Cli, live_server: LiveServer) -> None:
    result = cli(
        "init", "-n", "local", "-a", live_server.base_url, "-u", ADMIN_USERNAME, "-e", ADMIN_EMAIL,
        "-m", "https://garm.example.com/api/v1/metadata", "-c", "https://garm.example.com/api/v1/callbacks",
        "-w", "https://garm.example.com/webhooks",
        input=ADMIN_PASSWORD + "\n",
    )  # fmt: skip
    assert ADMIN_PASSWORD not in result.output  # never echoed
    assert "Congrats! Your controller is now initialized." in result.stdout
    assert "https://garm.example.com/webhooks" in result.stdout


def test_init_refuses_an_existing_profile_and_a_second_first_run(cli: Cli, logged_in: LiveServer) -> None:
    line = cli.fails(
        "init", "--name", PROFILE, "--url", logged_in.base_url, "-u", "x", "-e", "x@x.io", "-p", "x"
    )
    assert "a manager with name test already exists" in line
    line = cli.fails(
        "init", "--name", "again", "--url", logged_in.base_url, "-u", "x", "-e", "x@x.io", "-p", "x"
    )
    assert line == "error: Conflict: already initialized (HTTP 409)"


def test_profile_add_list_switch_delete(cli: Cli, logged_in: LiveServer) -> None:
    cli("profile", "add", "--name", "second", "--url", logged_in.base_url, "--username", ADMIN_EMAIL,
        input=ADMIN_PASSWORD + "\n")  # fmt: skip
    listed = cli.json("profile", "list")
    assert listed == [
        {"name": PROFILE, "base_url": logged_in.base_url, "active": False},
        {"name": "second", "base_url": logged_in.base_url, "active": True},
    ]
    assert "second (current)" in cli("profile", "ls").stdout
    cli("profile", "switch", PROFILE)
    assert ProfileFile.load().require().name == PROFILE
    cli("profile", "rm", PROFILE)
    assert [p["name"] for p in cli.json("profile", "list")] == ["second"]
    assert ProfileFile.load().require().name == "second"
    assert "does not exist" in cli.fails("profile", "switch", "nope")


def test_profile_add_with_a_wrong_password_fails_in_one_line(cli: Cli, logged_in: LiveServer) -> None:
    line = cli.fails(
        "profile", "add", "-n", "x", "-a", logged_in.base_url, "-u", ADMIN_USERNAME, input="wrong\n"
    )
    assert line == "error: Not Authorized (HTTP 401)"
    assert ProfileFile.load().get("x") is None


def test_profile_login_refreshes_the_token(cli: Cli, logged_in: LiveServer) -> None:
    before = ProfileFile.load().require().bearer_token
    cli("profile", "login", "-u", ADMIN_USERNAME, input=ADMIN_PASSWORD + "\n")
    after = ProfileFile.load().require().bearer_token
    assert after and after != before


def test_controller_show_and_update(cli: Cli, logged_in: LiveServer) -> None:
    info = cli.json("controller", "show")
    assert info["webhook_url"] == "http://127.0.0.1:9997/webhooks" and info["hostname"]
    updated = cli.json("controller", "update", "--webhook-url", "https://hooks.example.com/webhooks",
                       "--minimum-job-age-backoff", "0")  # fmt: skip
    assert updated["webhook_url"] == "https://hooks.example.com/webhooks"
    assert updated["minimum_job_age_backoff"] == 0
    assert updated["metadata_url"] == info["metadata_url"]  # left as it was
    assert "Controller ID" in cli("controller", "show").stdout
    assert "invalid webhook_url" in cli.fails("controller", "update", "--webhook-url", "not a url")


def test_no_profile_is_a_clear_error(cli: Cli) -> None:
    assert "run `pygarm init` or `pygarm profile add` first" in cli.fails("repo", "list")


def test_unreachable_server_is_one_line(cli: Cli) -> None:
    profiles = ProfileFile.load()
    profiles.add(Profile("down", "http://127.0.0.1:9", "t"))
    profiles.save()
    assert cli.fails("controller", "show").startswith("error: cannot reach http://127.0.0.1:9")


def test_profile_option_picks_another_profile(cli: Cli, logged_in: LiveServer) -> None:
    profiles = ProfileFile.load()
    profiles.add(Profile("down", "http://127.0.0.1:9", "t"))  # now active
    profiles.save()
    assert cli.json("--profile", PROFILE, "controller", "show")["controller_id"]


def test_invalid_url_is_one_line(cli: Cli) -> None:
    line = cli.fails("profile", "add", "-n", "x", "-a", "127.0.0.1:9997", "-u", "admin", "-p", "pw")
    assert line.startswith("error: invalid base URL '127.0.0.1:9997'")


def test_secret_missing_on_stdin_is_one_line(cli: Cli, logged_in: LiveServer) -> None:
    assert "no password given" in cli.fails("profile", "add", "-n", "x", "-a", logged_in.base_url, "-u", "a")


def test_serve_is_a_pygarm_command(cli: Cli, tmp_path: Path) -> None:
    assert "--config" in cli("serve", "--help").stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("[apiserver]\nbind = 'not-an-ip'\n")
    result = cli("serve", "--config", str(bad), ok=False)
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1


def test_usage_errors_are_one_line_with_exit_code_2(cli: Cli) -> None:
    for args in (["repo", "add", "--owner", "x"], ["pool", "list", "--format", "xml"], ["nope"]):
        result = cli(*args, ok=False)
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert "--help')" in lines[0]
