"""HTTP routes of the programs API: parse, authenticate, hand over to the service.

Running a program and listing its jobs are jobs' business (gateway/jobs/routes.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile

from gateway.auth import CurrentUser
from gateway.context import DbSession, ServicesDep
from gateway.programs import lookup
from gateway.programs.arguments import parse_arguments, validate_against_schema
from gateway.programs.schemas import FunctionOut, ValidateRequest
from gateway.programs.upload import UploadForm, upload_program

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
    return [FunctionOut.of(program) for program in lookup.list_programs(session, user, filter, provider)]


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
    form = UploadForm(
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
    return FunctionOut.of(upload_program(services, session, user, form, upload_file, size))


@router.get("/get_by_title/{title}", response_model=FunctionOut, summary="Get one function by title")
def get_by_title(
    title: str, user: CurrentUser, session: DbSession, provider: Annotated[str | None, Query()] = None
) -> FunctionOut:
    return FunctionOut.of(lookup.find_program(session, user, title, provider))


@router.post("/validate_arguments", summary="Check arguments against the function's schema")
def validate_arguments(
    body: ValidateRequest, user: CurrentUser, session: DbSession, services: ServicesDep
) -> dict[str, bool]:
    program = lookup.find_program(session, user, body.title, body.provider, to_run=True)
    arguments = parse_arguments(body.arguments, services.settings.max_arguments_bytes)
    validate_against_schema(program, arguments)
    return {"valid": True}
