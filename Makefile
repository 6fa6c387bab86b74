# cprof: the two commands at the top of README.md are `make demo` and `make test`.
# Both install what they need and are safe to run again.

PYTHON_VERSION ?= 3.11
VENV := .venv/$(PYTHON_VERSION)
SECONDS ?= 60

.PHONY: demo test deps venv wheels release-check proto fuzz bench bench-heap clean

# Profiles docs/examples/sample_program.py (about 3 s), writes out/sample.prof,
# prints its top and writes its flame graph, out/sample.html; then go tool pprof
# reads the same file.
demo: deps venv
	@mkdir -p out
	$(VENV)/bin/cprof record -o out/sample.prof -- $(VENV)/bin/python docs/examples/sample_program.py
	$(VENV)/bin/cprof flame out/sample.prof -o out/sample.html
	@echo "--- go tool pprof -top reads what cprof wrote:"
	HOME=$${TMPDIR:-/tmp} go tool pprof -top -symbolize=none out/sample.prof | head -20

test: deps
	bash .ci/test.sh

deps:
	@bash .ci/deps.sh

venv: deps
	@bash .ci/venv.sh $(PYTHON_VERSION) $(VENV)

# The release artifacts in dist/: the sdist, and one manylinux wheel per CPython
# 3.11-3.15 built with Debian 11's gcc and libraries and repaired by auditwheel
# (.ci/wheels.sh; README.md, "Installing").
wheels: deps
	bash .ci/wheels.sh dist

# twine check --strict on the artifacts make wheels writes.
release-check: wheels
	.venv/wheel-tools/bin/python -m twine check --strict dist/cprof-*

# Regenerate csrc/proto/profile.pb-c.[ch] from profile.proto
# (tests/pprof/test_proto.py fails when the committed output is stale).
proto: deps
	cd csrc/proto && protoc-c --c_out=. profile.proto

# libFuzzer over the decoder for $(SECONDS) seconds (docs/FUZZING.md).
fuzz: deps
	bash csrc/fuzz/run.sh $(SECONDS)

# The codec benchmark (docs/BENCHMARKS.md).
bench: deps venv
	$(VENV)/bin/python benchmarks/codec.py

# The heap profiler against tracemalloc and memray (docs/BENCHMARKS.md).
bench-heap: deps venv
	$(VENV)/bin/python benchmarks/heap_overhead.py

clean:
	rm -rf build dist out .venv *.egg-info cprof/*.so
