"""A pod's life at run time: stopped (it withdraws what it announced), killed
(it withdraws nothing) and started, degraded (slower answers: an instance for
the SCSC to find), a prefix announced or withdrawn through its control file
(topologies/emu/pod_control.py), each answer read back from its status file.

In the mesh mode (docs/mesh.md) a pod is its app and its sidecar: stopped, the
sidecar withdraws its instances from the mesh control plane; killed, the app
dies and the sidecar stays (a crashed container beside a live proxy); the
control file is the same (service time, extra instances), and an announced
instance is registered by the sidecar, its state read from the sidecars.
"""
from __future__ import annotations

import time

from dmsc.actions.dispatch import ActionError, Name, Pod, action
from topologies.emu import pod_control


def _mesh(net):
    return getattr(net, "mesh", None)


def _pod_app(net, pod: str):
    mesh = _mesh(net)
    if mesh is not None:
        if not mesh.alive(pod):
            raise ActionError(f"pod {pod} is not running; running pods: "
                              f"{', '.join(p for p in mesh.apps if mesh.alive(p)) or 'none'}")
        return mesh.apps[pod]
    app = net.pods.get(pod)
    if app is None or not app.alive():
        raise ActionError(f"pod {pod} is not running; running pods: "
                          f"{', '.join(p for p, a in net.pods.items() if a.alive()) or 'none'}")
    return app


def _wait_prefix_state(net, pod: str, prefix: str, states, wait_s: float) -> dict:
    """Poll the pod's status file until ``prefix`` is in one of ``states``
    (or the time is up); the prefix's last status."""
    deadline = time.monotonic() + wait_s
    while True:
        st = net.announcements(pod).get(prefix, {})
        if st.get("state") in states or time.monotonic() >= deadline:
            return st
        time.sleep(0.02)          # poll interval


# -- the pod process --------------------------------------------------------------------------
@action
def stop_pod(net, pod: Pod) -> dict:
    """Stop a pod the way a leaving pod does: it withdraws everything it
    announced (signed) and exits."""
    _pod_app(net, pod)
    if _mesh(net) is not None:
        net.mesh.stop_pod(pod)
    else:
        net.stop_pod(pod)
    return {"pod": pod, "state": "stopped"}


@action
def kill_pod(net, pod: Pod) -> dict:
    """SIGKILL a pod's process, as a crash: it withdraws nothing, so its names
    stay where they were announced until something notices (DMSC: its SG's
    lease on them runs out, or the SCSC's probes; mesh: the app dies, its
    sidecar stays, and the other sidecars' health checks eject it)."""
    app = _pod_app(net, pod)
    pid = app.pid
    if _mesh(net) is not None:
        net.mesh.kill_app(pod)
    else:
        app.kill()
    return {"pod": pod, "state": "killed", "pid": pid}


@action
def start_pod(net, pod: Pod) -> dict:
    """Start a stopped or killed pod: it announces its instances again (mesh:
    its app starts, and its sidecar too if it was stopped)."""
    if _mesh(net) is not None:
        if net.mesh.alive(pod):
            raise ActionError(f"pod {pod} is running")
        net.mesh.start_app(pod)
        return {"pod": pod, "state": "running"}
    app = net.pods.get(pod)
    if app is not None and app.alive():
        raise ActionError(f"pod {pod} is running")
    net.start_pod(pod)
    return {"pod": pod, "state": "running"}


# -- degradations and announcements -------------------------------------------------------------
@action
def degrade(net, pod: Pod, service_ms: float) -> dict:
    """Answer every request and probe to the pod's instances SERVICE_MS later
    (0 restores): a degraded replica for the SCSC to find."""
    if service_ms < 0:
        raise ActionError(f"degrade: service_ms must be >= 0, not {service_ms}")
    _pod_app(net, pod)
    net.set_service_time(pod, service_ms)
    return {"pod": pod, "service_ms": service_ms}


@action
def announce(net, pod: Pod, prefix: Name, wait_s: float = 5.0) -> dict:
    """The pod announces PREFIX (signed with its own key, through its SG and
    the SPA) and serves it from then on; a prefix it withdrew is announced
    again. Waits up to WAIT_S for the SG's answer; returns its state."""
    _pod_app(net, pod)
    if _mesh(net) is not None:
        return _announce_mesh(net, pod, prefix, wait_s)
    ctl = pod_control.read_control(net.run_dir, pod)
    withdrawn = [p for p in ctl.get("withdrawn", []) if p != prefix]
    extra = list(ctl.get("extra", []))
    known = set(net.announcements(pod)) | set(net.topo.instances(pod))
    if prefix not in known and prefix not in extra:
        extra.append(prefix)
    t0 = time.monotonic()
    net.update_pod_control(pod, extra=extra, withdrawn=withdrawn)
    st = _wait_prefix_state(net, pod, prefix, ("accepted", "refused"), wait_s)
    return {"pod": pod, "prefix": prefix, "state": st.get("state", "pending"),
            "reason": st.get("reason"), "waited_s": round(time.monotonic() - t0, 3)}


def _announce_mesh(net, pod: str, prefix: str, wait_s: float) -> dict:
    """The mesh: the pod's app serves PREFIX and its sidecar registers it
    (signed, SPA checked); accepted once the control plane pushed it back to
    the pod's own sidecar, refused if the sidecar says so."""
    ctl = pod_control.read_control(net.run_dir, pod)
    extra = list(ctl.get("extra", []))
    if prefix not in net.topo.instances(pod) and prefix not in extra:
        extra.append(prefix)
    t0 = time.monotonic()
    net.update_pod_control(pod, extra=extra)
    deadline = t0 + wait_s
    state, reason = "pending", None
    while True:
        st = net.mesh.sidecar_status(pod)
        if prefix in st.get("endpoints", {}).get(prefix, []):
            state = "accepted"
        elif prefix in st.get("refused", {}):
            state, reason = "refused", st["refused"][prefix]
        if state != "pending" or time.monotonic() >= deadline:
            break
        time.sleep(0.02)          # poll interval
    return {"pod": pod, "prefix": prefix, "state": state, "reason": reason,
            "waited_s": round(time.monotonic() - t0, 3)}


@action
def authorize(net, pod: Pod, prefix: Name, max_depth: int | None = None) -> dict:
    """The operator grants PREFIX to the pod's key in the SPA (every running SPA,
    and this run's registry file, so a restarted SPA keeps it): a new instance
    the pod may then announce (MAX_DEPTH: names that deep below it too)."""
    if not net.spas:
        raise ActionError("this network runs no SPA")
    if max_depth is not None and max_depth < 0:
        raise ActionError(f"authorize: max_depth must be >= 0, not {max_depth}")
    net.authorize(prefix, [pod], max_depth)
    return {"pod": pod, "prefix": prefix, "granted": True}


@action
def withdraw(net, pod: Pod, prefix: Name, wait_s: float = 5.0) -> dict:
    """The pod withdraws PREFIX (a signed withdrawal, as when a pod leaves) and
    stops announcing it; ``announce`` brings it back."""
    _pod_app(net, pod)
    have = net.announcements(pod)
    if prefix not in have:
        raise ActionError(f"pod {pod} does not announce {prefix}; it announces: "
                          f"{', '.join(sorted(have)) or 'nothing'}")
    ctl = pod_control.read_control(net.run_dir, pod)
    withdrawn = sorted(set(ctl.get("withdrawn", [])) | {prefix})
    t0 = time.monotonic()
    net.update_pod_control(pod, withdrawn=withdrawn)
    st = _wait_prefix_state(net, pod, prefix, ("withdrawn",), wait_s)
    return {"pod": pod, "prefix": prefix, "state": st.get("state"),
            "waited_s": round(time.monotonic() - t0, 3)}


CHURN_MAX_RATE, CHURN_MAX_S = 200.0, 600.0


@action
def churn(net, pod: Pod, prefix: Name = "/churn", rate: float = 20.0, duration_s: float = 60.0,
          keep: int = 20) -> dict:
    """Autoscaling: instances of PREFIX (PREFIX/0, PREFIX/1, ...) started and
    stopped on the pod, RATE changes a second for DURATION_S seconds: KEEP
    added first, then alternately one added and the oldest withdrawn (signed),
    so each lives about 2 x KEEP / RATE seconds. PREFIX is granted to the pod's
    key first (one component deeper), as an operator would. The step takes its
    duration (later steps wait for it); each instance's time from its start to
    every FIB can be read from the run's FIB log (fib.jsonl)."""
    _pod_app(net, pod)
    if not 0 < rate <= CHURN_MAX_RATE:
        raise ActionError(f"churn: rate must be above 0 and at most {CHURN_MAX_RATE:g} a "
                          f"second, not {rate:g}")
    if not 0 < duration_s <= CHURN_MAX_S:
        raise ActionError(f"churn: duration_s must be above 0 and at most {CHURN_MAX_S:g}, "
                          f"not {duration_s:g}")
    if keep < 1:
        raise ActionError(f"churn: keep must be at least 1, not {keep}")
    if net.spas:
        net.authorize(prefix, [pod], len(prefix.strip("/").split("/")) + 1)
    ctl = pod_control.read_control(net.run_dir, pod)
    extra, withdrawn = list(ctl.get("extra", [])), list(ctl.get("withdrawn", []))
    mine, gone, started = [], set(), {}
    t0 = time.monotonic()
    n = int(rate * duration_s)
    for i in range(n):
        time.sleep(max(0.0, t0 + i / rate - time.monotonic()))
        live = [x for x in mine if x not in gone]
        if i < keep or i % 2 == 0 or not live:
            name = f"{prefix.rstrip('/')}/{i}"
            mine.append(name)
            started[name] = round(time.monotonic() - t0, 3)
        else:
            gone.add(live[0])
        net.update_pod_control(pod, extra=extra + mine, withdrawn=withdrawn + sorted(gone))
    took = time.monotonic() - t0
    return {"pod": pod, "prefix": prefix, "changes": n, "added": len(mine),
            "withdrawn": len(gone), "live": len(mine) - len(gone),
            "rate_achieved": round(n / took, 2) if took > 0 else None,
            "started_s": started}

