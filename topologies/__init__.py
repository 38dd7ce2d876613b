"""Topologies: files, the networkx graph they become, and the Mininet side.

topo     -- YAML topology file -> Topology (one networkx graph, read by everyone)
routes   -- what SPF over that graph says each switch's FIB must hold
bmv2     -- BMv2Switch, the Mininet switch class running simple_switch_grpc
net      -- DmscNet: a running emulation of a Topology (Mininet, no controller)
linkcaps -- what the kernel can impair (htb/tbf always; netem feature-detected)
*.yaml   -- topology files (fig2.yaml is the draft's Figure 2)
"""
