"""BMv2Switch: a Mininet switch that runs ``simple_switch_grpc``.

Each switch gets its own device id, a gRPC server on 127.0.0.1 and a port of
its own, the CPU port (255) for packet-in/out, a log file and optionally one
pcap per interface. It starts with no P4 program (``--no-p4``): the pipeline is
pushed over P4Runtime by whoever programs the switch. Startup never sleeps:
``start`` launches the process and ``batchStartup`` (called by Mininet once all
switches are launched) polls every gRPC port with a deadline, failing with the
switch's own log tail if a process died. ``stop`` ends the process it started,
by PID, and only that.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from mininet.node import Switch

BMV2_BINARY = "simple_switch_grpc"
CPU_PORT = 255
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
_PR_SET_PDEATHSIG = 1


class SwitchStartError(RuntimeError):
    pass


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def _die_with_parent():
    # If the Python process that started the switch dies, so does the switch:
    # no orphaned BMv2 after a crashed test.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class BMv2Switch(Switch):
    """Mininet switch class for simple_switch_grpc (root namespace)."""

    def __init__(self, name, device_id: int, grpc_port: int | None = None,
                 log_dir: str = "/tmp", log_level: str | None = "warn",
                 pcap_dir: str | None = None, binary: str = BMV2_BINARY, **kwargs):
        super().__init__(name, dpid=f"{device_id + 1:x}", **kwargs)
        self.device_id = device_id
        self.grpc_port = grpc_port or free_port()
        self.log_dir = Path(log_dir)
        self.log_level = log_level
        self.pcap_dir = pcap_dir
        self.binary = binary
        self.proc: subprocess.Popen | None = None

    @property
    def grpc_addr(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def command(self) -> list[str]:
        cmd = [self.binary, "--device-id", str(self.device_id)]
        for port, intf in sorted(self.intfs.items()):
            if intf.name != "lo":
                cmd += ["-i", f"{port}@{intf.name}"]
        if self.log_level:
            cmd += ["--log-file", str(self.log_path), "--log-level", self.log_level,
                    "--log-flush"]
        if self.pcap_dir:
            cmd += ["--pcap", str(self.pcap_dir)]
        cmd += ["--no-p4", "--",
                "--grpc-server-addr", self.grpc_addr, "--cpu-port", str(CPU_PORT)]
        return cmd

    def start(self, controllers):
        if shutil.which(self.binary) is None:
            raise SwitchStartError(f"{self.binary} is not on PATH (install BMv2)")
        if port_open(self.grpc_port):
            raise SwitchStartError(f"{self.name}: port {self.grpc_port} is already in use")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_dir / f"{self.name}.stdout", "wb")
        self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        out.close()

    def wait_ready(self, deadline: float) -> None:
        while not port_open(self.grpc_port):
            if self.proc is None or self.proc.poll() is not None:
                raise SwitchStartError(f"{self.name}: {self.binary} exited "
                                       f"({self.proc and self.proc.returncode}); "
                                       f"last output:\n{self.output_tail()}")
            if time.monotonic() > deadline:
                raise SwitchStartError(f"{self.name}: gRPC port {self.grpc_port} not "
                                       f"open after {START_TIMEOUT_S}s")
            time.sleep(0.02)   # poll interval, not a wait for a guessed duration

    @classmethod
    def batchStartup(cls, switches):   # noqa: N802 (Mininet's hook name)
        deadline = time.monotonic() + START_TIMEOUT_S
        for sw in switches:
            sw.wait_ready(deadline)
        return switches

    def output_tail(self, lines: int = 15) -> str:
        texts = []
        for p in (self.log_dir / f"{self.name}.stdout", self.log_path):
            try:
                texts += p.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                pass
        return "\n".join(texts)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """Hard-kill the switch process (failure tests); interfaces stay."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT_S)

    def stop_process(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT_S)
        self.proc = None

    def stop(self, deleteIntfs=True):   # noqa: N803 (Mininet's signature)
        self.stop_process()
        super().stop(deleteIntfs)
