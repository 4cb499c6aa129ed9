# The project's commands. Every target that needs Python creates .venv first.
# Variables: ROWS, COLS, TDC_BITS, SYNC_STAGES, BATCH_DEPTH, POST_LANES (Verilog parameters),
# SIM (icarus|verilator), TEST (cocotb test name), WAVES=1 (dump FST), FULL=1 (make bench: the
# 10,000-digit co-simulation too).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BUILD  := build

ROWS        ?= 64
COLS        ?= 64
TDC_BITS    ?= 8
SYNC_STAGES ?= 2
BATCH_DEPTH ?= 32
POST_LANES  ?= 8
FULL        ?= 0
SIM         ?= icarus
TEST        ?=
WAVES       ?= 0

.PHONY: all venv test demo verilog lint docs sim waves characterize clean check-iverilog help

help:
	@echo "make demo          run the main job (end-to-end macro demonstration)"
	@echo "make test          run the whole test suite (JUnit report in build/test-results.xml)"
	@echo "make verilog       write build/rtl/mram_cim.v (ROWS= COLS= TDC_BITS= SYNC_STAGES= BATCH_DEPTH= POST_LANES=)"
	@echo "make lint          verilator --lint-only -Wall and iverilog -g2005 on the generated Verilog"
	@echo "make docs          regenerate docs/registers.md and the C header"
	@echo "make sim           cocotb smoke test or TEST=name on SIM=icarus|verilator (WAVES=1 for an FST)"
	@echo "make waves         open the last FST in GTKWave with the committed save file"
	@echo "make characterize  analog-model characterisation into build/characterize/"

# The venv is rebuilt whenever pyproject.toml changes (the stamp is older than it).
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or newer" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: Python 3.11 or newer is needed ($(PYTHON) is older)" >&2; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "error: could not create $(VENV); on Debian install it with: apt-get install python3-venv" >&2; exit 1; }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,apps]'
	@touch $(STAMP)

venv: $(STAMP)

check-iverilog:
	@command -v iverilog >/dev/null || { echo "error: iverilog (Icarus Verilog 11 or newer) is missing; install it with: sudo apt-get install -y iverilog" >&2; exit 1; }
	@command -v c++ >/dev/null || command -v g++ >/dev/null || { echo "error: no C++ compiler for Verilator; install it with: sudo apt-get install -y g++" >&2; exit 1; }

test: $(STAMP) check-iverilog
	@mkdir -p $(BUILD)
	$(PY) -m pytest -q --junitxml=$(BUILD)/test-results.xml

demo: $(STAMP) check-iverilog
	$(PY) -m apps.demo

verilog: $(STAMP)
	$(PY) -m rtl verilog --rows '$(ROWS)' --cols '$(COLS)' --tdc-bits '$(TDC_BITS)' --sync-stages '$(SYNC_STAGES)' --batch-depth '$(BATCH_DEPTH)' --post-lanes '$(POST_LANES)' --out $(BUILD)/rtl/mram_cim.v

lint: $(STAMP) check-iverilog
	$(PY) -m rtl lint --rows '$(ROWS)' --cols '$(COLS)' --tdc-bits '$(TDC_BITS)' --sync-stages '$(SYNC_STAGES)' --batch-depth '$(BATCH_DEPTH)' --post-lanes '$(POST_LANES)'

docs: $(STAMP)
	$(PY) -m rtl docs

sim: $(STAMP) check-iverilog
	$(PY) -m tb.run --sim '$(SIM)' --test '$(TEST)' --waves '$(WAVES)'

waves: $(STAMP)
	$(PY) -m tb.waves $(if $(filter command line environment,$(origin SIM)),--sim '$(SIM)')

characterize: $(STAMP)
	$(PY) -m analog_models.characterize --out $(BUILD)/characterize

clean:
	rm -rf $(BUILD)

# Retrains every shipped weight file; each JSON beside an .npz records its command and seed.
# train-mlp: the MNIST two-layer perceptron (numpy only, ~3 min each on 2 cores), plain and trained
# with the macro's error model (noise sigmas = residual dot errors measured on the paper preset after
# calibration and retuning). train-vgg8 (~35 min, one thread) and train-face (~10 min) need torch,
# the optional extra 'train' (a CPU build; installed here on first use).
.PHONY: train train-mlp train-vgg8 train-face torch
train: train-mlp train-vgg8 train-face

train-mlp: $(STAMP)
	$(PY) -m apps.mnist_mlp train --hidden 256 --epochs 20 --seed 0
	$(PY) -m apps.mnist_mlp train --hidden 256 --epochs 20 --seed 0 --noise1 8 --noise2 6 --out apps/weights/mnist_mlp_noise.npz

torch: $(STAMP)
	@$(PY) -c 'import torch' 2>/dev/null || $(PY) -m pip install --quiet -e '.[train]'

train-vgg8: torch
	OMP_NUM_THREADS=1 $(PY) -m apps.vgg8 train --out $(BUILD)/vgg8/vgg8_v1.npz --seed 0 --epochs 10 --lr 3e-3 --noise-sigma 5 --label-smoothing 0.1 --threads 1
	$(PY) -m apps.vgg8 compact $(BUILD)/vgg8/vgg8_v1.npz apps/weights/vgg8.npz

train-face: torch
	$(PY) -m apps.face train --out $(BUILD)/face/face_s0.npz --seed 0 --epochs 30
	$(PY) -m apps.vgg8 compact $(BUILD)/face/face_s0.npz apps/weights/face.npz --net face

# Every experiment of the paper (error model, MLP, VGG-8, face detection, sweeps) into
# build/paper/ (results.json, REPORT.md, PNGs). Needs the co-simulation for the short error run;
# takes a few minutes to ~20 minutes depending on the machine.
.PHONY: paper
paper: $(STAMP) check-iverilog
	$(PY) -m apps.paper --out $(BUILD)/paper

# ---- FPGA: synthesis, place and route with the yowasp toolchain from PyPI ----
# BOARD: ulx3s-25f | ulx3s-85f | hx8k | icebreaker (the 64 x 64 macro does not fit the
# iCEBreaker's UP5K; the build then stops with the reason); PROGRAM=1 loads the bitstream.
BOARD   ?= ulx3s-25f
PROGRAM ?= 0
FPGA_STAMP := $(VENV)/.installed-fpga

.PHONY: fpga fpga-bitstream

# The fpga extra is installed into .venv the first time (and again when pyproject.toml changes).
$(FPGA_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev,apps,fpga]'
	@touch $(FPGA_STAMP)

fpga: $(FPGA_STAMP)
	$(PY) -m rtl.board.fpga report

fpga-bitstream: $(FPGA_STAMP)
	$(PY) -m rtl.board.fpga build --board '$(BOARD)' $(if $(filter 1,$(PROGRAM)),--program,)

.PHONY: bench
bench: $(STAMP) check-iverilog
	$(PY) -m tb.bench --full '$(FULL)'

# Instructions per co-simulated operation (Valgrind's callgrind; a few minutes): a figure that does
# not move with the machine's load, for comparing changes. SIM=icarus|verilator.
.PHONY: simcost
simcost: $(STAMP) check-iverilog
	$(PY) -m tb.simcost --sim '$(SIM)'

.PHONY: stress
stress: $(STAMP) check-iverilog
	$(PY) -m tb.stress --transactions 12000
