"""The dmsc entry point: clear errors and exit codes, no tracebacks."""
import subprocess
import sys

from tests.conftest import ROOT


def dmsc(*args):
    return subprocess.run([sys.executable, "-m", "dmsc.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)


def test_topo_shows_nodes_and_expected_fibs():
    res = dmsc("topo", "topologies/fig2.yaml")
    assert res.returncode == 0, res.stderr
    assert "sg1" in res.stdout and "/B/4" in res.stdout and "port 3 (sr3)" in res.stdout


def test_bad_topology_file_is_one_clear_line(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("nodes: {a: {kind: router}}\nlinks: []\n")
    res = dmsc("topo", str(bad))
    assert res.returncode == 1
    assert "kind 'router'" in res.stdout and "Traceback" not in res.stdout + res.stderr


def test_topo_takes_a_generator_spec_and_refuses_a_bad_one():
    res = dmsc("topo", "ring:4")
    assert res.returncode == 0, res.stderr
    assert "g0" in res.stdout and "r1" in res.stdout
    res = dmsc("topo", "mesh:4")
    assert res.returncode == 1 and "not a generator spec" in res.stdout
    assert "Traceback" not in res.stdout + res.stderr


def test_inspecting_without_a_running_network_says_so(tmp_path):
    res = dmsc("fib", "sg1", "--run-dir", str(tmp_path))
    assert res.returncode == 1 and "no running network" in res.stdout
