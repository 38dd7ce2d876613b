"""Client of the central controller's admin service (inspection, overrides)."""
from __future__ import annotations

from controller.rpc import GrpcClient
from controller.proto import central_pb2 as cpb
from controller.proto import central_pb2_grpc as cpb_grpc
from controller.proto import routing_pb2 as pb


class CentralError(RuntimeError):
    pass


class CentralClient(GrpcClient):
    stub_class = cpb_grpc.CentralAdminStub
    error = CentralError
    what = "central controller"

    def state(self) -> cpb.CentralState:
        return self._call(self.stub.GetState, pb.StateRequest())

    def switch_state(self, name: str) -> pb.AgentState:
        """One switch as the controller sees it, shaped as an agent's state."""
        for s in self.state().switches:
            if s.router == name:
                return s
        raise CentralError(f"the central controller at {self.addr} manages no switch {name!r}")

    def accept_prefix(self, sg: str, prefix: str, port: int, mac: str) -> None:
        self._ok(self._call(self.stub.AcceptPrefix,
                            cpb.SwitchPrefixRequest(sg=sg, prefix=prefix, port=port, mac=mac)))

    def withdraw_prefix(self, sg: str, prefix: str) -> None:
        self._ok(self._call(self.stub.WithdrawPrefix,
                            cpb.SwitchPrefixRequest(sg=sg, prefix=prefix)))
