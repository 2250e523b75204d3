"""Fuzzing every route from the app's own OpenAPI document (issue 8 "Done when"), on both backends.

Schemathesis generates requests for every operation (valid data with generated path values, then data
the schema forbids, sent to rows that exist) and each goes, with a valid admin token and the webhook
headers GitHub sends, to a live server. Every answer must be below 500, must match what the document
declares for it (status, content type, body schema), and an answer in the 4xx range must have changed
nothing: the change log's head (every write appends to it in the same transaction) is compared before
and after.

Bounded for CI: a fixed number of examples per operation, generated deterministically (the same
requests every run, so a failure reproduces), no shrinking.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES_PER_OPERATION = 3
"""Per operation and pass: first valid data for every operation, then data the schema forbids."""
BUDGET_S = 45.0
"""Per backend: the second pass stops at this point (the first always covers every operation)."""
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


def _seed(live: Any, token: str) -> dict[str, str]:
    """Credentials and a repository: the path values the second pass sends its forbidden data to."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    base = live.base_url + "/api/v1"
    pat = {"oauth2_token": "t"}
    creds = session.post(
        base + "/github/credentials",
        json={"name": "fuzzcreds", "endpoint": "github.com", "auth_type": "pat", "pat": pat},
        timeout=10,
    )
    assert creds.status_code == 200, creds.text
    repo = session.post(
        base + "/repositories",
        json={"owner": "octo", "name": "fuzz", "credentials_name": "fuzzcreds", "webhook_secret": "s3cret"},
        timeout=10,
    )
    assert repo.status_code == 200, repo.text
    return {"entity_id": repo.json()["id"], "credentials_id": str(creds.json()["id"]), "name": "github.com"}


def _head(live: Any) -> int:
    seq: int = live.call(live.app.state.ctx.store.db.last_seq()).result(timeout=10)
    return seq


def _describe(case: Any, response: requests.Response) -> str:
    body = case.body if not isinstance(case.body, bytes) else case.body[:200]
    return (
        f"{case.method} {case.formatted_path} query={case.query} body={body!r} → "
        f"{response.status_code} {response.text[:300]!r}"
    )


@pytest.mark.timeout(300)
def test_no_route_answers_5xx_and_no_4xx_changes_anything(live_admin: tuple[Any, str]) -> None:
    live, token = live_admin
    existing = _seed(live, token)
    schema = schemathesis.openapi.from_dict(live.app.openapi())
    headers = {
        "Authorization": f"Bearer {token}",
        "X-GitHub-Event": "workflow_job",
        "X-GitHub-Hook-Installation-Target-Type": "repository",
    }
    session = requests.Session()
    failures: list[str] = []
    sent = 0
    deadline = time.monotonic() + BUDGET_S
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 70

    statuses: Counter[int] = Counter()
    plan = [(op, mode) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) for op in operations]
    covered: set[str] = set()
    for operation, mode in plan:
        if mode is GenerationMode.NEGATIVE and time.monotonic() > deadline:
            break
        # Forbidden data goes to rows that exist (where a half-applied write would show), valid data
        # to generated paths.
        negative = mode is GenerationMode.NEGATIVE
        fixed = {k: v for k, v in existing.items() if negative and f"{{{k}}}" in operation.path}

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed))
        def run(case: Any) -> None:
            nonlocal sent
            before = _head(live)
            response = case.call(base_url=live.base_url, session=session, headers=headers, timeout=15)
            sent += 1
            covered.add(case.operation.label)
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                failures.append("5xx: " + _describe(case, response))
                return
            if 400 <= response.status_code < 500 and _head(live) != before:
                failures.append("4xx that wrote: " + _describe(case, response))
            try:
                case.validate_response(response, checks=CHECKS)
            except Exception as exc:  # schemathesis raises a group of check failures
                failures.append(f"does not match the document ({type(exc).__name__}: {str(exc)[:300]}): "
                                + _describe(case, response))

        try:
            run()
        except Unsatisfiable:  # nothing the schema forbids can be sent (an operation without inputs)
            assert mode is GenerationMode.NEGATIVE, operation.label

    assert failures == [], "\n".join(failures[:30])
    print(f"fuzz: {sent} requests, statuses {dict(sorted(statuses.items()))}")
    assert covered == {operation.label for operation in operations}
    # Most generated path values name nothing (404); the lists and the seeded rows answer 200.
    assert statuses[200] >= 10 and sum(n for code, n in statuses.items() if code >= 400) >= 100
