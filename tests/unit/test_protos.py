"""The committed generated protobuf code is current with its .proto file."""
import shutil
import subprocess

import pytest

from tests.conftest import ROOT

PROTOC, PLUGIN = shutil.which("protoc"), shutil.which("grpc_python_plugin")


@pytest.mark.skipif(PROTOC is None or PLUGIN is None,
                    reason="needs protoc and grpc_python_plugin (protobuf-compiler-grpc)")
@pytest.mark.parametrize("proto", sorted(p.stem for p in (ROOT / "controller/proto").glob("*.proto")))
def test_generated_code_matches_the_proto(tmp_path, proto):
    res = subprocess.run([PROTOC, "-I", ".", f"--python_out={tmp_path}", f"--grpc_out={tmp_path}",
                          f"--plugin=protoc-gen-grpc={PLUGIN}", f"controller/proto/{proto}.proto"],
                         cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    for name in (f"{proto}_pb2.py", f"{proto}_pb2_grpc.py"):
        assert (tmp_path / "controller/proto" / name).read_text() == \
            (ROOT / "controller/proto" / name).read_text(), f"{name} is stale: run `make protos`"


def test_generated_code_runs_on_the_pinned_protobuf():
    import google.protobuf
    from controller.proto import routing_pb2
    lsa = routing_pb2.Lsa(origin="sg1", seq=7)
    assert routing_pb2.Lsa.FromString(lsa.SerializeToString()).seq == 7
    assert google.protobuf.__version__.startswith("3.20")
