"""`dmsc shell` points at p4runtime-shell in its own venv (.venv-shell), and
says so clearly when that venv is missing."""
from __future__ import annotations

import json
import shlex
import subprocess

import pytest

from controller.switch import p4names as N
from controller.switch.p4rt import P4Type, SwitchConnection
from dmsc import cli, p4shell
from tests.conftest import BMV2_JSON, P4INFO, ROOT
from tests.support.fake_p4rt import FakeServer


def _run_dir(tmp_path, addr="127.0.0.1:50099", device_id=4):
    (tmp_path / "network.json").write_text(json.dumps(
        {"switches": {"sg1": {"grpc_addr": addr, "device_id": device_id}}}))
    return tmp_path


def _shell_venv_or_skip():
    try:
        return p4shell.shell_python()
    except p4shell.ShellMissing as exc:
        pytest.skip(f"no p4runtime-shell venv here: {exc}")


def test_dmsc_shell_prints_the_shell_venvs_python(tmp_path, capsys):
    python = _shell_venv_or_skip()
    assert cli.main(["shell", "sg1", "--run-dir", str(_run_dir(tmp_path))]) == 0
    argv = shlex.split(capsys.readouterr().out.strip())
    assert argv[0] == str(ROOT / ".venv-shell" / "bin" / "python") == str(python)
    assert argv[1:] == ["-I", "-m", "p4runtime_sh", "--grpc-addr", "127.0.0.1:50099",
                        "--device-id", "4", "--election-id", "0,2"]


def test_dmsc_shell_says_when_the_shell_venv_is_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(p4shell, "SHELL_VENV", tmp_path / "no-such-venv")
    assert cli.main(["shell", "sg1", "--run-dir", str(_run_dir(tmp_path))]) == 1
    out = capsys.readouterr().out
    assert "no-such-venv is missing" in out.replace("\n", "") and "make setup" in out
    (tmp_path / "no-such-venv" / "bin").mkdir(parents=True)
    (tmp_path / "no-such-venv" / "bin" / "python").touch()     # a venv without the shell
    with pytest.raises(p4shell.ShellMissing, match="has no p4runtime-shell"):
        p4shell.shell_python()


def test_the_printed_command_opens_a_shell_on_the_switch():
    """The command `dmsc shell` prints runs p4runtime-shell (protobuf 3.20, its own
    p4runtime package) against a P4Runtime server whose pipeline the controller
    (protobuf 6) pushed, and reads the P4Info from it: both stacks speak one wire."""
    _shell_venv_or_skip()
    with FakeServer() as (_fake, addr):
        with SwitchConnection("s", addr, 1, election_id=(0, 100)).connect() as sw:
            sw.set_pipeline(str(P4INFO), str(BMV2_JSON))
            fib_id = sw.ctx.get_obj_id(P4Type.table, N.TABLE_FIB)
            res = subprocess.run(shlex.split(p4shell.shell_cmd(addr, 1)),
                                 input=f'print("FIB_ID", tables["{N.TABLE_FIB}"].id)\n',
                                 capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert f"FIB_ID {fib_id}" in res.stdout, res.stdout[-2000:] + res.stderr[-2000:]
