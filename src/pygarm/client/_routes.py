"""Every REST route pygarm serves, as a function that builds a :class:`~pygarm.client._core.Call`:
auth, controller, providers, jobs, users and GitHub endpoints/credentials here, the entity, pool and
runner routes in ``_entity_routes.py``.

One builder per route, typed with the ``params`` models; the client faces bind each builder to a method
(``_binding.py``), so a route is written once for both. Update builders take the fields of their
``Update…Params`` model as keyword arguments, typed by a ``…Changes`` ``TypedDict``: only the fields
given are sent (one given as :data:`~pygarm.client._core.UNSET` counts as not given), because GARM reads
an absent field as "leave as is" and a present zero as a value. :func:`update_body` builds every
update's body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict, Unpack

from pygarm.client._core import (
    Call,
    Unset,
    decode_list,
    decode_model,
    decode_nothing,
    encode_body,
    given,
    make_request,
    path,
)
from pygarm.params.base import GoRequest
from pygarm.params.github_requests import (
    CreateGithubCredentialsParams,
    CreateGithubEndpointParams,
    GithubAppParams,
    GithubPATParams,
    UpdateGithubCredentialsParams,
    UpdateGithubEndpointParams,
)
from pygarm.params.models import (
    ControllerInfo,
    GithubCredentials,
    GithubEndpoint,
    Job,
    JWTResponse,
    Provider,
    User,
)
from pygarm.params.requests import (
    NewUserParams,
    PasswordLoginParams,
    UpdateControllerParams,
    UpdateUserParams,
    UserPasswordParams,
)


def update_body(model: type[GoRequest], changes: Mapping[str, Any]) -> bytes:
    """The body of an update: the ``changes`` that are not ``UNSET``, as ``model`` encodes them. The
    type checker limits the keywords to the builder's ``…Changes``; this does the same at run time
    (against the model's fields), so a misspelt field is an error, not a silent no-op."""
    unknown = sorted(changes.keys() - model.model_fields.keys())
    if unknown:
        raise TypeError(f"{model.__name__} got an unexpected keyword argument {unknown[0]!r}")
    return encode_body(make_request(model, **given(**changes)))


# --- auth, controller, providers, jobs ------------------------------------------------------------


def first_run(params: NewUserParams) -> Call[User]:
    """``POST /first-run``: create the admin user of a fresh server (no token needed)."""
    return Call("POST", "/first-run", decode_model(User), encode_body(params), authenticated=False)


def login(username: str, password: str) -> Call[JWTResponse]:
    """``POST /auth/login``: a JWT for ``username`` (or e-mail) and ``password``."""
    body = encode_body(PasswordLoginParams(username=username, password=password))
    return Call("POST", "/auth/login", decode_model(JWTResponse), body, authenticated=False)


def get_controller() -> Call[ControllerInfo]:
    """``GET /controller`` (works before the controller URLs are set)."""
    return Call("GET", "/controller", decode_model(ControllerInfo))


def get_controller_info() -> Call[ControllerInfo]:
    """``GET /controller-info``: GARM's legacy path (needs the URLs set)."""
    return Call("GET", "/controller-info", decode_model(ControllerInfo))


class ControllerChanges(TypedDict, total=False):
    metadata_url: str | Unset
    callback_url: str | Unset
    webhook_url: str | Unset
    minimum_job_age_backoff: int | Unset


def update_controller(**changes: Unpack[ControllerChanges]) -> Call[ControllerInfo]:
    """``PUT /controller``: change the given URLs / backoff, leave the rest."""
    body = update_body(UpdateControllerParams, changes)
    return Call("PUT", "/controller", decode_model(ControllerInfo), body)


def get_metrics_token() -> Call[JWTResponse]:
    """``GET /metrics-token``: a token for Prometheus to scrape ``/metrics`` with."""
    return Call("GET", "/metrics-token", decode_model(JWTResponse))


def list_providers() -> Call[list[Provider]]:
    """``GET /providers``."""
    return Call("GET", "/providers", decode_list(Provider))


def list_jobs() -> Call[list[Job]]:
    """``GET /jobs``: the jobs GARM has recorded from GitHub webhooks."""
    return Call("GET", "/jobs", decode_list(Job))


# --- users (pygarm extension) ------------------------------------------------------------------------


def list_users() -> Call[list[User]]:
    """``GET /users`` (pygarm extension)."""
    return Call("GET", "/users", decode_list(User))


def get_user(user_id: str) -> Call[User]:
    """``GET /users/{id}`` (pygarm extension)."""
    return Call("GET", path("/users/{}", user_id), decode_model(User))


class UserChanges(TypedDict, total=False):
    full_name: str | Unset
    enabled: bool | Unset
    password: str | Unset


def update_user(user_id: str, **changes: Unpack[UserChanges]) -> Call[User]:
    """``PUT /users/{id}`` (pygarm extension): the last enabled admin cannot be disabled."""
    body = update_body(UpdateUserParams, changes)
    return Call("PUT", path("/users/{}", user_id), decode_model(User), body)


def change_user_password(user_id: str, password: str) -> Call[User]:
    """``PUT /users/{id}/password`` (pygarm extension): every older token of that user stops working."""
    body = encode_body(UserPasswordParams(password=password))
    return Call("PUT", path("/users/{}/password", user_id), decode_model(User), body)


# --- GitHub endpoints and credentials --------------------------------------------------------------


def list_github_endpoints() -> Call[list[GithubEndpoint]]:
    """``GET /github/endpoints``."""
    return Call("GET", "/github/endpoints", decode_list(GithubEndpoint))


def get_github_endpoint(name: str) -> Call[GithubEndpoint]:
    """``GET /github/endpoints/{name}``."""
    return Call("GET", path("/github/endpoints/{}", name), decode_model(GithubEndpoint))


def create_github_endpoint(params: CreateGithubEndpointParams) -> Call[GithubEndpoint]:
    """``POST /github/endpoints``."""
    return Call("POST", "/github/endpoints", decode_model(GithubEndpoint), encode_body(params))


class EndpointChanges(TypedDict, total=False):
    description: str | Unset
    api_base_url: str | Unset
    upload_base_url: str | Unset
    base_url: str | Unset
    ca_cert_bundle: bytes | Unset


def update_github_endpoint(name: str, **changes: Unpack[EndpointChanges]) -> Call[GithubEndpoint]:
    """``PUT /github/endpoints/{name}`` (``github.com`` itself cannot be changed)."""
    body = update_body(UpdateGithubEndpointParams, changes)
    return Call("PUT", path("/github/endpoints/{}", name), decode_model(GithubEndpoint), body)


def delete_github_endpoint(name: str) -> Call[None]:
    """``DELETE /github/endpoints/{name}``: 204, also when the name does not exist."""
    return Call("DELETE", path("/github/endpoints/{}", name), decode_nothing)


def list_github_credentials() -> Call[list[GithubCredentials]]:
    """``GET /github/credentials``."""
    return Call("GET", "/github/credentials", decode_list(GithubCredentials))


def get_github_credentials(credentials_id: int) -> Call[GithubCredentials]:
    """``GET /github/credentials/{id}``: with the repositories, orgs and enterprises using them."""
    return Call("GET", path("/github/credentials/{}", credentials_id), decode_model(GithubCredentials))


def create_github_credentials(params: CreateGithubCredentialsParams) -> Call[GithubCredentials]:
    """``POST /github/credentials`` (a PAT or a GitHub App)."""
    return Call("POST", "/github/credentials", decode_model(GithubCredentials), encode_body(params))


class CredentialsChanges(TypedDict, total=False):
    name: str | Unset
    description: str | Unset
    pat: GithubPATParams | Unset
    app: GithubAppParams | Unset


def update_github_credentials(
    credentials_id: int, **changes: Unpack[CredentialsChanges]
) -> Call[GithubCredentials]:
    """``PUT /github/credentials/{id}``: rename, describe, or replace the secret (same auth type)."""
    body = update_body(UpdateGithubCredentialsParams, changes)
    return Call("PUT", path("/github/credentials/{}", credentials_id), decode_model(GithubCredentials), body)


def delete_github_credentials(credentials_id: int) -> Call[None]:
    """``DELETE /github/credentials/{id}``: 204, also when the id does not exist."""
    return Call("DELETE", path("/github/credentials/{}", credentials_id), decode_nothing)


# Each ``…Changes`` is the field list of its model (``update_body`` checks keywords against the model).
assert ControllerChanges.__optional_keys__ == UpdateControllerParams.model_fields.keys()
assert UserChanges.__optional_keys__ == UpdateUserParams.model_fields.keys()
assert EndpointChanges.__optional_keys__ == UpdateGithubEndpointParams.model_fields.keys()
assert CredentialsChanges.__optional_keys__ == UpdateGithubCredentialsParams.model_fields.keys()
