"""Submitting a job: checks, then its row and its files in storage (its flow run is the dispatcher's); and
the job of a run started in Prefect."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import layout
from core.job_spec import JobSpec
from core.status import ACTIVE, QUEUED
from gateway import db
from gateway.access import programs as policy
from gateway.access.facts import program_facts
from gateway.access.subject import Principal
from gateway.context import Services
from gateway.directory import DISABLED_MESSAGE, hash_token, new_token
from gateway.errors import ApiError, bad_request
from gateway.jobs.idempotency import Claim, earlier_job
from gateway.jobs.schemas import JobCreated, RunConfig, RunRequest
from gateway.orchestrator import Retries
from gateway.programs.arguments import parse_arguments, validate_against_schema
from gateway.programs.lookup import find_program


def run(
    services: Services,
    session: Session,
    user: Principal,
    request: RunRequest,
    channel: str | None,
    instance: str | None,
    idempotency_key: str | None = None,
) -> JobCreated:
    """Record the job, QUEUED: the dispatcher (gateway/jobs/dispatch.py) makes its flow run at the
    rate Prefect and the executor take them, so a request never waits on execution. A request
    repeated with its `Idempotency-Key` gets the job the first one made."""
    claim = None if idempotency_key is None else Claim.of(user.name, idempotency_key, request)
    if claim is not None and (earlier := earlier_job(session, claim, request.arguments)) is not None:
        return earlier
    program = find_program(session, user, request.title, request.provider, to_run=True)
    if program.disabled:
        raise ApiError(423, program.disabled_message or DISABLED_MESSAGE)
    limit = services.settings.max_active_jobs
    if active_jobs(session, user.name) >= limit:
        raise ApiError(429, f"Active job limit reached. The maximum allowed is {limit}.")
    arguments = parse_arguments(request.arguments, services.settings.max_arguments_bytes)
    validate_against_schema(program, arguments)
    if program.artifact is None or program.entrypoint is None or program.deployment_id is None:
        raise bad_request("This function is an image function; image functions cannot run on the Ray runner.")
    extras = RunExtras(
        channel=channel,
        instance=instance,
        function_size=request.function_size,
        resources=resources_of(request.config, services.settings.job_resources),
    )
    retries = retries_of(program, request.config)
    try:
        job = record_job(services, session, program, user, request.arguments, extras, retries, claim)
    except IntegrityError:
        if claim is None or (earlier := earlier_job(session, claim, request.arguments)) is None:
            raise
        return earlier  # the same key's request on another gateway committed first
    services.wake_dispatcher()
    return JobCreated(
        id=job.id,
        status=QUEUED,
        program=program.id,
        created=db.iso(job.created),
        arguments=request.arguments,
    )


def active_jobs(session: Session, user: str) -> int:
    """The user's jobs that are queued, pending or running (the active-job limit counts these)."""
    counted = select(func.count()).select_from(db.Job).where(db.Job.author == user, db.Job.status.in_(ACTIVE))
    return session.scalar(counted) or 0


def retries_of(program: db.Program, config: RunConfig | None = None) -> Retries:
    """The run's own retries, else the function's defaults, else none."""
    asked = config or RunConfig()
    return Retries(
        retries=first_set(asked.retries, program.retries, 0),
        delay_seconds=first_set(asked.retry_delay_seconds, program.retry_delay_seconds, 0),
    )


def resources_of(config: RunConfig | None, offered: list[str]) -> dict[str, float]:
    """The custom Ray resources a run asks for: only those the platform offers (QS_JOB_RESOURCES),
    since a job asking for one no node has would wait forever."""
    asked = (config.resources if config is not None else None) or {}
    unknown = sorted(set(asked) - set(offered))
    if unknown:
        known = ", ".join(sorted(offered)) or "none"
        raise bad_request(f"Unknown Ray resources {', '.join(unknown)}: this platform offers {known}.")
    return dict(asked)


def first_set(*values: int | None) -> int:
    return next(value for value in values if value is not None)


@dataclass(frozen=True)
class RunExtras:
    """What a run request adds to a job beyond its program and arguments (none for a run started in Prefect)."""

    channel: str | None = None
    instance: str | None = None
    function_size: str | None = None
    resources: dict[str, float] = field(default_factory=dict)


def record_job(
    services: Services,
    session: Session,
    program: db.Program,
    runner: Principal,
    arguments: str,
    extras: RunExtras,
    retries: Retries,
    claim: Claim | None = None,
) -> db.Job:
    """A new job waiting for its flow run. Its files come first: a recorded job always has them, and
    a request that dies before the commit leaves no job behind."""
    job, token = _new_job(session, program, runner, job_id=db.new_id(), flow_run_id=None)
    job.retries, job.retry_delay_seconds = retries.retries, retries.delay_seconds
    _write_files(services, program, job, token, arguments, extras)
    session.add(job)
    if claim is not None:
        claim.take(session, job.id)
    try:
        session.commit()
    except IntegrityError:  # its key was taken meanwhile, by a request on another gateway
        session.rollback()
        area = layout.job_area(job.author, program.provider, program.title)
        for key in (layout.job_folder(job.id), layout.arguments_file(area, job.id)):
            services.storage.delete(key)
        raise
    return job


def open_job(
    services: Services,
    session: Session,
    program: db.Program,
    runner: Principal,
    flow_run_id: str,
    arguments: str,
    extras: RunExtras,
) -> db.Job:
    """Make a flow run started in Prefect a job of `runner`, with the flow run's id.

    The row commits first: its primary key makes a run a job once, whichever gateway gets there
    first (IntegrityError for the others). The spec is written last: the flow waits for it, so
    a program never starts before its arguments and artifact snapshot are in place.
    """
    job, token = _new_job(session, program, runner, job_id=flow_run_id, flow_run_id=flow_run_id)
    session.add(job)
    session.commit()
    try:
        _write_files(services, program, job, token, arguments, extras)
    except ApiError:
        services.orchestrator.stop(flow_run_id)
        session.delete(job)
        session.commit()
        raise
    return job


def _new_job(
    session: Session, program: db.Program, runner: Principal, *, job_id: str, flow_run_id: str | None
) -> tuple[db.Job, str]:
    """The job's row (not yet added) and its callback token, which only the spec keeps."""
    token = new_token()
    job = db.Job(
        id=job_id,
        author=runner.name,
        program_id=program.id,
        flow_run_id=flow_run_id or job_id,
        dispatched=flow_run_id is not None,
        status=QUEUED,
        token_hash=hash_token(token),
        trial=policy.runs_as_trial(runner, program_facts(session, program)),
        created=db.utcnow(),
    )
    return job, token


def _write_files(
    services: Services, program: db.Program, job: db.Job, token: str, arguments: str, extras: RunExtras
) -> None:
    """The job's arguments, its artifact snapshot, then its spec (what the flow waits for)."""
    assert program.artifact is not None and program.entrypoint is not None
    area = layout.job_area(job.author, program.provider, program.title)
    spec = JobSpec(
        job_id=job.id,
        program_title=program.title,
        entrypoint=program.entrypoint,
        data_area=area,
        provider_area=layout.provider_area(program.provider, program.title) if program.provider else None,
        env=job_environment(services, job.id, token, program, extras, job.trial),
        program_env=json.loads(program.env_vars or "{}"),
        dependencies=json.loads(program.dependencies or "[]"),
        resources=extras.resources,
    )
    storage = services.storage
    storage.put_bytes(spec.arguments_key, arguments.encode())
    try:
        storage.copy(program.artifact, spec.artifact_key)  # per-job snapshot: a re-upload never changes a queued job
    except FileNotFoundError:  # replaced by an upload a moment ago
        raise ApiError(409, f"Function {program.title} was being replaced; run it again.") from None
    spec.save(storage)


def job_environment(
    services: Services, job_id: str, token: str, program: db.Program, extras: RunExtras, trial: bool
) -> dict[str, str]:
    """The variables a program reads (docs/architecture.md, Program environment); its env_vars go on top at start."""
    env = {
        "ENV_JOB_ID_GATEWAY": job_id,
        "ENV_JOB_GATEWAY_HOST": services.settings.gateway_url,
        "ENV_JOB_GATEWAY_TOKEN": token,
        "ENV_GATEWAY_PROVIDER_VERSION": "v1",
        "QISKIT_IBM_CHANNEL": extras.channel or "ibm_quantum_platform",
        "QISKIT_IBM_URL": "https://cloud.ibm.com",
        "ENV_JOB_ARGUMENTS": "{}",
        "ENV_ACCESS_TRIAL": str(trial),
        "ENV_JOB_FUNCTION_SIZE": extras.function_size or "",
        "ENV_JOB_COMPUTE_PROFILE": "",
        "QS_OT_PROGRAM_NAME": program.title,
        "QISKIT_IBM_RUNTIME_CUSTOM_CLIENT_APP_HEADER": f"middleware_job_id/{job_id}",
        # A flow in the program records its runs through the gateway, as its job (gateway/prefect_api/).
        "PREFECT_API_URL": f"{services.settings.gateway_url}/api/v1/prefect",
        "PREFECT_API_AUTH_STRING": f"job:{token}",
        # Log batches fit the gateway's body cap for that API, and leave often: the program's own Ray
        # is shut down as its flow ends, and a task's worker sends what it logged only until then.
        "PREFECT_LOGGING_TO_API_BATCH_SIZE": "900000",
        "PREFECT_LOGGING_TO_API_MAX_LOG_SIZE": "100000",
        "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.25",
    }
    if extras.instance:
        env["ENV_JOB_GATEWAY_INSTANCE"] = extras.instance
        env["QISKIT_IBM_INSTANCE"] = extras.instance
    return env
