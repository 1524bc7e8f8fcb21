"""Request and response shapes of the jobs API, and of running a program (`POST /programs/run`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, Field


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
    type: str = Field(max_length=32)
    code: int | str
    message: str = Field(max_length=100_000)
    exception: str = Field(max_length=100_000)
    args: Any = None


class StopRequest(BaseModel):
    service: str | None = Field(default=None, max_length=1_000_000)


class RuntimeJobIn(BaseModel):
    runtime_job: str = Field(min_length=1, max_length=255)
    runtime_session: str | None = Field(default=None, max_length=255)


@dataclass
class JobQuery:
    """Filters and paging of the job lists; links carry only limit and offset."""

    limit: Annotated[int, Query(ge=0, le=10_000, description="0 means no limit")] = 100
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0
    status: Annotated[str | None, Query(max_length=32, description="Gateway status, e.g. SUCCEEDED")] = None
    created_after: Annotated[datetime | None, Query(description="Inclusive (>=), ISO 8601 with offset")] = None
    function: Annotated[str | None, Query(max_length=255, description="A function title")] = None
    provider: Annotated[str | None, Query(max_length=255)] = None
    filter: Annotated[str | None, Query(max_length=32, description="'catalog' or 'serverless'")] = None


class RunConfig(BaseModel):
    workers: int | None = Field(default=None, ge=0, le=5)
    min_workers: int | None = Field(default=None, ge=0, le=2)
    max_workers: int | None = Field(default=None, ge=0, le=10)
    auto_scaling: bool | None = False


class RunRequest(BaseModel):
    title: str = Field(min_length=1, max_length=512)
    provider: str | None = Field(default=None, max_length=255)
    function_size: str | None = Field(default=None, max_length=64)
    arguments: str = "{}"
    config: RunConfig | None = None


class JobCreated(BaseModel):
    id: str
    result: None = None
    status: str
    program: str
    created: str
    arguments: str
    compute_profile: None = None
