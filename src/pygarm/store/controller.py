"""The controller row: created once at first start, updated by ``PUT /api/v1/controller``."""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, Row, insert, select, update

from pygarm.errors import NotFoundError
from pygarm.events.change import EntityType, Operation
from pygarm.params.models import ControllerInfo
from pygarm.store.base import StoreBase
from pygarm.store.cache import CONTROLLER_KEY
from pygarm.store.db import WriteTx
from pygarm.store.fastsql import Prepared
from pygarm.store.tables import controller
from pygarm.version import CONTROLLER_VERSION

DEFAULT_MINIMUM_JOB_AGE_BACKOFF = 30
"""Seconds a job waits before GARM spins up a runner for it (GARM's appdefaults)."""
CONTROLLER_ROW_ID = 1


def controller_webhook_url(webhook_url: str, controller_id: str) -> str:
    """Go's ``url.JoinPath(webhook_url, controller_id)``; just the ID when no webhook URL is set."""
    if not webhook_url:
        return controller_id
    return webhook_url.rstrip("/") + "/" + controller_id


def row_to_controller(row: Row[tuple[object, ...]]) -> ControllerInfo:
    """Events and store reads carry ``hostname: ""``; only REST GETs fill it in
    (docs/garm-protocol.md#which-operations-emit-events, docs/garm-protocol.md#controller-info)."""
    return ControllerInfo(
        controller_id=row.controller_id,
        hostname="",
        metadata_url=row.metadata_url,
        callback_url=row.callback_url,
        webhook_url=row.webhook_base_url,
        controller_webhook_url=controller_webhook_url(row.webhook_base_url, row.controller_id),
        minimum_job_age_backoff=row.minimum_job_age_backoff,
        version=CONTROLLER_VERSION,
    )


_READ_CONTROLLER = Prepared(select(controller).where(controller.c.id == CONTROLLER_ROW_ID))


def read_controller(conn: Connection) -> ControllerInfo:
    row = _READ_CONTROLLER.first(conn)
    if row is None:
        raise NotFoundError("controller info not found")
    return row_to_controller(row)


class ControllerStore(StoreBase):
    async def init_controller(self) -> ControllerInfo:
        """Create the controller row on first start (no event, as in GARM's ``InitController``)."""

        def init(tx: WriteTx) -> ControllerInfo:
            if tx.conn.execute(select(controller.c.id)).first() is None:
                tx.conn.execute(
                    insert(controller).values(
                        id=CONTROLLER_ROW_ID,
                        controller_id=str(uuid.uuid4()),
                        callback_url="",
                        metadata_url="",
                        webhook_base_url="",
                        minimum_job_age_backoff=DEFAULT_MINIMUM_JOB_AGE_BACKOFF,
                        created_at=tx.now,
                        updated_at=tx.now,
                    )
                )
            return read_controller(tx.conn)

        return await self.db.write(init)

    async def get_controller_info(self, *, fresh: bool = False) -> ControllerInfo:
        """The controller row, from the read cache unless ``fresh``: another replica's commit reaches
        the cache only once this process's hub has read it, a few milliseconds later."""
        cached = None if fresh else self.cache.get(CONTROLLER_KEY)
        if isinstance(cached, ControllerInfo):
            return cached
        info = await self.db.read(read_controller)
        self.cache.put(CONTROLLER_KEY, info)
        return info

    async def update_controller(
        self,
        *,
        metadata_url: str | None = None,
        callback_url: str | None = None,
        webhook_url: str | None = None,
        minimum_job_age_backoff: int | None = None,
    ) -> ControllerInfo:
        """Apply the given fields (``None`` = unchanged) and emit ``controller/update``."""
        values: dict[str, object] = {}
        if metadata_url is not None:
            values["metadata_url"] = metadata_url
        if callback_url is not None:
            values["callback_url"] = callback_url
        if webhook_url is not None:
            values["webhook_base_url"] = webhook_url
        if minimum_job_age_backoff is not None:
            values["minimum_job_age_backoff"] = minimum_job_age_backoff

        def apply(tx: WriteTx) -> ControllerInfo:
            read_controller(tx.conn)
            tx.conn.execute(
                update(controller)
                .where(controller.c.id == CONTROLLER_ROW_ID)
                .values(updated_at=tx.now, **values)
            )
            info = read_controller(tx.conn)
            tx.emit(EntityType.CONTROLLER, Operation.UPDATE, info)
            return info

        try:
            return await self.db.write(apply)
        finally:
            self.cache.drop(CONTROLLER_KEY)
