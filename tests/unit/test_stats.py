"""Per-port losses: kernel counters beside the P4 program's, on stand-ins."""
import pytest

from controller.switch import p4names as N
from dmsc import stats
from tests.conftest import ROOT
from topologies.topo import Topology
from traffic.wire import defs

FIG2 = Topology.load(ROOT / "topologies" / "fig2.yaml")


def sys_net(tmp_path, counts: dict[str, dict[str, int]]):
    """A fake /sys/class/net with these interfaces' statistics."""
    for intf, c in counts.items():
        d = tmp_path / intf / "statistics"
        d.mkdir(parents=True, exist_ok=True)
        for f in stats.KERNEL_FIELDS:
            (d / f).write_text(f"{c.get(f, 0)}\n")
    return tmp_path


class FakeSwitch:
    """read_counter as SwitchConnection answers it: {index: (packets, bytes)}."""

    def __init__(self, cells):
        self.cells = cells

    def read_counter(self, name, index=None):
        return self.cells[name]


@pytest.fixture
def sg1(tmp_path):
    kernel = {"sg1-eth1": {"rx_packets": 1000, "rx_dropped": 7, "tx_packets": 40},
              "sg1-eth2": {"rx_packets": 50}, "sg1-eth3": {"rx_packets": 60}}
    root = sys_net(tmp_path, kernel)
    return FakeSwitch({
        N.COUNTER_PORT_IN: {1: (30, 0), 2: (50, 0), 3: (58, 0), defs.CPU_PORT: (12, 0)},
        N.COUNTER_DROP_REASONS: {defs.DROP_BAD_VERSION: (20, 0), defs.DROP_TRUNCATED: (4, 0)},
        N.COUNTER_PUNT_REASONS: {defs.PUNT_CONTROL: (108, 0)},
    }), root


def test_lost_before_p4_is_interface_rx_minus_port_in_per_port(sg1):
    sw, root = sg1
    st = stats.read_switch(sw, FIG2, "sg1", clock=lambda: 5.0, sys_root=root)
    assert [(p.port, p.intf, p.neighbour) for p in st.ports] == [
        (1, "sg1-eth1", "pod1"), (2, "sg1-eth2", "sr1"), (3, "sg1-eth3", "sr3")]
    assert [p.lost_before_p4 for p in st.ports] == [970, 0, 2]
    assert st.port(1).kernel["rx_dropped"] == 7 and st.cpu_in == 12
    assert st.drops["bad_version"] == 20 and st.drops["truncated"] == 4 and st.drops["fib"] == 0
    assert st.punts == {"announce": 0, "control": 108, "local": 0, "no_route": 0}
    assert st.totals() == {"rx_packets": 1110, "rx_dropped": 7, "p4_in": 138,
                           "lost_before_p4": 972, "p4_dropped": 24, "punted": 108}


def test_a_window_is_the_difference_of_two_snapshots(sg1):
    sw, root = sg1
    before = stats.read_switch(sw, FIG2, "sg1", clock=lambda: 5.0, sys_root=root)
    (root / "sg1-eth1" / "statistics" / "rx_packets").write_text("1500\n")
    sw.cells[N.COUNTER_PORT_IN][1] = (130, 0)
    sw.cells[N.COUNTER_DROP_REASONS][defs.DROP_BAD_VERSION] = (120, 0)
    win = stats.read_switch(sw, FIG2, "sg1", clock=lambda: 7.5, sys_root=root).since(before)
    p1 = win.port(1)
    assert (p1.kernel["rx_packets"], p1.p4_in, p1.lost_before_p4) == (500, 100, 400)
    assert win.drops["bad_version"] == 100 and win.drops["truncated"] == 0
    assert win.port(2).lost_before_p4 == 0 and win.at == 2.5
    d = win.to_dict()
    assert d["ports"][0]["lost_before_p4"] == 400 and d["totals"]["p4_dropped"] == 100


def test_a_missing_interface_is_a_clear_error(tmp_path):
    with pytest.raises(stats.StatsError, match="interface sg9-eth1: no counters"):
        stats.kernel_counters("sg9-eth1", tmp_path)


def test_tables_show_every_port_and_only_reasons_that_counted(sg1):
    from rich.console import Console
    sw, root = sg1
    st = stats.read_switch(sw, FIG2, "sg1", sys_root=root)
    con = Console(width=200, record=True)
    for t in stats.tables(st):
        con.print(t)
    text = con.export_text()
    assert "sg1-eth1" in text and "970" in text and "bad_version" in text
    assert "hop_limit" not in text                   # counted nothing: left out
    con = Console(width=200, record=True)
    for t in stats.tables(st, all_reasons=True):
        con.print(t)
    assert "hop_limit" in con.export_text()
