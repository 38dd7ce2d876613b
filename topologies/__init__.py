"""Topologies: the model, and the running emulation on top of it.

The model (no emulation, no control plane; only traffic.wire.names):
topo      -- YAML topology file -> Topology (one networkx graph, read by everyone)
generate  -- line, ring, grid, fat-tree and random topologies for scale
expected  -- the reference: what SPF over the graph says every FIB must hold
*.yaml    -- topology files (fig2.yaml is the draft's Figure 2)

emu/      -- the running network: Mininet, BMv2 processes, agents and pods as
             apps, failure injection (see topologies/emu/__init__.py)
"""
