"""Running simple_switch_grpc: a process class, and the Mininet switch around it.

:class:`Bmv2Process` starts one BMv2 with a device id, ``-i port@iface`` for
each port, a gRPC server on 127.0.0.1 at a port of its own, the CPU port (255)
for packet-in/out, a log file and optional pcaps, and no P4 program
(``--no-p4``: the pipeline is pushed over P4Runtime). It is an App: it never
sleeps to wait (:meth:`Bmv2Process.ready` polls the gRPC port with a deadline
and fails with the switch's own output if the process died), it stops only the
process it started, by PID, and the switch dies with its parent
(PR_SET_PDEATHSIG) so a crashed test leaves no orphan. Its stdout goes to
``<name>.stdout``, BMv2's own log to ``<name>.log.txt``.

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
import subprocess
import time
from pathlib import Path

from topologies.emu.apps.app_base import App, AppError
from controller.rpc import addr_open
from topologies.emu.child_processes import free_port
from traffic.wire.defs import CPU_PORT

BMV2_BINARY = "simple_switch_grpc"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0


class SwitchStartError(AppError):
    pass


# BMv2 builds: the default one (on PATH, logs available) and the performance one that
# `scripts/toolchain.py --flavour perf` installs under its own prefix.
BUILDS = {"default": BMV2_BINARY, "perf": "/usr/local/bmv2-perf/bin/simple_switch_grpc"}


def bmv2_binary(build: str = "default") -> str:
    """The simple_switch_grpc of a build; SwitchStartError saying how to get it."""
    if build not in BUILDS:
        raise SwitchStartError(f"no BMv2 build {build!r}; one of {', '.join(BUILDS)}")
    binary = BUILDS[build]
    if shutil.which(binary) is None:
        how = ("sudo python3 scripts/toolchain.py --flavour perf" if build == "perf"
               else "sudo make setup")
        raise SwitchStartError(f"the {build} BMv2 build ({binary}) is not installed: run {how}")
    return binary


@functools.lru_cache(maxsize=None)
def has_thrift(binary: str = BMV2_BINARY) -> bool:
    try:
        out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--thrift-port" in out.stdout + out.stderr


class Bmv2Process(App):
    kind = "switch"
    start_timeout_s = START_TIMEOUT_S

    def __init__(self, name: str, device_id: int, ports: dict[int, str], *,
                 log_dir, log_level: str | None = "warn", pcap_dir=None,
                 grpc_addr: str | None = None, binary: str = BMV2_BINARY,
                 cpu_intf: str | None = None):
        super().__init__(name, Path(log_dir) / f"{name}.stdout")
        # the CPU port as an interface (packet I/O by raw socket) instead of
        # --cpu-port (packet I/O over the P4Runtime stream)
        self.cpu_intf = cpu_intf
        self.device_id = device_id
        self.ports = dict(ports)
        self.log_dir = Path(log_dir)
        self.log_level = log_level
        self.pcap_dir = pcap_dir
        # P4Runtime: a Unix socket in a private directory when given (a running
        # network's switches: no other local user can program them), else 127.0.0.1
        self.grpc_addr = grpc_addr or f"127.0.0.1:{free_port()}"
        self.binary = binary

    @property
    def switch_log(self) -> Path:
        return self.log_dir / f"{self.name}.log.txt"    # BMv2 appends .txt

    def command(self) -> list[str]:
        cmd = [self.binary, "--device-id", str(self.device_id)]
        for port, iface in sorted(self.ports.items()):
            cmd += ["-i", f"{port}@{iface}"]
        if self.cpu_intf:
            cmd += ["-i", f"{CPU_PORT}@{self.cpu_intf}"]
        if self.log_level:
            cmd += ["--log-file", str(self.log_dir / f"{self.name}.log"),
                    "--log-level", self.log_level,
                    "--log-flush"]
        if self.pcap_dir:
            cmd += ["--pcap", str(self.pcap_dir)]
        if has_thrift(self.binary):
            cmd += ["--thrift-port", str(free_port())]
        cmd += ["--no-p4", "--", "--grpc-server-addr", self.grpc_addr]
        if not self.cpu_intf:
            cmd += ["--cpu-port", str(CPU_PORT)]
        return cmd

    def start(self) -> "Bmv2Process":
        if shutil.which(self.binary) is None:
            raise SwitchStartError(f"{self.binary} is not on PATH (install BMv2)")
        if addr_open(self.grpc_addr):
            raise SwitchStartError(f"{self.name}: {self.grpc_addr} is already in use")
        super().start()
        return self

    def check_ready(self) -> bool:
        return addr_open(self.grpc_addr)

    def ready(self, deadline: float | None = None, poll_s: float = 0.02) -> None:
        try:
            super().ready(deadline, poll_s)
        except AppError as exc:
            raise SwitchStartError(f"{exc}\n{self.output_tail()}") from None

    def output_tail(self, lines: int = 15) -> str:
        texts = []
        for p in (self.log_path, self.switch_log):
            try:
                texts += p.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                pass
        return "\n".join(texts)

    def stop(self, grace_s: float = STOP_TIMEOUT_S) -> None:
        super().stop(grace_s)
        self.proc = None

    def __enter__(self):
        self.start()
        try:
            self.ready()
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
                 log_level: str | None = "warn", pcap_dir=None, cpu_intf: str | None = None,
                 grpc_addr: str | None = None, binary: str = BMV2_BINARY, **kwargs):
        super().__init__(name, dpid=f"{device_id + 1:x}", **kwargs)
        self.device_id = device_id
        self.bmv2 = Bmv2Process(name, device_id, {}, log_dir=log_dir,
                                log_level=log_level, pcap_dir=pcap_dir, cpu_intf=cpu_intf,
                                grpc_addr=grpc_addr, binary=binary)

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
            sw.bmv2.ready(deadline)
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
