"""Where the compiled P4 program and its sources live: the one place.

The agent pushes ``BMV2_JSON`` + ``P4INFO`` to its switch; the build tool
(scripts/gen_names.py) reads ``P4INFO`` and ``DEFINE_P4`` to generate
controller/switch/p4names.py and traffic/wire/defs.py; the benchmarks compare
against the IPv4 baseline program.
"""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
P4SRC = REPO_ROOT / "p4src"
MAIN_P4 = P4SRC / "main.p4"
DEFINE_P4 = P4SRC / "include" / "define.p4"
BUILD = P4SRC / "build"
P4INFO = BUILD / "dmsc.p4info.txtpb"
BMV2_JSON = BUILD / "dmsc.json"

# The service-mesh baseline's IPv4 program (`--mode mesh`, docs/mesh.md).
MESH_P4 = P4SRC / "mesh" / "ipv4.p4"
MESH_P4INFO = BUILD / "mesh_ipv4.p4info.txtpb"
MESH_JSON = BUILD / "mesh_ipv4.json"

BASELINE_P4 = REPO_ROOT / "benchmarks" / "ipv4_lpm.p4"
BASELINE_BUILD = REPO_ROOT / "benchmarks" / "build"
BASELINE_P4INFO = BASELINE_BUILD / "ipv4_lpm.p4info.txtpb"
BASELINE_JSON = BASELINE_BUILD / "ipv4_lpm.json"
TRIVIAL_P4 = REPO_ROOT / "benchmarks" / "trivial.p4"            # the benchmark's ceiling
TRIVIAL_P4INFO = BASELINE_BUILD / "trivial.p4info.txtpb"
TRIVIAL_JSON = BASELINE_BUILD / "trivial.json"

# What the generator writes.
P4NAMES_PY = REPO_ROOT / "controller" / "switch" / "p4names.py"
WIRE_DEFS_PY = REPO_ROOT / "traffic" / "wire" / "defs.py"
