"""An agent's telemetry to the SCSC (DMSC type-4 signaling, controller/proto/scsc.proto).

Every switch reports, every ``COUNTERS_S``, the packets each FIB entry matched;
an SG also reports its path measurements after each probe round
(controller/agent/probe_loop.py). Each report is numbered above the last and
signed with the telemetry key (controller/keys.py); one that the SCSC does not
answer is counted (``telemetry_unsent``) and dropped, not retried.
"""
from __future__ import annotations

import logging
import threading
import time

import grpc

from controller.keys import sign
from controller.proto import scsc_pb2 as scsc_pb
from controller.proto import scsc_pb2_grpc as scsc_grpc
from controller.switch.p4rt import SwitchError
from controller.switch.tables import Fib
from traffic.wire import names

log = logging.getLogger("dmsc.agent")

COUNTERS_S = 2.0         # FIB counters to the SCSC this often (when there is one)


class TelemetryReporter:
    """``agent``'s reports to the SCSC at ``scsc_addr``, signed with ``key``."""

    def __init__(self, agent, scsc_addr: str, key: bytes):
        self.agent = agent
        self.scsc_addr = scsc_addr
        self.key = key
        self.seq = int(time.time() * 1000)     # above any earlier run's
        self.seq_lock = threading.Lock()

    def stub(self) -> scsc_grpc.ScscStub:
        """A stub on a channel of its own (one for each thread that reports)."""
        return scsc_grpc.ScscStub(grpc.insecure_channel(self.scsc_addr))

    def counters_loop(self) -> None:
        """Every COUNTERS_S, what this switch can add for the SCSC: the packets
        each FIB entry matched (SRs report this and nothing else)."""
        stub = self.stub()
        while not self.agent.stop_event.wait(COUNTERS_S):
            with self.agent.survives("counters"):
                self.counters_round(stub)

    def counters_round(self, stub) -> None:
        """One report of the packets each FIB entry matched."""
        agent = self.agent
        sw = agent.sw
        if sw is None:
            return
        try:
            with agent.fib.lock:
                counts = Fib(sw).counters()
        except SwitchError as exc:
            log.info("FIB counters unreadable: %s", exc)
            return
        idx = names.NameIndex()
        with agent.lock:
            for p in agent.router.rib:
                try:
                    idx.add(p)
                except names.InvalidName:
                    pass
        t = scsc_pb.Telemetry(sg=agent.name)
        for k, (pkts, _b) in counts.items():
            t.fib_packets[idx.lookup(*k)] = pkts
        self.send(stub, t)

    def paths(self, stub, prober, prober_lock) -> None:
        """One report of the paths ``prober`` measured (those with samples)."""
        t = scsc_pb.Telemetry(sg=self.agent.name)
        now = time.monotonic()
        with prober_lock:
            for st in prober.stats.values():
                if not st.samples:
                    continue
                t.paths.add(instance=st.instance,
                            delay_ms=prober.delay_ms(st.instance, now) or 0.0,
                            jitter_ms=st.jitter_ms, loss=st.loss,
                            bandwidth_mbps=st.bandwidth_mbps or 0.0, path=st.path,
                            hop_us=st.hop_us, hop_qdepth=st.hop_qdepth, samples=st.samples)
        self.send(stub, t)

    def send(self, stub, t) -> None:
        """Number, sign and send one report. One at a time: the SCSC refuses a
        sequence number that is not above the last it took from us."""
        counters = self.agent.counters
        try:
            with self.seq_lock:
                self.seq += 1
                t.seq, t.sent_at = self.seq, time.time()
                ack = stub.Report(sign(t, self.key), timeout=0.5)
        except grpc.RpcError as exc:
            counters["telemetry_unsent"] += 1
            if counters["telemetry_unsent"] % 50 == 1:
                log.warning("SCSC at %s not answering (%s): telemetry not delivered",
                            self.scsc_addr, exc.code().name)
            return
        counters["telemetry_sent" if ack.ok else "telemetry_refused"] += 1
        if not ack.ok:
            log.warning("SCSC refused our telemetry: %s", ack.error)
