"""PodApp: the pod process (``python -m traffic.pod``) in its host's namespace."""
from __future__ import annotations

from pathlib import Path

from topologies.emu.apps.app_base import App, python_module


class PodApp(App):
    kind = "pod"
    start_timeout_s = 10.0

    def __init__(self, name: str, host, *, iface: str, mac: str, instances,
                 log_dir, extra_args=()):
        super().__init__(name, Path(log_dir) / f"{name}.log")
        self.host = host
        self.iface, self.mac = iface, mac
        self.instances = list(instances)
        self.extra_args = list(extra_args)

    def command(self) -> list[str]:
        args = ["--iface", self.iface, "--mac", self.mac]
        for inst in self.instances:
            args += ["--instance", inst]
        return python_module("traffic.pod", *args, *self.extra_args)

    def popen(self, cmd, **kw):
        kw.pop("stdin", None)             # Mininet's popen sets its own
        return self.host.popen(cmd, **kw)
