"""The layout's promises, checked from the source (AST), so they stay true.

Imports run one way (README, "Layout"):

    traffic.wire  <-  topology model  <-  control plane  <-  emulation  <-  tools
                  <-  pods (traffic.pod, client, identity, announce)

The centralized baseline (controller.central) sits beside the agents in the
control plane: it may use their code (the gateway duties, SPF), but nothing
else in the control plane imports it (DMSC's distributed mode never depends
on the baseline it is measured against).

The emulation may use traffic.identity (it makes the pods' keys).

Every import statement counts, function-local ones included.
"""
import ast
import subprocess
import sys

import pytest

from tests.conftest import ROOT

WIRE = "traffic.wire"
MODEL = ("topologies.topo", "topologies.generate", "topologies.expected")
PODS = ("traffic.pod", "traffic.client", "traffic.identity", "traffic.announce")
EMU = "topologies.emu"
TOOLS = "controller.tools"
CENTRAL = "controller.central"   # the centralized baseline: nothing of DMSC's own depends on it

# layer -> what it may import of ours (prefixes)
ALLOWED = {
    "root": (),
    "wire": (WIRE,),
    "model": (WIRE + ".names", WIRE + ".defs", *MODEL),
    "pods": (WIRE, *PODS),
    "control": (WIRE, *MODEL, "controller"),
    "central": (WIRE, *MODEL, "controller"),
    "emulation": (WIRE, *MODEL, "controller", EMU, "traffic.identity"),
    "tools": (WIRE, *MODEL, *PODS, "controller", EMU, "topologies"),
}
NOT_EVEN_IF_PREFIX = {"control": (TOOLS, CENTRAL), "central": (TOOLS,), "emulation": (TOOLS,)}
OURS = ("controller", "topologies", "traffic")


def layer_of(module: str) -> str | None:
    if module in OURS:
        return "root"              # the top-level packages' maps import nothing
    if module.startswith(WIRE):
        return "wire"
    if module.startswith(MODEL):
        return "model"
    if module.startswith(PODS):
        return "pods"
    if module.startswith(TOOLS):
        return "tools"
    if module.startswith(CENTRAL):
        return "central"
    if module.startswith("controller"):
        return "control"
    if module.startswith(EMU):
        return "emulation"
    return None


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


def violations():
    out = []
    for module, path in our_modules():
        layer = layer_of(module)
        assert layer is not None, f"{module} belongs to no layer: add it to the layout"
        for line, imported in imports_of(path):
            if not imported.startswith(OURS):
                continue
            ok = imported.startswith(ALLOWED[layer]) and \
                not imported.startswith(NOT_EVEN_IF_PREFIX.get(layer, ()))
            if not ok:
                out.append(f"{path.relative_to(ROOT)}:{line}: {layer} imports {imported}")
    return out


def test_imports_run_one_way():
    assert violations() == []


def test_the_check_catches_a_wrong_way_import(tmp_path, monkeypatch):
    """The rule bites: a control-plane module importing the emulation, or the
    wire format importing the control plane, is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from topologies.emu.net import DmscNet\n")
    imported = [m for _l, m in imports_of(bad)]
    assert imported == ["topologies.emu.net.DmscNet"]
    assert not imported[0].startswith(ALLOWED["control"])
    assert not "controller.switch.p4rt".startswith(ALLOWED["wire"])
    assert not "topologies.emu.apps".startswith(ALLOWED["model"])
    central = [m for _l, m in imports_of(bad)]
    assert not central[0].startswith(ALLOWED["central"])       # the central mode neither
    assert "controller.central.view".startswith(NOT_EVEN_IF_PREFIX["control"])  # agents never


@pytest.mark.parametrize("module", ["controller.agent.process", "controller.routing.router",
                                    "traffic.wire.codec", "controller.central.process"])
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
