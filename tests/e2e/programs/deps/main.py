"""Imports the packages its function declared in `dependencies` and reports where they came from."""

import importlib
from importlib.metadata import version

from qiskit_serverless import get_arguments, save_result

imports = get_arguments().get("imports", {"mergedeep": "mergedeep"})  # module name -> distribution name
result = {}
for module_name, distribution in imports.items():
    module = importlib.import_module(module_name)
    result[module_name] = {"version": version(distribution), "file": module.__file__}
    print(f"imported {module_name} {result[module_name]['version']}")
if "mergedeep" in imports:
    from mergedeep import merge

    result["merged"] = merge({}, {"a": {"b": 1}}, {"a": {"c": 2}})
save_result(result)
