"""Request and response shapes of the programs API."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

from gateway import db
from gateway.programs.arguments import ARGUMENTS

ProgramId = Annotated[str, Path(json_schema_extra={"format": "uuid"})]


class FunctionOut(BaseModel):
    """A function as the client reads it; never carries env_vars or a working_dir."""

    id: str
    title: str
    provider: str | None
    entrypoint: str | None
    artifact: str | None
    image: str | None
    runner: str
    dependencies: str = Field(description="JSON text of a list of requirement strings.")
    description: str | None
    documentation_url: str | None = None
    type: str
    version: str | None
    arguments_schema: str = Field(description='JSON text; "{}" when the function has no schema.')
    sizes: dict[str, Any]
    default_size: str | None
    created: str

    @classmethod
    def of(cls, program: db.Program) -> FunctionOut:
        return cls(
            id=program.id,
            title=program.title,
            provider=program.provider,
            entrypoint=program.entrypoint,
            artifact=program.artifact,
            image=program.image,
            runner=program.runner,
            dependencies=program.dependencies,
            description=program.description,
            type=program.type,
            version=program.version,
            arguments_schema=program.arguments_schema or "{}",
            sizes=json.loads(program.sizes or "{}"),
            default_size=program.default_size,
            created=db.iso(program.created),
        )


class ValidateRequest(BaseModel):
    title: str = Field(min_length=1, max_length=512)
    provider: str | None = Field(default=None, max_length=255)
    arguments: str = Field(default="{}", json_schema_extra=ARGUMENTS)


class ScheduleIn(BaseModel):
    """A new schedule: either `cron` (five fields, in `timezone`) or `interval_seconds`."""

    model_config = ConfigDict(extra="forbid")

    cron: str | None = Field(default=None, max_length=256, examples=["*/5 * * * *"])
    interval_seconds: float | None = Field(default=None, le=366 * 24 * 3600, description="At least 10.")
    timezone: str = Field(default="UTC", max_length=64, examples=["Europe/Paris"])
    arguments: str = Field(default="{}", json_schema_extra=ARGUMENTS)
    active: bool = True


class SchedulePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    active: bool


class ScheduleOut(BaseModel):
    id: str
    cron: str | None = None
    interval_seconds: float | None = None
    timezone: str
    arguments: str = Field(description="JSON text: the arguments every run of this schedule gets.")
    active: bool
    next_runs: list[str] = Field(description="The next run times (ISO 8601, UTC); none while paused.")
