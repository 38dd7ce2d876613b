"""SpaApp: the SPA process (``python -m controller.spa``) on 127.0.0.1.

Ready when its gRPC service answers a Show. The registry file it reads is
made by topologies/emu/spa_registry.py.
"""
from __future__ import annotations

from pathlib import Path

from controller.spa.spa_client import SpaClient, SpaUnavailable
from topologies.emu.apps.app_base import App, python_module
from topologies.emu.child_processes import free_port


class SpaApp(App):
    kind = "spa"

    def __init__(self, name: str, *, registry_file, log_dir, addr: str | None = None,
                 window_s: float = 30.0):
        log_dir = Path(log_dir)
        super().__init__(name, log_dir / f"{name}.stdout")
        self.spa_log = log_dir / f"{name}.log"
        self.registry_file = Path(registry_file)
        self.addr = addr or f"127.0.0.1:{free_port()}"
        self.window_s = window_s

    def command(self) -> list[str]:
        return python_module("controller.spa", "--registry", str(self.registry_file),
                             "--addr", self.addr, "--window-s", str(self.window_s),
                             "--log-file", str(self.spa_log))

    def check_ready(self) -> bool:
        try:
            with SpaClient([self.addr], timeout=1.0) as c:
                c.show()
            return True
        except SpaUnavailable:
            return False

    def client(self) -> SpaClient:
        return SpaClient([self.addr])

