"""An agent's admin service for the operator (gRPC AgentAdmin, routing.proto):
inspection (GetState, GetPolicies: the SCSC's policies in force) and the
operator's overrides, a prefix accepted without the SPA (``AcceptPrefix``,
named as such in the log) or withdrawn. The SCSC's pushes come on a channel of
their own (controller/agent/policy_service.py). It listens where controller/rpc.py allows (a private Unix socket, or
127.0.0.1); nothing a pod sends reaches it. The client is
controller/agent/admin_client.py.
"""
from __future__ import annotations

import time

from controller.agent.state_export import agent_state
from controller.proto import routing_pb2 as pb
from controller.proto import routing_pb2_grpc as pb_grpc
from traffic.wire import names


class AdminService(pb_grpc.AgentAdminServicer):
    def __init__(self, agent):
        self.agent = agent

    def GetState(self, request, context):
        return agent_state(self.agent, counters_only=request.counters_only)

    def GetPolicies(self, request, context):
        return self.agent.policies.view()

    def AcceptPrefix(self, request, context):
        """Operator override: a prefix accepted without the SPA (logged as such)."""
        gw = self.agent.gateway
        if gw is None:
            return pb.PrefixReply(ok=False, error=f"{self.agent.name} is not an SG")
        try:
            with self.agent.lock:
                gw.override(request.prefix, request.port, request.mac)
        except (ValueError, names.InvalidName) as exc:
            return pb.PrefixReply(ok=False, error=str(exc))
        self.agent.wake()
        return pb.PrefixReply(ok=True)

    def WithdrawPrefix(self, request, context):
        """Operator withdrawal of a held prefix (its pod's announcements or an override)."""
        gw = self.agent.gateway
        try:
            prefix = names.normalize(request.prefix)
        except names.InvalidName as exc:
            return pb.PrefixReply(ok=False, error=str(exc))
        with self.agent.lock:
            h = gw.held.get(prefix) if gw is not None else None
            if h is not None:
                gw._withdraw(h, time.monotonic(), "operator withdrawal")
                ok = True
            else:
                ok = self.agent.router.withdraw_prefix(prefix, time.monotonic())
        self.agent.wake()
        return pb.PrefixReply(ok=ok, error="" if ok else f"{request.prefix} was not accepted")
