"""Client of an agent's local admin service (inspection, accept/withdraw)."""
from __future__ import annotations

import grpc

from controller.proto import routing_pb2 as pb
from controller.proto import routing_pb2_grpc as pb_grpc


class AdminError(RuntimeError):
    pass


class GrpcAdminClient:
    """A local admin service's client: one channel, one stub, every failure
    raised as ``error`` naming ``what`` answered at ``addr``. The agent's and
    the central controller's clients share it."""
    stub_class = pb_grpc.AgentAdminStub
    error = AdminError
    what = "agent"

    def __init__(self, addr: str, timeout: float = 3.0):
        self.addr = addr
        self.timeout = timeout
        self.channel = grpc.insecure_channel(addr)
        self.stub = self.stub_class(self.channel)

    def _call(self, fn, req):
        try:
            return fn(req, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise self.error(f"{self.what} at {self.addr}: {exc.code().name} "
                             f"{exc.details()}") from None

    def _ok(self, rep) -> None:
        if not rep.ok:
            raise self.error(rep.error)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class AdminClient(GrpcAdminClient):
    def state(self) -> pb.AgentState:
        return self._call(self.stub.GetState, pb.StateRequest())

    def set_policies(self, policy_set):
        return self._call(self.stub.SetPolicies, policy_set)

    def policies(self) -> pb.PoliciesReply:
        return self._call(self.stub.GetPolicies, pb.StateRequest())

    def accept_prefix(self, prefix: str, port: int, mac: str) -> None:
        self._ok(self._call(self.stub.AcceptPrefix,
                            pb.PrefixRequest(prefix=prefix, port=port, mac=mac)))

    def withdraw_prefix(self, prefix: str) -> None:
        self._ok(self._call(self.stub.WithdrawPrefix, pb.PrefixRequest(prefix=prefix)))
