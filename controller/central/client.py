"""Client of the central controller's admin service (inspection, overrides)."""
from __future__ import annotations

import grpc

from controller.proto import central_pb2 as cpb
from controller.proto import central_pb2_grpc as cpb_grpc
from controller.proto import routing_pb2 as pb


class CentralError(RuntimeError):
    pass


class CentralClient:
    def __init__(self, addr: str, timeout: float = 3.0):
        self.addr = addr
        self.timeout = timeout
        self.channel = grpc.insecure_channel(addr)
        self.stub = cpb_grpc.CentralAdminStub(self.channel)

    def _call(self, fn, req):
        try:
            return fn(req, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise CentralError(f"central controller at {self.addr}: {exc.code().name} "
                               f"{exc.details()}") from None

    def state(self) -> cpb.CentralState:
        return self._call(self.stub.GetState, pb.StateRequest())

    def switch_state(self, name: str) -> pb.AgentState:
        """One switch as the controller sees it, shaped as an agent's state."""
        for s in self.state().switches:
            if s.router == name:
                return s
        raise CentralError(f"the central controller at {self.addr} manages no switch {name!r}")

    def accept_prefix(self, sg: str, prefix: str, port: int, mac: str) -> None:
        rep = self._call(self.stub.AcceptPrefix,
                         cpb.SwitchPrefixRequest(sg=sg, prefix=prefix, port=port, mac=mac))
        if not rep.ok:
            raise CentralError(rep.error)

    def withdraw_prefix(self, sg: str, prefix: str) -> None:
        rep = self._call(self.stub.WithdrawPrefix, cpb.SwitchPrefixRequest(sg=sg, prefix=prefix))
        if not rep.ok:
            raise CentralError(rep.error)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
