"""Child processes of the emulation: ports, die-with-parent, environment.

Every process the testbed starts is ours to stop, by PID; each dies with its
parent (PR_SET_PDEATHSIG) so that a crashed test or CLI leaves no orphan.
"""
from __future__ import annotations

import os
import shutil
import socket

from controller.switch.artifacts import REPO_ROOT


_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now and that this
    process has not handed out before. The kernel may give the same free port
    twice to binds a moment apart, and gRPC servers bind with SO_REUSEPORT:
    two of ours on one port would both listen and share its connections."""
    for _ in range(1000):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise OSError("no free TCP port on 127.0.0.1 that was not handed out already")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def die_with_parent(cmd: list[str]) -> list[str]:
    """``cmd`` run so that it gets SIGTERM when the process that started it
    dies (PR_SET_PDEATHSIG through util-linux's setpriv, not a preexec_fn:
    Python code between fork and exec aborts in a process with gRPC threads)."""
    return ["setpriv", "--pdeathsig", "TERM", "--", *cmd] if shutil.which("setpriv") else cmd


def py_env() -> dict:
    """The environment of a child Python process: ours, with the repository
    on PYTHONPATH (pods run in other namespaces, from any directory)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"]
                                          if env.get("PYTHONPATH") else "")
    return env


CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads (/proc/PID/stat; the
    command name may hold spaces and parentheses: split after it). Raises
    OSError when the process is gone."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (/proc/PID/statm). Raises OSError when it is gone."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def rss_mb(pid: int) -> float:
    return rss_bytes(pid) / 2**20

