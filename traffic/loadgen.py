"""Load generators: the open loop (the default) and the closed loop.

The **open loop** sends calls on a schedule, whatever the answers do: call
``i`` is due at ``start + offset[i]``, with offsets at a constant rate or as
Poisson arrivals (exponential gaps, a seeded generator). A sender sends each
call at its time; a receiver thread matches the answers by msg_id, so many
calls are in flight at once. Each call's latency runs from its **intended**
send time, not from the moment it left: when the system (or the generator)
stalls, the calls scheduled during the stall count the stall, as a user's
requests would (coordinated omission corrected, as wrk2 and HdrHistogram
describe it). Latencies go into HdrHistogram (the ``hdrhistogram`` package,
microseconds, 3 significant digits; docs/decisions.md says why).

Every scheduled call ends with one status:

* ``ok``: answered within ``timeout`` of its intended send time;
* ``timeout``: not answered by then (a late answer is counted, not used);
* the status of an ERROR frame (``no_route``, ``unknown_name``, ...);
* ``not_sent``: the generator itself fell ``timeout`` or more behind its
  schedule (the call could not have been answered in time), or the run was
  stopped (deadline, SIGTERM) before its time. Not answered, like the rest.

Each call's record (``record(dict)``, the experiments' calls.jsonl) holds
``t`` (intended send time, the clock's), ``t_sent`` (actual send time, None if
not sent), ``late_ms`` (actual - intended: the generator's own lateness
against its schedule), ``latency_ms`` (answer - intended; None unless ok),
``service_ms`` (answer - actual send: what a closed loop would have
measured), ``responder`` and ``status``.

The **closed loop** (``loop="closed"``) is traffic.rmi_client.load: one call
in flight, the next sent when the last returns; it measures service time,
and a stall delays the next call instead of being counted.

Bounded: at most ``MAX_CALLS`` calls, and the whole run ends by ``deadline_s``
after its start whatever happens (calls still due then are ``not_sent``,
calls still in flight ``timeout``).

A run's records, afterwards (``read_records``): ``outages`` / ``longest_outage``
(runs of unanswered calls, from the intended send time of the first to that of
the next answered call: a generator that stalled cannot shorten one, its
``not_sent`` calls are in it), ``settled_at`` (when the answers moved to other
responders and stayed) and ``tally`` (every call scheduled in a window,
counted). The benchmarks' outage and shift times come from these.

Run it as ``python -m traffic.loadgen --iface pod1-eth0 --src /A/1 --rate 100
--duration 10 /B/4 echo``: prints the summary (JSON) on its last line. With
``--http 127.0.0.1:15001`` instead of ``--iface`` it calls over HTTP through
the pod's sidecar (the mesh baseline, docs/mesh.md): the same schedule, the same
records, each call on a worker of traffic.http_client.HttpPool; an error
answer's status is ``http_<code>``, a failed connection's ``error``.
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import random
import signal
import sys
import time
from dataclasses import dataclass

from hdrh.histogram import HdrHistogram

from traffic.rmi_client import CallError, Client, load as closed_load
from traffic.wire import names

ARRIVALS = ("constant", "poisson")
LOOPS = ("open", "closed")
MAX_CALLS = 1_000_000
HIST_MAX_US = 3_600_000_000          # one hour, in microseconds
HIST_DIGITS = 3
NOT_SENT = "not_sent"


def new_histogram() -> HdrHistogram:
    return HdrHistogram(1, HIST_MAX_US, HIST_DIGITS)


def schedule(rate: float, duration: float, *, arrivals: str = "constant",
             seed: int | None = None, max_count: int = MAX_CALLS) -> list[float]:
    """Send offsets (seconds from the start) in ``[0, duration)``: one every
    ``1/rate`` from 0, or Poisson arrivals of mean rate ``rate`` (exponential
    gaps from ``random.Random(seed)``, the first at 0). At most ``max_count``."""
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be above 0")
    if arrivals == "constant":
        n = min(max_count, math.ceil(rate * duration - 1e-9))
        return [i / rate for i in range(n)]
    if arrivals != "poisson":
        raise ValueError(f"arrivals: one of {', '.join(ARRIVALS)}; not {arrivals!r}")
    rng = random.Random(seed)
    out, t = [], 0.0
    while t < duration and len(out) < max_count:
        out.append(t)
        t += rng.expovariate(rate)
    return out


def percentiles_ms(h: HdrHistogram) -> dict:
    """p50, p90, p99, p99.9 and max of a microsecond histogram, in ms (None if empty)."""
    if h.get_total_count() == 0:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None, "p999_ms": None,
                "max_ms": None}
    q = {p: h.get_value_at_percentile(p) / 1000 for p in (50, 90, 99, 99.9)}
    return {"p50_ms": round(q[50], 3), "p90_ms": round(q[90], 3), "p99_ms": round(q[99], 3),
            "p999_ms": round(q[99.9], 3), "max_ms": round(h.get_max_value() / 1000, 3)}


def decode_histogram(encoded: str) -> HdrHistogram:
    """A histogram from its ``encode()`` text (HdrHistogram's compressed base64)."""
    return HdrHistogram.decode(encoded.encode() if isinstance(encoded, str) else encoded)


class OpenLoop:
    """One open-loop run of calls to ``dst.method(args)``.

    One thread, an event loop: it sends every call that is due, then waits
    for an answer until the next call is due (or the oldest call in flight
    times out), and so on. ``client`` needs ``send_request(dst, method, args)
    -> msg_id`` and ``next_answer(timeout) -> (msg_id, Reply | CallError) |
    None`` (traffic.rmi_client.Client has both); ``clock`` is the time all
    figures use (``next_answer`` of a test's fake server advances a fake one)."""

    def __init__(self, client, dst: str, method: str, args=None, *, rate: float,
                 duration: float, timeout: float, arrivals: str = "constant",
                 seed: int | None = None, deadline_s: float | None = None,
                 max_count: int = MAX_CALLS, record=None, clock=time.monotonic,
                 trace_prefix: str | None = None):
        self.client, self.dst, self.method, self.args = client, dst, method, args
        self.rate, self.duration, self.timeout = rate, duration, timeout
        self.arrivals, self.seed = arrivals, seed
        self.offsets = schedule(rate, duration, arrivals=arrivals, seed=seed,
                                max_count=max_count)
        self.deadline_s = deadline_s if deadline_s is not None else duration + timeout + 5.0
        self.record, self.clock = record, clock
        self.trace_prefix = trace_prefix    # call i carries {"trace": prefix + i} (call graphs)
        n = len(self.offsets)
        self.t_sent: list[float | None] = [None] * n
        self.status: list[str | None] = [None] * n
        self.msg_of: list[int | None] = [None] * n
        self.inflight: dict[int, int] = {}          # msg_id -> call index
        self.pending: collections.deque[int] = collections.deque()   # sent, in send order
        self.latency = new_histogram()              # answer - intended, us
        self.service = new_histogram()              # answer - actual send, us
        self.late = new_histogram()                 # actual send - intended, us
        self.errors: collections.Counter = collections.Counter()
        self.responders: collections.Counter = collections.Counter()
        self.late_answers = 0                # answers after their call's deadline
        self.foreign_answers = 0             # to calls not ours (another generator's, same name)
        self.expired: set[int] = set()       # msg_ids of calls that timed out
        self.max_inflight = 0
        self.start = 0.0

    # -- the end of a call -----------------------------------------------------------------
    def _finish(self, i: int, status: str, *, t_answer: float | None = None,
                responder: str | None = None) -> None:
        """Call ``i`` ends with ``status``."""
        self.status[i] = status
        intended = self.start + self.offsets[i]
        sent = self.t_sent[i]
        lat = svc = None
        if status == "ok":
            lat = t_answer - intended
            svc = t_answer - sent
            self.latency.record_value(max(1, round(lat * 1e6)))
            self.service.record_value(max(1, round(svc * 1e6)))
            self.responders[responder] += 1
        else:
            self.errors[status] += 1
        if self.record is not None:
            self.record({**({"trace": f"{self.trace_prefix}{i}"} if self.trace_prefix else {}),
                         "t": intended, "t_sent": sent,
                         "late_ms": None if sent is None else round((sent - intended) * 1000, 3),
                         "latency_ms": None if lat is None else round(lat * 1000, 3),
                         "service_ms": None if svc is None else round(svc * 1000, 3),
                         "responder": responder, "status": status})

    def _expire(self, now: float) -> None:
        """Calls past their deadline (intended + timeout) time out."""
        while self.pending:
            i = self.pending[0]
            if self.status[i] is not None:
                self.pending.popleft()
                continue
            if now < self.start + self.offsets[i] + self.timeout:
                return
            self.pending.popleft()
            self.inflight.pop(self.msg_of[i], None)
            self.expired.add(self.msg_of[i])
            self._finish(i, "timeout")

    def _answer(self, msg_id: int, out, now: float) -> None:
        i = self.inflight.pop(msg_id, None)
        if i is None and msg_id not in self.expired:
            self.foreign_answers += 1
        elif i is None or now > self.start + self.offsets[i] + self.timeout:
            self.late_answers += 1          # after its deadline: not used
            if i is not None:
                self.expired.add(msg_id)
                self.pending.remove(i)
                self._finish(i, "timeout")
        elif isinstance(out, CallError):     # an error answer (RemoteError), or over
            self._finish(i, out.status_name,  # HTTP a failed connection or time-out
                         responder=getattr(out, "responder", None))
        else:
            self._finish(i, "ok", t_answer=now, responder=out.responder)

    def _send(self, i: int, due: float) -> None:
        args = self.args
        if self.trace_prefix:
            args = {**(args or {}), "trace": f"{self.trace_prefix}{i}"}
        try:
            msg_id = self.client.send_request(self.dst, self.method, args)
        except CallError as exc:             # refused before sending (too large)
            self._finish(i, exc.status_name)
            return
        except OSError:
            self._finish(i, NOT_SENT)
            return
        t = self.t_sent[i] = self.clock()    # when it left (a send may block)
        self.late.record_value(max(1, round((t - due) * 1e6)))
        self.inflight[msg_id] = i
        self.msg_of[i] = msg_id
        self.pending.append(i)
        self.max_inflight = max(self.max_inflight, len(self.inflight))

    # -- the run -------------------------------------------------------------------------------
    def run(self, stopped=lambda: False) -> dict:
        n = len(self.offsets)
        self.start = self.clock() + 0.001
        hard_end = self.start + self.deadline_s
        i = 0                                # the next call to send
        try:
            while True:
                now = self.clock()
                if i < n and (now >= hard_end or stopped()):
                    for j in range(i, n):    # the rest of the schedule: never sent
                        self._finish(j, NOT_SENT)
                    i = n
                while i < n and self.start + self.offsets[i] <= now:
                    due = self.start + self.offsets[i]
                    if now - due >= self.timeout:     # too far behind: it cannot be on time
                        self._finish(i, NOT_SENT)
                    else:
                        self._send(i, due)
                    i += 1
                    now = self.clock()
                self._expire(now)
                if i >= n and not self.inflight:
                    break
                if now >= hard_end:
                    break
                wake = hard_end
                if i < n:
                    wake = min(wake, self.start + self.offsets[i])
                if self.pending:
                    wake = min(wake, self.start + self.offsets[self.pending[0]] + self.timeout)
                try:
                    got = self.client.next_answer(max(0.0, wake - now))
                except OSError:
                    got = None
                if got is not None:
                    self._answer(got[0], got[1], self.clock())
        finally:
            for j, st in enumerate(self.status):
                if st is None:               # the deadline, or an exception: accounted for
                    self._finish(j, "timeout" if self.t_sent[j] is not None else NOT_SENT)
        return self.summary()

    def longest_outage_ms(self) -> float:
        """From the intended time of the first call of a run of unanswered
        calls to that of the next answered one (or the last call), the longest."""
        worst = longest_outage([{"t": off, "status": st}
                                for off, st in zip(self.offsets, self.status)])
        return 0.0 if worst is None else round(worst.seconds * 1000, 1)

    def summary(self) -> dict:
        n = len(self.offsets)
        ok = sum(1 for s in self.status if s == "ok")
        sent = sum(1 for t in self.t_sent if t is not None)
        end = max([t for t in self.t_sent if t is not None], default=self.start)
        out = {"loop": "open", "arrivals": self.arrivals, "rate": self.rate,
               "duration_s": self.duration, "timeout_s": self.timeout,
               "scheduled": n, "sent": sent, "ok": ok, "failed": n - ok,
               "not_sent": self.errors.get(NOT_SENT, 0),
               "answered_pct": round(100.0 * ok / n, 2) if n else None,
               "errors": dict(self.errors), "responders": dict(self.responders),
               "sent_rate_per_s": round(sent / max(end - self.start, 1e-9), 1) if sent > 1
               else None,
               "max_in_flight": self.max_inflight, "late_answers": self.late_answers,
               "foreign_answers": self.foreign_answers,
               "longest_outage_ms": self.longest_outage_ms(),
               **percentiles_ms(self.latency),
               "service": percentiles_ms(self.service),
               "late": percentiles_ms(self.late),
               "histogram": self.latency.encode().decode() if self.latency.get_total_count()
               else None}
        return out


# -- a run's records, afterwards (the benchmarks' outage and shift times) ------------------------
@dataclass(frozen=True)
class Outage:
    """A run of consecutive unanswered calls, by intended send time: from the
    first one's (``start``) to the next answered call's (``end``; None when
    no call after it was answered: then ``last``, the last call's, closes it)."""
    start: float
    end: float | None
    last: float
    calls: int

    @property
    def seconds(self) -> float:
        return (self.end if self.end is not None else self.last) - self.start


def read_records(path) -> list[dict]:
    """A ``--records`` file's calls (one JSON object a line), in intended-send
    order; a half-written last line (the generator killed) is left out."""
    out = []
    with open(path) as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    out.sort(key=lambda r: r["t"])
    return out


def outages(records) -> list[Outage]:
    """Every run of unanswered calls (any status but ``ok``: time-outs, errors,
    ``not_sent``) in ``records`` (dicts with ``t`` and ``status``), in order.
    An outage's length is counted in intended send times, so a generator that
    stalled (sending nothing) cannot shorten it: the calls it owed are in it."""
    recs = sorted(records, key=lambda r: r["t"])
    out, start, n = [], None, 0
    for r in recs:
        if r["status"] != "ok":
            if start is None:
                start, n = r["t"], 0
            n += 1
        elif start is not None:
            out.append(Outage(start, r["t"], r["t"], n))
            start = None
    if start is not None:
        out.append(Outage(start, None, recs[-1]["t"], n))
    return out


def longest_outage(records, after: float | None = None) -> Outage | None:
    """The longest outage among ``records`` that is not over before ``after``
    (an intended send time; None: any), or None if every such call was answered."""
    runs = [o for o in outages(records)
            if after is None or o.end is None or o.end > after]
    return max(runs, key=lambda o: o.seconds, default=None)


def settled_at(records, since: float, until: float | None, answered_by) -> float | None:
    """The intended send time of the first answered call at or after ``since``
    from which on every answered call before ``until`` satisfies
    ``answered_by(responder)`` (traffic moved, and stayed); None if the last
    answered call in the window does not. Unanswered calls neither move nor
    hold it (they are counted as failures elsewhere)."""
    found = None
    for r in sorted(records, key=lambda r: r["t"]):
        if r["t"] < since or r["status"] != "ok":
            continue
        if until is not None and r["t"] >= until:
            break
        if answered_by(r.get("responder")):
            if found is None:
                found = r["t"]
        else:
            found = None
    return found


def tally(records, since: float | None = None, until: float | None = None) -> dict:
    """The calls scheduled in ``[since, until)`` (intended send times; None: no
    bound): how many, answered, failed (every other status, not_sent included),
    not_sent, and the failures by status."""
    errors: collections.Counter = collections.Counter()
    n = ok = 0
    for r in records:
        if (since is not None and r["t"] < since) or (until is not None and r["t"] >= until):
            continue
        n += 1
        if r["status"] == "ok":
            ok += 1
        else:
            errors[r["status"]] += 1
    return {"scheduled": n, "ok": ok, "failed": n - ok, "not_sent": errors.get(NOT_SENT, 0),
            "errors": dict(errors)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="a bounded load of calls by name: open loop "
                                 "(calls on a schedule) or closed loop (one at a time)")
    ap.add_argument("--iface", help="the pod's interface (DMSC frames)")
    ap.add_argument("--http", metavar="HOST:PORT",
                    help="call over HTTP through this sidecar listener instead (mesh mode)")
    ap.add_argument("--src", required=True, help="this caller's instance name")
    ap.add_argument("--mac", default="00:00:00:00:00:00")
    ap.add_argument("--loop", choices=LOOPS, default="open")
    ap.add_argument("--rate", type=float, required=True, help="calls per second")
    ap.add_argument("--duration", type=float, required=True, help="seconds of calls")
    ap.add_argument("--arrivals", choices=ARRIVALS, default="constant")
    ap.add_argument("--seed", type=int, default=None, help="Poisson arrivals' seed")
    ap.add_argument("--timeout", type=float, default=0.5,
                    help="a call not answered this long after its intended send time "
                    "times out")
    ap.add_argument("--deadline", type=float, default=None,
                    help="end the whole run this many seconds after its start "
                    "(default: duration + timeout + 5)")
    ap.add_argument("--records", help="append every call to this file as a JSON line")
    ap.add_argument("--trace-prefix", help="open loop: call i carries the trace id PREFIX<i> "
                    "in its arguments (an application's pods record its tree under it)")
    ap.add_argument("dst")
    ap.add_argument("method")
    ap.add_argument("args", nargs="?", default="{}", help="JSON arguments")
    a = ap.parse_args(argv)
    if bool(a.iface) == bool(a.http):
        print(json.dumps({"error": "give --iface (DMSC frames) or --http (a sidecar), "
                                   "one of them"}))
        return 2
    if a.rate <= 0 or a.duration <= 0 or a.timeout <= 0:
        print(json.dumps({"error": "--rate, --duration and --timeout must be above 0"}))
        return 2
    if a.rate * a.duration > MAX_CALLS:
        print(json.dumps({"error": f"rate x duration is capped at {MAX_CALLS:,} calls"}))
        return 2
    try:
        args = json.loads(a.args)
        dst = names.normalize(a.dst)
    except (ValueError, names.InvalidName) as exc:
        print(json.dumps({"error": str(exc)}))
        return 2
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))   # end early, still report
    out = open(a.records, "a", buffering=1) if a.records else None   # line-buffered

    def record(rec):
        rec["dst"] = dst
        out.write(json.dumps(rec) + "\n")
    deadline = a.deadline if a.deadline is not None else a.duration + a.timeout + 5.0
    if a.http:
        from traffic.http_client import HttpClient, HttpPool
        client = HttpPool(a.src, proxy=a.http, timeout=a.timeout,
                          workers=HttpPool.workers_for(a.rate, a.timeout)) \
            if a.loop == "open" else HttpClient(a.src, proxy=a.http, timeout=a.timeout)
    else:
        client = Client(a.iface, a.src, mac=a.mac, timeout=a.timeout)
    try:
        with client as c:
            if a.loop == "open":
                summary = OpenLoop(c, dst, a.method, args, rate=a.rate, duration=a.duration,
                                   timeout=a.timeout, arrivals=a.arrivals, seed=a.seed,
                                   deadline_s=deadline, trace_prefix=a.trace_prefix,
                                   record=record if out else None).run(lambda: bool(stop))
            else:
                def closed_record(rec):
                    rec["t_sent"] = rec["t"]        # late_ms: the closed loop's own (rmi_client.load)
                    record(rec)
                summary = closed_load(c, dst, a.method, args,
                                      count=max(1, round(a.rate * a.duration)),
                                      interval=1.0 / a.rate, timeout=a.timeout, max_s=deadline,
                                      stopped=lambda: bool(stop),
                                      record=closed_record if out else None)
                summary["loop"] = "closed"
    finally:
        if out is not None:
            out.close()
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
