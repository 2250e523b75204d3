#!/usr/bin/env python3
"""A minimal conforming external provider for tests (docs/garm-protocol.md#minimal-provider). Standard library
only, Python 3.9+.

GARM (and pygarm) run this file with a *replaced* environment: only the ``GARM_*`` variables and the
configured pass-through prefixes reach it (docs/garm-protocol.md#provider-execution,
docs/garm-protocol.md#provider-environment). ``/usr/bin/env`` then finds ``python3`` on the C library's
default path, which is why the shebang works without ``PATH``.

State lives in a directory, named by ``TEST_PROVIDER_STATE_DIR`` or by ``state_dir`` in the JSON file that
``GARM_PROVIDER_CONFIG_FILE`` points at::

    <state_dir>/instances/<provider_id>.json   one file per instance
    <state_dir>/invocations/<ns>-<pid>.json    one file per run: command, argv, environment (in order),
                                               stdin, so tests can assert both byte for byte
                                               (docs/garm-protocol.md#provider-environment)
    <state_dir>/hang-child.pid                 pid of the helper started by the ``hang_child`` knob

Knobs: a key of the config file, or the environment variable ``TEST_PROVIDER_<KEY>`` (upper case), which
wins. Pass them through with ``environment_variables = ["TEST_PROVIDER_"]``.

=====================  ==========================================================================
``fail_create``        non-empty: ``CreateInstance`` writes this text and a newline to stderr, exits 1
``create_status``      status reported by ``CreateInstance`` (default ``running``)
``exit_codes``         ``Command=code,...``: exit with that code (after recording) for those commands
``output_<Command>``   print this text verbatim instead of the normal stdout of ``<Command>``
``stderr``             text written to stderr on every run (stderr is ignored on success)
``hang``               seconds to sleep before doing anything (for timeout tests)
``hang_child``         ``1``: while hanging, also run a child process in the same process group
=====================  ==========================================================================

Exit codes: 0 success, 30 not found (provider-common ``ExitCodeNotFound``), 1 any other failure.
"""

from __future__ import annotations  # lets the annotations below run on Python 3.9+

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

EXIT_NOT_FOUND = 30  # provider-common ExitCodeNotFound; GARM treats it as success on DeleteInstance
EXIT_FAILURE = 1


Pairs = list[tuple[str, str]]
Environ = dict[str, str]
Record = dict[str, Any]


def read_environment() -> Pairs:
    """The environment exactly as exec'd: Python may add LC_CTYPE to os.environ (PEP 538), /proc does not."""
    try:
        with open("/proc/self/environ", "rb") as handle:
            raw = handle.read()
    except OSError:
        return list(os.environ.items())
    pairs = []
    for entry in raw.split(b"\0"):
        if entry:
            name, _, value = entry.decode("utf-8", "replace").partition("=")
            pairs.append((name, value))
    return pairs


class Knobs:
    """Config-file values overridden by ``TEST_PROVIDER_*`` environment variables."""

    def __init__(self, environ: Environ) -> None:
        self.config: dict[str, Any] = {}
        path = environ.get("GARM_PROVIDER_CONFIG_FILE", "")
        if path:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
            if text.strip():
                self.config = json.loads(text)
        self.environ = environ

    def get(self, key: str, default: Any = "") -> Any:
        env_key = "TEST_PROVIDER_" + key.upper()
        if env_key in self.environ:
            return self.environ[env_key]
        return self.config.get(key, default)


class State:
    def __init__(self, root: str) -> None:
        self.root = root
        self.instances = os.path.join(root, "instances")
        self.invocations = os.path.join(root, "invocations")
        os.makedirs(self.instances, exist_ok=True)
        os.makedirs(self.invocations, exist_ok=True)

    def record(self, command: str, environ_pairs: Pairs, stdin: str) -> None:
        entry = {
            "command": command,
            "argv": sys.argv,
            "environ": environ_pairs,
            "stdin": stdin,
            "pid": os.getpid(),
        }
        name = f"{time.time_ns():020d}-{os.getpid()}.json"
        write_json(os.path.join(self.invocations, name), entry)

    def path_for(self, provider_id: str) -> str:
        return os.path.join(self.instances, provider_id + ".json")

    def all(self) -> list[Record]:
        found = []
        for name in sorted(os.listdir(self.instances)):
            if name.endswith(".json"):
                with open(os.path.join(self.instances, name), encoding="utf-8") as handle:
                    found.append(json.load(handle))
        return found

    def find(self, instance_id: str) -> Record | None:
        """GARM_INSTANCE_ID is a provider_id, or an instance name when GARM never got one
        (docs/garm-protocol.md#provider-environment)."""
        for record in self.all():
            if instance_id in (record["provider_id"], record["name"]):
                return record
        return None

    def save(self, record: Record) -> None:
        write_json(self.path_for(record["provider_id"]), record)

    def remove(self, record: Record) -> None:
        os.remove(self.path_for(record["provider_id"]))


def write_json(path: str, value: Any) -> None:
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(value, handle)
    os.replace(temporary, path)


def as_provider_instance(record: Record) -> Record:
    return {
        "provider_id": record["provider_id"],
        "name": record["name"],
        "os_type": record["os_type"],
        "os_name": "ubuntu",
        "os_version": "22.04",
        "os_arch": record["os_arch"],
        "status": record["status"],
        "addresses": [{"address": "10.0.0.5", "type": "private"}],
    }


def hang(knobs: Knobs, state: State) -> None:
    seconds = float(knobs.get("hang", "0") or 0)
    if seconds <= 0:
        return
    child = None
    if str(knobs.get("hang_child", "")) == "1":
        code = f"import time; time.sleep({seconds!r})"
        # Without PATH (the usual case here) Python cannot work out sys.executable; /proc knows.
        python = sys.executable or os.path.realpath("/proc/self/exe")
        child = subprocess.Popen([python, "-c", code])
        write_json(os.path.join(state.root, "hang-child.pid"), child.pid)
    time.sleep(seconds)
    if child is not None:
        child.wait()


def main() -> int:
    environ_pairs = read_environment()
    environ = dict(environ_pairs)
    command = environ.get("GARM_COMMAND", "")
    knobs = Knobs(environ)
    root = knobs.get("state_dir")
    if not root:
        sys.stderr.write("test provider: set TEST_PROVIDER_STATE_DIR or state_dir in the config file\n")
        return EXIT_FAILURE
    state = State(root)
    stdin = sys.stdin.read()
    state.record(command, environ_pairs, stdin)

    extra_stderr = knobs.get("stderr")
    if extra_stderr:
        sys.stderr.write(extra_stderr)
    hang(knobs, state)

    codes = dict(item.split("=", 1) for item in knobs.get("exit_codes").split(",") if "=" in item)
    if command in codes:
        return int(codes[command])
    override = knobs.get("output_" + command, None)

    handler = COMMANDS.get(command)
    if handler is None:
        return 0  # docs/garm-protocol.md#minimal-provider: unknown commands may be ignored
    code, output = handler(environ, knobs, state, stdin)
    if override is not None:
        output = override
    if output is not None:
        sys.stdout.write(output if isinstance(output, str) else json.dumps(output))
    return code


Result = tuple[int, Any]
Handler = Callable[[Environ, Knobs, State, str], Result]


def create_instance(environ: Environ, knobs: Knobs, state: State, stdin: str) -> Result:
    message = knobs.get("fail_create")
    if message:
        sys.stderr.write(message + "\n")
        return EXIT_FAILURE, None
    bootstrap = json.loads(stdin)
    record = {
        "provider_id": "prov-" + bootstrap["name"],
        "name": bootstrap["name"],
        "pool_id": environ.get("GARM_POOL_ID", ""),
        "controller_id": environ.get("GARM_CONTROLLER_ID", ""),
        "os_type": bootstrap.get("os_type", ""),
        "os_arch": bootstrap.get("arch", ""),
        "status": knobs.get("create_status", "running") or "running",
    }
    state.save(record)
    return 0, as_provider_instance(record)


def delete_instance(environ: Environ, knobs: Knobs, state: State, stdin: str) -> Result:
    record = state.find(environ.get("GARM_INSTANCE_ID", ""))
    if record is None:
        return EXIT_NOT_FOUND, None
    state.remove(record)
    return 0, None


def get_instance(environ: Environ, knobs: Knobs, state: State, stdin: str) -> Result:
    record = state.find(environ.get("GARM_INSTANCE_ID", ""))
    if record is None:
        return EXIT_NOT_FOUND, None
    return 0, as_provider_instance(record)


def list_instances(environ: Environ, knobs: Knobs, state: State, stdin: str) -> Result:
    pool_id = environ.get("GARM_POOL_ID", "")
    return 0, [as_provider_instance(r) for r in state.all() if r["pool_id"] == pool_id]


def set_status(status: str) -> Handler:
    def handler(environ: Environ, knobs: Knobs, state: State, stdin: str) -> Result:
        record = state.find(environ.get("GARM_INSTANCE_ID", ""))
        if record is None:
            return EXIT_NOT_FOUND, None
        record["status"] = status
        state.save(record)
        return 0, None

    return handler


def remove_all_instances(environ: Environ, knobs: Knobs, state: State, stdin: str) -> Result:
    controller_id = environ.get("GARM_CONTROLLER_ID", "")
    for record in state.all():
        if record["controller_id"] == controller_id:
            state.remove(record)
    return 0, None


COMMANDS: dict[str, Handler] = {
    "CreateInstance": create_instance,
    "DeleteInstance": delete_instance,
    "GetInstance": get_instance,
    "ListInstances": list_instances,
    "StartInstance": set_status("running"),
    "StopInstance": set_status("stopped"),
    "RemoveAllInstances": remove_all_instances,
}


if __name__ == "__main__":
    sys.exit(main())
