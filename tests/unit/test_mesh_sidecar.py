"""The sidecar's proxy for real: HAProxy (Debian's) on 127.0.0.1 with the
configuration controller/mesh/haproxy.py renders, endpoints pushed through its
runtime API by controller/mesh/sidecar.EndpointTable, and the pod's HTTP app
(traffic/http_pod.py) as separate processes that a test kills or slows.
Calls by name go through traffic/http_client.py, as the load generator's do."""
from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from controller.mesh import haproxy
from controller.mesh.sidecar import EndpointTable
from controller.proto import mesh_pb2 as pb
from tests.conftest import ROOT
from topologies.emu.child_processes import free_port
from traffic.http_client import HttpClient
from traffic.rmi_client import CallError, RemoteError

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None,
                                reason="needs haproxy (Debian package 'haproxy'; make setup)")

POLICY = haproxy.Policy(connect_timeout_ms=100, server_timeout_ms=300, check_inter_ms=200,
                        fall=2, rise=1, error_limit=1, retries=2)
INSTANCES = ("/A/1", "/A/4", "/A/7")
KNOWN = ["/A", *INSTANCES, "/B"]


def wait_for(cond, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


class App:
    """One pod's HTTP app, a process of its own."""

    def __init__(self, inst, tmp):
        self.inst, self.port = inst, free_port()
        self.control = tmp / f"{inst.strip('/').replace('/', '_')}.json"
        self.control.write_text("{}")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "traffic.http_pod", "--listen", f"127.0.0.1:{self.port}",
             "--instance", inst, "--control-file", str(self.control), "--log-level", "WARNING"],
            cwd=ROOT)
        c = HttpClient("/T/0", proxy=f"127.0.0.1:{self.port}", timeout=1)
        wait_for(lambda: self._up(c), what=f"{inst} listening")

    @staticmethod
    def _up(c):
        try:
            c.call("/nothing", "echo")
        except RemoteError:
            return True           # it answered (404): it is up
        except CallError:
            return False
        return True

    def slow(self, ms):
        """Slow the app down (or back up) and wait until a direct call shows it."""
        self.control.write_text(json.dumps({"service_ms": ms}))
        c = HttpClient("/T/0", proxy=f"127.0.0.1:{self.port}", timeout=5)

        def took():
            t0 = time.monotonic()
            c.call(self.inst, "echo")
            dt = time.monotonic() - t0
            return dt >= ms / 1000 if ms else dt < 0.1
        wait_for(took, what=f"{self.inst} at {ms} ms")
        c.close()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)


class Rig:
    def __init__(self, tmp):
        self.tmp = tmp
        self.apps = {i: App(i, tmp) for i in INSTANCES}
        self.outbound = free_port()
        sock, mapf, cfg = tmp / "hap.sock", tmp / "names.map", tmp / "hap.cfg"
        mapf.write_text(haproxy.map_text(KNOWN))
        cfg.write_text(haproxy.render(KNOWN, address="127.0.0.1", stats_socket=str(sock),
                                      map_file=str(mapf), policy=POLICY, app_port=free_port(),
                                      outbound_port=self.outbound, inbound_port=free_port(),
                                      access_log=True))
        check = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        self.proxy = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)],
                                      stdout=open(tmp / "hap.log", "wb"), stderr=subprocess.STDOUT)
        self.runtime = haproxy.Runtime(str(sock))
        self.runtime.wait_ready()
        self.table = EndpointTable(self.runtime, KNOWN, POLICY)
        self.client = HttpClient("/T/0", proxy=f"127.0.0.1:{self.outbound}", timeout=3)

    def push(self, insts, delta=False, removed=()):
        """A push whose clusters hold ``insts`` (pointed at their apps directly)."""
        eps = {i: pb.Endpoint(instance=i, address="127.0.0.1", port=self.apps[i].port)
               for i in insts}
        clusters = {}
        for i in insts:
            for c in haproxy.clusters_of(i):
                clusters.setdefault(c, []).append(eps[i])
        return self.table.apply(pb.Push(version=self.table.version + 1, delta=delta,
                                        clusters=[pb.Cluster(name=n, endpoints=e)
                                                  for n, e in sorted(clusters.items())],
                                        removed_instances=list(removed)))

    def status(self, inst):
        srv = self.runtime.servers(haproxy.backend_name("/A")).get(
            haproxy.backend_name("/A"), {})
        row = srv.get(haproxy.server_name(inst))
        return None if row is None else row["status"]

    def calls(self, dst, n):
        """``n`` calls; {responder: count}, failures under "lost"."""
        got = collections.Counter()
        for _ in range(n):
            try:
                got[self.client.call(dst, "whoami").responder] += 1
            except CallError as exc:
                got["lost"] += 1
                got[f"lost:{exc}"] += 1
        return got

    def close(self):
        self.client.close()
        self.proxy.terminate()
        self.proxy.wait(5)
        for a in self.apps.values():
            a.stop()


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    try:
        yield r
    finally:
        r.close()


def test_calls_by_service_name_reach_its_endpoints_and_an_instance_name_only_it(rig):
    pid = rig.proxy.pid
    assert rig.push(["/A/1", "/A/4"]) == {"added": 4, "removed": 0, "moved": 0}
    wait_for(lambda: rig.status("/A/1") == "UP" and rig.status("/A/4") == "UP", what="checks")
    assert rig.calls("/A", 10) == {"/A/1": 5, "/A/4": 5}        # round robin
    assert rig.calls("/A/4", 4) == {"/A/4": 4}
    assert rig.client.call("/A", "add", {"values": [2, 3]}).result == {"sum": 5}
    with pytest.raises(RemoteError) as e:
        rig.client.call("/Z", "echo")                           # no backend: no route
    assert e.value.code == 503 and "no route" in e.value.text
    with pytest.raises(RemoteError) as e:
        rig.client.call("/B", "echo")                           # a backend, no endpoint
    assert e.value.code == 503
    assert rig.proxy.poll() is None and rig.proxy.pid == pid    # no reload, no restart


def test_endpoints_come_and_go_by_push_without_reload(rig):
    rig.push(["/A/1"])
    # a delta resends the changed clusters whole (/A with both), as the control plane does
    assert rig.push(["/A/1", "/A/7"], delta=True) == {"added": 2, "removed": 0, "moved": 0}
    wait_for(lambda: rig.status("/A/7") == "UP", what="/A/7 checked")
    assert set(rig.calls("/A", 6)) == {"/A/1", "/A/7"}
    assert rig.push([], delta=True, removed=["/A/1"]) == {"added": 0, "removed": 2, "moved": 0}
    assert rig.calls("/A", 6) == {"/A/7": 6}
    assert rig.push(["/A/1", "/A/4"]) == {"added": 4, "removed": 2, "moved": 0}   # SotW: /A/7 gone
    assert rig.status("/A/7") is None
    assert set(rig.calls("/A", 6)) == {"/A/1", "/A/4"}
    assert rig.table.counters["sotw"] == 2 and rig.table.counters["delta"] == 2


def test_a_killed_instance_is_ejected_and_no_call_is_lost(rig):
    rig.push(["/A/1", "/A/4"])
    wait_for(lambda: rig.status("/A/1") == "UP" and rig.status("/A/4") == "UP", what="checks")
    rig.apps["/A/4"].kill()
    got = rig.calls("/A", 40)
    assert got == {"/A/1": 40}, got                            # retried elsewhere, none lost
    assert rig.status("/A/4").startswith("DOWN")              # ejected


def test_a_slowed_instance_costs_retries_until_its_checks_eject_it(rig):
    rig.push(["/A/1", "/A/4"])
    wait_for(lambda: rig.status("/A/1") == "UP" and rig.status("/A/4") == "UP", what="checks")
    be, srv = haproxy.backend_name("/A"), haproxy.server_name("/A/4")
    rig.runtime.command(f"disable health {be}/{srv}")   # checks off: only the retries help
    rig.apps["/A/4"].slow(3 * POLICY.server_timeout_ms)
    times = []
    for _ in range(6):
        t0 = time.monotonic()
        assert rig.client.call("/A", "whoami").responder == "/A/1"   # timed out, retried
        times.append(time.monotonic() - t0)
    # round robin sent some of them to /A/4 first: they waited out the server timeout
    assert sum(t >= POLICY.server_timeout_ms / 1000 for t in times) >= 2, times
    rig.runtime.command(f"enable health {be}/{srv}")
    wait_for(lambda: rig.status("/A/4").startswith("DOWN"), what="/A/4 ejected by its checks")
    t0 = time.monotonic()
    assert rig.calls("/A", 10) == {"/A/1": 10}
    assert time.monotonic() - t0 < 10 * POLICY.server_timeout_ms / 1000   # no more waiting
    rig.apps["/A/4"].slow(0)                                   # back to speed: checked back in
    wait_for(lambda: rig.status("/A/4") == "UP", timeout=10, what="/A/4 back up")
    assert set(rig.calls("/A", 6)) == {"/A/1", "/A/4"}


def test_an_endpoint_that_moves_is_re_addressed_in_place(rig):
    rig.push(["/A/1"])
    wait_for(lambda: rig.status("/A/1") == "UP", what="checks")
    moved = pb.Push(version=rig.table.version + 1, delta=False, clusters=[
        pb.Cluster(name=n, endpoints=[pb.Endpoint(instance="/A/1", address="127.0.0.1",
                                                  port=rig.apps["/A/7"].port)])
        for n in ("/A", "/A/1")])
    assert rig.table.apply(moved) == {"added": 0, "removed": 0, "moved": 2}
    assert rig.calls("/A", 4) == {"/A/7": 4}          # the new address's app answers
    unknown = pb.Push(version=rig.table.version + 1, delta=True, clusters=[
        pb.Cluster(name="/Q", endpoints=[pb.Endpoint(instance="/Q/1", address="127.0.0.1",
                                                     port=rig.apps["/A/4"].port)])])
    assert rig.table.apply(unknown) == {"added": 0, "removed": 0, "moved": 0}
    assert rig.table.counters["unknown_cluster"] == 1
