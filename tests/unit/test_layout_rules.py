"""The layout's import rules (docs/architecture.md): the shared core imports neither side, the executor
side never imports the gateway, and the gateway process never loads Ray."""

from __future__ import annotations

import ast
import subprocess
import sys

from core.settings import REPO_ROOT


def imported_packages(folder: str) -> dict[str, set[str]]:
    """Top-level packages each module of `folder` imports."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO_ROOT / folder).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(REPO_ROOT))] = names
    return found


def test_the_core_imports_neither_side() -> None:
    offenders = {
        module: names & {"gateway", "flows", "blocks", "deployments"}
        for module, names in imported_packages("core").items()
    }
    assert not {module: names for module, names in offenders.items() if names}


def test_the_executor_side_never_imports_the_gateway() -> None:
    for folder in ("flows", "blocks", "deployments"):
        offenders = [module for module, names in imported_packages(folder).items() if "gateway" in names]
        assert offenders == [], folder


def test_the_gateway_process_does_not_load_ray() -> None:
    check = "import gateway.app, sys; print('ray' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", check], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "False"


def test_the_launcher_needs_only_the_standard_library() -> None:
    """It runs in the program runtime, which has none of the platform's packages."""
    stdlib = set(sys.stdlib_module_names) | {"sandbox"}
    for module in ("flows/launcher.py", "flows/sandbox.py"):
        assert imported_packages("flows")[module] <= stdlib, module
