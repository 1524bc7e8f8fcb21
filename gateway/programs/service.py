"""Programs: upload (upsert + deployment), lookup, argument validation and run."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import jsonschema
from packaging.version import InvalidVersion, Version
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from blocks import storage as layout
from flows.artifact import ArtifactError, normalize_entrypoint, validate_artifact
from flows.job_spec import JobSpec
from gateway import db
from gateway.access import programs as policy
from gateway.access.facts import admin_groups, many_program_facts, program_facts
from gateway.access.subject import Principal
from gateway.context import Services
from gateway.directory import DISABLED_MESSAGE, hash_token, new_token
from gateway.errors import ApiError, bad_request, not_found
from gateway.programs.dependencies import allow_list, normalize_dependencies
from gateway.programs.form_fields import json_field
from gateway.programs.schemas import JobCreated, RunRequest
from gateway.status import QUEUED

TITLE_UNSAFE = re.compile(r"[^A-Za-z0-9_\-/]")
SCHEMA_MAX_BYTES = 64 * 1024


@dataclass
class UploadForm:
    title: str
    provider: str | None = None
    entrypoint: str | None = None
    image: str | None = None
    runner: str | None = None
    dependencies: str | None = None
    env_vars: str | None = None
    description: str | None = None
    version: str | None = None
    arguments_schema: str | None = None
    sizes: str | None = None
    default_size: str | None = None


def function_missing(title: str, provider: str | None = None) -> ApiError:
    name = f"{provider}/{title}" if provider else title
    return not_found(f"Qiskit Function {name} doesn't exist.")


def split_title(title: str, provider: str | None) -> tuple[str | None, str]:
    """`prov/title` given as one string names a provider function."""
    if provider is None and "/" in title:
        provider, title = title.split("/", 1)
    return provider or None, title


def stored_program(session: Session, owner: str, title: str, provider: str | None) -> db.Program | None:
    """A custom program is unique per (author, title), a provider program per (provider, title)."""
    query = select(db.Program).where(db.Program.title == title)
    if provider is None:
        query = query.where(db.Program.author == owner, db.Program.provider.is_(None))
    else:
        query = query.where(db.Program.provider == provider)
    return session.scalar(query)


def find_program(
    session: Session, user: Principal, title: str, provider: str | None, *, to_run: bool = False
) -> db.Program:
    """The program the caller may see (or run) under this name, or the same 404 as a missing one."""
    provider, title = split_title(title, provider)
    program = stored_program(session, user.name, title, provider)
    if program is not None:
        facts = program_facts(session, program)
        if (policy.can_run if to_run else policy.can_view)(user, facts):
            return program
    raise function_missing(title, provider)


def program_by_id(session: Session, user: Principal, program_id: str) -> db.Program:
    program = session.get(db.Program, program_id) if len(program_id) <= 36 else None
    if program is None or not policy.can_view(user, program_facts(session, program)):
        raise not_found(f"Qiskit Function [{program_id}] doesn't exist.")
    return program


def check_filter(value: str | None) -> None:
    """`catalog` (provider functions) or `serverless` (custom ones), for programs and jobs alike."""
    if value not in (None, "", "catalog", "serverless"):
        raise bad_request("'filter' must be 'catalog' or 'serverless'.")


def list_programs(session: Session, user: Principal, filter_: str | None, provider: str | None) -> list[db.Program]:
    """No filter: own custom programs plus the provider programs the caller may view;
    `serverless`: own custom programs only; `catalog`: provider programs the caller may run."""
    check_filter(filter_)
    candidates: list[db.Program] = []
    if filter_ != "catalog" and not provider:
        own = select(db.Program).where(db.Program.author == user.name, db.Program.provider.is_(None))
        candidates.extend(session.scalars(own.order_by(db.Program.created)))
    if filter_ != "serverless":
        shared = select(db.Program).where(db.Program.provider.is_not(None))
        if provider:
            shared = shared.where(db.Program.provider == provider)
        candidates.extend(session.scalars(shared.order_by(db.Program.provider, db.Program.title)))
    facts = many_program_facts(session, candidates)
    allowed = policy.can_run if filter_ == "catalog" else policy.can_view
    return [program for program in candidates if allowed(user, facts[program.id])]


def require_provider(
    session: Session, user: Principal, provider: str, allowed: Callable[[Principal, frozenset[str]], bool]
) -> None:
    """The provider exists and the policy lets the caller act for it; else the same 404 either way."""
    if session.get(db.Provider, provider) is None or not allowed(user, admin_groups(session, provider)):
        raise not_found(f"Provider {provider} doesn't exist.")


def provider_for_upload(session: Session, user: Principal, provider: str, title: str) -> db.Provider:
    """Uploading to a provider needs its admin membership; non-admins learn nothing (404)."""
    known = session.get(db.Provider, provider)
    if known is None:
        raise bad_request(f"{provider} is not valid provider.")
    if not policy.can_upload(user, admin_groups(session, provider)):
        raise function_missing(title, provider)
    return known


def normalize_env_vars(text: str) -> str:
    values = json_field(text, "env_vars", dict)
    if not all(isinstance(key, str) and isinstance(value, str) for key, value in values.items()):
        raise bad_request("'env_vars' must map names to string values.")
    return json.dumps(values)


def normalize_schema(text: str) -> str | None:
    """None removes the schema ("{}" is how the client says so)."""
    if len(text.encode()) > SCHEMA_MAX_BYTES:
        raise bad_request("arguments_schema cannot be used: larger than 64 KiB.")
    try:
        schema = json.loads(text)
    except (ValueError, RecursionError):
        raise bad_request("arguments_schema cannot be used: not JSON.") from None
    if schema == {} or schema == "":
        return None
    if not isinstance(schema, (dict, bool)):
        raise bad_request("arguments_schema cannot be used: must be an object or a boolean.")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
        # Resolve every $ref now (an unresolvable one would fail each later run instead).
        validator = jsonschema.Draft202012Validator(schema)
        for _ in validator.iter_errors({}):
            pass
    except jsonschema.SchemaError as error:
        raise bad_request(f"arguments_schema cannot be used: {error.message}") from None
    except Exception as error:  # unresolvable $ref, recursion, …: all mean the schema is unusable
        raise bad_request(f"arguments_schema cannot be used: {type(error).__name__}") from None
    return json.dumps(schema)


def upload(
    services: Services,
    session: Session,
    user: Principal,
    form: UploadForm,
    artifact: IO[bytes] | None,
    artifact_size: int | None,
) -> db.Program:
    title = TITLE_UNSAFE.sub("", form.title)[:255]
    provider, title = split_title(title, form.provider)
    if not title or "/" in title:
        raise bad_request("'title' must be a non-empty name without '/' (or 'provider/title').")
    if form.image and not provider:
        raise bad_request("Custom images are only available if you are a provider.")
    if provider:
        registry = provider_for_upload(session, user, provider, title).image_registry
        if form.image and registry and not form.image.startswith(registry.rstrip("/") + "/"):
            raise bad_request(f"The image must come from the provider's registry {registry}.")
    elif not policy.can_upload(user, None):
        raise ApiError(403, "A job of a provider function cannot upload functions.")
    if form.runner not in (None, "", "ray"):
        raise bad_request("Only the 'ray' runner is available.")

    changes = _changes(form)
    program = stored_program(session, user.name, title, provider)
    entrypoint = changes.get("entrypoint") or (program.entrypoint if program else None)
    image = changes.get("image") or (program.image if program else None)
    if entrypoint is None and image is None:
        raise bad_request("At least one of attributes (entrypoint, image) is required.")
    if artifact is not None or (entrypoint is not None and image is None):
        _check_artifact(services, program, artifact, artifact_size, entrypoint, "entrypoint" in changes)

    try:
        if program is None:
            program = db.Program(author=user.name, title=title, provider=provider)
            session.add(program)
            session.flush()
        for name, value in changes.items():
            setattr(program, name, value)
        session.flush()  # what the store refuses is refused before anything else changes
    except IntegrityError:
        session.rollback()
        raise ApiError(409, f"Function {title} was created by another upload at the same time; upload again.") from None
    # Deployment next: if Prefect refuses, nothing stored has changed yet.
    program.deployment_id = services.orchestrator.upsert_program(
        owner=program.author, title=title, provider=provider, description=program.description, version=program.version
    )
    replaced, stored = program.artifact, None
    if artifact is not None:
        # A new key per upload: queued jobs copied theirs, and a failed commit leaves the old one in use.
        stored = layout.program_artifact(program.id, db.new_id())
        services.storage.put_file(stored, artifact)
        program.artifact = stored
    try:
        session.commit()
    except Exception:
        session.rollback()
        if stored is not None:
            services.storage.delete(stored)
        raise
    if stored is not None and replaced is not None:
        services.storage.delete(replaced)
    return program


def _changes(form: UploadForm) -> dict[str, Any]:
    """The fields this upload replaces (only those that were sent)."""
    changes: dict[str, Any] = {}
    if form.entrypoint is not None:
        try:
            changes["entrypoint"] = normalize_entrypoint(form.entrypoint)
        except ArtifactError as error:
            raise bad_request(str(error)) from None
    if form.image:
        changes["image"] = form.image
    if form.dependencies is not None:
        changes["dependencies"] = normalize_dependencies(form.dependencies, allow_list())
    if form.env_vars is not None:
        changes["env_vars"] = normalize_env_vars(form.env_vars)
    if form.version is not None:
        try:
            Version(form.version)
        except InvalidVersion:
            raise bad_request("Invalid version - expected format x.y.z") from None
        changes["version"] = form.version
    if form.description is not None:
        changes["description"] = form.description
    if form.arguments_schema is not None:
        changes["arguments_schema"] = normalize_schema(form.arguments_schema)
    if form.sizes is not None:
        changes["sizes"] = json.dumps(json_field(form.sizes, "sizes", dict))
    if form.default_size is not None:
        changes["default_size"] = form.default_size
    return changes


def _check_artifact(
    services: Services,
    program: db.Program | None,
    artifact: IO[bytes] | None,
    size: int | None,
    entrypoint: str | None,
    entrypoint_changed: bool,
) -> None:
    """The uploaded (or, for a new entrypoint, the stored) artifact must hold the entrypoint."""
    if entrypoint is None:
        raise bad_request("An artifact needs an 'entrypoint'.")
    if artifact is None and (program is None or program.artifact is None):
        raise bad_request("An artifact is required: upload the program's working directory as 'artifact'.")
    if artifact is not None:
        if size is not None and size > services.settings.max_artifact_bytes:
            raise ApiError(413, f"Artifact is larger than {services.settings.max_artifact_bytes} bytes.")
        source: IO[bytes] = artifact
    elif entrypoint_changed and program is not None and program.artifact is not None:
        source = io.BytesIO(services.storage.get_bytes(program.artifact) or b"")
    else:
        return
    try:
        validate_artifact(source, entrypoint)
    except ArtifactError as error:
        raise bad_request(str(error)) from None
    source.seek(0)


def parse_arguments(text: str, limit: int) -> Any:
    if len(text.encode()) > limit:
        raise ApiError(413, f"Arguments are larger than {limit} bytes.")
    try:
        arguments = json.loads(text)
    except (ValueError, RecursionError):
        raise bad_request("'arguments' must be JSON text.") from None
    if not isinstance(arguments, dict):
        raise bad_request("'arguments' must be a JSON object.")
    return arguments


def validate_against_schema(program: db.Program, arguments: Any) -> None:
    if not program.arguments_schema:
        return
    validator = jsonschema.Draft202012Validator(
        json.loads(program.arguments_schema), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    try:
        error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    except RecursionError:
        raise bad_request("Arguments are too deeply nested to validate.") from None
    if error is not None:
        raise bad_request(error.message, path=[str(part) for part in error.absolute_path])


def run(
    services: Services,
    session: Session,
    user: Principal,
    request: RunRequest,
    channel: str | None,
    instance: str | None,
) -> JobCreated:
    program = find_program(session, user, request.title, request.provider, to_run=True)
    if program.disabled:
        raise ApiError(423, program.disabled_message or DISABLED_MESSAGE)
    limit = services.settings.max_active_jobs
    if services.orchestrator.active_jobs(user.name) >= limit:
        raise ApiError(429, f"Active job limit reached. The maximum allowed is {limit}.")
    arguments = parse_arguments(request.arguments, services.settings.max_arguments_bytes)
    validate_against_schema(program, arguments)
    if program.artifact is None or program.entrypoint is None or program.deployment_id is None:
        raise bad_request("This function is an image function; image functions cannot run on the Ray runner.")
    trial = policy.runs_as_trial(user, program_facts(session, program))

    job_id = db.new_id()
    token = new_token()
    area = layout.job_area(user.name, program.provider, program.title)
    spec = JobSpec(
        job_id=job_id,
        program_title=program.title,
        entrypoint=program.entrypoint,
        data_area=area,
        provider_area=layout.provider_area(program.provider, program.title) if program.provider else None,
        env=job_environment(services, job_id, token, program, request, channel, instance, trial),
        program_env=json.loads(program.env_vars or "{}"),
        dependencies=json.loads(program.dependencies or "[]"),
    )
    storage = services.storage
    storage.put_bytes(spec.arguments_key, request.arguments.encode())
    try:
        storage.copy(program.artifact, spec.artifact_key)  # per-job snapshot: a re-upload never changes a queued job
    except FileNotFoundError:  # replaced by an upload a moment ago
        raise ApiError(409, f"Function {program.title} was being replaced; run it again.") from None
    spec.save(storage)
    flow_run_id = services.orchestrator.start_job(
        deployment_id=program.deployment_id,
        job_id=job_id,
        owner=user.name,
        title=program.title,
        provider=program.provider,
    )
    job = db.Job(
        id=job_id,
        author=user.name,
        program_id=program.id,
        flow_run_id=flow_run_id,
        token_hash=hash_token(token),
        trial=trial,
    )
    session.add(job)
    session.commit()
    return JobCreated(
        id=job.id,
        status=QUEUED,
        program=program.id,
        created=db.iso(job.created),
        arguments=request.arguments,
    )


def job_environment(
    services: Services,
    job_id: str,
    token: str,
    program: db.Program,
    request: RunRequest,
    channel: str | None,
    instance: str | None,
    trial: bool,
) -> dict[str, str]:
    """The system variables of API.md §3.1 (the program's env_vars go on top at start)."""
    env = {
        "ENV_JOB_ID_GATEWAY": job_id,
        "ENV_JOB_GATEWAY_HOST": services.settings.gateway_url,
        "ENV_JOB_GATEWAY_TOKEN": token,
        "ENV_GATEWAY_PROVIDER_VERSION": "v1",
        "QISKIT_IBM_CHANNEL": channel or "ibm_quantum_platform",
        "QISKIT_IBM_URL": "https://cloud.ibm.com",
        "ENV_JOB_ARGUMENTS": "{}",
        "ENV_ACCESS_TRIAL": str(trial),
        "ENV_JOB_FUNCTION_SIZE": request.function_size or "",
        "ENV_JOB_COMPUTE_PROFILE": "",
        "QS_OT_PROGRAM_NAME": program.title,
        "QISKIT_IBM_RUNTIME_CUSTOM_CLIENT_APP_HEADER": f"middleware_job_id/{job_id}",
    }
    if instance:
        env["ENV_JOB_GATEWAY_INSTANCE"] = instance
        env["QISKIT_IBM_INSTANCE"] = instance
    return env
