"""garm-cli's profile file: same place, same format, both directions (docs/garm-protocol.md#profile-file)."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest

from pygarm.client import Profile, ProfileError, ProfileFile
from pygarm.client.profiles import default_path

# Written by garm-cli (BurntSushi/toml's encoder): indented keys, a blank line between tables.
GARM_CLI_FILE = """active_manager = "second"

[[manager]]
  name = "local"
  base_url = "http://127.0.0.1:9997"
  bearer_token = "tok-1"

[[manager]]
  name = "second"
  base_url = "https://garm.example.com"
  bearer_token = "tok-2"
"""


def test_default_path_is_garm_clis(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_path() == tmp_path / ".local" / "share" / "garm-cli" / "config.toml"


def test_reads_a_file_written_by_garm_cli(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(GARM_CLI_FILE)
    profiles = ProfileFile.load(path)
    assert [p.name for p in profiles.managers] == ["local", "second"]
    active = profiles.require()
    assert (active.name, active.base_url, active.bearer_token) == (
        "second",
        "https://garm.example.com",
        "tok-2",
    )
    assert profiles.require("local").bearer_token == "tok-1"


def test_writes_garm_clis_layout_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "garm-cli" / "config.toml"
    profiles = ProfileFile.load(path)
    profiles.add(Profile("local", "http://127.0.0.1:9997", "tok-1"))
    profiles.add(Profile("second", "https://garm.example.com", "tok-2"))
    profiles.save()
    assert path.read_text() == GARM_CLI_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0o010  # garm-cli's 0710


def test_strings_are_escaped(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    profiles = ProfileFile(path=path)
    profiles.add(Profile('we"ird\\name\n', "http://h", "t\u0001"))
    profiles.save()
    data = tomllib.loads(path.read_text())
    assert data["manager"][0]["name"] == 'we"ird\\name\n' and data["manager"][0]["bearer_token"] == "t\u0001"


def test_active_falls_back_to_the_first_profile(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(GARM_CLI_FILE.replace('active_manager = "second"', 'active_manager = "gone"'))
    assert ProfileFile.load(path).require().name == "local"


def test_delete_of_the_active_profile_activates_the_first(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(GARM_CLI_FILE)
    profiles = ProfileFile.load(path)
    profiles.delete("second")
    assert profiles.active_manager == "local"
    profiles.delete("local")
    assert profiles.active_manager == "" and profiles.active() is None
    with pytest.raises(ProfileError, match="run `pygarm init`"):
        profiles.require()


def test_errors_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("active_manager = [")
    with pytest.raises(ProfileError, match="cannot read profiles") as info:
        ProfileFile.load(path)
    assert "\n" not in str(info.value)
    profiles = ProfileFile(path=path)
    profiles.add(Profile("a", "http://h", "t"))
    with pytest.raises(ProfileError, match="already exists"):
        profiles.add(Profile("a", "http://h", "t"))
    with pytest.raises(ProfileError, match="does not exist"):
        profiles.switch("b")


def test_missing_file_is_empty(tmp_path: Path) -> None:
    assert ProfileFile.load(tmp_path / "none.toml").managers == []
