"""The HTTP API over the real service (tiny model, throwaway database), through ASGI."""

from __future__ import annotations

import base64
import io
import socket
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from digitrec.api.app import create_app
from digitrec.api.client import ApiClient
from digitrec.config import Settings
from digitrec.service import PredictionService, build_service


@pytest.fixture
def app(settings: Settings, service: PredictionService) -> FastAPI:
    """The API around the in-process service on a fresh SQLite database."""
    return create_app(settings, service)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A client that calls the app in-process, start-up and shut-down included."""
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def db_client(settings: Settings, db_service: PredictionService) -> Iterator[TestClient]:
    """A client of the API over each backend in turn (SQLite, then PostgreSQL)."""
    with TestClient(create_app(settings, db_service)) as test_client:
        yield test_client


@pytest.fixture
def closed_port() -> int:
    """A loopback TCP port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def offline_client(settings: Settings, closed_port: int) -> Iterator[TestClient]:
    """The API whose PostgreSQL refuses every connection (nothing listens on its port)."""
    url = f"postgresql+psycopg://digitrec@127.0.0.1:{closed_port}/digitrec"
    offline = settings.model_copy(update={"database_url": url})
    service = build_service(offline)
    with TestClient(create_app(offline, service)) as test_client:
        yield test_client
    service.close()


@pytest.fixture
def offline_api(offline_client: TestClient) -> ApiClient:
    """The HTTP client of an API whose database is down."""
    return ApiClient("http://testserver", http=offline_client)


@pytest.fixture
def digit_b64(digit_png: bytes) -> str:
    """The drawn digit as the base64 text of a JSON prediction request."""
    return base64.b64encode(digit_png).decode("ascii")


@pytest.fixture
def blank_png() -> bytes:
    """An empty 280x280 slate: black, nothing drawn."""
    return _png(Image.new("L", (280, 280), 0))


@pytest.fixture(scope="session")
def huge_png() -> bytes:
    """A 50-megapixel PNG: small on the wire (about 50 kB), 50 MB once decoded."""
    return _png(Image.new("L", (7072, 7072), 0))


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
