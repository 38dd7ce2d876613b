"""p4runtime-shell, the inspection tool users are shown, in a venv of its own.

p4runtime-shell 0.0.6 pins protobuf < 3.21 and p4runtime == 1.4.1, while the
controller runs protobuf >= 6 (upb) with the P4Runtime code in ``p4/``; so
``scripts/setup.sh`` makes ``.venv-shell`` for the shell alone, and
``dmsc shell SWITCH`` prints a command line that runs it there.
"""
from __future__ import annotations

import glob
from pathlib import Path

from controller.switch.artifacts import REPO_ROOT

SHELL_VENV = REPO_ROOT / ".venv-shell"


class ShellMissing(RuntimeError):
    """The shell's venv is not there, or has no p4runtime-shell in it."""


def shell_python(venv: Path | None = None) -> Path:
    """The shell venv's python; raises :class:`ShellMissing` saying how to make it."""
    venv = SHELL_VENV if venv is None else Path(venv)
    python = venv / "bin" / "python"
    if not python.exists():
        raise ShellMissing(f"p4runtime-shell's venv {venv} is missing: run `make setup` "
                           "(it makes it with p4runtime-shell 0.0.6)")
    if not glob.glob(str(venv / "lib" / "python3*" / "site-packages" / "p4runtime_sh")):
        raise ShellMissing(f"{venv} has no p4runtime-shell: run `make setup`, or "
                           f"{python} -m pip install p4runtime-shell==0.0.6")
    return python


def shell_cmd(grpc_addr: str, device_id: int, venv: Path | None = None) -> str:
    """p4runtime-shell on a running switch. No --config: the shell reads the
    P4Info from the switch instead of pushing a pipeline (which would wipe it).
    The agents hold election id 0,100, so the shell (0,2) is a read-only backup.
    ``-I``: the current directory stays off sys.path, so the repo's ``p4/``
    (generated for protobuf 6) cannot shadow the shell's own p4runtime package."""
    return (f"{shell_python(venv)} -I -m p4runtime_sh --grpc-addr {grpc_addr} "
            f"--device-id {device_id} --election-id 0,2")
