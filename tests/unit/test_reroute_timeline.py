"""benchmarks/reroute_timeline.py: a reroute's detection and flood wave, read
from what a convergence.py run leaves (its output, the topology, the agents'
logs)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import reroute_timeline  # noqa: E402
from topologies.generate import from_spec  # noqa: E402

DAY = "2026-12-06"


def _run(tmp_path: Path, logs: dict[str, list[str]], output: str):
    run = tmp_path / "run1"
    (run / "agents").mkdir(parents=True)
    from_spec("ring:8").save(run / "topology.yaml")
    for switch in ["g0", "r1", "g2", "r3", "g4", "r5", "g6", "r7"]:
        lines = [f"{DAY} 12:00:00,000 dmsc.agent INFO connected"] + logs.get(switch, [])
        (run / "agents" / f"{switch}.log").write_text("\n".join(lines) + "\n")
    out = tmp_path / "conv.txt"
    out.write_text(output)
    return out, run


# ring:8: calls p1 (g0) -> /any/3 (g4) over g0-r1; the answers come back
# g4 -> r3 -> g2 -> r1 -> (cut) g0, so g4, r3, g2 and r1 must all turn around
OUTPUT = ("    trial: cut at 12:00:10.000, outage 900 ms\n"
          "  link g0-r1 fails under calls p1 -> /any/3, open loop, 40 calls/s\n")


def test_detection_and_wave_from_the_logs(tmp_path, capsys):
    logs = {
        "g0": [f"{DAY} 12:00:10,700 dmsc.routing INFO adjacency down: r1 on port 2 (dead)",
               f"{DAY} 12:00:10,720 dmsc.agent INFO FIB v9: 4 updates (full sync)"],
        "r1": [f"{DAY} 12:00:09,000 dmsc.agent INFO FIB v8: 1 updates (full sync)",   # before
               f"{DAY} 12:00:10,500 dmsc.routing INFO adjacency down: g0 on port 1 (echo)",
               f"{DAY} 12:00:10,510 dmsc.agent INFO FIB v9: 5 updates (full sync)"],
        "g2": [f"{DAY} 12:00:10,530 dmsc.agent INFO FIB v9: 3 updates (full sync)"],
        "r3": [f"{DAY} 12:00:10,590 dmsc.agent INFO FIB v9: 3 updates (full sync)"],
        "g4": [f"{DAY} 12:00:10,560 dmsc.agent INFO FIB v9: 3 updates (full sync)"],
    }
    out, run = _run(tmp_path, logs, OUTPUT)
    assert reroute_timeline.main(["--output", str(out), "--run-dir", str(run)]) == 0
    text = capsys.readouterr().out
    assert "g0-r1 down at g0 after 700 ms and at 500 ms at r1" in text
    assert "r1 510, g4 560" in text                 # the far end first, then every 5th, the last
    # first detection (r1, 500 ms) to the last write on the path (r3, 590 ms), 3 hops
    assert "wave: 90 ms from the first detection" in text
    assert "30.0 ms a hop (3 hops)" in text


def test_a_switch_that_never_wrote_leaves_no_wave(tmp_path, capsys):
    logs = {"r1": [f"{DAY} 12:00:10,500 dmsc.routing INFO adjacency down: g0 on port 1 (echo)",
                   f"{DAY} 12:00:10,510 dmsc.agent INFO FIB v9: 5 updates (full sync)"]}
    out, run = _run(tmp_path, logs, OUTPUT)
    reroute_timeline.main(["--output", str(out), "--run-dir", str(run)])
    text = capsys.readouterr().out
    assert "down at g0 after never and at 500 ms at r1" in text
    assert "g4 -" in text
    assert "wave:" not in text


def test_output_without_a_failed_link_is_refused(tmp_path):
    out, run = _run(tmp_path, {}, "summary: nothing\n")
    with pytest.raises(SystemExit, match="no link-failure line"):
        reroute_timeline.main(["--output", str(out), "--run-dir", str(run)])
