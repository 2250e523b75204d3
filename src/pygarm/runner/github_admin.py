"""Business rules for managing GitHub endpoints and credentials, between the routes and the store.

GARM's runner does three things here (``garm@v0.1.5 runner/github_endpoints.go``,
``garm@v0.1.5 runner/github_credentials.go``): check the caller is an admin (done by the route's dependency in
pygarm), run ``Validate()``, and call one store method. The store then applies the rules that need the
database (duplicates, references, ``github.com`` being read-only, a secret of the wrong type) inside its
transaction.
"""

from __future__ import annotations

from pygarm.params.github_requests import (
    CreateGithubCredentialsParams,
    CreateGithubEndpointParams,
    UpdateGithubCredentialsParams,
    UpdateGithubEndpointParams,
)
from pygarm.params.models import GithubCredentials, GithubEndpoint
from pygarm.store.github import GithubStore


async def create_endpoint(store: GithubStore, params: CreateGithubEndpointParams) -> GithubEndpoint:
    params.validate_params()
    return await store.create_endpoint(
        GithubEndpoint(
            name=params.name,
            description=params.description,
            api_base_url=params.api_base_url,
            upload_base_url=params.upload_base_url,
            base_url=params.base_url,
            ca_cert_bundle=params.ca_cert_bundle,
        )
    )


async def update_endpoint(
    store: GithubStore, name: str, params: UpdateGithubEndpointParams
) -> GithubEndpoint:
    params.validate_params()
    return await store.update_endpoint(
        name,
        description=params.description,
        api_base_url=params.api_base_url,
        upload_base_url=params.upload_base_url,
        base_url=params.base_url,
        ca_cert_bundle=params.ca_cert_bundle,
    )


async def create_credentials(
    store: GithubStore, user_id: str, params: CreateGithubCredentialsParams
) -> GithubCredentials:
    """Credentials belong to the user who creates them (GARM keeps ``user_id``; admins see everyone's)."""
    params.validate_params()
    return await store.create_credentials(
        user_id=user_id,
        name=params.name,
        description=params.description,
        endpoint=params.endpoint,
        auth_type=params.auth_type,
        secret=params.secret(),
    )


async def update_credentials(
    store: GithubStore, credentials_id: int, params: UpdateGithubCredentialsParams
) -> GithubCredentials:
    params.validate_params()
    new_secret = params.secret()
    auth_type, secret = new_secret if new_secret is not None else (None, None)
    return await store.update_credentials(
        credentials_id,
        name=params.name,
        description=params.description,
        auth_type=auth_type,
        secret=secret,
    )
