"""The pod's services over HTTP: the mesh baseline's app (`--mode mesh`, docs/mesh.md).

The same instances and the same RMI methods as traffic/pod.py (``METHODS``:
echo, whoami, add), carried over HTTP/1.1 instead of a DMSC frame, the way an
app behind a sidecar speaks. It listens on 127.0.0.1 in the pod's namespace;
the pod's sidecar (HAProxy) forwards the calls that arrive for the pod to it.

* ``POST /rmi/<method>`` with the header ``dmsc-name: /B/4`` (the name called,
  an instance or the service above it) and JSON arguments as the body ->
  ``200 {"result": ..., "from": "/B/4"}`` with ``dmsc-responder: /B/4``;
  a name not served here -> 404, an unknown method -> 400, the method's own
  error -> 500 (``{"error": text}``, the responder in the header too).
* ``GET /healthz`` -> 200 while the pod serves (the sidecars' active checks).

``--control-file`` is the same JSON as the DMSC pod's (DmscNet.update_pod_control),
read when it changes: ``service_ms`` (every answer, health checks included,
that much later, each on its own thread, so a slowed instance keeps accepting), ``extra`` (instances served
besides ``--instance``). ``--timing-file`` gets, every second, how late the pod
answered against its service time (the DMSC pod's fidelity monitor, in the same
format: per answer, the time it left minus the time the request was read and
the service time, in traffic/wire/lateness.py's histogram). Run as
``python -m traffic.http_pod --listen 127.0.0.1:9080 --instance /B/4``.
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from traffic.pod import METHODS
from traffic.wire import names
from traffic.wire.lateness import Histogram

log = logging.getLogger("dmsc.http_pod")

NAME_HEADER = "dmsc-name"
RESPONDER_HEADER = "dmsc-responder"
CONTROL_POLL_S = 0.05
TIMING_EVERY_S = 1.0                     # the timing file's period (as traffic/pod.py's)


class HttpPod:
    """What the pod serves and how slowly; the HTTP handler asks it."""

    def __init__(self, instances):
        self.instances = [names.normalize(i) for i in instances]
        self.service_s = 0.0
        self.lock = threading.Lock()
        self.counters: dict[str, int] = {}
        self.overrun = Histogram()           # answers' lateness past the service time

    def answered(self, received: float) -> None:
        """An answer leaves now for a request read at ``received``."""
        late = time.monotonic() - received - self.service_s
        with self.lock:
            self.overrun.add(late)

    def write_timing(self, path: Path) -> None:
        with self.lock:
            doc = {"overrun": self.overrun.to_dict(), "max_ms": round(self.overrun.max_ms, 3)}
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(path)                    # a reader never sees half a file

    def count(self, key: str) -> None:
        with self.lock:
            self.counters[key] = self.counters.get(key, 0) + 1

    def serving(self, name: str) -> str | None:
        for inst in list(self.instances):
            if names.prefix_matches(name, inst) or names.prefix_matches(inst, name):
                return inst
        return None

    def answer(self, name: str | None, method: str, body: bytes) -> tuple[int, str | None, dict]:
        """(HTTP status, responder, JSON document) for one call."""
        try:
            inst = self.serving(names.normalize(name)) if name else None
        except names.InvalidName:
            inst = None
        if inst is None:
            self.count("error_unknown_name")
            return 404, None, {"error": f"{name} is not served here"}
        fn = METHODS.get(method)
        if fn is None:
            self.count("error_unknown_method")
            return 400, inst, {"error": f"no method {method!r}"}
        try:
            args = json.loads(body or b"null")
            result = fn(inst, args if args is not None else {})
        except Exception as exc:            # the service's own error: answered, counted
            self.count("error_app")
            return 500, inst, {"error": f"{type(exc).__name__}: {exc}"}
        self.count("response")
        return 200, inst, {"result": result, "from": inst}

    def read_control(self, path: Path) -> None:
        try:
            ctl = json.loads(path.read_text())
            service_s = max(0.0, float(ctl.get("service_ms", 0)) / 1000)
            extra = [names.normalize(i) for i in ctl.get("extra", [])]
        except (OSError, ValueError, TypeError, AttributeError, names.InvalidName) as exc:
            log.warning("control file %s unreadable: %s", path, exc)
            return
        if service_s != self.service_s:
            log.info("service time now %.0f ms", service_s * 1000)
            self.service_s = service_s
        for inst in extra:
            if inst not in self.instances:
                self.instances.append(inst)
                log.info("now serving %s too", inst)


def handler_for(pod: HttpPod):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"          # keep-alive: the sidecar pools connections

        def _send(self, status: int, responder: str | None, doc: dict,
                  received: float) -> None:
            if pod.service_s:
                time.sleep(pod.service_s)       # this call's thread only
            data = json.dumps(doc, separators=(",", ":")).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if responder:
                self.send_header(RESPONDER_HEADER, responder)
            self.end_headers()
            pod.answered(received)
            self.wfile.write(data)

        def do_POST(self):
            received = time.monotonic()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if not self.path.startswith("/rmi/"):
                self._send(404, None, {"error": f"no such path {self.path}"}, received)
                return
            self._send(*pod.answer(self.headers.get(NAME_HEADER), self.path[5:], body),
                       received)

        def do_GET(self):
            received = time.monotonic()
            if self.path == "/healthz":
                if pod.service_s:               # a slowed instance answers its checks late
                    time.sleep(pod.service_s)   # too, as the DMSC pod answers its probes
                data = b"ok"
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                pod.answered(received)
                self.wfile.write(data)
            else:
                self._send(404, None, {"error": f"no such path {self.path}"}, received)

        def log_message(self, fmt, *args):     # one line per call would swamp the log
            pass
    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A caller (the sidecar) that gave up and closed is counted, not a traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.debug("%s: %s", client_address, exc)
            return
        super().handle_error(request, client_address)


def serve(pod: HttpPod, host: str, port: int, control_file=None, duration=None,
          timing_file=None) -> None:
    server = _Server((host, port), handler_for(pod))
    # a plain flag: a handler that set a threading.Event could run while this thread
    # held the Event's own lock in its timed wait, and never return (a pod that
    # ignored SIGTERM for good: found by py-spy after a CI teardown timed out)
    stop: list[bool] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(True))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    log.info("http pod on %s:%d serving %s", host, port, ", ".join(pod.instances))
    control = Path(control_file) if control_file else None
    mtime = None
    end = None if duration is None else time.monotonic() + duration
    timing = Path(timing_file) if timing_file else None
    timing_at, timing_n = 0.0, -1
    while not stop:
        time.sleep(CONTROL_POLL_S)
        if stop:
            break
        now = time.monotonic()
        if end is not None and now > end:
            break
        if timing is not None and now >= timing_at:
            timing_at = now + TIMING_EVERY_S
            if pod.overrun.total != timing_n:
                timing_n = pod.overrun.total
                pod.write_timing(timing)
        if control is not None:
            try:
                m = control.stat().st_mtime_ns
            except OSError:
                m = None
            if m is not None and m != mtime:
                mtime = m
                pod.read_control(control)
    server.shutdown()
    server.server_close()
    if timing is not None:
        pod.write_timing(timing)
    log.info("http pod stopping; counters %s", json.dumps(pod.counters, sort_keys=True))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", default="127.0.0.1:9080", help="HOST:PORT")
    ap.add_argument("--instance", action="append", required=True)
    ap.add_argument("--control-file")
    ap.add_argument("--duration", type=float)
    ap.add_argument("--timing-file", help="write the answers' lateness past the service time "
                    "here every second (a fidelity monitor)")
    ap.add_argument("--log-level", default="INFO")
    a = ap.parse_args(argv)
    logging.basicConfig(level=a.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    host, _, port = a.listen.rpartition(":")
    try:
        pod = HttpPod(a.instance)
    except names.InvalidName as exc:
        print(f"http_pod: {exc}", file=sys.stderr)
        return 2
    serve(pod, host, int(port), a.control_file, a.duration, a.timing_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
