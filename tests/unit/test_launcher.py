"""The program launcher: forked programs behave like `python <entrypoint>` in a fresh interpreter."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from core.settings import REPO_ROOT, Settings
from flows.launch import Confinement, Launched, Launcher
from flows.node import NodeRuntime

RUNTIME_PYTHON = REPO_ROOT / ".venv-runtime" / "bin" / "python"
PRELOAD = ["qiskit_serverless"]


@pytest.fixture(scope="module")
def launcher() -> Launcher:
    started = Launcher()
    assert started.start(RUNTIME_PYTHON, PRELOAD), "the launcher did not start"
    return started


def launch(launcher: Launcher, directory: Path, source: str, **env: str) -> Launched:
    (directory / "main.py").write_text(source)
    launched = launcher.launch(
        {"cwd": str(directory), "env": {"PATH": "/usr/bin:/bin", **env}, "entrypoint": "main.py"}
    )
    assert launched is not None
    return launched


def output_and_code(launched: Launched) -> tuple[str, int]:
    assert launched.stdout is not None
    return launched.stdout.read().decode(), launched.wait()


def test_a_forked_program_is_a_fresh_main(launcher: Launcher, tmp_path: Path) -> None:
    source = (
        "import os, sys\n"
        "print(__name__, os.getcwd(), os.environ.get('ONLY_THIS_JOB'))\n"
        "print(sorted(os.environ) == ['ONLY_THIS_JOB', 'PATH'])\n"
        "print(os.getsid(0) == os.getpid(), os.getpgid(0) == os.getpid(), 'qiskit_serverless' in sys.modules)\n"
        "print('to stderr', file=sys.stderr)\n"
        "sys.exit(3)\n"
    )
    text, code = output_and_code(launch(launcher, tmp_path, source, ONLY_THIS_JOB="yes"))
    assert code == 3
    assert text == f"__main__ {tmp_path} yes\nTrue\nTrue True True\nto stderr\n"


def test_a_traceback_reads_as_the_programs_own(launcher: Launcher, tmp_path: Path) -> None:
    text, code = output_and_code(launch(launcher, tmp_path, "def f():\n    raise ValueError('bad input')\nf()\n"))
    assert code == 1
    assert text.startswith('Traceback (most recent call last):\n  File "') and "launcher.py" not in text
    assert text.endswith("ValueError: bad input\n")


def test_jobs_do_not_share_state(launcher: Launcher, tmp_path: Path) -> None:
    source = "import json\njson.MARK = getattr(json, 'MARK', 0) + 1\nprint(json.MARK)\n"
    first = output_and_code(launch(launcher, tmp_path, source))
    second = output_and_code(launch(launcher, tmp_path, source))
    assert first == second == ("1\n", 0)


def test_killing_the_process_group_ends_the_program_and_its_children(launcher: Launcher, tmp_path: Path) -> None:
    source = (
        "import subprocess, time\n"
        "child = subprocess.Popen(['sleep', '300'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    launched = launch(launcher, tmp_path, source)
    assert launched.stdout is not None
    child = int(launched.stdout.readline())
    os.killpg(launched.pid, signal.SIGKILL)
    assert launched.wait() == -signal.SIGKILL
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the program's child survived")


def test_packages_that_shadow_preloaded_modules_need_a_fresh_interpreter(launcher: Launcher, tmp_path: Path) -> None:
    (tmp_path / "qiskit_serverless").mkdir()
    (tmp_path / "unrelated.py").write_text("")
    assert launcher.conflicts(tmp_path)
    assert not launcher.conflicts(None)
    (tmp_path / "qiskit_serverless").rmdir()
    assert not launcher.conflicts(tmp_path)


def test_a_confined_program_sees_only_its_job(launcher: Launcher, tmp_path: Path) -> None:
    runtime = NodeRuntime.of(Settings(data_dir=tmp_path, runtime_python=RUNTIME_PYTHON, job_tmp_mb=64))
    workdir, data = tmp_path / "job", tmp_path / "area"
    artifact = workdir / "artifact"
    artifact.mkdir(parents=True)
    data.mkdir()
    (data / "mine.txt").write_text("my data")
    (tmp_path / "secret.txt").write_text("platform")
    source = (
        "import os\n"
        f"print(os.getpid(), os.getuid() != 0, os.path.exists({str(tmp_path / 'secret.txt')!r}))\n"
        "print(open('/data/mine.txt').read(), sorted(p for p in os.listdir('/proc') if p.isdigit()))\n"
        "open('/data/written.txt', 'w').write('from the job')\n"
        "try:\n"
        "    open(os.path.join(os.path.dirname(os.__file__), 'planted.py'), 'w')\n"
        "except OSError as error:\n"
        "    print(type(error).__name__)\n"
    )
    (artifact / "main.py").write_text(source)
    plan = Confinement(runtime, workdir, artifact, data, None).plan(None)
    launched = launcher.launch(
        {"cwd": str(artifact), "env": {"PATH": "/usr/bin:/bin"}, "entrypoint": "main.py", "sandbox": plan}
    )
    assert launched is not None
    text, code = output_and_code(launched)
    assert (text, code) == ("1 True False\nmy data ['1']\nOSError\n", 0)
    assert (data / "written.txt").read_text() == "from the job", "/data is the job's area"


def test_a_program_that_closed_its_output_is_seen_to_end(launcher: Launcher, tmp_path: Path) -> None:
    launched = launch(launcher, tmp_path, "import os, time\nos.close(1)\nos.close(2)\ntime.sleep(1)\nos._exit(4)\n")
    assert launched.stdout is not None and launched.stdout.read() == b""
    assert launched.ended_within(0.1) is None  # its output is closed, it lives on
    assert launched.ended_within(10) == 4
