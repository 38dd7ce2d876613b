"""Actions by name: the table of every run-time action, their parameters
checked (and converted) against the topology before anything runs, and
:func:`run`. The actions themselves are in the modules beside this one
(dmsc/actions/__init__.py lists them); they register with :func:`action`.
"""
from __future__ import annotations

import inspect
import typing
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

# The control-plane modes a network runs in (DmscNet.mode), and the actions that
# mean nothing in one of them, with the reason: an experiment step is refused for
# them when the file is loaded (dmsc/experiment/spec.py), and run() refuses them
# on a running network of that mode. Every other action works in every mode.
MODES = ("distributed", "central", "mesh")
_AGENTS = "needs the agents, which the {mode} mode does not run"
_SCSC_MESH = ("needs DMSC's SCSC: the mesh has none (its sidecars' health checks and "
              "outlier ejection steer calls instead)")
NOT_IN_MODE: dict[str, dict[str, str]] = {
    "distributed": {
        "kill_central": "needs the central mode", "restart_central": "needs the central mode",
        "kill_controller": "needs a controller: the distributed mode has none (kill_agent "
                           "stops one switch's agent, kill_spa the SPA)",
        "restart_controller": "needs a controller: the distributed mode has none",
    },
    "central": {a: _AGENTS.format(mode="central")
                for a in ("kill_agent", "restart_agent", "policy", "kill_scsc", "restart_scsc")},
    "mesh": {
        **{a: _AGENTS.format(mode="mesh") + " (its control plane is the mesh control plane: "
                                            "kill_controller)"
           for a in ("kill_agent", "restart_agent")},
        **{a: _SCSC_MESH for a in ("policy", "kill_scsc", "restart_scsc")},
        **{a: "reads DMSC's tables: the mesh mode's switches run the IPv4 program"
           for a in ("fib", "lsdb", "rib")},
        "probe": "sends a DMSC probe: the mesh has no probes (HAProxy checks /healthz)",
        "spoof": "forges a DMSC frame's source name: the mesh's calls are HTTP",
        "hijack": "is not supported in the mesh mode yet (the mesh control plane's SPA "
                  "refusals: tests/unit/test_mesh_control.py)",
        "withdraw": "is not supported in the mesh mode yet (stop_pod withdraws all of a "
                    "pod's instances)",
        "churn": "withdraws instances: not supported in the mesh mode yet",
        "kill_central": "needs the central mode: kill_controller stops the mesh control plane",
        "restart_central": "needs the central mode: restart_controller starts the mesh "
                           "control plane",
        "kill_switch": "is not supported in the mesh mode: its IPv4 fabric is re-routed on "
                       "link cuts only (link_down)",
        "restart_switch": "is not supported in the mesh mode: its IPv4 fabric is re-routed "
                          "on link cuts only (link_down)",
    },
}


def refusal(name: str, mode: str) -> str | None:
    """Why action ``name`` means nothing in ``mode`` (None: it works there)."""
    return NOT_IN_MODE.get(mode, {}).get(name.replace("-", "_"))


def modes_of(name: str) -> list[str]:
    """The modes in which action ``name`` works."""
    return [m for m in MODES if refusal(name, m) is None]


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
    mode = getattr(net, "mode", None)
    why = refusal(fn.__name__, mode) if isinstance(mode, str) else None
    if why:
        raise ActionError(f"{fn.__name__} cannot run in the {mode} mode: it {why}")
    checked = check_params(name, params, net.topo)
    return fn(net, **checked)


# -- the parts of a running network an action needs, or ActionError --------------------
def agent_of(net, switch: str):
    app = net.agents.get(switch)
    if app is None:
        raise ActionError(f"{switch} has no agent in this network (central mode or static "
                          f"FIBs?); agents: {', '.join(net.agents) or 'none'}")
    return app


def live_agent_of(net, switch: str):
    app = agent_of(net, switch)
    if not app.alive():
        raise ActionError(f"the agent of {switch} is not running (restart_agent starts it)")
    return app
