"""The SCSC's channel to each agent (gRPC service AgentPolicy,
controller/proto/policy.proto): the agent's LSDB in, the SCSC's policy sets
out. Apart from the operator's admin service; on its own address, which
controller/rpc.py allows (a private Unix socket, or 127.0.0.1).

What both ends share lives here, below both: the client the SCSC calls
(controller/scsc/scsc_service.py) and how a policy entry names its next hop
(the agent resolves it: controller/agent/policies.py). The agent's servicer is
controller/agent/policy_service.py.
"""
from __future__ import annotations

from controller.proto import policy_pb2 as pb
from controller.proto import policy_pb2_grpc as pb_grpc
from controller.proto import scsc_pb2 as scsc_pb
from controller.rpc import GrpcClient

# A policy entry's ``next`` is a neighbour router's name, or LOCAL + an
# instance at the last SG: to the pod that serves it.
LOCAL = "local:"


class PolicyError(RuntimeError):
    pass


class PolicyClient(GrpcClient):
    stub_class = pb_grpc.AgentPolicyStub
    error = PolicyError
    what = "agent (policy channel)"

    def lsdb(self) -> list:
        """Every LSA the agent holds (the domain's, as SPF sees it)."""
        return list(self._call(self.stub.GetLsdb, pb.LsdbRequest()).lsas)

    def set_policies(self, policy_set: scsc_pb.PolicySet) -> scsc_pb.Ack:
        """A signed policy set (it replaces the switch's); the agent's answer."""
        return self._call(self.stub.SetPolicies, policy_set)
