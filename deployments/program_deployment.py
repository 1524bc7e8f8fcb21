"""Turning a program into a Prefect deployment of the `run_program` flow, and a job into a flow run."""

from __future__ import annotations

import os
import re
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists

from gateway.settings import REPO_ROOT, Settings

FLOW_NAME = "run_program"
DEFAULT_WORK_POOL = Settings.model_fields["work_pool"].default
FLOW_ENTRYPOINT = "flows/run_program.py:run_program"
PREFECT_BANNED = re.compile(r"[/%&<>]")  # prefect.types.names.BANNED_CHARACTERS


# Never copied to Ray workers (visible in the Ray dashboard): workers read storage from the Prefect block.
SECRET_SETTINGS = frozenset({"QS_S3_KEY", "QS_S3_SECRET", "QS_DATABASE_URL"})


def platform_env(settings: Settings) -> dict[str, str]:
    """Environment every platform process and Ray worker needs to reach the same services."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key.startswith(("QS_", "PREFECT_")) and key not in SECRET_SETTINGS
    }
    env.update(
        {
            "PREFECT_API_URL": settings.prefect_url,
            "QS_DATA_DIR": str(settings.data_dir.resolve()),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.3",
        }
    )
    return env


def sync_client() -> SyncPrefectClient:
    return get_client(sync_client=True)


def ensure_work_pool(settings: Settings) -> None:
    with sync_client() as client:
        try:
            client.create_work_pool(
                WorkPoolCreate(
                    name=settings.work_pool,
                    type="process",
                    description="Qiskit Serverless programs, executed by the platform's executor on Ray.",
                )
            )
        except ObjectAlreadyExists:
            pass


def deployment_name(settings: Settings, owner: str, title: str, provider: str | None) -> str:
    """One deployment per program: `<title> (<owner>)` or `<title> (provider <provider>)`.

    Titles, user and provider names are checked patterns without spaces or parentheses,
    so no two programs share a name (a user may be called like a provider). Platform
    instances sharing one Prefect server are told apart by their work pool, which then
    prefixes the name.
    """
    name = f"{title} (provider {provider})" if provider else f"{title} ({owner})"
    if settings.work_pool != DEFAULT_WORK_POOL:
        name = f"{settings.work_pool}: {name}"
    return PREFECT_BANNED.sub("_", name)


def upsert_deployment(
    client: SyncPrefectClient,
    settings: Settings,
    *,
    name: str,
    owner: str,
    title: str,
    provider: str | None,
    description: str | None,
    version: str | None,
) -> UUID:
    """Create or update the program's deployment (Prefect upserts on flow + name)."""
    flow_id = client.create_flow_from_name(FLOW_NAME)
    # Not the user tag: Prefect adds deployment tags to every run, and a provider program's
    # runs belong to whoever runs them (the active-job limit counts runs by user tag).
    tags = [tag for tag in job_tags(owner, title, provider) if tag != user_tag(owner)]
    return client.create_deployment(
        flow_id=flow_id,
        name=name,
        version=version,
        description=description,
        work_pool_name=settings.work_pool,
        tags=tags,
        path=str(REPO_ROOT),
        entrypoint=FLOW_ENTRYPOINT,
        enforce_parameter_schema=False,
        parameter_openapi_schema={
            "type": "object",
            "title": "Parameters",
            "properties": {"job_id": {"type": "string", "title": "job_id", "position": 0}},
            "required": ["job_id"],
        },
    )


def user_tag(user: str) -> str:
    return f"user:{user}"


def job_tags(owner: str, title: str, provider: str | None) -> list[str]:
    tags = [user_tag(owner), f"program:{title}"]
    if provider:
        tags.append(f"provider:{provider}")
    return tags
