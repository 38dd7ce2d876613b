"""Run-time actions on a running network: the one place they live.

Every action is a function ``fn(net, **params) -> dict`` on a running
:class:`topologies.emu.net.DmscNet`: failures (a link down and up, a switch,
an agent, the SPA, the SCSC or the central controller killed and restarted),
a degraded instance, a prefix announced, withdrawn or hijacked from a pod, a
call, a probe, and reads of a switch (FIB, LSDB, RIB, policies). The
experiment steps (dmsc/experiment.py) and the interactive CLI
call them by name through :func:`run`, so a step in a file and a command typed
at the prompt are the same code.

Each function's docstring is its help text (first line: the summary); its
parameters are typed, and :func:`check_params` checks a step's parameters
(unknown, missing, wrong type, names that the topology does not have) before
anything runs: an experiment file is refused at load time, not halfway.
Bad arguments raise :class:`ActionError`, whose message lists what exists
(switches, pods, links, a pod's prefixes). What an action observes, such as a
call that fails or a hijack that the SPA refuses, is its result, not an error.
"""
from __future__ import annotations

import inspect
import json
import time
import typing
from pathlib import Path
from typing import Annotated, Callable

from traffic.wire import names

# Parameter kinds checked against the topology (typing.Annotated markers).
Switch = Annotated[str, "switch"]       # an SG or SR of the topology
Pod = Annotated[str, "pod"]             # a pod of the topology
Node = Annotated[str, "node"]           # a switch or a pod (a link's end)
Name = Annotated[str, "name"]           # a DMSC name such as /B/4


class ActionError(RuntimeError):
    """An action that cannot run as asked: unknown action or parameter, a
    name the network does not have, a process the network does not run.
    ``param`` names the parameter at fault, when one is."""

    def __init__(self, msg: str, param: str | None = None):
        super().__init__(msg)
        self.param = param


ACTIONS: dict[str, Callable] = {}


def action(fn: Callable) -> Callable:
    ACTIONS[fn.__name__] = fn
    return fn


# -- parameters ---------------------------------------------------------------------
def _hints(fn) -> dict[str, tuple[type, str | None]]:
    """{param: (python type, kind marker or None)} for every parameter but ``net``."""
    hints = typing.get_type_hints(fn, include_extras=True)
    out = {}
    for p in list(inspect.signature(fn).parameters)[1:]:
        h = hints.get(p, str)
        kind = None
        if typing.get_origin(h) is Annotated:
            h, kind = typing.get_args(h)[0], typing.get_args(h)[1]
        if typing.get_origin(h) in (typing.Union, getattr(__import__("types"), "UnionType", ())):
            h = next(a for a in typing.get_args(h) if a is not type(None))
        out[p] = (h, kind)
    return out


def params_of(name: str) -> list[dict]:
    """The parameters of an action: name, type name, kind, default (absent if required)."""
    fn = _lookup(name)
    sig = inspect.signature(fn)
    out = []
    for p, (typ, kind) in _hints(fn).items():
        d = {"name": p, "type": typ.__name__, "kind": kind}
        if sig.parameters[p].default is not inspect.Parameter.empty:
            d["default"] = sig.parameters[p].default
        out.append(d)
    return out


def help_text(name: str) -> str:
    """The action's docstring and its parameters, for ``help`` in the CLI."""
    fn = _lookup(name)
    doc = inspect.cleandoc(fn.__doc__ or "")
    ps = []
    for p in params_of(name):
        what = p["kind"] or p["type"]
        ps.append(f"  {p['name']}: {what}" + (f" (default {p['default']!r})" if "default" in p
                                              else " (required)"))
    return doc + ("\n\nparameters:\n" + "\n".join(ps) if ps else "")


def summary(name: str) -> str:
    return (inspect.cleandoc(_lookup(name).__doc__ or "").splitlines() or [""])[0]


def _lookup(name: str) -> Callable:
    fn = ACTIONS.get(name.replace("-", "_"))
    if fn is None:
        raise ActionError(f"no action {name!r}; actions: {', '.join(sorted(ACTIONS))}")
    return fn


def _coerce(action_name: str, param: str, typ: type, value):
    """A value of the declared type (strings from a command line converted)."""
    try:
        return _coerce1(action_name, param, typ, value)
    except ActionError as exc:
        raise ActionError(str(exc), param) from None


def _coerce1(action_name: str, param: str, typ: type, value):
    where = f"{action_name}: parameter {param!r}"
    if value is None:
        raise ActionError(f"{where} needs a value")
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false",
                                                         "no", "off", "0"):
            return value.lower() in ("true", "yes", "on", "1")
        raise ActionError(f"{where} must be true or false, not {value!r}")
    if typ in (int, float):
        if isinstance(value, bool):
            raise ActionError(f"{where} must be a number, not {value!r}")
        if isinstance(value, (int, float)) and (typ is float or float(value).is_integer()):
            return typ(value)
        if isinstance(value, str):
            try:
                return typ(value)
            except ValueError:
                pass
        raise ActionError(f"{where} must be {'an integer' if typ is int else 'a number'}, "
                          f"not {value!r}")
    if typ is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ActionError(f"{where} must be a string, not {value!r}")
    return value


def _check_kind(topo, action_name: str, param: str, kind: str, value: str) -> str:
    where = f"{action_name}: parameter {param!r}"
    if kind == "name":
        try:
            return names.normalize(value)
        except names.InvalidName as exc:
            raise ActionError(f"{where}: {exc}", param) from None
    if topo is None:
        return value
    have = {"switch": topo.switches(), "pod": topo.pods(),
            "node": topo.switches() + topo.pods()}[kind]
    if value not in have:
        plural = {"switch": "switches", "pod": "pods", "node": "nodes"}[kind]
        raise ActionError(f"{where}: no {kind} {value!r}; {plural}: {', '.join(have)}", param)
    return value


def check_params(name: str, params: dict, topo=None) -> dict:
    """The parameters of one action, checked and converted: ActionError names
    the parameter that is unknown, missing, of the wrong type, or (with a
    topology) a switch, pod or link that the topology does not have."""
    fn = _lookup(name)
    name = fn.__name__
    hints = _hints(fn)
    sig = inspect.signature(fn)
    unknown = sorted(set(params) - set(hints))
    if unknown:
        raise ActionError(f"{name}: unknown parameter {unknown[0]!r}; "
                          f"{name} takes: {', '.join(hints) or 'nothing'}", unknown[0])
    out = {}
    for p, (typ, kind) in hints.items():
        if p not in params:
            if sig.parameters[p].default is inspect.Parameter.empty:
                raise ActionError(f"{name}: parameter {p!r} is required")   # no line of its own
            continue
        v = params[p]
        if v is None and sig.parameters[p].default is None:
            out[p] = None
            continue
        v = _coerce(name, p, typ, v)
        if kind:
            v = _check_kind(topo, name, p, kind, v)
        out[p] = v
    if topo is not None and "a" in out and "b" in out:
        try:
            _check_link(topo, out["a"], out["b"])
        except ActionError as exc:
            raise ActionError(str(exc), "b") from None
    return out


def _check_link(topo, a: str, b: str) -> None:
    if not topo.graph.has_edge(a, b):
        links = sorted(f"{a}-{nb}" for nb in topo.graph.neighbors(a))
        raise ActionError(f"no link {a}-{b}; links of {a}: {', '.join(links) or 'none'}")


def run(net, name: str, **params) -> dict:
    """Run one action by name on a running network, its parameters checked
    first (:func:`check_params` against the network's topology)."""
    fn = _lookup(name)
    checked = check_params(name, params, net.topo)
    return fn(net, **checked)


# -- helpers -------------------------------------------------------------------------------
def _net_error(exc) -> ActionError:
    return ActionError(str(exc))


def _agent(net, switch: str):
    app = net.agents.get(switch)
    if app is None:
        raise ActionError(f"{switch} has no agent in this network (central mode or static "
                          f"FIBs?); agents: {', '.join(net.agents) or 'none'}")
    return app


def _live_agent(net, switch: str):
    app = _agent(net, switch)
    if not app.alive():
        raise ActionError(f"the agent of {switch} is not running (restart_agent starts it)")
    return app


def _pod_control_file(net, pod: str) -> Path:
    return Path(net.run_dir) / "pods" / f"{pod}.control.json"


def _pod_app(net, pod: str):
    app = net.pods.get(pod)
    if app is None or not app.alive():
        raise ActionError(f"pod {pod} is not running; running pods: "
                          f"{', '.join(p for p, a in net.pods.items() if a.alive()) or 'none'}")
    return app


def _read_control(net, pod: str) -> dict:
    try:
        ctl = json.loads(_pod_control_file(net, pod).read_text())
        return ctl if isinstance(ctl, dict) else {}
    except (OSError, ValueError):
        return {}


def _wait_prefix_state(net, pod: str, prefix: str, states, wait_s: float) -> dict:
    """Poll the pod's status file until ``prefix`` is in one of ``states``
    (or the time is up); the prefix's last status."""
    deadline = time.monotonic() + wait_s
    while True:
        st = net.announcements(pod).get(prefix, {})
        if st.get("state") in states or time.monotonic() >= deadline:
            return st
        time.sleep(0.02)          # poll interval


def _switch_names_by_id(topo) -> dict[int, str]:
    return {topo.graph.nodes[s].get("id"): s for s in topo.switches()}


# -- links and switches -----------------------------------------------------------------------
@action
def link_down(net, a: Node, b: Node) -> dict:
    """Cut the link between A and B (both directions; carrier stays up, so the
    neighbours notice from missing hellos)."""
    from topologies.emu.failures import FailureError
    try:
        net.failures.link_down(a, b)
    except FailureError as exc:
        raise _net_error(exc) from None
    return {"link": f"{a}-{b}", "state": "down"}


@action
def link_up(net, a: Node, b: Node) -> dict:
    """Restore the link between A and B (and its bandwidth shaping)."""
    from topologies.emu.failures import FailureError
    try:
        net.failures.link_up(a, b)
    except FailureError as exc:
        raise _net_error(exc) from None
    return {"link": f"{a}-{b}", "state": "up"}


@action
def kill_switch(net, switch: Switch) -> dict:
    """SIGKILL a switch's BMv2 (its interfaces stay up: the neighbours notice
    from missing hellos). Its agent keeps running and reconnects after a restart."""
    net.failures.kill_switch(switch)
    return {"switch": switch, "state": "killed"}


@action
def restart_switch(net, switch: Switch) -> dict:
    """Start a killed switch's BMv2 again: same ports and gRPC port, empty
    tables (its agent, or the central controller, pushes pipeline and FIB)."""
    if net.switch(switch).alive():
        raise ActionError(f"switch {switch} is running (kill it first)")
    net.failures.restart_switch(switch)
    return {"switch": switch, "state": "restarted"}


# -- processes --------------------------------------------------------------------------------
@action
def kill_agent(net, switch: Switch) -> dict:
    """SIGKILL a switch's agent (the switch keeps forwarding with the FIB it has)."""
    pid = _agent(net, switch).pid
    net.stop_agent(switch, kill=True)
    return {"agent": switch, "state": "killed", "pid": pid}


@action
def restart_agent(net, switch: Switch) -> dict:
    """Start a switch's agent again (same admin port) and wait until it answers."""
    from topologies.emu.net import NetError
    from topologies.emu.apps.app_base import AppError
    _agent(net, switch)
    try:
        app = net.start_agent(switch)
        app.ready()
    except (NetError, AppError) as exc:
        raise _net_error(exc) from None
    return {"agent": switch, "state": "running", "pid": app.pid}


def _need_spa(net, name: str):
    have = [s.name for s in net.spas]
    if name not in have:
        raise ActionError(f"no SPA {name!r} in this network; SPAs: {', '.join(have) or 'none'}")


@action
def kill_spa(net, name: str = "spa") -> dict:
    """SIGKILL the SPA: SGs fail closed (new announcements wait), what they
    hold stays."""
    _need_spa(net, name)
    net.stop_spa(name, kill=True)
    return {"spa": name, "state": "killed"}


@action
def restart_spa(net, name: str = "spa") -> dict:
    """Start the SPA again on the same address and wait until it answers."""
    from topologies.emu.net import NetError
    from topologies.emu.apps.app_base import AppError
    _need_spa(net, name)
    for app in net.spas:
        if app.name == name and app.alive():
            raise ActionError(f"SPA {name} is running (kill it first)")
    try:
        net.restart_spa(name)
    except (NetError, AppError) as exc:
        raise _net_error(exc) from None
    return {"spa": name, "state": "running"}


@action
def kill_scsc(net) -> dict:
    """SIGKILL the SCSC: forwarding goes on over SPF routes and the policies in
    force until they expire."""
    if net.scsc is None:
        raise ActionError("this network runs without an SCSC (start it with probes: "
                          "probe_ms > 0)")
    net.stop_scsc(kill=True)
    return {"scsc": net.scsc_addr, "state": "killed"}


@action
def restart_scsc(net) -> dict:
    """Start the SCSC again on the same address and wait until it answers."""
    from topologies.emu.net import NetError
    if net.scsc is None:
        raise ActionError("this network runs without an SCSC (start it with probes: "
                          "probe_ms > 0)")
    if net.scsc.alive():
        raise ActionError("the SCSC is running (kill it first)")
    try:
        net.start_scsc()
    except NetError as exc:
        raise _net_error(exc) from None
    return {"scsc": net.scsc_addr, "state": "running"}


def _central(net, method: str):
    fn = getattr(net, method, None)
    if fn is None:
        raise ActionError(f"this testbed has no central controller yet (DmscNet.{method} "
                          f"is missing)")
    if getattr(net, "central", None) is None and method != "start_central":
        raise ActionError("this network runs in distributed mode: there is no central "
                          "controller to kill or restart")
    return fn


@action
def kill_central(net) -> dict:
    """SIGKILL the central controller (central mode): switches keep the FIBs
    they have; nothing reroutes until it is back."""
    fn = _central(net, "stop_central")
    try:
        fn(kill=True)
    except TypeError:
        fn()
    return {"central": "killed"}


@action
def restart_central(net) -> dict:
    """Start the central controller again (central mode) and wait until it serves."""
    fn = _central(net, "restart_central")
    fn()
    return {"central": "running"}


@action
def stop_pod(net, pod: Pod) -> dict:
    """Stop a pod the way a leaving pod does: it withdraws everything it
    announced (signed) and exits."""
    _pod_app(net, pod)
    net.stop_pod(pod)
    return {"pod": pod, "state": "stopped"}


@action
def start_pod(net, pod: Pod) -> dict:
    """Start a stopped pod: it announces its instances again."""
    app = net.pods.get(pod)
    if app is not None and app.alive():
        raise ActionError(f"pod {pod} is running")
    net.start_pod(pod)
    return {"pod": pod, "state": "running"}


# -- degradations and announcements -------------------------------------------------------------
@action
def degrade(net, pod: Pod, service_ms: float) -> dict:
    """Answer every request and probe to the pod's instances SERVICE_MS later
    (0 restores): a degraded replica for the SCSC to find."""
    if service_ms < 0:
        raise ActionError(f"degrade: service_ms must be >= 0, not {service_ms}")
    _pod_app(net, pod)
    net.set_service_time(pod, service_ms)
    return {"pod": pod, "service_ms": service_ms}


@action
def announce(net, pod: Pod, prefix: Name, wait_s: float = 5.0) -> dict:
    """The pod announces PREFIX (signed with its own key, through its SG and
    the SPA) and serves it from then on; a prefix it withdrew is announced
    again. Waits up to WAIT_S for the SG's answer; returns its state."""
    _pod_app(net, pod)
    ctl = _read_control(net, pod)
    withdrawn = [p for p in ctl.get("withdrawn", []) if p != prefix]
    extra = list(ctl.get("extra", []))
    known = set(net.announcements(pod)) | set(net.topo.instances(pod))
    if prefix not in known and prefix not in extra:
        extra.append(prefix)
    t0 = time.monotonic()
    net.update_pod_control(pod, extra=extra, withdrawn=withdrawn)
    st = _wait_prefix_state(net, pod, prefix, ("accepted", "refused"), wait_s)
    return {"pod": pod, "prefix": prefix, "state": st.get("state", "pending"),
            "reason": st.get("reason"), "waited_s": round(time.monotonic() - t0, 3)}


@action
def withdraw(net, pod: Pod, prefix: Name, wait_s: float = 5.0) -> dict:
    """The pod withdraws PREFIX (a signed withdrawal, as when a pod leaves) and
    stops announcing it; ``announce`` brings it back."""
    _pod_app(net, pod)
    have = net.announcements(pod)
    if prefix not in have:
        raise ActionError(f"pod {pod} does not announce {prefix}; it announces: "
                          f"{', '.join(sorted(have)) or 'nothing'}")
    ctl = _read_control(net, pod)
    withdrawn = sorted(set(ctl.get("withdrawn", [])) | {prefix})
    t0 = time.monotonic()
    net.update_pod_control(pod, withdrawn=withdrawn)
    st = _wait_prefix_state(net, pod, prefix, ("withdrawn",), wait_s)
    return {"pod": pod, "prefix": prefix, "state": st.get("state"),
            "waited_s": round(time.monotonic() - t0, 3)}


HIJACKS = {"unauthorized": [], "bad_signature": ["--bad-signature"],
           "stale": ["--timestamp-offset", "-3600"], "collision": []}


@action
def hijack(net, pod: Pod, prefix: Name, how: str = "unauthorized",
           watch_s: float = 1.0) -> dict:
    """The pod announces PREFIX, which it is not authorized for (another
    service's name, or a sibling instance of its own service), or with a forged
    signature (how=bad_signature), a stale timestamp (how=stale), or a name
    computed to have PREFIX's switch key (how=collision: its first component
    replaced by a printable one with the same CRC-32). The SG asks the SPA,
    which must refuse it; then every FIB is watched for WATCH_S seconds.
    Returns the SG's answer and the switches whose FIB changed (none, if the
    SPA did its job)."""
    if how not in HIJACKS:
        raise ActionError(f"hijack: how must be one of {', '.join(HIJACKS)}, not {how!r}")
    if how == "collision":
        from dmsc.attacks import crc32_twin
        first, *rest = names.components(prefix)
        prefix = "/" + "/".join([crc32_twin(first), *rest])
    if pod not in net.key_files:
        raise ActionError(f"pod {pod} has no key in this network; pods with keys: "
                          f"{', '.join(net.key_files) or 'none'}")
    from dmsc.converge import FibReader
    t = net.topo
    with FibReader.for_net(net) as reader:     # one session per switch for the whole watch
        before = {sw: reader.read(sw) for sw in t.switches()}
        res = net.run_in(pod, ["-m", "traffic.send_announcement", "--iface", t.intf_name(pod, 0),
                               "--mac", t.mac(pod, 0), "--timeout", "3", "--key",
                               str(net.key_files[pod]), "--prefix", prefix, *HIJACKS[how]],
                         timeout=25)
        try:
            ans = json.loads(res.stdout.strip())
        except ValueError:
            raise ActionError(f"hijack: traffic.send_announcement failed: {res.stderr[-300:]}") from None
        changed: list[str] = []
        deadline = time.monotonic() + watch_s
        while True:
            now = {sw: reader.read(sw) for sw in t.switches()}
            changed = sorted(sw for sw in now if now[sw] != before.get(sw))
            if changed or time.monotonic() >= deadline:
                break
            time.sleep(0.1)       # poll interval: reading every FIB is not free
    body = ans.get("body", {})
    return {"pod": pod, "prefix": prefix, "how": how, "answer": ans.get("answer"),
            "spa_state": body.get("state"), "reason": body.get("reason"),
            "refused": ans.get("answer") == "nack", "fibs_changed": changed}


@action
def spoof(net, pod: Pod, src: Name, dst: Name, count: int = 50, interval_s: float = 0.01) -> dict:
    """The pod sends COUNT requests to DST with SRC, another pod's instance
    name, as their source (reflection: the answers would go to SRC). Its SG
    must drop them (counted src_not_held). Returns the requests sent, the
    answers that came back to anyone, and the SG's src_not_held drops meanwhile."""
    from controller.switch import p4names as N
    from dmsc.converge import FibReader
    from traffic.wire import defs
    t = net.topo
    sg = t.gateway(pod)
    drop_idx = next(i for i, n in defs.DROP_REASONS.items() if n == "src_not_held")

    def dropped(sw) -> int:
        return sw.read_counter(N.COUNTER_DROP_REASONS).get(drop_idx, (0, 0))[0]
    with FibReader.for_net(net, [sg]) as reader:   # a reader: the agent stays primary
        sw = reader.conns[sg]
        before = dropped(sw)
        res = net.run_in(pod, ["-m", "traffic.rmi_client", "--iface", t.intf_name(pod, 0), "--src",
                               names.normalize(src), "--mac", t.mac(pod, 0), "--timeout", "0.2",
                               "--count", str(count), "--interval", str(interval_s), dst, "echo"],
                         timeout=count * (interval_s + 0.2) + 30)
        try:
            out = json.loads(res.stdout.strip())
        except ValueError:
            raise ActionError(f"spoof: traffic.rmi_client failed: {res.stderr[-300:]}") from None
        deadline = time.monotonic() + 2.0
        while dropped(sw) - before < count and time.monotonic() < deadline:
            time.sleep(0.05)            # counters are read back: let the last frames land
        drops = dropped(sw) - before
    return {"pod": pod, "src": src, "dst": dst, "sent": out.get("sent", 0),
            "answered": out.get("ok", 0), "sg": sg, "src_not_held": drops,
            "refused": out.get("ok", 0) == 0 and drops >= out.get("sent", 0)}


# -- calls and probes ------------------------------------------------------------------------------
def _src_of(net, pod: str, src: str | None) -> str:
    if src is None:
        inst = net.topo.instances(pod)
        if not inst:
            raise ActionError(f"pod {pod} serves no instance to call from; give src")
        return inst[0]
    return names.normalize(src)


@action
def call(net, pod: Pod, dst: Name, method: str = "echo", src: str | None = None,
         timeout_s: float = 1.0) -> dict:
    """One call by name from a pod (as SRC, default its first instance) to
    DST: the result, the instance that answered, the round trip and the hops;
    or the error (no route, time-out, ...)."""
    s = _src_of(net, pod, src)
    out = net.call(pod, s, dst, method, {}, deadline_s=0, timeout=timeout_s)
    out["ok"] = "error" not in out
    out.update(pod=pod, src=s, dst=dst)
    return out


@action
def probe(net, pod: Pod, dst: Name, src: str | None = None, timeout_s: float = 1.0) -> dict:
    """One probe from a pod to DST, as the SGs send them: the instance that
    answered, the round trip, and each switch on the forward path with its
    ports and residence time."""
    s = _src_of(net, pod, src)
    t = net.topo
    res = net.run_in(pod, ["-m", "traffic.rmi_client", "--iface", t.intf_name(pod, 0), "--src", s,
                           "--mac", t.mac(pod, 0), "--timeout", str(timeout_s), "--probe",
                           dst, "probe"], timeout=timeout_s + 20)
    try:
        out = json.loads(res.stdout.strip())
    except ValueError:
        raise ActionError(f"probe: traffic.rmi_client failed: {res.stderr[-300:]}") from None
    ids = _switch_names_by_id(t)
    for h in out.get("hops", []):
        h["switch"] = ids.get(h["switch_id"], "?")
    out["ok"] = "error" not in out
    out.update(pod=pod, src=s, dst=dst)
    return out


# -- reads ---------------------------------------------------------------------------------------------
def _name_index(net, switch: str) -> names.NameIndex:
    from topologies.expected import served_prefixes
    idx = names.NameIndex()
    for p in served_prefixes(net.topo):
        idx.add(p)
    for pod in net.topo.pods():
        for p in net.announcements(pod):
            idx.add(p)
    app = net.agents.get(switch)
    if app is not None:
        try:
            with app.admin() as c:
                for lsa in c.state().lsdb:
                    for p in lsa.prefixes:
                        idx.add(p.prefix)
        except Exception:           # the agent may be down: the names we have do
            pass
    return idx


@action
def fib(net, switch: Switch) -> dict:
    """A switch's FIB read back over P4Runtime: each entry's prefix (shown
    as the name that produced its key), next hops and packet counter."""
    from controller.switch.tables import Fib
    from controller.switch.p4rt import SwitchError
    from dmsc.converge import FibReader
    idx = _name_index(net, switch)
    try:
        with FibReader.for_net(net, [switch]) as r:
            f = Fib(r.conns[switch])
            entries, counters = f.read(), f.counters()
    except SwitchError as exc:
        raise ActionError(f"{switch}: {exc}") from None
    rows = []
    for k, route in sorted(entries.items(), key=lambda kv: idx.lookup(*kv[0])):
        rows.append({"prefix": idx.lookup(*k), "key": names.format_key(*k),
                     "action": route.special or None,
                     "next_hops": [{"port": h.port, "mac": h.mac,
                                    "neighbour": net.topo.neighbour_on(switch, h.port)}
                                   for h in sorted(route.hops)],
                     "packets": counters.get(k, (0, 0))[0]})
    return {"switch": switch, "entries": rows}


def _state(net, switch: str):
    """The switch's control state: from its agent or, in the central mode,
    from the central controller's view of it."""
    if getattr(net, "central", None) is not None:
        if not net.central.alive():
            raise ActionError("the central controller is not running (restart_central)")
        try:
            return net.control_state(switch)
        except Exception as exc:            # gRPC errors of the controller's client
            raise ActionError(f"the central controller does not answer: {exc}") from None
    from controller.agent.admin_client import AdminError
    app = _live_agent(net, switch)
    try:
        with app.admin() as c:
            return c.state()
    except AdminError as exc:
        raise ActionError(f"the agent of {switch} does not answer: {exc}") from None


@action
def lsdb(net, switch: Switch) -> dict:
    """A switch's LSDB (one row per LSA) and its neighbours, from its agent
    (or the central controller's view of the switch)."""
    st = _state(net, switch)
    return {"switch": switch,
            "lsas": [{"origin": x.origin, "fragment": x.fragment, "seq": x.seq,
                      "lifetime_s": round(x.lifetime_ms / 1000, 1), "overload": x.overload,
                      "adjacencies": {a.neighbor: a.cost for a in x.adjacencies},
                      "prefixes": [p.prefix for p in x.prefixes]} for x in st.lsdb],
            "neighbours": [{"port": n.port, "router": n.router, "state": n.state,
                            "heard_s_ago": round(n.last_heard_age_s, 3)} for n in st.neighbors]}


@action
def rib(net, switch: Switch) -> dict:
    """A switch's RIB: each prefix, its origins, cost and next hops, from its
    agent (or the central controller's view of the switch)."""
    st = _state(net, switch)
    return {"switch": switch, "spf_runs": st.spf_runs, "fib_version": st.fib_version,
            "routes": [{"prefix": e.prefix, "origins": list(e.origins), "cost": e.cost,
                        "next_hops": [{"port": h.port, "neighbour": h.neighbor}
                                      for h in e.next_hops]} for e in st.rib]}


@action
def policy(net, switch: Switch) -> dict:
    """The SCSC policies in force on a switch (its agent's view)."""
    from controller.agent.admin_client import AdminError
    app = _live_agent(net, switch)
    try:
        with app.admin() as c:
            rep = c.policies()
    except AdminError as exc:
        raise ActionError(f"the agent of {switch} does not answer: {exc}") from None
    return {"switch": switch, "scsc": rep.scsc, "version": rep.version,
            "policies": [{"service": p.dst, "from": p.src, "port": p.port, "mac": p.mac,
                          "instance": p.instance, "expires_in_s": round(p.expires_in_s, 1),
                          "packets": p.packets} for p in rep.policies]}
