"""Uploading a program: checking the form and the artifact, then storing both and its deployment."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from typing import IO, Any

import jsonschema
from packaging.version import InvalidVersion, Version
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import layout
from core.allow_list import read_allow_list
from core.artifact import ArtifactError, normalize_entrypoint, validate_artifact
from gateway import db
from gateway.access import programs as policy
from gateway.access.facts import admin_groups
from gateway.access.subject import Principal
from gateway.context import Services
from gateway.errors import ApiError, bad_request
from gateway.orchestrator import DeploymentSpec
from gateway.programs.dependencies import normalize_dependencies
from gateway.programs.form_fields import json_field
from gateway.programs.lookup import function_missing, split_title, stored_program

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
    retries: int | None = None
    retry_delay_seconds: int | None = None


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


def upload_program(
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

    changes = _changes(form, read_allow_list(services.settings.allowed_dependencies_file))
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
        DeploymentSpec(
            owner=program.author,
            title=title,
            provider=provider,
            description=program.description,
            version=program.version,
            arguments_schema=json.loads(program.arguments_schema) if program.arguments_schema else None,
        )
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


def _changes(form: UploadForm, allowed: list[str]) -> dict[str, Any]:
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
        changes["dependencies"] = normalize_dependencies(form.dependencies, allowed)
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
    if form.retries is not None:
        changes["retries"] = form.retries
    if form.retry_delay_seconds is not None:
        changes["retry_delay_seconds"] = form.retry_delay_seconds
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
