"""The interactive CLI's parsing, help and error lines, on a stand-in network
(the commands on a running Figure 2: tests/mininet/test_live_tools.py)."""
import io

import pytest

from dmsc import actions
from dmsc.interactive import DmscCLI, UsageError, parse_args, usage
from tests.conftest import ROOT
from topologies.topo import Topology


class Proc:
    pid = 4242

    def alive(self):
        return True


class FakeNet:
    """What the actions touch, recorded."""

    def __init__(self):
        self.topo = Topology.load(ROOT / "topologies" / "fig2.yaml")
        self.mn = None
        self.pods = {p: Proc() for p in self.topo.pods()}
        self.agents = {s: Proc() for s in self.topo.switches()}
        self.scsc = None
        self.done = []

    def set_service_time(self, pod, ms):
        self.done.append(("service_time", pod, ms))

    def stop_agent(self, name, kill=False):
        self.done.append(("stop_agent", name, kill))


@pytest.fixture
def cli():
    out = io.StringIO()
    c = DmscCLI(FakeNet(), stdout=out, loop=False)

    def run(line):
        start = out.tell()
        c.onecmd(line)
        return out.getvalue()[start:]
    c.run = run
    return c


def test_arguments_are_positional_in_order_or_by_name():
    assert parse_args("call", ["pod1", "/B/4"]) == {"pod": "pod1", "dst": "/B/4"}
    assert parse_args("call", ["pod1", "/B/4", "timeout_s=2", "ping"]) == \
        {"pod": "pod1", "dst": "/B/4", "method": "ping", "timeout_s": "2"}
    assert parse_args("kill_agent", ["sg1"]) == {"switch": "sg1"}
    with pytest.raises(UsageError, match="call has no parameter 'bogus'"):
        parse_args("call", ["pod1", "/B/4", "bogus=1"])
    with pytest.raises(UsageError, match=r"too many arguments: usage call POD DST \[METHOD\]"):
        parse_args("call", ["pod1", "/B/4", "echo", "/A/1", "1", "extra"])
    assert usage("degrade") == "degrade POD SERVICE_MS"


def test_a_command_runs_its_action_with_the_parsed_arguments(cli):
    out = cli.run("degrade pod4 200")
    assert cli.net.done == [("service_time", "pod4", 200.0)]
    assert out.strip() == "pod4: service time 200 ms"
    out = cli.run("kill agent sg2")
    assert cli.net.done[-1] == ("stop_agent", "sg2", True)
    assert "agent sg2: killed (pid 4242)" in out


@pytest.mark.parametrize("line, says", [
    ("degrade pod9 200", "*** degrade: degrade: parameter 'pod': no pod 'pod9'; pods: pod1"),
    ("fib sg9", "no switch 'sg9'"),
    ("link down sg1 sg2", "no link sg1-sg2"),
    ("link sideways sg1 sr3", "usage: link down|up A B"),
    ("kill router sg1", "usage: kill switch NAME | agent NAME"),
    ("kill scsc", "without an SCSC"),
    ("degrade pod1 fast", "must be a number"),
    ("call pod1 /B/4 bogus=1", "call has no parameter 'bogus'"),
    ("call pod1 'unclosed", "cannot split the line"),
    ("action frobnicate", "no action 'frobnicate'"),
])
def test_a_bad_command_is_one_line_and_the_cli_goes_on(cli, line, says):
    out = cli.run(line)
    assert out.count("\n") == 1 and out.startswith("*** ") and says in out, out
    assert cli.run("degrade pod1 0").strip() == "pod1: service time 0 ms"     # still running


def test_an_unexpected_failure_is_one_line_naming_it(cli, monkeypatch):
    def boom(net, pod, service_ms):
        raise KeyError("gone")
    monkeypatch.setitem(actions.ACTIONS, "degrade", boom)
    out = cli.run("degrade pod1 5")
    assert out == "*** degrade: KeyError: 'gone'\n"


def test_help_lists_every_command_and_each_help_is_its_action_docstring(cli):
    out = cli.run("help")
    for cmd in ("fib", "lsdb", "rib", "policy", "call", "announce", "withdraw", "probe",
                "link", "kill", "restart", "stats", "scsc"):
        assert f"\n│ {cmd} " in out or f"│ {cmd} " in out, cmd
    out = cli.run("help call")
    assert out.startswith("call POD DST [METHOD] [SRC] [TIMEOUT_S]")
    assert actions.help_text("call") in out
    out = cli.run("help kill")
    for what in ("kill_switch", "kill_agent", "kill_spa", "kill_scsc"):
        assert actions.help_text(what) in out
    assert actions.help_text("restart_agent") in cli.run("help restart")
    assert actions.help_text("hijack") in cli.run("help action hijack")


def test_kill_and_restart_the_central_controller_in_central_mode(cli):
    net = cli.net
    net.central = Proc()
    net.stop_central = lambda kill=False: net.done.append(("stop_central", kill))
    net.restart_central = lambda: net.done.append(("restart_central",))
    assert cli.run("kill central").strip() == "central: killed"
    assert cli.run("restart central").strip() == "central: running"
    assert net.done == [("stop_central", True), ("restart_central",)]
