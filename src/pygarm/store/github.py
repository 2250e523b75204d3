"""GitHub endpoints and credentials (being completed: see issue 2)."""

from __future__ import annotations

from sqlalchemy import Row, insert, select

from pygarm.events.change import EntityType, Operation
from pygarm.params.models import GithubEndpoint
from pygarm.store.base import StoreBase
from pygarm.store.db import WriteTx
from pygarm.store.tables import github_endpoints

DEFAULT_ENDPOINT = GithubEndpoint(
    name="github.com",
    description="The github.com endpoint",
    api_base_url="https://api.github.com/",
    upload_base_url="https://uploads.github.com/",
    base_url="https://github.com",
)
"""The built-in endpoint GARM creates at first start (``util/appdefaults``)."""


def row_to_endpoint(row: Row[tuple[object, ...]]) -> GithubEndpoint:
    return GithubEndpoint(
        name=row.name,
        description=row.description,
        api_base_url=row.api_base_url,
        upload_base_url=row.upload_base_url,
        base_url=row.base_url,
        ca_cert_bundle=row.ca_cert_bundle,
    )


class GithubStore(StoreBase):
    async def ensure_default_endpoint(self) -> None:
        """Create ``github.com`` at first start, with its ``github_endpoint/create`` event."""

        def ensure(tx: WriteTx) -> None:
            key = DEFAULT_ENDPOINT.name.lower()
            if tx.conn.execute(select(github_endpoints.c.name).where(github_endpoints.c.name_key == key)).first():
                return
            tx.conn.execute(
                insert(github_endpoints).values(
                    name=DEFAULT_ENDPOINT.name,
                    name_key=key,
                    description=DEFAULT_ENDPOINT.description,
                    api_base_url=DEFAULT_ENDPOINT.api_base_url,
                    upload_base_url=DEFAULT_ENDPOINT.upload_base_url,
                    base_url=DEFAULT_ENDPOINT.base_url,
                    ca_cert_bundle=None,
                    created_at=tx.now,
                    updated_at=tx.now,
                )
            )
            tx.emit(EntityType.GITHUB_ENDPOINT, Operation.CREATE, DEFAULT_ENDPOINT)

        await self.db.write(ensure)
