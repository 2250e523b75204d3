"""A fake GitHub API serving what GARM's lifecycle needs
(docs/garm-protocol.md#what-a-fake-github-must-serve), recording every call.

Routes live under ``/api/v3/``, where go-github (and pygarm) put them for an ``api_base_url`` of
``http://127.0.0.1:<port>/`` (docs/garm-protocol.md#github-client), for repositories
(``repos/{owner}/{repo}``), organizations (``orgs/{org}``) and enterprises (``enterprises/{enterprise}``):

* ``GET …/actions/runners/downloads``: the runner tools (``tools`` knob);
* ``POST …/actions/runners/generate-jitconfig``: registers a runner, returns ``runner`` and an
  ``encoded_jit_config`` shaped like GitHub's (base64 JSON of base64 files, keys with a leading dot,
  docs/garm-protocol.md#jit-configuration);
* ``POST …/actions/runners/registration-token``; ``GET …/actions/runners``; ``DELETE …/actions/runners/{id}``;
* ``GET …/actions/runner-groups`` (organizations and enterprises);
* ``GET/POST …/hooks``, ``POST …/hooks/{id}/pings``, ``DELETE …/hooks/{id}`` (repositories, organizations);
* ``POST app/installations/{id}/access_tokens`` for GitHub App auth (JWT checked against ``app_public_key``).

Lists paginate like GitHub (``per_page``, ``page``, ``Link: rel="next"``); the ``page_size`` knob caps pages
to exercise pagination. Requests need ``Authorization: Bearer <pat>`` (or ``token <pat>``) with a PAT in
``pats``, or an installation token this fake issued; others get 401 ``Bad credentials``.

Knobs (attributes of :class:`FakeGithub`; change them at any time, also from another thread):
``unauthorized`` (answer 401 to everything), ``jit_failure_status`` (make JIT fail, e.g. 404, to force the
registration-token fallback), ``jit_bad_encoding`` (answer JIT with an undecodable config),
``listed_runner_status`` (status of runners in lists, ``online`` by default so orphan cleanup leaves them
alone), and :meth:`FakeGithub.inject_error` for any route.

Run by hand: ``python -m pygarm.testing.fake_github --port 18080`` (binds 127.0.0.1 only).
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pygarm.testing.prompt_stop import PromptStopServer

LOOPBACK = "127.0.0.1"
API_PREFIX = "/api/v3"
DEFAULT_PAT = "ghp_fake"
DEFAULT_REGISTRATION_TOKEN = "FAKE-REG-TOKEN"
DEFAULT_PER_PAGE = 30  # GitHub's default page size when a client sends no per_page
SERVER_START_TIMEOUT = 10.0  # seconds to wait for uvicorn to bind; it takes milliseconds
DEFAULT_TOOLS = [
    {
        "os": "linux",
        "architecture": "x64",
        "download_url": "https://github.com/actions/runner/releases/download/v2.317.0/actions-runner-linux-x64-2.317.0.tar.gz",
        "filename": "actions-runner-linux-x64-2.317.0.tar.gz",
        "sha256_checksum": "9e883d210df8c6028aff475475a457d380353f9d01877d51cc01a17b2a91161d",
    },
    {
        "os": "linux",
        "architecture": "arm64",
        "download_url": "https://github.com/actions/runner/releases/download/v2.317.0/actions-runner-linux-arm64-2.317.0.tar.gz",
        "filename": "actions-runner-linux-arm64-2.317.0.tar.gz",
    },
]

_ENTITY_PREFIXES = {
    "repository": "/repos/{owner}/{repo}",
    "organization": "/orgs/{org}",
    "enterprise": "/enterprises/{enterprise}",
}


@dataclass
class RecordedCall:
    """One request as the fake saw it. ``headers`` keys are lower case."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _InjectedError:
    method: str
    pattern: re.Pattern[str]
    status: int
    message: str
    remaining: int | None


@dataclass
class FakeGithub:
    """The fake's state, knobs and Starlette app. Thread-safe: the server thread and tests share it."""

    pats: set[str] = field(default_factory=lambda: {DEFAULT_PAT})
    tools: list[dict[str, Any]] = field(default_factory=lambda: [dict(tool) for tool in DEFAULT_TOOLS])
    registration_token: str = DEFAULT_REGISTRATION_TOKEN
    app_id: int | None = None
    app_public_key: bytes | None = None
    installation_token_ttl: float = 3600.0
    unauthorized: bool = False
    jit_failure_status: int | None = None
    jit_bad_encoding: bool = False
    listed_runner_status: str = "online"
    page_size: int | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[RecordedCall] = []
        self.runners: dict[str, dict[int, dict[str, Any]]] = {}
        self.hooks: dict[str, dict[int, dict[str, Any]]] = {}
        self.runner_groups: dict[str, list[dict[str, Any]]] = {}
        self.installation_tokens: dict[str, float] = {}
        self._errors: list[_InjectedError] = []
        self._ids = itertools.count(1)
        self.base_url = ""  # set by the server once it knows its port; used in Link headers
        self.app = Starlette(routes=self._routes())

    # --- test helpers --------------------------------------------------------------------------------

    def inject_error(
        self, method: str, path_regex: str, status: int, message: str = "injected", times: int | None = None
    ) -> None:
        """Answer ``method`` requests whose path after ``/api/v3`` matches ``path_regex`` with ``status``."""
        with self._lock:
            self._errors.append(_InjectedError(method, re.compile(path_regex), status, message, times))

    def calls_to(self, method: str, path_suffix: str) -> list[RecordedCall]:
        with self._lock:
            return [c for c in self.calls if c.method == method and c.path.endswith(path_suffix)]

    def add_runner(
        self, entity_path: str, name: str, *, labels: list[str] | None = None, status: str | None = None
    ) -> int:
        """Register a runner directly; ``entity_path`` is e.g. ``repos/octo/hello`` or ``orgs/octo``."""
        with self._lock:
            return self._add_runner_locked(entity_path, name, labels or [], status)

    def add_hook(self, entity_path: str, url: str, *, insecure_ssl: str = "0") -> int:
        with self._lock:
            return self._add_hook_locked(entity_path, url, ["workflow_job"], insecure_ssl)

    def add_runner_group(self, entity_path: str, name: str) -> int:
        with self._lock:
            group_id = next(self._ids) + 100
            self.runner_groups.setdefault(entity_path, []).append({"id": group_id, "name": name})
            return group_id

    # --- plumbing ------------------------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        api = API_PREFIX
        routes = [
            Route(
                f"{api}/app/installations/{{installation_id:int}}/access_tokens",
                self._wrap(self._access_token, authenticate=False),
                methods=["POST"],
            )
        ]
        entity_routes: list[tuple[str, str, Callable[[Request, str], Awaitable[Response]]]] = [
            ("GET", "/actions/runners/downloads", self._downloads),
            ("POST", "/actions/runners/generate-jitconfig", self._jit),
            ("POST", "/actions/runners/registration-token", self._registration_token),
            ("GET", "/actions/runners", self._list_runners),
            ("DELETE", "/actions/runners/{runner_id:int}", self._delete_runner),
            ("GET", "/actions/runner-groups", self._list_runner_groups),
            ("GET", "/hooks", self._list_hooks),
            ("POST", "/hooks", self._create_hook),
            ("POST", "/hooks/{hook_id:int}/pings", self._ping_hook),
            ("DELETE", "/hooks/{hook_id:int}", self._delete_hook),
        ]
        for kind, prefix in _ENTITY_PREFIXES.items():
            for method, suffix, handler in entity_routes:
                if kind == "repository" and suffix == "/actions/runner-groups":
                    continue
                if kind == "enterprise" and suffix.startswith("/hooks"):
                    continue
                routes.append(Route(f"{api}{prefix}{suffix}", self._wrap(handler), methods=[method]))
        return routes

    def _wrap(
        self, handler: Callable[[Request, str], Awaitable[Response]], *, authenticate: bool = True
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            body = await request.body()
            path = request.url.path
            call = RecordedCall(
                method=request.method,
                path=path,
                query=dict(request.query_params),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
            )
            with self._lock:
                self.calls.append(call)
                injected = self._take_injected(request.method, path[len(API_PREFIX) :])
            if self.unauthorized:
                return _error(401, "Bad credentials")
            if injected is not None:
                return _error(injected.status, injected.message)
            if authenticate and not self._authorized(call.headers.get("authorization", "")):
                return _error(401, "Bad credentials")
            return await handler(request, _entity_path(request))

        return endpoint

    def _take_injected(self, method: str, path: str) -> _InjectedError | None:
        for rule in self._errors:
            if rule.method == method and rule.pattern.search(path):
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._errors.remove(rule)
                return rule
        return None

    def _authorized(self, header: str) -> bool:
        scheme, _, credential = header.partition(" ")
        if scheme.lower() not in ("bearer", "token") or not credential:
            return False
        with self._lock:
            if credential in self.pats:
                return True
            expires = self.installation_tokens.get(credential)
        return expires is not None and expires > time.time()

    def _page(self, request: Request, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        per_page = int(request.query_params.get("per_page", DEFAULT_PER_PAGE))
        if self.page_size is not None:
            per_page = min(per_page, self.page_size)
        page = max(int(request.query_params.get("page", 1)), 1)
        start = (page - 1) * per_page
        chunk = items[start : start + per_page]
        headers: dict[str, str] = {}
        if start + per_page < len(items):
            next_url = f"{self.base_url}{request.url.path.lstrip('/')}?per_page={per_page}&page={page + 1}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        return chunk, headers

    # --- handlers ------------------------------------------------------------------------------------

    async def _access_token(self, request: Request, _: str) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or self.app_public_key is None or self.app_id is None:
            return _error(401, "A JSON web token could not be decoded")
        try:
            claims = jwt.decode(
                token, self.app_public_key, algorithms=["RS256"], options={"require": ["exp", "iat"]}
            )
        except jwt.PyJWTError:
            return _error(401, "A JSON web token could not be decoded")
        if claims.get("iss") != str(self.app_id):
            return _error(401, "'Issuer' claim ('iss') must be an Integer")
        with self._lock:
            value = f"ghs_fake_{next(self._ids)}"
            expires = time.time() + self.installation_token_ttl
            self.installation_tokens[value] = expires
        expires_at = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return JSONResponse({"token": value, "expires_at": expires_at, "permissions": {}}, status_code=201)

    async def _downloads(self, request: Request, entity: str) -> Response:
        return JSONResponse(self.tools)

    async def _jit(self, request: Request, entity: str) -> Response:
        if self.jit_failure_status is not None:
            return _error(self.jit_failure_status, "JIT config generation disabled by the fake")
        body = json.loads(await request.body())
        with self._lock:
            runner_id = self._add_runner_locked(entity, body["name"], body.get("labels") or [], None)
            runner = self._runner_json(self.runners[entity][runner_id], status="offline")
        encoded = (
            "!not-base64!" if self.jit_bad_encoding else _encoded_jit_config(runner_id, body, self.base_url)
        )
        return JSONResponse({"runner": runner, "encoded_jit_config": encoded}, status_code=201)

    async def _registration_token(self, request: Request, entity: str) -> Response:
        expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return JSONResponse({"token": self.registration_token, "expires_at": expires}, status_code=201)

    async def _list_runners(self, request: Request, entity: str) -> Response:
        with self._lock:
            runners = [self._runner_json(r) for r in self.runners.get(entity, {}).values()]
        chunk, headers = self._page(request, runners)
        return JSONResponse({"total_count": len(runners), "runners": chunk}, headers=headers)

    async def _delete_runner(self, request: Request, entity: str) -> Response:
        with self._lock:
            removed = self.runners.get(entity, {}).pop(request.path_params["runner_id"], None)
        return Response(status_code=204) if removed else _error(404, "Not Found")

    async def _list_runner_groups(self, request: Request, entity: str) -> Response:
        with self._lock:
            groups = [{"id": 1, "name": "Default", "default": True}, *self.runner_groups.get(entity, [])]
        chunk, headers = self._page(request, groups)
        return JSONResponse({"total_count": len(groups), "runner_groups": chunk}, headers=headers)

    async def _list_hooks(self, request: Request, entity: str) -> Response:
        with self._lock:
            hooks = [self._hook_json(h) for h in self.hooks.get(entity, {}).values()]
        chunk, headers = self._page(request, hooks)
        return JSONResponse(chunk, headers=headers)

    async def _create_hook(self, request: Request, entity: str) -> Response:
        body = json.loads(await request.body())
        config = body.get("config") or {}
        with self._lock:
            hook_id = self._add_hook_locked(
                entity, config.get("url", ""), body.get("events") or [], config.get("insecure_ssl", "0")
            )
            hook = self._hook_json(self.hooks[entity][hook_id])
        return JSONResponse(hook, status_code=201)

    async def _ping_hook(self, request: Request, entity: str) -> Response:
        with self._lock:
            found = request.path_params["hook_id"] in self.hooks.get(entity, {})
        return Response(status_code=204) if found else _error(404, "Not Found")

    async def _delete_hook(self, request: Request, entity: str) -> Response:
        with self._lock:
            removed = self.hooks.get(entity, {}).pop(request.path_params["hook_id"], None)
        return Response(status_code=204) if removed else _error(404, "Not Found")

    # --- state (call with the lock held) -------------------------------------------------------------

    def _add_runner_locked(self, entity: str, name: str, labels: list[str], status: str | None) -> int:
        runner_id = next(self._ids)
        self.runners.setdefault(entity, {})[runner_id] = {
            "id": runner_id,
            "name": name,
            "labels": labels,
            "status": status,
        }
        return runner_id

    def _runner_json(self, runner: dict[str, Any], status: str | None = None) -> dict[str, Any]:
        labels = [{"id": i + 1, "name": name, "type": "custom"} for i, name in enumerate(runner["labels"])]
        return {
            "id": runner["id"],
            "name": runner["name"],
            "os": "unknown",
            "status": status or runner["status"] or self.listed_runner_status,
            "busy": False,
            "labels": labels,
        }

    def _add_hook_locked(self, entity: str, url: str, events: list[str], insecure_ssl: str) -> int:
        hook_id = next(self._ids)
        self.hooks.setdefault(entity, {})[hook_id] = {
            "id": hook_id,
            "url": url,
            "events": events,
            "insecure_ssl": insecure_ssl,
        }
        return hook_id

    @staticmethod
    def _hook_json(hook: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "Repository",
            "id": hook["id"],
            "name": "web",
            "active": True,
            "events": hook["events"],
            "config": {
                "content_type": "json",
                "insecure_ssl": hook["insecure_ssl"],
                "secret": "********",
                "url": hook["url"],
            },
        }


def _entity_path(request: Request) -> str:
    """``repos/octo/hello``, ``orgs/octo`` or ``enterprises/acme``: the key of the entity's state."""
    params = request.path_params
    if "repo" in params:
        return f"repos/{params['owner']}/{params['repo']}"
    if "org" in params:
        return f"orgs/{params['org']}"
    if "enterprise" in params:
        return f"enterprises/{params['enterprise']}"
    return ""


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message, "documentation_url": "https://docs.github.com/rest"}, status)


def _b64(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def _encoded_jit_config(runner_id: int, body: dict[str, Any], base_url: str) -> str:
    """GitHub's shape (docs/garm-protocol.md#jit-configuration): base64(JSON map of dot-file name →
    base64(file contents))."""
    runner_file = {
        "agentId": runner_id,
        "agentName": body["name"],
        "poolId": body.get("runner_group_id", 1),
        "serverUrl": base_url,
        "workFolder": body.get("work_folder", "_work"),
    }
    files = {
        ".runner": _b64(runner_file),
        ".credentials": _b64({"scheme": "OAuth", "data": {"clientId": f"fake-client-{runner_id}"}}),
        ".credentials_rsaparams": _b64({"d": "fake", "modulus": "fake", "exponent": "AQAB"}),
    }
    return base64.b64encode(json.dumps(files).encode()).decode()


class FakeGithubServer:
    """Runs a :class:`FakeGithub` under uvicorn on ``127.0.0.1`` in a background thread.

    ``port=0`` picks a free port. ``ssl_certfile``/``ssl_keyfile`` serve HTTPS instead (TLS tests).
    """

    def __init__(
        self,
        fake: FakeGithub | None = None,
        *,
        port: int = 0,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        self.fake = fake or FakeGithub()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((LOOPBACK, port))
        self.port: int = self._socket.getsockname()[1]
        scheme = "https" if ssl_certfile else "http"
        self.base_url = f"{scheme}://{LOOPBACK}:{self.port}"
        self.api_base_url = f"{self.base_url}/"
        self.fake.base_url = f"{self.base_url}/"
        config = uvicorn.Config(
            self.fake.app,
            log_level="warning",
            lifespan="off",
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
        )
        self._server = PromptStopServer(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self) -> FakeGithubServer:
        self._thread.start()
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake GitHub did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.request_exit()
        self._thread.join(SERVER_START_TIMEOUT)
        self._socket.close()

    def __enter__(self) -> FakeGithubServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextmanager
def running_fake_github(**knobs: Any) -> Iterator[FakeGithubServer]:
    """``with running_fake_github(jit_failure_status=404) as server:`` — the pytest fixtures use this."""
    with FakeGithubServer(FakeGithub(**knobs)) as server:
        yield server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake GitHub API for pygarm (binds 127.0.0.1 only).")
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--pat", action="append", help=f"accepted PAT (repeatable; default {DEFAULT_PAT})")
    parser.add_argument("--jit-failure-status", type=int, help="answer generate-jitconfig with this status")
    parser.add_argument("--unauthorized", action="store_true", help="answer every request with 401")
    parser.add_argument("--registration-token", default=DEFAULT_REGISTRATION_TOKEN)
    parser.add_argument("--app-id", type=int, help="GitHub App ID whose JWTs are accepted")
    parser.add_argument("--app-public-key", help="PEM file with the app's public key")
    args = parser.parse_args(argv)
    fake = FakeGithub(
        pats=set(args.pat or [DEFAULT_PAT]),
        jit_failure_status=args.jit_failure_status,
        unauthorized=args.unauthorized,
        registration_token=args.registration_token,
        app_id=args.app_id,
    )
    if args.app_public_key:
        with open(args.app_public_key, "rb") as handle:
            fake.app_public_key = handle.read()
    fake.base_url = f"http://{LOOPBACK}:{args.port}/"
    print(f"fake GitHub: api_base_url http://{LOOPBACK}:{args.port}/ (routes under {API_PREFIX}/)")
    uvicorn.run(fake.app, host=LOOPBACK, port=args.port, log_level="info", lifespan="off")


if __name__ == "__main__":
    main()
