"""The RMI client over HTTP, through the pod's sidecar: the mesh baseline's caller.

``HttpClient("/A/1").call("/B", "echo", {...})`` posts ``/rmi/echo`` with
``dmsc-name: /B`` to the sidecar's outbound listener (127.0.0.1:15001 in the
pod's namespace), which picks an endpoint of the service, and returns the same
``Reply`` as the DMSC client (traffic/rmi_client.py), so ``rmi_client.load``
drives both: the load generator speaks both. One persistent connection
(HTTP/1.1 keep-alive), reopened after an error, as an app's pool would.

``HttpPool`` is the open loop's client (traffic.loadgen.OpenLoop: ``send_request``
returns at once, ``next_answer`` waits for any answer): each call runs on a
worker thread of a pool (concurrent.futures), each worker with its own
persistent connection to the sidecar, so calls overlap as the open loop needs.
"""
from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import queue
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from traffic.http_pod import NAME_HEADER, RESPONDER_HEADER
from traffic.rmi_client import CallError, CallTimeout, RemoteError, Reply, load
from traffic.wire import names

OUTBOUND = "127.0.0.1:15001"
CALLER_HEADER = "dmsc-caller"


class HttpClient:
    def __init__(self, name: str, *, proxy: str = OUTBOUND, timeout: float = 2.0):
        self.name = names.normalize(name)
        self.host, _, port = proxy.rpartition(":")
        self.port = int(port)
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, dst: str, method: str, args=None, *, timeout: float | None = None) -> Reply:
        """One call by name through the sidecar; the Reply, or CallTimeout,
        RemoteError (an HTTP error status: the code, the text, the responder
        if the app answered) or CallError (the connection failed)."""
        timeout = self.timeout if timeout is None else timeout
        body = json.dumps({} if args is None else args, separators=(",", ":")).encode()
        t0 = time.monotonic()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            self.conn.timeout = timeout
            if self.conn.sock is not None:
                self.conn.sock.settimeout(timeout)
            self.conn.request("POST", f"/rmi/{method}", body,
                              {NAME_HEADER: names.normalize(dst), CALLER_HEADER: self.name,
                               "Content-Type": "application/json"})
            resp = self.conn.getresponse()
            data = resp.read()
        except (socket.timeout, TimeoutError):
            self.close()
            raise CallTimeout(f"no reply from {dst} within {timeout} s") from None
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise CallError(f"{type(exc).__name__}: {exc}") from None
        rtt = time.monotonic() - t0
        responder = resp.getheader(RESPONDER_HEADER)
        if resp.status != 200:
            try:
                text = json.loads(data).get("error", "")
            except (ValueError, AttributeError):
                text = data.decode("utf-8", "replace").strip()[:200]
            exc = RemoteError(resp.status, text, responder)
            exc.status_name = f"http_{resp.status}"      # not the DMSC status numbers
            raise exc
        try:
            result = json.loads(data)["result"]
        except (ValueError, KeyError, TypeError) as exc:
            raise RemoteError(resp.status, f"unreadable reply body: {exc}", responder) from None
        return Reply(result, responder, rtt, 0)


class HttpPool:
    """Calls in flight at once through the sidecar, for the open loop:
    ``send_request(dst, method, args) -> msg_id`` hands the call to a worker
    and returns; ``next_answer(timeout) -> (msg_id, Reply | CallError) | None``.

    ``workers`` connections at most (default: enough for ``rate x timeout``
    calls in flight three times over, at least 8): the open loop ends each
    call at its deadline, and a worker's socket gives up after ``timeout`` per
    operation, so a worker is free again within a few time-outs. A call that
    waits for a free worker counts the wait in its latency (it runs from the
    intended send time) but not in the generator's ``late_ms``."""

    def __init__(self, name: str, *, proxy: str = OUTBOUND, timeout: float = 2.0,
                 workers: int = 16):
        self.name, self.proxy, self.timeout = name, proxy, timeout
        self.workers = max(1, workers)
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="http-call")
        self.answers: queue.SimpleQueue = queue.SimpleQueue()
        self.local = threading.local()
        self.clients: list[HttpClient] = []
        self.lock = threading.Lock()
        self.ids = itertools.count(1)

    @staticmethod
    def workers_for(rate: float, timeout: float) -> int:
        return max(8, min(256, math.ceil(rate * timeout * 3)))

    def _client(self) -> HttpClient:
        c = getattr(self.local, "client", None)
        if c is None:
            c = self.local.client = HttpClient(self.name, proxy=self.proxy, timeout=self.timeout)
            with self.lock:
                self.clients.append(c)
        return c

    def _call(self, msg_id: int, dst: str, method: str, args) -> None:
        try:
            out = self._client().call(dst, method, args)
        except CallError as exc:            # RemoteError, CallTimeout, a failed connection
            out = exc
        self.answers.put((msg_id, out))

    def send_request(self, dst: str, method: str, args=None) -> int:
        msg_id = next(self.ids)
        self.pool.submit(self._call, msg_id, dst, method, args)
        return msg_id

    def next_answer(self, timeout: float):
        try:
            return self.answers.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        with self.lock:
            for c in self.clients:
                c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="call a service by name through the sidecar")
    ap.add_argument("--src", required=True, help="this caller's instance name")
    ap.add_argument("--proxy", default=OUTBOUND, help="the sidecar's outbound listener")
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("dst")
    ap.add_argument("method")
    ap.add_argument("args", nargs="?", default="{}", help="JSON arguments")
    ap.add_argument("--count", type=int, default=0, help="load mode: this many calls")
    ap.add_argument("--interval", type=float, default=0.01)
    ap.add_argument("--max-s", type=float, default=600.0)
    ap.add_argument("--records", help="load mode: every call as a JSON line (as rmi_client's)")
    a = ap.parse_args(argv)
    if a.count:
        if a.count > 1_000_000:
            print(json.dumps({"error": "--count is capped at 1,000,000"}))
            return 2
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
        out = open(a.records, "a", buffering=1) if a.records else None

        def record(rec):
            rec["dst"] = a.dst
            out.write(json.dumps(rec) + "\n")
        try:
            with HttpClient(a.src, proxy=a.proxy, timeout=a.timeout) as c:
                print(json.dumps(load(c, a.dst, a.method, json.loads(a.args), count=a.count,
                                      interval=a.interval, timeout=a.timeout, max_s=a.max_s,
                                      stopped=lambda: bool(stop),
                                      record=record if out else None)))
        finally:
            if out is not None:
                out.close()
        return 0
    try:
        with HttpClient(a.src, proxy=a.proxy, timeout=a.timeout) as c:
            r = c.call(a.dst, a.method, json.loads(a.args))
    except (CallError, names.InvalidName, json.JSONDecodeError) as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    print(json.dumps({"result": r.result, "from": r.responder, "rtt_ms": round(r.rtt_s * 1000, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
