"""The pods' identities: each pod's Ed25519 key (traffic/identity.py).

A pod signs its announcements with its own key. The key is the PEM file the
topology names for the pod (``key:``, relative to the topology file), or one
made for this run and saved as ``RUN_DIR/keys/<pod>.pem`` (the pod process
reads it from there). The SPA's registry lists the public halves
(topologies/emu/spa_registry.py).
"""
from __future__ import annotations

from pathlib import Path

from topologies.topo import Topology
from traffic.identity import Identity


def pod_identities(topo: Topology, run_dir) -> tuple[dict[str, Identity], dict[str, Path]]:
    """({pod: Identity}, {pod: its key file}) for every pod of the topology."""
    keys_dir = Path(run_dir) / "keys"
    identities: dict[str, Identity] = {}
    key_files: dict[str, Path] = {}
    for pod in topo.pods():
        named = topo.graph.nodes[pod].get("key")
        if named:
            path = topo.relative(named)
            ident = Identity.load(path)
        else:
            ident = Identity.generate()
            path = ident.save(keys_dir / f"{pod}.pem")
        identities[pod], key_files[pod] = ident, path
    return identities, key_files
