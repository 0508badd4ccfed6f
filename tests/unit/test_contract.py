"""The shared vocabulary: one table of errors, read the same way by the API and its client."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from digitrec.api.client import error_from_response
from digitrec.api.errors import add_exception_handlers
from digitrec.contract import ERROR_CODE_HEADER, ERROR_CODES, ERRORS_BY_CODE, error_code


def _modules_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in out.stdout.split()}


def test_contract_is_a_leaf_without_web_or_sql_imports() -> None:
    loaded = _modules_after_import("digitrec.contract")
    assert not loaded & {"fastapi", "starlette", "sqlalchemy", "alembic", "onnxruntime", "torch"}


def test_api_client_needs_neither_the_database_nor_the_model_runtime() -> None:
    # What the page imports in API mode: it talks HTTP, so no SQL, no migrations, no ONNX.
    loaded = _modules_after_import("digitrec.api.client")
    assert not loaded & {"sqlalchemy", "alembic", "onnxruntime", "torch", "fastapi"}


def test_storage_loads_alembic_only_when_migrating() -> None:
    loaded = _modules_after_import("digitrec.storage")
    assert "sqlalchemy" in loaded
    assert "alembic" not in loaded


def test_every_error_code_names_exactly_one_exception() -> None:
    assert len(ERRORS_BY_CODE) == len(ERROR_CODES)
    for error_type, entry in ERROR_CODES.items():
        assert ERRORS_BY_CODE[entry.code] is error_type
        assert error_code(error_type("x")) == entry


def test_unknown_errors_have_no_code() -> None:
    assert error_code(RuntimeError("boom")) is None


@pytest.mark.parametrize("error_type", list(ERROR_CODES), ids=lambda t: t.__name__)
def test_api_answer_turns_back_into_the_same_exception(error_type: type[Exception]) -> None:
    app = FastAPI()
    add_exception_handlers(app)

    @app.get("/fail")
    def fail() -> None:
        raise error_type("it went wrong")

    with TestClient(app) as client:
        response = client.get("/fail")

    entry = ERROR_CODES[error_type]
    assert response.status_code == entry.status
    assert response.headers[ERROR_CODE_HEADER] == entry.code
    assert type(error_from_response(response)) is error_type
