"""A request that names no model gets the service's default (DIGITREC_DEFAULT_MODEL), on every
path: in-process, over HTTP with JSON or multipart, and through the API client."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from credentials import sid
from fastapi.testclient import TestClient

from digitrec.api.app import create_app
from digitrec.api.client import ApiClient
from digitrec.config import Settings
from digitrec.service import PredictionService, build_service


@pytest.fixture
def lenet_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"default_model": "lenet5"})


@pytest.fixture
def lenet_service(lenet_settings: Settings) -> Iterator[PredictionService]:
    built = build_service(lenet_settings)
    yield built
    built.close()


@pytest.fixture
def lenet_client(
    lenet_settings: Settings, lenet_service: PredictionService
) -> Iterator[TestClient]:
    with TestClient(create_app(lenet_settings, lenet_service)) as test_client:
        yield test_client


def test_in_process_predict_without_a_model_uses_the_configured_default(
    lenet_service: PredictionService, digit_png: bytes
) -> None:
    assert lenet_service.predict(digit_png, session_id=sid("s1")).model == "lenet5"


def test_http_predict_without_a_model_uses_the_configured_default(
    lenet_client: TestClient, digit_png: bytes
) -> None:
    body = {"image": base64.b64encode(digit_png).decode(), "session_id": sid("s1")}
    assert lenet_client.post("/predict", json=body).json()["model"] == "lenet5"
    upload = lenet_client.post("/predict", files={"file": ("d.png", digit_png, "image/png")})
    assert upload.json()["model"] == "lenet5"


def test_api_client_without_a_model_uses_the_services_default(
    lenet_client: TestClient, digit_png: bytes
) -> None:
    client = ApiClient("http://testserver", http=lenet_client)
    assert client.predict(digit_png, session_id=sid("s1")).model == "lenet5"
    assert client.predict(digit_png, session_id=sid("s1"), model="default").model == "default"


def test_default_model_setting_reaches_the_app_it_builds(
    lenet_settings: Settings, tiny_model_dir: Path, digit_png: bytes
) -> None:
    with TestClient(create_app(lenet_settings)) as client:
        body = {"image": base64.b64encode(digit_png).decode()}
        assert client.post("/predict", json=body).json()["model"] == "lenet5"
