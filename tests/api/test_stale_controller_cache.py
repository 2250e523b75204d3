"""With replicas, this process's cached controller row can lag another replica's commit by the few
milliseconds its hub needs to hear of it. A request must not be refused with GARM's 409 "urls
required" on the strength of that lag: the row itself is read before refusing (api/deps.py)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from pygarm.store.cache import CONTROLLER_KEY
from tests.api.entity_support import store_of


async def test_a_cached_controller_without_urls_is_checked_against_the_database(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    store = store_of(app)
    info = await store.get_controller_info()
    assert info.callback_url  # admin_client set the URLs
    store.cache.put(CONTROLLER_KEY, info.model_copy(update={"callback_url": "", "webhook_url": ""}))
    response = await admin_client.get("/api/v1/pools")
    assert response.status_code == 200, response.text
    assert (await store.get_controller_info()).callback_url == info.callback_url  # the cache was refreshed


async def test_urls_that_are_really_missing_still_answer_409(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    store = store_of(app)
    await store.update_controller(callback_url="")
    response = await admin_client.get("/api/v1/pools")
    assert response.status_code == 409
    assert response.json() == {
        "error": "urls_required",
        "details": "Missing required URLs. Make sure you update the metadata, callback and webhook URLs",
    }
