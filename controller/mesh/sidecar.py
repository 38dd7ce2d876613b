"""The sidecar agent: one per pod, beside its HAProxy (istio-agent's role).

It writes the pod's haproxy.cfg (controller/mesh/haproxy.py) and runs HAProxy
in the pod's namespace; registers the pod's instances with the mesh control
plane (signed with the pod's key, as a DMSC pod announces them to its SG),
and those added later through the pod's control file (``extra``); subscribes
to the endpoint pushes and applies each one to HAProxy through the runtime
API, without reload (:class:`EndpointTable`). When the control plane is gone
it keeps the endpoints HAProxy has (they keep serving, checked and ejected by
HAProxy alone) and reconnects; the first push after that is whole.

``--status-file`` gets, on every applied push, the version, the endpoints per
backend and the counters (pushes, bytes, runtime commands, CPU), for the
emulation and the tests.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc

from controller.mesh import haproxy
from controller.mesh.control_plane import announcement_pb
from controller.proto import mesh_pb2 as pb
from controller.proto import mesh_pb2_grpc as pb_grpc
from traffic.identity import Identity
from traffic.wire import names

log = logging.getLogger("dmsc.mesh.sidecar")

RECONNECT_S = (0.2, 2.0)


class EndpointTable:
    """What HAProxy should hold, from the pushes, and the runtime commands that
    make it so. ``known``: the names HAProxy has backends for."""

    def __init__(self, runtime: haproxy.Runtime, known, policy: haproxy.Policy = haproxy.Policy()):
        self.runtime = runtime
        self.known = {names.normalize(n) for n in known}
        self.policy = policy
        self.applied: dict[str, dict[str, tuple[str, int]]] = {n: {} for n in self.known}
        self.desired: dict[str, dict[str, tuple[str, int]]] = {n: {} for n in self.known}
        self.version = 0
        self.counters = {"pushes": 0, "push_bytes": 0, "sotw": 0, "delta": 0, "added": 0,
                         "removed": 0, "moved": 0, "unknown_cluster": 0}

    def apply(self, push: pb.Push) -> dict[str, int]:
        """One push in; the servers added, removed and moved in HAProxy."""
        self.counters["pushes"] += 1
        self.counters["push_bytes"] += push.ByteSize()
        self.counters["delta" if push.delta else "sotw"] += 1
        if not push.delta:
            self.desired = {n: {} for n in self.known}
        for inst in push.removed_instances:
            for eps in self.desired.values():
                eps.pop(inst, None)
        for c in push.clusters:
            if c.name not in self.known:
                self.counters["unknown_cluster"] += 1
                log.warning("push %d: no backend for %s (a name unknown at start)",
                            push.version, c.name)
                continue
            self.desired[c.name] = {e.instance: (e.address, e.port) for e in c.endpoints}
        self.version = push.version
        return self.reconcile()

    def reconcile(self) -> dict[str, int]:
        done = {"added": 0, "removed": 0, "moved": 0}
        for name in sorted(self.known):
            be = haproxy.backend_name(name)
            have, want = self.applied[name], self.desired.get(name, {})
            for inst in sorted(set(have) - set(want)):
                self.runtime.del_server(be, haproxy.server_name(inst))
                del have[inst]
                done["removed"] += 1
            for inst, (addr, port) in sorted(want.items()):
                if inst not in have:
                    self.runtime.add_server(be, haproxy.server_name(inst), addr, port, self.policy)
                    done["added"] += 1
                elif have[inst] != (addr, port):
                    self.runtime.set_address(be, haproxy.server_name(inst), addr, port)
                    done["moved"] += 1
                have[inst] = (addr, port)
        for k, v in done.items():
            self.counters[k] += v
        return done

    def endpoints(self) -> dict[str, list[str]]:
        return {n: sorted(eps) for n, eps in sorted(self.applied.items())}


def _proc_cpu_s(pid: int) -> float:
    """utime + stime of a process (HAProxy's), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sidecar:
    def __init__(self, pod: str, address: str, instances, known, *, control: str,
                 run_dir: Path, identity: Identity | None, delta: bool = False,
                 policy: haproxy.Policy = haproxy.Policy(), status_file=None,
                 control_file=None, haproxy_bin: str = "haproxy", stats_socket=None):
        self.pod, self.address = pod, address
        self.instances = [names.normalize(i) for i in instances]
        self.known = sorted({names.normalize(n) for n in known})
        self.control, self.delta, self.policy = control, delta, policy
        self.run_dir = Path(run_dir)
        self.identity = identity
        self.status_file = Path(status_file) if status_file else None
        self.control_file = Path(control_file) if control_file else None
        self.haproxy_bin = haproxy_bin
        # HAProxy's runtime API socket: a Unix socket path has at most 107 bytes,
        # so a deep run directory needs it elsewhere (DmscNet's socket directory)
        self.stats_socket = Path(stats_socket) if stats_socket else \
            self.run_dir / f"{pod}.haproxy.sock"
        self.stop = threading.Event()
        self.proc: subprocess.Popen | None = None
        self.registered: dict[str, bool] = {i: False for i in self.instances}
        self.refused: dict[str, str] = {}        # instance -> the control plane's reason
        self.connected = False
        self.lock = threading.Lock()
        self.table: EndpointTable | None = None

    # -- HAProxy ---------------------------------------------------------------
    def start_proxy(self) -> haproxy.Runtime:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        sock = self.stats_socket
        mapf = self.run_dir / f"{self.pod}.names.map"
        cfg = self.run_dir / f"{self.pod}.haproxy.cfg"
        mapf.write_text(haproxy.map_text(self.known))
        cfg.write_text(haproxy.render(self.known, address=self.address, stats_socket=str(sock),
                                      map_file=str(mapf), policy=self.policy))
        sock.unlink(missing_ok=True)
        log_path = self.run_dir / f"{self.pod}.haproxy.log"
        cmd = [self.haproxy_bin, "-db", "-f", str(cfg)]
        if shutil.which("setpriv"):          # HAProxy ends with its agent, even a killed one
            cmd = ["setpriv", "--pdeathsig", "TERM", "--", *cmd]
        self.proc = subprocess.Popen(cmd,
                                     stdout=open(log_path, "ab"), stderr=subprocess.STDOUT)
        rt = haproxy.Runtime(str(sock))
        try:
            rt.wait_ready()
        except OSError:
            raise RuntimeError(f"haproxy did not start: see {log_path}") from None
        self.table = EndpointTable(rt, self.known, self.policy)
        return rt

    def stop_proxy(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    # -- the control plane -------------------------------------------------------
    def _stub(self):
        return pb_grpc.MeshControlStub(grpc.insecure_channel(self.control))

    def register_pending(self, stub) -> None:
        for inst, done in list(self.registered.items()):
            if done or self.identity is None:
                continue
            a = self.identity.announcement(inst)
            covering = [announcement_pb(self.identity.announcement(c))
                        for c in haproxy.clusters_of(inst) if c != inst]
            try:
                rep = stub.Register(pb.RegisterRequest(
                    pod=self.pod, address=self.address, port=haproxy.INBOUND_PORT,
                    announcement=announcement_pb(a), covering=covering), timeout=2.0)
            except grpc.RpcError as exc:
                log.info("register %s: %s (will retry)", inst, exc.code().name)
                return
            if rep.ok:
                self.registered[inst] = True
                self.refused.pop(inst, None)
                log.info("registered %s (version %d)", inst, rep.version)
            else:
                log.warning("register %s refused: %s %s %s", inst, rep.state, rep.reason, rep.text)
                self.registered[inst] = True       # refused is an answer: not asked again
                self.refused[inst] = rep.reason
                self.write_status()

    def withdraw_all(self, timeout: float = 1.0) -> int:
        """Signed withdrawals of every instance registered (the pod leaves);
        how many the control plane took. Best effort: a control plane that is
        gone keeps the endpoints until their health checks fail."""
        if self.identity is None:
            return 0
        stub, n = self._stub(), 0
        for inst, done in list(self.registered.items()):
            if not done:
                continue
            try:
                rep = stub.Register(pb.RegisterRequest(
                    pod=self.pod, address=self.address, port=haproxy.INBOUND_PORT,
                    announcement=announcement_pb(self.identity.announcement(inst, withdraw=True))),
                    timeout=timeout)
            except grpc.RpcError as exc:
                log.info("withdraw %s: %s", inst, exc.code().name)
                return n
            n += bool(rep.ok)
            log.info("withdrew %s: %s", inst, "ok" if rep.ok else rep.reason)
        return n

    def read_control(self) -> bool:
        """New instances in the pod's control file (``extra``); True if any."""
        try:
            ctl = json.loads(self.control_file.read_text())
            extra = [names.normalize(i) for i in ctl.get("extra", [])]
        except (OSError, ValueError, TypeError, AttributeError, names.InvalidName):
            return False
        new = False
        for inst in extra:
            if inst not in self.registered:
                self.registered[inst] = False
                new = True
                log.info("new instance %s: registering it", inst)
        return new

    def watch_control(self) -> None:
        mtime = None
        while not self.stop.wait(0.05):
            try:
                m = self.control_file.stat().st_mtime_ns
            except OSError:
                continue
            if m != mtime:
                mtime = m
                if self.read_control():
                    self.register_pending(self._stub())   # now, not at the next push

    def run(self) -> None:
        """Subscribe, apply, reconnect until stopped."""
        if self.control_file is not None:
            threading.Thread(target=self.watch_control, daemon=True).start()
        backoff = RECONNECT_S[0]
        first = True
        while not self.stop.is_set():
            stub = self._stub()
            if not first:        # a control plane that came back may have lost us: again
                self.registered = {i: False for i in self.registered}
            first = False
            self.register_pending(stub)
            call = stub.Stream(pb.Subscribe(sidecar=self.pod, delta=self.delta))
            cancel = threading.Thread(target=self._cancel_on_stop, args=(call,), daemon=True)
            cancel.start()
            try:
                for push in call:
                    self.connected = True
                    backoff = RECONNECT_S[0]
                    with self.lock:
                        done = self.table.apply(push)
                    log.info("push %d (%s, %d bytes): %s", push.version,
                             "delta" if push.delta else "sotw", push.ByteSize(), done)
                    self.register_pending(stub)
                    self.write_status()
            except grpc.RpcError as exc:
                if not self.stop.is_set():
                    log.info("control plane stream ended: %s; keeping %d endpoints", exc.code().name,
                             sum(len(v) for v in self.table.applied.values()))
            self.connected = False
            self.write_status()
            self.stop.wait(backoff)
            backoff = min(backoff * 2, RECONNECT_S[1])

    def _cancel_on_stop(self, call) -> None:
        while not self.stop.wait(0.1):
            if not call.is_active():
                return
        call.cancel()

    def write_status(self) -> None:
        if self.status_file is None:
            return
        ru = resource.getrusage(resource.RUSAGE_SELF)
        doc = {"pod": self.pod, "connected": self.connected, "version": self.table.version,
               "endpoints": self.table.endpoints(), "counters": dict(self.table.counters),
               "runtime_commands": self.table.runtime.commands,
               "agent_cpu_s": round(ru.ru_utime + ru.ru_stime, 4),
               "haproxy_cpu_s": round(_proc_cpu_s(self.proc.pid), 4) if self.proc else None,
               "haproxy_pid": self.proc.pid if self.proc else None,
               "registered": self.registered, "refused": self.refused}
        tmp = self.status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        tmp.replace(self.status_file)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pod", required=True)
    ap.add_argument("--address", required=True, help="the pod's IPv4 address")
    ap.add_argument("--instance", action="append", default=[])
    ap.add_argument("--known", action="append", required=True,
                    help="a name HAProxy gets a backend for (every service and instance)")
    ap.add_argument("--control", required=True, help="the mesh control plane: unix:/path")
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--key", help="the pod's Ed25519 key (registrations are signed with it)")
    ap.add_argument("--delta", action="store_true", help="ask for incremental pushes")
    ap.add_argument("--status-file")
    ap.add_argument("--control-file", help="the pod's control file (extra instances)")
    ap.add_argument("--stats-socket", help="HAProxy's runtime API socket (default: "
                    "RUN_DIR/POD.haproxy.sock)")
    ap.add_argument("--server-timeout-ms", type=int, default=haproxy.Policy.server_timeout_ms)
    ap.add_argument("--log-level", default="INFO")
    a = ap.parse_args(argv)
    logging.basicConfig(level=a.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    sc = Sidecar(a.pod, a.address, a.instance, a.known, control=a.control, run_dir=Path(a.run_dir),
                 identity=Identity.load(a.key) if a.key else None, delta=a.delta,
                 policy=haproxy.Policy(server_timeout_ms=a.server_timeout_ms),
                 status_file=a.status_file, control_file=a.control_file,
                 stats_socket=a.stats_socket)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sc.stop.set())
    sc.start_proxy()
    sc.write_status()
    try:
        sc.run()
        sc.withdraw_all()              # stopped (SIGTERM): the pod leaves
    finally:
        sc.stop_proxy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
