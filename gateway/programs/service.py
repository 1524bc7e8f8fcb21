"""Programs: upload (upsert + deployment), lookup, argument validation and run."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from typing import IO, Any

import jsonschema
from packaging.version import InvalidVersion, Version
from sqlalchemy import select
from sqlalchemy.orm import Session

from blocks import storage as layout
from flows.artifact import ArtifactError, normalize_entrypoint, validate_artifact
from flows.job_spec import JobSpec
from gateway import db
from gateway.auth import Principal, hash_token, new_token
from gateway.context import Services
from gateway.errors import ApiError, bad_request, not_found
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


def own_program(session: Session, owner: str, title: str) -> db.Program | None:
    """The owner's custom (provider-less) program with this title, unique per (author, title)."""
    return session.scalar(
        select(db.Program).where(db.Program.author == owner, db.Program.title == title, db.Program.provider.is_(None))
    )


def find_program(session: Session, user: Principal, title: str, provider: str | None) -> db.Program:
    """The program the caller may use under this name, or the documented 404."""
    provider, title = split_title(title, provider)
    if provider is None:
        program = own_program(session, user.name, title)
        if program is not None:
            return program
    raise function_missing(title, provider)


def list_programs(session: Session, user: Principal, filter_: str | None, provider: str | None) -> list[db.Program]:
    if filter_ not in (None, "", "serverless", "catalog"):
        raise bad_request("'filter' must be 'serverless' or 'catalog'.")
    if filter_ == "catalog" or provider:
        return []  # provider functions arrive with providers (catalog); users own none yet
    query = select(db.Program).where(db.Program.author == user.name, db.Program.provider.is_(None))
    return list(session.scalars(query.order_by(db.Program.created)))


def _json(text: str, field: str, kind: type) -> Any:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise bad_request(f"'{field}' must be JSON text.") from None
    if not isinstance(value, kind):
        raise bad_request(f"'{field}' must be a JSON {kind.__name__ if kind is not dict else 'object'}.")
    return value


def normalize_dependencies(text: str) -> str:
    entries = _json(text, "dependencies", list)
    normalized: list[str] = []
    for entry in entries:
        if isinstance(entry, dict) and len(entry) == 1:
            ((name, version),) = entry.items()
            entry = f"{name}=={version}"
        if not isinstance(entry, str) or not entry.strip() or entry.count("==") > 1:
            raise bad_request("'dependencies' needs one fixed version using the '==' operator.")
        normalized.append(entry.strip())
    return json.dumps(normalized)


def normalize_env_vars(text: str) -> str:
    values = _json(text, "env_vars", dict)
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
    if not title:
        raise bad_request("'title' is required.")
    if form.image and not provider:
        raise bad_request("Custom images are only available if you are a provider.")
    if provider:
        raise bad_request(f"{provider} is not valid provider.")
    if form.runner not in (None, "", "ray"):
        raise bad_request("Only the 'ray' runner is available.")

    changes: dict[str, Any] = {}
    if form.entrypoint is not None:
        try:
            changes["entrypoint"] = normalize_entrypoint(form.entrypoint)
        except ArtifactError as error:
            raise bad_request(str(error)) from None
    if form.dependencies is not None:
        changes["dependencies"] = normalize_dependencies(form.dependencies)
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
        changes["sizes"] = json.dumps(_json(form.sizes, "sizes", dict))
    if form.default_size is not None:
        changes["default_size"] = form.default_size

    program = own_program(session, user.name, title)
    entrypoint = changes.get("entrypoint") or (program.entrypoint if program else None)
    if entrypoint is None:
        raise bad_request("At least one of attributes (entrypoint, image) is required.")
    if artifact is None and (program is None or program.artifact is None):
        raise bad_request("An artifact is required: upload the program's working directory as 'artifact'.")
    if artifact is not None:
        if artifact_size is not None and artifact_size > services.settings.max_artifact_bytes:
            raise ApiError(413, f"Artifact is larger than {services.settings.max_artifact_bytes} bytes.")
        try:
            validate_artifact(artifact, entrypoint)
        except ArtifactError as error:
            raise bad_request(str(error)) from None
        artifact.seek(0)
    elif "entrypoint" in changes and program is not None and program.artifact is not None:
        stored = services.storage.get_bytes(program.artifact)
        try:
            validate_artifact(io.BytesIO(stored or b""), entrypoint)
        except ArtifactError as error:
            raise bad_request(str(error)) from None

    if program is None:
        program = db.Program(author=user.name, title=title, provider=None)
        session.add(program)
        session.flush()
    for name, value in changes.items():
        setattr(program, name, value)
    # Deployment first: if Prefect refuses, nothing stored has changed yet.
    program.deployment_id = services.orchestrator.upsert_program(
        owner=user.name, title=title, provider=None, description=program.description, version=program.version
    )
    if artifact is not None:
        key = layout.program_artifact(program.id)
        services.storage.put_file(key, artifact)
        program.artifact = key
    session.commit()
    return program


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
    program = find_program(session, user, request.title, request.provider)
    arguments = parse_arguments(request.arguments, services.settings.max_arguments_bytes)
    validate_against_schema(program, arguments)
    if program.artifact is None or program.entrypoint is None or program.deployment_id is None:
        raise bad_request("This function has no artifact to run.")

    job_id = db.new_id()
    token = new_token()
    area = layout.job_area(user.name, program.provider, program.title)
    spec = JobSpec(
        job_id=job_id,
        program_title=program.title,
        entrypoint=program.entrypoint,
        data_area=area,
        env=job_environment(services, job_id, token, program, request, channel, instance),
        program_env=json.loads(program.env_vars or "{}"),
    )
    storage = services.storage
    storage.put_bytes(spec.arguments_key, request.arguments.encode())
    storage.copy(program.artifact, spec.artifact_key)  # per-job snapshot: a re-upload never changes a queued job
    spec.save(storage)
    flow_run_id = services.orchestrator.start_job(
        deployment_id=program.deployment_id,
        job_id=job_id,
        owner=user.name,
        title=program.title,
        provider=program.provider,
    )
    job = db.Job(
        id=job_id, author=user.name, program_id=program.id, flow_run_id=flow_run_id, token_hash=hash_token(token)
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
        "ENV_ACCESS_TRIAL": "False",
        "ENV_JOB_FUNCTION_SIZE": request.function_size or "",
        "ENV_JOB_COMPUTE_PROFILE": "",
        "QS_OT_PROGRAM_NAME": program.title,
        "QISKIT_IBM_RUNTIME_CUSTOM_CLIENT_APP_HEADER": f"middleware_job_id/{job_id}",
    }
    if instance:
        env["ENV_JOB_GATEWAY_INSTANCE"] = instance
        env["QISKIT_IBM_INSTANCE"] = instance
    return env
