# adderhw — the two commands are `make demo` and `make test`; both set up first.
# torch's OpenMP threads spin-wait by default, which is up to 10x slower on a
# shared 2-core machine; passive waiting costs nothing when the machine is idle.
export OMP_WAIT_POLICY := PASSIVE

VENV    := .venv
PY      := $(VENV)/bin/python
ADDERHW := $(VENV)/bin/adderhw
# make demo: the shipped LeNet-5-BN; make demo MODEL=resnet20: the shipped ResNet-20 (4x4 engine,
# accuracy on the first 1,000 test images)
MODEL ?= lenet
ifeq ($(MODEL),resnet20)
DEMO_CKPT  ?= checkpoints/resnet20_adder_fmnist.pt
DEMO_OUT   ?= build/demo-resnet20
DEMO_FLAGS ?= --eval 1000
else
DEMO_CKPT  ?= checkpoints/lenet5_bn_adder_fmnist.pt
DEMO_OUT   ?= build/demo
DEMO_FLAGS ?=
endif

.PHONY: setup demo test bench docs clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(ADDERHW) flow $(DEMO_CKPT) -o $(DEMO_OUT) $(DEMO_FLAGS)

test: setup
	$(PY) -m pytest -q tests

# the documentation site (MkDocs + Material, the docs extra) into build/site; warnings fail
docs: setup
	$(VENV)/bin/mkdocs build --strict

bench: setup
	@set -e; for b in scripts/bench_*.py; do echo "== $$b"; $(PY) $$b; done

clean:
	rm -rf build .pytest_cache .hypothesis
