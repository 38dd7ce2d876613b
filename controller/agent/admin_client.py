"""Client of an agent's admin service for the operator (inspection,
accept/withdraw; controller/agent/admin_service.py)."""
from __future__ import annotations

from controller.proto import routing_pb2 as pb
from controller.proto import routing_pb2_grpc as pb_grpc
from controller.rpc import GrpcClient


class AdminError(RuntimeError):
    pass


class AdminClient(GrpcClient):
    stub_class = pb_grpc.AgentAdminStub
    error = AdminError
    what = "agent"

    def state(self, counters_only: bool = False) -> pb.AgentState:
        """The agent's state; ``counters_only``: its counters and versions alone
        (cheap for the agent: what benchmarks and samplers poll)."""
        return self._call(self.stub.GetState, pb.StateRequest(counters_only=counters_only))

    def policies(self) -> pb.PoliciesReply:
        return self._call(self.stub.GetPolicies, pb.StateRequest())

    def accept_prefix(self, prefix: str, port: int, mac: str) -> None:
        self._ok(self._call(self.stub.AcceptPrefix,
                            pb.PrefixRequest(prefix=prefix, port=port, mac=mac)))

    def withdraw_prefix(self, prefix: str) -> None:
        self._ok(self._call(self.stub.WithdrawPrefix, pb.PrefixRequest(prefix=prefix)))
