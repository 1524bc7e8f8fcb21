"""Program dependencies: the upload rules, the allow-list file, and the per-node cached install."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from core.allow_list import read_allow_list
from core.job_spec import JobSpec
from core.settings import REPO_ROOT, Settings
from flows.dependencies import DependencyInstallError, ensure_environment, environment_key, install_specs
from flows.node import NodeRuntime
from gateway.errors import ApiError
from gateway.programs.dependencies import normalize_dependencies

RUNTIME_PYTHON = REPO_ROOT / ".venv-runtime" / "bin" / "python"
ALLOWED = ["mergedeep==1.3.4", "tabulate==0.9.0", "more-itertools>=10.0,<11"]
ALLOWED_TEXT = "mergedeep==1.3.4, tabulate==0.9.0, more-itertools>=10.0,<11"
FIXED = "'dependencies' needs one fixed version using the '==' operator."
needs_runtime = pytest.mark.skipif(not RUNTIME_PYTHON.exists(), reason="needs .venv-runtime")


def normalized(*entries: object) -> list[str]:
    return json.loads(normalize_dependencies(json.dumps(list(entries)), ALLOWED))  # type: ignore[no-any-return]


def refused(text: str) -> str:
    with pytest.raises(ApiError) as raised:
        normalize_dependencies(text, ALLOWED)
    assert raised.value.status == 400
    return raised.value.message


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([], []),
        (["mergedeep==1.3.4"], ["mergedeep==1.3.4"]),
        (["mergedeep"], ["mergedeep==1.3.4"]),  # a bare name takes the allow-list's exact pin
        ([{"mergedeep": "1.3.4"}], ["mergedeep==1.3.4"]),
        ([{"mergedeep": "==1.3.4"}], ["mergedeep==1.3.4"]),
        ([{"mergedeep": ""}], ["mergedeep==1.3.4"]),
        (["MergeDeep == 1.3.4"], ["mergedeep==1.3.4"]),  # names compare PEP 503-normalised
        (["more_itertools==10.5.0"], ["more-itertools==10.5.0"]),
        (["more-itertools"], ["more-itertools"]),  # only a range allowed: stays bare, the job picks the best match
        (["mergedeep==1.3.4", "tabulate"], ["mergedeep==1.3.4", "tabulate==0.9.0"]),
        (["mergedeep", "mergedeep==1.3.4"], ["mergedeep==1.3.4"]),
    ],
)
def test_accepted_dependencies_are_normalized(entries: list[object], expected: list[str]) -> None:
    assert normalized(*entries) == expected


@pytest.mark.parametrize(
    "entries",
    [
        ["mergedeep>=1.3"],
        ["mergedeep~=1.3"],
        ["mergedeep!=1.0"],
        ["mergedeep==1.*"],
        ["mergedeep===1.3.4"],
        ["mergedeep==1.3.4==1.3.4"],
        ["mergedeep==1.3.4,==1.3.4"],
        [{"mergedeep": ">=1.0"}],
        [{"mergedeep": 1.3}],
        [{"mergedeep": "1.3.4", "tabulate": "0.9.0"}],
        [42],
        [""],
        ["mergedeep==1.3.4; python_version > '3'"],
        ["mergedeep @ https://example.com/mergedeep.whl"],
    ],
)
def test_anything_but_one_equals_pin_is_refused(entries: list[object]) -> None:
    assert refused(json.dumps(entries)) == FIXED


def test_unknown_package_is_refused_with_the_allow_list() -> None:
    assert refused('["notallowed==1.0"]') == (
        f"Dependency `notallowed` is not allowed. Allowed dependencies: {ALLOWED_TEXT}"
    )
    assert refused('["mergedeep[extra]==1.3.4"]').startswith("Dependency `mergedeep[extra]` is not allowed.")


def test_version_outside_the_allow_list_is_refused() -> None:
    assert refused('["mergedeep==1.3.3"]') == (
        "Dependency (mergedeep) version (1.3.3) is not allowed. Allowed: mergedeep==1.3.4"
    )
    assert refused('["more-itertools==11.0.0"]') == (
        "Dependency (more-itertools) version (11.0.0) is not allowed. Allowed: more-itertools>=10.0,<11"
    )
    assert refused('[{"more-itertools": "9.1.0"}]').startswith("Dependency (more-itertools) version (9.1.0)")


def test_conflicting_pins_and_non_lists_are_refused() -> None:
    assert "more than once" in refused('["more-itertools==10.1.0", "more-itertools==10.2.0"]')
    assert refused("not json") == "'dependencies' must be JSON text."
    assert refused('{"mergedeep": "1.3.4"}') == "'dependencies' must be a JSON list."
    assert refused('"mergedeep==1.3.4"') == "'dependencies' must be a JSON list."


def test_allow_list_file_parse(tmp_path: Path) -> None:
    path = tmp_path / "allowed.txt"
    path.write_text("# extra packages\n\nmergedeep==1.3.4  # pinned\n  more-itertools>=10.0,<11\n")
    assert read_allow_list(path) == ["mergedeep==1.3.4", "more-itertools>=10.0,<11"]
    path.write_text("mergedeep==1.3.4\nnot a requirement!\n")
    with pytest.raises(ValueError, match=":2: not a requirement"):
        read_allow_list(path)


def test_the_repository_allow_list_keeps_a_range() -> None:
    entries = read_allow_list(REPO_ROOT / "requirements" / "allowed-dependencies.txt")
    assert "mergedeep==1.3.4" in entries
    assert any("<" in entry or ">" in entry for entry in entries), "a range keeps version checks exercised"


def test_install_specs_constrain_bare_names_to_the_allow_list() -> None:
    assert install_specs(["mergedeep==1.3.4", "more-itertools", "tabulate"], ALLOWED) == [
        "mergedeep==1.3.4",
        "more-itertools>=10.0,<11",
        "tabulate==0.9.0",
    ]
    with pytest.raises(DependencyInstallError, match="not in the allow-list any more"):
        install_specs(["mergedeep==1.3.3"], ALLOWED)
    with pytest.raises(DependencyInstallError, match="not in the allow-list any more"):
        install_specs(["toolz"], ALLOWED)
    assert environment_key(["b==1", "a==2"]) == environment_key(["a==2", "b==1", "a==2"])


def test_empty_requirements_need_no_environment(tmp_path: Path) -> None:
    assert ensure_environment([], tmp_path / "envs", RUNTIME_PYTHON) is None
    assert not (tmp_path / "envs").exists()


def fake_pip(tmp_path: Path, script: str) -> Path:
    """A stand-in `python` whose `-m pip install ... --target DIR ...` runs `script` (DIR is $target)."""
    python = tmp_path / "fake-python"
    python.write_text(
        f'#!/bin/sh\nwhile [ "$#" -gt 0 ]; do [ "$1" = "--target" ] && target="$2"; shift; done\n{script}\n'
    )
    python.chmod(0o755)
    return python


def test_concurrent_jobs_build_one_environment_once(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    python = fake_pip(tmp_path, f'echo x >> {calls}; sleep 0.5; mkdir -p "$target/pkg"')
    results: list[Path | None] = []
    threads = [
        threading.Thread(target=lambda: results.append(ensure_environment(["pkg==1"], tmp_path / "envs", python)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls.read_text().count("x") == 1
    assert len(set(results)) == 1
    target = results[0]
    assert target is not None and (target / "pkg").is_dir()
    assert target.name == environment_key(["pkg==1"])
    assert [entry.name for entry in (tmp_path / "envs").iterdir() if entry.is_dir()] == [target.name]


def test_a_failed_install_says_why_and_leaves_nothing(tmp_path: Path) -> None:
    python = fake_pip(tmp_path, 'touch "$target/partial"; echo "noise"; echo "ERROR: No matching distribution"; exit 1')
    lines: list[str] = []
    with pytest.raises(DependencyInstallError) as raised:
        ensure_environment(["pkg==1"], tmp_path / "envs", python, log=lines.append)
    assert str(raised.value) == "Installing dependencies failed (pip exit code 1):\nERROR: No matching distribution"
    assert lines == ["Installing dependencies: pkg==1"]
    assert [entry.name for entry in (tmp_path / "envs").iterdir() if entry.is_dir()] == []


@needs_runtime
@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_the_program_imports_its_dependencies(tmp_path: Path, warm: bool) -> None:
    from flows import program_process

    settings = Settings(runtime_python=RUNTIME_PYTHON, scratch_dir=tmp_path / "scratch", warm_interpreters=warm)
    runtime = NodeRuntime.of(settings)
    packages = tmp_path / "packages"  # made by hand: this test is about the import path
    (packages / "extra_pkg").mkdir(parents=True)
    (packages / "extra_pkg" / "__init__.py").write_text("VALUE = 'from deps'\n")
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    (artifact / "main.py").write_text(
        "import os, sys, extra_pkg\n"
        "print(extra_pkg.VALUE, sys.path.index(os.environ['PYTHONPATH']), 'qiskit' in sys.modules)\n"
    )
    spec = JobSpec(job_id="job-1", program_title="p", entrypoint="main.py", data_area="users/a", env={})
    env = program_process.program_environment(spec, tmp_path / "data", runtime, packages)
    assert env["PYTHONPATH"] == str(packages)
    process = program_process.start_program(spec, artifact, env, runtime)
    output = process.stdout.read() if process.stdout else b""
    assert process.wait() == 0, output
    # Right after the entrypoint's directory, as in a fresh interpreter; only the forked one has qiskit loaded.
    assert output.decode() == f"from deps 1 {warm}\n"
