"""Calls and probes by name from a pod, as a user's program and an SG send them."""
from __future__ import annotations

import json

from dmsc.actions.dispatch import ActionError, Name, Pod, action
from traffic.wire import names


def _switch_names_by_id(topo) -> dict[int, str]:
    return {topo.graph.nodes[s].get("id"): s for s in topo.switches()}


def _src_of(net, pod: str, src: str | None) -> str:
    if src is None:
        inst = net.topo.instances(pod)
        if not inst:
            raise ActionError(f"pod {pod} serves no instance to call from; give src")
        return inst[0]
    return names.normalize(src)


@action
def call(net, pod: Pod, dst: Name, method: str = "echo", src: str | None = None,
         timeout_s: float = 1.0) -> dict:
    """One call by name from a pod (as SRC, default its first instance) to
    DST: the result, the instance that answered, the round trip and the hops;
    or the error (no route, time-out, ...)."""
    s = _src_of(net, pod, src)
    if getattr(net, "mesh", None) is not None:      # over HTTP through the pod's sidecar
        out = net.mesh.call(pod, s, dst, method, {}, deadline_s=0, timeout=timeout_s)
    else:
        out = net.call(pod, s, dst, method, {}, deadline_s=0, timeout=timeout_s)
    out["ok"] = "error" not in out
    out.update(pod=pod, src=s, dst=dst)
    return out


@action
def probe(net, pod: Pod, dst: Name, src: str | None = None, timeout_s: float = 1.0) -> dict:
    """One probe from a pod to DST, as the SGs send them: the instance that
    answered, the round trip, and each switch on the forward path with its
    ports and residence time."""
    s = _src_of(net, pod, src)
    t = net.topo
    res = net.run_in(pod, ["-m", "traffic.rmi_client", "--iface", t.intf_name(pod, 0), "--src", s,
                           "--mac", t.mac(pod, 0), "--timeout", str(timeout_s), "--probe",
                           dst, "probe"], timeout=timeout_s + 20)
    try:
        out = json.loads(res.stdout.strip())
    except ValueError:
        raise ActionError(f"probe: traffic.rmi_client failed: {res.stderr[-300:]}") from None
    ids = _switch_names_by_id(t)
    for h in out.get("hops", []):
        h["switch"] = ids.get(h["switch_id"], "?")
    out["ok"] = "error" not in out
    out.update(pod=pod, src=s, dst=dst)
    return out
