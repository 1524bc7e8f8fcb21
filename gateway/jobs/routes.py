"""HTTP routes of the jobs API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from gateway.auth import CurrentUser, ServiceChannel
from gateway.context import DbSession, ServicesDep
from gateway.errors import ErrorOut
from gateway.jobs import service, submit
from gateway.jobs.schemas import (
    EVENT_TYPE,
    ErrorEventIn,
    EventOut,
    JobCreated,
    JobOut,
    JobPage,
    JobQuery,
    ProviderJobQuery,
    RunRequest,
    RuntimeJobIn,
    StopRequest,
    SubStatus,
)
from gateway.openapi import REQUIRED
from gateway.programs.lookup import program_by_id
from gateway.programs.schemas import ProgramId

router = APIRouter(prefix="/jobs", tags=["jobs"])
# Jobs of a program, under the programs path the client calls.
programs_router = APIRouter(prefix="/programs", tags=["programs"])
NO_CONTENT: dict[int | str, dict[str, Any]] = {204: {"description": "Nothing stored yet."}}
JobId = Annotated[str, Path(json_schema_extra={"format": "uuid"})]
# Checked by the service (its own 400 message); documented only.
SUB_STATUS = {"enum": [value.value for value in SubStatus], REQUIRED: True}


@router.get("", response_model=JobPage, summary="The caller's jobs, newest first")
def list_jobs(
    request: Request,
    query: Annotated[JobQuery, Depends()],
    user: CurrentUser,
    session: DbSession,
    services: ServicesDep,
) -> JobPage:
    return _page(request, service.list_jobs(services, session, user, query), query)


@router.get("/provider", response_model=JobPage, summary="Every user's jobs of a provider's functions (admins)")
def list_provider_jobs(
    request: Request,
    query: Annotated[ProviderJobQuery, Depends()],
    user: CurrentUser,
    session: DbSession,
    services: ServicesDep,
) -> JobPage:
    return _page(request, service.list_provider_jobs(services, session, user, query), query)


def _page(request: Request, found: tuple[int, list[JobOut]], query: JobQuery) -> JobPage:
    count, items = found
    return service.page(str(request.url.replace(query="")), count, items, query.limit, query.offset)


@router.get("/{job_id}", response_model=JobOut, response_model_exclude_none=False, summary="One job")
async def get_job(
    job_id: JobId, user: CurrentUser, session: DbSession, services: ServicesDep, with_result: bool = False
) -> Any:
    # Async: clients poll this, and a job read a moment ago is answered without a thread hop or a query.
    cached = None if with_result else service.cached_job(services, user, job_id)
    if cached is not None:
        return cached.model_dump(exclude={"result"})
    out, result = await run_in_threadpool(service.job_detail, services, session, user, job_id, with_result)
    if not with_result:
        return out.model_dump(exclude={"result"})
    await run_in_threadpool(session.close)  # no database connection is held while the result moves
    head = out.model_dump_json(exclude={"result"})[:-1].encode() + b',"result":'
    return StreamingResponse(_joined(head, result or iter([b"null"]), b"}"), media_type="application/json")


@router.get("/{job_id}/result", responses=NO_CONTENT, summary="The job's saved result (raw JSON text)")
def get_result(job_id: JobId, user: CurrentUser, session: DbSession, services: ServicesDep) -> Response:
    result = service.result(services, session, user, job_id)
    session.close()  # no database connection is held while the result moves
    if result is None:
        return Response(status_code=204)
    return StreamingResponse(_joined(b'{"result":', result, b"}"), media_type="application/json")


def _joined(head: bytes, middle: Iterator[bytes], tail: bytes) -> Iterator[bytes]:
    yield head
    yield from middle
    yield tail


@router.post("/{job_id}/result", summary="Legacy save_result of clients up to 0.32")
def post_result(
    job_id: JobId, user: CurrentUser, session: DbSession, services: ServicesDep, result: Annotated[str, Form()]
) -> dict[str, str]:
    service.save_result(services, session, user, job_id, result)
    return {"message": "Result saved."}


@router.get("/{job_id}/logs", responses=NO_CONTENT, summary="The job's logs (live while it runs)")
def get_logs(job_id: JobId, user: CurrentUser, session: DbSession, services: ServicesDep) -> Response:
    text = service.logs(services, session, user, job_id)
    return Response(status_code=204) if text is None else JSONResponse({"logs": text})


@router.get("/{job_id}/provider-logs", responses=NO_CONTENT, summary="Provider-side logs of a provider job")
def get_provider_logs(job_id: JobId, user: CurrentUser, session: DbSession, services: ServicesDep) -> Response:
    text = service.provider_logs(services, session, user, job_id)
    return Response(status_code=204) if text is None else JSONResponse({"logs": text})


@router.post("/{job_id}/stop", summary="Stop the job: cancel its flow run and kill its program")
def stop(
    job_id: JobId, user: CurrentUser, session: DbSession, services: ServicesDep, body: StopRequest | None = None
) -> dict[str, str]:
    message = service.stop(services, session, user, job_id, body.service if body else None)
    return {"message": message}


@router.get("/{job_id}/events", response_model=list[EventOut], summary="The job's events, newest first")
def get_events(
    job_id: JobId,
    user: CurrentUser,
    session: DbSession,
    services: ServicesDep,
    type: Annotated[str | None, Query(max_length=64, json_schema_extra=EVENT_TYPE)] = None,
) -> list[EventOut]:
    return service.events(services, session, user, job_id, type)


@router.post("/{job_id}/event", summary="Record an ERROR event (send_error)")
def post_event(
    job_id: JobId, body: ErrorEventIn, user: CurrentUser, session: DbSession, services: ServicesDep
) -> Response:
    service.add_error_event(services, session, user, job_id, body)
    return Response(status_code=200)


@router.patch("/{job_id}/sub_status", summary="Set the running job's sub-status (update_status)")
def patch_sub_status(
    job_id: JobId,
    user: CurrentUser,
    session: DbSession,
    services: ServicesDep,
    sub_status: Annotated[str | None, Form(max_length=64, json_schema_extra=SUB_STATUS)] = None,
) -> dict[str, Any]:
    out = service.set_sub_status(services, session, user, job_id, sub_status)
    return {"job": out.model_dump(include={"id", "status", "program", "created", "sub_status"})}


@router.get("/{job_id}/runtime_jobs", summary="IBM Runtime jobs the program started")
def get_runtime_jobs(job_id: JobId, user: CurrentUser, session: DbSession) -> dict[str, Any]:
    return {"runtime_jobs": service.runtime_jobs(session, user, job_id)}


@router.post("/{job_id}/runtime_jobs", summary="Associate an IBM Runtime job with this job")
def post_runtime_job(job_id: JobId, body: RuntimeJobIn, user: CurrentUser, session: DbSession) -> dict[str, str]:
    return {"message": service.add_runtime_job(session, user, job_id, body.runtime_job, body.runtime_session)}


@programs_router.post(
    "/run",
    response_model=JobCreated,
    responses={
        409: {
            "model": ErrorOut,
            "description": "Changed concurrently; retry. Or its Idempotency-Key was used for another run request",
        }
    },
    summary="Run a function: enqueue a job (a Prefect flow run)",
)
def run(
    body: RunRequest,
    user: CurrentUser,
    session: DbSession,
    services: ServicesDep,
    service_channel: ServiceChannel = None,
    service_crn: Annotated[str | None, Header()] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="Repeat a run with the same key (within 24 h) to get the job it made, never a second one.",
        ),
    ] = None,
) -> JobCreated:
    return submit.run(services, session, user, body, service_channel, service_crn, idempotency_key)


@programs_router.get("/{program_id}/get_jobs", response_model=list[JobOut], summary="Jobs of one function (legacy)")
def get_jobs(program_id: ProgramId, user: CurrentUser, session: DbSession, services: ServicesDep) -> list[JobOut]:
    return service.program_jobs(services, session, user, program_by_id(session, user, program_id))
