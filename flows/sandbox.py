"""Confining a forked program to its own job with Linux namespaces (standard library and ctypes only).

`enter(plan)` runs in the launcher's forked child, before the program. It makes a private mount and
PID namespace, builds a new root that holds only what the plan names (the runtime read-only, the
job's artifact, its data areas at /data and /function_data, a private /tmp and /dev), pivots into it,
and drops to an unprivileged user. It returns in a new child that is PID 1 of the job's namespace: every
process the program starts dies with it, and no other process of the machine is visible. The first
child waits and passes the program's exit code on.

A plan is `{"root": scratch dir for the new root, "ro": {inside: outside}, "rw": {inside: outside},
"uid": int, "gid": int, "tmp_mb": int}`: read-only and writable binds, and who the program runs as.
"""

import ctypes
import os
import platform
import signal

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}  # the syscall's number (no libc wrapper)
UNPRIVILEGED_ID = 1000  # the program's uid and gid inside its namespace when the platform is not root

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    encode = lambda text: text.encode() if text is not None else None  # noqa: E731
    _check(_libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)), f"mount {target}")


def bind(source: str, target: str, read_only: bool) -> None:
    """Bind `source` at `target` (made to match: a directory or a file); read-only when asked."""
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    mount(source, target, None, MS_BIND | MS_REC)
    flags = MS_BIND | MS_REMOUNT | MS_NOSUID | (MS_RDONLY if read_only else 0)
    mount(None, target, None, flags)


def _inside(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/"))


def build_root(plan: dict) -> None:
    """A tmpfs root holding /proc, /tmp, /dev and the plan's paths, nothing else."""
    root = plan["root"]
    os.makedirs(root, exist_ok=True)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m")
    tmp = _inside(root, "/tmp")
    os.makedirs(tmp, exist_ok=True)
    mount("tmpfs", tmp, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={plan['tmp_mb']}m")
    dev = _inside(root, "/dev")
    os.makedirs(dev, exist_ok=True)
    mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=0755,size=1m")
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            bind(f"/dev/{name}", os.path.join(dev, name), read_only=False)
    os.makedirs(os.path.join(dev, "shm"), exist_ok=True)
    mount("tmpfs", os.path.join(dev, "shm"), "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={plan['tmp_mb']}m")
    os.symlink("/proc/self/fd", os.path.join(dev, "fd"))
    proc = _inside(root, "/proc")
    os.makedirs(proc, exist_ok=True)
    mount("proc", proc, "proc", MS_NOSUID | MS_NODEV)
    for inside, outside in plan["ro"].items():
        if inside == outside and os.path.islink(outside):  # /bin -> usr/bin on merged-/usr systems
            os.makedirs(os.path.dirname(_inside(root, inside)), exist_ok=True)
            os.symlink(os.readlink(outside), _inside(root, inside))
        elif os.path.exists(outside):
            bind(outside, _inside(root, inside), read_only=True)
    for inside, outside in plan["rw"].items():
        bind(outside, _inside(root, inside), read_only=False)


def pivot(root: str) -> None:
    old = os.path.join(root, ".old-root")
    os.makedirs(old, exist_ok=True)
    _check(_libc.syscall(PIVOT_ROOT[platform.machine()], root.encode(), old.encode()), "pivot_root")
    os.chdir("/")
    _check(_libc.umount2(b"/.old-root", MNT_DETACH), "umount old root")
    os.rmdir("/.old-root")
    mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID)


def enter(plan: dict) -> None:
    """Confine this process (single-threaded, just forked). Returns in the job's PID 1.

    As root the namespaces are made directly and the program then runs as `plan["uid"]`. Otherwise a
    user namespace (mapping the caller to root inside) makes the mounts possible, and a second one
    nested in it leaves the program an ordinary user there, with no capability over its mounts.
    """
    privileged = os.geteuid() == 0
    outer_uid, outer_gid = os.geteuid(), os.getegid()
    namespaces = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    unshare(namespaces if privileged else namespaces | CLONE_NEWUSER)
    if not privileged:
        _map_ids(0, outer_uid, 0, outer_gid)
    pid = os.fork()
    if pid:
        _pass_on_exit(pid)
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    build_root(plan)
    pivot(plan["root"])
    if privileged:
        os.setgroups([])
        os.setresgid(plan["gid"], plan["gid"], plan["gid"])
        os.setresuid(plan["uid"], plan["uid"], plan["uid"])
    else:
        unshare(CLONE_NEWUSER)
        _map_ids(UNPRIVILEGED_ID, 0, UNPRIVILEGED_ID, 0)


def _map_ids(inside_uid: int, outside_uid: int, inside_gid: int, outside_gid: int) -> None:
    with open("/proc/self/uid_map", "w") as handle:
        handle.write(f"{inside_uid} {outside_uid} 1\n")
    with open("/proc/self/setgroups", "w") as handle:
        handle.write("deny")
    with open("/proc/self/gid_map", "w") as handle:
        handle.write(f"{inside_gid} {outside_gid} 1\n")


def _pass_on_exit(pid: int) -> None:
    _, status = os.waitpid(pid, 0)  # retried by Python itself when a signal interrupts it (PEP 475)
    code = os.waitstatus_to_exitcode(status)
    if code < 0:  # end the same way, so the launcher reports the signal (a limit, a kill) as it was
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code if code >= 0 else 128 - code)
