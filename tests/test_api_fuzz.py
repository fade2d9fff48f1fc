"""Bad input on the HTTP API never gives a 500: schemathesis, in process, on SQLite.

Every operation in the app's own OpenAPI document is fuzzed with valid (positive) and
invalid (negative) requests. One test checks that no response is a server error; the
other that each response matches the response schema the document gives for its status.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error, response_schema_conformance

with warnings.catch_warnings():
    # Starlette's TestClient warns about its httpx use on import (see tests/test_api.py).
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from helpers import bearer

from interlock.api.main import create_app

API = "/api/v1"
BASE_URL = "http://testserver"
MAX_EXAMPLES = 25
FLOW = "id: f\nnamespace: fuzz\nnodes:\n  a: {uses: noop, with: {v: 1}}\n"

# The document is static: building it needs neither a store nor the lifespan.
SCHEMA = schemathesis.openapi.from_dict(create_app().openapi())
# Event streams answer until the client leaves, so a fuzzer that reads each answer to its
# end would wait forever: their hostile parameters are tested in tests/test_console.py.
STREAMS = f"{API}/stream/"
OPERATIONS = {result.ok().label: result.ok() for result in SCHEMA.get_all_operations()
              if STREAMS not in result.ok().label}
POSITIVE = schemathesis.GenerationMode.POSITIVE
NEGATIVE = schemathesis.GenerationMode.NEGATIVE
CASES = [(label, mode) for label in sorted(OPERATIONS) for mode in (POSITIVE, NEGATIVE)]


def _case_id(label: str, mode: schemathesis.GenerationMode) -> str:
    return f"{label}-{mode.value}"


def _httpx_kwargs(case: schemathesis.Case) -> dict[str, Any]:
    """schemathesis builds `requests`-style arguments; the TestClient speaks httpx."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL)
    cookies = kwargs.pop("cookies", None)  # httpx deprecates per-request cookies
    if cookies:
        kwargs["headers"]["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    data = kwargs.pop("data", None)
    if isinstance(data, bytes | str):
        kwargs["content"] = data
    elif data is not None:
        kwargs["data"] = data
    return kwargs


def _fuzz(label: str, mode: schemathesis.GenerationMode, check: Any) -> None:
    operation = OPERATIONS[label]
    with TestClient(create_app()) as client:  # runs the lifespan: migrations, dispatcher
        client.headers.update(bearer())
        registered = client.post(f"{API}/flows", json={"source": FLOW})
        assert registered.status_code == 201, registered.text

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(mode))
        def fuzz(case: schemathesis.Case) -> None:
            kwargs = _httpx_kwargs(case)
            response = client.request(**kwargs)
            case.validate_response(response, headers=kwargs.get("headers"), checks=[check])

        try:
            fuzz()
        except Unsatisfiable:
            if mode is not NEGATIVE:
                raise
            # Nothing in this operation can be made invalid (no parameters, or only free strings).
            pytest.skip(f"schemathesis cannot build an invalid request for {label}")


@pytest.mark.parametrize(("label", "mode"), CASES, ids=[_case_id(*c) for c in CASES])
def test_no_server_error(label: str, mode: schemathesis.GenerationMode,
                         sqlite_store: str) -> None:
    _fuzz(label, mode, not_a_server_error)


@pytest.mark.parametrize(("label", "mode"), CASES, ids=[_case_id(*c) for c in CASES])
def test_responses_match_schema(label: str, mode: schemathesis.GenerationMode,
                                sqlite_store: str) -> None:
    _fuzz(label, mode, response_schema_conformance)
