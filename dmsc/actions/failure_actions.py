"""Failures injected into a running network: a link cut and restored, a
switch's BMv2, an agent, the SPA, the SCSC or the central controller killed
and restarted (topologies/emu/failures.py does the cutting and killing);
``kill_controller``/``restart_controller``: the network's one controller,
whichever mode it runs (the central controller, or the mesh control plane).
"""
from __future__ import annotations

from dmsc.actions.dispatch import ActionError, Node, Switch, action, agent_of


def _net_error(exc) -> ActionError:
    return ActionError(str(exc))


# -- links and switches -----------------------------------------------------------------------
@action
def link_down(net, a: Node, b: Node) -> dict:
    """Cut the link between A and B (both directions; carrier stays up, so the
    neighbours notice from missing hellos)."""
    from topologies.emu.failures import FailureError
    try:
        net.failures.link_down(a, b)
    except FailureError as exc:
        raise _net_error(exc) from None
    return {"link": f"{a}-{b}", "state": "down"}


@action
def link_up(net, a: Node, b: Node) -> dict:
    """Restore the link between A and B (and its bandwidth shaping)."""
    from topologies.emu.failures import FailureError
    try:
        net.failures.link_up(a, b)
    except FailureError as exc:
        raise _net_error(exc) from None
    return {"link": f"{a}-{b}", "state": "up"}


@action
def kill_switch(net, switch: Switch) -> dict:
    """SIGKILL a switch's BMv2 (its interfaces stay up: the neighbours notice
    from missing hellos). Its agent keeps running and reconnects after a restart."""
    net.failures.kill_switch(switch)
    return {"switch": switch, "state": "killed"}


@action
def restart_switch(net, switch: Switch) -> dict:
    """Start a killed switch's BMv2 again: same ports and gRPC port, empty
    tables (its agent, or the central controller, pushes pipeline and FIB)."""
    if net.switch(switch).alive():
        raise ActionError(f"switch {switch} is running (kill it first)")
    net.failures.restart_switch(switch)
    return {"switch": switch, "state": "restarted"}


# -- processes --------------------------------------------------------------------------------
@action
def kill_agent(net, switch: Switch) -> dict:
    """SIGKILL a switch's agent (the switch keeps forwarding with the FIB it has)."""
    pid = agent_of(net, switch).pid
    net.stop_agent(switch, kill=True)
    return {"agent": switch, "state": "killed", "pid": pid}


@action
def restart_agent(net, switch: Switch) -> dict:
    """Start a switch's agent again (same admin port) and wait until it answers."""
    from topologies.emu.net import NetError
    from topologies.emu.apps.app_base import AppError
    agent_of(net, switch)
    try:
        app = net.start_agent(switch)
        app.ready()
    except (NetError, AppError) as exc:
        raise _net_error(exc) from None
    return {"agent": switch, "state": "running", "pid": app.pid}


def _need_spa(net, name: str):
    have = [s.name for s in net.spas]
    if name not in have:
        raise ActionError(f"no SPA {name!r} in this network; SPAs: {', '.join(have) or 'none'}")


@action
def kill_spa(net, name: str = "spa") -> dict:
    """SIGKILL the SPA: SGs fail closed (new announcements wait), what they
    hold stays."""
    _need_spa(net, name)
    net.stop_spa(name, kill=True)
    return {"spa": name, "state": "killed"}


@action
def restart_spa(net, name: str = "spa") -> dict:
    """Start the SPA again on the same address and wait until it answers."""
    from topologies.emu.net import NetError
    from topologies.emu.apps.app_base import AppError
    _need_spa(net, name)
    for app in net.spas:
        if app.name == name and app.alive():
            raise ActionError(f"SPA {name} is running (kill it first)")
    try:
        net.restart_spa(name)
    except (NetError, AppError) as exc:
        raise _net_error(exc) from None
    return {"spa": name, "state": "running"}


@action
def kill_scsc(net) -> dict:
    """SIGKILL the SCSC: forwarding goes on over SPF routes and the policies in
    force until they expire."""
    if net.scsc is None:
        raise ActionError("this network runs without an SCSC (start it with probes: "
                          "probe_ms > 0)")
    net.stop_scsc(kill=True)
    return {"scsc": net.scsc_addr, "state": "killed"}


@action
def restart_scsc(net) -> dict:
    """Start the SCSC again on the same address and wait until it answers."""
    from topologies.emu.net import NetError
    if net.scsc is None:
        raise ActionError("this network runs without an SCSC (start it with probes: "
                          "probe_ms > 0)")
    if net.scsc.alive():
        raise ActionError("the SCSC is running (kill it first)")
    try:
        net.start_scsc()
    except NetError as exc:
        raise _net_error(exc) from None
    return {"scsc": net.scsc_addr, "state": "running"}


def _central(net, method: str):
    fn = getattr(net, method, None)
    if fn is None:
        raise ActionError(f"this testbed has no central controller yet (DmscNet.{method} "
                          f"is missing)")
    if getattr(net, "central", None) is None and method != "start_central":
        raise ActionError("this network runs in distributed mode: there is no central "
                          "controller to kill or restart")
    return fn


@action
def kill_central(net) -> dict:
    """SIGKILL the central controller (central mode): switches keep the FIBs
    they have; nothing reroutes until it is back."""
    fn = _central(net, "stop_central")
    try:
        fn(kill=True)
    except TypeError:
        fn()
    return {"central": "killed"}


@action
def restart_central(net) -> dict:
    """Start the central controller again (central mode) and wait until it serves."""
    fn = _central(net, "restart_central")
    fn()
    return {"central": "running"}


# -- the controller of either centralised mode --------------------------------------------------
def _controller(net) -> str:
    if getattr(net, "mesh", None) is not None:
        return "mesh"
    if getattr(net, "central", None) is not None:
        return "central"
    raise ActionError("this network runs in distributed mode: it has no controller "
                      "(kill_agent stops a switch's agent, kill_spa the SPA)")


@action
def kill_controller(net) -> dict:
    """SIGKILL the network's controller: the central controller (central mode)
    or the mesh control plane (mesh mode). What it set up stays: the switches'
    FIBs, the sidecars' endpoints; nothing new is set up until it is back."""
    if _controller(net) == "mesh":
        pid = net.mesh.control.pid
        net.mesh.stop_control_plane(kill=True)
        return {"controller": "mesh control plane", "state": "killed", "pid": pid}
    pid = net.central.pid
    net.stop_central(kill=True)
    return {"controller": "central", "state": "killed", "pid": pid}


@action
def restart_controller(net) -> dict:
    """Start the network's controller again (the central controller, or the
    mesh control plane with the endpoints it had: its state file) and wait
    until it serves."""
    from topologies.emu.mesh import MeshError
    if _controller(net) == "mesh":
        if net.mesh.control.alive():
            raise ActionError("the mesh control plane is running (kill it first)")
        try:
            app = net.mesh.start_control_plane()
        except MeshError as exc:
            raise _net_error(exc) from None
        return {"controller": "mesh control plane", "state": "running", "pid": app.pid}
    if net.central.alive():
        raise ActionError("the central controller is running (kill it first)")
    app = net.restart_central()
    return {"controller": "central", "state": "running", "pid": app.pid}
