"""The SPA process: the registry and the validator behind a gRPC service.

    python -m controller.spa --registry runs/x/registry.yaml --addr 127.0.0.1:50200

Listens on 127.0.0.1 only. Requests that are malformed (a field of the wrong
size, no announcement) are answered ``invalid`` / ``bad_request`` and counted;
the service keeps running whatever it is sent. Every verdict is logged.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

from controller.proto import spa_pb2 as pb
from controller.proto import spa_pb2_grpc as pb_grpc
from controller.spa.prefix_registry import Registry, RegistryError
from controller.spa.validate import INVALID, Validator, AnnounceVerdict
from traffic.wire import defs, names
from traffic.wire.announcement import KINDS, Announcement, key_id_of
from controller.rpc import EXCLUSIVE_PORT, bind, check_listen_addr

log = logging.getLogger("dmsc.spa")
MAX_BATCH = 256            # checks in one CheckMany


def _pb(v: AnnounceVerdict) -> pb.Verdict:
    return pb.Verdict(state=v.state, reason=v.reason, text=v.text)


class SpaService(pb_grpc.SpaServicer):
    def __init__(self, registry: Registry, window_s: float = 30.0):
        self.validator = Validator(registry, window_s)
        self.lock = threading.Lock()

    @property
    def registry(self) -> Registry:
        return self.validator.registry

    def Check(self, request, context):
        return self._check(request)

    def CheckMany(self, request, context):
        """Up to MAX_BATCH checks in one call, each judged as Check would."""
        if len(request.checks) > MAX_BATCH:
            v = self._bad(f"{len(request.checks)} checks in one batch (at most {MAX_BATCH})")
            return pb.VerdictBatch(verdicts=[v] * len(request.checks))
        return pb.VerdictBatch(verdicts=[self._check(r) for r in request.checks])

    def _check(self, request) -> pb.Verdict:
        a = request.announcement
        if a.msg_type not in KINDS:
            return self._bad(f"message type {a.msg_type} is not announce/withdraw")
        try:
            ann = Announcement(a.msg_type, names.normalize(a.prefix), a.key_id, a.timestamp_ns,
                               bytes(a.nonce), bytes(a.signature))
        except names.InvalidName as exc:
            return self._bad(f"prefix: {exc}")
        with self.lock:
            v = self.validator.check(ann, (request.sg, request.port))
        log.info("%s %s %s from %s port %d key %s: %s %s (%s)", "withdraw"
                 if a.msg_type == defs.TYPE_WITHDRAW else "announce", ann.prefix,
                 "->", request.sg, request.port, a.key_id, v.state, v.reason, v.text)
        return _pb(v)

    def _bad(self, text: str):
        with self.lock:
            self.validator.counters["bad_request"] += 1
        log.warning("bad request: %s", text)
        return pb.Verdict(state=INVALID, reason="bad_request", text=text)

    def Revalidate(self, request, context):
        with self.lock:
            vs = self.validator.revalidate([(h.prefix, h.key_id) for h in request.held])
        for h, v in zip(request.held, vs):
            if not v.valid:
                log.info("revalidate %s key %s for %s: %s %s", h.prefix, h.key_id, request.sg,
                         v.state, v.reason)
        return pb.RevalidateReply(verdicts=[_pb(v) for v in vs])

    def Authorize(self, request, context):
        try:
            with self.lock:
                a = self.validator.authorize_prefix(request.prefix, request.max_depth or None,
                                                    list(request.keys))
        except RegistryError as exc:
            return pb.Reply(ok=False, error=str(exc))
        log.info("authorized %s (max depth %d) to %s", a.prefix, a.max_depth, ", ".join(a.keys))
        return pb.Reply(ok=True)

    def AddKey(self, request, context):
        try:
            with self.lock:
                self.registry.add_key(request.name, bytes(request.public_key))
        except RegistryError as exc:
            return pb.Reply(ok=False, error=str(exc))
        log.info("key %s added (%s)", request.name, key_id_of(bytes(request.public_key)))
        return pb.Reply(ok=True)

    def Revoke(self, request, context):
        try:
            with self.lock:
                ok = self.registry.revoke(request.prefix)
        except names.InvalidName as exc:
            return pb.Reply(ok=False, error=str(exc))
        if not ok:
            return pb.Reply(ok=False, error=f"no authorization for {request.prefix}")
        log.info("revoked %s", request.prefix)
        return pb.Reply(ok=True)

    def Show(self, request, context):
        with self.lock:
            view = pb.RegistryView(source=self.registry.source)
            for a in self.registry.authorizations:
                view.authorizations.add(prefix=a.prefix, max_depth=a.max_depth, keys=a.keys)
            for n, k in self.registry.keys.items():
                view.keys.add(name=n, public_key=k, key_id=key_id_of(k))
            for k, v in self.validator.counters.items():
                view.counters[k] = v
        return view


def serve(registry: Registry, addr: str, window_s: float = 30.0):
    """Start the gRPC server; returns (server, service)."""
    warning = check_listen_addr(addr)          # raises ValueError for a bad address
    if warning:
        log.warning("%s", warning)
    service = SpaService(registry, window_s)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=EXCLUSIVE_PORT)
    pb_grpc.add_SpaServicer_to_server(service, server)
    if not bind(server, addr):
        raise OSError(f"cannot listen on {addr}")
    server.start()
    return server, service


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="DMSC SPA (service prefix authentication)")
    ap.add_argument("--registry", required=True, help="registry YAML file")
    ap.add_argument("--addr", required=True,
                    help="unix:/private/dir/spa.sock (root only) or 127.0.0.1:<port>")
    ap.add_argument("--window-s", type=float, default=30.0,
                    help="freshness window: timestamps further from now are refused")
    ap.add_argument("--log-file")
    ap.add_argument("--log-level", default="INFO")
    a = ap.parse_args(argv)
    logging.basicConfig(filename=a.log_file, level=a.log_level,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        registry = Registry.load(a.registry)
        server, _service = serve(registry, a.addr, a.window_s)
    except (RegistryError, ValueError, OSError) as exc:
        print(f"spa: {exc}", file=sys.stderr)
        return 2
    log.info("SPA on %s: %d keys, %d authorizations from %s", a.addr, len(registry.keys),
             len(registry.authorizations), a.registry)
    stop: list[bool] = []          # a flag, not an Event: see traffic/http_pod.py
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(True))
    while not stop:
        time.sleep(0.2)
    server.stop(grace=None)
    log.info("SPA stopping")
    return 0
