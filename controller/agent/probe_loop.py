"""An SG's probe thread: the probes its :class:`~controller.agent.probes.Prober`
has due go out through the switch, the replies come back to it (punted to the
agent as frames to its own name), and after each round its measurements go to
the SCSC (controller/agent/telemetry_reporter.py).

It probes the instances of every replicated service in the RIB (or of the
services named by ``--probe-service``): the ones the SCSC can choose between.
"""
from __future__ import annotations

import collections
import logging
import threading
import time

from controller.agent.probes import Prober
from controller.switch.p4rt import SwitchError
from traffic.wire import defs, names

log = logging.getLogger("dmsc.agent")


class ProbeLoop:
    """``agent``'s probe thread around ``prober``; ``services``: probe only
    these services' instances (empty: every replicated service)."""

    def __init__(self, agent, prober: Prober, services=()):
        self.agent = agent
        self.prober = prober
        self.lock = threading.Lock()       # the prober's: taken inside the agent's, never around it
        self.services = {names.normalize(x) for x in services}

    def targets(self) -> list[str]:
        """The instances of every replicated service in the RIB: the ones the
        SCSC can choose between (a service with one instance has no other
        place to send its traffic, and probing it would only cost)."""
        with self.agent.lock:
            insts = [p for p in self.agent.router.rib if not names.is_reserved(p)
                     and len(names.components(p)) >= 2]
        by_service = collections.Counter(names.components(p)[0] for p in insts)
        return [p for p in insts if by_service[names.components(p)[0]] > 1
                and (not self.services or "/" + names.components(p)[0] in self.services)]

    def loop(self) -> None:
        """Probes out every interval; a telemetry report to the SCSC after each round."""
        telemetry = self.agent.telemetry
        stub = telemetry.stub() if telemetry is not None else None
        last_round = -1.0
        while not self.agent.stop_event.wait(0.005):
            with self.agent.survives("prober"):
                self.round(stub, last_round)
                last_round = self.prober.next_round

    def round(self, stub, last_round: float) -> None:
        """The probes due now out; a telemetry report after a new round."""
        agent = self.agent
        if agent.sw is None:
            return
        now = time.monotonic()
        targets = self.targets()      # agent lock first, never inside the prober's
        with self.lock:
            frames = self.prober.due(now, targets)
            new_round = self.prober.next_round != last_round
        try:
            for frame in frames:
                agent.packet_out(frame, flags=defs.PKTOUT_ROUTE)
        except SwitchError as exc:
            log.info("probe not sent: %s", exc)
        if stub is not None and new_round and frames:
            agent.telemetry.paths(stub, self.prober, self.lock)

    def on_reply(self, frame) -> None:
        """A decoded probe reply (called under the agent's lock: the one order
        both threads use)."""
        with self.lock:
            self.prober.on_reply(frame, time.monotonic())

    def counters(self) -> dict:
        with self.lock:
            return dict(self.prober.counters)
