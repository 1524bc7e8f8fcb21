"""The program launcher: a runtime interpreter that has imported the heavy modules once and forks a
fresh child for each job (runs in the runtime environment; standard library only).

    python launcher.py <control fd> <module,module,...>

It serves one control socket (a socketpair end inherited from the Ray worker that started it).
A request is one JSON line `{"cwd", "env", "entrypoint", "sandbox", "limits", "fresh"}` sent with one
file descriptor (SCM_RIGHTS): where the job's output goes. The launcher forks; the child becomes the
program: its own session and process group, confined to its job when `sandbox` holds a plan
(flows/sandbox.py), under the job's resource limits, with the job's environment, stdout and stderr on
that descriptor, and the entrypoint run as `__main__` (or, with `fresh`, a new interpreter started in
its place). The launcher answers `{"pid": N}`; when the child ends it sends `{"pid": N, "exit": code}`
(a negative code is the signal that ended it).

The launcher is single-threaded, so a fork copies no half-held lock. It exits when its control
socket closes or its parent dies.
"""

import array
import atexit
import ctypes
import importlib
import json
import os
import resource
import runpy
import select
import signal
import socket
import sys
import threading
import traceback

import sandbox  # flows/sandbox.py, beside this file

MAX_FDS = 1


def receive(control: socket.socket) -> tuple[dict, int] | None:
    """One request line and the descriptor that came with it; None when the socket closed."""
    fds = array.array("i")
    data = b""
    while not data.endswith(b"\n"):
        chunk, ancillary, _flags, _addr = control.recvmsg(65536, socket.CMSG_SPACE(MAX_FDS * fds.itemsize))
        if not chunk:
            return None
        data += chunk
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
    return json.loads(data), fds[0]


def send(control: socket.socket, message: dict) -> None:
    control.sendall(json.dumps(message).encode() + b"\n")


def become_program(job: dict, output: int, control: socket.socket) -> None:
    """In the forked child: turn into `python <entrypoint>` for this job. Never returns."""
    try:
        control.close()
        os.setsid()
        name_process(f"job-{job['env'].get('ENV_JOB_ID_GATEWAY', '')[:11]}")
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.closerange(3, 65536)
        plan = job.get("sandbox")
        if plan is not None:
            plan["ro"].update({sys.prefix: sys.prefix, sys.base_prefix: sys.base_prefix})  # this interpreter
            sandbox.enter(plan)  # from here on, PID 1 of the job's own namespaces
        apply_limits(job.get("limits", {}))
        os.chdir(job["cwd"])
        os.environ.clear()
        os.environ.update(job["env"])
        entrypoint = os.path.abspath(job["entrypoint"])
        sys.argv = [job["entrypoint"]]
        sys.path[0] = os.path.dirname(entrypoint)
        # PYTHONPATH (the job's dependencies) lands where a fresh interpreter puts it: after sys.path[0].
        extra = [os.path.abspath(entry) for entry in job["env"].get("PYTHONPATH", "").split(os.pathsep) if entry]
        sys.path[1:1] = extra
        importlib.invalidate_caches()
        sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        if job.get("fresh"):
            os.execve(sys.executable, [sys.executable, job["entrypoint"]], job["env"])
    except BaseException:
        traceback.print_exc()
        os._exit(70)
    run(entrypoint, job.get("limits", {}).get("memory_mb"))


def name_process(name: str) -> None:
    """The process's name (/proc/<pid>/comm) says which job it runs, for operators and tests; the
    program's own processes are those in its PID namespace."""
    libc = ctypes.CDLL(None)
    libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME


def apply_limits(limits: dict) -> None:
    """The job's resource limits. Memory caps the private memory the program may add to what the
    launcher's pre-imported modules already hold."""
    if limits.get("memory_mb"):
        # RLIMIT_DATA counts the heap and private mappings, not shared ones (a Ray object store is one).
        with open("/proc/self/status") as status:
            data_kib = next(int(line.split()[1]) for line in status if line.startswith("VmData:"))
        cap = (data_kib + limits["memory_mb"] * 1024) * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    for name, kind in (("processes", resource.RLIMIT_NPROC), ("open_files", resource.RLIMIT_NOFILE)):
        if limits.get(name):
            resource.setrlimit(kind, (limits[name], limits[name]))
    if limits.get("file_mb"):
        size = limits["file_mb"] * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    if limits.get("cpu_seconds"):
        resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_seconds"], limits["cpu_seconds"] + 5))


def run(entrypoint: str, memory_mb: int | None) -> None:
    try:
        runpy.run_path(entrypoint, run_name="__main__")
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            finish(stop.code or 0)
        print(stop.code, file=sys.stderr)
        finish(1)
    except MemoryError:
        traceback.print_exc()
        limit = f" ({memory_mb} MiB, QS_JOB_MEMORY_MB)" if memory_mb else ""
        print(f"The program ran out of memory: it reached the job's memory limit{limit}.", file=sys.stderr)
        finish(1)
    except BaseException as error:  # reported as `python <entrypoint>` would, without this file's frames
        frames = error.__traceback__
        while frames is not None and frames.tb_frame.f_code.co_filename != entrypoint:
            frames = frames.tb_next
        traceback.print_exception(type(error), error, frames or error.__traceback__)
        finish(1)
    finish(0)


def finish(code: int) -> None:
    """Exit as the program would, minus the teardown of the pre-imported module graph: non-daemon
    threads are joined, atexit handlers and stream flushes run; only finalization is skipped."""
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)


def reap(control: socket.socket, children: set[int]) -> None:
    """Collect every ended child: the programs (their exit codes go to the Ray worker) and the
    orphans of killed programs, which come to us as the subreaper instead of lingering as zombies."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid in children:
            children.discard(pid)
            send(control, {"pid": pid, "exit": os.waitstatus_to_exitcode(status)})


def serve(control: socket.socket) -> None:
    parent = os.getppid()
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    children: set[int] = set()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    watched: list[socket.socket | int] = [control, wake_r]
    while True:
        ready, _, _ = select.select(watched, [], [], 1.0)
        if wake_r in ready:
            os.read(wake_r, 4096)
        reap(control, children)
        if os.getppid() != parent:
            return  # the Ray worker that owns us is gone
        if control not in ready:
            continue
        received = receive(control)
        if received is None:
            return
        job, output = received
        pid = os.fork()
        if pid == 0:
            os.close(wake_r)
            os.close(wake_w)
            become_program(job, output, control)
        os.close(output)
        children.add(pid)
        send(control, {"pid": pid})


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    for name in filter(None, sys.argv[2].split(",")):
        importlib.import_module(name)
    send(control, {"ready": sorted({name.split(".")[0] for name in sys.modules})})
    serve(control)


if __name__ == "__main__":
    main()
