"""The mesh control plane (controller/mesh/control_plane.py): registrations
checked by the SPA's validator, pushes to every sidecar, whole (SotW) or
delta, and their counters; and the same over gRPC on a Unix socket."""
from __future__ import annotations

import threading

import grpc
import pytest

from controller.mesh.control_plane import (Endpoint, EndpointState, MeshControlPlane,
                                           announcement_pb, serve)
from controller.mesh.haproxy import clusters_of
from controller.proto import mesh_pb2 as pb
from controller.proto import mesh_pb2_grpc as pb_grpc
from controller.spa.prefix_registry import Registry
from controller.spa.validate import Validator
from traffic.identity import Identity

POD1, POD4, ROGUE = Identity.generate(), Identity.generate(), Identity.generate()


def plane() -> MeshControlPlane:
    r = Registry()
    for name, ident in (("pod1", POD1), ("pod4", POD4), ("rogue", ROGUE)):
        r.add_key(name, ident.public_raw)
    r.authorize("/A", 2, ["pod1", "pod4"])
    r.authorize("/B", 2, ["pod4"])
    v = Validator(r)
    return MeshControlPlane(lambda ann, sg, port: v.check(ann, (sg, port)),
                            {"pod1": 1, "pod4": 4, "rogue": 9})


def register(p, ident, pod, inst, addr, withdraw=False, covering=True):
    """The instance's announcement and, with ``covering``, its service prefix's."""
    above = [ident.announcement(c) for c in clusters_of(inst) if c != inst] if covering else []
    return p.register(pod, addr, 15006, ident.announcement(inst, withdraw=withdraw), above)


def drain(sub):
    out = []
    while not sub.queue.empty():
        out.append(sub.queue.get_nowait())
    return out


def test_sotw_holds_every_cluster_and_delta_only_the_change():
    s = EndpointState()
    assert s.register(Endpoint("/A/1", "10.0.1.1", 15006, "pod1", "k1"))
    assert s.register(Endpoint("/A/4", "10.0.4.1", 15006, "pod4", "k4"))
    assert not s.register(Endpoint("/A/4", "10.0.4.1", 15006, "pod4", "k4"))   # no change
    whole = s.sotw()
    assert not whole.delta and whole.version == 2
    assert {c.name: [e.instance for e in c.endpoints] for c in whole.clusters} == {
        "/A": ["/A/1", "/A/4"], "/A/1": ["/A/1"], "/A/4": ["/A/4"]}
    d = s.delta("/A/4", None)
    assert d.delta and {c.name for c in d.clusters} == {"/A", "/A/4"}
    assert s.deregister("/A/1") and not s.deregister("/A/1")
    gone = s.delta(None, "/A/1")
    assert list(gone.removed_instances) == ["/A/1"] and not gone.clusters
    assert s.version == 3


def test_a_change_is_pushed_to_every_sidecar_and_counted():
    p = plane()
    subs = [p.subscribe(f"pod{i}", delta=False) for i in range(5)]
    assert [len(drain(s)) for s in subs] == [1] * 5          # the first push: whole (empty)
    base = dict(p.counters)
    rep = register(p, POD1, "pod1", "/A/1", "10.0.1.1")
    assert rep.ok and rep.version == 1
    pushes = [drain(s) for s in subs]
    assert all(len(x) == 1 and x[0].version == 1 for x in pushes)
    assert p.counters["pushes"] - base["pushes"] == 5
    assert p.counters["push_bytes"] - base["push_bytes"] == 5 * pushes[0][0].ByteSize()
    assert p.counters["changes"] == 1
    # the same registration again (a refresh) changes nothing and pushes nothing
    assert register(p, POD1, "pod1", "/A/1", "10.0.1.1").ok
    assert all(not drain(s) for s in subs) and p.counters["changes"] == 1


def test_sotw_pushes_grow_with_the_mesh_and_delta_pushes_do_not():
    r = Registry()
    r.add_key("pod1", POD1.public_raw)
    for i in range(1, 30):
        r.authorize(f"/S{i}", 2, ["pod1"])
    v = Validator(r)
    p = MeshControlPlane(lambda ann, sg, port: v.check(ann, (sg, port)))
    sotw, delta = p.subscribe("s", delta=False), p.subscribe("d", delta=True)
    sizes = []
    for i in range(1, 30):               # 29 services of one instance each
        assert register(p, POD1, "pod1", f"/S{i}/1", f"10.0.{i}.1").ok
        s, d = drain(sotw), drain(delta)
        sizes.append((s[-1].ByteSize(), d[-1].ByteSize()))
    assert sizes[-1][0] > 10 * sizes[0][0]             # the whole state, every time
    assert sizes[-1][1] <= sizes[0][1] + 8     # one instance's clusters (longer names, address)
    assert sizes[-1][1] < sizes[-1][0] / 10


def test_delta_resends_a_changed_cluster_whole_as_delta_xds_does():
    p = plane()
    sub = p.subscribe("d", delta=True)
    assert register(p, POD1, "pod1", "/A/1", "10.0.1.1").ok
    assert register(p, POD4, "pod4", "/A/4", "10.0.4.1").ok
    last = drain(sub)[-1]
    assert {c.name: len(c.endpoints) for c in last.clusters} == {"/A": 2, "/A/4": 1}


def test_the_spas_refusals_apply_and_push_nothing():
    p = plane()
    sub = p.subscribe("x", delta=True)
    drain(sub)
    rep = register(p, ROGUE, "rogue", "/A/9", "10.0.9.1")      # key not granted /A
    assert not rep.ok and rep.state == "invalid" and rep.reason == "key_not_authorized"
    rep = register(p, POD1, "pod1", "/B/1", "10.0.1.1")        # /B is pod4's only
    assert not rep.ok
    # an instance granted, but not the service above it: not an endpoint of /B
    rep = register(p, POD4, "pod4", "/B/4", "10.0.4.1", covering=False)
    assert not rep.ok and rep.reason == "not_covered"
    assert not drain(sub) and p.counters["refused"] == 3 and not p.state.endpoints
    # a withdrawal by a key that may announce the prefix but does not hold it
    assert register(p, POD4, "pod4", "/A/4", "10.0.4.1").ok
    rep = register(p, POD1, "pod1", "/A/4", "10.0.1.1", withdraw=True)
    assert not rep.ok and rep.reason == "not_holder" and "/A/4" in p.state.endpoints
    assert register(p, POD4, "pod4", "/A/4", "10.0.4.1", withdraw=True).ok
    assert "/A/4" not in p.state.endpoints
    assert [list(x.removed_instances) for x in drain(sub)][-1] == ["/A/4"]


def test_over_grpc_a_sidecar_gets_the_whole_state_then_the_change(tmp_path):
    p = plane()
    sock = f"unix:{tmp_path}/mesh.sock"
    server = serve(p, sock, workers=4)
    try:
        stub = pb_grpc.MeshControlStub(grpc.insecure_channel(sock))
        assert register(p, POD1, "pod1", "/A/1", "10.0.1.1").ok
        stream = stub.Stream(pb.Subscribe(sidecar="pod4", delta=True), timeout=10)
        first = next(stream)
        assert not first.delta and [c.name for c in first.clusters] == ["/A", "/A/1"]
        rep = stub.Register(pb.RegisterRequest(
            pod="pod4", address="10.0.4.1", port=15006,
            announcement=announcement_pb(POD4.announcement("/B/4")),
            covering=[announcement_pb(POD4.announcement("/B"))]))
        assert rep.ok
        second = next(stream)
        assert second.delta and {c.name for c in second.clusters} == {"/B", "/B/4"}
        assert second.clusters[0].endpoints[0].address == "10.0.4.1"
        stats = stub.Stats(pb.StatsRequest())
        assert (stats.endpoints, stats.changes, stats.subscribers) == (2, 2, 1)
        assert stats.push_bytes == first.ByteSize() + second.ByteSize()
        stream.cancel()
    finally:
        p.stopping.set()
        server.stop(0).wait()


def test_a_restarted_control_plane_serves_the_endpoints_it_had(tmp_path):
    r = Registry()
    r.add_key("pod1", POD1.public_raw)
    r.authorize("/A", 2, ["pod1"])
    v = Validator(r)
    check = lambda ann, sg, port: v.check(ann, (sg, port))   # noqa: E731
    first = MeshControlPlane(check, state_file=tmp_path / "endpoints.json")
    assert register(first, POD1, "pod1", "/A/1", "10.0.1.1").ok
    again = MeshControlPlane(check, state_file=tmp_path / "endpoints.json")
    whole = again.subscribe("pod4", delta=False).queue.get_nowait()
    assert whole.version == 1
    assert {c.name: [(e.instance, e.address) for e in c.endpoints] for c in whole.clusters} == {
        "/A": [("/A/1", "10.0.1.1")], "/A/1": [("/A/1", "10.0.1.1")]}
    # a refresh of what it kept is no change
    assert register(again, POD1, "pod1", "/A/1", "10.0.1.1").ok and again.counters["changes"] == 0
