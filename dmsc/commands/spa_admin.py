"""``dmsc spa show|allow|revoke|add-key``: the running SPA's registry and
verdict counters, authorizations added or revoked and keys added at run time.
"""
from __future__ import annotations

from rich.table import Table

from controller.spa.spa_client import SpaClient
from dmsc.commands import console
from dmsc.commands.running_network import load_net_state
from traffic.identity import Identity
from traffic.wire import names


def cmd_spa(args) -> int:
    if args.action in ("allow", "revoke") and not args.prefix:
        raise RuntimeError(f"spa {args.action} needs a prefix")
    if args.action == "allow" and not args.keys:
        raise RuntimeError("spa allow needs --keys (key names of the registry)")
    if args.action == "add-key" and not (args.name and args.key_file):
        raise RuntimeError("spa add-key needs --name and --key-file")
    state = load_net_state(args.run_dir)
    if not state.get("spa"):
        raise RuntimeError("this network runs without an SPA")
    with SpaClient(state["spa"]) as spa:
        if args.action == "allow":
            spa.authorize(names.normalize(args.prefix), args.max_depth, args.keys)
            depth = "exactly" if args.max_depth is None else f"max depth {args.max_depth}"
            console.print(f"authorized {args.prefix} ({depth}) to {', '.join(args.keys)}")
        elif args.action == "revoke":
            spa.revoke(names.normalize(args.prefix))
            console.print(f"revoked {args.prefix}: SGs withdraw what it covered within "
                          f"their recheck interval")
        elif args.action == "add-key":
            ident = Identity.load(args.key_file)
            spa.add_key(args.name, ident.public_raw)
            console.print(f"key {args.name} added ({ident.key_id})")
        view = spa.show()
    t = Table(title=f"SPA at {spa.addr}: authorizations (registry {view.source})")
    for col in ("prefix", "max depth", "keys"):
        t.add_column(col)
    for a in view.authorizations:
        t.add_row(a.prefix, str(a.max_depth), ", ".join(a.keys))
    console.print(t)
    k = Table(title="keys")
    for col in ("name", "key id"):
        k.add_column(col)
    for e in view.keys:
        k.add_row(e.name, e.key_id)
    console.print(k)
    c = Table(title="verdicts and refusals")
    for col in ("counter", "count"):
        c.add_column(col)
    for name, v in sorted(view.counters.items()):
        c.add_row(name, str(v))
    console.print(c)
    return 0
