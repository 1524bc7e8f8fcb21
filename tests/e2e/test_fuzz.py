"""Property-based fuzz of the gateway's OpenAPI document with schemathesis, with all its checks.

schemathesis lives in the platform environment (.venv), not in the runtime one these tests run in,
so its CLI runs as a subprocess against the running stack. The run is bounded (examples per operation,
fixed seed, no shrinking, no stateful phase) and takes about 1.5 min on two cores. All checks run, in
both directions: no 5xx; every response, status code, content type and header is documented; input the
document accepts is accepted (no "schema-valid request rejected") and input it refuses is refused; a
route that needs a token refuses a request without one.

Four operations may refuse schema-valid input with 400, because what they accept depends on stored
state or rules a static document cannot state: upload (the artifact must hold the entrypoint,
dependencies must be on the allow-list, a provider needs its admin), run and validate_arguments (the
function's own arguments_schema), and a new schedule (its arguments against that schema, a cron
expression and timezone Prefect reads, an interval of at least 10 s). JSON-text fields (`arguments`,
`dependencies`, ...) are documented as JSON text, which JSON Schema can only annotate.

The fuzzer works as a user of its own, `fuzzuser`, who owns one program (with an arguments schema),
one finished job and one file. Half of the generated ids, titles and file names are those real ones
(schemathesis dictionaries), so the fuzz reaches past the 404s into the services; the other half are
arbitrary. Whatever it changes or deletes is that user's alone, so the other tests are unaffected.

Nothing is excluded: every operation is safe to fuzz. `POST /programs/run` is rarely given the real
title (schemathesis reuses values it saw in responses), and then starts a job of the fuzz user's own
hello program at most, held at the active-job limit; `/jobs/{id}/stop` on the finished job only answers
that it is already terminal; an upload without a valid tar only updates the fuzz user's own program.

On a failure the CLI output below shows each failing case with a curl line that reproduces it; rerun
with the same seed to get the same cases.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
from pathlib import Path

from conftest import PROGRAMS, Stack
from stack_process import ROOT, add_user

SCHEMATHESIS = ROOT / ".venv" / "bin" / "schemathesis"
USER, TOKEN = "fuzzuser", "fuzz_token"
TITLE, FILE = "fuzzed", "data.txt"
MAX_EXAMPLES = 50
SEED = 20240611
FINISHED = {"SUCCEEDED", "FAILED", "STOPPED"}  # the API's own terminal statuses (the client says DONE etc.)
SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}}, "required": ["name"]}


def _tar(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in sorted(directory.iterdir()):
            archive.add(path, arcname=path.name)
    return buffer.getvalue()


def _seed(stack: Stack) -> tuple[str, str]:
    """The fuzz user's program, a finished job of it and a file; returns the job's and program's ids."""
    add_user(stack.data_dir, USER, TOKEN)
    form = {"title": TITLE, "entrypoint": "main.py", "arguments_schema": json.dumps(SCHEMA)}
    uploaded = stack.post(
        "/api/v1/programs/upload/", TOKEN, data=form, files={"artifact": ("a.tar", _tar(PROGRAMS / "hello"))}
    )
    assert uploaded.status_code == 200, uploaded.text
    created = stack.post("/api/v1/programs/run/", TOKEN, json={"title": TITLE, "arguments": '{"name": "fuzz"}'})
    assert created.status_code == 200, created.text
    job_id = str(created.json()["id"])
    deadline = time.monotonic() + 120
    while (status := stack.get(f"/api/v1/jobs/{job_id}/", TOKEN).json()["status"]) not in FINISHED:
        assert time.monotonic() < deadline, f"job {job_id} still {status}"
        time.sleep(0.2)
    assert status == "SUCCEEDED", stack.get(f"/api/v1/jobs/{job_id}/logs/", TOKEN).text
    stored = stack.post("/api/v1/files/upload/", TOKEN, params={"function": TITLE}, files={"file": (FILE, b"x\n")})
    assert stored.status_code == 200, stored.text
    return job_id, str(uploaded.json()["id"])


def _config(job_id: str, program_id: str) -> str:
    """schemathesis.toml: real values offered for half of the ids, titles and file names."""
    return f"""
[dictionaries.jobs]
values = ["{job_id}"]

[dictionaries.programs]
values = ["{program_id}"]

[dictionaries.providers]
values = ["mockprovider"]

[dictionaries.titles]
values = ["{TITLE}"]

[dictionaries.files]
values = ["{FILE}"]

[parameters]
"path.job_id" = {{ dictionary = "jobs", probability = 0.5 }}
"path.program_id" = {{ dictionary = "programs", probability = 0.5 }}
"query.provider" = {{ dictionary = "providers", probability = 0.3 }}
"path.title" = {{ dictionary = "titles", probability = 0.5 }}
"query.function" = {{ dictionary = "titles", probability = 0.5 }}
"query.file" = {{ dictionary = "files", probability = 0.5 }}
"body.title" = {{ dictionary = "titles", probability = 0.5 }}

# Rarely the real title on POST /programs/run: each would start a job.
[[operations]]
include-name = "POST /api/v1/programs/run"
parameters = {{ "body.title" = {{ dictionary = "titles", probability = 0.0 }} }}

# What these accept depends on stored state (see the module docstring): 400 is an expected answer here.
[[operations]]
include-name = [
    "POST /api/v1/programs/upload",
    "POST /api/v1/programs/run",
    "POST /api/v1/programs/validate_arguments",
    "POST /api/v1/programs/{{program_id}}/schedules",
]
checks.positive_data_acceptance.expected-statuses = ["2XX", 400, 401, 403, 404, 409, 413, 423, 429]
"""


def test_openapi_fuzz_finds_no_server_error(stack: Stack, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    job_id, program_id = _seed(stack)
    config.write_text(_config(job_id, program_id))
    command = [
        str(SCHEMATHESIS),
        f"--config-file={config}",
        "run",
        f"{stack.url}/openapi.json",
        f"--header=Authorization: Bearer {TOKEN}",
        "--header=Service-Channel: ibm_quantum_platform",
        "--checks=all",
        "--mode=all",
        f"--max-examples={MAX_EXAMPLES}",
        f"--seed={SEED}",
        "--phases=examples,coverage,fuzzing",
        "--no-shrink",
        "--generation-database=none",
        "--request-timeout=30",
        # One worker: Hypothesis' generation is not thread-safe everywhere (a run with two once died of an
        # internal AST error), and one is as fast here since the gateway, not the generator, is the bottleneck.
        "--workers=1",
        "--no-color",
    ]
    started = time.monotonic()
    # cwd=tmp_path: nothing schemathesis may write (reports, caches) lands in the work tree.
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=400)
    elapsed = time.monotonic() - started
    output = f"$ {' '.join(command)}\n(exit {run.returncode} after {elapsed:.0f} s)\n{run.stdout}\n{run.stderr}"
    # The schedules it made would start the fuzz user's jobs for the rest of the session.
    schedules = f"/api/v1/programs/{program_id}/schedules"
    for schedule in stack.get(schedules, TOKEN).json():
        stack.request("DELETE", f"{schedules}/{schedule['id']}", TOKEN)
    assert run.returncode == 0, output
