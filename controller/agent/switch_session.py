"""An agent's P4Runtime session to its switch: opened (again after a switch
restart) and the switch made ready, pipeline and base tables.

The pipeline is pushed when the switch has none or another one (a fresh
switch); on a switch that already runs ours (an agent restart) the base
entries are there already and their inserts become modifies.
"""
from __future__ import annotations

import contextlib
import logging
import time

from controller.switch import p4names as N
from controller.switch.artifacts import BMV2_JSON, P4INFO
from controller.switch.p4rt import (MODIFY, PipelineError, SwitchConnection, SwitchError,
                                    WriteError)
from controller.switch.tables import base_entries, copp_updates

log = logging.getLogger("dmsc.agent")

AGENT_ELECTION_ID = (0, 100)   # above any inspection tool, which stays a backup


class SwitchSession:
    """Opens the session of switch ``name``; ``ports`` are its router's ports
    (role and MAC each), ``copp`` the topology's control-plane policing.
    ``stop_event`` ends the retries."""

    def __init__(self, name: str, grpc_addr: str, device_id: int, ports, copp,
                 stop_event, counters):
        self.name, self.grpc_addr, self.device_id = name, grpc_addr, device_id
        self.ports, self.copp = ports, copp
        self.stop_event, self.counters = stop_event, counters
        # pipeline pushes that may run at once (agents sharing a process share one)
        self.connect_gate = contextlib.nullcontext()

    def open(self, deadline_s: float | None = None) -> tuple[SwitchConnection, bool] | None:
        """(Re)connect and make the switch ready: (the session, whether the
        pipeline was pushed: a fresh switch), or None when stopped first.
        Retries until the switch answers (raises after ``deadline_s``)."""
        t0 = time.monotonic()
        backoff = 0.05
        while not self.stop_event.is_set():
            try:
                sw = SwitchConnection(self.name, self.grpc_addr, self.device_id,
                                      election_id=AGENT_ELECTION_ID).connect(timeout=1.0)
                break
            except SwitchError as exc:
                if deadline_s is not None and time.monotonic() - t0 > deadline_s:
                    raise
                log.info("switch not reachable yet (%s); retrying", exc)
                self.stop_event.wait(backoff)
                backoff = min(backoff * 2, 1.0)
        else:
            return None
        fresh = False
        try:
            sw.fetch_p4info()
            if {t.preamble.name for t in sw.p4info.tables} != N.TABLES:
                raise PipelineError(self.name, "a different pipeline")
        except PipelineError:
            log.info("pushing pipeline")
            with self.connect_gate:
                self._push_pipeline(sw)
            fresh = True
        self._ensure_base(sw)
        return sw, fresh

    def _push_pipeline(self, sw: SwitchConnection) -> None:
        """SetForwardingPipelineConfig, tried again while it fails: a BMv2 still
        starting on a loaded machine refused it once in 64 ("Error when trying
        to assign device") and that ended the agent."""
        backoff = 0.2
        while True:
            try:
                sw.set_pipeline(str(P4INFO), str(BMV2_JSON))
                return
            except PipelineError as exc:
                if self.stop_event.is_set():
                    raise
                self.counters["pipeline_push_failed"] += 1
                log.warning("%s; trying again in %.1f s", exc, backoff)
                self.stop_event.wait(backoff)
                backoff = min(2 * backoff, 2.0)

    def _ensure_base(self, sw: SwitchConnection) -> None:
        """Switch id, port roles and MACs; on an existing pipeline (agent
        restart) the entries are there already: those inserts become modifies."""
        ports = {p: (pt.role, pt.mac) for p, pt in self.ports.items()}
        ups = base_entries(sw, self.device_id, ports)
        try:
            sw.write(ups)
        except WriteError as exc:
            retry = [(MODIFY, ups[f.index][1]) for f in exc.failures
                     if f.code == "ALREADY_EXISTS"]
            if len(retry) != len(exc.failures):
                raise
            sw.write(retry)
        sw.write(copp_updates(sw, self.copp,
                              [p for p, (role, _m) in ports.items() if role == "pod"]))
