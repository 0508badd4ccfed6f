"""Deployment settings, read from the environment (prefix ``DIGITREC_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from platformdirs import user_data_path
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

APP_NAME = "digitrec"
# The schemes Heroku-style URLs use for PostgreSQL; the app talks to it through psycopg 3.
POSTGRES_SCHEMES = ("postgres://", "postgresql://")
PSYCOPG_SCHEME = "postgresql+psycopg://"
# The databases the app has drivers for: SQLite (Python's own) and PostgreSQL (psycopg 3).
DATABASE_SCHEMES = ("sqlite://", "sqlite+pysqlite://", PSYCOPG_SCHEME)


def default_data_dir() -> Path:
    """Where the embedded database, the outbox and the MNIST cache live by default."""
    return user_data_path(APP_NAME, appauthor=False)


class Settings(BaseSettings):
    """Everything a deployment may change; every default works offline with zero setup."""

    model_config = SettingsConfigDict(env_prefix="DIGITREC_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    # None: a SQLite file in data_dir. PostgreSQL: postgresql+psycopg://user:pw@host/db
    database_url: str | None = None
    # None: the page runs the model in-process; else the page talks to this model service.
    api_url: str | None = None
    # None: the models shipped inside the package.
    model_dir: Path | None = None
    default_model: str = "default"
    log_level: str = "INFO"
    # Uploads above this many bytes are refused (HTTP 413) before they are decoded.
    max_upload_bytes: int = 5 * 1024 * 1024
    request_timeout_s: float = 10.0
    # How long a request waits for its database write before queueing it in the outbox;
    # None: the guard's default (digitrec.storage.guard). Raise it for a slow disk.
    db_write_deadline_s: float | None = Field(default=None, gt=0)
    # Writes the outbox may hold (all processes on one data_dir together) while the database
    # takes none; ~8 kB each. Full: predictions are refused with 503 `outbox_full`.
    outbox_capacity: int = Field(default=50_000, ge=0)
    # How often each process asks the model registry for newly promoted champions.
    model_poll_s: float = Field(default=5.0, gt=0)
    # Bearer token for the views across sessions (all rows, global stats, /metrics); None: off.
    admin_token: SecretStr | None = None
    # When set, every API route but /health and /ready needs it (X-API-Key); the page sends it.
    api_key: SecretStr | None = None
    # A vision-capable chat model as the `llm` reader (OpenAI chat-completions protocol): off
    # unless the URL, the model and the key are all set. See digitrec.llm.
    llm_url: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(default=10.0, gt=0)
    llm_per_minute: int = Field(default=20, ge=1)

    @field_validator("admin_token", "api_key", "llm_api_key", mode="before")
    @classmethod
    def _empty_means_unset(cls, value: object) -> object:
        """An empty value (compose passes `${VAR:-}`) means the secret is not set."""
        return None if value == "" else value

    @field_validator("database_url")
    @classmethod
    def _database_url_with_a_driver(cls, url: str | None) -> str | None:
        """`postgres://` and `postgresql://` URLs mean psycopg 3, the driver that is installed;
        a URL of any other database (or none at all) is refused when the settings are read."""
        if not url:
            return url
        for scheme in POSTGRES_SCHEMES:
            if url.startswith(scheme):
                url = PSYCOPG_SCHEME + url[len(scheme) :]
        if not url.startswith(DATABASE_SCHEMES):
            raise ValueError(
                "expected sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST/DATABASE"
            )
        return url

    @property
    def resolved_database_url(self) -> str:
        """The database URL, SQLite in ``data_dir`` when none is set."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'digitrec.sqlite3'}"

    @property
    def outbox_path(self) -> Path:
        """The durable file where writes wait while the database is unreachable."""
        return self.data_dir / "outbox"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
