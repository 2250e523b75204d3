"""Responses written the way GARM's Go handlers write them (docs/garm-protocol.md#json-encoding,
docs/garm-protocol.md#rest-routes)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from pygarm.params.gojson import dumps


class GoJSONResponse(Response):
    """``json.NewEncoder(w).Encode(v)``: compact Go-compatible JSON plus one trailing newline.

    Like Starlette's ``JSONResponse``, it differs from ``Response`` only in ``render``; the encoder is
    the same one that writes event payloads, so REST and events cannot disagree.
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content) + b"\n"


def empty_json_response(status_code: int = 200) -> Response:
    """GARM's deletes: a status, ``Content-Type: application/json`` and no body."""
    return Response(status_code=status_code, media_type="application/json")


def no_content() -> Response:
    """204 for endpoint and credentials deletes; no body and no content type."""
    return Response(status_code=204)
