"""Service tests: the whole gateway in-process (routes, services, policies, a real store and real
local storage) with an in-memory fake in place of Prefect. No Prefect server, no Ray.

Every test runs once on SQLite and once on a real PostgreSQL server.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_orchestrator import FakeOrchestrator
from fastapi import FastAPI
from fastapi.testclient import TestClient
from gateway_harness import MAX_ACTIVE_JOBS, OTHER_TOKEN, Gateway
from stores import postgres_template, postgres_url, store_url  # noqa: F401

from core.settings import REPO_ROOT, Settings
from core.storage import Storage
from gateway import db, directory
from gateway.app import create_app, prepare_store
from gateway.context import Services
from gateway.jobs.dispatch import dispatch_jobs
from gateway.jobs.status_feed import StatusFeed


def settings_for(database_url: str, data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        seed_file=REPO_ROOT / "deployments" / "dev-seed.toml",
        max_active_jobs=MAX_ACTIVE_JOBS,
        stop_wait_seconds=0.5,
        public_url="http://gateway.test",
    )


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    """One app for the session (building the routes is the slow part); each test gives it fresh services."""
    data_dir = tmp_path_factory.mktemp("app")
    settings = settings_for(f"sqlite:///{data_dir / 'unused.db'}", data_dir)
    return create_app(
        settings, Services(settings, db.Database(settings.db_url), Storage(settings.storage_root), FakeOrchestrator())
    )


@pytest.fixture
def gateway(app: FastAPI, store_url: str, tmp_path: Path) -> Iterator[Gateway]:  # noqa: F811
    settings = settings_for(store_url, tmp_path)
    database = db.Database(settings.db_url)
    services = Services(
        settings=settings, database=database, storage=Storage(settings.storage_root), orchestrator=FakeOrchestrator()
    )
    # What the app's threads do, made synchronous: the fake's states reach the store as they happen,
    # and a recorded job gets its run before its request answers.
    services.orchestrator.follow_states(StatusFeed(services).take, threading.Event())
    services.wake_dispatcher = lambda: dispatch_jobs(services)
    prepare_store(database, settings)  # what the app's start does
    with database.session() as session:
        directory.add_user(session, "otheruser", OTHER_TOKEN)
        session.commit()
    app.state.services = services
    yield Gateway(TestClient(app), services.orchestrator, services.storage, database)  # type: ignore[arg-type]
    database.dispose()
