"""Request and response shapes of the jobs API, and of running a program (`POST /programs/run`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, BeforeValidator, Field

from core.retries import MAX_RETRIES, MAX_RETRY_DELAY
from gateway.openapi import REQUIRED, case_insensitive
from gateway.programs.arguments import ARGUMENTS
from gateway.programs.lookup import FILTERS

ERROR = "ERROR"
EVENT_TYPES = [ERROR]
# Checked by the service, case-insensitively (its own 400 message): documented only.
EVENT_TYPE: dict[str, Any] = {"pattern": "^(?:" + "|".join(case_insensitive(kind) for kind in EVENT_TYPES) + ")$"}


class SubStatus(StrEnum):
    MAPPING = "MAPPING"
    OPTIMIZING_HARDWARE = "OPTIMIZING_HARDWARE"
    WAITING_QPU = "WAITING_QPU"
    EXECUTING_QPU = "EXECUTING_QPU"
    POST_PROCESSING = "POST_PROCESSING"


class ProgramRef(BaseModel):
    id: str
    title: str
    provider: str | None


class JobOut(BaseModel):
    id: str
    status: str
    program: ProgramRef
    created: str
    sub_status: str | None
    fleet_id: None = None
    compute_profile: None = None
    business_model: str = "SUBSIDIZED"
    result: str | None = Field(default=None, description="Only with with_result=true, author only.")


class JobPage(BaseModel):
    count: int
    next: str | None
    previous: str | None
    results: list[JobOut]


class EventOut(BaseModel):
    event_type: str
    origin: str
    context: str
    created: str
    data: dict[str, Any]


class ErrorEventIn(BaseModel):
    type: str = Field(max_length=32, json_schema_extra=EVENT_TYPE)
    code: int | str
    message: str = Field(max_length=20_000)
    exception: str = Field(max_length=20_000)
    args: Any = None


class StopRequest(BaseModel):
    service: str | None = Field(default=None, max_length=50_000)


class RuntimeJobIn(BaseModel):
    runtime_job: str = Field(min_length=1, max_length=255)
    runtime_session: str | None = Field(default=None, max_length=255)


def _iso_text(value: Any) -> Any:
    """pydantic would also read a number ("0.5", "-1") as a Unix time; the API takes ISO 8601 text only."""
    if not isinstance(value, str) or not re.match(r"[0-9]{4}-", value):
        raise ValueError("expected an ISO 8601 date-time")
    return value


@dataclass
class JobQuery:
    """Filters and paging of the job lists; links carry only limit and offset."""

    limit: Annotated[int, Query(ge=0, le=10_000, description="0 means no limit")] = 100
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0
    status: Annotated[str | None, Query(max_length=32, description="Gateway status, e.g. SUCCEEDED")] = None
    created_after: Annotated[
        datetime | None,
        BeforeValidator(_iso_text),
        Query(description="Inclusive (>=), ISO 8601; without an offset it is UTC, a date alone is its midnight"),
    ] = None
    function: Annotated[str | None, Query(max_length=255, description="A function title")] = None
    provider: Annotated[str | None, Query(max_length=255)] = None
    filter: Annotated[
        str | None,
        Query(max_length=32, description="'catalog' or 'serverless'", json_schema_extra={"enum": list(FILTERS)}),
    ] = None


@dataclass
class ProviderJobQuery(JobQuery):
    """The provider list needs its provider (the service answers its own 400 without one)."""

    provider: Annotated[str | None, Query(max_length=255, json_schema_extra={REQUIRED: True, "minLength": 1})] = None


class RunConfig(BaseModel):
    workers: int | None = Field(default=None, ge=0, le=5)
    min_workers: int | None = Field(default=None, ge=0, le=2)
    max_workers: int | None = Field(default=None, ge=0, le=10)
    auto_scaling: bool | None = False
    retries: int | None = Field(
        default=None, ge=0, le=MAX_RETRIES, description="Attempts after a failed one (default: the function's, else 0)."
    )
    retry_delay_seconds: int | None = Field(
        default=None, ge=0, le=MAX_RETRY_DELAY, description="Wait before each retry (default: the function's, else 0)."
    )
    resources: dict[str, Annotated[float, Field(ge=0.0001, le=1_000_000)]] | None = Field(
        default=None,
        max_length=16,
        description="Custom Ray resources the job's task needs (names from QS_JOB_RESOURCES): it runs on a node "
        "that offers them.",
    )


class RunRequest(BaseModel):
    title: str = Field(min_length=1, max_length=512)
    provider: str | None = Field(default=None, max_length=255)
    function_size: str | None = Field(default=None, max_length=64)
    arguments: str = Field(default="{}", json_schema_extra=ARGUMENTS)
    config: RunConfig | None = None


class JobCreated(BaseModel):
    id: str
    result: None = None
    status: str
    program: str
    created: str
    arguments: str
    compute_profile: None = None
