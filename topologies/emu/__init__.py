"""The emulation: a Topology brought to life on this machine.

net       -- DmscNet: composes Mininet (hosts, links, BMv2 switches) and the
             apps, starts them in order and stops them in reverse order
apps/     -- every long-running piece as an App (start / ready / stop, one log):
             bmv2 (simple_switch_grpc + its Mininet switch class), agent, pod
failures  -- failure injection: link cut and restore, switch kill and restart
process   -- child processes: free ports, die-with-parent, the Python environment
veth      -- veth pairs for the one-switch tier and the benchmarks
linkcaps  -- what the kernel can impair (htb/tbf always; netem feature-detected)

It sits on top of the model (topologies.topo), the wire format and the
control plane's client libraries; nothing in controller/ imports it except
the tools (dmsc/), which drive it.
"""
