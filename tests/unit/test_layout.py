"""The layout's promises, checked from the source (AST), so they stay true.

Imports run one way (docs/architecture.md):

    traffic.wire  <-  topology model  <-  control plane  <-  emulation  <-  dmsc (tools)
                  <-  pods (traffic.*)  <-------------------'

Each layer may import the layers listed for it in ``MAY_IMPORT`` and nothing else
of ours. The centralized baseline (controller.central) sits above the agents: it
may use their code (the gateway duties, SPF), but nothing else in the control
plane imports it (DMSC's distributed mode never depends on the baseline it is
measured against). The service-mesh baseline (controller.mesh) is the same:
it may use the control plane's code, nothing in the control plane imports it,
and it does not import the central baseline either.

Every import statement counts, function-local ones included.
"""
import ast
import subprocess
import sys

import networkx as nx
import pytest

from tests.conftest import ROOT

# a module belongs to the layer of the longest prefix that names it
LAYER_OF_PREFIX = {
    "traffic.wire": "wire",
    "topologies": "model",              # topologies.topo, .generate, .expected
    "traffic": "pods",                  # the pods' programs: pod, client, identity, tools
    "controller": "control",
    "controller.central": "central",
    "controller.mesh": "mesh",          # the service-mesh baseline, beside the central one
    "topologies.emu": "emulation",
    "dmsc": "tools",
}
MAY_IMPORT = {
    "wire": {"wire"},
    "model": {"wire", "model"},
    "pods": {"wire", "pods"},
    "control": {"wire", "model", "control"},
    "central": {"wire", "model", "control", "central"},
    # the sidecar agent runs in the pod and signs its registrations with the
    # pod's key (traffic.identity), as the DMSC pod signs its announcements
    "mesh": {"wire", "model", "pods", "control", "mesh"},
    "emulation": {"wire", "model", "pods", "control", "central", "mesh", "emulation"},
    "tools": {"wire", "model", "pods", "control", "central", "mesh", "emulation", "tools"},
}
OURS = ("controller", "topologies", "traffic", "dmsc")


def layer_of(module: str) -> str | None:
    best = max((p for p in LAYER_OF_PREFIX if module == p or module.startswith(p + ".")),
               key=len, default=None)
    return LAYER_OF_PREFIX[best] if best else None


def our_modules():
    for pkg in OURS:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


def imports_of(path):
    """(line, imported module) for every import statement, nested ones too."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:      # `from pkg import module` imports pkg.module
                yield node.lineno, f"{node.module}.{a.name}"


def violations(modules=None):
    out = []
    for module, path in (our_modules() if modules is None else modules):
        layer = layer_of(module)
        assert layer is not None, f"{module} belongs to no layer: add it to the layout"
        for line, imported in imports_of(path):
            if not imported.startswith(OURS):
                continue
            if layer_of(imported) not in MAY_IMPORT[layer]:
                out.append(f"{path.name}:{line}: {layer} imports {imported}")
    return out


def test_imports_run_one_way():
    assert violations() == []


@pytest.mark.parametrize("module, imports, wrong", [
    ("controller.agent.fake", "from topologies.emu.net import DmscNet", True),    # control -> emu
    ("controller.agent.fake", "import controller.central.network_view", True),   # agents -> baseline
    ("controller.agent.fake", "from dmsc import cli", True),                      # control -> tools
    ("traffic.wire.fake", "from controller.switch import p4rt", True),           # wire -> control
    ("topologies.fake", "from topologies.emu import apps", True),                # model -> emu
    ("traffic.fake", "from controller.spa import spa_client", True),             # pods -> control
    ("topologies.emu.fake", "from dmsc.live_view import serve", True),           # emu -> tools
    ("controller.central.fake", "from controller.routing import spf", False),
    ("controller.agent.fake", "from controller.mesh import ipv4_routes", True),    # agents -> mesh
    ("controller.mesh.fake", "from controller.central import network_view", True),  # mesh -> central
    ("topologies.emu.fake", "from traffic.identity import Identity", False),
    ("dmsc.fake", "from topologies.emu.net import DmscNet", False),
])
def test_the_check_catches_a_wrong_way_import(tmp_path, module, imports, wrong):
    """The checker itself, run on a module written for the test: a wrong-way
    import (even inside a function) is reported, a right-way one is not."""
    bad = tmp_path / "fake.py"
    bad.write_text(f"def f():\n    {imports}\n")
    found = violations([(module, bad)])
    assert bool(found) == wrong, found


def package_of(module: str) -> str:
    """A module's package at two levels: controller.agent.gateway -> controller.agent,
    controller.keys -> controller.keys, dmsc.experiment.runner -> dmsc.experiment."""
    return ".".join(module.split(".")[:2])


def package_cycles(modules=None) -> list[str]:
    """The cycles in the graph of our packages at two levels (controller.agent,
    controller.scsc, controller.routing, topologies.emu, dmsc.experiment,
    traffic.wire, ...), an edge for every import of one from a module of the
    other (function-local ones too); each cycle with an import behind each step."""
    g = nx.DiGraph()
    for module, path in (our_modules() if modules is None else modules):
        for line, imported in imports_of(path):
            a, b = package_of(module), package_of(imported)
            if imported.startswith(OURS) and a != b and not g.has_edge(a, b):
                g.add_edge(a, b, where=f"{path.name}:{line}")
    out = []
    for cycle in nx.simple_cycles(g):
        first = cycle.index(min(cycle))              # the same text however it is found
        cycle = cycle[first:] + cycle[:first]
        steps = zip(cycle, cycle[1:] + cycle[:1])
        out.append(" -> ".join(f"{a} ({g.edges[a, b]['where']})" for a, b in steps))
    return sorted(out)


def test_no_package_imports_one_that_imports_it_back():
    """Packages import each other one way, within a layer too: a cycle (agent
    -> scsc -> agent) means a shared piece belongs lower, where both may use it."""
    assert package_cycles() == []


@pytest.mark.parametrize("back, cycle", [("from controller.agent import fake_a", True),
                                         ("from controller.routing import spf", False)])
def test_the_cycle_check_reports_a_written_cycle(tmp_path, back, cycle):
    """The cycle checker on two modules written for the test: agent -> scsc, and
    scsc back to the agent (even inside a function) or elsewhere."""
    a, b = tmp_path / "fake_a.py", tmp_path / "fake_b.py"
    a.write_text("from controller.scsc import fake_b\n")
    b.write_text(f"def f():\n    {back}\n")
    found = package_cycles([("controller.agent.fake_a", a), ("controller.scsc.fake_b", b)])
    assert found == (["controller.agent (fake_a.py:1) -> controller.scsc (fake_b.py:2)"]
                     if cycle else []), found


@pytest.mark.parametrize("module", ["controller.agent.agent_command", "controller.routing.router",
                                    "traffic.wire.codec", "controller.central.central_controller"])
def test_agents_and_the_codec_do_not_load_scapy(module):
    """Agents use the struct codec only: importing them loads no Scapy (a
    Python process per switch pays for every import)."""
    code = f"import sys, {module}; print('scapy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"


def test_no_name_is_spelled_twice_for_the_reserved_prefix():
    """Reserved switch names come from names.switch_name(), never a literal."""
    offenders = []
    for module, path in our_modules():
        if module == "traffic.wire.names":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and node.value.startswith("/dmsc/"):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
