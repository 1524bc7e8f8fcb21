"""The gateway application: Qiskit Serverless `/api/v1` on top of Prefect, Ray and fsspec storage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from prefect.client.orchestration import get_client

from blocks.storage import block_name, location_from_settings
from core.settings import Settings
from gateway.context import Services
from gateway.db import Database
from gateway.directory import seed
from gateway.errors import ERROR_RESPONSES, install_error_handlers
from gateway.files.routes import router as files_router
from gateway.jobs.adoption import Adopter
from gateway.jobs.dispatch import Dispatcher
from gateway.jobs.routes import programs_router as runs_router
from gateway.jobs.routes import router as jobs_router
from gateway.jobs.status_feed import StatusFeed
from gateway.openapi import build as build_openapi
from gateway.orchestrator import PrefectOrchestrator
from gateway.prefect_api.relay import PrefectRelay
from gateway.prefect_api.routes import router as prefect_api_router
from gateway.programs.routes import router as programs_router
from gateway.request_gate import BodyCaps, RequestGate
from gateway.system.routes import router as system_router


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """The gateway on these settings (default: the `QS_*` environment). With `services` given
    (tests), the app uses them as they are instead of connecting to Prefect at start."""
    settings = settings or (services.settings if services else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if services is not None:
            prepare_store(services.database, settings)
            app.state.services = services
            yield
            return
        database = Database(settings.db_url)
        prepare_store(database, settings)
        location = location_from_settings(settings)
        await location.asave(block_name(settings), overwrite=True)
        with get_client(sync_client=True) as client:
            orchestrator = PrefectOrchestrator(client, settings)
            orchestrator.ensure_work_pool()
            relay = PrefectRelay.from_prefect_settings(settings.prefect_url)
            built = Services(
                settings=settings,
                database=database,
                storage=location.storage(),
                orchestrator=orchestrator,
                prefect_relay=relay,
            )
            dispatcher = Dispatcher(built)
            built.wake_dispatcher = dispatcher.wake.set
            app.state.services = built
            workers = (StatusFeed(built), dispatcher, Adopter(built))
            for worker in workers:
                worker.start()
            yield
            for worker in workers:
                worker.stop()
            await relay.close()
        database.dispose()

    app = FastAPI(
        title="Qiskit Serverless on Prefect",
        description=(
            "The Qiskit Serverless REST API (`/api/v1`), served by Prefect deployments and flow runs executed on Ray. "
            "Authenticate with `Authorization: Bearer <token>`."
        ),
        version="0.1.0",
        lifespan=lifespan,
        redirect_slashes=False,
    )
    install_error_handlers(app)
    api = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)
    api.include_router(programs_router)
    api.include_router(runs_router)
    api.include_router(jobs_router)
    api.include_router(files_router)
    api.include_router(system_router)
    api.include_router(prefect_api_router)
    app.include_router(api)
    app.include_router(system_router, responses=ERROR_RESPONSES)
    app.add_middleware(RequestGate, caps=BodyCaps.of(settings))
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    return app


def prepare_store(database: Database, settings: Settings) -> None:
    database.create_schema()
    if settings.seed_file is not None:
        with database.session() as session:
            seed(session, settings.seed_file)
