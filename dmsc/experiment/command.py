"""``dmsc experiment FILE``: check the file, run it with a progress bar, report.

    dmsc experiment experiments/link-flap.yaml [--repeat N] [--both | --mode M[,M...]]
                    [--out results/] [--check]

``--mode distributed,central,mesh`` runs the experiment in each mode, one after
the other, into one results folder and one report (``--both``: distributed and
central).
    dmsc experiment --report results/link-flap-20261123-170000/

``--check`` only checks the file (no root needed); ``--report`` rebuilds a
report from a results folder's data.
"""
from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from controller.switch.artifacts import REPO_ROOT
from dmsc.experiment import report, runner, spec

console = Console()


def add_parser(sub) -> None:
    e = sub.add_parser("experiment", help="run an experiment file and write its report (root)")
    e.add_argument("file", nargs="?", help="an experiment file (experiments/*.yaml)")
    e.add_argument("--repeat", type=int, help="runs per mode (overrides the file's repeat)")
    g = e.add_mutually_exclusive_group()
    g.add_argument("--both", action="store_true", help="run it distributed and central")
    g.add_argument("--mode", metavar="M[,M...]",
                   help=f"override the file's mode: one of {', '.join(spec.MODES)}, or a "
                        f"comma list (distributed,central,mesh: each in turn, one report)")
    e.add_argument("--out", default=str(REPO_ROOT / "results"),
                   help="where results/<name>-<time>/ goes (default: results/)")
    e.add_argument("--check", action="store_true", help="only check the file")
    e.add_argument("--report", metavar="DIR", help="rebuild the report of a results folder")
    e.set_defaults(fn=cmd_experiment)


def cmd_experiment(args) -> int:
    if args.report:
        path = report.write(Path(args.report))
        console.print(f"report: {path}")
        return 0
    if not args.file:
        raise RuntimeError("give an experiment file (or --report DIR)")
    try:
        modes = list(spec.BOTH) if args.both else \
            (spec.parse_modes(args.mode) if args.mode else None)
    except ValueError as exc:
        raise RuntimeError(f"--mode: {exc}") from None
    exp = spec.load(args.file, modes=modes)
    if args.repeat is not None:
        if not 1 <= args.repeat <= spec.MAX_REPEAT:
            raise RuntimeError(f"--repeat must be between 1 and {spec.MAX_REPEAT}")
        exp.repeat = args.repeat
    n_runs = len(exp.topologies) * len(exp.modes) * exp.repeat
    console.print(f"[bold]{exp.name}[/bold]: {', '.join(exp.topologies)}; "
                  f"{', '.join(exp.modes)}; {len(exp.steps)} steps over {exp.duration:g} s; "
                  f"{n_runs} run{'s' if n_runs > 1 else ''}")
    if args.check:
        for s in exp.steps:
            console.print(f"  {s.at:7.2f} s  {s.label()}"
                          + (f"  (only {','.join(s.only)})" if s.only else ""))
        console.print("[green]the file is fine[/green]")
        return 0
    from dmsc.prerequisites import missing_prerequisites
    missing = missing_prerequisites()
    if missing:
        for m in missing:
            console.print(f"[red]missing:[/red] {m}")
        return 2
    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed:>5.1f}/{task.total:g} s"), TimeElapsedColumn(),
                  console=console) as prog:
        task = {"id": None}

        def on_run(topo, mode, i):
            if task["id"] is not None:
                prog.update(task["id"], visible=False)
            task["id"] = prog.add_task(f"{topo} {mode} run {i}", total=exp.duration)
            task["name"] = f"{topo} {mode} run {i}"

        def on_progress(t, total, label):
            prog.update(task["id"], completed=t,
                        description=f"{task['name']}: {label[:40]:<40}")
        out = runner.run_experiment(exp, Path(args.out), on_progress=on_progress, on_run=on_run)
    console.print(f"results: {out}\nreport:  {out / 'report.md'}")
    import json
    runs = json.loads((out / "runs.json").read_text())
    colour = {"ok": "green", "degraded": "yellow", "invalid": "red"}
    for r in runs:
        f = r.get("fidelity")
        if f:
            c = colour.get(f["level"], "white")
            console.print(f"{r['topology']} {r['mode']} {Path(r.get('dir', '')).name}: "
                          f"[{c}]fidelity={f['level']}[/{c}]"
                          + ("" if f["level"] == "ok" else f" ({f['reason']})"))
    bad = [r for r in runs if r.get("errors")]
    for r in bad:
        console.print(f"[yellow]{r['topology']} {r['mode']}: {'; '.join(r['errors'])}[/yellow]")
    return 1 if len(bad) == len(runs) else 0
