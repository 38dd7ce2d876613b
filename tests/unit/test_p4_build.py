"""The committed P4 outputs and the generated modules are current, and the
code uses only P4Info names that exist.

With p4c on PATH, p4src/ is compiled into a temporary directory and the
result must equal p4src/build/ (the committed BMv2 JSON and P4Info) and
benchmarks/build/. Without p4c that part skips, naming p4c. The generated
controller/switch/p4names.py and traffic/wire/defs.py are always regenerated
in memory from the committed P4Info and define.p4 and compared; and every
``N.<NAME>`` the source code uses is looked up in the P4Info itself (not in
the generated module), so a renamed table fails here, not in a running agent.
"""
import ast
import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from controller.switch.artifacts import P4INFO
from controller.switch.p4rt import load_p4info
from tests.conftest import ROOT

def _working_p4c() -> str | None:
    """p4c when it is whole: the driver answers, its bmv2 back end and its
    p4include files (core.p4, v1model.p4) are installed. A half-done install
    is a machine problem, not a stale output: the tests skip and say so."""
    p4c = shutil.which("p4c")
    if p4c is None or shutil.which("p4c-bm2-ss") is None:
        return None
    include = Path(p4c).resolve().parent.parent / "share" / "p4c" / "p4include"
    if not all((include / f).is_file() for f in ("core.p4", "v1model.p4")):
        return None
    try:
        ok = subprocess.run([p4c, "--version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return None
    return p4c if ok else None


P4C = _working_p4c()


def _gen_names():
    spec = importlib.util.spec_from_file_location("gen_names", ROOT / "scripts" / "gen_names.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def compile_to(src, outdir):
    outdir.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["p4c", "--target", "bmv2", "--arch", "v1model", "--std", "p4-16",
                          "-o", str(outdir), "--p4runtime-files", str(outdir / "out.p4info.txtpb"),
                          str(src.relative_to(ROOT))], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return outdir / (src.stem + ".json"), outdir / "out.p4info.txtpb"


@pytest.mark.skipif(P4C is None, reason="optional: needs a whole p4c (driver, p4c-bm2-ss, p4include) "
                                        "on PATH to recompile p4src/")
@pytest.mark.parametrize("src, json_out, p4info_out", [
    ("p4src/main.p4", "p4src/build/dmsc.json", "p4src/build/dmsc.p4info.txtpb"),
    ("p4src/mesh/ipv4.p4", "p4src/build/mesh_ipv4.json", "p4src/build/mesh_ipv4.p4info.txtpb"),
    ("benchmarks/ipv4_lpm.p4", "benchmarks/build/ipv4_lpm.json",
     "benchmarks/build/ipv4_lpm.p4info.txtpb"),
    ("benchmarks/trivial.p4", "benchmarks/build/trivial.json",
     "benchmarks/build/trivial.p4info.txtpb"),
])
def test_committed_p4_outputs_match_the_source(tmp_path, src, json_out, p4info_out):
    j, info = compile_to(ROOT / src, tmp_path)

    def program(path):          # "program" names p4c's scratch file: not content
        d = json.loads(path.read_text())
        d.pop("program", None)
        return d
    assert program(j) == program(ROOT / json_out), f"{json_out} is stale: run `make p4`"
    assert info.read_text() == (ROOT / p4info_out).read_text(), \
        f"{p4info_out} is stale: run `make p4`"


def test_generated_modules_match_p4info_and_define_p4():
    for path, text in _gen_names().outputs().items():
        assert path.read_text() == text, f"{path} is stale: run `make p4names`"


def test_generator_output_follows_its_sources(tmp_path):
    """The generator reads its inputs: a renamed table and a changed constant
    show up in what it writes (so the staleness check above can fail)."""
    gen = _gen_names()
    info = P4INFO.read_text().replace("DmscIngress.fib.fib\"", "DmscIngress.fib.routes\"")
    (tmp_path / "p4info.txtpb").write_text(info)
    names_text = gen.generate_p4names(tmp_path / "p4info.txtpb")
    assert 'TABLE_ROUTES = "DmscIngress.fib.routes"' in names_text
    assert "TABLE_FIB =" not in names_text
    define = (ROOT / "p4src" / "include" / "define.p4").read_text()
    (tmp_path / "define.p4").write_text(define.replace("TYPE_HELLO         = 7", "TYPE_HELLO         = 17"))
    defs_text = gen.generate_defs(tmp_path / "define.p4")
    assert "TYPE_HELLO = 17" in defs_text and 'TYPE_HELLO: "hello"' in defs_text


def _p4names_uses():
    """(file, line, constant) for every attribute read on the p4names module."""
    uses = []
    for path in sorted(ROOT.glob("**/*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0].startswith(".") or rel.parts[0] == "build" or rel.name == "p4names.py":
            continue
        tree = ast.parse(path.read_text())
        aliases = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                   for a in node.names if a.name == "p4names"}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases):
                uses.append((str(rel), node.lineno, node.attr))
    return uses


def test_every_p4info_name_the_code_uses_exists_in_the_p4info():
    info = load_p4info(P4INFO)
    objects = {o.preamble.name for kind in ("tables", "actions", "counters", "direct_counters",
                                            "action_profiles", "meters")
               for o in getattr(info, kind)}
    fields = {mf.name for t in info.tables for mf in t.match_fields}
    params = {p.name for a in info.actions for p in a.params}
    metadata = {md.name for c in info.controller_packet_metadata for md in c.metadata}
    from controller.switch import p4names as N
    uses = _p4names_uses()
    assert len(uses) > 20                      # the scan finds the controller's uses
    for path, line, const in uses:
        assert hasattr(N, const), f"{path}:{line}: p4names has no {const}"
        value = getattr(N, const)
        if const == "TABLES":
            assert value == {t.preamble.name for t in info.tables}
        elif const.startswith(("TABLE_", "ACTION_", "COUNTER_", "DIRECT_COUNTER_", "METER_")):
            assert value in objects, f"{path}:{line}: {const}={value!r} is not in the P4Info"
        elif const.startswith("MATCH_"):
            assert value in fields, f"{path}:{line}: {const}={value!r} is no match field"
        elif const.startswith("PARAM_"):
            assert value in params, f"{path}:{line}: {const}={value!r} is no action parameter"
        else:
            assert value in metadata, f"{path}:{line}: {const}={value!r} is no packet metadata"
