"""Running simple_switch_grpc: a process class, and the Mininet switch around it.

:class:`Bmv2Process` starts one BMv2 with a device id, ``-i port@iface`` for
each port, a gRPC server on 127.0.0.1 at a port of its own, the CPU port (255)
for packet-in/out, a log file and optional pcaps, and no P4 program
(``--no-p4``: the pipeline is pushed over P4Runtime). It never sleeps to wait:
:meth:`Bmv2Process.wait_ready` polls the gRPC port with a deadline and fails
with the switch's own output if the process died. It stops only the process
it started, by PID, and the switch dies with its parent (PR_SET_PDEATHSIG) so
a crashed test leaves no orphan.

:class:`BMv2Switch` is the Mininet switch class (root namespace): ``start``
launches, Mininet's ``batchStartup`` hook waits for all switches at once.

Builds of BMv2 with Thrift open a Thrift server on every switch; when the
binary has ``--thrift-port`` each switch gets a free port of its own so that
several can run (that server still binds every interface: prefer builds
without Thrift).
"""
from __future__ import annotations

import functools
import shutil
import socket
import subprocess
import time
from pathlib import Path

BMV2_BINARY = "simple_switch_grpc"
CPU_PORT = 255
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0


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


@functools.lru_cache(maxsize=None)
def has_thrift(binary: str = BMV2_BINARY) -> bool:
    try:
        out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--thrift-port" in out.stdout + out.stderr


def die_with_parent(cmd: list[str]) -> list[str]:
    """``cmd`` run so that it gets SIGTERM when the process that started it
    dies (PR_SET_PDEATHSIG through util-linux's setpriv, not a preexec_fn:
    Python code between fork and exec aborts in a process with gRPC threads)."""
    return ["setpriv", "--pdeathsig", "TERM", "--", *cmd] if shutil.which("setpriv") else cmd


class Bmv2Process:
    def __init__(self, name: str, device_id: int, ports: dict[int, str], *,
                 log_dir, log_level: str | None = "warn", pcap_dir=None,
                 grpc_port: int | None = None, binary: str = BMV2_BINARY):
        self.name = name
        self.device_id = device_id
        self.ports = dict(ports)
        self.log_dir = Path(log_dir)
        self.log_level = log_level
        self.pcap_dir = pcap_dir
        self.grpc_port = grpc_port or free_port()
        self.binary = binary
        self.proc: subprocess.Popen | None = None

    @property
    def grpc_addr(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log.txt"    # BMv2 appends .txt

    def command(self) -> list[str]:
        cmd = [self.binary, "--device-id", str(self.device_id)]
        for port, iface in sorted(self.ports.items()):
            cmd += ["-i", f"{port}@{iface}"]
        if self.log_level:
            cmd += ["--log-file", str(self.log_dir / f"{self.name}.log"),
                    "--log-level", self.log_level,
                    "--log-flush"]
        if self.pcap_dir:
            cmd += ["--pcap", str(self.pcap_dir)]
        if has_thrift(self.binary):
            cmd += ["--thrift-port", str(free_port())]
        cmd += ["--no-p4", "--",
                "--grpc-server-addr", self.grpc_addr, "--cpu-port", str(CPU_PORT)]
        return cmd

    def start(self) -> "Bmv2Process":
        if shutil.which(self.binary) is None:
            raise SwitchStartError(f"{self.binary} is not on PATH (install BMv2)")
        if port_open(self.grpc_port):
            raise SwitchStartError(f"{self.name}: port {self.grpc_port} is already in use")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{self.name}.stdout", "wb") as out:
            self.proc = subprocess.Popen(die_with_parent(self.command()), stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    def wait_ready(self, deadline: float | None = None) -> None:
        deadline = deadline or time.monotonic() + START_TIMEOUT_S
        while not port_open(self.grpc_port):
            if self.proc is None or self.proc.poll() is not None:
                raise SwitchStartError(f"{self.name}: {self.binary} exited "
                                       f"({self.proc and self.proc.returncode}); "
                                       f"last output:\n{self.output_tail()}")
            if time.monotonic() > deadline:
                raise SwitchStartError(f"{self.name}: gRPC port {self.grpc_port} not open "
                                       f"before the deadline")
            time.sleep(0.02)   # poll interval, not a guessed duration

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

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def kill(self) -> None:
        """Hard-kill (failure tests)."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT_S)

    def stop(self) -> None:
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

    def __enter__(self):
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()


try:
    from mininet.node import Switch
except ImportError:          # the one-switch tier and benchmarks need no Mininet
    Switch = object


class BMv2Switch(Switch):
    """Mininet switch class for simple_switch_grpc (root namespace)."""

    def __init__(self, name, device_id: int, log_dir: str = "/tmp",
                 log_level: str | None = "warn", pcap_dir=None, **kwargs):
        super().__init__(name, dpid=f"{device_id + 1:x}", **kwargs)
        self.device_id = device_id
        self.bmv2 = Bmv2Process(name, device_id, {}, log_dir=log_dir,
                                log_level=log_level, pcap_dir=pcap_dir)

    @property
    def grpc_addr(self) -> str:
        return self.bmv2.grpc_addr

    def start(self, controllers):
        self.bmv2.ports = {port: intf.name for port, intf in self.intfs.items()
                           if intf.name != "lo"}
        self.bmv2.start()

    @classmethod
    def batchStartup(cls, switches):   # noqa: N802 (Mininet's hook name)
        deadline = time.monotonic() + START_TIMEOUT_S
        for sw in switches:
            sw.bmv2.wait_ready(deadline)
        return switches

    def alive(self) -> bool:
        return self.bmv2.alive()

    def kill(self) -> None:
        self.bmv2.kill()

    def stop_process(self) -> None:
        self.bmv2.stop()

    def stop(self, deleteIntfs=True):   # noqa: N803 (Mininet's signature)
        self.bmv2.stop()
        super().stop(deleteIntfs)
