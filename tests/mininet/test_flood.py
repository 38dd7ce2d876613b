"""One pod floods its SG with forged announcements (benchmarks/flood.py, shortened):
the SG's control plane keeps serving the others and every frame is accounted for.

The benchmark builds its own network (Figure 2 and a fifth pod beside the flooder on
sg2), runs the flood from pod2's namespace, announces a new instance from pod5 in
the middle of it and calls across sg2 throughout; its last line is parsed here.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.mininet


def test_a_flooding_pod_slows_no_one_and_every_frame_is_counted():
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "flood.py"), "--rate", "2000",
                          "--duration", "8"], capture_output=True, text=True, timeout=300,
                         cwd=str(ROOT))
    assert res.returncode == 0, res.stderr[-3000:]
    got = dict(kv.split("=", 1) for kv in res.stdout.strip().splitlines()[-1].split())
    assert got["fidelity"] in ("ok", "degraded", "invalid"), got    # every benchmark says it
    sent = int(got["sent"])
    assert sent >= 2000 * 8 * 0.9, got                   # the flood happened
    assert int(got["policed"]) > sent / 2, got           # most of it never reached the CPU
    assert int(got["spa_refused"]) > 0, got              # what passed the meter was judged
    assert int(got["unaccounted"]) == 0, got             # policed + shed + judged (+ lost) = sent
    assert float(got["new_instance_ms"]) <= 500, got     # another pod's new instance: at once
    assert int(got["calls_lost"]) == 0 and int(got["adj_down"]) == 0, got
    assert float(got["rss_growth_mb"]) <= 10, got
