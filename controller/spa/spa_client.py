"""Client of the SPA, as the SG agents and ``dmsc spa`` use it.

Given several SPA addresses it uses the first that answers and moves to the
next when one is down; :class:`SpaUnavailable` only when none answers. A
verdict is never made up here: no answer is not a "no", it is "ask again".
"""
from __future__ import annotations

import logging

import grpc

from controller.proto import spa_pb2 as pb
from controller.proto import spa_pb2_grpc as pb_grpc
from controller.spa.validate import AnnounceVerdict
from traffic.wire.announcement import Announcement

log = logging.getLogger("dmsc.spa.client")
MAX_BATCH = 256            # checks in one CheckMany (the SPA's own limit)


class SpaUnavailable(RuntimeError):
    pass


class SpaError(RuntimeError):
    """The SPA answered, and said no to an administrative request."""


class SpaClient:
    def __init__(self, addrs, timeout: float = 1.0):
        self.addrs = list(addrs)
        if not self.addrs:
            raise ValueError("no SPA address")
        self.timeout = timeout
        self.current = 0
        self._channels: dict[str, grpc.Channel] = {}

    def _stub(self, addr: str) -> pb_grpc.SpaStub:
        if addr not in self._channels:
            self._channels[addr] = grpc.insecure_channel(addr)
        return pb_grpc.SpaStub(self._channels[addr])

    def _call(self, method: str, request):
        errors = []
        for i in range(len(self.addrs)):
            idx = (self.current + i) % len(self.addrs)
            addr = self.addrs[idx]
            try:
                reply = getattr(self._stub(addr), method)(request, timeout=self.timeout)
            except grpc.RpcError as exc:
                errors.append(f"{addr}: {exc.code().name}")
                continue
            if idx != self.current:
                log.warning("SPA at %s answers: using it instead of %s", addr,
                            self.addrs[self.current])
                self.current = idx
            return reply
        raise SpaUnavailable("no SPA answers (" + "; ".join(errors) + ")")

    @property
    def addr(self) -> str:
        return self.addrs[self.current]

    @staticmethod
    def _check_request(ann: Announcement, sg: str, port: int) -> pb.CheckRequest:
        return pb.CheckRequest(sg=sg, port=port, announcement=pb.Announcement(
            msg_type=ann.msg_type, prefix=ann.prefix, key_id=ann.key_id,
            timestamp_ns=ann.timestamp_ns, nonce=ann.nonce, signature=ann.signature))

    def check_many(self, items) -> list:
        """Several Checks in one call (``items``: (announcement, sg, port); the
        SPA's CheckMany, MAX_BATCH at a time), so that a busy SG pays one round
        trip and one gRPC call for a batch, not one each: a verdict, or a
        SpaUnavailable, per item, in order. A batch the current SPA does not
        answer is asked of the others; when none answers, every item of it is
        unavailable (one time-out for the batch, not one each)."""
        reqs = [self._check_request(*it) for it in items]
        out: list = []
        for i in range(0, len(reqs), MAX_BATCH):
            chunk = reqs[i:i + MAX_BATCH]
            try:
                reply = self._call("CheckMany", pb.CheckBatch(checks=chunk))
            except SpaUnavailable as exc:
                out += [exc] * len(chunk)
                continue
            if len(reply.verdicts) != len(chunk):     # never made up: ask again later
                out += [SpaUnavailable(f"{len(reply.verdicts)} verdicts for "
                                       f"{len(chunk)} checks")] * len(chunk)
                continue
            out += [AnnounceVerdict(v.state, v.reason, v.text) for v in reply.verdicts]
        return out

    def check(self, ann: Announcement, sg: str, port: int) -> AnnounceVerdict:
        req = self._check_request(ann, sg, port)
        v = self._call("Check", req)
        return AnnounceVerdict(v.state, v.reason, v.text)

    def revalidate(self, sg: str, held) -> list[AnnounceVerdict]:
        req = pb.RevalidateRequest(sg=sg, held=[pb.Held(prefix=p, key_id=k) for p, k in held])
        return [AnnounceVerdict(v.state, v.reason, v.text) for v in self._call("Revalidate", req).verdicts]

    def _admin(self, method: str, request) -> None:
        rep = self._call(method, request)
        if not rep.ok:
            raise SpaError(rep.error)

    def authorize(self, prefix: str, max_depth: int | None, keys) -> None:
        """None (or 0): the prefix alone."""
        self._admin("Authorize", pb.Authorization(prefix=prefix, max_depth=max_depth or 0,
                                                  keys=keys))

    def add_key(self, name: str, public_raw: bytes) -> None:
        self._admin("AddKey", pb.AddKeyRequest(name=name, public_key=public_raw))

    def revoke(self, prefix: str) -> None:
        self._admin("Revoke", pb.RevokeRequest(prefix=prefix))

    def show(self) -> pb.RegistryView:
        return self._call("Show", pb.Empty())

    def close(self) -> None:
        for ch in self._channels.values():
            ch.close()
        self._channels = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
