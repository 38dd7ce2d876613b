"""The SG's announcement intake: bounded per port, served round robin, renewals first.

One pod that floods its SG with announcements (forged or not) must not delay
another pod's, nor the renewals that keep what the SG holds alive (the P4
program's meter, CoPP, bounds the rate; this bounds the memory and the wait):

* each pod port has two bounded queues: renewals (re-announcements of prefixes
  the SG holds for that port and key) and new claims. A full queue refuses the
  job: the caller counts it as shed (``announce_shed_queue_full``);
* ``get`` serves renewals before claims, each kind round robin across ports, so a
  port's backlog costs other ports at most one job per round;
* a job that waited longer than ``max_wait_s`` (the freshness window: the SPA
  would call it stale anyway) is dropped by ``get`` and reported, never sent to
  the SPA.

Pure data structure with a condition variable; the clock is passed in.
"""
from __future__ import annotations

import collections
import threading
import time

PER_PORT = 64          # jobs per port and kind: a second of renewals for 200 prefixes


class FairQueue:
    def __init__(self, per_port: int = PER_PORT, max_wait_s: float = 30.0,
                 clock=time.monotonic):
        self.per_port = per_port
        self.max_wait_s = max_wait_s
        self.clock = clock
        # kind (0 renewals, 1 claims) -> port -> deque of (enqueued at, job)
        self._queues: tuple[dict, dict] = ({}, {})
        self._turns: tuple[collections.deque, collections.deque] = \
            (collections.deque(), collections.deque())      # ports with work, in turn
        self._cv = threading.Condition()
        self._closed = False
        self.expired: list = []        # jobs dropped for waiting too long (caller drains)

    def put(self, port: int, job, renewal: bool) -> bool:
        """Queue ``job``; False (and nothing queued) when that port's queue is full."""
        kind = 0 if renewal else 1
        with self._cv:
            q = self._queues[kind].get(port)
            if q is None:
                q = self._queues[kind][port] = collections.deque()
            if len(q) >= self.per_port:
                return False
            if not q:
                self._turns[kind].append(port)
            q.append((self.clock(), job))
            self._cv.notify()
            return True

    def _pop(self):
        now = self.clock()
        for kind in (0, 1):
            turns, queues = self._turns[kind], self._queues[kind]
            while turns:
                port = turns.popleft()
                q = queues[port]
                at, job = q.popleft()
                if q:
                    turns.append(port)          # back of the line: the next port goes first
                else:
                    del queues[port]
                if now - at > self.max_wait_s:
                    self.expired.append(job)
                    continue
                return job
        return None

    def get(self, timeout: float):
        """The next job, or None after ``timeout`` (or once closed)."""
        deadline = self.clock() + timeout
        with self._cv:
            while not self._closed:
                job = self._pop()
                if job is not None:
                    return job
                left = deadline - self.clock()
                if left <= 0:
                    return None
                self._cv.wait(left)
            return None

    def close(self) -> None:
        """Wake every waiter; ``get`` returns None from now on."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()

    def __len__(self) -> int:
        with self._cv:
            return sum(len(q) for qs in self._queues for q in qs.values())

    def depth(self, port: int) -> int:
        with self._cv:
            return sum(len(qs.get(port, ())) for qs in self._queues)
