"""Run-time actions' argument checking (dmsc/actions/dispatch.py), without a
network: unknown actions and parameters, wrong types, names the topology does
not have (the error lists what exists), processes the network does not run."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from dmsc import actions
from dmsc.actions import ActionError, check_params, run
from tests.conftest import ROOT
from topologies.topo import Topology

FIG2 = Topology.load(ROOT / "topologies" / "fig2.yaml")


class Recorder:
    """A stand-in network: the topology, and every call an action makes."""

    def __init__(self, **kw):
        self.topo = FIG2
        self.calls = []
        self.agents, self.pods, self.spas, self.key_files = {}, {}, [], {}
        self.scsc, self.scsc_addr = None, None
        self.failures = SimpleNamespace(link_down=lambda a, b: self.calls.append(("down", a, b)),
                                        link_up=lambda a, b: self.calls.append(("up", a, b)))
        self.__dict__.update(kw)


def test_every_action_has_help_and_typed_parameters():
    for name in actions.ACTIONS:
        assert actions.summary(name), name
        for p in actions.params_of(name):
            assert p["type"] in ("str", "int", "float", "bool"), (name, p)
    assert "parameters:\n  a: node (required)" in actions.help_text("link_down")
    assert "service_ms: float (required)" in actions.help_text("degrade")


def test_an_unknown_action_lists_the_actions():
    with pytest.raises(ActionError, match=r"no action 'explode'; actions: .*link_down"):
        check_params("explode", {})


def test_dashes_and_underscores_name_the_same_action():
    assert check_params("link-down", {"a": "sg1", "b": "sr1"}, FIG2) == {"a": "sg1", "b": "sr1"}


def test_an_unknown_parameter_names_itself_and_what_the_action_takes():
    with pytest.raises(ActionError, match=r"degrade: unknown parameter 'delay_ms'; "
                                          r"degrade takes: pod, service_ms"):
        check_params("degrade", {"pod": "pod1", "delay_ms": 3})


def test_a_missing_parameter_is_named():
    with pytest.raises(ActionError, match="degrade: parameter 'service_ms' is required"):
        check_params("degrade", {"pod": "pod1"})


@pytest.mark.parametrize("params, msg", [
    ({"pod": "pod1", "service_ms": "slow"}, "'service_ms' must be a number, not 'slow'"),
    ({"pod": "pod1", "service_ms": True}, "'service_ms' must be a number, not True"),
    ({"pod": ["pod1"], "service_ms": 1}, "'pod' must be a string"),
])
def test_a_wrong_type_is_named(params, msg):
    with pytest.raises(ActionError, match=msg):
        check_params("degrade", params)


def test_strings_from_a_command_line_are_converted():
    assert check_params("degrade", {"pod": "pod1", "service_ms": "200"}, FIG2) == \
        {"pod": "pod1", "service_ms": 200.0}
    assert check_params("hijack", {"pod": "pod2", "prefix": "/B/4", "watch_s": "2"}) == \
        {"pod": "pod2", "prefix": "/B/4", "watch_s": 2.0}


def test_unknown_switch_pod_and_node_names_list_what_exists():
    with pytest.raises(ActionError, match=r"'switch': no switch 'sg9'; switches: sg1, sg2, "
                                          r"sg3, sg4, sr1, sr2, sr3"):
        check_params("kill_switch", {"switch": "sg9"}, FIG2)
    with pytest.raises(ActionError, match=r"no pod 'sg1'; pods: pod1, pod2, pod3, pod4"):
        check_params("degrade", {"pod": "sg1", "service_ms": 1}, FIG2)
    with pytest.raises(ActionError, match=r"no node 'x'"):
        check_params("link_up", {"a": "x", "b": "sg1"}, FIG2)


def test_a_link_that_does_not_exist_lists_the_links_of_its_first_end():
    with pytest.raises(ActionError, match=r"no link sg1-sg4; links of sg1: "):
        check_params("link_down", {"a": "sg1", "b": "sg4"}, FIG2)
    try:
        check_params("link_down", {"a": "sg1", "b": "sg4"}, FIG2)
    except ActionError as exc:
        listed = str(exc).split("links of sg1: ")[1].split(", ")
    assert sorted(listed) == sorted(f"{u}-{v}" for u, v in FIG2.graph.edges("sg1"))


def test_a_bad_name_is_refused():
    with pytest.raises(ActionError, match="'prefix'"):
        check_params("announce", {"pod": "pod1", "prefix": "no-slash"}, FIG2)


def test_run_checks_before_it_acts():
    net = Recorder()
    with pytest.raises(ActionError, match="no link"):
        run(net, "link_down", a="sg1", b="sg4")
    assert net.calls == []
    assert run(net, "link_down", a="sg1", b="sr1") == {"link": "sg1-sr1", "state": "down"}
    assert net.calls == [("down", "sg1", "sr1")]


def test_processes_the_network_does_not_run_are_named():
    net = Recorder()
    with pytest.raises(ActionError, match="without an SCSC"):
        run(net, "kill_scsc")
    with pytest.raises(ActionError, match=r"no SPA 'spa' in this network; SPAs: none"):
        run(net, "kill_spa")
    with pytest.raises(ActionError, match="sr1 has no agent in this network"):
        run(net, "kill_agent", switch="sr1")
    with pytest.raises(ActionError, match="pod pod1 is not running"):
        run(net, "degrade", pod="pod1", service_ms=5)
    with pytest.raises(ActionError, match="hijack: how must be one of unauthorized, "
                                          "bad_signature, stale"):
        run(net, "hijack", pod="pod2", prefix="/B", how="politely")
    with pytest.raises(ActionError, match="degrade: service_ms must be >= 0"):
        run(net, "degrade", pod="pod1", service_ms=-1)


def test_central_controller_actions_say_when_there_is_none():
    net = Recorder()                                    # no start_central at all
    with pytest.raises(ActionError, match="no central controller"):
        run(net, "kill_central")
    net.stop_central = lambda kill=False: net.calls.append(("stop_central", kill))
    net.central = None                                  # distributed mode
    with pytest.raises(ActionError, match="distributed mode"):
        run(net, "kill_central")
    net.central = object()
    assert run(net, "kill_central") == {"central": "killed"}
    assert net.calls == [("stop_central", True)]


def test_withdraw_names_what_the_pod_announces(tmp_path):
    pod = SimpleNamespace(alive=lambda: True)
    net = Recorder(pods={"pod1": pod}, run_dir=tmp_path,
                   announcements=lambda p: {"/A": {}, "/A/1": {}})
    with pytest.raises(ActionError, match=r"pod pod1 does not announce /B/4; it announces: /A, /A/1"):
        run(net, "withdraw", pod="pod1", prefix="/B/4")


def test_churn_grants_then_starts_and_stops_instances_oldest_first(tmp_path):
    from topologies.emu import pod_control
    (tmp_path / "pods").mkdir()
    writes = []

    def update(pod, **changes):
        writes.append(changes)
        return pod_control.update_control(tmp_path, pod, **changes)
    net = Recorder(pods={"pod3": SimpleNamespace(alive=lambda: True)}, run_dir=tmp_path,
                   spas=["spa"], update_pod_control=update,
                   authorize=lambda prefix, pods, depth: net.calls.append(
                       ("authorize", prefix, pods, depth)))
    for bad, msg in ((dict(rate=0), "rate must be above 0"), (dict(rate=500), "at most 200"),
                     (dict(duration_s=0), "duration_s must be above 0"),
                     (dict(keep=0), "keep must be at least 1")):
        with pytest.raises(ActionError, match=msg):
            run(net, "churn", pod="pod3", **bad)
    assert net.calls == [] and writes == []
    out = run(net, "churn", pod="pod3", prefix="/up", rate=200, duration_s=0.1, keep=4)
    assert net.calls == [("authorize", "/up", ["pod3"], 2)]
    assert (out["changes"], out["added"], out["withdrawn"], out["live"]) == (20, 12, 8, 4)
    assert len(writes) == 20
    last = pod_control.read_control(tmp_path, "pod3")
    assert last["extra"] == [f"/up/{i}" for i in range(4)] + [f"/up/{i}" for i in range(4, 20, 2)]
    assert last["withdrawn"] == sorted(f"/up/{i}" for i in (0, 1, 2, 3, 4, 6, 8, 10))
    assert sorted(out["started_s"]) == sorted(last["extra"])


class FakeApp:
    def __init__(self, pid=100):
        self.pid, self.running = pid, True

    def alive(self):
        return self.running

    def kill(self):
        self.running = False


class FakeMesh:
    """The mesh mode's part of a network (topologies/emu/mesh.py), recording."""

    def __init__(self, calls):
        self.calls = calls
        self.apps = {"pod1": FakeApp(11), "pod4": FakeApp(14)}
        self.control = FakeApp(99)

    def alive(self, pod):
        return self.apps[pod].alive()

    def kill_app(self, pod):
        self.calls.append(("kill_app", pod))
        self.apps[pod].kill()

    def start_app(self, pod):
        self.calls.append(("start_app", pod))
        self.apps[pod].running = True

    def stop_control_plane(self, kill=False):
        self.calls.append(("stop_control_plane", kill))
        self.control.running = False

    def start_control_plane(self):
        self.calls.append(("start_control_plane",))
        self.control.running = True
        return self.control


def test_a_mesh_network_refuses_what_means_nothing_there_before_it_acts():
    net = Recorder(mode="mesh")
    net.mesh = FakeMesh(net.calls)
    for name, kw in (("kill_scsc", {}), ("kill_agent", {"switch": "sr1"}),
                     ("fib", {"switch": "sg1"}), ("kill_central", {})):
        with pytest.raises(ActionError, match=f"{name} cannot run in the mesh mode: it "):
            run(net, name, **kw)
    assert net.calls == []


def test_the_pod_and_controller_actions_act_on_the_mesh_in_the_mesh_mode():
    net = Recorder(mode="mesh")
    net.mesh = FakeMesh(net.calls)
    assert run(net, "kill_pod", pod="pod4") == {"pod": "pod4", "state": "killed", "pid": 14}
    with pytest.raises(ActionError, match="pod pod4 is not running; running pods: pod1"):
        run(net, "kill_pod", pod="pod4")
    assert run(net, "start_pod", pod="pod4")["state"] == "running"
    with pytest.raises(ActionError, match="pod pod4 is running"):
        run(net, "start_pod", pod="pod4")
    assert run(net, "kill_controller")["controller"] == "mesh control plane"
    assert run(net, "restart_controller")["state"] == "running"
    with pytest.raises(ActionError, match="the mesh control plane is running"):
        run(net, "restart_controller")
    assert net.calls == [("kill_app", "pod4"), ("start_app", "pod4"),
                         ("stop_control_plane", True), ("start_control_plane",)]


def test_kill_controller_is_the_central_controller_in_the_central_mode_and_none_distributed():
    net = Recorder(mode="central", mesh=None, central=FakeApp(7))
    net.stop_central = lambda kill=False: net.calls.append(("stop_central", kill))
    assert run(net, "kill_controller") == {"controller": "central", "state": "killed", "pid": 7}
    assert net.calls == [("stop_central", True)]
    net = Recorder(mode="distributed", central=None, mesh=None)
    with pytest.raises(ActionError, match="kill_controller cannot run in the distributed mode"):
        run(net, "kill_controller")
