"""Every REST route pygarm serves, as a function that builds a :class:`~pygarm.client._core.Call`:
auth, controller, providers, jobs, users and GitHub endpoints/credentials here, the entity, pool and
runner routes in ``_entity_routes.py``.

One builder per route, typed with the ``params`` models; the client faces bind each builder to a method
(``_binding.py``), so a route is written once for both. Update builders take keyword arguments that
default to :data:`~pygarm.client._core.UNSET`: only the arguments given are sent, because GARM reads an
absent field as "leave as is" and a present zero as a value.
"""

from __future__ import annotations

from pygarm.client._core import (
    UNSET,
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


def update_controller(
    *,
    metadata_url: str | Unset = UNSET,
    callback_url: str | Unset = UNSET,
    webhook_url: str | Unset = UNSET,
    minimum_job_age_backoff: int | Unset = UNSET,
) -> Call[ControllerInfo]:
    """``PUT /controller``: change the given URLs / backoff, leave the rest."""
    values = given(
        metadata_url=metadata_url,
        callback_url=callback_url,
        webhook_url=webhook_url,
        minimum_job_age_backoff=minimum_job_age_backoff,
    )
    body = encode_body(make_request(UpdateControllerParams, **values))
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


def update_user(
    user_id: str,
    *,
    full_name: str | Unset = UNSET,
    enabled: bool | Unset = UNSET,
    password: str | Unset = UNSET,
) -> Call[User]:
    """``PUT /users/{id}`` (pygarm extension): the last enabled admin cannot be disabled."""
    body = encode_body(
        make_request(UpdateUserParams, **given(full_name=full_name, enabled=enabled, password=password))
    )
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


def update_github_endpoint(
    name: str,
    *,
    description: str | Unset = UNSET,
    api_base_url: str | Unset = UNSET,
    upload_base_url: str | Unset = UNSET,
    base_url: str | Unset = UNSET,
    ca_cert_bundle: bytes | Unset = UNSET,
) -> Call[GithubEndpoint]:
    """``PUT /github/endpoints/{name}`` (``github.com`` itself cannot be changed)."""
    values = given(
        description=description,
        api_base_url=api_base_url,
        upload_base_url=upload_base_url,
        base_url=base_url,
        ca_cert_bundle=ca_cert_bundle,
    )
    body = encode_body(make_request(UpdateGithubEndpointParams, **values))
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


def update_github_credentials(
    credentials_id: int,
    *,
    name: str | Unset = UNSET,
    description: str | Unset = UNSET,
    pat: GithubPATParams | Unset = UNSET,
    app: GithubAppParams | Unset = UNSET,
) -> Call[GithubCredentials]:
    """``PUT /github/credentials/{id}``: rename, describe, or replace the secret (same auth type)."""
    values = given(name=name, description=description, pat=pat, app=app)
    body = encode_body(make_request(UpdateGithubCredentialsParams, **values))
    return Call("PUT", path("/github/credentials/{}", credentials_id), decode_model(GithubCredentials), body)


def delete_github_credentials(credentials_id: int) -> Call[None]:
    """``DELETE /github/credentials/{id}``: 204, also when the id does not exist."""
    return Call("DELETE", path("/github/credentials/{}", credentials_id), decode_nothing)
