"""Topologies: files, the networkx graph they become, and the Mininet side.

topo     -- YAML topology file -> Topology (one networkx graph, read by everyone)
generate -- line, ring, grid, fat-tree and random topologies for scale
routes   -- what SPF over that graph says each switch's FIB must hold
veth     -- veth pairs for the one-switch tier and the benchmarks
bmv2     -- Bmv2Process (simple_switch_grpc) and BMv2Switch, its Mininet switch class
net      -- DmscNet: a running emulation of a Topology (Mininet, no controller)
linkcaps -- what the kernel can impair (htb/tbf always; netem feature-detected)
*.yaml   -- topology files (fig2.yaml is the draft's Figure 2)
"""
