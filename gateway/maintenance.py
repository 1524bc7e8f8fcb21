"""The platform's maintenance flow, and the process that serves it.

`python -m gateway.maintenance` serves the flow with Prefect's runner as the deployment
`maintenance/<work pool>-maintenance`, on the schedule `QS_MAINTENANCE_CRON`. Each run removes the
data of the jobs that ended more than `QS_RETENTION_DAYS` ago, the scratch folders jobs left on Ray
nodes, and the dependency sets no job used for `QS_ENV_RETENTION_DAYS`; its logs and its
`maintenance-report` artifact in the Prefect UI say what it removed.

The runner starts each run in a fresh process: a run a day has no start time to save. One such
process per platform instance is enough (several share the runs). It is gateway-side: it reads the
gateway's store."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import ray
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from blocks.storage import location_from_settings
from core.settings import RAY_NAMESPACE, Settings, platform_env
from flows.node_scratch import STALE_SCRATCH, clear_node
from gateway.db import Database
from gateway.jobs import idempotency, retention


def deployment_name(settings: Settings) -> str:
    """One maintenance deployment per platform instance (instances sharing Prefect differ by pool)."""
    return f"{settings.work_pool}-maintenance"


@contextmanager
def gateway_store(settings: Settings) -> Iterator[Database]:
    """The gateway's database for one task of the run (its own engine, closed after)."""
    database = Database(settings.db_url)
    try:
        yield database
    finally:
        database.dispose()


@task(name="remove-expired-job-data", cache_policy=NO_CACHE, persist_result=False)
def remove_expired_job_data(finished_before: datetime) -> retention.Removed:
    settings = Settings()
    with gateway_store(settings) as database:
        return retention.remove_expired(database, location_from_settings(settings).storage(), finished_before)


@task(name="forget-expired-idempotency-keys", cache_policy=NO_CACHE, persist_result=False)
def forget_expired_idempotency_keys() -> int:
    with gateway_store(Settings()) as database, database.session() as session:
        forgotten = idempotency.forget_expired(session)
        session.commit()
        return forgotten


@task(name="clear-ray-nodes", cache_policy=NO_CACHE, persist_result=False)
def clear_ray_nodes() -> list[dict[str, Any]]:
    """`clear_node` on every alive Ray node, each pinned to its node."""
    settings = Settings()
    now = time.time()
    envs_unused_since = now - settings.env_retention_days * 86_400 if settings.env_retention_days else None
    ray.init(address=settings.ray_cluster, namespace=RAY_NAMESPACE, log_to_driver=False, logging_level=logging.WARNING)
    try:
        clear = ray.remote(num_cpus=0)(clear_node)
        pending = {
            node["NodeID"]: clear.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
            ).remote(settings.scratch, now - STALE_SCRATCH.total_seconds(), envs_unused_since)
            for node in ray.nodes()
            if node["Alive"]
        }
        reports: list[dict[str, Any]] = ray.get(list(pending.values()))
        return [{"node": node, **report} for node, report in zip(pending, reports, strict=True)]
    finally:
        ray.shutdown()


@flow(name="maintenance", persist_result=False)
def maintenance(retention_days: float | None = None, finished_before: datetime | None = None) -> dict[str, Any]:
    """Remove what outlived its retention period.

    `finished_before` (a time) or `retention_days` override `QS_RETENTION_DAYS` for this run.
    """
    logger = get_run_logger()
    settings = Settings()
    days = settings.retention_days if retention_days is None else retention_days
    cutoff = finished_before or (datetime.now(UTC) - timedelta(days=days) if days else None)
    removed = retention.Removed()
    if cutoff is not None:
        removed = remove_expired_job_data(cutoff)
        logger.info("Removed the data of %d jobs that ended before %s: %d bytes.", removed.jobs, cutoff, removed.bytes)
    else:
        logger.info("QS_RETENTION_DAYS is 0: job data is kept.")
    logger.info("Forgot %d Idempotency-Keys past their 24 h.", forget_expired_idempotency_keys())
    nodes = clear_ray_nodes()
    for node in nodes:
        logger.info(
            "Node %s: %d scratch folders (%d bytes) and %d dependency sets (%d bytes) removed.",
            node["node"][:12],
            node["scratch_folders"],
            node["scratch_bytes"],
            node["dependency_sets"],
            node["dependency_bytes"],
        )
    report = {
        "finished_before": cutoff.isoformat() if cutoff else None,
        "jobs": removed.jobs,
        "job_bytes": removed.bytes,
        "nodes": nodes,
    }
    rows = "\n".join(
        f"| {node['node'][:12]} | {node['scratch_folders']} | {node['scratch_bytes']} | "
        f"{node['dependency_sets']} | {node['dependency_bytes']} |"
        for node in nodes
    )
    create_markdown_artifact(
        key="maintenance-report",
        description="What the platform's maintenance removed",
        markdown=(
            f"# Maintenance\n\nJobs that ended before **{report['finished_before'] or 'never (kept)'}**: "
            f"data of **{removed.jobs}** jobs removed, {removed.bytes} bytes.\n\n"
            "| Ray node | scratch folders | bytes | dependency sets | bytes |\n|---|---|---|---|---|\n" + rows + "\n"
        ),
    )
    return report


def main() -> None:
    settings = Settings()
    os.environ.update(platform_env(settings))
    maintenance.serve(
        name=deployment_name(settings),
        cron=settings.maintenance_cron or None,
        tags=["qiskit-serverless"],
        description="Removes the data of jobs past QS_RETENTION_DAYS, scratch left on Ray nodes, and unused "
        "dependency sets. Its maintenance-report artifact says what it removed.",
        print_starting_message=False,
        pause_on_shutdown=False,  # a restart keeps the schedule
        limit=1,
    )


if __name__ == "__main__":
    main()
