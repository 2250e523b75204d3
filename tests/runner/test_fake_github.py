"""The fake GitHub itself: it serves docs/garm-protocol.md#what-a-fake-github-must-serve, records calls and
obeys its knobs.

These use plain httpx, not pygarm's client, so a bug in the client cannot hide a bug in the fake.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pygarm.testing.fake_github import DEFAULT_PAT, FakeGithubServer

AUTH = {"Authorization": f"Bearer {DEFAULT_PAT}"}
REPO = "api/v3/repos/octo/hello"


def test_binds_loopback_only(fake_github: FakeGithubServer) -> None:
    assert fake_github.base_url.startswith("http://127.0.0.1:")
    assert fake_github.api_base_url.endswith("/")


def test_serves_section_4_4_and_records_calls(fake_github: FakeGithubServer) -> None:
    """docs/garm-protocol.md#what-a-fake-github-must-serve items 1-5, with each call recorded: method, path,
    query, headers, body."""
    base = fake_github.api_base_url
    with httpx.Client(base_url=base, headers=AUTH, timeout=10) as http:
        tools = http.get(f"{REPO}/actions/runners/downloads")
        jit = http.post(
            f"{REPO}/actions/runners/generate-jitconfig", json={"name": "garm-a", "labels": ["x"]}
        )
        token = http.post(f"{REPO}/actions/runners/registration-token")
        listed = http.get(f"{REPO}/actions/runners", params={"per_page": 100})
        runner_id = jit.json()["runner"]["id"]
        deleted = http.delete(f"{REPO}/actions/runners/{runner_id}")
        again = http.delete(f"{REPO}/actions/runners/{runner_id}")
    assert tools.status_code == 200 and tools.json()[0]["os"] == "linux"
    assert jit.status_code == 201 and jit.json()["runner"]["status"] == "offline"
    files = json.loads(base64.b64decode(jit.json()["encoded_jit_config"]))
    assert set(files) == {".runner", ".credentials", ".credentials_rsaparams"}
    assert json.loads(base64.b64decode(files[".runner"]))["agentName"] == "garm-a"
    assert token.status_code == 201 and token.json()["token"] == "FAKE-REG-TOKEN"
    assert listed.json()["total_count"] == 1 and listed.json()["runners"][0]["status"] == "online"
    assert (deleted.status_code, again.status_code) == (204, 404)
    calls = fake_github.fake.calls
    assert [(c.method, c.path.removeprefix("/api/v3/repos/octo/hello")) for c in calls] == [
        ("GET", "/actions/runners/downloads"),
        ("POST", "/actions/runners/generate-jitconfig"),
        ("POST", "/actions/runners/registration-token"),
        ("GET", "/actions/runners"),
        ("DELETE", f"/actions/runners/{runner_id}"),
        ("DELETE", f"/actions/runners/{runner_id}"),
    ]
    assert calls[1].json() == {"name": "garm-a", "labels": ["x"]}
    assert calls[3].query == {"per_page": "100"}
    assert calls[0].headers["authorization"] == f"Bearer {DEFAULT_PAT}"


def test_rejects_unknown_credentials_and_obeys_401_knob(fake_github: FakeGithubServer) -> None:
    with httpx.Client(base_url=fake_github.api_base_url, timeout=10) as http:
        assert http.get(f"{REPO}/actions/runners").status_code == 401
        assert (
            http.get(f"{REPO}/actions/runners", headers={"Authorization": "token ghp_fake"}).status_code
            == 200
        )
        fake_github.fake.unauthorized = True
        answer = http.get(f"{REPO}/actions/runners", headers=AUTH)
    assert answer.status_code == 401 and answer.json()["message"] == "Bad credentials"
    assert len(fake_github.fake.calls) == 3  # rejected calls are recorded too


def test_jit_failure_knob_and_injected_errors(fake_github: FakeGithubServer) -> None:
    fake_github.fake.jit_failure_status = 404
    fake_github.fake.inject_error("GET", r"/downloads$", 503, "try later", times=1)
    with httpx.Client(base_url=fake_github.api_base_url, headers=AUTH, timeout=10) as http:
        assert http.post(f"{REPO}/actions/runners/generate-jitconfig", json={"name": "a"}).status_code == 404
        assert http.get(f"{REPO}/actions/runners/downloads").status_code == 503
        assert http.get(f"{REPO}/actions/runners/downloads").status_code == 200  # times=1 used up
    assert fake_github.fake.runners == {}


def test_paginates_with_link_headers(fake_github: FakeGithubServer) -> None:
    for index in range(3):
        fake_github.fake.add_hook("repos/octo/hello", f"https://h/{index}")
    with httpx.Client(base_url=fake_github.api_base_url, headers=AUTH, timeout=10) as http:
        first = http.get(f"{REPO}/hooks", params={"per_page": 2})
        second = http.get(first.links["next"]["url"])
    assert [h["config"]["url"] for h in first.json()] == ["https://h/0", "https://h/1"]
    assert [h["config"]["url"] for h in second.json()] == ["https://h/2"]
    assert "next" not in second.links


def test_enterprise_has_no_hooks_and_repos_no_runner_groups(fake_github: FakeGithubServer) -> None:
    with httpx.Client(base_url=fake_github.api_base_url, headers=AUTH, timeout=10) as http:
        assert http.get("api/v3/enterprises/acme/hooks").status_code == 404
        assert http.get(f"{REPO}/actions/runner-groups").status_code == 404
        assert http.get("api/v3/enterprises/acme/actions/runner-groups").status_code == 200


@pytest.mark.slow  # a process
@pytest.mark.timeout(30)
def test_runs_by_hand_as_a_module(tmp_path: Path) -> None:
    """``python -m pygarm.testing.fake_github --port N`` serves until stopped (docs/testing.md)."""
    repo_root = Path(__file__).resolve().parents[2]
    with FakeGithubServer() as probe:  # borrow a free port, then release it
        port = probe.port
    process = subprocess.Popen(
        [sys.executable, "-m", "pygarm.testing.fake_github", "--port", str(port),
         "--jit-failure-status", "404"],
        cwd=repo_root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                answer = httpx.post(
                    f"http://127.0.0.1:{port}/{REPO}/actions/runners/generate-jitconfig",
                    json={"name": "a"},
                    headers=AUTH,
                    timeout=2,
                )
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the fake never came up"
                time.sleep(0.1)
        assert answer.status_code == 404
    finally:
        process.terminate()
        process.wait(10)
