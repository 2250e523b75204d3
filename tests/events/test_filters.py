"""The filter message: GARM's decoding rules (docs/garm-protocol.md#filter-rules), filter semantics
(docs/garm-protocol.md#filter-semantics), schema (docs/garm-protocol.md#filter-message)."""

from __future__ import annotations

import json
from itertools import product

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pygarm.events.change import EntityType, Operation
from pygarm.events.filters import (
    ERR_INVALID_ENTITY_TYPE,
    ERR_INVALID_OPERATION_TYPE,
    EVERYTHING,
    NOTHING,
    CompiledFilter,
    Decoded,
    EventFilter,
    FilterMessage,
    Ignore,
    InvalidFilter,
    UnmarshalError,
    compile_filter,
    decode_filter,
)

P = EntityType.POOL
R = EntityType.REPOSITORY
C, U, D = Operation.CREATE, Operation.UPDATE, Operation.DELETE


def pairs(entity: EntityType, *ops: Operation) -> set[tuple[EntityType, Operation]]:
    return {(entity, op) for op in (ops or tuple(Operation))}


# --- docs/garm-protocol.md#filter-rules, row 1: not decodable into Options → "failed to unmarshal filter" ---

UNMARSHAL_ERRORS = [
    pytest.param("", id="zero-length frame"),
    pytest.param(b"", id="zero-length binary frame"),
    pytest.param("not json", id="non-JSON"),
    pytest.param("[]", id="JSON array"),
    pytest.param('[{"send-everything":true}]', id="array of options"),
    pytest.param('"send-everything"', id="JSON string"),
    pytest.param("1", id="JSON number"),
    pytest.param("true", id="JSON bool"),
    pytest.param('{"send-everything":"yes"}', id="send-everything as string"),
    pytest.param('{"send-everything":1}', id="send-everything as number"),
    pytest.param('{"filters":{}}', id="filters as object"),
    pytest.param('{"filters":"repository"}', id="filters as string"),
    pytest.param('{"filters":[1]}', id="filter element as number"),
    pytest.param('{"filters":[["repository"]]}', id="filter element as array"),
    pytest.param('{"filters":[{"entity-type":5}]}', id="entity-type as number"),
    pytest.param('{"filters":[{"entity-type":"pool","operations":"create"}]}', id="operations as string"),
    pytest.param('{"filters":[{"entity-type":"pool","operations":[1]}]}', id="operation as number"),
    pytest.param('{"send-everything":true} x', id="garbage after the value"),
    pytest.param("{}{}", id="two documents"),
    pytest.param('{"send-everything":true', id="truncated"),
    pytest.param('{"x":NaN}', id="NaN is not JSON"),
    pytest.param('{"x":Infinity}', id="Infinity is not JSON"),
    pytest.param("{'send-everything':true}", id="single quotes"),
    pytest.param('{"filters":[],}', id="trailing comma"),
    pytest.param("\ufeff{}", id="byte order mark"),
    pytest.param('{"a":"\x01"}', id="control character in string"),
    pytest.param('{"send-everything":true,"x":"yes"} \x00', id="NUL after the value"),
    pytest.param('{"send-everything":true,"send-everything":"no"}', id="bad type in a repeated key"),
]


@pytest.mark.parametrize("message", UNMARSHAL_ERRORS)
def test_undecodable_messages_are_unmarshal_errors(message: str | bytes) -> None:
    """docs/garm-protocol.md#filter-rules row 1 (json.Unmarshal fails): ``failed to unmarshal filter``."""
    assert isinstance(decode_filter(message), UnmarshalError)


# --- docs/garm-protocol.md#filter-rules, row 3: decodes but names no filter → ignored, old filter stays -----

IGNORED = [
    pytest.param("{}", id="empty object"),
    pytest.param("null", id="null"),
    pytest.param(" \t\r\n{} \n", id="JSON whitespace around the value"),
    pytest.param('{"filters":[]}', id="empty filters"),
    pytest.param('{"filters":null}', id="null filters"),
    pytest.param('{"send-everything":false}', id="send-everything false"),
    pytest.param('{"send-everything":null}', id="send-everything null"),
    pytest.param('{"unknown":1}', id="unknown key"),
    pytest.param('{"unknown":{"deep":[1,2,{"x":null}]}}', id="unknown nested value"),
    pytest.param('{"entity-type":"pool"}', id="filter keys at the top level"),
    pytest.param('{"\ufb01lters":[{"entity-type":"nope"}]}', id="a ligature is not fi (Go folds simply)"),
    pytest.param('{"filters ":[{"entity-type":"nope"}]}', id="keys are not trimmed"),
    pytest.param('{"x":' + "1" * 5000 + "}", id="integer longer than Python's digit limit"),
    pytest.param('{"x":1e999}', id="number out of float range"),
    pytest.param('{"filters":[{"entity-type":"pool"}],"filters":[]}', id="later empty filters win"),
    pytest.param('{"filters":[{"entity-type":"pool"}],"filters":null}', id="later null filters win"),
]


@pytest.mark.parametrize("message", IGNORED)
def test_messages_without_filters_are_ignored(message: str) -> None:
    """docs/garm-protocol.md#filter-rules row 3: ``{}``/``null``/``{"filters":[]}`` keep the old filter."""
    assert isinstance(decode_filter(message), Ignore)


# --- docs/garm-protocol.md#filter-rules, row 4: unknown entity type or operation → "invalid filter" ---------

INVALID = [
    pytest.param('{"filters":[{"entity-type":"nope"}]}', ERR_INVALID_ENTITY_TYPE, id="unknown entity type"),
    pytest.param('{"filters":[{"entity-type":""}]}', ERR_INVALID_ENTITY_TYPE, id="empty entity type"),
    pytest.param(
        '{"filters":[{"operations":["create"]}]}', ERR_INVALID_ENTITY_TYPE, id="missing entity type"
    ),
    pytest.param('{"filters":[{}]}', ERR_INVALID_ENTITY_TYPE, id="empty filter object"),
    pytest.param('{"filters":[null]}', ERR_INVALID_ENTITY_TYPE, id="null filter element"),
    pytest.param('{"filters":[{"entity-type":null}]}', ERR_INVALID_ENTITY_TYPE, id="null entity type"),
    pytest.param(
        '{"filters":[{"entity-type":"Pool"}]}', ERR_INVALID_ENTITY_TYPE, id="values are case-sensitive"
    ),
    pytest.param('{"filters":[{"entity-type":"pool "}]}', ERR_INVALID_ENTITY_TYPE, id="no trimming"),
    pytest.param(
        '{"filters":[{"entity-type":"gitea_credentials"}]}', ERR_INVALID_ENTITY_TYPE, id="HEAD-only type"
    ),
    pytest.param(
        '{"filters":[{"entity-type":"pool","operations":["CREATE"]}]}',
        ERR_INVALID_OPERATION_TYPE,
        id="operation in upper case",
    ),
    pytest.param(
        '{"filters":[{"entity-type":"pool","operations":["create","nope"]}]}',
        ERR_INVALID_OPERATION_TYPE,
        id="one bad operation",
    ),
    pytest.param(
        '{"filters":[{"entity-type":"pool","operations":[null]}]}',
        ERR_INVALID_OPERATION_TYPE,
        id="null operation is the empty string",
    ),
    pytest.param(
        '{"filters":[{"entity-type":"pool"},{"entity-type":"nope"}]}',
        ERR_INVALID_ENTITY_TYPE,
        id="one bad filter among good ones",
    ),
    pytest.param(
        '{"send-everything":false,"filters":[{"entity-type":"nope"}]}',
        ERR_INVALID_ENTITY_TYPE,
        id="explicit send-everything false",
    ),
    pytest.param(
        b'{"filters":[{"entity-type":"pool\xff"}]}', ERR_INVALID_ENTITY_TYPE, id="invalid UTF-8 in a value"
    ),
]


@pytest.mark.parametrize(("message", "detail"), INVALID)
def test_unknown_values_are_invalid_filters(message: str | bytes, detail: str) -> None:
    """docs/garm-protocol.md#filter-rules row 4: ``invalid filter``; values are case-sensitive."""
    result = decode_filter(message)
    assert isinstance(result, InvalidFilter)
    assert result.detail == detail


# --- rows 2 and 5 of docs/garm-protocol.md#filter-rules: valid filters and what they match ---------------

VALID = [
    pytest.param('{"send-everything":true}', EVERYTHING, id="send everything"),
    pytest.param(
        '{"send-everything":true,"filters":[{"entity-type":"nope"}]}',
        EVERYTHING,
        id="send-everything skips filter validation",
    ),
    pytest.param(
        '{"send-everything":true,"filters":[{"entity-type":"pool","operations":["CREATE"]}]}',
        EVERYTHING,
        id="send-everything skips operation validation",
    ),
    pytest.param(
        '{"filters":[{"entity-type":"repository","operations":["create"]}]}', pairs(R, C), id="one pair"
    ),
    pytest.param('{"filters":[{"entity-type":"pool"}]}', pairs(P), id="omitted operations mean all"),
    pytest.param(
        '{"filters":[{"entity-type":"pool","operations":[]}]}', pairs(P), id="empty operations mean all"
    ),
    pytest.param(
        '{"filters":[{"entity-type":"pool","operations":null}]}', pairs(P), id="null operations mean all"
    ),
    pytest.param(
        '{"filters":[{"entity-type":"repository","operations":["create","update"]},'
        '{"entity-type":"instance","operations":["delete"]}]}',
        pairs(R, C, U) | pairs(EntityType.INSTANCE, D),
        id="filters are ORed (GARM doc example 3)",
    ),
    pytest.param(
        '{"filters":[{"entity-type":"pool","operations":["create","create"]},{"entity-type":"pool",'
        '"operations":["create"]}]}',
        pairs(P, C),
        id="duplicates are harmless",
    ),
    pytest.param(
        '{"filters":[{"entity-type":"pool","operations":["create"]},{"entity-type":"pool"}]}',
        pairs(P),
        id="OR with all operations of the same type",
    ),
    pytest.param(
        '{"FILTERS":[{"ENTITY-TYPE":"pool","OPERATIONS":["delete"]}]}', pairs(P, D), id="keys in upper case"
    ),
    pytest.param('{"Send-Everything":true}', EVERYTHING, id="keys in mixed case"),
    pytest.param('{"\u017fend-everything":true}', EVERYTHING, id="long s folds to s like in Go"),
    pytest.param('{"send\\u002deverything":true}', EVERYTHING, id="escaped key"),
    pytest.param(
        '{"send-everything":false,"send-everything":true}', EVERYTHING, id="repeated key: last wins"
    ),
    pytest.param(
        '{"send-everything":true,"send-everything":null}', EVERYTHING, id="null leaves the bool as it was"
    ),
    pytest.param(
        '{"filters":[{"entity-type":"pool","operations":["create"]}],"filters":[{"entity-type":"job"}]}',
        pairs(EntityType.JOB, C),
        id="repeated filters decode into the first slice's elements (Go reuses them)",
    ),
    pytest.param(
        '{"filters":[{"entity-type":"pool"},{"entity-type":"job"}],"filters":[{"entity-type":"user"}],'
        '"filters":[null,null]}',
        pairs(EntityType.USER) | pairs(EntityType.JOB),
        id="a slice that grows again shows the elements written earlier",
    ),
    pytest.param(
        '{"filters":[{"entity-type":"pool"},{"entity-type":"job"}],"filters":[{"entity-type":"user"}]}',
        pairs(EntityType.USER),
        id="a shorter repeated slice hides the elements past its length",
    ),
    pytest.param(
        '{"filters":[{"entity-type":"pool"},{"entity-type":"job"}],"filters":[],"filters":[null,null]}',
        None,
        id="an empty array starts a fresh slice",
    ),
    pytest.param(
        '{"filters":[{"entity-type":"pool","entity-type":"job"}]}',
        pairs(EntityType.JOB),
        id="repeated field key",
    ),
    pytest.param(
        '{"filters":[{"entity-type":"pool","extra":[1,{"a":2}]}]}', pairs(P), id="unknown filter key"
    ),
    pytest.param(b'{"filters":[{"entity-type":"pool"}]}', pairs(P), id="binary frames are read like text"),
    pytest.param(b'{"\xff":1,"send-everything":true}', EVERYTHING, id="invalid UTF-8 in an unknown key"),
]


@pytest.mark.parametrize(("message", "expected"), VALID)
def test_valid_filters_compile_to_pairs(
    message: str | bytes, expected: CompiledFilter | set[object] | None
) -> None:
    """docs/garm-protocol.md#filter-rules rows 2 and 5, docs/garm-protocol.md#filter-semantics: OR over
    filters, AND of type and any operation."""
    result = decode_filter(message)
    if expected is None:  # `[null,null]` into a fresh slice: two zero filters, so an invalid entity type
        assert isinstance(result, InvalidFilter)
        return
    assert isinstance(result, Decoded)
    assert result.filter == frozenset(expected)


def test_send_everything_matches_every_entity_and_operation() -> None:
    """docs/garm-protocol.md#filter-semantics: ``WithEverything()``; docs/garm-protocol.md#event-frame lists
    10 entity types and 3 operations."""
    assert len(EVERYTHING) == 30
    assert all((entity, op) in EVERYTHING for entity, op in product(EntityType, Operation))
    assert not NOTHING


def test_deep_nesting_inside_limits_is_handled() -> None:
    """Nesting well below the recursion limit decodes like any other unknown value."""
    message = '{"x":' + "[" * 200 + "]" * 200 + ',"send-everything":true}'
    assert isinstance(decode_filter(message), Decoded)


# --- property: compiled filters agree with GARM's predicate ---------------------------------------------

entity_values = st.sampled_from([e.value for e in EntityType])
operation_values = st.sampled_from([o.value for o in Operation])
filter_elements = st.fixed_dictionaries(
    {"entity-type": entity_values},
    optional={"operations": st.lists(operation_values, max_size=4)},
)


def garm_predicate(options: dict[str, object], entity: str, operation: str) -> bool:
    """A transcription of ``optionsToWatcherFilters`` (events.go) and
    ``garm@v0.1.5 database/watcher/filters.go``."""
    if options.get("send-everything"):
        return True
    for item in options.get("filters", []):  # type: ignore[attr-defined]
        if item["entity-type"] != entity:
            continue
        operations = item.get("operations") or []
        if not operations or operation in operations:
            return True
    return False


@settings(max_examples=300, deadline=None)
@given(
    send_everything=st.booleans(),
    filters=st.lists(filter_elements, min_size=1, max_size=6),
)
def test_compiled_filter_matches_reference_predicate(
    send_everything: bool, filters: list[dict[str, object]]
) -> None:
    """docs/garm-protocol.md#filter-semantics: for any valid filter set, the compiled set lookup equals GARM's
    predicate."""
    options: dict[str, object] = {"filters": filters}
    if send_everything:
        options["send-everything"] = True
    result = decode_filter(json.dumps(options))
    assert isinstance(result, Decoded)
    for entity, op in product(EntityType, Operation):
        assert ((entity, op) in result.filter) == garm_predicate(options, entity.value, op.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(document=json_values)
def test_any_json_value_gets_exactly_one_answer(document: object) -> None:
    """docs/garm-protocol.md#filter-rules: every JSON document lands in one row of the table; only objects and
    null decode."""
    result = decode_filter(json.dumps(document))
    if document is None:
        assert isinstance(result, Ignore)
    elif not isinstance(document, dict):
        assert isinstance(result, UnmarshalError)
    else:
        assert isinstance(result, (Decoded, Ignore, UnmarshalError, InvalidFilter))


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=64))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    """Any inbound binary frame gets a decode result; nothing escapes as an exception."""
    assert isinstance(decode_filter(data), (Decoded, Ignore, UnmarshalError, InvalidFilter))


# --- the message model: schema and Go encoding ----------------------------------------------------------


def test_schema_has_garms_keys_and_enums() -> None:
    """docs/garm-protocol.md#filter-message: keys ``send-everything``, ``filters``, ``entity-type``,
    ``operations`` and their enums."""
    schema = FilterMessage.model_json_schema(by_alias=True)
    assert set(schema["properties"]) == {"send-everything", "filters"}
    assert schema["properties"]["send-everything"]["type"] == "boolean"
    assert schema["additionalProperties"] is False
    definitions = schema["$defs"]
    filter_schema = next(d for d in definitions.values() if d.get("title") == "Filter")
    # GARM's two keys, and pygarm's opt-in field conditions (GARM's decoder skips the unknown key).
    assert set(filter_schema["properties"]) == {"operations", "entity-type", "match"}
    enums = {d["title"]: d["enum"] for d in definitions.values() if "enum" in d}
    assert enums["EntityType"] == [
        "repository", "organization", "enterprise", "pool", "user",
        "instance", "job", "controller", "github_credentials", "github_endpoint",
    ]  # fmt: skip
    assert enums["Operation"] == ["create", "update", "delete"]


def test_encode_writes_go_struct_order_and_omits_empty_fields() -> None:
    """``Options``/``Filter`` with ``omitempty``: Go writes ``operations`` before ``entity-type``."""
    message = FilterMessage(
        filters=[EventFilter(entity_type=R, operations=[C]), EventFilter(entity_type=P)],
    )
    assert message.encode() == (
        b'{"filters":[{"operations":["create"],"entity-type":"repository"},{"entity-type":"pool"}]}'
    )
    assert FilterMessage(send_everything=True).encode() == b'{"send-everything":true}'
    assert FilterMessage().encode() == b"{}"


def test_encoded_messages_decode_to_the_compiled_filter() -> None:
    """Round trip: what a pygarm client sends is what the server compiles."""
    message = FilterMessage(
        filters=[EventFilter(entity_type=R, operations=[C, D]), EventFilter(entity_type=P)]
    )
    result = decode_filter(message.encode())
    assert isinstance(result, Decoded)
    assert result.filter == compile_filter(message) == frozenset(pairs(R, C, D) | pairs(P))
    assert result.message == message


def test_encode_writes_match_after_the_entity_type() -> None:
    message = FilterMessage(filters=[EventFilter(entity_type=P, operations=[C], match={"pool_id": ["p1"]})])
    assert message.encode() == (
        b'{"filters":[{"operations":["create"],"entity-type":"pool","match":{"pool_id":["p1"]}}]}'
    )
