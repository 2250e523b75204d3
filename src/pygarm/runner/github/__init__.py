"""The GitHub side of the runner: an async API client per entity, App auth, JIT configs and webhooks.

Build a :class:`GithubClient` from a :class:`GithubEndpointConfig`, credentials (:class:`PATCredentials` or
:class:`AppCredentials`) and a :class:`GithubEntity`; see docs/garm-protocol.md#github-api for every call it
makes.
"""

from pygarm.runner.github.client import GithubClient, next_page
from pygarm.runner.github.endpoint import (
    AppCredentials,
    GithubAuth,
    GithubEndpointConfig,
    PATCredentials,
    resolve_api_base_url,
)
from pygarm.runner.github.entity import EntityKind, GithubEntity
from pygarm.runner.github.errors import (
    GithubConfigError,
    GithubError,
    GithubNotFoundError,
    GithubTransportError,
    GithubUnauthorizedError,
)
from pygarm.runner.github.jit import JITConfig, decode_jit_config, get_jit_config, jit_config_or_none
from pygarm.runner.github.models import GithubRunner, Hook, JITRunnerConfig, RegistrationToken, RunnerGroup
from pygarm.runner.github.tls import build_ssl_context
from pygarm.runner.github.webhooks import (
    WebhookTarget,
    get_webhook_info,
    install_webhook,
    uninstall_webhook,
)

__all__ = [
    "AppCredentials",
    "EntityKind",
    "GithubAuth",
    "GithubClient",
    "GithubConfigError",
    "GithubEndpointConfig",
    "GithubEntity",
    "GithubError",
    "GithubNotFoundError",
    "GithubRunner",
    "GithubTransportError",
    "GithubUnauthorizedError",
    "Hook",
    "JITConfig",
    "JITRunnerConfig",
    "PATCredentials",
    "RegistrationToken",
    "RunnerGroup",
    "WebhookTarget",
    "build_ssl_context",
    "decode_jit_config",
    "get_jit_config",
    "get_webhook_info",
    "install_webhook",
    "jit_config_or_none",
    "next_page",
    "resolve_api_base_url",
    "uninstall_webhook",
]
