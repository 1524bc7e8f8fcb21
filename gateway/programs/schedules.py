"""A program's schedules: its deployment's own Prefect schedules, managed through /api/v1.

Each scheduled run is a flow run of the program's deployment, which the gateway adopts as a job of
the program's author when it comes due (gateway/jobs/adoption.py). Only the author, or a provider's
admin for a provider program, sees or changes a program's schedules.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

from gateway import db
from gateway.context import Services
from gateway.errors import bad_request, not_found
from gateway.orchestrator import Schedule
from gateway.programs.arguments import parse_arguments, validate_against_schema
from gateway.programs.schemas import ScheduleIn, ScheduleOut

NEXT_RUNS = 5
MIN_INTERVAL_SECONDS = 10


def list_schedules(services: Services, program: db.Program) -> list[ScheduleOut]:
    return [_out(schedule) for schedule in services.orchestrator.schedules(_deployment(program))]


def add_schedule(services: Services, program: db.Program, body: ScheduleIn) -> ScheduleOut:
    deployment_id = _deployment(program)
    timezone = _timezone(body.timezone)
    if (body.cron is None) == (body.interval_seconds is None):
        raise bad_request("Give either 'cron' or 'interval_seconds'.")
    if body.cron is not None:
        _check_cron(body.cron, timezone)
    elif body.interval_seconds is not None and body.interval_seconds < MIN_INTERVAL_SECONDS:
        raise bad_request(f"'interval_seconds' must be at least {MIN_INTERVAL_SECONDS}.")
    arguments = parse_arguments(body.arguments, services.settings.max_arguments_bytes)
    validate_against_schema(program, arguments)
    made = services.orchestrator.add_schedule(
        deployment_id,
        cron=body.cron,
        interval_seconds=body.interval_seconds,
        timezone=timezone.key,
        arguments=arguments,
        active=body.active,
    )
    return _out(made)


def set_active(services: Services, program: db.Program, schedule_id: str, active: bool) -> ScheduleOut:
    deployment_id = _deployment(program)
    found = _find(services, deployment_id, schedule_id)
    services.orchestrator.set_schedule_active(deployment_id, found.id, active)
    return _out(replace(found, active=active))


def remove(services: Services, program: db.Program, schedule_id: str) -> None:
    deployment_id = _deployment(program)
    _find(services, deployment_id, schedule_id)
    services.orchestrator.remove_schedule(deployment_id, schedule_id)


def next_runs(schedule: Schedule, count: int = NEXT_RUNS, after: datetime | None = None) -> list[datetime]:
    """The schedule's next run times (none while it is paused, or for a rule made in the Prefect UI)."""
    if not schedule.active:
        return []
    zone = ZoneInfo(schedule.timezone)
    start = (after or datetime.now(UTC)).astimezone(zone)
    if schedule.cron is not None:
        times = CronSim(schedule.cron, start.replace(microsecond=0))
        return [next(times).astimezone(UTC) for _ in range(count)]
    if schedule.interval_seconds is not None:
        step = timedelta(seconds=schedule.interval_seconds)
        anchor = schedule.anchor or start
        first = anchor + step * max(0, math.ceil((start - anchor).total_seconds() / schedule.interval_seconds))
        return [(first + step * index).astimezone(UTC) for index in range(count)]
    return []


def _out(schedule: Schedule) -> ScheduleOut:
    return ScheduleOut(
        id=schedule.id,
        cron=schedule.cron,
        interval_seconds=schedule.interval_seconds,
        timezone=schedule.timezone,
        arguments=json.dumps(schedule.arguments if isinstance(schedule.arguments, dict) else {}),
        active=schedule.active,
        next_runs=[moment.isoformat().replace("+00:00", "Z") for moment in next_runs(schedule)],
    )


def _deployment(program: db.Program) -> str:
    if program.deployment_id is None or program.artifact is None:
        raise bad_request("This function is an image function; image functions cannot run on the Ray runner.")
    return program.deployment_id


def _find(services: Services, deployment_id: str, schedule_id: str) -> Schedule:
    try:
        wanted = str(UUID(schedule_id))
    except ValueError:
        wanted = ""
    found = next((each for each in services.orchestrator.schedules(deployment_id) if each.id == wanted), None)
    if found is None:
        raise not_found(f"Schedule {schedule_id} doesn't exist.")
    return found


def _timezone(name: str) -> ZoneInfo:
    try:
        zone = ZoneInfo(name)
        IntervalSchedule(interval=timedelta(seconds=MIN_INTERVAL_SECONDS), timezone=zone.key)  # Prefect reads it too
    except (ZoneInfoNotFoundError, ValueError):
        raise bad_request(f"Unknown timezone: {name}.") from None
    return zone


def _check_cron(expression: str, timezone: ZoneInfo) -> None:
    """Both what computes next_runs here and Prefect, which makes the runs, must read it."""
    try:
        next(CronSim(expression, datetime.now(timezone)))
        CronSchedule(cron=expression, timezone=timezone.key)
    except (CronSimError, StopIteration, ValueError):
        raise bad_request(f"Invalid cron expression: {expression}.") from None
