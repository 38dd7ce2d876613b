"""Run-time actions on a running network: the one place they live.

Every action is a function ``fn(net, **params) -> dict`` on a running
:class:`topologies.emu.net.DmscNet`, in a module named for what it does:

failure_actions  -- a link down and up; a switch, an agent, the SPA, the SCSC,
                    the central controller or the controller of either mode
                    (kill_controller: the central one, or the mesh control plane)
                    killed and restarted
pod_actions      -- a pod stopped, killed and started, degraded, announcing or
                    withdrawing a prefix (in the mesh mode too: docs/mesh.md)
attack_actions   -- a pod hijacking a prefix or spoofing a source name
call_actions     -- a call and a probe by name from a pod
read_actions     -- reads of a switch: FIB, LSDB, RIB, SCSC policies
dispatch         -- the table of actions by name, parameter checking, ``run``,
                    and the actions that mean nothing in a mode (NOT_IN_MODE)

The experiment steps (dmsc/experiment/) and the interactive CLI
(dmsc/interactive.py) call them by name through :func:`run`, so a step in a
file and a command typed at the prompt are the same code.

Each function's docstring is its help text (first line: the summary); its
parameters are typed, and :func:`check_params` checks a step's parameters
(unknown, missing, wrong type, names that the topology does not have) before
anything runs: an experiment file is refused at load time, not halfway.
Bad arguments raise :class:`ActionError`, whose message lists what exists
(switches, pods, links, a pod's prefixes). What an action observes, such as a
call that fails or a hijack that the SPA refuses, is its result, not an error.
"""
from dmsc.actions.dispatch import (ACTIONS, MODES, ActionError, Name, Node, Pod, Switch,
                                   action, check_params, help_text, modes_of, params_of,
                                   refusal, run, summary)
# each module adds its actions to ACTIONS when imported
from dmsc.actions import (attack_actions, call_actions, failure_actions, pod_actions,
                          read_actions)

__all__ = ["ACTIONS", "MODES", "ActionError", "modes_of", "refusal", "Name", "Node", "Pod", "Switch", "action", "check_params",
           "help_text", "params_of", "run", "summary", "attack_actions", "call_actions",
           "failure_actions", "pod_actions", "read_actions"]
