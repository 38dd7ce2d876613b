"""What a network's run directory holds for its apps, made without a network:
the domain key (once, root's alone), the pods' keys (the topology's files or
made for the run), the SPA's registry file (run-time grants kept in the
generated one, never in the operator's), the pods' control files (a change
keeps what others set)."""
from __future__ import annotations

import json
import stat

from controller.spa.prefix_registry import Registry
from dmsc import cli
from tests.conftest import ROOT
from topologies.emu import pod_control, spa_registry
from topologies.emu.domain_key import domain_key_file, ensure_domain_key
from topologies.emu.identities import pod_identities
from topologies.topo import Topology
from traffic.identity import Identity

FIG2 = ROOT / "topologies" / "fig2.yaml"


def test_the_domain_key_is_made_once_and_readable_by_root_alone(tmp_path):
    path = ensure_domain_key(tmp_path)
    assert path == domain_key_file(tmp_path) == tmp_path / "domain.key"
    key = path.read_bytes()
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # agents, the central controller and the SCSC each ask: all get the same key
    assert ensure_domain_key(tmp_path).read_bytes() == key
    other = tmp_path / "other-run"
    other.mkdir()
    assert ensure_domain_key(other).read_bytes() != key          # one per network


def test_pods_keys_are_the_topologys_files_or_made_for_the_run(tmp_path):
    own = Identity.generate()
    own.save(tmp_path / "pod1.pem")
    text = FIG2.read_text().replace("pod1: {kind: pod,", "pod1: {kind: pod, key: pod1.pem,")
    (tmp_path / "topo.yaml").write_text(text)
    topo = Topology.load(tmp_path / "topo.yaml")
    run = tmp_path / "run"
    idents, files = pod_identities(topo, run)
    assert sorted(idents) == sorted(files) == ["pod1", "pod2", "pod3", "pod4"]
    assert files["pod1"] == tmp_path / "pod1.pem"
    assert idents["pod1"].key_id == own.key_id
    for pod in ("pod2", "pod3", "pod4"):
        assert files[pod] == run / "keys" / f"{pod}.pem"
        assert Identity.load(files[pod]).key_id == idents[pod].key_id   # what the pod reads
    assert len({i.key_id for i in idents.values()}) == 4


def test_a_run_time_grant_is_kept_in_the_generated_registry_only(tmp_path):
    topo = Topology.load(FIG2)
    idents, _files = pod_identities(topo, tmp_path)
    path = spa_registry.registry_file(topo, tmp_path, {p: i.public_raw for p, i in idents.items()})
    assert path == tmp_path / "registry.yaml"
    assert spa_registry.record_grant(path, tmp_path, "/E", None, ["pod2"])
    grants = {a.prefix: sorted(a.keys) for a in Registry.load(path).authorizations}
    assert grants["/E"] == ["pod2"] and grants["/B/4"] == ["pod4"]
    # an operator's registry file (the topology's own, outside the run) is never rewritten
    operator = tmp_path / "operator" / "registry.yaml"
    operator.parent.mkdir()
    operator.write_text(path.read_text())
    before = operator.read_text()
    assert not spa_registry.record_grant(operator, tmp_path, "/F", None, ["pod2"])
    assert operator.read_text() == before


def test_a_change_to_a_pods_control_file_keeps_what_others_set(tmp_path):
    pod_control.pods_dir(tmp_path).mkdir()
    pod_control.update_control(tmp_path, "pod1", withdrawn=["/B/1"], extra=["/E/1"])
    assert pod_control.update_control(tmp_path, "pod1", service_ms=80) == \
        {"withdrawn": ["/B/1"], "extra": ["/E/1"], "service_ms": 80}
    # `dmsc degrade` too: slowing a pod down does not announce again what it withdrew
    assert cli.main(["degrade", "pod1", "--service-ms", "200", "--run-dir", str(tmp_path)]) == 0
    assert json.loads(pod_control.control_file(tmp_path, "pod1").read_text()) == \
        {"withdrawn": ["/B/1"], "extra": ["/E/1"], "service_ms": 200.0}
    assert pod_control.read_control(tmp_path, "pod2") == {}


def test_a_pods_announcements_are_read_from_its_status_file(tmp_path):
    assert pod_control.announcements(tmp_path, "pod1") == {}        # before the pod wrote one
    pod_control.pods_dir(tmp_path).mkdir()
    pod_control.status_file(tmp_path, "pod1").write_text(
        json.dumps({"prefixes": {"/B/1": {"state": "accepted"}}}))
    assert pod_control.announcements(tmp_path, "pod1") == {"/B/1": {"state": "accepted"}}
