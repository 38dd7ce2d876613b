"""The service-mesh baseline (`mode="mesh"`, docs/mesh.md) on Figure 2: the same
Mininet topology and BMv2 switches running the IPv4 program, every pod with its
app over HTTP and its HAProxy sidecar, one mesh control plane. Calls by
service name through the sidecars; a killed instance ejected with its calls
moved; a new instance pushed to every sidecar and counted; the control plane
killed while the endpoints it pushed keep serving."""
from __future__ import annotations

import subprocess
import threading
import time

import pytest

from controller.mesh import haproxy
from controller.mesh.ipv4_routes import TABLE_ROUTES, Ipv4Routes
from tests.conftest import ROOT
from topologies.emu.net import DmscNet
from topologies.topo import Topology

pytestmark = [pytest.mark.mininet,
              pytest.mark.skipif(subprocess.run(["which", "haproxy"], capture_output=True)
                                 .returncode != 0, reason="needs haproxy (make setup)")]

FIG2 = ROOT / "topologies" / "fig2.yaml"


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    n = DmscNet(Topology.load(FIG2), tmp_path_factory.mktemp("mesh"))
    try:
        n.start()
        n.start_control(mode="mesh")
        n.mesh.wait_endpoints(n.mesh.all_endpoints(), timeout=30)
        yield n
    finally:
        n.stop()


def runtime(net, pod) -> haproxy.Runtime:
    return haproxy.Runtime(str(net.mesh.sidecars[pod].stats_socket))


def server_status(net, pod, name, inst) -> str | None:
    rows = runtime(net, pod).servers(haproxy.backend_name(name))
    row = rows.get(haproxy.backend_name(name), {}).get(haproxy.server_name(inst))
    return None if row is None else row["status"]


def wait_for(cond, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_calls_by_service_name_cross_the_ipv4_fabric_through_both_sidecars(net):
    assert net.mode == "mesh"
    before = sum(p for _te, p, _b in net.mesh.conns["sg3"].read_direct_counters(TABLE_ROUTES))
    seen = set()
    for _ in range(6):
        out = net.mesh.call("pod3", "/D/3", "/A", "echo", {"n": 1})
        assert out.get("result") == {"n": 1}, out
        seen.add(out["from"])
    assert seen == {"/A/1", "/A/4"}                # both replicas, by service name
    out = net.mesh.call("pod3", "/D/3", "/B/4", "whoami")
    assert out["result"] == {"instance": "/B/4"}
    out = net.mesh.call("pod1", "/A/1", "/C", "add", {"values": [1, 2]})
    assert out["result"] == {"sum": 3} and out["from"] == "/C/2"
    # the calls went through sg3's P4 routes (IPv4, TCP both ways)
    after = sum(p for _te, p, _b in net.mesh.conns["sg3"].read_direct_counters(TABLE_ROUTES))
    assert after > before
    # the mesh's addresses live in the pods' namespaces only
    root = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    assert " 10.0." not in root and not routes.startswith("10.") and "\n10." not in routes


def test_a_killed_instance_is_ejected_and_its_calls_move_with_none_lost(net):
    result = {}
    load = threading.Thread(target=lambda: result.update(net.mesh.load(
        "pod3", "/D/3", "/A", count=300, interval=0.01, timeout=2.0)))
    load.start()
    time.sleep(1.0)                  # the load is under way (it runs 3 s)
    net.mesh.kill_app("pod4")        # /A/4 and /B/4 die; pod4's sidecar stays
    load.join(60)
    try:
        assert result.get("sent") == 300, result
        assert result["failed"] == 0, result          # every failed try retried elsewhere
        assert result["responders"].get("/A/4", 0) > 0 and result["responders"]["/A/1"] > 150
        wait_for(lambda: (server_status(net, "pod3", "/A", "/A/4") or "").startswith("DOWN"),
                 what="pod3's sidecar to eject /A/4")
        after = net.mesh.load("pod3", "/D/3", "/A", count=20, interval=0.01)
        assert after["responders"] == {"/A/1": 20}, after
    finally:
        net.mesh.apps["pod4"].start()                 # back for the other tests
        wait_for(lambda: server_status(net, "pod3", "/A", "/A/4") == "UP",
                 what="/A/4 checked back in")


def test_a_new_instance_is_pushed_to_every_sidecar_and_counted(net):
    before = net.mesh.stats()
    versions = {p: net.mesh.sidecar_status(p)["version"] for p in net.topo.pods()}
    net.authorize("/A/3", ["pod3"])
    net.authorize("/A", ["pod1", "pod3", "pod4"])
    net.update_pod_control("pod3", extra=["/A/3"])    # pod3 serves and registers /A/3
    net.mesh.wait_endpoints({"/A": {"/A/1", "/A/3", "/A/4"}}, timeout=15)
    after = net.mesh.stats()
    assert after.changes - before.changes == 1
    assert after.pushes - before.pushes == len(net.topo.pods())   # one message per sidecar
    assert after.push_bytes > before.push_bytes
    for p in net.topo.pods():
        st = net.mesh.sidecar_status(p)
        assert st["version"] > versions[p] and st["counters"]["sotw"] >= 2, (p, st)
    seen = set()
    for _ in range(9):
        seen.add(net.mesh.call("pod1", "/A/1", "/A", "whoami")["from"])
    assert "/A/3" in seen, seen


def test_with_the_control_plane_killed_existing_endpoints_keep_serving(net):
    net.mesh.stop_control_plane(kill=True)
    try:
        wait_for(lambda: not any(net.mesh.sidecar_status(p)["connected"]
                                 for p in net.topo.pods()), what="sidecars to notice")
        out = net.mesh.load("pod3", "/D/3", "/B", count=50, interval=0.01)
        assert out["failed"] == 0 and set(out["responders"]) == {"/B/1", "/B/4"}, out
        out = net.mesh.load("pod1", "/A/1", "/C", count=20, interval=0.01)
        assert out["failed"] == 0, out
    finally:
        net.mesh.start_control_plane()
    # back: every sidecar resubscribes and is given the whole state again, which
    # the restarted control plane kept (nothing lost, nothing pushed as changed)
    wait_for(lambda: all(net.mesh.sidecar_status(p)["connected"] for p in net.topo.pods()),
             timeout=15, what="sidecars to reconnect")
    net.mesh.wait_endpoints(net.mesh.all_endpoints(), timeout=5)
    assert net.mesh.stats().changes == 0
    assert net.mesh.load("pod3", "/D/3", "/A", count=20, interval=0.01)["failed"] == 0


def test_a_cut_link_is_routed_around_and_calls_keep_working(net):
    t = net.topo
    sw = net.mesh.conns["sg3"]
    before = {h.port for h in Ipv4Routes(sw).read()["10.0.4.0/24"]}
    assert before == {t.port("sg3", "sr3")}           # sg3 -> sr3 -> sg4: the shortest
    net.failures.link_down("sg3", "sr3")
    try:
        assert {h.port for h in Ipv4Routes(sw).read()["10.0.4.0/24"]} == {t.port("sg3", "sr1")}
        out = net.mesh.load("pod3", "/D/3", "/B/4", count=30, interval=0.01)
        assert out["ok"] == 30, out
    finally:
        net.failures.link_up("sg3", "sr3")
