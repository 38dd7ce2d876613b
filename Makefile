# DMSC testbed. Run as root (sudo): Mininet and BMv2 need it.
#   make demo     set up (once) and run the Figure 2 demo
#   make test     set up (once) and run all tests (unit + bmv2 + mininet)
#   make unit     unit tests only (no root, no switch)
#   make bench    benchmarks (not part of the tests)
#   make p4       recompile p4src/ (the DMSC program and the mesh baseline's IPv4 one) into
#                 p4src/build/ (needs p4c) and regenerate the names
#   make protos   regenerate controller/proto/*_pb2*.py and P4Runtime's (needs protoc +
#                 grpc_python_plugin)
PY := .venv/bin/python
P4C ?= p4c
P4_BUILD := p4src/build

.PHONY: setup demo test unit bench p4 p4names protos clean-runs

setup:
	bash scripts/setup.sh

demo: setup
	$(PY) -m dmsc.cli demo

test: setup
	bash scripts/run-tests.sh

unit: setup
	$(PY) -m pytest -q tests/unit

bench: setup
	$(PY) benchmarks/dataplane.py
	-$(PY) benchmarks/dataplane_instr.py    # needs valgrind; its absence stops nothing else
	$(PY) benchmarks/spf.py
	$(PY) benchmarks/p4rt_cpu.py --bmv2 3000
	$(PY) benchmarks/convergence.py
	$(PY) benchmarks/calls.py
	$(PY) benchmarks/scheduling.py
	$(PY) benchmarks/flood.py
	$(PY) benchmarks/load.py --plot load.png

p4:
	$(P4C) --target bmv2 --arch v1model --std p4-16 \
	  -o $(P4_BUILD) --p4runtime-files $(P4_BUILD)/dmsc.p4info.txtpb p4src/main.p4
	mv $(P4_BUILD)/main.json $(P4_BUILD)/dmsc.json
	rm -f $(P4_BUILD)/main.p4i
	$(P4C) --target bmv2 --arch v1model --std p4-16 \
	  -o $(P4_BUILD) --p4runtime-files $(P4_BUILD)/mesh_ipv4.p4info.txtpb p4src/mesh/ipv4.p4
	mv $(P4_BUILD)/ipv4.json $(P4_BUILD)/mesh_ipv4.json
	rm -f $(P4_BUILD)/ipv4.p4i
	$(P4C) --target bmv2 --arch v1model --std p4-16 \
	  -o benchmarks/build --p4runtime-files benchmarks/build/ipv4_lpm.p4info.txtpb benchmarks/ipv4_lpm.p4
	rm -f benchmarks/build/ipv4_lpm.p4i
	$(P4C) --target bmv2 --arch v1model --std p4-16 \
	  -o benchmarks/build --p4runtime-files benchmarks/build/trivial.p4info.txtpb benchmarks/trivial.p4
	rm -f benchmarks/build/trivial.p4i
	$(MAKE) p4names

p4names:
	$(PY) scripts/gen_names.py

# Our .proto files and P4Runtime's (controller/switch/p4runtime/p4/, p4lang/p4runtime
# v1.4.1): Debian/Ubuntu protoc + grpc_python_plugin (package protobuf-compiler-grpc);
# outputs committed (docs/decisions.md says why). google/rpc/status.proto:
# googleapis-common-protos. P4Runtime's files keep their proto paths (p4/v1/...), and
# their generated imports are rewritten to live under controller.switch.p4runtime.
GOOGLEAPIS = $$($(PY) -c 'import google.rpc.status_pb2 as s, pathlib; print(pathlib.Path(s.__file__).resolve().parents[2])')
GRPC_PLUGIN = --plugin=protoc-gen-grpc=$$(command -v grpc_python_plugin)
P4RT := controller/switch/p4runtime
protos:
	protoc -I . --python_out=. --grpc_out=. $(GRPC_PLUGIN) controller/proto/*.proto
	protoc -I $(P4RT) -I $(GOOGLEAPIS) --python_out=$(P4RT) \
	  p4/v1/p4data.proto p4/config/v1/p4info.proto p4/config/v1/p4types.proto
	protoc -I $(P4RT) -I $(GOOGLEAPIS) --python_out=$(P4RT) --grpc_out=$(P4RT) $(GRPC_PLUGIN) \
	  p4/v1/p4runtime.proto
	sed -i -E 's/^(from|import) p4\./\1 controller.switch.p4runtime.p4./' \
	  $(P4RT)/p4/v1/*_pb2*.py $(P4RT)/p4/config/v1/*_pb2*.py

clean-runs:
	rm -rf runs
