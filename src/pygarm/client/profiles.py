"""garm-cli's profile file, read and written in garm-cli's own format and place
(docs/garm-protocol.md#profile-file).

So a login made with ``garm-cli`` works with ``pygarm`` and vice versa::

    active_manager = "local"

    [[manager]]
      name = "local"
      base_url = "http://127.0.0.1:9997"
      bearer_token = "eyJhbGciOiJIUzI1NiIs..."

The file lives at ``$HOME/.local/share/garm-cli/config.toml`` (``%APPDATA%\\garm-cli\\config.toml`` on
Windows). garm-cli creates the directory with mode 0710; the file holds bearer tokens, so pygarm writes
it with mode 0600, atomically (a crash never leaves half a file). The active profile is
``active_manager``, or the first ``[[manager]]`` when that name is unset or unknown, as in garm-cli.
"""

from __future__ import annotations

import os
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

__all__ = ["Profile", "ProfileError", "ProfileFile", "default_path"]

APP_FOLDER: Final = "garm-cli"
FILE_NAME: Final = "config.toml"
DIR_MODE: Final = 0o710
FILE_MODE: Final = 0o600


class ProfileError(Exception):
    """The profile file is unreadable, or a named profile does not exist (one-line message)."""


@dataclass
class Profile:
    name: str
    base_url: str
    bearer_token: str = field(repr=False)


def default_path() -> Path:
    """Where garm-cli keeps its profiles on this OS (it honours ``$HOME`` / ``%APPDATA%``)."""
    if sys.platform == "win32":
        appdata = os.environ.get("APPDATA")
        base = Path(appdata) if appdata else Path.home() / "AppData" / "Roaming"
        return base / APP_FOLDER / FILE_NAME
    return Path.home() / ".local" / "share" / APP_FOLDER / FILE_NAME


@dataclass
class ProfileFile:
    path: Path
    active_manager: str = ""
    managers: list[Profile] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path | None = None) -> ProfileFile:
        """The profiles at ``path`` (default: garm-cli's); a missing file is an empty set, as in garm-cli."""
        path = path or default_path()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path=path)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ProfileError(f"cannot read profiles from {path}: {exc}") from None
        managers = []
        for index, item in enumerate(data.get("manager") or []):
            if not isinstance(item, dict):
                raise ProfileError(f"{path}: [[manager]] entry {index + 1} is not a table")
            managers.append(
                Profile(
                    name=str(item.get("name", "")),
                    base_url=str(item.get("base_url", "")),
                    bearer_token=str(item.get("bearer_token", "")),
                )
            )
        return cls(path=path, active_manager=str(data.get("active_manager", "")), managers=managers)

    def save(self) -> None:
        """Write the file in garm-cli's layout, atomically, readable by the owner only."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        fd, tmp = tempfile.mkstemp(prefix=".config.", suffix=".toml", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(self.render())
            os.chmod(tmp, FILE_MODE)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def render(self) -> str:
        lines = [f"active_manager = {_toml_string(self.active_manager)}"]
        for manager in self.managers:
            lines += [
                "",
                "[[manager]]",
                f"  name = {_toml_string(manager.name)}",
                f"  base_url = {_toml_string(manager.base_url)}",
                f"  bearer_token = {_toml_string(manager.bearer_token)}",
            ]
        return "\n".join(lines) + "\n"

    def get(self, name: str) -> Profile | None:
        return next((m for m in self.managers if m.name == name), None)

    def active(self) -> Profile | None:
        """``active_manager`` if it names a profile, else the first profile, else ``None``."""
        return self.get(self.active_manager) or (self.managers[0] if self.managers else None)

    def require(self, name: str | None = None) -> Profile:
        """The named (or active) profile, or a :class:`ProfileError` that says how to create one."""
        profile = self.get(name) if name else self.active()
        if profile is not None:
            return profile
        if name:
            raise ProfileError(f"no profile named {name!r} in {self.path} (see `pygarm profile list`)")
        raise ProfileError(f"no profile in {self.path}: run `pygarm init` or `pygarm profile add` first")

    def add(self, profile: Profile, *, activate: bool = True) -> None:
        if not profile.name:
            raise ProfileError("a profile needs a name")
        if self.get(profile.name) is not None:
            raise ProfileError(f"a manager with name {profile.name} already exists in your local config")
        self.managers.append(profile)
        if activate:
            self.active_manager = profile.name

    def delete(self, name: str) -> None:
        """Remove ``name``; if it was active, the first remaining profile becomes active (garm-cli)."""
        if self.get(name) is None:
            raise ProfileError(f"a profile with name {name} does not exist")
        self.managers = [m for m in self.managers if m.name != name]
        if self.active_manager == name:
            self.active_manager = self.managers[0].name if self.managers else ""

    def switch(self, name: str) -> None:
        if self.get(name) is None:
            raise ProfileError(f"a profile with name {name} does not exist")
        self.active_manager = name

    def set_token(self, name: str, token: str) -> None:
        profile = self.get(name)
        if profile is None:
            raise ProfileError(f"profile {name} not found")
        profile.bearer_token = token


_TOML_ESCAPES: Final = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _toml_string(value: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for char in value:
        if char in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
