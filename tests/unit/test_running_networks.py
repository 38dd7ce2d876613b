"""Which network holds the interface names: the records, liveness, the one line a user reads."""
import json
import os
import subprocess
import sys

import pytest

from dmsc import cli
from topologies.emu import running_networks as registry


@pytest.fixture
def sleeper():
    """A live process that is not this one (killed at the end)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def record(pid, intfs=("sg1-eth1", "sg1-eth2"), name="fig2", run_dir="/tmp/r", **kw):
    return {"pid": pid, "pid_start": registry.process_start(pid), "topology_name": name,
            "interfaces": list(intfs), "run_dir": run_dir, "command": "dmsc up",
            "started": "2026-11-23 16:00:00", **kw}


def test_a_running_holder_is_named_with_its_pid_and_how_to_stop_it(sleeper):
    line = registry.who_holds(["sg1-eth1"], [record(sleeper.pid)])
    assert line.startswith("interfaces sg1-eth1 already exist")
    assert "network 'fig2'" in line and f"pid {sleeper.pid}" in line and "is running" in line
    assert f"`sudo kill {sleeper.pid}`" in line and "mn -c" not in line
    assert "\n" not in line


def test_a_dead_holder_is_leftovers_and_mn_c_cleans_them():
    pid = dead_pid()
    rec = record(pid)
    rec["pid_start"] = 12345
    line = registry.who_holds(["sg1-eth1"], [rec])
    assert f"pid {pid}" in line and "no longer running" in line and "`sudo mn -c`" in line


def test_a_reused_pid_is_not_mistaken_for_the_network(sleeper):
    rec = record(sleeper.pid)
    rec["pid_start"] += 1            # the same pid, another process
    assert not registry.alive(rec)
    assert registry.alive(record(sleeper.pid))
    assert "no longer running" in registry.who_holds(["sg1-eth1"], [rec])


def test_only_the_networks_holding_the_taken_names_are_listed(sleeper):
    recs = [record(sleeper.pid, intfs=["g0-eth1"], name="ring:4", run_dir="/a"),
            record(sleeper.pid, name="fig2", run_dir="/b")]
    line = registry.who_holds(["sg1-eth1", "sg1-eth2"], recs)
    assert "'fig2'" in line and "ring:4" not in line


def test_no_record_says_so_and_points_at_mn_c():
    line = registry.who_holds([f"sg{i}-eth1" for i in range(1, 7)], [])
    assert "sg1-eth1, sg2-eth1, sg3-eth1, sg4-eth1 ..." in line
    assert "no running network of this testbed" in line and "`sudo mn -c`" in line


def test_records_read_the_machine_records_and_run_dirs_one_per_run_dir(tmp_path, sleeper):
    recs_dir, runs = tmp_path / "records", tmp_path / "runs"
    registry.register(record(sleeper.pid, run_dir=str(runs / "net")), recs_dir)
    (runs / "net").mkdir(parents=True)
    (runs / "net" / "network.json").write_text(
        json.dumps(record(sleeper.pid, run_dir=str(runs / "net"))))
    (runs / "old").mkdir()                      # from before network.json had a pid
    (runs / "old" / "network.json").write_text(json.dumps({"switches": {}}))
    (runs / "other").mkdir()
    other = record(dead_pid())
    other.pop("run_dir")
    (runs / "other" / "network.json").write_text(json.dumps(other))
    got = registry.records(recs_dir, run_roots=[runs])
    assert sorted(r["run_dir"] for r in got) == sorted([str(runs / "net"),
                                                         str((runs / "other").resolve())])
    registry.forget_dead(recs_dir)              # the live one stays
    assert len(list(recs_dir.glob("*.json"))) == 1


def test_the_cli_refuses_a_run_dir_whose_network_died(tmp_path):
    (tmp_path / "network.json").write_text(json.dumps(
        {**record(dead_pid(), run_dir=str(tmp_path)), "switches": {"sg1": {}}}))
    res = subprocess.run([sys.executable, "-m", "dmsc.cli", "fib", "sg1",
                          "--run-dir", str(tmp_path)], capture_output=True, text=True,
                         cwd=cli.ROOT, timeout=60, env={**os.environ, "COLUMNS": "40"})
    assert res.returncode == 1
    out = res.stdout.strip()
    assert "no longer running" in out and "\n" not in out and "Traceback" not in res.stderr


def test_a_network_stopped_by_a_live_process_holds_nothing(tmp_path):
    """A test run (or an experiment) stops one network and starts the next in
    the same process: the stopped one's network.json must not be named as
    holding the interfaces, though its pid is alive."""
    run = tmp_path / "runs" / "first"
    run.mkdir(parents=True)
    state = run / "network.json"
    state.write_text(json.dumps(record(os.getpid(), run_dir=str(run))))
    roots = [tmp_path / "runs"]
    assert [r["run_dir"] for r in registry.records(tmp_path / "recs", roots)] == [str(run)]
    registry.mark_stopped(state)
    assert registry.records(tmp_path / "recs", roots) == []
    msg = registry.who_holds(["sg1-eth2"], registry.records(tmp_path / "recs", roots))
    assert "is running" not in msg and "mn -c" in msg
