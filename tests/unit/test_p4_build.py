"""The committed P4 outputs and the generated names are current.

With p4c on PATH, p4src/ is compiled into a temporary directory and the
result must equal p4src/build/ (the committed BMv2 JSON and P4Info) and
benchmarks/build/. Without p4c that part skips, naming p4c; the generated
controller/p4names.py is always checked against the committed P4Info.
"""
import json
import shutil
import subprocess

import pytest

from controller import gen_p4names
from tests.conftest import ROOT

P4C = shutil.which("p4c")


def compile_to(src, outdir):
    outdir.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["p4c", "--target", "bmv2", "--arch", "v1model", "--std", "p4-16",
                          "-o", str(outdir), "--p4runtime-files", str(outdir / "out.p4info.txtpb"),
                          str(src.relative_to(ROOT))], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return outdir / (src.stem + ".json"), outdir / "out.p4info.txtpb"


@pytest.mark.skipif(P4C is None, reason="needs p4c on PATH to recompile p4src/")
@pytest.mark.parametrize("src, json_out, p4info_out", [
    ("p4src/main.p4", "p4src/build/dmsc.json", "p4src/build/dmsc.p4info.txtpb"),
    ("benchmarks/ipv4_lpm.p4", "benchmarks/build/ipv4_lpm.json",
     "benchmarks/build/ipv4_lpm.p4info.txtpb"),
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


def test_generated_p4names_match_p4info_and_define_p4():
    committed = (ROOT / "controller" / "p4names.py").read_text()
    assert gen_p4names.generate() == committed, "controller/p4names.py is stale: run `make p4names`"


def test_every_p4name_the_controller_uses_exists():
    from controller import p4names as N
    info = gen_p4names.load_p4info()
    objs = {o.preamble.name for kind in ("tables", "actions", "counters", "direct_counters",
                                         "action_profiles") for o in getattr(info, kind)}
    for const, value in vars(N).items():
        if const.startswith(("TABLE_", "ACTION_", "COUNTER_", "DIRECT_COUNTER_")):
            assert value in objs, const
