"""`/api/v1/prefect`: the Prefect API as a running program sees it, confined to its own job.

A program's environment points its Prefect client here (`PREFECT_API_URL`, and its job's token as
`PREFECT_API_AUTH_STRING`), so a program that calls a Prefect flow records its flow and task runs,
their states and logs in Prefect, nested in its job's flow run, and reaches nothing else (policy.py).
Task runs report their states as events over a WebSocket, as with any Prefect server.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from fastapi import APIRouter, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from prefect.server.events.schemas.events import Event as ServerEvent
from prefect.server.services.task_run_recorder import db_recordable_task_run_from_event

from gateway import db
from gateway.access.subject import Principal
from gateway.auth import CurrentUser, authenticated
from gateway.context import Services, ServicesDep
from gateway.errors import ApiError
from gateway.prefect_api import policy
from gateway.prefect_api.relay import EVENT_BATCH, PrefectRelay, refused

router = APIRouter(prefix="/prefect", include_in_schema=False)
REAUTHENTICATE_SECONDS = 2.0
EVENTS_HELD = 10_000  # while Prefect cannot be reached, the oldest events beyond these are dropped
EVENT_WAIT_SECONDS = 0.05  # events that arrive together go to Prefect in one call


def _relay(services: Services) -> PrefectRelay:
    if services.prefect_relay is None:
        raise ApiError(503, "This gateway serves no Prefect API to programs.")
    return services.prefect_relay


def _job_run(services: Services, job_id: str) -> str | None:
    with services.database.session() as session:
        job = session.get(db.Job, job_id)
        return job.run_id if job is not None else None


async def _job(services: Services, principal: Principal) -> tuple[str, str]:
    """The caller's job and its flow run: only a running job's token may use this API."""
    run_id = await run_in_threadpool(_job_run, services, principal.job_id) if principal.job_id else None
    if principal.job_id is None or run_id is None:
        raise ApiError(403, "Only a running job's token may use the Prefect API of programs.")
    return principal.job_id, run_id


async def _json(request: Request) -> Any:
    raw = await request.body()
    if b"\\u0000" in raw:  # PostgreSQL refuses it in text: a 500 from Prefect otherwise
        raise ApiError(400, "The body may not hold NUL characters.")
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        raise ApiError(400, "The body must be JSON.") from None


@router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
async def prefect_call(path: str, request: Request, principal: CurrentUser, services: ServicesDep) -> Response:
    relay = _relay(services)
    job_id, job_run = await _job(services, principal)
    call = policy.route(request.method, "/" + path.rstrip("/"))
    if call is None:
        raise refused()
    return await relay.handle(call, job_id, job_run, await _json(request))


@router.websocket("/events/in")
async def events_in(websocket: WebSocket) -> None:
    """Prefect's event stream in: the program's task runs' states. The token is checked on the
    upgrade (before anything is read) and again every few seconds (it ends with its job); each event
    is checked and sent on to Prefect in batches."""
    services: Services = websocket.app.state.services
    authorization = websocket.headers.get("authorization")
    try:
        relay = _relay(services)
        job_id, _ = await _job(services, await authenticated(services, authorization))
    except ApiError:
        await websocket.close(code=1008)
        return
    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol="prefect" if "prefect" in offered else None)
    pending: list[dict[str, Any]] = []
    arrived = asyncio.Event()
    sender = asyncio.create_task(_send_events(relay, pending, arrived))
    checked = time.monotonic()
    try:
        while True:
            received = await websocket.receive()
            if received["type"] == "websocket.disconnect":
                break
            if time.monotonic() - checked > REAUTHENTICATE_SECONDS:
                await authenticated(services, authorization)
                checked = time.monotonic()
            message = _decoded(received)
            if isinstance(message, dict) and message.get("type") == "auth":  # Prefect's handshake
                await websocket.send_json({"type": "auth_success"})
                continue
            allowed = await _allowed_event(relay, job_id, message)
            if allowed is not None:
                pending.append(allowed)
                del pending[:-EVENTS_HELD]
                arrived.set()
    except ApiError:
        await websocket.close(code=1008)  # the job ended: its token with it
    except WebSocketDisconnect:
        pass
    finally:
        sender.cancel()
        with suppress(asyncio.CancelledError):
            await sender
        with suppress(ApiError):
            await relay.send_events(pending)


def _decoded(received: Mapping[str, Any]) -> Any:
    text = received.get("text")
    if text is None and received.get("bytes") is not None:
        text = received["bytes"].decode("utf-8", errors="replace")
    try:
        return json.loads(text) if text is not None else None
    except ValueError:
        return None


async def _allowed_event(relay: PrefectRelay, job_id: str, message: Any) -> dict[str, Any] | None:
    """The event as Prefect takes it, if it is a task-run event of the job's own runs; else None
    (dropped, as a refused call would be; while Prefect is unreachable the checks fail and events are
    lost, as Prefect's own client loses those its server never takes)."""
    allowed = policy.event(message)
    if allowed is None:
        return None
    try:
        await relay.check_flow_runs(job_id, {allowed.flow_run_id})
        await relay.check_task_runs(job_id, {allowed.task_run_id})
        return recordable(allowed.event)
    except (ApiError, ValueError):  # pydantic's ValidationError is a ValueError
        return None


def recordable(event: dict[str, Any]) -> dict[str, Any]:
    """The event as Prefect's task-run recorder will read it, or ValueError: one the recorder cannot
    record would fail the batch it shares with every other job's events."""
    checked = ServerEvent.model_validate(event)
    try:
        db_recordable_task_run_from_event(checked.receive())
    except Exception as error:
        raise ValueError(f"not a recordable task-run event: {error}") from None
    return checked.model_dump(mode="json")


async def _send_events(relay: PrefectRelay, pending: list[dict[str, Any]], arrived: asyncio.Event) -> None:
    while True:
        await arrived.wait()
        await asyncio.sleep(EVENT_WAIT_SECONDS)
        arrived.clear()
        batch = pending[:EVENT_BATCH]
        del pending[: len(batch)]
        if pending:
            arrived.set()
        try:
            await relay.send_events(batch)
        except asyncio.CancelledError:
            pending[:0] = batch  # the connection closed meanwhile: sent by the closing
            raise
        except ApiError:
            pending[:0] = batch  # Prefect unreachable for a moment: sent with the next batch
            arrived.set()
            await asyncio.sleep(1.0)
