"""Several agents in one process (controller.agent.host): each its own
control plane; stopping or crashing one leaves the others running. Real
agents, each on its own fake P4Runtime switch and its own admin port."""
from __future__ import annotations

import contextlib
import time

import pytest

from controller.agent import agent_command
from controller.agent.admin_client import AdminClient, AdminError
from controller.agent.host import AgentHost, HostError
from tests.conftest import P4INFO, ROOT
from tests.support.fake_p4rt import FakeServer
from topologies.emu.child_processes import free_port
from topologies.topo import Topology

pytestmark = pytest.mark.skipif(not P4INFO.exists(), reason="needs p4src/build/dmsc.p4info.txtpb")
FIG2 = ROOT / "topologies" / "fig2.yaml"
SWITCHES = {"sg1": 1, "sg2": 2, "sr1": 5}


def wait_for(cond, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(0.02)


def answers(addr: str) -> bool:
    try:
        with contextlib.closing(AdminClient(addr, timeout=1.0)) as c:
            c.state()
        return True
    except AdminError:
        return False


def packet_outs(fake) -> int:
    return fake.packet_outs.qsize()


def core_ports(name: str) -> int:
    topo = Topology.load(FIG2)
    return sum(1 for nb in topo.graph.neighbors(name) if nb in topo.switches())


def silent_while_others_hello(fakes, quiet: str, others, rounds: int = 3) -> None:
    """``quiet``'s switch gets no packet-out while each of ``others`` sends
    ``rounds`` more hello rounds (one hello per core port each): a window
    measured in the live agents' own hellos, not in seconds of a busy host."""
    sent = {n: packet_outs(fakes[n]) for n in fakes}
    for n in others:
        wait_for(lambda n=n: packet_outs(fakes[n]) >= sent[n] + rounds * core_ports(n),
                 what=f"{n} sending {rounds} more rounds of hellos")
    assert packet_outs(fakes[quiet]) == sent[quiet], f"{quiet}'s control plane still sends"


@pytest.fixture
def hosted(tmp_path):
    """Three agents in one AgentHost, each on its own fake switch; yields
    (host, {name: fake switch}, {name: admin addr}, crash) where crash(name)
    makes that agent's protocol code raise from then on."""
    key = tmp_path / "domain.key"
    key.write_bytes(b"k" * 32)
    crashing: set[str] = set()
    with contextlib.ExitStack() as stack:
        fakes, admins, specs = {}, {}, {}
        for name, dev in SWITCHES.items():
            fake, addr = stack.enter_context(FakeServer())
            fakes[name] = fake
            admins[name] = f"127.0.0.1:{free_port()}"
            specs[name] = ["--topo", str(FIG2), "--switch", name, "--grpc-addr", addr,
                           "--device-id", str(dev), "--admin-addr", admins[name],
                           "--key-file", str(key), "--log-file", str(tmp_path / f"{name}.log")]

        def build(a):
            agent, server = agent_command.build(a)
            tick = agent.router.tick

            def maybe_crash(now):
                if a.switch in crashing:
                    raise RuntimeError(f"a bug in {a.switch}'s protocol code")
                tick(now)
            agent.router.tick = maybe_crash
            return agent, server

        host = AgentHost(specs, build=build)
        try:
            for name in specs:
                host.start(name)
            for name in specs:
                wait_for(lambda n=name: answers(admins[n]), what=f"{name} serving")
                wait_for(lambda n=name: packet_outs(fakes[n]) > 0, what=f"{name} sending hellos")
            yield host, fakes, admins, crashing.add
        finally:
            host.stop_all()


def test_one_agents_crash_does_not_stop_the_others(hosted):
    host, fakes, admins, crash = hosted
    crash("sg2")
    wait_for(lambda: not host.alive("sg2"), what="sg2 ended")
    assert "a bug in sg2" in host.crashed["sg2"]
    assert not answers(admins["sg2"])                   # its admin service is gone
    # sg2's control plane is silent while the others run on
    silent_while_others_hello(fakes, "sg2", ("sg1", "sr1"))
    assert all(host.alive(n) and answers(admins[n]) for n in ("sg1", "sr1"))


def test_killing_one_agent_stops_that_switch_only_and_it_restarts(hosted):
    host, fakes, admins, _crash = hosted
    assert host.stop("sr1", kill=True)
    assert not host.alive("sr1") and not answers(admins["sr1"])
    silent_while_others_hello(fakes, "sr1", ("sg1", "sg2"))
    assert all(answers(admins[n]) for n in ("sg1", "sg2"))
    sent = packet_outs(fakes["sr1"])
    host.command('{"op": "start", "name": "sr1"}')      # the same arguments again
    wait_for(lambda: answers(admins["sr1"]), what="sr1 back")
    wait_for(lambda: packet_outs(fakes["sr1"]) > sent, what="sr1 sending again")
    with pytest.raises(HostError, match="already running"):
        host.start("sr1")


def test_bad_commands_are_refused_and_stop_nothing(hosted, caplog):
    host, _fakes, admins, _crash = hosted
    for line in ("not json", '{"op": "stop"}', '{"op": "reboot", "name": "sg1"}',
                 '{"op": "start", "name": "sr9"}'):
        with pytest.raises(HostError):
            host.command(line)
    host.serve(iter(["garbage\n", '{"op": "start", "name": "sg1", "argv": ["--bad"]}\n']))
    assert "bad command" in caplog.text
    assert all(host.alive(n) and answers(admins[n]) for n in SWITCHES)
