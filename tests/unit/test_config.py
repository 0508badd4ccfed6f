"""Deployment settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from digitrec.config import Settings


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://app:pw@db:5432/digitrec", "postgresql+psycopg://app:pw@db:5432/digitrec"),
        ("postgresql://app@db/digitrec", "postgresql+psycopg://app@db/digitrec"),
        ("postgresql+psycopg://app@db/digitrec", "postgresql+psycopg://app@db/digitrec"),
        ("sqlite:////tmp/x.sqlite3", "sqlite:////tmp/x.sqlite3"),
    ],
)
def test_database_url_schemes_map_to_psycopg(given: str, used: str) -> None:
    assert Settings(database_url=given).resolved_database_url == used


@pytest.mark.parametrize(
    "url",
    ["mysql://app@db/digitrec", "postgresql+asyncpg://app@db/digitrec", "digitrec.sqlite3"],
)
def test_a_database_url_the_app_has_no_driver_for_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="expected sqlite:///PATH or postgresql"):
        Settings(database_url=url)


def test_database_url_from_the_environment_is_mapped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGITREC_DATABASE_URL", "postgres://app@db/digitrec")
    assert Settings().database_url == "postgresql+psycopg://app@db/digitrec"


def test_empty_secrets_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # Compose passes `${DIGITREC_ADMIN_TOKEN:-}`: an empty token must not open the admin views.
    monkeypatch.setenv("DIGITREC_ADMIN_TOKEN", "")
    monkeypatch.setenv("DIGITREC_API_KEY", "")
    settings = Settings()
    assert settings.admin_token is None and settings.api_key is None


def test_the_write_deadline_is_read_from_the_environment_and_must_be_positive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DIGITREC_DB_WRITE_DEADLINE_S", raising=False)
    assert Settings().db_write_deadline_s is None
    monkeypatch.setenv("DIGITREC_DB_WRITE_DEADLINE_S", "3")
    assert Settings().db_write_deadline_s == 3.0
    monkeypatch.setenv("DIGITREC_DB_WRITE_DEADLINE_S", "0")
    with pytest.raises(ValueError, match="greater than 0"):
        Settings()
