"""An SG's gateway duties: pods' announcements in (type 1), the SPA asked (type 3).

The only way a service prefix enters an SG's LSA:

    pod --announce frame--> packet-in (reason announce) --> Gateway.on_frame
        --> worker thread: SPA Check --> valid: Router.accept_prefix + ack
                                     --> anything else: counted, logged, nack

The SPA is asked from a worker thread, never from the protocol loop, so
hellos and LSAs never wait for it. What an SG holds is soft state with a lease:
a pod re-announces before its lease runs out; an expired lease, a withdrawal
(signed, from the port that holds the prefix) or a revocation (the SPA's
verdict on what the SG holds, asked again every ``recheck_s``) withdraws the
prefix from the LSA and so from every FIB.

With no SPA answering the SG fails closed: a new announcement waits (pending,
retried with back-off, logged) and is accepted once an SPA says valid; what it
holds it keeps, and a re-announcement of a held prefix from the same port with
the same key renews the lease (its signature cannot be checked then: the
port is the evidence). Several SPA addresses: the client moves to the next.
A withdrawal with no SPA answering is honoured on the same evidence (removing
a route cannot hijack anything).

Several pods behind one SG may serve the same service prefix (each with its
own key, each valid for the SPA): the first to be accepted holds it (its
port is the one in the LSA), the others *share* it (acked, leased and
rechecked like the holder, ``announce_shared``) and the SG's FIB spreads
the calls over all of their ports (ECMP). When the holder goes (withdrawal,
expired lease, revocation) the sharer accepted first holds it at once
(``sharer_promoted``): the service never leaves the FIBs.

Everything refused is counted in the agent's counters under
``announce_refused_<reason>`` (SPA reasons, and ``malformed_*``,
``not_held``, ``no_spa``, ``key_collision``) and logged.

One pod cannot slow the others (controller/agent/fair_queue.py): the intake is
bounded per port and served round robin, renewals of what the SG holds ahead of
new claims; the cheap checks (form, reserved or unroutable name, a timestamp
outside the freshness window) come before the queue, so only what could be valid
costs an SPA call. What is dropped unanswered is counted ``announce_shed_<why>``
(``queue_full``, ``expired``: waited longer than the window, ``pending_full``: too
many waiting for an SPA that does not answer); with the P4 program's meters
(``announce_policed``) and the SPA's verdicts, every frame a pod sends is counted
once.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from controller.agent.fair_queue import FairQueue
from controller.spa.spa_client import SpaClient, SpaUnavailable
from controller.spa.validate import WINDOW_S, AnnounceVerdict
from traffic.wire import codec, defs, names
from traffic.wire.announcement import Announcement, BadAnnouncement, answer

log = logging.getLogger("dmsc.gateway")

DEFAULT_LEASE_S = 6.0
RECHECK_S = 1.0
RETRY_MIN_S, RETRY_MAX_S = 0.1, 2.0
MAX_PENDING = 1024             # announcements waiting for an SPA that does not answer
IN_FLIGHT = 16                 # SPA Checks sent together (Gateway.handle_many)
OPERATOR = "operator"          # key id of a prefix accepted by operator override
RESTART = "restart"            # key id of a prefix kept over an agent restart, until its
                               # pod re-announces it (or its lease runs out)


@dataclass
class Held:
    prefix: str
    port: int
    mac: str
    key_id: str
    src_name: str
    expires: float            # monotonic; inf for an operator override
    accepted_at: float
    verdict_ms: float = 0.0   # the SPA's round trip when it was accepted
    msg_id: int = 0           # of the announcement last accepted (a revocation notice uses it)


@dataclass
class Job:
    ann: Announcement
    port: int
    mac: str
    received: float


class Gateway:
    def __init__(self, agent, spa: SpaClient | None, *, lease_s: float = DEFAULT_LEASE_S,
                 recheck_s: float = RECHECK_S, clock=time.monotonic):
        self.agent = agent
        self.spa = spa
        self.lease_s = lease_s
        self.recheck_s = recheck_s
        self.clock = clock
        self.held: dict[str, Held] = {}
        # other ports' valid claims to a held prefix: (prefix, port) -> Held
        self.sharers: dict[tuple[str, int], Held] = {}
        self._expire_at = float("inf")       # no lease ends before this (expire)
        self.pending: dict[tuple[int, str], Job] = {}
        self.window_s = WINDOW_S
        self.jobs = FairQueue(max_wait_s=self.window_s, clock=clock)
        self.counters = agent.counters
        self._retry_gap = RETRY_MIN_S
        self._retry_at = 0.0
        self._next_recheck = 0.0
        self._spa_down_since: float | None = None
        self._thread: threading.Thread | None = None

    @property
    def me(self) -> str:
        return names.switch_name(self.agent.name)

    # -- from the protocol loop ----------------------------------------------
    def on_frame(self, port: int, raw: bytes) -> None:
        """An announce/withdraw punted from a pod port: checked for form here
        (cheap), queued for the SPA."""
        try:
            f = codec.decode(raw)
            ann = Announcement.from_frame(f)
        except BadAnnouncement as exc:
            self._refuse_malformed(port, raw, exc.reason, str(exc))
            return
        except ValueError as exc:
            self._refuse_malformed(port, raw, "frame", str(exc))
            return
        self.counters[f"{ann.kind}_received"] += 1
        job = Job(ann, port, f.eth_src, self.clock())
        if names.is_reserved(ann.prefix):            # the switches' names: never a pod's
            self._refuse(job, "invalid", "reserved_name",
                         f"{ann.prefix} is under {names.RESERVED_ROOT}, the switches' names")
            return
        try:
            names.prefix_key(ann.prefix)
        except names.InvalidName as exc:             # deeper than the key, or no name
            self._refuse(job, "invalid", "bad_prefix", str(exc))
            return
        age = time.time() - ann.timestamp_ns / 1e9
        if abs(age) > self.window_s:                 # the SPA would say stale: no call
            self.counters["announce_refused_stale_timestamp"] += 1
            self._answer(job, ok=False, body={
                "state": "invalid", "reason": "stale_timestamp",
                "text": f"timestamp {age:+.1f} s from the SG's clock (window {self.window_s:g} s)"})
            return
        h = self._holder(ann.prefix, port)
        renewal = h is not None and h.key_id == ann.key_id
        if not self.jobs.put(port, job, renewal):
            self.counters["announce_shed_queue_full"] += 1   # unanswered: a flood's tail

    def _refuse_malformed(self, port, raw, reason, text) -> None:
        self.counters[f"announce_refused_malformed_{reason}"] += 1
        log.warning("malformed announcement on port %d (%d bytes): %s", port, len(raw), text)

    def _holder(self, prefix: str, port: int) -> Held | None:
        """What ``port`` holds of ``prefix``: the prefix itself, or a share of it."""
        h = self.held.get(prefix)
        if h is not None and h.port == port:
            return h
        return self.sharers.get((prefix, port))

    def expire(self, now: float) -> None:
        """Leases that ran out (called by the protocol loop under the agent's lock,
        every tick). They are scanned only once the soonest lease end seen by the
        last scan has passed: a renewal only moves a lease later, and a new one
        lowers the mark itself (``_leased``); at 500 prefixes a scan every tick
        was 17 % of an SG agent's time."""
        if now <= self._expire_at:
            return
        for h in list(self.sharers.values()):
            if now > h.expires:
                self._withdraw(h, now, "lease expired")
                self.counters["lease_expired"] += 1
        for prefix, h in list(self.held.items()):
            if now > h.expires:
                self._withdraw(h, now, "lease expired")
                self.counters["lease_expired"] += 1
        self._expire_at = min((h.expires for h in (*self.held.values(), *self.sharers.values())),
                              default=float("inf"))

    def _leased(self, h: Held) -> Held:
        """A new holder or sharer: its lease end is a candidate for the soonest."""
        self._expire_at = min(self._expire_at, h.expires)
        return h

    # -- the worker ----------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"{self.agent.name}:gateway", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self.jobs.close()            # wakes the worker: it sees the stop event
            self._thread.join(timeout)

    def _run(self) -> None:
        stop = self.agent.stop_event
        while not stop.is_set():
            now = self.clock()
            due = self._next_recheck if self.spa is not None else now + 1.0
            if self.pending:
                due = min(due, self._retry_at)
            # sleep until a job, a retry or a recheck is due (at most 1 s)
            job = self.jobs.get(timeout=min(1.0, max(0.01, due - now)))
            batch = [job] if job is not None else []
            while job is not None and len(batch) < IN_FLIGHT:   # what else waits, in turn
                job = self.jobs.get(timeout=0)
                if job is not None:
                    batch.append(job)
            if self.jobs.expired:
                self.counters["announce_shed_expired"] += len(self.jobs.expired)
                self.jobs.expired.clear()
            if stop.is_set():
                return
            try:
                if batch:
                    self.handle_many(batch)
                now = self.clock()
                if self.pending and now >= self._retry_at:
                    self._retry_pending(now)
                if now >= self._next_recheck:
                    self._next_recheck = now + self.recheck_s
                    self.recheck()
            except Exception:     # a gateway bug must not end the agent: log it, count it
                self.counters["gateway_errors"] += 1
                log.exception("gateway: unexpected error")

    def handle(self, job: Job) -> None:
        """One announcement or withdrawal: ask the SPA, act on its verdict."""
        self.handle_many([job])

    def handle_many(self, jobs: list[Job]) -> None:
        """Announcements and withdrawals taken from the queue together: the SPA
        asked about all of them at once (up to ``IN_FLIGHT`` Checks in flight),
        each verdict acted on in queue order. One at a time, a loaded SG spent
        a round trip (19 ms median, 80 ms p90 at 1,000 instances) per
        announcement and fell half a minute behind its pods."""
        if self.spa is None:
            for job in jobs:
                self._answer(job, ok=False, body={
                    "state": "invalid", "reason": "no_spa",
                    "text": f"{self.agent.name} has no SPA configured"})
                self.counters["announce_refused_no_spa"] += 1
            return
        t0 = self.clock()
        verdicts = self.spa.check_many([(j.ann, self.agent.name, j.port) for j in jobs])
        spa_ms = (self.clock() - t0) * 1000
        if len(jobs) > 1:
            self.counters["spa_batches"] += 1
        for job, verdict in zip(jobs, verdicts):
            if isinstance(verdict, SpaUnavailable):
                self._spa_unavailable(job, verdict)
                continue
            self._spa_back()
            self.apply(job, verdict, spa_ms)

    def apply(self, job: Job, verdict: AnnounceVerdict, spa_ms: float = 0.0) -> None:
        ann, now = job.ann, self.clock()
        with self.agent.lock:
            h = self.held.get(ann.prefix)
            if ann.msg_type == defs.TYPE_WITHDRAW:
                if not verdict.valid:
                    return self._refuse(job, verdict.state, verdict.reason, verdict.text)
                mine = self._holder(ann.prefix, job.port)
                if mine is None or mine.key_id != ann.key_id:
                    return self._refuse(job, "invalid", "not_held",
                                        f"{ann.prefix} is not held for this key on port {job.port}")
                self._withdraw(mine, now, "withdrawn by its pod")
                self.counters["withdraw_accepted"] += 1
                self._answer(job, ok=True, body={"withdrawn": ann.prefix})
                return
            if not verdict.valid:
                return self._refuse(job, verdict.state, verdict.reason, verdict.text)
            if h is not None and h.port != job.port:
                # another pod serving the same prefix behind this SG: it shares it
                sb = self.sharers.get((ann.prefix, job.port))
                if sb is None:
                    self.sharers[(ann.prefix, job.port)] = self._leased(Held(
                        ann.prefix, job.port, job.mac, ann.key_id, ann.src_name,
                        now + self.lease_s, now, spa_ms, ann.msg_id))
                    self.counters["announce_shared"] += 1
                    log.info("accepted %s from port %d (key %s), shared with port %d",
                             ann.prefix, job.port, ann.key_id, h.port)
                else:
                    sb.expires, sb.key_id = now + self.lease_s, ann.key_id
                    sb.mac, sb.msg_id = job.mac, ann.msg_id
                    self.counters["announce_renewed"] += 1
                self._sync_sharers(ann.prefix, now)
                self._answer(job, ok=True, body={"lease_s": self.lease_s, "state": verdict.state,
                                                 "shared": True})
                return
            if h is None:
                try:
                    self.agent.router.accept_prefix(ann.prefix, job.port, job.mac, now)
                except names.KeyCollision as exc:     # the SPA let it through; we do not
                    return self._refuse(job, "invalid", "key_collision", str(exc))
                except (ValueError, names.InvalidName) as exc:
                    return self._refuse(job, "invalid", "bad_port", str(exc))
                self.held[ann.prefix] = self._leased(Held(
                    ann.prefix, job.port, job.mac, ann.key_id, ann.src_name,
                    now + self.lease_s, now, spa_ms, ann.msg_id))
                self.counters["announce_accepted"] += 1
                log.info("accepted %s from port %d (key %s): SPA %s in %.1f ms, %.1f ms after "
                         "it arrived", ann.prefix, job.port, ann.key_id, verdict.reason, spa_ms,
                         (now - job.received) * 1000)
            else:
                h.expires, h.key_id, h.mac = now + self.lease_s, ann.key_id, job.mac
                h.msg_id = ann.msg_id
                self.counters["announce_renewed"] += 1
            self._answer(job, ok=True, body={"lease_s": self.lease_s, "state": verdict.state})
        self.agent.wake()

    def _refuse(self, job: Job, state: str, reason: str, text: str) -> None:
        self.counters[f"announce_refused_{reason}"] += 1
        log.warning("refused %s of %s from port %d (key %s): %s %s: %s", job.ann.kind,
                    job.ann.prefix, job.port, job.ann.key_id, state, reason, text)
        self._answer(job, ok=False, body={"state": state, "reason": reason, "text": text})

    def _answer(self, job: Job, *, ok: bool, body: dict) -> None:
        sw = self.agent.sw
        if sw is None:
            return
        port_mac = self.agent.router.ports[job.port].mac if job.port in self.agent.router.ports \
            else codec.BROADCAST
        try:
            frame = answer(job.ann, self.me, ok=ok, body=body, eth_src=port_mac, eth_dst=job.mac)
        except names.InvalidName:
            self.counters["announce_answer_unroutable"] += 1
            return
        # through the agent's packet I/O (the CPU-port veth or the stream); a
        # holder without one (the central controller's handle) uses the session
        send = getattr(self.agent, "packet_out", None) or sw.packet_out
        send(frame, egress_port=job.port)

    def _withdraw(self, h: Held, now: float, why: str) -> None:
        """``h`` goes (the holder or a sharer); a holder's prefix passes to the
        sharer accepted first, if any, else leaves the LSA."""
        if self.sharers.get((h.prefix, h.port)) is h:
            del self.sharers[(h.prefix, h.port)]
            self._sync_sharers(h.prefix, now)
            log.info("%s (port %d) no longer shared: %s", h.prefix, h.port, why)
            self.agent.wake()
            return
        self.held.pop(h.prefix, None)
        waiting = sorted((sb for (p, _port), sb in self.sharers.items() if p == h.prefix),
                         key=lambda sb: sb.accepted_at)
        for sb in waiting:
            try:
                self.agent.router.accept_prefix(sb.prefix, sb.port, sb.mac, now)
            except (ValueError, names.InvalidName, names.KeyCollision):
                continue
            del self.sharers[(sb.prefix, sb.port)]
            self.held[sb.prefix] = sb
            self._sync_sharers(sb.prefix, now)
            self.counters["sharer_promoted"] += 1
            log.info("%s (port %d): %s; port %d, sharing it since %.1f s, holds it now",
                     h.prefix, h.port, why, sb.port, now - sb.accepted_at)
            break
        else:
            self.agent.router.withdraw_prefix(h.prefix, now)
            log.info("withdrew %s (port %d): %s", h.prefix, h.port, why)
        self.agent.wake()

    def _sync_sharers(self, prefix: str, now: float) -> None:
        """The router's extra local ports for ``prefix``: every sharer's."""
        self.agent.router.set_local_sharers(
            prefix, {sb.port: sb.mac for (p, _port), sb in self.sharers.items() if p == prefix},
            now)

    # -- the SPA down, and back ----------------------------------------------------
    def _spa_unavailable(self, job: Job, exc) -> None:
        self.counters["spa_unavailable"] += 1
        now = self.clock()
        if self._spa_down_since is None:
            self._spa_down_since = now
            log.warning("SPA unreachable (%s): failing closed; new announcements wait, "
                        "held prefixes are kept", exc)
        ann = job.ann
        with self.agent.lock:
            h = self._holder(ann.prefix, job.port)
            same = h is not None and h.key_id == ann.key_id
            if same and ann.msg_type == defs.TYPE_ANNOUNCE:
                h.expires = now + self.lease_s
                self.counters["announce_renewed_without_spa"] += 1
                self._answer(job, ok=True, body={"lease_s": self.lease_s, "state": "kept",
                                                 "text": "renewed while no SPA answers"})
                return
            if same and ann.msg_type == defs.TYPE_WITHDRAW:
                self._withdraw(h, now, "withdrawn by its pod (no SPA answering)")
                self.counters["withdraw_accepted_without_spa"] += 1
                self._answer(job, ok=True, body={"withdrawn": ann.prefix})
                return
        if ann.msg_type == defs.TYPE_ANNOUNCE:
            if len(self.pending) >= MAX_PENDING and (job.port, ann.prefix) not in self.pending:
                self.counters["announce_shed_pending_full"] += 1
                return
            self.pending[(job.port, ann.prefix)] = job
            self.counters["announce_pending"] += 1
            log.warning("SPA unreachable: %s from port %d waits (%d pending, retry in %.1f s)",
                        ann.prefix, job.port, len(self.pending), self._retry_gap)
            self._retry_at = now + self._retry_gap
            self._retry_gap = min(self._retry_gap * 2, RETRY_MAX_S)

    def _spa_back(self) -> None:
        if self._spa_down_since is not None:
            log.warning("SPA answers again at %s after %.1f s", self.spa.addr,
                        self.clock() - self._spa_down_since)
            self._spa_down_since = None
        self._retry_gap = RETRY_MIN_S

    def _retry_pending(self, now: float) -> None:
        jobs, self.pending = list(self.pending.values()), {}
        for job in jobs:
            self.handle(job)          # back into pending if the SPA is still away

    def recheck(self) -> None:
        """Ask the SPA about everything held (revocations); withdraw what it no
        longer calls valid. Nothing changes while no SPA answers."""
        if self.spa is None:
            return
        with self.agent.lock:
            held = [h for h in [*self.held.values(), *self.sharers.values()]
                    if h.key_id not in (OPERATOR, RESTART)]
        if not held:
            return
        try:
            verdicts = self.spa.revalidate(self.agent.name, [(h.prefix, h.key_id) for h in held])
        except SpaUnavailable:
            self.counters["spa_unavailable"] += 1
            return
        self._spa_back()
        now = self.clock()
        for h, v in zip(held, verdicts):
            if v.valid:
                continue
            with self.agent.lock:
                if self._holder(h.prefix, h.port) is not h:
                    continue
                self._withdraw(h, now, f"SPA now says {v.state} {v.reason}: {v.text}")
                self.counters["withdrawn_revoked"] += 1
            ann = Announcement(defs.TYPE_ANNOUNCE, h.prefix, h.key_id, 0, b"", b"", h.src_name,
                               h.msg_id)
            self._answer(Job(ann, h.port, h.mac, now), ok=False,
                         body={"state": v.state, "reason": v.reason, "text": v.text})

    # -- an agent restart -------------------------------------------------------------
    def adopt(self, prefixes, now: float, pod_mac) -> None:
        """Prefixes our own LSA carried before this agent restarted: held for
        one lease, so the network does not lose them while the pods (which
        re-announce at about half their lease) reach the new agent; a pod's
        re-announcement from the same port takes them over. Called by the
        router under the agent's lock. ``pod_mac(port)`` is the pod's MAC."""
        for prefix, port in prefixes:
            if prefix in self.held or self.agent.router.ports.get(port) is None \
                    or self.agent.router.ports[port].role != "pod":
                continue
            mac = pod_mac(port)
            if mac is None:
                continue
            try:
                self.agent.router.accept_prefix(prefix, port, mac, now)
            except (ValueError, names.InvalidName):
                continue
            self.held[prefix] = self._leased(Held(prefix, port, mac, RESTART, prefix,
                                                  now + self.lease_s, now))
            self.counters["restart_kept"] += 1
            log.info("kept %s (port %d) from before the restart, for one lease", prefix, port)

    # -- operator override -------------------------------------------------------------
    def override(self, prefix: str, port: int, mac: str) -> None:
        """Accept without the SPA (admin AcceptPrefix): named as an operator
        override in the log and the counters. Call under the agent's lock."""
        now = self.clock()
        self.agent.router.accept_prefix(prefix, port, mac, now)
        prefix = names.normalize(prefix)
        self.held[prefix] = Held(prefix, port, mac, OPERATOR, prefix, float("inf"), now)
        self.counters["operator_override"] += 1
        log.warning("operator override: %s accepted on port %d without the SPA", prefix, port)

    def state(self) -> list[Held]:
        """Every claim, holders and sharers, by prefix and port."""
        with self.agent.lock:
            return sorted([*self.held.values(), *self.sharers.values()],
                          key=lambda h: (h.prefix, h.port))
