"""AgentApp: one SG/SR agent process (``python -m controller.agent``).

Ready when its admin service (gRPC on 127.0.0.1) answers a GetState.
:func:`agent_timers` picks the hello and dead intervals for a network's size.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from controller.agent.admin import AdminClient, AdminError
from controller.routing.router import Config
from topologies.emu.apps.base import App, python_module
from topologies.emu.process import free_port

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


class AgentApp(App):
    kind = "agent"

    def __init__(self, name: str, *, topo_file: str, grpc_addr: str, device_id: int,
                 key_file, log_dir, hello_ms: int, dead_ms: int,
                 admin_addr: str | None = None, extra_args=()):
        log_dir = Path(log_dir)
        super().__init__(name, log_dir / f"{name}.stdout")
        self.agent_log = log_dir / f"{name}.log"
        self.topo_file = topo_file
        self.grpc_addr = grpc_addr
        self.device_id = device_id
        self.key_file = key_file
        self.hello_ms, self.dead_ms = hello_ms, dead_ms
        self.admin_addr = admin_addr or f"127.0.0.1:{free_port()}"
        self.extra_args = list(extra_args)

    def command(self) -> list[str]:
        return python_module(
            "controller.agent", "--topo", str(self.topo_file), "--switch", self.name,
            "--grpc-addr", self.grpc_addr, "--device-id", str(self.device_id),
            "--admin-addr", self.admin_addr, "--key-file", str(self.key_file),
            "--log-file", str(self.agent_log),
            "--hello-ms", str(self.hello_ms), "--dead-ms", str(self.dead_ms), *self.extra_args)

    def check_ready(self) -> bool:
        try:
            with self.admin(timeout=1.0) as c:
                c.state()
            return True
        except AdminError:
            return False

    def admin(self, timeout: float = 3.0) -> AdminClient:
        return AdminClient(self.admin_addr, timeout=timeout)
