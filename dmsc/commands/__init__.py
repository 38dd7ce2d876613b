"""The ``dmsc`` commands, one module per group (dmsc/cli.py parses the
command line and calls them):

up_demo         -- dmsc up, dmsc demo: a network brought up, a call by name
switch_tables   -- dmsc lsdb|rib|fib|shell|stats SWITCH: a running switch
spa_admin       -- dmsc spa show|allow|revoke|add-key: the running SPA
scsc_steering   -- dmsc scsc, dmsc policies SWITCH, dmsc degrade POD
offline         -- dmsc topo, dmsc check, dmsc pcap: no running network needed
running_network -- how a command finds a running network (RUN_DIR/network.json)

``dmsc experiment`` is dmsc/experiment/command.py. Each command is
``cmd_NAME(args) -> exit status``; library code raises, these print.
"""
from rich.console import Console

console = Console()
