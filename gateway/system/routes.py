"""Probes and version (no auth) and the dependency allow-list (auth), served under /api/v1 and at the root."""

from __future__ import annotations

import importlib.metadata
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from core.allow_list import read_allow_list
from gateway.auth import CurrentUser
from gateway.context import ServicesDep

router = APIRouter(tags=["system"])


class Readiness(BaseModel):
    status: str
    checks: dict[str, bool]


READINESS: dict[int | str, dict[str, Any]] = {
    503: {"model": Readiness, "description": "Not ready: a check failed (the same body, status 'not ready')"}
}


def _version() -> str:
    try:
        return importlib.metadata.version("qiskit-serverless-prefect")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


@router.get("/liveness", summary="The gateway process is up")
def liveness() -> dict[str, str]:
    return {"status": "alive"}


@router.get(
    "/readiness",
    response_model=Readiness,
    responses=READINESS,
    summary="Ready when Prefect, Ray, storage and an executor all answer",
)
def readiness(services: ServicesDep) -> JSONResponse:
    checks = {
        "prefect": _check(services.orchestrator.healthy),
        "storage": _check(services.storage.ping),
        "ray": _check(services.ray_alive),
        "executor": _check(services.orchestrator.executor_ready),
    }
    ready = all(checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )


@router.get("/version", summary="Gateway version")
def version() -> dict[str, str]:
    return {"version": _version()}


@router.get(
    "/dependencies-versions",
    summary="Extra packages a program may list in `dependencies` (the allow-list, one requirement each)",
)
def dependencies_versions(_: CurrentUser, services: ServicesDep) -> list[str]:
    return read_allow_list(services.settings.allowed_dependencies_file)


def _check(probe) -> bool:  # type: ignore[no-untyped-def]
    try:
        result = probe()
    except Exception:
        return False
    return result is not False
