"""scripts/toolchain.py: setup's decisions about BMv2, with the machine faked.

What a user relies on: a second `make setup` does nothing; a switch already on PATH
is used; Ubuntu gets p4lang's package only when it is reachable; everything else is
built from the pinned sources (tarballs whose sums are checked, or git at the pinned
commit); a failed stage names itself, shows its log's end and says what to do.
"""
from __future__ import annotations

import importlib.util
import io
import json
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("toolchain", ROOT / "scripts" / "toolchain.py")
tc = importlib.util.module_from_spec(_spec)
sys.modules["toolchain"] = tc          # dataclasses look their module up there
_spec.loader.exec_module(tc)


def facts(**kw) -> "tc.Facts":
    base = dict(os_id="debian", os_version="12", root=True, prefix="/usr/local",
                on_path=None, stamp=None, src_dir=None, p4lang_reachable=None)
    base.update(kw)
    return tc.Facts(**base)


def commands(steps) -> list[list[str]]:
    return [argv for step in steps for argv, _ in step.commands]


def names(steps) -> list[str]:
    return [s.name for s in steps]


BUILD = ["deps", "PI-source", "bmv2-source", "PI-configure", "PI-build", "PI-install",
         "bmv2-configure", "bmv2-build", "bmv2-install"]


def test_a_matching_stamp_with_its_switch_means_nothing_to_do(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "simple_switch_grpc").write_text("")
    why, steps = tc.plan(facts(prefix=str(tmp_path), stamp=tc.wanted_stamp()), tmp_path)
    assert steps == [] and "up to date" in why


def test_a_stamp_of_other_pins_or_without_its_switch_builds_again(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "simple_switch_grpc").write_text("")
    old = tc.wanted_stamp()
    old["pins"]["bmv2"] = "0" * 40
    assert names(tc.plan(facts(prefix=str(tmp_path), stamp=old), tmp_path)[1]) == BUILD
    (tmp_path / "bin" / "simple_switch_grpc").unlink()
    assert names(tc.plan(facts(prefix=str(tmp_path), stamp=tc.wanted_stamp()),
                         tmp_path)[1]) == BUILD


def test_a_switch_on_path_is_used_for_the_default_prefix_only(tmp_path):
    why, steps = tc.plan(facts(on_path="/usr/bin/simple_switch_grpc"), tmp_path)
    assert steps == [] and "/usr/bin/simple_switch_grpc" in why
    # A scratch prefix is a request to build there, whatever PATH has.
    _, steps = tc.plan(facts(on_path="/usr/bin/simple_switch_grpc",
                             prefix=str(tmp_path / "scratch")), tmp_path)
    assert names(steps) == BUILD


def test_without_root_it_says_to_use_sudo(tmp_path):
    with pytest.raises(tc.ToolchainError, match="sudo make setup"):
        tc.plan(facts(root=False), tmp_path)


def test_ubuntu_gets_the_package_only_when_reachable(tmp_path):
    why, steps = tc.plan(facts(os_id="ubuntu", os_version="24.04", p4lang_reachable=True),
                         tmp_path)
    assert names(steps) == ["package"] and "p4lang-bmv2" in why
    assert "xUbuntu_24.04" in commands(steps)[0][-1]
    _, steps = tc.plan(facts(os_id="ubuntu", os_version="24.04", p4lang_reachable=False),
                       tmp_path)
    assert names(steps) == BUILD


def test_debian_builds_from_the_tarball_folder_with_sums(tmp_path):
    why, steps = tc.plan(facts(src_dir="/srv/tarballs"), tmp_path)
    assert names(steps) == BUILD and "DMSC_TOOLCHAIN_SRC=/srv/tarballs" in why
    assert "15 minutes" in why
    unpacks = [argv for argv in commands(steps) if argv[0] == "@unpack"]
    assert unpacks == [["@unpack", f"/srv/tarballs/{p.tarball}", p.sha256, p.top,
                        str(tmp_path / "src" / p.name)] for p in tc.PINS]
    assert not any(argv[0] == "git" for argv in commands(steps))


def test_without_a_folder_it_clones_at_the_pinned_commits(tmp_path):
    _, steps = tc.plan(facts(), tmp_path)
    cmds = commands(steps)
    for pin in tc.PINS:
        dest = str(tmp_path / "src" / pin.name)
        assert ["git", "clone", "--no-checkout", pin.url, dest] in cmds
        assert ["@check-commit", dest, pin.commit] in cmds
    # PI's protos and third-party code are submodules; BMv2 has none.
    pi, bmv2 = (next(s for s in steps if s.name == f"{n}-source") for n in ("PI", "bmv2"))
    assert any(argv[:2] == ["git", "submodule"] for argv, _ in pi.commands)
    assert not any(argv[:2] == ["git", "submodule"] for argv, _ in bmv2.commands)


def test_configure_flags_are_the_recipes(tmp_path):
    _, steps = tc.plan(facts(src_dir="/s"), tmp_path)
    conf = {s.name: s.commands[1][0] for s in steps if s.name.endswith("-configure")}
    assert conf["PI-configure"] == ["./configure", "--prefix=/usr/local", "--with-proto",
                                    "--without-internal-rpc", "--without-cli", "--without-bmv2"]
    # No Thrift: with it every switch opens a Thrift server on all interfaces.
    assert conf["bmv2-configure"] == ["./configure", "--prefix=/usr/local", "--with-pi",
                                      "--without-thrift", "--with-nanomsg"]


def test_a_scratch_prefix_builds_bmv2_against_its_own_pi(tmp_path):
    _, steps = tc.plan(facts(prefix="/opt/scratch", src_dir="/s"), tmp_path)
    conf = next(s for s in steps if s.name == "bmv2-configure").commands[1][0]
    assert "--prefix=/opt/scratch" in conf
    assert "CPPFLAGS=-I/opt/scratch/include" in conf and "LDFLAGS=-L/opt/scratch/lib" in conf


def _tarball(tmp_path: Path, top: str) -> Path:
    tree = tmp_path / "tree" / top
    tree.mkdir(parents=True)
    (tree / "configure.ac").write_text("AC_INIT\n")
    path = tmp_path / f"{top}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(tree, arcname=top)
    return path


def test_unpack_checks_the_sum_before_it_extracts(tmp_path):
    path = _tarball(tmp_path, "PI")
    dest = tmp_path / "src" / "PI"
    with pytest.raises(tc.ToolchainError, match="not the pinned source"):
        tc.unpack(str(path), "0" * 64, "PI", str(dest), log=io.StringIO())
    assert not dest.exists()
    tc.unpack(str(path), tc.sha256_of(path), "PI", str(dest), log=io.StringIO())
    assert (dest / "configure.ac").read_text() == "AC_INIT\n"


def test_unpack_names_a_missing_tarball(tmp_path):
    with pytest.raises(tc.ToolchainError, match="PI-f96af95.tar.gz"):
        tc.unpack(str(tmp_path / "PI-f96af95.tar.gz"), "0" * 64, "PI", str(tmp_path / "d"),
                  log=io.StringIO())


def test_a_failed_stage_names_itself_shows_its_log_and_says_what_to_do(tmp_path):
    out = io.StringIO()
    runner = tc.Runner(tmp_path / "logs", out=out)
    step = tc.Step("PI-configure", "configure",
                   [(["sh", "-c", "echo checking for protoc... no; echo 'error: protoc missing'; "
                      "exit 3"], None)])
    with pytest.raises(tc.ToolchainError) as err:
        runner.run_step(4, 9, step)
    msg = str(err.value)
    assert "stage 'PI-configure' failed" in msg and "exited 3" in msg
    assert "error: protoc missing" in msg                 # the log's last lines
    assert "what to do: a build dependency is missing" in msg
    assert "[4/9] PI-configure" in out.getvalue() and "04-PI-configure.log" in out.getvalue()


def test_a_source_with_a_wrong_sum_stops_the_build_there(tmp_path):
    path = _tarball(tmp_path, "bmv2")
    runner = tc.Runner(tmp_path / "logs", out=io.StringIO())
    step = tc.Step("bmv2-source", "tarball",
                   [(["@unpack", str(path), "f" * 64, "bmv2", str(tmp_path / "src" / "bmv2")],
                     None)])
    with pytest.raises(tc.ToolchainError, match="stage 'bmv2-source' failed.*not the pinned"):
        runner.run_step(3, 9, step)


def test_setup_builds_once_then_the_stamp_makes_it_do_nothing(tmp_path, monkeypatch, capsys):
    """main(): every stage run in order, the stamp left; the second run runs none."""
    prefix = tmp_path / "prefix"
    ran: list[str] = []

    def fake_step(self, index, total, step):
        ran.append(step.name)
        if step.name == "bmv2-install":          # what make install would leave
            (prefix / "bin").mkdir(parents=True)
            (prefix / "bin" / "simple_switch_grpc").write_text("")
        return 0.0

    monkeypatch.setattr(tc.Runner, "run_step", fake_step)
    monkeypatch.setattr(tc, "verify", lambda p: "1.15.5")
    monkeypatch.setattr(tc.os, "geteuid", lambda: 0)
    monkeypatch.setattr(tc.shutil, "which", lambda name: None)
    argv = ["--prefix", str(prefix), "--src", "/s", "--work", str(tmp_path / "work")]
    assert tc.main(argv) == 0
    assert ran == BUILD
    assert json.loads((prefix / tc.STAMP_NAME).read_text()) == tc.wanted_stamp()
    ran.clear()
    assert tc.main(argv) == 0
    assert ran == [] and "up to date" in capsys.readouterr().out


def test_main_reports_a_failed_build_and_exits_nonzero(tmp_path, monkeypatch, capsys):
    def failing(self, index, total, step):
        raise tc.ToolchainError(f"toolchain: stage '{step.name}' failed: boom")

    monkeypatch.setattr(tc.Runner, "run_step", failing)
    monkeypatch.setattr(tc.os, "geteuid", lambda: 0)
    monkeypatch.setattr(tc.shutil, "which", lambda name: None)
    assert tc.main(["--prefix", str(tmp_path / "p"), "--src", "/s",
                    "--work", str(tmp_path / "w")]) == 1
    assert "stage 'deps' failed: boom" in capsys.readouterr().err
    assert not (tmp_path / "p" / tc.STAMP_NAME).exists()


def test_the_pins_match_the_shared_tarballs_sums():
    """The pins are the sums the shared toolchain folder publishes (when it is here)."""
    sums = ROOT.parent / "shared" / "toolchain" / "SHA256SUMS"
    if not sums.exists():
        pytest.skip("optional: no ../shared/toolchain beside this checkout")
    published = dict(reversed(line.split()) for line in sums.read_text().splitlines() if line)
    assert {p.tarball: p.sha256 for p in tc.PINS} == published


def _run_inner(require_all: bool, body: str):
    """Run a tiny test file under this repo's conftest, with or without the variable."""
    import os
    import subprocess
    env = {k: v for k, v in os.environ.items() if k != "DMSC_REQUIRE_ALL"}
    if require_all:
        env["DMSC_REQUIRE_ALL"] = "1"
    # rootdir and conftest are the repo's: copy the file into tests/ under a unique name.
    target = ROOT / "tests" / f"test_zz_inner_{os.getpid()}.py"
    target.write_text(body)
    try:
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(target)], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)
    finally:
        target.unlink()


INNER = '''
import pytest
def test_needs_a_tool():
    pytest.skip("needs tshark (Debian package 'tshark')")
def test_p4c_is_optional():
    pytest.skip("optional: needs a whole p4c")
'''


def test_require_all_turns_a_missing_tool_into_a_failure():
    res = _run_inner(True, INNER)
    out = res.stdout
    assert res.returncode == 1, out
    assert "DMSC_REQUIRE_ALL=1 and this test would have skipped: needs tshark" in out
    assert "1 skipped" in out           # the optional p4c skip stays a skip
    res = _run_inner(False, INNER)
    assert res.returncode == 0 and "failed" not in res.stdout, res.stdout


def test_the_perf_flavour_builds_bmv2_alone_against_the_default_pi(tmp_path):
    prefix = str(tmp_path / "perf")
    why, steps = tc.plan(facts(prefix=prefix, flavour="perf", pi_installed=True,
                               src_dir="/s"), tmp_path)
    assert names(steps) == ["deps", "bmv2-source", "bmv2-configure", "bmv2-build", "bmv2-install"]
    assert "no logging macros" in why
    conf = next(s for s in steps if s.name == "bmv2-configure").commands[1][0]
    assert conf[:5] == ["./configure", f"--prefix={prefix}", "--with-pi", "--without-thrift",
                        "--with-nanomsg"]
    assert {"--disable-logging-macros", "--disable-elogger", "CXXFLAGS=-g -O3",
            f"LDFLAGS=-Wl,-rpath,{prefix}/lib"} <= set(conf)
    # its sources unpack apart from the default build's
    unpack = next(s for s in steps if s.name == "bmv2-source").commands[0][0]
    assert unpack[-1] == str(tmp_path / "perf" / "src" / "bmv2")


def test_the_perf_flavour_needs_the_default_pi_and_has_its_own_stamp(tmp_path):
    with pytest.raises(tc.ToolchainError, match="run `sudo make setup` first"):
        tc.plan(facts(prefix=str(tmp_path), flavour="perf", pi_installed=False), tmp_path)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "simple_switch_grpc").write_text("")
    default_stamp = tc.wanted_stamp()
    _, steps = tc.plan(facts(prefix=str(tmp_path), flavour="perf", pi_installed=True,
                             stamp=default_stamp), tmp_path)
    assert steps                                   # a default build's stamp is not the perf one
    why, steps = tc.plan(facts(prefix=str(tmp_path), flavour="perf", pi_installed=True,
                               stamp=tc.wanted_stamp("perf")), tmp_path)
    assert steps == [] and "up to date" in why


def test_a_missing_bmv2_build_says_how_to_get_it(monkeypatch):
    from topologies.emu.apps import bmv2_app as bmv2
    monkeypatch.setattr(bmv2.shutil, "which", lambda name: None)
    with pytest.raises(bmv2.SwitchStartError, match="toolchain.py --flavour perf"):
        bmv2.bmv2_binary("perf")
    with pytest.raises(bmv2.SwitchStartError, match="one of default, perf"):
        bmv2.bmv2_binary("fast")
    monkeypatch.setattr(bmv2.shutil, "which", lambda name: name)
    assert bmv2.bmv2_binary("perf") == "/usr/local/bmv2-perf/bin/simple_switch_grpc"
