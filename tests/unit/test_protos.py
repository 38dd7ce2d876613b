"""The committed generated protobuf code is current with its .proto files, and
the controller runs it on protobuf >= 6 with the upb backend."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

PROTOC, PLUGIN = shutil.which("protoc"), shutil.which("grpc_python_plugin")
needs_protoc = pytest.mark.skipif(PROTOC is None or PLUGIN is None,
                                  reason="needs protoc and grpc_python_plugin (protobuf-compiler-grpc)")


def _googleapis_include() -> str:
    """Where googleapis-common-protos keeps google/rpc/status.proto (p4runtime.proto imports it)."""
    import google.rpc.status_pb2 as status
    return str(Path(status.__file__).resolve().parents[2])


def _regenerate(tmp_path, proto: str, grpc_out: bool, include=ROOT) -> None:
    cmd = [PROTOC, "-I", str(include), "-I", _googleapis_include(), f"--python_out={tmp_path}", proto]
    if grpc_out:
        cmd[1:1] = [f"--grpc_out={tmp_path}", f"--plugin=protoc-gen-grpc={PLUGIN}"]
    res = subprocess.run(cmd, cwd=include, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


@needs_protoc
@pytest.mark.parametrize("proto", sorted(p.stem for p in (ROOT / "controller/proto").glob("*.proto")))
def test_generated_code_matches_the_proto(tmp_path, proto):
    _regenerate(tmp_path, f"controller/proto/{proto}.proto", grpc_out=True)
    for name in (f"{proto}_pb2.py", f"{proto}_pb2_grpc.py"):
        assert (tmp_path / "controller/proto" / name).read_text() == \
            (ROOT / "controller/proto" / name).read_text(), f"{name} is stale: run `make protos`"


P4RT = ROOT / "controller/switch/p4runtime"
P4RUNTIME_PROTOS = sorted(str(p.relative_to(P4RT)) for p in P4RT.rglob("*.proto"))


def test_p4runtime_protos_are_all_there():
    assert P4RUNTIME_PROTOS == ["p4/config/v1/p4info.proto", "p4/config/v1/p4types.proto",
                                "p4/v1/p4data.proto", "p4/v1/p4runtime.proto"]


@needs_protoc
@pytest.mark.parametrize("proto", P4RUNTIME_PROTOS)
def test_p4runtime_code_matches_its_proto(tmp_path, proto):
    """Generated with the proto paths P4Runtime's own tools use (p4/v1/...), then
    moved under controller.switch.p4runtime the way `make protos` does (its sed)."""
    service = proto == "p4/v1/p4runtime.proto"
    _regenerate(tmp_path, proto, grpc_out=service, include=P4RT)
    outs = [proto.replace(".proto", "_pb2.py")] + ([proto.replace(".proto", "_pb2_grpc.py")]
                                                   if service else [])
    sed = subprocess.run(["make", "-s", "-n", "protos"], cwd=ROOT, capture_output=True,
                         text=True).stdout
    rewrite = re.search(r"sed -i -E '([^']+)'", sed).group(1)
    subprocess.run(["sed", "-i", "-E", rewrite, *[str(tmp_path / o) for o in outs]], check=True)
    for out in outs:
        assert (tmp_path / out).read_text() == (P4RT / out).read_text(), \
            f"{out} is stale: run `make protos`"


def test_p4runtime_code_is_the_repos_not_a_top_level_p4():
    """PyPI's p4runtime installs a top-level `p4` package; ours lives under the
    controller, so neither can shadow the other, and nothing of ours imports `p4.`."""
    from controller.switch.p4runtime.p4.config.v1 import p4info_pb2
    from controller.switch.p4runtime.p4.v1 import p4runtime_pb2, p4runtime_pb2_grpc
    for mod in (p4runtime_pb2, p4runtime_pb2_grpc, p4info_pb2):
        assert Path(mod.__file__).resolve().is_relative_to(P4RT), mod.__file__
    assert not (ROOT / "p4").exists()
    res = subprocess.run(["git", "grep", "-n", "-E", r"^\s*(from|import) p4\.", "--", "*.py"],
                         cwd=ROOT, capture_output=True, text=True)
    assert res.stdout == "", res.stdout


def test_generated_code_runs_on_protobuf_6_with_upb():
    import google.protobuf
    from google.protobuf.internal import api_implementation
    from controller.proto import routing_pb2
    from controller.switch.p4runtime.p4.v1 import p4runtime_pb2
    major = int(google.protobuf.__version__.split(".")[0])
    assert major >= 6, f"protobuf {google.protobuf.__version__}: the controller needs >= 6 (make setup)"
    lsa = routing_pb2.Lsa(origin="sg1", seq=7)
    assert routing_pb2.Lsa.FromString(lsa.SerializeToString()).seq == 7
    rep = p4runtime_pb2.StreamMessageResponse()
    rep.packet.payload = b"frame"
    rep.packet.metadata.add(metadata_id=2, value=b"\x04")
    back = p4runtime_pb2.StreamMessageResponse.FromString(rep.SerializeToString())
    assert back.WhichOneof("update") == "packet" and back.packet.metadata[0].value == b"\x04"
    impl = api_implementation.Type()
    if impl != "upb":
        pytest.skip(f"protobuf runs its {impl!r} backend, not upb (is "
                    "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION set, or no upb wheel for this platform?)")
