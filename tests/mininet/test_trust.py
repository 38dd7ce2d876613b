"""Names you can trust, tried as an attacker would, on Figure 2 in both modes.

Every frame an attacker sends here is built by ``tests.support.attacker`` from
docs/wire-format.md and docs/spa.md alone (not the project's wire code or announce
helpers) and sent from a pod's namespace with the pod's own key. Each test asserts
that the attack was refused and counted, that no FIB changed and that a victim's
calls, running meanwhile, were neither diverted nor lost:

* another pod of the same service announces a sibling's instance (pod1 -> /B/4);
* a name computed to have the CRC-32 of /B, authorized and announced;
* a pod sends requests with another pod's instance name as their source.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from controller.spa.spa_client import SpaError
from controller.switch import p4names as N
from dmsc.converge import expected_fibs
from tests.conftest import ROOT
from tests.support.attacker import crc32_twin
from topologies.emu.child_processes import py_env
from traffic.wire import defs

pytestmark = [pytest.mark.mininet,
              pytest.mark.parametrize("net", ["distributed", "central"], indirect=True,
                                      scope="module")]


def attack(net, pod, cmd, *args, timeout=3.0) -> dict:
    t = net.topo
    res = net.run_in(pod, ["-m", "tests.support.attacker", cmd, "--iface", t.intf_name(pod, 0),
                           "--mac", t.mac(pod, 0), "--timeout", str(timeout), *args],
                     timeout=timeout + 60)
    assert res.returncode == 0, res.stderr[-1500:]
    return json.loads(res.stdout)


def victim_calls(net, count=150):
    """pod3 calls /B/4 (pod4's instance) in the background: the calls an attack must
    not divert or lose."""
    t = net.topo
    return net.host("pod3").popen(
        [sys.executable, "-m", "traffic.rmi_client", "--iface", t.intf_name("pod3", 0), "--src", "/D/3",
         "--mac", t.mac("pod3", 0), "--timeout", "0.5", "--count", str(count), "--interval", "0.01",
         "/B/4", "whoami"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT), env=py_env())


def finished(calls) -> dict:
    out, err = calls.communicate(timeout=90)
    assert calls.returncode == 0, err[-1000:]
    return json.loads(out)


def fibs(reader, topo):
    return {s: reader.read(s) for s in topo.switches()}


def drops(reader, switch) -> dict[str, int]:
    cells = reader.conns[switch].read_counter(N.COUNTER_DROP_REASONS)
    return {name: cells.get(i, (0, 0))[0] for i, name in defs.DROP_REASONS.items()}


def spa_count(net, counter) -> int:
    with net.spa() as spa:
        return spa.show().counters.get(counter, 0)


def test_another_pod_of_the_service_cannot_take_its_sibling_instance(net, reader):
    topo = net.topo
    before = fibs(reader, topo)
    refused = spa_count(net, "invalid_owned_by_other")
    calls = victim_calls(net)
    got = attack(net, "pod1", "announce", "--key", str(net.key_files["pod1"]), "--prefix", "/B/4",
                 "--src", "/B/1")
    result = finished(calls)
    assert (got["answer"], got["body"]["reason"]) == ("nack", "owned_by_other"), got
    assert "belongs to key(s) pod4" in got["body"]["text"]
    assert spa_count(net, "invalid_owned_by_other") == refused + 1
    assert fibs(reader, topo) == before == expected_fibs(topo)       # no FIB changed
    assert result["sent"] == 150 and result["ok"] == 150, result      # none lost
    assert result["responders"] == {"/B/4": 150}                      # none diverted


def test_a_name_forged_to_share_a_switch_key_is_refused(net, reader):
    topo = net.topo
    twin = crc32_twin("B")                    # printable, with the CRC-32 of "B"
    before = fibs(reader, topo)
    with net.spa() as spa:
        with pytest.raises(SpaError, match="switch key of /B"):
            spa.authorize(f"/{twin}", None, ["pod2"])             # the authorization
        spa.authorize("/", 2, ["pod2"])       # a careless operator's grant of everything
        try:
            collisions = spa.show().counters.get("invalid_key_collision", 0)
            calls = victim_calls(net)
            got = attack(net, "pod2", "announce", "--key", str(net.key_files["pod2"]),
                         "--prefix", f"/{twin}/4", "--src", "/C/2")
            result = finished(calls)
            assert (got["answer"], got["body"]["reason"]) == ("nack", "key_collision"), got
            assert spa.show().counters["invalid_key_collision"] == collisions + 1
        finally:
            spa.revoke("/")
    assert fibs(reader, topo) == before
    assert result["ok"] == 150 and result["responders"] == {"/B/4": 150}, result


def test_the_sg_refuses_a_colliding_name_even_without_the_spa(net):
    """The second line: an operator override (no SPA asked) of a name with /B/4's
    key is refused by the agent's RIB guard, naming both names."""
    if net.mode != "distributed":
        pytest.skip("optional: operator overrides are the agents' admin (the central "
                    "view's guard is a unit test)")
    twin = crc32_twin("B")
    with net.admin("sg2") as c:
        with pytest.raises(Exception, match=f"/{twin}/4 has the switch key of /B"):
            c.accept_prefix(f"/{twin}/4", net.topo.port("sg2", "pod2"), net.topo.mac("pod2", 0))


def test_a_pod_cannot_speak_as_another_pod(net, reader):
    """50 requests from pod2 with pod1's instance name as source: dropped at sg2 and
    counted, none answered to pod1; as itself pod2 is answered."""
    topo = net.topo
    before_drops = drops(reader, "sg2")
    before_fib = reader.conns["sg1"]
    from controller.switch.tables import Fib
    from traffic.wire import names
    a1 = names.prefix_key("/A/1")
    to_pod1 = Fib(before_fib).counters().get(a1, (0, 0))[0]
    forged = attack(net, "pod2", "requests", "--src", "/A/1", "--dst", "/B/4", "--count", "50",
                    "--interval", "0.01")
    assert forged == {"sent": 50, "answers": 0}, forged
    assert drops(reader, "sg2")["src_not_held"] == before_drops["src_not_held"] + 50
    assert Fib(reader.conns["sg1"]).counters().get(a1, (0, 0))[0] == to_pod1  # nothing reflected
    honest = attack(net, "pod2", "requests", "--src", "/C/2", "--dst", "/B/4", "--count", "5",
                    "--interval", "0.5")
    assert honest == {"sent": 5, "answers": 5}, honest
    assert drops(reader, "sg2")["src_not_held"] == before_drops["src_not_held"] + 50
    assert fibs(reader, topo) == expected_fibs(topo)


NOBODY_CONNECT = """
import socket, sys
for path in sys.argv[1:]:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        print("CONNECTED", path)
    except OSError as exc:
        print("REFUSED", path, exc.errno)
    finally:
        s.close()
"""


def test_only_root_may_call_the_services(net, tmp_path):
    """An unprivileged local user (setpriv as nobody) reaches no service's socket:
    not the SPA's (authorize a prefix), not an agent's or the central controller's
    admin (install a route), not an agent's policy channel (steer traffic), not a
    switch's P4Runtime (write a FIB); root does."""
    from controller.rpc import addr_open
    addrs = [s.addr for s in net.spas]
    addrs += [net.central.admin_addr] if net.mode == "central" else \
        [x for a in net.agents.values() for x in (a.admin_addr, a.policy_addr)]
    addrs += [net.switch(s).grpc_addr for s in net.topo.switches()]     # P4Runtime itself
    assert addrs and all(a.startswith("unix:") for a in addrs), addrs
    paths = [a[len("unix:"):] for a in addrs]
    res = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                          "/usr/bin/python3", "-c", NOBODY_CONNECT, *paths],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    import errno
    assert res.stdout.split("\n")[:-1] == [f"REFUSED {p} {errno.EACCES}" for p in paths], res.stdout
    assert all(addr_open(a) for a in addrs)                          # root: served
    # The CLI as nobody, as the independent check ran it: refused, nothing authorized.
    cli = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                          str(ROOT / ".venv" / "bin" / "dmsc"), "spa", "allow", "/stolen",
                          "--keys", "pod1", "--run-dir", str(net.run_dir)],
                         capture_output=True, text=True, timeout=60, cwd="/")
    assert cli.returncode != 0
    with net.spa() as spa:
        assert "/stolen" not in {a.prefix for a in spa.show().authorizations}
