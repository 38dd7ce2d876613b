"""The SG/SR agents, one process each or several per process.

:class:`AgentApp`: one agent process (``python -m controller.agent``).
:class:`AgentHostApp`: one process holding several agents
(``python -m controller.agent.host``), each reached through a
:class:`HostedAgent` that behaves like an AgentApp for one switch (start, stop,
kill, ready, alive, admin) by commands on the host's standard input.
An agent is ready when its admin service answers a GetState. Each agent also
serves the SCSC's policy channel on an address of its own (``policy_addr``).
:func:`agent_timers` picks the hello and dead intervals for a network's size,
:func:`agents_per_process` how many agents share a process.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import time
from pathlib import Path

from controller.agent.admin_client import AdminClient, AdminError
from controller.routing.router import Config
from topologies.emu.apps.app_base import App, AppError, python_module
from controller.rpc import addr_open
from topologies.emu.child_processes import free_port

SWITCHES_PER_CORE = 4      # at the agents' default hello; measured, see docs/routing.md


def agent_timers(switches: int, hello_ms: int | None = None,
                 cores: int | None = None) -> tuple[int, int]:
    """Hello and dead interval for the agents of a network of ``switches``.

    Each hello costs CPU in two agents and two BMv2s (about 1.3 ms in all,
    measured), so a fixed short interval that suits Figure 2 starves a small
    machine running dozens of switches, and a starved machine is one whose
    adjacencies flap. Unless ``hello_ms`` is given, the interval grows with the
    switches per core: the agents' default (80 ms, so that a failure is
    rerouted within 300 ms) up to SWITCHES_PER_CORE per core, then in steps of
    it. The dead interval follows (``Config.for_hello``: 3 hellos)."""
    if hello_ms is None:
        cores = cores or os.cpu_count() or 1
        hello_ms = Config.hello_ms * max(1, math.ceil(switches / (SWITCHES_PER_CORE * cores)))
    return hello_ms, Config.for_hello(hello_ms).dead_ms


PROCESSES_PER_CORE = 2     # agent processes: a Python process uses at most one core
                           # (the GIL); one more per core keeps both busy while one waits


def agents_per_process(switches: int, cores: int | None = None) -> int:
    """How many agents share a process by default: one each (every agent its
    own process, as on a real switch) while that gives at most 2 a process
    anyway; beyond, the agents are spread over PROCESSES_PER_CORE processes a
    core. One Python process per switch costs about 60 MB and a second or more
    of CPU to start; 64 of them do not fit two cores (docs/decisions.md)."""
    cores = cores or os.cpu_count() or 1
    per = math.ceil(switches / (PROCESSES_PER_CORE * cores))
    return 1 if per <= 2 else per


class AgentApp(App):
    kind = "agent"

    def __init__(self, name: str, *, topo_file: str, grpc_addr: str, device_id: int,
                 key_file, log_dir, hello_ms: int, dead_ms: int,
                 admin_addr: str | None = None, policy_addr: str | None = None,
                 extra_args=()):
        log_dir = Path(log_dir)
        super().__init__(name, log_dir / f"{name}.stdout")
        self.agent_log = log_dir / f"{name}.log"
        self.topo_file = topo_file
        self.grpc_addr = grpc_addr
        self.device_id = device_id
        self.key_file = key_file
        self.hello_ms, self.dead_ms = hello_ms, dead_ms
        self.admin_addr = admin_addr or f"127.0.0.1:{free_port()}"
        self.policy_addr = policy_addr or f"127.0.0.1:{free_port()}"
        self.extra_args = list(extra_args)

    def args(self) -> list[str]:
        """The agent's arguments (``python -m controller.agent`` takes them, and
        so does an agent host for each of its agents)."""
        return ["--topo", str(self.topo_file), "--switch", self.name,
                "--grpc-addr", self.grpc_addr, "--device-id", str(self.device_id),
                "--admin-addr", self.admin_addr, "--policy-addr", self.policy_addr,
                "--key-file", str(self.key_file),
                "--log-file", str(self.agent_log),
                "--hello-ms", str(self.hello_ms), "--dead-ms", str(self.dead_ms),
                *self.extra_args]

    def command(self) -> list[str]:
        return python_module("controller.agent", *self.args())

    def check_ready(self) -> bool:
        try:
            with self.admin(timeout=1.0) as c:
                c.state()
            return True
        except AdminError:
            return False

    def admin(self, timeout: float = 3.0) -> AdminClient:
        return AdminClient(self.admin_addr, timeout=timeout)


class AgentHostApp(App):
    """One process running the agents of several switches (controller.agent.host)."""
    kind = "agent host"

    def __init__(self, name: str, specs: dict[str, list[str]], log_dir):
        log_dir = Path(log_dir)
        super().__init__(name, log_dir / f"{name}.stdout")
        self.specs = specs
        self.spec_file = log_dir / f"{name}.json"
        self.host_log = log_dir / f"{name}.log"

    def command(self) -> list[str]:
        return python_module("controller.agent.host", "--spec", str(self.spec_file),
                             "--log-file", str(self.host_log))

    def start(self) -> "AgentHostApp":
        self.spec_file.parent.mkdir(parents=True, exist_ok=True)
        self.spec_file.write_text(json.dumps({"agents": self.specs}, indent=1))
        return super().start()

    def popen(self, cmd, **kw):
        kw["stdin"] = subprocess.PIPE          # commands: one JSON object a line
        return subprocess.Popen(cmd, **kw)

    def send(self, op: str, name: str, argv=None) -> None:
        if not self.alive():
            raise AppError(f"{self.name} (agents {', '.join(self.specs)}) is not running; "
                           f"see {self.log_path}" + self._tail())
        c = {"op": op, "name": name}
        if argv is not None:
            c["argv"] = argv
        try:
            self.proc.stdin.write((json.dumps(c) + "\n").encode())
            self.proc.stdin.flush()
        except OSError as exc:
            raise AppError(f"{self.name}: command not delivered ({exc})") from None


class HostedAgent:
    """One switch's agent inside an :class:`AgentHostApp`, with AgentApp's
    interface: stopping or killing it ends that switch's control plane only
    (its P4Runtime session and admin service close; the host runs on)."""
    kind = "agent"
    start_timeout_s = 20.0

    def __init__(self, host: AgentHostApp, name: str, admin_addr: str, policy_addr: str,
                 argv: list[str]):
        self.host, self.name, self.argv = host, name, argv
        self.admin_addr, self.policy_addr = admin_addr, policy_addr
        self.proc = None            # stop_all() leaves it to its host
        self.agent_log = Path(host.spec_file).parent / f"{name}.log"

    @property
    def pid(self) -> int | None:
        return self.host.pid

    def start(self) -> "HostedAgent":
        self.host.send("start", self.name, self.argv)
        return self

    def _wait_closed(self, grace_s: float) -> None:
        deadline = time.monotonic() + grace_s
        while self.host.alive() and addr_open(self.admin_addr):
            if time.monotonic() > deadline:
                raise AppError(f"agent {self.name} still serving {grace_s:.0f} s after "
                               f"being told to stop; see {self.host.host_log}")
            time.sleep(0.02)

    def stop(self, grace_s: float = 5.0) -> None:
        if self.host.alive():
            self.host.send("stop", self.name)
            self._wait_closed(grace_s)

    def kill(self) -> None:
        if self.host.alive():
            self.host.send("kill", self.name)
            self._wait_closed(5.0)

    def alive(self) -> bool:
        return self.host.alive() and addr_open(self.admin_addr)

    def check_ready(self) -> bool:
        try:
            with self.admin(timeout=1.0) as c:
                c.state()
            return True
        except AdminError:
            return False

    def ready(self, deadline: float | None = None, poll_s: float = 0.05) -> None:
        if deadline is None:
            deadline = time.monotonic() + self.start_timeout_s
        while True:
            if not self.host.alive():
                raise AppError(f"agent {self.name}: its process {self.host.name} exited "
                               f"({self.host.proc.returncode}); see {self.host.host_log}"
                               + self.host._tail())
            if self.check_ready():
                return
            if time.monotonic() > deadline:
                raise AppError(f"agent {self.name} (in {self.host.name}) not ready before "
                               f"the deadline; see {self.agent_log} and {self.host.host_log}")
            time.sleep(poll_s)

    def admin(self, timeout: float = 3.0) -> AdminClient:
        return AdminClient(self.admin_addr, timeout=timeout)
