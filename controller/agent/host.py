"""Several switches' agents in one process: ``python -m controller.agent.host``.

Each agent is still its own protocol instance (its own Router, LSDB, P4Runtime
session, FIB writer and admin service on its own port) and talks to the other
switches only in-band, through its own switch; the process only shares the
Python interpreter, the imported modules and the parsed topology. That saves
what one process per switch costs on a small machine: about 60 MB of RSS and
a second or more of CPU at start-up per agent (docs/decisions.md).

    python -m controller.agent.host --spec agents.json --log-file host.log

``agents.json`` is ``{"agents": {"<switch>": [<controller.agent arguments>]}}``;
every agent in it starts at once. Then the process reads commands, one JSON
object a line, on its standard input (the network that started it writes them):

    {"op": "stop", "name": "sr3"}           stop that agent (as SIGTERM would)
    {"op": "kill", "name": "sr3"}           stop it at once (as SIGKILL would)
    {"op": "start", "name": "sr3"}          start it again (same arguments, or
    {"op": "start", "name": "sr3", "argv": [...]}   new ones)

Stopping an agent ends its protocol loop, closes its P4Runtime session and its
admin service: its neighbours see exactly one switch's control plane die, as
when its own process is killed. One agent that raises does not stop the others:
its thread logs the exception, closes its session and admin service, and the
rest run on. End of input or SIGTERM stops every agent and the process.

Each agent logs to its own ``--log-file``: a record goes to the file of the
agent whose thread wrote it (every agent thread's name starts with
``<switch>:``); anything else goes to the host's log.
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from dataclasses import dataclass

from controller.agent import agent_command, router_agent
from topologies.topo import Topology

log = logging.getLogger("dmsc.agent.host")
FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


@dataclass
class _Running:
    agent: "router_agent.Agent"
    server: "agent_command.Servers"       # its admin service and policy channel
    thread: threading.Thread


class HostError(RuntimeError):
    pass


class AgentHost:
    """The agents of one process. ``build`` makes an (agent, admin server) pair
    from parsed arguments (tests give a fake)."""

    def __init__(self, specs: dict[str, list[str]], build=None):
        self.specs = {n: list(a) for n, a in specs.items()}
        self.build = build or self._build
        self.running: dict[str, _Running] = {}
        self.crashed: dict[str, str] = {}          # name -> the exception that ended it
        self.lock = threading.Lock()
        self._topos: dict[str, Topology] = {}
        self._log_handlers: dict[str, logging.Handler] = {}
        # two pipeline pushes at a time: 16 at once on a loaded machine starved
        # the agents already running of CPU for seconds
        self.connect_gate = threading.Semaphore(2)

    def _build(self, a: argparse.Namespace):
        topo = self._topos.get(a.topo)
        if topo is None:
            topo = self._topos[a.topo] = Topology.load(a.topo)
        return agent_command.build(a, topo)

    # -- one agent ----------------------------------------------------------------
    def start(self, name: str, argv: list[str] | None = None) -> None:
        """Start one agent (raises HostError if unknown or already running)."""
        argv = list(argv) if argv is not None else self.specs.get(name)
        if argv is None:
            raise HostError(f"no agent {name} in this process")
        with self.lock:
            if name in self.running:
                raise HostError(f"agent {name} is already running")
            a = agent_command.parser().parse_args(argv)
            if a.switch != name:
                raise HostError(f"agent {name}: its arguments are for {a.switch}")
            self._log_to(name, a.log_file, a.log_level)
            agent, server = self.build(a)
            agent.session.connect_gate = self.connect_gate
            self.specs[name] = argv
            t = threading.Thread(target=self._run, args=(name, agent, server),
                                 name=f"{name}:protocol", daemon=True)
            self.running[name] = _Running(agent, server, t)
            self.crashed.pop(name, None)
            t.start()
        log.info("agent %s started (switch %s, admin %s)", name, a.grpc_addr, a.admin_addr)

    def _run(self, name: str, agent, server) -> None:
        try:
            agent.run()
        except Exception as exc:      # noqa: BLE001 (one agent's crash, not the others')
            log.exception("agent %s crashed: its control plane is down, the other "
                          "agents in this process run on", name)
            self.crashed[name] = f"{type(exc).__name__}: {exc}"
            agent.stop_event.set()
        finally:
            server.stop(grace=None)
            logging.getLogger("dmsc.agent").info("agent %s stopped; counters %s", name,
                                                 dict(agent.counters))
            with self.lock:
                r = self.running.get(name)
                if r is not None and r.agent is agent:
                    del self.running[name]

    def stop(self, name: str, kill: bool = False, timeout: float = 5.0) -> bool:
        """Stop one agent; with ``kill`` its admin service goes at once too.
        False if it was not running."""
        with self.lock:
            r = self.running.get(name)
        if r is None:
            return False
        r.agent.stop_event.set()
        r.agent.wake()
        if kill:
            r.server.stop(grace=None)
        r.thread.join(timeout)
        if r.thread.is_alive():
            log.error("agent %s did not stop within %.0f s", name, timeout)
        return True

    def stop_all(self, timeout: float = 5.0) -> None:
        with self.lock:
            rs = list(self.running.values())
        for r in rs:
            r.agent.stop_event.set()
            r.agent.wake()
        for r in rs:
            r.thread.join(timeout)

    def alive(self, name: str) -> bool:
        return name in self.running

    # -- commands -------------------------------------------------------------------
    def command(self, line: str) -> None:
        """One command line (see the module's doc). Raises HostError on a bad one."""
        try:
            c = json.loads(line)
            op, name = c["op"], c["name"]
        except (ValueError, KeyError, TypeError) as exc:
            raise HostError(f"bad command {line.strip()[:80]!r}: {exc}") from None
        if op == "start":
            self.start(name, c.get("argv"))
        elif op in ("stop", "kill"):
            if not self.stop(name, kill=op == "kill"):
                log.info("stop %s: not running", name)
        else:
            raise HostError(f"unknown command {op!r}")

    def serve(self, stream) -> None:
        """Commands from ``stream`` until it ends; a bad one is logged and skipped."""
        for line in stream:
            if not line.strip():
                continue
            try:
                self.command(line)
            except (HostError, agent_command.AgentArgsError, SystemExit) as exc:
                log.error("%s", exc)
            except Exception:     # noqa: BLE001 (a command's failure stops nothing)
                log.exception("command %r failed", line.strip()[:80])

    # -- logs -------------------------------------------------------------------------
    def _log_to(self, name: str, path: str | None, level: str) -> None:
        if path and name not in self._log_handlers:
            h = logging.FileHandler(path)
            h.setFormatter(logging.Formatter(FORMAT))
            h.setLevel(level)
            self._log_handlers[name] = h


class _ByAgent(logging.Handler):
    """Sends a record to the log of the agent whose thread wrote it."""

    def __init__(self, host: AgentHost, fallback: logging.Handler):
        super().__init__()
        self.host, self.fallback = host, fallback

    def emit(self, record: logging.LogRecord) -> None:
        name = record.threadName.split(":", 1)[0] if ":" in record.threadName else None
        h = self.host._log_handlers.get(name) if name else None
        if h is not None:
            if record.levelno >= h.level:
                h.handle(record)
        elif record.levelno >= self.fallback.level:
            self.fallback.handle(record)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="several DMSC agents in one process")
    ap.add_argument("--spec", required=True, help='JSON: {"agents": {switch: [args]}}')
    ap.add_argument("--log-file")
    ap.add_argument("--log-level", default="INFO")
    a = ap.parse_args(argv)
    fallback = logging.FileHandler(a.log_file) if a.log_file else logging.StreamHandler()
    fallback.setFormatter(logging.Formatter("%(asctime)s %(threadName)s " + FORMAT[12:]))
    fallback.setLevel(a.log_level)
    with open(a.spec) as f:
        specs = json.load(f)["agents"]
    host = AgentHost(specs)
    root = logging.getLogger()
    root.addHandler(_ByAgent(host, fallback))
    root.setLevel(a.log_level)

    def on_signal(*_):
        host.stop_all()
        raise SystemExit(0)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    for name in specs:
        try:
            host.start(name)
        except (HostError, agent_command.AgentArgsError, SystemExit) as exc:
            log.error("agent %s not started: %s", name, exc)
    log.info("%d agents in this process", len(host.running))
    try:
        host.serve(sys.stdin)
    finally:
        host.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
