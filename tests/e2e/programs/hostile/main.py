"""Tries to reach what a program must not: the platform's files and databases, other users' data,
other jobs' specs, platform processes, the runtime. Reports what it managed; uses its own areas."""

import os
import sys

from qiskit_serverless import get_arguments, save_result

arguments = get_arguments()
leaks = []


def denied(action, path):
    try:
        action(path)
    except OSError:
        return True
    leaks.append(f"{action.__name__} {path}")
    return False


def read(path):
    if os.path.isdir(path):
        os.listdir(path)
    else:
        with open(path, "rb") as handle:
            handle.read(1)


def write(path):
    target = os.path.join(path, "planted.txt") if os.path.isdir(path) else path
    with open(target, "a") as handle:
        handle.write("planted")


for path in arguments["unreadable"]:
    denied(read, path)
for path in [*arguments["unwritable"], sys.prefix, os.path.dirname(os.__file__)]:
    denied(write, path)
for entry in os.listdir("/proc"):
    if entry.isdigit():
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                environ = handle.read()
        except OSError:
            continue
        if b"QS_" in environ or b"PREFECT_" in environ:
            leaks.append(f"platform environment in /proc/{entry}/environ")
visible = sorted(int(entry) for entry in os.listdir("/proc") if entry.isdigit())

with open("/data/own.txt", "w") as handle:
    handle.write("mine")
with open("/data/own.txt") as handle:
    own = handle.read()
function_data = os.environ.get("FUNCTION_DATA_PATH")
save_result(
    {
        "leaks": leaks,
        "processes": visible,
        "uid": os.getuid(),
        "own_data": own,
        "data_path": os.environ["DATA_PATH"],
        "function_data": function_data,
    }
)
