"""The REST half of the sans-I/O core: calls, bodies, answers and errors, without any socket."""

from __future__ import annotations

import orjson
import pytest

from pygarm.client import UNSET, APIError, DecodeError, HandshakeError, make_request
from pygarm.client import _entity_routes as e
from pygarm.client import _routes as r
from pygarm.client._core import api_error, given, read_response, rest_base
from pygarm.params.entity_requests import CreatePoolParams
from pygarm.params.models import Pool, Repository


def test_unset_is_a_falsy_singleton_and_given_drops_only_it() -> None:
    assert not UNSET and repr(UNSET) == "UNSET"
    assert given(a=UNSET, b=False, c=0, d="", e=None) == {"b": False, "c": 0, "d": "", "e": None}


def test_update_sends_only_the_fields_given_including_zero_values() -> None:
    """GARM's updates are Go pointers: a present zero is a value, an absent field is "leave as is"."""
    call = e.update_pool("p1", enabled=False, min_idle_runners=0, github_runner_group="")
    assert (call.method, call.path) == ("PUT", "/pools/p1")
    assert orjson.loads(call.body or b"") == {
        "enabled": False,
        "min_idle_runners": 0,
        "github-runner-group": "",
    }
    assert orjson.loads(e.update_pool("p1").body or b"") == {}


def test_entity_routes_cover_the_three_collections() -> None:
    assert e.REPOSITORIES.list_pools("r1").path == "/repositories/r1/pools"
    assert e.ORGANIZATIONS.get_pool("o1", "p1").path == "/organizations/o1/pools/p1"
    assert e.ENTERPRISES.list_instances("x").path == "/enterprises/x/instances"
    call = e.REPOSITORIES.update_pool("r1", "p1", max_runners=3)
    assert (call.method, call.path, orjson.loads(call.body or b"")) == (
        "PUT",
        "/repositories/r1/pools/p1",
        {"max_runners": 3},
    )
    delete = e.REPOSITORIES.delete("r1", keep_webhook=True)
    assert (delete.method, dict(delete.query)) == ("DELETE", {"keepWebhook": "true"})


def test_path_parameters_are_quoted_so_they_cannot_add_segments() -> None:
    assert r.get_github_endpoint("a/../b").path == "/github/endpoints/a%2F..%2Fb"
    assert e.get_instance("x y").path == "/instances/x%20y"


def test_create_body_uses_go_aliases() -> None:
    params = make_request(CreatePoolParams, github_runner_group="grp", tags=["a"], max_runners=2)
    body = orjson.loads(e.REPOSITORIES.create_pool("r1", params).body or b"")
    assert body == {"github-runner-group": "grp", "tags": ["a"], "max_runners": 2}


def test_login_and_first_run_are_sent_without_a_token() -> None:
    assert r.login("u", "p").authenticated is False
    assert r.list_users().authenticated is True


def test_delete_instance_query_uses_garm_parameter_names() -> None:
    call = e.delete_instance("r", force_remove=True, bypass_github_unauthorized=True)
    assert dict(call.query) == {"forceRemove": "true", "bypassGHUnauthorized": "true"}
    assert dict(e.delete_instance("r").query) == {}


def test_null_list_decodes_as_empty() -> None:
    """GARM answers an empty repository list with ``null``
    (docs/garm-protocol.md#empty-bodies-and-null-lists)."""
    assert read_response(e.REPOSITORIES.list_all(), 200, b"null\n") == []
    repos = read_response(e.REPOSITORIES.list_all(), 200, b'[{"id":"x","owner":"o","name":"n"}]\n')
    assert isinstance(repos[0], Repository) and repos[0].owner == "o"


def test_empty_delete_bodies_are_accepted_for_200_and_204() -> None:
    assert read_response(e.delete_pool("p"), 200, b"") is None
    assert read_response(r.delete_github_endpoint("x"), 204, b"") is None


def test_error_body_is_garm_error_and_details() -> None:
    with pytest.raises(APIError) as info:
        read_response(e.get_pool("p"), 404, b'{"error":"Not Found","details":"pool not found"}\n')
    assert (info.value.status, info.value.error, info.value.details) == (404, "Not Found", "pool not found")
    assert str(info.value) == "Not Found: pool not found (HTTP 404)"


def test_plain_text_error_body_is_kept() -> None:
    """GARM's admin middleware answers non-admins with plain ``Unauthorized``."""
    error = api_error(401, b"Unauthorized\n")
    assert (error.status, error.error, error.details) == (401, "Unauthorized", "")
    assert api_error(502, b"").error == "Bad Gateway"


def test_handshake_error_names_the_stream() -> None:
    error = api_error(401, b'{"error":"Authentication failed","details":""}', HandshakeError)
    assert isinstance(error, HandshakeError) and isinstance(error, APIError)
    assert str(error) == "events handshake failed: Authentication failed (HTTP 401)"


def test_unexpected_success_body_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="GET /api/v1/pools/p"):
        read_response(e.get_pool("p"), 200, b"<html>proxy</html>")
    assert isinstance(read_response(e.get_pool("p"), 200, b'{"id":"p","unknown":1}'), Pool)


def test_rest_base_keeps_a_proxy_prefix() -> None:
    assert rest_base("http://127.0.0.1:9997") == "http://127.0.0.1:9997/api/v1"
    assert rest_base("https://garm.example.com/prefix/") == "https://garm.example.com/prefix/api/v1"
    with pytest.raises(ValueError, match="invalid base URL"):
        rest_base("127.0.0.1:9997")
