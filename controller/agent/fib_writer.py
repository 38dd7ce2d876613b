"""An agent's FIB writer: the only thing that writes its switch's FIB and
source-name table, in its own thread, so that the protocol never waits for a
P4Runtime write.

Each new RIB is diffed against what the switch holds and written in one batch.
After an agent restart the switch still forwards with the FIB it has: until
the LSDB is relearned (every neighbour up, nothing unacknowledged, no new LSA
for ``QUIET_S``) or the grace period is over, the writer only adds and
changes entries, never deletes; then one full sync removes what is stale and
the router's overload bit is lifted (transit through it again). It also
expires the SCSC's policies (controller/agent/policies.py) under its lock.
"""
from __future__ import annotations

import logging
import threading
import time

from controller.switch import fiblog
from controller.switch.p4rt import SwitchConnectionError, SwitchError, WriteError
from controller.switch.tables import Fib, SourceGuard
from topologies.topo import CPU_PORT
from traffic.wire import names

log = logging.getLogger("dmsc.agent")

QUIET_S = 0.3


class FibWriter:
    """The FIB writer of ``agent`` (its router, lock, switch session ``sw``,
    policies, counters); ``grace_s``: how long after a (re)connect stale
    entries are kept at most."""

    def __init__(self, agent, grace_s: float = 3.0):
        self.agent = agent
        self.grace_s = grace_s
        self.event = threading.Event()        # a new RIB, or a connect: write now
        self.lock = threading.Lock()          # one FIB writer; reconnects wait for it
        self.cache: dict | None = None        # what this agent last wrote (None: read it)
        self.src_cache: set | None = None     # the same for the source-name table
        self.version = 0
        self.written_at = 0.0
        self.rib_version = -1                 # the RIB version last written
        self.started = time.monotonic()
        self.deletes_allowed = False
        self._lift_overload = False

    def connected(self, fresh: bool) -> None:
        """The switch session was (re)opened: read the switch's tables before
        the next write and write the whole FIB; on a fresh switch (nothing to
        protect) deletes are allowed at once."""
        # The grace period for relearning runs from here, not from the
        # process's start: a restart on a loaded machine could spend most of it
        # importing and connecting, and then give up its own old prefixes
        # (adopt) before its neighbours had sent them back.
        self.started = time.monotonic()
        self.cache = self.src_cache = None
        self.rib_version = -1          # force a FIB write
        if fresh:
            self.deletes_allowed = True

    def may_delete(self, now: float) -> bool:
        """After a restart, stale-looking entries are kept until the LSDB is
        relearned: every neighbour up, nothing unacknowledged, no new LSA for
        a moment (or the grace period is over)."""
        r = self.agent.router
        return (r.synced and now - r.last_change > QUIET_S) or now - self.started > self.grace_s

    def write(self) -> None:
        """The FIB, and the source-name table (what each pod port may speak as)
        from the prefixes this SG holds, in one batch."""
        agent = self.agent
        with agent.lock:
            version = agent.router.rib_version
            desired = agent.router.routes()
            held = [(p, port) for p, (port, _m) in agent.router.local_prefixes.items()
                    if port != CPU_PORT]
        fib, guard = Fib(agent.sw), SourceGuard(agent.sw)
        # Only this agent writes the FIB: what it wrote last is what the switch
        # holds. Read it back only after a (re)connect or a failed write.
        current = self.cache if self.cache is not None else fib.read()
        current_src = self.src_cache if self.src_cache is not None else guard.read()
        want = {names.prefix_key(p): r for p, r in desired.items()}
        want_src = guard.wanted(held)
        if not self.deletes_allowed:
            want = {**{k: r for k, r in current.items() if k not in want}, **want}
            want_src |= current_src
        ups = guard.diff(current_src, want_src) + fib.diff(current, want)
        self.cache = self.src_cache = None
        agent.sw.write(ups)
        fiblog.log(agent.name, current, want)        # no-op unless DMSC_FIBLOG names a file
        self.cache, self.src_cache = want, want_src
        self.rib_version = version
        if ups:
            self.version += 1
            self.written_at = time.monotonic()
            agent.counters["fib_writes"] += 1
            log.info("FIB v%d: %d updates (%s)", self.version, len(ups),
                     "full sync" if self.deletes_allowed else "no deletes yet")

    def loop(self) -> None:
        """The writer thread: a write whenever woken (``event``) or every 0.2 s."""
        agent = self.agent
        while not agent.stop_event.is_set():
            self.event.wait(0.2)
            self.event.clear()
            if agent.stop_event.is_set():
                return
            with self.lock, agent.survives("fib_writer"):
                if agent.sw is None:
                    continue
                try:
                    self._round()
                except SwitchConnectionError as exc:
                    log.warning("FIB write: switch connection lost (%s)", exc)
                    self.rib_version = -1            # the protocol loop reconnects
                except (WriteError, SwitchError) as exc:
                    log.error("FIB write failed: %s", exc)
                    agent.counters["fib_write_errors"] += 1
                    self.rib_version = -1
                    agent.stop_event.wait(0.1)

    def _round(self) -> None:
        agent = self.agent
        if not self.deletes_allowed and self.may_delete(time.monotonic()):
            self.deletes_allowed = True
            self.rib_version = -1        # one full sync now
            self._lift_overload = True
        if agent.router.rib_version != self.rib_version:
            self.write()
        if self._lift_overload and agent.router.rib_version == self.rib_version:
            self._lift_overload = False      # the full FIB is written: transit again
            with agent.lock:
                agent.router.set_overload(False, time.monotonic())
            agent.wake()
        agent.policies.expire()
