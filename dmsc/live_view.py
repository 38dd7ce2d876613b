"""The live view: one page on 127.0.0.1 that draws the running network.

``dmsc up --view [--view-port N]`` serves it while the network runs:

    GET /            the page (dmsc/live_view.html: inline SVG and
                     JavaScript, nothing fetched from anywhere else; link
                     rates as width and colour, steered paths highlighted,
                     docs/cli.md says what it encodes). ``/?boxes``: the
                     page also writes its labels' rendered boxes into the
                     DOM (the browser tests read them)
    GET /state.json  what the page draws, polled once a second

The state (:meth:`ViewSource.state`) is read from the running network each
time, never cached beyond one sampling interval:

- nodes: every switch and pod at a position from :func:`layout` (computed
  once), with whether its process runs (a killed BMv2, a stopped pod);
- links: each link's state (``up``; ``cut`` when failure injection cut it,
  ``net.failures.cut``; ``dead`` when a switch or pod at one end is not
  running) and its traffic in both directions, in frames/s and kbit/s, from
  the kernel counters of the link's switch-side interface
  (/sys/class/net/<intf>/statistics: tx is towards the neighbour, rx from it)
  between two samples;
- the SCSC's current decisions (its gRPC ``View``, as ``dmsc scsc`` shows
  them): which SG steers which service to which instance over which path, and
  why, each with the links and the pod it highlights (:func:`steered_links`);
  or that the network has no SCSC, or that it does not answer.

The server is the standard library's ThreadingHTTPServer bound to 127.0.0.1
only, in a daemon thread (:class:`ViewServer`); the experiment runner and tests
may use :class:`ViewSource` alone.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import networkx as nx

from controller.proto import scsc_pb2 as scsc_pb
from controller.proto import scsc_pb2_grpc as scsc_grpc
from dmsc import fidelity

log = logging.getLogger("dmsc.view")
PAGE = Path(__file__).with_name("live_view.html")
MIN_SAMPLE_S = 0.5        # two polls closer than this share one rate sample
FIDELITY_WINDOW = 30      # host samples the live verdict is over (about 30 s)


def _clearance(g, pos) -> float:
    """The smallest distance between a node and a link not its own, relative
    to the drawing's size: small when a link runs through a node."""
    def dist(p, a, b):
        (px, py), (ax, ay), (bx, by) = p, a, b
        vx, vy = bx - ax, by - ay
        t = max(0.0, min(1.0, ((px - ax) * vx + (py - ay) * vy) / ((vx * vx + vy * vy) or 1e-12)))
        return ((px - ax - t * vx) ** 2 + (py - ay - t * vy) ** 2) ** 0.5
    span = max(max(p[0] for p in pos.values()) - min(p[0] for p in pos.values()),
               max(p[1] for p in pos.values()) - min(p[1] for p in pos.values())) or 1.0
    worst = min((dist(pos[n], pos[u], pos[v]) for u, v in g.edges() for n in g
                 if n not in (u, v)), default=span)
    return worst / span


def _crossings(g, pos) -> int:
    """How many pairs of links cross (links sharing an end do not)."""
    def side(a, b, c):
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    edges = list(g.edges())
    n = 0
    for i, (a, b) in enumerate(edges):
        for c, d in edges[i + 1:]:
            if {a, b} & {c, d}:
                continue
            pa, pb, pc, pd = pos[a], pos[b], pos[c], pos[d]
            if side(pa, pb, pc) * side(pa, pb, pd) < 0 and side(pc, pd, pa) * side(pc, pd, pb) < 0:
                n += 1
    return n


MAX_EDGES_CROSSINGS = 200     # above this, counting crossings for each seed costs too much


POD_ROW = 4                # pods of one SG side by side before the next row


def _place_pods(topo, pos) -> dict[str, tuple[float, float]]:
    """Each pod outside its SG, on the line from the core's centre through
    the SG (pods of one SG fan out), so pods ring the core; more than
    POD_ROW pods of one SG in rows, each farther out (16 pods an SG at 1,000
    instances)."""
    pos = dict(pos)
    cx = sum(x for x, _ in pos.values()) / max(1, len(pos))
    cy = sum(y for _, y in pos.values()) / max(1, len(pos))
    for pod in topo.pods():
        sg = topo.gateway(pod)
        x, y = pos.get(sg, (cx, cy))
        dx, dy = x - cx, y - cy
        norm = (dx * dx + dy * dy) ** 0.5 or 1.0
        others = [p for p in topo.pods() if topo.gateway(p) == sg]
        row, col = divmod(others.index(pod), POD_ROW)
        in_row = min(POD_ROW, len(others) - row * POD_ROW)
        turn = (col - (in_row - 1) / 2) * 0.35 / (1 + row)          # pods of one SG fan out
        ux, uy = dx / norm, dy / norm
        ux, uy = ux - turn * uy, uy + turn * ux
        reach = 0.35 * (1 + row)
        pos[pod] = (x + reach * ux, y + reach * uy)
    return pos


def layout(topo, seed: int = 7, tries: int = 12) -> dict[str, tuple[float, float]]:
    """Positions in [0.05, 0.95]^2 (SVG y grows downwards; the page
    stretches them to its drawing). The switches: networkx's force-directed
    layout of the core graph from ``tries`` fixed seeds, pods placed outside
    their SGs (:func:`_place_pods`); of those, the one with the fewest
    crossing links, then the most room between links and nodes (the same
    topology is drawn the same way every time). The page then moves nodes
    apart where their labels would touch (dmsc/live_view.html)."""
    core, g = topo.core_graph(), topo.graph
    best, best_score = None, None
    for s in range(seed, seed + tries):
        core_pos = ({n: (0.0, 0.0) for n in core} if len(core) < 2 else
                    {n: (float(x), float(y)) for n, (x, y) in
                     nx.spring_layout(core, seed=s, iterations=300).items()})
        pos = _place_pods(topo, core_pos)
        crossings = _crossings(g, pos) if g.number_of_edges() <= MAX_EDGES_CROSSINGS else 0
        score = (crossings, -_clearance(g, pos))
        if best_score is None or score < best_score:
            best, best_score = pos, score
        if len(core) < 2:
            break
    xs = [p[0] for p in best.values()]
    ys = [p[1] for p in best.values()]
    wx, wy = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    return {n: (round(0.05 + 0.9 * (x - min(xs)) / wx, 4),
                round(0.05 + 0.9 * (y - min(ys)) / wy, 4)) for n, (x, y) in best.items()}


def read_intf(intf: str, root: Path = Path("/sys/class/net")) -> dict[str, int] | None:
    base = root / intf / "statistics"
    try:
        return {f: int((base / f).read_text())
                for f in ("tx_packets", "tx_bytes", "rx_packets", "rx_bytes")}
    except OSError:
        return None


def steered_links(topo, d: dict) -> tuple[list[list[str]], str | None]:
    """What a steering decision ``d`` (as :func:`scsc_decisions` lists it)
    highlights on the drawing: the links, each as [from, to] in the direction
    the requests travel, and the pod of the chosen instance. The links are the
    ingress SG's pods to their SG (the policy matches every instance behind
    that SG as the source), the path's hops, and the last switch to the
    chosen instance's pod. ([], None) when the decision steers nothing."""
    path = [n for n in d.get("path", []) if n in topo.graph]
    if not d.get("chosen") or not path:
        return [], None
    links = [[p, path[0]] for p in topo.pods() if topo.gateway(p) == path[0]]
    links += [[u, v] for u, v in zip(path, path[1:]) if topo.graph.has_edge(u, v)]
    try:
        pod = topo.pod_of(d["chosen"])
    except ValueError:                  # TopologyError: an instance no pod serves
        pod = None
    if pod is not None and topo.graph.has_edge(path[-1], pod):
        links.append([path[-1], pod])
    return links, pod


def scsc_decisions(addr: str | None, timeout: float = 1.0) -> dict:
    """The SCSC's decisions: {"state": "none"|"up"|"unreachable", "decisions": [...]}."""
    if not addr:
        return {"state": "none", "decisions": []}
    try:
        with grpc.insecure_channel(addr) as ch:
            v = scsc_grpc.ScscStub(ch).View(scsc_pb.Empty(), timeout=timeout)
    except grpc.RpcError as exc:
        return {"state": "unreachable", "error": exc.code().name, "decisions": []}
    return {"state": "up", "addr": addr,
            "decisions": [{"sg": d.sg, "service": d.service, "default": d.default_instance,
                           "chosen": d.chosen, "path": list(d.path), "why": d.why}
                          for d in v.decisions],
            "violations": [{"sg": t.sg, "instance": t.path.instance, "violation": t.violation}
                           for t in v.telemetry if t.violation]}


class ViewSource:
    """What the page shows, read from a running DmscNet."""

    def __init__(self, net, clock=time.monotonic, intf_reader=read_intf, host=None):
        self.net = net
        # the host's fidelity over the last FIDELITY_WINDOW samples (dmsc/fidelity.py)
        self.host = host if host is not None else fidelity.HostMonitor(
            every=MIN_SAMPLE_S, keep=FIDELITY_WINDOW)
        self.clock = clock
        self.read_intf = intf_reader
        self.pos = layout(net.topo)
        self._lock = threading.Lock()
        self._last: tuple[float, dict] | None = None     # (time, {intf: counters})
        self._rates: dict[str, dict] = {}

    def _link_intf(self, a: str, b: str) -> tuple[str, str, str]:
        """(interface, the end it is on, the other end): a switch end, in the root namespace."""
        t = self.net.topo
        near, far = (a, b) if t.kind(a) != "pod" else (b, a)
        return t.intf_name(near, t.port(near, far)), near, far

    def sample(self) -> dict[str, dict]:
        """Per-interface rates between the previous sample and now (the
        previous ones when the last sample is younger than MIN_SAMPLE_S). The
        server samples every second on its own, so the rates are over real
        seconds however often (or, in a headless browser's virtual time, however
        fast) the page polls."""
        with self._lock:
            now = self.clock()
            if self._last is not None and now - self._last[0] < MIN_SAMPLE_S:
                return self._rates
            counters = {}
            for a, b in self.net.topo.graph.edges():
                intf = self._link_intf(a, b)[0]
                c = self.read_intf(intf)
                if c is not None:
                    counters[intf] = c
            rates = {}
            if self._last is not None:
                dt = now - self._last[0]
                for intf, c in counters.items():
                    old = self._last[1].get(intf)
                    if old is None:
                        continue
                    rates[intf] = {k: max(0, c[k] - old[k]) / dt for k in c}
            self._last, self._rates = (now, counters), rates
            try:
                self.host.sample()
            except OSError:
                pass
            return rates

    def _alive(self, node: str) -> bool:
        net = self.net
        if net.topo.kind(node) == "pod":
            app = net.pods.get(node)
            return app is None or app.alive()      # static networks run no pod apps
        try:
            return bool(net.switch(node).alive())
        except Exception:                           # the network is going down
            return False

    def state(self) -> dict:
        net, t = self.net, self.net.topo
        rates = self.sample()
        alive = {n: self._alive(n) for n in t.graph.nodes}
        cut = getattr(net.failures, "cut", set())
        nodes = [{"id": n, "kind": t.kind(n), "x": self.pos[n][0], "y": self.pos[n][1],
                  "alive": alive[n],
                  "instances": t.instances(n) if t.kind(n) == "pod" else [],
                  "agent": (n in net.agents and net.agents[n].alive())
                  if t.kind(n) != "pod" else None}
                 for n in t.graph.nodes]
        links = []
        for a, b in sorted(t.graph.edges()):
            intf, near, far = self._link_intf(a, b)
            r = rates.get(intf, {})
            state = ("cut" if frozenset((a, b)) in cut else
                     "dead" if not (alive[a] and alive[b]) else "up")
            def way(pk, by):
                return {"fps": round(r.get(pk, 0), 1), "kbps": round(r.get(by, 0) * 8e-3, 1)}
            links.append({"a": a, "b": b, "state": state, "intf": intf,
                          # near -> far is what the near end transmits
                          "rate": {f"{near}>{far}": way("tx_packets", "tx_bytes"),
                                   f"{far}>{near}": way("rx_packets", "rx_bytes")},
                          "fps": round(r.get("tx_packets", 0) + r.get("rx_packets", 0), 1)})
        central = getattr(net, "central", None)
        return {"topology": t.name, "time": time.time(), "nodes": nodes, "links": links,
                "mode": getattr(net, "mode", "distributed"),
                "central": None if central is None else {"alive": central.alive()},
                "scsc": self._scsc(),
                "fidelity": self.fidelity()}

    def _scsc(self) -> dict:
        """The SCSC's decisions, each with what it highlights (:func:`steered_links`)."""
        net = self.net
        sc = scsc_decisions(net.scsc_addr if net.scsc is not None else None)
        for d in sc["decisions"]:
            d["links"], d["pod"] = steered_links(net.topo, d)
        return sc

    def fidelity(self) -> dict:
        """The host's verdict over the recent samples: is the host, not the
        network, the bottleneck now?"""
        v = self.host.verdict()
        return {"level": v.level, "reason": v.reason, "monitors": v.monitors,
                "samples": v.measured.get("host_samples", 0)}


class _Handler(BaseHTTPRequestHandler):
    source: ViewSource          # set on the subclass the server makes

    def do_GET(self):  # noqa: N802 (http.server's name)
        path = self.path.split("?")[0]
        if path in ("/", "/index.html"):
            body, ctype = PAGE.read_bytes(), "text/html; charset=utf-8"
        elif path == "/state.json":
            try:
                body = json.dumps(self.source.state()).encode()
            except Exception as exc:               # the page shows it; the server goes on
                log.warning("view state: %s", exc)
                body = json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()
            ctype = "application/json"
        else:
            self.send_error(404, "the view serves / and /state.json")
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):     # to our log, not stderr
        log.debug("view %s: " + fmt, self.address_string(), *args)


class ViewServer:
    """The page and its JSON on 127.0.0.1:``port`` (0: a free port), in a
    daemon thread: ``with ViewServer(net) as v: print(v.url)``."""

    def __init__(self, net, port: int = 0, source: ViewSource | None = None):
        handler = type("Handler", (_Handler,), {"source": source or ViewSource(net)})
        try:
            self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError as exc:
            raise RuntimeError(f"view: cannot listen on 127.0.0.1:{port}: {exc.strerror}") \
                from None
        self.httpd.daemon_threads = True
        self.source = handler.source
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="dmsc-view",
                                       daemon=True)
        self._stop = threading.Event()
        self.sampler = threading.Thread(target=self._sample_loop, name="dmsc-view-sampler",
                                        daemon=True)

    def _sample_loop(self, every_s: float = 1.0) -> None:
        while not self._stop.wait(every_s):
            try:
                self.source.sample()
            except Exception as exc:        # the network is going down: the page says so
                log.debug("view sample: %s", exc)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> "ViewServer":
        self.thread.start()
        if hasattr(self.source, "sample"):
            self.sampler.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
        if self.sampler.is_alive():
            self.sampler.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
