"""Applications as call graphs: the application file, the pods' runtime, the trace tree.

An application file (YAML, ``apps/*.yaml``; docs/experiments.md, "Applications")
names services, the methods each offers, and what each method does when called:
its own work (``service_ms``), then its ``calls`` to other services in order (a
list inside the list is a parallel fan-out: sent at once, all awaited), then its
answer, padded to ``reply_bytes``::

    name: social-network
    timeout: 1s                     # each downstream call's (default 1s)
    services:
      frontend:                     # the service's name is /frontend (or `name:`)
        methods:
          compose_post:
            service_ms: 1
            reply_bytes: 64
            calls:
              - user.get                              # sequential
              - [text.process, media.upload]          # parallel fan-out
              - {call: post_storage.store, request_bytes: 600}

A pod that serves an instance of a service (``/user/1`` under ``/user``) and
was given the file (``traffic.pod --app FILE``) implements its methods with
:class:`AppServer`: calls by name to the downstream services (their prefix:
anycast to any instance), each carrying the request's trace id and the caller's
span id in its JSON body. Every method call is a **span** the serving pod writes
(``--trace-file``): trace, span, parent, service, method, instance, times in
and out (CLOCK_MONOTONIC, shared by every namespace), status, and each
downstream call it made (sent, answered, responder, status, the callee's span).
:func:`trees` puts a trace's spans back together; :func:`check_tree` compares a
tree with the file; :func:`hops` gives per-hop latency.

Errors in the file name the line and the field, like the experiment files'.
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from traffic.wire import codec, defs, names
from traffic.yaml_doc import FileError, YamlDoc

MAX_BYTES = 1200                     # request/reply padding: one frame with the trace's TLVs
MAX_SERVICE_MS = 10_000
MAX_CALLS_PER_METHOD = 32


class AppError(FileError):
    """A bad application file: the message names the file, the line and the field."""


@dataclass(frozen=True)
class Call:
    service: str                     # the service's key in the file
    method: str
    request_bytes: int = 0

    @property
    def label(self) -> str:
        return f"{self.service}.{self.method}"


@dataclass
class Method:
    service_ms: float = 0.0
    reply_bytes: int = 0
    steps: list = field(default_factory=list)     # list[list[Call]]: each step's calls, in parallel


@dataclass
class Service:
    key: str
    name: str                        # its DMSC prefix
    methods: dict                    # name -> Method


@dataclass
class Application:
    name: str
    source: str
    timeout_s: float
    services: dict                   # key -> Service

    def service_of(self, instance: str) -> Service | None:
        """The service an instance name belongs to (the longest prefix)."""
        best = None
        for s in self.services.values():
            if names.prefix_matches(s.name, instance) and (
                    best is None or len(s.name) > len(best.name)):
                best = s
        return best

    def expected_calls(self, service: str, method: str) -> Counter:
        """The (service, method) pairs one call of ``service.method`` makes directly."""
        m = self.services[service].methods[method]
        return Counter((c.service, c.method) for step in m.steps for c in step)

    def depth(self, service: str, method: str) -> int:
        """Services on the longest path of calls from ``service.method``, itself included."""
        m = self.services[service].methods[method]
        return 1 + max((self.depth(c.service, c.method) for st in m.steps for c in st),
                       default=0)

    def span_count(self, service: str, method: str) -> int:
        m = self.services[service].methods[method]
        return 1 + sum(self.span_count(c.service, c.method) for st in m.steps for c in st)


# -- the file ----------------------------------------------------------------------------------
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)?\s*$")
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


class _Doc(YamlDoc):
    error = AppError
    kind = "an application"

    def number(self, node, fld: str, lo: float, hi: float, *, integer=False):
        v = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        ok = isinstance(v, int) if integer else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok:
            raise self.err(node, fld, f"must be {'an integer' if integer else 'a number'}")
        if not lo <= v <= hi:
            raise self.err(node, fld, f"must be between {lo:g} and {hi:g}, not {v}")
        return v

    def duration(self, node, fld: str) -> float:
        v = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        m = _DURATION.match(str(v)) if isinstance(v, str) else None
        if not m:
            raise self.err(node, fld, f"a duration such as 500ms or 1s, not {v!r}")
        return float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)


TOP = {"name": False, "description": False, "timeout": False, "services": True}
SERVICE = {"name": False, "methods": True}
METHOD = {"service_ms": False, "reply_bytes": False, "calls": False}
CALL = {"call": True, "request_bytes": False}


def load(path) -> Application:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise AppError(str(path), None, "", f"cannot read: {exc.strerror}") from None
    return loads(text, source=str(path))


def loads(text: str, *, source: str = "<application>") -> Application:
    doc = _Doc(source)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise AppError(source, mark.line + 1 if mark else None, "",
                       f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if root is None:
        raise AppError(source, None, "", "the file is empty")
    top = doc.mapping(root, "", TOP)
    name = "application"
    if "name" in top:
        name = doc.value(top["name"][1])
        if not isinstance(name, str) or not _KEY.fullmatch(name):
            raise doc.err(top["name"][1], "name", "letters, digits, '_' and '-', "
                                                  "starting with a letter")
    timeout = doc.duration(top["timeout"][1], "timeout") if "timeout" in top else 1.0
    if not 0.01 <= timeout <= 30:
        raise doc.err(top["timeout"][1], "timeout", "must be between 10ms and 30s")
    snode = top["services"][1]
    smap = doc.mapping(snode, "services", None)
    if not smap:
        raise doc.err(snode, "services", "no services")
    services: dict[str, Service] = {}
    calls_at: list = []                        # (Call, node, field) to check once all are read
    by_name: dict[str, str] = {}
    for key, (kn, vn) in smap.items():
        fld = f"services.{key}"
        if not _KEY.fullmatch(key):
            raise doc.err(kn, fld, "a service's key: letters, digits, '_' and '-', "
                                   "starting with a letter")
        sm = doc.mapping(vn, fld, SERVICE)
        sname = f"/{key}"
        if "name" in sm:
            raw = doc.value(sm["name"][1])
            try:
                sname = names.normalize(str(raw))
                names.prefix_key(sname)
            except (names.InvalidName, ValueError) as exc:
                raise doc.err(sm["name"][1], f"{fld}.name", str(exc)) from None
            if sname.startswith(names.RESERVED_ROOT):
                raise doc.err(sm["name"][1], f"{fld}.name", f"{names.RESERVED_ROOT} names "
                                                            "belong to the switches")
        if sname in by_name:
            raise doc.err(sm["name"][1] if "name" in sm else kn, f"{fld}.name",
                          f"{sname} is already the name of service {by_name[sname]}")
        by_name[sname] = key
        mmap = doc.mapping(sm["methods"][1], f"{fld}.methods", None)
        if not mmap:
            raise doc.err(sm["methods"][1], f"{fld}.methods", "no methods")
        methods = {}
        for mname, (mk, mv) in mmap.items():
            mf = f"{fld}.methods.{mname}"
            if not _KEY.fullmatch(mname):
                raise doc.err(mk, mf, "a method's name: letters, digits, '_' and '-'")
            mm = doc.mapping(mv, mf, METHOD) if not (
                isinstance(mv, yaml.ScalarNode) and doc.value(mv) is None) else {}
            m = Method()
            if "service_ms" in mm:
                m.service_ms = float(doc.number(mm["service_ms"][1], f"{mf}.service_ms", 0,
                                                MAX_SERVICE_MS))
            if "reply_bytes" in mm:
                m.reply_bytes = doc.number(mm["reply_bytes"][1], f"{mf}.reply_bytes", 0,
                                           MAX_BYTES, integer=True)
            if "calls" in mm:
                cn = mm["calls"][1]
                if not isinstance(cn, yaml.SequenceNode):
                    raise doc.err(cn, f"{mf}.calls", "must be a list (a list inside it "
                                                     "is a parallel fan-out)")
                for i, step in enumerate(cn.value):
                    sf = f"{mf}.calls[{i}]"
                    if isinstance(step, yaml.SequenceNode):
                        if not step.value:
                            raise doc.err(step, sf, "an empty fan-out")
                        group = [_call(doc, n, f"{sf}[{j}]", calls_at)
                                 for j, n in enumerate(step.value)]
                    else:
                        group = [_call(doc, step, sf, calls_at)]
                    m.steps.append(group)
                if sum(len(s) for s in m.steps) > MAX_CALLS_PER_METHOD:
                    raise doc.err(cn, f"{mf}.calls", f"at most {MAX_CALLS_PER_METHOD} calls "
                                                     "per method")
            methods[mname] = m
        services[key] = Service(key, sname, methods)
    for c, node, fld in calls_at:
        if c.service not in services:
            raise doc.err(node, fld, f"no service {c.service!r}; services: "
                                     f"{', '.join(services)}")
        if c.method not in services[c.service].methods:
            raise doc.err(node, fld, f"service {c.service} has no method {c.method!r}; "
                                     f"it has: {', '.join(services[c.service].methods)}")
    app = Application(name, source, timeout, services)
    _no_cycles(doc, app, calls_at)
    return app


def _call(doc: _Doc, node, fld: str, calls_at: list) -> Call:
    rb = 0
    if isinstance(node, yaml.MappingNode):
        cm = doc.mapping(node, fld, CALL)
        target_node = cm["call"][1]
        if "request_bytes" in cm:
            rb = doc.number(cm["request_bytes"][1], f"{fld}.request_bytes", 0, MAX_BYTES,
                            integer=True)
    elif isinstance(node, yaml.ScalarNode):
        target_node = node
    else:
        raise doc.err(node, fld, "a call: service.method, or {call: service.method, "
                                 "request_bytes: N}")
    target = doc.value(target_node)
    if not isinstance(target, str) or target.count(".") != 1 or not all(
            _KEY.fullmatch(p) for p in target.split(".")):
        raise doc.err(target_node, fld, f"a call is service.method (e.g. user.get), "
                                        f"not {target!r}")
    s, m = target.split(".")
    c = Call(s, m, rb)
    calls_at.append((c, target_node, fld))
    return c


def _no_cycles(doc: _Doc, app: Application, calls_at: list) -> None:
    """A method that calls itself, directly or not, would never answer."""
    state: dict = {}

    def visit(sm, path):
        st = state.get(sm)
        if st == "done":
            return
        if st == "active":
            cyc = path[path.index(sm):] + [sm]
            c = next((x for x in calls_at if (x[0].service, x[0].method) == sm), None)
            raise doc.err(c[1] if c else None, c[2] if c else "services",
                          "a cycle of calls: " + " -> ".join(f"{a}.{b}" for a, b in cyc))
        state[sm] = "active"
        for step in app.services[sm[0]].methods[sm[1]].steps:
            for c in step:
                visit((c.service, c.method), path + [sm])
        state[sm] = "done"

    for s in app.services.values():
        for m in s.methods:
            visit((s.key, m), [])


# -- the pod's runtime ----------------------------------------------------------------------------
class _Task:
    """One method call being served: its work, then its steps of calls."""
    __slots__ = ("req", "inst", "service", "method", "m", "span", "trace", "parent", "t_in",
                 "ready_at", "step", "waiting", "calls", "failed")

    def __init__(self, req, inst, service, method, m, span, trace, parent, t_in, ready_at):
        self.req, self.inst, self.service, self.method, self.m = req, inst, service, method, m
        self.span, self.trace, self.parent, self.t_in = span, trace, parent, t_in
        self.ready_at = ready_at
        self.step = -1                  # -1: doing its own work
        self.waiting = 0                # calls of the current step not ended
        self.calls: list[dict] = []
        self.failed: str | None = None


class AppServer:
    """The methods of an application's services, for the instances one pod serves.

    Pure state, no I/O: the pod hands it requests and answers with the time
    (``on_request``, ``on_answer``), sends what ``due(now)`` returns, and wakes
    by ``next_wake()``. Finished spans go to ``span_sink(dict)``."""

    def __init__(self, app: Application, *, mac: str = "00:00:00:00:00:00",
                 gateway_mac: str = codec.BROADCAST, span_sink=None):
        self.app = app
        self.kw = {"eth_src": mac, "eth_dst": gateway_mac}
        self.span_sink = span_sink
        self.tasks: list[_Task] = []               # doing their own work, by ready_at
        self.out: dict[int, tuple[_Task, dict]] = {}   # downstream msg_id -> (task, call)
        self.frames: list[bytes] = []
        self._next_id = int.from_bytes(os.urandom(4), "big") | 1
        self.counters: Counter = Counter()

    def serves(self, inst: str) -> bool:
        return self.app.service_of(inst) is not None

    def _msg_id(self) -> int:
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF or 1
        return self._next_id

    def on_request(self, pkt, inst: str, method: str, now: float) -> bytes | None:
        """A REQUEST to ``inst`` (one of the app's services): an ERROR frame
        now (unknown method), or None (the answer comes later from ``due``)."""
        svc = self.app.service_of(inst)
        m = svc.methods.get(method)
        if m is None:
            self.counters["app_unknown_method"] += 1
            return codec.error(pkt, inst, codec.STATUS_UNKNOWN_METHOD,
                               f"{svc.key} has no method {method!r}", **self.kw)
        try:
            args = json.loads(pkt.tlv(codec.TLV_BODY, b"null") or b"null") or {}
        except ValueError:
            args = {}
        args = args if isinstance(args, dict) else {}
        trace = str(args.get("trace") or f"{inst}-{pkt.msg_id}")
        span = os.urandom(6).hex()
        t = _Task(pkt, inst, svc.key, method, m, span, trace, args.get("parent"), now,
                  now + m.service_ms / 1000)
        self.tasks.append(t)
        self.counters["app_request"] += 1
        return None

    def on_answer(self, pkt, now: float) -> bool:
        """A RESPONSE or ERROR; True if it answered one of our downstream calls."""
        got = self.out.pop(pkt.msg_id, None)
        if got is None:
            return False
        task, call = got
        if call["status"] is not None:         # already timed out
            return True
        if pkt.type == defs.TYPE_ERROR:
            raw = pkt.tlv(codec.TLV_STATUS) or b"\xff\xff"
            code = int.from_bytes(raw[:2], "big") if len(raw) >= 2 else -1
            call["status"] = codec.STATUS_NAMES.get(code, str(code))
        else:
            call["status"] = "ok"
            try:
                body = json.loads(pkt.tlv(codec.TLV_BODY, b"null") or b"null")
                call["span"] = body.get("span") if isinstance(body, dict) else None
            except ValueError:
                pass
        call["answered"] = now
        call["responder"] = pkt.src_name
        self._call_ended(task, call, now)
        return True

    def _call_ended(self, task: _Task, call: dict, now: float) -> None:
        if call["status"] != "ok" and task.failed is None:
            task.failed = f"{call['service']}.{call['method']}: {call['status']}"
        task.waiting -= 1
        if task.waiting == 0:
            self._advance(task, now)

    def _advance(self, task: _Task, now: float) -> None:
        """The next step of calls, or the answer."""
        task.step += 1
        if task.failed is None and task.step < len(task.m.steps):
            group = task.m.steps[task.step]
            task.waiting = len(group)
            for c in group:
                svc = self.app.services[c.service]
                msg_id = self._msg_id()
                call = {"service": c.service, "method": c.method, "step": task.step,
                        "sent": now, "answered": None, "responder": None, "status": None,
                        "span": None, "deadline": now + self.app.timeout_s}
                args = {"trace": task.trace, "parent": task.span}
                if c.request_bytes:
                    args["pad"] = "x" * c.request_bytes
                body = json.dumps(args, separators=(",", ":")).encode()
                self.frames.append(codec.encode(
                    defs.TYPE_REQUEST, svc.name, task.inst,
                    [(codec.TLV_METHOD, c.method.encode()), (codec.TLV_BODY, body)],
                    msg_id=msg_id, **self.kw))
                task.calls.append(call)
                self.out[msg_id] = (task, call)
                self.counters["app_call_sent"] += 1
            return
        self._finish(task, now)

    def _finish(self, task: _Task, now: float) -> None:
        if task.failed is None:
            result = {"span": task.span}
            if task.m.reply_bytes:
                result["pad"] = "x" * task.m.reply_bytes
            self.frames.append(codec.response(task.req, task.inst, result, **self.kw))
            self.counters["app_response"] += 1
        else:
            self.frames.append(codec.error(task.req, task.inst, codec.STATUS_APP_ERROR,
                                           f"downstream {task.failed}", **self.kw))
            self.counters["app_error"] += 1
        if self.span_sink is not None:
            self.span_sink({
                "trace": task.trace, "span": task.span, "parent": task.parent,
                "service": task.service, "method": task.method, "instance": task.inst,
                "caller": task.req.src_name, "t_in": round(task.t_in, 6),
                "t_out": round(now, 6), "status": "ok" if task.failed is None else "error",
                "error": task.failed,
                "calls": [{k: (round(v, 6) if isinstance(v, float) else v)
                           for k, v in c.items() if k != "deadline"} for c in task.calls]})

    def due(self, now: float) -> list[bytes]:
        """Frames to send now: work done, calls timed out, steps and answers that follow."""
        if self.tasks:
            ready = [t for t in self.tasks if t.ready_at <= now]
            if ready:
                self.tasks = [t for t in self.tasks if t.ready_at > now]
                for t in ready:
                    self._advance(t, now)
        if self.out:
            for msg_id, (task, call) in list(self.out.items()):
                if call["status"] is None and call["deadline"] <= now:
                    del self.out[msg_id]
                    call["status"] = "timeout"
                    self.counters["app_call_timeout"] += 1
                    self._call_ended(task, call, now)
        out, self.frames = self.frames, []
        return out

    def next_wake(self) -> float | None:
        times = [t.ready_at for t in self.tasks]
        times += [c["deadline"] for _t, c in self.out.values()]
        return min(times) if times else None


# -- the trace tree ---------------------------------------------------------------------------------
def read_spans(paths) -> list[dict]:
    out = []
    for p in paths:
        try:
            with open(p) as f:
                for line in f:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        continue
        except OSError:
            continue
    return out


def trees(spans: list[dict]) -> dict[str, dict]:
    """{trace id: its root span}, each span with ``children`` (the spans its
    calls reached, in the order of its calls). A span whose parent is not
    among the spans is a root."""
    by_id = {s["span"]: {**s, "children": []} for s in spans}
    roots: dict[str, dict] = {}
    for s in by_id.values():
        p = by_id.get(s.get("parent"))
        if p is not None:
            p["children"].append(s)
        else:
            roots.setdefault(s["trace"], s)
    for s in by_id.values():
        order = {c.get("span"): i for i, c in enumerate(s.get("calls", []))}
        s["children"].sort(key=lambda c: order.get(c["span"], len(order)))
    return roots


def check_tree(root: dict, app: Application) -> list[str]:
    """What differs between a trace tree and the file: at each span, the
    calls made and the spans reached must be those the method declares."""
    problems = []

    def walk(s, path):
        here = f"{path}{s['service']}.{s['method']}"
        if s["service"] not in app.services or s["method"] not in app.services[
                s["service"]].methods:
            problems.append(f"{here}: not in the application")
            return
        want = app.expected_calls(s["service"], s["method"])
        made = Counter((c["service"], c["method"]) for c in s.get("calls", []))
        reached = Counter((c["service"], c["method"]) for c in s["children"])
        if made != want:
            problems.append(f"{here}: made {dict(made)}, the file says {dict(want)}")
        if reached != want:
            problems.append(f"{here}: reached {dict(reached)}, the file says {dict(want)}")
        steps = [c["step"] for c in s.get("calls", [])]
        if steps != sorted(steps):
            problems.append(f"{here}: calls out of step order")
        for c in s["children"]:
            walk(c, here + " > ")

    walk(root, "")
    return problems


def hops(root: dict) -> list[dict]:
    """Per call in the tree: caller, callee, the instance that answered, the
    latency the caller saw, the callee's own time (in to out) and the
    difference (network and queues), in ms."""
    out = []

    def walk(s, depth):
        kids = {c["span"]: c for c in s["children"]}
        for c in s.get("calls", []):
            callee = kids.get(c.get("span"))
            lat = None if c.get("answered") is None else (c["answered"] - c["sent"]) * 1000
            inside = None if callee is None else (callee["t_out"] - callee["t_in"]) * 1000
            out.append({"depth": depth + 1, "caller": f"{s['service']}.{s['method']}",
                        "callee": f"{c['service']}.{c['method']}",
                        "instance": c.get("responder"), "status": c.get("status"),
                        "latency_ms": None if lat is None else round(lat, 3),
                        "callee_ms": None if inside is None else round(inside, 3),
                        "network_ms": None if lat is None or inside is None
                        else round(lat - inside, 3)})
            if callee is not None:
                walk(callee, depth + 1)

    walk(root, 0)
    return out
