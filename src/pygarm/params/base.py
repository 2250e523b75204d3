"""Base classes that make pydantic models read and write JSON the way GARM's Go structs do.

* :class:`GoModel` is a response/event shape: fields are declared in Go struct order, JSON names are
  aliases, and fields annotated with :data:`OmitEmpty` disappear when they hold a zero value, exactly like
  ``json:",omitempty"``. A struct value always encodes to a non-empty object, so it is never dropped,
  just as Go never omits struct values; ``X | None`` stands for a Go pointer, dropped when nil.
* :class:`GoRequest` is a request body: keys match case-insensitively and types are strict, as Go's
  decoder does; which keys were present is kept (``model_fields_set``) so that an update can tell an
  omitted field from an explicit zero, the way GARM's pointer fields do.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer, model_validator


class _OmitEmptyMarker:
    """Metadata marker: ``Annotated[str, OmitEmpty]`` means ``json:"name,omitempty"``."""

    def __repr__(self) -> str:
        return "OmitEmpty"


OmitEmpty = _OmitEmptyMarker()


def _is_go_zero(value: Any) -> bool:
    if value is None or value is False:
        return True
    if isinstance(value, (str, list, dict)):
        return len(value) == 0
    if isinstance(value, (int, float)):
        return value == 0
    return False


class GoModel(BaseModel):
    """A Go struct on the wire: struct field order, JSON tag names, ``omitempty`` rules."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", ser_json_inf_nan="null")

    @classmethod
    def _omit_empty_aliases(cls) -> frozenset[str]:
        # Computed on first use, after forward references are resolved by ``model_rebuild``.
        cached: frozenset[str] | None = cls.__dict__.get("_omit_empty_cache")
        if cached is None:
            cached = frozenset(
                field.alias or name
                for name, field in cls.model_fields.items()
                if any(meta is OmitEmpty for meta in field.metadata)
            )
            cls._omit_empty_cache = cached
        return cached

    @model_serializer(mode="wrap")
    def _drop_omit_empty(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for key in self._omit_empty_aliases():
                if key in data and _is_go_zero(data[key]):
                    del data[key]
        return data


class GoRequest(BaseModel):
    """A request body decoded like ``json.NewDecoder(r.Body).Decode(&x)``."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", strict=True)

    _aliases_by_folded_key: ClassVar[dict[str, str]] = {}
    _pointer_aliases: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._aliases_by_folded_key = {
            (field.alias or name).casefold(): field.alias or name for name, field in cls.model_fields.items()
        }
        # Fields defaulting to None stand for Go pointers, slices or maps: there `null` is a value.
        cls._pointer_aliases = frozenset(
            field.alias or name for name, field in cls.model_fields.items() if field.default is None
        )

    @model_validator(mode="before")
    @classmethod
    def _match_keys_case_insensitively(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        matched: dict[str, Any] = {}
        for key, value in data.items():
            alias = cls._aliases_by_folded_key.get(str(key).casefold())
            if alias is None:
                continue
            if value is None and alias not in cls._pointer_aliases:
                continue  # Go leaves a plain field untouched when the JSON value is null
            matched[alias] = value  # later keys win, as in Go's decoder
        return matched

    def is_set(self, field_name: str) -> bool:
        """True when the key was present and not null (Go: the pointer field is not nil)."""
        return field_name in self.model_fields_set and getattr(self, field_name) is not None
