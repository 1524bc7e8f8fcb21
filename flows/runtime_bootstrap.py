"""A program interpreter started ahead of time (runs in the runtime environment, stdlib only).

It pays the 2-3 s import of qiskit and qiskit_serverless while idle, then waits for
exactly one job on stdin: `{"cwd", "env", "entrypoint"}` as one JSON line. It then
becomes that program: working directory, environment, argv and sys.path (its [0]
and PYTHONPATH's entries) as `python <entrypoint>` would have them. One interpreter
serves one job, so nothing leaks between jobs or users.
"""

import atexit
import importlib
import json
import os
import runpy
import sys
import threading
import traceback

import qiskit  # noqa: F401
import qiskit_serverless  # noqa: F401

request = sys.stdin.readline()
if not request:
    sys.exit(0)
job = json.loads(request)
null = os.open(os.devnull, os.O_RDONLY)
os.dup2(null, 0)
os.close(null)
os.chdir(job["cwd"])
os.environ.clear()
os.environ.update(job["env"])
entrypoint = os.path.abspath(job["entrypoint"])
sys.argv = [job["entrypoint"]]
sys.path[0] = os.path.dirname(entrypoint)
# PYTHONPATH (e.g. the job's dependencies) lands where a fresh interpreter puts it: right after sys.path[0].
sys.path[1:1] = [os.path.abspath(entry) for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
importlib.invalidate_caches()
del request, job, null


def finish(code: int) -> None:
    """Exit as the program would, minus the ~0.7 s teardown of qiskit's module graph.

    Non-daemon threads are joined, atexit handlers and stream flushes run; only the
    interpreter's finalization is skipped.
    """
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)


try:
    runpy.run_path(entrypoint, run_name="__main__")
except SystemExit as stop:
    if stop.code is None or isinstance(stop.code, int):
        finish(stop.code or 0)
    print(stop.code, file=sys.stderr)
    finish(1)
except BaseException as error:  # report it as `python <entrypoint>` would, without this file's frames
    frames = error.__traceback__
    while frames is not None and frames.tb_frame.f_code.co_filename != entrypoint:
        frames = frames.tb_next
    traceback.print_exception(type(error), error, frames or error.__traceback__)
    finish(1)
finish(0)
