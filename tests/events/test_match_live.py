"""Field filters over the real app on both backends: the same ``match`` selects live events, snapshot
frames and a resume's replay (docs/events.md#field-filters-match)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from pygarm.config import Settings
from pygarm.store.instances import CreateInstanceParams, UpdateInstanceParams
from tests.api.entity_support import POOL_BODY, PROVIDERS
from tests.conftest import make_settings
from tests.events.test_app_stream import api, make_credentials, no_more_frames
from tests.events.test_stream_extensions import open_ws, raw_frame


@pytest.fixture
def settings(database_section: dict[str, Any]) -> Settings:
    return make_settings(database_section, provider=PROVIDERS)


def follow(pool_id: str) -> str:
    return json.dumps({"filters": [{"entity-type": "instance", "match": {"pool_id": pool_id}}]})


async def test_match_selects_snapshot_live_and_replay(live_admin: tuple[Any, str]) -> None:
    live, token = live_admin
    store = live.app.state.ctx.store

    async def on_server(coroutine: Any) -> Any:
        return await asyncio.wrap_future(live.call(coroutine))

    async with api(live, token) as http:
        await make_credentials(http)
        repo = (
            await http.post(
                "/repositories",
                json={"owner": "o", "name": "r", "credentials_name": "creds", "webhook_secret": "s"},
            )
        ).json()
        pools = [
            (await http.post(f"/repositories/{repo['id']}/pools", json=POOL_BODY)).json() for _ in range(2)
        ]
        a, b = pools[0]["id"], pools[1]["id"]
        for index in range(6):
            pool_id = a if index % 2 == 0 else b
            await on_server(
                store.create_instance(pool_id, CreateInstanceParams(name=f"garm-m{index}", status="running"))
            )

        ws = await open_ws(live, token, "?snapshot=true")
        await ws.send(follow(a))
        snapshot = []
        while True:
            frame = json.loads(await raw_frame(ws))
            if frame.get("control") == "snapshot-end":
                position = frame["seq"]
                break
            snapshot.append(frame["payload"]["name"])
        assert sorted(snapshot) == ["garm-m0", "garm-m2", "garm-m4"]

        for index in range(6):
            await on_server(
                store.update_instance(f"garm-m{index}", UpdateInstanceParams(runner_status="idle"))
            )
        live_names = [json.loads(await raw_frame(ws))["payload"]["name"] for _ in range(3)]
        assert live_names == ["garm-m0", "garm-m2", "garm-m4"]
        await no_more_frames(ws)
        await ws.close()

        resumed = await open_ws(live, token, f"?since={position}")
        await resumed.send(follow(b))
        replayed = [json.loads(await raw_frame(resumed)) for _ in range(3)]
        assert [f["payload"]["name"] for f in replayed] == ["garm-m1", "garm-m3", "garm-m5"]
        assert all(f["operation"] == "update" and f["seq"] > position for f in replayed)
        await no_more_frames(resumed)
        await resumed.close()
