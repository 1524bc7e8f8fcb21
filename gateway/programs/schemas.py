"""Request and response shapes of the programs API."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from gateway import db
from gateway.programs.arguments import ARGUMENTS


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
