"""The service-mesh baseline's processes (`--mode mesh`, docs/mesh.md).

* MeshControlApp: the mesh control plane (``python -m controller.mesh.control_plane``),
  gRPC on a Unix socket; ready when its Stats answers.
* HttpPodApp: the pod's app over HTTP (``python -m traffic.http_pod``) on
  127.0.0.1 in the pod's namespace.
* SidecarApp: the pod's sidecar agent and its HAProxy
  (``python -m controller.mesh.sidecar``) in the pod's namespace; ready when
  its status file says HAProxy is up.
"""
from __future__ import annotations

import json
from pathlib import Path

import grpc

from controller.mesh import haproxy
from controller.proto import mesh_pb2 as pb
from controller.proto import mesh_pb2_grpc as pb_grpc
from topologies.emu.apps.app_base import App, python_module


class MeshControlApp(App):
    kind = "mesh-control"

    def __init__(self, name: str, *, addr: str, spa_addrs, pod_ports: dict[str, int], log_dir):
        super().__init__(name, Path(log_dir) / f"{name}.log")
        self.addr, self.spa_addrs, self.pod_ports = addr, list(spa_addrs), dict(pod_ports)

    def command(self) -> list[str]:
        args = ["--listen", self.addr]
        for spa in self.spa_addrs:
            args += ["--spa", spa]
        for pod, port in sorted(self.pod_ports.items()):
            args += ["--pod-port", f"{pod}={port}"]
        args += ["--state-file", str(self.log_path.parent / "endpoints.json")]
        return python_module("controller.mesh.control_plane", *args)

    def stats(self, timeout: float = 2.0) -> pb.StatsReply:
        with grpc.insecure_channel(self.addr) as ch:
            return pb_grpc.MeshControlStub(ch).Stats(pb.StatsRequest(), timeout=timeout)

    def check_ready(self) -> bool:
        try:
            self.stats(timeout=0.5)
            return True
        except grpc.RpcError:
            return False


class _InPod(App):
    def popen(self, cmd, **kw):
        kw.pop("stdin", None)             # Mininet's popen sets its own
        return self.host.popen(cmd, **kw)


class HttpPodApp(_InPod):
    kind = "http-pod"
    start_timeout_s = 10.0

    def __init__(self, name: str, host, *, instances, control_file, log_dir):
        super().__init__(name, Path(log_dir) / f"{name}.http.log")
        self.host, self.instances, self.control_file = host, list(instances), control_file

    def command(self) -> list[str]:
        args = ["--listen", f"127.0.0.1:{haproxy.APP_PORT}", "--control-file",
                str(self.control_file),
                "--timing-file", str(self.log_path.parent / f"{self.name}.timing.json")]
        for inst in self.instances:
            args += ["--instance", inst]
        return python_module("traffic.http_pod", *args)


class SidecarApp(_InPod):
    kind = "sidecar"
    start_timeout_s = 15.0

    def __init__(self, name: str, host, *, address: str, instances, known, control: str,
                 key_file, control_file, run_dir, delta: bool = False,
                 server_timeout_ms: int | None = None, stats_socket=None):
        run_dir = Path(run_dir)
        super().__init__(name, run_dir / f"{name}.sidecar.log")
        self.host, self.address = host, address
        self.instances, self.known = list(instances), sorted(known)
        self.control, self.key_file, self.control_file = control, key_file, control_file
        self.run_dir, self.delta = run_dir, delta
        self.server_timeout_ms = server_timeout_ms
        self.status_file = run_dir / f"{name}.sidecar.json"
        self.stats_socket = Path(stats_socket) if stats_socket else \
            run_dir / f"{name}.haproxy.sock"         # HAProxy's runtime API

    def command(self) -> list[str]:
        self.status_file.unlink(missing_ok=True)
        args = ["--pod", self.name, "--address", self.address, "--control", self.control,
                "--run-dir", str(self.run_dir), "--key", str(self.key_file),
                "--status-file", str(self.status_file), "--control-file", str(self.control_file),
                "--stats-socket", str(self.stats_socket)]
        for inst in self.instances:
            args += ["--instance", inst]
        for n in self.known:
            args += ["--known", n]
        if self.delta:
            args.append("--delta")
        if self.server_timeout_ms:
            args += ["--server-timeout-ms", str(self.server_timeout_ms)]
        return python_module("controller.mesh.sidecar", *args)

    def status(self) -> dict:
        try:
            return json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return {}

    def check_ready(self) -> bool:
        return bool(self.status())

    def haproxy_pid(self) -> int | None:
        """The sidecar's HAProxy (a child of the agent), from its status file."""
        return self.status().get("haproxy_pid")
