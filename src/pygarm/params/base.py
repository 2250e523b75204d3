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


class _OmitNilMarker:
    """Metadata marker for a ``json.RawMessage`` with ``omitempty``: Go omits it only when it holds no
    bytes at all (None here); ``{}``, ``[]``, ``0`` or ``false`` are still written."""

    def __repr__(self) -> str:
        return "OmitNil"


OmitNil = _OmitNilMarker()


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
    def _omitted_aliases(cls) -> tuple[frozenset[str], frozenset[str]]:
        """The JSON names marked OmitEmpty and OmitNil; computed on first use, after forward
        references are resolved by ``model_rebuild``, and kept in the class's own ``__dict__``."""
        cached: tuple[frozenset[str], frozenset[str]] | None = cls.__dict__.get("_omitted_cache")
        if cached is None:
            fields = cls.model_fields.items()
            cached = (
                frozenset(f.alias or n for n, f in fields if any(m is OmitEmpty for m in f.metadata)),
                frozenset(f.alias or n for n, f in fields if any(m is OmitNil for m in f.metadata)),
            )
            type.__setattr__(cls, "_omitted_cache", cached)
        return cached

    @model_serializer(mode="wrap")
    def _drop_omitted(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            omit_empty, omit_nil = self._omitted_aliases()
            for key in omit_empty:
                if key in data and _is_go_zero(data[key]):
                    del data[key]
            for key in omit_nil:
                if key in data and data[key] is None:
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
        # JSON names match case-insensitively, as in Go; Python field names are accepted too, for
        # code that builds a request from keyword arguments.
        fields = cls.model_fields.items()
        cls._aliases_by_folded_key = {name: field.alias or name for name, field in fields}
        cls._aliases_by_folded_key.update(
            {(field.alias or name).casefold(): field.alias or name for name, field in fields}
        )
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
