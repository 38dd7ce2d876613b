"""DmscNet: a running emulation of a Topology, composed of apps.

Mininet with no controller: every SG/SR is a :class:`BMv2Switch`, every pod a
Mininet host (its own network namespace) with one interface and no IP
address, links and MACs exactly as the topology file says. IPv6 is switched
off on every interface so that the only frames on the wire are the ones the
testbed sends. Link bandwidth uses htb (TCLink); delay/jitter/loss are applied
only when netem exists, otherwise skipped with a warning.

On top of Mininet the network runs apps (topologies/emu/apps/), started in
this order by :meth:`DmscNet.start_control` (or one by one): the SPA, one
agent per switch (SGs ask the SPA), one pod process per pod (each announces
its prefixes, signed with its own key). Every app started here is stopped here, in
reverse order of starting, even when a step fails; then Mininet stops the
switches and removes links and hosts. Failure injection is ``net.failures``
(topologies/emu/failures.py).

What the apps are given is made by modules of its own: the pods' keys
(identities.py), the SPA's registry file (spa_registry.py), the routing
domain's key (domain_key.py), the pods' control and status files
(pod_control.py), the CPU-port veths (veth.py).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import subprocess
import time
from pathlib import Path

from controller.rpc import private_socket_dir, unix_addr
from controller.switch.p4rt import SwitchConnection
from topologies.emu.apps.agent_app import (AgentApp, AgentHostApp, HostedAgent, agent_timers,
                                       agents_per_process)
from topologies.emu.apps.app_base import App, AppError, stop_all
from topologies.emu.apps.bmv2_app import BMv2Switch, bmv2_binary
from topologies.emu.apps.central_app import CentralApp
from topologies.emu.apps.pod_app import PodApp
from topologies.emu.apps.scsc_app import ScscApp
from topologies.emu.apps.spa_app import SpaApp
from topologies.emu import pod_control, running_networks as registry, spa_registry, veth
from topologies.emu.child_processes import REPO_ROOT, die_with_parent, py_env
from topologies.emu.domain_key import domain_key_file, ensure_domain_key
from topologies.emu.failures import Failures
from topologies.emu.identities import pod_identities
from topologies.emu.linkcaps import netem_available
from topologies.expected import served_prefixes
from topologies.topo import Topology
from traffic.identity import Identity

log = logging.getLogger("dmsc.net")


class NetError(RuntimeError):
    pass


def _quiet_mininet():
    from mininet.log import setLogLevel
    setLogLevel("warning")


def agents_per_process_default(topo: Topology) -> int:
    return agents_per_process(len(topo.switches()))


PACKET_IO = ("stream", "cpu-port")


def packet_io_default(topo: Topology) -> str:
    """Agents' packet I/O: over the P4Runtime stream (BMv2 --cpu-port), or
    through a veth on the CPU port with a raw socket (controller.agent.cpuport),
    a fraction of the CPU per frame (docs/decisions.md). Networks small enough
    for one process per agent keep the stream; bigger ones take the veth."""
    return "stream" if agents_per_process_default(topo) <= 1 else "cpu-port"


class DmscNet:
    """Bring up a topology: ``with DmscNet(topo, run_dir) as net: ...``."""

    def __init__(self, topo: Topology, run_dir, *, log_level: str | None = "warn",
                 pcap: bool = False, hello_ms: int | None = None, lease_s: float = 6.0,
                 probe_ms: int = 0, scsc_args=(), agents_per_process: int | None = None,
                 packet_io: str | None = None, bmv2_build: str = "default",
                 app_file=None, agent_args=()):
        self.topo = topo
        self.agent_args = list(agent_args)     # every agent's, restarts included (--echo-ms)
        # an application file (traffic/callgraph.py): every pod serves its services'
        # methods and writes its spans to pods/<pod>.spans.jsonl
        self.app_file = Path(app_file).resolve() if app_file else None
        self.bmv2_build = bmv2_build           # "default" or "perf" (apps/bmv2.py BUILDS)
        self.packet_io = packet_io or packet_io_default(topo)
        if self.packet_io not in PACKET_IO:
            raise NetError(f"packet_io {self.packet_io!r}: one of {', '.join(PACKET_IO)}")
        self.cpu_veths: list[str] = []         # switch-side ends we created
        self.run_dir = Path(run_dir)
        self.log_level = log_level
        self.pcap = pcap
        self.mn = None
        self.apps: list[App] = []              # in the order they were started
        self.agents: dict[str, AgentApp | HostedAgent] = {}
        # agents sharing a process (1: a process per agent; default: by size)
        self.agents_per_process = agents_per_process or agents_per_process_default(topo)
        self.pods: dict[str, PodApp] = {}
        self.key_file = domain_key_file(self.run_dir)   # made when an app first needs it
        self.warnings: list[str] = []
        self.hello_ms, self.dead_ms = agent_timers(len(topo.switches()), hello_ms)
        self.lease_s = lease_s
        self.spas: list[SpaApp] = []
        self.identities: dict[str, Identity] = {}
        self.key_files: dict[str, Path] = {}
        self.registry_file: Path | None = None
        self.t_pods: float | None = None       # when the pods were started (CLOCK_MONOTONIC)
        self.probe_ms = probe_ms               # SGs probe their targets this often (0: never)
        self.scsc: ScscApp | None = None
        self.scsc_addr: str | None = None      # fixed once chosen: agents are told it
        self.scsc_args = list(scsc_args)
        self.failures = Failures(self)
        self.central: CentralApp | None = None  # the centralized mode's controller
        self.mesh = None                        # the service-mesh baseline (topologies/emu/mesh.py)
        self._sock_dir: Path | None = None      # the services' Unix sockets (0700, root)

    def sock(self, name: str) -> str:
        """The address a service of this network listens on: a Unix socket in a
        directory only root may enter (controller/rpc.py), not 127.0.0.1."""
        if self._sock_dir is None:
            self._sock_dir = private_socket_dir(f"dmsc-{self.topo.name[:12]}-")
        return unix_addr(self._sock_dir, name)

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> "DmscNet":
        if os.geteuid() != 0:
            raise NetError("Mininet needs root")
        self._check_interfaces_free()
        self._record = registry.register(registry.describe(self.topo, self.run_dir,
                                                           self.interfaces()))
        from mininet.link import Link, TCLink
        from mininet.net import Mininet
        _quiet_mininet()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "switches").mkdir(exist_ok=True)
        pcap_dir = None
        if self.pcap:
            pcap_dir = self.run_dir / "pcap"
            pcap_dir.mkdir(exist_ok=True)
        binary = bmv2_binary(self.bmv2_build)    # SwitchStartError says how to get it
        self.mn = Mininet(topo=None, controller=None, build=False, autoSetMacs=False)
        try:
            t = self.topo
            for sw in t.switches():
                self.mn.addSwitch(sw, cls=BMv2Switch, device_id=t.device_id(sw),
                                  log_dir=str(self.run_dir / "switches"),
                                  log_level=self.log_level, pcap_dir=pcap_dir,
                                  cpu_intf=self.cpu_intf(sw)[0] if self.cpu_intf(sw) else None,
                                  grpc_addr=self.sock(f"sw-{sw}"), binary=binary)
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
            self._make_cpu_veths()
            self._quiet_interfaces()
            self.mn.start()   # launches every BMv2, then waits for every gRPC port
        except BaseException:
            self.stop()
            raise
        return self

    def cpu_intf(self, switch: str) -> tuple[str, str] | None:
        """(switch side, agent side) of the switch's CPU-port veth, in cpu-port mode."""
        if self.packet_io != "cpu-port":
            return None
        dev = self.topo.device_id(switch)
        return f"dcpu{dev}s", f"dcpu{dev}a"

    def _make_cpu_veths(self) -> None:
        for sw in self.topo.switches():
            s, a = self.cpu_intf(sw) or (None, None)
            if s is None:
                continue
            veth.add_pair(s, a)
            self.cpu_veths.append(s)

    def _remove_cpu_veths(self) -> None:
        veths, self.cpu_veths = self.cpu_veths, []
        for s in veths:
            err = veth.delete(s)
            if err:
                log.error("removing %s: %s", s, err)

    def interfaces(self) -> set[str]:
        """Every interface name this network creates (both ends of every link)."""
        t = self.topo
        return {t.intf_name(n, t.port(n, nb)) for n in t.graph.nodes for nb in t.graph.neighbors(n)} \
            | {i for n in t.switches() for i in (self.cpu_intf(n) or ())}

    def _check_interfaces_free(self) -> None:
        """Another network (or its leftovers) holding our interface names makes
        Mininet fail with a raw RTNETLINK error: say which network (its record,
        topologies/emu/running_networks.py), whether it still runs, and what to do."""
        taken = sorted(self.interfaces() & set(os.listdir("/sys/class/net")))
        if taken:
            raise NetError(registry.who_holds(
                taken, registry.records(run_roots=[REPO_ROOT / "runs", self.run_dir.parent])))
        registry.forget_dead()          # their interfaces are gone: so are they

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
        """Every app in reverse order of starting (all under one deadline:
        dozens of agents stopped one by one took minutes), then Mininet."""
        apps, self.apps = list(reversed(self.apps)), []
        self.agents, self.pods = {}, {}
        if self.mesh is not None:
            self.mesh.close()
        try:
            stop_all(apps)
        except Exception as exc:        # keep cleaning up
            log.error("stopping apps: %s", exc)
        if self.mn is not None:
            mn, self.mn = self.mn, None
            try:
                mn.stop()
            except Exception as exc:
                log.error("stopping Mininet: %s", exc)
                for sw in mn.switches:      # at least end the BMv2 processes we started
                    try:
                        sw.stop_process()
                    except Exception as exc2:
                        log.error("stopping switch %s: %s", sw.name, exc2)
        self._remove_cpu_veths()
        if self._sock_dir is not None:
            shutil.rmtree(self._sock_dir, ignore_errors=True)
            self._sock_dir = None
        if getattr(self, "_record", None) is not None:
            self._record.unlink(missing_ok=True)
            self._record = None
            registry.mark_stopped(self.run_dir / "network.json")

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
        """A connected :class:`controller.switch.p4rt.SwitchConnection` for one switch."""
        sw = self.switch(name)
        return SwitchConnection(name, sw.grpc_addr, sw.device_id, **kw).connect()

    # -- apps -----------------------------------------------------------------
    def _started(self, app: App) -> App:
        self.apps.append(app)
        return app

    def _forget(self, app: App) -> None:
        if app in self.apps:
            self.apps.remove(app)

    # -- agents ---------------------------------------------------------------
    def start_agents(self, extra_args=(), wait: bool = True) -> None:
        """One agent per switch (controller.agent), each with its own log and
        admin port on 127.0.0.1, ``agents_per_process`` of them to a process;
        writes run_dir/network.json for the CLI."""
        ensure_domain_key(self.run_dir)            # = self.key_file
        if not Path(self.topo.source).is_file():       # generated: agents read files
            self.topo = self.topo.save(self.run_dir / "topology.yaml")
        names = list(self.topo.switches())
        per = self.agents_per_process
        if per <= 1:
            for name in names:
                self.start_agent(name, extra_args)
        else:
            for i in range(0, len(names), per):
                self._start_host(f"agents-{i // per}", names[i:i + per], extra_args)
        self.write_state()
        if wait:
            self.wait_agents_ready()

    def _start_host(self, host_name: str, names, extra_args) -> AgentHostApp:
        log_dir = self.run_dir / "agents"
        specs, apps = {}, {}
        for name in names:
            apps[name] = self._agent_app(name, extra_args, None)
            specs[name] = apps[name].args()
        host = AgentHostApp(host_name, specs, log_dir)
        self._started(host.start())
        for name in names:
            self.agents[name] = HostedAgent(host, name, apps[name].admin_addr,
                                            apps[name].policy_addr, specs[name])
        return host

    def _agent_app(self, name: str, extra_args, admin_addr) -> AgentApp:
        sw = self.switch(name)
        args = [f"--lease-s={self.lease_s}"]
        if self.cpu_intf(name):
            args += ["--cpu-intf", self.cpu_intf(name)[1]]
        for spa in self.spas:
            args += ["--spa", spa.addr]
        if self.probe_ms:
            if self.scsc_addr is None:
                self.scsc_addr = self.sock("scsc")
            # an SG probes the services its pods call; with no "calls" in the
            # topology, every replicated service
            called = sorted({c for p in self.topo.pods() if self.topo.gateway(p) == name
                             for c in self.topo.calls(p)})
            anyone = any(self.topo.calls(p) for p in self.topo.pods())
            probing = self.topo.kind(name) == "sg" and (called or not anyone)
            args += ["--scsc", self.scsc_addr,          # every agent reports its FIB counters
                     "--probe-ms", str(self.probe_ms if probing else 0)]
            for c in called:
                args += ["--probe-service", c]
        return AgentApp(name, topo_file=self.topo.source, grpc_addr=sw.grpc_addr,
                        device_id=sw.device_id, key_file=self.key_file,
                        log_dir=self.run_dir / "agents", hello_ms=self.hello_ms,
                        dead_ms=self.dead_ms, extra_args=[*args, *self.agent_args, *extra_args],
                        admin_addr=admin_addr or self.sock(f"agent-{name}"),
                        policy_addr=self.sock(f"policy-{name}"))

    def start_agent(self, name: str, extra_args=()) -> AgentApp | HostedAgent:
        """Start (or restart, on the same admin port) the agent of one switch
        (an agent that shares a process is restarted inside it)."""
        old = self.agents.get(name)
        if old is not None and old.alive():
            raise NetError(f"agent {name} is already running (pid {old.pid})")
        if isinstance(old, HostedAgent) and old.host.alive():
            if extra_args:
                old.argv = self._agent_app(name, extra_args, old.admin_addr).args()
            return old.start()
        app = self._agent_app(name, extra_args, old.admin_addr if old else None)
        if old is not None:
            self._forget(old)
        self.agents[name] = app
        return self._started(app.start())

    def wait_agents_ready(self, timeout: float | None = None) -> None:
        """Poll every agent's admin service until it answers (deadline: by
        default 30 s plus 1.5 s per agent; dozens of Python processes starting
        at once on two cores take a while)."""
        if timeout is None:
            timeout = 30.0 + 1.5 * len(self.agents)
        deadline = time.monotonic() + timeout
        try:
            for app in self.agents.values():
                app.ready(deadline)
        except AppError as exc:
            raise NetError(str(exc)) from None

    def stop_agents(self, names=None, kill: bool = False, grace_s: float = 10.0) -> None:
        """Stop these agents (default: all) under one deadline."""
        apps = [self.agents[n] for n in (names or list(self.agents)) if n in self.agents]
        stop_all([a for a in apps if not isinstance(a, HostedAgent)], grace_s=grace_s, kill=kill)
        for a in apps:
            if isinstance(a, HostedAgent):
                a.kill() if kill else a.stop(grace_s)

    def stop_agent(self, name: str, kill: bool = False) -> None:
        self.stop_agents([name], kill=kill)

    def admin(self, name: str):
        # Agents sharing a process share its interpreter: an admin call waits
        # behind their work, seconds during a 64-switch cold start.
        return self.agents[name].admin(timeout=3.0 + 0.5 * (self.agents_per_process - 1))

    def write_state(self) -> Path:
        """run_dir/network.json: where every switch and agent can be reached."""
        state = {**registry.describe(self.topo, self.run_dir, self.interfaces()),
                 "topology": self.topo.source, "hello_ms": self.hello_ms,
                 "scsc": self.scsc_addr, "mode": self.mode,
                 "central": self.central.admin_addr if self.central else None,
                 "packet_io": self.packet_io, "agents_per_process": self.agents_per_process,
                 "dead_ms": self.dead_ms, "spa": [s.addr for s in self.spas],
                 "registry": str(self.registry_file) if self.registry_file else None,
                 "switches": {}}
        for name in self.topo.switches():
            sw = self.switch(name)
            agent = self.agents.get(name)
            state["switches"][name] = {"grpc_addr": sw.grpc_addr, "device_id": sw.device_id,
                                       "admin_addr": agent.admin_addr if agent else None}
        path = self.run_dir / "network.json"
        path.write_text(json.dumps(state, indent=2))
        return path

    def override_pod_prefixes(self, sgs=None) -> None:
        """Operator override: accept, on each SG (or those in ``sgs``), what its
        pods serve, without the SPA (the agents log each as an operator
        override). For measuring routing alone; the pods' announcements are
        the real path."""
        for prefix, pods in sorted(served_prefixes(self.topo).items()):
            for pod in sorted(pods):
                sg = self.topo.gateway(pod)
                if sgs is not None and sg not in sgs:
                    continue
                self.accept_prefix(sg, prefix, self.topo.port(sg, pod), self.topo.mac(pod, 0))

    def apply_overrides(self) -> None:
        """The topology file's ``operator_overrides``."""
        for o in self.topo.overrides:
            self.accept_prefix(o["sg"], o["prefix"], self.topo.port(o["sg"], o["pod"]),
                               self.topo.mac(o["pod"], 0))

    def accept_prefix(self, sg: str, prefix: str, port: int, mac: str) -> None:
        """Operator override on one SG, through its agent or the central controller."""
        if self.mode == "central":
            with self.central.client() as c:
                c.accept_prefix(sg, prefix, port, mac)
        else:
            with self.admin(sg) as c:
                c.accept_prefix(prefix, port, mac)

    def withdraw_prefix(self, sg: str, prefix: str) -> None:
        """Operator withdrawal on one SG, through its agent or the central controller."""
        if self.mode == "central":
            with self.central.client() as c:
                c.withdraw_prefix(sg, prefix)
        else:
            with self.admin(sg) as c:
                c.withdraw_prefix(prefix)

    def control_state(self, switch: str):
        """A switch's control state (an AgentState: neighbours, RIB, FIB
        version, held prefixes, counters), from its agent or, in the central
        mode, from the central controller's view of it."""
        if self.mode == "central":
            with self.central.client() as c:
                return c.switch_state(switch)
        with self.admin(switch) as c:
            return c.state()

    # -- the centralized mode -------------------------------------------------------
    @property
    def mode(self) -> str:
        """"central" once a central controller was started, "mesh" once the
        service-mesh baseline was, else "distributed"."""
        if self.mesh is not None:
            return "mesh"
        return "central" if self.central is not None else "distributed"

    def start_central(self, wait: bool = True) -> CentralApp:
        """The central controller (controller.central): it programs every
        switch, so no agent may run. Told every switch's P4Runtime address,
        the domain key and the SPAs; waits until it holds a session with every
        switch (``wait``). Writes run_dir/network.json."""
        if any(a.alive() for a in self.agents.values()):
            raise NetError("agents are running: the central mode replaces them")
        if self.probe_ms:
            raise NetError("probes and the SCSC need the agents (distributed mode)")
        if self.packet_io != "stream":
            raise NetError("the central controller's packet I/O is the P4Runtime stream: "
                           "make the network with packet_io='stream'")
        if self.central is not None and self.central.alive():
            raise NetError(f"the central controller is already running (pid {self.central.pid})")
        ensure_domain_key(self.run_dir)            # = self.key_file
        if not Path(self.topo.source).is_file():       # generated: the controller reads files
            self.topo = self.topo.save(self.run_dir / "topology.yaml")
        if self.central is None:
            self.central = CentralApp(
                "central", topo_file=self.topo.source,
                switches={n: (self.switch(n).grpc_addr, self.switch(n).device_id)
                          for n in self.topo.switches()},
                key_file=self.key_file, log_dir=self.run_dir / "central",
                hello_ms=self.hello_ms, dead_ms=self.dead_ms,
                spa_addrs=[s.addr for s in self.spas], lease_s=self.lease_s,
                admin_addr=self.sock("central"))
        else:
            self._forget(self.central)
        self._started(self.central.start())
        self.write_state()
        if wait:
            try:
                self.central.ready(time.monotonic() + 30.0 + 0.5 * len(self.topo.switches()))
            except AppError as exc:
                raise NetError(str(exc)) from None
        return self.central

    def stop_central(self, kill: bool = False) -> None:
        """Stop (SIGTERM) or kill (SIGKILL) the central controller; the switches
        keep the FIBs they have. :meth:`restart_central` brings it back on the
        same admin address."""
        if self.central is not None:
            self.central.kill() if kill else self.central.stop()

    def restart_central(self, wait: bool = True) -> CentralApp:
        if self.central is None:
            raise NetError("no central controller was started")
        if self.central.alive():
            self.stop_central()
        return self.start_central(wait=wait)

    # -- identities and the SPA ----------------------------------------------------
    def prepare_identities(self) -> None:
        """Every pod's key (identities.py: the file the topology names, or one
        made for this run) and the SPA's registry file (spa_registry.py: the
        topology's, or the one its instances imply)."""
        self.identities, self.key_files = pod_identities(self.topo, self.run_dir)
        self.registry_file = spa_registry.registry_file(
            self.topo, self.run_dir, {p: i.public_raw for p, i in self.identities.items()})

    def start_spa(self, name: str = "spa", wait: bool = True) -> SpaApp:
        if self.registry_file is None:
            self.prepare_identities()
        app = SpaApp(name, registry_file=self.registry_file, log_dir=self.run_dir / "spa",
                     addr=self.sock(name))
        self.spas.append(app)
        self._started(app.start())
        if wait:
            try:
                app.ready()
            except AppError as exc:
                raise NetError(str(exc)) from None
        return app

    def stop_spa(self, name: str = "spa", kill: bool = False) -> None:
        """Stop one SPA (it stays in the agents' address list: a restart with
        :meth:`restart_spa` comes back on the same address)."""
        for app in self.spas:
            if app.name == name:
                app.kill() if kill else app.stop()

    def restart_spa(self, name: str = "spa") -> SpaApp:
        for app in self.spas:
            if app.name == name:
                self._forget(app)
                self._started(app.start())
                app.ready()
                return app
        raise NetError(f"no SPA {name}")

    def authorize(self, prefix: str, pods, max_depth: int | None = None) -> None:
        """An operator's grant of ``prefix`` to the keys of ``pods`` (exactly, or
        ``max_depth`` deep): in every running SPA, and in the registry file this
        run generated, so that a restarted SPA still has it (a registry file of
        the topology's own is the operator's and is not rewritten)."""
        pods = sorted(pods)
        for app in self.spas:
            if app.alive():
                with app.client() as c:
                    c.authorize(prefix, max_depth, pods)
        if self.registry_file is not None:
            spa_registry.record_grant(self.registry_file, self.run_dir, prefix, max_depth, pods)

    def spa(self, name: str = "spa"):
        """A client of one SPA (for tests and the CLI)."""
        for app in self.spas:
            if app.name == name:
                return app.client()
        raise NetError(f"no SPA {name}")

    # -- the SCSC --------------------------------------------------------------------
    def start_scsc(self, wait: bool = True) -> ScscApp:
        """The SCSC, told every agent's policy channel (start the agents first)."""
        if self.scsc_addr is None:
            self.scsc_addr = self.sock("scsc")
        if self.scsc is not None:
            self._forget(self.scsc)
        ensure_domain_key(self.run_dir)            # = self.key_file
        self.scsc = ScscApp("scsc", key_file=self.key_file,
                            agents={n: a.policy_addr for n, a in self.agents.items()},
                            log_dir=self.run_dir / "scsc", addr=self.scsc_addr,
                            extra_args=self.scsc_args)
        self._started(self.scsc.start())
        if wait:
            try:
                self.scsc.ready()
            except AppError as exc:
                raise NetError(str(exc)) from None
        return self.scsc

    def stop_scsc(self, kill: bool = False) -> None:
        if self.scsc is not None:
            self.scsc.kill() if kill else self.scsc.stop()

    def policies(self, switch: str):
        """The SCSC policies in force on a switch (its agent's view)."""
        with self.admin(switch) as c:
            return c.policies()

    # -- degradations ------------------------------------------------------------------
    def set_service_time(self, pod: str, ms: float) -> None:
        """Every request and probe to the pod's instances answered ``ms`` later."""
        self.update_pod_control(pod, service_ms=ms)

    def update_pod_control(self, pod: str, **changes) -> dict:
        """Merge ``changes`` into the pod's control file (pod_control.py:
        service_ms, extra instances, withdrawn prefixes); the whole new content."""
        return pod_control.update_control(self.run_dir, pod, **changes)

    def start_control(self, pods: bool = True, wait: bool = True,
                      mode: str = "distributed") -> None:
        """SPA, agents (``mode`` "distributed") or the central controller
        ("central"), overrides, the SCSC (when the SGs probe), pods: the
        network's control plane in order."""
        if mode not in ("distributed", "central", "mesh"):
            raise NetError(f"mode {mode!r}: use 'distributed', 'central' or 'mesh'")
        self.start_spa()
        if mode == "mesh":
            self.start_mesh(pods=pods, wait=wait)
            return
        if mode == "central":
            self.start_central(wait=wait)
        else:
            self.start_agents(wait=wait)
        self.apply_overrides()
        if self.probe_ms:
            self.start_scsc()
        if pods:
            for pod in self.topo.pods():
                self.start_pod(pod)

    def start_mesh(self, pods: bool = True, wait: bool = True, **kw):
        """The service-mesh baseline (docs/mesh.md) instead of DMSC's control
        plane: the IPv4 program and SPF routes on every switch, the mesh
        control plane, and in every pod its app over HTTP and its sidecar."""
        from topologies.emu.mesh import MeshMode
        if any(a.alive() for a in self.agents.values()) or self.central is not None:
            raise NetError("DMSC's control plane is running: the mesh mode replaces it")
        if self.probe_ms:
            raise NetError("probes and the SCSC are DMSC's (distributed mode)")
        if not self.spas:
            self.start_spa()
        self.mesh = MeshMode(self, **kw)
        self.mesh.program_fabric()
        self.mesh.start_control_plane(wait=wait)
        self.write_state()
        if pods:
            for pod in self.topo.pods():
                self.mesh.start_pod(pod, wait=False)
            if wait:
                for pod in self.topo.pods():
                    self.mesh.sidecars[pod].ready()
        return self.mesh

    def announcements(self, pod: str) -> dict:
        """The pod's view of its announcements (its status file), {} before it wrote one."""
        return pod_control.announcements(self.run_dir, pod)

    def wait_announced(self, pods=None, timeout: float = 20.0, poll: float = 0.05) -> float:
        """Poll (every ``poll`` s: each poll reads every pod's status file) until
        every prefix of these pods (default: all) is accepted by its SG; returns
        the seconds it took. NetError names what is not."""
        pods = list(pods or self.pods)
        t0 = time.monotonic()
        while True:
            bad = {}
            for p in pods:
                st = self.announcements(p)
                waiting = {k: v.get("state") for k, v in st.items() if v.get("state") != "accepted"}
                if not st or waiting:
                    bad[p] = waiting or "no status yet"
            if not bad:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise NetError(f"announcements not accepted after {timeout}s: {bad}")
            time.sleep(poll)

    # -- pods -----------------------------------------------------------------
    def start_pod(self, pod: str, extra_args=(), announce: bool = True) -> PodApp:
        """The pod process; with ``announce`` it announces its prefixes with its key."""
        t = self.topo
        status = pod_control.status_file(self.run_dir, pod)
        status.parent.mkdir(parents=True, exist_ok=True)
        status.unlink(missing_ok=True)
        sg = t.gateway(pod)
        control = pod_control.control_file(self.run_dir, pod)
        args = ["--gateway-mac", t.mac(sg, t.port(sg, pod)), "--control-file", str(control)]
        if self.app_file is not None:
            args += ["--app", str(self.app_file), "--trace-file", str(self.span_file(pod))]
        args += ["--timing-file", str(self.run_dir / "pods" / f"{pod}.timing.json")]
        if announce:
            if pod not in self.key_files:
                self.prepare_identities()
            args += ["--key", str(self.key_files[pod]), "--status-file", str(status)]
        app = PodApp(pod, self.host(pod), iface=t.intf_name(pod, 0), mac=t.mac(pod, 0),
                     instances=t.instances(pod), log_dir=pod_control.pods_dir(self.run_dir),
                     extra_args=[*args, *extra_args])
        old = self.pods.get(pod)
        if old is not None:
            self._forget(old)
        self.pods[pod] = app
        return self._started(app.start())

    def span_file(self, pod: str) -> Path:
        """Where a pod serving an application writes its spans."""
        return pod_control.span_file(self.run_dir, pod)

    def stop_pod(self, pod: str) -> None:
        app = self.pods.pop(pod, None)
        if app is not None:
            app.stop()
            self._forget(app)

    def run_in(self, pod: str, args: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess:
        """Run a Python module in a pod's namespace (e.g. traffic.rmi_client)."""
        proc = self.host(pod).popen(die_with_parent([sys.executable, *args]),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    cwd=str(REPO_ROOT), env=py_env())
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        return subprocess.CompletedProcess(args, proc.returncode, out.decode(), err.decode())

    def call(self, pod: str, src: str, dst: str, method: str = "echo", args=None,
             deadline_s: float = 10.0, timeout: float = 1.0) -> dict:
        """One RMI call by name from a pod's namespace (traffic.rmi_client), retried
        until it succeeds or ``deadline_s`` passes (a serving pod may still be
        starting). Returns the client's JSON: result/from/rtt_ms/hops or error."""
        deadline = time.monotonic() + deadline_s
        while True:
            res = self.run_in(pod, ["-m", "traffic.rmi_client", "--iface", self.topo.intf_name(pod, 0),
                                    "--src", src, "--mac", self.topo.mac(pod, 0),
                                    "--timeout", str(timeout), dst, method,
                                    json.dumps({} if args is None else args)])
            out = json.loads(res.stdout.strip() or json.dumps({"error": res.stderr[-300:]}))
            if "error" not in out or time.monotonic() > deadline:
                return out
