"""The mesh control plane: istiod's role in the service-mesh baseline (docs/mesh.md).

Pods register their instances (``Register``: signed announcements of the
instance and of each service prefix above it, exactly as a DMSC pod sends
its SG, each checked by the SPA, so the security story is the same: a name
the registry does not grant that key is refused). Every sidecar
subscribes (``Stream``) and gets the endpoint state first whole, then again on
every change:

* state of the world (xDS SotW, Istio's default for EDS): every push carries
  every cluster (each name: ``/B`` and ``/B/4``) with all its endpoints;
* delta (``Subscribe.delta``, as delta xDS): after the first push, only the
  clusters that changed and the instances that left.

Every push to every sidecar is one message, counted with its serialized size
(``StatsReply``; the benchmark's ``mesh_update_bytes_*``). :class:`EndpointState`
is the pure logic (no I/O; unit-tested); :class:`MeshControlPlane` is the gRPC
service on a Unix socket. ``python -m controller.mesh.control_plane --listen
unix:/run/dir/mesh.sock --spa 127.0.0.1:50051``.
"""
from __future__ import annotations

import argparse
import json
import logging
import queue
import resource
import signal
import sys
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc

from controller.mesh.haproxy import clusters_of
from controller.proto import mesh_pb2 as pb
from controller.proto import mesh_pb2_grpc as pb_grpc
from controller.spa.validate import INVALID, AnnounceVerdict
from traffic.wire import defs, names
from traffic.wire.announcement import Announcement

log = logging.getLogger("dmsc.mesh.control")

MESH_SG = "mesh"          # the SPA's "where" for registrations: (mesh, pod index)
QUEUE_MAX = 10000         # pushes waiting for one slow sidecar before it is dropped


@dataclass(frozen=True)
class Endpoint:
    instance: str
    address: str
    port: int
    pod: str
    key_id: str


class EndpointState:
    """The registered instances and the pushes they make. No I/O."""

    def __init__(self):
        self.endpoints: dict[str, Endpoint] = {}
        self.version = 0

    def register(self, ep: Endpoint) -> bool:
        """Add or move an instance; True if the state changed."""
        if self.endpoints.get(ep.instance) == ep:
            return False
        self.endpoints[ep.instance] = ep
        self.version += 1
        return True

    def deregister(self, instance: str) -> bool:
        if self.endpoints.pop(instance, None) is None:
            return False
        self.version += 1
        return True

    def cluster_names(self) -> list[str]:
        return sorted({c for inst in self.endpoints for c in clusters_of(inst)})

    def _cluster(self, name: str) -> pb.Cluster:
        eps = [pb.Endpoint(instance=e.instance, address=e.address, port=e.port)
               for inst, e in sorted(self.endpoints.items())
               if names.prefix_matches(name, inst)]
        return pb.Cluster(name=name, endpoints=eps)

    def sotw(self) -> pb.Push:
        """The whole state: every cluster with all its endpoints."""
        return pb.Push(version=self.version, delta=False,
                       clusters=[self._cluster(c) for c in self.cluster_names()])

    def delta(self, changed: str | None, removed: str | None) -> pb.Push:
        """What one change did: the clusters of ``changed`` (an instance added
        or moved) with their endpoints now, and ``removed`` (an instance gone)."""
        push = pb.Push(version=self.version, delta=True)
        if changed is not None:
            push.clusters.extend(self._cluster(c) for c in clusters_of(changed))
        if removed is not None:
            push.removed_instances.append(removed)
            # the clusters that still have other endpoints are unchanged but for
            # the removal, which removed_instances says: nothing else to send
        return push


def announcement_of(a: pb.Announcement) -> Announcement:
    if a.msg_type not in (defs.TYPE_ANNOUNCE, defs.TYPE_WITHDRAW):
        raise ValueError(f"message type {a.msg_type} is not announce/withdraw")
    return Announcement(a.msg_type, names.normalize(a.prefix), a.key_id, a.timestamp_ns,
                        bytes(a.nonce), bytes(a.signature))


def announcement_pb(a: Announcement) -> pb.Announcement:
    return pb.Announcement(msg_type=a.msg_type, prefix=a.prefix, key_id=a.key_id,
                           timestamp_ns=a.timestamp_ns, nonce=a.nonce, signature=a.signature)


class Subscriber:
    def __init__(self, sidecar: str, delta: bool):
        self.sidecar, self.delta = sidecar, delta
        self.queue: queue.Queue = queue.Queue(QUEUE_MAX)
        self.dropped = False


class MeshControlPlane(pb_grpc.MeshControlServicer):
    """``check(ann, sg, port) -> AnnounceVerdict``: the SPA (SpaClient.check)."""

    def __init__(self, check, pod_ports: dict[str, int] | None = None, state_file=None):
        self.check = check
        self.pod_ports = dict(pod_ports or {})
        self.state = EndpointState()
        # the registered endpoints survive a restart, as Istio's live in the
        # Kubernetes API: a control plane that comes back serves what it had
        self.state_file = Path(state_file) if state_file else None
        if self.state_file is not None and self.state_file.exists():
            doc = json.loads(self.state_file.read_text())
            self.state.version = doc["version"]
            self.state.endpoints = {e["instance"]: Endpoint(**e) for e in doc["endpoints"]}
        self.lock = threading.Lock()
        self.subscribers: list[Subscriber] = []
        self.counters = {"changes": 0, "pushes": 0, "push_bytes": 0, "refused": 0,
                         "registrations": 0}
        self.stopping = threading.Event()

    # -- registration ------------------------------------------------------
    def register(self, pod: str, address: str, port: int, ann: Announcement,
                 covering=()) -> pb.RegisterReply:
        """An instance joins (or leaves) at ``address:port``. ``covering``: the
        pod's signed announcements of the prefixes above the instance (an
        endpoint of /B/4 also serves /B): each one must be valid too, as each
        of a DMSC pod's announcements must, or nothing changes."""
        where = self.pod_ports.get(pod, 0)
        v = self.check(ann, MESH_SG, where)
        if v.valid and ann.msg_type == defs.TYPE_ANNOUNCE:
            want = set(clusters_of(ann.prefix)) - {names.normalize(ann.prefix)}
            got = {names.normalize(c.prefix): c for c in covering}
            for prefix in sorted(want):
                c = got.get(prefix)
                if c is None or c.key_id != ann.key_id or c.msg_type != ann.msg_type:
                    v = AnnounceVerdict(INVALID, "not_covered",
                                        f"no announcement of {prefix} by the same key")
                    break
                v = self.check(c, MESH_SG, where)
                if not v.valid:
                    v = AnnounceVerdict(v.state, v.reason, f"{prefix}: {v.text}")
                    break
        with self.lock:
            self.counters["registrations"] += 1
            if not v.valid:
                self.counters["refused"] += 1
                log.info("%s %s from %s: refused (%s %s)", ann.kind, ann.prefix, pod,
                         v.state, v.reason)
                return pb.RegisterReply(ok=False, state=v.state, reason=v.reason, text=v.text,
                                        version=self.state.version)
            inst = names.normalize(ann.prefix)
            if ann.msg_type == defs.TYPE_WITHDRAW:
                held = self.state.endpoints.get(inst)
                if held is not None and held.key_id != ann.key_id:
                    self.counters["refused"] += 1
                    return pb.RegisterReply(ok=False, state="invalid", reason="not_holder",
                                            text=f"{inst} is held by another key",
                                            version=self.state.version)
                changed = self.state.deregister(inst)
                push = self.state.delta(None, inst) if changed else None
            else:
                changed = self.state.register(Endpoint(inst, address, port, pod, ann.key_id))
                push = self.state.delta(inst, None) if changed else None
            if changed:
                self._save()
                self.counters["changes"] += 1
                self._fan_out(push)
                log.info("%s %s at %s:%d (%s): version %d pushed to %d sidecars", ann.kind,
                         inst, address, port, pod, self.state.version, len(self.subscribers))
            return pb.RegisterReply(ok=True, state=v.state, reason=v.reason, text=v.text,
                                    version=self.state.version)

    def _save(self) -> None:
        if self.state_file is None:
            return
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": self.state.version, "endpoints": [
            vars(e) for _i, e in sorted(self.state.endpoints.items())]}))
        tmp.replace(self.state_file)

    def _fan_out(self, delta_push: pb.Push) -> None:
        """One message per subscriber: the whole state, or the delta. Under the lock."""
        sotw = None
        for sub in list(self.subscribers):
            if sub.delta:
                push = delta_push
            else:
                sotw = sotw if sotw is not None else self.state.sotw()
                push = sotw
            self._send(sub, push)

    def _send(self, sub: Subscriber, push: pb.Push) -> None:
        try:
            sub.queue.put_nowait(push)
        except queue.Full:
            sub.dropped = True            # its stream ends; the sidecar reconnects, gets SotW
            self.subscribers.remove(sub)
            log.warning("sidecar %s too slow: dropped", sub.sidecar)
            return
        self.counters["pushes"] += 1
        self.counters["push_bytes"] += push.ByteSize()

    def subscribe(self, sidecar: str, delta: bool) -> Subscriber:
        sub = Subscriber(sidecar, delta)
        with self.lock:
            self.subscribers.append(sub)
            self._send(sub, self.state.sotw())          # the first push is always whole
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self.lock:
            if sub in self.subscribers:
                self.subscribers.remove(sub)

    def stats(self) -> pb.StatsReply:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        with self.lock:
            return pb.StatsReply(version=self.state.version,
                                 endpoints=len(self.state.endpoints),
                                 subscribers=len(self.subscribers),
                                 changes=self.counters["changes"],
                                 pushes=self.counters["pushes"],
                                 push_bytes=self.counters["push_bytes"],
                                 refused=self.counters["refused"],
                                 cpu_s=ru.ru_utime + ru.ru_stime)

    # -- gRPC ----------------------------------------------------------------
    def Register(self, request, context):
        try:
            ann = announcement_of(request.announcement)
            covering = [announcement_of(c) for c in request.covering]
        except (names.InvalidName, ValueError) as exc:
            return pb.RegisterReply(ok=False, state="invalid", reason="bad_request", text=str(exc))
        try:
            return self.register(request.pod, request.address, request.port, ann, covering)
        except Exception as exc:            # the SPA unreachable: not a "no", ask again
            log.warning("registration of %s from %s not checked: %s", ann.prefix, request.pod, exc)
            context.abort(grpc.StatusCode.UNAVAILABLE, f"SPA: {exc}")

    def Stream(self, request, context):
        sub = self.subscribe(request.sidecar, request.delta)
        log.info("sidecar %s subscribed (%s)", request.sidecar, "delta" if request.delta else "sotw")
        try:
            while context.is_active() and not sub.dropped and not self.stopping.is_set():
                try:
                    yield sub.queue.get(timeout=0.2)
                except queue.Empty:
                    continue
        finally:
            self.unsubscribe(sub)

    def Stats(self, request, context):
        return self.stats()


def serve(plane: MeshControlPlane, listen: str, workers: int = 300) -> grpc.Server:
    """One thread per open stream: ``workers`` bounds the sidecars it can hold."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    pb_grpc.add_MeshControlServicer_to_server(plane, server)
    server.add_insecure_port(listen)
    server.start()
    return server


def main(argv=None) -> int:
    from controller.spa.spa_client import SpaClient
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", required=True, help="unix:/path/mesh.sock")
    ap.add_argument("--spa", action="append", required=True, help="the SPA's address")
    ap.add_argument("--pod-port", action="append", default=[],
                    help="POD=N: the SPA's port number for the pod (replay window per pod)")
    ap.add_argument("--state-file", help="the registered endpoints, kept across restarts")
    ap.add_argument("--log-level", default="INFO")
    a = ap.parse_args(argv)
    logging.basicConfig(level=a.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    spa = SpaClient(a.spa)
    pod_ports = {k: int(v) for k, v in (p.split("=", 1) for p in a.pod_port)}
    plane = MeshControlPlane(spa.check, pod_ports, a.state_file)
    server = serve(plane, a.listen)
    stop: list[bool] = []          # a flag, not an Event: see traffic/http_pod.py
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(True))
    log.info("mesh control plane on %s", a.listen)
    while not stop:
        time.sleep(0.2)
    plane.stopping.set()
    server.stop(0.5).wait()
    log.info("stopping; %s", {k: v for k, v in plane.counters.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
