# adderhw — the two commands are `make demo` and `make test`; both set up first.
# torch's OpenMP threads spin-wait by default, which is up to 10x slower on a
# shared 2-core machine; passive waiting costs nothing when the machine is idle.
export OMP_WAIT_POLICY := PASSIVE

VENV    := .venv
PY      := $(VENV)/bin/python
ADDERHW := $(VENV)/bin/adderhw
DEMO_CKPT ?= checkpoints/lenet5_bn_adder_fmnist.pt
DEMO_OUT  ?= build/demo

.PHONY: setup demo test bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(ADDERHW) flow $(DEMO_CKPT) -o $(DEMO_OUT)

test: setup
	$(PY) -m pytest -q tests

bench: setup
	@set -e; for b in scripts/bench_*.py; do echo "== $$b"; $(PY) $$b; done

clean:
	rm -rf build .pytest_cache .hypothesis
