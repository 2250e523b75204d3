"""An async GitHub API client for one entity, covering the calls GARM v0.1.5 makes
(docs/garm-protocol.md#github-calls).

Requests go to the endpoint's API base as go-github resolves it (``…/api/v3/`` for anything that is not an
``api.`` host, docs/garm-protocol.md#github-client) with GitHub's v3 headers; bodies are compact JSON plus a
newline, as go-github sends them. Any status outside 2xx, and 202 (go-github's "accepted" error), raises a
:class:`~pygarm.runner.github.errors.GithubError` whose type tells 401 and 404 apart.

Differences from GARM, each on purpose: every request has a timeout (GARM's has none, so a stuck
connection could wedge a pool manager for ever); the ``User-Agent`` names pygarm; App installation tokens
come from the endpoint's API base (see :mod:`.app_auth`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Final, Protocol, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from pygarm.params.provider import RunnerApplicationDownload
from pygarm.runner.github.app_auth import ACCEPT_HEADER, InstallationTokenSource
from pygarm.runner.github.endpoint import AppCredentials, GithubAuth, GithubEndpointConfig
from pygarm.runner.github.entity import EntityKind, GithubEntity
from pygarm.runner.github.errors import GithubError, GithubTransportError, error_for_status
from pygarm.runner.github.models import GithubRunner, Hook, JITRunnerConfig, RegistrationToken, RunnerGroup
from pygarm.runner.github.tls import build_ssl_context
from pygarm.version import __version__

log = logging.getLogger(__name__)

API_VERSION: Final = "2022-11-28"
"""``X-GitHub-Api-Version`` go-github v57 sends."""


USER_AGENT: Final = f"pygarm/{__version__}"
"""GitHub asks every client to identify itself; GARM sends go-github's, pygarm its own."""

DEFAULT_TIMEOUT_SECONDS: Final = 30.0
"""Per request; GitHub answers in well under a second, so this only catches dead connections."""

PER_PAGE: Final = 100
"""Page size GARM asks for on every list call."""

MAX_PAGES: Final = 1000
"""Stop following ``Link: rel="next"`` after this many pages: a broken server must not loop us for ever."""

DEFAULT_RUNNER_GROUP_ID: Final = 1
"""GitHub's default runner group; used for repositories and when a pool names no group
(docs/garm-protocol.md#jit-configuration)."""

JIT_WORK_FOLDER: Final = "_work"
"""The runner work folder GARM requests in every JIT config."""

MAX_ERROR_MESSAGE: Final = 200
"""GitHub's ``message`` is quoted in errors up to this many characters."""

_M = TypeVar("_M", bound=BaseModel)
_RUNNER_DOWNLOADS = TypeAdapter(list[RunnerApplicationDownload] | None)
_HOOKS = TypeAdapter(list[Hook] | None)


class OperationCounter(Protocol):
    """Where GARM's ``garm_github_*`` counters go (``pygarm.runner.metrics.GarmCounters`` fits)."""

    def github_operation(self, operation: str, scope: str) -> None: ...
    def github_error(self, operation: str, scope: str) -> None: ...


class GithubClient:
    """GitHub calls for one entity with one set of credentials.

    ``transport`` replaces httpx's network transport (tests); ``trust_env`` makes httpx honour proxy
    environment variables, which GARM's transport does not (off by default for the same behaviour).
    Close the client with :meth:`aclose` or use it as an async context manager. ``counters`` counts each
    request (each page of a list) under GARM's operation name, as ``garm@v0.1.5 util/util.go:44-406`` does.
    """

    def __init__(
        self,
        endpoint: GithubEndpointConfig,
        credentials: GithubAuth,
        entity: GithubEntity,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
        trust_env: bool = False,
        counters: OperationCounter | None = None,
    ) -> None:
        self.entity = entity
        self._counters = counters
        # garm@v0.1.5 params/params.go:833-843 (LabelScope)
        self._scope = entity.kind.value.capitalize()
        self.api_base_url = endpoint.resolved_api_base_url
        self._http = httpx.AsyncClient(
            verify=build_ssl_context(endpoint.ca_cert_bundle),
            timeout=timeout,
            transport=transport,
            trust_env=trust_env,
            follow_redirects=True,
        )
        self._pat: str | None = None
        self._app: InstallationTokenSource | None = None
        if isinstance(credentials, AppCredentials):
            self._app = InstallationTokenSource(
                credentials, api_base_url=self.api_base_url, client=self._http
            )
        else:
            self._pat = credentials.token

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # --- runners -------------------------------------------------------------------------------------

    async def list_runner_applications(self) -> list[RunnerApplicationDownload]:
        """The runner downloads (``tools``) for every OS and architecture, unfiltered."""
        response = await self._request(
            "GET",
            f"{self.entity.api_prefix}/actions/runners/downloads",
            op="ListEntityRunnerApplicationDownloads",
        )
        return _decode_adapter(_RUNNER_DOWNLOADS, response) or []

    async def list_runners(self) -> list[GithubRunner]:
        """Every self-hosted runner registered for the entity, all pages."""
        path = f"{self.entity.api_prefix}/actions/runners"
        items = await self._paginate(path, lambda body: body.get("runners"), op="ListEntityRunners")
        return [GithubRunner.model_validate(item) for item in items]

    async def remove_runner(self, runner_id: int) -> None:
        """Unregister a runner; :class:`GithubNotFoundError` means it is gone already (GARM tolerates it)."""
        await self._request(
            "DELETE", f"{self.entity.api_prefix}/actions/runners/{runner_id}", op="RemoveEntityRunner"
        )

    async def create_registration_token(self) -> RegistrationToken:
        """A runner registration token, for instances created without a JIT config."""
        response = await self._request(
            "POST",
            f"{self.entity.api_prefix}/actions/runners/registration-token",
            op="CreateEntityRegistrationToken",
        )
        token = _decode_model(RegistrationToken, response)
        if not token.token:
            raise GithubError("registration token missing from github response", status=response.status_code)
        return token

    async def list_runner_groups(self) -> list[RunnerGroup]:
        """Runner groups of an organization or enterprise (repositories have none)."""
        if self.entity.kind is EntityKind.REPOSITORY:
            raise GithubError("runner groups exist only for organizations and enterprises")
        path = f"{self.entity.api_prefix}/actions/runner-groups"
        op = (
            "ListOrganizationRunnerGroups"
            if self.entity.kind is EntityKind.ORGANIZATION
            else "ListRunnerGroups"
        )
        items = await self._paginate(path, lambda body: body.get("runner_groups"), op=op)
        return [RunnerGroup.model_validate(item) for item in items]

    async def generate_jit_config(
        self, *, name: str, labels: list[str], runner_group_id: int = DEFAULT_RUNNER_GROUP_ID
    ) -> JITRunnerConfig:
        """Register runner ``name`` and get its just-in-time configuration
        (docs/garm-protocol.md#jit-configuration).

        The body is go-github's ``GenerateJITConfigRequest`` in field order.
        """
        body = {
            "name": name,
            "runner_group_id": runner_group_id,
            "work_folder": JIT_WORK_FOLDER,
            "labels": labels,
        }
        response = await self._request(
            "POST",
            f"{self.entity.api_prefix}/actions/runners/generate-jitconfig",
            body=body,
            op="GetEntityJITConfig",
        )
        config = _decode_model(JITRunnerConfig, response)
        if config.runner is None or config.runner.id is None or config.encoded_jit_config is None:
            raise GithubError("incomplete JIT config in github response", status=response.status_code)
        return config

    # --- webhooks ------------------------------------------------------------------------------------

    async def list_hooks(self) -> list[Hook]:
        """Webhooks of a repository or organization, all pages (GitHub has no enterprise hooks API)."""
        self._require_hook_entity()
        return await self._paginate_list(f"{self.entity.api_prefix}/hooks", op="ListHooks")

    async def create_hook(self, *, url: str, secret: str, insecure_ssl: bool) -> Hook:
        """Create the ``workflow_job`` webhook GARM installs (docs/garm-protocol.md#github-calls,
        "create hook")."""
        self._require_hook_entity()
        body = {
            "name": "web",
            "config": {
                "content_type": "json",
                "insecure_ssl": "1" if insecure_ssl else "0",
                "secret": secret,
                "url": url,
            },
            "events": ["workflow_job"],
            "active": True,
        }
        response = await self._request("POST", f"{self.entity.api_prefix}/hooks", body=body, op="CreateHook")
        hook = _decode_model(Hook, response)
        if hook.id is None or hook.active is None:
            raise GithubError("incomplete hook in github response", status=response.status_code)
        return hook

    async def ping_hook(self, hook_id: int) -> None:
        self._require_hook_entity()
        await self._request("POST", f"{self.entity.api_prefix}/hooks/{hook_id}/pings", op="PingHook")

    async def delete_hook(self, hook_id: int) -> None:
        self._require_hook_entity()
        await self._request("DELETE", f"{self.entity.api_prefix}/hooks/{hook_id}", op="DeleteHook")

    def _require_hook_entity(self) -> None:
        if self.entity.kind is EntityKind.ENTERPRISE:
            raise GithubError("invalid entity type")  # GARM's text (util.go ListEntityHooks)

    # --- transport -----------------------------------------------------------------------------------

    async def _authorization(self) -> str:
        if self._app is not None:
            return f"token {await self._app.token()}"
        return f"Bearer {self._pat}"

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, int] | None = None,
        op: str,
    ) -> httpx.Response:
        counters = self._counters
        if counters is not None:
            counters.github_operation(op, self._scope)
        try:
            return await self._send(method, path, body, params)
        except GithubError:
            if counters is not None:
                counters.github_error(op, self._scope)
            raise

    async def _send(
        self, method: str, path: str, body: Any, params: Mapping[str, int] | None
    ) -> httpx.Response:
        url = self.api_base_url + path
        headers = {
            "Accept": ACCEPT_HEADER,
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": USER_AGENT,
            "Authorization": await self._authorization(),
        }
        content: bytes | None = None
        if body is not None:
            content = _encode_body(body)
            headers["Content-Type"] = "application/json"
        try:
            response = await self._http.request(method, url, params=params, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise GithubTransportError(f"{method} {url}: {exc}") from exc
        status = response.status_code
        if not 200 <= status < 300 or status == httpx.codes.ACCEPTED:
            message = f"{method} {response.url}: {status} {_github_message(response)}".rstrip()
            log.debug("github call failed: %s", message)
            raise error_for_status(status, message)
        return response

    async def _paginate(self, path: str, extract: Callable[[dict[str, Any]], Any], *, op: str) -> list[Any]:
        """Follow ``Link: rel="next"`` pages of an ``{"total_count", "<items>": [...]}`` list."""
        items: list[Any] = []
        page = 0
        for _ in range(MAX_PAGES):
            response = await self._request("GET", path, params=_page_params(page), op=op)
            body = _decode_json(response)
            if not isinstance(body, dict):
                raise _shape_error(response)
            items.extend(extract(body) or [])
            page = next_page(response.headers.get("Link", ""))
            if page == 0:
                break
        return items

    async def _paginate_list(self, path: str, *, op: str) -> list[Hook]:
        hooks: list[Hook] = []
        page = 0
        for _ in range(MAX_PAGES):
            response = await self._request("GET", path, params=_page_params(page), op=op)
            hooks.extend(_decode_adapter(_HOOKS, response) or [])
            page = next_page(response.headers.get("Link", ""))
            if page == 0:
                break
        return hooks


def next_page(link_header: str) -> int:
    """The ``page`` of the ``rel="next"`` link, or 0 when there is none (go-github's ``NextPage``)."""
    for link in link_header.split(","):
        segments = link.strip().split(";")
        target = segments[0].strip()
        if len(segments) < 2 or not (target.startswith("<") and target.endswith(">")):
            continue
        if any(segment.strip() == 'rel="next"' for segment in segments[1:]):
            values = parse_qs(urlsplit(target[1:-1]).query).get("page")
            try:
                return int(values[0]) if values else 0
            except ValueError:
                return 0
    return 0


def _page_params(page: int) -> dict[str, int]:
    # go-querystring drops a zero page (omitempty) and sorts keys.
    return {"page": page, "per_page": PER_PAGE} if page else {"per_page": PER_PAGE}


def _encode_body(body: Any) -> bytes:
    """go-github's request encoding: ``json.Encoder`` without HTML escaping, so compact JSON plus ``\\n``."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")  # Go escapes these regardless
    return (text + "\n").encode()


def _shape_error(response: httpx.Response) -> GithubError:
    where = f"{response.request.method} {response.url}"
    return GithubError(f"{where}: unexpected response shape", status=response.status_code)


def _decode_json(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        raise _shape_error(response) from None


def _decode_model(model: type[_M], response: httpx.Response) -> _M:
    try:
        return model.model_validate_json(response.content)
    except ValidationError:
        raise _shape_error(response) from None


def _decode_adapter(adapter: TypeAdapter[Any], response: httpx.Response) -> Any:
    try:
        return adapter.validate_json(response.content)
    except ValidationError:
        raise _shape_error(response) from None


def _github_message(response: httpx.Response) -> str:
    """GitHub's ``{"message": …}``, shortened; errors quote it, never the request."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return str(message)[:MAX_ERROR_MESSAGE] if message else ""
