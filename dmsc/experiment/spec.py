"""Experiment files: read, check every field, resolve.

An experiment file (YAML, ``experiments/*.yaml``; docs/experiments.md lists
every field) names a topology, the control-plane mode, timed steps and what
to record. The file is composed into PyYAML's node tree first, so every error
names the line and the field (``experiments/x.yaml, line 12, steps[2].a: no
node 'sg9'; nodes: ...``); every key is checked, unknown ones too, and the
steps' parameters are checked by the same code that runs them
(:func:`dmsc.actions.check_params`) against every topology the
experiment uses, before any network starts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from controller.switch.artifacts import REPO_ROOT
from dmsc import actions
from topologies.generate import from_spec
from topologies.topo import Topology, TopologyError
from traffic import callgraph
from traffic.wire import names
from traffic.yaml_doc import FileError, YamlDoc

MODES = actions.MODES            # distributed, central, mesh (docs/mesh.md)
BOTH = ("distributed", "central")   # ``mode: both``, ``--both``
MESH_TIMEOUT_MS = 1000           # the sidecars' per-try time-out (controller/mesh/haproxy.Policy)
TRAFFIC = "traffic"              # the one step that is not an action: a load that runs on
MAX_DURATION_S = 3600.0
MAX_RATE = 1000.0                # calls per second per flow (a pod's load loop is one thread)
MAX_REPEAT = 20


class ExperimentError(FileError):
    """A bad experiment file: the message names the file, the line and the field."""


@dataclass
class Step:
    at: float                    # seconds after the network is up and converged
    do: str                      # an action of dmsc.actions, or "traffic"
    params: dict
    line: int
    only: tuple[str, ...] | None = None      # run only in these modes

    def label(self) -> str:
        if self.do == TRAFFIC:
            return f"traffic {self.params['pod']}->{self.params['dst']} " \
                   f"{self.params['rate']:g}/s" \
                   + (" closed loop" if self.params.get("loop") == "closed" else "")
        args = " ".join(str(v) for k, v in self.params.items()
                        if k in ("a", "b", "switch", "pod", "prefix", "dst"))
        return f"{self.do} {args}".strip()

    def as_dict(self) -> dict:
        d = {"at": self.at, "do": self.do, **self.params}
        if self.only:
            d["only"] = ",".join(self.only)
        return d


@dataclass
class Experiment:
    name: str
    source: str
    description: str
    topologies: list[str]        # one, or several for a sweep
    modes: list[str]
    duration: float
    repeat: int
    network: dict
    steps: list[Step]
    record: dict
    topos: dict = field(default_factory=dict)     # spec -> Topology
    application: str | None = None   # an application file (traffic/callgraph.py), as given
    app_path: Path | None = None     # ... resolved

    def steps_for(self, mode: str) -> list[Step]:
        return [s for s in self.steps if s.only is None or mode in s.only]

    def network_for(self, mode: str) -> dict:
        """The network settings of a run in ``mode``: ``probe_ms`` given per
        mode ({distributed: 100}) resolved (0 where not given)."""
        out = dict(self.network)
        p = out["probe_ms"]
        out["probe_ms"] = p.get(mode, 0) if isinstance(p, dict) else p
        return out

    def resolved(self) -> dict:
        """The experiment as it runs: every default filled in, times in seconds."""
        return {"name": self.name, "source": self.source, "description": self.description,
                "topology": self.topologies if len(self.topologies) > 1 else self.topologies[0],
                "mode": self.modes if len(self.modes) > 1 else self.modes[0],
                **({"application": self.application} if self.application else {}),
                "duration": self.duration, "repeat": self.repeat, "network": dict(self.network),
                "record": dict(self.record), "steps": [s.as_dict() for s in self.steps]}


# -- values -----------------------------------------------------------------------------
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|min)?\s*$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:/\s*s)?\s*$")


def parse_duration(value) -> float:
    """Seconds from ``5s``, ``500ms``, ``2m`` or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"a duration such as 5s or 500ms, not {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"a duration must not be negative, not {value!r}")
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"a duration such as 5s or 500ms, not {value!r}")
    n = float(m.group(1))
    return {"ms": n / 1000, "s": n, None: n, "m": n * 60, "min": n * 60}[m.group(2)]


def parse_rate(value) -> float:
    """Calls per second from ``50/s`` or a number."""
    if isinstance(value, bool):
        raise ValueError(f"a rate such as 50/s, not {value!r}")
    if isinstance(value, (int, float)):
        n = float(value)
    else:
        m = _RATE.match(str(value))
        if not m:
            raise ValueError(f"a rate such as 50/s, not {value!r}")
        n = float(m.group(1))
    if not 0 < n <= MAX_RATE:
        raise ValueError(f"a rate above 0 and at most {MAX_RATE:g}/s, not {value!r}")
    return n


class _Doc(YamlDoc):
    """The node tree of one experiment file and how to turn nodes into checked values."""

    error = ExperimentError
    kind = "an experiment"

    def scalar(self, node, fld: str, conv, what: str):
        if not isinstance(node, yaml.ScalarNode):
            raise self.err(node, fld, f"must be {what}")
        v = self.value(node)
        try:
            return conv(v)
        except (ValueError, TypeError) as exc:
            raise self.err(node, fld, str(exc)) from None

    def string(self, node, fld: str) -> str:
        def conv(v):
            if not isinstance(v, str) or not v.strip():
                raise ValueError(f"must be a non-empty string, not {v!r}")
            return v
        return self.scalar(node, fld, conv, "a string")

    def integer(self, node, fld: str, lo: int, hi: int | None = None) -> int:
        def conv(v):
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"must be an integer, not {v!r}")
            if v < lo or (hi is not None and v > hi):
                raise ValueError(f"must be between {lo} and {hi}, not {v}" if hi is not None
                                 else f"must be at least {lo}, not {v}")
            return v
        return self.scalar(node, fld, conv, "an integer")

    def boolean(self, node, fld: str) -> bool:
        def conv(v):
            if not isinstance(v, bool):
                raise ValueError(f"must be true or false, not {v!r}")
            return v
        return self.scalar(node, fld, conv, "true or false")


# -- the file ------------------------------------------------------------------------------
TOP = {"name": False, "description": False, "topology": True, "application": False,
       "mode": False, "duration": True, "repeat": False, "network": False, "steps": False,
       "record": False}
NETWORK = {"probe_ms": False, "hello_ms": False, "lease_s": False, "mesh_timeout_ms": False,
           "bmv2": False}
RECORD = {"calls": False, "fib": False, "control": False, "resources": False, "sample": False}
TRAFFIC_PARAMS = {"pod": True, "dst": True, "rate": True, "duration": True, "src": False,
                  "method": False, "timeout": False, "loop": False, "arrivals": False,
                  "seed": False}
LOOPS = ("open", "closed")                 # traffic.loadgen: open (on a schedule) or closed
ARRIVALS = ("constant", "poisson")


def load_topology(spec: str, base: Path) -> Topology:
    """A topology file (relative to the experiment file, then to the
    repository) or a generator spec such as ``ring:16``."""
    for cand in (base / spec, REPO_ROOT / spec):
        if cand.is_file():
            return Topology.load(cand)
    if ":" in spec:
        try:
            return from_spec(spec)
        except ValueError as exc:
            raise TopologyError(f"not a file, and not a generator spec (ring:16, grid:4x4, "
                                f"fat-tree:4, line:8, random:32, "
                                f"fig2:pods=64,instances=1000,services=100): {exc}") from None
    raise TopologyError(f"no topology file {spec!r} (looked in {base} and {REPO_ROOT})")


def parse_modes(value) -> list[str]:
    """Modes from ``distributed``, ``both`` (distributed and central), a comma
    list ``distributed,central,mesh`` or a YAML list; ValueError names the bad one."""
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    else:
        raise ValueError(f"a mode or a list of modes, not {value!r}")
    out: list[str] = []
    for m in items:
        if not isinstance(m, str) or not m:
            raise ValueError(f"a mode or a list of modes, not {value!r}")
        for x in (BOTH if m == "both" else (m,)):
            if x not in MODES:
                raise ValueError(f"one of {', '.join(MODES)}, both, or a comma list of "
                                 f"them; not {m!r}")
            if x in out:
                raise ValueError(f"{x} is listed twice")
            out.append(x)
    if not out:
        raise ValueError("no mode given")
    return out


def load(path, *, modes: list[str] | None = None) -> Experiment:
    """Read and check an experiment file; ExperimentError names the line and
    field of the first problem. ``modes`` overrides the file's mode."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ExperimentError(str(path), None, "", f"cannot read: {exc.strerror}") from None
    return loads(text, source=str(path), base=path.parent,
                 default_name=path.stem, modes=modes)


def loads(text: str, *, source: str = "<experiment>", base: Path | None = None,
          default_name: str = "experiment", modes: list[str] | None = None) -> Experiment:
    base = base or Path.cwd()
    doc = _Doc(source)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ExperimentError(source, mark.line + 1 if mark else None, "",
                              f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if root is None:
        raise ExperimentError(source, None, "", "the file is empty")
    top = doc.mapping(root, "", TOP)

    name = doc.string(top["name"][1], "name") if "name" in top else default_name
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise doc.err(top["name"][1], "name", "letters, digits, '.', '_' and '-' only "
                                              "(it names the results folder)")
    description = doc.string(top["description"][1], "description") \
        if "description" in top else ""

    # topology: one spec, or a list (a sweep)
    tnode = top["topology"][1]
    if isinstance(tnode, yaml.SequenceNode):
        if not tnode.value:
            raise doc.err(tnode, "topology", "an empty list")
        tspecs = [(doc.string(n, f"topology[{i}]"), n, f"topology[{i}]")
                  for i, n in enumerate(tnode.value)]
    else:
        tspecs = [(doc.string(tnode, "topology"), tnode, "topology")]
    topos = {}
    for spec, node, fld in tspecs:
        if spec in topos:
            raise doc.err(node, fld, f"{spec} is listed twice")
        try:
            topos[spec] = load_topology(spec, base)
        except (TopologyError, OSError, ValueError) as exc:
            raise doc.err(node, fld, str(exc)) from None

    application = app_path = None
    if "application" in top:
        anode = top["application"][1]
        application = doc.string(anode, "application")
        app_path = next((c for c in (base / application, REPO_ROOT / application)
                         if c.is_file()), None)
        if app_path is None:
            raise doc.err(anode, "application", f"no application file {application!r} "
                                                f"(looked in {base} and {REPO_ROOT})")
        try:
            app = callgraph.load(app_path)
        except callgraph.AppError as exc:
            raise doc.err(anode, "application", str(exc)) from None
        for spec, topo in topos.items():
            served = {app.service_of(i).key for p in topo.pods() for i in topo.instances(p)
                      if app.service_of(i) is not None}
            missing = [k for k in app.services if k not in served]
            if missing:
                raise doc.err(anode, "application", f"no instance of {', '.join(missing)} "
                                                    f"in topology {spec}")

    # mode
    if "mode" in top:
        mnode = top["mode"][1]
        try:
            file_modes = parse_modes(doc.value(mnode))
        except ValueError as exc:
            raise doc.err(mnode, "mode", str(exc)) from None
    else:
        mnode, file_modes = None, ["distributed"]
    try:
        run_modes = parse_modes(list(modes)) if modes else file_modes
    except ValueError as exc:
        raise ExperimentError(source, None, "mode", str(exc)) from None

    duration = doc.scalar(top["duration"][1], "duration", parse_duration, "a duration")
    if not 0 < duration <= MAX_DURATION_S:
        raise doc.err(top["duration"][1], "duration",
                      f"must be above 0 and at most {MAX_DURATION_S:g}s")
    repeat = doc.integer(top["repeat"][1], "repeat", 1, MAX_REPEAT) if "repeat" in top else 1

    network = {"probe_ms": 0, "hello_ms": None, "lease_s": 6.0, "bmv2": "default"}
    if "network" in top:
        nm = doc.mapping(top["network"][1], "network", NETWORK)
        if "probe_ms" in nm:
            network["probe_ms"] = _probe_ms(doc, nm["probe_ms"][1], run_modes)
        if "hello_ms" in nm:
            network["hello_ms"] = doc.integer(nm["hello_ms"][1], "network.hello_ms", 10, 10000)
        if "lease_s" in nm:
            network["lease_s"] = doc.scalar(nm["lease_s"][1], "network.lease_s",
                                            parse_duration, "a duration")
            if network["lease_s"] < 1:
                raise doc.err(nm["lease_s"][1], "network.lease_s", "must be at least 1s")
        if "bmv2" in nm:
            build = doc.string(nm["bmv2"][1], "network.bmv2")
            if build not in ("default", "perf"):
                raise doc.err(nm["bmv2"][1], "network.bmv2",
                              f"must be default or perf (the BMv2 build: docs/dataplane.md), "
                              f"not {build!r}")
            network["bmv2"] = build
        if "mesh_timeout_ms" in nm:
            network["mesh_timeout_ms"] = doc.integer(nm["mesh_timeout_ms"][1],
                                                     "network.mesh_timeout_ms", 10, 60000)
        probe = network["probe_ms"]
        for m in ("central", "mesh"):
            if isinstance(probe, int) and probe and m in run_modes:
                raise doc.err(nm["probe_ms"][1], "network.probe_ms",
                              f"probes and the SCSC need the agents: the {m} mode runs "
                              f"without them (set mode: distributed, drop probe_ms, or give "
                              f"it for the distributed runs only: probe_ms: "
                              f"{{distributed: {probe}}})")
    if "mesh" in run_modes:
        network.setdefault("mesh_timeout_ms", MESH_TIMEOUT_MS)

    record = {"calls": True, "fib": True, "control": True, "resources": True, "sample": 0.5}
    if "record" in top:
        rm = doc.mapping(top["record"][1], "record", RECORD)
        for k in ("calls", "fib", "control", "resources"):
            if k in rm:
                record[k] = doc.boolean(rm[k][1], f"record.{k}")
        if "sample" in rm:
            record["sample"] = doc.scalar(rm["sample"][1], "record.sample", parse_duration,
                                          "a duration")
            if not 0.1 <= record["sample"] <= 60:
                raise doc.err(rm["sample"][1], "record.sample", "must be between 100ms and 60s")

    steps: list[Step] = []
    if "steps" in top:
        snode = top["steps"][1]
        if not isinstance(snode, yaml.SequenceNode):
            raise doc.err(snode, "steps", "must be a list of steps (- at: 5s, do: ...)")
        for i, n in enumerate(snode.value):
            steps.append(_step(doc, n, f"steps[{i}]", topos, duration, network, run_modes))
    steps.sort(key=lambda s: s.at)       # stable: equal times keep the file's order
    return Experiment(name=name, source=source, description=description,
                      topologies=[s for s, _n, _f in tspecs], modes=run_modes,
                      duration=duration, repeat=repeat, network=network, steps=steps,
                      record=record, topos=topos, application=application,
                      app_path=app_path)


def _step(doc: _Doc, node, fld: str, topos: dict, duration: float, network: dict,
          modes: list[str]) -> Step:
    if not isinstance(node, yaml.MappingNode):
        raise doc.err(node, fld, "a step must be a mapping (at: 5s, do: ...)")
    m = doc.mapping(node, fld, None)
    for req in ("at", "do"):
        if req not in m:
            raise doc.err(node, f"{fld}.{req}", "is required")
    at = doc.scalar(m["at"][1], f"{fld}.at", parse_duration, "a time such as 5s")
    if at > duration:
        raise doc.err(m["at"][1], f"{fld}.at", f"{at:g}s is after the end of the experiment "
                                               f"(duration {duration:g}s)")
    do = doc.string(m["do"][1], f"{fld}.do").replace("-", "_")
    only = None
    if "only" in m:
        try:
            only = tuple(parse_modes(doc.value(m["only"][1])))
        except ValueError as exc:
            raise doc.err(m["only"][1], f"{fld}.only", str(exc)) from None
    pnodes = {k: v for k, v in m.items() if k not in ("at", "do", "only")}
    step_modes = list(only) if only else modes
    if do == TRAFFIC:
        params = _traffic(doc, node, fld, pnodes, topos, duration, at)
    else:
        if do not in actions.ACTIONS:
            raise doc.err(m["do"][1], f"{fld}.do", f"no action {do!r}; one of: {TRAFFIC}, "
                                                   f"{', '.join(sorted(actions.ACTIONS))}")
        raw = {k: doc.value(v) for k, (_k, v) in pnodes.items()}
        params = None
        for spec, topo in topos.items():
            try:
                params = actions.check_params(do, raw, topo)
            except actions.ActionError as exc:
                bad = pnodes.get(exc.param, (None, None))
                node_at = bad[1] if bad[1] is not None else node
                suffix = f" (topology {spec})" if len(topos) > 1 else ""
                raise doc.err(node_at, f"{fld}.{exc.param}" if exc.param else fld,
                              f"{exc}{suffix}") from None
        _mode_fits(doc, m["do"][1], f"{fld}.do", do, step_modes, network)
    return Step(at=at, do=do, params=params, line=node.start_mark.line + 1, only=only)


def _mode_fits(doc, node, fld, do, modes, network) -> None:
    """Steps that mean nothing in a mode of the run (an action of
    dmsc.actions.NOT_IN_MODE: one that needs a process the mode does not run)
    are refused here, naming the step and the mode, not skipped or failed
    halfway through a run (``only:`` restricts a step to some modes)."""
    for mode in modes:
        why = actions.refusal(do, mode)
        if why:
            ok = actions.modes_of(do)
            raise doc.err(node, fld, f"{do} cannot run in the {mode} mode: it {why}"
                                     + (f" (add `only: {','.join(ok)}` to the step)" if ok
                                        else ""))
        probe = network["probe_ms"]
        if do in ("kill_scsc", "restart_scsc") and not (
                probe.get(mode) if isinstance(probe, dict) else probe):
            raise doc.err(node, fld, f"{do} needs the SCSC: set network.probe_ms"
                                     + (f" for the {mode} mode" if isinstance(probe, dict)
                                        else ""))


def _probe_ms(doc, node, modes) -> int | dict:
    """``probe_ms: 100`` (every run) or per mode ``{distributed: 100}`` (the
    others 0: the central and mesh modes have no SCSC)."""
    if isinstance(node, yaml.MappingNode):
        out = {}
        for k, v in doc.mapping(node, "network.probe_ms", None).items():
            if k not in MODES:
                raise doc.err(v[0], f"network.probe_ms.{k}", f"one of {', '.join(MODES)}; "
                                                             f"not {k!r}")
            out[k] = doc.integer(v[1], f"network.probe_ms.{k}", 0, 10000)
            if out[k] and k != "distributed":
                raise doc.err(v[1], f"network.probe_ms.{k}", f"probes and the SCSC need "
                                                             f"the agents: the {k} mode "
                                                             f"runs without them")
        return out
    return doc.integer(node, "network.probe_ms", 0, 10000)


def _traffic(doc, node, fld, pnodes, topos, duration, at) -> dict:
    for k, (kn, _v) in pnodes.items():
        if k not in TRAFFIC_PARAMS:
            raise doc.err(kn, f"{fld}.{k}", f"unknown field; traffic takes: "
                                            f"{', '.join(TRAFFIC_PARAMS)}")
    for k, req in TRAFFIC_PARAMS.items():
        if req and k not in pnodes:
            raise doc.err(node, f"{fld}.{k}", "is required for traffic")
    p = {}
    pod = doc.string(pnodes["pod"][1], f"{fld}.pod")
    for spec, topo in topos.items():
        if pod not in topo.pods():
            raise doc.err(pnodes["pod"][1], f"{fld}.pod", f"no pod {pod!r}"
                          + (f" in {spec}" if len(topos) > 1 else "")
                          + f"; pods: {', '.join(topo.pods())}")
    p["pod"] = pod

    def name(v):
        return names.normalize(v)
    p["dst"] = doc.scalar(pnodes["dst"][1], f"{fld}.dst", name, "a name such as /B")
    p["rate"] = doc.scalar(pnodes["rate"][1], f"{fld}.rate", parse_rate, "a rate such as 50/s")
    p["duration"] = doc.scalar(pnodes["duration"][1], f"{fld}.duration", parse_duration,
                               "a duration")
    if p["duration"] <= 0:
        raise doc.err(pnodes["duration"][1], f"{fld}.duration", "must be above 0")
    if at + p["duration"] > duration + 1e-9:
        raise doc.err(pnodes["duration"][1], f"{fld}.duration",
                      f"the traffic would run until {at + p['duration']:g}s, after the end "
                      f"of the experiment ({duration:g}s)")
    p["src"] = None
    if "src" in pnodes:
        p["src"] = doc.scalar(pnodes["src"][1], f"{fld}.src", name, "a name such as /A/1")
        for topo in topos.values():
            if p["src"] not in topo.instances(pod):
                raise doc.err(pnodes["src"][1], f"{fld}.src", f"{p['src']} is not an "
                              f"instance of {pod} ({', '.join(topo.instances(pod))})")
    p["method"] = doc.string(pnodes["method"][1], f"{fld}.method") \
        if "method" in pnodes else "echo"
    p["timeout"] = doc.scalar(pnodes["timeout"][1], f"{fld}.timeout", parse_duration,
                              "a duration") if "timeout" in pnodes else 0.5
    if not 0.01 <= p["timeout"] <= 10:
        raise doc.err(pnodes["timeout"][1], f"{fld}.timeout", "must be between 10ms and 10s")
    for k, choices in (("loop", LOOPS), ("arrivals", ARRIVALS)):
        p[k] = choices[0]
        if k in pnodes:
            p[k] = doc.string(pnodes[k][1], f"{fld}.{k}")
            if p[k] not in choices:
                raise doc.err(pnodes[k][1], f"{fld}.{k}",
                              f"one of {', '.join(choices)}; not {p[k]!r}")
    if p["loop"] == "closed" and p["arrivals"] != "constant":
        raise doc.err(pnodes["arrivals"][1], f"{fld}.arrivals",
                      "a closed loop sends the next call when the last returns: "
                      "arrivals apply to the open loop only")
    p["seed"] = doc.integer(pnodes["seed"][1], f"{fld}.seed", 0, 2**31 - 1) \
        if "seed" in pnodes else 1
    return p
