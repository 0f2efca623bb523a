"""pytest plugin (registered as `gavel` via the pytest11 entry point): fixtures for real infrastructure.

- `nats_server`: a real nats-server with JetStream on a free loopback port, one per test session,
  with the generated auth config (`gavel_kit.testing.identities.start_nats`).
- `nats_url`: its URL as the `gavel-test` superuser; `nats_credentials`: user → credentials file of
  every Gavel NATS user, to connect as a service does.
- every test process gets signing keys (`GAVEL_KEYS_DIR`, `gavel_kit.testing.identities.default()`),
  so services started by tests verify the tokens the tests mint.
- `database_url`: a fresh SQLite file per test; PostgreSQL too when GAVEL_TEST_DATABASE_URL is set
  (each test gets its own throwaway database), else those parametrisations skip with a loud reason.
- `free_port()`: a free loopback TCP port.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gavel_kit.testing import identities

POSTGRES_ENV = "GAVEL_TEST_DATABASE_URL"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pytest_configure(config: pytest.Config) -> None:
    os.environ["GAVEL_KEYS_DIR"] = str(identities.default().directory)


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[identities.AuthenticatedNats]:
    server = identities.start_nats(tmp_path_factory.mktemp("nats"), server_name="gavel-test")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_url(nats_server: identities.AuthenticatedNats) -> str:
    return nats_server.url


@pytest.fixture
def nats_credentials(nats_server: identities.AuthenticatedNats) -> dict[str, Path]:
    return nats_server.credentials


def _database_params() -> list[object]:
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]


async def _admin(url: str, statement: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    from gavel_kit.db import normalise_url

    dsn = normalise_url(url).replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(params=_database_params())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL nobody else uses: SQLite in tmp_path, or a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.sqlite'}"
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests skipped: set {POSTGRES_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    name = f"gavel_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(base, f'CREATE DATABASE "{name}"'))
    head, _, _ = base.rpartition("/")
    try:
        yield f"{head}/{name}"
    finally:
        asyncio.run(_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def pytest_report_header(config: pytest.Config) -> str:
    url = os.environ.get(POSTGRES_ENV)
    return f"gavel: PostgreSQL tests {'ON against ' + url if url else 'SKIPPED (' + POSTGRES_ENV + ' unset)'}"


@pytest.fixture(scope="session")
def span_exporter() -> object:
    """Record every span this process finishes (tracing is otherwise off in tests: no OTEL_* set).

    OpenTelemetry allows one global tracer provider per process, so the first user installs an SDK
    provider and everyone shares it; tests `clear()` the exporter before acting.
    """
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter
