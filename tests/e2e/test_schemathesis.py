"""schemathesis against a real server's `/openapi.json`: requests made from the document, as
a buyer, a shop's operator and the marketplace's back end, each answered without a 500 and
as the document says (its status codes, content types, headers and body schemas).

Bounded so that CI runs it on every change: a few examples per operation and role. A long
poll of `/api/v1/events` would hold each request up to 30 s, so `wait` is 0 here; the long
poll's answers are the same shape (tests/e2e/test_http_integrators.py waits for them)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.client.conftest import UNLIMITED, serve
from tests.e2e.harness import ServerProcess, token

pytestmark = pytest.mark.timeout(120)
EXAMPLES = 25
CHECKS: list[Callable[..., bool | None]] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
ROLES = {
    "buyer": token("buyer", "st-buyer", "Люда"),
    "seller": token("seller", "st-op", "Анна", seller="st-shop"),
    "system": token("system", "marketplace", "WB"),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # Hundreds of requests in a few seconds: the HTTP rate limit would answer most with 429.
    process = serve(
        tmp_path_factory.mktemp("schemathesis") / "chatd.db",
        *UNLIMITED,
        "--http-rate", "100000", "--http-burst", "100000",
    )  # fmt: skip
    try:
        yield process
    finally:
        process.stop()


def run_operation(
    case_strategy: st.SearchStrategy[Case[Any]],
    base: str,
    headers: dict[str, str],
    session: requests.Session,
    failures: dict[str, str],
) -> None:
    """Up to EXAMPLES requests of one operation; the first failure of each kind is kept."""

    @given(case=case_strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def one(case: Case[Any]) -> None:
        if case.query and "wait" in case.query:
            case.query["wait"] = 0
        try:
            case.call_and_validate(
                base_url=base, session=session, headers=headers, checks=CHECKS, timeout=10
            )
        except FailureGroup as group:
            for failure in group.exceptions:
                key = f"{case.operation.label} {type(failure).__name__}"
                failures.setdefault(key, f"{failure.title}: {failure.message}"[:600])

    one()


def test_every_answer_matches_the_document(server: ServerProcess) -> None:
    started = time.monotonic()
    schema = schemathesis.openapi.from_url(f"{server.http}/openapi.json")
    # A document schemathesis cannot read is an error here, not an operation left out.
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    failures: dict[str, str] = {}
    requests_made = 0

    def counting(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        nonlocal requests_made
        requests_made += 1

    with requests.Session() as session:
        session.hooks["response"].append(counting)
        for role, credential in ROLES.items():
            headers = {"Authorization": f"Bearer {credential}"}
            for operation in operations:
                before = len(failures)
                run_operation(operation.as_strategy(), server.http, headers, session, failures)
                for key in list(failures)[before:]:
                    failures[key] = f"as {role}: {failures[key]}"

    assert len(operations) >= 20
    # Every operation was tried as every role, more than once.
    assert requests_made >= len(operations) * len(ROLES) * 2
    assert failures == {}, "\n\n".join(f"{k}\n{v}" for k, v in failures.items())
    assert time.monotonic() - started < 90
