"""Wire shapes of the external provider protocol (docs/garm-protocol.md#bootstrapinstance,
docs/garm-protocol.md#providerinstance), per garm-provider-common v0.1.3.

* :class:`BootstrapInstance` is what GARM writes to a provider's stdin on ``CreateInstance``: compact JSON,
  keys in the Go struct's order, ``null`` where Go has a nil slice, and ``extra_specs`` left out when the pool
  has none. :meth:`BootstrapInstance.to_json` produces those exact bytes.
* :class:`ProviderInstance` is what a provider prints on stdout. Go's ``json.Unmarshal`` is lenient about key
  case and strict about value types; :func:`decode_provider_instance` and :func:`decode_provider_instances`
  decode the same way and word their errors the way Go does, because those texts end up in an instance's
  ``provider_fault`` that users read. :func:`validate_provider_instance` is GARM's ``validateResult``.
* :class:`RunnerApplicationDownload` is one entry of GitHub's runner downloads list, passed to providers
  verbatim as ``tools``.

Data and validation only: nothing here runs a process or talks to GitHub.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from pygarm.params.base import GoModel, OmitEmpty
from pygarm.params.gojson import GoBytes, decode_base64, dumps

# InstanceStatus values a provider may report (provider-common ``params.InstanceStatus``); everything else,
# including an empty status, fails GARM's validation (docs/garm-protocol.md#providerinstance).
PROVIDER_INSTANCE_STATUSES: Final = frozenset({"running", "stopped", "error", "unknown"})


class RunnerApplicationDownload(GoModel):
    """go-github ``RunnerApplicationDownload``: every field is a ``*string`` with ``omitempty``.

    A Go pointer is dropped only when nil, so an empty string GitHub sent is kept, unlike ``OmitEmpty``.
    """

    os: str | None = None
    architecture: str | None = None
    download_url: str | None = None
    filename: str | None = None
    temp_download_token: str | None = Field(default=None, repr=False)
    sha256_checksum: str | None = None

    @model_serializer(mode="wrap")
    def _drop_omit_empty(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Overrides GoModel's serializer: these are pointers, omitted when nil only.
        data = handler(self)
        return {key: value for key, value in data.items() if value is not None}


class UserDataOptions(GoModel):
    """``params.UserDataOptions``; GARM v0.1.5 never sets it, so it always goes out as the zero value."""

    disable_updates_on_boot: bool = False
    extra_packages: list[str] | None = None
    enable_boot_debug: bool = False


class BootstrapInstance(GoModel):
    """provider-common ``params.BootstrapInstance`` (docs/garm-protocol.md#bootstrapinstance), fields in wire
    order.

    ``instance_token`` is the instance's JWT: it is excluded from ``repr`` and must never be logged.
    ``extra_specs`` holds the pool's decoded extra specs; ``None`` means "the pool has none" and drops the
    key, as Go drops an empty ``json.RawMessage``.
    """

    name: str = ""
    tools: list[RunnerApplicationDownload] | None = None
    repo_url: str = ""
    callback_url: str = Field(default="", alias="callback-url")
    metadata_url: str = Field(default="", alias="metadata-url")
    instance_token: str = Field(default="", alias="instance-token", repr=False)
    ssh_keys: list[str] | None = Field(default=None, alias="ssh-keys")
    extra_specs: Any = None
    github_runner_group: str = Field(default="", alias="github-runner-group")
    ca_cert_bundle: GoBytes | None = Field(default=None, alias="ca-cert-bundle")
    arch: str = ""
    os_type: str = ""
    flavor: str = ""
    image: str = ""
    labels: list[str] | None = None
    pool_id: str = ""
    user_data_options: UserDataOptions = Field(default_factory=UserDataOptions)
    jit_config_enabled: bool = False

    @model_serializer(mode="wrap")
    def _drop_omit_empty(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Overrides GoModel's serializer: only ``extra_specs`` is omitempty, and only when absent.
        data = handler(self)
        if isinstance(data, dict) and data.get("extra_specs") is None:
            data.pop("extra_specs", None)
        return data

    def to_json(self) -> bytes:
        """The exact stdin bytes: Go's ``json.Marshal`` output (compact, HTML-escaped, no final newline)."""
        return dumps(self)


class ProviderAddress(GoModel):
    """provider-common ``params.Address``; ``type`` is ``public`` or ``private``, unchecked by GARM."""

    address: str = ""
    type: str = ""


class ProviderInstance(GoModel):
    """provider-common ``params.ProviderInstance`` (docs/garm-protocol.md#providerinstance); every key is
    omitempty."""

    provider_id: Annotated[str, OmitEmpty] = ""
    name: Annotated[str, OmitEmpty] = ""
    os_type: Annotated[str, OmitEmpty] = ""
    os_name: Annotated[str, OmitEmpty] = ""
    os_version: Annotated[str, OmitEmpty] = ""
    os_arch: Annotated[str, OmitEmpty] = ""
    addresses: Annotated[list[ProviderAddress] | None, OmitEmpty] = None
    status: Annotated[str, OmitEmpty] = ""
    provider_fault: Annotated[GoBytes | None, OmitEmpty] = None


class ProviderDecodeError(ValueError):
    """Provider stdout that Go's ``json.Unmarshal`` would reject; the text follows Go's wording."""


def validate_provider_instance(instance: ProviderInstance) -> None:
    """GARM's ``validateResult`` (``garm@v0.1.5 runner/providers/external/external.go:53-67``): the checks on
    Create, Get and List results."""
    if instance.provider_id == "":
        raise ValueError("missing provider ID")
    if instance.name == "":
        raise ValueError("missing instance name")
    if instance.status not in PROVIDER_INSTANCE_STATUSES:
        raise ValueError(f"invalid status returned ({instance.status})")


def decode_provider_instance(raw: bytes) -> ProviderInstance:
    """Decode one ProviderInstance from a provider's whole stdout, like ``json.Unmarshal(out, &param)``.

    A JSON ``null`` decodes to the zero instance (which then fails validation), as in Go.
    """
    value = _parse_json(raw)
    if value is None:
        return ProviderInstance()
    return _decode_instance(value, _INSTANCE_GO_TYPE)


def decode_provider_instances(raw: bytes) -> list[ProviderInstance]:
    """Decode ``ListInstances`` stdout: a JSON array, or ``null`` for none
    (docs/garm-protocol.md#provider-commands)."""
    value = _parse_json(raw)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _type_error(value, "[]" + _INSTANCE_GO_TYPE)
    return [
        ProviderInstance() if item is None else _decode_instance(item, _INSTANCE_GO_TYPE) for item in value
    ]


# --- Go-style decoding -----------------------------------------------------------------------------------

_INSTANCE_GO_TYPE: Final = "params.ProviderInstance"
_STRING_FIELDS: Final = {
    "provider_id": "string",
    "name": "string",
    "os_type": "params.OSType",
    "os_name": "string",
    "os_version": "string",
    "os_arch": "params.OSArch",
    "status": "params.InstanceStatus",
}
_ADDRESS_FIELDS: Final = {"address": "string", "type": "params.AddressType"}


def _reject_constant(name: str) -> Any:
    # Python's parser accepts NaN and Infinity; Go's does not.
    raise ProviderDecodeError(f"invalid character '{name[0]}' looking for beginning of value")


def _parse_json(raw: bytes) -> Any:
    text = raw.decode("utf-8", errors="replace")
    if text.strip() == "":
        raise ProviderDecodeError("unexpected end of JSON input")
    try:
        return json.loads(text, object_pairs_hook=_keep_pairs, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ProviderDecodeError(_go_syntax_error(exc)) from None


class _Pairs:
    """A JSON object's members in document order; Go matches keys case-insensitively, last one wins.

    Deliberately not a ``list`` or ``dict`` subclass, so a type check never mistakes an object for an array.
    """

    __slots__ = ("items",)

    def __init__(self, items: list[tuple[str, Any]]) -> None:
        self.items = items


def _keep_pairs(pairs: list[tuple[str, Any]]) -> _Pairs:
    return _Pairs(pairs)


def _go_syntax_error(exc: json.JSONDecodeError) -> str:
    """Approximate Go's ``SyntaxError`` text for the common cases (truncated output, stray text)."""
    if exc.pos >= len(exc.doc.rstrip()):
        return "unexpected end of JSON input"
    char = exc.doc[exc.pos]
    if exc.msg == "Extra data":
        return f"invalid character '{char}' after top-level value"
    if exc.pos == len(exc.doc) - len(exc.doc.lstrip()):
        return f"invalid character '{char}' looking for beginning of value"
    return f"invalid character '{char}' at offset {exc.pos + 1}: {exc.msg.lower()}"


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"  # a _Pairs


def _type_error(value: Any, go_type: str, field: str | None = None) -> ProviderDecodeError:
    where = f"Go struct field {field}" if field else "Go value"
    return ProviderDecodeError(f"json: cannot unmarshal {_json_kind(value)} into {where} of type {go_type}")


def _match_members(pairs: _Pairs, known: Any) -> dict[str, Any]:
    """Assign members to field names: exact name first, else case-insensitive; unknown keys are ignored."""
    folded = {name.casefold(): name for name in known}
    matched: dict[str, Any] = {}
    for key, value in pairs.items:
        name = key if key in known else folded.get(key.casefold())
        if name is not None:
            matched[name] = value
    return matched


def _decode_strings(members: dict[str, Any], fields: dict[str, str], struct: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, go_type in fields.items():
        value = members.get(name)
        if value is None:  # absent, or JSON null: Go leaves a non-pointer field untouched
            continue
        if not isinstance(value, str):
            raise _type_error(value, go_type, f"{struct}.{name}")
        out[name] = value
    return out


def _decode_instance(value: Any, go_type: str) -> ProviderInstance:
    if not isinstance(value, _Pairs):
        raise _type_error(value, go_type)
    members = _match_members(value, {*_STRING_FIELDS, "addresses", "provider_fault"})
    fields: dict[str, Any] = dict(_decode_strings(members, _STRING_FIELDS, "ProviderInstance"))
    addresses = members.get("addresses")
    if addresses is not None:
        if not isinstance(addresses, list):
            raise _type_error(addresses, "[]params.Address", "ProviderInstance.addresses")
        fields["addresses"] = [_decode_address(item) for item in addresses]
    fault = members.get("provider_fault")
    if fault is not None:
        if not isinstance(fault, str):
            raise _type_error(fault, "[]uint8", "ProviderInstance.provider_fault")
        fields["provider_fault"] = _decode_fault(fault)
    return ProviderInstance(**fields)


def _decode_address(item: Any) -> ProviderAddress:
    if item is None:
        return ProviderAddress()
    if not isinstance(item, _Pairs):
        raise _type_error(item, "params.Address", "ProviderInstance.addresses")
    members = _match_members(item, _ADDRESS_FIELDS)
    return ProviderAddress(**_decode_strings(members, _ADDRESS_FIELDS, "ProviderInstance.addresses"))


def _decode_fault(text: str) -> bytes:
    try:
        return bytes(decode_base64(text))
    except ValueError:
        raise ProviderDecodeError("illegal base64 data in ProviderInstance.provider_fault") from None


__all__ = [
    "PROVIDER_INSTANCE_STATUSES",
    "BootstrapInstance",
    "ProviderAddress",
    "ProviderDecodeError",
    "ProviderInstance",
    "RunnerApplicationDownload",
    "UserDataOptions",
    "decode_provider_instance",
    "decode_provider_instances",
    "validate_provider_instance",
]
