"""The one settings object: every knob is a ``MEDFUSION_*`` env var (optionally from ``.env``).

All on-disk state lives under ``data_dir`` unless a more specific variable (``MEDFUSION_DATABASE_URL``)
points elsewhere, so a fresh working directory is a fresh installation.

This is the only module that reads or writes ``os.environ``: other modules read settings, and set what
third-party libraries read from the environment (OpenMP thread counts, Typer's output style) through
:func:`set_process_default` and :func:`child_environment`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class NamedModel(BaseModel):
    """Another general model under a name (``fast``, ``large`` …); unset fields take the default's."""

    model: str
    base_url: str | None = None
    api_key: SecretStr | None = None
    external: bool | None = None
    price_input_per_1k: float | None = Field(default=None, ge=0)
    price_output_per_1k: float | None = Field(default=None, ge=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDFUSION_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("var"), description="Root of all on-disk state.")
    database_url: str | None = Field(
        default=None, description="sqlite:///… or postgresql://…; default is SQLite under data_dir."
    )
    shared_data: Path = Field(default=Path("../shared/data"), description="Public datasets folder.")
    kb_backend: Literal["memory", "postgres"] = Field(
        default="memory", description="Retrieval backend: in-process, or PostgreSQL full-text (sparse side)."
    )
    kb_dense_backend: Literal["memory", "milvus"] = Field(
        default="memory", description="Dense retrieval: in-process matrix, or Milvus (milvus-lite or server)."
    )
    kb_milvus_uri: str | None = Field(
        default=None,
        description="Milvus URI: a local milvus-lite file (default data_dir/milvus.db) or http://…",
    )
    kb_medical_dictionary: bool = Field(
        default=False, description="Add the shipped packs' vocabulary to the word segmenter (measured: off)."
    )
    kb_feedback: bool = Field(
        default=True, description="Re-score retrieval with clinicians' accept/reject feedback per passage."
    )
    autoload_packs: bool = Field(
        default=True, description="Install the knowledge packs shipped in the repo on first use."
    )
    llm_base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8001/v1; unset = no model.",
    )
    llm_model: str | None = Field(default=None, description="Model name the endpoint serves.")
    llm_api_key: SecretStr | None = Field(default=None, description="Bearer key, if the endpoint wants one.")
    llm_external: bool = Field(
        default=False, description="Endpoint outside the hospital: text is de-identified before it leaves."
    )
    llm_models: dict[str, NamedModel] = Field(
        default_factory=dict, description='More models by name, JSON: {"fast": {"model": "qwen2.5-7b"}}.'
    )
    llm_timeout_seconds: float = Field(default=60.0, gt=0, description="Whole-request deadline.")
    llm_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    llm_max_retries: int = Field(default=2, ge=0, le=10, description="Retries on 429/5xx/connection errors.")
    llm_max_concurrency: int = Field(default=4, ge=1, description="Requests in flight per endpoint.")
    llm_breaker_failures: int = Field(
        default=5, ge=1, description="Consecutive failures that open the breaker."
    )
    llm_breaker_reset_seconds: float = Field(default=30.0, gt=0)
    llm_cache: bool = Field(
        default=True, description="Cache deterministic (temperature 0) responses on disk."
    )
    llm_price_input_per_1k: float = Field(default=0.0, ge=0, description="Cost per 1k prompt tokens (元).")
    llm_price_output_per_1k: float = Field(default=0.0, ge=0, description="Cost per 1k completion tokens.")
    secret_key: str | None = Field(
        default=None, description="Token signing key; generated once under data_dir when unset."
    )
    token_ttl_minutes: int = Field(default=60, ge=1, le=24 * 60)
    account_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="How long a worker process trusts an account's standing it read (role, active, token "
        "version) before reading it again; a change made in the same process applies at once. "
        "0: read it on every request.",
    )
    max_request_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    kb_upload_max_bytes: int = Field(
        default=200 * 1024 * 1024,
        ge=1024,
        description="Largest knowledge-base document (guideline PDFs); upload routes' body limit follows.",
    )
    login_max_failures: int = Field(default=5, ge=1, description="Consecutive failures before lockout.")
    login_lockout_minutes: int = Field(default=15, ge=1)
    timezone: str = "Asia/Shanghai"
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = 8000
    ray_address: str | None = Field(
        default=None,
        description="Ray cluster the ray executor joins (host:port or ray://…); unset = start a local Ray.",
    )
    events_relay: str | None = Field(
        default=None,
        pattern=r"^(nats|tls)://",
        description="Record events: unset = in-process dispatcher over the outbox; nats://host:4222 = "
        "relay through NATS JetStream to subscriber workers.",
    )
    events_dispatch: bool = Field(
        default=True,
        description="Run the in-process record-event dispatcher in this server process; `serve --workers N` "
        "turns it off in the workers and runs the one dispatcher in the parent process.",
    )

    @property
    def resolved_data_dir(self) -> Path:
        path = self.data_dir.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite:///{self.resolved_data_dir / 'medfusion.db'}"

    def signing_key(self) -> str:
        """Explicit key, else one generated once and kept (mode 0600) so tokens survive restarts."""
        if self.secret_key:
            return self.secret_key
        key_file = self.resolved_data_dir / "secret.key"
        if not key_file.exists():
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        return key_file.read_text().strip()


def normalise_database_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and route them to the psycopg 3 driver we ship."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def set_process_default(key: str, value: str) -> None:
    """Give a library that reads its knob from the environment (``OMP_NUM_THREADS``, ``TYPER_USE_RICH``) a
    default for this process and the processes it starts; a value already set (by the user) wins."""
    os.environ.setdefault(key, value)


@contextmanager
def child_environment(env: dict[str, str]) -> Iterator[None]:
    """Processes started inside the block inherit ``env`` (spawned children copy the parent's environment
    when they start); this process's own environment is restored afterwards."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
