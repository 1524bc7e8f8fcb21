"""Bearer-token authentication. Tokens are stored as SHA-256 digests and never logged or echoed.

A token is either a user's own or a job's callback token; the latter acts as the
job's author (the program calls back as the user who ran it) and only while the
job is active, so a leaked job token dies with its job (within the read cache's
two seconds). A provider program's token
is further confined to its own job (see `job_principal`).
"""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.status import ACTIVE
from gateway import db
from gateway.access.facts import user_groups
from gateway.access.subject import Principal
from gateway.context import Services, ServicesDep
from gateway.directory import hash_token
from gateway.errors import ApiError

CHANNELS = {"local", "ibm_cloud", "ibm_quantum_platform"}


class BearerHeader(HTTPBearer):
    """Documents the `bearer` security scheme (so /docs and fuzzers know every such route needs a token)
    and hands over the raw header, which `token_of` reads."""

    async def __call__(self, request: Request) -> str | None:  # type: ignore[override]
        return request.headers.get("Authorization")


# Any other value is refused (401), like the reference gateway.
ServiceChannel = Annotated[str | None, Header(json_schema_extra={"enum": sorted(CHANNELS)})]
bearer = BearerHeader(
    auto_error=False, scheme_name="bearer", description="`Authorization: Bearer <token>`: a user's token or a job's."
)


def token_of(authorization: str | None) -> str:
    """The token in an Authorization header: a bearer token, or a job's token in Basic credentials."""
    if not authorization or not authorization.strip():
        raise ApiError(401, "Authentication credentials were not provided.")
    scheme, _, credentials = authorization.strip().rpartition(" ")
    if scheme.lower() == "basic":
        return basic_password(credentials)
    # Like the reference gateway: the token is the text after the last space.
    return credentials


def basic_password(credentials: str) -> str:
    """The token in HTTP Basic credentials `base64(<any name>:<token>)`: how a program's Prefect client,
    configured with `PREFECT_API_AUTH_STRING=job:<token>`, presents its job's token. Anything else
    after `Basic` is taken as the token itself, as before."""
    try:
        name, colon, token = base64.b64decode(credentials, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return credentials
    return token if colon and name else credentials


async def authenticate(
    services: ServicesDep,
    authorization: Annotated[str | None, Depends(bearer)] = None,
    service_channel: ServiceChannel = None,
) -> Principal:
    if service_channel is not None and service_channel not in CHANNELS:
        raise ApiError(401, "Invalid Service-Channel header.")
    return await authenticated(services, authorization)


async def authenticated(services: Services, authorization: str | None) -> Principal:
    """The caller behind an Authorization header, or 401. Async, so a caller known a moment ago costs
    no thread hop and no query (gateway/read_cache.py); the request gate calls it before any body."""
    digest = hash_token(token_of(authorization))
    principal = services.reads.principals.get(digest)
    if principal is None:
        principal = await run_in_threadpool(_look_up, services, digest)
        services.reads.remember_principal(digest, principal)
    return principal


def _look_up(services: Services, digest: str) -> Principal:
    with services.database.session() as session:
        user = session.scalar(select(db.User).where(db.User.token_hash == digest))
        if user is not None:
            return Principal(user.name, user_groups(session, user.name))
        job = session.scalar(select(db.Job).where(db.Job.token_hash == digest))
        if job is not None and job.status in ACTIVE:  # a job's token ends with its job
            return job_principal(session, job)
    raise ApiError(401, "Invalid token.")


def job_principal(session: Session, job: db.Job) -> Principal:
    """A job's token acts as its author. A provider program is someone else's code, so its token is
    confined to its own job (callbacks) and carries none of the author's group rights."""
    program = session.get(db.Program, job.program_id)
    if program is not None and program.provider is None:
        return Principal(job.author, user_groups(session, job.author), job_id=job.id)
    return Principal(job.author, job_id=job.id, confined=True)


CurrentUser = Annotated[Principal, Depends(authenticate)]
