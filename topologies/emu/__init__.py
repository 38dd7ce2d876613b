"""The emulation: a Topology brought to life on this machine.

net               -- DmscNet: composes Mininet (hosts, links, BMv2 switches)
                     and the apps, starts them in order and stops them in
                     reverse order
apps/             -- every long-running piece as an App (start / ready / stop,
                     one log): bmv2, agent, central, spa, scsc, pod
identities        -- the pods' keys (the topology's files, or made for the run)
spa_registry      -- the registry file the SPA reads (the topology's, or
                     generated from it) and run-time grants written into it
domain_key        -- the routing domain's secret, RUN_DIR/domain.key
pod_control       -- a pod's control file (written here), status and span files
                     (written by the pod)
failures          -- failure injection: link cut and restore, switch kill and restart
running_networks  -- which networks run on this machine (records, leftovers)
child_processes   -- child processes: free ports, die-with-parent, the Python
                     environment, CPU and memory of a process
veth              -- veth pairs (CPU ports, the one-switch tier, the benchmarks)
linkcaps          -- what the kernel can impair (htb/tbf always; netem feature-detected)

It sits on top of the model (topologies.topo), the wire format, the pods'
identities and the control plane's client libraries; only the tools (dmsc/)
import it, to drive it.
"""
