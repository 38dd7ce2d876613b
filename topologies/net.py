"""DmscNet: a running emulation of a Topology.

Mininet with no controller: every SG/SR is a :class:`BMv2Switch`, every pod a
Mininet host (its own network namespace) with one interface and no IP
address, links and MACs exactly as the topology file says. IPv6 is switched
off on every interface so that the only frames on the wire are the ones the
testbed sends. Link bandwidth uses htb (TCLink); delay/jitter/loss are applied
only when netem exists, otherwise skipped with a warning.

Everything started here is stopped here, in reverse order, even when a step
fails: pod processes, then switches and links, then hosts.
"""
from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
import time
from pathlib import Path

from topologies.bmv2 import BMv2Switch, die_with_parent
from topologies.linkcaps import netem_available
from topologies.topo import Topology

log = logging.getLogger("dmsc.net")

REPO_ROOT = Path(__file__).resolve().parent.parent
P4INFO = REPO_ROOT / "p4src" / "build" / "dmsc.p4info.txtpb"
BMV2_JSON = REPO_ROOT / "p4src" / "build" / "dmsc.json"


class NetError(RuntimeError):
    pass


def _quiet_mininet():
    from mininet.log import setLogLevel
    setLogLevel("warning")


SWITCHES_PER_CORE = 4      # at the agents' default hello; measured, see docs/routing.md


def agent_timers(switches: int, hello_ms: int | None = None,
                 cores: int | None = None) -> tuple[int, int]:
    """Hello and dead interval for the agents of a network of ``switches``.

    Each hello costs CPU in two agents and two BMv2s (about 1.3 ms in all,
    measured), so a fixed short interval that suits Figure 2 starves a small
    machine running dozens of switches, and a starved machine is one whose
    adjacencies flap. Unless ``hello_ms`` is given, the interval grows with the
    switches per core: the agents' default (80 ms, so that a failure is
    rerouted within 300 ms) up to SWITCHES_PER_CORE per core, then in steps of
    it. The dead interval follows (``Config.for_hello``: 3 hellos)."""
    from controller.routing import Config
    if hello_ms is None:
        cores = cores or os.cpu_count() or 1
        hello_ms = Config.hello_ms * max(1, math.ceil(switches / (SWITCHES_PER_CORE * cores)))
    return hello_ms, Config.for_hello(hello_ms).dead_ms


class DmscNet:
    """Bring up a topology: ``with DmscNet(topo, run_dir) as net: ...``."""

    def __init__(self, topo: Topology, run_dir, *, log_level: str | None = "warn",
                 pcap: bool = False, hello_ms: int | None = None):
        self.topo = topo
        self.run_dir = Path(run_dir)
        self.log_level = log_level
        self.pcap = pcap
        self.mn = None
        self.pod_procs: dict[str, subprocess.Popen] = {}
        self.agent_procs: dict[str, subprocess.Popen] = {}
        self.admin_addrs: dict[str, str] = {}
        self.key_file = self.run_dir / "domain.key"
        self.warnings: list[str] = []
        self.hello_ms, self.dead_ms = agent_timers(len(topo.switches()), hello_ms)

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> "DmscNet":
        if os.geteuid() != 0:
            raise NetError("Mininet needs root")
        from mininet.link import Link, TCLink
        from mininet.net import Mininet
        _quiet_mininet()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "switches").mkdir(exist_ok=True)
        pcap_dir = None
        if self.pcap:
            pcap_dir = self.run_dir / "pcap"
            pcap_dir.mkdir(exist_ok=True)
        self.mn = Mininet(topo=None, controller=None, build=False, autoSetMacs=False)
        try:
            t = self.topo
            for sw in t.switches():
                self.mn.addSwitch(sw, cls=BMv2Switch, device_id=t.device_id(sw),
                                  log_dir=str(self.run_dir / "switches"),
                                  log_level=self.log_level, pcap_dir=pcap_dir)
            for pod in t.pods():
                self.mn.addHost(pod, ip=None, mac=t.mac(pod, 0))
            for u, v, attrs in t.graph.edges(data=True):
                pu, pv = attrs["ports"][u], attrs["ports"][v]
                params = self._link_params(u, v, attrs)
                self.mn.addLink(u, v, port1=pu, port2=pv,
                                intfName1=t.intf_name(u, pu), intfName2=t.intf_name(v, pv),
                                addr1=t.mac(u, pu), addr2=t.mac(v, pv),
                                cls=TCLink if params else Link, **params)
            self.mn.build()
            self._quiet_interfaces()
            self.mn.start()   # launches every BMv2, then waits for every gRPC port
        except BaseException:
            self.stop()
            raise
        return self

    def _link_params(self, u, v, attrs) -> dict:
        params = {}
        if attrs.get("bw") is not None:
            params["bw"] = float(attrs["bw"])
        wanted = {k: attrs[k] for k in ("delay", "jitter", "loss") if attrs.get(k) is not None}
        if wanted:
            if netem_available():
                params.update(wanted)
            else:
                msg = (f"link {u}-{v}: {', '.join(f'{k}={w}' for k, w in wanted.items())} "
                       f"ignored: this kernel has no netem qdisc")
                self.warnings.append(msg)
                log.warning(msg)
        return params

    def _quiet_interfaces(self) -> None:
        for node in list(self.mn.hosts) + list(self.mn.switches):
            for intf in node.intfList():
                if intf.name == "lo":
                    continue
                node.cmd(f"sysctl -qw net.ipv6.conf.{intf.name}.disable_ipv6=1")
                node.cmd(f"ip addr flush dev {intf.name}")

    def stop(self) -> None:
        try:
            self.stop_agents()
        except Exception as exc:        # keep cleaning up
            log.error("stopping agents: %s", exc)
        for pod in list(self.pod_procs):
            try:
                self.stop_pod(pod)
            except Exception as exc:    # keep cleaning up
                log.error("stopping pod %s: %s", pod, exc)
        if self.mn is not None:
            mn, self.mn = self.mn, None
            try:
                mn.stop()
            except Exception as exc:
                log.error("stopping Mininet: %s", exc)
                for sw in mn.switches:      # at least end the BMv2 processes we started
                    try:
                        sw.stop_process()
                    except Exception:
                        pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- access ---------------------------------------------------------------
    def switch(self, name: str) -> BMv2Switch:
        return self.mn.get(name)

    def host(self, pod: str):
        return self.mn.get(pod)

    def p4rt(self, name: str, **kw):
        """A connected :class:`controller.p4rt.Switch` for one switch."""
        from controller.p4rt import Switch
        sw = self.switch(name)
        return Switch(name, sw.grpc_addr, sw.device_id, **kw).connect()

    # -- agents ---------------------------------------------------------------
    def start_agents(self, extra_args=(), wait: bool = True) -> None:
        """One agent per switch (controller.agent), each with its own log and
        admin port on 127.0.0.1; writes run_dir/network.json for the CLI."""
        if not self.key_file.exists():
            self.key_file.write_bytes(os.urandom(32))
            self.key_file.chmod(0o600)
        if not Path(self.topo.source).is_file():       # generated: agents read files
            self.topo = self.topo.save(self.run_dir / "topology.yaml")
        for name in self.topo.switches():
            self.start_agent(name, extra_args)
        self.write_state()
        if wait:
            self.wait_agents_ready()

    def start_agent(self, name: str, extra_args=()) -> subprocess.Popen:
        from topologies.bmv2 import free_port
        sw = self.switch(name)
        addr = self.admin_addrs.get(name) or f"127.0.0.1:{free_port()}"
        self.admin_addrs[name] = addr
        (self.run_dir / "agents").mkdir(exist_ok=True)
        cmd = [sys.executable, "-m", "controller.agent", "--topo", self.topo.source,
               "--switch", name, "--grpc-addr", sw.grpc_addr, "--device-id", str(sw.device_id),
               "--admin-addr", addr, "--key-file", str(self.key_file),
               "--log-file", str(self.run_dir / "agents" / f"{name}.log"),
               "--hello-ms", str(self.hello_ms), "--dead-ms", str(self.dead_ms), *extra_args]
        out = open(self.run_dir / "agents" / f"{name}.stdout", "ab")
        proc = subprocess.Popen(die_with_parent(cmd), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=str(REPO_ROOT), env=_py_env())
        out.close()
        self.agent_procs[name] = proc
        return proc

    def wait_agents_ready(self, timeout: float | None = None) -> None:
        """Poll every agent's admin service until it answers (deadline: by
        default 30 s plus 1.5 s per agent; dozens of Python processes starting
        at once on two cores take a while)."""
        from controller.admin import AdminClient, AdminError
        if timeout is None:
            timeout = 30.0 + 1.5 * len(self.agent_procs)
        deadline = time.monotonic() + timeout
        for name, addr in self.admin_addrs.items():
            with AdminClient(addr, timeout=1.0) as c:
                while True:
                    proc = self.agent_procs.get(name)
                    if proc is not None and proc.poll() is not None:
                        raise NetError(f"agent {name} exited with {proc.returncode}; see "
                                       f"{self.run_dir / 'agents' / (name + '.log')}")
                    try:
                        c.state()
                        break
                    except AdminError:
                        if time.monotonic() > deadline:
                            raise NetError(f"agent {name} not answering at {addr}") from None
                        time.sleep(0.05)

    def stop_agents(self, names=None, kill: bool = False, grace_s: float = 10.0) -> None:
        """Stop these agents (default: all): SIGTERM (SIGKILL with ``kill``)
        to every one at once, wait for all of them under one deadline, then
        SIGKILL whatever is left. Dozens of agents stopped one after the other
        on a loaded machine took minutes."""
        procs = {n: self.agent_procs.pop(n) for n in list(names or self.agent_procs)
                 if n in self.agent_procs}
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill() if kill else proc.terminate()
        deadline = time.monotonic() + grace_s
        for name, proc in procs.items():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.info("agent %s did not stop on SIGTERM within %.0f s: killed", name, grace_s)
                proc.kill()
        for proc in procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                log.error("agent pid %d still running after SIGKILL", proc.pid)

    def stop_agent(self, name: str, kill: bool = False) -> None:
        self.stop_agents([name], kill=kill)

    def admin(self, name: str):
        from controller.admin import AdminClient
        return AdminClient(self.admin_addrs[name])

    def write_state(self) -> Path:
        """run_dir/network.json: where every switch and agent can be reached."""
        import json
        state = {"topology": self.topo.source, "hello_ms": self.hello_ms,
                 "dead_ms": self.dead_ms, "switches": {}}
        for name in self.topo.switches():
            sw = self.switch(name)
            state["switches"][name] = {"grpc_addr": sw.grpc_addr, "device_id": sw.device_id,
                                       "admin_addr": self.admin_addrs.get(name)}
        path = self.run_dir / "network.json"
        path.write_text(json.dumps(state, indent=2))
        return path

    def accept_pod_prefixes(self, sgs=None) -> None:
        """Accept, on each SG (or those in ``sgs``), what its pods serve
        (instances and service prefixes) through the agents' narrow admin entry
        point. Accepted prefixes are the agent's soft state: after an agent
        restart they are accepted again (as pods re-announce)."""
        from topologies.routes import served_prefixes
        for prefix, pods in sorted(served_prefixes(self.topo).items()):
            for pod in sorted(pods):
                sg = self.topo.gateway(pod)
                if sgs is not None and sg not in sgs:
                    continue
                with self.admin(sg) as c:
                    c.accept_prefix(prefix, self.topo.port(sg, pod), self.topo.mac(pod, 0))

    # -- pods -----------------------------------------------------------------
    def start_pod(self, pod: str, extra_args=()) -> subprocess.Popen:
        t = self.topo
        iface = t.intf_name(pod, 0)
        cmd = [sys.executable, "-m", "traffic.pod", "--iface", iface,
               "--mac", t.mac(pod, 0)]
        for inst in t.instances(pod):
            cmd += ["--instance", inst]
        cmd += list(extra_args)
        logf = open(self.run_dir / f"{pod}.log", "ab")
        proc = self.host(pod).popen(die_with_parent(cmd), stdout=logf, stderr=subprocess.STDOUT,
                                    cwd=str(REPO_ROOT), env=_py_env())
        logf.close()
        self.pod_procs[pod] = proc
        return proc

    def stop_pod(self, pod: str) -> None:
        proc = self.pod_procs.pop(pod, None)
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def run_in(self, pod: str, args: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess:
        """Run a Python module in a pod's namespace (e.g. traffic.client)."""
        proc = self.host(pod).popen(die_with_parent([sys.executable, *args]),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    cwd=str(REPO_ROOT), env=_py_env())
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        return subprocess.CompletedProcess(args, proc.returncode, out.decode(), err.decode())

    def call(self, pod: str, src: str, dst: str, method: str = "echo", args=None,
             deadline_s: float = 10.0, timeout: float = 1.0) -> dict:
        """One RMI call by name from a pod's namespace (traffic.client), retried
        until it succeeds or ``deadline_s`` passes (a serving pod may still be
        starting). Returns the client's JSON: result/from/rtt_ms/hops or error."""
        import json
        deadline = time.monotonic() + deadline_s
        while True:
            res = self.run_in(pod, ["-m", "traffic.client", "--iface", self.topo.intf_name(pod, 0),
                                    "--src", src, "--mac", self.topo.mac(pod, 0),
                                    "--timeout", str(timeout), dst, method,
                                    json.dumps({} if args is None else args)])
            out = json.loads(res.stdout.strip() or json.dumps({"error": res.stderr[-300:]}))
            if "error" not in out or time.monotonic() > deadline:
                return out

    # -- failures ---------------------------------------------------------------
    # A failed link is a silent cut: a tbf qdisc that drops every frame, on the
    # egress of both ends. Not `ip link set down`: BMv2's port loop spins at
    # 100% CPU on an interface that goes down (its pcap read fails forever),
    # which starves a small machine. So carrier stays up and the agents notice
    # the failure from missing hellos, as they would a cut behind a media converter.
    _CUT = "tc qdisc replace dev {intf} root tbf rate 8bit burst 1 limit 1"

    def _ends(self, a: str, b: str):
        for node, nb in ((a, b), (b, a)):
            yield self.mn.get(node), self.topo.intf_name(node, self.topo.port(node, nb))

    def link_down(self, a: str, b: str) -> None:
        for node, intf in self._ends(a, b):
            out = node.cmd(self._CUT.format(intf=intf))
            if out.strip():
                raise NetError(f"cutting {intf}: {out.strip()}")

    def link_up(self, a: str, b: str) -> None:
        bw = self.topo.graph.edges[a, b].get("bw")
        for node, intf in self._ends(a, b):
            node.cmd(f"tc qdisc del dev {intf} root")
            if bw is not None:                       # restore the link's shaping
                node.intf(intf).config(bw=float(bw))

    def kill_switch(self, name: str) -> None:
        """SIGKILL the switch's BMv2 (its interfaces stay up: neighbours must
        notice through missing hellos)."""
        self.switch(name).kill()

    def restart_switch(self, name: str) -> None:
        """Start the switch's BMv2 again, same ports and gRPC port, empty."""
        sw = self.switch(name)
        sw.bmv2.start()
        sw.bmv2.wait_ready()


def _py_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"]
                                          if env.get("PYTHONPATH") else "")
    return env
