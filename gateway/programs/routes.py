"""HTTP routes of the programs API: parse, authenticate, hand over to the service.

Running a program and listing its jobs are jobs' business (gateway/jobs/routes.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Query, Response, UploadFile

from core.retries import MAX_RETRIES, MAX_RETRY_DELAY
from gateway.auth import CurrentUser
from gateway.context import DbSession, ServicesDep
from gateway.errors import CONFLICT
from gateway.openapi import JSON_ARRAY, JSON_OBJECT, JSON_SCHEMA_TEXT, JSON_STRING_MAP, case_insensitive, json_text
from gateway.programs import lookup, schedules
from gateway.programs.arguments import parse_arguments, validate_against_schema
from gateway.programs.schemas import FunctionOut, ProgramId, ScheduleIn, ScheduleOut, SchedulePatch, ValidateRequest
from gateway.programs.upload import UploadForm, upload_program

router = APIRouter(prefix="/programs", tags=["programs"])
OptionalForm = Annotated[str | None, Form()]
Label = Annotated[str | None, Form(max_length=64)]

# What the upload service checks itself (programs/upload.py), stated for the document only.
# title: the characters outside [A-Za-z0-9_-/] are dropped; what is left must be `name` or `provider/name`.
TITLE = {
    "pattern": "^(?:[^/]*/)?[^/]*[A-Za-z0-9_-][^/]*$",
    "description": "Characters other than `A-Za-z0-9_-` and `/` are dropped. `provider/title` names a provider "
    "function (the provider must exist and the caller must be one of its admins); with the `provider` field "
    "the title has no `/`.",
}
# entrypoint: flows.artifact.normalize_entrypoint; the file must also be in the artifact.
ENTRYPOINT = {
    "pattern": "^\\s*(?!/)(?!(?:[^/]*/)*\\.\\./)[A-Za-z0-9_./-]+\\.py\\s*$",
    "description": "A relative path to a `.py` file inside the artifact.",
}
_SEP = "[._-]?"
_PRE = "|".join(case_insensitive(word) for word in ("alpha", "a", "beta", "b", "preview", "pre", "c", "rc"))
_POST = "|".join(case_insensitive(word) for word in ("post", "rev", "r"))
# PEP 440, as packaging.version.Version reads it (case-insensitive, surrounding whitespace allowed).
VERSION = {
    "pattern": f"^\\s*[Vv]?(?:[0-9]+!)?[0-9]+(?:\\.[0-9]+)*(?:{_SEP}(?:{_PRE}){_SEP}[0-9]*)?"
    f"(?:-[0-9]+|{_SEP}(?:{_POST}){_SEP}[0-9]*)?(?:{_SEP}{case_insensitive('dev')}{_SEP}[0-9]*)?"
    "(?:\\+[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*)?\\s*$",
    "description": "A PEP 440 version, e.g. 1.2.3.",
}
DEPENDENCIES = json_text(
    JSON_ARRAY,
    'JSON text of a list of requirements (`name`, `name==version` or `{"name": "version"}`), each on the '
    "allow-list of GET /dependencies-versions (400 otherwise).",
    {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "object", "maxProperties": 1}]}},
)
ENV_VARS = json_text(JSON_STRING_MAP, "JSON text of an object mapping names to string values.", {"type": "object"})
ARGUMENTS_SCHEMA = json_text(
    JSON_SCHEMA_TEXT,
    'JSON text of a JSON Schema (draft 2020-12, object or boolean, at most 64 KiB); "{}" or \'""\' removes it.',
    {"anyOf": [{"type": ["object", "boolean"]}, {"const": ""}]},
)
SIZES = json_text(JSON_OBJECT, "JSON text of an object.", {"type": "object"})
FILTER = {"enum": list(lookup.FILTERS)}


@router.get("", response_model=list[FunctionOut], summary="List the functions the caller can see")
def list_programs(
    user: CurrentUser,
    session: DbSession,
    filter: Annotated[str | None, Query(description="'serverless' or 'catalog'", json_schema_extra=FILTER)] = None,
    provider: Annotated[str | None, Query()] = None,
) -> list[FunctionOut]:
    return [FunctionOut.of(program) for program in lookup.list_programs(session, user, filter, provider)]


@router.post(
    "/upload",
    response_model=FunctionOut,
    responses=CONFLICT,
    summary="Create or update a function (upsert on title)",
    description="A new function needs an `entrypoint` and an `artifact` holding it, or (providers only) an `image`.",
)
def upload(
    user: CurrentUser,
    session: DbSession,
    services: ServicesDep,
    title: Annotated[str, Form(max_length=1024, json_schema_extra=TITLE)],
    provider: Annotated[
        str | None, Form(max_length=255, description="An existing provider whose admin the caller is.")
    ] = None,
    entrypoint: Annotated[str | None, Form(max_length=255, json_schema_extra=ENTRYPOINT)] = None,
    image: Annotated[str | None, Form(max_length=512, description="Provider functions only.")] = None,
    runner: Annotated[str | None, Form(max_length=64, json_schema_extra={"enum": ["ray"]})] = None,
    arguments: Annotated[str | None, Form(description="Accepted and ignored (older clients send it).")] = None,
    dependencies: Annotated[str | None, Form(json_schema_extra=DEPENDENCIES)] = None,
    env_vars: Annotated[str | None, Form(json_schema_extra=ENV_VARS)] = None,
    description: OptionalForm = None,
    version: Annotated[str | None, Form(max_length=64, json_schema_extra=VERSION)] = None,
    arguments_schema: Annotated[str | None, Form(json_schema_extra=ARGUMENTS_SCHEMA)] = None,
    sizes: Annotated[str | None, Form(json_schema_extra=SIZES)] = None,
    default_size: Label = None,
    retries: Annotated[
        int | None, Form(ge=0, le=MAX_RETRIES, description="Default retries of the function's runs (0 when unset).")
    ] = None,
    retry_delay_seconds: Annotated[
        int | None, Form(ge=0, le=MAX_RETRY_DELAY, description="Default wait in seconds before each retry.")
    ] = None,
    artifact: Annotated[
        UploadFile | None, File(description="Uncompressed tar of the working directory; it must hold the entrypoint.")
    ] = None,
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
        retries=retries,
        retry_delay_seconds=retry_delay_seconds,
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


ScheduleId = Annotated[str, Path(json_schema_extra={"format": "uuid"})]
SCHEDULES = "/{program_id}/schedules"
SCHEDULE = "/{program_id}/schedules/{schedule_id}"
NOT_YOURS = "Only the function's author, or an admin of its provider, sees or changes its schedules (404 for others)."


@router.post(SCHEDULES, status_code=201, response_model=ScheduleOut, response_model_exclude_none=True,
             summary="Schedule runs of a function", description=NOT_YOURS)  # fmt: skip
def create_schedule(
    program_id: ProgramId, body: ScheduleIn, user: CurrentUser, session: DbSession, services: ServicesDep
) -> ScheduleOut:
    return schedules.add_schedule(services, lookup.program_by_id(session, user, program_id, to_manage=True), body)


@router.get(SCHEDULES, response_model=list[ScheduleOut], response_model_exclude_none=True,
            summary="A function's schedules", description=NOT_YOURS)  # fmt: skip
def get_schedules(
    program_id: ProgramId, user: CurrentUser, session: DbSession, services: ServicesDep
) -> list[ScheduleOut]:
    return schedules.list_schedules(services, lookup.program_by_id(session, user, program_id, to_manage=True))


@router.patch(SCHEDULE, response_model=ScheduleOut, response_model_exclude_none=True,
              summary="Pause or resume a schedule", description=NOT_YOURS)  # fmt: skip
def patch_schedule(
    program_id: ProgramId,
    schedule_id: ScheduleId,
    body: SchedulePatch,
    user: CurrentUser,
    session: DbSession,
    services: ServicesDep,
) -> ScheduleOut:
    program = lookup.program_by_id(session, user, program_id, to_manage=True)
    return schedules.set_active(services, program, schedule_id, body.active)


@router.delete(SCHEDULE, status_code=204, summary="Remove a schedule and its future runs", description=NOT_YOURS)
def delete_schedule(
    program_id: ProgramId, schedule_id: ScheduleId, user: CurrentUser, session: DbSession, services: ServicesDep
) -> Response:
    schedules.remove(services, lookup.program_by_id(session, user, program_id, to_manage=True), schedule_id)
    return Response(status_code=204)
