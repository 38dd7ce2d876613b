"""The service-mesh baseline on a running DmscNet (`mode="mesh"`, docs/mesh.md).

The same Mininet topology, links and BMv2 switches; instead of DMSC's agents:
* the IPv4 fabric: every switch gets p4src/mesh/ipv4.p4 and the SPF routes of
  controller/mesh/ipv4_routes.py over P4Runtime, written from here (a static
  IGP: :meth:`MeshMode.program_fabric` again, with a cut link left out,
  re-routes);
* each pod's namespace gets its one IPv4 address, a route to 10.0.0.0/8
  through its SG's gateway address and a permanent neighbour entry for it
  (the SG port's MAC): no ARP anywhere; the root namespace gets nothing;
* the mesh control plane (MeshControlApp), the SPA it asks (DmscNet's);
* in each pod: its app over HTTP (HttpPodApp) and its sidecar (SidecarApp:
  HAProxy + the agent that registers the pod's instances and applies pushes).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

from controller.mesh import haproxy
from controller.mesh.ipv4_routes import (Ipv4Routes, gateway_address, gateway_mac,
                                         pod_address, reference_routes)
from controller.switch.artifacts import MESH_JSON, MESH_P4INFO
from topologies.emu.apps.app_base import AppError
from topologies.emu.apps.mesh_apps import HttpPodApp, MeshControlApp, SidecarApp
from topologies.emu.child_processes import REPO_ROOT, die_with_parent, py_env
from topologies.expected import served_prefixes


class MeshError(RuntimeError):
    pass


class MeshMode:
    def __init__(self, net, *, delta: bool = False, server_timeout_ms: int | None = None,
                 extra_names=()):
        self.net = net
        self.topo = net.topo
        self.delta = delta
        self.server_timeout_ms = server_timeout_ms
        self.conns: dict = {}
        self.control: MeshControlApp | None = None
        self.apps: dict[str, HttpPodApp] = {}
        self.sidecars: dict[str, SidecarApp] = {}
        self.pod_dir = net.run_dir / "pods"
        # every name a sidecar's HAProxy gets a backend for (2.6 cannot add one at
        # run time): the topology's, and ``extra_names`` (instances a run will add)
        self.known = sorted({*served_prefixes(self.topo),
                             *(c for n in extra_names for c in haproxy.clusters_of(n))})

    # -- the fabric ------------------------------------------------------------
    def program_fabric(self, down_links=()) -> dict[str, dict]:
        """The IPv4 program on every switch (first time) and the SPF routes
        without the ``down_links``; {switch: counts written}."""
        core = self.topo.core_graph()
        for a, b in down_links:
            if core.has_edge(a, b):
                core.remove_edge(a, b)
        routes = reference_routes(self.topo, core)
        out = {}
        for sw in self.topo.switches():
            conn = self.conns.get(sw)
            if conn is None:
                conn = self.conns[sw] = self.net.p4rt(sw)
                conn.set_pipeline(str(MESH_P4INFO), str(MESH_JSON))
                macs = {self.topo.port(sw, nb): self.topo.mac(sw, self.topo.port(sw, nb))
                        for nb in self.topo.graph.neighbors(sw)}
                conn.write(Ipv4Routes(conn).port_macs(macs))
            out[sw] = Ipv4Routes(conn).sync(routes.get(sw, {}))
        return out

    def configure_pod(self, pod: str) -> None:
        """The pod's address, its route and its gateway's MAC, in its namespace only."""
        t = self.topo
        intf = t.intf_name(pod, 0)
        # checksum offload off: a veth leaves TCP checksums to "the hardware", and
        # BMv2 (a packet socket) forwards them unfilled: the far pod drops them
        cmds = [f"ip link set lo up",
                f"ethtool -K {intf} tx off rx off",
                f"ip addr replace {pod_address(t, pod)}/32 dev {intf}",
                f"ip route replace {gateway_address(t, pod)} dev {intf} scope link",
                f"ip route replace 10.0.0.0/8 via {gateway_address(t, pod)} dev {intf}",
                f"ip neigh replace {gateway_address(t, pod)} lladdr {gateway_mac(t, pod)} "
                f"dev {intf} nud permanent"]
        host = self.net.host(pod)
        for c in cmds:
            out = host.cmd(c + " 2>&1; echo rc=$?").strip()
            if not out.endswith("rc=0"):
                raise MeshError(f"{pod}: {c}: {out}")

    # -- the control plane -----------------------------------------------------------
    def start_control_plane(self, wait: bool = True) -> MeshControlApp:
        if self.control is None:
            pods = self.topo.pods()
            self.control = MeshControlApp("mesh-control", addr=self.net.sock("mesh"),
                                          spa_addrs=[s.addr for s in self.net.spas],
                                          pod_ports={p: i for i, p in enumerate(pods, 1)},
                                          log_dir=self.net.run_dir / "mesh")
        else:
            self.net._forget(self.control)
        self.net._started(self.control.start())
        if wait:
            try:
                self.control.ready()
            except AppError as exc:
                raise MeshError(str(exc)) from None
        return self.control

    def stop_control_plane(self, kill: bool = False) -> None:
        if self.control is not None:
            self.control.kill() if kill else self.control.stop()

    def stats(self):
        return self.control.stats()

    # -- pods --------------------------------------------------------------------------
    def start_pod(self, pod: str, wait: bool = True) -> None:
        net, t = self.net, self.topo
        if pod not in net.key_files:
            net.prepare_identities()
        self.pod_dir.mkdir(parents=True, exist_ok=True)
        control = self.pod_dir / f"{pod}.control.json"
        if not control.exists():
            control.write_text("{}")
        self.configure_pod(pod)
        for old in (self.apps.get(pod), self.sidecars.get(pod)):
            if old is not None:
                net._forget(old)
        app = HttpPodApp(pod, net.host(pod), instances=t.instances(pod), control_file=control,
                         log_dir=self.pod_dir)
        sc = SidecarApp(pod, net.host(pod), address=str(pod_address(t, pod)),
                        instances=t.instances(pod), known=self.known,
                        control=self.control.addr if self.control else net.sock("mesh"),
                        key_file=net.key_files[pod], control_file=control,
                        run_dir=self.pod_dir, delta=self.delta,
                        server_timeout_ms=self.server_timeout_ms,
                        # the runtime socket in the network's socket directory: a
                        # run directory can be too deep for a Unix socket's path
                        stats_socket=net.sock(f"{pod}.haproxy").removeprefix("unix:"))
        self.apps[pod], self.sidecars[pod] = app, sc
        net._started(app.start())
        net._started(sc.start())
        if wait:
            try:
                sc.ready()
            except AppError as exc:
                raise MeshError(str(exc)) from None

    def kill_app(self, pod: str) -> None:
        """The pod's app SIGKILLed: its instances die, its sidecar stays (as a
        crashed container beside a live Envoy)."""
        self.apps[pod].kill()

    def start_app(self, pod: str, wait: bool = True) -> None:
        """The pod's app started again beside its running sidecar (a crashed
        container restarted); the whole pod if its sidecar is gone too."""
        sc = self.sidecars.get(pod)
        if sc is None or not sc.alive():
            self.start_pod(pod, wait=wait)
            return
        app = self.apps[pod]
        self.net._forget(app)
        self.net._started(app.start())
        if wait:
            self.wait_app(pod)

    def wait_app(self, pod: str, timeout: float = 10.0) -> None:
        """Poll until the pod's app listens (in its namespace)."""
        deadline = time.monotonic() + timeout
        cmd = f"ss -Hltn 'sport = :{haproxy.APP_PORT}'"
        while not self.net.host(pod).cmd(cmd).strip():
            if not self.apps[pod].alive():
                raise MeshError(f"{pod}'s app exited; see {self.apps[pod].log_path}")
            if time.monotonic() > deadline:
                raise MeshError(f"{pod}'s app does not answer after {timeout}s")
            time.sleep(0.05)

    def stop_pod(self, pod: str) -> None:
        """The pod leaves: its sidecar withdraws its instances (signed, SPA
        checked: the control plane pushes their removal, as Kubernetes removes
        a terminating pod's endpoints) and stops with its HAProxy; its app stops."""
        for app in (self.sidecars.get(pod), self.apps.get(pod)):
            if app is not None:
                app.stop()

    def alive(self, pod: str) -> bool:
        """The pod's app runs (its sidecar may run without it)."""
        app = self.apps.get(pod)
        return app is not None and app.alive()

    def sidecar_status(self, pod: str) -> dict:
        return self.sidecars[pod].status()

    def wait_endpoints(self, want: dict[str, set[str]], pods=None, timeout: float = 20.0) -> float:
        """Poll until every sidecar of ``pods`` (default: all) holds at least
        ``want`` ({name: instances}); the seconds it took."""
        pods = list(pods or self.sidecars)
        t0 = time.monotonic()
        while True:
            missing = {}
            for p in pods:
                eps = self.sidecar_status(p).get("endpoints", {})
                lack = {n: sorted(set(i) - set(eps.get(n, []))) for n, i in want.items()
                        if set(i) - set(eps.get(n, []))}
                if lack:
                    missing[p] = lack
            if not missing:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise MeshError(f"endpoints not pushed after {timeout}s: {missing}")
            time.sleep(0.05)

    def all_endpoints(self) -> dict[str, set[str]]:
        """{name: instances} the topology's pods serve."""
        out: dict[str, set[str]] = {}
        for pod in self.topo.pods():
            for inst in self.topo.instances(pod):
                for c in haproxy.clusters_of(inst):
                    out.setdefault(c, set()).add(inst)
        return out

    def call(self, pod: str, src: str, dst: str, method: str = "echo", args=None,
             deadline_s: float = 10.0, timeout: float = 1.0, extra=(),
             run_timeout: float | None = None) -> dict:
        """One call by name through the pod's sidecar (traffic.http_client), retried
        until it succeeds or ``deadline_s`` passes. The client's JSON."""
        deadline = time.monotonic() + deadline_s
        while True:
            res = self.run_in(pod, ["-m", "traffic.http_client", "--src", src, "--timeout",
                                    str(timeout), *extra, dst, method,
                                    json.dumps({} if args is None else args)],
                              run_timeout or timeout + 30)
            out = json.loads(res.stdout.strip().splitlines()[-1] if res.stdout.strip()
                             else json.dumps({"error": res.stderr[-300:]}))
            if "error" not in out or time.monotonic() > deadline or extra:
                return out
            time.sleep(0.1)

    def run_in(self, pod: str, args, timeout: float = 30.0) -> subprocess.CompletedProcess:
        proc = self.net.host(pod).popen(die_with_parent([sys.executable, *args]),
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        cwd=str(REPO_ROOT), env=py_env())
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        return subprocess.CompletedProcess(args, proc.returncode, out.decode(), err.decode())

    def load(self, pod: str, src: str, dst: str, *, count: int, interval: float,
             timeout: float = 2.0, records=None) -> dict:
        """A bounded load loop from the pod through its sidecar (rmi_client.load's summary)."""
        extra = ["--count", str(count), "--interval", str(interval),
                 "--max-s", str(count * interval * 4 + 30)]
        if records:
            extra += ["--records", str(records)]
        return self.call(pod, src, dst, "echo", {}, timeout=timeout, extra=extra,
                         run_timeout=count * interval * 4 + 60)

    def close(self) -> None:
        for c in self.conns.values():
            try:
                c.close()
            except Exception:      # the switch may be gone already
                pass
        self.conns = {}
