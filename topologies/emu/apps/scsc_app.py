"""ScscApp: the SCSC process (``python -m controller.scsc``) on 127.0.0.1.

Given every agent's policy channel (LSDB in, policies out:
controller/policy_channel.py) and the domain key.
Ready when its gRPC service answers a View.
"""
from __future__ import annotations

from pathlib import Path

import grpc

from controller.proto import scsc_pb2 as pb
from controller.proto import scsc_pb2_grpc as pb_grpc
from topologies.emu.apps.app_base import App, python_module
from topologies.emu.child_processes import free_port


class ScscApp(App):
    kind = "scsc"

    def __init__(self, name: str, *, key_file, agents: dict[str, str], log_dir,
                 addr: str | None = None, extra_args=()):
        log_dir = Path(log_dir)
        super().__init__(name, log_dir / f"{name}.stdout")
        self.scsc_log = log_dir / f"{name}.log"
        self.key_file, self.agents = key_file, dict(agents)
        self.addr = addr or f"127.0.0.1:{free_port()}"
        self.extra_args = list(extra_args)

    def command(self) -> list[str]:
        args = ["--addr", self.addr, "--key-file", str(self.key_file),
                "--log-file", str(self.scsc_log)]
        for name, addr in sorted(self.agents.items()):
            args += ["--agent", f"{name}={addr}"]
        return python_module("controller.scsc", *args, *self.extra_args)

    def view(self, timeout: float = 2.0) -> pb.ScscView:
        with grpc.insecure_channel(self.addr) as ch:
            return pb_grpc.ScscStub(ch).View(pb.Empty(), timeout=timeout)

    def check_ready(self) -> bool:
        try:
            self.view(timeout=1.0)
            return True
        except grpc.RpcError:
            return False
