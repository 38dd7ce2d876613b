"""CentralApp: the central controller (``python -m controller.central``), the
centralized baseline mode's one control process (docs/central.md).

Given the topology file (each switch's own ports, roles and MACs), the
switches it manages (their P4Runtime addresses and device ids, in
``switches.json``), the domain key and the SPA addresses. Ready when its admin
service answers and it holds a P4Runtime session with every switch (so that
the pods' first announcements find a switch with a pipeline to punt them).
"""
from __future__ import annotations

import json
from pathlib import Path

from controller.central.admin_client import CentralClient, CentralError
from topologies.emu.apps.app_base import App, python_module
from topologies.emu.child_processes import free_port


class CentralApp(App):
    kind = "central"
    start_timeout_s = 30.0

    def __init__(self, name: str, *, topo_file: str, switches: dict[str, tuple[str, int]],
                 key_file, log_dir, hello_ms: int, dead_ms: int, spa_addrs=(),
                 lease_s: float = 6.0, admin_addr: str | None = None, extra_args=()):
        log_dir = Path(log_dir)
        super().__init__(name, log_dir / f"{name}.stdout")
        self.central_log = log_dir / f"{name}.log"
        self.switches_file = log_dir / "switches.json"
        self.topo_file = topo_file
        self.switches = dict(switches)
        self.key_file = key_file
        self.hello_ms, self.dead_ms = hello_ms, dead_ms
        self.spa_addrs = list(spa_addrs)
        self.lease_s = lease_s
        self.admin_addr = admin_addr or f"127.0.0.1:{free_port()}"
        self.extra_args = list(extra_args)

    def command(self) -> list[str]:
        self.switches_file.parent.mkdir(parents=True, exist_ok=True)
        self.switches_file.write_text(json.dumps(
            {n: {"grpc_addr": a, "device_id": d} for n, (a, d) in sorted(self.switches.items())},
            indent=2))
        args = ["--topo", str(self.topo_file), "--switches", str(self.switches_file),
                "--admin-addr", self.admin_addr, "--key-file", str(self.key_file),
                "--hello-ms", str(self.hello_ms), "--dead-ms", str(self.dead_ms),
                "--lease-s", str(self.lease_s), "--log-file", str(self.central_log)]
        for spa in self.spa_addrs:
            args += ["--spa", spa]
        return python_module("controller.central", *args, *self.extra_args)

    def check_ready(self) -> bool:
        try:
            with self.client(timeout=1.0) as c:
                return not c.state().disconnected
        except CentralError:
            return False

    def client(self, timeout: float = 3.0) -> CentralClient:
        return CentralClient(self.admin_addr, timeout=timeout)
