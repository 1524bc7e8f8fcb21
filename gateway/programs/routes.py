"""HTTP routes of the programs API: parse, authenticate, hand over to the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Query, UploadFile

from gateway.auth import CurrentUser, DbSession
from gateway.context import ServicesDep
from gateway.jobs import service as jobs_service
from gateway.jobs.schemas import JobOut
from gateway.programs import service
from gateway.programs.schemas import FunctionOut, JobCreated, RunRequest, ValidateRequest

router = APIRouter(prefix="/programs", tags=["programs"])
OptionalForm = Annotated[str | None, Form()]
Name = Annotated[str | None, Form(max_length=255)]
Label = Annotated[str | None, Form(max_length=64)]


@router.get("", response_model=list[FunctionOut], summary="List the functions the caller can see")
def list_programs(
    user: CurrentUser,
    session: DbSession,
    filter: Annotated[str | None, Query(description="'serverless' or 'catalog'")] = None,
    provider: Annotated[str | None, Query()] = None,
) -> list[FunctionOut]:
    return [FunctionOut.of(program) for program in service.list_programs(session, user, filter, provider)]


@router.post("/upload", response_model=FunctionOut, summary="Create or update a function (upsert on title)")
def upload(
    user: CurrentUser,
    session: DbSession,
    services: ServicesDep,
    title: Annotated[str, Form(max_length=1024)],
    provider: Name = None,
    entrypoint: Name = None,
    image: Annotated[str | None, Form(max_length=512)] = None,
    runner: Label = None,
    arguments: OptionalForm = None,
    dependencies: OptionalForm = None,
    env_vars: OptionalForm = None,
    description: OptionalForm = None,
    version: Label = None,
    arguments_schema: OptionalForm = None,
    sizes: OptionalForm = None,
    default_size: Label = None,
    artifact: Annotated[UploadFile | None, File(description="Uncompressed tar of the working directory")] = None,
) -> FunctionOut:
    form = service.UploadForm(
        title=title,
        provider=provider,
        entrypoint=entrypoint,
        image=image,
        runner=runner,
        dependencies=dependencies,
        env_vars=env_vars,
        description=description,
        version=version,
        arguments_schema=arguments_schema,
        sizes=sizes,
        default_size=default_size,
    )
    upload_file = artifact.file if artifact is not None else None
    size = artifact.size if artifact is not None else None
    return FunctionOut.of(service.upload(services, session, user, form, upload_file, size))


@router.get("/get_by_title/{title}", response_model=FunctionOut, summary="Get one function by title")
def get_by_title(
    title: str, user: CurrentUser, session: DbSession, provider: Annotated[str | None, Query()] = None
) -> FunctionOut:
    return FunctionOut.of(service.find_program(session, user, title, provider))


@router.post("/validate_arguments", summary="Check arguments against the function's schema")
def validate_arguments(
    body: ValidateRequest, user: CurrentUser, session: DbSession, services: ServicesDep
) -> dict[str, bool]:
    program = service.find_program(session, user, body.title, body.provider, to_run=True)
    arguments = service.parse_arguments(body.arguments, services.settings.max_arguments_bytes)
    service.validate_against_schema(program, arguments)
    return {"valid": True}


@router.post("/run", response_model=JobCreated, summary="Run a function: enqueue a job (a Prefect flow run)")
def run(
    body: RunRequest,
    user: CurrentUser,
    session: DbSession,
    services: ServicesDep,
    service_channel: Annotated[str | None, Header()] = None,
    service_crn: Annotated[str | None, Header()] = None,
) -> JobCreated:
    return service.run(services, session, user, body, service_channel, service_crn)


@router.get("/{program_id}/get_jobs", response_model=list[JobOut], summary="Jobs of one function (legacy)")
def get_jobs(program_id: str, user: CurrentUser, session: DbSession, services: ServicesDep) -> list[JobOut]:
    program = service.program_by_id(session, user, program_id)
    return jobs_service.program_jobs(services, session, user, program)
