"""The REST half of the client's sans-I/O core: what a call looks like, and how an answer is read.

Nothing here touches a socket. A route builder (``_routes.py``) returns a :class:`Call`: the method, the
path under ``/api/v1``, the query, the encoded body, and the function that turns a successful body into
wire models. The sync and async clients only hand the call to httpx and give the answer to
:func:`read_response`, so both faces decode, map errors and treat GARM's quirks (``null`` for an empty
list, empty bodies on deletes, plain-text ``Unauthorized``) identically, and the tests of one are tests
of both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import orjson
from pydantic import BaseModel, ValidationError

from pygarm.client.errors import APIError, DecodeError
from pygarm.params.base import GoRequest
from pygarm.params.gojson import dumps

T = TypeVar("T")
ModelT = TypeVar("ModelT", bound=BaseModel)
RequestT = TypeVar("RequestT", bound=GoRequest)

API_PREFIX: Final = "/api/v1"
"""GARM's REST root; a profile URL's own path (a reverse-proxy prefix) goes in front of it."""
DEFAULT_TIMEOUT_S: Final = 30.0
"""Per request. GARM answers from its database; anything slower is a server that is stuck."""
USER_AGENT: Final = "pygarm-client"


class Unset:
    """The type of :data:`UNSET` (for annotations: ``name: str | Unset = UNSET``)."""

    _instance: Unset | None = None

    def __new__(cls) -> Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "UNSET"


UNSET: Final = Unset()
""""Leave this field as it is" in an update call.

``None`` cannot mean that: GARM's update bodies are Go pointers, and some fields have a meaningful zero
(``enabled=False``, ``min_idle_runners=0``, an empty ``description``). An argument left at ``UNSET``
is not sent at all; any other value, falsy ones included, is sent.
"""


def make_request(model: type[RequestT], **fields: Any) -> RequestT:
    """A ``params`` request model from Python field names: ``make_request(CreatePoolParams,
    github_runner_group="x", tags=["a"])``.

    ``GoRequest`` decodes like Go (keys matched case-insensitively against the JSON names), so passing
    ``github_runner_group=`` to the model itself would silently drop the value: its JSON name is
    ``github-runner-group``. This maps each field name to its JSON name first.
    """
    known = model.model_fields
    return model.model_validate({(known[k].alias or k) if k in known else k: v for k, v in fields.items()})


def given(**values: Any) -> dict[str, Any]:
    """The keyword arguments of an update call that are not :data:`UNSET`."""
    return {key: value for key, value in values.items() if value is not UNSET}


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One REST call, ready to send: everything but the base URL and the token."""

    method: str
    path: str
    """Under ``/api/v1``, starting with ``/``; path parameters already quoted."""
    decode: Callable[[bytes], T]
    """Turns a 2xx body into the result; it may raise ``ValidationError`` or ``ValueError``."""
    body: bytes | None = None
    query: Mapping[str, str] = field(default_factory=dict)
    authenticated: bool = True
    """``False`` only for first-run and login, which GARM serves without a token."""


def path(template: str, *params: str | int) -> str:
    """Fill ``{}`` placeholders with URL-quoted values, so an ID can never add a path segment."""
    return template.format(*(quote(str(p), safe="") for p in params))


def encode_body(model: GoRequest | Mapping[str, Any]) -> bytes:
    """A request body: only the fields that were set, so "absent" stays absent (GARM's nil pointers)."""
    if isinstance(model, BaseModel):
        document = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
        return dumps(document)
    return dumps(dict(model))


def decode_model(model: type[ModelT]) -> Callable[[bytes], ModelT]:
    def decode(body: bytes) -> ModelT:
        return model.model_validate_json(body)

    return decode


def decode_list(model: type[ModelT]) -> Callable[[bytes], list[ModelT]]:
    """GARM answers an empty repository/organization/enterprise/credentials list with ``null``."""

    def decode(body: bytes) -> list[ModelT]:
        items = orjson.loads(body)
        if items is None:
            return []
        if not isinstance(items, list):
            raise ValueError(f"expected a JSON list of {model.__name__}")
        return [model.model_validate(item) for item in items]

    return decode


def decode_nothing(_body: bytes) -> None:
    """Deletes answer 200 or 204 with an empty body; whatever comes is ignored."""
    return None


def read_response(call: Call[T], status: int, body: bytes) -> T:
    """Decode a 2xx answer with ``call.decode``; raise :class:`APIError` for anything else."""
    if not 200 <= status < 300:
        raise api_error(status, body)
    try:
        return call.decode(body)
    except (ValidationError, ValueError) as exc:
        preview = body[:200].decode("utf-8", errors="replace")
        where = f"{call.method} {API_PREFIX}{call.path}"
        raise DecodeError(f"{where}: unexpected response body ({_first_line(exc)}): {preview!r}") from exc


def api_error(status: int, body: bytes, error_type: type[APIError] = APIError) -> APIError:
    """GARM's ``{"error", "details"}`` body when there is one; otherwise the plain text (or the status)."""
    try:
        document = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        document = None
    if isinstance(document, dict) and ("error" in document or "details" in document):
        return error_type(status, str(document.get("error") or ""), str(document.get("details") or ""))
    text = body.decode("utf-8", errors="replace").strip()
    return error_type(status, _first_line(text) if text else _status_text(status))


def rest_base(base_url: str) -> str:
    """The REST root for a profile URL: scheme + host + the URL's own path + ``/api/v1``
    (docs/garm-protocol.md#profile-file)."""
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"invalid base URL {base_url!r}: expected http(s)://host[:port][/prefix]")
    prefix = parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, prefix + API_PREFIX, "", ""))


def auth_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else ""


_STATUS_TEXT: Final = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    426: "Upgrade Required",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def _status_text(status: int) -> str:
    return _STATUS_TEXT.get(status, f"HTTP {status}")
