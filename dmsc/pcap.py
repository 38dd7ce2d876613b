"""Read a capture of DMSC frames: tshark with the project's Lua dissector.

    show("runs/net/pcap/sg1-eth1_in.pcap")                  one line per frame
    show(path, 'dmsc.dst_name == "/B/4"')                    only matching frames
    show(path, "dmsc.msg_id == 4097", verbose=True)          the decoded DMSC tree

The dissector is traffic/wire/wireshark/dmsc.lua (docs/wireshark.md lists its
filter fields). tshark is an optional dependency: without it :func:`show`
raises RuntimeError saying what to install. Nothing is captured here, only
files are read.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import traffic.wire

DISSECTOR = Path(traffic.wire.__file__).resolve().parent / "wireshark" / "dmsc.lua"
INSTALL_HINT = "install Wireshark's tshark (Debian/Ubuntu package 'tshark')"

# What tshark prints on stderr that is no failure: the warning it gives every
# run as root (Lua still loads: Debian's init.lua sets
# run_user_scripts_when_superuser = true).
_BENIGN = ("Running as user ",)


def tshark_path() -> str:
    path = shutil.which("tshark")
    if path is None:
        raise RuntimeError(f"tshark not found on PATH: {INSTALL_HINT} to read captures")
    return path


def tshark_command(pcap_path, display_filter: str | None = None, *,
                   verbose: bool = False) -> list[str]:
    """The tshark command line :func:`show` runs."""
    cmd = [tshark_path(), "-r", str(pcap_path), "-X", f"lua_script:{DISSECTOR}"]
    if display_filter:
        cmd += ["-Y", display_filter]
    if verbose:
        cmd += ["-V", "-O", "dmsc"]          # DMSC expanded, the layers below as one line
    return cmd


def show(pcap_path, display_filter: str | None = None, *, verbose: bool = False,
         out=None) -> int:
    """Print the frames of ``pcap_path`` decoded by the DMSC dissector: one line
    per frame (number, time, MACs, protocol, length, and the dissector's
    summary: type, dst and src names, msg_id, hop limit, ...), or with
    ``verbose`` every field. ``display_filter`` is a Wireshark display filter
    (``dmsc.dst_name == "/B/4"``, ``dmsc.msg_id == 4097``).

    Returns 0 (an exit status, for ``dmsc pcap``); raises RuntimeError when
    tshark is missing, the file or the filter is bad, or the dissector failed
    to load, with tshark's own message."""
    if not DISSECTOR.is_file():
        raise RuntimeError(f"the DMSC dissector is missing: {DISSECTOR}")
    if not Path(pcap_path).is_file():
        raise RuntimeError(f"no such capture file: {pcap_path}")
    out = sys.stdout if out is None else out
    cmd = tshark_command(pcap_path, display_filter, verbose=verbose)
    # stdout streams (a capture can be large); stderr goes to a file, so
    # that neither pipe can fill up while the other is read
    with tempfile.TemporaryFile("w+", errors="replace") as errfile, \
            subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errfile, text=True,
                             errors="replace") as proc:
        try:
            for line in proc.stdout:
                out.write(line)
        except BrokenPipeError:          # `dmsc pcap FILE | head`: the reader had enough
            proc.kill()
            proc.wait()
            return 0
        rc = proc.wait()
        errfile.seek(0)
        err = errfile.read()
    problems = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(_BENIGN)]
    if rc != 0:
        raise RuntimeError(f"tshark failed on {pcap_path} (exit {rc}): "
                           + ("; ".join(problems) or "no message"))
    lua_errors = [ln for ln in problems if "Lua" in ln and "rror" in ln]
    if lua_errors:
        raise RuntimeError(f"tshark could not run the DMSC dissector {DISSECTOR}: "
                           + "; ".join(lua_errors))
    return 0
