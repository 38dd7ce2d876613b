#!/usr/bin/env bash
# One-time setup of the DMSC testbed on Ubuntu (22.04/24.04) or Debian 12.
#   - OS packages: Mininet (python3-mininet + mnexec), iproute2, tcpdump, tshark, venv;
#   - BMv2 with P4Runtime (simple_switch_grpc), scripts/toolchain.py: p4lang's Ubuntu
#     package where reachable, else PI and BMv2 built from pinned sources;
#   - .venv with the system site packages (for Mininet) and our Python deps
#     (protobuf >= 6, upb); .venv-shell with p4runtime-shell (`dmsc shell`).
# Idempotent: what is already there is left alone. Needs root for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v mnexec >/dev/null || need_apt+=(mininet)
command -v ip >/dev/null || need_apt+=(iproute2)
command -v tcpdump >/dev/null || need_apt+=(tcpdump)
command -v tshark >/dev/null || need_apt+=(tshark)     # the DMSC dissector's tests, dmsc pcap
command -v grpc_python_plugin >/dev/null || need_apt+=(protobuf-compiler-grpc)  # make protos, its test
/usr/bin/python3 -c 'import ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v haproxy >/dev/null || need_apt+=(haproxy)   # the mesh baseline's sidecars (docs/mesh.md)
command -v ethtool >/dev/null || need_apt+=(ethtool)   # the mesh's pods: TCP checksums not offloaded

if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to install: ${need_apt[*]} (run: sudo make setup)" >&2
    exit 1
  fi
  echo "setup: installing ${need_apt[*]} (Debian packages)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# The sidecars run only inside Mininet hosts' namespaces (one haproxy per pod): the
# distribution's system service must not run or listen in the root namespace.
if [ "$(id -u)" -eq 0 ] && [ -e /lib/systemd/system/haproxy.service ]; then
  systemctl disable --now haproxy.service >/dev/null 2>&1 || {
    rm -f /etc/systemd/system/multi-user.target.wants/haproxy.service
    service haproxy stop >/dev/null 2>&1 || true
    update-rc.d haproxy disable >/dev/null 2>&1 || true; }
fi

# Optional, for the tests only: headless Chromium for the live view's browser test
# (skipped, saying so, without it). Debian's package; WITH_BROWSER=0 leaves it out.
if [ "${WITH_BROWSER:-1}" = "1" ] && ! command -v chromium >/dev/null \
   && ! command -v chromium-browser >/dev/null && [ "$(id -u)" -eq 0 ]; then
  echo "setup: installing chromium (Debian package, for the live view's browser test)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
    || echo "setup: chromium not installed (optional: the live view's browser test skips)" >&2
fi

# BMv2 (simple_switch_grpc): nothing when a stamp or a switch on PATH says it is
# there; p4lang's package on Ubuntu when reachable; otherwise PI and BMv2 built from
# pinned sources (DMSC_TOOLCHAIN_SRC=DIR: a folder of the tarballs), about 15 minutes
# on 2 cores, a line per stage. A failed build stops setup here, saying what to do.
/usr/bin/python3 scripts/toolchain.py

# The controller's venv: protobuf >= 6 with its upb backend, grpcio, the P4Runtime
# code generated in p4/. A venv from before (p4runtime-shell, protobuf 3.20) is
# upgraded in place: PyPI's p4runtime package would shadow p4/ and pins protobuf 3.20.
if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
for old in p4runtime-shell p4runtime; do
  if .venv/bin/python -m pip show -q "$old" >/dev/null 2>&1; then
    echo "setup: removing $old from .venv (it now has a venv of its own: .venv-shell)"
    .venv/bin/python -m pip uninstall -q -y "$old"
  fi
done
# -I: no current directory on sys.path, so this checks what the venv itself imports.
venv_ok='
import scapy, networkx, numpy, yaml, rich, pytest, grpc, cryptography, hdrh, controller
import controller.switch.p4runtime.p4.v1.p4runtime_pb2, google.rpc.status_pb2, google.protobuf as pb
from google.protobuf.internal import api_implementation
assert int(pb.__version__.split(".")[0]) >= 6, pb.__version__
assert api_implementation.Type() == "upb", api_implementation.Type()
'
# ... and reinstall whenever pyproject.toml changed since the last install (new deps).
stamp=.venv/.dmsc-pyproject.sha256
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if ! .venv/bin/python -I -c "$venv_ok" 2>/dev/null || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q --upgrade -e '.[test]'
  .venv/bin/python -I -c "$venv_ok"
  echo "$want" > "$stamp"
fi

# p4runtime-shell, the inspection tool users are shown (dmsc shell), in a venv of
# its own: it pins protobuf < 3.21 and p4runtime == 1.4.1. Optional: the
# controller and the tests do not need it, so a failure here only warns.
if ! .venv-shell/bin/python -I -c 'import p4runtime_sh.shell' 2>/dev/null; then
  if /usr/bin/python3 -m venv .venv-shell \
      && .venv-shell/bin/python -m pip install -q --upgrade pip \
      && .venv-shell/bin/python -m pip install -q 'p4runtime-shell==0.0.6'; then
    echo "setup: .venv-shell ready (p4runtime-shell)"
  else
    echo "setup: WARNING: could not make .venv-shell with p4runtime-shell;" \
         "'dmsc shell' will say so (the controller does not need it)" >&2
  fi
fi
echo "setup: done (.venv ready; simple_switch_grpc: $(command -v simple_switch_grpc || echo missing))"
