"""The agent's process: ``python -m controller.agent``, one per SG/SR.

    python -m controller.agent --topo topologies/fig2.yaml --switch sg1 \\
        --grpc-addr 127.0.0.1:50001 --device-id 1 --admin-addr 127.0.0.1:50101 \\
        --key-file runs/x/domain.key

:func:`build` makes the agent (controller/agent/router_agent.py) from the
arguments and starts its local admin service for the operator
(controller/agent/admin_service.py: inspection and the operator override
``AcceptPrefix``, a prefix accepted without the SPA, named as such in the log)
and, on an address of its own, the SCSC's policy channel
(controller/agent/policy_service.py); nothing a pod sends reaches either.
An agent host (controller/agent/host.py) builds several agents the same way.
SIGTERM stops the agent and leaves the switch forwarding.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
from concurrent import futures
from pathlib import Path

import grpc

from controller.agent.admin_service import AdminService
from controller.agent.gateway import DEFAULT_LEASE_S
from controller.agent import liveness
from controller.agent.liveness import ECHO_MISSES, ECHOES_PER_READ, echo_ms_for
from controller.agent.policy_service import PolicyService
from controller.agent.router_agent import Agent
from controller.proto import policy_pb2_grpc
from controller.proto import routing_pb2_grpc as pb_grpc
from controller.routing.router import Config
from controller.rpc import EXCLUSIVE_PORT, bind, check_listen_addr
from topologies.topo import Topology

log = logging.getLogger("dmsc.agent")



def _at_least_one(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: 1 or more")
    return n


def _echo_ms(text: str):
    """``--echo-ms``: a whole number of ms (0: no echoes), 'auto' or 'fast'."""
    if text in ("auto", "fast"):
        return text
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a whole number of ms, 'auto' or 'fast'") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: 0 (no echoes) or more")
    return v


def liveness_settings(a: argparse.Namespace) -> tuple[int, int, int, int]:
    """(echo interval ms, misses, echoes per read, hello relax) from the
    arguments: what ``--echo-ms`` (a number, 'auto' or 'fast') implies, and
    the three others where they are given."""
    fast = a.echo_ms == "fast"
    echo_ms = (liveness.fast_echo_ms(a.hello_ms) if fast
               else echo_ms_for(a.hello_ms) if a.echo_ms == "auto" else a.echo_ms)

    def pick(given, normal, preset):
        return given if given is not None else preset if fast else normal
    return (echo_ms, pick(a.echo_misses, ECHO_MISSES, liveness.FAST_MISSES),
            pick(a.echoes_per_read, ECHOES_PER_READ, liveness.FAST_PER_READ),
            pick(a.hello_relax, 1, liveness.FAST_HELLO_RELAX))


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description="DMSC SG/SR agent")
    ap.add_argument("--topo", required=True)
    ap.add_argument("--switch", required=True)
    ap.add_argument("--grpc-addr", required=True)
    ap.add_argument("--device-id", type=int, required=True)
    ap.add_argument("--admin-addr", required=True,
                    help="unix:/private/dir/NAME.sock (root only) or 127.0.0.1:<port>")
    ap.add_argument("--policy-addr",
                    help="the SCSC's policy channel to this agent (LSDB out, policies in), "
                         "apart from the admin service: unix:/private/dir/NAME.sock (root "
                         "only) or 127.0.0.1:<port>; none: no SCSC can steer this switch")
    ap.add_argument("--key-file", required=True, help="domain key for LSA/hello HMACs")
    ap.add_argument("--hello-ms", type=int, default=Config.hello_ms)
    ap.add_argument("--dead-ms", type=int, default=None, help="default: 3 hellos")
    ap.add_argument("--rxmt-ms", type=int, default=None,
                    help="first LSA retransmit (default: 2.5 hellos, at least 250 ms)")
    ap.add_argument("--echo-ms", default="0", type=_echo_ms,
                    help="an echo out of each core port this often (data-plane liveness, "
                         "controller/agent/liveness.py); 0 (the default): hellos alone; "
                         "'auto': a third of the hello interval at the default hello, else "
                         "none (liveness.echo_ms_for); 'fast': half the hello interval, 1 "
                         "miss, a read every echo, hellos relaxed 4x (docs/routing.md)")
    ap.add_argument("--echo-misses", type=_at_least_one, default=None,
                    help=f"echoes unanswered in a row before a neighbour is down (default "
                         f"{ECHO_MISSES}; 'fast': {liveness.FAST_MISSES})")
    ap.add_argument("--hello-relax", type=_at_least_one, default=None,
                    help="on a port whose echoes are answered, a hello only every N hello "
                         "intervals (its dead interval N times longer: the echoes watch the "
                         f"link); default 1, never ('fast': {liveness.FAST_HELLO_RELAX})")
    ap.add_argument("--echoes-per-read", type=_at_least_one, default=None,
                    help=f"echoes on each port per read of the echo_rx counter (default "
                         f"{ECHOES_PER_READ}; 'fast': {liveness.FAST_PER_READ})")
    ap.add_argument("--grace-s", type=float, default=3.0)
    ap.add_argument("--spa", action="append", default=[], metavar="127.0.0.1:PORT",
                    help="an SPA address (repeatable: the next is used when one is down)")
    ap.add_argument("--lease-s", type=float, default=DEFAULT_LEASE_S,
                    help="lease of an accepted prefix; pods re-announce before it runs out")
    ap.add_argument("--scsc", help="the SCSC's address (127.0.0.1:PORT): telemetry goes there")
    ap.add_argument("--probe-ms", type=int, default=0,
                    help="an SG probes its targets this often (0: no probes)")
    ap.add_argument("--probe-service", action="append", default=[],
                    help="probe only this service's instances (repeatable; default: every "
                         "replicated service)")
    ap.add_argument("--cpu-intf",
                    help="the veth on the switch's CPU port (BMv2 -i 255@<its peer>, no "
                         "--cpu-port): packet I/O through it instead of the P4Runtime stream")
    ap.add_argument("--log-file")
    ap.add_argument("--log-level", default="INFO")
    return ap


class AgentArgsError(ValueError):
    """Agent arguments that cannot work (the message says why)."""


class Servers:
    """An agent's gRPC servers (admin; the policy channel when it has one),
    stopped together."""

    def __init__(self, *servers: grpc.Server):
        self.servers = servers

    def stop(self, grace: float | None = None) -> None:
        for s in self.servers:
            s.stop(grace)


def _serve(name: str, addr: str, flag: str, add_servicer, workers: int) -> grpc.Server:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers,
                                                    thread_name_prefix=name),
                         options=EXCLUSIVE_PORT)
    add_servicer(server)
    if not bind(server, addr):
        raise AgentArgsError(f"{flag} {addr} cannot be bound (in use?)")
    server.start()
    return server


def build(a: argparse.Namespace, topo: Topology | None = None) -> tuple[Agent, Servers]:
    """The agent and its servers (started: the admin service, and the policy
    channel when ``--policy-addr`` is given) from parsed arguments; ``topo``
    saves loading the topology again when several agents share it."""
    for flag, addr in (("--admin-addr", a.admin_addr), ("--policy-addr", a.policy_addr)):
        if addr is None:
            continue
        try:
            warning = check_listen_addr(addr)
        except ValueError as exc:
            raise AgentArgsError(f"{flag} {exc}") from None
        if warning:
            log.warning("%s", warning)
    topo = topo or Topology.load(a.topo)
    key = Path(a.key_file).read_bytes()
    echo_ms, echo_misses, echoes_per_read, hello_relax = liveness_settings(a)
    agent = Agent(topo, a.switch, a.grpc_addr, a.device_id, key,
                  Config.for_hello(a.hello_ms, a.dead_ms, a.rxmt_ms, hello_relax),
                  grace_s=a.grace_s,
                  spa_addrs=a.spa, lease_s=a.lease_s, scsc_addr=a.scsc, probe_ms=a.probe_ms,
                  probe_services=a.probe_service, cpu_intf=a.cpu_intf,
                  echo_ms=echo_ms, echo_misses=echo_misses, echoes_per_read=echoes_per_read)
    servers = [_serve(f"{a.switch}:admin", a.admin_addr, "--admin-addr",
                      lambda s: pb_grpc.add_AgentAdminServicer_to_server(AdminService(agent), s),
                      workers=3)]
    if a.policy_addr:
        try:
            servers.append(_serve(f"{a.switch}:policy", a.policy_addr, "--policy-addr",
                                  lambda s: policy_pb2_grpc.add_AgentPolicyServicer_to_server(
                                      PolicyService(agent), s), workers=2))
        except AgentArgsError:
            servers[0].stop(None)
            raise
    return agent, Servers(*servers)


def main(argv=None) -> int:
    a = parser().parse_args(argv)
    logging.basicConfig(filename=a.log_file, level=a.log_level,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        agent, server = build(a)
    except AgentArgsError as exc:
        print(f"agent: {exc}", file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: agent.stop_event.set())
    log.info("agent %s starting (switch %s, admin %s, policy channel %s)", a.switch,
             a.grpc_addr, a.admin_addr, a.policy_addr or "none")
    try:
        agent.run()
    finally:
        server.stop(grace=None)
        log.info("agent stopping; counters %s", dict(agent.counters))
    return 0


if __name__ == "__main__":
    sys.exit(main())
