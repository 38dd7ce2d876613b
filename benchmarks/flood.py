#!/usr/bin/env python3
"""One pod floods its SG with forged announcements: does anyone else notice?

On BMv2 in Mininet, Figure 2 with a fifth pod (pod5, instance /E/5) on sg2 beside
pod2, with the SPA, the agents and announcing pods:

* pod2 (its own pod process stopped: the flood is all its port carries) sends
  ``--rate`` forged announcements per second for ``--duration`` s to sg2 (random
  key ids, fresh timestamps and nonces, signatures of noise: each would cost an
  SPA call if it got that far);
* meanwhile pod1 calls /E/5 (behind the flooded SG), **open loop** at 50 calls/s
  (one every 20 ms on schedule whatever the answers do, traffic/loadgen.py;
  ``calls_lost``: every scheduled call not answered, not_sent included), and halfway
  through the flood the operator authorizes /E/9 to pod5 and pod5 announces it:
  the time from its announcement to every FIB holding it is ``new_instance_ms``;
* every forged frame is accounted for: dropped by the P4 program's meter
  (``announce_policed``), shed by the SG's intake (``announce_shed_*``), refused by
  the SPA (``invalid_unknown_key``), or lost before the P4 program (the kernel's
  veth counters against the program's port_in); ``unaccounted`` is what is left.

Last line: ``new_instance_ms=... calls_lost=... adj_down=... rss_growth_mb=...
unaccounted=... sent=... policed=... shed=... spa_refused=... lost_before_p4=...
calls=<scheduled> loop=open rate=50 fidelity=...``. Run as root.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dmsc import fidelity                                          # noqa: E402
from openloop import Load, describe                                # noqa: E402

from controller.switch import p4names as N                             # noqa: E402
from controller.switch.artifacts import REPO_ROOT as ROOT             # noqa: E402
from controller.switch import fiblog                                   # noqa: E402
from dmsc.converge import FibReader, bring_up              # noqa: E402
from topologies.emu.net import DmscNet                                 # noqa: E402
from topologies.emu.child_processes import py_env, rss_bytes                    # noqa: E402
from topologies.topo import Topology                                   # noqa: E402
from traffic.wire import defs, names                                   # noqa: E402

NEW = "/E/9"
CALL_RATE = 50.0      # open loop: pod1 -> /E/5, calls per second (one every 20 ms)


def topology(folder: Path) -> Topology:
    """Figure 2 and pod5 on sg2, written to ``folder`` (the agents read the file)."""
    import yaml
    d = yaml.safe_load((ROOT / "topologies" / "fig2.yaml").read_text())
    d["name"] = "fig2-flood"
    d["nodes"]["pod5"] = {"kind": "pod", "instances": ["/E/5"]}
    d["links"].append(["pod5", "sg2:4"])
    path = folder / "fig2-flood.yaml"
    Topology.from_dict(d, source=str(path)).save(path)
    return Topology.load(path)


def send_flood(iface: str, mac: str, rate: float, duration: float) -> int:
    """In the pod's namespace: forged announcements at ``rate`` for ``duration`` s."""
    from traffic.wire.announcement import Announcement
    from traffic.wire.link import RawLink
    link = RawLink(iface)
    sent, start = 0, time.monotonic()
    try:
        while (elapsed := time.monotonic() - start) < duration:
            due = int(elapsed * rate) + 1
            while sent < due:
                ann = Announcement(defs.TYPE_ANNOUNCE, f"/F/{sent % 1000}", secrets.token_hex(8),
                                   time.time_ns(), secrets.token_bytes(16),
                                   secrets.token_bytes(64), "/C/2", sent & 0xFFFFFFFF)
                link.send(ann.encode(eth_src=mac))
                sent += 1
            time.sleep(0.002)
    finally:
        link.close()
    return sent


def counters(net, name) -> dict:
    with net.admin(name) as c:
        return dict(c.state(counters_only=True).counters)


def drops(sw, reason: str) -> int:
    idx = next(i for i, n in defs.DROP_REASONS.items() if n == reason)
    return sw.read_counter(N.COUNTER_DROP_REASONS).get(idx, (0, 0))[0]


def port_in(sw, port: int) -> int:
    return sw.read_counter(N.COUNTER_PORT_IN).get(port, (0, 0))[0]


def rx_packets(intf: str) -> int:
    return int(Path(f"/sys/class/net/{intf}/statistics/rx_packets").read_text())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=3000)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--flood-sender", nargs=2, metavar=("IFACE", "MAC"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.flood_sender:
        print(json.dumps({"sent": send_flood(*a.flood_sender, a.rate, a.duration)}))
        return 0
    mon = fidelity.benchmark_monitor()   # the verdict on its last line
    if os.geteuid() != 0:
        print("flood benchmark: needs root", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="dmsc-flood-") as d:
        topo = topology(Path(d))
        fib_log = Path(d) / "fib.jsonl"
        os.environ[fiblog.ENV] = str(fib_log)        # the agents inherit it
        net = bring_up(DmscNet(topo, Path(d) / "net"), timeout=60)
        reader = FibReader.for_net(net, ["sg2"])     # a reader: sg2's agent stays primary
        calls = None
        try:
            # pod2 becomes the attacker: its own pod process leaves first (withdrawing
            # /C and /C/2), so every frame on its port is the flood's and is accounted for
            net.stop_pod("pod2")
            sg2 = reader.conns["sg2"]
            port2 = topo.port("sg2", "pod2")
            intf = topo.intf_name("sg2", port2)
            before = {s: counters(net, s) for s in topo.switches()}
            with net.spa() as spa:
                spa0 = dict(spa.show().counters)
            policed0, in0, rx0 = drops(sg2, "announce_policed"), port_in(sg2, port2), \
                rx_packets(intf)
            rss0 = rss_bytes(net.agents["sg2"].pid)
            # open loop: a call every 20 ms on schedule, whatever the answers do
            calls = Load(net, "pod1", "/E/5", src="/A/1", rate=CALL_RATE,
                         duration=a.duration + 4, timeout=0.5, deadline=a.duration + 30,
                         records=Path(d) / "calls.jsonl")
            t_first = calls.wait_answering(30)
            # the calls are flowing for a second before the flood starts
            time.sleep(max(0.0, t_first + 1.0 - time.monotonic()))
            flood = net.host("pod2").popen(
                [sys.executable, str(Path(__file__).resolve()), "--rate", str(a.rate),
                 "--duration", str(a.duration), "--flood-sender", topo.intf_name("pod2", 0),
                 topo.mac("pod2", 0)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT), env=py_env())
            time.sleep(a.duration / 2)
            net.authorize(NEW, ["pod5"])
            res = net.run_in("pod5", ["-m", "traffic.send_announcement", "--iface", topo.intf_name("pod5", 0),
                                      "--mac", topo.mac("pod5", 0), "--key",
                                      str(net.key_files["pod5"]), "--prefix", NEW], timeout=60)
            got = json.loads(res.stdout or "{}")
            new_ms = float("nan")
            if got.get("answer") == "ack":
                # The writers' own log of every FIB change (CLOCK_MONOTONIC, as
                # sent_at): the last switch to add /E/9 is when it was everywhere.
                key = names.format_key(*names.prefix_key(NEW))
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    added = {}
                    for line in fiblog.read(fib_log):
                        if key in line["prefixes"] and line["t"] >= got["sent_at"]:
                            added.setdefault(line["switch"], line["t"])
                    if len(added) == len(topo.switches()):
                        new_ms = (max(added.values()) - got["sent_at"]) * 1000
                        break
                    time.sleep(0.1)
            print(f"new instance {NEW} announced during the flood: {got.get('answer')} "
                  f"{got.get('body', {})}; in every FIB {new_ms:.0f} ms after its announcement",
                  flush=True)
            out, err = flood.communicate(timeout=a.duration + 60)
            sent = json.loads(out)["sent"]
            call_res = calls.finish(timeout=a.duration + 90)
            time.sleep(2.0)             # the intake's tail reaches the SPA
            rss1 = rss_bytes(net.agents["sg2"].pid)
            after = {s: counters(net, s) for s in topo.switches()}
            with net.spa() as spa:
                spa1 = dict(spa.show().counters)
            policed = drops(sg2, "announce_policed") - policed0
            lost_before_p4 = (rx_packets(intf) - rx0) - (port_in(sg2, port2) - in0)
            shed = sum(after["sg2"].get(k, 0) - before["sg2"].get(k, 0)
                       for k in after["sg2"] if k.startswith("announce_shed_"))
            spa_refused = spa1.get("invalid_unknown_key", 0) - spa0.get("invalid_unknown_key", 0)
            adj_down = sum(after[s].get(k, 0) - before[s].get(k, 0) for s in topo.switches()
                           for k in after[s] if k.startswith("adj_down"))
            calls_lost = call_res["scheduled"] - call_res["ok"]     # every scheduled call
            unaccounted = sent - policed - shed - spa_refused - max(0, lost_before_p4)
            print(f"flood: {sent} forged announcements from pod2 at {a.rate:.0f}/s for "
                  f"{a.duration:.0f} s: policed in P4 {policed}, shed by sg2's intake {shed}, "
                  f"refused by the SPA {spa_refused}, lost before P4 {lost_before_p4}; "
                  f"pod1 -> /E/5: {describe(call_res)}; sg2's agent "
                  f"{rss0 / 2**20:.0f} -> {rss1 / 2**20:.0f} MB", flush=True)
        finally:
            if calls is not None:
                calls.close()
            reader.close()
            net.stop()
    print(f"summary: calls across the flooded SG, open loop, {CALL_RATE:g} calls/s: "
          f"{call_res['ok']} of {call_res['scheduled']} answered", flush=True)
    print(f"new_instance_ms={new_ms:.0f} calls_lost={calls_lost} adj_down={adj_down} "
          f"rss_growth_mb={(rss1 - rss0) / 2**20:.1f} unaccounted={unaccounted} sent={sent} "
          f"policed={policed} shed={shed} spa_refused={spa_refused} "
          f"lost_before_p4={lost_before_p4} calls={call_res['scheduled']} loop=open "
          f"rate={CALL_RATE:g} " + mon.kv())
    return 0


if __name__ == "__main__":
    sys.exit(main())
