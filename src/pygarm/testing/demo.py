"""An offline demo of GARM's whole runner lifecycle: the bundled fake GitHub, the bundled test provider, and a
stand-in for the runner agent, set up over pygarm's own REST API (the steps of
docs/garm-protocol.md#end-to-end).

:func:`bootstrap` creates the admin user, a garm-cli profile named ``demo`` (made active), the controller
URLs, a GitHub endpoint pointing at the fake GitHub, PAT credentials, the repository ``demo-org/hello-world``
and a pool with two idle runners on the ``demo`` provider. :class:`RunnerAgent` plays the runner software
inside each instance the provider "creates": it reports ``installing`` then ``idle`` through the instance
callbacks, with the instance token GARM gave the provider. :func:`run_job` plays GitHub: it sends a signed
``workflow_job`` webhook ``queued``, then ``in_progress`` on an idle runner, then ``completed``.

Used by ``pygarm demo`` (``src/pygarm/cli/demo.py``) and by the README tour's test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from pygarm.client import Profile, ProfileFile

PROFILE_NAME = "demo"
ADMIN_USERNAME = "admin"
PROVIDER_NAME = "demo"
ENDPOINT_NAME = "fake-github"
CREDENTIALS_NAME = "demo-creds"
REPO_OWNER, REPO_NAME = "demo-org", "hello-world"
POOL_TAGS = ["self-hosted", "linux", "x64", "demo"]
MIN_IDLE_RUNNERS = 2
MAX_RUNNERS = 4
STATE_FILE = "demo.json"
HTTP_TIMEOUT = 10.0
AGENT_POLL_S = 0.3
Log = Callable[[str], None]


class DemoError(Exception):
    """The demo cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class DemoFiles:
    """Everything the demo keeps, under one directory that ``pygarm demo`` recreates on every start."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def database(self) -> Path:
        return self.root / "garm.db"

    @property
    def provider_config(self) -> Path:
        return self.root / "provider.json"

    @property
    def provider_state(self) -> Path:
        return self.root / "provider-state"

    @property
    def state(self) -> Path:
        return self.root / STATE_FILE

    def reset(self) -> None:
        """Start from nothing: a demo that restarts with old runners and a stale fake GitHub URL confuses."""
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True, mode=0o700)
        self.provider_state.mkdir(mode=0o700)
        self.provider_config.write_text(json.dumps({"state_dir": str(self.provider_state)}))


@dataclass
class DemoState:
    """What ``pygarm demo job`` needs from the running demo; saved 0600 (it holds the admin password)."""

    base_url: str
    github_url: str
    controller_id: str
    admin_password: str
    webhook_secret: str
    repo_id: str = ""
    pool_id: str = ""

    def save(self, path: Path) -> None:
        write_private(path, json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> DemoState:
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            raise DemoError(f"no demo found in {path.parent}: start one with `pygarm demo`") from None
        except (ValueError, TypeError) as exc:
            raise DemoError(f"{path} is not a demo state file ({exc}); restart `pygarm demo`") from None


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file that is 0600 from its first byte (it holds secrets)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def provider_executable() -> str:
    """The ``pygarm-test-provider`` console script next to this Python (it runs with GARM's bare
    environment, so it must not rely on ``PATH``)."""
    beside = Path(sys.executable).parent / "pygarm-test-provider"
    found = str(beside) if beside.exists() else shutil.which("pygarm-test-provider")
    if not found:
        raise DemoError("the pygarm-test-provider command is missing: reinstall pygarm")
    return str(Path(found).resolve()) if not beside.exists() else str(beside)


def config_text(files: DemoFiles, port: int) -> str:
    """A GARM-format config: SQLite in the demo directory, the test provider as ``demo``, and the pool
    manager's consolidation loop every second instead of GARM's 5 s, so that runners appear quickly."""
    return f"""# Written by `pygarm demo`: a throw-away server with a fake GitHub and a test provider.
[logging]
enable_log_streamer = true
log_level = "info"

[apiserver]
bind = "127.0.0.1"
port = {port}
use_tls = false

[jwt_auth]
secret = "{secrets.token_hex(32)}"
time_to_live = "24h"

[database]
backend = "sqlite3"
passphrase = "{secrets.token_hex(16)}"
  [database.sqlite3]
  db_file = "{files.database}"

[[provider]]
name = "{PROVIDER_NAME}"
provider_type = "external"
description = "pygarm's bundled test provider: records runners instead of starting machines"
  [provider.external]
  provider_executable = "{provider_executable()}"
  config_file = "{files.provider_config}"

[pool_manager]
consolidate_interval = "1s"
scale_down_interval = "1h"
"""


def wait_until_up(base_url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(base_url + "/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise DemoError(f"the demo server did not answer on {base_url} within {timeout:.0f}s")
        time.sleep(0.1)


def _call(http: httpx.Client, method: str, path: str, body: Any = None) -> Any:
    response = http.request(method, "/api/v1" + path, json=body)
    if response.status_code >= 400:
        raise DemoError(f"{method} /api/v1{path} failed: {response.status_code} {response.text}")
    return response.json() if response.content else None


def bootstrap(base_url: str, github_url: str, log: Log) -> DemoState:
    """Set the fresh server up over REST and save the ``demo`` profile (made active)."""
    password = secrets.token_urlsafe(18)
    state = DemoState(
        base_url=base_url,
        github_url=github_url,
        controller_id="",
        admin_password=password,
        webhook_secret=secrets.token_hex(16),
    )
    with httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT) as http:
        user = {"username": ADMIN_USERNAME, "email": "admin@demo.invalid", "password": password}
        _call(http, "POST", "/first-run", user)
        login = {"username": ADMIN_USERNAME, "password": password}
        token = _call(http, "POST", "/auth/login", login)["token"]
        profiles = ProfileFile.load()
        if profiles.get(PROFILE_NAME) is not None:
            profiles.delete(PROFILE_NAME)
        profiles.add(Profile(name=PROFILE_NAME, base_url=base_url, bearer_token=token), activate=True)
        profiles.save()
        http.headers["Authorization"] = f"Bearer {token}"
        urls = {
            "metadata_url": f"{base_url}/api/v1/metadata",
            "callback_url": f"{base_url}/api/v1/callbacks",
            "webhook_url": f"{base_url}/webhooks",
            "minimum_job_age_backoff": 0,
        }
        state.controller_id = _call(http, "PUT", "/controller", urls)["controller_id"]
        endpoint = {
            "name": ENDPOINT_NAME,
            "description": "the fake GitHub bundled with pygarm",
            "api_base_url": github_url + "/",
            "upload_base_url": github_url + "/",
            "base_url": github_url,
        }
        _call(http, "POST", "/github/endpoints", endpoint)
        from pygarm.testing.fake_github import DEFAULT_PAT

        credentials = {
            "name": CREDENTIALS_NAME,
            "description": "a PAT the fake GitHub accepts",
            "endpoint": ENDPOINT_NAME,
            "auth_type": "pat",
            "pat": {"oauth2_token": DEFAULT_PAT},
        }
        _call(http, "POST", "/github/credentials", credentials)
        repo = {
            "owner": REPO_OWNER,
            "name": REPO_NAME,
            "credentials_name": CREDENTIALS_NAME,
            "webhook_secret": state.webhook_secret,
        }
        state.repo_id = _call(http, "POST", "/repositories", repo)["id"]
        pool = {
            "provider_name": PROVIDER_NAME,
            "image": "ubuntu:22.04",
            "flavor": "small",
            "os_type": "linux",
            "os_arch": "amd64",
            "tags": POOL_TAGS,
            "min_idle_runners": MIN_IDLE_RUNNERS,
            "max_runners": MAX_RUNNERS,
            "enabled": True,
        }
        state.pool_id = _call(http, "POST", f"/repositories/{state.repo_id}/pools", pool)["id"]
    log(f"created repository {REPO_OWNER}/{REPO_NAME} ({state.repo_id}) and pool {state.pool_id}")
    return state


class RunnerAgent:
    """Plays the runner software in each instance the test provider records: ``installing``, then ``idle``,
    reported through GARM's instance callbacks with the instance's own token."""

    def __init__(self, provider_state: Path, log: Log) -> None:
        self._invocations = provider_state / "invocations"
        self._log = log
        self._seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-runner-agent", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(AGENT_POLL_S):
            try:
                self.poll()
            except (OSError, ValueError, httpx.HTTPError) as exc:
                self._log(f"runner agent: {exc}")

    def poll(self) -> None:
        if not self._invocations.exists():
            return
        for path in sorted(self._invocations.glob("*.json")):
            if path.name in self._seen:
                continue
            self._seen.add(path.name)
            record = json.loads(path.read_text())
            if record.get("command") == "CreateInstance":
                self._install(json.loads(record["stdin"]))

    def _install(self, bootstrap_params: dict[str, Any]) -> None:
        name = bootstrap_params["name"]
        headers = {"Authorization": f"Bearer {bootstrap_params['instance-token']}"}
        url = bootstrap_params["callback-url"].rstrip("/") + "/status"
        with httpx.Client(headers=headers, timeout=HTTP_TIMEOUT) as http:
            for status, message in (("installing", "downloading the runner"), ("idle", "runner installed")):
                response = http.post(url, json={"status": status, "message": message})
                if response.status_code != 200:
                    self._log(f"runner agent: {name}: {status} callback got {response.status_code}")
                    return
        self._log(f"runner {name} is idle")


def workflow_job(action: str, job_id: int, state: DemoState, runner: dict[str, Any] | None) -> dict[str, Any]:
    """GitHub's ``workflow_job`` webhook body (docs/garm-protocol.md#workflow-job-payload)."""
    run_id = job_id // 10
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "action": action,
        "workflow_job": {
            "id": job_id,
            "run_id": run_id,
            "status": action,
            "conclusion": "success" if action == "completed" else None,
            "name": "build",
            "labels": POOL_TAGS,
            "html_url": f"{state.github_url}/{REPO_OWNER}/{REPO_NAME}/actions/runs/{run_id}/job/{job_id}",
            "runner_id": runner["agent_id"] if runner else None,
            "runner_name": runner["name"] if runner else None,
            "runner_group_id": 1 if runner else None,
            "runner_group_name": "Default" if runner else None,
            "started_at": now,
            "completed_at": now if action == "completed" else None,
        },
        "repository": {
            "name": REPO_NAME,
            "full_name": f"{REPO_OWNER}/{REPO_NAME}",
            "owner": {"login": REPO_OWNER},
        },
        "sender": {"login": REPO_OWNER},
    }


def send_webhook(http: httpx.Client, state: DemoState, body: dict[str, Any]) -> None:
    """Deliver ``body`` to ``/webhooks/<controller id>``, signed with the repository's secret like GitHub."""
    raw = json.dumps(body).encode()
    signature = hmac.new(state.webhook_secret.encode(), raw, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "workflow_job",
        "X-GitHub-Delivery": secrets.token_hex(8),
        "X-GitHub-Hook-Installation-Target-Type": "repository",
        "X-Hub-Signature-256": "sha256=" + signature,
    }
    response = http.post(f"/webhooks/{state.controller_id}", content=raw, headers=headers)
    if response.status_code != 200:
        raise DemoError(f"the webhook was refused: {response.status_code} {response.text}")


def _idle_runners(http: httpx.Client, state: DemoState, count: int, timeout: float) -> list[dict[str, Any]]:
    """The pool's runners once at least ``count`` of them are idle and running."""
    deadline = time.monotonic() + timeout
    while True:
        idle = [
            instance
            for instance in _call(http, "GET", f"/pools/{state.pool_id}/instances")
            if instance.get("runner_status") == "idle" and instance.get("status") == "running"
        ]
        if len(idle) >= count:
            return idle
        if time.monotonic() > deadline:
            raise DemoError(f"not {count} idle runner(s) in pool {state.pool_id} after {timeout:.0f}s")
        time.sleep(0.2)


def wait_for_idle_pool(state: DemoState, timeout: float = 60.0) -> None:
    """Return once the pool keeps its ``min_idle_runners`` idle, so that "ready" means what it says."""
    with httpx.Client(base_url=state.base_url, timeout=HTTP_TIMEOUT) as http:
        login = {"username": ADMIN_USERNAME, "password": state.admin_password}
        http.headers["Authorization"] = f"Bearer {_call(http, 'POST', '/auth/login', login)['token']}"
        _idle_runners(http, state, MIN_IDLE_RUNNERS, timeout)


def run_job(state: DemoState, log: Log, *, run_seconds: float = 2.0, timeout: float = 30.0) -> int:
    """One GitHub job on the demo pool: queued, in_progress on an idle runner, completed. Returns its id."""
    job_id = int(time.time() * 1000) % 1_000_000_000
    with httpx.Client(base_url=state.base_url, timeout=HTTP_TIMEOUT) as http:
        login = {"username": ADMIN_USERNAME, "password": state.admin_password}
        try:
            token = _call(http, "POST", "/auth/login", login)["token"]
        except httpx.ConnectError:
            raise DemoError(f"no demo server at {state.base_url}: start `pygarm demo`") from None
        http.headers["Authorization"] = f"Bearer {token}"
        send_webhook(http, state, workflow_job("queued", job_id, state, None))
        log(f"job {job_id}: queued")
        runner = _idle_runners(http, state, 1, timeout)[0]
        send_webhook(http, state, workflow_job("in_progress", job_id, state, runner))
        log(f"job {job_id}: in_progress on runner {runner['name']}")
        time.sleep(run_seconds)  # the job "runs"; the events stream shows the runner active meanwhile
        send_webhook(http, state, workflow_job("completed", job_id, state, runner))
        log(f"job {job_id}: completed; GARM now removes runner {runner['name']} and refills the pool")
    return job_id
