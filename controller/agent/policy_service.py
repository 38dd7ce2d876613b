"""The agent's end of the SCSC's policy channel (AgentPolicy,
controller/proto/policy.proto; the client is controller/policy_channel.py):
its LSDB to the SCSC, the SCSC's policy sets to controller/agent/policies.py,
which checks their signature (policy key) and writes them. Served apart from
the operator's admin service (controller/agent/admin_service.py).
"""
from __future__ import annotations

import time

from controller.proto import policy_pb2 as pb
from controller.proto import policy_pb2_grpc as pb_grpc


class PolicyService(pb_grpc.AgentPolicyServicer):
    def __init__(self, agent):
        self.agent = agent

    def GetLsdb(self, request, context):
        with self.agent.lock:
            lsdb, now = self.agent.router.lsdb, time.monotonic()
            return pb.LsdbReply(lsas=[lsdb.outgoing(k, now) for k in sorted(lsdb.entries)])

    def SetPolicies(self, request, context):
        return self.agent.policies.set(request)
