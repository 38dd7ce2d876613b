"""Experiment files (dmsc/experiment/spec.py): a good file
resolves with every default, and each kind of bad file is refused with the
line and the field at fault, before any network starts."""
from __future__ import annotations

import textwrap

import pytest

from dmsc.experiment.spec import ExperimentError, load, loads, parse_duration
from tests.conftest import ROOT

BASE = ROOT / "experiments"
HEAD = """\
name: t
topology: ../topologies/fig2.yaml
duration: 10s
"""


def check(body: str, **kw):
    return loads(textwrap.dedent(body), source="x.yaml", base=BASE, **kw)


def refused(body: str, line: int | None, field: str, msg: str, **kw):
    with pytest.raises(ExperimentError) as exc:
        check(body, **kw)
    e = exc.value
    assert (e.line, e.field) == (line, field), str(e)
    assert msg in str(e), str(e)
    where = f"x.yaml, line {line}" if line else "x.yaml"
    assert str(e).startswith(f"{where}, {field}: " if field else f"{where}: "), str(e)


def test_a_good_file_resolves_with_its_defaults_and_steps_in_time_order():
    exp = check(HEAD + """\
steps:
  - {at: 5s, do: link_up, a: sg1, b: sr3}
  - {at: 500ms, do: traffic, pod: pod1, dst: /B, rate: 20/s, duration: 9s}
  - {at: 2, do: link-down, a: sg1, b: sr3}
""")
    assert exp.modes == ["distributed"] and exp.repeat == 1 and exp.duration == 10.0
    assert [(s.at, s.do) for s in exp.steps] == [(0.5, "traffic"), (2.0, "link_down"),
                                                 (5.0, "link_up")]
    assert exp.steps[0].params == {"pod": "pod1", "dst": "/B", "rate": 20.0, "duration": 9.0,
                                   "src": None, "method": "echo", "timeout": 0.5,
                                   "loop": "open", "arrivals": "constant", "seed": 1}
    assert exp.steps[1].line == 7          # the file's line of the step
    r = exp.resolved()
    assert r["record"] == {"calls": True, "fib": True, "control": True, "resources": True,
                           "sample": 0.5}
    assert r["network"] == {"probe_ms": 0, "hello_ms": None, "lease_s": 6.0, "bmv2": "default"}


def test_the_shipped_experiments_are_valid():
    files = sorted(BASE.glob("*.yaml"))
    assert files
    for f in files:
        load(f)


def test_durations():
    assert [parse_duration(x) for x in ("5s", "500ms", "2m", 3, "1.5 s", ".25s")] == \
        [5.0, 0.5, 120.0, 3.0, 1.5, 0.25]
    for bad in ("5 parsecs", "-1s", True, "s"):
        with pytest.raises(ValueError):
            parse_duration(bad)


@pytest.mark.parametrize("body, line, field, msg", [
    ("name: t\ntopology: [unclosed\n", 3, "", "not valid YAML"),
    ("- a\n- b\n", 1, "the file", "must be a mapping"),
    ("", None, "", "the file is empty"),
    (HEAD + "colour: blue\n", 4, "colour", "unknown field; an experiment has: name,"),
    (HEAD + "duration: 3s\n", 4, "duration", "given twice"),
    ("name: t\nduration: 3s\n", 1, "topology", "is required"),
    ("name: t\ntopology: ../topologies/fig2.yaml\n", 1, "duration", "is required"),
    ("name: a b\ntopology: x\nduration: 1s\n", 1, "name", "letters, digits"),
    ("topology: nowhere.yaml\nduration: 3s\n", 1, "topology", "no topology file 'nowhere.yaml'"),
    ("topology: ring:x\nduration: 3s\n", 1, "topology", "not a generator spec"),
    ("topology: [ring:8, ring:8]\nduration: 3s\n", 1, "topology[1]", "listed twice"),
    (HEAD + "mode: hybrid\n", 4, "mode",
     "one of distributed, central, mesh, both, or a comma list of them; not 'hybrid'"),
    (HEAD + "mode: distributed,mesh,distributed\n", 4, "mode", "distributed is listed twice"),
    ("topology: ring:8\nduration: ten seconds\n", 2, "duration", "a duration such as 5s"),
    ("topology: ring:8\nduration: 0s\n", 2, "duration", "must be above 0"),
    (HEAD + "repeat: 0\n", 4, "repeat", "between 1 and 20"),
    (HEAD + "repeat: two\n", 4, "repeat", "must be an integer"),
    (HEAD + "network: {probe_ms: 100, hello: 3}\n", 4, "network.hello",
     "unknown field; network has: probe_ms, hello_ms, lease_s"),
    (HEAD + "network: {probe_ms: -1}\n", 4, "network.probe_ms", "between 0 and 10000"),
    (HEAD + "network: {bmv2: fast}\n", 4, "network.bmv2", "must be default or perf"),
    (HEAD + "mode: both\nnetwork:\n  probe_ms: 100\n", 6, "network.probe_ms",
     "the central mode runs without them"),
    (HEAD + "record: {calls: yes please}\n", 4, "record.calls", "true or false"),
    (HEAD + "record: {sample: 10ms}\n", 4, "record.sample", "between 100ms and 60s"),
    (HEAD + "record: {pcap: true}\n", 4, "record.pcap", "unknown field; record has:"),
    (HEAD + "steps: {at: 1s}\n", 4, "steps", "must be a list of steps"),
    (HEAD + "steps:\n  - link_down\n", 5, "steps[0]", "a step must be a mapping"),
    (HEAD + "steps:\n  - {do: link_down}\n", 5, "steps[0].at", "is required"),
    (HEAD + "steps:\n  - {at: 1s}\n", 5, "steps[0].do", "is required"),
    (HEAD + "steps:\n  - {at: 11s, do: kill_spa}\n", 5, "steps[0].at",
     "after the end of the experiment"),
    (HEAD + "steps:\n  - {at: soon, do: kill_spa}\n", 5, "steps[0].at", "a duration such as"),
    (HEAD + "steps:\n  - at: 1s\n    do: explode\n", 6, "steps[0].do", "no action 'explode'"),
    (HEAD + "steps:\n  - at: 1s\n    do: link_down\n    a: sg1\n    c: sr3\n", 8, "steps[0].c",
     "unknown parameter 'c'; link_down takes: a, b"),
    (HEAD + "steps:\n  - at: 1s\n    do: link_down\n    a: sg1\n", 5, "steps[0]",
     "parameter 'b' is required"),
    (HEAD + "steps:\n  - at: 1s\n    do: kill_switch\n    switch: sg9\n", 7, "steps[0].switch",
     "no switch 'sg9'; switches: sg1, sg2, sg3, sg4, sr1, sr2, sr3"),
    (HEAD + "steps:\n  - at: 1s\n    do: link_down\n    a: sg1\n    b: sg4\n", 8, "steps[0].b",
     "no link sg1-sg4; links of sg1:"),
    (HEAD + "steps:\n  - at: 1s\n    do: degrade\n    pod: pod4\n    service_ms: lots\n", 8,
     "steps[0].service_ms", "must be a number, not 'lots'"),
    (HEAD + "steps:\n  - at: 1s\n    do: announce\n    pod: pod4\n    prefix: B/9\n", 8,
     "steps[0].prefix", "'prefix'"),
    (HEAD + "steps:\n  - {at: 1s, do: kill_spa, only: sometimes}\n", 5, "steps[0].only",
     "one of distributed, central"),
    (HEAD + "mode: central\nsteps:\n  - {at: 1s, do: kill_agent, switch: sr1}\n", 6,
     "steps[0].do", "kill_agent cannot run in the central mode: it needs the agents, which "
                    "the central mode does not run (add `only: distributed` to the step)"),
    (HEAD + "steps:\n  - {at: 1s, do: kill_central}\n", 5, "steps[0].do",
     "kill_central cannot run in the distributed mode: it needs the central mode "
     "(add `only: central` to the step)"),
    (HEAD + "steps:\n  - {at: 1s, do: kill_scsc}\n", 5, "steps[0].do", "set network.probe_ms"),
    (HEAD + "steps:\n  - {at: 1s, do: traffic, pod: pod1, dst: /B, duration: 2s}\n", 5,
     "steps[0].rate", "is required for traffic"),
    (HEAD + "steps:\n  - {at: 1s, do: traffic, pod: pod1, dst: /B, rate: fast, duration: 2s}\n",
     5, "steps[0].rate", "a rate such as 50/s"),
    (HEAD + "steps:\n  - {at: 1s, do: traffic, pod: pod1, dst: /B, rate: 5000, duration: 2s}\n",
     5, "steps[0].rate", "at most 1000/s"),
    (HEAD + "steps:\n  - at: 5s\n    do: traffic\n    pod: pod1\n    dst: /B\n    rate: 10\n"
            "    duration: 6s\n", 10, "steps[0].duration", "would run until 11s"),
    (HEAD + "steps:\n  - {at: 1s, do: traffic, pod: pod7, dst: /B, rate: 10, duration: 2s}\n",
     5, "steps[0].pod", "no pod 'pod7'; pods: pod1, pod2, pod3, pod4"),
    (HEAD + "steps:\n  - {at: 1s, do: traffic, pod: pod1, src: /B/4, dst: /B, rate: 10, "
            "duration: 2s}\n", 5, "steps[0].src", "/B/4 is not an instance of pod1"),
    (HEAD + "steps:\n  - {at: 1s, do: traffic, pod: pod1, dst: /B, rate: 10, duration: 2s, "
            "burst: 3}\n", 5, "steps[0].burst", "unknown field; traffic takes:"),
])
def test_each_bad_file_is_refused_with_its_line_and_field(body, line, field, msg):
    refused(body, line, field, msg)


def test_a_sweep_checks_names_in_every_topology():
    body = ("topology: [ring:8, ring:16]\nduration: 5s\nsteps:\n"
            "  - at: 1s\n    do: kill_switch\n    switch: r12\n")
    with pytest.raises(ExperimentError) as exc:
        check(body)
    assert exc.value.line == 6 and exc.value.field == "steps[0].switch"
    assert "(topology ring:8)" in str(exc.value)


def test_a_mode_given_on_the_command_line_is_checked_like_the_files():
    body = HEAD + "steps:\n  - {at: 1s, do: kill_agent, switch: sr1}\n"
    assert check(body).modes == ["distributed"]
    refused(body, 5, "steps[0].do", "the central mode does not run",
            modes=["distributed", "central"])


def test_only_restricts_a_step_to_one_mode():
    exp = check(HEAD + "mode: both\nsteps:\n  - {at: 1s, do: kill_agent, switch: sr1, "
                       "only: distributed}\n  - {at: 2s, do: kill_central, only: central}\n")
    assert [s.do for s in exp.steps_for("distributed")] == ["kill_agent"]
    assert [s.do for s in exp.steps_for("central")] == ["kill_central"]


def test_traffic_says_its_loop_and_arrivals():
    exp = check(HEAD + """\
steps:
  - {at: 0s, do: traffic, pod: pod1, dst: /B, rate: 20/s, duration: 9s, arrivals: poisson,
     seed: 7}
  - {at: 0s, do: traffic, pod: pod2, dst: /B, rate: 20/s, duration: 9s, loop: closed}
""")
    assert [(s.params["loop"], s.params["arrivals"], s.params["seed"]) for s in exp.steps] \
        == [("open", "poisson", 7), ("closed", "constant", 1)]
    assert exp.steps[1].label() == "traffic pod2->/B 20/s closed loop"
    refused(HEAD + """\
steps:
  - {at: 0s, do: traffic, pod: pod1, dst: /B, rate: 20/s, duration: 9s, loop: half-open}
""", 5, "steps[0].loop", "one of open, closed; not 'half-open'")
    refused(HEAD + """\
steps:
  - at: 0s
    do: traffic
    pod: pod1
    dst: /B
    rate: 20/s
    duration: 9s
    loop: closed
    arrivals: poisson
""", 12, "steps[0].arrivals", "arrivals apply to the open loop only")
    refused(HEAD + """\
steps:
  - {at: 0s, do: traffic, pod: pod1, dst: /B, rate: 20/s, duration: 9s, arrivals: bursty}
""", 5, "steps[0].arrivals", "one of constant, poisson")


def test_an_application_is_checked_against_the_file_and_the_topology(tmp_path):
    exp = load(BASE / "social-network.yaml")
    assert exp.app_path.resolve() == (ROOT / "apps" / "social-network.yaml").resolve()
    assert exp.resolved()["application"] == "../apps/social-network.yaml"
    (tmp_path / "bad.yaml").write_text("services:\n  a:\n    methods:\n      m: {calls: [b.m]}\n")
    refused(HEAD + f"application: {tmp_path / 'bad.yaml'}\n", 4, "application",
            "bad.yaml, line 4, services.a.methods.m.calls[0]: no service 'b'")
    refused(HEAD + "application: ../apps/social-network.yaml\n", 4, "application",
            "no instance of frontend, compose, unique_id")      # fig2 serves none of them
    refused(HEAD + "application: nowhere.yaml\n", 4, "application", "no application file")


# -- three modes: distributed, central, mesh (docs/mesh.md) ---------------------------------
def test_modes_are_one_a_comma_list_a_yaml_list_or_both():
    assert check(HEAD + "mode: mesh\n").modes == ["mesh"]
    assert check(HEAD + "mode: distributed,central,mesh\n").modes == \
        ["distributed", "central", "mesh"]
    assert check(HEAD + "mode: [mesh, distributed]\n").modes == ["mesh", "distributed"]
    assert check(HEAD + "mode: both\n").modes == ["distributed", "central"]
    assert check(HEAD, modes=["distributed", "central", "mesh"]).modes == \
        ["distributed", "central", "mesh"]
    refused(HEAD, None, "mode", "not 'istio'", modes=["mesh", "istio"])


@pytest.mark.parametrize("step", [
    "{at: 1s, do: kill_scsc}", "{at: 1s, do: restart_scsc}", "{at: 1s, do: kill_agent, switch: sr1}",
    "{at: 1s, do: fib, switch: sg1}", "{at: 1s, do: probe, pod: pod3, dst: /B}",
    "{at: 1s, do: spoof, pod: pod2, src: /B/4, dst: /A}", "{at: 1s, do: kill_central}",
    "{at: 1s, do: kill_switch, switch: sr3}", "{at: 1s, do: withdraw, pod: pod4, prefix: /B/4}",
])
def test_a_step_that_means_nothing_in_the_mesh_mode_is_refused_naming_it_and_the_mode(step):
    body = HEAD + "mode: mesh\nnetwork: {probe_ms: {distributed: 100}}\nsteps:\n  - " + step + "\n"
    with pytest.raises(ExperimentError) as exc:
        check(body)
    e = exc.value
    do = step.split("do: ")[1].split(",")[0].rstrip("}")
    assert (e.line, e.field) == (7, "steps[0].do"), str(e)
    assert f"{do} cannot run in the mesh mode: it " in str(e), str(e)


def test_the_steps_the_mesh_mode_runs_load_in_all_three_modes():
    exp = check(HEAD + """\
mode: distributed,central,mesh
steps:
  - {at: 0s, do: traffic, pod: pod3, dst: /B, rate: 40/s, duration: 9s}
  - {at: 1s, do: degrade, pod: pod1, service_ms: 200}
  - {at: 2s, do: kill_pod, pod: pod4}
  - {at: 3s, do: start_pod, pod: pod4}
  - {at: 4s, do: link_down, a: sg4, b: sr3}
  - {at: 4.5s, do: link_up, a: sg4, b: sr3}
  - {at: 5s, do: announce, pod: pod4, prefix: /B/7}
  - {at: 6s, do: kill_controller, only: "central,mesh"}
  - {at: 6s, do: kill_spa, only: distributed}
  - {at: 7s, do: restart_controller, only: [central, mesh]}
  - {at: 7s, do: restart_spa, only: distributed}
  - {at: 8s, do: call, pod: pod3, dst: /B/7}
""")
    assert [s.do for s in exp.steps_for("mesh")] == [
        "traffic", "degrade", "kill_pod", "start_pod", "link_down", "link_up", "announce",
        "kill_controller", "restart_controller", "call"]
    assert [s.do for s in exp.steps_for("distributed")][7:9] == ["kill_spa", "restart_spa"]
    assert exp.steps_for("central") == exp.steps_for("mesh")
    assert exp.resolved()["steps"][7]["only"] == "central,mesh"
    assert exp.network_for("mesh")["mesh_timeout_ms"] == 1000       # the sidecars' default


def test_the_controller_of_a_mode_is_refused_where_there_is_none():
    refused(HEAD + "mode: distributed,mesh\nsteps:\n  - {at: 1s, do: kill_controller}\n", 6,
            "steps[0].do", "kill_controller cannot run in the distributed mode: it needs a "
                           "controller: the distributed mode has none")
    refused(HEAD + "mode: [central, mesh]\nsteps:\n  - {at: 1s, do: kill_agent, switch: sr3,"
                   " only: mesh}\n", 6, "steps[0].do",
            "kill_agent cannot run in the mesh mode: it needs the agents, which the mesh mode "
            "does not run (its control plane is the mesh control plane: kill_controller) "
            "(add `only: distributed` to the step)")


def test_probes_are_given_for_the_distributed_runs_only_when_other_modes_run_too():
    exp = check(HEAD + "mode: distributed,central,mesh\nnetwork:\n  probe_ms: {distributed: 100}"
                       "\n  mesh_timeout_ms: 100\nsteps:\n"
                       "  - {at: 1s, do: kill_scsc, only: distributed}\n")
    assert [exp.network_for(m)["probe_ms"] for m in exp.modes] == [100, 0, 0]
    assert exp.network_for("mesh")["mesh_timeout_ms"] == 100
    refused(HEAD + "mode: distributed,mesh\nnetwork:\n  probe_ms: 100\n", 6, "network.probe_ms",
            "the mesh mode runs without them (set mode: distributed, drop probe_ms, or give it "
            "for the distributed runs only: probe_ms: {distributed: 100})")
    refused(HEAD + "mode: both\nnetwork:\n  probe_ms: {central: 100}\n", 6,
            "network.probe_ms.central", "the central mode runs without them")
    refused(HEAD + "mode: both\nnetwork:\n  probe_ms: {hybrid: 100}\n", 6,
            "network.probe_ms.hybrid", "one of distributed, central, mesh; not 'hybrid'")
    # kill_scsc in a mode without probes: refused, naming the mode
    refused(HEAD + "mode: both\nnetwork:\n  probe_ms: {distributed: 100}\nsteps:\n"
                   "  - {at: 1s, do: kill_scsc}\n", 8, "steps[0].do",
            "kill_scsc cannot run in the central mode")
    refused(HEAD + "mode: both\nnetwork:\n  probe_ms: {distributed: 0}\nsteps:\n"
                   "  - {at: 1s, do: kill_scsc, only: distributed}\n", 8, "steps[0].do",
            "kill_scsc needs the SCSC: set network.probe_ms for the distributed mode")
