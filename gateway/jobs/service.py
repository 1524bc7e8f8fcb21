"""Jobs: status from the store's read model of the flow run, results and logs from storage, events,
sub-status and stop."""

from __future__ import annotations

import codecs
import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from prefect.client.schemas.objects import StateType
from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import layout, status
from core.job_log import DATA_REMOVED, JOB_FAILED, STOPPED_MESSAGE
from core.log_reader import read_log
from core.retries import RETRY_STATE, retrying
from gateway import db
from gateway.access import jobs as policy
from gateway.access.facts import admin_groups, job_facts
from gateway.access.jobs import JobFacts
from gateway.access.subject import Principal
from gateway.context import Services
from gateway.errors import ApiError, bad_request, not_found
from gateway.jobs import logs as log_rules
from gateway.jobs.schemas import (
    ERROR,
    EVENT_TYPES,
    ErrorEventIn,
    EventOut,
    JobOut,
    JobPage,
    JobQuery,
    ProgramRef,
    SubStatus,
)
from gateway.jobs.status_feed import record_state
from gateway.programs.lookup import check_filter, function_missing, require_provider


def job_missing(job_id: str) -> ApiError:
    return not_found(f"Job [{job_id}] not found")


def _load(session: Session, job_id: str) -> tuple[db.Job, db.Program, JobFacts] | None:
    try:
        uuid.UUID(job_id)
    except ValueError:
        return None
    job = session.get(db.Job, job_id)
    if job is None:
        return None
    program = program_of(session, job)
    return job, program, job_facts(session, job, program)


def _allowed(session: Session, job_id: str, rule: Callable[[JobFacts], bool], denied: ApiError) -> db.Job:
    """The job when the policy rule allows it, else `denied` (the same whether missing or hidden)."""
    return _allowed_with_facts(session, job_id, rule, denied)[0]


def _allowed_with_facts(
    session: Session, job_id: str, rule: Callable[[JobFacts], bool], denied: ApiError
) -> tuple[db.Job, JobFacts]:
    found = _load(session, job_id)
    if found is None or not rule(found[2]):
        raise denied
    return found[0], found[2]


def get_job(session: Session, user: Principal, job_id: str) -> db.Job:
    """A job the caller may read: the author's, or a provider job for the provider's admins."""
    return _allowed(session, job_id, lambda facts: policy.can_read(user, facts), job_missing(job_id))


def own_job(session: Session, user: Principal, job_id: str) -> db.Job:
    """A job only its author may use (result, logs, events, sub-status, runtime jobs, stop)."""
    return _allowed(session, job_id, lambda facts: policy.is_author(user, facts), job_missing(job_id))


def program_of(session: Session, job: db.Job) -> db.Program:
    program = session.get(db.Program, job.program_id)
    assert program is not None  # a foreign key: a job always has its program
    return program


def current_status(services: Services, session: Session, job: db.Job) -> str:
    """The status from the run's state read now (for decisions on the job), taken into the store."""
    if job.run_id is None:
        return job.status
    return record_state(services, session, job, services.orchestrator.state(job.run_id))


def job_out(job: db.Job, program: db.Program) -> JobOut:
    job_status = job.status
    return JobOut(
        id=job.id,
        status=job_status,
        program=ProgramRef(id=program.id, title=program.title, provider=program.provider),
        created=db.iso(job.created),
        sub_status=job.sub_status if job_status == status.RUNNING else None,
        business_model="TRIAL" if job.trial else "SUBSIDIZED",
    )


def describe(session: Session, job: db.Job) -> JobOut:
    return job_out(job, program_of(session, job))


def job_detail(
    services: Services, session: Session, user: Principal, job_id: str, with_result: bool
) -> tuple[JobOut, Iterator[bytes] | None]:
    """The job for whoever may read it, and (asked, for its author) its result as JSON text in
    pieces (`result_chunks`)."""
    job, facts = _allowed_with_facts(session, job_id, lambda facts: policy.can_read(user, facts), job_missing(job_id))
    out = describe(session, job)
    services.reads.jobs.put(job.id, (facts, out))
    result = (
        result_chunks(services, job, program_of(session, job))
        if with_result and policy.is_author(user, facts)
        else None
    )
    return out, result


def cached_job(services: Services, user: Principal, job_id: str) -> JobOut | None:
    """The job as read a moment ago, if this process has it (gateway/read_cache.py); same rules."""
    found = services.reads.jobs.get(job_id)
    if found is None:
        return None
    facts, out = found
    if not policy.can_read(user, facts):
        raise job_missing(job_id)
    return out


def data_area(job: db.Job, program: db.Program) -> str:
    return layout.job_area(job.author, program.provider, program.title)


def result_chunks(services: Services, job: db.Job, program: db.Program) -> Iterator[bytes] | None:
    """The saved result as one JSON string, in pieces read as they are sent: a result of any size
    costs the gateway a piece of memory, never the whole (None: nothing saved)."""
    key = layout.results_file(data_area(job, program), job.id)
    if not services.storage.exists(key):
        return None
    return _json_string(services.storage.stream(key))


def _json_string(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """What json.dumps of the whole decoded text gives, piece by piece (escaping is per character;
    a UTF-8 sequence split between pieces is decoded once whole)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    yield b'"'
    for chunk in chunks:
        if text := decoder.decode(chunk):
            yield json.dumps(text, ensure_ascii=False)[1:-1].encode()
    if text := decoder.decode(b"", final=True):
        yield json.dumps(text, ensure_ascii=False)[1:-1].encode()
    yield b'"'


def result(services: Services, session: Session, user: Principal, job_id: str) -> Iterator[bytes] | None:
    job = own_job(session, user, job_id)
    return result_chunks(services, job, program_of(session, job))


def save_result(services: Services, session: Session, user: Principal, job_id: str, text: str) -> None:
    """Legacy `POST /jobs/{id}/result/` of clients up to 0.32."""
    job = own_job(session, user, job_id)
    program = program_of(session, job)
    services.storage.put_bytes(layout.results_file(data_area(job, program), job.id), text.encode())


def _log_text(services: Services, job: db.Job) -> str | None:
    if job.data_removed_at is not None:
        return DATA_REMOVED
    return read_log(services.storage, job.id, services.settings.logs_size_limit)


def logs(services: Services, session: Session, user: Principal, job_id: str) -> str | None:
    denied = ApiError(403, f"You don't have access to read user logs of the job [{job_id}]")
    job = _allowed(session, job_id, lambda facts: policy.is_author(user, facts), denied)
    program = program_of(session, job)
    text = _log_text(services, job)
    if text is None or job.data_removed_at is not None:
        return text  # the removal notice is everyone's
    return log_rules.user_logs(text, provider_job=program.provider is not None)


def provider_logs(services: Services, session: Session, user: Principal, job_id: str) -> str | None:
    denied = ApiError(403, f"You don't have access to job [{job_id}]")
    job = _allowed(session, job_id, lambda facts: policy.can_read_provider_logs(user, facts), denied)
    text = _log_text(services, job)
    if text is None or job.data_removed_at is not None:
        return text
    return log_rules.provider_logs(text)


def list_jobs(services: Services, session: Session, user: Principal, query: JobQuery) -> tuple[int, list[JobOut]]:
    """The caller's own jobs, newest first."""
    rows = job_rows(session, query).where(db.Job.author == user.name)
    if user.confined:  # a provider program's token knows only its own job (access/jobs.is_author)
        rows = rows.where(db.Job.id == user.job_id)
    if query.function:
        _require_function(session, query.function, query.provider)
    return _page(services, session, rows, query)


def list_provider_jobs(
    services: Services, session: Session, user: Principal, query: JobQuery
) -> tuple[int, list[JobOut]]:
    """Every user's jobs of a provider's programs, for the provider's admins."""
    if not query.provider:
        raise bad_request("'provider' not provided or is not valid")
    require_provider(session, user, query.provider, policy.can_list_provider_jobs)
    if query.function:
        _require_function(session, query.function, query.provider)
    return _page(services, session, job_rows(session, query), query)


def _require_function(session: Session, title: str, provider: str | None) -> None:
    """Like the reference gateway, the name check accepts a function of any user."""
    known = select(func.count()).select_from(db.Program).where(db.Program.title == title)
    if provider:
        known = known.where(db.Program.provider == provider)
    if not session.scalar(known):
        raise function_missing(title)


def job_rows(session: Session, query: JobQuery) -> Select[db.Job, db.Program]:
    rows = select(db.Job, db.Program).join(db.Program, db.Job.program_id == db.Program.id)
    check_filter(query.filter)
    if query.filter == "catalog":
        rows = rows.where(db.Program.provider.is_not(None))
    elif query.filter == "serverless":
        rows = rows.where(db.Program.provider.is_(None))
    if query.created_after is not None:
        # In UTC: SQLite keeps timestamps as UTC text and would ignore the offset; no offset means UTC.
        rows = rows.where(db.Job.created >= _aware(query.created_after).astimezone(UTC))
    if query.provider:
        rows = rows.where(db.Program.provider == query.provider)
    if query.function:
        rows = rows.where(db.Program.title == query.function)
    return rows.order_by(db.Job.created.desc(), db.Job.id.desc())


def _page(
    services: Services, session: Session, rows: Select[db.Job, db.Program], query: JobQuery
) -> tuple[int, list[JobOut]]:
    limit, offset = query.limit, query.offset
    if query.status:
        rows = rows.where(db.Job.status == query.status)
    count = session.scalar(select(func.count()).select_from(rows.order_by(None).subquery())) or 0
    paged = rows.offset(offset).limit(limit) if limit else rows.offset(offset)
    return count, [job_out(job, program) for job, program in session.execute(paged)]


def program_jobs(services: Services, session: Session, user: Principal, program: db.Program) -> list[JobOut]:
    """`GET /programs/{id}/get_jobs/`: the caller's jobs of the program; every user's for its
    provider's admins."""
    rows = job_rows(session, JobQuery(limit=0)).where(db.Job.program_id == program.id)
    if not policy.can_list_provider_jobs(user, admin_groups(session, program.provider)):
        rows = rows.where(db.Job.author == user.name)
    return _page(services, session, rows, JobQuery(limit=0))[1]


def page_links(base_url: str, count: int, limit: int, offset: int) -> tuple[str | None, str | None]:
    """Links carry only limit and offset, like the reference gateway's."""
    following = f"{base_url}?limit={limit}&offset={offset + limit}" if limit and offset + limit < count else None
    previous = f"{base_url}?limit={limit}&offset={max(0, offset - limit)}" if offset > 0 else None
    return following, previous


def page(base_url: str, count: int, items: list[JobOut], limit: int, offset: int) -> JobPage:
    following, previous = page_links(base_url, count, limit, offset)
    return JobPage(count=count, next=following, previous=previous, results=items)


def _require_active(services: Services, session: Session, job: db.Job, message: str) -> str:
    current = current_status(services, session, job)
    if current not in status.ACTIVE:
        raise ApiError(403, message)
    return current


def add_error_event(services: Services, session: Session, user: Principal, job_id: str, body: ErrorEventIn) -> None:
    job = own_job(session, user, job_id)
    if body.type.upper() != ERROR:
        raise bad_request(f"Type is not valid. Valid types: {EVENT_TYPES}")
    _require_active(services, session, job, "You can create events on active jobs only")
    data = {
        "code": str(body.code),
        "message": body.message.strip(),
        "exception": body.exception.strip(),
        "args": body.args,
    }
    session.add(db.JobEvent(job_id=job.id, event_type=ERROR, origin="API", context="SEND_ERROR", data=json.dumps(data)))
    session.commit()


def set_sub_status(services: Services, session: Session, user: Principal, job_id: str, value: str | None) -> JobOut:
    job = own_job(session, user, job_id)
    try:
        sub_status = SubStatus(value).value if value is not None else None
    except ValueError:
        sub_status = None
    if sub_status is None:
        raise bad_request("'sub_status' not provided or is not valid")
    _require_active(services, session, job, "You can update the sub status of active jobs only")
    if job.sub_status != sub_status:
        job.sub_status = sub_status
        session.add(
            db.JobEvent(
                job_id=job.id,
                event_type="SUB_STATUS_CHANGE",
                origin="API",
                context="SET_SUB_STATUS",
                data=json.dumps({"sub_status": sub_status}),
            )
        )
        session.commit()
        services.reads.forget_job(job.id)
    return describe(session, job)


def events(
    services: Services, session: Session, user: Principal, job_id: str, event_type: str | None
) -> list[EventOut]:
    job = own_job(session, user, job_id)
    if event_type is not None and event_type.upper() not in EVENT_TYPES:
        raise bad_request(f"Type is not valid. Valid types: {EVENT_TYPES}")
    wanted = event_type.upper() if event_type is not None else None
    found = [pair for pair in _status_events(services, job) if wanted in (None, pair[1].event_type)]
    query = select(db.JobEvent).where(db.JobEvent.job_id == job.id)
    if event_type is not None:
        query = query.where(db.JobEvent.event_type == event_type.upper())
    for row in session.scalars(query):
        found.append(
            (
                row.created,
                EventOut(
                    event_type=row.event_type,
                    origin=row.origin,
                    context=row.context,
                    created=db.iso(row.created),
                    data=json.loads(row.data),
                ),
            )
        )
    found.sort(key=lambda pair: _aware(pair[0]), reverse=True)
    return [event for _, event in found]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _status_events(services: Services, job: db.Job) -> list[tuple[datetime, EventOut]]:
    """STATUS_CHANGE events derived from the flow run's state history (no second copy)."""
    derived: list[tuple[datetime, EventOut]] = [
        (
            job.created,
            EventOut(
                event_type="STATUS_CHANGE",
                origin="API",
                context="RUN_PROGRAM",
                created=db.iso(job.created),
                data={"status": status.QUEUED},
            ),
        )
    ]
    if job.run_id is None:  # stopped or refused before its run was made
        if job.status != status.QUEUED and job.status_at is not None:
            context = "STOP_JOB" if job.status == status.STOPPED else "UPDATE_JOB_STATUS"
            derived.append((job.status_at, _status_event(job.status_at, context, {"status": job.status})))
        return derived
    last = status.QUEUED
    history = sorted(services.orchestrator.history(job.run_id), key=lambda item: item.timestamp)
    retried = any(state.name == RETRY_STATE for state in history)
    attempts = services.orchestrator.attempts(job.run_id) if retried else 1
    attempt = 0
    for state in history:
        attempt += state.type == StateType.RUNNING and state.name != RETRY_STATE
        mapped = status.job_status(state.type)
        if mapped == last:
            continue
        last = mapped
        context = "STOP_JOB" if mapped in (status.STOPPING, status.STOPPED) else "UPDATE_JOB_STATUS"
        data = {"status": mapped}
        if mapped == status.STOPPED and state.message and state.message != STOPPED_MESSAGE:
            data["message"] = state.message  # why the platform stopped it (its maximum run time)
        if state.name == RETRY_STATE:
            data["message"] = retrying(attempt + 1, attempts)
        derived.append((state.timestamp, _status_event(state.timestamp, context, data)))
        if mapped == status.FAILED and state.message and JOB_FAILED in state.message:
            why = state.message[state.message.index(JOB_FAILED) :]  # not the program's doing: the platform says why
            error = {"code": "PLATFORM", "message": why, "exception": "", "args": ""}
            created = db.iso(state.timestamp)
            derived.append(
                (
                    state.timestamp,
                    EventOut(event_type=ERROR, origin="SCHEDULER", context="JOB_FAILED", created=created, data=error),
                )
            )
    return derived


def _status_event(moment: datetime, context: str, data: dict[str, Any]) -> EventOut:
    return EventOut(event_type="STATUS_CHANGE", origin="SCHEDULER", context=context, created=db.iso(moment), data=data)


def runtime_jobs(session: Session, user: Principal, job_id: str) -> list[dict[str, Any]]:
    job = own_job(session, user, job_id)
    rows = session.scalars(select(db.RuntimeJob).where(db.RuntimeJob.job_id == job.id))
    return [{"runtime_job": row.runtime_job, "runtime_session": row.runtime_session} for row in rows]


def add_runtime_job(
    session: Session, user: Principal, job_id: str, runtime_job: str, runtime_session: str | None
) -> str:
    job = own_job(session, user, job_id)
    if session.get(db.RuntimeJob, runtime_job) is not None:
        return f"Runtime job [{runtime_job}] is already associated with a serverless job."
    session.add(db.RuntimeJob(runtime_job=runtime_job, job_id=job.id, runtime_session=runtime_session))
    try:
        session.commit()
    except IntegrityError:  # the same id posted twice at once
        session.rollback()
        return f"Runtime job [{runtime_job}] is already associated with a serverless job."
    return f"RuntimeJob object [{runtime_job}] created for serverless job id [{job.id}]."


def stop(services: Services, session: Session, user: Principal, job_id: str, service_text: str | None) -> str:
    """Stop sentences as the reference gateway joins them (docs/architecture.md, Stop)."""
    job = own_job(session, user, job_id)
    sentences: list[str] = []
    was_running = _stop_before_dispatch(session, job)
    if not was_running:
        before = current_status(services, session, job)
        was_running = before in status.ACTIVE or before == status.STOPPING
        if was_running:
            assert job.run_id is not None  # a job without its run is QUEUED, and stopped above
            services.orchestrator.stop(job.run_id)
            _wait_stopped(services, session, job)
    if was_running:
        sentences.append("Job has been stopped.")
    else:
        sentences.append("Job already in terminal state.")
    has_runtime_jobs = session.scalar(
        select(func.count()).select_from(db.RuntimeJob).where(db.RuntimeJob.job_id == job.id)
    )
    if not service_text or service_text == "null":
        sentences.append("QiskitRuntimeService not found, cannot stop runtime jobs.")
    elif not has_runtime_jobs:
        sentences.append("No active runtime job ID associated with this serverless job ID.")
    else:
        sentences.append("Runtime jobs cannot be reached from this gateway; they were left running.")
    sentences.append(
        "Serverless job was running and has been stopped." if was_running else "Serverless job was already not running."
    )
    if job.sub_status is not None:
        job.sub_status = None
        session.commit()
    services.reads.forget_job(job.id)
    return " ".join(sentences)


def _stop_before_dispatch(session: Session, job: db.Job) -> bool:
    """A job still waiting for its run is stopped in the store: the dispatcher never makes its run
    (or, making it this moment, stops it; gateway/jobs/dispatch.py)."""
    stopped = session.execute(
        update(db.Job)
        .where(db.Job.id == job.id, db.Job.dispatched.is_(False), db.Job.status == status.QUEUED)
        .values(status=status.STOPPED, status_at=db.utcnow())
    )
    session.commit()
    session.refresh(job)
    return bool(stopped.rowcount)  # type: ignore[attr-defined]


def _wait_stopped(services: Services, session: Session, job: db.Job) -> None:
    deadline = time.monotonic() + services.settings.stop_wait_seconds
    while time.monotonic() < deadline:
        if current_status(services, session, job) in status.TERMINAL:
            return
        time.sleep(0.1)
