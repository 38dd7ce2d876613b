#!/usr/bin/env python3
"""Get BMv2's ``simple_switch_grpc`` onto this machine, whatever the machine.

Called by ``scripts/setup.sh`` (``make setup``); standard library only, because it
runs before the project's venv exists.

What it does, in the order it decides (``plan``):

1. a stamp in the prefix says this exact build is installed -> nothing to do;
2. ``simple_switch_grpc`` is already on PATH (a package, an own build) and the
   prefix is the default one -> use it, build nothing;
3. Ubuntu, root, and p4lang's package repository reachable -> ``p4lang-bmv2``;
4. otherwise build PI and BMv2 from pinned upstream sources, the way p4lang's
   install scripts and jafingerhut/p4-guide do: Debian's build dependencies, PI
   ``--with-proto --without-internal-rpc --without-cli --without-bmv2``, BMv2
   ``--with-pi --without-thrift --with-nanomsg`` (no Thrift: with it every switch
   opens a Thrift server on all interfaces), installed into the prefix.

Sources come from a folder of tarballs named by ``DMSC_TOOLCHAIN_SRC`` (sums
checked against ``PINS``), or else are cloned from upstream at the pinned commits
(the commit checked). Each stage prints one line and writes one log; a failed stage
stops with its name, the end of its log and what to do. The prefix is
``DMSC_TOOLCHAIN_PREFIX`` (default /usr/local), so a build can be proven into a
scratch prefix without touching the machine's switch.

    python3 scripts/toolchain.py            # what make setup runs
    python3 scripts/toolchain.py --plan     # say what it would do, do nothing
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PREFIX = "/usr/local"
STAMP_NAME = "share/dmsc-testbed/toolchain.json"


@dataclass(frozen=True)
class Pin:
    """One upstream source tree at an exact commit, and the tarball of it."""
    name: str            # stage prefix and folder name
    url: str             # upstream git repository
    commit: str
    tarball: str         # file name in DMSC_TOOLCHAIN_SRC
    sha256: str          # of that tarball
    top: str             # the tarball's top-level folder
    submodules: bool = False


# The pins. Bump a commit and its tarball's sum together (docs/toolchain.md).
PINS = (
    Pin("PI", "https://github.com/p4lang/PI.git",
        "f96af95e090619491e3abf2df69df340c2c9cb46", "PI-f96af95.tar.gz",
        "cd15a9fdf49995da4551d8f4b704dccb89182a3b8879b9166553e01de45b1ba0", "PI",
        submodules=True),
    Pin("bmv2", "https://github.com/p4lang/behavioral-model.git",
        "9674187f610c81878e3586f9a1746dcc7f903114", "behavioral-model-9674187.tar.gz",
        "d159a744328dbe3eb4540006423ed4294cd3b1cf140e4adafe7cfbc018e00048", "bmv2"),
)

# Debian 12 / Ubuntu build dependencies of PI (with protobuf/gRPC) and BMv2.
BUILD_DEPS = (
    "build-essential autoconf automake libtool libtool-bin pkg-config git "
    "libboost-dev libboost-system-dev libboost-thread-dev libboost-filesystem-dev "
    "libboost-program-options-dev libboost-test-dev libgmp-dev libpcap-dev libjudy-dev "
    "libnanomsg-dev libxxhash-dev libjsoncpp-dev libgrpc++-dev libgrpc-dev "
    "protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libprotoc-dev "
    "libreadline-dev libssl-dev").split()

PI_CONFIGURE = ("--with-proto", "--without-internal-rpc", "--without-cli", "--without-bmv2")
BMV2_CONFIGURE = ("--with-pi", "--without-thrift", "--with-nanomsg")

# The performance flavour (``--flavour perf``), as BMv2's docs/performance.md builds it
# for benchmarking: no logging macros, no event logger, -O3. Installed under a prefix
# of its own (the default switch keeps its logs for debugging), linked against the
# default flavour's PI, and found through its rpath.
PERF_PREFIX = "/usr/local/bmv2-perf"
PERF_CONFIGURE = ("--disable-logging-macros", "--disable-elogger", "CXXFLAGS=-g -O3")
FLAVOURS = ("default", "perf")

P4LANG_REPO = "http://download.opensuse.org/repositories/home:/p4lang/xUbuntu_{version}/"

MINUTES_ESTIMATE = 15   # measured on 2 cores (docs/toolchain.md)


class ToolchainError(Exception):
    """A stage failed; ``str()`` is what the user reads."""


@dataclass
class Facts:
    """What the decisions depend on, read once (tests build these by hand)."""
    os_id: str                    # /etc/os-release ID
    os_version: str               # VERSION_ID
    root: bool
    prefix: str
    on_path: str | None           # simple_switch_grpc found on PATH
    stamp: dict | None            # the stamp in the prefix, if any
    src_dir: str | None           # DMSC_TOOLCHAIN_SRC
    p4lang_reachable: bool | None = None   # asked only on Ubuntu
    flavour: str = "default"
    pi_installed: bool = False    # PI's library in the default prefix (perf links to it)

    @property
    def default_prefix(self) -> bool:
        return os.path.normpath(self.prefix) == DEFAULT_PREFIX


@dataclass
class Step:
    name: str
    why: str
    commands: list[tuple[list[str], str | None]] = field(default_factory=list)  # (argv, cwd)


def wanted_stamp(flavour: str = "default") -> dict:
    stamp = {"pins": {p.name: p.commit for p in PINS},
             "pi_configure": list(PI_CONFIGURE), "bmv2_configure": list(BMV2_CONFIGURE)}
    if flavour == "perf":
        stamp.update(flavour="perf", bmv2_configure=[*BMV2_CONFIGURE, *PERF_CONFIGURE])
    return stamp


def plan(facts: Facts, work: Path) -> tuple[str, list[Step]]:
    """Decide what to do: (a sentence for the user, the steps). No side effects."""
    binary = Path(facts.prefix) / "bin" / "simple_switch_grpc"
    if facts.stamp == wanted_stamp(facts.flavour) and binary.exists():
        return f"BMv2 up to date in {facts.prefix} (stamp {facts.prefix}/{STAMP_NAME})", []
    if facts.flavour == "perf":
        return plan_perf(facts, work)
    if facts.on_path and facts.default_prefix:
        return f"using the simple_switch_grpc on PATH ({facts.on_path}); nothing to build", []
    if not facts.root:
        raise ToolchainError(
            f"simple_switch_grpc (BMv2) is missing and installing it into {facts.prefix} "
            "needs root: run `sudo make setup`")
    if facts.os_id == "ubuntu" and facts.default_prefix and facts.p4lang_reachable:
        return "installing p4lang's BMv2 package (p4lang-bmv2)", [ubuntu_package_step(facts)]

    if facts.src_dir:
        where = f"the tarballs in DMSC_TOOLCHAIN_SRC={facts.src_dir}"
    else:
        where = "upstream git at the pinned commits (set DMSC_TOOLCHAIN_SRC=DIR for tarballs)"
    steps = [Step("deps", "Debian build dependencies",
                  [(["apt-get", "update", "-q"], None),
                   (["apt-get", "install", "-y", "-q", "--no-install-recommends", *BUILD_DEPS],
                    None)])]
    for pin in PINS:
        steps.append(source_step(pin, facts.src_dir, work))
    pi, bmv2 = (work / "src" / p.name for p in PINS)
    steps += build_steps("PI", pi, PI_CONFIGURE, facts.prefix)
    steps += build_steps("bmv2", bmv2, BMV2_CONFIGURE, facts.prefix, pi_prefix=facts.prefix)
    why = (f"building PI and BMv2 from {where} into {facts.prefix}: "
           f"about {MINUTES_ESTIMATE} minutes on 2 cores")
    return why, steps


def plan_perf(facts: Facts, work: Path) -> tuple[str, list[Step]]:
    """BMv2 alone, the performance flavour, against the default flavour's PI."""
    if not facts.root:
        raise ToolchainError(f"building the perf BMv2 into {facts.prefix} needs root: "
                             "run it with sudo")
    if not facts.pi_installed:
        raise ToolchainError("the perf BMv2 links against the PI of the default build, "
                             f"which is not in {DEFAULT_PREFIX}: run `sudo make setup` first")
    bmv2 = next(p for p in PINS if p.name == "bmv2")
    src = source_step(bmv2, facts.src_dir, work / "perf")
    steps = [Step("deps", "Debian build dependencies",
                  [(["apt-get", "install", "-y", "-q", "--no-install-recommends", *BUILD_DEPS],
                    None)]), src]
    steps += build_steps("bmv2", work / "perf" / "src" / "bmv2",
                         (*BMV2_CONFIGURE, *PERF_CONFIGURE,
                          f"LDFLAGS=-Wl,-rpath,{facts.prefix}/lib"), facts.prefix)
    return (f"building the performance BMv2 (no logging macros, no event logger, -O3) into "
            f"{facts.prefix}: about 10 minutes on 2 cores"), steps


def ubuntu_package_step(facts: Facts) -> Step:
    repo = P4LANG_REPO.format(version=facts.os_version)
    script = (
        f'echo "deb {repo} /" > /etc/apt/sources.list.d/home:p4lang.list && '
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q curl gnupg && "
        f'curl -fsSL "{repo}Release.key" | gpg --dearmor > /etc/apt/trusted.gpg.d/home_p4lang.gpg && '
        "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q p4lang-bmv2"
        + (" p4lang-p4c" if os.environ.get("WITH_P4C") == "1" else ""))
    return Step("package", "p4lang's Ubuntu package", [(["bash", "-c", script], None)])


def source_step(pin: Pin, src_dir: str | None, work: Path) -> Step:
    dest = work / "src" / pin.name
    if src_dir:
        tarball = Path(src_dir) / pin.tarball
        # _unpack is run in-process (see run_step): checks the sum, then extracts.
        return Step(f"{pin.name}-source", f"{pin.tarball} from {src_dir}",
                    [(["@unpack", str(tarball), pin.sha256, pin.top, str(dest)], None)])
    cmds = [(["rm", "-rf", str(dest)], None),
            (["git", "clone", "--no-checkout", pin.url, str(dest)], None),
            (["git", "-c", "advice.detachedHead=false", "checkout", pin.commit], str(dest)),
            (["@check-commit", str(dest), pin.commit], None)]
    if pin.submodules:
        cmds.append((["git", "submodule", "update", "--init", "--recursive"], str(dest)))
    return Step(f"{pin.name}-source", f"git clone {pin.url} at {pin.commit[:7]}", cmds)


def build_steps(name: str, tree: Path, configure: tuple[str, ...], prefix: str,
                pi_prefix: str | None = None) -> list[Step]:
    jobs = str(os.cpu_count() or 2)
    conf = ["./configure", f"--prefix={prefix}", *configure]
    if pi_prefix and os.path.normpath(pi_prefix) != DEFAULT_PREFIX:
        # BMv2 finds PI's headers and libraries in a scratch prefix too.
        conf += [f"CPPFLAGS=-I{pi_prefix}/include", f"LDFLAGS=-L{pi_prefix}/lib"]
    return [
        Step(f"{name}-configure", "autogen.sh and configure",
             [(["./autogen.sh"], str(tree)), (conf, str(tree))]),
        Step(f"{name}-build", f"make -j{jobs}", [(["make", f"-j{jobs}"], str(tree))]),
        Step(f"{name}-install", f"make install into {prefix}",
             [(["make", "install"], str(tree)), (["ldconfig"], None)]),
    ]


# ---------------------------------------------------------------------------
# Reading the facts and running the steps (the parts tests replace).

def read_facts(prefix: str, src_dir: str | None, ask_network: bool = True,
               flavour: str = "default") -> Facts:
    osr = {}
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            key, _, value = line.partition("=")
            osr[key] = value.strip('"')
    except OSError:
        pass
    stamp = None
    try:
        stamp = json.loads((Path(prefix) / STAMP_NAME).read_text())
    except (OSError, ValueError):
        pass
    facts = Facts(os_id=osr.get("ID", ""), os_version=osr.get("VERSION_ID", ""),
                  root=os.geteuid() == 0, prefix=prefix,
                  on_path=shutil.which("simple_switch_grpc"), stamp=stamp, src_dir=src_dir,
                  flavour=flavour,
                  pi_installed=any(Path(DEFAULT_PREFIX, "lib").glob("libpi.so*")))
    if facts.os_id == "ubuntu" and ask_network and not facts.on_path:
        facts.p4lang_reachable = reachable(P4LANG_REPO.format(version=facts.os_version)
                                           + "Release.key")
    return facts


def reachable(url: str, timeout: float = 5.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def unpack(tarball: str, sha256: str, top: str, dest: str, log) -> None:
    path = Path(tarball)
    if not path.is_file():
        raise ToolchainError(f"{path} is missing (DMSC_TOOLCHAIN_SRC names a folder "
                             f"that must hold {path.name})")
    got = sha256_of(path)
    log.write(f"sha256 {path.name}: {got}\n")
    if got != sha256:
        raise ToolchainError(f"{path.name}: sha256 {got}, pinned {sha256}: "
                             "not the pinned source, refusing to build it")
    out = Path(dest)
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = out.parent / f".{out.name}.unpack"
    shutil.rmtree(scratch, ignore_errors=True)
    with tarfile.open(path) as tar:
        tar.extractall(scratch, filter="tar") if hasattr(tarfile, "data_filter") \
            else tar.extractall(scratch)
    (scratch / top).rename(out)
    scratch.rmdir()


def check_commit(tree: str, commit: str, log) -> None:
    got = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tree, capture_output=True,
                         text=True).stdout.strip()
    log.write(f"HEAD {got}\n")
    if got != commit:
        raise ToolchainError(f"{tree} is at {got or 'no commit'}, pinned {commit}")


class Runner:
    """Runs a step's commands with their output in the stage's log."""

    def __init__(self, log_dir: Path, out=sys.stdout):
        self.log_dir = log_dir
        self.out = out

    def run_step(self, index: int, total: int, step: Step) -> float:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{index:02d}-{step.name}.log"
        print(f"toolchain: [{index}/{total}] {step.name}: {step.why} (log: {log_path})",
              file=self.out, flush=True)
        start = time.monotonic()
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        with open(log_path, "w") as log:
            for argv, cwd in step.commands:
                log.write(f"$ {' '.join(argv)}{f'  (in {cwd})' if cwd else ''}\n")
                log.flush()
                try:
                    if argv[0] == "@unpack":
                        unpack(*argv[1:], log=log)
                        continue
                    if argv[0] == "@check-commit":
                        check_commit(*argv[1:], log=log)
                        continue
                    rc = subprocess.run(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=env).returncode
                except ToolchainError as exc:
                    log.write(f"{exc}\n")
                    rc = None
                    reason = str(exc)
                except OSError as exc:
                    log.write(f"{exc}\n")
                    rc = None
                    reason = f"{argv[0]}: {exc.strerror}"
                else:
                    reason = f"`{' '.join(argv[:3])}` exited {rc}"
                if rc != 0:
                    log.flush()
                    raise ToolchainError(failure_message(step, reason, log_path))
        took = time.monotonic() - start
        print(f"toolchain:        {step.name} done in {took:.0f} s", file=self.out, flush=True)
        return took


WHAT_TO_DO = {
    "deps": "check that apt-get works (`apt-get update`), then run `sudo make setup` again",
    "source": "check DMSC_TOOLCHAIN_SRC (the tarballs and their sums, docs/toolchain.md) "
              "or that the upstream git host is reachable",
    "configure": "a build dependency is missing or too old: the log's last lines name it",
    "build": "read the first error in the log; a compiler killed by the kernel means too "
             "little memory (try again with fewer jobs: MAKEFLAGS=-j1)",
    "install": "the prefix must be writable (run as root)",
}


def failure_message(step: Step, reason: str, log_path: Path, lines: int = 15) -> str:
    try:
        tail = log_path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        tail = []
    kind = step.name.rsplit("-", 1)[-1]
    todo = WHAT_TO_DO.get(kind, "read the log")
    return "\n".join([f"toolchain: stage '{step.name}' failed: {reason}",
                      f"toolchain: last lines of {log_path}:",
                      *(f"    {line}" for line in tail),
                      f"toolchain: what to do: {todo}; then run `sudo make setup` again "
                      "(finished stages are redone: the build keeps no partial state)"])


def write_stamp(prefix: str, flavour: str = "default") -> Path:
    path = Path(prefix) / STAMP_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(wanted_stamp(flavour), indent=1) + "\n")
    return path


def verify(prefix: str) -> str:
    """The installed switch runs and says its version (after a build)."""
    binary = Path(prefix) / "bin" / "simple_switch_grpc"
    if not binary.exists():               # a package installs into /usr/bin
        binary = Path(shutil.which("simple_switch_grpc") or binary)
    env = dict(os.environ)
    if os.path.normpath(prefix) != DEFAULT_PREFIX:
        env["LD_LIBRARY_PATH"] = f"{prefix}/lib:" + env.get("LD_LIBRARY_PATH", "")
    try:
        res = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                             env=env, timeout=30)
    except OSError as exc:
        raise ToolchainError(f"the build installed no runnable {binary}: {exc}") from exc
    if res.returncode != 0:
        raise ToolchainError(f"{binary} --version exited {res.returncode}: {res.stderr.strip()}")
    return res.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flavour", choices=FLAVOURS, default="default",
                    help="perf: BMv2 built for benchmarking, under its own prefix")
    ap.add_argument("--prefix", default=None,
                    help=f"install prefix (DMSC_TOOLCHAIN_PREFIX; default {DEFAULT_PREFIX}, "
                         f"{PERF_PREFIX} for the perf flavour)")
    ap.add_argument("--src", default=os.environ.get("DMSC_TOOLCHAIN_SRC") or None,
                    help="folder of the pinned source tarballs (DMSC_TOOLCHAIN_SRC)")
    ap.add_argument("--work", default=os.environ.get("DMSC_TOOLCHAIN_WORK",
                                                     str(REPO / ".toolchain")),
                    help="where sources are unpacked and logs written")
    ap.add_argument("--plan", action="store_true", help="say what would be done, do nothing")
    args = ap.parse_args(argv)
    prefix = args.prefix or os.environ.get("DMSC_TOOLCHAIN_PREFIX") or \
        (PERF_PREFIX if args.flavour == "perf" else DEFAULT_PREFIX)
    prefix = os.path.normpath(os.path.abspath(prefix))
    work = Path(args.work).resolve()
    try:
        facts = read_facts(prefix, args.src, ask_network=not args.plan, flavour=args.flavour)
        why, steps = plan(facts, work)
        print(f"toolchain: {why}", flush=True)
        if args.plan or not steps:
            return 0
        started = time.monotonic()
        runner = Runner(work / "logs" if args.flavour == "default" else work / args.flavour / "logs")
        for i, step in enumerate(steps, 1):
            runner.run_step(i, len(steps), step)
        version = verify(prefix)
        if len(steps) > 1:            # a build (not a package): leave the stamp
            print(f"toolchain: stamp {write_stamp(prefix, args.flavour)}")
        print(f"toolchain: simple_switch_grpc {version} in {prefix}/bin, "
              f"{(time.monotonic() - started) / 60:.1f} min", flush=True)
        return 0
    except ToolchainError as exc:
        print(exc, file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
