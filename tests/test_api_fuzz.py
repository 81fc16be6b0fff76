"""Property-based API testing: schemathesis generates requests from our OpenAPI schema,
valid and invalid, and no response may be a server error."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from serving.main import create_app
from serving.settings import ServingSettings


@pytest.fixture(scope="module")
def api_schema(bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> schemathesis.BaseSchema:
    logs = tmp_path_factory.mktemp("fuzz-logs")
    app = create_app(
        ServingSettings(
            bundle_path=bundle_dir,
            log_dir=logs,
            outcome_log_dir=logs / "outcomes",
            log_queue_size=10,
            outcome_log_queue_size=10,
            admin_key="fuzz-admin",
        )
    )
    app.state.serving.store.load()  # the ASGI transport does not run the lifespan
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_no_request_gets_a_server_error(api_schema: schemathesis.BaseSchema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "POST /v1/match",
        "POST /v1/outcomes",
        "POST /v1/admin/reload",
        "GET /v1/model",
        "GET /ready",
    }
    for operation in operations:

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def answers_without_server_error(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        answers_without_server_error()
