"""SpaApp: the SPA process (``python -m controller.spa``) on 127.0.0.1.

Ready when its gRPC service answers a Show. :func:`registry_for` writes the
registry a topology implies when its file names none, RFC 9319 style (exactly
what is announced, no max depth): each instance name to the key of the pod that
serves it, each prefix above an instance (``/B`` for ``/B/4``) to the keys of
every pod serving an instance under it.
"""
from __future__ import annotations

from pathlib import Path

from controller.spa.spa_client import SpaClient, SpaUnavailable
from controller.spa.prefix_registry import Registry
from topologies.emu.apps.app_base import App, python_module
from topologies.emu.child_processes import free_port
from topologies.expected import served_prefixes


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


def registry_for(topo, public_keys: dict[str, bytes]) -> Registry:
    """{pod: raw public key} -> the registry the topology implies."""
    reg = Registry("generated from " + str(topo.source))
    for pod in topo.pods():
        reg.add_key(pod, public_keys[pod])
    for prefix, pods in sorted(served_prefixes(topo).items()):
        reg.authorize(prefix, None, sorted(pods))
    return reg
