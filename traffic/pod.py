"""The pod process: one per Mininet host, serving one or more service instances.

It announces (DMSC type-1 signaling), through its SG, which is its default
gateway for everything it sends:
* each instance name and the service prefix above it (``/B/4`` and ``/B``),
  signed with the pod's Ed25519 key (traffic/identity.py), retried with
  back-off until the SG answers: the first retry after the SG's answer time
  as measured (RFC 6298's estimator over the acks, at least 0.5 s), doubling
  to 2 s or twice that, each gap jittered; at most ``WINDOW`` announcements
  unanswered at a time (renewals first, the soonest lease end first), so a pod
  with hundreds of prefixes is clocked by its SG's answers instead of filling
  the SG's queue and retrying what it shed (issue 21);
  renewed at a random point between 0.4 and 0.55 of the lease the SG
  granted (so a pod's hundreds of prefixes do not renew together), a renewal
  retried with the same back-off but never past the lease's end (then the
  prefix is pending again: the SG has dropped it); an ack to any of the
  prefix's recent announcements counts (an SG answers a renewal late under
  load: the ack to the earlier one is as good), a nack only to the latest
  or as a revocation notice (about the announcement last acked), and never
  an answer older than one already taken (docs/decisions.md); refusals
  (nack: the SPA's state, the reason, a text) are logged and retried every
  ``REFUSED_RETRY_S``;
* on SIGTERM/SIGINT, a signed withdrawal of everything accepted.
``--status-file`` gets the state of every prefix (JSON) after a change, at
most every ``STATUS_EVERY_S``, for whoever started the pod. ``--control-file`` (JSON, read when it changes;
topologies/emu/pod_control.py writes it) sets
* ``service_ms``: the instance's service time (``{"service_ms": 80}``): every
  request and probe is answered that much later (as by a service that works
  on many at once: the answers wait in a queue, the pod goes on receiving), a
  degraded instance for the SCSC to find;
* ``extra``: instance names served and announced besides ``--instance`` (a
  service the pod starts at run time);
* ``withdrawn``: prefixes the pod withdraws (signed, as when it leaves) and
  stops announcing; taken off the list, they are announced again.
``--timing-file`` gets, every second, how late the pod answered against its
service time (a fidelity monitor, dmsc/fidelity.py): per answer, the time it
left minus the time its request was received and the service time, in the
shared lateness histogram (traffic/wire/lateness.py): ``{"overrun": {...},
"max_ms": ...}``.

It answers, on its one interface:
* REQUEST to a name it serves -> RESPONSE (RMI-style: method + JSON args);
  an instance ``/B/4`` serves requests to ``/B/4`` itself, to names below it
  (``/B/4/cart``) and to the service prefix above it (``/B``, anycast);
* REQUEST to a name it does not serve, or an unknown method -> ERROR;
* PROBE -> PROBE_REPLY with the forward-path records echoed in a TLV.
Anything else is counted and dropped; a malformed frame never stops the pod.
On SIGTERM/SIGINT it writes its counters to the log and exits 0.

With ``--app FILE`` (an application file, traffic/callgraph.py), the
instances of the file's services serve its methods: their own work, then
calls by name to other services, then the answer; each method call is a span
appended to ``--trace-file`` (JSON lines).

Run it as ``python -m traffic.pod --iface pod4-eth0 --instance /B/4 --key pod4.key``.
"""
from __future__ import annotations

import argparse
import collections
import heapq
import json
import logging
import random
import signal
import sys
import time

from pathlib import Path

from traffic import callgraph
from traffic.identity import Identity, IdentityError
from traffic.wire import codec, defs, names
from traffic.wire.lateness import Histogram
from traffic.wire.link import RawLink

log = logging.getLogger("dmsc.pod")

RETRY_MIN_S, RETRY_MAX_S = 0.5, 2.0      # no answer yet: back-off, doubling (and the
                                         # SG's answer time, measured, as the floor)
RTO_MAX_S = 8.0                          # the measured floor's own ceiling
WINDOW = 16                              # announcements unanswered at a time (the SG
                                         # queues 64 a port: fair_queue.py)
STATUS_EVERY_S = 0.25                    # the status file: at most this often
LOOP_S, IDLE_LOOP_S = 0.05, 0.1          # the serve loop's wake-up when busy, when idle
RETRY_JITTER = 0.25                      # each retry gap times U(1 - j, 1 + j)
RENEW_AT = (0.4, 0.55)                   # renew at U(a, b) of the lease after the acked send
                                         # (DHCP's T1 is 0.5; was 0.25-0.4 until issue 21:
                                         # renewals are most of an SG's load at scale)
RECENT_IDS = 8                           # answers taken for this many latest announcements
REFUSED_RETRY_S = 5.0                    # refused: ask again (the operator may authorize it)
WITHDRAW_WAIT_S = 0.5                    # at exit: how long to wait for withdrawal acks
TIMING_EVERY_S = 1.0                     # the timing file's period
MAX_FRAME_BYTES = 1514                   # a 1500-byte MTU's frame (traffic/rmi_client.py)


def announced_prefixes(instances) -> dict[str, str]:
    """{prefix: the instance announcing it}: every instance name and the
    prefixes above it (``/A/1`` also makes ``/A``), first instance first."""
    out: dict[str, str] = {}
    for inst in instances:
        parts = names.components(inst)
        for depth in range(1, len(parts) + 1):
            out.setdefault("/" + "/".join(parts[:depth]), inst)
    return out


class Announcer:
    """The pod's announcements: what is due, and what the SG answered."""

    def __init__(self, identity: Identity, instances, *, mac: str, gateway_mac: str,
                 status_file=None, clock=time.monotonic, rng: random.Random | None = None):
        self.identity = identity
        self.mac, self.gateway_mac = mac, gateway_mac
        self.status_file = Path(status_file) if status_file else None
        self.clock = clock
        self.rng = rng or random.Random()
        self.state: dict[str, dict] = {}
        now = clock()
        for prefix, inst in announced_prefixes(instances).items():
            self.state[prefix] = self._fresh(inst, now)
        self._msg_id = 1
        self.waiting: set[str] = set()     # prefixes whose last announcement is unanswered
        self.srtt: float | None = None     # the SG's answer time (RFC 6298's estimator)
        self.rttvar = 0.0
        self.status_dirty, self.status_at = False, float("-inf")

    @property
    def rto(self) -> float:
        """How long an answer may take before a retry (RFC 6298: srtt + 4 rttvar),
        from RETRY_MIN_S (no answer measured yet) to RTO_MAX_S."""
        if self.srtt is None:
            return RETRY_MIN_S
        return min(RTO_MAX_S, max(RETRY_MIN_S, self.srtt + 4 * self.rttvar))

    def _sample(self, rtt: float) -> None:
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt

    @staticmethod
    def _fresh(inst: str, now: float) -> dict:
        # recent: ((msg_id, sent at), ...) oldest first; answered: the msg_id whose
        # answer was last taken; acked: the msg_id last acked (a revocation notice
        # names it); lease_end: when the SG's lease runs out at the latest
        return {"instance": inst, "state": "pending", "next_at": now, "gap": RETRY_MIN_S,
                "msg_id": 0, "recent": (), "answered": None, "acked": None, "sent": 0}

    def _retry_in(self, st: dict) -> float:
        """The next retry's gap (jittered), and the gap doubled for the one after:
        from the SG's answer time as measured, doubling to RETRY_MAX_S or twice it."""
        rto = self.rto
        base = max(st["gap"], rto)
        st["gap"] = min(base * 2, max(RETRY_MAX_S, 2 * rto))
        return max(rto, base * self.rng.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER))

    def due(self, now: float) -> list[bytes]:
        """The announcements to send now: retries of those unanswered, then new
        ones (renewals by lease end, then the others) while fewer than WINDOW are
        unanswered."""
        out, fresh = [], []
        for prefix, st in self.state.items():
            if st["state"] == "withdrawn":
                continue
            if st["state"] == "accepted" and now >= st["lease_end"]:
                log.warning("%s: lease ran out with no answer to its renewals", prefix)
                st.update(state="pending", gap=RETRY_MIN_S)
                self.status_changed()
            if now < st["next_at"]:
                continue
            if prefix in self.waiting:
                self._send(prefix, st, now, out)
            else:
                fresh.append(prefix)
        room = WINDOW - len(self.waiting)
        if fresh and room > 0:
            fresh.sort(key=lambda p: (self.state[p]["state"] != "accepted",
                                      self.state[p].get("lease_end", 0.0),
                                      self.state[p]["next_at"]))
            for prefix in fresh[:room]:
                self.waiting.add(prefix)
                self._send(prefix, self.state[prefix], now, out)
        return out

    def _send(self, prefix: str, st: dict, now: float, out: list) -> None:
        out.append(self.frame(prefix, withdraw=False))
        if st["state"] == "pending":
            st["next_at"] = now + self._retry_in(st)
        elif st["state"] == "accepted":       # a renewal: retried with back-off until
            last = st["lease_end"] - RETRY_MIN_S / 2     # acked, the last try inside
            st["next_at"] = max(now, min(now + self._retry_in(st), last))  # the lease
            if st["next_at"] == now:          # no time left for another: the lease end
                st["next_at"] = st["lease_end"]
        else:
            st["next_at"] = now + REFUSED_RETRY_S

    def frame(self, prefix: str, *, withdraw: bool) -> bytes:
        st = self.state[prefix]
        self._msg_id = self._msg_id % 0xFFFFFFFF + 1
        st["msg_id"] = self._msg_id
        st["recent"] = (st["recent"] + ((self._msg_id, self.clock()),))[-RECENT_IDS:]
        st["sent"] += 1
        ann = self.identity.announcement(prefix, withdraw=withdraw, src=st["instance"],
                                         msg_id=self._msg_id)
        return ann.encode(eth_src=self.mac, eth_dst=self.gateway_mac)

    def on_answer(self, pkt) -> bool:
        """An ack or nack from the SG; True if it was one of ours and taken."""
        prefix = pkt.text(codec.TLV_PREFIX)
        st = self.state.get(prefix or "")
        if st is None:
            return False
        ids = [i for i, _t in st["recent"]]
        if pkt.msg_id not in ids:
            return False
        pos = ids.index(pkt.msg_id)
        ack = pkt.type == defs.TYPE_ANNOUNCE_ACK
        # a revocation notice: a nack about what the SG held, carrying the id of the
        # announcement it accepted (the one we took its ack for)
        notice = not ack and st["state"] == "accepted" and pkt.msg_id == st["acked"]
        if not ack and pkt.msg_id != st["msg_id"] and not notice:
            return False              # a refusal of an earlier announcement: a later one counts
        if not notice and st["answered"] in ids and pos <= ids.index(st["answered"]):
            return False              # older than (or the same as) an answer already taken
        try:
            body = json.loads(pkt.tlv(codec.TLV_BODY, b"{}") or b"{}")
        except ValueError:
            body = {}
        now = self.clock()
        st["answered"] = pkt.msg_id
        self._sample(now - st["recent"][pos][1])     # each msg_id is sent once: no ambiguity
        self.waiting.discard(prefix)
        if st.get("withdraw_asked"):          # withdrawn at the operator's request: an
            st["state"] = "withdrawn"         # answer to what was sent before stays that
            self.status_changed()
            return True
        if ack:
            if "withdrawn" in body:
                st["state"] = "withdrawn"
            else:
                lease = float(body.get("lease_s", 6.0))
                sent_at = st["recent"][pos][1]    # the SG's lease began after this
                if st["state"] != "accepted":
                    log.info("%s accepted by the SG (lease %.1f s)", prefix, lease)
                st.update(state="accepted", lease_s=lease, lease_end=sent_at + lease,
                          next_at=sent_at + lease * self.rng.uniform(*RENEW_AT),
                          gap=RETRY_MIN_S, acked=pkt.msg_id,
                          reason=body.get("state", "valid"))
        else:
            if st["state"] != "refused" or st.get("reason") != body.get("reason"):
                log.warning("%s refused by the SG: %s %s: %s", prefix, body.get("state"),
                            body.get("reason"), body.get("text"))
            st.update(state="refused", reason=body.get("reason", "?"),
                      spa_state=body.get("state", "?"), text=body.get("text", ""),
                      next_at=now + REFUSED_RETRY_S, acked=None)
        self.status_changed()
        return True

    def add_instance(self, inst: str) -> list[str]:
        """Announce ``inst`` (and the prefixes above it) too; the new prefixes."""
        new = []
        now = self.clock()
        for prefix, owner in announced_prefixes([inst]).items():
            if prefix not in self.state:
                self.state[prefix] = self._fresh(owner, now)
                new.append(prefix)
        return new

    def set_withdrawn(self, prefixes) -> list[bytes]:
        """Withdraw these prefixes (signed withdrawals, returned to send) and
        stop announcing them; a prefix withdrawn before and not in ``prefixes``
        any more is announced again."""
        want = set(prefixes)
        frames, now = [], self.clock()
        for prefix, st in self.state.items():
            held = st.get("withdraw_asked", False)
            if prefix in want and not held:
                st["withdraw_asked"] = True
                if st["state"] == "accepted":
                    frames.append(self.frame(prefix, withdraw=True))
                st["state"] = "withdrawn"
                self.waiting.discard(prefix)
            elif prefix not in want and held:
                st.update(withdraw_asked=False, state="pending", next_at=now, gap=RETRY_MIN_S)
        self.status_changed()
        return frames

    def withdrawals(self) -> list[bytes]:
        return [self.frame(p, withdraw=True) for p, st in self.state.items()
                if st["state"] == "accepted"]

    def status_changed(self) -> None:
        """A prefix's state changed: the status file is rewritten now, or by
        ``flush_status`` once STATUS_EVERY_S has passed since the last write (a
        pod with hundreds of prefixes gets hundreds of acks a minute: a write
        each cost the pods a core at 1,000 instances)."""
        self.status_dirty = True
        self.flush_status(self.clock())

    def flush_status(self, now: float) -> None:
        if self.status_dirty and now - self.status_at >= STATUS_EVERY_S:
            self.write_status()

    def write_status(self) -> None:
        self.status_dirty, self.status_at = False, self.clock()
        if self.status_file is None:
            return
        view = {p: {k: st[k] for k in ("instance", "state", "reason", "spa_state", "text",
                                       "lease_s", "sent") if k in st}
                for p, st in self.state.items()}
        tmp = self.status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key_id": self.identity.key_id, "prefixes": view}))
        tmp.replace(self.status_file)


def _echo(instance, args):
    return args


def _whoami(instance, args):
    return {"instance": instance}


def _add(instance, args):
    return {"sum": sum(args.get("values", []))}


METHODS = {"echo": _echo, "whoami": _whoami, "add": _add}


class Pod:
    def __init__(self, iface: str, instances: list[str], *, mac: str = "00:00:00:00:00:00",
                 gateway_mac: str = codec.BROADCAST, identity: Identity | None = None,
                 status_file=None, app: "callgraph.Application | None" = None,
                 span_sink=None):
        self.iface = iface
        self.instances = [names.normalize(i) for i in instances]
        self.mac = mac
        self.gateway_mac = gateway_mac
        self.counters = collections.Counter()
        self.service_s = 0.0
        self.overrun = Histogram()               # answers' lateness past the service time
        self.pending_frames: list[bytes] = []    # withdrawals the control file asked for
        self.announcer = None if identity is None else Announcer(
            identity, self.instances, mac=mac, gateway_mac=gateway_mac, status_file=status_file)
        self.app = None if app is None else callgraph.AppServer(
            app, mac=mac, gateway_mac=gateway_mac, span_sink=span_sink)

    def serving(self, name: str) -> str | None:
        """The instance that serves ``name``, if any."""
        for inst in self.instances:
            if names.prefix_matches(name, inst) or names.prefix_matches(inst, name):
                return inst
        return None

    def handle(self, raw: bytes) -> bytes | None:
        """One received frame in, the reply frame (bytes) or None out."""
        try:
            pkt = codec.decode(raw)
        except ValueError as exc:          # garbage on the wire: count, go on
            self.counters["rx_malformed"] += 1
            log.warning("dropped malformed frame (%d bytes): %s", len(raw), exc)
            return None
        kw = {"eth_src": self.mac, "eth_dst": self.gateway_mac}
        if pkt.type == defs.TYPE_REQUEST:
            self.counters["rx_request"] += 1
            return self._request(pkt, kw)
        if pkt.type == defs.TYPE_PROBE:
            self.counters["rx_probe"] += 1
            inst = self.serving(pkt.dst_name or "") or self.instances[0]
            return codec.probe_reply(pkt, inst, **kw)
        if pkt.type in (defs.TYPE_RESPONSE, defs.TYPE_ERROR) and self.app is not None \
                and self.app.on_answer(pkt, time.monotonic()):
            self.counters["rx_app_answer"] += 1
            return None
        if pkt.type in (defs.TYPE_ANNOUNCE_ACK, defs.TYPE_ANNOUNCE_NACK) \
                and self.announcer is not None and self.announcer.on_answer(pkt):
            self.counters[f"rx_{defs.TYPE_NAMES[pkt.type]}"] += 1
            return None
        self.counters[f"rx_ignored_{defs.TYPE_NAMES.get(pkt.type, pkt.type)}"] += 1
        return None

    def _request(self, pkt: codec.Frame, kw) -> bytes:
        dst = pkt.dst_name
        src = pkt.src_name
        me = self.instances[0]
        if dst is None or src is None:
            self.counters["tx_error_bad_request"] += 1
            return codec.error(pkt, me, codec.STATUS_BAD_REQUEST, "missing name TLV", **kw)
        try:
            key_ok = names.name_key(dst) == pkt.dst_key
        except names.InvalidName as exc:
            self.counters["tx_error_bad_request"] += 1
            return codec.error(pkt, me, codec.STATUS_BAD_REQUEST, str(exc), **kw)
        if not key_ok:
            self.counters["tx_error_bad_request"] += 1
            return codec.error(pkt, me, codec.STATUS_BAD_REQUEST,
                              f"dst_key does not match name {dst!r}", **kw)
        inst = self.serving(dst)
        if inst is None:
            self.counters["tx_error_unknown_name"] += 1
            return codec.error(pkt, me, codec.STATUS_UNKNOWN_NAME,
                              f"{dst} is not served here", **kw)
        method = pkt.text(codec.TLV_METHOD, "")
        if self.app is not None and self.app.serves(inst):
            return self.app.on_request(pkt, inst, method, time.monotonic())
        fn = METHODS.get(method)
        if fn is None:
            self.counters["tx_error_unknown_method"] += 1
            return codec.error(pkt, inst, codec.STATUS_UNKNOWN_METHOD,
                              f"no method {method!r}", **kw)
        try:
            args = json.loads(pkt.tlv(codec.TLV_BODY, b"null") or b"null")
            result = fn(inst, args if args is not None else {})
        except Exception as exc:           # the service's own error: answered, counted, logged
            self.counters["tx_error_app"] += 1
            log.info("%s %s() raised %s: %s", inst, method, type(exc).__name__, exc)
            return codec.error(pkt, inst, codec.STATUS_APP_ERROR,
                              f"{type(exc).__name__}: {exc}", **kw)
        resp = codec.response(pkt, inst, result, **kw)
        if len(resp) > MAX_FRAME_BYTES:           # one frame per reply: no fragmentation
            self.counters["tx_error_too_large"] += 1
            return codec.error(pkt, inst, codec.STATUS_APP_ERROR,
                                f"result of {len(resp)} bytes does not fit in one "
                                f"{MAX_FRAME_BYTES}-byte frame", **kw)
        self.counters["tx_response"] += 1
        return resp

    def read_control(self, path: Path) -> None:
        try:
            ctl = json.loads(path.read_text())
            service_s = max(0.0, float(ctl.get("service_ms", 0)) / 1000)
            extra = [names.normalize(i) for i in ctl.get("extra", [])]
            withdrawn = [names.normalize(p) for p in ctl.get("withdrawn", [])]
        except (OSError, ValueError, TypeError, AttributeError, names.InvalidName) as exc:
            self.counters["control_unreadable"] += 1
            log.warning("control file %s unreadable: %s", path, exc)
            return
        if service_s != self.service_s:
            log.info("service time now %.0f ms", service_s * 1000)
            self.service_s = service_s
        for inst in extra:
            if inst not in self.instances:
                self.instances.append(inst)
                log.info("now serving %s too", inst)
                if self.announcer is not None:
                    self.announcer.add_instance(inst)
        if self.announcer is not None:
            frames = self.announcer.set_withdrawn(withdrawn)
            if frames:
                log.info("withdrawing %d prefixes (control file)", len(frames))
            self.pending_frames += frames

    def _poll_control(self, control: Path | None, seen):
        """Read the control file if it changed since ``seen``; the new mark: its inode
        and mtime (each write replaces the file, so the inode tells two writes within
        one tick of the coarse clock apart)."""
        if control is None:
            return seen
        try:
            st = control.stat()
        except OSError:
            return seen
        mark = (st.st_ino, st.st_mtime_ns)
        if mark != seen:
            self.read_control(control)
        return mark

    def write_timing(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"overrun": self.overrun.to_dict(),
                                   "max_ms": round(self.overrun.max_ms, 3)}))
        tmp.replace(path)                        # a reader never sees half a file

    def serve(self, duration: float | None = None, control_file=None,
              timing_file=None) -> None:
        stop = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.append(True))
        deadline = None if duration is None else time.monotonic() + duration
        with RawLink(self.iface) as link:
            log.info("pod on %s serving %s%s", self.iface, ", ".join(self.instances),
                     f" (key {self.announcer.identity.key_id})" if self.announcer else
                     " (no key: announces nothing)")
            if self.announcer:
                self.announcer.write_status()
            control = Path(control_file) if control_file else None
            control_mtime = None
            delayed: list = []           # (due, seq, frame): answers waiting out the service time
            seq = 0
            timing = Path(timing_file) if timing_file else None
            timing_at, timing_n = 0.0, -1
            while not stop and (deadline is None or time.monotonic() < deadline):
                control_mtime = self._poll_control(control, control_mtime)
                while self.pending_frames:
                    link.send(self.pending_frames.pop(0))
                    self.counters["tx_withdraw"] += 1
                if self.announcer is not None:
                    for frame in self.announcer.due(time.monotonic()):
                        link.send(frame)
                        self.counters["tx_announce"] += 1
                    self.announcer.flush_status(time.monotonic())
                now = time.monotonic()
                if timing is not None and now >= timing_at:
                    timing_at = now + TIMING_EVERY_S
                    if self.overrun.total != timing_n:
                        timing_n = self.overrun.total
                        self.write_timing(timing)
                while delayed and delayed[0][0] <= now:
                    due = heapq.heappop(delayed)
                    link.send(due[2])
                    self.overrun.add(time.monotonic() - due[0])
                # idle (nothing unanswered, no answer waiting out its service
                # time): the loop wakes half as often, for the control file and the
                # renewals (64 pods on two cores)
                busy = self.announcer is not None and self.announcer.waiting
                wait = LOOP_S if busy or delayed or self.app is not None else IDLE_LOOP_S
                if delayed:
                    wait = min(wait, max(0.0, delayed[0][0] - now))
                if self.app is not None:
                    for frame in self.app.due(now):
                        link.send(frame)
                    wake = self.app.next_wake()
                    if wake is not None:
                        wait = min(wait, max(0.0, wake - now))
                raw = link.recv(wait)
                if raw is None:
                    continue
                # a change written while we waited applies to this frame already (a
                # `degrade` returns, then a call comes: it must find the pod slowed)
                control_mtime = self._poll_control(control, control_mtime)
                received = time.monotonic()
                reply = self.handle(raw)
                if self.app is not None:            # what the frame set going (calls, answers)
                    for frame in self.app.due(time.monotonic()):
                        link.send(frame)
                if reply is None:
                    continue
                if self.service_s:                  # answered later, without blocking
                    seq += 1
                    heapq.heappush(delayed, (received + self.service_s, seq, reply))
                else:
                    link.send(reply)
                    self.overrun.add(time.monotonic() - received)
            if timing is not None:
                self.write_timing(timing)
            if self.announcer is not None:
                self._withdraw_all(link)
        log.info("pod stopping; counters %s", json.dumps(dict(self.counters), sort_keys=True))

    def _withdraw_all(self, link) -> None:
        frames = self.announcer.withdrawals()
        for frame in frames:
            link.send(frame)
            self.counters["tx_withdraw"] += 1
        end = time.monotonic() + WITHDRAW_WAIT_S
        while frames and time.monotonic() < end and any(
                st["state"] == "accepted" for st in self.announcer.state.values()):
            raw = link.recv(0.05)
            if raw is not None:
                self.handle(raw)
        self.announcer.write_status()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iface", required=True)
    ap.add_argument("--instance", action="append", required=True,
                    help="service instance name served here, e.g. /B/4 (repeatable)")
    ap.add_argument("--mac", default="00:00:00:00:00:00")
    ap.add_argument("--gateway-mac", default=codec.BROADCAST)
    ap.add_argument("--key", help="the pod's Ed25519 private key (PEM); none: announce nothing")
    ap.add_argument("--status-file", help="write the announcements' state here (JSON)")
    ap.add_argument("--control-file", help="JSON {\"service_ms\": N, \"extra\": [instances], "
                    "\"withdrawn\": [prefixes]}, read when it changes")
    ap.add_argument("--app", help="an application file (traffic/callgraph.py): serve its "
                    "services' methods")
    ap.add_argument("--trace-file", help="with --app: append each method call's span here")
    ap.add_argument("--timing-file", help="write the answers' lateness past the service time "
                    "here (JSON, every second)")
    ap.add_argument("--duration", type=float, default=None)
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    trace_out = None
    try:
        identity = Identity.load(args.key) if args.key else None
        app = callgraph.load(args.app) if args.app else None
        sink = None
        if app is not None and args.trace_file:
            trace_out = open(args.trace_file, "a", buffering=1)

            def sink(span):
                trace_out.write(json.dumps(span, separators=(",", ":")) + "\n")
        pod = Pod(args.iface, args.instance, mac=args.mac, gateway_mac=args.gateway_mac,
                  identity=identity, status_file=args.status_file, app=app, span_sink=sink)
    except (names.InvalidName, IdentityError, callgraph.AppError) as exc:
        print(f"pod: {exc}", file=sys.stderr)
        return 2
    try:
        pod.serve(args.duration, args.control_file, args.timing_file)
    finally:
        if trace_out is not None:
            trace_out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
