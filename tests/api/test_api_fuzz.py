"""Requests generated from the OpenAPI document, valid and invalid: never a 5xx answer.

Hypothesis drives schemathesis' strategies directly: `schemathesis.pytest.from_fixture` does not
run under pytest 9 (it sets `Function._nodeid`, which pytest 9 removed).
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

from digitrec.api.app import create_app
from digitrec.config import Settings
from digitrec.service import PredictionService

MAX_EXAMPLES = 40  # per operation and generation mode; the whole run takes seconds
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _operations(app: FastAPI) -> list[schemathesis.APIOperation]:
    # An explicit config: no schemathesis.toml is looked for outside the repository.
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=SchemathesisConfig())
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda mode: mode.value)
def test_api_answers_generated_requests_without_a_server_error(
    settings: Settings, db_service: PredictionService, mode: GenerationMode
) -> None:
    operations = _operations(create_app(settings, db_service))
    assert len(operations) >= 9  # every route is in the document

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis_settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,  # nothing written under the working directory
            suppress_health_check=list(HealthCheck),
        )
        def answers_without_a_server_error(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=CHECKS)

        try:
            answers_without_a_server_error()
        except Unsatisfiable:
            # An operation without inputs (GET /health) has no invalid request to make.
            assert mode is GenerationMode.NEGATIVE
