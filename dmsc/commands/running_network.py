"""How a command finds a running network: ``RUN_DIR/network.json``, written
by the network's own process (DmscNet.write_state), names every switch's
P4Runtime and admin addresses, the SPA, the SCSC, the central controller.
A stopped or dead network's file is refused with the reason.
"""
from __future__ import annotations

import json
from pathlib import Path

from controller.agent.admin_client import AdminClient
from controller.switch.artifacts import REPO_ROOT
from topologies.emu import running_networks

DEFAULT_RUN = REPO_ROOT / "runs" / "net"     # the run directory of `dmsc up` and `dmsc demo`


def load_net_state(run_dir) -> dict:
    path = Path(run_dir) / "network.json"
    if not path.exists():
        raise RuntimeError(f"no running network described in {path} (start one with `dmsc up`)")
    state = json.loads(path.read_text())
    if state.get("stopped"):
        raise RuntimeError(f"the network described in {path} ({state.get('topology_name')}) "
                           f"was stopped at {state['stopped']}")
    if "pid" in state and not running_networks.alive(state):
        raise RuntimeError(f"the network described in {path} ({state.get('topology_name')}, "
                           f"pid {state['pid']}) is no longer running")
    return state


def switch_info(args) -> tuple[dict, dict]:
    state = load_net_state(args.run_dir)
    if args.switch not in state["switches"]:
        raise RuntimeError(f"no switch {args.switch!r}; have {', '.join(state['switches'])}")
    return state, {**state["switches"][args.switch], "name": args.switch,
                   "central": state.get("central")}


def agent_state(info):
    if info.get("central"):       # the central mode: the controller's view of the switch
        from controller.central.admin_client import CentralClient
        with CentralClient(info["central"]) as c:
            return c.switch_state(info["name"])
    if not info.get("admin_addr"):
        raise RuntimeError("this network runs without agents (static FIBs)")
    with AdminClient(info["admin_addr"]) as c:
        return c.state()
