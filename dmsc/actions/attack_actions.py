"""Attacks from a pod, which the testbed must stop: a hijacked prefix (the
SPA must refuse it, no FIB may change) and a spoofed source name (the pod's SG
must drop the requests).
"""
from __future__ import annotations

import json
import time

from dmsc.actions.dispatch import ActionError, Name, Pod, action
from traffic.wire import names


HIJACKS = {"unauthorized": [], "bad_signature": ["--bad-signature"],
           "stale": ["--timestamp-offset", "-3600"], "collision": []}


@action
def hijack(net, pod: Pod, prefix: Name, how: str = "unauthorized",
           watch_s: float = 1.0) -> dict:
    """The pod announces PREFIX, which it is not authorized for (another
    service's name, or a sibling instance of its own service), or with a forged
    signature (how=bad_signature), a stale timestamp (how=stale), or a name
    computed to have PREFIX's switch key (how=collision: its first component
    replaced by a printable one with the same CRC-32). The SG asks the SPA,
    which must refuse it; then every FIB is watched for WATCH_S seconds.
    Returns the SG's answer and the switches whose FIB changed (none, if the
    SPA did its job)."""
    if how not in HIJACKS:
        raise ActionError(f"hijack: how must be one of {', '.join(HIJACKS)}, not {how!r}")
    if how == "collision":
        from dmsc.attacks import crc32_twin
        first, *rest = names.components(prefix)
        prefix = "/" + "/".join([crc32_twin(first), *rest])
    if pod not in net.key_files:
        raise ActionError(f"pod {pod} has no key in this network; pods with keys: "
                          f"{', '.join(net.key_files) or 'none'}")
    from dmsc.converge import FibReader
    t = net.topo
    with FibReader.for_net(net) as reader:     # one session per switch for the whole watch
        before = {sw: reader.read(sw) for sw in t.switches()}
        res = net.run_in(pod, ["-m", "traffic.send_announcement", "--iface", t.intf_name(pod, 0),
                               "--mac", t.mac(pod, 0), "--timeout", "3", "--key",
                               str(net.key_files[pod]), "--prefix", prefix, *HIJACKS[how]],
                         timeout=25)
        try:
            ans = json.loads(res.stdout.strip())
        except ValueError:
            raise ActionError(f"hijack: traffic.send_announcement failed: {res.stderr[-300:]}") from None
        changed: list[str] = []
        deadline = time.monotonic() + watch_s
        while True:
            now = {sw: reader.read(sw) for sw in t.switches()}
            changed = sorted(sw for sw in now if now[sw] != before.get(sw))
            if changed or time.monotonic() >= deadline:
                break
            time.sleep(0.1)       # poll interval: reading every FIB is not free
    body = ans.get("body", {})
    return {"pod": pod, "prefix": prefix, "how": how, "answer": ans.get("answer"),
            "spa_state": body.get("state"), "reason": body.get("reason"),
            "refused": ans.get("answer") == "nack", "fibs_changed": changed}


@action
def spoof(net, pod: Pod, src: Name, dst: Name, count: int = 50, interval_s: float = 0.01) -> dict:
    """The pod sends COUNT requests to DST with SRC, another pod's instance
    name, as their source (reflection: the answers would go to SRC). Its SG
    must drop them (counted src_not_held). Returns the requests sent, the
    answers that came back to anyone, and the SG's src_not_held drops meanwhile."""
    from controller.switch import p4names as N
    from dmsc.converge import FibReader
    from traffic.wire import defs
    t = net.topo
    sg = t.gateway(pod)
    drop_idx = next(i for i, n in defs.DROP_REASONS.items() if n == "src_not_held")

    def dropped(sw) -> int:
        return sw.read_counter(N.COUNTER_DROP_REASONS).get(drop_idx, (0, 0))[0]
    with FibReader.for_net(net, [sg]) as reader:   # a reader: the agent stays primary
        sw = reader.conns[sg]
        before = dropped(sw)
        res = net.run_in(pod, ["-m", "traffic.rmi_client", "--iface", t.intf_name(pod, 0), "--src",
                               names.normalize(src), "--mac", t.mac(pod, 0), "--timeout", "0.2",
                               "--count", str(count), "--interval", str(interval_s), dst, "echo"],
                         timeout=count * (interval_s + 0.2) + 30)
        try:
            out = json.loads(res.stdout.strip())
        except ValueError:
            raise ActionError(f"spoof: traffic.rmi_client failed: {res.stderr[-300:]}") from None
        deadline = time.monotonic() + 2.0
        while dropped(sw) - before < count and time.monotonic() < deadline:
            time.sleep(0.05)            # counters are read back: let the last frames land
        drops = dropped(sw) - before
    return {"pod": pod, "src": src, "dst": dst, "sent": out.get("sent", 0),
            "answered": out.get("ok", 0), "sg": sg, "src_not_held": drops,
            "refused": out.get("ok", 0) == 0 and drops >= out.get("sent", 0)}
