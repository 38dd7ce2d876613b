"""One BMv2 switch, four veth ports, the real pipeline: the data-plane rig.

Port 1 is pod-facing, ports 2-4 core-facing. Each test starts from an empty
FIB and policy table and with drained links; the switch, its veths and its
process are removed at the end of the module, even after a failure.
"""
from __future__ import annotations

import select
import time
from dataclasses import dataclass

import pytest

from controller.switch import p4names as N
from traffic.wire import defs
from controller.switch.tables import Fib, SourceGuard, base_entries, policy_stage
from controller.switch.p4rt import DELETE, SwitchConnection
from tests.conftest import BMV2_JSON, P4INFO
from topologies.emu.apps.bmv2_app import Bmv2Process
from topologies.emu.veth import VethPairs
from traffic.wire import layers
from traffic.wire.link import RawLink

SWITCH_ID = 42
PORT_ROLES = {1: "pod", 2: "core", 3: "core", 4: "core"}


def port_mac(port: int) -> str:
    return f"02:00:00:00:2a:{port:02x}"


def peer_mac(port: int) -> str:
    return f"02:00:00:00:99:{port:02x}"


@dataclass
class Rig:
    sw: SwitchConnection
    links: dict[int, RawLink]
    proc: Bmv2Process

    def send(self, port: int, frame) -> None:
        self.links[port].send(bytes(frame))

    def recv(self, port: int, timeout: float = 2.0):
        raw = self.links[port].recv(timeout)
        return None if raw is None else raw

    def expect(self, port: int, timeout: float = 2.0) -> layers.DMSC:
        raw = self.links[port].recv(timeout)
        assert raw is not None, f"no frame arrived on port {port}"
        return layers.parse(raw)

    def quiet(self, ports=None, timeout: float = 0.2) -> dict[int, int]:
        """Frames that arrive on ``ports`` within ``timeout`` (should be none)."""
        return {p: len(self.links[p].drain(timeout)) for p in (ports or self.links)}

    def drain(self) -> None:
        for link in self.links.values():
            link.drain(0.01)
        while self.sw.packet_in(timeout=0.01) is not None:
            pass

    def drops(self) -> dict[str, int]:
        cells = self.sw.read_counter(N.COUNTER_DROP_REASONS)
        return {name: cells.get(idx, (0, 0))[0] for idx, name in defs.DROP_REASONS.items()}

    def punts(self) -> dict[str, int]:
        cells = self.sw.read_counter(N.COUNTER_PUNT_REASONS)
        return {name: cells.get(idx, (0, 0))[0] for idx, name in defs.PUNT_REASONS.items()}

    def collect(self, ports, n: int, timeout: float = 5.0) -> dict[int, list[bytes]]:
        """Frames arriving on ``ports`` until ``n`` have, or ``timeout`` passes
        (then fewer: the caller's count fails)."""
        got: dict[int, list[bytes]] = {p: [] for p in ports}
        deadline = time.monotonic() + timeout
        socks = {self.links[p].sock: p for p in ports}
        while sum(map(len, got.values())) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select(list(socks), [], [], left)
            for sock in ready:
                raw = self.links[socks[sock]].recv(0)
                if raw is not None:
                    got[socks[sock]].append(raw)
        return got

    def packet_ins(self, n: int, timeout: float = 5.0) -> list:
        """Packet-ins until ``n`` have arrived or ``timeout`` passes."""
        out, deadline = [], time.monotonic() + timeout
        while len(out) < n and (left := deadline - time.monotonic()) > 0:
            pin = self.sw.packet_in(timeout=left)
            if pin is not None:
                out.append(pin)
        return out

    def wait_counter(self, read, key: str, at_least: int, timeout: float = 2.0) -> int:
        """Poll a counter until it reaches ``at_least`` or the deadline passes."""
        deadline = time.monotonic() + timeout
        while True:
            value = read()[key]
            if value >= at_least or time.monotonic() > deadline:
                return value
            time.sleep(0.01)


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("bmv2")
    with VethPairs(len(PORT_ROLES)) as veths, \
            Bmv2Process("dut", 1, {p: veths.switch_side(p) for p in PORT_ROLES},
                        log_dir=log_dir, log_level="info") as proc:
        sw = SwitchConnection("dut", proc.grpc_addr, 1).connect()
        links = {}
        try:
            sw.set_pipeline(str(P4INFO), str(BMV2_JSON))
            sw.write(base_entries(sw, SWITCH_ID,
                                  {p: (r, port_mac(p)) for p, r in PORT_ROLES.items()}))
            # The pod port may use any source name here (one test narrows it):
            # each test is about one other feature.
            sw.write(SourceGuard(sw).diff(set(), {(1, 0, 0)}))
            links = {p: RawLink(veths.host_side(p)) for p in PORT_ROLES}
            yield Rig(sw, links, proc)
            assert proc.alive(), "the switch died during the tests"
        finally:
            for link in links.values():
                link.close()
            sw.close()


@pytest.fixture
def fib(rig):
    """An empty FIB and policy table before and after the test."""
    f = Fib(rig.sw)
    f.sync({})
    rig.drain()
    yield f
    f.sync({})
    rig.sw.write([(DELETE, te) for te in rig.sw.read_table(N.TABLE_POLICY)]
                 + policy_stage(rig.sw, False, [2, 3, 4]))
